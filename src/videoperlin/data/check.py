"""``videoperlin check-data``: scan a dataset before training.

Reports class counts and every unreadable, empty or too-short video (fewer frames than one clip;
such videos are loop-padded in training, which is usually not what you want). Label typos in
split files are reported by the loaders themselves with file and line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from videoperlin.data.decode import FrameCache, VideoDecodeError
from videoperlin.data.sources import VideoCatalog


@dataclass
class DataReport:
    class_counts: dict[str, int]
    unreadable: list[str] = field(default_factory=list)
    too_short: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unreadable or self.too_short or self.missing)


def check_catalog(catalog: VideoCatalog, cache: FrameCache, frames: int, progress: bool = True) -> DataReport:
    """Decode every video once (warming ``cache``) and collect problems."""
    counts = Counter(catalog.class_names[r.label] for r in catalog.records)
    report = DataReport({name: counts.get(name, 0) for name in catalog.class_names}, missing=list(catalog.missing))
    for record in tqdm(catalog.records, desc="check", unit="video", disable=not progress):
        try:
            length = len(cache.load(record.path))
        except VideoDecodeError as exc:
            report.unreadable.append(str(exc))
            continue
        if length < frames:
            report.too_short.append(f"{record.path}: {length} frames < {frames}")
    return report


def format_report(report: DataReport, kind: str) -> str:
    lines = [f"{kind}: {sum(report.class_counts.values())} videos in {len(report.class_counts)} classes"]
    width = max(len(n) for n in report.class_counts) if report.class_counts else 0
    lines += [f"  {name:{width}}  {count}" for name, count in report.class_counts.items()]
    lines += [f"unreadable: {p}" for p in report.unreadable]
    lines += [f"too short: {p}" for p in report.too_short]
    lines += [f"listed but missing: {p}" for p in report.missing[:20]]
    if len(report.missing) > 20:
        lines.append(f"... and {len(report.missing) - 20} more missing")
    lines.append("OK" if report.ok else f"problems: {len(report.unreadable)} unreadable, {len(report.too_short)} "
                 f"too short, {len(report.missing)} missing")
    return "\n".join(lines)
