"""Model registry: ``create_model(name, num_classes=..., **options)`` and ``list_models(pattern)``.

Names are ``r3d{depth}`` (full 3x3x3 convolutions), ``r2p1d{depth}`` ((2+1)D factorised) and
``mc3_{depth}`` (mixed: 3D in the stem and first stage, 1x3x3 above; Tran et al. 2018, torchvision's
``mc3_18``; the underscore keeps family and depth apart), for depths 10, 18, 34 (BasicBlock) and 50, 101, 152, 200 (Bottleneck), with the block
counts of 3D-ResNets-PyTorch.
"""

from __future__ import annotations

import fnmatch
from dataclasses import fields
from typing import Any

from videoperlin.config_fields import to_dict
from videoperlin.errors import ConfigError
from videoperlin.models.resnet3d import BasicBlock, Bottleneck, ModelOptions, VideoResNet

DEPTHS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
    200: (Bottleneck, (3, 24, 36, 3)),
}
FAMILIES = {"r3d": "3d", "r2p1d": "2plus1d", "mc3": "mixed"}
OPTIONS = tuple(f.name for f in fields(ModelOptions))


def model_name(family: str, depth: int) -> str:
    """``r3d`` + 18 -> ``r3d18``; a family ending in a digit gets an underscore (``mc3_18``)."""
    return f"{family}{'_' if family[-1].isdigit() else ''}{depth}"


def split_name(name: str) -> tuple[str, int]:
    """(family, depth) of a registered model name."""
    for family in FAMILIES:
        depth = name[len(family) :].lstrip("_")
        if name.startswith(family) and depth.isdigit() and model_name(family, int(depth)) == name:
            return family, int(depth)
    raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(_registry())}")


def _registry() -> dict[str, tuple[str, int]]:
    return {model_name(family, depth): (conv, depth) for family, conv in FAMILIES.items() for depth in DEPTHS}


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, in family then depth order."""
    return [name for name in _registry() if fnmatch.fnmatch(name, pattern)]


def create_model(name: str, num_classes: int = 400, **options: Any) -> VideoResNet:
    """Build a registered model; ``options`` are the fields of :class:`~videoperlin.models.resnet3d.ModelOptions`."""
    registry = _registry()
    if name not in registry:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(registry)}")
    conv_type, depth = registry[name]
    block, layers = DEPTHS[depth]
    return VideoResNet(block, layers, conv_type, num_classes, name, model_options(options))


def model_options(options: dict[str, Any]) -> ModelOptions:
    """:class:`ModelOptions` from keyword options (an unknown one names the valid ones)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown model option(s) {', '.join(unknown)}; valid options are {', '.join(OPTIONS)}")
    return ModelOptions(**options)


def create_model_config(name: str, num_classes: int = 400, **options: Any) -> dict[str, Any]:
    """The ``model.config`` that :func:`create_model` records: name, classes and every option spelled
    out (so a record written before an option existed compares equal when it used the default)."""
    return {"name": name, "num_classes": num_classes, **to_dict(model_options(options))}


def normalize_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored ``model.config`` as :func:`create_model` would record it today (missing options get their defaults)."""
    return create_model_config(**config)


def model_from_config(config: dict[str, Any]) -> VideoResNet:
    """Rebuild a model from its ``model.config`` dict."""
    config = dict(config)
    try:
        name = config.pop("name")
    except KeyError:
        raise ConfigError("model config has no 'name'; it must come from model.config") from None
    return create_model(name, **config)


def count_parameters(model) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
