"""Weight files: reading weights from any supported source, and the model file format.

Sources accepted by :func:`read_state_dict`:

* a state dict (mapping of name -> tensor);
* a ``.safetensors`` file, or a directory holding ``model.safetensors`` (this project's format);
* a ``.pt``/``.pth`` file loaded with ``torch.load(weights_only=True)``: a bare state dict, a
  3D-ResNets-PyTorch checkpoint ``{'epoch', 'arch', 'state_dict', ...}``, or a training checkpoint
  of this project ``{'model': ..., 'model_config': ...}``.

A ``module.`` prefix (DataParallel / DDP) is stripped.

The model format (:func:`save_model`; read back by :func:`videoperlin.models.pretrained.load_model`)
is a directory with ``model.safetensors`` and ``config.json`` (the ``model.config`` that rebuilds the
network); the config is also stored in the safetensors metadata, so the ``.safetensors`` file alone
rebuilds its model too. Loading weights *into* a model (with a report, framework renaming and
refusals) is :mod:`videoperlin.models.pretrained`; this module only reads and writes files.
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from videoperlin.errors import CheckpointError, ConfigError
from videoperlin.utils.atomic import atomic_path, atomic_write_text

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CONFIG_METADATA_KEY = "videoperlin_model_config"


def strip_prefix(state: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """Remove a DataParallel/DDP ``module.`` prefix when every key has it."""
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return dict(state)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


#: What a weights argument (``--init``, ``convert SOURCE``, ``load_model``) takes, for error messages.
WEIGHTS_TAKES = (
    "give a checkpoint file (.pt/.pth/.safetensors), a model directory (model.safetensors + config.json), or a "
    "torchvision, mmaction2, 3D-ResNets-PyTorch or VideoMAE weights file"
)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v", ".npy")


def _what_folder_is(path: Path) -> str:
    """What a folder given as weights holds, in words (for the message)."""
    files = [p for p in path.rglob("*") if p.is_file()][:10000]
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        return f"a folder of {len(videos)} video{'s' if len(videos) != 1 else ''} (data, for --data)"
    if (path / "checkpoints").is_dir():
        return f"a run directory (its weights: {path / 'checkpoints' / 'best.pt'} or last.pt)"
    return f"a folder of {len(files)} file{'s' if len(files) != 1 else ''} without {WEIGHTS_FILE}"


def _what_file_is(path: Path) -> str:
    """What a file that torch.load could not read looks like, from its first bytes (for the message)."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive that is not a torch checkpoint, or a truncated one"
    if head.startswith(b"\x80"):
        return "a pickle that is corrupt or truncated"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (Keras?), not a torch checkpoint"
    if len(head) > 8 and head[8:9] == b"{":
        return "a safetensors file; name it .safetensors"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the 512 bytes
            return "neither a torch checkpoint nor text (corrupt, or another format)"
    return "a text file, not a torch checkpoint"


def _torch_load(path: Path) -> Any:
    try:
        with (
            warnings.catch_warnings()
        ):  # garbage starting with byte 0x80 reads as a pickle "protocol": warned, then refused
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = [line.strip() for line in str(exc).splitlines() if "unsupported global" in line.lower()]
        raise CheckpointError(
            f"{path} holds pickled Python objects that weights_only=True refuses ({refused[0]}); "
            f"re-save it as a plain state_dict or safetensors"
            if refused
            else f"{path} is not a readable torch checkpoint: {_what_file_is(path)}"
        ) from None
    except Exception:
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {_what_file_is(path)}") from None


def _safetensors_load(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({_first_line(exc)})") from None
    meta = {"model_config": json.loads(metadata[CONFIG_METADATA_KEY])} if CONFIG_METADATA_KEY in metadata else {}
    return strip_prefix(state), meta


def read_checkpoint_file(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """State dict and metadata (``arch``, ``model_config``... whatever the file holds besides weights)."""
    path = Path(path)
    if path.is_dir():
        if not (path / WEIGHTS_FILE).exists():
            raise CheckpointError(f"{path} is {_what_folder_is(path)}, not a model directory; {WEIGHTS_TAKES}")
        path = path / WEIGHTS_FILE
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; {WEIGHTS_TAKES}")
    if path.suffix == ".safetensors":
        return _safetensors_load(path)
    obj = _torch_load(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict or checkpoint dict")
    for key in ("state_dict", "model", "module"):
        if key in obj and isinstance(obj[key], Mapping):
            meta = {k: v for k, v in obj.items() if k != key}
            return strip_prefix(obj[key]), meta
    if not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path} is a dict without 'state_dict', 'model' or 'module' and not all its values are tensors"
        )
    return strip_prefix(obj), {}


def read_state_dict(source: str | Path | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A plain state dict from any supported source (see the module docstring)."""
    if isinstance(source, Mapping):
        return strip_prefix(source)
    return read_checkpoint_file(source)[0]


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
