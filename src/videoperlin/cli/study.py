"""``transfer``: the transfer study (:mod:`videoperlin.study`) from the command line."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import time
from pathlib import Path

from videoperlin.config_fields import bounded_int
from videoperlin.train.config import builtin_config, config_path

DEFAULT_PROTOCOL = "transfer_default"


def transfer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=DEFAULT_PROTOCOL,
        help=f"protocol YAML: a path or a built-in name (default {DEFAULT_PROTOCOL})",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/transfer"), help="study folder (reused: it resumes)")
    parser.add_argument(
        "--data",
        default=None,
        help="replace the datasets: a CSV manifest (one dataset per "
        "'dataset' value) or class folders, split in group folds",
    )
    parser.add_argument(
        "--data-root",
        default=None,
        help="the folder the built-in protocols read their datasets from ($VIDEOPERLIN_DATA; docs/guide/data/index.md)",
    )
    parser.add_argument("--dataset", default=None, help="with --data: one 'dataset' value of the manifest")
    parser.add_argument("--folds", type=bounded_int(2), default=3, help="with --data: group folds")
    parser.add_argument("--inflate-from", default=None, help="2D ResNet state dict: adds the 'inflated' arm")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="protocol override, e.g. finetune.train.epochs=60 or archs=r3d18 (repeatable)",
    )
    parser.add_argument("--publish", type=Path, default=None, help="copy report, results and figures here")
    parser.add_argument(
        "--restate",
        type=Path,
        default=None,
        metavar="STUDY",
        help="recompute a published study's tables and forest plot (from its results.csv and report.md) with "
        "this version's statistics; trains nothing",
    )
    parser.add_argument(
        "--pretrain-cache",
        type=Path,
        default=None,
        help="folder of cached pre-trained checkpoints (default OUT/pretrain); share it between variants",
    )


def datasets_from_data(data: str, dataset: str | None, folds: int) -> list[dict[str, object]]:
    """Study datasets for ``--data``: one per 'dataset' value of a CSV manifest, else one."""
    from videoperlin.utils.text import read_csv_rows

    path = Path(data)
    names = [dataset] if dataset else [None]
    if path.suffix == ".csv" and dataset is None:
        found = sorted({row.get("dataset") or "" for row in read_csv_rows(path, "manifest")} - {""})
        names = found or [None]
    return [{"name": name or path.stem, "data": data, "dataset": name, "folds": folds} for name in names]


def protocol_changes(args: argparse.Namespace) -> dict[str, object]:
    """Whole-field changes the flags make to the protocol (before --set)."""
    changes: dict[str, object] = {}
    if args.data:
        changes["datasets"] = datasets_from_data(args.data, args.dataset, args.folds)
    if args.inflate_from:
        changes["inflate_from"] = args.inflate_from
    return changes


def run_transfer(args: argparse.Namespace) -> int:
    """Transfer study: scratch vs pre-trained (and control) networks fine-tuned on real video, paired
    over folds, seeds and pre-training seeds. Writes OUT/report.md, results.csv, pretraining.csv and figures/."""
    from videoperlin.study.protocol import DATA_ROOT_ENV, load_protocol
    from videoperlin.study.report import publish, summary_text, write_figures, write_report, write_results
    from videoperlin.study.runs import failures, run_study

    _quiet_logging()
    if args.restate is not None:
        from videoperlin.study.restate import restate

        report = restate(args.restate)
        print(f"restated {report} (the tables at its top; figures/forest.png drawn from them)")
        return 0
    if args.data_root is not None:
        os.environ[DATA_ROOT_ENV] = str(Path(args.data_root).expanduser().absolute())
    protocol = load_protocol(
        config_path(args.config) or builtin_config(DEFAULT_PROTOCOL), args.set, protocol_changes(args)
    )
    began = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, inits = run_study(
        protocol,
        args.out,
        args.pretrain_cache or args.out / "pretrain",
        on_row=lambda rows: write_results(args.out, rows),
    )
    figures = write_figures(protocol, rows, inits, args.out)
    command = "videoperlin " + " ".join(shlex.quote(a) for a in args.argv)
    failed = failures(rows, inits)
    report = write_report(protocol, rows, inits, args.out, command, time.perf_counter() - began, failed)
    if args.publish:
        publish(args.out, args.publish, figures)
    print(summary_text(report))
    if failed:
        logging.getLogger("videoperlin.study").error("%d run(s) failed: %s", len(failed), " | ".join(failed))
        return 1
    return 0


def _quiet_logging() -> None:
    """The study's own progress at INFO with times; the engine's per-epoch lines only as warnings."""
    logging.getLogger("videoperlin").setLevel(logging.WARNING)
    logging.getLogger("videoperlin.study").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
