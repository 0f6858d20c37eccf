"""videoperlin: spatiotemporal initialization of video networks with Video Perlin Noise (VPN) and other
synthetic clips.

The main objects are importable from here (:mod:`videoperlin.api`): ``create_model``, ``list_models``,
``load_model``, ``SyntheticClips``, ``VideoDataset``, ``pretrain``, ``finetune``, ``Run``. They load on
first use, so ``import videoperlin`` stays light.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("videoperlin")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

#: Public name -> the module that defines it.
_EXPORTS = {
    "create_model": "videoperlin.models",
    "list_models": "videoperlin.models",
    "load_model": "videoperlin.models.pretrained",
    "load_pretrained": "videoperlin.models.pretrained",
    "save_pretrained": "videoperlin.models.hub",
    "from_pretrained": "videoperlin.models.hub",
    "SyntheticClips": "videoperlin.api",
    "VideoDataset": "videoperlin.api",
    "pretrain": "videoperlin.api",
    "finetune": "videoperlin.api",
    "Run": "videoperlin.api",
    "load_config": "videoperlin.train.config",
    "recipe_config": "videoperlin.train.config",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'videoperlin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
