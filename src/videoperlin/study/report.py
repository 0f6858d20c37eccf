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

from videoperlin.config_fields import to_dict
from videoperlin.models import create_model
from videoperlin.models.kernels import save_kernel_panel
from videoperlin.models.pretrained import load_model
from videoperlin.study.protocol import SCRATCH, Protocol
from videoperlin.study.runs import Init
from videoperlin.study.statistics import paired, paired_interval, verdict, wins_ties_losses
from videoperlin.train.curves import plot_groups
from videoperlin.train.numerics import device_description
from videoperlin.train.run_dir import RunDir
from videoperlin.utils.atomic import atomic_write_text
from videoperlin.utils.plotting import pyplot, save_figure

#: Where the report's details begin (the terminal shows what comes before).
PRETRAIN_HEADING = "Pre-training"
RESULT_COLUMNS = ("arm", "arch", "dataset", "fold", "seed", "pretrain_seed", "video_top1", "clip_top1", "error")


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """``rows`` as a CSV of ``columns`` (other keys left out), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def write_results(out: Path, rows: list[dict[str, Any]]) -> None:
    """``results.csv``: one row per fine-tuning run."""
    write_csv(out / "results.csv", RESULT_COLUMNS, rows)


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * std:.1f} (n={len(values)})"


def interval_text(interval: tuple[float, float, float] | None) -> str:
    """``+m [+lo, +hi]`` in pp; ``‡`` marks an interval of no width (every paired difference equal)."""
    if interval is None:
        return "–"
    mean, low, high = interval
    mark = " ‡" if high - low < 1e-9 else ""
    return f"{100 * mean:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]{mark}"


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
            if arm in (SCRATCH, reference) or arm not in protocol.pretrain_arms:
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
    after = {d.name: f" (after {d.after})" for d in protocol.datasets if d.after}
    groups = [
        (
            f"### {name}" + (f" (pooled: {', '.join(dataset)})" if isinstance(dataset, tuple) else after.get(name, "")),
            dataset,
        )
        for name, dataset in dataset_groups(protocol)
    ]
    sections = []
    for heading, dataset in groups:
        parts = [heading, dataset_table(rows, protocol, dataset)]
        parts += [comparison_table(rows, protocol, dataset, reference) for reference in protocol.compare_with]
        sections.append("\n\n".join(parts))
    return "\n\n".join(sections)


def dataset_groups(protocol: Protocol) -> list[tuple[str, str | tuple[str, ...]]]:
    """(label, dataset or pool) of every dataset and pool the report has a section for."""
    return [(d.name, d.name) for d in protocol.datasets] + [(p, tuple(n)) for p, n in protocol.pooled.items()]


def forest_plot(rows: list[dict[str, Any]], protocol: Protocol, out: Path) -> Path | None:
    """``figures/forest.png``: every paired difference of the report (each arm against scratch and each
    ``compare_with`` arm, per dataset and pool) as its mean with the 95% interval, 0 marked."""
    entries: list[tuple[str, float, float, float]] = []  # (label, mean, low, high), top to bottom
    for name, dataset in dataset_groups(protocol):
        for arch in protocol.archs:
            for reference in (SCRATCH, *protocol.compare_with):
                for arm in arms_present(rows, protocol, arch):
                    if arm in (SCRATCH, reference) or (reference != SCRATCH and arm not in protocol.pretrain_arms):
                        continue
                    interval = paired_interval(paired(rows, arm, arch, dataset, baseline=reference)[2])
                    if interval is not None:
                        mean, low, high = (100 * v for v in interval)
                        entries.append((f"{name}, {arch}: {arm} − {reference}", mean, low, high))
    if not entries:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(entries) + 1.0))
    ys = list(range(len(entries)))[::-1]
    for y, (_, mean, low, high) in zip(ys, entries):
        colour = "tab:green" if low > 0 else "tab:red" if high < 0 else "tab:gray"
        ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot([mean], [y], "o", color=colour, markersize=4)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(ys, [label for label, *_ in entries], fontsize=7)
    ax.set_xlabel("paired difference in video top-1, pp (95% interval)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out / "figures" / "forest.png")


def write_figures(protocol: Protocol, rows: list[dict[str, Any]], inits: list[Init], out: Path) -> list[Path]:
    """Validation curves per dataset and architecture, the forest plot of the paired differences, and
    conv1 of every start point (first pre-training seed)."""
    figures = [f for f in [forest_plot(rows, protocol, out)] if f is not None]
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
        reconstruction = None if init.checkpoint is None else init.checkpoint.parent.parent / "figures" / "mae.png"
        if reconstruction is not None and reconstruction.exists():
            figures.append(Path(shutil.copy2(reconstruction, out / "figures" / f"mae_{init.arch}_{init.arm}.png")))
    return figures


#: Columns of ``pretraining.csv`` (one row per pre-training; the pre-training table of the report).
PRETRAIN_COLUMNS = (
    "arch",
    "arm",
    "pretrained_as",
    "pretrain_seed",
    "objective",
    "val_acc",
    "val_loss",
    "clips_seen",
    "precision",
    "minutes",
    "error",
)


def pretrain_record(init: Init) -> dict[str, Any] | None:
    """What a pre-training of the study ended with (None if ``init`` was not pre-trained here): the
    objective, the held-out accuracy (classify) or reconstruction loss (mae) at the end, the clips it
    saw, the precision it trained in (the numerics guard's verdict) and its time."""
    base: dict[str, Any] = {"arch": init.arch, "arm": init.arm, "pretrained_as": init.pretrained_as or init.arm}
    base["pretrain_seed"] = init.pretrain_seed
    if init.failure:
        return {**base, "error": init.failure}
    if init.checkpoint is None or init.checkpoint.suffix != ".pt":
        return None
    run = RunDir.of_checkpoint(init.checkpoint)
    records, config = run.metrics(), run.config()
    last = records[-1]
    finished = [r for r in records if "val_videos" in r or "val_loss" in r]
    final = finished[-1] if finished else last
    return {
        **base,
        "objective": config.get("objective", {}).get("name", "classify"),
        "val_acc": final.get("val_acc"),
        "val_loss": final.get("val_loss"),
        "clips_seen": clips_seen(records),
        "precision": last.get("precision", "not recorded"),
        "minutes": round(sum(r.get("time_s", 0.0) for r in records) / 60, 1),
    }


def clips_seen(records: list[dict[str, Any]]) -> int:
    """The clips a run trained on: the sum of its epochs' ``clips`` (an older run's: clips/s × seconds, the
    same count). Not steps × batch size, which counts a partial last batch as full."""
    epochs = [r for r in records if "clips_per_s" in r]
    return sum(int(r["clips"]) if "clips" in r else round(r["clips_per_s"] * r["time_s"]) for r in epochs)


def pretrain_row(record: dict[str, Any]) -> str:
    """The pre-training table's row of a :func:`pretrain_record`."""
    arm = record["arm"] if record["pretrained_as"] == record["arm"] else f"{record['arm']} ({record['pretrained_as']})"
    head = f"| {record['arch']} | {arm} | {record['pretrain_seed']} |"
    if record.get("error"):
        return f"{head} failed | – | – | – | – | – |"
    accuracy = "–" if record["val_acc"] is None else f"{100 * record['val_acc']:.1f}"
    loss = "–" if record["objective"] == "classify" or record["val_loss"] is None else f"{record['val_loss']:.3f}"
    return (
        f"{head} {record['objective']} | {accuracy} | {loss} | {record['clips_seen']:,} | {record['precision']} | "
        f"{record['minutes']:.1f} |"
    )


def write_pretraining(out: Path, records: list[dict[str, Any]]) -> None:
    """``pretraining.csv``: one row per pre-training (what the predictors analysis reads)."""
    write_csv(out / "pretraining.csv", PRETRAIN_COLUMNS, records)


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
arm) within its own dataset, the units of all of them are the pool's units, and n counts their runs."""


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
    records = [record for i in inits if (record := pretrain_record(i)) is not None]
    write_pretraining(out, records)
    pre = [pretrain_row(record) for record in records]
    text = f"""# Transfer study: does VPN initialization help?

Metric: top-1 on the held-out data at the last fine-tuning epoch, video-level (softmax averaged over
consecutive 16-frame windows, centre crop) and clip-level (each window alone); mean ± sample std over
folds × seeds × pre-training seeds, n runs. Δ is the mean paired difference to `scratch` on the same
fold and seed, in percentage points, with a 95% Student-t interval over those units (an arm's runs from
several pre-training seeds are averaged in each first: they share the unit's scratch run; units share
folds and pre-trained checkpoints, so the interval is optimistic where those effects are large).
W/T/L counts the units the arm wins, ties and loses. Verdict: **gain** when the interval's lower
bound is above 0, **loss** when its upper bound is below 0, otherwise no evidence of a difference.
‡ marks an interval of no width: every paired difference is the same, so with few pairs the interval says
nothing of their spread and its verdict rests on W/T/L alone.{POOLED_NOTE if protocol.pooled else ""}

{summary_table(rows, protocol)}
{failures_section(failed or [])}
{PRETRAIN_HEADING} (at the end, on held-out clips: VPN top-1 of a supervised pre-training, reconstruction loss
of a masked one; the clips it saw; the precision it trained in, as the numerics guard cleared it; its training
time; also in `pretraining.csv`):

| arch | arm | pre-training seed | objective | held-out top-1 % | held-out MAE loss | clips seen | precision | minutes |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(pre) if pre else "| – | – | – | – | – | – | – | – | – |"}

Figures: `figures/forest.png` (every paired difference above with its 95% interval),
`figures/curves_<dataset>_<arch>.png` (validation accuracy vs epoch, mean and min–max
band per arm), `figures/conv1_<arch>_<arm>.png` (the first layer after pre-training: conv1, or a
transformer's patch embedding) and `figures/mae_<arch>_<arm>.png` (a masked pre-training's masked input,
reconstruction and target).

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
    for name in ("report.md", "results.csv", "pretraining.csv"):
        if (out / name).exists():  # pretraining.csv: studies written since it came
            shutil.copy2(out / name, target / name)
    for png in figures:
        shutil.copy2(png, target / "figures" / png.name)
