"""Renamed: this module is now :mod:`videoperlin.cli.training`."""

raise ImportError("videoperlin.cli.runs was renamed videoperlin.cli.training")
