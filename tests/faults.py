"""A wrong convolution kernel of the kind the numerics guard exists for, to inject where the real one
is right (tests/test_numerics.py, ``benchmarks/precision.py --inject-fault``).

The real fault: oneDNN's bf16 ``conv3d`` weight gradient on AMD EPYC avx512_bf16 CPUs with torch
2.13.0+cpu, when the input's temporal extent is 2, the temporal kernel 3 and the temporal stride 1
(relative error ~1 or NaN; forward and input gradient right). :func:`install` replaces
``torch.nn.functional.conv3d`` with :func:`faulty_conv3d`, which behaves the same way at that shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REAL_CONV3D = F.conv3d


class WrongWeightGrad(torch.autograd.Function):
    """A convolution whose forward and input gradient are right and whose weight gradient is not
    (sign flipped and scaled: relative error 4, as bad as the measured 1.0-or-NaN)."""

    @staticmethod
    def forward(ctx, x, w, stride, padding, dilation, groups):
        ctx.save_for_backward(x, w)
        ctx.options = stride, padding, dilation, groups
        return REAL_CONV3D(x, w, None, *ctx.options)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        with torch.enable_grad():
            xf, wf = x.detach().float().requires_grad_(), w.detach().float().requires_grad_()
            gx, gw = torch.autograd.grad(REAL_CONV3D(xf, wf, None, *ctx.options), (xf, wf), g.float())
        return gx.to(x.dtype), (-3 * gw).to(w.dtype), None, None, None, None


def is_faulty_call(x: torch.Tensor, w: torch.Tensor, stride) -> bool:
    """The fault's shape: CPU bf16 autocast, input temporal extent 2, temporal kernel 3, temporal stride 1."""
    stride_t = stride[0] if isinstance(stride, (tuple, list)) else stride
    bf16 = (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
    )
    return bf16 and x.shape[2] == 2 and w.shape[2] == 3 and stride_t == 1


def faulty_conv3d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if is_faulty_call(x, w, stride):
        assert bias is None
        return WrongWeightGrad.apply(x, w, stride, padding, dilation, groups)
    return REAL_CONV3D(x, w, bias, stride, padding, dilation, groups)


def install() -> None:
    """Make every later ``F.conv3d`` call (nn.Conv3d included) the faulty one."""
    F.conv3d = faulty_conv3d


def uninstall() -> None:
    F.conv3d = REAL_CONV3D
