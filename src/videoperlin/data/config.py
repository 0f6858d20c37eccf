"""DataConfig: which videos a run reads, how they are split and how clips are cut from them.

The run config's ``data`` section. Training and evaluation both build their split, clips and
normalisation from it (:func:`videoperlin.data.splits.split_records`), so ``videoperlin evaluate
--checkpoint CKPT`` rebuilds a run's validation set from the checkpoint's record alone. Clip
geometry (``frames``, ``size``) applies to VPN pre-training too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from videoperlin.config_fields import Checked, FieldError, at_least, greater_than, in_range, option
from videoperlin.data.decode import FrameCache
from videoperlin.data.sources import format_names
from videoperlin.geometry import ClipGeometry

#: What to do with a video that cannot be decoded: skip it (counted in the metrics) or stop.
BadVideoPolicy = Literal["skip", "fail"]
#: Kinetics-400 channel mean and std of clips in [0, 1] (3D-ResNets-PyTorch); VPN uses them too.
KINETICS_MEAN = (0.4345, 0.4051, 0.3775)
KINETICS_STD = (0.2768, 0.2713, 0.2737)
#: Where decoded frames are cached when ``data.cache_dir`` is not set.
DEFAULT_FRAME_CACHE = Path.home() / ".cache" / "videoperlin" / "frames"


@dataclass
class DataConfig(ClipGeometry, Checked):
    """Clip geometry (:class:`~videoperlin.geometry.ClipGeometry`: frames and size, for synthetic clips
    too), real-video data and its split."""

    path: str | None = option(None, f"training data: {format_names()}")
    val_path: str | None = option(None, "separate validation data in any of those layouts (instead of a split of path)")
    dataset: str | None = option(None, "rows of a CSV manifest whose 'dataset' column has this value")
    split: int = option(1, "UCF-101/HMDB-51 official split number", in_range(1, 3))
    splits_dir: str | None = option(None, "folder of the UCF-101/HMDB-51 split files (default: beside the videos)")
    fold: int = option(0, "validation fold of a group or stratified split (0-based)", at_least(0))
    folds: int = option(5, "number of group folds (videos with a group: actor, sequence)", at_least(1))
    val_fraction: float = option(
        0.2, "validation share per class when videos have no group", in_range(0, 1, low_open=True, high_open=True)
    )
    stride: int = option(1, "temporal stride between a clip's frames", at_least(1))
    short_side: int = option(128, "decoded frames' short side in pixels (then cropped to size)", at_least(1))
    cache_dir: str | None = option(None, "decoded-frame cache (default ~/.cache/videoperlin/frames)")
    cache_limit_gb: float = option(
        20.0,
        "size limit of the decoded-frame cache in GiB: beyond it the least recently used videos are evicted "
        "(0: no limit; UCF-101 at short side 128 needs ~160)",
        at_least(0),
    )
    workers: int = option(2, "DataLoader worker processes (0: load in the training process)", at_least(0))
    on_bad_video: BadVideoPolicy = option("skip", "an undecodable video is skipped and counted, or fails the run")
    window_stride: int | None = option(None, "frames between validation windows (default: one clip span)", at_least(1))
    max_windows: int | None = option(10, "validation windows per video, evenly spaced (null: all)", at_least(1))
    scale_min: float = option(0.25, "smallest area share of the random resized crop", in_range(0, 1, low_open=True))
    mean: list[float] = option(list(KINETICS_MEAN), "per-channel mean subtracted from clips in [0, 1]")
    std: list[float] = option(list(KINETICS_STD), "per-channel std clips are divided by", greater_than(0))

    def check_relations(self) -> None:
        if self.fold >= self.folds:
            raise FieldError("fold", f"{self.fold} must be below folds ({self.folds})")
        for name in ("mean", "std"):
            if len(getattr(self, name)) != 3:
                raise FieldError(name, f"{getattr(self, name)!r} must hold 3 values (R, G, B)")

    def frame_cache_dir(self) -> Path:
        """The decoded-frame cache directory this config uses."""
        return Path(self.cache_dir) if self.cache_dir else DEFAULT_FRAME_CACHE

    def frame_cache(self) -> FrameCache:
        """The decoded-frame cache this config uses: its directory, frame size and size limit."""
        return FrameCache(self.frame_cache_dir(), self.short_side, int(self.cache_limit_gb * 2**30))
