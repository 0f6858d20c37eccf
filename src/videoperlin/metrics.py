"""Renamed: this module is now :mod:`videoperlin.scores`."""

raise ImportError("videoperlin.metrics was renamed videoperlin.scores")
