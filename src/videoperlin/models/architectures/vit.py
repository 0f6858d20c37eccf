"""VideoViT: a video vision transformer over space-time tubelets, as VideoMAE builds it.

Written from the description in Tong, Song, Wang and Wang, *VideoMAE: Masked Autoencoders are
Data-Efficient Learners for Self-Supervised Video Pre-Training* (NeurIPS 2022) and Dosovitskiy et al.'s
ViT: a clip (B, C, T, H, W) is cut into tubelets of ``tubelet_size`` frames x ``patch_size`` x
``patch_size`` pixels, each embedded by one 3D convolution of that kernel and stride (the tokens);
fixed sine-cosine position embeddings over the flattened (t, h, w) token index are added (they hold
no weights, so any clip size works); pre-norm transformer blocks attend jointly over space and time
(``scaled_dot_product_attention``); the classifier reads the mean of the last tokens after a
LayerNorm (``fc_norm``).

Parameter names are those of the original VideoMAE release (``patch_embed.proj``,
``blocks.N.attn.qkv`` with separate ``q_bias``/``v_bias`` and no key bias, ``blocks.N.mlp.fc1``,
``fc_norm``, ``head``), so its fine-tuned checkpoints load directly and its pre-trained ones after the
``encoder.`` prefix is cut (:mod:`videoperlin.models.videomae`).

The masked-autoencoder objective (:mod:`videoperlin.train.objectives.mae`) runs the same blocks on
the visible tokens only: :meth:`VideoViT.embed` and :meth:`VideoViT.forward_tokens` are the pieces
it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from videoperlin.config_fields import at_least, in_range, option, to_dict
from videoperlin.errors import ConfigError
from videoperlin.models.options import CommonOptions
from videoperlin.models.registry import Architecture, register_model

#: LayerNorm epsilon of the VideoMAE release (Hugging Face's VideoMAEConfig defaults to 1e-12).
LAYER_NORM_EPS = 1e-6


@dataclass
class ViTOptions(CommonOptions):
    """Options of the video transformers (``vit_*``)."""

    tubelet_size: int = option(2, "frames per token (the patch embedding's temporal kernel and stride)", at_least(1))
    patch_size: int = option(16, "pixels per token side (16; 8 for 64-pixel clips)", at_least(1))
    drop_path: float = option(
        0.0,
        "stochastic depth: the last block's drop probability, rising linearly from 0",
        in_range(0, 1, high_open=True),
    )


@dataclass(frozen=True)
class ViTShape:
    """Width, depth and heads of a registered transformer."""

    width: int
    depth: int
    heads: int
    mlp_ratio: float = 4.0


def sinusoid_table(positions: int, width: int) -> Tensor:
    """(positions, width) fixed position embeddings: sin at even, cos at odd channels, wavelength
    10000^(2 (j // 2) / width) -- the table of the Transformer paper, over a flattened token index."""
    position = torch.arange(positions, dtype=torch.float64)[:, None]
    rate = torch.pow(10000.0, 2 * (torch.arange(width) // 2) / width).double()
    angles = position / rate[None]
    table = torch.empty(positions, width, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(angles[:, 0::2]), torch.cos(angles[:, 1::2])
    return table.float()


def drop_path(x: Tensor, probability: float, training: bool) -> Tensor:
    """Stochastic depth: zero a whole sample's residual branch with ``probability``, rescale the rest."""
    if probability == 0.0 or not training:
        return x
    keep = 1.0 - probability
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


class Attention(nn.Module):
    """Multi-head self-attention; ``qkv`` holds the three projections, the key has no bias."""

    def __init__(self, width: int, heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if width % heads:
            raise ConfigError(f"transformer width {width} is not divisible by its {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width)) if qkv_bias else None
        self.v_bias = nn.Parameter(torch.zeros(width)) if qkv_bias else None
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, width = x.shape
        bias = None
        if self.q_bias is not None and self.v_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).view(batch, tokens, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, width))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)), each branch with drop path."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: Tensor) -> Tensor:
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class PatchEmbed(nn.Module):
    """Tubelets to tokens: one 3D convolution whose kernel is its stride, (B, C, T, H, W) -> (B, N, width)."""

    def __init__(self, in_channels: int, width: int, tubelet: int, patch: int) -> None:
        super().__init__()
        self.size = (tubelet, patch, patch)
        self.proj = nn.Conv3d(in_channels, width, kernel_size=self.size, stride=self.size)

    def grid(self, clip_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Tokens along (t, h, w) for a clip of (..., T, H, W); a size the tubelet does not divide is an error."""
        *_, t, h, w = clip_shape
        if t % self.size[0] or h % self.size[1] or w % self.size[2]:
            raise ConfigError(
                f"clip {t}x{h}x{w} (frames x height x width) is not a whole number of {'x'.join(map(str, self.size))} "
                f"tubelets; choose data.frames a multiple of model.tubelet_size and data.size a multiple of "
                f"model.patch_size"
            )
        return t // self.size[0], h // self.size[1], w // self.size[2]

    def forward(self, x: Tensor) -> Tensor:
        self.grid(tuple(x.shape))
        return self.proj(x).flatten(2).transpose(1, 2)


class VideoViT(nn.Module):
    """A video transformer for clips (B, C, T, H, W); see the module docstring."""

    def __init__(
        self, shape: ViTShape, num_classes: int = 400, name: str | None = None, options: ViTOptions | None = None
    ):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes {num_classes!r} must be a positive integer")
        o = options if options is not None else ViTOptions()
        self.name, self.options, self.shape = name, o, shape
        self.num_features = self.width = shape.width
        self.patch_embed = PatchEmbed(o.in_channels, shape.width, o.tubelet_size, o.patch_size)
        rates = [o.drop_path * i / max(shape.depth - 1, 1) for i in range(shape.depth)]
        self.blocks = nn.ModuleList(Block(shape.width, shape.heads, shape.mlp_ratio, rate) for rate in rates)
        self.fc_norm = nn.LayerNorm(shape.width, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(o.dropout)
        self.head = nn.Linear(shape.width, num_classes)
        self._positions: dict[tuple[int, torch.device], Tensor] = {}
        self.apply(_init_weights)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    @property
    def config(self) -> dict[str, Any]:
        """Name, class count and every option: what rebuilds this network (``model_from_config``)."""
        return {**({"name": self.name} if self.name else {}), "num_classes": self.num_classes, **to_dict(self.options)}

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``head`` with a freshly initialised one for ``num_classes`` classes."""
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes {num_classes!r} must be a positive integer")
        head = nn.Linear(self.width, num_classes)
        _init_weights(head)
        self.head = head.to(self.head.weight.device)

    def positions(self, tokens: int, device: torch.device) -> Tensor:
        """(1, tokens, width) position embeddings (computed once per token count and device)."""
        key = (tokens, device)
        if key not in self._positions:
            self._positions[key] = sinusoid_table(tokens, self.width).to(device)[None]
        return self._positions[key]

    def embed(self, x: Tensor) -> Tensor:
        """Tokens with their positions: (B, C, T, H, W) -> (B, N, width), N = T/t * H/p * W/p."""
        if x.dim() != 5:
            raise ValueError(f"expected a (B, C, T, H, W) clip batch, got shape {tuple(x.shape)}")
        tokens = self.patch_embed(x)
        return tokens + self.positions(tokens.shape[1], x.device).to(tokens.dtype)

    def forward_tokens(self, tokens: Tensor) -> Tensor:
        """The transformer blocks over (B, N, width) tokens (all of them, or a visible subset)."""
        for block in self.blocks:
            tokens = block(tokens)
        return tokens

    def forward_features(self, x: Tensor) -> Tensor:
        """Embedding and blocks: (B, C, T, H, W) -> tokens (B, N, width)."""
        return self.forward_tokens(self.embed(x))

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Mean over tokens, ``fc_norm``, dropout and ``head`` (or the normalised mean if ``pre_logits``)."""
        pooled = self.fc_norm(features.mean(dim=1))
        return pooled if pre_logits else self.head(self.dropout(pooled))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def layer_id(self, parameter: str) -> int:
        """Depth of a parameter for layer-wise learning-rate decay: 0 the embedding, i + 1 block i,
        ``depth + 1`` the head (:func:`videoperlin.models.registry.layer_ids`)."""
        if parameter.startswith("patch_embed."):
            return 0
        if parameter.startswith("blocks."):
            return int(parameter.split(".")[1]) + 1
        return self.shape.depth + 1

    def no_weight_decay(self, parameter: str) -> bool:
        """Biases, norms and the query/value biases are not decayed (ViT fine-tuning's rule)."""
        return (
            parameter.endswith(".bias") or parameter.endswith("_bias") or ".norm" in parameter or "norm." in parameter
        )


def _init_weights(module: nn.Module) -> None:
    """Truncated normal (std 0.02) linear weights, zero biases, unit LayerNorms (ViT's initialisation);
    the patch embedding keeps PyTorch's convolution default, as in VideoMAE."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


#: The registered transformers: VideoMAE's ViT-S and ViT-B, DeiT-Tiny's width, and a narrower, shallower one
#: whose fine-tuning step at 16x64x64 with 4x8x8 tubelets (256 tokens) costs about two of a quarter-width
#: r3d18's on two CPU cores (the transformer ladder, configs/transfer_vit.yaml).
SHAPES = {
    "vit_micro": ViTShape(128, 8, 2),
    "vit_tiny": ViTShape(192, 12, 3),
    "vit_small": ViTShape(384, 12, 6),
    "vit_base": ViTShape(768, 12, 12),
}


def _builder(shape: ViTShape) -> Callable[[int, str, Any], nn.Module]:
    return lambda num_classes, name, options: VideoViT(shape, num_classes, name, options)


for _name, _shape in SHAPES.items():
    register_model(
        Architecture(
            name=_name,
            family="vit",
            build=_builder(_shape),
            Options=ViTOptions,
            stem="patch_embed.proj",
            classifier="head",
            frameworks=("videomae",),
            tokens=True,
            description=f"video transformer (VideoMAE), width {_shape.width}, {_shape.depth} blocks, {_shape.heads} heads",
        )
    )
