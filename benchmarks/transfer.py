"""Transfer benchmark: does VPN initialization help 3D CNNs on real video?

Arms, each fine-tuned with the same recipe and budget (see benchmarks/transfer_default.yaml):

* ``scratch``  -- random initialization;
* ``vpn-low`` / ``vpn-high`` -- pre-trained on low- / high-frequency VPN (same number of videos,
  steps and schedule);
* ``shuffled`` -- pre-trained on the *same* videos as ``vpn-low`` with random labels: does the
  frequency label carry the benefit, or mere exposure to noise?
* ``inflated`` -- ImageNet-style 2D ResNet weights inflated to 3D (only with ``--inflate-from``;
  r3d architectures only).

Every arm runs for every architecture, dataset, group fold (no actor/sequence on both sides) and
seed; the metric is the final epoch's video-level top-1 on the held-out fold. Pre-trained
checkpoints are cached in ``OUT/pretrain`` and reused across datasets, folds and seeds; every
finished run is reused when the benchmark is run again, so an interrupted benchmark resumes.

    python benchmarks/transfer.py [--config benchmarks/transfer_default.yaml] [--out runs/transfer]
                                  [--data manifest.csv|folders] [--inflate-from resnet18_2d.pth]
                                  [--set finetune.epochs=30] [--publish benchmarks/results/transfer]

Writes ``OUT/report.md`` (arms x datasets, mean ± std and n, paired differences to scratch, the
command and protocol), ``OUT/results.csv`` (``arm,arch,dataset,fold,seed,video_top1``),
``OUT/figures/curves_<dataset>_<arch>.png`` and ``OUT/figures/conv1_<arch>_<arm>.png``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from videoperlin.analysis.curves import plot_groups, read_metrics
from videoperlin.analysis.kernels import save_kernel_panel
from videoperlin.data.sources import load_source
from videoperlin.errors import ConfigError, VideoperlinError
from videoperlin.models import create_model
from videoperlin.models.checkpoint import load_model, save_model
from videoperlin.models.inflate import inflate_2d
from videoperlin.train.checkpointing import load_checkpoint
from videoperlin.train.config import load_config
from videoperlin.train.engine import Trainer
from videoperlin.utils.atomic import atomic_write_text

log = logging.getLogger("transfer")
DEFAULT_CONFIG = Path(__file__).with_name("transfer_default.yaml")
ARMS = ("scratch", "vpn-low", "vpn-high", "shuffled", "inflated")
VPN_ARMS = {"vpn-low": {"vpn.preset": "low"}, "vpn-high": {"vpn.preset": "high"},
            "shuffled": {"vpn.preset": "low", "vpn.label_mode": "shuffled"}}
RESULT_COLUMNS = ("arm", "arch", "dataset", "fold", "seed", "video_top1")


# ---- protocol ------------------------------------------------------------------------------------

def load_protocol(path: Path, sets: list[str]) -> dict[str, Any]:
    """The YAML protocol with ``section.key=value`` overrides applied, checked."""
    protocol = yaml.safe_load(path.read_text())
    for text in sets:
        key, _, raw = text.partition("=")
        target = protocol
        *parents, name = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[name] = yaml.safe_load(raw)
    unknown = [a for a in protocol["arms"] if a not in ARMS]
    if unknown:
        raise ConfigError(f"unknown arm(s) {unknown}; arms are {', '.join(ARMS)}")
    if "scratch" not in protocol["arms"]:
        raise ConfigError("the arms must include 'scratch': every other arm is compared with it")
    return protocol


def datasets_from_data(data: str, dataset: str | None, folds: int) -> list[dict[str, Any]]:
    """Benchmark datasets for ``--data``: one per 'dataset' value of a CSV manifest, else one."""
    path = Path(data)
    names = [dataset] if dataset else [None]
    if path.suffix == ".csv" and dataset is None:
        with open(path, newline="") as handle:
            found = sorted({row.get("dataset") or "" for row in csv.DictReader(handle)} - {""})
        names = found or [None]
    return [{"name": name or path.stem, "data": data, "dataset": name, "folds": folds} for name in names]


def common_overrides(protocol: dict[str, Any], arch: str) -> dict[str, Any]:
    clip, model = protocol["clip"], protocol.get("model", {})
    overrides = {"model.name": arch, "data.frames": clip["frames"], "data.size": clip["size"],
                 "data.short_side": clip.get("short_side", 128), "train.progress": False}
    overrides.update({f"model.{k}": v for k, v in model.items()})
    return overrides


# ---- pre-training (cached) -----------------------------------------------------------------------

def pretrain_config(protocol: dict[str, Any], arm: str, arch: str, cache: Path):
    p = protocol["pretrain"]
    overrides = {**common_overrides(protocol, arch), **VPN_ARMS[arm], "vpn.num_videos": p["num_videos"],
                 "vpn.val_videos": p["val_videos"], "train.epochs": p["epochs"], "train.batch_size": p["batch_size"],
                 "optim.lr": p["lr"], "optim.weight_decay": p["weight_decay"], "optim.schedule": "cosine",
                 "optim.warmup_epochs": p.get("warmup_epochs", 0.5), "train.amp": p.get("amp", "auto"),
                 "train.seed": p.get("seed", 0)}
    key = hashlib.sha1(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:10]
    overrides["train.out"] = str(cache / f"{arch}-{arm}-{key}")
    return load_config(None, overrides, task="pretrain")


def pretrained(protocol: dict[str, Any], arm: str, arch: str, cache: Path) -> Path | None:
    """Checkpoint an arm starts from (None for scratch), training or inflating it once."""
    if arm == "scratch":
        return None
    if arm == "inflated":
        target = cache / f"{arch}-inflated"
        if not (target / "model.safetensors").exists():
            model = create_model(arch, num_classes=1000, temporal_padding="zeros",
                                 **protocol.get("model", {}))
            inflate_2d(model, protocol["inflate_from"], drop_classifier=True)
            save_model(model, target, extra={"inflated_from": str(protocol["inflate_from"])})
        return target
    config = pretrain_config(protocol, arm, arch, cache)
    last = Path(config.train.out) / "checkpoints" / "last.pt"
    if not (last.exists() and load_checkpoint(last)["position"]["epoch"] >= config.train.epochs):
        log.info("pre-training %s %s -> %s", arch, arm, config.train.out)
        Trainer(config, resume=True).fit()
    return last


def pretrain_accuracy(checkpoint: Path | None) -> float | None:
    if checkpoint is None or checkpoint.suffix != ".pt":
        return None
    return read_metrics(checkpoint.parents[1])[-1].get("val_acc")


# ---- fine-tuning ---------------------------------------------------------------------------------

def finetune(protocol, arm, arch, dataset, fold, seed, init: Path | None, out: Path) -> dict[str, Any]:
    """One fine-tuning run (reused if already finished); returns its result row."""
    f = protocol["finetune"]
    run = out / "finetune" / dataset["name"] / arch / arm / f"fold{fold}-seed{seed}"
    overrides = {**common_overrides(protocol, arch), "data.data": dataset["data"], "data.dataset": dataset.get("dataset"),
                 "data.folds": dataset["folds"], "data.fold": fold, "data.cache_dir": str(out / "frame-cache"),
                 "data.max_windows": f.get("max_windows"), "data.workers": f.get("workers", 0), "train.epochs": f["epochs"],
                 "train.batch_size": f["batch_size"], "optim.lr": f["lr"], "optim.weight_decay": f["weight_decay"],
                 "optim.schedule": "cosine", "optim.warmup_epochs": f.get("warmup_epochs", 0), "train.amp": f["amp"],
                 "train.val_every": f.get("val_every", 1), "train.ft_begin_module": f.get("ft_begin_module"),
                 "train.seed": seed, "train.init": str(init) if init else None, "train.out": str(run)}
    config = load_config(None, overrides, task="train")
    done = (run / "metrics.jsonl").exists() and read_metrics(run)[-1]["epoch"] >= f["epochs"]
    began = time.perf_counter()
    if not done:
        Trainer(config, resume=True).fit()
    records = read_metrics(run)
    final = next(r for r in reversed(records) if "val_acc" in r)
    log.info("%s %s %s fold %d seed %d: video top-1 %.3f (%.0f s)", dataset["name"], arch, arm, fold, seed,
             final["val_acc"], time.perf_counter() - began)
    return {"arm": arm, "arch": arch, "dataset": dataset["name"], "fold": fold, "seed": seed,
            "video_top1": final["val_acc"], "run": str(run)}


def check_folds(protocol: dict[str, Any]) -> None:
    for dataset in protocol["datasets"]:
        source = load_source(dataset["data"], dataset.get("dataset"))
        if any(r.group is None for r in source.records):
            raise ConfigError(f"{dataset['name']}: every video needs a group (actor/sequence) for group folds")
        bad = [f for f in protocol["run_folds"] if not 0 <= f < dataset["folds"]]
        if bad:
            raise ConfigError(f"run_folds {bad} are outside 0..{dataset['folds'] - 1} for {dataset['name']}")


def run_all(protocol: dict[str, Any], out: Path,
            cache: Path) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Path | None]]:
    """Pre-train (or reuse from ``cache``) every arm, then fine-tune every arm x dataset x fold x seed.

    Fine-tuning runs live under ``out`` and are reused only from there: a protocol variant with other
    fine-tuning settings needs its own ``--out`` (it can share ``--pretrain-cache``).
    """
    check_folds(protocol)
    rows, inits = [], {}
    for arch in protocol["archs"]:
        for arm in protocol["arms"]:
            if arm == "inflated" and not arch.startswith("r3d"):
                log.info("skipping inflated %s: 2D weights inflate into full 3D convolutions only", arch)
                continue
            inits[(arch, arm)] = pretrained(protocol, arm, arch, cache)
    for dataset in protocol["datasets"]:
        for arch in protocol["archs"]:
            for (init_arch, arm), init in inits.items():
                if init_arch != arch:
                    continue
                for fold in protocol["run_folds"]:
                    for seed in protocol["seeds"]:
                        rows.append(finetune(protocol, arm, arch, dataset, fold, seed, init, out))
                        write_results(out, rows)
    return rows, inits


# ---- report --------------------------------------------------------------------------------------

def write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buffer.getvalue())


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * std:.1f} (n={len(values)})"


def paired(rows: list[dict[str, Any]], arm: str, arch: str, dataset: str) -> tuple[list[float], list[float], list[float]]:
    """(arm accuracies, scratch accuracies, paired differences on the same fold and seed)."""
    def results(name: str) -> dict[tuple[int, int], float]:
        return {(r["fold"], r["seed"]): r["video_top1"] for r in rows if (r["arm"], r["arch"], r["dataset"]) == (name, arch, dataset)}
    mine, base = results(arm), results("scratch")
    return list(mine.values()), list(base.values()), [mine[k] - base[k] for k in mine if k in base]


def verdict(mine: list[float], base: list[float], diffs: list[float]) -> str:
    """Wins/ties/losses against scratch and whether the mean gain exceeds the run-to-run spread.

    The spread is the pooled sample std of the two arms' accuracies over folds x seeds.
    """
    if len(diffs) < 2:  # each arm then has at least two runs too (diffs pair them)
        return "–"
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    spread = ((statistics.variance(mine) + statistics.variance(base)) / 2) ** 0.5
    gain = statistics.mean(diffs)
    beyond = "**yes**" if gain > spread else "no"
    return f"{wins}/{len(diffs) - wins - losses}/{losses}; {100 * gain:+.1f} vs {100 * spread:.1f}: {beyond}"


def summary_table(rows: list[dict[str, Any]], protocol: dict[str, Any]) -> str:
    """Markdown: one row per arch and arm; per dataset the accuracy, the paired difference to scratch
    and the verdict (wins/ties/losses; mean gain vs spread)."""
    datasets = [d["name"] for d in protocol["datasets"]]
    header = "| arch | arm | " + " | ".join(f"{d} top-1 % | {d} Δ vs scratch (pp) | {d} W/T/L; gain vs spread (pp)"
                                            for d in datasets) + " |"
    lines = [header, "|" + "---|" * (2 + 3 * len(datasets))]
    for arch in protocol["archs"]:
        for arm in [a for a in protocol["arms"] if any(r["arm"] == a and r["arch"] == arch for r in rows)]:
            cells = []
            for d in datasets:
                mine, base, diffs = paired(rows, arm, arch, d)
                if arm == "scratch":
                    cells += [mean_std(mine), "–", "–"]
                else:
                    cells += [mean_std(mine), mean_std(diffs), verdict(mine, base, diffs)]
            lines.append(f"| {arch} | {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_figures(protocol: dict[str, Any], rows: list[dict[str, Any]], inits, out: Path) -> list[Path]:
    figures = []
    for dataset in protocol["datasets"]:
        for arch in protocol["archs"]:
            groups = {}
            for arm in protocol["arms"]:
                runs = [r["run"] for r in rows if (r["arm"], r["arch"], r["dataset"]) == (arm, arch, dataset["name"])]
                if runs:
                    groups[arm] = runs
            if groups:
                figures.append(plot_groups(groups, "val_acc", out / "figures" / f"curves_{dataset['name']}_{arch}.png",
                                           f"{dataset['name']}, {arch}: video top-1 on held-out folds"))
    for (arch, arm), init in inits.items():
        torch.manual_seed(0)
        model = create_model(arch, **protocol.get("model", {})) if init is None else load_model(init)
        figures.append(save_kernel_panel(model, out / "figures" / f"conv1_{arch}_{arm}.png", f"{arch} conv1, {arm}"))
    return figures


def write_report(protocol, rows, inits, out: Path, command: str, seconds: float) -> Path:
    pre = [f"| {arch} | {arm} | {100 * acc:.1f} |" for (arch, arm), init in inits.items()
           if (acc := pretrain_accuracy(init)) is not None]
    text = f"""# Transfer benchmark: does VPN initialization help?

Metric: video-level top-1 (softmax averaged over consecutive 16-frame windows, centre crop) on the
held-out group fold at the last fine-tuning epoch; mean ± sample std over folds × seeds, n runs.
Δ is the paired difference to `scratch` on the same fold and seed (percentage points). W/T/L counts
the paired runs the arm wins, ties and loses against scratch; "gain vs spread" sets the mean Δ
against the pooled sample std of the two arms' accuracies, and says **yes** when the gain is larger.

{summary_table(rows, protocol)}

Pre-training (VPN validation accuracy at the end, held-out VPN clips):

| arch | arm | VPN val top-1 % |
|---|---|---|
{chr(10).join(pre) if pre else "| – | – | – |"}

Figures: `figures/curves_<dataset>_<arch>.png` (validation accuracy vs epoch, mean and min–max
band per arm) and `figures/conv1_<arch>_<arm>.png` (conv1 after pre-training).

Wall time of the invocation that wrote this report: {seconds / 60:.1f} min (finished pre-training and
fine-tuning runs are reused, so a rerun that trains nothing takes seconds). Command:

    {command}

Protocol:

```yaml
{yaml.safe_dump(protocol, sort_keys=False).strip()}
```
"""
    atomic_write_text(out / "report.md", text)
    return out / "report.md"


def publish(out: Path, target: Path, figures: list[Path]) -> None:
    """Copy the report, results and this invocation's figures (text and small PNGs only) to ``target``."""
    (target / "figures").mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "results.csv"):
        shutil.copy2(out / name, target / name)
    for png in figures:
        shutil.copy2(png, target / "figures" / png.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Transfer benchmark: scratch vs VPN-initialized 3D CNNs")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"))
    parser.add_argument("--data", default=None, help="replace the datasets: a CSV manifest or class folders")
    parser.add_argument("--dataset", default=None, help="with --data: one 'dataset' value of the manifest")
    parser.add_argument("--folds", type=int, default=3, help="with --data: group folds")
    parser.add_argument("--inflate-from", default=None, help="2D ResNet state dict: adds the 'inflated' arm")
    parser.add_argument("--set", action="append", default=[], help="protocol override, e.g. finetune.epochs=30")
    parser.add_argument("--publish", type=Path, default=None, help="copy report, results and figures here")
    parser.add_argument("--pretrain-cache", type=Path, default=None,
                        help="folder of cached pre-trained checkpoints (default OUT/pretrain); share it between variants")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("videoperlin").setLevel(logging.WARNING)
    try:
        protocol = load_protocol(args.config, args.set)
        if args.data:
            protocol["datasets"] = datasets_from_data(args.data, args.dataset, args.folds)
        if args.inflate_from:
            protocol["inflate_from"] = args.inflate_from
            protocol["arms"] = [*protocol["arms"], "inflated"] if "inflated" not in protocol["arms"] else protocol["arms"]
        began = time.perf_counter()
        args.out.mkdir(parents=True, exist_ok=True)
        rows, inits = run_all(protocol, args.out, args.pretrain_cache or args.out / "pretrain")
        figures = write_figures(protocol, rows, inits, args.out)
        command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
        report = write_report(protocol, rows, inits, args.out, command, time.perf_counter() - began)
        if args.publish:
            publish(args.out, args.publish, figures)
    except VideoperlinError as exc:
        print(f"transfer: error: {exc}", file=sys.stderr)
        return 2
    print(report.read_text().split("Pre-training")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
