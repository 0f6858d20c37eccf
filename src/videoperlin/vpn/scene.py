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
other, without a seam (the canvas is padded by one wrapped row and column, so bilinear sampling
across the edge is exact).
"""

from __future__ import annotations

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


def sampling_grid(offset: Tensor, camera: Camera, canvas: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """(B*T, H, W, 2) normalised coordinates, in the canvas padded by one wrapped row and column, of every
    frame pixel, for ``grid_sample(align_corners=True)``."""
    (hc, wc), (h, w) = canvas, size
    device = offset.device
    ys = (h - 1) / 2 - torch.arange(h, dtype=torch.float64, device=device)  # +y up, 0 at the frame centre
    xs = torch.arange(w, dtype=torch.float64, device=device) - (w - 1) / 2
    angle = torch.deg2rad(camera.rotation)[..., None, None]
    zoom = camera.zoom[..., None, None]
    # undo the camera: turn back, unzoom, unshift; then undo the layer's own motion
    x = (torch.cos(angle) * xs[None, None, None, :] + torch.sin(angle) * ys[None, None, :, None]) / zoom
    y = (-torch.sin(angle) * xs[None, None, None, :] + torch.cos(angle) * ys[None, None, :, None]) / zoom
    x = x - (camera.shift[..., 0] + offset[..., 0])[..., None, None]
    y = y - (camera.shift[..., 1] + offset[..., 1])[..., None, None]
    column = torch.remainder(x + (wc - 1) / 2, wc)  # canvas pixel coordinates, wrapped
    row = torch.remainder((hc - 1) / 2 - y, hc)
    grid = torch.stack([2 * column / wc - 1, 2 * row / hc - 1], dim=-1)  # over wc + 1 padded pixels: [-1, 1]
    return grid.reshape(-1, h, w, 2).float()


def warp(canvas: Tensor, offset: Tensor, camera: Camera, size: tuple[int, int]) -> Tensor:
    """A still canvas (B, C, Hc, Wc) seen through its trajectory and the camera: (B, C, T, H, W)."""
    batch, channels, hc, wc = canvas.shape
    frames = offset.shape[1]
    grid = sampling_grid(offset, camera, (hc, wc), size)
    padded = torch.cat([canvas, canvas[:, :, :1]], dim=2)
    padded = torch.cat([padded, padded[..., :1]], dim=3)  # one wrapped row and column
    stacked = padded[:, None].expand(-1, frames, -1, -1, -1).reshape(batch * frames, channels, hc + 1, wc + 1)
    out = F.grid_sample(stacked, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.view(batch, frames, channels, *size).transpose(1, 2)


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
    per clip (HSV; saturation 0 is the gray clip in three channels)."""
    shape = (-1,) + (1,) * (gray.dim() - 1)
    h, s = (hue.view(shape) * 6.0).to(gray), saturation.view(shape).to(gray)
    channels = []
    for n in (5.0, 3.0, 1.0):  # the standard HSV -> RGB: v - v s max(0, min(k, 4 - k, 1)), k = (n + 6h) mod 6
        k = torch.remainder(n + h, 6.0)
        channels.append(gray * (1 - s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)))
    return torch.cat(channels, dim=1)


def unit_direction(degrees: Tensor) -> Tensor:
    """(B, 2) unit vectors (x, y) of directions in degrees, 0 right, 90 up."""
    radians = torch.deg2rad(degrees.double())
    return torch.stack([torch.cos(radians), torch.sin(radians)], dim=-1)


__all__ = ["Camera", "composite", "ramp", "sampling_grid", "soft_threshold", "tint", "trajectory",
           "unit_direction", "warp"]
