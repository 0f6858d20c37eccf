"""Orientation, direction, spatial- and temporal-frequency tuning of network channels, measured with
drifting sinusoidal gratings, as in V1 physiology.

Stimuli: full-field achromatic gratings ``0.5 + 0.5 c cos(2 pi (sf (x cos d + y sin d) - tf t) + phase)``
moving in direction ``d`` (0 deg = rightward, 90 deg = upward; y points up), at spatial frequency
``sf`` (cycles/pixel) and temporal frequency ``tf`` (cycles/frame), normalised like training clips.
A channel's response is the root-mean-square of its activation over the central region of the
layer's output (away from padding), which for a linear filter such as conv1 is proportional to
the amplitude of its frequency response (phase-invariant, like a complex cell's energy).

Indices (Niell & Stryker, "Highly selective receptive fields in mouse visual cortex",
J. Neurosci. 28(30), 2008), at the preferred spatial and temporal frequency:

* DSI = (R_pref - R_opp) / (R_pref + R_opp), R_opp the response to the opposite direction;
* OSI = (R_pref_ori - R_orth) / (R_pref_ori + R_orth), orientation responses being the mean of
  the two directions along an axis, R_orth the response 90 deg away.

Both lie in [0, 1]; a motion-blind (space-time separable, temporally symmetric) filter has DSI = 0.

**Significance.** DSI alone rates random (Kaiming) kernels as selective (mean 0.45): any asymmetric
noise prefers some direction. For the network's input-facing 3D convolution (``conv1`` of an r3d
model, linear in the stimulus) the test works on the kernel itself. Its achromatic kernel (RGB
weights summed after the input normalisation) has a spatiotemporal energy spectrum E(k, w); a
grating drifting along k at temporal frequency w excites E(k, w), the opposite direction E(k, -w).
The *motion asymmetry* ``sum |E(k, w) - E(k, -w)| / sum (E(k, w) + E(k, -w))`` over the whole spectrum
(:func:`motion_asymmetry`) is 0 for any motion-blind (time-symmetric) filter. Its null distribution
comes from the *same* kernel with its temporal slices randomly permuted, which keeps every frame's
spatial pattern and the energy but destroys a coherent progression in time (:func:`direction_null`);
a channel is significantly direction selective when its p-value
``(1 + #{null >= observed}) / (1 + permutations)`` is below ``alpha``. A drifting kernel loses its
asymmetry when shuffled (significant); a static kernel is unchanged by shuffling (p = 1); a random
kernel is as asymmetric shuffled as not (significant at about the rate alpha). Tested on hand-built
kernels and random initialisations (tests/test_analysis.py). Why not DSI against that null: a
peak-to-opposite ratio at one (sf, tf) is noisy on 7-frame kernels (10% of shuffles of a hand-built
drifting kernel reach its DSI), and so is the same asymmetry summed over the coarse grating grid;
the full spectrum has the power (p <= 0.01 on those kernels with 200 permutations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from videoperlin.data.config import KINETICS_STD
from videoperlin.data.transforms import normalize
from videoperlin.errors import ConfigError

DEFAULT_DIRECTIONS = tuple(range(0, 360, 30))
DEFAULT_SF = (0.04, 0.08, 0.125, 0.18, 0.25)  # cycles per pixel
DEFAULT_TF = (0.0625, 0.125, 0.25, 0.375)  # cycles per frame


class _Stop(Exception):
    """Raised by the probe hook to end the forward pass once the layer has been seen."""


@dataclass
class TuningResult:
    """Responses (channels, directions, sf, tf) and per-channel preferences and indices."""

    responses: np.ndarray
    directions: np.ndarray
    sfs: np.ndarray
    tfs: np.ndarray

    def preferred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices of each channel's preferred (direction, sf, tf)."""
        flat = self.responses.reshape(len(self.responses), -1).argmax(1)
        return np.unravel_index(flat, self.responses.shape[1:])

    def indices(self) -> dict[str, np.ndarray]:
        """Per-channel preferred direction/orientation/sf/tf and DSI/OSI at the preferred sf and tf."""
        d, s, t = self.preferred()
        channels = np.arange(len(self.responses))
        curve = self.responses[channels, :, s, t]  # (C, directions) at the preferred sf/tf
        n = len(self.directions)
        opposite = curve[channels, (d + n // 2) % n]
        peak = curve[channels, d]
        axis = (curve + np.roll(curve, -(n // 2), axis=1)) / 2  # orientation response of each axis
        orth = axis[channels, (d + n // 4) % n]
        with np.errstate(invalid="ignore", divide="ignore"):
            dsi = np.nan_to_num((peak - opposite) / (peak + opposite))
            osi = np.nan_to_num((axis[channels, d] - orth) / (axis[channels, d] + orth))
        return {
            "pref_direction": self.directions[d],
            "pref_orientation": self.directions[d] % 180,
            "pref_sf": self.sfs[s],
            "pref_tf": self.tfs[t],
            "dsi": dsi,
            "osi": osi,
            "peak": peak,
        }


def grating(
    direction_deg: float, sf: float, tf: float, frames: int, size: int, phase: float = 0.0, contrast: float = 1.0
) -> Tensor:
    """One drifting grating clip (3, T, size, size) in [0, 1]."""
    angle = math.radians(direction_deg)
    t = torch.arange(frames, dtype=torch.float64)[:, None, None]
    y = -torch.arange(size, dtype=torch.float64)[None, :, None]  # y points up
    x = torch.arange(size, dtype=torch.float64)[None, None, :]
    wave = torch.cos(2 * math.pi * (sf * (x * math.cos(angle) + y * math.sin(angle)) - tf * t) + phase)
    return (0.5 + 0.5 * contrast * wave).float()[None].expand(3, -1, -1, -1)


def default_layer(model: nn.Module) -> str:
    """conv1 for 3D models; conv1_t (after conv1_s, BN and ReLU) for (2+1)D models."""
    names = dict(model.named_modules())
    return "conv1" if "conv1" in names else "conv1_t"


def layer_responses(model: nn.Module, clips: Tensor, layer: str, margin: int = 2) -> Tensor:
    """RMS activation per channel (B, C) of ``layer`` for normalised ``clips``, cropping ``margin``."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ConfigError(f"layer {layer!r} is not in the model; e.g. conv1, layer1, layer2.0.conv1")
    captured: list[Tensor] = []

    def hook(_module, _inputs, output):
        captured.append(output)
        raise _Stop

    handle = modules[layer].register_forward_hook(hook)
    try:
        model(normalize(clips))
    except _Stop:
        pass
    finally:
        handle.remove()
    out = captured[0].float()
    t, h, w = out.shape[2:]
    mt, mh, mw = (min(margin, (n - 1) // 2) for n in (t, h, w))
    out = out[:, :, mt : t - mt or None, mh : h - mh or None, mw : w - mw or None]
    return out.pow(2).mean(dim=(2, 3, 4)).sqrt()


@torch.no_grad()
def measure_tuning(
    model: nn.Module,
    layer: str | None = None,
    directions=DEFAULT_DIRECTIONS,
    sfs=DEFAULT_SF,
    tfs=DEFAULT_TF,
    frames: int = 16,
    size: int = 64,
    batch: int = 24,
) -> TuningResult:
    """Responses of every channel of ``layer`` to all gratings (averaged over 2 spatial phases)."""
    if len(directions) % 4:
        raise ConfigError(f"{len(directions)} directions: use a multiple of 4 so opposite and orthogonal ones exist")
    model = model.eval()
    layer = layer or default_layer(model)
    grid = [(d, s, t) for d in directions for s in sfs for t in tfs]
    responses = []
    for start in range(0, len(grid), batch):
        part = grid[start : start + batch]
        clips = [grating(d, s, t, frames, size, phase) for d, s, t in part for phase in (0.0, math.pi / 2)]
        r = layer_responses(model, torch.stack(clips), layer)
        responses.append(r.view(len(part), 2, -1).mean(1))
    table = torch.cat(responses).T.reshape(-1, len(directions), len(sfs), len(tfs)).numpy()
    return TuningResult(
        table, np.asarray(directions, dtype=float), np.asarray(sfs, dtype=float), np.asarray(tfs, dtype=float)
    )


def input_kernels(model: nn.Module, layer: str | None = None) -> Tensor:
    """Achromatic kernels (C, kt, kh, kw), float64, of the input-facing 3D conv: the RGB weights divided
    by the input normalisation's std and summed (gratings are the same in all three channels)."""
    conv = getattr(model, "conv1", None)
    if (layer or "conv1") != "conv1" or not isinstance(conv, nn.Conv3d) or conv.weight.shape[2] < 2:
        raise ConfigError(
            f"the direction-selectivity test needs the input-facing 3D conv (conv1 of an r3d model), "
            f"not {layer or default_layer(model)!r}; pass --permutations 0 for other layers"
        )
    weight = conv.weight.detach().double().cpu()
    std = torch.tensor(KINETICS_STD[: weight.shape[1]], dtype=torch.float64)
    return (weight / std[None, :, None, None, None]).sum(1)


def motion_asymmetry(kernels: Tensor, grid: int = 16) -> np.ndarray:
    """Per kernel (C, kt, kh, kw), the energy imbalance between (k, w) and (k, -w) over the spectrum (module docstring)."""
    energy = torch.fft.fftn(kernels, s=(grid, grid, grid), dim=(1, 2, 3)).abs() ** 2
    reverse = torch.roll(torch.flip(energy, dims=(1,)), 1, dims=1)  # E(k, -w): index -w is (grid - w) % grid
    total = (energy + reverse).sum((1, 2, 3))
    return ((energy - reverse).abs().sum((1, 2, 3)) / total.clamp_min(1e-30)).numpy()


def direction_null(kernels: Tensor, permutations: int = 200, seed: int = 0) -> np.ndarray:
    """(C, permutations) motion asymmetry of every kernel with its temporal slices randomly permuted."""
    generator = torch.Generator().manual_seed(seed)
    draws = [
        motion_asymmetry(kernels[:, torch.randperm(kernels.shape[1], generator=generator)]) for _ in range(permutations)
    ]
    return np.stack(draws, axis=1)


def direction_p_values(kernels: Tensor, permutations: int = 200, seed: int = 0) -> np.ndarray:
    """Permutation p-value of every kernel's motion asymmetry against its own shuffled versions."""
    observed = motion_asymmetry(kernels)
    null = direction_null(kernels, permutations, seed)
    return (1 + (null >= observed[:, None] - 1e-12).sum(1)) / (1 + permutations)


def write_tuning_csv(
    result: TuningResult, path, p_values: np.ndarray | None = None, asymmetry: np.ndarray | None = None
) -> None:
    """One row per channel: preferences, DSI, motion asymmetry and its permutation p-value, OSI, peak response."""
    from videoperlin.utils.atomic import atomic_write_text

    idx = result.indices()
    missing = np.full(len(result.responses), np.nan)
    p = p_values if p_values is not None else missing
    asymmetry = asymmetry if asymmetry is not None else missing
    lines = [
        "channel,pref_direction_deg,pref_orientation_deg,pref_sf_cyc_per_px,pref_tf_cyc_per_frame,dsi,"
        "motion_asymmetry,direction_p,osi,peak"
    ]
    for c in range(len(result.responses)):
        lines.append(
            f"{c},{idx['pref_direction'][c]:.0f},{idx['pref_orientation'][c]:.0f},{idx['pref_sf'][c]:.4g},"
            f"{idx['pref_tf'][c]:.4g},{idx['dsi'][c]:.4f},{asymmetry[c]:.4f},{p[c]:.4f},{idx['osi'][c]:.4f},"
            f"{idx['peak'][c]:.5g}"
        )
    atomic_write_text(path, "\n".join(lines) + "\n")


def summary(result: TuningResult, p_values: np.ndarray | None = None, alpha: float = 0.05) -> dict[str, float]:
    """Mean and median DSI/OSI and the fractions of channels with DSI or OSI above 0.3, over channels
    that respond at all. Given permutation p-values: the fraction whose direction preference is
    significant (p < alpha), and the fraction *direction selective*: significant and DSI > 0.3 (a
    smooth kernel with a slight but coherent drift is significant without being selective)."""
    idx = result.indices()
    alive = idx["peak"] > 1e-6 * max(float(idx["peak"].max()), 1e-12)
    dsi, osi = idx["dsi"][alive], idx["osi"][alive]
    out = {
        "channels": int(alive.sum()),
        "mean_dsi": float(dsi.mean()),
        "median_dsi": float(np.median(dsi)),
        "mean_osi": float(osi.mean()),
        "median_osi": float(np.median(osi)),
        "frac_dsi_gt_0.3": float((dsi > 0.3).mean()),
        "frac_osi_gt_0.3": float((osi > 0.3).mean()),
    }
    if p_values is not None:
        significant = p_values[alive] < alpha
        out.update(
            {
                "frac_direction_significant": float(significant.mean()),
                "frac_direction_selective": float((significant & (dsi > 0.3)).mean()),
                "alpha": alpha,
            }
        )
    return out


def plot_tuning(results: dict[str, TuningResult], out_dir, top: int = 6, p_values: dict | None = None) -> list:
    """dsi_osi_hist.png (all checkpoints overlaid) and polar_<name>.png (most direction-selective channels)."""
    from pathlib import Path

    from videoperlin.utils.plotting import pyplot, save_figure

    plt = pyplot()
    out_dir = Path(out_dir)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    bins = np.linspace(0, 1, 21)
    for name, result in results.items():
        idx = result.indices()
        for ax, key in zip(axes, ("dsi", "osi")):
            ax.hist(idx[key], bins=bins, histtype="step", linewidth=1.5, label=f"{name} (mean {idx[key].mean():.2f})")
    for ax, key in zip(axes, ("DSI", "OSI")):
        ax.set_xlabel(key)
        ax.set_ylabel("channels")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [save_figure(fig, out_dir / "dsi_osi_hist.png")]
    for name, result in results.items():
        idx = result.indices()
        _d, s, t = result.preferred()
        order = np.argsort(-idx["dsi"])[:top]
        fig, axes = plt.subplots(
            1, len(order), subplot_kw={"projection": "polar"}, figsize=(2.2 * len(order), 2.6), squeeze=False
        )
        angles = np.radians(np.append(result.directions, result.directions[0]))
        for ax, c in zip(axes[0], order):
            curve = result.responses[c, :, s[c], t[c]]
            ax.plot(angles, np.append(curve, curve[0]))
            p = "" if not p_values or name not in p_values else f", p {p_values[name][c]:.3f}"
            ax.set_title(f"ch {c}: DSI {idx['dsi'][c]:.2f}{p}", fontsize=8)
            ax.set_yticklabels([])
        fig.suptitle(f"{name}: most direction-selective channels", fontsize=9)
        fig.tight_layout()
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        paths.append(save_figure(fig, out_dir / f"polar_{safe}.png"))
    return paths
