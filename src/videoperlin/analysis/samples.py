"""Sample media: a real dataset clip next to VPN clips of chosen classes, as one animated GIF."""

from __future__ import annotations

from pathlib import Path

from videoperlin.data.decode import decode_video
from videoperlin.data.sampling import sliding_windows
from videoperlin.data.sources import load_catalog
from videoperlin.data.transforms import eval_transform
from videoperlin.errors import ConfigError
from videoperlin.vpn import LabelSpace, SyntheticDataset
from videoperlin.vpn.preview import write_strip_gif


def real_and_vpn_gif(
    data: str,
    dataset: str | None,
    video: int,
    space: LabelSpace,
    classes: list[int] | None,
    frames: int,
    size: int,
    out: str | Path,
    fps: int = 8,
) -> Path:
    """GIF: video ``video`` of ``data`` (first window, centre crop), then one VPN clip per class."""
    records = load_catalog(data, dataset).records
    if not 0 <= video < len(records):
        raise ConfigError(f"--video {video} is outside 0..{len(records) - 1}")
    decoded = decode_video(records[video].path, short_side=size)
    real = eval_transform(decoded[sliding_windows(len(decoded), frames, 1)[0]], size).mean(0).numpy()
    if classes is None:
        classes = [round(k * (len(space) - 1) / 3) for k in range(4)]
    ds = SyntheticDataset(space, num_videos=max(len(space), 1), frames=frames, size=size, seed=0)
    vpn = ds.batch(classes)[0][:, 0].numpy()
    return write_strip_gif([real, *vpn], out, fps)
