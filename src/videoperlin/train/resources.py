"""Up-front checks of a training run: refuse in one line, naming the fields, what cannot fit or cannot train.

Before any clip is drawn (:func:`check_set_size` before the data is built, :func:`check_step` once the model is):

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
from videoperlin.utils.memory import available_memory, gib

#: Bytes the training path holds per clip of the set (its epoch-order index, twice).
BYTES_PER_CLIP_IN_SET = 16


def step_bytes(model: nn.Module, clip_shape: tuple[int, ...], batch: int) -> int:
    """Float32 bytes of every leaf module's output for one (batch, *clip_shape) forward, and of the input
    twice (the batch as loaded or rendered, and normalised), from one shapes-only forward of a ``meta`` copy;
    in the same forward, a BatchNorm layer the batch leaves one value per channel to train on (``train.batch_size``
    1 at a clip small enough that its feature map is a single position; PyTorch raises then, mid-step) is
    refused (:class:`ConfigError`), before it would raise."""
    total = [2 * batch * int(torch.Size(clip_shape).numel())]

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        if isinstance(output, torch.Tensor):
            total.append(output.numel())

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
        leaves = [m.register_forward_hook(record) for m in meta.modules() if not list(m.children())]
        norms = [(n, m) for n, m in meta.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        return leaves + [m.register_forward_pre_hook(refuse_single_values(n)) for n, m in norms]

    forward_on_meta(model, (batch, *clip_shape), hook)
    return 4 * sum(total)


def check_set_size(set_size: int, device: torch.device) -> None:
    """Refuse (:class:`ConfigError`) a VPN set whose epoch order alone exceeds the memory available."""
    order, free = BYTES_PER_CLIP_IN_SET * set_size, available_memory(device)
    if order > free:
        raise ConfigError(
            f"synthetic.num_videos {set_size:,} needs {gib(order)} for its epoch order alone but {gib(free)} is "
            f"available; lower synthetic.num_videos (clips are drawn afresh from the seed, so no set needs to be that big)"
        )


def check_step(model: nn.Module, clip_shape: tuple[int, ...], batch: int, device: torch.device) -> int:
    """Refuse (:class:`ConfigError`) a run whose step BatchNorm cannot train on or whose activations exceed the
    memory available (:func:`step_bytes`); the estimate."""
    step, free = step_bytes(model, clip_shape, batch), available_memory(device)
    if step > free:
        frames, size = clip_shape[1], clip_shape[-1]
        raise ConfigError(
            f"one training step of this model at train.batch_size {batch} x data.frames {frames} x data.size "
            f"{size}x{size} keeps about {gib(step)} of activations but {gib(free)} is available; lower "
            f"data.size, data.frames or train.batch_size (train.accum_steps keeps the effective batch)"
        )
    return step
