"""The VPN label space: a class *is* a frequency triple (fx, fy, ft), optionally with a motion
(direction, speed).

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    """Class index <-> frequency triple (fx, fy, ft) [+ motion (direction, speed)], the product of per-axis lists.

    >>> space = LabelSpace(fx=[1, 2], fy=[1, 4], ft=[1])
    >>> len(space), space.frequencies(3), space.index(2, 4, 1), space.name(3)
    (4, (2, 4, 1), 3, 'x002_y004_t01')
    >>> moving = LabelSpace(fx=[4], fy=[4], ft=[1], direction=[0, 90], speed=[0, 2])
    >>> len(moving), moving.names()[1], moving.params(2)   # one static class per frequency triple
    (3, 'x004_y004_t01_d000_s2', {'fx': 4, 'fy': 4, 'ft': 1, 'direction': 90, 'speed': 2.0})
    """

    def __init__(
        self,
        fx: Sequence[int],
        fy: Sequence[int],
        ft: Sequence[int],
        direction: Sequence[int] | None = None,
        speed: Sequence[float] | None = None,
    ) -> None:
        self.fx = _validate_axis("fx", fx)
        self.fy = _validate_axis("fy", fy)
        self.ft = _validate_axis("ft", ft)
        if (direction is None) != (speed is None):
            raise ConfigError("direction and speed must be given together (e.g. direction 0,90,180,270 speed 0.5)")
        self.direction: tuple[int, ...] | None = None
        self.speed: tuple[float, ...] | None = None
        if direction is not None and speed is not None:
            self.direction, self.speed = _validate_motion(direction, speed)
        self._classes = list(self._enumerate())
        self._lookup = {c: k for k, c in enumerate(self._classes)}

    def _enumerate(self):
        motions = [(None, None)] if self.direction is None else list(itertools.product(self.direction, self.speed))
        for fx, fy, ft in itertools.product(self.fx, self.fy, self.ft):
            for d, s in motions:
                if s == 0 and d != self.direction[0]:
                    continue  # a static class has no direction: keep one
                yield (fx, fy, ft) if d is None else (fx, fy, ft, d, s)

    @property
    def has_motion(self) -> bool:
        return self.direction is not None

    @classmethod
    def preset(cls, name: str) -> LabelSpace:
        """One of the named presets in :data:`PRESETS` (``low``, ``high``, ``wide``, ``tiny``, ``motion``)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> LabelSpace:
        """Build from ``{"fx": [...], "fy": [...], "ft": [...]}`` (+ ``direction``, ``speed``), as :meth:`to_dict` writes."""
        missing = [axis for axis in AXIS_NAMES if axis not in spec]
        if missing:
            raise ConfigError(f"label space is missing {', '.join(missing)}; give fx, fy and ft lists")
        unknown = sorted(set(spec) - set(AXIS_NAMES) - set(MOTION_AXES))
        if unknown:
            raise ConfigError(
                f"label space has unknown axes {', '.join(unknown)}; axes are fx, fy, ft, direction, speed"
            )
        return cls(spec["fx"], spec["fy"], spec["ft"], spec.get("direction"), spec.get("speed"))

    @classmethod
    def from_file(cls, path: str | Path) -> LabelSpace:
        """Load a label space from a JSON or YAML file holding fx, fy and ft lists (and optionally direction, speed)."""
        spec = read_mapping_file(path, "label space file", "a mapping with fx, fy and ft lists")
        return cls.from_dict(spec)

    def to_dict(self) -> dict[str, list]:
        """The per-axis lists, JSON-serialisable (motion axes only when present)."""
        axes: dict[str, list] = {"fx": list(self.fx), "fy": list(self.fy), "ft": list(self.ft)}
        if self.has_motion:
            axes.update(direction=list(self.direction), speed=list(self.speed))  # type: ignore[arg-type]
        return axes

    def __len__(self) -> int:
        return len(self._classes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self._classes))

    def __repr__(self) -> str:
        return "LabelSpace(" + ", ".join(f"{k}={v}" for k, v in self.to_dict().items()) + ")"

    def _check_index(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self):
            raise ConfigError(f"class index {k!r} is out of range 0..{len(self) - 1}")
        return k

    def frequencies(self, k: int) -> tuple[int, int, int]:
        """The (fx, fy, ft) of class ``k``."""
        return self._classes[self._check_index(k)][:3]

    def motion(self, k: int) -> tuple[int, float]:
        """The (direction in degrees, speed in cells per clip) of class ``k``; (0, 0.0) without motion axes."""
        entry = self._classes[self._check_index(k)]
        return (entry[3], entry[4]) if len(entry) == 5 else (0, 0.0)

    def params(self, k: int) -> dict[str, Any]:
        """Every axis's value for class ``k``: ``{"fx", "fy", "ft"}``, plus ``"direction"``, ``"speed"`` when present."""
        names = AXIS_NAMES + (MOTION_AXES if self.has_motion else ())
        return dict(zip(names, self._classes[self._check_index(k)]))

    def index(self, fx: int, fy: int, ft: int, direction: int | None = None, speed: float | None = None) -> int:
        """The class index of these axis values (a static class matches any direction)."""
        key: tuple = (fx, fy, ft)
        if self.has_motion:
            key += (self.direction[0] if speed == 0 else direction, None if speed is None else float(speed))  # type: ignore[index]
        try:
            return self._lookup[key]
        except KeyError:
            raise ConfigError(f"{dict(zip(AXIS_NAMES + MOTION_AXES, key))} is not a class of {self!r}") from None

    def name(self, k: int) -> str:
        """Class name like ``x004_y012_t02`` or ``x004_y004_t01_d045_s2``."""
        fx, fy, ft = self.frequencies(k)
        base = f"x{fx:03d}_y{fy:03d}_t{ft:02d}"
        if not self.has_motion:
            return base
        direction, speed = self.motion(k)
        return f"{base}_d{direction:03d}_{speed_name(speed)}"

    def names(self) -> list[str]:
        """All class names in index order."""
        return [self.name(k) for k in range(len(self))]

    def max_frequencies(self) -> tuple[int, int, int]:
        """Largest (fx, fy, ft) in the space."""
        return max(self.fx), max(self.fy), max(self.ft)


def resolve_label_space(
    preset: str | None = None,
    fx: Sequence[int] | None = None,
    fy: Sequence[int] | None = None,
    ft: Sequence[int] | None = None,
    labels: str | Path | None = None,
    direction: Sequence[int] | None = None,
    speed: Sequence[float] | None = None,
) -> LabelSpace:
    """The label space named by exactly one source: a preset, the per-axis lists (fx, fy, ft, and
    optionally direction and speed), or a labels file; with none of them the :data:`DEFAULT_PRESET`.
    The command line and run configs both resolve through here, so they follow the same rule."""
    axes = {"fx": fx, "fy": fy, "ft": ft}
    lists = any(v is not None for v in (fx, fy, ft, direction, speed))
    given = [
        name
        for name, used in (("preset", preset is not None), ("fx/fy/ft", lists), ("labels", labels is not None))
        if used
    ]
    if len(given) > 1:
        raise ConfigError(
            f"give only one of preset, fx/fy/ft or labels to name the label space (got {' and '.join(given)})"
        )
    if given == ["fx/fy/ft"]:
        missing = [name for name, values in axes.items() if values is None]
        if missing:
            raise ConfigError(
                f"fx, fy and ft must be given together; {', '.join(missing)} missing (e.g. fx 1,2 fy 1,2 ft 1,4)"
            )
        return LabelSpace(fx, fy, ft, direction, speed)  # type: ignore[arg-type]
    if labels is not None:
        return LabelSpace.from_file(labels)
    return LabelSpace.preset(preset or DEFAULT_PRESET)
