"""Analysis: tuning recovers the preferences of hand-built filters; kernel figures; curves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from videoperlin.analysis.tuning import direction_p_values, input_kernels, measure_tuning, motion_asymmetry, summary
from videoperlin.errors import ConfigError
from videoperlin.models import create_model


def drifting_kernel(sf: float, tf: float, direction_deg: float, size: int = 7, sigma: float = 2.5) -> torch.Tensor:
    """A space-time oriented kernel matched to a grating drifting in ``direction_deg`` (y up)."""
    a = math.radians(direction_deg)
    tau = torch.arange(size, dtype=torch.float64)[:, None, None]
    i = torch.arange(size, dtype=torch.float64)[None, :, None]
    j = torch.arange(size, dtype=torch.float64)[None, None, :]
    c = (size - 1) / 2
    envelope = torch.exp(-((i - c) ** 2 + (j - c) ** 2) / (2 * sigma**2))
    return (torch.cos(2 * math.pi * (sf * (j * math.cos(a) - i * math.sin(a)) - tf * tau)) * envelope).float()


@pytest.fixture(scope="module")
def probe_model():
    model = create_model("r3d10", num_classes=2, widen_factor=0.25)
    with torch.no_grad():
        weight = torch.zeros_like(model.conv1.weight)  # (16, 3, 7, 7, 7)
        weight[0] = drifting_kernel(0.125, 0.125, 0)[None] / 3  # rightward
        weight[1] = drifting_kernel(0.125, 0.0, 0)[None] / 3  # static vertical bars: motion-blind
        weight[2] = drifting_kernel(0.18, 0.25, 90)[None] / 3  # upward, finer and faster
        weight[3] = drifting_kernel(0.125, 0.125, 210)[None] / 3  # down-left
        model.conv1.weight.copy_(weight)
    return model


def test_tuning_recovers_hand_built_preferences(probe_model):
    result = measure_tuning(probe_model, "conv1")
    idx = result.indices()
    assert result.responses.shape == (16, 12, 5, 4)
    assert (idx["pref_direction"][0], idx["pref_sf"][0], idx["pref_tf"][0]) == (0, 0.125, 0.125)
    assert idx["pref_orientation"][0] == 0 and idx["dsi"][0] > 0.6
    assert (idx["pref_direction"][2], idx["pref_sf"][2], idx["pref_tf"][2]) == (90, 0.18, 0.25)
    assert idx["dsi"][2] > 0.6 and idx["pref_orientation"][2] == 90
    assert idx["pref_direction"][3] == 210 and idx["pref_orientation"][3] == 30 and idx["dsi"][3] > 0.6
    assert idx["dsi"][1] < 0.05  # a static filter cannot tell left from right
    assert idx["osi"][1] > 0.5 and idx["pref_orientation"][1] == 0  # but it is orientation selective


def test_significance_separates_drifting_from_static_and_random_kernels(probe_model):
    """The temporal-permutation test: hand-built drifting kernels are significantly direction selective, a
    static kernel is not, and random Kaiming kernels -- whose DSI looks selective -- are at about the rate alpha."""
    kernels = input_kernels(probe_model)
    p = direction_p_values(kernels, permutations=199)
    assert max(p[[0, 2, 3]]) < 0.05, p[:4]  # drifting right, up, down-left
    assert p[1] == 1.0 and motion_asymmetry(kernels)[1] < 1e-9  # static: shuffling identical slices changes nothing
    result = measure_tuning(probe_model, "conv1", frames=16, size=32)
    stats = summary(result, p)
    assert stats["frac_direction_significant"] == stats["frac_direction_selective"] == 0.75  # 3 of the 4 live channels
    fractions, dsis = [], []
    for seed in range(3):
        torch.manual_seed(seed)
        random = create_model("r3d10", num_classes=2, widen_factor=0.5)  # 32 Kaiming-initialised conv1 channels
        fractions.append(float((direction_p_values(input_kernels(random), permutations=199) < 0.05).mean()))
        dsis.append(summary(measure_tuning(random, "conv1", frames=16, size=32))["mean_dsi"])
    assert min(dsis) > 0.25  # DSI alone calls noise selective ...
    assert np.mean(fractions) <= 0.12, fractions  # ... the permutation test does not (expected: alpha = 0.05)
    with pytest.raises(ConfigError, match="needs the input-facing 3D conv"):
        input_kernels(create_model("r2p1d10", num_classes=2, widen_factor=0.25))


def test_kernel_figures_for_several_checkpoints(tmp_path, probe_model, cli):
    from videoperlin.models.kernels import conv1_weight, motion_slices_image, spacetime_image
    from videoperlin.models.weight_files import save_model

    weight = conv1_weight(probe_model)
    assert spacetime_image(weight).shape[:2] == (16 * 8 + 1, 7 * 8 + 1)  # 16 filters x 7 slices of 7x7 (+1 px gaps)
    slices = motion_slices_image(weight)
    assert slices.shape[2] == 3 and np.isfinite(slices).all()
    save_model(probe_model, tmp_path / "probe")
    proc = cli(
        "visualize",
        "kernels",
        "random:r3d10,widen_factor=0.25",
        str(tmp_path / "probe"),
        "--names",
        "random,hand-built",
        "--out",
        str(tmp_path / "k"),
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("panel.png", "spacetime.png", "motion_slices.png"):
        assert (tmp_path / "k" / name).stat().st_size > 1000


def test_tuning_cli_compares_checkpoints(tmp_path, probe_model, cli):
    from videoperlin.models.weight_files import save_model

    save_model(probe_model, tmp_path / "probe")
    proc = cli(
        "tuning",
        "random:r3d10,widen_factor=0.25",
        str(tmp_path / "probe"),
        "--names",
        "random,hand",
        "--frames",
        "16",
        "--size",
        "32",
        "--permutations",
        "99",
        "--out",
        str(tmp_path / "t"),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["hand"]["channels"] == 4 and summary["random"]["channels"] == 16  # zero filters do not count
    assert summary["hand"]["mean_dsi"] > summary["random"]["mean_dsi"]
    assert summary["hand"]["frac_direction_selective"] == 0.75 and summary["hand"]["permutations"] == 99
    rows = (tmp_path / "t" / "tuning_hand.csv").read_text().splitlines()
    assert (
        rows[0].startswith("channel,pref_direction_deg")
        and ",motion_asymmetry,direction_p," in rows[0]
        and len(rows) == 17
    )
    assert rows[1].split(",")[1] == "0"  # channel 0 prefers rightward motion
    assert (tmp_path / "t" / "dsi_osi_hist.png").exists() and (tmp_path / "t" / "polar_hand.png").exists()


def test_plot_curves_cli(tmp_path, cli):
    for name, accs in (("a", [0.1, 0.4, 0.6]), ("b", [0.2, 0.3, 0.5])):
        run = tmp_path / name
        run.mkdir()
        (run / "metrics.jsonl").write_text(
            "".join(json.dumps({"epoch": e + 1, "val_acc": a}) + "\n" for e, a in enumerate(accs))
        )
    proc = cli("plot", "curves", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c.png"))
    assert proc.returncode == 0 and (tmp_path / "c.png").exists()
    proc = cli("plot", "curves", str(tmp_path / "a"), "--metric", "top9", "--out", str(tmp_path / "d.png"))
    assert proc.returncode == 2 and "available metrics: epoch, val_acc" in proc.stderr


def test_visualize_samples_gif(tmp_path, cli):
    from PIL import Image
    from video_fixtures import write_class_folders

    write_class_folders(tmp_path / "data", per_class=1, frames=12)
    proc = cli(
        "visualize",
        "samples",
        "--data",
        str(tmp_path / "data"),
        "--preset",
        "tiny",
        "--classes",
        "0,7",
        "--frames",
        "8",
        "--size",
        "32",
        "--out",
        str(tmp_path / "s.gif"),
    )
    assert proc.returncode == 0, proc.stderr
    gif = Image.open(tmp_path / "s.gif")
    assert gif.n_frames == 8 and gif.size == (32 * 3 + 8, 32)


def test_rank_correlation_and_its_permutation_p_value():
    from videoperlin.analysis.predictors import average_ranks, permutation_pvalue, spearman

    assert list(average_ranks([3.0, 1.0, 3.0, 2.0])) == [2.5, 0.0, 2.5, 1.0]  # ties share their mean rank
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 1, 0, -5]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(permutation_pvalue([1, 1, 1], [1, 2, 3]))
    # exact: of the 4! orderings only the identity and its reversal reach |rho| = 1
    assert permutation_pvalue([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(2 / 24)
    # rho = 0.8 (sum of squared rank gaps 2): the identity and the 3 adjacent swaps, and their 4 reversals
    assert permutation_pvalue([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(8 / 24)
    # Monte Carlo above 9 points: a perfect ranking of 12 is all but never matched; unrelated data often are
    x = np.arange(12.0)
    assert permutation_pvalue(x, x, draws=2000) == pytest.approx(1 / 2001, abs=2e-3)
    noise = np.random.default_rng(1).random(12)
    assert permutation_pvalue(x, noise, draws=2000) > 0.05 and abs(spearman(x, noise)) < 0.6


def write_study(folder, arms):
    """A published study: each arm's VPN accuracy (pretraining.csv, with an arm pre-trained by MAE, which has
    none), tuning fraction and Weizmann top-1 per pre-training seed."""
    folder.mkdir()
    table = ["arch,arm,pretrained_as,pretrain_seed,objective,val_acc,val_loss,clips_seen,precision,minutes,error"]
    table += [f"r3d18,{a},{a},{s},classify,{v[s] / 100},,,bf16,10.0," for a, v in arms.items() for s in (0, 1)]
    table += ["r3d18,masked,masked,0,mae,,0.6,100,bf16,1.0,"]
    (folder / "pretraining.csv").write_text("\n".join(table) + "\n")
    rows = ["arm,arch,dataset,fold,seed,pretrain_seed,video_top1,clip_top1,error"]
    rows += [f"scratch,r3d18,weizmann,{f},0,,0.5,0.5," for f in (0, 1)]
    rows += [f"{a},r3d18,weizmann,{f},0,{s},{0.5 + v[s] / 1000 + f / 100},0.5," for a, v in arms.items() for s in (0, 1) for f in (0, 1)]  # fmt: skip
    rows += ["broken,r3d18,weizmann,0,0,0,,,RuntimeError: failed"]
    (folder / "results.csv").write_text("\n".join(rows) + "\n")
    for s in (0, 1):
        (folder / f"tuning{s}").mkdir()
        summary = {a: {"frac_direction_selective": 0.5 - v[s] / 200, "mean_dsi": 0.1} for a, v in arms.items()}
        (folder / f"tuning{s}" / "summary.json").write_text(json.dumps(summary))


def test_predictors_of_transfer_from_a_published_study(tmp_path, cli):
    from videoperlin.analysis.predictors import arm_points, predictor_report

    study = tmp_path / "study"
    write_study(study, {"a": (10, 30), "b": (40, 60), "c": (70, 70), "d": (90, 96)})
    tuning = [study / "tuning0", study / "tuning1"]
    points = arm_points(study, tuning)
    assert sorted(points) == ["a", "b", "c", "d"]  # the MAE arm has no VPN accuracy (nor results): no point
    assert points["a"]["VPN held-out top-1 %"] == 20 and points["a"]["weizmann"] == pytest.approx(2.5)  # pp
    text = predictor_report(study, tuning, "cmd")
    assert "| VPN held-out top-1 % | weizmann | 4 | +1.00 | 0.083 (exact) |" in text  # 2 of 4! orderings
    assert "| conv1 direction-selective fraction | weizmann | 4 | -1.00 | 0.083 (exact) |" in text
    assert (
        "| conv1 mean DSI | weizmann | 4 | – | – (one side is constant) |" in text
    )  # a constant predictor has no rank correlation
    proc = cli("predictors", str(study), "--tuning", *map(str, tuning), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "README.md").read_text().startswith("# Does a pre-training property predict")
    proc = cli("predictors", str(tmp_path / "nowhere"), "--tuning", *map(str, tuning))
    assert proc.returncode != 0 and "nowhere" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_predictors_read_a_studys_pretraining_csv_and_name_it_when_it_is_missing(tmp_path, cli):
    from videoperlin.analysis.predictors import vpn_accuracies

    study = tmp_path / "study"
    write_study(study, {"a": (10, 30), "b": (40, 60)})
    assert vpn_accuracies(study) == {("a", 0): 10.0, ("a", 1): 30.0, ("b", 0): 40.0, ("b", 1): 60.0}  # no MAE arm
    (study / "pretraining.csv").unlink()
    proc = cli("predictors", str(study), "--tuning", str(study / "tuning0"))
    assert proc.returncode == 2 and "pretraining.csv" in proc.stderr, proc.stderr
