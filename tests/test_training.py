"""The training engine end to end on CPU: pretrain -> train -> evaluate, exact resume, DDP with gloo,
and bad input (corrupt files, missing split files, label typos, head mismatches)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import final_weights, metrics
from video_fixtures import CLASSES, write_class_folders, write_ucf_splits

from videoperlin.errors import ConfigError
from videoperlin.train.checkpointing import load_checkpoint
from videoperlin.train.config import load_config
from videoperlin.train.engine import Trainer

# fp32: bf16 autocast on CPUs is intermittently non-finite at these tiny shapes (docs/guide/training.md), and tests must be exact.
#: A quarter-width r3d10 on 8x48x48 clips in fp32, quiet (each test adds its epochs and batch).
SMALL_NET = ["--model", "r3d10", "--widen-factor", "0.25", "--frames", "8", "--size", "48", "--amp", "off", "-q"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("actions")
    write_class_folders(root, per_class=16)
    return root


@pytest.fixture(scope="module")
def ucf(tmp_path_factory, videos) -> Path:
    root = tmp_path_factory.mktemp("ucf")
    for kind in CLASSES:
        (root / kind).symlink_to(videos / kind, target_is_directory=True)
    write_ucf_splits(root, per_class=16)
    return root


@pytest.fixture(scope="module")
def vpn_checkpoint(tmp_path_factory, cli) -> Path:
    out = tmp_path_factory.mktemp("runs") / "pretrain"
    proc = cli(
        "pretrain",
        "--preset",
        "tiny",
        "--num-videos",
        "64",
        "--set",
        "synthetic.val_videos=16",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--out",
        str(out),
        *SMALL_NET,
    )
    assert proc.returncode == 0, proc.stderr
    return out / "checkpoints" / "last.pt"


def test_pretrain_writes_run_directory(vpn_checkpoint):
    run = vpn_checkpoint.parents[1]
    assert (run / "config.yaml").exists() and (run / "figures" / "conv1.png").exists()
    rows = metrics(run)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "train_acc", "val_acc", "lr", "clips_per_s", "data_wait"} <= set(rows[0])
    assert [r["clips"] for r in rows] == [64, 64]  # --num-videos 64, every clip once an epoch
    checkpoint = load_checkpoint(vpn_checkpoint)
    assert checkpoint["model_config"]["num_classes"] == 8 and len(checkpoint["class_names"]) == 8


def test_train_from_vpn_then_evaluate(tmp_path, cli, videos, ucf, vpn_checkpoint):
    run = tmp_path / "train"
    proc = cli(
        "train",
        "--data",
        str(videos),
        "--init",
        str(vpn_checkpoint),
        "--epochs",
        "8",
        "--batch-size",
        "8",
        "--lr",
        "0.01",
        "--set",
        "optim.schedule=cosine",
        "--set",
        "optim.warmup_epochs=1",
        "--set",
        "data.val_fraction=0.25",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(run),
        *SMALL_NET,
    )
    assert proc.returncode == 0, proc.stderr
    rows = metrics(run)
    assert rows[-1]["best_val_acc"] >= 0.8, rows  # 3 classes: chance is 1/3
    assert rows[-1]["train_acc"] > rows[0]["train_acc"]
    # From the run's own record: the same validation videos and windows as training, no flags repeated.
    proc = cli("evaluate", "--checkpoint", str(run / "checkpoints" / "best.pt"), "--max-windows", "10", "-q")
    assert proc.returncode == 0, proc.stderr
    own = json.loads((run / "eval-val" / "metrics.json").read_text())
    best = next(r for r in rows if r["val_acc"] == rows[-1]["best_val_acc"])
    assert own["videos"] == best["val_videos"] == 12  # val_fraction 0.25 of 16 per class, as the run split it
    assert own["video_top1"] == pytest.approx(best["val_acc"]) and own["clip_top1"] == pytest.approx(
        best["val_clip_acc"]
    )
    out = tmp_path / "eval"
    proc = cli(
        "evaluate",
        "--checkpoint",
        str(run / "checkpoints" / "best.pt"),
        "--data",
        str(ucf),
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "metrics.json").read_text())
    assert result["videos"] == 12 and result["clips"] >= 12  # testlist01: 4 videos per class
    assert 0 <= result["video_top1"] <= 1 and result["video_top5"] == 1.0  # 3 classes: top-5 is everything
    with open(out / "predictions.csv") as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == 12 and {p["label"] for p in predictions} == set(CLASSES)
    assert len((out / "confusion.csv").read_text().splitlines()) == 4
    assert (out / "confusion.png").exists() and (out / "per_class.csv").exists()


def test_train_on_ucf_split_files(tmp_path, cli, ucf):
    run = tmp_path / "ucf-run"
    proc = cli(
        "train",
        "--data",
        str(ucf),
        "--split",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        str(run),
        "--cache-dir",
        str(tmp_path / "cache"),
        *SMALL_NET,
    )
    assert proc.returncode == 0, proc.stderr
    assert metrics(run)[0]["val_videos"] == 12


def _config(tmp_path, out: str, **extra):
    overrides = {
        "train.out": str(tmp_path / out),
        "model.name": "r3d10",
        "model.widen_factor": 0.25,
        "data.frames": 8,
        "data.size": 48,
        "train.epochs": 2,
        "train.batch_size": 8,
        "synthetic.preset": "tiny",
        "synthetic.num_videos": 48,
        "synthetic.val_videos": 8,
        "train.deterministic": True,
        "train.progress": False,
        "train.threads": 1,
        "train.amp": "off",
        "model.dropout": 0.2,
        **extra,
    }
    return load_config(None, overrides, task="pretrain")


@pytest.mark.parametrize(
    "data, workers",
    [(None, 0), ("videos", 0), pytest.param("videos", 2, marks=pytest.mark.slow)],  # slow: worker processes
)
def test_resume_equals_uninterrupted_run(tmp_path, videos, data, workers):
    """Bit-identical final weights; with workers the loaders are persistent, and the epoch travels with
    each index to the workers."""
    extra = (
        {}
        if data is None
        else {
            "data.path": str(videos),
            "data.workers": workers,
            "data.cache_dir": str(tmp_path / "c"),
            "data.val_fraction": 0.25,
        }
    )
    task = "pretrain" if data is None else "train"
    whole = _config(tmp_path, "whole", **extra)
    whole.task = task
    Trainer(whole).fit()
    stopped = _config(tmp_path, "resumed", **{**extra, "train.max_steps": 5})
    stopped.task = task
    Trainer(stopped).fit()
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["position"]["global_step"] == 5
    resumed = _config(tmp_path, "resumed", **extra)
    resumed.task = task
    Trainer(resumed, resume=True).fit()
    a, b = final_weights(tmp_path / "whole"), final_weights(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert metrics(tmp_path / "whole") == [
        {**r, "time_s": w["time_s"], "clips_per_s": w["clips_per_s"], "data_wait": w["data_wait"]}
        for r, w in zip(metrics(tmp_path / "resumed"), metrics(tmp_path / "whole"))
    ]


def test_save_every_resumes_exactly_from_the_last_saved_epoch(tmp_path, monkeypatch):
    """train.save_every=2: last.pt after epochs 2 and 4 only; a kill in epoch 4 (epoch 3 trained, not
    saved) resumes from epoch 2 and ends bit-identical to the uninterrupted run."""
    extra = {"train.epochs": 4, "train.save_every": 2, "synthetic.num_videos": 16}
    Trainer(_config(tmp_path, "whole", **extra)).fit()
    train_epoch = Trainer.train_epoch

    def killed_in_epoch_4(self, epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return train_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", killed_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        Trainer(_config(tmp_path, "resumed", **extra)).fit()
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["position"]["epoch"] == 2
    assert [r["epoch"] for r in metrics(tmp_path / "resumed")] == [1, 2, 3]  # epoch 3 trained, never saved
    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    Trainer(_config(tmp_path, "resumed", **extra), resume=True).fit()
    a, b = final_weights(tmp_path / "whole"), final_weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in metrics(tmp_path / "whole")] == [
        r["train_loss"] for r in metrics(tmp_path / "resumed")
    ]


def test_existing_run_needs_resume(tmp_path):
    Trainer(_config(tmp_path, "run", **{"train.epochs": 1})).fit()
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        Trainer(_config(tmp_path, "run", **{"train.epochs": 1}))


def test_validates_every_n_epochs_and_at_the_last(tmp_path):
    Trainer(_config(tmp_path, "run", **{"train.epochs": 3, "train.val_every": 2, "synthetic.num_videos": 16})).fit()
    assert ["val_acc" in row for row in metrics(tmp_path / "run")] == [False, True, True]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # torchrun with two processes
def test_ddp_two_processes_on_cpu(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "videoperlin",
        "pretrain",
        "--preset",
        "tiny",
        "--num-videos",
        "32",
        "--set",
        "synthetic.val_videos=8",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--out",
        str(out),
        *SMALL_NET,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = metrics(out)[0]
    assert row["step"] == 4  # 32 videos / 2 ranks / batch 4: each rank took 4 distinct batches
    assert row["val_videos"] == 8 and (out / "checkpoints" / "last.pt").exists()


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def dirty(tmp_path, videos) -> Path:
    root = tmp_path / "dirty"
    for kind in CLASSES:
        (root / kind).mkdir(parents=True)
        for video in sorted((videos / kind).glob("*.mp4"))[:4]:
            (root / kind / video.name).symlink_to(video)
    (root / "down" / "corrupt.mp4").write_bytes(os.urandom(4096))
    (root / "right" / "empty.avi").write_bytes(b"")
    (root / "flicker" / "notes.mp4").write_text("this is not a video")
    return root


def test_bad_videos_are_skipped_and_counted(tmp_path, cli, dirty):
    run = tmp_path / "skip"
    proc = cli(
        "train",
        "--data",
        str(dirty),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--set",
        "data.val_fraction=0.25",
        "--out",
        str(run),
        *[arg for arg in SMALL_NET if arg != "-q"],  # the warnings are what this test reads: -q prints errors only
    )
    assert proc.returncode == 0, proc.stderr
    assert "skipping bad video" in proc.stderr
    row = metrics(run)[0]
    assert row["bad_videos"] + row["val_bad_videos"] == 3  # each bad file skipped and counted once, not fatal


def test_bad_videos_fail_the_run_on_request(tmp_path, cli, dirty):
    proc = cli(
        "train",
        "--data",
        str(dirty),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--on-bad-video",
        "fail",
        "--set",
        "data.val_fraction=0.25",
        "--out",
        str(tmp_path / "fail"),
        *SMALL_NET,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert any(name in proc.stderr for name in ("corrupt.mp4", "empty.avi", "notes.mp4"))
    assert "--on-bad-video skip" in proc.stderr


def test_check_data_reports_each_bad_file(cli, dirty):
    proc = cli("check-data", str(dirty), "-q")
    assert proc.returncode == 1
    assert "corrupt.mp4" in proc.stdout and "empty.avi: file is empty" in proc.stdout and "notes.mp4" in proc.stdout
    assert "down" in proc.stdout and "3 unreadable" in proc.stdout


def test_missing_split_file_and_label_typo(tmp_path, cli, ucf):
    broken = tmp_path / "ucf"
    broken.mkdir()
    for item in ucf.iterdir():
        if item.name != "testlist01.txt":
            (broken / item.name).symlink_to(item)
    proc = cli("check-data", str(broken), "-q")
    assert proc.returncode == 2 and "testlist01.txt not found" in proc.stderr
    (broken / "testlist01.txt").write_text("down/down_00.mp4\nWalking/v_1.mp4\n")
    proc = cli("check-data", str(broken), "-q")
    assert proc.returncode == 2 and "testlist01.txt:2: class 'Walking' is not in" in proc.stderr


def test_head_mismatch_without_swap_is_an_error(tmp_path, cli, videos, vpn_checkpoint):
    proc = cli(
        "train",
        "--data",
        str(videos),
        "--init",
        str(vpn_checkpoint),
        "--keep-head",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "x"),
        *SMALL_NET,
    )
    assert proc.returncode == 2 and "class counts differ" in proc.stderr and "Traceback" not in proc.stderr


def test_config_file_overrides_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: r2p1d18}\noptim: {lr: 0.5, milestones: [3, 6]}\ntrain: {epochs: 4}\n")
    config = load_config(path, {"train.epochs": 9}, ["optim.lr=0.01", "data.size=64"], task="pretrain")
    assert (config.model.name, config.optim.lr, config.train.epochs, config.data.size) == ("r2p1d18", 0.01, 9, 64)
    assert config.optim.milestones == [3, 6]
    for bad, message in [
        ("optim.lr=fast", "optim.lr value 'fast' is not a number .base learning rate"),
        ("optim.speed=1", "unknown config field 'optim.speed'; valid fields in optim: optim.name"),
        ("train.amp=fp8", "train.amp 'fp8' must be one of auto, off, bf16, fp16 .mixed precision"),
        ("data.frames=0", "data.frames 0 must be >= 1 .frames per clip"),
        ("optim.lr=inf", "optim.lr inf must be a finite number"),
        ("data.data=x.csv", "config key data.data was renamed to data.path"),
        ("synthetic.val_videos=0", "synthetic.val_videos 0 must be >= 1"),
        ("data.scale_min=1.5", r"data.scale_min 1.5 must be in \(0, 1\]"),
        ("data.fold=5", r"data.fold 5 must be below folds \(5\)"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, None, [bad], task="pretrain")
    path.write_text("data: {data: videos/}\n")
    with pytest.raises(ConfigError, match="data.data was renamed to data.path"):
        load_config(path, task="train")
    with pytest.raises(ConfigError, match="data.path is not set: give --data"):
        Trainer(load_config(None, None, [], task="train"))


class FlakyTrainer(Trainer):
    """Reports a non-finite gradient ``failures`` times at global step 2 (a kernel that fails now and then)."""

    failures = 1

    def _forward_backward(self, inputs, labels, boundary, accum, generator):
        logits, loss, problem = super()._forward_backward(inputs, labels, boundary, accum, generator)
        if self.position["global_step"] == 2 and self.failures > 0:
            self.failures -= 1
            return logits, loss, "non-finite gradient"
        return logits, loss, problem


def test_nonfinite_step_is_retried_exactly_or_skipped(tmp_path):
    Trainer(_config(tmp_path, "clean")).fit()
    FlakyTrainer(_config(tmp_path, "retried")).fit()
    a, b = final_weights(tmp_path / "clean"), final_weights(tmp_path / "retried")
    assert all(torch.equal(a[k], b[k]) for k in a)  # a successful retry changes nothing
    assert metrics(tmp_path / "retried")[0]["retried_steps"] == 1
    assert metrics(tmp_path / "retried")[0]["nonfinite_steps"] == 0
    stubborn = FlakyTrainer(_config(tmp_path, "skipped"))
    stubborn.failures = 3  # the first attempt and both retries fail: the step is skipped
    stubborn.fit()
    first = metrics(tmp_path / "skipped")[0]
    assert first["nonfinite_steps"] == 1 and first["retried_steps"] == 2


def test_epoch_batches_train_and_eval_modes():
    from videoperlin.train.sampler import EpochBatches

    train = [EpochBatches(21, 4, seed=3, rank=r, world_size=2) for r in range(2)]
    assert [len(t) for t in train] == [3, 3]  # 11 per rank (wrapped): 2 full batches + 3 left; never a batch of 1
    assert sorted(i for t in train for b in t.batches(0) for i in b) != list(range(21))  # shuffled + padded
    assert train[0].indices(0).tolist() != train[0].indices(1).tolist()  # a new order every epoch
    single = EpochBatches(9, 4, seed=0)
    assert [len(b) for b in single.batches(0)] == [4, 4]  # the final single sample is dropped in training
    evaluation = [EpochBatches(21, 2, train=False, rank=r, world_size=2) for r in range(2)]
    seen = sorted(i for e in evaluation for b in e.batches(0) for i in b)
    assert seen == list(range(21))  # every validation video exactly once, the odd one included


def _as_old_checkpoint(source: Path, target: Path) -> None:
    """Rewrite a checkpoint the way commit ff11988 stored it: config keys data.data/data.val_data, no
    data.mean/std, no model in_channels, synthetic.preset beside explicit lists."""
    checkpoint = torch.load(source, weights_only=True)
    data = checkpoint["config"]["data"]
    data["data"], data["val_data"] = data.pop("path"), data.pop("val_path")
    del (
        data["mean"],
        data["std"],
        checkpoint["config"]["model"]["in_channels"],
        checkpoint["model_config"]["in_channels"],
    )
    checkpoint["config"]["synthetic"].update(preset="low", fx=[1, 4], fy=[1, 4], ft=[1, 4])
    torch.save(checkpoint, target)


def test_old_run_directories_still_load(tmp_path, cli, videos):
    run = tmp_path / "run"
    proc = cli(
        "train",
        "--data",
        str(videos),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--set",
        "data.val_fraction=0.25",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(run),
        *SMALL_NET,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("best.pt", "last.pt"):
        _as_old_checkpoint(run / "checkpoints" / name, run / "checkpoints" / name)
    proc = cli("evaluate", "--checkpoint", str(run / "checkpoints" / "best.pt"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "eval-val" / "metrics.json").read_text())["videos"] == metrics(run)[0]["val_videos"]
    proc = cli(
        "train",
        "--data",
        str(videos),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--set",
        "data.val_fraction=0.25",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--out",
        str(run),
        "--resume",
        "--accept-changes",  # two epochs where the run had one
        *SMALL_NET,
    )
    assert proc.returncode == 0, proc.stderr  # the stored model config compares equal once normalised
    assert [r["epoch"] for r in metrics(run)] == [1, 2]
    assert metrics(run)[1]["changed_settings"] == {
        "train.epochs": [1, 2]
    }  # synthetic.* is not used by a real-video run


def test_every_run_writes_tensorboard_events_and_a_curves_figure(tmp_path, cli):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cli(
        "pretrain", "--model", "r3d10", "--widen-factor", "0.125", "--frames", "8", "--size", "32",
        "--num-videos", "8", "--set", "synthetic.val_videos=4", "--batch-size", "4", "--epochs", "2", "--amp", "off",
        "--out", tmp_path / "run", "-q", check=True,
    )  # fmt: skip
    events = EventAccumulator(str(tmp_path / "run/tensorboard"))
    events.Reload()
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    for metric in ("train_loss", "val_acc", "lr"):
        scalars = events.Scalars(metric)
        assert [s.step for s in scalars] == [r["epoch"] for r in records]
        assert [s.value for s in scalars] == pytest.approx([r[metric] for r in records], rel=1e-6)
    assert (tmp_path / "run/figures/curves.png").stat().st_size > 5000


def test_a_killed_writers_temporary_is_swept_on_resume_and_a_live_ones_kept(tmp_path, cli):
    """kill -9 during a checkpoint write leaves checkpoints/.last.pt.tmp-PID-...: the next run in that
    directory removes it when PID is gone, and never a file a live process is writing."""
    args = ["pretrain", "--model", "r3d10", "--widen-factor", "0.125", "--frames", "8", "--size", "32",
            "--num-videos", "8", "--set", "synthetic.val_videos=4", "--batch-size", "4", "--amp", "off",
            "--out", tmp_path / "run", "-q"]  # fmt: skip
    cli(*args, "--epochs", "1", check=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    checkpoints = tmp_path / "run" / "checkpoints"
    stale = checkpoints / f".last.pt.tmp-{dead.pid}-deadbeef"
    live = checkpoints / f".best.pt.tmp-{os.getppid()}-cafebabe"  # our parent: alive
    for path in (stale, live):
        path.write_bytes(b"0" * 1000)
    cli(*args, "--epochs", "2", "--resume", "--accept-changes", check=True)
    assert not stale.exists() and live.exists()
