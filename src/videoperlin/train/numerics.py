"""Numerics guard: before a run trains under autocast, check that every convolution the model will
run is computed correctly at the reduced precision, and keep the ones that are not in fp32.

Why: kernels are not right at every shape (oneDNN's bf16 ``conv3d`` weight gradient on some AMD EPYC
CPUs at temporal extent 2; the training guide's "Numerics guard" has the case and the measured costs).
The only reliable test is to compute the same convolution twice.

:func:`choose_precision` takes the model, the clip shape and the requested autocast dtype:

1. **Shapes**: forward hooks on a ``meta`` copy of the model record every convolution's input.
2. **Probe**: per distinct convolution (:class:`ConvSignature`), seeded random input, weight and
   upstream gradient; output and both gradients in float64 (the truth), fp32 and the autocast dtype,
   each scored by its relative error ``||a - ref|| / ||ref||``.
3. **Verdict**: a precision passes when all three errors are within :data:`TOLERANCE`. Rounding an
   operand to bf16 (unit roundoff ``u = 2^-9``) gives errors of order ``u``; the bound sits an order of
   magnitude above that and far below a wrong kernel's ~1. fp32's bound leaves room for TF32 (10 bits),
   in which CUDA may run it.
4. **Fallback**: a convolution that fails at the autocast dtype runs in fp32 (:func:`keep_in_fp32`);
   if fp32 itself fails, :class:`NumericsError`.

Verdicts are cached per torch version, device and signature (:func:`cache_path`).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from videoperlin.errors import ConfigError, NumericsError
from videoperlin.utils.atomic import atomic_write_text

log = logging.getLogger(__name__)

#: Largest relative error (output, input gradient, weight gradient) that passes, per dtype (module docstring).
TOLERANCE = {torch.float32: 0.01, torch.bfloat16: 0.03, torch.float16: 0.01}
#: Names of the dtypes in records and log lines.
DTYPE_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
#: Clips per probe: the shapes are the run's, the batch is capped (a probe is three convolutions in float64).
PROBE_BATCH = 4
#: Most input elements a probe convolves (float64: 512 MiB; 4 clips of a 64-channel 16x112x112 stage hold 51M).
#: A larger shape is probed with its largest extents halved until it fits (never below 32 or twice the kernel):
#: a probe must not need more memory than the run it guards (a clip of 100,000 frames asked 210 GB of it).
PROBE_ELEMENTS = 2**26
#: Bumped when the probe changes, so cached verdicts of an older probe are not trusted.
PROBE_VERSION = 1
#: CPU flags that select oneDNN kernels (part of the cache key).
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "avx_vnni")
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def capped_probe_shape(shape: list[int], kernel: tuple[int, ...]) -> list[int]:
    """``shape`` (batch, channels, *extents) with its largest extents halved while it holds more than
    :data:`PROBE_ELEMENTS` elements (an extent stays at least 32 and twice its kernel)."""
    shape, floors = list(shape), [max(32, 2 * k) for k in kernel]
    while math.prod(shape) > PROBE_ELEMENTS:
        axes = [a for a in range(2, len(shape)) if shape[a] > floors[a - 2]]
        if not axes:
            break
        largest = max(axes, key=lambda a: shape[a])
        shape[largest] = max(floors[largest - 2], shape[largest] // 2)
    return shape


@dataclass(frozen=True)
class ConvSignature:
    """Everything about a convolution call that can change which kernel runs."""

    dims: int
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    input_shape: tuple[int, ...]  # (batch, channels, *spatial) as probed
    channels_last: bool

    @classmethod
    def of(cls, conv: nn.Conv3d | nn.Conv2d, input_shape: torch.Size, channels_last: bool) -> ConvSignature:
        padding = list(conv.padding if isinstance(conv.padding, tuple) else (0,) * len(conv.kernel_size))
        shape = [min(input_shape[0], PROBE_BATCH), *input_shape[1:]]
        extra = getattr(conv, "temporal_pad", 0)  # TemporalPadConv3d pads time itself: the kernel sees T + 2 pad
        shape[2] += 2 * extra
        shape = capped_probe_shape(shape, tuple(conv.kernel_size))
        return cls(
            len(conv.kernel_size),
            conv.in_channels,
            conv.out_channels,
            tuple(conv.kernel_size),
            tuple(conv.stride),
            tuple(padding),
            tuple(conv.dilation),
            conv.groups,
            tuple(shape),
            channels_last and len(conv.kernel_size) == 3,
        )

    def describe(self) -> str:
        x = "x".join
        return (
            f"conv{self.dims}d {self.in_channels}->{self.out_channels} kernel {x(map(str, self.kernel))} "
            f"stride {x(map(str, self.stride))} input {x(map(str, self.input_shape))}"
            f"{' channels_last' if self.channels_last else ''}"
        )

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class Precision:
    """The precision a run trains in: the autocast dtype (None: fp32) and the modules kept in fp32."""

    dtype: torch.dtype | None
    fp32_modules: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line per failing convolution
    probed: int = 0  # distinct convolutions checked

    def describe(self) -> str:
        if self.dtype is None:
            return "fp32"
        name = DTYPE_NAMES[self.dtype]
        return f"{name} (fp32 in {', '.join(self.fp32_modules)})" if self.fp32_modules else name

    def record(self) -> dict[str, Any]:
        return {
            "precision": self.describe(),
            "fp32_modules": list(self.fp32_modules),
            "numerics_failures": list(self.failures),
            "numerics_probed": self.probed,
        }

    def apply(self, model: nn.Module) -> None:
        """Keep :attr:`fp32_modules` of ``model`` in fp32 under autocast."""
        modules = dict(model.named_modules())
        for name in self.fp32_modules:
            keep_in_fp32(modules[name])


# ---- fp32 islands under autocast ---------------------------------------------------------------

_FP32_CLASSES: dict[type, type] = {}


def _forward_in_fp32(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    forward = super(type(self), self).forward  # type: ignore[misc]
    if x.device.type == "meta":  # shapes only (convolution_inputs): there is no autocast on meta
        return forward(x)
    with torch.autocast(x.device.type, enabled=False):
        return forward(x.float())


def keep_in_fp32(module: nn.Module) -> None:
    """Make ``module`` compute in fp32 (forward and both gradients) even inside autocast.

    The module's class is swapped for a subclass whose ``forward`` turns autocast off and casts
    its input up; parameter names, state dicts and the module's own behaviour stay as they are.
    """
    cls = type(module)
    if cls in _FP32_CLASSES.values():
        return
    if cls not in _FP32_CLASSES:
        _FP32_CLASSES[cls] = type(f"Float32{cls.__name__}", (cls,), {"forward": _forward_in_fp32})
    module.__class__ = _FP32_CLASSES[cls]


# ---- shapes ------------------------------------------------------------------------------------


def convolution_inputs(
    model: nn.Module, clip_shape: tuple[int, ...], batch: int, channels_last: bool
) -> dict[str, ConvSignature]:
    """``{module name: signature}`` of every convolution ``model`` runs on a (batch, *clip_shape) input.

    The forward runs on a ``meta`` copy of the model: shapes only, no compute and no memory.
    """
    found: dict[str, ConvSignature] = {}

    def record(name: str, module: nn.Conv3d | nn.Conv2d, args: tuple[torch.Tensor, ...]) -> None:
        found.setdefault(name, ConvSignature.of(module, args[0].shape, channels_last))

    def hook(meta: nn.Module) -> list:
        return [
            module.register_forward_pre_hook(lambda m, args, name=name: record(name, m, args))
            for name, module in meta.named_modules()
            if isinstance(module, CONVOLUTIONS)
        ]

    forward_on_meta(model, (batch, *clip_shape), hook)
    return found


def forward_on_meta(model: nn.Module, input_shape: tuple[int, ...], hook) -> None:
    """Run a copy of ``model`` on the ``meta`` device (shapes only: no compute, no memory) on an input of
    ``input_shape``, with the hooks ``hook(meta_model)`` registers (and returns) in place for it."""
    meta = copy.deepcopy(model).to("meta")
    hooks = hook(meta)
    try:
        with torch.no_grad():
            meta(torch.empty(input_shape, device="meta"))
    finally:
        for handle in hooks:
            handle.remove()


# ---- the probe ---------------------------------------------------------------------------------

CONV_FUNCTIONS = {1: "conv1d", 2: "conv2d", 3: "conv3d"}


def _convolve(sig: ConvSignature, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    conv = getattr(F, CONV_FUNCTIONS[sig.dims])  # looked up per call: a test may inject a wrong kernel
    return conv(x, w, stride=sig.stride, padding=sig.padding, dilation=sig.dilation, groups=sig.groups)


def _run(
    sig: ConvSignature, x: torch.Tensor, w: torch.Tensor, g: torch.Tensor, dtype: torch.dtype | None
) -> tuple[torch.Tensor, ...]:
    """(output, input gradient, weight gradient) of ``sig`` on (x, w, upstream g) in float64 (dtype
    None), fp32, or autocast ``dtype``."""
    exact = dtype is None
    x = x.double() if exact else x.clone()
    w = w.double() if exact else w.clone()
    if sig.channels_last and not exact:
        x = x.contiguous(memory_format=torch.channels_last_3d)
        w = w.contiguous(memory_format=torch.channels_last_3d)
    x.requires_grad_(True)
    w.requires_grad_(True)
    autocast = dtype not in (None, torch.float32)
    with torch.autocast(x.device.type, dtype=dtype if autocast else torch.bfloat16, enabled=autocast):
        y = _convolve(sig, x, w)
    y.backward(g.to(y.dtype))
    assert x.grad is not None and w.grad is not None  # both were leaves that required grad
    return y.detach().double(), x.grad.double(), w.grad.double()


def relative_errors(
    sig: ConvSignature, device: torch.device, dtypes: list[torch.dtype], seed: int = 0
) -> dict[str, dict[str, float]]:
    """``{dtype name: {"forward", "input_grad", "weight_grad": relative error vs float64}}``."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(sig.input_shape, generator=gen)
    fan_in = sig.in_channels // sig.groups * int(torch.tensor(sig.kernel).prod())
    w = torch.randn(sig.out_channels, sig.in_channels // sig.groups, *sig.kernel, generator=gen) / fan_in**0.5
    with torch.no_grad():
        out_shape = _convolve(sig, x[:1].double(), w.double()).shape[1:]
    g = torch.randn(sig.input_shape[0], *out_shape, generator=gen)
    x, w, g = x.to(device), w.to(device), g.to(device)
    reference = _run(sig, x, w, g, None)
    errors = {}
    for dtype in dtypes:
        result = _run(sig, x, w, g, dtype)
        errors[DTYPE_NAMES[dtype]] = {
            part: float((a - r).norm() / r.norm().clamp_min(1e-30))
            for part, a, r in zip(("forward", "input_grad", "weight_grad"), result, reference)
        }
    return errors


def passes(errors: dict[str, float], dtype: torch.dtype) -> bool:
    """Whether every error is finite and within :data:`TOLERANCE` of ``dtype`` (NaN fails)."""
    return all(e <= TOLERANCE[dtype] for e in errors.values())  # NaN <= x is False


# ---- the cache ---------------------------------------------------------------------------------


def cache_path() -> Path:
    """``$VIDEOPERLIN_CACHE_DIR/numerics.json`` (default ``~/.cache/videoperlin``, or ``$XDG_CACHE_HOME``)."""
    root = (
        os.environ.get("VIDEOPERLIN_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "videoperlin"
    )
    return Path(root) / "numerics.json"


def _cpu_description() -> str:
    flags, model = set(), platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{model} [{capability}; {' '.join(f for f in CPU_FLAGS if f in flags)}]"


def device_description(device: torch.device) -> str:
    """The part of the cache key that names the hardware and the libraries below torch."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return (
            f"{torch.cuda.get_device_name(index)} sm{major}{minor} cudnn {torch.backends.cudnn.version()} "
            f"tf32 {torch.backends.cudnn.allow_tf32}"
        )
    return f"{_cpu_description()} mkldnn {torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}"


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        cached = json.loads(path.read_text())
        return cached if isinstance(cached, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or unreadable: probe again (the cache only saves time)


def probe_all(
    signatures: set[ConvSignature], device: torch.device, dtypes: list[torch.dtype]
) -> dict[ConvSignature, dict[str, dict[str, float]]]:
    """Relative errors of every signature at ``dtypes``, from the cache where it has them."""
    path = cache_path()
    cache = _read_cache(path)
    scope = f"v{PROBE_VERSION} torch {torch.__version__} {device_description(device)}"
    entries = cache.setdefault(scope, {})
    results, new = {}, 0
    for sig in sorted(signatures, key=lambda s: s.key()):
        cached = entries.get(sig.key(), {})
        missing = [d for d in dtypes if DTYPE_NAMES[d] not in cached]
        if missing:
            cached.update(relative_errors(sig, device, missing))
            entries[sig.key()] = cached
            new += 1
        results[sig] = cached
    if new:
        try:
            latest = _read_cache(path)  # another process may have added entries meanwhile
            latest.setdefault(scope, {}).update(entries)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(latest, indent=1))
        except OSError as exc:
            log.warning("numerics cache %s not written (%s): the probe will run again next time", path, exc)
        log.info("numerics guard: probed %d convolution shape(s) on %s", new, device)
    return results


# ---- the verdict -------------------------------------------------------------------------------


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``train.amp`` asks for on ``device`` (None: full fp32), before the numerics
    guard (:func:`~videoperlin.train.numerics.choose_precision`) checks it on the run's convolutions."""
    if amp == "off":
        return None
    if device.type == "cpu":
        if amp == "fp16":
            raise ConfigError("train.amp fp16 is for CUDA; use bf16 or off on the CPU")
        supported = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        return torch.bfloat16 if amp == "bf16" or supported else None
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def choose_precision(
    model: nn.Module,
    dtype: torch.dtype | None,
    device: torch.device,
    clip_shape: tuple[int, ...],
    batch: int,
    channels_last: bool,
) -> Precision:
    """The precision to train ``model`` in when ``dtype`` autocast is asked for (None: fp32).

    Every convolution is checked in fp32 and (when asked) ``dtype``; one failing ``dtype`` stays in
    fp32 (logged); one failing fp32 is an error. Applies the fallback to ``model``.
    """
    convs = convolution_inputs(model, clip_shape, batch, channels_last)
    dtypes = [torch.float32] + ([dtype] if dtype not in (None, torch.float32) else [])
    errors = probe_all(set(convs.values()), device, dtypes)
    broken = [(name, sig) for name, sig in convs.items() if not passes(errors[sig]["fp32"], torch.float32)]
    if broken:
        name, sig = broken[0]
        raise NumericsError(
            f"fp32 {sig.describe()} ({name}) is computed wrongly on {device} "
            f"(relative errors {_format(errors[sig]['fp32'])}); no precision can be trusted here: "
            f"try torch.backends.mkldnn.enabled=False or another torch build"
        )
    precision = Precision(None if dtype in (None, torch.float32) else dtype, probed=len(set(convs.values())))
    if precision.dtype is None:
        return precision
    tag = DTYPE_NAMES[precision.dtype]
    for name, sig in convs.items():
        if not passes(errors[sig][tag], precision.dtype):
            precision.fp32_modules.append(name)
            precision.failures.append(f"{name}: {tag} {sig.describe()}: {_format(errors[sig][tag])}")
            log.warning(
                "numerics guard: %s %s is wrong on %s (relative error %s vs float64); %s runs in fp32",
                tag,
                sig.describe(),
                device,
                _format(errors[sig][tag]),
                name,
            )
    precision.apply(model)
    return precision


def _format(errors: dict[str, float]) -> str:
    return ", ".join(f"{part} {value:.3g}" for part, value in errors.items())
