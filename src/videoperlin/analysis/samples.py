"""Sample media: a real dataset clip next to VPN clips of chosen classes, as one animated GIF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videoperlin.data.decode import decode_video
from videoperlin.data.sampling import sliding_windows
from videoperlin.data.sources import load_source
from videoperlin.data.transforms import eval_transform
from videoperlin.errors import ConfigError
from videoperlin.utils.atomic import atomic_path
from videoperlin.vpn import LabelSpace, VPNDataset


def real_and_vpn_gif(data: str, dataset: str | None, video: int, space: LabelSpace, classes: list[int] | None,
                     frames: int, size: int, out: str | Path, fps: int = 8) -> Path:
    """GIF: video ``video`` of ``data`` (first window, centre crop), then one VPN clip per class."""
    from PIL import Image

    records = load_source(data, dataset).records
    if not 0 <= video < len(records):
        raise ConfigError(f"--video {video} is outside 0..{len(records) - 1}")
    decoded = decode_video(records[video].path, short_side=size)
    real = eval_transform(decoded[sliding_windows(len(decoded), frames, 1)[0]], size).mean(0).numpy()
    if classes is None:
        classes = [round(k * (len(space) - 1) / 3) for k in range(4)]
    ds = VPNDataset(space, num_videos=max(len(space), 1), frames=frames, size=size, seed=0)
    vpn = ds.batch(classes)[0][:, 0].numpy()
    gap = np.ones((frames, size, 4), dtype=np.float32)
    strip = np.concatenate([real, gap, *[part for clip in vpn for part in (clip, gap)]][:-1], axis=2)
    images = [Image.fromarray(np.rint(np.clip(f, 0, 1) * 255).astype(np.uint8), mode="L") for f in strip]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return out
