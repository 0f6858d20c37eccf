"""Global motion of a clip measured by phase correlation: does a VPN motion label show in the pixels?

For frames ``a`` and ``b = a`` moved by (dy, dx), the cross-power spectrum ``F_b conj(F_a)`` has phase
``-2 pi (u dy + v dx)``; its inverse transform peaks at (dy, dx). Made robust for smooth, evolving
noise textures (whose own change competes with the motion, see :mod:`videoperlin.vpn.labels`):

* gradient images (complex ``d/dx + i d/dy``) instead of intensities, and a Hann window, so the
  frame borders and the mean level do not dominate;
* the cross-power spectra of all frame pairs ``gap`` frames apart are summed before normalising;
* half whitening, ``C / |C|^0.5``: full whitening (classic phase correlation) lets bands with no
  signal vote as loudly as the texture's own band;
* a parabola through the peak and its neighbours gives the sub-pixel displacement.

What it measures on the ``motion`` preset is in the VPN guide (and tested in tests/test_dataset.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _gradient_image(frames: Tensor) -> Tensor:
    """Central-difference gradients of (T, H, W) frames as complex ``g_x + i g_y`` (zero at the border)."""
    gy, gx = torch.zeros_like(frames), torch.zeros_like(frames)
    gy[:, 1:-1] = frames[:, 2:] - frames[:, :-2]
    gx[:, :, 1:-1] = frames[:, :, 2:] - frames[:, :, :-2]
    return torch.complex(gx, gy)


def _subpixel_peak(surface: Tensor) -> tuple[float, float]:
    """Location of the maximum of a periodic (H, W) surface, refined by a parabola on each axis, wrapped to +-H/2, +-W/2."""
    h, w = surface.shape
    row, col = divmod(int(surface.argmax()), w)
    centre = float(surface[row, col])

    def refine(before: float, after: float) -> float:
        curvature = before - 2.0 * centre + after
        return 0.0 if abs(curvature) < 1e-12 else 0.5 * (before - after) / curvature

    y = row + refine(float(surface[(row - 1) % h, col]), float(surface[(row + 1) % h, col]))
    x = col + refine(float(surface[row, (col - 1) % w]), float(surface[row, (col + 1) % w]))
    return (y - h if y > h / 2 else y), (x - w if x > w / 2 else x)


def global_displacement(frames: Tensor, gap: int = 2) -> tuple[float, float]:
    """(rows, cols) by which the content of (T, H, W) ``frames`` moves in ``gap`` frames (rows grow downwards)."""
    g = _gradient_image(frames.double())
    h, w = frames.shape[1:]
    window = (
        torch.hann_window(h, periodic=False, dtype=torch.float64)[:, None]
        * torch.hann_window(w, periodic=False, dtype=torch.float64)[None, :]
    )
    spectra = torch.fft.fft2((g - g.mean(dim=(1, 2), keepdim=True)) * window)
    cross = (spectra[gap:] * spectra[:-gap].conj()).sum(0)
    return _subpixel_peak(torch.fft.ifft2(cross / cross.abs().clamp_min(1e-12).sqrt()).real)


def motion_direction(displacement: tuple[float, float]) -> float:
    """Screen direction in degrees of a (rows, cols) displacement: 0 = right, 90 = up."""
    rows, cols = displacement
    return math.degrees(math.atan2(-rows, cols)) % 360.0


def angle_between(a: float, b: float) -> float:
    """Smallest difference of two directions in degrees (0..180)."""
    return abs((a - b + 180.0) % 360.0 - 180.0)
