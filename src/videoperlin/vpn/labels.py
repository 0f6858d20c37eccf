"""Label spaces: :class:`LabelSpace`, the one class of every family (axes, a still class, class names),
and perlin's frequency spaces expressed in it (:func:`frequency_space`): a class *is* a frequency triple
(fx, fy, ft), optionally with a motion (direction, speed).

A space is the Cartesian product of per-axis lists, first axis outermost, last fastest; a motion's speed-0
class has no direction, so a space with a still rule keeps one still class per value of the other axes
(the first listed direction). A clip's class is ``index % len(space)`` (balanced), chosen by the dataset.
Naming a space (a preset, the axis lists or a labels file: exactly one) is :func:`choose_axes`, the one rule
every family follows.

Frequencies are lattice cells per clip extent (per frame width, per frame height, per clip
length), so a label means the same thing at 112 or 224 pixels. The class set is the Cartesian
product of the per-axis lists, indexed with fx outermost and the last axis innermost; for the
three frequency axes ``k = (ix * len(fy) + iy) * len(ft) + it``.

**Motion** (optional axes ``direction`` and ``speed``, given together). The whole field drifts:
``n(t, y, x) = P(t, y - v_y t, x - v_x t)`` while it still evolves at ft (:mod:`videoperlin.noise`).

* ``direction`` in whole degrees on the screen: 0 = moving right (+x), 90 = moving up (towards row 0),
  180 = left, 270 = down.
* ``speed`` in lattice cells per clip along the direction of motion: over the T frames of a clip the
  field travels ``speed`` cells of its own texture (pixels: ``speed`` times the cell size along
  the direction, ``W / fx`` moving right, ``H / fy`` moving up, in between diagonally), so the
  pixel direction is exact on anisotropic textures too. Like the frequencies it means the same at
  any frame size, and ``speed / ft`` compares motion with evolution in the same unit: a field that
  crosses 2 cells while it evolves through 1 (speed 2, ft 1) is seen to move; one that crosses half
  a cell is mostly seen to change. 0 = static; a static class has no direction, so a space keeps
  one static class per frequency triple (recorded with the first listed direction).

Names: ``x004_y012_t02``, with motion ``x004_y004_t01_d045_s2`` (``s0p5`` for 0.5 cells per clip).
:meth:`LabelSpace.params` gives every axis's value of a class as a dict.

Presets are plain data in :data:`PRESETS` (the paper publishes no lists; these are our choice):

``low``    fx, fy in {1, 2, 3, 4, 6, 8}, ft in {1, 2, 4}: 108 classes of coarse textures (at
           112 px a cell spans 14 to 112 px). The paper's low-frequency variant, which transferred
           better.
``high``   fx, fy in {8, 10, 12, 16, 20, 24}, ft in {1, 2, 4}: 108 classes of fine textures
           (cells of 4.7 to 14 px at 112), reaching the paper's ``x024_y024``. Same temporal list and
           class count as ``low``, so the two differ only in the spatial band.
``wide``   fx, fy in {1, 2, 3, 4, 6, 8, 12, 16, 24}, ft in {1, 2, 4, 8}: 324 classes spanning both
           bands and faster motion; nine spatial values like the rows of the paper's teaser.
``tiny``   fx, fy in {1, 4}, ft in {1, 4}: 8 well-separated classes for tests and smoke runs.
``motion`` fx, fy in {2, 4, 8}, ft = 1, direction in {0, 45, ..., 315}, speed in {0, 2, 4}:
           9 x (8 x 2 + 1) = 153 classes of coherently moving textures (ours, beyond the paper).
           Eight directions 45 deg apart, the usual resolution of V1 direction tuning. Speeds of 2
           and 4 cells per clip against ft = 1: the motion is 2-4 times the texture's own change,
           so the direction is visible at every scale (at 0.5 cells per clip it is not: the
           displacement measured between frames then scatters by up to 75 deg), and at most 1/4 cell
           per frame, so nothing aliases in time. In pixels, 1 to 8 px/frame at 64 px (2 to 14 at 112),
           faster for coarser textures, as near objects move faster on the retina. The static class
           makes "does it move" part of the task. fx and fy span the middle of the ``low`` band and
           include anisotropic (oriented) textures, whose motion is what direction judgements are
           made of; ft = 1 keeps each texture coherent while it moves.

Values are roughly log-spaced: neighbouring classes differ by a ratio, which is how both the
texture statistics and a CNN's receptive fields scale. 24 cells is the finest spatial value, a
period of about 4.7 px at 112 px, comfortably above the Nyquist limit; ft <= 4 keeps at least 4
frames per cell in 16-frame clips (``wide`` goes to 2).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from videoperlin.config_fields import FieldError
from videoperlin.errors import ConfigError
from videoperlin.utils.text import read_mapping_file

AXIS_NAMES = ("fx", "fy", "ft")
MOTION_AXES = ("direction", "speed")
#: Fastest speed a label may ask for, in cells per clip (1/2 cell per frame at 16 frames).
MAX_SPEED = 8.0

PRESETS: dict[str, dict[str, list]] = {
    "low": {"fx": [1, 2, 3, 4, 6, 8], "fy": [1, 2, 3, 4, 6, 8], "ft": [1, 2, 4]},
    "high": {"fx": [8, 10, 12, 16, 20, 24], "fy": [8, 10, 12, 16, 20, 24], "ft": [1, 2, 4]},
    "wide": {"fx": [1, 2, 3, 4, 6, 8, 12, 16, 24], "fy": [1, 2, 3, 4, 6, 8, 12, 16, 24], "ft": [1, 2, 4, 8]},
    "tiny": {"fx": [1, 4], "fy": [1, 4], "ft": [1, 4]},
    "motion": {
        "fx": [2, 4, 8],
        "fy": [2, 4, 8],
        "ft": [1],
        "direction": [0, 45, 90, 135, 180, 225, 270, 315],
        "speed": [0, 2, 4],
    },
}
#: The label space used when none is named.
DEFAULT_PRESET = "low"


def _validate_axis(axis: str, values: Sequence[Any]) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ConfigError(f"{axis} must be a non-empty list of positive integers, got {values!r}")
    checked = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(
                    f"{axis} frequency {value!r} is not an integer; frequencies are whole cells per clip extent"
                )
        if value < 1:
            raise ConfigError(f"{axis} frequency {value} must be >= 1 (cells per clip extent)")
        checked.append(value)
    if len(set(checked)) != len(checked):
        raise ConfigError(f"{axis} lists a frequency twice: {list(values)}; each class must be distinct")
    return tuple(checked)


def _validate_motion(directions: Sequence[Any], speeds: Sequence[Any]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    for axis, values in (("direction", directions), ("speed", speeds)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ConfigError(f"{axis} must be a non-empty list, got {values!r}")
    if any(isinstance(d, bool) or not float(d).is_integer() or not 0 <= d < 360 for d in directions):
        raise ConfigError(f"direction {list(directions)} must hold whole degrees in 0..359 (0 = right, 90 = up)")
    if any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= MAX_SPEED for s in speeds):
        raise ConfigError(f"speed {list(speeds)} must hold lattice cells per clip in [0, {MAX_SPEED}] (0 = static)")
    checked = tuple(int(d) for d in directions), tuple(float(s) for s in speeds)
    names = [speed_name(s) for s in checked[1]]
    if len(set(checked[0])) != len(checked[0]) or len(set(names)) != len(names):
        raise ConfigError(
            f"direction {list(directions)} / speed {list(speeds)} list a value twice "
            f"(speeds are told apart to 0.01 cells per clip)"
        )
    return checked


def speed_name(speed: float) -> str:
    """``s2``, ``s0p5``: a speed as it appears in class names (filesystem-safe)."""
    return "s" + f"{round(speed, 2):g}".replace(".", "p")


class LabelSpace:
    """Class index <-> one value per axis: the product of per-axis lists, last axis fastest (module docstring).

    ``still = (direction_axis, speed_axis)``: a class of speed 0 has no direction, so only the first listed
    direction is kept for it. ``names``: how an axis's value reads in class names (default ``<axis><value>``).
    An axis's values are also an attribute (``space.fx``).

    >>> grid = LabelSpace({"rate": [1, 2], "phase": [0, 90]})
    >>> len(grid), grid.params(3), grid.name(1)
    (4, {'rate': 2, 'phase': 90}, 'rate1_phase90')
    >>> moving = frequency_space(fx=[4], fy=[4], ft=[1], direction=[0, 90], speed=[0, 2])
    >>> len(moving), moving.names()[1], moving.params(2)   # one still class per frequency triple
    (3, 'x004_y004_t01_d000_s2', {'fx': 4, 'fy': 4, 'ft': 1, 'direction': 90, 'speed': 2.0})
    """

    def __init__(
        self,
        axes: Mapping[str, Sequence[Any]],
        still: tuple[str, str] | None = None,
        names: Mapping[str, Callable[[Any], str]] | None = None,
    ) -> None:
        if not axes or any(isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not v for v in axes.values()):
            raise ConfigError(f"label axes {dict(axes)!r} must map each axis name to a non-empty list")
        for axis, values in axes.items():
            if len(set(map(repr, values))) != len(values):
                raise ConfigError(f"label axis {axis} lists a value twice: {list(values)}")
        self.axes = {axis: list(values) for axis, values in axes.items()}
        self.still, self.formats = still, dict(names or {})
        classes = list(itertools.product(*self.axes.values()))
        if still is not None:
            d, v = (list(self.axes).index(a) for a in still)
            classes = [c for c in classes if c[v] != 0 or c[d] == self.axes[still[0]][0]]
        self._classes = classes
        self._lookup = {c: k for k, c in enumerate(classes)}

    def __getattr__(self, name: str) -> tuple:
        axes = self.__dict__.get("axes", {})
        if name in axes:
            return tuple(axes[name])
        raise AttributeError(f"label space has no axis {name!r}; its axes are {', '.join(axes)}")

    def __len__(self) -> int:
        return len(self._classes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSpace) and (self.axes, self.still) == (other.axes, other.still)

    def __hash__(self) -> int:
        return hash(tuple(self._classes))

    def __repr__(self) -> str:
        return "LabelSpace(" + ", ".join(f"{k}={v}" for k, v in self.axes.items()) + ")"

    def _check_index(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self):
            raise ConfigError(f"class index {k!r} is out of range 0..{len(self) - 1}")
        return k

    def params(self, k: int) -> dict[str, Any]:
        """Every axis's value of class ``k``."""
        return dict(zip(self.axes, self._classes[self._check_index(k)]))

    def name(self, k: int) -> str:
        """Class name: each axis's value as its format writes it, joined by ``_`` (``x004_y012_t02``)."""
        return "_".join(self._value_name(axis, value) for axis, value in self.params(k).items())

    def _value_name(self, axis: str, value: Any) -> str:
        if axis in self.formats:
            return self.formats[axis](value)
        return f"{axis}{value:g}" if isinstance(value, float) else f"{axis}{value}"

    def names(self) -> list[str]:
        """All class names in index order."""
        return [self.name(k) for k in range(len(self))]

    def index(self, *values: Any, **named: Any) -> int:
        """The class of these axis values (in axis order, or by name; a still class matches any direction)."""
        given = {**dict(zip(self.axes, values)), **named}
        if self.still is not None and given.get(self.still[1]) == 0:
            given[self.still[0]] = self.axes[self.still[0]][0]
        try:
            return self._lookup[tuple(given[axis] for axis in self.axes)]
        except KeyError:
            raise ConfigError(f"{given} is not a class of {self!r}") from None

    def to_dict(self) -> dict[str, list]:
        """The per-axis lists, JSON-serialisable (what ``dataset.json`` records)."""
        return {axis: list(values) for axis, values in self.axes.items()}


def choose_axes(
    family: str,
    presets: Mapping[str, Mapping[str, list]],
    default: str,
    preset: str | None = None,
    lists: Mapping[str, Any] | None = None,
    labels: str | Path | None = None,
) -> dict[str, Any]:
    """The axis lists named by exactly one of a preset, the axis lists or a labels file (JSON/YAML); with none,
    ``default``: the rule of every family (``lists`` holds each axis's list or None)."""
    given_lists = {axis: v for axis, v in (lists or {}).items() if v is not None}
    given = [n for n, used in (("preset", preset), ("axis lists", given_lists), ("labels", labels)) if used]
    if len(given) > 1:
        raise ConfigError(
            f"give only one of preset, the {family} axis lists ({', '.join(lists or {})}) or labels "
            f"(got {' and '.join(given)})"
        )
    if given_lists:
        return given_lists
    if labels is not None:
        return read_mapping_file(labels, "label space file", "a mapping of the family's axis lists")
    return dict(check_preset(family, presets, preset or default))


def check_preset(family: str, presets: Mapping[str, Mapping[str, list]], name: str) -> Mapping[str, list]:
    """The axis lists of preset ``name`` of ``family``; an unknown name is refused listing the presets."""
    if name not in presets:
        raise FieldError("preset", f"{name!r} is not a preset of family {family}; its presets: {', '.join(presets)}")
    return presets[name]


# ---- perlin's frequency spaces ------------------------------------------------------------------


def padded(prefix: str, digits: int, value: int) -> str:
    """``x004``: a whole value in a class name (module-level, so a label space pickles to worker processes)."""
    return f"{prefix}{value:0{digits}d}"


#: How perlin's axes read in class names: ``x004_y012_t02_d045_s2``.
FREQUENCY_NAMES: dict[str, Callable[[Any], str]] = {
    "fx": partial(padded, "x", 3),
    "fy": partial(padded, "y", 3),
    "ft": partial(padded, "t", 2),
    "direction": partial(padded, "d", 3),
    "speed": speed_name,
}


def frequency_space(
    fx: Sequence[int],
    fy: Sequence[int],
    ft: Sequence[int],
    direction: Sequence[int] | None = None,
    speed: Sequence[float] | None = None,
) -> LabelSpace:
    """Perlin's label space of these frequency lists (and motion, given together), checked."""
    axes: dict[str, Sequence[Any]] = {a: _validate_axis(a, v) for a, v in (("fx", fx), ("fy", fy), ("ft", ft))}
    if (direction is None) != (speed is None):
        raise ConfigError("direction and speed must be given together (e.g. direction 0,90,180,270 speed 0.5)")
    if direction is not None and speed is not None:
        axes["direction"], axes["speed"] = _validate_motion(direction, speed)
    still = MOTION_AXES if "direction" in axes else None
    return LabelSpace(axes, still=still, names=FREQUENCY_NAMES)


def frequency_space_from_dict(spec: Mapping[str, Any]) -> LabelSpace:
    """Perlin's space of ``{"fx": [...], "fy": [...], "ft": [...]}`` (+ ``direction``, ``speed``), as
    :meth:`LabelSpace.to_dict` writes it."""
    missing = [axis for axis in AXIS_NAMES if axis not in spec]
    if missing:
        raise ConfigError(f"perlin label space is missing {', '.join(missing)}; give fx, fy and ft lists")
    unknown = sorted(set(spec) - set(AXIS_NAMES) - set(MOTION_AXES))
    if unknown:
        raise ConfigError(
            f"perlin label space has unknown axes {', '.join(unknown)}; axes are fx, fy, ft, direction, speed"
        )
    return frequency_space(spec["fx"], spec["fy"], spec["ft"], spec.get("direction"), spec.get("speed"))


def frequency_preset(name: str) -> LabelSpace:
    """One of perlin's presets (:data:`PRESETS`: ``low``, ``high``, ``wide``, ``tiny``, ``motion``)."""
    return frequency_space_from_dict(check_preset("perlin", PRESETS, name))
