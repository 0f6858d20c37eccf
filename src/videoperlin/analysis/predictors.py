"""Does a property of a pre-training predict how well it transfers? Rank correlations across a study's arms.

A published transfer study (``videoperlin transfer --publish``) holds, per pre-trained arm and
pre-training seed, the network's VPN held-out accuracy (``pretraining.csv``) and its
fine-tuning results (``results.csv``); ``videoperlin tuning`` adds conv1's direction selectivity
(``summary.json``, one folder per pre-training seed). Each becomes one point per arm: the arm's
values averaged over its pre-training seeds, and as outcome per dataset its mean paired difference to
scratch (:func:`videoperlin.study.statistics.paired`, in pp).

**Statistic.** Spearman's rank correlation: Pearson's r of the average ranks (ties share their mean
rank), since nothing is known of the shape of a relation and a few arms sit at the ends of the
scale. **p-value**: two-sided, by permutation -- the fraction of orderings of the outcomes whose
|rho| reaches the observed one. With n <= 9 arms every one of the n! orderings is counted (exact);
above, ``draws`` random orderings give ``(1 + hits) / (1 + draws)``.

**Why the arm is the unit**, not (arm, seed): two seeds of one arm share their clip source, so they
are not independent points, and permuting them as if they were would overstate the evidence.
Caveats: several predictors against several outcomes are not corrected for multiplicity (read the
p-values as a screen), and a handful of arms cannot separate a predictor from what the arms have in
common with it (the moving-layers rungs are both the least accurate and among the most direction
selective).

Run on a published ladder::

    videoperlin predictors benchmarks/results/ladder/two-seeds \\
        --tuning benchmarks/results/ladder/tuning benchmarks/results/ladder/tuning-seed1 \\
        --out benchmarks/results/ladder/predictors
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from videoperlin.errors import DataError
from videoperlin.study.protocol import SCRATCH
from videoperlin.study.statistics import paired
from videoperlin.utils.text import read_csv_rows, read_text

#: Exact permutation p-values up to this many points (9! = 362,880 orderings); above, this many random ones.
EXACT_UP_TO, DRAWS = 9, 100_000
#: Properties read from ``videoperlin tuning``'s summary.json, with their names in the table.
TUNING_PROPERTIES = {"frac_direction_selective": "conv1 direction-selective fraction", "mean_dsi": "conv1 mean DSI"}
VPN_PROPERTY = "VPN held-out top-1 %"


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 0..n-1 of ``values``, tied values sharing the mean of their ranks."""
    a = np.asarray(values, dtype=np.float64)
    ranks = np.empty(len(a))
    ranks[a.argsort(kind="stable")] = np.arange(len(a))
    for value in np.unique(a):
        tied = a == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho of paired values (nan when either side is constant)."""
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def permutation_pvalue(x: Sequence[float], y: Sequence[float], draws: int = DRAWS, seed: int = 0) -> float:
    """Two-sided p-value of Spearman's rho under random pairing: exact up to :data:`EXACT_UP_TO` points,
    else from ``draws`` random orderings."""
    rx, ry = average_ranks(x), average_ranks(y)
    observed = abs(spearman(x, y))
    if math.isnan(observed):
        return math.nan
    if len(ry) <= EXACT_UP_TO:
        orders = np.array(list(itertools.permutations(range(len(ry)))), dtype=np.int64)
    else:
        orders = np.argsort(np.random.default_rng(seed).random((draws, len(ry))), axis=1)
    cx, cy = rx - rx.mean(), ry[orders] - ry.mean()  # centring is permutation-invariant
    rhos = (cy @ cx) / (np.linalg.norm(cx) * np.linalg.norm(cy, axis=1))
    hits = int((np.abs(rhos) >= observed - 1e-12).sum())
    return hits / len(orders) if len(ry) <= EXACT_UP_TO else (1 + hits) / (1 + draws)


def vpn_accuracies(study: Path) -> dict[tuple[str, int], float]:
    """(arm, pre-training seed) -> VPN held-out top-1 %, from a published study's ``pretraining.csv``."""
    rows = read_csv_rows(study / "pretraining.csv", "pre-training table (`videoperlin transfer --publish` writes it)")
    return {
        (r["arm"], int(r["pretrain_seed"])): 100 * float(r["val_acc"])
        for r in rows
        if r.get("val_acc") not in (None, "") and r.get("objective", "classify") == "classify"
    }


def tuning_properties(folders: Sequence[Path]) -> dict[tuple[str, int], dict[str, float]]:
    """(arm, pre-training seed) -> its :data:`TUNING_PROPERTIES`; ``folders[s]`` holds seed s's summary.json."""
    out = {}
    for seed, folder in enumerate(folders):
        path = folder / "summary.json"
        for arm, summary in json.loads(
            read_text(path, "tuning summary (`videoperlin tuning --out` writes it)")
        ).items():
            out[arm, seed] = {key: float(summary[key]) for key in TUNING_PROPERTIES if key in summary}
    return out


def transfer_deltas(results: Path) -> dict[tuple[str, int], dict[str, float]]:
    """(arm, pre-training seed) -> {dataset: its mean paired difference to scratch, pp}, from ``results.csv``."""
    rows: list[dict[str, Any]] = [r for r in read_csv_rows(results, "study results") if not r.get("error")]
    archs = {r["arch"] for r in rows}
    if len(archs) != 1:
        raise DataError(f"{results}: architectures {sorted(archs)}; this analysis compares the arms of one")
    for r in rows:
        r.update(video_top1=100 * float(r["video_top1"]), fold=int(r["fold"]), seed=int(r["seed"]))
    (arch,), datasets = archs, sorted({r["dataset"] for r in rows})
    scratch = [r for r in rows if r["arm"] == SCRATCH]
    starts = sorted({(r["arm"], int(r["pretrain_seed"])) for r in rows if r["arm"] != SCRATCH})
    out = {}
    for arm, seed in starts:
        mine = scratch + [r for r in rows if (r["arm"], r["pretrain_seed"]) == (arm, str(seed))]
        diffs = {d: paired(mine, arm, arch, d)[2] for d in datasets}
        out[arm, seed] = {d: statistics.mean(v) for d, v in diffs.items() if v}
    return out


def arm_points(study: Path, tuning: Sequence[Path]) -> dict[str, dict[str, float]]:
    """Arm -> {property or dataset: value averaged over the arm's pre-training seeds}. A seed counts when
    it has the VPN accuracy, the tuning properties and a transfer result; an arm keeps the keys all its
    counted seeds have."""
    vpn, tuned = vpn_accuracies(study), tuning_properties(tuning)
    per_start = {
        start: {VPN_PROPERTY: vpn[start], **{TUNING_PROPERTIES[k]: v for k, v in tuned[start].items()}, **delta}
        for start, delta in transfer_deltas(study / "results.csv").items()
        if start in vpn and start in tuned
    }
    points = {}
    for arm in sorted({arm for arm, _ in per_start}):
        seeds = [values for (name, _), values in per_start.items() if name == arm]
        keys = [k for k in seeds[0] if all(k in values for values in seeds)]
        points[arm] = {k: statistics.mean(values[k] for values in seeds) for k in keys}
    return points


def correlations(points: dict[str, dict[str, float]], predictors: Sequence[str], outcomes: Sequence[str]) -> str:
    """Markdown: Spearman's rho and its permutation p-value of each predictor against each outcome."""
    lines = [
        "| predictor | outcome: Δ vs scratch on | arms | Spearman rho | p (permutation) |",
        "|---|---|---|---|---|",
    ]
    for predictor, outcome in itertools.product(predictors, outcomes):
        arms = [a for a in points if predictor in points[a] and outcome in points[a]]
        x, y = [points[a][predictor] for a in arms], [points[a][outcome] for a in arms]
        rho, p = spearman(x, y), permutation_pvalue(x, y)
        exact = "exact" if len(arms) <= EXACT_UP_TO else f"{DRAWS:,} random orderings"
        if math.isnan(rho):
            lines.append(f"| {predictor} | {outcome} | {len(arms)} | – | – (one side is constant) |")
        else:
            lines.append(f"| {predictor} | {outcome} | {len(arms)} | {rho:+.2f} | {p:.3f} ({exact}) |")
    return "\n".join(lines)


def points_table(points: dict[str, dict[str, float]], columns: Sequence[str]) -> str:
    """Markdown: one row per arm, its averaged values."""
    lines = ["| arm | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for arm, values in points.items():
        lines.append(f"| {arm} | " + " | ".join(f"{values[c]:.2f}" if c in values else "–" for c in columns) + " |")
    return "\n".join(lines)


def predictor_report(study: Path, tuning: Sequence[Path], command: str) -> str:
    """The whole analysis as Markdown: the points, the correlations, the command."""
    points = arm_points(study, tuning)
    if len(points) < 3:
        raise DataError(f"{study}: {len(points)} pre-trained arm(s) with every property; a correlation needs 3 or more")
    predictors = [VPN_PROPERTY, *TUNING_PROPERTIES.values()]
    outcomes = sorted({k for values in points.values() for k in values} - set(predictors))
    return f"""# Does a pre-training property predict transfer?

Study: `{study}`; tuning: {", ".join(f"`{t}` (pre-training seed {s})" for s, t in enumerate(tuning))}.
One point per pre-trained arm, its pre-training seeds averaged; an outcome is the arm's mean paired
difference to scratch on that dataset, in pp. Spearman's rho with a two-sided permutation p-value
(module docstring of `videoperlin.analysis.predictors`: why the arm is the unit, and the caveats).

{points_table(points, [*predictors, *outcomes])}

{correlations(points, predictors, outcomes)}

Command:

    {command}
"""
