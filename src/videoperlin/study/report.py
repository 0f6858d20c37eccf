"""The study's outputs: ``results.csv``, ``report.md`` (per dataset: arms, paired differences to
scratch with 95% confidence intervals, wins/ties/losses and a verdict), validation curves and
conv1 panels, and ``publish``.

The statistics behind the tables (pairing, intervals, verdicts) are :mod:`videoperlin.study.statistics`.
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

from videoperlin.analysis.curves import plot_groups
from videoperlin.analysis.kernels import save_kernel_panel
from videoperlin.config_fields import to_dict
from videoperlin.models import create_model
from videoperlin.models.pretrained import load_model
from videoperlin.study.protocol import SCRATCH, Protocol
from videoperlin.study.runs import Init
from videoperlin.study.statistics import paired, paired_interval, verdict, wins_ties_losses
from videoperlin.train.numerics import device_description
from videoperlin.train.run_dir import RunDir
from videoperlin.utils.atomic import atomic_write_text

#: Where the report's details begin (the terminal shows what comes before).
PRETRAIN_HEADING = "Pre-training"
RESULT_COLUMNS = ("arm", "arch", "dataset", "fold", "seed", "pretrain_seed", "video_top1", "clip_top1", "error")


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


def interval_text(interval: tuple[float, float, float] | None) -> str:
    return "–" if interval is None else f"{100 * interval[0]:+.1f} [{100 * interval[1]:+.1f}, {100 * interval[2]:+.1f}]"


def arms_present(rows: list[dict[str, Any]], protocol: Protocol, arch: str) -> list[str]:
    return [a for a in protocol.arms if any(r["arm"] == a and r["arch"] == arch and not r.get("error") for r in rows)]


def dataset_table(rows: list[dict[str, Any]], protocol: Protocol, dataset: str | tuple[str, ...]) -> str:
    """Markdown for one dataset: per arch and arm, video- and clip-level top-1, the paired video-level
    difference to scratch with its 95% interval, W/T/L and the verdict, and the clip-level difference."""
    lines = [
        "| arch | arm | video top-1 % | Δ video vs scratch, pp [95% CI] | W/T/L | verdict | clip top-1 % "
        "| Δ clip, pp [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch in protocol.archs:
        for arm in arms_present(rows, protocol, arch):
            mine, _, diffs = paired(rows, arm, arch, dataset)
            clips, _, clip_diffs = paired(rows, arm, arch, dataset, "clip_top1")
            if arm == SCRATCH:
                lines.append(f"| {arch} | {arm} | {mean_std(mine)} | – | – | – | {mean_std(clips)} | – |")
                continue
            interval = paired_interval(diffs)
            lines.append(
                f"| {arch} | {arm} | {mean_std(mine)} | {interval_text(interval)} | {wins_ties_losses(diffs)} "
                f"| {verdict(interval)} | {mean_std(clips)} | {interval_text(paired_interval(clip_diffs))} |"
            )
    return "\n".join(lines)


def comparison_table(
    rows: list[dict[str, Any]], protocol: Protocol, dataset: str | tuple[str, ...], reference: str
) -> str:
    """Markdown: each other pre-trained arm against ``reference`` (``compare_with``), paired on fold, seed
    and pre-training seed: the video-level difference with its 95% interval, W/T/L and the verdict."""
    lines = [
        f"| arch | arm | Δ video vs {reference}, pp [95% CI] | W/T/L | verdict |",
        "|---|---|---|---|---|",
    ]
    for arch in protocol.archs:
        for arm in arms_present(rows, protocol, arch):
            if arm in (SCRATCH, reference) or arm not in protocol.vpn_arms:
                continue
            _, _, diffs = paired(rows, arm, arch, dataset, baseline=reference)
            interval = paired_interval(diffs)
            lines.append(
                f"| {arch} | {arm} | {interval_text(interval)} | {wins_ties_losses(diffs)} | {verdict(interval)} |"
            )
    return "\n".join(lines)


def summary_table(rows: list[dict[str, Any]], protocol: Protocol) -> str:
    """One :func:`dataset_table` per dataset, under its name, and its comparisons with ``compare_with``;
    then the same for each pool of datasets (``pooled``)."""
    groups: list[tuple[str, str | tuple[str, ...]]] = [
        (f"### {d.name}" + (f" (after {d.after})" if d.after else ""), d.name) for d in protocol.datasets
    ]
    groups += [(f"### {pool} (pooled: {', '.join(names)})", tuple(names)) for pool, names in protocol.pooled.items()]
    sections = []
    for heading, dataset in groups:
        parts = [heading, dataset_table(rows, protocol, dataset)]
        parts += [comparison_table(rows, protocol, dataset, reference) for reference in protocol.compare_with]
        sections.append("\n\n".join(parts))
    return "\n\n".join(sections)


def write_figures(protocol: Protocol, rows: list[dict[str, Any]], inits: list[Init], out: Path) -> list[Path]:
    """Validation curves per dataset and architecture, and conv1 of every start point (first pre-training seed)."""
    figures = []
    for entry in protocol.datasets:
        for arch in protocol.archs:
            groups = {
                arm: [
                    r["run"]
                    for r in rows
                    if (r["arm"], r["arch"], r["dataset"]) == (arm, arch, entry.name) and not r.get("error")
                ]
                for arm in arms_present(rows, protocol, arch)
            }
            groups = {arm: runs for arm, runs in groups.items() if runs}
            if groups:
                figures.append(
                    plot_groups(
                        groups,
                        "val_acc",
                        out / "figures" / f"curves_{entry.name}_{arch}.png",
                        f"{entry.name}, {arch}: video top-1 on held-out data",
                    )
                )
    for init in inits:
        if init.pretrain_seed not in (None, protocol.pretrain_seeds[0]) or init.failure:
            continue
        torch.manual_seed(0)
        model_options = {k: v for k, v in protocol.common.get("model", {}).items() if k != "name"}
        model = create_model(init.arch, **model_options) if init.checkpoint is None else load_model(init.checkpoint)
        figures.append(
            save_kernel_panel(
                model, out / "figures" / f"conv1_{init.arch}_{init.arm}.png", f"{init.arch} conv1, {init.arm}"
            )
        )
    return figures


def pretrain_row(init: Init) -> str | None:
    """The pre-training table's row of ``init`` (None if it was not pre-trained here): VPN validation
    accuracy at the end, the precision it trained in (the numerics guard's verdict), its time."""
    if init.failure:
        return f"| {init.arch} | {init.arm} | {init.pretrain_seed} | failed | – | – |"
    if init.checkpoint is None or init.checkpoint.suffix != ".pt":
        return None
    records = RunDir.of_checkpoint(init.checkpoint).metrics()
    last, minutes = records[-1], sum(r.get("time_s", 0.0) for r in records) / 60
    accuracy = "–" if last.get("val_acc") is None else f"{100 * last['val_acc']:.1f}"
    return (
        f"| {init.arch} | {init.arm} | {init.pretrain_seed} | {accuracy} | "
        f"{last.get('precision', 'not recorded')} | {minutes:.1f} |"
    )


def failures_section(failed: list[str]) -> str:
    """The report's list of failed runs (empty when none failed)."""
    if not failed:
        return ""
    lines = "\n".join(f"- {line}" for line in failed)
    return (
        f"\n**{len(failed)} run(s) failed** (each was retried once in fp32; their rows in `results.csv` carry "
        f"the error, and they are left out of the tables above):\n\n{lines}\n"
    )


POOLED_NOTE = """
A pooled section reports the datasets it names as one: each run pairs with scratch (or the compared
arm) on its own dataset, and n counts the runs of all of them."""


def write_report(
    protocol: Protocol,
    rows: list[dict[str, Any]],
    inits: list[Init],
    out: Path,
    command: str,
    seconds: float,
    failed: list[str] | None = None,
) -> Path:
    """``report.md``: the table, failed runs, pre-training accuracies and precisions, figures, the
    machine, wall time, command and protocol."""
    pre = [row for i in inits if (row := pretrain_row(i)) is not None]
    text = f"""# Transfer study: does VPN initialization help?

Metric: top-1 on the held-out data at the last fine-tuning epoch, video-level (softmax averaged over
consecutive 16-frame windows, centre crop) and clip-level (each window alone); mean ± sample std over
folds × seeds × pre-training seeds, n runs. Δ is the mean paired difference to `scratch` on the same
fold and seed, in percentage points, with a 95% Student-t interval over the paired runs (they share
folds and pre-trained checkpoints, so the interval is optimistic where those effects are large).
W/T/L counts the paired runs the arm wins, ties and loses. Verdict: **gain** when the interval's lower
bound is above 0, **loss** when its upper bound is below 0, otherwise no evidence of a difference.{POOLED_NOTE if protocol.pooled else ""}

{summary_table(rows, protocol)}
{failures_section(failed or [])}
{PRETRAIN_HEADING} (VPN validation accuracy at the end, held-out VPN clips; the precision it trained in, as
the numerics guard cleared it; its training time):

| arch | arm | pre-training seed | VPN val top-1 % | precision | minutes |
|---|---|---|---|---|---|
{chr(10).join(pre) if pre else "| – | – | – | – | – | – |"}

Figures: `figures/curves_<dataset>_<arch>.png` (validation accuracy vs epoch, mean and min–max
band per arm) and `figures/conv1_<arch>_<arm>.png` (conv1 after pre-training).

Machine: {device_description(torch.device("cpu"))}, torch {torch.__version__}, {torch.get_num_threads()} threads.
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


def summary_text(report: Path) -> str:
    """The report's results part (the tables and failures, before the pre-training details), for the terminal."""
    return report.read_text().split(f"\n{PRETRAIN_HEADING} ")[0]


def publish(out: Path, target: Path, figures: list[Path]) -> None:
    """Copy the report, results and this invocation's figures (text and small PNGs only) to ``target``."""
    (target / "figures").mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "results.csv"):
        shutil.copy2(out / name, target / name)
    for png in figures:
        shutil.copy2(png, target / "figures" / png.name)
