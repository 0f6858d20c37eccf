"""Synthetic videos: formula families (``perlin``, the paper's VPN, first), their label spaces, the
on-the-fly dataset, export and preview. ``VPNDataset`` and ``VPNSpec`` (names before 0.4) are read as
:class:`SyntheticDataset` and :class:`~videoperlin.vpn.families.perlin.PerlinOptions` with one deprecation line."""

from typing import Any

from videoperlin.config_fields import deprecated
from videoperlin.vpn.dataset import SyntheticDataset
from videoperlin.vpn.families.perlin import PerlinOptions
from videoperlin.vpn.family import Family, get_family, load_families, register
from videoperlin.vpn.labels import PRESETS, LabelSpace, frequency_preset, frequency_space, frequency_space_from_dict

__all__ = [
    "PRESETS",
    "Family",
    "LabelSpace",
    "PerlinOptions",
    "SyntheticDataset",
    "frequency_preset",
    "frequency_space",
    "frequency_space_from_dict",
    "get_family",
    "load_families",
    "register",
]
#: Names before 0.4 -> today's.
_RENAMED = {"VPNDataset": "SyntheticDataset", "VPNSpec": "PerlinOptions"}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        deprecated(f"videoperlin.vpn.{name}", _RENAMED[name])
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module 'videoperlin.vpn' has no attribute {name!r}")
