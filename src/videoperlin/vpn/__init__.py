"""Synthetic videos: formula families (``perlin``, the paper's VPN, first), their label spaces, the
on-the-fly dataset, export and preview."""

from videoperlin.vpn.dataset import VPNDataset
from videoperlin.vpn.family import Family, get_family, load_families, register
from videoperlin.vpn.labels import PRESETS, LabelSpace, frequency_preset, frequency_space, frequency_space_from_dict
from videoperlin.vpn.spec import VPNSpec

__all__ = [
    "PRESETS",
    "Family",
    "LabelSpace",
    "VPNDataset",
    "VPNSpec",
    "frequency_preset",
    "frequency_space",
    "frequency_space_from_dict",
    "get_family",
    "load_families",
    "register",
]
