"""Reading weights from any supported source, loading them with an exact report, and the model file format.

Sources accepted by :func:`read_state_dict`:

* a state dict (mapping of name -> tensor);
* a ``.safetensors`` file, or a directory holding ``model.safetensors`` (this project's format);
* a ``.pt``/``.pth`` file loaded with ``torch.load(weights_only=True)``: a bare state dict, a
  3D-ResNets-PyTorch checkpoint ``{'epoch', 'arch', 'state_dict', ...}``, or a training checkpoint
  of this project ``{'model': ..., 'model_config': ...}``.

A ``module.`` prefix (DataParallel / DDP) is stripped.

The model format (:func:`save_model` / :func:`load_model`) is a directory with ``model.safetensors``
and ``config.json`` (the ``model.config`` that rebuilds the network); the config is also stored in
the safetensors metadata, so the ``.safetensors`` file alone rebuilds its model too.
"""

from __future__ import annotations

import json
import logging
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from videoperlin.errors import ConfigError
from videoperlin.utils.atomic import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

CLASSIFIER_PREFIX = "fc."
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CONFIG_METADATA_KEY = "videoperlin_model_config"


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


def strip_prefix(state: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """Remove a DataParallel/DDP ``module.`` prefix when every key has it."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix):]: value for key, value in state.items()}
    return dict(state)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _torch_load(path: Path) -> Any:
    try:
        with warnings.catch_warnings():  # garbage starting with byte 0x80 reads as a pickle "protocol": warned, then refused
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = [line.strip() for line in str(exc).splitlines() if "unsupported global" in line.lower()]
        raise ConfigError(
            f"{path} holds pickled Python objects that weights_only=True refuses ({refused[0]}); "
            f"re-save it as a plain state_dict or safetensors" if refused else
            f"{path} is not a readable torch checkpoint (corrupt, truncated or not a checkpoint)"
        ) from None
    except Exception as exc:  # noqa: BLE001 -- an empty, truncated or text file fails in many ways inside torch.load
        raise ConfigError(f"{path} is not a readable torch checkpoint ({_first_line(exc)})") from None


def _safetensors_load(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"{path} is not a readable safetensors file ({_first_line(exc)})") from None
    meta = {"model_config": json.loads(metadata[CONFIG_METADATA_KEY])} if CONFIG_METADATA_KEY in metadata else {}
    return strip_prefix(state), meta


def read_checkpoint_file(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """State dict and metadata (``arch``, ``model_config``... whatever the file holds besides weights)."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.exists():
        raise ConfigError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return _safetensors_load(path)
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{path} holds a {type(obj).__name__}, not a state dict or checkpoint dict")
    for key in ("state_dict", "model"):
        if key in obj and isinstance(obj[key], Mapping):
            meta = {k: v for k, v in obj.items() if k != key}
            return strip_prefix(obj[key]), meta
    if not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{path} is a dict without 'state_dict' or 'model' and not all its values are tensors")
    return strip_prefix(obj), {}


def read_state_dict(source: str | Path | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A plain state dict from any supported source (see the module docstring)."""
    if isinstance(source, Mapping):
        return strip_prefix(source)
    return read_checkpoint_file(source)[0]


def _classify(model_state: Mapping[str, Tensor], state: Mapping[str, Tensor], drop_classifier: bool,
              source: str) -> tuple[dict[str, Tensor], LoadReport]:
    report = LoadReport()
    usable: dict[str, Tensor] = {}
    mismatched = []
    for key, value in state.items():
        if key not in model_state:
            report.skipped[key] = "not in this model"
        elif key.startswith(CLASSIFIER_PREFIX) and drop_classifier:
            report.skipped[key] = "classifier dropped (drop_classifier=True)"
        elif value.shape != model_state[key].shape:
            mismatched.append(f"{key} {tuple(value.shape)} vs model {tuple(model_state[key].shape)}")
        else:
            usable[key] = value
    classifier = [m for m in mismatched if m.startswith(CLASSIFIER_PREFIX)]
    if classifier and len(classifier) == len(mismatched):
        raise ConfigError(f"{source}: classifier shape differs ({classifier[0]}); the class counts differ, so "
                          f"swap the head: drop_classifier=True (in the CLI, leave out --keep-head)")
    if mismatched:
        raise ConfigError(f"{source}: {len(mismatched)} tensor shapes differ from the model, e.g. {mismatched[0]}; "
                          f"the checkpoint is for another architecture or options (depth, width, conv1 size)")
    report.loaded = sorted(usable)
    report.missing = sorted(k for k in model_state if k not in usable
                            and not (drop_classifier and k.startswith(CLASSIFIER_PREFIX)))
    return usable, report


def _refuse_partial(report: LoadReport, source: str) -> None:
    """A checkpoint of another architecture or options loads only partly: refuse it, naming the first
    tensor it has that the model lacks and the first tensor the model needs that it lacks. (BatchNorm
    batch counters, absent from checkpoints of PyTorch < 0.4.1, do not count.)"""
    extra = [k for k, reason in report.skipped.items() if reason == "not in this model" and not _counter(k)]
    missing = [k for k in report.missing if not _counter(k)]
    if extra or missing:
        raise ConfigError(f"{source} does not match the model ({len(extra)} of its tensors are not in the model, e.g. "
                          f"{extra[0] if extra else '-'}; {len(missing)} model tensors are not in it, e.g. "
                          f"{missing[0] if missing else '-'}): it is a checkpoint of another architecture or options")


def _counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def load_pretrained(model: nn.Module, source: str | Path | Mapping[str, Tensor],
                    drop_classifier: bool = True) -> LoadReport:
    """Load weights into ``model``; return (and log) exactly which keys were loaded, skipped and missing.

    A shape mismatch outside the classifier is an error, never a silent partial load; so is a
    checkpoint with tensors the model lacks, or lacking tensors the model has (another architecture).
    torchvision and mmaction2 checkpoints are renamed first (:mod:`videoperlin.models.frameworks`).
    """
    from videoperlin.models.frameworks import detect_framework, own_layout, with_backbone_prefix

    name = str(source) if not isinstance(source, Mapping) else "state dict"
    state = read_state_dict(source)
    framework = detect_framework(with_backbone_prefix(state))
    if framework is not None:  # torchvision / mmaction2 names: renamed strictly, for a model that corresponds
        state = own_layout(with_backbone_prefix(state), model, framework, name, classifier=not drop_classifier)
    model_state = model.state_dict()
    usable, report = _classify(model_state, state, drop_classifier, name)
    if not usable:
        raise ConfigError(f"{name} shares no parameter names with the model; is it a checkpoint of this architecture?")
    _refuse_partial(report, name)
    model.load_state_dict(usable, strict=False)
    log.info("%s: %s", name, report.summary())
    return report


def save_model(model: nn.Module, directory: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` atomically; return the directory."""
    config = getattr(model, "config", None)
    if not config or "name" not in config:
        raise ConfigError("model has no .config with a 'name'; build it with videoperlin.models.create_model")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp), metadata={CONFIG_METADATA_KEY: json.dumps(config)})
    atomic_write_text(directory / CONFIG_FILE, json.dumps({"model": config, **(extra or {})}, indent=2) + "\n")
    return directory


def load_model(path: str | Path) -> nn.Module:
    """Rebuild a model and its weights from :func:`save_model` output, a ``.safetensors`` file with
    config metadata, or a training checkpoint holding ``model_config``."""
    return load_model_and_metadata(path)[0]


def load_model_and_metadata(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_model` plus the file's other entries (class names, normalisation, clip size...)."""
    from videoperlin.models.registry import model_from_config

    state, meta = read_checkpoint_file(path)
    config = meta.get("model_config")
    if config is None:
        raise ConfigError(f"{path} carries no model config; it cannot rebuild its model alone "
                          f"(for 3D-ResNets-PyTorch checkpoints run `videoperlin convert` first)")
    model = model_from_config(config)
    _, report = _classify(model.state_dict(), state, drop_classifier=False, source=str(path))
    if report.missing:
        raise ConfigError(f"{path} lacks {len(report.missing)} tensors of its own model, e.g. {report.missing[0]}")
    model.load_state_dict(state, strict=True)
    return model, meta
