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
(:data:`~videoperlin.train.numerics.PROBE_ELEMENTS`) so that they never need more than the run. The estimate is a lower bound of
what a step really uses (workspace, the optimiser, the loader's copies come on top), so the check
refuses only runs that certainly cannot fit. (:func:`check_set_size` runs before the data is built,
:func:`check_step_memory` once the model is.)
"""

from __future__ import annotations

import os

import torch
from torch import nn

from videoperlin.errors import ConfigError
from videoperlin.train.numerics import forward_on_meta

#: Bytes the training path holds per clip of the set (its epoch-order index, twice).
BYTES_PER_CLIP_IN_SET = 16


def available_memory(device: torch.device) -> int:
    """Bytes free for a run on ``device``: free CUDA memory; on the host the least of the available RAM, what
    the process's address-space limit leaves (``ulimit -v``) and what its cgroup's memory limit leaves (a
    container's, a cluster job's)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return min(_host_available(), _address_space_left(), _cgroup_left())


def _read_number(path: str, key: str | None = None) -> int | None:
    """An integer from a /proc or /sys file (the value after ``key:`` when given); None when absent or 'max'."""
    try:
        with open(path) as handle:
            for line in handle:
                if key is None:
                    text = line.strip()
                    return None if text == "max" else int(text)
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError):
        return None
    return None


def _host_available() -> int:
    available = _read_number("/proc/meminfo", "MemAvailable")
    if available is not None:
        return available
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _address_space_left() -> int:
    """What ``RLIMIT_AS`` leaves beyond the process's current address space (no limit: unbounded)."""
    try:
        import resource
    except ImportError:  # Windows
        return 2**62
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return 2**62
    used = _read_number("/proc/self/status", "VmSize") or 0
    return max(0, soft - used)


def _cgroup_left() -> int:
    """What the process's cgroup memory limit leaves (v2, else v1; no limit: unbounded)."""
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        cap = _read_number(limit)
        if cap is not None and cap < 2**60:
            return max(0, cap - (_read_number(usage) or 0))
    return 2**62


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
