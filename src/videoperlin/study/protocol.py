"""The transfer protocol: arms, architectures, datasets, folds and seeds, and the run configs of the
two stages.

A protocol is YAML (the built-in ``configs/transfer_default.yaml``, or your own) with typed fields
(:class:`Protocol`). Its stage sections are *partial run configs*, in the run-config layout and
checked by the same loader as ``videoperlin pretrain/train --config``:

* ``common`` -- applied to both stages (model options, clip geometry);
* ``pretrain`` -- VPN pre-training, shared by every pre-trained arm;
* ``pretrain_arms`` -- per pre-trained arm, what it changes in ``pretrain`` (``vpn-high: {synthetic: {preset: high}}``);
* ``finetune`` -- fine-tuning, shared by every arm.

``--set`` uses the same parser as the run commands: ``--set finetune.train.epochs=60``,
``--set pretrain.optim.lr=0.05``, ``--set archs=r3d18``, ``--set 'datasets=[{name: w, data: m.csv}]'``.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoperlin.config_fields import (
    Checked,
    FieldError,
    at_least,
    build,
    current_name,
    describe,
    field_types,
    one_of,
    option,
    parse_text,
    seed_range,
    stored_records,
)
from videoperlin.errors import ConfigError, quoted
from videoperlin.models.registry import list_models
from videoperlin.train.config import RunConfig, current_key, current_sections, field_annotation, load_config, read_yaml

SCRATCH, INFLATED = "scratch", "inflated"


@dataclass
class StudyDataset(Checked):
    """One dataset of the study: group folds of ``data``, or a fixed train/test split."""

    name: str = option("", "label of the dataset in the report and run directories")
    data: str = option("", "training data (any layout of data.path)")
    dataset: str | None = option(None, "rows of a CSV manifest whose 'dataset' column has this value")
    folds: int = option(3, "group folds (videos need a group: actor, sequence); unused with a fixed split", at_least(2))
    val_data: str | None = option(None, "fixed test set: train on data, test on this (any layout)")
    split: int | None = option(None, "fixed split from UCF-101/HMDB-51 split files: this split number", at_least(1))
    splits_dir: str | None = option(None, "folder of the split files (default: beside the videos)")
    after: str | None = option(
        None,
        "chain: start each arm from its final checkpoint on this earlier dataset "
        "(same architecture, seed and pre-training seed), e.g. VPN -> jhmdb -> this",
    )
    finetune: dict[str, Any] = option({}, "partial run config for this dataset's fine-tuning, over the protocol's")

    def check_relations(self) -> None:
        for name in ("name", "data"):
            if not getattr(self, name):
                raise FieldError(name, "is required")

    @property
    def fixed_split(self) -> bool:
        """Whether train/test are given (``val_data`` or ``split``) rather than group folds."""
        return self.val_data is not None or self.split is not None

    def data_section(self, fold: int) -> dict[str, Any]:
        """The run config's ``data`` section for ``fold`` (fold 0 of a fixed split)."""
        section = {
            "path": self.data,
            "dataset": self.dataset,
            "val_path": self.val_data,
            "splits_dir": self.splits_dir,
            "split": self.split or 1,
        }
        return section if self.fixed_split else {**section, "folds": self.folds, "fold": fold}


DEFAULT_VPN_ARMS = {
    "vpn-low": {"synthetic": {"preset": "low"}},
    "vpn-high": {"synthetic": {"preset": "high"}},
    "shuffled": {"synthetic": {"preset": "low", "label_mode": "shuffled"}},
    "vpn-motion": {"synthetic": {"preset": "motion"}},
    "shuffled-motion": {"synthetic": {"preset": "motion", "label_mode": "shuffled"}},
}


@dataclass
class Protocol(Checked):
    """What the study runs (see the module docstring)."""

    arms: list[str] = option(
        [SCRATCH, "vpn-low"],
        f"arms compared; {SCRATCH} is required (every other arm is paired with it), {INFLATED} needs inflate_from",
    )
    archs: list[str] = option(["r3d18"], "architectures, each with every arm", one_of(list_models()))
    datasets: list[StudyDataset] = option([], "datasets fine-tuned on")
    run_folds: list[int] = option([0, 1, 2], "group folds run per dataset (0-based)", at_least(0))
    seeds: list[int] = option([0, 1], "fine-tuning seeds (data order, augmentation, head initialisation)", seed_range())
    pretrain_seeds: list[int] = option(
        [0],
        "pre-training seeds: each pre-trained arm is trained once per seed "
        "(VPN clips, initialisation, order) and fine-tuned from each",
        seed_range(),
    )
    common: dict[str, Any] = option({}, "partial run config applied to both stages")
    pretrain: dict[str, Any] = option({}, "partial run config of VPN pre-training, shared by the pre-trained arms")
    pretrain_arms: dict[str, dict[str, Any]] = option(
        DEFAULT_VPN_ARMS, "pre-trained arms: what each changes in pretrain"
    )
    finetune: dict[str, Any] = option({}, "partial run config of fine-tuning, shared by every arm")
    compare_with: list[str] = option(
        [],
        "pre-trained arms every other pre-trained arm is also compared with, paired on fold, seed and "
        "pre-training seed (the ladder: [vpn-low], does a family beat the paper's VPN?)",
    )
    pooled: dict[str, list[str]] = option(
        {},
        "datasets also reported as one, under the key: runs pair within their own dataset and the pairs of all "
        "of them are the units (HMDB-51/JHMDB official splits 1-3, each a dataset entry: {jhmdb-1-3: [jhmdb, "
        "jhmdb2, jhmdb3]})",
    )
    arm_variants: dict[str, dict[str, str]] = option(
        {},
        "arms whose pre-training differs per dataset, {ARM: {DATASET: VARIANT}}: on DATASET the arm starts from "
        "VARIANT's pre-training (a pretrain_arms entry that is not itself an arm) and is reported as ARM -- e.g. "
        "MAE on each JHMDB split's own training clips, so no split's test videos were seen in pre-training",
    )
    inflate_from: str | None = option(
        None,
        "2D ResNet state dict for the inflated arm (ImageNet weights, I3D-style); "
        "given, the inflated arm joins the arms",
    )

    def check_relations(self) -> None:
        if self.inflate_from and INFLATED not in self.arms:
            self.arms.append(INFLATED)  # 2D weights to inflate are an arm of their own
        known = {SCRATCH, INFLATED, *self.pretrain_arms}
        unknown = [a for a in self.arms if a not in known]
        if unknown:
            raise FieldError(
                "arms", f"{unknown} are not arms; arms are {', '.join(sorted(known))} (add one under pretrain_arms)"
            )
        stray = [a for a in self.compare_with if a not in self.arms or a not in self.pretrain_arms]
        if stray:
            raise FieldError(
                "compare_with",
                f"{stray} must be pre-trained arms of this study ({', '.join(self.arms)}): add them to arms, "
                "or drop the comparison with --set compare_with=[]",
            )
        if SCRATCH not in self.arms:
            raise FieldError("arms", f"{self.arms} must include {SCRATCH}: every other arm is compared with it")
        if INFLATED in self.arms and not self.inflate_from:
            raise FieldError("inflate_from", "is required for the inflated arm (a 2D ResNet state dict)")
        for name in ("archs", "datasets", "run_folds", "seeds", "pretrain_seeds"):
            if not getattr(self, name):
                raise FieldError(name, "must not be empty")
        self.pools_are_valid()
        self.variants_are_valid()
        for position, entry in enumerate(self.datasets):
            earlier = {d.name: d for d in self.datasets[:position]}
            if entry.after is not None and (entry.after not in earlier or not earlier[entry.after].fixed_split):
                raise FieldError(
                    "datasets",
                    f"{entry.name}: after {quoted(entry.after)} must name an earlier dataset with a "
                    f"fixed split (split or val_data): its runs are the chain's first stage",
                )
        self.stage_configs_are_valid()

    def pools_are_valid(self) -> None:
        names = [d.name for d in self.datasets]
        for pool, members in self.pooled.items():
            unknown = [m for m in members if m not in names]
            if unknown or len(set(members)) < 2 or pool in names:
                raise FieldError(
                    f"pooled.{pool}",
                    f"{members} must name two or more of this study's datasets ({', '.join(names)}), once each, "
                    "under a name that is not a dataset's" + (f"; {unknown} are not" if unknown else ""),
                )

    def variants_are_valid(self) -> None:
        """Each variant is a pretrain_arms entry that is not an arm, for a pre-trained arm (a dataset the study
        does not run is allowed: one protocol serves its screen and its confirmation)."""
        for arm, variants in self.arm_variants.items():
            for dataset, variant in variants.items():
                if arm not in self.pretrain_arms or variant not in self.pretrain_arms or variant in self.arms:
                    raise FieldError(
                        f"arm_variants.{arm}.{dataset}",
                        f"{quoted(variant)} must be a pretrain_arms entry that is not an arm, for a pre-trained arm "
                        f"({', '.join(sorted(self.pretrain_arms))})",
                    )

    def pretraining_of(self, arm: str, dataset: str) -> str:
        """The pretrain_arms entry whose pre-training ``arm`` starts from on ``dataset`` (itself, or its variant)."""
        return self.arm_variants.get(arm, {}).get(dataset, arm)

    def stage_configs_are_valid(self) -> None:
        """Load every stage config once, so a bad field fails now, naming its section."""
        variants = [v for vs in self.arm_variants.values() for v in vs.values()]
        for arm in [a for a in self.arms if a in self.pretrain_arms] + variants:
            checked(
                f"pretrain_arms.{arm}",
                lambda arm=arm: self.pretrain_config(arm, self.archs[0], self.pretrain_seeds[0], "-"),
            )
        for entry in self.datasets:
            checked("finetune", lambda entry=entry: self.finetune_config(entry, self.archs[0], 0, 0, None, "-"))

    def pretrain_config(self, arm: str, arch: str, seed: int, out: str | Path) -> RunConfig:
        """The pre-training run of ``arm`` for ``arch`` and pre-training ``seed``, writing to ``out``."""
        run = {"model": {"name": arch}, "train": {"seed": seed, "out": str(out), "progress": False}}
        return load_config(base=merge(self.common, self.pretrain, self.pretrain_arms[arm], run), task="pretrain")

    def finetune_config(
        self,
        entry: StudyDataset,
        arch: str,
        fold: int,
        seed: int,
        init: Path | None,
        out: str | Path,
        cache_dir: str | None = None,
    ) -> RunConfig:
        """The fine-tuning run on ``entry`` (fold, seed) from ``init`` (None: scratch), writing to ``out``."""
        run = {
            "model": {"name": arch},
            "data": {**entry.data_section(fold), "cache_dir": cache_dir},
            "train": {"seed": seed, "out": str(out), "progress": False, "init": str(init) if init else None},
        }
        return load_config(base=merge(self.common, self.finetune, entry.finetune, run), task="train")

    def folds_of(self, entry: StudyDataset) -> list[int]:
        """The folds run on ``entry`` (one for a fixed split)."""
        return [0] if entry.fixed_split else list(self.run_folds)


def checked(section: str, load) -> Any:
    """Run ``load`` and prefix any config error with the protocol section it came from."""
    try:
        return load()
    except ConfigError as exc:
        raise ConfigError(f"protocol {section}: {exc}") from None


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of nested mappings, later layers winning."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


# ---- loading and --set ---------------------------------------------------------------------------

STAGES = ("common", "pretrain", "finetune")


def suggest(key: str) -> str:
    """Where a key that is not in the protocol probably belongs (older protocols were flat)."""
    name = key.split(".")[-1]
    stage = key.split(".")[0] if key.split(".")[0] in STAGES else "common"
    matches = [k for k, *_ in describe(RunConfig) if k == key or k.endswith(f".{name}")]
    return f"; did you mean {stage}.{matches[0]}?" if len(matches) == 1 else ""


def _run_key_annotation(key: str, run_key: str) -> Any:
    try:
        return field_annotation(run_key)
    except ConfigError as exc:
        raise ConfigError(f"--set {key}: {exc}{suggest(key)}") from None


def set_protocol_key(mapping: dict[str, Any], key: str, raw: str) -> None:
    """Apply one ``--set key=value`` to a protocol mapping, parsing the value by the field's type
    (inside a stage section: by the run-config field's type)."""
    head, _, rest = key.partition(".")
    head = current_protocol_field(head)
    types_ = field_types(Protocol)
    if head not in types_:
        raise ConfigError(f"unknown protocol field {quoted(key)}{suggest(key)}; fields: {', '.join(types_)}")
    if head not in STAGES and not (head == "pretrain_arms" and rest):  # a whole value (every arm at once too)
        if rest:
            raise ConfigError(f"--set {key}: {head} has no sub-fields; set the whole value, e.g. {head}=...")
        mapping[head] = parse_text(raw, types_[head], head)
        return
    path = [head]
    if head == "pretrain_arms":
        arm, _, rest = rest.partition(".")
        if not rest:  # one whole arm as YAML; its fields are checked with the stage configs
            mapping.setdefault(head, {})[arm] = parse_text(raw, dict[str, Any], key)
            return
        path.append(arm)
    elif not rest:
        raise ConfigError(f"--set {key}: {head} is a section; set one of its fields, e.g. {head}.train.epochs=...")
    rest = current_key(rest)
    value = parse_text(raw, _run_key_annotation(key, rest), rest)
    target = mapping
    for part in path + rest.split(".")[:-1]:
        target = target.setdefault(part, {})
    target[rest.split(".")[-1]] = value


#: The environment variable the built-in protocols read their datasets' folder from (``--data-root`` sets it).
DATA_ROOT_ENV = "VIDEOPERLIN_DATA"
_DATA_ROOT = re.compile(r"\$(\{VIDEOPERLIN_DATA\}|VIDEOPERLIN_DATA\b)")


def with_data_root(value: Any, where: str) -> Any:
    """``value`` with ``$VIDEOPERLIN_DATA`` in its strings replaced by :data:`DATA_ROOT_ENV`'s value (nested
    mappings and lists too); unset, a one-line error naming the variable and what to set it to."""
    if isinstance(value, dict):
        return {k: with_data_root(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [with_data_root(v, where) for v in value]
    if not isinstance(value, str) or not _DATA_ROOT.search(value):
        return value
    root = os.environ.get(DATA_ROOT_ENV)
    if not root:
        raise ConfigError(
            f"{where} reads ${DATA_ROOT_ENV} ({value}), which is not set: export {DATA_ROOT_ENV}=FOLDER, the folder "
            f"holding your datasets as docs/guide/data/index.md lays them out, or give --data-root FOLDER"
        )
    return _DATA_ROOT.sub(lambda _: root.rstrip("/"), value)


#: Protocol fields renamed since 0.4 (read with one deprecation line).
RENAMED_FIELDS = {"vpn_arms": "pretrain_arms"}


def current_protocol_field(name: str) -> str:
    return current_name(RENAMED_FIELDS, name, "protocol field")


def current_protocol(mapping: dict[str, Any]) -> dict[str, Any]:
    """A protocol mapping with today's field and section names (stages and arms are partial run configs)."""
    out = {current_protocol_field(k): v for k, v in mapping.items()}
    for stage in STAGES:
        if stage in out:
            out[stage] = current_sections(out[stage])
    if isinstance(out.get("pretrain_arms"), dict):
        out["pretrain_arms"] = {arm: current_sections(entry) for arm, entry in out["pretrain_arms"].items()}
    return out


def protocol_from_record(mapping: dict[str, Any]) -> Protocol:
    """A protocol a study wrote itself (a report's ``Protocol:`` block), read in today's names without
    deprecation lines: no user is to rename it."""
    with stored_records():
        return build(Protocol, current_protocol(mapping))


def load_protocol(path: str | Path, sets: list[str] | None = None, changes: dict[str, Any] | None = None) -> Protocol:
    """The protocol in ``path`` with ``changes`` (whole fields) and ``--set`` strings applied, checked;
    ``$VIDEOPERLIN_DATA`` in its strings is the folder that variable names (:func:`with_data_root`)."""
    mapping = current_protocol(read_yaml(path, "protocol"))
    mapping.update(current_protocol(changes or {}))
    for text in sets or []:
        if "=" not in text:
            raise ConfigError(f"--set {quoted(text)} must look like key=value, e.g. finetune.train.epochs=60")
        key, raw = (part.strip() for part in text.split("=", 1))
        set_protocol_key(mapping, key, raw)
    unknown = [k for k in mapping if k not in field_types(Protocol)]
    if unknown:
        raise ConfigError(f"{path}: unknown protocol field {quoted(unknown[0])}{suggest(unknown[0])}")
    return build(Protocol, with_data_root(mapping, f"protocol {Path(path).name}"))
