"""2D -> 3D inflation of ImageNet-style ResNet weights (Carreira & Zisserman, "Quo Vadis, Action
Recognition?", CVPR 2017): each k x k kernel is repeated over the 3D kernel's temporal size t and
divided by t, so a static clip gives the same response as the single frame.

The 2D state dict uses the common ResNet naming (``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.weight``, ``layer1.0.downsample.0.weight``, ..., ``fc.*``), as written by
torchvision and timm ResNets, which is also the naming of our r3d models.

Exactness: with ``temporal_padding="replicate"`` (border frames repeated instead of zero padding
in time) and BatchNorm in eval mode, the inflated r3d network maps a static clip to exactly the 2D
network's logits on that frame: every layer's output stays static in time, max-pooling over equal
frames and average pooling over time are the identity. With the default zero temporal padding the
border frames see zeros and the logits differ slightly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from videoperlin.errors import ConfigError
from videoperlin.models.pretrained import LoadReport, load_pretrained
from videoperlin.models.registry import architecture_of
from videoperlin.models.weight_files import read_state_dict


def inflate_tensor(weight2d: Tensor, target: Tensor) -> Tensor:
    """Inflate a (O, I, kh, kw) kernel to ``target``'s (O, I, t, kh, kw) shape: repeat over t, divide by t."""
    if weight2d.dim() != 4 or target.dim() != 5 or weight2d.shape != target.shape[:2] + target.shape[3:]:
        raise ConfigError(f"cannot inflate a {tuple(weight2d.shape)} kernel to {tuple(target.shape)}")
    t = target.shape[2]
    return weight2d.unsqueeze(2).repeat(1, 1, t, 1, 1) / t


def inflate_state_dict(model3d: nn.Module, state2d: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """3D state dict for ``model3d`` built from a 2D ResNet state dict (4D kernels inflated, rest copied)."""
    target = model3d.state_dict()
    arch = architecture_of(model3d)
    if not arch.inflates_from_2d:
        raise ConfigError(
            f"inflation needs full 3D convolutions (an r3d model), and {arch.name} has none: (2+1)D layers have "
            f"other names and widths than a 2D ResNet, and a transformer has no ResNet layers"
        )
    out: dict[str, Tensor] = {}
    for key, value in state2d.items():
        if key in target and value.dim() == 4 and target[key].dim() == 5:
            out[key] = inflate_tensor(value, target[key])
        else:
            out[key] = value
    return out


def inflate_2d(
    model3d: nn.Module, source: str | Path | Mapping[str, Tensor], drop_classifier: bool = True
) -> LoadReport:
    """Load 2D ResNet weights (a state dict or a file) into ``model3d`` by inflation; return the report."""
    state2d = read_state_dict(source)
    with torch.no_grad():
        inflated = inflate_state_dict(model3d, state2d)
    return load_pretrained(model3d, inflated, drop_classifier=drop_classifier)
