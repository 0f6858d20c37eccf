"""Model registry: ``create_model(name, num_classes=..., **options)`` and ``list_models(pattern)``.

Names are ``r3d{depth}`` (full 3x3x3 convolutions) and ``r2p1d{depth}`` ((2+1)D factorised), for
depths 10, 18, 34 (BasicBlock) and 50, 101, 152, 200 (Bottleneck), with the block counts of
3D-ResNets-PyTorch.
"""

from __future__ import annotations

import fnmatch
from dataclasses import fields
from typing import Any

from videoperlin.errors import ConfigError
from videoperlin.models.resnet3d import BasicBlock, Bottleneck, ModelOptions, VideoResNet
from videoperlin.utils.fields import to_dict

DEPTHS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
    200: (Bottleneck, (3, 24, 36, 3)),
}
FAMILIES = {"r3d": "3d", "r2p1d": "2plus1d"}
OPTIONS = tuple(f.name for f in fields(ModelOptions))


def _registry() -> dict[str, tuple[str, int]]:
    return {f"{family}{depth}": (conv, depth) for family, conv in FAMILIES.items() for depth in DEPTHS}


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, in family then depth order."""
    return [name for name in _registry() if fnmatch.fnmatch(name, pattern)]


def create_model(name: str, num_classes: int = 400, **options: Any) -> VideoResNet:
    """Build a registered model; ``options`` are the fields of :class:`~videoperlin.models.resnet3d.ModelOptions`."""
    registry = _registry()
    if name not in registry:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(registry)}")
    config = create_model_config(name, num_classes, **options)
    conv_type, depth = registry[name]
    block, layers = DEPTHS[depth]
    arguments = {k: v for k, v in config.items() if k != "name"}
    return VideoResNet(block, layers, conv_type=conv_type, config=config, **arguments)


def create_model_config(name: str, num_classes: int = 400, **options: Any) -> dict[str, Any]:
    """The ``model.config`` that :func:`create_model` records: name, classes and every option spelled
    out (so a record written before an option existed compares equal when it used the default)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"unknown model option(s) {', '.join(unknown)}; valid options are {', '.join(OPTIONS)}")
    return {"name": name, "num_classes": num_classes, **to_dict(ModelOptions(**options))}


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
