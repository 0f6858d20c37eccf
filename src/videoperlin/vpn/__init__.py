"""Synthetic videos: formula families (``perlin``, the paper's VPN, first), their label spaces, the
on-the-fly dataset, export and preview."""

from videoperlin.vpn.dataset import VPNDataset
from videoperlin.vpn.family import ClassGrid, Family, get_family, load_families, register
from videoperlin.vpn.labels import PRESETS, LabelSpace, resolve_label_space
from videoperlin.vpn.spec import VPNSpec

__all__ = [
    "PRESETS",
    "ClassGrid",
    "Family",
    "LabelSpace",
    "VPNDataset",
    "VPNSpec",
    "get_family",
    "load_families",
    "register",
    "resolve_label_space",
]
