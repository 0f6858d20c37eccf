"""Up-front checks of a training run: refuse in one line, naming the fields, what cannot fit or cannot train.

Before any clip is drawn (:func:`check_set_size` before the data is built, the others once the model is):

* the epoch order: :class:`~videoperlin.train.sampler.EpochBatches` permutes every clip's int64 index and
  copies the permutation for the ranks: 16 bytes a clip of the set (nothing else grows with a VPN set);
* the activations of one step: autograd keeps about every leaf module's output for the backward pass,
  counted in float32 from a forward of a ``meta`` copy of the model (shapes only), plus the input twice;
* a BatchNorm layer left one value per channel by the batch (it cannot compute batch statistics).

Memory estimates are compared with :func:`~videoperlin.utils.memory.available_memory`. They are lower
bounds of what a step uses (workspace, optimiser state and the loader's copies come on top), so only runs
that certainly cannot fit are refused.
"""

from __future__ import annotations

import torch
from torch import nn

from videoperlin.errors import ConfigError
from videoperlin.train.numerics import forward_on_meta
from videoperlin.utils.memory import available_memory

#: Bytes the training path holds per clip of the set (its epoch-order index, twice).
BYTES_PER_CLIP_IN_SET = 16


def activation_bytes(model: nn.Module, clip_shape: tuple[int, ...], batch: int) -> int:
    """Float32 bytes of every leaf module's output for one (batch, *clip_shape) forward, and of the input
    twice (the batch as loaded or rendered, and normalised)."""
    total = [2 * batch * int(torch.Size(clip_shape).numel())]

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor):
            total.append(output.numel())

    def hook(meta: nn.Module) -> list:
        return [m.register_forward_hook(record) for m in meta.modules() if not list(m.children())]

    forward_on_meta(model, (batch, *clip_shape), hook)
    return 4 * sum(total)


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_set_size(set_size: int, device: torch.device) -> None:
    """Refuse (:class:`ConfigError`) a VPN set whose epoch order alone exceeds the memory available."""
    order, free = BYTES_PER_CLIP_IN_SET * set_size, available_memory(device)
    if order > free:
        raise ConfigError(
            f"synthetic.num_videos {set_size:,} needs {_gib(order)} for its epoch order alone but {_gib(free)} is "
            f"available; lower synthetic.num_videos (clips are drawn afresh from the seed, so no set needs to be that big)"
        )


def check_step_memory(model: nn.Module, clip_shape: tuple[int, ...], batch: int, device: torch.device) -> int:
    """Refuse (:class:`ConfigError`) a run whose step activations exceed the memory available; the estimate."""
    step, free = activation_bytes(model, clip_shape, batch), available_memory(device)
    if step > free:
        frames, size = clip_shape[1], clip_shape[-1]
        raise ConfigError(
            f"one training step of this model at train.batch_size {batch} x data.frames {frames} x data.size "
            f"{size}x{size} keeps about {_gib(step)} of activations but {_gib(free)} is available; lower "
            f"data.size, data.frames or train.batch_size (train.accum_steps keeps the effective batch)"
        )
    return step


def check_batch_norm_values(model: nn.Module, clip_shape: tuple[int, ...], batch: int) -> None:
    """Refuse (:class:`ConfigError`) a batch that leaves a BatchNorm layer one value per channel to train on
    (PyTorch raises then, mid-step): ``train.batch_size`` 1 with a clip small enough that the layer's feature
    map is a single position. Checked on the ``meta`` copy before its BatchNorm would raise."""

    def refuse_single_values(name: str):
        def pre_hook(module: nn.Module, args: tuple) -> None:
            if module.training and args[0].numel() // args[0].shape[1] <= 1:
                raise ConfigError(
                    f"at train.batch_size {batch} x data.frames {clip_shape[1]} x data.size {clip_shape[-1]} the "
                    f"BatchNorm layer {name} sees one value per channel and cannot train; raise train.batch_size "
                    f"to 2 or more"
                )

        return pre_hook

    def hook(meta: nn.Module) -> list:
        norms = [(n, m) for n, m in meta.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        return [m.register_forward_pre_hook(refuse_single_values(n)) for n, m in norms]

    forward_on_meta(model, (batch, *clip_shape), hook)
