"""A published study restated: its tables and forest plot recomputed with this version's statistics.

When the pairing or the interval changes (:mod:`videoperlin.study.statistics`), a study published
before is not rerun: ``videoperlin transfer --restate STUDY`` reads what it recorded -- ``results.csv``
(every fine-tuning run's top-1) and the protocol at the end of ``report.md`` -- and writes the tables
again below the title of ``report.md`` (a note above the title stays first), under
:data:`RESTATED_HEADING`, with the report as first written kept below it; ``figures/forest.png`` is drawn again. Restating again replaces the earlier restatement.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import yaml

from videoperlin.errors import DataError
from videoperlin.study.protocol import Protocol, protocol_from_record
from videoperlin.study.report import forest_plot, summary_table
from videoperlin.utils.atomic import atomic_write_text
from videoperlin.utils.text import read_csv_rows, read_text

RESTATED_HEADING = "## Restated with this version's statistics"
FIRST_WRITTEN_HEADING = "## The report as first written"


def recorded_protocol(report: Path, text: str) -> Protocol:
    """The protocol a report recorded (its last fenced ``yaml`` block)."""
    if "```yaml\n" not in text:
        raise DataError(f"{report} records no protocol (a ```yaml block at its end); restate a report `transfer` wrote")
    block = text.rsplit("```yaml\n", 1)[1].split("\n```", 1)[0]
    try:
        mapping = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise DataError(
            f"{report}: its protocol block is not YAML ({problem}); restate a report `transfer` wrote"
        ) from None
    if not isinstance(mapping, dict):
        raise DataError(f"{report}: its protocol block is not a mapping; restate a report `transfer` wrote")
    return protocol_from_record(mapping)


def restatement(tables: str, study: Path) -> str:
    """The section put at the top of a restated report."""
    from videoperlin import __version__

    return f"""{RESTATED_HEADING}

Restated on {datetime.date.today().isoformat()} by videoperlin {__version__}, from `results.csv` and the protocol
recorded below; nothing was rerun (`videoperlin transfer --restate {study}`). Against scratch the unit is a
fine-tuning cell (dataset, fold, seed): an arm's runs from several pre-training seeds are averaged in it, then
scratch's run is subtracted. Where the report as first written differs, these tables replace it (reports
written before 2026-12 counted each of those runs as a pair of its own, one scratch run several times as if
its noise were independent: with several pre-training seeds their intervals are too narrow and their W/T/L
counts runs). `figures/forest.png` is drawn from these tables. Columns and verdicts read as described below.

{tables}

{FIRST_WRITTEN_HEADING}
"""


def restate(study: Path) -> Path:
    """Recompute ``study``'s tables and forest plot (module docstring); the restated ``report.md``."""
    report = study / "report.md"
    text = read_text(report, "study report")
    rows = read_csv_rows(study / "results.csv", "study results")
    protocol = recorded_protocol(report, text)
    if RESTATED_HEADING in text:  # an earlier restatement: replaced
        before, rest = text.split(RESTATED_HEADING, 1)
        text = before + rest.split(f"{FIRST_WRITTEN_HEADING}\n", 1)[1].lstrip("\n")
    lines = text.split("\n")  # the section goes below the title and any note above it (e.g. on numerics)
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
    head, body = "\n".join(lines[:at]), "\n".join(lines[at:]).lstrip("\n")
    section = restatement(summary_table(rows, protocol), study)
    atomic_write_text(report, f"{head}\n\n{section}\n{body}" if head else f"{section}\n{body}")
    forest_plot(rows, protocol, study)
    return report
