"""Run configuration: nested dataclasses, loaded from YAML and overridden from the command line.

Precedence: dataclass defaults < ``--config FILE.yaml`` < the command's shortcut flags (``--epochs``,
``--lr`` ...) < ``--set section.field=value`` overrides. Every value is checked against its field's
type; an unknown field or a bad value is an error naming the field. The resolved configuration is
saved as ``config.yaml`` in the run directory.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from videoperlin.errors import ConfigError


@dataclass
class ModelConfig:
    """Network (see videoperlin.models.create_model)."""

    name: str = "r3d18"
    widen_factor: float = 1.0
    conv1_t_size: int = 7
    conv1_t_stride: int = 1
    no_max_pool: bool = False
    shortcut: str = "B"
    dropout: float = 0.0
    temporal_padding: str = "zeros"


@dataclass
class VPNConfig:
    """VPN pre-training data, rendered on the fly (``data.data`` may instead name an exported folder)."""

    preset: str = "low"
    fx: list[int] | None = None
    fy: list[int] | None = None
    ft: list[int] | None = None
    num_videos: int = 10000
    val_videos: int = 1080
    octaves: int = 1
    persistence: float = 0.5
    lacunarity: float = 2.0
    tileable: bool = False
    random_phase: bool = True
    contrast_jitter: float = 0.25
    brightness_jitter: float = 0.1
    label_mode: str = "frequency"


@dataclass
class DataConfig:
    """Real-video data and clip geometry (frames and size apply to VPN too)."""

    data: str | None = None
    val_data: str | None = None
    dataset: str | None = None
    split: int = 1
    splits_dir: str | None = None
    fold: int = 0
    folds: int = 5
    val_fraction: float = 0.2
    frames: int = 16
    size: int = 112
    stride: int = 1
    short_side: int = 128
    cache_dir: str | None = None
    workers: int = 2
    on_bad_video: str = "skip"
    window_stride: int | None = None
    max_windows: int | None = 10
    scale_min: float = 0.25


@dataclass
class OptimConfig:
    """Optimiser, schedule and loss."""

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3
    nesterov: bool = False
    schedule: str = "multistep"
    milestones: list[int] = field(default_factory=lambda: [50, 100, 150])
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0


@dataclass
class TrainConfig:
    """Loop, precision, checkpoints and initialisation."""

    epochs: int = 200
    batch_size: int = 128
    accum_steps: int = 1
    amp: str = "auto"
    channels_last: bool = True
    seed: int = 0
    deterministic: bool = False
    out: str = "runs/run"
    checkpoint_every: int = 0
    max_steps: int = 0
    init: str | None = None
    reset_head: bool = True
    ft_begin_module: str | None = None
    val_every: int = 1
    progress: bool = True
    threads: int = 0


@dataclass
class RunConfig:
    """Everything a run needs; ``task`` is ``pretrain`` (VPN) or ``train`` (real video)."""

    task: str = "pretrain"
    model: ModelConfig = field(default_factory=ModelConfig)
    vpn: VPNConfig = field(default_factory=VPNConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CHOICES = {
    "task": ("pretrain", "train"),
    "model.shortcut": ("A", "B"),
    "vpn.label_mode": ("frequency", "shuffled"),
    "model.temporal_padding": ("zeros", "replicate"),
    "data.on_bad_video": ("skip", "fail"),
    "optim.name": ("sgd", "adamw"),
    "optim.schedule": ("multistep", "cosine"),
    "train.amp": ("auto", "off", "bf16", "fp16"),
}
POSITIVE = ("vpn.num_videos", "data.frames", "data.size", "data.stride", "data.folds", "train.epochs",
            "train.batch_size", "train.accum_steps", "train.val_every", "data.short_side")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check/convert ``value`` to the field type ``annotation``; errors name ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)
        return [_coerce(v, item, key) for v in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {annotation!r}")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def set_value(config: RunConfig, key: str, value: Any) -> None:
    """Set ``section.field`` (or ``task``) to ``value``, type-checked."""
    parts = key.split(".")
    target: Any = config
    for part in parts[:-1]:
        if not dataclasses.is_dataclass(target) or part not in {f.name for f in fields(target)}:
            raise ConfigError(f"unknown config section {part!r} in {key!r}; sections: "
                              f"{', '.join(f.name for f in fields(RunConfig) if f.name != 'task')}")
        target = getattr(target, part)
    name = parts[-1]
    types_ = _field_types(type(target))
    if not dataclasses.is_dataclass(target) or name not in types_ or dataclasses.is_dataclass(types_[name]):
        valid = ", ".join(f"{'.'.join(parts[:-1])}.{f}".lstrip(".") for f in types_ if not dataclasses.is_dataclass(types_[f]))
        raise ConfigError(f"unknown config field {key!r}; valid fields here: {valid}")
    setattr(target, name, _coerce(value, types_[name], key))


def apply_mapping(config: RunConfig, mapping: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested mapping (as read from YAML) onto ``config``."""
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            apply_mapping(config, value, f"{dotted}.")
        else:
            set_value(config, dotted, value)


def parse_override(text: str) -> tuple[str, Any]:
    """``section.field=value`` -> (key, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r} must look like section.field=value, e.g. optim.lr=0.01")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return key.strip(), raw


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                sets: list[str] | None = None, task: str | None = None) -> RunConfig:
    """Defaults, then the YAML file, then ``overrides`` (dotted keys), then ``--set`` strings; validated."""
    config = RunConfig()
    if path is not None:
        path = Path(path)
        try:
            mapping = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"--config {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(mapping, dict):
            raise ConfigError(f"--config {path} must hold a mapping of sections")
        apply_mapping(config, mapping)
    if task is not None:
        config.task = task
    for key, value in (overrides or {}).items():
        if value is not None:
            set_value(config, key, value)
    for text in sets or []:
        set_value(config, *parse_override(text))
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Cross-field checks with messages naming the field."""
    flat = {f"{section}.{k}": v for section, values in config.to_dict().items() if isinstance(values, dict)
            for k, v in values.items()}
    flat["task"] = config.task
    for key, allowed in CHOICES.items():
        if flat[key] not in allowed:
            raise ConfigError(f"{key} {flat[key]!r} must be one of {', '.join(allowed)}")
    for key in POSITIVE:
        if flat[key] is not None and flat[key] < 1:
            raise ConfigError(f"{key} {flat[key]} must be >= 1")
    if config.optim.lr <= 0:
        raise ConfigError(f"optim.lr {config.optim.lr} must be > 0")
    if not 0 <= config.optim.label_smoothing < 1:
        raise ConfigError(f"optim.label_smoothing {config.optim.label_smoothing} must be in [0, 1)")
    if config.task == "train" and not config.data.data:
        raise ConfigError("train needs --data (a class-folder tree, CSV manifest, UCF-101/HMDB-51 root, "
                          "Kinetics CSV or ActivityNet JSON)")


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from videoperlin.utils.atomic import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def config_from_dict(mapping: dict[str, Any]) -> RunConfig:
    """Inverse of :meth:`RunConfig.to_dict` (e.g. from a checkpoint)."""
    config = RunConfig()
    apply_mapping(config, mapping)
    return config
