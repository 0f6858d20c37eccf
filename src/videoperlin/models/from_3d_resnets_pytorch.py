"""Import of 3D-ResNets-PyTorch checkpoints (K. Hara): ``{'epoch', 'arch', 'state_dict', ...}``.

Parameter names already match our models, so import is: find the architecture, infer the options
the weights determine, build the model and load every tensor strictly. ``arch`` strings such as
``resnet-18`` and ``resnet2p1d-50`` name the family and depth; without ``arch`` the family and
depth are read off the keys. Classes, input channels, conv1 temporal size, width and shortcut type
are read off the tensors; conv1's temporal stride and the max-pool switch leave no trace in the
weights and are passed in (defaults: the authors' 1 and with max-pool).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from videoperlin.errors import CheckpointError
from videoperlin.models.architectures.resnet3d import DEPTHS, STAGE_WIDTHS, Bottleneck, VideoResNet
from videoperlin.models.registry import create_model
from videoperlin.models.weight_files import read_checkpoint_file

ARCH_FAMILIES = {"resnet": "r3d", "resnet2p1d": "r2p1d"}


def _family_and_depth(state: Mapping[str, Tensor], arch: str | None) -> tuple[str, int]:
    if arch:
        match = re.fullmatch(r"([a-z0-9]+)-(\d+)", str(arch))
        if not match or match.group(1) not in ARCH_FAMILIES or int(match.group(2)) not in DEPTHS:
            raise CheckpointError(
                f"checkpoint arch {arch!r} is not supported; supported: "
                f"{', '.join(f'{f}-{d}' for f in ARCH_FAMILIES for d in DEPTHS)}"
            )
        return ARCH_FAMILIES[match.group(1)], int(match.group(2))
    family = "r2p1d" if "conv1_s.weight" in state else "r3d"
    counts = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5))
    bottleneck = any(k.endswith("conv3.weight") for k in state)
    for depth, (block, layers) in DEPTHS.items():
        if layers == counts and (block is Bottleneck) == bottleneck:
            return family, depth
    raise CheckpointError(f"cannot tell the depth from the checkpoint's block counts {counts}")


def infer_options(state: Mapping[str, Tensor], arch: str | None = None) -> dict[str, Any]:
    """Model name and the options the weights determine."""
    family, depth = _family_and_depth(state, arch)
    stem_in = state["conv1_s.weight"] if family == "r2p1d" else state.get("conv1.weight")
    stem_out = state["conv1_t.weight"] if family == "r2p1d" else stem_in
    if stem_in is None or stem_out is None or "fc.weight" not in state:
        raise CheckpointError("checkpoint lacks conv1 or fc weights; it is not a 3D-ResNets-PyTorch ResNet")
    return {
        "name": f"{family}{depth}",
        "num_classes": state["fc.weight"].shape[0],
        "in_channels": stem_in.shape[1],
        "conv1_t_size": stem_out.shape[2],
        "widen_factor": stem_out.shape[0] / STAGE_WIDTHS[0],
        "shortcut": "B" if any(".downsample.0.weight" in k for k in state) else "A",
    }


def import_hara_checkpoint(source: str | Path, conv1_t_stride: int = 1, no_max_pool: bool = False) -> VideoResNet:
    """Build the model a 3D-ResNets-PyTorch checkpoint describes and load all its weights strictly."""
    state, meta = read_checkpoint_file(source)
    return model_from_hara_state(
        state, source, meta.get("arch"), conv1_t_stride=conv1_t_stride, no_max_pool=no_max_pool
    )


def model_from_hara_state(
    state: Mapping[str, Tensor],
    source: str | Path = "checkpoint",
    arch: str | None = None,
    conv1_t_stride: int = 1,
    no_max_pool: bool = False,
) -> VideoResNet:
    """:func:`import_hara_checkpoint` for a state dict already read (``arch`` as the checkpoint records it)."""
    options = infer_options(state, arch)
    name = options.pop("name")
    model = create_model(name, conv1_t_stride=conv1_t_stride, no_max_pool=no_max_pool, **options)
    assert isinstance(model, VideoResNet), "3D-ResNets-PyTorch's networks are ResNets"
    expected = set(model.state_dict())
    # Checkpoints from PyTorch < 0.4.1 have no BatchNorm batch counters; those alone may be absent.
    missing = sorted(k for k in expected - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(f"{source} does not match {name}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.load_state_dict(state, strict=False)
    return model
