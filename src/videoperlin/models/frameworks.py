"""Weights in and out of the video ResNets of other frameworks: torchvision, mmaction2 and
3D-ResNets-PyTorch (``hara``).

Their networks are ours with other options (:class:`~videoperlin.models.architectures.resnet3d.ModelOptions`);
only the parameter names differ. So a conversion is a renaming of every tensor, derived from our
own key (:func:`their_key`), plus a check that the options which leave no trace in the weights
(strides, pooling) are the ones the framework's model has:

=============  =====================================  =============================================
framework      their model                            ours, with
=============  =====================================  =============================================
torchvision    ``r3d_18`` / ``mc3_18`` /              ``r3d18`` / ``mc3_18`` / ``r2p1d18``:
               ``r2plus1d_18`` (``VideoResNet`` with  ``conv1_t_size=3``, ``no_max_pool``; (2+1)D:
               Basic or Bottleneck blocks, any        ``mid_planes=per_block``,
               depth)                                 ``stem_mid_planes=45``
mmaction2      ``Recognizer3D`` with ``ResNet3d``     ``r3d`` / ``mc3`` with ``max_pool=1x3x3`` (their
               and ``I3DHead``                        settings: :func:`framework_settings`)
hara           3D-ResNets-PyTorch ``resnet`` /        any r3d / r2p1d with the default max-pool and
               ``resnet2p1d``                         middle widths
=============  =====================================  =============================================

Renaming (our key -> theirs; ``n`` the conv's number, ``_s``/``_t`` the (2+1)D halves):

* torchvision: stem ``conv1``/``bn1`` -> ``stem.0``/``stem.1``; (2+1)D stem ``conv1_s, bn1_s,
  conv1_t, bn1_t`` -> ``stem.0, stem.1, stem.3, stem.4``; in a block ``conv{n}``/``bn{n}`` ->
  ``conv{n}.0``/``conv{n}.1`` and ``conv{n}_s, bn{n}_s, conv{n}_t, bn{n}_t`` -> ``conv{n}.0.0,
  conv{n}.0.1, conv{n}.0.3, conv{n}.1``; ``downsample`` and ``fc`` as ours.
* mmaction2 (``backbone.`` before all but the head): ``conv{n}``/``bn{n}`` -> ``conv{n}.conv``/
  ``conv{n}.bn``; ``conv{n}_s, bn{n}_s, conv{n}_t, bn{n}_t`` -> ``conv{n}.conv.conv_s,
  conv{n}.conv.bn_s, conv{n}.conv.conv_t, conv{n}.bn``; ``downsample.0/1`` -> ``downsample.conv/bn``;
  ``fc`` -> ``cls_head.fc_cls``.
* hara: our names are theirs.

Loading is strict both ways: every tensor has its place with its shape, or the conversion stops
naming the first tensor that does not (never a partial load). Networks without a counterpart are
refused with the reason (:data:`NO_COUNTERPART`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from videoperlin.errors import CheckpointError, ConfigError
from videoperlin.models.architectures.resnet3d import (
    DEPTHS,
    FAMILY_NAMES,
    STAGE_WIDTHS,
    Bottleneck,
    VideoResNet,
    model_name,
    split_name,
)
from videoperlin.models.from_3d_resnets_pytorch import model_from_hara_state
from videoperlin.models.registry import create_model

FRAMEWORKS = tuple(FAMILY_NAMES)
#: Why a family has no counterpart in a framework.
NO_COUNTERPART = {
    ("mmaction2", "r2p1d"): "mmaction2's ResNet2Plus1d factorises its 1x1x1 convolutions too (the projection "
    "shortcuts become conv_s, bn_s, ReLU, conv_t), where ours are single 1x1x1 convolutions",
    ("hara", "mc3"): "3D-ResNets-PyTorch has no mixed-convolution ResNet",
}

_CONV = re.compile(r"(?P<block>layer\d+\.\d+\.)?(?P<kind>conv|bn)(?P<n>\d)(?P<half>_s|_t)?\.(?P<rest>.+)")
_TORCHVISION_STEM = {
    ("conv", ""): "stem.0",
    ("bn", ""): "stem.1",
    ("conv", "_s"): "stem.0",
    ("bn", "_s"): "stem.1",
    ("conv", "_t"): "stem.3",
    ("bn", "_t"): "stem.4",
}
_TORCHVISION_BLOCK = {
    ("conv", ""): ".0",
    ("bn", ""): ".1",
    ("conv", "_s"): ".0.0",
    ("bn", "_s"): ".0.1",
    ("conv", "_t"): ".0.3",
    ("bn", "_t"): ".1",
}
_MMACTION2 = {
    ("conv", ""): ".conv",
    ("bn", ""): ".bn",
    ("conv", "_s"): ".conv.conv_s",
    ("bn", "_s"): ".conv.bn_s",
    ("conv", "_t"): ".conv.conv_t",
    ("bn", "_t"): ".bn",
}


def check_framework(framework: str) -> str:
    if framework not in FRAMEWORKS:
        raise ConfigError(f"framework {framework!r} is not supported; choose one of {', '.join(FRAMEWORKS)}")
    return framework


def their_key(key: str, framework: str) -> str:
    """The name ``framework`` gives our parameter ``key`` (see the module docstring)."""
    if framework == "hara":
        return key
    match = _CONV.fullmatch(key)
    if match:
        block, kind, n, half, rest = match["block"] or "", match["kind"], match["n"], match["half"] or "", match["rest"]
        if framework == "torchvision":
            name = _TORCHVISION_STEM[kind, half] if not block else f"{block}conv{n}{_TORCHVISION_BLOCK[kind, half]}"
            return f"{name}.{rest}"
        return f"backbone.{block}conv{n}{_MMACTION2[kind, half]}.{rest}"
    if framework == "mmaction2":
        if key.startswith("fc."):
            return "cls_head.fc_cls." + key[3:]
        return "backbone." + key.replace(".downsample.0.", ".downsample.conv.").replace(
            ".downsample.1.", ".downsample.bn."
        )
    return key


def family_of(model: VideoResNet) -> str:
    """``r3d``, ``mc3`` or ``r2p1d``."""
    return split_name(model.config["name"])[0]


def _required_options(framework: str, family: str) -> dict[str, Any]:
    """The model options ``framework``'s network of ``family`` has (options absent here are free)."""
    common = {"shortcut": "B", "temporal_padding": "zeros"}
    if framework == "torchvision":
        two_plus_one = {"mid_planes": "per_block", "stem_mid_planes": 45} if family == "r2p1d" else {}
        return {
            **common,
            "conv1_t_size": 3,
            "conv1_t_stride": 1,
            "no_max_pool": True,
            "in_channels": 3,
            "widen_factor": 1.0,
            **two_plus_one,
        }
    mid = {"mid_planes": "per_conv", "stem_mid_planes": None}
    if framework == "mmaction2":
        return {**common, **mid, "no_max_pool": False, "max_pool": "1x3x3"}
    return {"temporal_padding": "zeros", **mid, "max_pool": "3x3x3"}


def check_corresponds(model: VideoResNet, framework: str) -> None:
    """Raise a one-line error naming every option in which ``model`` differs from ``framework``'s network."""
    family = family_of(model)
    if family not in FAMILY_NAMES[check_framework(framework)]:
        raise ConfigError(
            f"{model.config['name']} has no counterpart in {framework}: {NO_COUNTERPART[framework, family]}"
        )
    have = model.config
    differences = [
        f"model.{k} is {have.get(k)!r} where {framework} has {v!r}"
        for k, v in _required_options(framework, family).items()
        if have.get(k) != v
    ]
    if differences:
        raise ConfigError(
            f"{model.config['name']} does not correspond to {framework}'s "
            f"{FAMILY_NAMES[framework][family]}: {'; '.join(differences)}"
        )


def key_map(model: VideoResNet, framework: str) -> dict[str, str]:
    """Our parameter name -> ``framework``'s, for every tensor of ``model`` (after checking it corresponds)."""
    check_corresponds(model, framework)
    return {key: their_key(key, framework) for key in model.state_dict()}


def framework_settings(model: VideoResNet, framework: str) -> dict[str, Any]:
    """How to build ``framework``'s model so it computes what ``model`` computes (for the sidecar
    JSON and docs/guide/models.md): the constructor and the settings that leave no trace in the weights."""
    check_corresponds(model, framework)
    c, (family, depth) = model.config, split_name(model.config["name"])
    if framework == "torchvision":
        builder = {"r3d": "r3d", "mc3": "mc3", "r2p1d": "r2plus1d"}[family]
        return {
            "model": f"torchvision.models.video.{builder}_{depth}(num_classes={c['num_classes']})"
            if depth == 18
            else f"torchvision.models.video.VideoResNet with the {builder} blocks and stem, "
            f"layers {list(DEPTHS[depth][1])}",
            "input": "clips (B, 3, T, H, W), RGB in [0, 1] normalised with the run's mean/std",
        }
    if framework == "hara":
        return {
            "model": f"{FAMILY_NAMES['hara'][family]}.generate_model({depth}, n_classes={c['num_classes']}, "
            f"n_input_channels={c['in_channels']}, conv1_t_size={c['conv1_t_size']}, "
            f"conv1_t_stride={c['conv1_t_stride']}, no_max_pool={c['no_max_pool']}, "
            f"shortcut_type='{c['shortcut']}', widen_factor={c['widen_factor']})"
        }
    return {
        "backbone": {
            "type": FAMILY_NAMES["mmaction2"][family],
            "depth": depth,
            "pretrained": None,
            "pretrained2d": False,
            "in_channels": c["in_channels"],
            "base_channels": max(1, int(STAGE_WIDTHS[0] * c["widen_factor"])),
            "conv1_kernel": [c["conv1_t_size"], 7, 7],
            "conv1_stride_t": c["conv1_t_stride"],
            "pool1_stride_t": 1,
            "with_pool2": False,
            "spatial_strides": [1, 2, 2, 2],
            "temporal_strides": [1, 1, 1, 1] if family == "mc3" else [1, 2, 2, 2],
            "inflate": [1, 0, 0, 0] if family == "mc3" else [1, 1, 1, 1],
            "inflate_style": "3x3x3",
            "norm_cfg": {"type": "BN3d", "eps": 1e-5},
        },
        "cls_head": {"type": "I3DHead", "num_classes": c["num_classes"], "in_channels": model.num_features},
    }


def export_state_dict(model: VideoResNet, framework: str) -> dict[str, Any]:
    """``model``'s weights as ``framework``'s model names them (for hara: its checkpoint dict with ``arch``)."""
    names = key_map(model, framework)
    state = {names[k]: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if framework == "hara":
        family, depth = split_name(model.config["name"])
        return {"arch": f"{FAMILY_NAMES['hara'][family]}-{depth}", "state_dict": state}
    return state


def own_layout(
    state: Mapping[str, Tensor], model: nn.Module, framework: str, source: str = "checkpoint", classifier: bool = True
) -> dict[str, Tensor]:
    """``framework``'s ``state`` renamed to ``model``'s keys, strictly: every tensor of ``model`` is there
    with its shape and ``state`` holds nothing else (BatchNorm batch counters may be absent). With
    ``classifier=False`` the head is left out on both sides (fine-tuning replaces it)."""
    if not isinstance(model, VideoResNet):
        raise CheckpointError(
            f"{source} is a {framework} video ResNet checkpoint, and {type(model).__name__} "
            f"({getattr(model, 'name', '?')}) is not a ResNet: choose a ResNet model (r3d18, ...) to load it"
        )
    names = key_map(model, framework)
    head = {their_key(k, framework) for k in names if k.startswith("fc.")}
    if not classifier:
        names = {k: v for k, v in names.items() if not k.startswith("fc.")}
        state = {k: v for k, v in state.items() if k not in head}
    wanted = model.state_dict()
    out: dict[str, Tensor] = {}
    for ours, theirs in names.items():
        if theirs not in state:
            if ours.endswith("num_batches_tracked"):
                continue
            raise CheckpointError(
                f"{source} lacks {theirs} (our {ours}), which {model.config['name']} as {framework} "
                f"builds it has: it is not a corresponding architecture"
            )
        if state[theirs].shape != wanted[ours].shape:
            raise CheckpointError(
                f"{source}: {theirs} has shape {tuple(state[theirs].shape)} where "
                f"{model.config['name']} ({framework} layout) needs {tuple(wanted[ours].shape)}"
            )
        out[ours] = state[theirs]
    extra = sorted(set(state) - set(names.values()))
    if extra:
        raise CheckpointError(
            f"{source} holds {extra[0]} ({len(extra)} tensors in all) that {model.config['name']} "
            f"has no place for: it is not a corresponding {framework} architecture"
        )
    return out


# ---- reading another framework's checkpoint -------------------------------------------------------


def detect_framework(state: Mapping[str, Tensor]) -> str | None:
    """``torchvision`` or ``mmaction2`` when ``state`` is laid out like theirs; None for ours (and hara's,
    whose names are ours). An mmaction2 backbone saved alone gets its ``backbone.`` prefix back first
    (:func:`with_backbone_prefix`)."""
    if "stem.0.weight" in state:
        return "torchvision"
    if "backbone.conv1.conv.weight" in state or "backbone.conv1.conv.conv_s.weight" in state:
        return "mmaction2"
    return None


def with_backbone_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """An mmaction2 backbone state dict (``conv1.conv.weight`` ...) as its recognizer names it."""
    if "conv1.conv.weight" in state or "conv1.conv.conv_s.weight" in state:
        return {k if k.startswith("cls_head.") else f"backbone.{k}": v for k, v in state.items()}
    return dict(state)


def _depth(blocks: list[int], bottleneck: bool) -> int:
    for depth, (block, layers) in DEPTHS.items():
        if list(layers) == blocks and (block is Bottleneck) == bottleneck:
            return depth
    raise ConfigError(f"no registered depth has {blocks} blocks per stage ({'bottleneck' if bottleneck else 'basic'})")


def infer_model_config(state: Mapping[str, Tensor], framework: str) -> dict[str, Any]:
    """Name, classes and options of our model that corresponds to ``framework``'s ``state``, read off
    the tensors (the options that leave no trace are the framework's, :func:`_required_options`)."""
    p = "" if framework == "torchvision" else "backbone."
    conv = ".0" if framework == "torchvision" else ".conv"
    stem_s, stem_t = (
        ("stem.0", "stem.3")
        if framework == "torchvision"
        else ("backbone.conv1.conv.conv_s", "backbone.conv1.conv.conv_t")
    )
    plain_stem = "stem.0" if framework == "torchvision" else "backbone.conv1.conv"
    blocks = [len({k.split(".")[1 + bool(p)] for k in state if k.startswith(f"{p}layer{i}.")}) for i in range(1, 5)]
    bottleneck = any(".conv3" in k for k in state)
    first_3x3 = state.get(f"{p}layer2.0.conv{2 if bottleneck else 1}{conv}.weight")
    if f"{stem_t}.weight" in state:
        family, stem = "r2p1d", state[f"{stem_t}.weight"]
    elif f"{plain_stem}.weight" in state:
        family, stem = (
            ("mc3" if first_3x3 is not None and first_3x3.ndim == 5 and first_3x3.shape[2] == 1 else "r3d"),
            state[f"{plain_stem}.weight"],
        )
    else:
        raise ConfigError(f"found no {framework} stem weights ({plain_stem}.weight); is it a {framework} video ResNet?")
    head = state.get("fc.weight" if framework == "torchvision" else "cls_head.fc_cls.weight")
    options = {
        k: v for k, v in _required_options(framework, family).items() if k not in ("widen_factor", "in_channels")
    }
    options.update(
        conv1_t_size=stem.shape[2],
        widen_factor=stem.shape[0] / STAGE_WIDTHS[0],
        in_channels=(state[f"{stem_s}.weight"] if family == "r2p1d" else stem).shape[1],
    )
    if family == "r2p1d" and framework == "torchvision":
        options["stem_mid_planes"] = state[f"{stem_s}.weight"].shape[0]
    return {
        "name": model_name(family, _depth(blocks, bottleneck)),
        "num_classes": head.shape[0] if head is not None else 400,
        **options,
    }


def import_state_dict(
    state: Mapping[str, Tensor], framework: str, source: str = "checkpoint", **options: Any
) -> VideoResNet:
    """Our model for ``framework``'s ``state``, every tensor loaded (``options`` override the inferred ones)."""
    state = with_backbone_prefix(state) if check_framework(framework) == "mmaction2" else dict(state)
    if framework == "hara":
        return model_from_hara_state(state, source, **options)
    config = {**infer_model_config(state, framework), **options}
    model = create_model(**config)
    assert isinstance(model, VideoResNet), "the frameworks' video networks are ResNets"
    model.load_state_dict(own_layout(state, model, framework, source), strict=False)
    return model
