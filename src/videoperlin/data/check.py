"""``videoperlin check-data``: scan a dataset before training.

Reports the classes with their train/test (or total) counts, what the annotation files list that
is not on disk (normal for partial copies such as JHMDB or a partial Kinetics download: one line
with counts), every unreadable or empty video (a failure), and videos shorter than one clip (a
warning: training and evaluation loop them -- the clip's frame indices wrap around -- which is
usually harmless for a frame or two; ``--strict`` makes them a failure). Label typos in split files
are reported by the loaders themselves with file and line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from videoperlin.data.decode import SHORT_DECODE, FrameCache, VideoDecodeError, declared_frames
from videoperlin.data.sources import VideoCatalog
from videoperlin.utils.progress import progress_bar


@dataclass
class DataReport:
    """What :func:`check_catalog` found."""

    catalog: VideoCatalog
    frames: int
    unreadable: list[str] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)

    def ok(self, strict: bool = False) -> bool:
        """No unreadable video (and, when ``strict``, none shorter than a clip or than its header says)."""
        return not self.unreadable and not (strict and (self.too_short or self.truncated))


def check_catalog(catalog: VideoCatalog, cache: FrameCache, frames: int, progress: bool = True) -> DataReport:
    """Decode every video once (warming ``cache``) and collect problems."""
    report = DataReport(catalog, frames)
    for record in progress_bar(catalog.records, desc="check", unit="video", show=progress):
        try:
            length = len(cache.load(record.path))
        except VideoDecodeError as exc:
            report.unreadable.append(str(exc))
            continue
        if length < frames:
            report.too_short.append(f"{record.path}: {length} frames < {frames}")
        declared = declared_frames(record.path)
        if declared and length < SHORT_DECODE * declared:
            report.truncated.append(f"{record.path}: {length} of the {declared} frames its header declares decode")
    return report


def _class_lines(catalog: VideoCatalog) -> list[str]:
    subsets = [s for s in ("train", "val") if any(r.subset == s for r in catalog.records)]
    counts = {s: Counter(r.label for r in catalog.records if r.subset == s) for s in subsets}
    totals = Counter(r.label for r in catalog.records)
    width = max(len(n) for n in catalog.class_names)
    header = (
        [f"  {'class':{width}}  " + "  ".join(f"{'test' if s == 'val' else s:>5}" for s in subsets)] if subsets else []
    )
    return header + [
        f"  {name:{width}}  " + ("  ".join(f"{counts[s][k]:5d}" for s in subsets) if subsets else f"{totals[k]}")
        for k, name in enumerate(catalog.class_names)
    ]


def format_report(report: DataReport, strict: bool = False) -> str:
    """The report as printed by ``check-data`` (last line: OK, or what failed)."""
    catalog = report.catalog
    lines = [
        f"{catalog.kind}: {len(catalog.records)} videos in {len(catalog.class_names)} classes",
        *_class_lines(catalog),
    ]
    if catalog.summary():
        lines.append(catalog.summary() + "; only what is on disk is used")
        lines += [f"  listed but missing: {p}" for p in catalog.missing[:5]]
        if len(catalog.missing) > 5:
            lines.append(f"  ... and {len(catalog.missing) - 5} more listed but missing")
    lines += [f"unreadable: {p}" for p in report.unreadable]
    if report.too_short:
        lines.append(
            f"warning: {len(report.too_short)} videos are shorter than one clip of {report.frames} frames; "
            f"training and evaluation loop them (frame indices wrap around){'' if strict else ' (--strict: fail)'}"
        )
        lines += [f"  too short: {p}" for p in report.too_short]
    if report.truncated:
        lines.append(
            f"warning: {len(report.truncated)} videos decode to fewer than half the frames their header declares "
            f"(cut short by a download?); training uses what decodes{'' if strict else ' (--strict: fail)'}"
        )
        lines += [f"  truncated: {p}" for p in report.truncated]
    if report.ok(strict):
        lines.append("OK")
    else:
        lines.append(
            f"problems: {len(report.unreadable)} unreadable"
            + (f", {len(report.too_short)} too short (--strict)" if strict and report.too_short else "")
            + (f", {len(report.truncated)} truncated (--strict)" if strict and report.truncated else "")
        )
    return "\n".join(lines)
