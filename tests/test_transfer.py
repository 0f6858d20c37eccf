"""benchmarks/transfer.py on a tiny synthetic protocol: all arms (inflated from a random 2D ResNet),
the outputs it promises, and reuse of finished work when run again."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import torch
import yaml

from resnet2d import Basic2d, ResNet2d
from video_fixtures import CLASSES, pattern_video
from videoperlin.data.encode import encode_video

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("transfer", ROOT / "benchmarks" / "transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_transfer_benchmark_end_to_end(tmp_path):
    manifest = write_manifest(tmp_path)
    protocol = yaml.safe_load((ROOT / "benchmarks" / "transfer_default.yaml").read_text())
    protocol.update(archs=["r3d10", "r2p1d10"], run_folds=[0], seeds=[0], clip={"frames": 8, "size": 32, "short_side": 40})
    protocol["pretrain"].update(num_videos=64, val_videos=16, epochs=1, batch_size=16)
    protocol["finetune"].update(epochs=2, batch_size=4, val_every=1)
    config = tmp_path / "protocol.yaml"
    config.write_text(yaml.safe_dump(protocol))
    net2d = ResNet2d(Basic2d, (1, 1, 1, 1), num_classes=1000)
    torch.save(net2d.state_dict(), tmp_path / "resnet2d.pth")
    out, published = tmp_path / "out", tmp_path / "published"
    args = ["--config", str(config), "--out", str(out), "--data", str(manifest), "--inflate-from",
            str(tmp_path / "resnet2d.pth"), "--publish", str(published)]
    benchmark = load_benchmark()
    assert benchmark.main(args) == 0

    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["arm", "arch", "dataset", "fold", "seed", "video_top1"]
    arms = {(r["arch"], r["arm"]) for r in rows}
    assert arms == {("r3d10", a) for a in ("scratch", "vpn-low", "vpn-high", "shuffled", "inflated")} | \
                   {("r2p1d10", a) for a in ("scratch", "vpn-low", "vpn-high", "shuffled")}  # no (2+1)D inflation
    assert all(0.0 <= float(r["video_top1"]) <= 1.0 and r["dataset"] == "toy" for r in rows)
    report = (out / "report.md").read_text()
    assert "| r3d10 | vpn-low |" in report and "(n=1)" in report and "--inflate-from" in report
    for name in ("curves_toy_r3d10.png", "curves_toy_r2p1d10.png", "conv1_r3d10_shuffled.png", "conv1_r2p1d10_scratch.png"):
        assert (out / "figures" / name).exists() and (published / "figures" / name).exists()
    assert (published / "report.md").exists() and (published / "results.csv").exists()
    assert len(list((out / "pretrain").iterdir())) == 7  # 3 VPN arms x 2 archs + 1 inflated, cached

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}
    assert benchmark.main(args) == 0  # finished work is reused, nothing retrains
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}


def test_verdict_counts_paired_wins_and_compares_gain_with_spread():
    transfer = load_benchmark()
    rows = [{"arm": arm, "arch": "r3d18", "dataset": "toy", "fold": fold, "seed": seed, "video_top1": value}
            for arm, values in (("scratch", (0.1, 0.2, 0.3, 0.2)), ("vpn-low", (0.5, 0.6, 0.3, 0.6)),
                                ("shuffled", (0.2, 0.1, 0.4, 0.2)))
            for (fold, seed), value in zip(((0, 0), (0, 1), (1, 0), (1, 1)), values)]
    mine, base, diffs = transfer.paired(rows, "vpn-low", "r3d18", "toy")
    assert [round(d, 6) for d in diffs] == [0.4, 0.4, 0.0, 0.4]
    assert transfer.verdict(mine, base, diffs).startswith("3/1/0; +30.0 vs ") and "**yes**" in transfer.verdict(mine, base, diffs)
    mine, base, diffs = transfer.paired(rows, "shuffled", "r3d18", "toy")
    assert transfer.verdict(mine, base, diffs).startswith("2/1/1; +2.5 vs ") and transfer.verdict(mine, base, diffs).endswith("no")
    assert transfer.verdict(mine[:1], base[:1], diffs[:1]) == "–"
