"""The transfer study (`videoperlin transfer`) on a tiny synthetic protocol: all arms (inflated from
a random 2D ResNet) and two pre-training seeds, the outputs it promises, reuse of finished work,
a fixed train/test split, and the protocol's typed --set."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch
import yaml
from resnet2d import Basic2d, ResNet2d
from video_fixtures import CLASSES, pattern_video

from videoperlin.cli import main
from videoperlin.data.encode import encode_video
from videoperlin.errors import ConfigError
from videoperlin.study.protocol import load_protocol
from videoperlin.study.report import clips_seen, comparison_table, interval_text, summary_table
from videoperlin.study.statistics import paired, paired_interval, t_quantile_975, verdict, wins_ties_losses
from videoperlin.train.config import builtin_config, load_config, save_config, with_absolute_paths


def write_manifest(root: Path) -> Path:
    rows = ["dataset,path,label,group"]
    for k, kind in enumerate(CLASSES):
        for actor in ("ann", "bob", "cid"):
            for take in range(2):
                path = root / "videos" / f"{actor}_{kind}_{take}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                encode_video(path, pattern_video(kind, seed=hash((k, actor, take)) % 1000, frames=16))
                rows.append(f"toy,videos/{path.name},{kind},{actor}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root / "manifest.csv"


def tiny_protocol(tmp_path: Path) -> Path:
    protocol = yaml.safe_load(builtin_config("transfer_default").read_text())
    protocol.update(
        archs=["r3d10", "r2p1d10"],
        run_folds=[0],
        seeds=[0],
        pretrain_seeds=[0, 1],
        arms=["scratch", "vpn-low", "vpn-high", "shuffled"],
    )
    protocol["common"]["data"] = {"frames": 8, "size": 32, "short_side": 40}
    protocol["pretrain"]["synthetic"] = {"num_videos": 64, "val_videos": 16}
    protocol["pretrain"]["train"].update(epochs=1, batch_size=16)
    protocol["finetune"]["train"].update(epochs=2, batch_size=4, val_every=1)
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(protocol))
    return path


@pytest.mark.slow  # the whole study: 2 archs x 5 arms x 2 pre-training seeds (the default suite runs a smaller one)
def test_transfer_study_end_to_end(tmp_path):
    manifest = write_manifest(tmp_path)
    torch.save(ResNet2d(Basic2d, (1, 1, 1, 1), num_classes=1000).state_dict(), tmp_path / "resnet2d.pth")
    out, published = tmp_path / "out", tmp_path / "published"
    args = [
        "transfer",
        "--config",
        str(tiny_protocol(tmp_path)),
        "--out",
        str(out),
        "--data",
        str(manifest),
        "--inflate-from",
        str(tmp_path / "resnet2d.pth"),
        "--publish",
        str(published),
    ]
    assert main(args) == 0

    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "arm",
        "arch",
        "dataset",
        "fold",
        "seed",
        "pretrain_seed",
        "video_top1",
        "clip_top1",
        "error",
    ]
    assert not any(r["error"] for r in rows)
    runs = {(r["arch"], r["arm"], r["pretrain_seed"]) for r in rows}
    pre_trained = {
        (arch, arm, s)
        for arch in ("r3d10", "r2p1d10")
        for arm in ("vpn-low", "vpn-high", "shuffled")
        for s in ("0", "1")
    }
    assert runs == pre_trained | {("r3d10", "scratch", ""), ("r2p1d10", "scratch", ""), ("r3d10", "inflated", "")}
    assert all(0.0 <= float(r["video_top1"]) <= 1.0 and r["dataset"] == "toy" for r in rows)
    report = (out / "report.md").read_text()
    assert "| r3d10 | vpn-low |" in report and "(n=2)" in report and "--inflate-from" in report
    assert "### toy" in report and "[95% CI]" in report
    for name in (
        "curves_toy_r3d10.png",
        "curves_toy_r2p1d10.png",
        "conv1_r3d10_shuffled.png",
        "conv1_r2p1d10_scratch.png",
    ):
        assert (out / "figures" / name).exists() and (published / "figures" / name).exists()
    assert (published / "report.md").exists() and (published / "results.csv").exists()
    assert len(list((out / "pretrain").iterdir())) == 13  # 3 VPN arms x 2 archs x 2 pre-training seeds + 1 inflated

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}
    assert main(args) == 0  # finished work is reused, nothing retrains
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}


def test_a_small_study_reports_publishes_and_reuses_its_runs(tmp_path):
    """The default suite's study end to end (the whole one is slow): one arch, scratch and vpn-low with
    two pre-training seeds and two fine-tuning seeds, paired in the report (a unit per fine-tuning cell),
    published, and reused on a second run."""
    manifest = write_manifest(tmp_path)
    out, published = tmp_path / "out", tmp_path / "published"
    args = ["transfer", "--config", str(tiny_protocol(tmp_path)), "--out", str(out), "--data", str(manifest)]
    args += ["--set", "archs=r3d10", "--set", "arms=[scratch, vpn-low]", "--set", "seeds=0,1"]
    args += ["--publish", str(published)]
    assert main(args) == 0
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["arm"], r["pretrain_seed"]) for r in rows} == {("scratch", ""), ("vpn-low", "0"), ("vpn-low", "1")}
    report = (out / "report.md").read_text()
    vpn_low = next(line for line in report.splitlines() if line.startswith("| r3d10 | vpn-low | "))
    cells = vpn_low.split(" | ")  # arch, arm, top-1 over 4 runs, the interval, W/T/L over 2 units, ...
    assert "(n=4)" in cells[2] and re.fullmatch(r"[+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]( ‡)?", cells[3])
    assert sum(map(int, cells[4].split("/"))) == 2, vpn_low
    assert (published / "results.csv").exists() and (published / "figures" / "curves_toy_r3d10.png").exists()
    assert (published / "figures" / "forest.png").stat().st_size > 5000  # the paired interval, drawn
    with open(out / "pretraining.csv", newline="") as handle:
        pre = list(csv.DictReader(handle))
    assert [(r["arm"], r["pretrain_seed"], r["objective"]) for r in pre] == [
        ("vpn-low", "0", "classify"),
        ("vpn-low", "1", "classify"),
    ]
    assert all(0 <= float(r["val_acc"]) <= 1 and int(r["clips_seen"]) > 0 for r in pre)
    assert "| held-out top-1 % | held-out MAE loss | clips seen |" in report
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}
    assert main(args) == 0  # finished work is reused, nothing retrains
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}


def test_fixed_train_and_test_sets(tmp_path):
    """A dataset entry may train on one collection and test on another (data + val_data): one run per seed."""
    manifest = write_manifest(tmp_path)
    protocol = tiny_protocol(tmp_path)
    datasets = (
        f"datasets=[{{name: cross, data: {manifest}, val_data: {tmp_path / 'videos'}}}, "
        f"{{name: chained, data: {manifest}, folds: 3, after: cross, finetune: {{train: {{epochs: 1}}}}}}]"
    )
    (tmp_path / "videos").rename(tmp_path / "flat")
    for kind in CLASSES:  # the test set: the same videos as class folders
        (tmp_path / "videos" / kind).mkdir(parents=True)
        for video in (tmp_path / "flat").glob(f"*_{kind}_*.mp4"):
            (tmp_path / "videos" / kind / video.name).symlink_to(video)
    manifest.write_text(manifest.read_text().replace("videos/", "flat/"))
    out = tmp_path / "out"
    assert (
        main(
            [
                "transfer",
                "--config",
                str(protocol),
                "--out",
                str(out),
                "--set",
                datasets,
                "--set",
                "archs=r3d10",
                "--set",
                "arms=[scratch, vpn-low]",
                "--set",
                "pretrain_seeds=0",
                "--set",
                "run_folds=0,1",
            ]
        )
        == 0
    )
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["arm"], r["fold"]) for r in rows if r["dataset"] == "cross") == [
        ("scratch", "0"),
        ("vpn-low", "0"),
    ]
    config = yaml.safe_load(next(out.glob("finetune/cross/**/config.yaml")).read_text())
    assert config["data"]["val_path"] == str(tmp_path / "videos")
    chained = yaml.safe_load((out / "finetune/chained/r3d10/vpn-low/fold1-seed0-pseed0/config.yaml").read_text())
    assert chained["train"]["init"] == str(out / "finetune/cross/r3d10/vpn-low/fold0-seed0-pseed0/checkpoints/last.pt")
    assert chained["train"]["epochs"] == 1 and config["train"]["epochs"] == 2  # the dataset's own override
    assert "### chained (after cross)" in (out / "report.md").read_text()
    with pytest.raises(ConfigError, match="after 'chained' must name an earlier dataset with a fixed split"):
        load_protocol(protocol, [datasets.replace("after: cross", "after: chained")])


def test_protocol_is_typed_and_names_the_new_keys(tmp_path):
    default = builtin_config("transfer_default")
    protocol = load_protocol(
        default,
        [
            "finetune.train.epochs=60",
            "archs=r3d18",
            "pretrain_seeds=0,1",
            "pretrain_arms.wide.synthetic.preset=wide",
            "arms=[scratch, wide]",
        ],
    )
    assert protocol.finetune["train"]["epochs"] == 60 and protocol.archs == ["r3d18"]
    assert protocol.pretrain_seeds == [0, 1] and protocol.pretrain_arms["wide"] == {"synthetic": {"preset": "wide"}}
    assert protocol.pretrain_config("wide", "r3d18", 1, "x").synthetic.preset == "wide"
    # a whole arm as YAML, as a study's own arm is written in its file
    longer = load_protocol(
        default, ["pretrain_arms.long={synthetic: {preset: low}, train: {epochs: 9}}", "arms=[scratch, long]"]
    )
    assert longer.pretrain_config("long", "r3d18", 0, "x").train.epochs == 9
    for bad, message in [
        ("pretrain={train: {epochs: 3}}", "pretrain is a section; set one of its fields, e.g. pretrain.train.epochs"),
        ("pretrain_arms.vpn-low={sythetic: {preset: low}}", "pretrain_arms.vpn-low: unknown config field 'sythetic'"),
        ("pretrain_arms.vpn-low=3", "pretrain_arms.vpn-low expects a mapping, got 3"),
        ("finetune.epochs=60", "did you mean finetune.train.epochs"),
        ("clip.size=64", "did you mean common.data.size"),
        ("finetune.train.epochs=many", "train.epochs value 'many' is not an integer"),
        ("pretrain.optim.lr=-1", "protocol pretrain_arms.vpn-low: optim.lr -1.0 must be > 0"),
        ("arms=[vpn-low]", "must include scratch"),
        ("archs=r3d19", "archs \\['r3d19'\\] has 'r3d19'; each item must be one of"),
        ("arms=[scratch, vpn-medium]", "not arms"),
        ("compare_with=[scratch]", "compare_with \\['scratch'\\] must be pre-trained arms.*--set compare_with=\\[\\]"),
        ("pooled={both: [weizmann, hmdb]}", "pooled.both .*'hmdb'\\] are not"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_protocol(default, [bad])


def test_paired_differences_intervals_and_verdicts():
    rows = [
        {
            "arm": arm,
            "arch": "r3d18",
            "dataset": "toy",
            "fold": fold,
            "seed": seed,
            "video_top1": value,
            "clip_top1": value / 2,
            "pretrain_seed": "" if arm == "scratch" else 0,
        }
        for arm, values in (
            ("scratch", (0.1, 0.2, 0.3, 0.2)),
            ("vpn-low", (0.5, 0.6, 0.3, 0.6)),
            ("shuffled", (0.2, 0.1, 0.4, 0.2)),
            ("worse", (0.0, 0.1, 0.1, 0.05)),
        )
        for (fold, seed), value in zip(((0, 0), (0, 1), (1, 0), (1, 1)), values)
    ]
    mine, _base, diffs = paired(rows, "vpn-low", "r3d18", "toy")
    assert [round(d, 6) for d in diffs] == [0.4, 0.4, 0.0, 0.4] and wins_ties_losses(diffs) == "3/1/0"
    mean, low, high = paired_interval(diffs)  # mean 0.3, sd 0.2, n 4: 0.3 -+ 3.182 * 0.2 / 2
    assert (round(mean, 6), round(low, 4), round(high, 4)) == (0.3, -0.0182, 0.6182)
    assert verdict((mean, low, high)) == "no evidence of a difference"  # 3 of 4 wins, yet the interval holds 0
    assert verdict(paired_interval([0.1, 0.12, 0.09, 0.11])) == "**gain**"
    assert verdict(paired_interval(paired(rows, "worse", "r3d18", "toy")[2])) == "**loss**"
    assert paired_interval([0.3]) is None and verdict(None) == "–"
    # every pair 7 of 240 videos apart (the ViT confirmation's split 3), in floats that differ in the last bits
    equal = [0.175 - 0.14583333333333334, 0.18333333333333332 - 0.15416666666666667, 0.17916666666666667 - 0.15]
    assert interval_text(paired_interval(equal)) == "+2.9 [+2.9, +2.9] ‡"
    assert interval_text(paired_interval([0.1, 0.12, 0.09, 0.11])) == "+10.5 [+8.4, +12.6]"
    assert [round(d, 6) for d in paired(rows, "vpn-low", "r3d18", "toy", "clip_top1")[2]] == [0.2, 0.2, 0.0, 0.2]
    # against a pre-trained arm (compare_with): paired on fold, seed and pre-training seed, never across seeds
    against_low = paired(rows, "shuffled", "r3d18", "toy", baseline="vpn-low")[2]
    assert [round(d, 6) for d in against_low] == [-0.3, -0.5, 0.1, -0.4]
    other_seed = [{**r, "pretrain_seed": 1} for r in rows if r["arm"] == "shuffled"]
    assert len(paired(rows + other_seed, "shuffled", "r3d18", "toy", baseline="vpn-low")[2]) == 4  # no partner: seed 1
    protocol = load_protocol(
        builtin_config("transfer_default"), ["arms=[scratch, vpn-low, shuffled]", "compare_with=[vpn-low]"]
    )
    table = comparison_table(rows, protocol, "toy", "vpn-low").splitlines()
    assert table[0].startswith("| arch | arm | Δ video vs vpn-low") and len(table) == 3  # header, rule, shuffled
    assert table[2].startswith("| r3d18 | shuffled | -27.5 [") and "| 1/0/3 |" in table[2]
    assert (
        t_quantile_975(1) == 12.706
        and abs(t_quantile_975(40) - 2.021) < 0.002
        and abs(t_quantile_975(120) - 1.980) < 0.002
    )
    rows += [{**r, "pretrain_seed": 1, "video_top1": r["video_top1"] - 0.1} for r in rows if r["arm"] == "vpn-low"]
    mine, _base, diffs = paired(rows, "vpn-low", "r3d18", "toy")  # a cell's two pre-training seeds: one unit
    assert len(mine) == 8 and [round(d, 6) for d in diffs] == [0.35, 0.35, -0.05, 0.35]  # each scratch run once
    assert wins_ties_losses(diffs) == "3/0/1"


def test_clips_seen_counts_clips_not_steps_times_batch():
    # JHMDB split 2's 502 training videos in batches of 32: 16 steps an epoch, the last one of 22 clips
    epochs = [{"epoch": 1, "clips": 502, "clips_per_s": 80.0, "time_s": 6.275, "step": 16}] * 2
    assert clips_seen(epochs + [{"epoch": 2, "val_loss": 0.5}]) == 1004  # not 2 * 16 * 32 = 1024
    older = [{"clips_per_s": 502 / 6.3, "time_s": 6.3, "step": 16}]  # written before epochs recorded clips
    assert clips_seen(older) == 502


def test_pooled_splits_pair_within_their_split_and_report_as_one():
    """Official splits as dataset entries, pooled: a run pairs only with scratch of its own split (never
    across splits, where fold 0 and seed 0 mean other training data), and the pool's units are all pairs."""
    rows = [
        {"arm": arm, "arch": "r3d18", "dataset": split, "fold": 0, "seed": seed, "video_top1": value,
         "pretrain_seed": "" if arm == "scratch" else 0}
        for split, shift in (("s1", 0.0), ("s2", 0.3))
        for arm, values in (("scratch", (0.1, 0.2)), ("vpn-low", (0.3, 0.3)), ("shuffled", (0.1, 0.4)))
        for seed, value in zip((0, 1), values)
        if not (split == "s2" and arm == "shuffled" and seed == 1)  # one run missing: its pair drops out
        for value in (value + shift,)
    ]  # fmt: skip
    mine, base, diffs = paired(rows, "vpn-low", "r3d18", ("s1", "s2"))
    assert len(mine) == len(base) == 4 and [round(d, 6) for d in diffs] == [0.2, 0.1, 0.2, 0.1]
    assert [round(d, 6) for d in paired(rows, "shuffled", "r3d18", ("s1", "s2"), baseline="vpn-low")[2]] == [
        -0.2,
        0.1,
        -0.2,
    ]
    assert paired(rows, "vpn-low", "r3d18", "s1")[2] == paired(rows, "vpn-low", "r3d18", ("s1",))[2]
    protocol = load_protocol(
        builtin_config("transfer_default"),
        [
            "datasets=[{name: s1, data: x, split: 1}, {name: s2, data: x, split: 2}]",
            "pooled={splits-1-2: [s1, s2]}",
            "arms=[scratch, vpn-low, shuffled]",
            "compare_with=[vpn-low]",
        ],
    )
    text = summary_table(rows, protocol)
    pooled = text.split("### splits-1-2 (pooled: s1, s2)")[1]
    assert (
        "### s1" in text
        and "### s2" in text
        and "| r3d18 | vpn-low | 45.0 ± 17.3 (n=4) | +15.0 [+5.8, +24.2] | 4/0/0 | **gain** |" in pooled
    )
    assert "| r3d18 | shuffled | -10.0 [" in pooled and "| 1/0/2 |" in pooled


def test_a_published_study_is_restated_with_this_versions_pairing(tmp_path, capsys):
    """--restate recomputes a published report's tables from results.csv and its recorded protocol: an arm's
    two pre-training seeds are one unit per scratch run (the first report counted them as two pairs each)."""
    from videoperlin.config_fields import to_dict
    from videoperlin.study.report import write_results
    from videoperlin.study.restate import FIRST_WRITTEN_HEADING, RESTATED_HEADING

    rows = [
        {"arm": arm, "arch": "r3d18", "dataset": "toy", "fold": fold, "seed": 0, "video_top1": value,
         "clip_top1": value, "pretrain_seed": pseed, "error": ""}
        for arm, pseed, values in (("scratch", "", (0.1, 0.3)), ("vpn-low", 0, (0.3, 0.4)), ("vpn-low", 1, (0.2, 0.6)))
        for fold, value in enumerate(values)
    ]  # fmt: skip
    protocol = load_protocol(
        builtin_config("transfer_default"),
        ["datasets=[{name: toy, data: x, folds: 2}]", "arms=[scratch, vpn-low]", "pretrain_seeds=0,1"],
    )
    study = tmp_path / "published"
    study.mkdir()
    write_results(study, rows)
    note = "> **Numerics.** A note put above the title (pre-training precision): it stays first.\n\n"
    first = (
        f"{note}# Transfer study\n\nthe old tables\n\nProtocol:\n\n```yaml\n{yaml.safe_dump(to_dict(protocol))}```\n"
    )
    (study / "report.md").write_text(first)
    assert main(["transfer", "--restate", str(study)]) == 0 and "restated" in capsys.readouterr().out
    report = (study / "report.md").read_text()
    restated, kept = report.split(FIRST_WRITTEN_HEADING + "\n")
    assert (
        restated.startswith(f"{note}# Transfer study\n\n{RESTATED_HEADING}\n")
        and kept.strip() == first.split("# Transfer study\n", 1)[1].strip()
    )
    # fold 0: (0.3 + 0.2) / 2 - 0.1 = +0.15; fold 1: (0.4 + 0.6) / 2 - 0.3 = +0.2 -- two units, not four pairs
    assert "| r3d18 | vpn-low | 37.5 ± 17.1 (n=4) | +17.5 [-14.3, +49.3] | 2/0/0 | no evidence" in restated
    assert (study / "figures" / "forest.png").stat().st_size > 5000
    assert main(["transfer", "--restate", str(study)]) == 0  # again: the restatement is replaced, not stacked
    assert (study / "report.md").read_text() == report
    (study / "report.md").write_text("# Transfer study\n\nno protocol here\n")
    capsys.readouterr()
    assert main(["transfer", "--restate", str(study)]) == 2
    assert "report.md records no protocol" in capsys.readouterr().err
    (study / "report.md").write_text("# Transfer study\n\nProtocol:\n\n```yaml\narms: [scratch\n```\n")
    assert main(["transfer", "--restate", str(study)]) == 2
    assert "its protocol block is not YAML" in capsys.readouterr().err


def test_failed_runs_are_retried_in_fp32_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    """vpn-low's pre-training fails in bf16/auto and succeeds in fp32; vpn-high's fails both ways (its
    fine-tuning is not run); shuffled's fine-tuning fails both ways. The rest completes; exit 1."""
    from videoperlin.errors import NumericsError
    from videoperlin.study import runs

    real_fit = runs.Trainer.fit

    def fit(self):
        c = self.config
        if c.task == "pretrain" and c.synthetic.label_mode != "shuffled" and c.synthetic.preset == "high":
            raise NumericsError("the model holds non-finite values in layer3.0.bn2.running_var (simulated)")
        if (
            c.task == "pretrain"
            and c.synthetic.preset == "low"
            and c.synthetic.label_mode != "shuffled"
            and c.train.amp != "off"
        ):
            raise NumericsError("simulated bf16 kernel fault")
        if c.task == "train" and "/shuffled/" in c.train.out:
            raise RuntimeError("simulated crash\nsecond line")
        return real_fit(self)

    monkeypatch.setattr(runs.Trainer, "fit", fit)
    manifest = write_manifest(tmp_path)
    out = tmp_path / "out"
    args = [
        "transfer",
        "--config",
        str(tiny_protocol(tmp_path)),
        "--out",
        str(out),
        "--data",
        str(manifest),
        "--set",
        "archs=r3d10",
        "--set",
        "arms=[scratch, vpn-low, vpn-high, shuffled]",
        "--set",
        "pretrain_seeds=0",
    ]
    assert main(args) == 1
    with open(out / "results.csv", newline="") as handle:
        rows = {r["arm"]: r for r in csv.DictReader(handle)}
    assert rows["scratch"]["error"] == "" and float(rows["scratch"]["video_top1"]) >= 0
    assert rows["vpn-low"]["error"] == "" and float(rows["vpn-low"]["video_top1"]) >= 0  # the fp32 retry worked
    assert rows["vpn-high"]["error"].startswith("not run: its pre-training failed (pre-training r3d10 vpn-high seed 0")
    assert rows["vpn-high"]["video_top1"] == ""
    assert rows["shuffled"]["error"] == (
        "fine-tuning toy r3d10 shuffled fold 0 seed 0 pre-training seed 0: "
        "train.amp off: RuntimeError: simulated crash; retried in fp32: "
        "train.amp off: RuntimeError: simulated crash"
    )
    marks = sorted(p.parent.name.rsplit("-", 1)[0] for p in (out / "pretrain").glob("*/failed.json"))
    assert marks == ["r3d10-vpn-high-s0", "r3d10-vpn-high-s0", "r3d10-vpn-low-s0"]
    report = (out / "report.md").read_text()
    assert "**2 run(s) failed**" in report and "| r3d10 | vpn-high | 0 | failed |" in report
    assert "| r3d10 | vpn-low | 0 |" in report and "| fp32 |" in report  # the retry's precision
    assert "| r3d10 | shuffled |" not in report.split("run(s) failed")[0]  # no result, no row

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}
    assert main(args) == 1  # a resumed study honours the marks: nothing is tried again
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}


def test_a_run_whose_protocol_changed_mid_run_is_an_error_not_a_failure(tmp_path):
    """An unfinished study run resumed under changed settings: one line saying the protocol changed (never
    marked failed and retried in fp32, which would hide the change)."""
    from videoperlin.study.runs import train_or_fall_back
    from videoperlin.train.config import load_config
    from videoperlin.train.engine import Trainer
    from videoperlin.train.run_dir import RunDir

    def config(**extra):
        base = {"train.out": str(tmp_path / "run"), "model.name": "r3d10", "model.widen_factor": 0.25}
        base |= {
            "data.frames": 8,
            "data.size": 32,
            "synthetic.preset": "tiny",
            "synthetic.num_videos": 16,
            "synthetic.val_videos": 4,
        }
        base |= {"train.epochs": 1, "train.batch_size": 4, "train.amp": "off", "train.progress": False}
        return load_config(None, {**base, **extra}, task="pretrain")

    Trainer(config(**{"train.max_steps": 2})).fit()  # stopped after 2 of 4 steps
    with pytest.raises(ConfigError, match=r"the protocol changed since .*optim.lr 0.1 -> 0.2.*delete that run"):
        train_or_fall_back(config(**{"optim.lr": 0.2}), tmp_path / "retry", "pre-training x")
    assert RunDir(tmp_path / "run").failure() is None and not (tmp_path / "retry").exists()


def test_built_in_protocols_read_their_data_folder_from_one_variable(tmp_path, monkeypatch, cli):
    monkeypatch.setenv("VIDEOPERLIN_DATA", str(tmp_path / "datasets"))
    protocol = load_protocol(builtin_config("transfer_vit"))
    assert protocol.datasets[0].data == str(tmp_path / "datasets/jhmdb")
    assert protocol.pretrain_arms["mae-jhmdb"]["data"]["path"] == str(tmp_path / "datasets/jhmdb")
    monkeypatch.delenv("VIDEOPERLIN_DATA")
    with pytest.raises(ConfigError, match=r"reads \$VIDEOPERLIN_DATA .*which is not set: export VIDEOPERLIN_DATA="):
        load_protocol(builtin_config("transfer_default"))
    proc = cli("transfer", "--out", tmp_path / "out")
    assert proc.returncode == 2 and "--data-root FOLDER" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_cached_pretraining_is_found_whatever_the_spelling_of_its_paths(tmp_path, monkeypatch):
    """A run recorded with data under ../data is the run a protocol spelling it $VIDEOPERLIN_DATA asks for."""
    from videoperlin.study.runs import cached_run

    (tmp_path / "data").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    relative = load_config(base={"data": {"path": "../data/jhmdb"}, "train": {"out": "x"}}, task="pretrain")
    run = tmp_path / "cache" / "r3d18-mae-s0-0123456789"
    run.mkdir(parents=True)
    save_config(with_absolute_paths(relative), run / "config.yaml")
    monkeypatch.setenv("VIDEOPERLIN_DATA", str(tmp_path / "data"))
    spelled = load_config(base={"data": {"path": str(tmp_path / "data/jhmdb")}, "train": {"out": "y"}}, task="pretrain")
    assert cached_run(tmp_path / "cache", spelled) == run
    other = load_config(base={"data": {"path": str(tmp_path / "data/ucf")}}, task="pretrain")
    assert cached_run(tmp_path / "cache", other) is None
