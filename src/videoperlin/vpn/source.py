"""ClipSource: the one description of a synthetic clip source.

A source is a family, its label choice (a preset, the family's axis lists, or a labels file), its
rendering options and the number of clips; with a clip geometry
(:class:`~videoperlin.geometry.ClipGeometry`, shared with real-video data) and a seed it names a
dataset exactly. Everything that describes synthetic clips derives from this class:

* the run config's ``synthetic`` section (:class:`~videoperlin.train.config.SyntheticConfig` adds the
  validation count; its seed is ``train.seed``);
* the ``generate`` and ``preview`` flags (one per field, :mod:`videoperlin.cli.vpn`);
* ``dataset.json`` (:meth:`SyntheticDataset.to_dict <videoperlin.vpn.dataset.SyntheticDataset.to_dict>`,
  the resolved form: the label space's lists and the family's options).

Its fields are built from the family registry (:mod:`videoperlin.vpn.family`): the shared ones
(``family``, ``num_videos``, ``preset``, ``labels``, ``label_mode``, ``rng``), then every family's
own options and label axes. A field that belongs to another family than the chosen one must keep
its default (``synthetic.octaves=2`` with ``family: flicker`` is an error naming the family it belongs to).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from videoperlin.config_fields import Checked, FieldError, at_least, one_of, option, union_fields, values_of
from videoperlin.geometry import ClipGeometry
from videoperlin.vpn.dataset import SyntheticDataset
from videoperlin.vpn.family import Family, LabelSource, SourceOptions, freeze_schema

FAMILIES = freeze_schema()


@dataclasses.dataclass
class _SourceBase(Checked):
    family: str = option(
        "perlin",
        f"formula family of the clips: {', '.join(sorted(FAMILIES))} (videoperlin families describes them)",
        one_of(sorted(FAMILIES)),
    )
    num_videos: int = option(
        10000, "clips in the set (per epoch in pre-training: the same clips every epoch)", at_least(1)
    )


def _family_fields() -> list[tuple[str, Any, Any]]:
    """(name, type, field) of the shared label/option fields, then each family's own, once each."""
    return union_fields([LabelSource, SourceOptions, *(g for f in FAMILIES.values() for g in (f.Labels, f.Options))])


def _owners() -> dict[str, list[str]]:
    """Field name -> the families that have it."""
    owners: dict[str, list[str]] = {}
    for family in FAMILIES.values():
        for group in (family.Labels, family.Options):
            for f in dataclasses.fields(group):
                owners.setdefault(f.name, []).append(family.name)
    return owners


class _SourceMethods:
    """What a source knows (mixed into the generated :class:`ClipSource`)."""

    family: str
    num_videos: int
    preset: str | None

    def family_class(self) -> type[Family]:
        return FAMILIES[self.family]

    def options(self) -> SourceOptions:
        """The chosen family's rendering options."""
        cls = self.family_class().Options
        return cls(**values_of(cls, self))

    def label_space(self) -> Any:
        """The chosen family's label space (preset, axis lists or labels file)."""
        family = self.family_class()
        return family.label_space(family.Labels(**values_of(family.Labels, self)))

    def dataset(self, geometry: ClipGeometry, seed: int, num_videos: int | None = None) -> SyntheticDataset:
        """The dataset this source names at ``geometry`` and ``seed`` (``num_videos`` overrides the count)."""
        return SyntheticDataset(
            self.label_space(),
            num_videos or self.num_videos,
            geometry.frames,
            geometry.size,
            seed,
            family=self.family,
            options=self.options(),
        )

    def check_relations(self) -> None:
        family = self.family_class()
        if self.preset is not None:
            family.check_preset(self.preset)
        mine = {f.name for g in (family.Labels, family.Options) for f in dataclasses.fields(g)}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name in mine or f.name in ("family", "num_videos", "val_videos", "workers"):
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
            if getattr(self, f.name) != default:
                raise FieldError(
                    f.name,
                    f"is an option of family {', '.join(_owners()[f.name])}, not {family.name}; "
                    f"set family or leave {f.name} out",
                )


ClipSource = dataclasses.make_dataclass(
    "ClipSource",
    _family_fields(),
    bases=(_SourceMethods, _SourceBase),
    namespace={
        "__doc__": "A synthetic clip source (module docstring): family, label choice, options, count.",
        "__module__": __name__,
    },
)


__all__ = ["FAMILIES", "ClipSource"]
