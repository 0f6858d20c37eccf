"""Objective ``mae``: VideoMAE's masked autoencoding -- no labels, any clips (every family, real video).

Written from Tong et al., *VideoMAE* (NeurIPS 2022), after He et al.'s image MAE:

* **tube masking**: per clip one random set of ``mask_ratio`` of the spatial token positions is masked
  in every frame (a masked patch cannot be copied from its neighbour in time); 0.9 by default, far
  above image MAE's 0.75, since video is redundant;
* the **encoder** (the network being pre-trained: a registered transformer) sees the visible tokens
  only, then a LayerNorm (``encoder_norm``);
* a narrow, shallow **decoder** (``decoder_depth`` blocks of ``decoder_width``, by default half the
  encoder's width) takes the encoded tokens, projected, plus a learned mask token at every masked
  position, each with fixed sine-cosine positions, and predicts the masked tubelets' pixels;
* the **loss** is the mean squared error over the masked tubelets only, each target tubelet
  normalised by its own mean and standard deviation per channel (``norm_target``).

The checkpoint's ``model`` is the encoder alone, so ``train --init`` and ``convert`` take it as any
pre-trained network; the decoder is ``objective_state`` (for resuming). Validation reports the same
loss on held-out clips with a fixed mask per clip (``val_loss``, which picks ``best.pt``); at the end
of a run ``figures/mae.png`` shows masked input, reconstruction and target for a few of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from videoperlin.config_fields import Checked, at_least, in_range, option
from videoperlin.errors import ConfigError
from videoperlin.models.architectures.vit import LAYER_NORM_EPS, Block, VideoViT, sinusoid_table
from videoperlin.train.objectives import Objective, Validator, register_objective
from videoperlin.utils.plotting import pyplot, save_figure

log = logging.getLogger(__name__)
#: Seed offset of the fixed validation masks (a clip's mask depends only on its video index).
VAL_MASK_SEED = 7_919


@dataclass
class MAEOptions(Checked):
    """Options of ``mae`` (module docstring)."""

    mask_ratio: float = option(
        0.9, "share of the token positions masked, the same in every frame (tube masking)", in_range(0, 1, True, True)
    )
    decoder_width: int | None = option(None, "decoder width (null: half the encoder's)", at_least(8))
    decoder_depth: int = option(4, "decoder blocks", at_least(1))
    decoder_heads: int | None = option(None, "decoder attention heads (null: width / 64, at least 2)", at_least(1))
    norm_target: bool = option(True, "normalise each target tubelet by its own mean and standard deviation")


def patchify(clips: Tensor, tubelet: int, patch: int) -> Tensor:
    """(B, C, T, H, W) -> (B, N, t*p*p, C): the pixels of every tubelet, tokens in (t, h, w) order."""
    b, c, t, h, w = clips.shape
    x = clips.reshape(b, c, t // tubelet, tubelet, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, -1, tubelet * patch * patch, c)


def unpatchify(patches: Tensor, shape: tuple[int, ...], tubelet: int, patch: int) -> Tensor:
    """The inverse of :func:`patchify` for clips of ``shape`` (B, C, T, H, W)."""
    b, c, t, h, w = shape
    x = patches.reshape(b, t // tubelet, h // patch, w // patch, tubelet, patch, patch, c)
    return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(shape)


def normalise_patches(patches: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(normalised, mean, std) of (B, N, P, C) patches over their P pixels, per channel (VideoMAE's target)."""
    mean = patches.mean(dim=-2, keepdim=True)
    std = patches.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
    return (patches - mean) / std, mean, std


def tube_mask(grid: tuple[int, int, int], ratio: float, batch: int, generator: torch.Generator) -> Tensor:
    """(B, N) boolean, True where masked: per clip a random ``ratio`` of the h x w positions, in every frame."""
    frames, rows, cols = grid
    positions = rows * cols
    masked = round(ratio * positions)
    if not 0 < masked < positions:
        raise ConfigError(
            f"objective.mask_ratio {ratio} masks {masked} of {positions} token positions per frame; each clip needs "
            f"some masked and some visible (lower or raise the ratio, or use smaller patches)"
        )
    order = torch.rand(batch, positions, generator=generator).argsort(dim=1)
    spatial = torch.zeros(batch, positions, dtype=torch.bool)
    spatial.scatter_(1, order[:, :masked], True)
    return spatial[:, None, :].expand(batch, frames, positions).reshape(batch, -1)


class MaskedAutoencoder(nn.Module):
    """The network (``model``, a registered transformer) as VideoMAE's encoder, with its decoder."""

    def __init__(self, model: VideoViT, options: MAEOptions) -> None:
        super().__init__()
        self.encoder = model
        width = model.width
        decoder = options.decoder_width or max(8, width // 2)
        heads = options.decoder_heads or max(2, round(decoder / 64))
        self.encoder_norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.encoder_to_decoder = nn.Linear(width, decoder, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder))
        self.decoder_blocks = nn.ModuleList(Block(decoder, heads) for _ in range(options.decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder, eps=LAYER_NORM_EPS)
        tubelet, patch, _ = model.patch_embed.size
        self.decoder_head = nn.Linear(decoder, model.options.in_channels * tubelet * patch * patch)
        self.norm_target = options.norm_target
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        for module in (self.encoder_to_decoder, self.decoder_head, *self.decoder_blocks.modules()):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def predict(self, clips: Tensor, masked: Tensor) -> Tensor:
        """Predicted pixels (B, N_masked, t*p*p*C) of the masked tubelets, in the tokens' order."""
        tokens = self.encoder.embed(clips)
        batch, count, width = tokens.shape
        visible = self.encoder.forward_tokens(tokens[~masked].reshape(batch, -1, width))
        z = self.encoder_to_decoder(self.encoder_norm(visible))
        positions = sinusoid_table(count, z.shape[-1]).to(z.device, z.dtype).expand(batch, -1, -1)
        hidden = self.mask_token.to(z.dtype) + positions[masked].reshape(batch, -1, z.shape[-1])
        x = torch.cat([z + positions[~masked].reshape(batch, -1, z.shape[-1]), hidden], dim=1)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_head(self.decoder_norm(x[:, -hidden.shape[1] :]))

    def targets(self, clips: Tensor, masked: Tensor) -> Tensor:
        """The masked tubelets' pixels (B, N_masked, t*p*p*C), normalised per tubelet if ``norm_target``."""
        tubelet, patch, _ = self.encoder.patch_embed.size
        with torch.no_grad():
            patches = patchify(clips.float(), tubelet, patch)
            if self.norm_target:
                patches = normalise_patches(patches)[0]
            return patches[masked].reshape(clips.shape[0], -1, patches.shape[-2] * patches.shape[-1])

    def forward(self, clips: Tensor, masked: Tensor) -> Tensor:
        """Per-clip loss (B,): mean squared error over the masked tubelets."""
        error = (self.predict(clips, masked).float() - self.targets(clips, masked)) ** 2
        return error.mean(dim=(1, 2))


class ReconstructionLoss(Validator):
    """Held-out reconstruction loss with a fixed tube mask per clip (seeded by its video index)."""

    def __init__(self, objective: MaskedAutoencoding) -> None:
        self.objective, self.loss_sum, self.clips = objective, 0.0, 0

    def add(self, net: nn.Module, inputs: Tensor, labels: Tensor, videos: Tensor) -> None:
        masked = torch.cat([self.objective.val_mask(int(v), inputs.shape) for v in videos.tolist()]).to(inputs.device)
        self.loss_sum += float(net(inputs, masked).float().sum())
        self.clips += len(inputs)

    def counts(self) -> list[float]:
        return [self.loss_sum, self.clips]

    def metrics(self, counts: list[float]) -> dict[str, float]:
        loss_sum, clips = counts
        return {"val_loss": loss_sum / max(clips, 1), "val_videos": clips}


@register_objective
class MaskedAutoencoding(Objective):
    name = "mae"
    Options = MAEOptions
    description = "VideoMAE masked autoencoding (no labels; a transformer: vit_*)"
    score = "val_loss"
    lower_is_better = True
    uses_labels = False
    needs_tokens = True

    def __init__(self, options: MAEOptions, model: nn.Module, config) -> None:
        super().__init__(options, model, config)
        if not isinstance(model, VideoViT):
            raise ConfigError(f"objective mae needs a video transformer (vit_*), not {type(model).__name__}")
        self.encoder = model
        self.autoencoder = MaskedAutoencoder(model, options).to(next(model.parameters()).device)

    def network(self) -> nn.Module:
        return self.autoencoder

    def mask(self, shape: torch.Size | tuple[int, ...], generator: torch.Generator) -> Tensor:
        grid = self.encoder.patch_embed.grid(tuple(shape))
        return tube_mask(grid, self.options.mask_ratio, shape[0], generator)

    def val_mask(self, video: int, shape: torch.Size | tuple[int, ...]) -> Tensor:
        return self.mask((1, *shape[1:]), torch.Generator().manual_seed(VAL_MASK_SEED + video))

    def loss(self, net: nn.Module, inputs: Tensor, labels: Tensor, generator: torch.Generator) -> tuple[Tensor, None]:
        masked = self.mask(inputs.shape, generator).to(inputs.device)
        return net(inputs, masked).mean(), None

    def validator(self) -> Validator:
        return ReconstructionLoss(self)

    def write_figures(
        self, figures: Path, title: str, sample: Callable[[], tuple[Tensor, Tensor]] | None
    ) -> list[Path]:
        if sample is None:
            return []
        inputs, videos = sample()
        shown = distinct_videos_first(videos.tolist())  # a batch of real video holds several windows of one video
        inputs, videos = inputs[shown], videos[shown]
        masked = torch.cat([self.val_mask(int(v), inputs.shape) for v in videos.tolist()]).to(inputs.device)
        d = self.config.data
        path = save_reconstruction_figure(self.autoencoder, inputs, masked, d.mean, d.std, figures / "mae.png", title)
        return [path]


# ---- the picture ----------------------------------------------------------------------------


def distinct_videos_first(videos: list[int]) -> list[int]:
    """Positions of ``videos`` with each video's first clip before any second clip of a video."""
    first = {v: i for i, v in reversed(list(enumerate(videos)))}
    firsts = sorted(first.values())
    return firsts + sorted(set(range(len(videos))) - set(firsts))


#: Clips and frames shown.
CLIPS, FRAMES = 4, 4


@torch.no_grad()
def reconstruct(autoencoder: MaskedAutoencoder, inputs: Tensor, masked: Tensor) -> tuple[Tensor, Tensor]:
    """(where masked: boolean (B, C, T, H, W), reconstruction in the normalised scale of ``inputs``)."""
    tubelet, patch, _ = autoencoder.encoder.patch_embed.size
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
    autoencoder: MaskedAutoencoder, inputs: Tensor, masked: Tensor, mean, std, path: Path, title: str
) -> Path:
    """Write the picture for the first :data:`CLIPS` clips of ``inputs`` (rows in threes per clip: the input
    with its masked tubelets grey, the reconstruction -- predicted tubelets un-normalised with the target's
    own mean and std, as VideoMAE's visualisation does, among the visible ones -- and the clip; frames
    across); return its path."""
    plt = pyplot()
    inputs, masked = inputs[:CLIPS], masked[:CLIPS]
    where, rebuilt = reconstruct(autoencoder, inputs, masked)
    scale = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1, 1)
    shift = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
    frames = torch.linspace(0, inputs.shape[2] - 1, FRAMES).round().long()
    shown = (inputs.float().cpu() * scale + shift).clamp(0, 1)
    hidden = torch.where(where.cpu(), torch.tensor(0.5), shown)
    rows = [hidden, (rebuilt.cpu() * scale + shift).clamp(0, 1), shown]  # each (B, C, T, H, W)
    # one image: clips in blocks of three rows (masked input, reconstruction, target), frames across
    tiles = torch.stack([row[clip][:, frames] for clip in range(len(inputs)) for row in rows])  # (3B, C, F, H, W)
    tiles = tiles.expand(-1, 3, -1, -1, -1) if tiles.shape[1] == 1 else tiles[:, :3]
    height, width = tiles.shape[-2:]
    canvas = torch.ones(len(tiles), height + 2, FRAMES, width + 2, 3)
    canvas[:, 1:-1, :, 1:-1] = tiles.permute(0, 3, 2, 4, 1)
    image = canvas.reshape(len(tiles) * (height + 2), FRAMES * (width + 2), 3).numpy()
    fig, ax = plt.subplots(figsize=(1.3 * FRAMES + 1.2, 1.3 * len(tiles)))
    ax.imshow(image, interpolation="nearest")
    ax.set_yticks([(k + 0.5) * (height + 2) for k in range(len(tiles))])
    ax.set_yticklabels(["masked input", "reconstruction", "target"] * len(inputs), fontsize=6)
    ax.set_xticks([(k + 0.5) * (width + 2) for k in range(FRAMES)])
    ax.set_xticklabels([f"frame {int(t)}" for t in frames], fontsize=6)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
