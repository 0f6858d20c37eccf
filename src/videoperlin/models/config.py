"""The run config's ``model`` section: a registered name plus the options of every registered architecture.

Its fields are built from the model registry (:mod:`videoperlin.models.registry`), as the ``synthetic``
section is built from the family registry: ``name``, then each architecture's options once each (a
field several architectures share, such as ``dropout``, is one field). A field that belongs to
another architecture than the named one must keep its default (``model.widen_factor=0.5`` with
``name: vit_tiny`` is an error naming the architectures it belongs to).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from videoperlin.config_fields import Checked, check_foreign_fields, one_of, option, union_fields, values_of
from videoperlin.models.options import CommonOptions
from videoperlin.models.registry import Architecture, freeze_schema

ARCHITECTURES = freeze_schema()
#: The model a run builds when its config names none.
DEFAULT_MODEL = "r3d18"


@dataclasses.dataclass
class _ModelBase(Checked):
    name: str = option(
        DEFAULT_MODEL,
        "registered model: r3d, r2p1d or mc3 with depth 10..200, or vit_micro/tiny/small/base (videoperlin models)",
        one_of(list(ARCHITECTURES)),
    )


def _owners(field: str) -> str:
    """The architecture families that have option ``field``, in words."""
    families = [a.family for a in ARCHITECTURES.values() if field in a.option_names()]
    return f"the {'/'.join(dict.fromkeys(families))} models"


class _ModelMethods:
    """What the ``model`` section knows (mixed into the generated :class:`ModelConfig`)."""

    name: str

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.name]

    @staticmethod
    def architectures() -> dict[str, Architecture]:
        """The registry the section was built from."""
        return ARCHITECTURES

    def options(self) -> CommonOptions:
        """The named architecture's options."""
        cls = self.architecture.Options
        return cls(**values_of(cls, self))

    def check_relations(self) -> None:
        check_foreign_fields(self, {"name", *self.architecture.option_names()}, _owners, self.name)


if TYPE_CHECKING:  # the fields are made at import time from the registry: the type checker sees the methods

    @dataclasses.dataclass
    class ModelConfig(_ModelMethods, _ModelBase):
        def __getattr__(self, name: str) -> Any: ...

else:
    ModelConfig = dataclasses.make_dataclass(
        "ModelConfig",
        union_fields([CommonOptions, *(a.Options for a in ARCHITECTURES.values())]),
        bases=(_ModelMethods, _ModelBase),
        namespace={
            "__doc__": "The network: a registered name plus the options of every architecture (module docstring).",
            "__module__": __name__,
        },
    )

__all__ = ["DEFAULT_MODEL", "ModelConfig"]
