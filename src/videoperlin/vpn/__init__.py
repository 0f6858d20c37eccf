"""Video Perlin Noise: the label space, the rendering spec, the on-the-fly dataset, export and preview."""

from videoperlin.vpn.dataset import VPNDataset
from videoperlin.vpn.labels import PRESETS, LabelSpace, resolve_label_space
from videoperlin.vpn.spec import VPNSpec

__all__ = ["LabelSpace", "PRESETS", "VPNDataset", "VPNSpec", "resolve_label_space"]
