"""``videoperlin prepare``: a re-encoded copy at the training resolution that every reader takes unchanged."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
from pathlib import Path

import pytest
from helpers import one_line_error
from video_fixtures import CLASSES, pattern_video, write_class_folders, write_ucf_splits

from videoperlin.data.decode import decode_video, video_fps
from videoperlin.data.encode import encode_video
from videoperlin.data.sources import load_catalog


@pytest.fixture(scope="module")
def ucf(tmp_path_factory) -> Path:
    """A UCF-101-style tree (48x64 videos, split files in the root) with one unreadable video."""
    root = tmp_path_factory.mktemp("ucf")
    write_class_folders(root, per_class=4, frames=16)
    write_ucf_splits(root, per_class=4)
    return root


def _counts(root: Path) -> list[tuple[str, int, int]]:
    catalog = load_catalog(root, split=1)
    return [
        (
            name,
            len([r for r in catalog.subset("train") if r.label == k]),
            len([r for r in catalog.subset("val") if r.label == k]),
        )
        for k, name in enumerate(catalog.class_names)
    ]


def test_prepare_keeps_the_layout_and_the_splits_at_the_new_short_side(tmp_path, cli, ucf):
    out = tmp_path / "copy"
    proc = cli("prepare", str(ucf), "--short-side", "32", "--out", str(out), "--workers", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "12 videos (12 prepared now, 0 already there, 0 unreadable" in proc.stdout
    assert _counts(out) == _counts(ucf) and len(_counts(out)) == len(CLASSES)  # split files copied, every reader works
    assert (out / "classInd.txt").read_bytes() == (ucf / "classInd.txt").read_bytes()
    original, copy = (decode_video(r / "down" / "down_00.mp4", short_side=None) for r in (ucf, out))
    assert copy.shape == (16, 32, 42, 3) and original.shape == (16, 48, 64, 3)  # aspect kept, even sizes
    record = json.loads((out / "prepare.json").read_text())
    assert record["settings"] == {"short_side": 32, "fps": None, "crf": 23} and record["summary"]["prepared"] == 12
    assert 0 < record["summary"]["bytes_after"] < record["summary"]["bytes_before"]
    again = cli("prepare", str(ucf), "--short-side", "32", "--out", str(out), "--workers", "0", "-q")
    assert again.returncode == 0 and "(0 prepared now, 12 already there" in again.stdout, again.stdout


def test_an_interrupted_prepare_finishes_what_is_missing(tmp_path, cli, ucf):
    out = tmp_path / "copy"
    assert cli("prepare", str(ucf), "--short-side", "32", "--out", str(out), "--workers", "0", "-q").returncode == 0
    (out / "right" / "right_01.mp4").unlink()  # not written yet when the kill came
    (out / "right" / ".right_02.mp4.tmp-123-abcdef00").write_bytes(b"half a file")  # a temporary left by it
    proc = cli("prepare", str(ucf), "--short-side", "32", "--out", str(out), "--workers", "0", "-q")
    assert proc.returncode == 0 and "(1 prepared now, 11 already there" in proc.stdout, proc.stdout
    assert decode_video(out / "right" / "right_01.mp4", None).shape == (16, 32, 42, 3)


def test_unreadable_videos_are_reported_and_left_out(tmp_path, cli):
    root = tmp_path / "data"
    write_class_folders(root, per_class=2, frames=8)
    (root / "down" / "broken.mp4").write_bytes(b"not a video at all")
    proc = cli("prepare", str(root), "--short-side", "32", "--out", str(tmp_path / "copy"), "--workers", "0")
    assert proc.returncode == 1 and "1 unreadable and left out" in proc.stdout
    assert "unreadable, left out: down/broken.mp4" in proc.stdout and "broken.mp4" in proc.stderr
    assert (
        not (tmp_path / "copy" / "down" / "broken.mp4").exists()
        and (tmp_path / "copy" / "down" / "down_00.mp4").exists()
    )


def test_a_copy_never_mixes_settings_and_has_one_writer(tmp_path, cli, ucf):
    out = tmp_path / "copy"
    assert cli("prepare", str(ucf), "--short-side", "32", "--out", str(out), "--workers", "0", "-q").returncode == 0
    one_line_error(
        cli("prepare", str(ucf), "--short-side", "40", "--out", str(out), "-q"), str(out), "must not mix resolutions"
    )
    with open(out / ".prepare.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        one_line_error(
            cli("prepare", str(ucf), "--short-side", "32", "--out", str(out), "-q"), "another prepare is writing"
        )
    one_line_error(
        cli("prepare", str(ucf), "--short-side", "32", "--out", str(ucf / "inside"), "-q"), "inside the source"
    )
    one_line_error(
        cli("prepare", str(ucf), "--short-side", "32", "--crf", "60", "--out", str(out), "-q"),
        "--crf: 60 must be from 0 to 51",
    )


def test_a_manifest_is_prepared_with_its_digests_rewritten_and_frame_rate_capped(tmp_path, cli):
    root = tmp_path / "data"
    (root / "clips").mkdir(parents=True)
    rows = []
    for k, kind in enumerate(CLASSES):
        path = root / "clips" / f"{kind}.mp4"
        encode_video(path, pattern_video(kind, seed=k, frames=25), fps=25)
        rows.append({"path": f"clips/{kind}.mp4", "label": kind, "sha1": hashlib.sha1(path.read_bytes()).hexdigest()})
    with open(root / "m.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "sha1"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "copy"
    proc = cli("prepare", str(root / "m.csv"), "--short-side", "32", "--fps", "10", "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    for row in csv.DictReader(open(out / "m.csv")):
        video = out / row["path"]
        assert row["sha1"] == hashlib.sha1(video.read_bytes()).hexdigest()
        assert len(decode_video(video, None)) == 10 and video_fps(video) == pytest.approx(10)  # 1 s at 10 fps
    assert load_catalog(out / "m.csv").class_names == sorted(CLASSES)
    (root / "bad.csv").write_text("path,label\n../elsewhere.mp4,down\n")
    one_line_error(
        cli("prepare", str(root / "bad.csv"), "--short-side", "32", "--out", str(tmp_path / "c2"), "-q"),
        "bad.csv:2",
        "not inside the manifest's folder",
    )


def test_a_folder_of_links_to_class_folders_prepares_as_the_readers_read_it(tmp_path, cli, ucf):
    linked = tmp_path / "my_videos"
    linked.mkdir()
    for name in CLASSES:
        (linked / name).symlink_to(ucf / name, target_is_directory=True)
    (linked / "loop").symlink_to(linked, target_is_directory=True)  # a link back up is walked once
    out = tmp_path / "copy"
    proc = cli("prepare", str(linked), "--short-side", "32", "--out", str(out), "--workers", "0", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "12 videos (12 prepared now" in proc.stdout, proc.stdout
    assert len(load_catalog(out).records) == len(load_catalog(linked).records) == 12
    empty = tmp_path / "empty"
    (empty / "walk").mkdir(parents=True)
    one_line_error(
        cli("prepare", str(empty), "--short-side", "32", "--out", str(tmp_path / "none"), "-q"), str(empty), "no videos"
    )
