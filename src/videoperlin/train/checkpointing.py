"""Training checkpoints: everything to resume exactly, saved atomically, loaded with weights_only=True.

A checkpoint holds the model weights and ``model_config`` (so it alone rebuilds its model), the
optimiser state, the position (epoch, batch within the epoch, global step), the best metric, the
torch RNG state, the full run config, the input normalisation and the class names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from videoperlin.errors import CheckpointError
from videoperlin.models.weight_files import read_checkpoint_file
from videoperlin.utils.atomic import atomic_path


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """torch.save ``payload`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint written by :func:`save_checkpoint` (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    state, meta = read_checkpoint_file(path)
    if "model_config" not in meta or "global_step" not in meta:
        raise CheckpointError(
            f"{path} is not a videoperlin training checkpoint (no model_config/global_step); "
            f"use it with --init instead of --resume/--checkpoint"
        )
    return {**meta, "model": state}


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
