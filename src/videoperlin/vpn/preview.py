"""Pictures of a label space: a grid of one frame per class (PNG) and an animated GIF of a few classes.

The ``perlin`` family gets the paper's teaser layout (fx down, fy across; motion classes with arrows);
any other family a grid of its classes in index order, titled with their names."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from videoperlin.errors import ConfigError
from videoperlin.utils.atomic import atomic_path
from videoperlin.utils.plotting import pyplot, save_figure
from videoperlin.vpn.dataset import SyntheticDataset
from videoperlin.vpn.labels import AXIS_NAMES as FREQUENCY_AXES
from videoperlin.vpn.labels import MOTION_AXES

#: Classes shown by the generic grid (the first ones, in index order) and its columns.
GRID_CLASSES, GRID_COLUMNS = 48, 8


def _one_clip_per_class(ds: SyntheticDataset, classes: list[int]) -> np.ndarray:
    """Clips (K, T, H, W, 3) in [0, 1] (RGB, for ``imshow`` and GIFs): the first sample index of each class."""
    if max(classes) >= len(ds):
        raise ConfigError(
            f"the preview shows class {max(classes)}, but the set has only {len(ds)} videos; raise --num-videos"
        )
    clips, _ = ds.batch(classes)  # index k < num_classes has label k
    return clips.permute(0, 2, 3, 4, 1).numpy()


def _check_view(ds: SyntheticDataset, ft: int | None, frame: int | None) -> tuple[int, int]:
    ft = ds.space.ft[0] if ft is None else ft
    if ft not in ds.space.ft:
        raise ConfigError(f"--show-ft {ft} is not in the label space's ft list {list(ds.space.ft)}")
    frame = ds.frames // 2 if frame is None else frame
    if not 0 <= frame < ds.frames:
        raise ConfigError(f"--frame {frame} is outside 0..{ds.frames - 1}")
    return ft, frame


def preview_grid(ds: SyntheticDataset, out: str | Path, ft: int | None = None, frame: int | None = None) -> Path:
    """Teaser-style grid: x-frequency down the rows, y-frequency across the columns, one frame per class
    (static classes). A space with motion axes gets :func:`motion_grid` instead.

    ``ft`` picks the temporal frequency shown (default: the lowest); ``frame`` the frame (default: middle).
    """
    if not set(FREQUENCY_AXES) <= set(ds.space.axes):
        return class_grid(ds, out, frame)
    if "direction" in ds.space.axes:
        return motion_grid(ds, out, ft, frame)
    plt = pyplot()
    space = ds.space
    ft, frame = _check_view(ds, ft, frame)
    classes = [space.index(fx, fy, ft) for fx in space.fx for fy in space.fy]
    clips = _one_clip_per_class(ds, classes)
    rows, cols = len(space.fx), len(space.fy)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 0.6, 1.1 * rows + 0.6), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.imshow(clips[k, frame], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    for r, fx in enumerate(space.fx):
        axes[r, 0].set_ylabel(f"fx={fx}", fontsize=8)
    for c, fy in enumerate(space.fy):
        axes[0, c].set_title(f"fy={fy}", fontsize=8)
    fig.suptitle(f"VPN classes at ft={ft} (frame {frame} of {ds.frames}, {ds.height}x{ds.width})", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)


def class_grid(ds: SyntheticDataset, out: str | Path, frame: int | None = None) -> Path:
    """Any family: one frame of the first clip of each of the first :data:`GRID_CLASSES` classes."""
    plt = pyplot()
    frame = ds.frames // 2 if frame is None else frame
    if not 0 <= frame < ds.frames:
        raise ConfigError(f"--frame {frame} is outside 0..{ds.frames - 1}")
    classes = list(range(min(GRID_CLASSES, len(ds.space))))
    clips = _one_clip_per_class(ds, classes)
    cols = min(GRID_COLUMNS, len(classes))
    rows = math.ceil(len(classes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols + 0.4, 1.4 * rows + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, ax in zip(classes, axes.flat):
        ax.imshow(clips[k, frame], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(ds.space.name(k), fontsize=5)
        _draw_arrow(ax, ds.family.arrow(k), ds.width, ds.height)
    shown = f"first {len(classes)} of {len(ds.space)}" if len(classes) < len(ds.space) else f"all {len(ds.space)}"
    fig.suptitle(
        f"family {ds.family.name}: {shown} classes (frame {frame} of {ds.frames}, {ds.height}x{ds.width})", fontsize=8
    )
    fig.tight_layout()
    return save_figure(fig, out)


def _draw_arrow(ax, motion: tuple[float, float] | None, width: int, height: int) -> None:
    """The class's motion over the clip as a red arrow from the frame centre (true length; +y up)."""
    if motion is None or not any(motion):
        return
    dx, dy = motion
    ax.annotate(
        "",
        xy=(width / 2 + dx / 2, height / 2 - dy / 2),
        xytext=(width / 2 - dx / 2, height / 2 + dy / 2),
        arrowprops={"arrowstyle": "->", "color": "red", "lw": 1.2},
    )


def motion_grid(ds: SyntheticDataset, out: str | Path, ft: int | None = None, frame: int | None = None) -> Path:
    """Motion classes of the first (fx, fy) at ``ft``: speeds down the rows, directions across, one frame
    each with an arrow of the class's motion (length proportional to its pixel speed)."""
    from videoperlin.vpn.families.perlin import PerlinFamily

    family = ds.family
    if not isinstance(family, PerlinFamily):
        raise ConfigError(f"the motion grid lays out perlin's motion classes; draw {family.name} with class_grid")
    plt = pyplot()
    space = ds.space
    ft, frame = _check_view(ds, ft, frame)
    fx, fy = space.fx[0], space.fy[0]
    rows, cols = len(space.speed), len(space.direction)
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 0.6, 1.1 * rows + 0.8), squeeze=False)
    fastest = max(math.hypot(*family.velocity(k)) for k in range(len(space))) or 1.0
    for r, speed in enumerate(space.speed):
        for c, direction in enumerate(space.direction):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if speed == 0 and c:
                ax.axis("off")  # a static class has no direction
                continue
            k = space.index(fx, fy, ft, direction, speed)
            ax.imshow(_one_clip_per_class(ds, [k])[0, frame], cmap="gray", vmin=0.0, vmax=1.0)
            vx, vy = family.velocity(k)
            length = 0.42 * ds.width * math.hypot(vx, vy) / fastest
            angle = math.radians(direction)
            if speed:
                ax.annotate(
                    "",
                    xy=(ds.width / 2 + length * math.cos(angle), ds.height / 2 - length * math.sin(angle)),
                    xytext=(ds.width / 2, ds.height / 2),
                    arrowprops={"arrowstyle": "->", "color": "red", "lw": 1.5},
                )
            ax.set_title(space.name(k).split("_", 3)[-1], fontsize=6)
    fig.suptitle(
        f"VPN motion classes at fx={fx}, fy={fy}, ft={ft} (frame {frame} of {ds.frames}; "
        f"arrows: direction, length = pixel speed)",
        fontsize=8,
    )
    fig.tight_layout()
    return save_figure(fig, out)


def preview_gif(ds: SyntheticDataset, out: str | Path, classes: list[int] | None = None, fps: int = 8) -> Path:
    """Animated GIF of a few classes side by side (default: up to 6 spread over the label space; with
    motion axes, the fastest speed of the first texture in every listed direction)."""
    s = ds.space
    if classes is None and set(FREQUENCY_AXES + MOTION_AXES) <= set(s.axes):
        classes = [s.index(s.fx[0], s.fy[0], s.ft[0], d, max(s.speed)) for d in s.direction][:8]
    if classes is None:
        count = min(6, len(ds.space))
        classes = sorted({round(k * (len(ds.space) - 1) / max(count - 1, 1)) for k in range(count)})
    bad = [k for k in classes if not 0 <= k < len(ds.space)]
    if bad:
        raise ConfigError(f"class indices {bad} are outside 0..{len(ds.space) - 1}")
    return write_strip_gif(list(_one_clip_per_class(ds, classes)), out, fps)


def write_strip_gif(clips: list[np.ndarray], out: str | Path, fps: int = 8, gap: int = 4) -> Path:
    """Clips (T, H, W) gray or (T, H, W, 3) RGB in [0, 1] side by side (white gaps) as an animated GIF,
    written atomically (gray when every clip is gray: 256 exact levels)."""
    from PIL import Image

    clips = [c if c.ndim == 4 else np.repeat(c[..., None], 3, axis=-1) for c in clips]
    spacer = np.ones((clips[0].shape[0], clips[0].shape[1], gap, 3), dtype=np.float32)
    strip = np.rint(np.clip(np.concatenate([p for c in clips for p in (c, spacer)][:-1], axis=2), 0, 1) * 255)
    gray = bool((strip == strip[..., :1]).all())
    frames = [
        Image.fromarray(f[..., 0].astype(np.uint8), mode="L")
        if gray
        else Image.fromarray(f.astype(np.uint8), mode="RGB")
        for f in strip
    ]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return out
