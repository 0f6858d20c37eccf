"""Renamed: this module is now :mod:`videoperlin.config_fields`."""

raise ImportError("videoperlin.utils.fields was renamed videoperlin.config_fields")
