"""The statistics of the transfer study: pairing runs, the paired difference's 95% interval, the verdict.

Pairing: a run of arm A on (dataset, architecture, fold, seed, pre-training seed p) is compared
with scratch on the same (dataset, architecture, fold, seed). Scratch has no pre-training seed, so the
unit is that fine-tuning cell: A's runs in it (one per pre-training seed) are averaged, then scratch's
run is subtracted. Counting each of them as a pair of its own would use one scratch run several times
and call its noise independent: the interval came out too narrow (before 2026-12 the reports did so).
Datasets a protocol pools (``pooled``: the official splits 1-3 of one benchmark, each its own dataset
entry) are reported once more as one: runs pair within their own split, and the units of all splits are
the units.

Interval: Student's t interval on the mean paired difference over the units (fold x seed against
scratch; fold x seed x pre-training seed against a pre-trained arm): with 4-18 units a percentile
bootstrap undercovers, and the differences are bounded and roughly symmetric. Caveat: units that share
a fold share their test videos (pooled splits a few: JHMDB's three official test lists share 4-14% of
their videos pairwise, HMDB-51's 7-10%), and runs that share a pre-training seed share their
initialisation, so the units are not fully independent; where those effects are large the interval is
optimistic (narrower than it should be). The verdict is read off the interval: "gain" when its lower
bound is above 0, "loss" when its upper bound is below 0, otherwise "no evidence of a difference".
"""

from __future__ import annotations

import statistics
from typing import Any

from videoperlin.study.protocol import SCRATCH

#: Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (above 30: a Cornish-Fisher
#: expansion of the normal quantile, within 0.001). A table instead of scipy, a 40 MB dependency for one number.
T_975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df <= len(T_975):
        return T_975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def paired_interval(diffs: list[float]) -> tuple[float, float, float] | None:
    """(mean, lower, upper): the mean paired difference and its 95% t interval (None below 2 pairs)."""
    if len(diffs) < 2:
        return None
    mean = statistics.mean(diffs)
    half = t_quantile_975(len(diffs) - 1) * statistics.stdev(diffs) / len(diffs) ** 0.5
    return mean, mean - half, mean + half


def verdict(interval: tuple[float, float, float] | None) -> str:
    """What the interval says: a gain, a loss, or no evidence of a difference."""
    if interval is None:
        return "–"
    return "**gain**" if interval[1] > 0 else "**loss**" if interval[2] < 0 else "no evidence of a difference"


def paired(
    rows: list[dict[str, Any]],
    arm: str,
    arch: str,
    dataset: str | tuple[str, ...],
    metric: str = "video_top1",
    baseline: str = SCRATCH,
) -> tuple[list[float], list[float], list[float]]:
    """(arm values, baseline values, paired differences arm - baseline). Against scratch the unit is a
    fine-tuning cell, the same dataset, fold and seed: the arm's runs there (one per pre-training seed) are
    averaged first, so each scratch run is counted once. Against a pre-trained baseline the unit is a run:
    the same dataset, fold, seed and pre-training seed. A tuple of datasets pools them (a protocol's
    ``pooled``): runs pair within their own dataset, and the units of all of them are the units."""
    datasets = (dataset,) if isinstance(dataset, str) else dataset

    def results(name: str) -> dict[tuple, float]:
        return {
            (r["dataset"], r["fold"], r["seed"], r.get("pretrain_seed", "")): float(r[metric])
            for r in rows
            if (r["arm"], r["arch"]) == (name, arch) and r["dataset"] in datasets and r.get(metric) not in (None, "")
        }

    mine = results(arm)
    width = 3 if baseline == SCRATCH else 4  # the part of (dataset, fold, seed, pretrain_seed) that pairs
    base = {key[:width]: value for key, value in results(baseline).items()}
    units: dict[tuple, list[float]] = {}
    for key, value in mine.items():
        if key[:width] in base:
            units.setdefault(key[:width], []).append(value)
    diffs = [statistics.mean(values) - base[unit] for unit, values in units.items()]
    return list(mine.values()), list(base.values()), diffs


def wins_ties_losses(diffs: list[float]) -> str:
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    return f"{wins}/{len(diffs) - wins - losses}/{losses}"
