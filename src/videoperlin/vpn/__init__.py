"""Video Perlin Noise: the label space, the on-the-fly dataset, export and preview."""

from videoperlin.vpn.dataset import VPNDataset
from videoperlin.vpn.labels import PRESETS, LabelSpace

__all__ = ["LabelSpace", "PRESETS", "VPNDataset"]
