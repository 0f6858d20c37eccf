"""The study's outputs: ``results.csv``, ``report.md`` (arms x datasets, paired differences to
scratch, wins/ties/losses and a verdict), validation curves and conv1 panels, and ``publish``.

Pairing: a run of arm A on (dataset, architecture, fold, seed, pre-training seed p) is compared
with scratch on the same (dataset, architecture, fold, seed); scratch has no pre-training seed,
so each scratch run pairs with one run per pre-training seed of every pre-trained arm.
"""

from __future__ import annotations

import csv
import io
import shutil
import statistics
from pathlib import Path
from typing import Any

import torch
import yaml

from videoperlin.analysis.curves import plot_groups, read_metrics
from videoperlin.analysis.kernels import save_kernel_panel
from videoperlin.models import create_model
from videoperlin.models.checkpoint import load_model
from videoperlin.study.protocol import SCRATCH, Protocol
from videoperlin.study.runs import Init
from videoperlin.utils.atomic import atomic_write_text
from videoperlin.utils.fields import to_dict

RESULT_COLUMNS = ("arm", "arch", "dataset", "fold", "seed", "pretrain_seed", "video_top1", "clip_top1")


def write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    """``results.csv``: one row per fine-tuning run."""
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
    """(arm accuracies, scratch accuracies, paired differences arm - scratch on the same fold and seed)."""
    def results(name: str) -> dict[tuple, float]:
        return {(r["fold"], r["seed"], r.get("pretrain_seed", "")): r["video_top1"] for r in rows
                if (r["arm"], r["arch"], r["dataset"]) == (name, arch, dataset)}
    mine = results(arm)
    base = {(fold, seed): value for (fold, seed, _), value in results(SCRATCH).items()}
    return list(mine.values()), list(base.values()), [v - base[k[:2]] for k, v in mine.items() if k[:2] in base]


def verdict(mine: list[float], base: list[float], diffs: list[float]) -> str:
    """Wins/ties/losses against scratch and whether the mean gain exceeds the run-to-run spread.

    The spread is the pooled sample std of the two arms' accuracies over folds x seeds.
    """
    if len(diffs) < 2 or len(mine) < 2 or len(base) < 2:
        return "–"
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    spread = ((statistics.variance(mine) + statistics.variance(base)) / 2) ** 0.5
    gain = statistics.mean(diffs)
    beyond = "**yes**" if gain > spread else "no"
    return f"{wins}/{len(diffs) - wins - losses}/{losses}; {100 * gain:+.1f} vs {100 * spread:.1f}: {beyond}"


def arms_present(rows: list[dict[str, Any]], protocol: Protocol, arch: str) -> list[str]:
    return [a for a in protocol.arms if any(r["arm"] == a and r["arch"] == arch for r in rows)]


def summary_table(rows: list[dict[str, Any]], protocol: Protocol) -> str:
    """Markdown: one row per arch and arm; per dataset the accuracy, the paired difference to
    scratch and the verdict (wins/ties/losses; mean gain vs spread)."""
    datasets = [d.name for d in protocol.datasets]
    header = "| arch | arm | " + " | ".join(f"{d} top-1 % | {d} Δ vs scratch (pp) | {d} W/T/L; gain vs spread (pp)"
                                            for d in datasets) + " |"
    lines = [header, "|" + "---|" * (2 + 3 * len(datasets))]
    for arch in protocol.archs:
        for arm in arms_present(rows, protocol, arch):
            cells = []
            for d in datasets:
                mine, base, diffs = paired(rows, arm, arch, d)
                cells += [mean_std(mine), "–", "–"] if arm == SCRATCH else \
                         [mean_std(mine), mean_std(diffs), verdict(mine, base, diffs)]
            lines.append(f"| {arch} | {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_figures(protocol: Protocol, rows: list[dict[str, Any]], inits: list[Init], out: Path) -> list[Path]:
    """Validation curves per dataset and architecture, and conv1 of every start point (first pre-training seed)."""
    figures = []
    for entry in protocol.datasets:
        for arch in protocol.archs:
            groups = {arm: [r["run"] for r in rows if (r["arm"], r["arch"], r["dataset"]) == (arm, arch, entry.name)]
                      for arm in arms_present(rows, protocol, arch)}
            groups = {arm: runs for arm, runs in groups.items() if runs}
            if groups:
                figures.append(plot_groups(groups, "val_acc", out / "figures" / f"curves_{entry.name}_{arch}.png",
                                           f"{entry.name}, {arch}: video top-1 on held-out data"))
    for init in inits:
        if init.pretrain_seed not in (None, protocol.pretrain_seeds[0]):
            continue
        torch.manual_seed(0)
        model_options = {k: v for k, v in protocol.common.get("model", {}).items() if k != "name"}
        model = create_model(init.arch, **model_options) if init.checkpoint is None else load_model(init.checkpoint)
        figures.append(save_kernel_panel(model, out / "figures" / f"conv1_{init.arch}_{init.arm}.png",
                                         f"{init.arch} conv1, {init.arm}"))
    return figures


def pretrain_accuracy(init: Init) -> float | None:
    """VPN validation accuracy at the end of an arm's pre-training (None if it was not pre-trained here)."""
    if init.checkpoint is None or init.checkpoint.suffix != ".pt":
        return None
    return read_metrics(init.checkpoint.parents[1])[-1].get("val_acc")


def write_report(protocol: Protocol, rows: list[dict[str, Any]], inits: list[Init], out: Path, command: str,
                 seconds: float) -> Path:
    """``report.md``: the table, pre-training accuracies, figures, wall time, command and protocol."""
    pre = [f"| {i.arch} | {i.arm} | {i.pretrain_seed} | {100 * acc:.1f} |" for i in inits
           if (acc := pretrain_accuracy(i)) is not None]
    text = f"""# Transfer study: does VPN initialization help?

Metric: video-level top-1 (softmax averaged over consecutive 16-frame windows, centre crop) on the
held-out data at the last fine-tuning epoch; mean ± sample std over folds × seeds × pre-training
seeds, n runs. Δ is the paired difference to `scratch` on the same fold and seed (percentage
points). W/T/L counts the paired runs the arm wins, ties and loses against scratch; "gain vs
spread" sets the mean Δ against the pooled sample std of the two arms' accuracies, and says
**yes** when the gain is larger.

{summary_table(rows, protocol)}

Pre-training (VPN validation accuracy at the end, held-out VPN clips):

| arch | arm | pre-training seed | VPN val top-1 % |
|---|---|---|---|
{chr(10).join(pre) if pre else "| – | – | – | – |"}

Figures: `figures/curves_<dataset>_<arch>.png` (validation accuracy vs epoch, mean and min–max
band per arm) and `figures/conv1_<arch>_<arm>.png` (conv1 after pre-training).

Wall time of the invocation that wrote this report: {seconds / 60:.1f} min (finished pre-training and
fine-tuning runs are reused, so a rerun that trains nothing takes seconds). Command:

    {command}

Protocol:

```yaml
{yaml.safe_dump(to_dict(protocol), sort_keys=False).strip()}
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
