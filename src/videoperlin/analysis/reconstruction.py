"""The masked autoencoder's picture: masked input, reconstruction and target of a few clips.

Rows come in threes per clip -- the input with its masked tubelets grey, the reconstruction (the
predicted tubelets, un-normalised with the target tubelet's own mean and standard deviation, as
VideoMAE's visualisation does, pasted among the visible ones), and the clip itself; columns are frames
spread over the clip.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from videoperlin.utils.plotting import pyplot, save_figure

#: Clips and frames shown.
CLIPS, FRAMES = 4, 4


@torch.no_grad()
def reconstruct(autoencoder: nn.Module, inputs: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
    """(where masked: boolean (B, C, T, H, W), reconstruction in the normalised scale of ``inputs``)."""
    from videoperlin.train.objectives.mae import normalise_patches, patchify, unpatchify

    tubelet, patch, _ = autoencoder.model.patch_embed.size
    autoencoder.eval()
    predicted = autoencoder.predict(inputs, masked).float()
    patches = patchify(inputs.float(), tubelet, patch)
    shaped = predicted.reshape(predicted.shape[0], predicted.shape[1], *patches.shape[-2:])
    if autoencoder.norm_target:
        _, mean, std = normalise_patches(patches)
        b = patches.shape[0]
        shaped = shaped * std[masked].reshape(b, -1, 1, patches.shape[-1]) + mean[masked].reshape(
            b, -1, 1, patches.shape[-1]
        )
    rebuilt = patches.clone()
    rebuilt[masked] = shaped.reshape(-1, *patches.shape[-2:])
    shape = tuple(inputs.shape)
    where = masked[:, :, None, None].expand(patches.shape).float()
    return unpatchify(where, shape, tubelet, patch) > 0, unpatchify(rebuilt, shape, tubelet, patch)


def save_reconstruction_figure(
    autoencoder: nn.Module, inputs: Tensor, masked: Tensor, mean, std, path: Path, title: str
) -> Path:
    """Write the figure (module docstring) for the first :data:`CLIPS` clips of ``inputs``; return its path."""
    plt = pyplot()
    inputs, masked = inputs[:CLIPS], masked[:CLIPS]
    where, rebuilt = reconstruct(autoencoder, inputs, masked)
    scale = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1, 1)
    shift = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
    frames = torch.linspace(0, inputs.shape[2] - 1, FRAMES).round().long().tolist()
    rows = [("masked input", inputs.float()), ("reconstruction", rebuilt), ("target", inputs.float())]
    fig, axes = plt.subplots(3 * len(inputs), FRAMES, figsize=(1.3 * FRAMES, 1.3 * 3 * len(inputs)), squeeze=False)
    for clip in range(len(inputs)):
        for row, (label, clips) in enumerate(rows):
            pixels = (clips[clip : clip + 1].cpu() * scale + shift).clamp(0, 1)[0]
            if label == "masked input":
                pixels = torch.where(where[clip].cpu(), torch.tensor(0.5), pixels)
            for col, t in enumerate(frames):
                ax = axes[3 * clip + row, col]
                ax.imshow(pixels[:, t].permute(1, 2, 0).numpy(), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(label, fontsize=6)
                if clip == 0 and row == 0:
                    ax.set_title(f"frame {t}", fontsize=6)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
