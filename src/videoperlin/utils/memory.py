"""Memory: freed memory kept for reuse (large CPU tensors without a page fault per page), and what is free.

glibc's ``malloc`` serves a request above its mmap threshold with a fresh ``mmap`` and unmaps it when
freed, so every batch-sized tensor is mapped anew and zero-filled by the kernel page by page on first
touch: more time than the arithmetic. :func:`reuse_freed_memory` tells glibc to serve every request from
its heap (``M_MMAP_MAX = 0``) and keep freed memory there (``M_TRIM_THRESHOLD``), the effect PyTorch's
CPU tuning guide gets by preloading jemalloc or tcmalloc. Numbers are unchanged bit for bit; the cost is
memory (the process keeps its peak; the generating guide, "Memory reuse", has the measured gain and cost). The ``videoperlin``
command calls it first (:func:`configure_allocator`; ``VIDEOPERLIN_ALLOCATOR=default`` leaves glibc as it
is); elsewhere than glibc it does nothing.

:func:`available_memory` says how much memory is free for a run (what every up-front check compares with).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

import torch

from videoperlin.errors import ConfigError

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
#: Freed heap memory glibc may keep before it trims the heap (the largest value mallopt takes).
KEEP_BYTES = 2**31 - 1
ENVIRONMENT = "VIDEOPERLIN_ALLOCATOR"
CHOICES = ("reuse", "default")


def allocator_choice() -> str:
    """``$VIDEOPERLIN_ALLOCATOR``: ``reuse`` (unset) or ``default``; anything else is refused."""
    choice = os.environ.get(ENVIRONMENT, "reuse").strip().lower()
    if choice not in CHOICES:
        raise ConfigError(f"{ENVIRONMENT}={choice!r} is not one of {', '.join(CHOICES)}; unset it or pick one")
    return choice


def reuse_freed_memory() -> bool:
    """Have glibc keep freed memory for reuse (module docstring); whether it could (glibc only)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))


def configure_allocator() -> str:
    """What the ``videoperlin`` command does first: :func:`reuse_freed_memory` unless
    ``$VIDEOPERLIN_ALLOCATOR`` is ``default``. Returns what is in effect: ``reuse``, ``default``, or
    ``default (not glibc)``."""
    if allocator_choice() == "default":
        return "default"
    return "reuse" if reuse_freed_memory() else "default (not glibc)"


__all__ = ["allocator_choice", "configure_allocator", "reuse_freed_memory"]


# ---- what is free -----------------------------------------------------------------------------


def gib(n: float) -> str:
    """``3.2 GiB``: bytes as every memory refusal writes them."""
    return f"{n / 2**30:,.1f} GiB"


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
