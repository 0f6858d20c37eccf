"""Run configuration: one dataclass per section, each field with its type, default, rule and doc.

Sections come from the layer that owns them: ``model`` (:class:`~videoperlin.models.config.ModelConfig`,
a registered name plus every architecture's options), ``synthetic`` (:class:`~videoperlin.vpn.source.ClipSource`, from the registered formula
families, plus the validation count), ``data`` (:class:`~videoperlin.data.config.DataConfig`),
``optim`` and ``train`` (here). ``videoperlin config`` prints every field.

Precedence: defaults < ``--config FILE.yaml`` < the command's shortcut flags (``--epochs``...) <
``--set section.field=value``. Every value is parsed by its field's type (``--set`` text too) and
checked; an unknown or renamed field and a bad value are one-line errors naming the field. The
resolved configuration is saved as ``config.yaml`` in the run directory and inside checkpoints,
and :func:`config_from_record` reads such a record back (also one written by an older version).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from videoperlin.config_fields import (
    Checked,
    FieldError,
    at_least,
    build,
    check_foreign_fields,
    current_name,
    current_value,
    field_types,
    greater_than,
    in_range,
    one_of,
    option,
    parse_text,
    seed_range,
    stored_records,
    to_dict,
    union_fields,
    values_of,
)
from videoperlin.data.config import DataConfig
from videoperlin.errors import ConfigError, quoted
from videoperlin.models.config import ModelConfig
from videoperlin.train.augment import AugmentConfig
from videoperlin.train.objectives import Objective
from videoperlin.train.objectives import freeze_schema as objectives_schema
from videoperlin.utils.atomic import atomic_write_text
from videoperlin.utils.text import read_yaml_file
from videoperlin.vpn.family import LabelSource, SourceOptions
from videoperlin.vpn.source import FAMILIES, ClipSource

log = logging.getLogger(__name__)

#: Fields a resumed run may change without changing what it computes: where it is, how fast it runs,
#: how often it saves or validates, and when it stops. ``--resume`` refuses a change to any other field
#: unless told to accept it (:func:`changed_settings`).
RESUME_NEUTRAL = frozenset(
    {
        "train.out",
        "train.progress",
        "train.tensorboard",
        "train.threads",
        "train.save_every",
        "train.checkpoint_every",
        "train.max_steps",
        "train.val_every",
        "data.workers",
        "data.cache_dir",
        "data.cache_limit_gb",
        "synthetic.workers",
    }
)
#: Fields holding paths; a run records them absolute, so it can be evaluated or resumed from any folder.
PATH_FIELDS = ("data.path", "data.val_path", "data.splits_dir", "data.cache_dir", "train.init", "train.out")

#: Keys that were renamed: a user's file or --set gets an error naming the new key; a stored record is migrated.
RENAMED = {"data.data": "data.path", "data.val_data": "data.val_path"}
#: Sections renamed since 0.4: read as the new name, with one deprecation line per process (renamed values
#: are their fields' own: ``option(..., renamed=...)``).
DEPRECATED_SECTIONS = {"vpn": "synthetic"}


def current_section(name: str) -> str:
    """A section's name today (an old name is read with one deprecation line)."""
    return current_name(DEPRECATED_SECTIONS, name, "config section")


def current_sections(mapping: Any) -> Any:
    """A nested run-config mapping (a partial one: a protocol's stage or arm) with today's section names."""
    if not isinstance(mapping, dict):
        return mapping
    renamed: dict[str, Any] = {}
    for key, value in mapping.items():
        new = current_section(key)
        both = isinstance(renamed.get(new), dict) and isinstance(value, dict)
        renamed[new] = {**renamed[new], **value} if both else value
    return renamed


def current_key(key: str) -> str:
    """A dotted key with its section's name of today."""
    section, dot, rest = key.partition(".")
    return f"{current_section(section)}.{rest}" if dot and section in DEPRECATED_SECTIONS else key


@dataclass
class SyntheticConfig(ClipSource):
    """Synthetic pre-training clips rendered on the fly: a :class:`~videoperlin.vpn.source.ClipSource`
    (family, label choice, options, count) plus the validation count; geometry from ``data``, seed
    from ``train.seed``. (``data.path`` may instead name an exported folder.)"""

    val_videos: int = option(1080, "held-out clips for validation (another seed)", at_least(1))
    workers: int = option(
        0,
        "CPU processes rendering training batches ahead of the step (0: in the training process; clips are "
        "the same either way)",
        at_least(0),
    )


OBJECTIVES = objectives_schema()


@dataclass
class _ObjectiveBase(Checked):
    name: str = option(
        "classify",
        f"what training optimises: {', '.join(f'{n} = {o.description}' for n, o in OBJECTIVES.items())}",
        one_of(list(OBJECTIVES)),
    )


class _ObjectiveMethods:
    """What the ``objective`` section knows (mixed into the generated :class:`ObjectiveConfig`)."""

    name: str

    @property
    def objective_class(self) -> type[Objective]:
        return OBJECTIVES[self.name]

    def options(self) -> Any:
        """The chosen objective's options."""
        cls = self.objective_class.Options
        return cls(**values_of(cls, self))

    def check_relations(self) -> None:
        mine = {"name", *(f.name for f in dataclasses.fields(self.objective_class.Options))}
        owners = {f.name: n for n, o in OBJECTIVES.items() for f in dataclasses.fields(o.Options)}
        check_foreign_fields(self, mine, lambda f: f"objective {owners[f]}", self.name)


if TYPE_CHECKING:

    @dataclass
    class ObjectiveConfig(_ObjectiveMethods, _ObjectiveBase):
        def __getattr__(self, name: str) -> Any: ...

else:
    ObjectiveConfig = dataclasses.make_dataclass(
        "ObjectiveConfig",
        union_fields(o.Options for o in OBJECTIVES.values()),
        bases=(_ObjectiveMethods, _ObjectiveBase),
        namespace={
            "__doc__": "What training optimises: a registered objective and every objective's options.",
            "__module__": __name__,
        },
    )


@dataclass
class OptimConfig(Checked):
    """Optimiser, schedule and loss."""

    name: Literal["sgd", "adamw"] = option("sgd", "optimiser")
    lr: float = option(0.1, "base learning rate (peak after warmup)", greater_than(0))
    momentum: float = option(0.9, "SGD momentum", in_range(0, 1, high_open=True))
    weight_decay: float = option(1e-3, "weight decay (L2 for SGD, decoupled for AdamW)", at_least(0))
    nesterov: bool = option(False, "Nesterov momentum (SGD)")
    schedule: Literal["multistep", "cosine"] = option(
        "multistep", "multistep: lr x gamma at each milestone; cosine: decay to 0 at the last epoch"
    )
    milestones: list[int] = option([50, 100, 150], "epochs at which multistep multiplies the lr by gamma", at_least(0))
    gamma: float = option(0.1, "multistep lr factor", in_range(0, 1, low_open=True))
    warmup_epochs: float = option(0.0, "linear warmup from lr/100, in epochs (fractions allowed)", at_least(0))
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy", in_range(0, 1, high_open=True))
    betas: list[float] = option([0.9, 0.999], "AdamW's two moment decay rates", in_range(0, 1, high_open=True))
    layer_decay: float = option(
        1.0,
        "layer-wise lr decay: a layer's lr is lr x decay^(layers above it), the head's is lr (1: off; ViT recipe 0.75)",
        in_range(0, 1, low_open=True),
    )
    decay_norms_and_biases: bool = option(
        True, "apply weight decay to biases and norm weights too (the ResNet recipes); false: to weights only"
    )

    def check_relations(self) -> None:
        if len(self.betas) != 2:
            raise FieldError("betas", f"{self.betas} must be two numbers, e.g. [0.9, 0.999]")


@dataclass
class TrainConfig(Checked):
    """Loop, precision, checkpoints and initialisation."""

    epochs: int = option(200, "training epochs", at_least(1))
    batch_size: int = option(128, "clips per step and process", at_least(1))
    accum_steps: int = option(1, "micro-batches accumulated per optimiser step", at_least(1))
    amp: Literal["auto", "off", "bf16", "fp16"] = option(
        "auto", "mixed precision: auto = bf16 where the device supports it, fp16 on older GPUs, else off (fp32)"
    )
    channels_last: bool = option(True, "channels_last_3d memory format (faster convolutions)")
    seed: int = option(0, "seed of the data order, augmentation, initialisation and VPN clips", seed_range())
    deterministic: bool = option(False, "torch deterministic algorithms (slower)")
    out: str = option("runs/run", "run directory: config.yaml, metrics.jsonl, checkpoints/, figures/")
    save_every: int = option(
        1, "write last.pt every N epochs and at the last (0: at the last only; resume goes back to it)", at_least(0)
    )
    checkpoint_every: int = option(0, "also write last.pt every N steps (0: only at epoch ends)", at_least(0))
    max_steps: int = option(0, "stop after N steps in all (0: run all epochs); --resume continues", at_least(0))
    init: str | None = option(
        None, "initial weights: a VPN/training checkpoint, saved model or 3D-ResNets-PyTorch file"
    )
    reset_head: bool = option(True, "drop the init's classifier and start a fresh one")
    ft_begin_module: str | None = option(None, "freeze every top-level module before this one (e.g. layer4)")
    val_every: int = option(1, "validate every N epochs (and at the last)", at_least(1))
    progress: bool = option(True, "show a progress bar")
    tensorboard: bool = option(True, "also write TensorBoard event files (tensorboard/) when tensorboard is installed")
    threads: int = option(0, "torch CPU threads (0: torch's default)", at_least(0))


@dataclass
class RunConfig(Checked):
    """Everything a run needs."""

    task: Literal["pretrain", "train"] = option(
        "pretrain", "pretrain: VPN (rendered on the fly unless data.path is set); train: real video"
    )
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"doc": "network"})
    synthetic: SyntheticConfig = field(
        default_factory=SyntheticConfig, metadata={"doc": "synthetic pre-training clips (any family; VPN by default)"}
    )
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": "real-video data and clip geometry"})
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig, metadata={"doc": "what training optimises"})
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={"doc": "batch augmentations (classify)"})
    optim: OptimConfig = field(default_factory=OptimConfig, metadata={"doc": "optimiser and schedule"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"doc": "loop, precision, checkpoints"})

    def check_relations(self) -> None:
        objective = self.objective.objective_class
        if self.task == "train" and objective.name != "classify":
            raise FieldError(
                "objective.name", f"{objective.name} is a pre-training objective; train fine-tunes with classify"
            )
        if objective.needs_tokens and not self.model.architecture.tokens:
            raise FieldError(
                "objective.name",
                f"{objective.name} masks tokens, and model {self.model.name} has none; choose a transformer "
                f"(model.name vit_tiny, vit_small, vit_base)",
            )
        if self.augment != AugmentConfig() and not objective.uses_labels:
            raise FieldError(
                "augment", f"mixes and erases clips for classification; objective {objective.name} uses no labels"
            )
        real_video = self.task == "train" or self.data.path is not None
        if real_video and self.data.size > self.data.short_side:
            raise FieldError(
                "data.size",
                f"{self.data.size} exceeds data.short_side {self.data.short_side}: frames "
                f"decoded that small cannot be cropped to it; set data.short_side >= data.size",
            )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


# ---- keys --------------------------------------------------------------------------------------


def field_annotation(key: str, root: type = RunConfig) -> Any:
    """The type of config key ``section.field`` (errors list the valid keys)."""
    if key in RENAMED:
        raise ConfigError(f"config key {key} was renamed to {RENAMED[key]}; use {RENAMED[key]}")
    cls, parts = root, key.split(".")
    for depth, part in enumerate(parts):
        types_ = field_types(cls)
        if part not in types_:
            where = ".".join(parts[:depth])
            valid = ", ".join(f"{where}.{name}".lstrip(".") for name in types_)
            raise ConfigError(
                f"unknown config field {quoted(key)}; valid fields{' in ' + where if where else ''}: {valid}"
            )
        annotation = types_[part]
        is_section = isinstance(annotation, type) and dataclasses.is_dataclass(annotation)
        if depth < len(parts) - 1 and not is_section:
            raise ConfigError(f"unknown config field {quoted(key)}: {'.'.join(parts[: depth + 1])} is not a section")
        cls = annotation
    if isinstance(cls, type) and dataclasses.is_dataclass(cls):
        raise ConfigError(f"{key} is a section; set one of its fields, e.g. {key}.{next(iter(field_types(cls)))}")
    return cls


def set_key(mapping: dict[str, Any], key: str, value: Any) -> None:
    """Put ``value`` at dotted ``key`` of a nested mapping (the key is checked against the schema; an old
    section name or value is read as today's)."""
    key = current_key(key)
    field_annotation(key)
    *sections, name = key.split(".")
    target = mapping
    for section in sections:
        target = target.setdefault(section, {})
    target[name] = value


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (a section value that is not a mapping stays a leaf)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        key = key if prefix or key not in DEPRECATED_SECTIONS else current_section(key)
        dotted = f"{prefix}{key}"
        section = isinstance(field_types(RunConfig).get(key), type) and not prefix
        if section and value is None:  # an empty section in YAML ("train:" with every field commented out)
            continue
        if isinstance(value, dict) and section:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def parse_override(text: str) -> tuple[str, Any]:
    """``section.field=value`` -> (key, value parsed by the field's type)."""
    if "=" not in text:
        raise ConfigError(f"--set {quoted(text)} must look like section.field=value, e.g. optim.lr=0.01")
    key, raw = (part.strip() for part in text.split("=", 1))
    key = current_key(key)
    try:
        return key, parse_text(current_value(field_of(key), raw, key), field_annotation(key), key)
    except FieldError as exc:
        raise FieldError(exc.key, exc.problem, field_doc_of(key)) from None


# ---- loading -----------------------------------------------------------------------------------


def read_yaml(path: str | Path, what: str = "--config") -> dict[str, Any]:
    """A YAML mapping from ``path``; errors name the file."""
    path = Path(path)
    mapping = read_yaml_file(path, what) or {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of sections")
    return mapping


#: Shortcut names -> config keys: the commands' flags (``--epochs``) and the Python API's keywords
#: (``pretrain(epochs=2)``); every other field is ``--set section.field=value`` / ``section__field=value``.
SHORTCUTS = {
    "out": "train.out",
    "model": "model.name",
    "widen_factor": "model.widen_factor",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "optim.lr",
    "amp": "train.amp",
    "seed": "train.seed",
    "max_steps": "train.max_steps",
    "checkpoint_every": "train.checkpoint_every",
    "init": "train.init",
    "ft_begin_module": "train.ft_begin_module",
    "objective": "objective.name",
    "family": "synthetic.family",
    "preset": "synthetic.preset",
    "num_videos": "synthetic.num_videos",
    "data": "data.path",
    "val_data": "data.val_path",
    "dataset": "data.dataset",
    "split": "data.split",
    "splits_dir": "data.splits_dir",
    "fold": "data.fold",
    "folds": "data.folds",
    "val_fraction": "data.val_fraction",
    "frames": "data.frames",
    "size": "data.size",
    "stride": "data.stride",
    "window_stride": "data.window_stride",
    "short_side": "data.short_side",
    "workers": "data.workers",
    "cache_dir": "data.cache_dir",
    "on_bad_video": "data.on_bad_video",
}

#: The recipe each command runs when none is given (``videoperlin config COMMAND`` prints it; the Python
#: API's ``pretrain``/``finetune`` run the same).
DEFAULT_RECIPES = {"pretrain": "pretrain_cpu", "train": "finetune_cpu"}
#: Environment variable of ``;``-separated ``section.field=value`` overrides applied after everything else to
#: every run config (and, for their clip settings, to ``generate`` and ``preview``): how the test suite runs
#: the documented journeys at tiny sizes without editing them.
ENV_SET = "VIDEOPERLIN_SET"


def builtin_config(name: str) -> Path:
    """Path of a built-in recipe or protocol (``configs/<name>.yaml`` inside the package)."""
    path = Path(str(resources.files("videoperlin") / "configs" / f"{name}.yaml"))
    if not path.exists():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"--config {quoted(name)} is neither a file nor a built-in config ({', '.join(available)})")
    return path


def config_path(name: str | Path | None) -> Path | None:
    """A ``--config`` value: an existing file, else a built-in name."""
    if name is None:
        return None
    text = str(name)
    if Path(text).exists() or "/" in text or text.endswith((".yaml", ".yml")):
        return Path(text)
    return builtin_config(text)


def env_sets() -> list[str]:
    """The overrides of :data:`ENV_SET` (none when it is unset)."""
    return [part.strip() for part in os.environ.get(ENV_SET, "").split(";") if part.strip()]


def recipe_config(
    task: str, recipe: str | Path | None = None, overrides: dict[str, Any] | None = None, sets: list[str] | None = None
) -> RunConfig:
    """The run config of a ``pretrain``/``train`` command or API call: ``recipe`` (a path or built-in name;
    default :data:`DEFAULT_RECIPES`), then ``overrides`` and ``--set`` strings, then :data:`ENV_SET`; a
    ``train`` from a videoperlin checkpoint builds that checkpoint's network (:func:`adopt_init_architecture`)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    sets = list(sets or [])
    config = load_config(config_path(recipe) or builtin_config(DEFAULT_RECIPES[task]), overrides, sets, task=task)
    user_keys = frozenset([*overrides, *(text.split("=", 1)[0].strip() for text in sets)])
    return adopt_init_architecture(config, user_keys) if task == "train" else config


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    sets: list[str] | None = None,
    task: str | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """``base`` (a nested mapping, e.g. a partial config), then the YAML file, then the task, then
    ``overrides`` (dotted keys, typed values; None means "not given"), then ``--set`` strings, then
    :data:`ENV_SET`'s."""
    mapping: dict[str, Any] = {}
    layers = [base or {}, read_yaml(path) if path is not None else {}]
    for layer in layers:
        for key, value in flatten(layer).items():
            set_key(mapping, key, value)
    if task is not None:
        mapping["task"] = task
    recipe = {section: dict(mapping.get(section) or {}) for section in ("model", "synthetic")}
    for key, value in (overrides or {}).items():
        if value is not None:
            set_key(mapping, key, value)
    for text in [*(sets or []), *env_sets()]:
        set_key(mapping, *parse_override(text))
    _drop_foreign_recipe_options(mapping, recipe)
    return build(RunConfig, mapping)


def _drop_foreign_recipe_options(mapping: dict[str, Any], recipe: dict[str, dict[str, Any]]) -> None:
    """A recipe's model options are for the model it names, its clip options for its family: when the
    command line names another architecture (``--model vit_tiny`` over a ResNet recipe) or family
    (``--family textures`` over a VPN recipe), the recipe's options that one lacks are left out (its
    preset too). What the user sets is never dropped, and still refused if foreign."""
    for section, key, own in (("model", "name", _architecture_options), ("synthetic", "family", _family_options)):
        chosen = (mapping.get(section) or {}).get(key)
        names = None if chosen is None or chosen == recipe[section].get(key) else own(chosen)
        if names is None:
            continue
        values = mapping[section]
        dropped = [k for k, v in recipe[section].items() if k != key and k not in names and values.get(k) == v]
        for name in dropped:
            del values[name]
        if dropped:
            log.info("the recipe's %s are not %s's: left out", ", ".join(f"{section}.{k}" for k in dropped), chosen)


def _architecture_options(name: str) -> set[str] | None:
    architectures = ModelConfig.architectures()
    return set(architectures[name].option_names()) if name in architectures else None


def _family_options(name: str) -> set[str] | None:
    """The ``synthetic`` fields family ``name`` uses: its own, and those every family shares but a preset."""
    if name not in FAMILIES:
        return None
    family = FAMILIES[name]
    shared = {f.name for f in dataclasses.fields(SyntheticConfig)} - {f.name for f in dataclasses.fields(LabelSource)}
    shared -= {
        f.name for other in FAMILIES.values() for g in (other.Options, other.Labels) for f in dataclasses.fields(g)
    }
    own = {f.name for g in (family.Options, family.Labels) for f in dataclasses.fields(g)}
    return (shared | own | {f.name for f in dataclasses.fields(SourceOptions)}) - {"preset", "labels"}


def adopt_init_architecture(config: RunConfig, user_keys: frozenset[str] = frozenset()) -> RunConfig:
    """``config`` building the network its ``train.init`` describes (:func:`~videoperlin.models.pretrained.
    init_network`: a videoperlin checkpoint's record, or what a torchvision, mmaction2 or VideoMAE file's
    tensors say), so that a recipe's model never fights the checkpoint's; the training options (dropout,
    drop path) stay the config's. A key the user set (``user_keys``: ``model.widen_factor``...) that
    disagrees is a one-line error naming both values."""
    init = config.train.init
    if init is None or not Path(init).exists():
        return config
    from videoperlin.models.pretrained import init_network

    found = init_network(init)
    if found is None:
        return config
    source, wanted = found
    current = to_dict(config.model)
    conflicts = [
        f"model.{k} {current.get(k)!r} (set here) vs {v!r} (the checkpoint's)"
        for k, v in wanted.items()
        if f"model.{k}" in user_keys and current.get(k) != v
    ]
    if conflicts:
        raise ConfigError(
            f"train.init {init} was trained as another network: {'; '.join(conflicts)}; leave the model options "
            f"out to build the checkpoint's network, or choose another --init"
        )
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    if not changed:
        return config
    (log.warning if "name" in changed else log.info)(
        "train.init %s is a %s checkpoint: the model is built as it is (%s)",
        init,
        source,
        ", ".join(f"model.{k}={v}" for k, v in changed.items()),
    )
    own = {"name", *ModelConfig.architectures()[wanted["name"]].option_names()}
    others = {k: v for k, v in to_dict(ModelConfig()).items() if k not in own}  # another family's: defaults
    return dataclasses.replace(config, model=dataclasses.replace(config.model, **others, **wanted))


def config_from_record(record: dict[str, Any]) -> RunConfig:
    """A stored config (``config.yaml``, a checkpoint's ``config``), migrating what changed since:
    renamed keys, and records that named per-axis frequencies beside the default preset (older
    versions preferred the lists; one label-space source is the rule now). Old names are read without a
    deprecation line: the toolkit wrote the record, no user is to rename it."""
    with stored_records():
        flat = {RENAMED.get(key, key): value for key, value in flatten(record).items()}
        if any(flat.get(f"synthetic.{axis}") is not None for axis in ("fx", "fy", "ft")):
            flat["synthetic.preset"] = None
        mapping: dict[str, Any] = {}
        for key, value in flat.items():
            set_key(mapping, key, value)
        return build(RunConfig, mapping)


def with_absolute_paths(config: RunConfig) -> RunConfig:
    """``config`` with every :data:`PATH_FIELDS` value made absolute (from the working directory)."""
    flat = flatten(config.to_dict())
    mapping: dict[str, Any] = {}
    for key, value in flat.items():
        absolute = key in PATH_FIELDS and value is not None and "://" not in str(value)
        set_key(mapping, key, str(Path(value).expanduser().absolute()) if absolute else value)
    return build(RunConfig, mapping)


def changed_settings(recorded: dict[str, Any], config: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Field -> (recorded value, value now) for every field outside :data:`RESUME_NEUTRAL` on which a
    run's stored config (``recorded``) and ``config`` differ; paths compared absolute."""
    before = flatten(with_absolute_paths(config_from_record(recorded)).to_dict())
    now = flatten(with_absolute_paths(config).to_dict())
    unused = "synthetic." if config.task == "train" or config.data.path is not None else None  # clips come from files
    return {
        k: (before.get(k), v)
        for k, v in now.items()
        if k not in RESUME_NEUTRAL and before.get(k) != v and not (unused and k.startswith(unused))
    }


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def field_of(key: str) -> dataclasses.Field:
    """The dataclass field of config key ``section.field`` (checked: :func:`field_annotation`)."""
    field_annotation(key)
    *sections, name = key.split(".")
    cls: Any = RunConfig
    for section in sections:
        cls = field_types(cls)[section]
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def field_doc_of(key: str) -> str:
    """The doc of config key ``section.field``."""
    return field_of(key).metadata.get("doc", "")
