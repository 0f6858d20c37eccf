"""VideoResNet: 3D ResNets and (2+1)D ResNets from one definition and a conv builder.

Follows 3D-ResNets-PyTorch (K. Hara, "Can Spatiotemporal 3D CNNs Retrace the History of 2D CNNs
and ImageNet?", CVPR 2018): conv1 ``t x 7 x 7`` with stride (t_stride, 2, 2), 3x3x3 max-pool with
stride 2, four stages of widths 64/128/256/512 (times ``widen_factor``), shortcut A (zero-padded
identity) or B (1x1x1 conv + BN when the shape changes), global average pooling, ``fc``.
Parameter names match that codebase, so its checkpoints load directly. The options that other
frameworks' video ResNets differ in (torchvision: no max-pool, a 3 x 7 x 7 stem, one (2+1)D middle
width per block and a 45-channel (2+1)D stem; mmaction2: a 1 x 3 x 3 max-pool) are options here, so
those networks are this one with other settings (:mod:`videoperlin.models.frameworks`).

Every model offers the fine-tuning interface ``num_classes``, ``reset_classifier(n)``,
``forward_features(x)`` (the last feature map, B x C x T' x H' x W') and ``forward_head(f)``
(pool, dropout, fc). ``model.config`` holds the name and options that rebuild it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor, nn

from videoperlin.config_fields import at_least, greater_than, option, to_dict
from videoperlin.errors import ConfigError
from videoperlin.models.architectures.builders import BUILDERS, STAGE_BUILDERS, TemporalPadding, mid_planes_2plus1d
from videoperlin.models.options import CommonOptions
from videoperlin.models.registry import Architecture, register_model

STAGE_WIDTHS = (64, 128, 256, 512)


@dataclass
class ModelOptions(CommonOptions):
    """The options of the video ResNets besides their name and class count
    (:func:`videoperlin.models.create_model`; the run config's ``model`` section adds ``name``)."""

    conv1_t_size: int = option(7, "temporal kernel size of conv1", at_least(1))
    conv1_t_stride: int = option(1, "temporal stride of conv1", at_least(1))
    no_max_pool: bool = option(False, "leave out the 3x3x3 max-pool after conv1")
    shortcut: Literal["A", "B"] = option(
        "B", "residual shortcut when shapes change: A zero-pads, B projects (1x1x1 conv + BN)"
    )
    widen_factor: float = option(
        1.0, "channel-width multiplier of every stage (0.25, 0.5 for CPU-sized runs)", greater_than(0)
    )
    temporal_padding: TemporalPadding = option(
        "zeros", "padding of the time axis: zeros, or replicate (exact 2D->3D inflation on static clips)"
    )
    max_pool: Literal["3x3x3", "1x3x3"] = option(
        "3x3x3", "stem max-pool: 3x3x3 stride 2 (3D-ResNets-PyTorch) or 1x3x3 stride (1, 2, 2), space only (mmaction2)"
    )
    mid_planes: Literal["per_conv", "per_block"] = option(
        "per_conv",
        "(2+1)D middle widths: parameter-matched per convolution (3D-ResNets-PyTorch, mmaction2) or one "
        "per block from its input width (torchvision)",
    )
    stem_mid_planes: int | None = option(
        None, "(2+1)D stem's middle width (null: parameter-matched; torchvision 45)", at_least(1)
    )


def shortcut_a(x: Tensor, planes: int, stride: tuple[int, int, int]) -> Tensor:
    """Parameter-free shortcut: subsample by ``stride`` (t, h, w) and zero-pad channels up to ``planes``.

    Unlike 3D-ResNets-PyTorch, which concatenates ``out.data`` (detaching the shortcut from the
    graph), gradients flow through the identity here.
    """
    st, sh, sw = stride
    out = x[:, :, ::st, ::sh, ::sw]
    pad = planes - out.shape[1]
    return F.pad(out, (0, 0, 0, 0, 0, 0, 0, pad)) if pad > 0 else out


class ShortcutA(nn.Module):
    """Module form of :func:`shortcut_a` (no parameters)."""

    def __init__(self, planes: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.planes, self.stride = planes, stride

    def forward(self, x: Tensor) -> Tensor:
        return shortcut_a(x, self.planes, self.stride)


def block_mid_planes(mid_planes: str, in_planes: int, planes: int) -> int | None:
    """The (2+1)D middle width a block fixes for its 3x3x3 convolutions: torchvision's one width per
    block from the block's input width (``per_block``), or None (each convolution parameter-matched)."""
    return mid_planes_2plus1d(in_planes, planes, 3, 3) if mid_planes == "per_block" else None


class BasicBlock(nn.Module):
    """Two 3x3x3 (or (2+1)D) convolutions with a residual connection."""

    expansion = 1

    def __init__(
        self,
        builder,
        in_planes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        mid_planes: str = "per_conv",
    ):
        super().__init__()
        self.builder = builder
        mid = block_mid_planes(mid_planes, in_planes, planes)
        builder.add(self, "1", in_planes, planes, (3, 3), (stride, stride), mid)
        builder.add(self, "2", planes, planes, (3, 3), (1, 1), mid)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.builder.apply(self, "1", x), inplace=True)
        out = self.builder.apply(self, "2", out)
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual, inplace=True)


class Bottleneck(nn.Module):
    """1x1x1 reduce, 3x3x3 (or (2+1)D) with the stride, 1x1x1 expand by 4, residual."""

    expansion = 4

    def __init__(
        self,
        builder,
        in_planes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        mid_planes: str = "per_conv",
    ):
        super().__init__()
        self.builder = builder
        self.conv1 = nn.Conv3d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        builder.add(
            self, "2", planes, planes, (3, 3), (stride, stride), block_mid_planes(mid_planes, in_planes, planes)
        )
        self.conv3 = nn.Conv3d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.builder.apply(self, "2", out), inplace=True)
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual, inplace=True)


class VideoResNet(nn.Module):
    """A 3D or (2+1)D ResNet for clips (B, C, T, H, W); see the module docstring."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        conv_type: str = "3d",
        num_classes: int = 400,
        name: str | None = None,
        options: ModelOptions | None = None,
        **option_values: Any,
    ) -> None:
        """``options`` (a :class:`ModelOptions`) or its fields as keywords; ``name`` the registered name
        (:func:`~videoperlin.models.registry.create_model` passes it) for :attr:`config`."""
        super().__init__()
        if conv_type not in STAGE_BUILDERS:
            raise ConfigError(f"conv_type {conv_type!r} must be one of {', '.join(STAGE_BUILDERS)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes {num_classes!r} must be a positive integer")
        if options is not None and option_values:
            raise ConfigError("give options=ModelOptions(...) or its fields as keywords, not both")
        o = options if options is not None else ModelOptions(**option_values)
        self.name, self.options = name, o
        stem, *stages = (BUILDERS[kind](o.temporal_padding) for kind in STAGE_BUILDERS[conv_type])
        self.builder = stem
        widths = [max(1, int(w * o.widen_factor)) for w in STAGE_WIDTHS]
        self.in_planes = widths[0]
        self.no_max_pool = o.no_max_pool
        self.builder.add(
            self, "1", o.in_channels, widths[0], (o.conv1_t_size, 7), (o.conv1_t_stride, 2), o.stem_mid_planes
        )
        self.maxpool = (
            nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
            if o.max_pool == "3x3x3"
            else nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        )
        self.layer1 = self._make_layer(block, stages[0], widths[0], layers[0], stride=1)
        self.layer2 = self._make_layer(block, stages[1], widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, stages[2], widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, stages[3], widths[3], layers[3], stride=2)
        self.num_features = widths[3] * block.expansion
        self.dropout = nn.Dropout(o.dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _make_layer(self, block, builder, planes: int, blocks: int, stride: int) -> nn.Sequential:
        shortcut, mid = self.options.shortcut, self.options.mid_planes
        downsample: nn.Module | None = None
        out_planes = planes * block.expansion
        if stride != 1 or self.in_planes != out_planes:
            if shortcut == "A":
                downsample = ShortcutA(out_planes, builder.strides(stride))
            else:
                downsample = nn.Sequential(
                    nn.Conv3d(self.in_planes, out_planes, 1, stride=builder.strides(stride), bias=False),
                    nn.BatchNorm3d(out_planes),
                )
        layers = [block(builder, self.in_planes, planes, stride, downsample, mid)]
        self.in_planes = out_planes
        layers += [block(builder, self.in_planes, planes, mid_planes=mid) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def num_classes(self) -> int:
        return self.fc.out_features

    @property
    def config(self) -> dict[str, Any]:
        """Name, class count and every option: what rebuilds this network (``model_from_config``)."""
        return {**({"name": self.name} if self.name else {}), "num_classes": self.num_classes, **to_dict(self.options)}

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` with a freshly initialised one for ``num_classes`` classes."""
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes {num_classes!r} must be a positive integer")
        self.fc = nn.Linear(self.num_features, num_classes).to(self.fc.weight.device)

    def forward_features(self, x: Tensor) -> Tensor:
        """Stem and the four stages: (B, C, T, H, W) -> (B, num_features, T', H', W')."""
        if x.dim() != 5:
            raise ValueError(f"expected a (B, C, T, H, W) clip batch, got shape {tuple(x.shape)}")
        x = F.relu(self.builder.apply(self, "1", x), inplace=True)
        if not self.no_max_pool:
            x = self.maxpool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Global average pool, dropout and ``fc`` (or the pooled features if ``pre_logits``).

        A plain mean, not ``AdaptiveAvgPool3d``: its CUDA backward has no deterministic implementation."""
        pooled = features.mean(dim=(2, 3, 4))
        return pooled if pre_logits else self.fc(self.dropout(pooled))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def layer_id(self, parameter: str) -> int:
        """Depth of a parameter for layer-wise learning-rate decay: 0 the stem, k stage ``layer{k}``, 5 ``fc``."""
        head = parameter.split(".")[0]
        return int(head[len("layer") :]) if head.startswith("layer") else 5 if head == "fc" else 0

    def no_weight_decay(self, parameter: str) -> bool:
        """Biases and BatchNorm parameters (decayed in the ResNet recipes, which keep ``optim.decay_norms_and_biases``)."""
        batch_norm = ".bn" in parameter or parameter.startswith("bn") or ".downsample.1." in parameter
        return parameter.endswith(".bias") or batch_norm


# ---- the registered names ------------------------------------------------------------------------

DEPTHS: dict[int, tuple[type, tuple[int, int, int, int]]] = {
    10: (BasicBlock, (1, 1, 1, 1)),
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
    200: (Bottleneck, (3, 24, 36, 3)),
}
#: Name prefix -> convolution type: full 3x3x3 (``r3d``), (2+1)D factorised (``r2p1d``), mixed (``mc3``:
#: 3D in the stem and first stage, 1x3x3 above; Tran et al. 2018, torchvision's ``mc3_18``).
CONV_TYPES = {"r3d": "3d", "r2p1d": "2plus1d", "mc3": "mixed"}
#: Our ResNet families by the name each framework gives them (``videoperlin convert``; a family missing
#: from a framework's row has no counterpart there: :data:`videoperlin.models.frameworks.NO_COUNTERPART`).
FAMILY_NAMES = {
    "torchvision": {"r3d": "r3d", "mc3": "mc3", "r2p1d": "r2plus1d"},
    "mmaction2": {"r3d": "ResNet3d", "mc3": "ResNet3d"},
    "hara": {"r3d": "resnet", "r2p1d": "resnet2p1d"},
}


def model_name(family: str, depth: int) -> str:
    """``r3d`` + 18 -> ``r3d18``; a family ending in a digit gets an underscore (``mc3_18``)."""
    return f"{family}{'_' if family[-1].isdigit() else ''}{depth}"


def split_name(name: str) -> tuple[str, int]:
    """(family, depth) of a registered ResNet name."""
    for family in CONV_TYPES:
        depth = name[len(family) :].lstrip("_")
        if name.startswith(family) and depth.isdigit() and model_name(family, int(depth)) == name:
            return family, int(depth)
    raise ConfigError(f"{name!r} is not a video ResNet; their names are {', '.join(RESNETS)}")


def _builder(conv_type: str, depth: int):
    block, layers = DEPTHS[depth]
    return lambda num_classes, name, options: VideoResNet(block, layers, conv_type, num_classes, name, options)


RESNETS = [model_name(family, depth) for family in CONV_TYPES for depth in DEPTHS]
for _family, _conv_type in CONV_TYPES.items():
    for _depth in DEPTHS:
        register_model(
            Architecture(
                name=model_name(_family, _depth),
                family=_family,
                build=_builder(_conv_type, _depth),
                Options=ModelOptions,
                stem="conv1" if _conv_type != "2plus1d" else "conv1_s",
                classifier="fc",
                inflates_from_2d=_conv_type == "3d",
                frameworks=tuple(f for f, names in FAMILY_NAMES.items() if _family in names),
                description=f"{ {'3d': '3D', '2plus1d': '(2+1)D', 'mixed': 'mixed 3D/2D'}[_conv_type] } ResNet-{_depth}",
            )
        )
