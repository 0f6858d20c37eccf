"""The VPN label space: a class *is* a frequency triple (fx, fy, ft).

Frequencies are lattice cells per clip extent (per frame width, per frame height, per clip
length), so a label means the same thing at 112 or 224 pixels. The class set is the Cartesian
product of three per-axis lists, indexed with fx outermost and ft innermost:
``k = (ix * len(fy) + iy) * len(ft) + it``.

Presets are plain data in :data:`PRESETS` (the paper publishes no lists; these are our choice):

``low``  fx, fy in {1, 2, 3, 4, 6, 8}, ft in {1, 2, 4}: 108 classes of coarse textures (at
         112 px a cell spans 14 to 112 px). The paper's low-frequency variant, which transferred
         better.
``high`` fx, fy in {8, 10, 12, 16, 20, 24}, ft in {1, 2, 4}: 108 classes of fine textures
         (cells of 4.7 to 14 px at 112), reaching the paper's ``x024_y024``. Same temporal list and
         class count as ``low``, so the two differ only in the spatial band.
``wide`` fx, fy in {1, 2, 3, 4, 6, 8, 12, 16, 24}, ft in {1, 2, 4, 8}: 324 classes spanning both
         bands and faster motion; nine spatial values like the rows of the paper's teaser.
``tiny`` fx, fy in {1, 4}, ft in {1, 4}: 8 well-separated classes for tests and smoke runs.

Values are roughly log-spaced: neighbouring classes differ by a ratio, which is how both the
texture statistics and a CNN's receptive fields scale. 24 cells is the finest spatial value, a
period of about 4.7 px at 112 px, comfortably above the Nyquist limit; ft <= 4 keeps at least 4
frames per cell in 16-frame clips (``wide`` goes to 2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoperlin.errors import ConfigError
from videoperlin.utils.fields import Checked, one_of, option

AXIS_NAMES = ("fx", "fy", "ft")

PRESETS: dict[str, dict[str, list[int]]] = {
    "low": {"fx": [1, 2, 3, 4, 6, 8], "fy": [1, 2, 3, 4, 6, 8], "ft": [1, 2, 4]},
    "high": {"fx": [8, 10, 12, 16, 20, 24], "fy": [8, 10, 12, 16, 20, 24], "ft": [1, 2, 4]},
    "wide": {"fx": [1, 2, 3, 4, 6, 8, 12, 16, 24], "fy": [1, 2, 3, 4, 6, 8, 12, 16, 24], "ft": [1, 2, 4, 8]},
    "tiny": {"fx": [1, 4], "fy": [1, 4], "ft": [1, 4]},
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
                raise ConfigError(f"{axis} frequency {value!r} is not an integer; frequencies are whole cells per clip extent")
        if value < 1:
            raise ConfigError(f"{axis} frequency {value} must be >= 1 (cells per clip extent)")
        checked.append(value)
    if len(set(checked)) != len(checked):
        raise ConfigError(f"{axis} lists a frequency twice: {list(values)}; each class must be distinct")
    return tuple(checked)


class LabelSpace:
    """Class index <-> frequency triple (fx, fy, ft), the product of three per-axis lists.

    >>> space = LabelSpace(fx=[1, 2], fy=[1, 4], ft=[1])
    >>> len(space), space.frequencies(3), space.index(2, 4, 1), space.name(3)
    (4, (2, 4, 1), 3, 'x002_y004_t01')
    """

    def __init__(self, fx: Sequence[int], fy: Sequence[int], ft: Sequence[int]) -> None:
        self.fx = _validate_axis("fx", fx)
        self.fy = _validate_axis("fy", fy)
        self.ft = _validate_axis("ft", ft)
        self._lookup = {self.frequencies(k): k for k in range(len(self))}

    @classmethod
    def preset(cls, name: str) -> LabelSpace:
        """One of the named presets in :data:`PRESETS` (``low``, ``high``, ``wide``, ``tiny``)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
        return cls(**PRESETS[name])

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> LabelSpace:
        """Build from ``{"fx": [...], "fy": [...], "ft": [...]}`` (as written by :meth:`to_dict`)."""
        missing = [axis for axis in AXIS_NAMES if axis not in spec]
        if missing:
            raise ConfigError(f"label space is missing {', '.join(missing)}; give fx, fy and ft lists")
        return cls(spec["fx"], spec["fy"], spec["ft"])

    @classmethod
    def from_file(cls, path: str | Path) -> LabelSpace:
        """Load a label space from a JSON or YAML file holding fx, fy and ft lists."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read label space file {path}: {exc.strerror}") from exc
        if path.suffix in (".yaml", ".yml"):
            import yaml

            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
        if not isinstance(spec, dict):
            raise ConfigError(f"label space file {path} must hold a mapping with fx, fy and ft lists")
        return cls.from_dict(spec)

    def to_dict(self) -> dict[str, list[int]]:
        """The per-axis lists, JSON-serialisable."""
        return {"fx": list(self.fx), "fy": list(self.fy), "ft": list(self.ft)}

    def __len__(self) -> int:
        return len(self.fx) * len(self.fy) * len(self.ft)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.fx, self.fy, self.ft))

    def __repr__(self) -> str:
        return f"LabelSpace(fx={list(self.fx)}, fy={list(self.fy)}, ft={list(self.ft)})"

    def _check_index(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self):
            raise ConfigError(f"class index {k!r} is out of range 0..{len(self) - 1}")
        return k

    def frequencies(self, k: int) -> tuple[int, int, int]:
        """The (fx, fy, ft) of class ``k``."""
        k = self._check_index(k)
        rest, it = divmod(k, len(self.ft))
        ix, iy = divmod(rest, len(self.fy))
        return self.fx[ix], self.fy[iy], self.ft[it]

    def index(self, fx: int, fy: int, ft: int) -> int:
        """The class index of the frequency triple (fx, fy, ft)."""
        try:
            return self._lookup[(fx, fy, ft)]
        except KeyError:
            raise ConfigError(f"frequencies (fx={fx}, fy={fy}, ft={ft}) are not a class of {self!r}") from None

    def name(self, k: int) -> str:
        """Class name like ``x004_y012_t02``."""
        fx, fy, ft = self.frequencies(k)
        return f"x{fx:03d}_y{fy:03d}_t{ft:02d}"

    def names(self) -> list[str]:
        """All class names in index order."""
        return [self.name(k) for k in range(len(self))]

    def max_frequencies(self) -> tuple[int, int, int]:
        """Largest (fx, fy, ft) in the space."""
        return max(self.fx), max(self.fy), max(self.ft)


def resolve_label_space(preset: str | None = None, fx: Sequence[int] | None = None, fy: Sequence[int] | None = None,
                        ft: Sequence[int] | None = None, labels: str | Path | None = None) -> LabelSpace:
    """The label space named by exactly one source: a preset, the three per-axis lists, or a
    labels file; with none of them the :data:`DEFAULT_PRESET`. The command line and run configs
    both resolve through here, so they follow the same rule."""
    axes = {"fx": fx, "fy": fy, "ft": ft}
    given = [name for name, used in (("preset", preset is not None), ("fx/fy/ft", any(v is not None for v in axes.values())),
                                     ("labels", labels is not None)) if used]
    if len(given) > 1:
        raise ConfigError(f"give only one of preset, fx/fy/ft or labels to name the label space (got {' and '.join(given)})")
    if given == ["fx/fy/ft"]:
        missing = [name for name, values in axes.items() if values is None]
        if missing:
            raise ConfigError(f"fx, fy and ft must be given together; {', '.join(missing)} missing (e.g. fx 1,2 fy 1,2 ft 1,4)")
        return LabelSpace(fx, fy, ft)  # type: ignore[arg-type]
    if labels is not None:
        return LabelSpace.from_file(labels)
    return LabelSpace.preset(preset or DEFAULT_PRESET)


@dataclass
class LabelChoice(Checked):
    """Where a label space comes from: one of a preset, per-axis lists or a file (:func:`resolve_label_space`)."""

    preset: str | None = option(None, f"named label space, one of {', '.join(PRESETS)} "
                                      f"({DEFAULT_PRESET} when no other source is given)", one_of(PRESETS))
    fx: list[int] | None = option(None, "x frequencies in cells per frame width, e.g. 1,2,4,8")
    fy: list[int] | None = option(None, "y frequencies in cells per frame height")
    ft: list[int] | None = option(None, "t frequencies in cells per clip length")
    labels: str | None = option(None, "JSON/YAML file holding fx, fy and ft lists")

    def label_space(self) -> LabelSpace:
        """The resolved :class:`LabelSpace`."""
        return resolve_label_space(self.preset, self.fx, self.fy, self.ft, self.labels)
