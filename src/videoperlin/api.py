"""The Python API: what ``import videoperlin`` offers, reading like torchvision and timm.

    import videoperlin as vp

    model = vp.create_model("r3d18", num_classes=101)                   # or "vit_micro", ... (vp.list_models())
    clips = vp.SyntheticClips("perlin", preset="low", num_videos=1000, frames=16, size=112)
    clip, label = clips[0]                                               # (3, 16, 112, 112) in [0, 1]
    videos = vp.VideoDataset("UCF-101/", split=1, subset="train", frames=16, size=112, transform=my_transform)
    run = vp.pretrain(epochs=2, out="runs/vpn")                          # the pretrain command's recipe
    tuned = vp.finetune("my_videos/", init=run.checkpoint(), out="runs/ft", epochs=3)
    tuned.metrics["val_acc"], tuned.path

:func:`pretrain` and :func:`finetune` run exactly what ``videoperlin pretrain`` and ``videoperlin train``
run: the same default recipe (:data:`~videoperlin.train.config.DEFAULT_RECIPES`), the same keyword names
as the commands' flags (``epochs``, ``batch_size``, ``lr``, ``model``, ``widen_factor``, ``out``, ...;
any other field as ``section__field=value``, e.g. ``optim__schedule="cosine"``), and a ``train`` from a
videoperlin checkpoint builds that checkpoint's network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from videoperlin.data.config import DataConfig
from videoperlin.data.splits import split_records
from videoperlin.data.video_dataset import ClipDataset, WindowDataset
from videoperlin.errors import ConfigError
from videoperlin.train.config import SHORTCUTS, RunConfig, field_annotation, recipe_config
from videoperlin.train.engine import Trainer
from videoperlin.train.run_dir import RunDir
from videoperlin.vpn.dataset import SyntheticDataset
from videoperlin.vpn.family import get_family

#: Keyword names of :func:`pretrain`/:func:`finetune` and the config keys they set: the commands' flags, and
#: ``progress`` (a progress bar in a notebook).
KEYWORDS = {**SHORTCUTS, "progress": "train.progress"}


def config_overrides(keywords: dict[str, Any]) -> dict[str, Any]:
    """Config key -> value of API keywords (a :data:`KEYWORDS` name, or ``section__field``)."""
    overrides = {}
    for name, value in keywords.items():
        key = KEYWORDS.get(name) or name.replace("__", ".")
        if "." not in key:
            raise ConfigError(
                f"unknown keyword {name!r}; use one of {', '.join(KEYWORDS)} or section__field (e.g. optim__lr)"
            )
        field_annotation(key)  # an unknown field is refused naming the valid ones
        overrides[key] = str(value) if isinstance(value, Path) else value
    return overrides


@dataclass(frozen=True)
class Run:
    """A finished (or stopped) training run: its directory, its config and its last epoch's metrics."""

    path: Path
    config: RunConfig
    metrics: dict[str, Any]

    def checkpoint(self, name: str = "best") -> Path:
        """``checkpoints/NAME.pt`` (``best`` or ``last``)."""
        return RunDir(self.path).checkpoint(name)


def _run(task: str, config: str | Path | None, keywords: dict[str, Any], resume: bool) -> Run:
    run_config = recipe_config(task, config, config_overrides(keywords))
    record = Trainer(run_config, resume=resume).fit()
    return Run(Path(run_config.train.out).absolute(), run_config, record)


def pretrain(config: str | Path | None = None, resume: bool = False, **keywords: Any) -> Run:
    """Pre-train as ``videoperlin pretrain`` does: ``config`` (a recipe path or built-in name; default the
    command's own) with the keyword overrides (module docstring)."""
    return _run("pretrain", config, keywords, resume)


def finetune(data: str | Path, config: str | Path | None = None, resume: bool = False, **keywords: Any) -> Run:
    """Train on real video as ``videoperlin train --data DATA`` does (``init=`` a checkpoint to start from)."""
    return _run("train", config, {**keywords, "data": data}, resume)


class SyntheticClips(Dataset):
    """Clips of a registered family (``perlin``, the paper's VPN; ``shapes``, ``layers``, ``textures``),
    rendered on access: ``clips[i] -> (clip (3, T, H, W) in [0, 1], label)``, the same for the same
    (seed, i) anywhere. ``preset`` names a label space of the family; ``options`` are its rendering options
    (``videoperlin families`` lists both); ``transform`` is applied to each clip."""

    def __init__(
        self,
        family: str = "perlin",
        preset: str | None = None,
        num_videos: int = 1000,
        frames: int = 16,
        size: int = 112,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **options: Any,
    ) -> None:
        kind = get_family(family)
        space = kind.label_space(kind.Labels(preset=preset))
        self.dataset = SyntheticDataset(space, num_videos, frames, size, seed, family=family, **options)
        self.transform = transform
        self.classes = space.names()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip, label = self.dataset[index]
        return (self.transform(clip) if self.transform else clip), label


class VideoDataset(Dataset):
    """Clips of real videos in any layout the loaders read (class folders, a CSV manifest, UCF-101,
    HMDB-51/JHMDB, Kinetics, ActivityNet). ``subset="train"``: ``(clip (3, T, H, W) in [0, 1], label)``,
    a random clip of video i (temporal crop, random resized crop, flip: seeded by ``seed`` and i);
    ``"val"``: ``(windows (N, 3, T, H, W), label)``, video i's evaluation windows (centre crop), whose
    softmax averaged is the video's score. ``transform`` is applied to each clip (each window).
    ``split`` / ``fold`` choose the official split or the group fold; ``data_options`` are fields of the
    run config's ``data`` section (``dataset``, ``splits_dir``, ``folds``, ``stride``, ``cache_dir``...)."""

    def __init__(
        self,
        path: str | Path,
        subset: str = "train",
        split: int = 1,
        fold: int = 0,
        frames: int = 16,
        size: int = 112,
        short_side: int = 128,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int = 0,
        **data_options: Any,
    ) -> None:
        if subset not in ("train", "val"):
            raise ConfigError(f"subset {subset!r} must be train or val")
        config = DataConfig(
            path=str(path), split=split, fold=fold, frames=frames, size=size, short_side=short_side, **data_options
        )
        records = split_records(config, seed)
        self.classes = records.class_names
        cache = config.frame_cache()
        if subset == "train":
            self.clips: Dataset = ClipDataset(records.train, cache, frames, size, stride=config.stride, seed=seed)
        else:
            self.clips = WindowDataset(records.val, cache, frames, size, stride=config.stride)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.clips)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.clips[index]
        if item is None:
            raise ConfigError(f"video {index} could not be decoded; run videoperlin check-data on the data")
        clip, label = item[0], int(item[1])
        if self.transform is None:
            return clip, label
        if clip.dim() == 5:  # evaluation windows
            return torch.stack([self.transform(window) for window in clip]), label
        return self.transform(clip), label
