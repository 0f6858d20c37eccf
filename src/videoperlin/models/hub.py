"""Model directories after Hugging Face's conventions: ``save_pretrained`` / ``from_pretrained``.

A model directory holds ``model.safetensors`` (the weights, the model's config in the metadata),
``config.json`` (the config, and how the weights were made) and ``README.md``, a model card generated
from the run that trained it: the network, the classes, the input it expects (clip size, normalisation),
the pre-training recipe (objective, clips, schedule), its held-out result and the commands that load it.
``from_pretrained`` reads such a directory, a checkpoint or model file, or -- with the ``hub`` extra
(``huggingface_hub``) -- a Hugging Face Hub repository id, downloaded once into its cache.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from videoperlin.errors import CheckpointError
from videoperlin.models.registry import architecture_of, as_video_model
from videoperlin.models.weight_files import read_checkpoint_file, save_model
from videoperlin.utils.atomic import atomic_write_text

CARD_FILE = "README.md"


def _recipe_lines(config: Mapping[str, Any]) -> list[str]:
    """The pre-training or training recipe, from a run's recorded config (empty without one)."""
    if not config:
        return []
    task, objective = config.get("task", "pretrain"), config.get("objective", {}).get("name", "classify")
    data, train, optim = (config.get(k, {}) for k in ("data", "train", "optim"))
    synthetic = config.get("synthetic", {})  # today's names: convert migrates an older record first
    source = (
        f"{synthetic.get('family', 'perlin')} clips (preset {synthetic.get('preset') or 'default'}), {synthetic.get('num_videos')} per epoch"
        if task == "pretrain" and not data.get("path")
        else f"videos of {data.get('path')}"
    )
    return [
        f"- task: {task}, objective: {objective}",
        f"- data: {source}",
        f"- schedule: {train.get('epochs')} epochs, batch {train.get('batch_size')}, {optim.get('name')} lr "
        f"{optim.get('lr')} ({optim.get('schedule')}), precision {train.get('amp')}",
    ]


def model_card(model: nn.Module, metadata: Mapping[str, Any]) -> str:
    """The README.md of a model directory (module docstring), from the model and its checkpoint's metadata."""
    arch, config, video = architecture_of(model), metadata.get("config") or {}, as_video_model(model)
    data = config.get("data", {})
    frames, size = metadata.get("frames", data.get("frames")), metadata.get("size", data.get("size"))
    norm = metadata.get("normalization") or {"mean": data.get("mean"), "std": data.get("std")}
    result = metadata.get("result") or {}
    classes = metadata.get("class_names") or []
    lines = [
        "---",
        "library_name: videoperlin",
        "tags: [video-classification, synthetic-pretraining]",
        "---",
        f"# {arch.name}: {arch.description}",
        "",
        f"Weights of a `{arch.name}` network (videoperlin {metadata.get('videoperlin_version', '')}), "
        f"{video.num_classes} classes"
        + (f" ({', '.join(map(str, classes[:5]))}{', ...' if len(classes) > 5 else ''})" if classes else "")
        + ".",
        "",
        "## Input",
        "",
        f"- clips of {frames} frames at {size}x{size} pixels, RGB in [0, 1], "
        f"minus mean {norm.get('mean')} over std {norm.get('std')} per channel",
        f"- options: `{json.dumps({k: v for k, v in video.config.items() if k not in ('name', 'num_classes')})}`",
    ]
    recipe = _recipe_lines(config)
    if recipe:
        lines += ["", "## How it was trained", "", *recipe]
    if result:
        lines += ["", "## Held-out result", "", *[f"- {k}: {v}" for k, v in result.items()]]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import videoperlin",
        'model = videoperlin.from_pretrained("THIS_DIRECTORY")   # or a Hub repository id',
        "```",
        "",
        "```bash",
        "videoperlin train --init THIS_DIRECTORY --data YOUR_VIDEOS/ --out runs/ft   # fine-tune; the head is swapped",
        "```",
        "",
    ]
    return "\n".join(lines)


def save_pretrained(model: nn.Module, directory: str | Path, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write the model directory (module docstring); ``metadata`` is a checkpoint's (config, normalisation,
    clip size, classes, result) or whatever describes the weights."""
    metadata = dict(metadata or {})
    directory = save_model(model, directory, extra={k: v for k, v in metadata.items() if k in ("source", "result")})
    atomic_write_text(Path(directory) / CARD_FILE, model_card(model, metadata))
    return Path(directory)


def checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """What a training checkpoint says of its weights, for a model card: config, input, classes, result."""
    meta = read_checkpoint_file(path)[1]
    position = meta.get("position") or {}
    result = {}
    if position.get("best") is not None and position.get("best_epoch", -1) >= 0:
        objective = (meta.get("config") or {}).get("objective", {}).get("name", "classify")
        result = {("best held-out top-1" if objective == "classify" else "best held-out loss"): position["best"]}
        result["at epoch"] = position["best_epoch"] + 1
    keys = ("config", "normalization", "frames", "size", "class_names", "videoperlin_version")
    return {**{k: meta[k] for k in keys if k in meta}, "result": result, "source": str(path)}


def from_pretrained(source: str | Path) -> nn.Module:
    """A network from a model directory, a checkpoint or model file, or a Hugging Face Hub repository id
    (``owner/name``; needs ``huggingface_hub``, the ``hub`` extra)."""
    from videoperlin.models.pretrained import load_model

    path = Path(source).expanduser()
    if path.exists():
        return load_model(path)
    text = str(source)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{source} does not exist (a model directory, a checkpoint, or a Hub id owner/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(
            f"{source} is not a local path, and loading Hub repositories needs huggingface_hub: "
            f"pip install 'videoperlin[hub]'"
        ) from None
    try:
        return load_model(snapshot_download(text))
    except Exception as exc:  # the Hub's own errors: offline, unknown repository, no access
        raise CheckpointError(
            f"{source}: the Hub repository could not be fetched ({type(exc).__name__}: {exc})"
        ) from None
