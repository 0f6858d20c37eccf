"""Up-front resource checks of a training run: refuse in one line, naming the fields, what cannot fit.

A run that cannot fit used to find out minutes in, with a traceback: ``--size 4096`` allocated
4.4 GB before running out of memory, ``--num-videos 10**12`` asked numpy for a 7.28 TiB epoch
order. Two estimates, before any clip is drawn:

* the epoch order: :class:`~videoperlin.train.sampler.EpochBatches` permutes every clip's int64
  index at once and resizes the permutation for the ranks (a copy) -- 16 bytes a clip of the set
  (a VPN clip's label and content are functions of its index: nothing else grows with the set);
* the activations of one training step: autograd keeps (about) every module's output for the
  backward pass, so the step holds the sum, over the model's leaf modules, of their output sizes,
  times the batch, in float32 (bf16 autocast halves the convolutions' part; the check stays
  conservative and counts 4 bytes), plus the input batch itself. The sizes come from a forward of a
  ``meta`` copy of the model (shapes only: no compute, no memory), the same trick as the numerics
  guard.

The sum is compared with the memory available now (the least of ``MemAvailable`` of ``/proc/meminfo``,
what ``ulimit -v`` and the cgroup's memory limit leave, or free CUDA memory on a GPU); a run whose
estimate exceeds it is refused. The numerics guard's probes are capped in size
(:data:`~videoperlin.train.numerics.PROBE_ELEMENTS`) so that they never need more than the run. The
estimate is a lower bound of what a step really uses (workspace, the optimiser, the loader's copies come
on top), so the check refuses only runs that certainly cannot fit. (:func:`check_set_size` runs before the data is built,
:func:`check_step_memory` once the model is.)
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
            f"vpn.num_videos {set_size:,} needs {_gib(order)} for its epoch order alone but {_gib(free)} is "
            f"available; lower vpn.num_videos (clips are drawn afresh from the seed, so no set needs to be that big)"
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
