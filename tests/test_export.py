"""Export to disk: layout, manifest, exact npy, mp4 quality, resume after kill -9, shards, CLI errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from videoperlin.errors import ConfigError
from videoperlin.utils.atomic import is_temp_file
from videoperlin.vpn import SyntheticDataset, frequency_preset
from videoperlin.vpn.export import export_dataset, load_exported_dataset, manifest_columns, parse_shard
from videoperlin.vpn.families.perlin import PerlinOptions


def tiny_ds(num_videos=12, **kw) -> SyntheticDataset:
    return SyntheticDataset(frequency_preset("tiny"), num_videos=num_videos, frames=8, size=32, seed=1, **kw)


def decode_gray(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])


def read_manifest(root: Path) -> list[dict]:
    with open(root / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_npy_export_is_exact_and_laid_out_by_class(tmp_path):
    ds = tiny_ds()
    summary = export_dataset(ds, tmp_path, fmt="npy", progress=False)
    assert summary.written == 12 and summary.manifest_written
    rows = read_manifest(tmp_path)
    assert list(rows[0]) == ["index", "label", "class_name", "fx", "fy", "ft", "file"] and len(rows) == 12
    assert manifest_columns(ds.space) == tuple(rows[0])
    for row in rows:
        index = int(row["index"])
        assert row["file"] == f"{ds.space.name(ds.label(index))}/{index:08d}.npy"
        assert (int(row["fx"]), int(row["fy"]), int(row["ft"])) == ds.family.frequencies(int(row["label"]))
        stored = np.load(tmp_path / row["file"])
        assert stored.dtype == np.uint8 and stored.shape == (8, 32, 32)
        np.testing.assert_array_equal(stored, np.rint(ds[index][0][0].numpy() * 255).astype(np.uint8))
    spec = json.loads((tmp_path / "dataset.json").read_text())
    assert SyntheticDataset.from_dict(spec["synthetic"]).to_dict() == ds.to_dict() and "videoperlin_version" in spec
    assert set(spec["synthetic"]) == {
        "family",
        "label_space",
        "num_videos",
        "frames",
        "size",
        "seed",
        *PerlinOptions.names(),
    }


def test_npy_float32_is_bit_exact(tmp_path):
    ds = tiny_ds(num_videos=3)
    export_dataset(ds, tmp_path, fmt="npy", npy_dtype="float32", progress=False)
    stored = np.load(tmp_path / f"{ds.space.name(2)}/00000002.npy")
    np.testing.assert_array_equal(stored, ds[2][0][0].numpy())


def test_mp4_export_decodes_close_to_the_source(tmp_path):
    ds = tiny_ds(num_videos=4)
    export_dataset(ds, tmp_path, fmt="mp4", progress=False)
    for index in range(4):
        decoded = decode_gray(tmp_path / f"{ds.space.name(ds.label(index))}/{index:08d}.mp4").astype(np.float64)
        source = ds[index][0][0].numpy() * 255
        assert decoded.shape == source.shape
        assert np.abs(decoded - source).mean() < 1.5  # CRF 10 is visually lossless (about 1 gray level)


def test_shards_partition_the_set_and_manifest_waits_for_all(tmp_path):
    ds = tiny_ds(num_videos=10)
    written = []
    for shard in range(3):
        assert not (tmp_path / "manifest.csv").exists()
        summary = export_dataset(ds, tmp_path, fmt="npy", shard=(shard, 3), progress=False)
        written.append(summary.written)
        assert summary.manifest_written == (shard == 2)
    assert written == [4, 3, 3]
    files = sorted(p for p in tmp_path.rglob("*.npy"))
    assert len(files) == 10 and len({p.name for p in files}) == 10
    assert len(read_manifest(tmp_path)) == 10


def test_rerun_skips_existing_and_refuses_other_settings(tmp_path):
    export_dataset(tiny_ds(), tmp_path, fmt="npy", progress=False)
    again = export_dataset(tiny_ds(), tmp_path, fmt="npy", progress=False)
    assert again.written == 0 and again.skipped == 12
    with pytest.raises(ConfigError, match=r"differs in synthetic.seed 1 -> 2"):
        export_dataset(
            SyntheticDataset(frequency_preset("tiny"), num_videos=12, frames=8, size=32, seed=2),
            tmp_path,
            fmt="npy",
            progress=False,
        )


def test_parse_shard():
    assert parse_shard("2/5") == (2, 5)
    for bad in ("3/2", "5", "a/b", "-1/2", "0/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


@pytest.mark.slow  # a generate process killed mid-write, then resumed
def test_resume_after_kill_9_completes_without_duplicates_or_corrupt_files(tmp_path):
    out = tmp_path / "vpn"
    args = [
        sys.executable,
        "-m",
        "videoperlin",
        "generate",
        "--preset",
        "tiny",
        "--num-videos",
        "240",
        "--frames",
        "16",
        "--size",
        "64",
        "--out",
        str(out),
        "--format",
        "mp4",
        "--batch-size",
        "8",
        "-q",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.mp4"))) < 20 and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = list(out.rglob("*.mp4"))
    assert 0 < len(partial) < 240, "the run must be killed part-way for this test to mean anything"
    assert not (out / "manifest.csv").exists()
    subprocess.run(args, check=True, capture_output=True)
    videos = sorted(out.rglob("*.mp4"))
    assert len(videos) == 240 and not [p for p in out.rglob("*") if is_temp_file(p)]
    assert {p.stem for p in videos} == {f"{i:08d}" for i in range(240)}
    for path in videos:  # every file decodes to a whole clip
        assert decode_gray(path).shape == (16, 64, 64)
    assert len(read_manifest(out)) == 240


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--fx", "0,2", "--fy", "1", "--ft", "1"], "fx frequency 0"),
        (["--fx", "-1", "--fy", "1", "--ft", "1"], "fx frequency -1"),
        (["--fx", "1.5", "--fy", "1", "--ft", "1"], "'1.5' is not an integer"),
        (["--fx", "1", "--fy", "1", "--ft", "40"], "ft 40 means 40 lattice cells on an axis of 16 frames"),
        (
            ["--preset", "medium"],
            "preset 'medium' is not a preset of family perlin; its presets: low, high, wide, tiny",
        ),
        (
            ["--preset", "tiny", "--fx", "1,2", "--fy", "1", "--ft", "1"],
            "give only one of preset, the perlin axis lists (fx, fy, ft, direction, speed) or labels",
        ),
        (["--preset", "tiny", "--contrast-jitter", "1.5"], "contrast_jitter 1.5 must be in [0, 1)"),
        (["--preset", "tiny", "--octaves", "two"], "value 'two' is not an integer"),
        (["--preset", "tiny", "--label-mode", "random"], "--label-mode: 'random' must be one of class, shuffled"),
        (["--preset", "tiny", "--shard", "3/2"], "--shard 3/2"),
        (["--preset", "tiny", "--crf", "-5"], "--crf: -5 must be from 0 to 51"),
        (["--preset", "tiny", "--crf", "99"], "--crf: 99 must be from 0 to 51"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, cli, extra, message):
    proc = cli("generate", *extra, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_unwritable_out(tmp_path, cli):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = cli("generate", "--preset", "tiny", "--out", str(blocker / "sub"))
    assert proc.returncode == 2 and "--out" in proc.stderr and str(blocker) in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_generate_and_preview(tmp_path, cli):
    proc = cli(
        "generate",
        "--preset",
        "tiny",
        "--num-videos",
        "8",
        "--frames",
        "8",
        "--size",
        "32",
        "--out",
        str(tmp_path / "d"),
        "--format",
        "npy",
        "-q",
        check=True,
    )
    assert "wrote 8" in proc.stdout and (tmp_path / "d" / "manifest.csv").exists()
    cli(
        "preview",
        "--preset",
        "low",
        "--frames",
        "8",
        "--size",
        "32",
        "--out",
        str(tmp_path / "grid.png"),
        "--gif",
        check=True,
    )
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size[0] > 200 and grid.size[1] > 200
    gif = Image.open(tmp_path / "grid.gif")
    assert gif.n_frames == 8


# A dataset.json exactly as the code before PerlinOptions wrote it (commit ff11988: `videoperlin generate --preset tiny
# --num-videos 12 --frames 8 --size 32 --format npy`); later versions must keep reading and resuming it.
OLD_DATASET_JSON = {  # written by 0.1: the clip record under "vpn", label_mode "frequency"
    "vpn": {
        "label_space": {"fx": [1, 4], "fy": [1, 4], "ft": [1, 4]},
        "num_videos": 12,
        "frames": 8,
        "size": [32, 32],
        "seed": 0,
        "octaves": 1,
        "persistence": 0.5,
        "lacunarity": 2.0,
        "tileable": False,
        "random_phase": True,
        "contrast_jitter": 0.25,
        "brightness_jitter": 0.1,
        "label_mode": "frequency",
    },
    "format": "npy",
    "npy_dtype": "uint8",
    "crf": None,
    "fps": None,
    "layout": "<class_name>/<index:08d>.<ext>",
    "class_names": [
        "x001_y001_t01",
        "x001_y001_t04",
        "x001_y004_t01",
        "x001_y004_t04",
        "x004_y001_t01",
        "x004_y001_t04",
        "x004_y004_t01",
        "x004_y004_t04",
    ],
    "videoperlin_version": "0.1.0",
}


def test_old_dataset_json_still_loads_and_resumes(tmp_path, cli):
    record = json.loads(json.dumps(OLD_DATASET_JSON))
    (tmp_path / "dataset.json").write_text(json.dumps(record))
    assert load_exported_dataset(tmp_path).options.label_mode == "class"  # 'frequency' before 0.4
    del record["vpn"]["label_mode"]  # a record from before an option existed gets the option's default
    (tmp_path / "dataset.json").write_text(json.dumps(record))
    ds = load_exported_dataset(tmp_path)
    assert ds.options == PerlinOptions() and len(ds) == 12 and ds.space == frequency_preset("tiny")
    proc = cli(
        "generate",
        "--preset",
        "tiny",
        "--num-videos",
        "12",
        "--frames",
        "8",
        "--size",
        "32",
        "--format",
        "npy",
        "--out",
        str(tmp_path),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr  # the same settings resume into the old folder
    assert len(read_manifest(tmp_path)) == 12
    proc = cli(
        "generate",
        "--preset",
        "tiny",
        "--num-videos",
        "12",
        "--frames",
        "8",
        "--size",
        "32",
        "--format",
        "npy",
        "--octaves",
        "2",
        "--out",
        str(tmp_path),
        "-q",
    )
    assert proc.returncode == 2 and "differs in synthetic.octaves 1 -> 2" in proc.stderr
