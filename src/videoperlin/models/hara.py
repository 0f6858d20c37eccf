"""Renamed: this module is now :mod:`videoperlin.models.from_3d_resnets_pytorch`."""

raise ImportError("videoperlin.models.hara was renamed videoperlin.models.from_3d_resnets_pytorch")
