"""CUDA code paths (``pytest -m gpu``; CI is CPU-only): counter-based VPN draws on the device, the training
engine with fp32 / bf16 / fp16 + grad scaler, exact resume on CUDA, and NCCL DDP through torchrun.

Kernel agreement CPU vs CUDA (static and drifting noise, ``ds.batch``) is in test_noise.py and
test_dataset.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import final_weights, metrics

from videoperlin.train.checkpointing import load_checkpoint
from videoperlin.train.config import load_config
from videoperlin.train.engine import Trainer
from videoperlin.vpn import SyntheticDataset, frequency_preset

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("preset", ["low", "high", "motion"])
def test_counter_draws_on_cuda_equal_the_cpu(preset):
    """rng=counter draws on the render device: integer hashing is exact, so only the float kernel differs."""
    ds = SyntheticDataset(frequency_preset(preset), num_videos=10_000, frames=16, size=64, seed=7, rng="counter")
    indices = [3, 9_999, 120, 4_567, 0, 77, 1_024, 5_000]
    cpu, cpu_labels = ds.batch(indices)
    gpu, gpu_labels = ds.batch(indices, device="cuda")
    assert gpu.is_cuda and torch.equal(gpu_labels.cpu(), cpu_labels)
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)


def _config(tmp_path: Path, out: str, **extra):
    overrides = {
        "train.out": str(tmp_path / out),
        "model.name": "r3d10",
        "model.widen_factor": 0.5,
        "data.frames": 8,
        "data.size": 64,
        "train.epochs": 2,
        "train.batch_size": 16,
        "synthetic.preset": "tiny",
        "synthetic.num_videos": 128,
        "synthetic.val_videos": 32,
        "train.progress": False,
        **extra,
    }
    return load_config(None, overrides, task="pretrain")


@pytest.mark.parametrize("amp, rng", [("off", "generator"), ("bf16", "counter"), ("fp16", "generator")])
def test_pretrain_on_cuda(tmp_path, amp, rng):
    """Every precision trains on CUDA with finite losses; fp16 uses and saves a grad scaler."""
    trainer = Trainer(_config(tmp_path, "run", **{"train.amp": amp, "synthetic.rng": rng, "train.channels_last": True}))
    assert trainer.device.type == "cuda"
    trainer.fit()
    rows = metrics(tmp_path / "run")
    assert len(rows) == 2 and all(r["nonfinite_steps"] == 0 and r["train_loss"] == r["train_loss"] for r in rows)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert (checkpoint["scaler"] is not None) == (amp == "fp16")
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_resume_on_cuda_is_exact(tmp_path):
    """train.deterministic on CUDA: a run stopped and resumed ends bit-identical to an uninterrupted one.
    (No max-pool: max_pool3d's CUDA backward has no deterministic implementation.)"""
    extra = {"train.deterministic": True, "train.amp": "off", "model.no_max_pool": True, "model.dropout": 0.2}
    Trainer(_config(tmp_path, "whole", **extra)).fit()
    Trainer(_config(tmp_path, "resumed", **extra, **{"train.max_steps": 5})).fit()
    Trainer(_config(tmp_path, "resumed", **extra), resume=True).fit()
    a, b = final_weights(tmp_path / "whole"), final_weights(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_nccl_through_torchrun(tmp_path):
    """One NCCL rank per GPU present (NCCL refuses two ranks on one device)."""
    ranks = torch.cuda.device_count()
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(ranks),
        "-m",
        "videoperlin",
        "pretrain",
        "--preset",
        "tiny",
        "--num-videos",
        str(32 * ranks),
        "--set",
        "synthetic.val_videos=8",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--model",
        "r3d10",
        "--widen-factor",
        "0.25",
        "--frames",
        "8",
        "--size",
        "48",
        "--out",
        str(out),
        "-q",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = metrics(out)[0]
    assert row["step"] == 8 and row["val_videos"] == 8
