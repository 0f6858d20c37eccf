"""Formula families: how a family of synthetic videos plugs into the toolkit.

A family is one module that defines a :class:`Family` subclass and decorates it with
:func:`register`::

    @register
    class Flicker(Family):
        name = "flicker"
        Options = FlickerOptions      # rendering options: Checked fields (type, default, doc, check)
        Labels = FlickerLabels        # its label axes as list fields (plus the shared preset / labels)
        presets = {"slow": {"rate": [1, 2]}, "fast": {"rate": [4, 8]}}
        default_preset = "slow"

        def layout(self) -> DrawLayout: ...            # what it draws per clip (vpn/draws.py)
        def render(self, draws, labels) -> Tensor: ...  # (B, C, T, H, W) in [0, 1], C = 1 or 3, any device

Everything else comes from those declarations: the ``synthetic`` section of the run config (its fields
join :class:`~videoperlin.train.config.SyntheticConfig`), the ``generate``/``preview`` flags, the label
space and class names, ``dataset.json``, ``videoperlin config`` and the transfer study's
``pretrain_arms`` (``{synthetic: {family: flicker, preset: fast}}``). Where families share an option
(``label_mode``, ``rng``, a colour option), they share the field: a name may appear in several
families only with the same type, default and doc (checked at registration).

Built-in families are the modules of :mod:`videoperlin.vpn.families`, found and imported by
:func:`load_families`; a separate package adds its own through the ``videoperlin.families`` entry
point group (``[project.entry-points."videoperlin.families"] flicker = "mypkg.flicker"``). Families
must be registered before :mod:`videoperlin.train.config` builds the config schema; registering
later is an error, not a silently missing option.

Labels: every family's label space is a :class:`~videoperlin.vpn.labels.LabelSpace` of its axis lists,
named by the one rule of :func:`~videoperlin.vpn.labels.choose_axes`. A clip's class is
``index % classes`` (balanced), chosen by the dataset, not the family.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from torch import Tensor

from videoperlin.config_fields import Checked, in_range, option
from videoperlin.errors import ConfigError
from videoperlin.vpn.draws import ClipDraws, DrawLayout
from videoperlin.vpn.labels import FREQUENCY_NAMES, LabelSpace, check_preset, choose_axes, speed_name

#: Training target of a clip: its class, or (a control for transfer studies) a random class.
LabelMode = Literal["class", "shuffled"]
#: Where a clip's random numbers come from (:mod:`videoperlin.vpn.draws`).
RNG = Literal["generator", "counter"]


@dataclass
class SourceOptions(Checked):
    """Options every family has: the training target and the random back-end."""

    label_mode: LabelMode = option(
        "class",
        "training target: the clip's class, or a random class per clip (shuffled-label control)",
        renamed={"frequency": "class"},  # before 0.4
    )
    rng: RNG = option(
        "generator",
        "random numbers of a clip: 'generator' = its own seeded CPU generator (the "
        "original format); 'counter' = a hash of (seed, index, draw) computed for the "
        "whole batch on the render device, the same on CPU and GPU (fast on GPUs; "
        "other clips than 'generator')",
    )

    @classmethod
    def names(cls) -> list[str]:
        """The option names, in field order."""
        return [f.name for f in dataclasses.fields(cls)]

    if TYPE_CHECKING:
        # A family receives the one clip source (vpn/source.py), a dataclass made at import time from every
        # registered family's options: its fields are not known statically, so the type checker lets a
        # family read its own option names from it.
        def __getattr__(self, name: str) -> Any: ...


@dataclass
class ColourOption(Checked):
    """The colour option families share (one field, so ``synthetic.colour`` means the same for each)."""

    colour: float = option(
        0.0,
        "colour: each clip (or layer) gets a random hue and a saturation drawn from U(0, c); 0 keeps the clips gray",
        in_range(0, 1),
    )


@dataclass
class LabelSource(Checked):
    """How a label space is named: a preset of the family, or a file of its axis lists (a family's
    ``Labels`` adds the axis lists themselves as fields)."""

    preset: str | None = option(
        None,
        "named label space of the family (videoperlin families lists them; "
        "the family's default when no other source is given)",
    )
    labels: str | None = option(None, "JSON/YAML file holding the family's axis lists")


def motion_grid(axes: dict[str, list], prefix: str, kinds: dict[str, Sequence[str]] | None = None) -> LabelSpace:
    """The class grid of a family whose label includes a motion: ``{prefix}_direction`` (degrees, 0 right,
    90 up) x ``{prefix}_speed`` (frame widths crossed over the clip, in [0, 1]; 0 = still, one class per
    value of the other axes), named ``d045`` and ``s0p3``; ``kinds``: axes of named kinds (a shape, a
    texture) and the names each allows, written as they are in class names."""
    direction, speed = f"{prefix}_direction", f"{prefix}_speed"
    for axis, allowed in (kinds or {}).items():
        unknown = sorted(set(axes[axis]) - set(allowed))
        if unknown:
            raise ConfigError(f"{axis} {unknown} are not among its kinds; choose from {', '.join(allowed)}")
    formats: dict[str, Callable[[Any], str]] = {direction: FREQUENCY_NAMES["direction"], speed: speed_name}
    formats.update((axis, str) for axis in kinds or {})
    grid = LabelSpace(axes, still=(direction, speed), names=formats)
    if any(not 0 <= s <= 1 for s in grid.axes[speed]):
        raise ConfigError(f"{speed} {grid.axes[speed]} must be frame widths in [0, 1]")
    return grid


def motion_arrow(params: dict[str, Any], prefix: str, width: int) -> tuple[float, float]:
    """(dx, dy) in pixels over the clip (+y up) of a :func:`motion_grid` class's motion, for previews."""
    angle = math.radians(params[f"{prefix}_direction"])
    distance = params[f"{prefix}_speed"] * width
    return math.cos(angle) * distance, math.sin(angle) * distance


class Family:
    """A formula family of synthetic videos (module docstring): its declarations, and the renderer of
    one dataset's clips (``space``, ``options`` and the clip size are fixed at construction)."""

    name: ClassVar[str]
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    Labels: ClassVar[type[LabelSource]] = LabelSource
    presets: ClassVar[dict[str, dict[str, list]]] = {}
    default_preset: ClassVar[str]
    description: ClassVar[str] = ""
    #: Bytes at the peak of :meth:`render` per output pixel of one clip and frame (intermediates included): what
    #: the up-front memory check counts. The default is the float32 output alone; ``benchmarks/render_memory.py``
    #: measures each family's.
    render_bytes_per_pixel: ClassVar[int] = 4

    def __init__(self, space: LabelSpace, options: SourceOptions, frames: int, height: int, width: int) -> None:
        self.space, self.options = space, options
        self.frames, self.height, self.width = frames, height, width

    # ---- label spaces ------------------------------------------------------------------------

    @classmethod
    def axis_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls.Labels) if f.name not in ("preset", "labels")]

    @classmethod
    def label_space(cls, choice: LabelSource) -> LabelSpace:
        """The space named by exactly one of: a preset, the axis lists, a labels file; with none the family's
        default preset (:func:`~videoperlin.vpn.labels.choose_axes`)."""
        lists = {axis: getattr(choice, axis) for axis in cls.axis_names()}
        axes = choose_axes(cls.name, cls.presets, cls.default_preset, choice.preset, lists, choice.labels)
        return cls.space_from_dict(axes)

    @classmethod
    def check_preset(cls, name: str) -> None:
        """Refuse a name that is not one of the family's presets."""
        check_preset(cls.name, cls.presets, name)

    @classmethod
    def space_from_dict(cls, axes: dict[str, Any]) -> LabelSpace:
        """The label space of axis lists (as ``space.to_dict()`` writes them): every axis, no other."""
        missing = [a for a in cls.axis_names() if a not in axes]
        unknown = sorted(set(axes) - set(cls.axis_names()))
        if missing or unknown:
            raise ConfigError(
                f"{cls.name} label axes are {', '.join(cls.axis_names())}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else "")
            )
        return LabelSpace({a: list(axes[a]) for a in cls.axis_names()})

    # ---- rendering ---------------------------------------------------------------------------

    def check(self) -> None:
        """Raise a :class:`ConfigError` if this space and these options cannot be rendered at this size."""

    def arrow(self, label: int) -> tuple[float, float] | None:
        """The motion class ``label`` stands for, as (dx, dy) pixels over the clip (+y up), for previews;
        None when the class is not a motion."""
        return None

    def layout(self) -> DrawLayout:
        raise NotImplementedError

    def render(self, draws: ClipDraws, labels: Tensor) -> Tensor:
        """Clips (B, C, T, H, W) in [0, 1] of classes ``labels`` (B,) on ``draws.device``."""
        raise NotImplementedError


# ---- the registry ------------------------------------------------------------------------------

FAMILIES: dict[str, type[Family]] = {}
_LOADED: list[bool] = []
#: Set once the config schema was built from the registry (train/config.py): later registrations are errors.
_SCHEMA_FROZEN: list[bool] = []


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make ``cls`` available by ``cls.name`` (see the module docstring)."""
    if _SCHEMA_FROZEN:
        raise RuntimeError(
            f"family {cls.name!r} registered after the config schema was built; register families "
            f"in videoperlin.vpn.families or through the 'videoperlin.families' entry point"
        )
    if cls.name in FAMILIES and FAMILIES[cls.name] is not cls:
        raise RuntimeError(f"two families are named {cls.name!r}: {FAMILIES[cls.name].__module__} and {cls.__module__}")
    for other in FAMILIES.values():
        _check_shared_fields(cls, other)
    if cls.default_preset not in cls.presets:
        raise RuntimeError(f"family {cls.name}: default_preset {cls.default_preset!r} is not one of its presets")
    FAMILIES[cls.name] = cls
    return cls


def _check_shared_fields(new: type[Family], old: type[Family]) -> None:
    for group in ("Options", "Labels"):
        mine = {f.name: f for f in dataclasses.fields(getattr(new, group))}
        for f in dataclasses.fields(getattr(old, group)):
            twin = mine.get(f.name)
            if twin is not None and (twin.type, twin.default, twin.metadata.get("doc")) != (
                f.type,
                f.default,
                f.metadata.get("doc"),
            ):
                raise RuntimeError(
                    f"families {old.name} and {new.name} both have option {f.name!r} with different "
                    f"types, defaults or docs; rename one or share the field"
                )


def load_families() -> dict[str, type[Family]]:
    """Import the built-in family modules and the entry-point plug-ins (once); the registry."""
    if not _LOADED:
        _LOADED.append(True)
        from videoperlin.vpn import families

        for module in pkgutil.iter_modules(families.__path__):
            importlib.import_module(f"{families.__name__}.{module.name}")
        for entry in metadata.entry_points(group="videoperlin.families"):
            importlib.import_module(entry.value)
    return FAMILIES


def get_family(name: str) -> type[Family]:
    """The family registered as ``name``; the error lists them."""
    families = load_families()
    if name not in families:
        raise ConfigError(f"unknown family {name!r}; families are {', '.join(sorted(families))}")
    return families[name]


def freeze_schema() -> dict[str, type[Family]]:
    """The registry, closed to new families (the config schema is being built from it)."""
    families = load_families()
    _SCHEMA_FROZEN.append(True)
    return families
