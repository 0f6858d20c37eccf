"""Loading pretrained weights into a model, with an exact report; rebuilding a saved model.

:func:`load_pretrained` reads any source :func:`~videoperlin.models.weight_files.read_state_dict`
accepts, renames torchvision and mmaction2 checkpoints (:mod:`videoperlin.models.frameworks`) and VideoMAE's
(:mod:`videoperlin.models.videomae`), and
loads what fits: a shape mismatch outside the classifier, tensors the model lacks or tensors it
needs that the checkpoint lacks (another architecture) are errors, never a silent partial load.
:func:`load_model` rebuilds a network and its weights from a file that records its config.
(File formats live in :mod:`videoperlin.models.weight_files`, as timm keeps ``_helpers`` apart
from ``_builder``.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from videoperlin.errors import CheckpointError
from videoperlin.models.frameworks import detect_framework, infer_model_config, own_layout, with_backbone_prefix
from videoperlin.models.options import TRAINING_OPTIONS
from videoperlin.models.registry import architecture_of, model_from_config, normalize_model_config
from videoperlin.models.videomae import from_videomae, infer_config, is_videomae_layout
from videoperlin.models.weight_files import read_checkpoint_file, read_state_dict

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """Exactly what :func:`load_pretrained` did with each key."""

    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> reason
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint did not provide

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)}, missing {len(self.missing)}"]
        lines += [f"  skipped {key}: {reason}" for key, reason in self.skipped.items()]
        lines += [f"  missing {key} (kept its initialisation)" for key in self.missing]
        return "\n".join(lines)


def _classify(
    model: nn.Module, state: Mapping[str, Tensor], drop_classifier: bool, source: str
) -> tuple[dict[str, Tensor], LoadReport]:
    model_state = model.state_dict()
    classifier_prefix = architecture_of(model).classifier + "."
    report = LoadReport()
    usable: dict[str, Tensor] = {}
    mismatched = []
    for key, value in state.items():
        if key not in model_state:
            report.skipped[key] = "not in this model"
        elif key.startswith(classifier_prefix) and drop_classifier:
            report.skipped[key] = "classifier dropped (drop_classifier=True)"
        elif value.shape != model_state[key].shape:
            mismatched.append(f"{key} {tuple(value.shape)} vs model {tuple(model_state[key].shape)}")
        else:
            usable[key] = value
    classifier = [m for m in mismatched if m.startswith(classifier_prefix)]
    if classifier and len(classifier) == len(mismatched):
        raise CheckpointError(
            f"{source}: classifier shape differs ({classifier[0]}); the class counts differ, so "
            f"swap the head: drop_classifier=True (in the CLI, leave out --keep-head)"
        )
    if mismatched:
        raise CheckpointError(
            f"{source}: {len(mismatched)} tensor shapes differ from the model, e.g. {mismatched[0]}; "
            f"the checkpoint is for another architecture or options (depth, width, conv1 size)"
        )
    report.loaded = sorted(usable)
    report.missing = sorted(
        k for k in model_state if k not in usable and not (drop_classifier and k.startswith(classifier_prefix))
    )
    return usable, report


def _refuse_partial(report: LoadReport, source: str) -> None:
    """A checkpoint of another architecture or options loads only partly: refuse it, naming the first
    tensor it has that the model lacks and the first tensor the model needs that it lacks. (BatchNorm
    batch counters, absent from checkpoints of PyTorch < 0.4.1, do not count.)"""
    extra = [k for k, reason in report.skipped.items() if reason == "not in this model" and not _counter(k)]
    missing = [k for k in report.missing if not _counter(k)]
    if extra or missing:
        raise CheckpointError(
            f"{source} does not match the model ({len(extra)} of its tensors are not in the model, e.g. "
            f"{extra[0] if extra else '-'}; {len(missing)} model tensors are not in it, e.g. "
            f"{missing[0] if missing else '-'}): it is a checkpoint of another architecture or options"
        )


def _counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def init_network(path: str | Path) -> tuple[str, dict[str, Any]] | None:
    """(where the file comes from, the ``model.config`` it describes without ``num_classes`` and the training
    options) of a weights file given as ``train.init``: a videoperlin checkpoint records its network;
    torchvision, mmaction2 and VideoMAE files are read off their tensors; None for other files."""
    state, meta = read_checkpoint_file(path)
    if meta.get("model_config"):
        source, config = "videoperlin", normalize_model_config(meta["model_config"])
    elif (framework := detect_framework(with_backbone_prefix(state))) is not None:
        source, config = framework, infer_model_config(with_backbone_prefix(state), framework)
    elif is_videomae_layout(state) or "patch_embed.proj.weight" in state:
        source, config = "videomae", infer_config(from_videomae(state, str(path)))
    else:
        return None
    return source, {k: v for k, v in config.items() if k not in ("num_classes", *TRAINING_OPTIONS)}


def load_pretrained(
    model: nn.Module, source: str | Path | Mapping[str, Tensor], drop_classifier: bool = True
) -> LoadReport:
    """Load weights into ``model``; return (and log) exactly which keys were loaded, skipped and missing.

    A shape mismatch outside the classifier is an error, never a silent partial load; so is a
    checkpoint with tensors the model lacks, or lacking tensors the model has (another architecture).
    torchvision and mmaction2 checkpoints are renamed first (:mod:`videoperlin.models.frameworks`).
    """
    name = str(source) if not isinstance(source, Mapping) else "state dict"
    state = read_state_dict(source)
    if is_videomae_layout(state):  # the VideoMAE release's or Hugging Face's names
        state = from_videomae(state, name)
    framework = detect_framework(with_backbone_prefix(state))
    if framework is not None:  # torchvision / mmaction2 names: renamed strictly, for a model that corresponds
        state = own_layout(with_backbone_prefix(state), model, framework, name, classifier=not drop_classifier)
    usable, report = _classify(model, state, drop_classifier, name)
    if not usable:
        raise CheckpointError(
            f"{name} shares no parameter names with the model; is it a checkpoint of this architecture?"
        )
    _refuse_partial(report, name)
    model.load_state_dict(usable, strict=False)
    log.info("%s: %s", name, report.summary())
    return report


def load_model(path: str | Path) -> nn.Module:
    """Rebuild a model and its weights from :func:`save_model` output, a ``.safetensors`` file with
    config metadata, or a training checkpoint holding ``model_config``."""
    return load_model_and_metadata(path)[0]


def load_model_and_metadata(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_model` plus the file's other entries (class names, normalisation, clip size...)."""
    state, meta = read_checkpoint_file(path)
    config = meta.get("model_config")
    if config is None:
        raise CheckpointError(
            f"{path} carries no model config; it cannot rebuild its model alone "
            f"(for 3D-ResNets-PyTorch checkpoints run `videoperlin convert` first)"
        )
    model = model_from_config(config)
    _, report = _classify(model, state, drop_classifier=False, source=str(path))
    if report.missing:
        raise CheckpointError(f"{path} lacks {len(report.missing)} tensors of its own model, e.g. {report.missing[0]}")
    if report.skipped:
        key, reason = next(iter(report.skipped.items()))
        raise CheckpointError(
            f"{path} holds {len(report.skipped)} tensor(s) its own model does not use, e.g. {key} ({reason}); "
            f"it was edited or written by other code"
        )
    broken = next((k for k, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if broken is not None:
        raise CheckpointError(f"{path} holds non-finite values in {broken}; it cannot be evaluated or exported")
    model.load_state_dict(state, strict=True)
    return model, meta
