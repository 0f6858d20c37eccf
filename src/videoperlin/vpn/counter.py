"""Renamed: counter-based random draws are :class:`videoperlin.vpn.draws.CounterDraws` (beside the
generator back-end, behind one interface)."""

raise ImportError("videoperlin.vpn.counter was renamed: counter-based draws are videoperlin.vpn.draws.CounterDraws")
