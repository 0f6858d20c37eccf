"""The built-in architectures: each module registers its networks (:mod:`videoperlin.models.registry`)."""
