"""Training objectives as plug-ins: what a step computes from a batch, and what validation measures.

An objective is one module of this package that defines an :class:`Objective` subclass and decorates
it with :func:`register_objective`::

    @register_objective
    class Classify(Objective):
        name = "classify"
        Options = ClassifyOptions     # its own config fields (type, default, doc, check)

        def loss(self, net, inputs, labels, generator): ...  # (loss, logits or None)
        def validator(self): ...                              # accumulates validation batches

The run config's ``objective`` section is built from the registry (``name`` plus every objective's
options; a field of another objective must keep its default), and ``videoperlin pretrain
--objective NAME`` chooses one. The engine (:mod:`videoperlin.train.engine`) owns the loop, the
optimiser and the checkpoints; the objective owns the forward pass and the loss, any modules it adds
around the network (a decoder: :meth:`Objective.network`, saved beside the network's weights as
``objective_state``), its validation metrics and the metric that picks ``best.pt``.

Built in: ``classify`` (cross-entropy on the labels: supervised pre-training and fine-tuning, with
mixup/cutmix from the ``augment`` section) and ``mae`` (VideoMAE's masked autoencoding: labels
ignored, any clips).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from videoperlin.config_fields import Checked, shared_field_conflict


class Validator:
    """Accumulates validation batches; :meth:`counts` are summed over ranks, then :meth:`metrics`."""

    def add(self, net: nn.Module, inputs: Tensor, labels: Tensor, videos: Tensor) -> None:
        raise NotImplementedError

    def counts(self) -> list[float]:
        raise NotImplementedError

    def metrics(self, counts: list[float]) -> dict[str, float]:
        """Metrics from rank-summed counts; ``val_videos`` (how many were scored) is always among them."""
        raise NotImplementedError


class Objective:
    """A training objective (module docstring). Built per run from its options, the network and the
    run config."""

    name: ClassVar[str]
    Options: ClassVar[type[Any]] = Checked
    description: ClassVar[str] = ""
    #: The validation metric that picks best.pt, and its direction.
    score: ClassVar[str] = "val_acc"
    lower_is_better: ClassVar[bool] = False
    #: Whether a step's output is class logits (train accuracy is reported) and the labels are used.
    uses_labels: ClassVar[bool] = True
    #: Whether the network must embed clips into tokens (the registry's ``Architecture.tokens``).
    needs_tokens: ClassVar[bool] = False

    def __init__(self, options: Any, model: nn.Module, config: Any) -> None:
        self.options, self.model, self.config = options, model, config

    def network(self) -> nn.Module:
        """The module that trains: the network itself, or the network inside the objective's own modules."""
        return self.model

    def loss(
        self, net: nn.Module, inputs: Tensor, labels: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor | None]:
        """(scalar loss, logits or None) of one batch through ``net`` (:meth:`network`, maybe DDP-wrapped);
        ``generator`` is this step's own (its draws repeat on a retry and after a resume)."""
        raise NotImplementedError

    def validator(self) -> Validator:
        raise NotImplementedError

    def better(self, score: float, best: float | None) -> bool:
        """Whether ``score`` improves on ``best`` (None: nothing yet)."""
        if best is None:
            return True
        return score < best if self.lower_is_better else score > best

    def _network_prefix(self) -> str:
        """The name under which :meth:`network` holds the model (``encoder.``), or "" when it is the model."""
        network = self.network()
        if network is self.model:
            return ""
        return next(f"{name}." for name, module in network.named_children() if module is self.model)

    def extra_state(self) -> dict[str, Tensor]:
        """The weights of the objective's own modules (``objective_state`` in checkpoints)."""
        prefix = self._network_prefix()
        if not prefix:
            return {}
        return {k: v for k, v in self.network().state_dict().items() if not k.startswith(prefix)}

    def load_extra_state(self, state: dict[str, Tensor]) -> None:
        prefix = self._network_prefix()
        if prefix:
            missing, unexpected = self.network().load_state_dict(state, strict=False)
            absent = [k for k in missing if not k.startswith(prefix)]
            if absent or unexpected:
                from videoperlin.errors import CheckpointError

                raise CheckpointError(
                    f"the checkpoint's objective_state does not fit objective {self.name} "
                    f"(missing {absent[:1]}, unexpected {unexpected[:1]}); resume with the run's settings"
                )

    def write_figures(
        self, figures: Path, title: str, sample: Callable[[], tuple[Tensor, Tensor]] | None
    ) -> list[Path]:
        """Pictures at the end of a run (the network's stem is drawn by the engine for every objective)."""
        return []


OBJECTIVES: dict[str, type[Objective]] = {}
_LOADED: list[bool] = []
_SCHEMA_FROZEN: list[bool] = []


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Class decorator: make ``cls`` available by ``cls.name``."""
    if _SCHEMA_FROZEN:
        raise RuntimeError(f"objective {cls.name!r} registered after the config schema was built")
    if cls.name in OBJECTIVES and OBJECTIVES[cls.name] is not cls:
        raise RuntimeError(f"two objectives are named {cls.name!r}")
    for other in OBJECTIVES.values():
        conflict = shared_field_conflict(cls.Options, other.Options)
        if conflict:
            raise RuntimeError(f"objectives {other.name} and {cls.name} both have option {conflict!r}, differently")
    OBJECTIVES[cls.name] = cls
    return cls


def load_objectives() -> dict[str, type[Objective]]:
    """Import the built-in objective modules (once); the registry."""
    if not _LOADED:
        _LOADED.append(True)
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
    return OBJECTIVES


def freeze_schema() -> dict[str, type[Objective]]:
    """The registry, closed to new objectives (the config schema is being built from it)."""
    objectives = load_objectives()
    _SCHEMA_FROZEN.append(True)
    return objectives
