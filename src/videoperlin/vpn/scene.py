"""Scenes of moving layers: the machinery the ``layers`` and ``shapes`` families share, and colour.

A layer is a still canvas -- a texture (B, C, Hc, Wc) and, in front of the background, a soft
mask (B, 1, Hc, Wc) in [0, 1] -- and a trajectory: where its canvas sits at each frame. Frame t of
the clip is the background, then each foreground layer over it in order
(``out = mask * texture + (1 - mask) * out``), so a nearer layer occludes what is behind it and its
mask's edge is a motion boundary. Everything moves by resampling the still canvases (bilinear
``grid_sample``), which costs one pass per layer and allows any motion: constant velocity,
acceleration, and a camera (zoom, rotation, shift) applied to every layer alike.

Coordinates: pixels, +x right, +y **up** (as the VPN labels: 90 degrees moves towards row 0).
A layer's ``offset`` (B, T, 2) is how far its content has moved at frame t; the camera's
``zoom``/``rotation`` (B, T) scale and turn the whole frame about its centre (rotation
counter-clockwise on screen, in degrees) and ``shift`` (B, T, 2) moves it. Canvases have the frame's
size and are periodic (tileable Perlin fields): content that leaves on one side comes back on the
other, without a seam (:func:`warp` samples a tiling of the canvas, so bilinear sampling across
the edge is exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Camera:
    """Per-frame zoom factor, rotation in degrees and shift in pixels (B, T), (B, T), (B, T, 2)."""

    zoom: Tensor
    rotation: Tensor
    shift: Tensor

    @classmethod
    def still(cls, batch: int, frames: int, device: torch.device) -> Camera:
        ones = torch.ones(batch, frames, dtype=torch.float64, device=device)
        return cls(ones, torch.zeros_like(ones), torch.zeros(batch, frames, 2, dtype=torch.float64, device=device))


def ramp(frames: int, device: torch.device) -> Tensor:
    """t / (T - 1) for t = 0..T-1 (0 at the first frame, 1 at the last), float64 (T,)."""
    return torch.arange(frames, dtype=torch.float64, device=device) / max(frames - 1, 1)


def trajectory(velocity: Tensor, acceleration: Tensor, frames: int) -> Tensor:
    """Offsets (B, T, 2) of content moving ``velocity`` (B, 2) pixels over the clip on average, its speed
    scaled from (1 - a) to (1 + a) of that over the clip by ``acceleration`` a (B,): position
    ``v (s + a (s^2 - s))`` with s = t / (T - 1), which ends at ``v`` whatever ``a``."""
    s = ramp(frames, velocity.device)[None, :, None]
    a = acceleration[:, None, None]
    return velocity[:, None, :] * (s + a * (s * s - s))


def canvas_map(offset: Tensor, camera: Camera, canvas: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """(B, T, 2, 3) affine maps from a frame's normalised pixel coordinates (corners aligned: -1 and 1 are
    the first and last pixel) to canvas pixel coordinates (column, row).

    A frame pixel at (x, y) from the frame centre (+y up) shows the canvas at
    ``R(-rotation) (x, y) / zoom - camera shift - layer offset``.
    """
    (hc, wc), (h, w) = canvas, size
    angle, zoom = torch.deg2rad(camera.rotation), camera.zoom
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    moved = camera.shift + offset
    return torch.stack(
        [
            torch.stack([cos * (w - 1) / 2, -sin * (h - 1) / 2, (wc - 1) / 2 - moved[..., 0]], -1),
            torch.stack([sin * (w - 1) / 2, cos * (h - 1) / 2, (hc - 1) / 2 + moved[..., 1]], -1),
        ],
        -2,
    )


def warp(canvas: Tensor, offset: Tensor, camera: Camera, size: tuple[int, int]) -> Tensor:
    """A still, periodic canvas (B, C, Hc, Wc) seen through its trajectory and the camera: (B, C, T, H, W).

    Each frame's footprint on the canvas reaches ``r`` pixels from its centre; the centre is moved by
    whole periods into ``[r, r + period)``, so the footprint lies in a tiling of
    ``ceil((period + 2 r + 1) / period)`` periods without wrapping (2 for a plain translation). The
    sampling grid is one broadcast addition per coordinate (a row term plus a column term), written
    coordinate-major and handed to ``grid_sample`` as a permuted view (adding into the interleaved
    (..., 2) layout directly took 40% of a ``layers`` batch), and the T frames are sampled as T x H rows
    of one ``grid_sample`` per clip: no per-frame copy of the canvas and no per-pixel wrap.
    """
    batch, channels, hc, wc = canvas.shape
    frames, (h, w) = offset.shape[1], size
    theta = canvas_map(offset, camera, (hc, wc), size)
    xs = torch.linspace(-1.0, 1.0, w, dtype=torch.float64, device=canvas.device)
    ys = torch.linspace(-1.0, 1.0, h, dtype=torch.float64, device=canvas.device)
    grid, tiles = torch.empty(2, batch, frames, h, w, device=canvas.device), []
    for axis, period in ((0, wc), (1, hc)):
        a = theta[..., axis, :]
        reach = float((a[..., 0].abs() + a[..., 1].abs()).amax())
        tiles.append(math.ceil((period + 2 * reach + 1) / period))
        scale = 2 / (tiles[-1] * period - 1)  # tiled-canvas pixels -> normalised coordinates
        centre = (reach + torch.remainder(a[..., 2] - reach, period)) * scale - 1
        across = ((a[..., 0, None] * xs) * scale).float()  # (B, T, W)
        down = ((a[..., 1, None] * ys) * scale + centre[..., None]).float()  # (B, T, H)
        torch.add(across[:, :, None, :], down[:, :, :, None], out=grid[axis])
    tiled = canvas.repeat(1, 1, tiles[1], tiles[0])
    grid = grid.permute(1, 2, 3, 4, 0).view(batch, frames * h, w, 2)
    out = F.grid_sample(tiled, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.view(batch, channels, frames, h, w)


def composite(background: Tensor, layers: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Background (B, C, T, H, W) with (texture, mask) layers over it, nearest last."""
    out = background
    for texture, mask in layers:
        out = torch.lerp(out, texture, mask)
    return out


def soft_threshold(field: Tensor, level: Tensor, softness: float) -> Tensor:
    """A mask in [0, 1] from a field: 1 where ``field`` is well above ``level`` (B,), 0 well below,
    a smooth edge ``softness`` wide in the field's units (an anti-aliased boundary)."""
    return torch.sigmoid((field - level.view(-1, *([1] * (field.dim() - 1)))) / softness)


def tint(gray: Tensor, hue: Tensor, saturation: Tensor) -> Tensor:
    """Gray clips (B, 1, ...) in [0, 1] as colour clips (B, 3, ...): value = gray, one hue and saturation
    per clip (HSV; saturation 0 is the gray clip in three channels). With value the only per-pixel
    quantity, HSV -> RGB is a per-clip factor per channel: ``v (1 - s max(0, min(k, 4 - k, 1)))`` with
    ``k = (n + 6 h) mod 6`` for n = 5, 3, 1 -- one multiplication of the clip."""
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0], dtype=torch.float64, device=hue.device) + 6.0 * hue[:, None], 6.0)
    factor = 1 - saturation[:, None] * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)  # (B, 3)
    return gray * factor.to(gray).view(-1, 3, *([1] * (gray.dim() - 2)))


def unit_direction(degrees: Tensor) -> Tensor:
    """(B, 2) unit vectors (x, y) of directions in degrees, 0 right, 90 up."""
    radians = torch.deg2rad(degrees.double())
    return torch.stack([torch.cos(radians), torch.sin(radians)], dim=-1)


__all__ = [
    "Camera",
    "canvas_map",
    "composite",
    "ramp",
    "soft_threshold",
    "tint",
    "trajectory",
    "unit_direction",
    "warp",
]
