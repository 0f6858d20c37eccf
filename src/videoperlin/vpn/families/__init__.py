"""Built-in formula families: each module here registers one (:mod:`videoperlin.vpn.family`)."""
