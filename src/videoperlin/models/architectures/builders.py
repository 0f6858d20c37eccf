"""Convolution builders: how a spatiotemporal "conv + BN" is made, for 3D and (2+1)D networks.

A builder registers its modules on the owning block under the parameter names of
3D-ResNets-PyTorch (K. Hara), so that codebase's checkpoints load as they are:

* :class:`Conv3DBuilder` -- one ``t x k x k`` conv: ``conv{n}``, ``bn{n}``;
* :class:`Conv2Plus1DBuilder` -- a ``1 x k x k`` spatial conv to ``M`` channels, BN, ReLU, then a
  ``t x 1 x 1`` temporal conv: ``conv{n}_s``, ``bn{n}_s``, ``conv{n}_t``, ``bn{n}_t``. ``M`` is
  chosen so the factorised pair has about the parameters of the full 3D conv (Tran et al., "A
  Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018):
  ``M = floor(t k^2 N_in N_out / (k^2 N_in + t N_out))``, unless the caller fixes it (``mid``:
  torchvision computes one ``M`` per block and fixes its stem's at 45);
* :class:`Conv3DNoTemporalBuilder` -- a ``1 x k x k`` conv with no temporal extent or stride, named
  like the 3D one: the upper stages of mixed-convolution networks (MC3, Tran et al. 2018).

A builder also says how a block's shortcut strides (:meth:`strides`): over time and space, or (no
temporal builder) over space only.

``temporal_padding="replicate"`` pads the time axis by repeating the border frame instead of zeros
(space keeps zero padding). With it, a network whose kernels are inflated from 2D maps a static
clip exactly as the 2D network maps the frame.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch.nn.functional as F
from torch import Tensor, nn

from videoperlin.errors import ConfigError

#: Padding of the time axis: zeros, or border frames repeated (exact 2D->3D inflation).
TemporalPadding = Literal["zeros", "replicate"]


class TemporalPadConv3d(nn.Conv3d):
    """Conv3d whose temporal padding repeats border frames ("replicate"); spatial padding stays zero.

    A subclass (not a wrapper), so its parameters keep the plain ``convX.weight`` names.
    """

    def __init__(self, *args, temporal_pad: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.temporal_pad = temporal_pad

    def forward(self, x: Tensor) -> Tensor:
        if self.temporal_pad:
            x = F.pad(x, (0, 0, 0, 0, self.temporal_pad, self.temporal_pad), mode="replicate")
        return super().forward(x)


def make_conv3d(
    in_planes: int,
    out_planes: int,
    kernel: tuple[int, int, int],
    stride: tuple[int, int, int],
    temporal_padding: TemporalPadding = "zeros",
) -> nn.Conv3d:
    """A bias-free Conv3d with 'same'-style padding ``k // 2`` on every axis."""
    if temporal_padding not in get_args(TemporalPadding):
        raise ConfigError(
            f"temporal_padding {temporal_padding!r} must be one of {', '.join(get_args(TemporalPadding))}"
        )
    padding = (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)
    if temporal_padding == "replicate" and padding[0]:
        return TemporalPadConv3d(
            in_planes, out_planes, kernel, stride, padding=(0, *padding[1:]), bias=False, temporal_pad=padding[0]
        )
    return nn.Conv3d(in_planes, out_planes, kernel, stride, padding=padding, bias=False)


class Conv3DBuilder:
    """Full 3D convolutions (R3D)."""

    kind = "3d"

    def __init__(self, temporal_padding: TemporalPadding = "zeros") -> None:
        self.temporal_padding = temporal_padding

    @staticmethod
    def strides(stride: int) -> tuple[int, int, int]:
        """(t, h, w) stride of a block's projection shortcut when its convolutions stride by ``stride``."""
        return stride, stride, stride

    def add(
        self,
        owner: nn.Module,
        name: str,
        in_planes: int,
        out_planes: int,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        mid: int | None = None,
    ) -> None:
        """Register ``conv{name}`` and ``bn{name}`` on ``owner``. ``kernel``/``stride`` are (temporal, spatial);
        ``mid`` (a (2+1)D middle width) does not apply."""
        (kt, ks), (st, ss) = kernel, stride
        owner.add_module(
            f"conv{name}", make_conv3d(in_planes, out_planes, (kt, ks, ks), (st, ss, ss), self.temporal_padding)
        )
        owner.add_module(f"bn{name}", nn.BatchNorm3d(out_planes))

    @staticmethod
    def apply(owner: nn.Module, name: str, x: Tensor) -> Tensor:
        """bn(conv(x)) with the modules registered by :meth:`add` (looked up by name, so copies work)."""
        return getattr(owner, f"bn{name}")(getattr(owner, f"conv{name}")(x))


def mid_planes_2plus1d(in_planes: int, out_planes: int, kt: int, ks: int) -> int:
    """Width of the (2+1)D middle layer that keeps the 3D conv's parameter count (Tran et al. 2018)."""
    return max(1, (in_planes * out_planes * kt * ks * ks) // (in_planes * ks * ks + kt * out_planes))


class Conv3DNoTemporalBuilder(Conv3DBuilder):
    """``1 x k x k`` convolutions, stride 1 in time (the 2D stages of MC3); names as :class:`Conv3DBuilder`."""

    kind = "3d-no-temporal"

    @staticmethod
    def strides(stride: int) -> tuple[int, int, int]:
        return 1, stride, stride

    def add(
        self,
        owner: nn.Module,
        name: str,
        in_planes: int,
        out_planes: int,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        mid: int | None = None,
    ) -> None:
        super().add(owner, name, in_planes, out_planes, (1, kernel[1]), (1, stride[1]))


class Conv2Plus1DBuilder:
    """Factorised (2+1)D convolutions (R(2+1)D): spatial 1 x k x k, BN, ReLU, temporal t x 1 x 1."""

    kind = "2plus1d"
    strides = staticmethod(Conv3DBuilder.strides)

    def __init__(self, temporal_padding: TemporalPadding = "zeros") -> None:
        self.temporal_padding = temporal_padding

    def add(
        self,
        owner: nn.Module,
        name: str,
        in_planes: int,
        out_planes: int,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        mid: int | None = None,
    ) -> None:
        """Register ``conv{name}_s``, ``bn{name}_s``, ``conv{name}_t`` and ``bn{name}_t`` on ``owner``; the
        middle width is ``mid``, or parameter-matched (:func:`mid_planes_2plus1d`) when None."""
        (kt, ks), (st, ss) = kernel, stride
        mid = mid or mid_planes_2plus1d(in_planes, out_planes, kt, ks)
        owner.add_module(f"conv{name}_s", make_conv3d(in_planes, mid, (1, ks, ks), (1, ss, ss)))
        owner.add_module(f"bn{name}_s", nn.BatchNorm3d(mid))
        owner.add_module(f"conv{name}_t", make_conv3d(mid, out_planes, (kt, 1, 1), (st, 1, 1), self.temporal_padding))
        owner.add_module(f"bn{name}_t", nn.BatchNorm3d(out_planes))

    @staticmethod
    def apply(owner: nn.Module, name: str, x: Tensor) -> Tensor:
        """bn_t(conv_t(relu(bn_s(conv_s(x))))) with the modules registered by :meth:`add`."""
        x = F.relu(getattr(owner, f"bn{name}_s")(getattr(owner, f"conv{name}_s")(x)), inplace=True)
        return getattr(owner, f"bn{name}_t")(getattr(owner, f"conv{name}_t")(x))


BUILDERS: dict[str, type[Conv3DBuilder | Conv2Plus1DBuilder]] = {
    "3d": Conv3DBuilder,
    "2plus1d": Conv2Plus1DBuilder,
    "3d-no-temporal": Conv3DNoTemporalBuilder,
}

#: The builder of the stem and of each of the four stages, per network type. ``mixed`` is MC3: 3D
#: convolutions in the stem and the first stage, 2D (1 x k x k) above.
STAGE_BUILDERS = {"3d": ("3d",) * 5, "2plus1d": ("2plus1d",) * 5, "mixed": ("3d", "3d") + ("3d-no-temporal",) * 3}
