"""Model registry: an architecture is one module that registers its names, as a family of synthetic clips is.

    register_model(Architecture(
        name="vit_tiny", family="vit", build=partial(VideoViT, TINY), Options=ViTOptions,
        stem="patch_embed.proj", classifier="head", frameworks=("videomae",),
        description="video transformer, width 192, 12 blocks"))

Everything else derives from the registry: :func:`create_model` and :func:`list_models`, the run
config's ``model`` section (every architecture's options join it; a field of another architecture
must keep its default), ``videoperlin models``, ``--model``, ``convert`` (which frameworks a
network maps to), the analysis (which module is the first convolution or patch embedding) and the
fine-tuning recipe (each network's :meth:`layer_id` for layer-wise learning-rate decay).

Built-in architectures are the modules of :mod:`videoperlin.models.architectures` (3D, (2+1)D and
mixed ResNets in ``resnet3d``, video transformers in ``vit``), found by :func:`load_models`; a
separate package adds its own through the ``videoperlin.models`` entry point group. Options that
several architectures share (``in_channels``, ``dropout``) are one field
(:class:`~videoperlin.models.options.CommonOptions`): a name may appear in several option classes
only with the same type, default and doc (checked at registration).

Every registered network offers ``num_classes``, ``config`` (name, classes and options: what rebuilds
it), ``reset_classifier(n)``, ``forward_features(x)``, ``forward_head(features)``, ``layer_id(name)``
and ``no_weight_decay(name)`` (:class:`VideoModel`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol, cast, runtime_checkable

from torch import Tensor, nn

from videoperlin.config_fields import shared_field_conflict, to_dict
from videoperlin.errors import ConfigError
from videoperlin.models.options import CommonOptions


@runtime_checkable
class VideoModel(Protocol):
    """What the engine, the loaders and the analysis use of a registered network."""

    @property
    def num_classes(self) -> int: ...

    @property
    def config(self) -> dict[str, Any]: ...

    def reset_classifier(self, num_classes: int) -> None: ...

    def forward_features(self, x: Tensor) -> Tensor: ...

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor: ...

    def layer_id(self, parameter: str) -> int: ...

    def no_weight_decay(self, parameter: str) -> bool: ...


@dataclass(frozen=True)
class Architecture:
    """A registered network: how to build it and what the rest of the toolkit needs to know of it."""

    name: str
    #: group in listings and the conversions' key (``r3d``, ``r2p1d``, ``mc3``, ``vit``)
    family: str
    #: ``build(num_classes, name, options)`` -> the network
    build: Callable[[int, str, Any], nn.Module]
    #: its options dataclass (fields: type, default, doc, check)
    Options: type[CommonOptions]
    #: the first convolution or patch embedding (kernels figure, tuning, numerics of the input)
    stem: str
    #: the classifier layer, dropped when fine-tuning on other classes
    classifier: str
    #: whether 2D ImageNet ResNet weights inflate into it (``videoperlin inflate``)
    inflates_from_2d: bool = False
    #: the frameworks ``videoperlin convert`` maps it to and from
    frameworks: tuple[str, ...] = ()
    #: whether it embeds clips into tokens (the masked-autoencoder objective masks them)
    tokens: bool = False
    description: str = ""

    def options(self, values: dict[str, Any]) -> CommonOptions:
        """Its options from keyword values; an unknown one names the valid ones."""
        names = [f.name for f in dataclasses.fields(self.Options)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(
                f"unknown model option(s) {', '.join(unknown)} for {self.name}; valid options are {', '.join(names)}"
            )
        return self.Options(**values)

    def option_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.Options)]


ARCHITECTURES: dict[str, Architecture] = {}
_LOADED: list[bool] = []
_SCHEMA_FROZEN: list[bool] = []


def register_model(arch: Architecture) -> Architecture:
    """Make ``arch`` available by its name (see the module docstring)."""
    if _SCHEMA_FROZEN:
        raise RuntimeError(
            f"model {arch.name!r} registered after the config schema was built; register models in "
            f"videoperlin.models.architectures or through the 'videoperlin.models' entry point"
        )
    if arch.name in ARCHITECTURES and ARCHITECTURES[arch.name] != arch:
        raise RuntimeError(f"two models are named {arch.name!r}")
    for other in ARCHITECTURES.values():
        conflict = shared_field_conflict(arch.Options, other.Options)
        if conflict:
            raise RuntimeError(
                f"model options {other.Options.__name__} and {arch.Options.__name__} both have {conflict!r} with "
                f"different types, defaults or docs; rename one or share the field (videoperlin.models.options)"
            )
    ARCHITECTURES[arch.name] = arch
    return arch


def load_models() -> dict[str, Architecture]:
    """Import the built-in architecture modules and the entry-point plug-ins (once); the registry."""
    if not _LOADED:
        _LOADED.append(True)
        from videoperlin.models import architectures

        for module in pkgutil.iter_modules(architectures.__path__):
            importlib.import_module(f"{architectures.__name__}.{module.name}")
        for entry in metadata.entry_points(group="videoperlin.models"):
            importlib.import_module(entry.value)
    return ARCHITECTURES


def freeze_schema() -> dict[str, Architecture]:
    """The registry, closed to new architectures (the config schema is being built from it)."""
    architectures = load_models()
    _SCHEMA_FROZEN.append(True)
    return architectures


def architecture(name: str) -> Architecture:
    """The architecture registered as ``name``; the error lists them."""
    registry = load_models()
    if name not in registry:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(registry)}")
    return registry[name]


def architecture_of(model: nn.Module) -> Architecture:
    """The registered architecture of a network built by :func:`create_model`."""
    name = getattr(model, "config", {}).get("name")
    if name is None:
        raise ConfigError(f"{type(model).__name__} is not a registered videoperlin model (it records no name)")
    return architecture(name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, in registration order."""
    return [name for name in load_models() if fnmatch.fnmatch(name, pattern)]


def create_model(name: str, num_classes: int = 400, **options: Any) -> nn.Module:
    """Build a registered model; ``options`` are the fields of its architecture's options class."""
    arch = architecture(name)
    return arch.build(num_classes, name, arch.options(options))


def model_options(name: str, options: dict[str, Any]) -> CommonOptions:
    """The options of model ``name`` from keyword values (an unknown one names the valid ones)."""
    return architecture(name).options(options)


def create_model_config(name: str, num_classes: int = 400, **options: Any) -> dict[str, Any]:
    """The ``model.config`` that :func:`create_model` records: name, classes and every option spelled
    out (so a record written before an option existed compares equal when it used the default)."""
    return {"name": name, "num_classes": num_classes, **to_dict(model_options(name, options))}


def normalize_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored ``model.config`` as :func:`create_model` would record it today (missing options get their defaults)."""
    return create_model_config(**config)


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a model from its ``model.config`` dict."""
    config = dict(config)
    try:
        name = config.pop("name")
    except KeyError:
        raise ConfigError("model config has no 'name'; it must come from model.config") from None
    return create_model(name, **config)


def stem_of(model: nn.Module) -> nn.Conv3d:
    """The first convolution or patch embedding of a registered network (its architecture's ``stem``)."""
    stem = model.get_submodule(architecture_of(model).stem)
    if not isinstance(stem, nn.Conv3d):
        raise ConfigError(f"{architecture_of(model).name}'s stem {architecture_of(model).stem} is not a 3D convolution")
    return stem


def as_video_model(model: nn.Module) -> VideoModel:
    """``model`` seen through :class:`VideoModel` (what a registered network offers)."""
    return cast(VideoModel, model)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
