"""Dataset sources, splits, sampling and transforms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from video_fixtures import CLASSES, pattern_video, write_class_folders

from videoperlin.data.decode import FrameCache, decode_video
from videoperlin.data.encode import encode_video
from videoperlin.data.sampling import random_clip, sliding_windows
from videoperlin.data.sources import load_catalog
from videoperlin.data.splits import split_train_val
from videoperlin.data.transforms import eval_transform, random_resized_crop_box, to_clip_tensor, train_transform
from videoperlin.errors import DataError


def _touch_video(path, seed=0, frames=12):
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(path, pattern_video("down", seed, frames=frames, height=32, width=48))


def test_decode_resizes_short_side_and_cache_round_trips(tmp_path):
    _touch_video(tmp_path / "a.mp4", frames=10)
    frames = decode_video(tmp_path / "a.mp4", short_side=16)
    assert frames.shape == (10, 16, 24, 3) and frames.dtype == np.uint8
    cache = FrameCache(tmp_path / "cache", short_side=16)
    first = cache.load(tmp_path / "a.mp4")
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 1
    np.testing.assert_array_equal(cache.load(tmp_path / "a.mp4"), first)


def test_csv_manifest_with_dataset_filter_and_group_folds(tmp_path):
    rows = ["dataset,path,label,group"]
    for actor in ("ann", "bob", "cid"):
        for label in ("walk", "run"):
            _touch_video(tmp_path / f"v/{actor}_{label}.mp4")
            rows.append(f"mine,v/{actor}_{label}.mp4,{label},{actor}")
    rows.append("other,v/ann_walk.mp4,walk,ann")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    source = load_catalog(tmp_path / "manifest.csv", dataset="mine")
    assert source.class_names == ["run", "walk"] and len(source.records) == 6
    for fold in range(3):
        train, val = split_train_val(source, fold=fold, folds=3)
        assert {r.group for r in train}.isdisjoint({r.group for r in val}) and len(val) == 2
    with pytest.raises(DataError, match="no rows with dataset='nope'"):
        load_catalog(tmp_path / "manifest.csv", dataset="nope")


def test_hmdb51_split_files(tmp_path):
    for kind in ("brush_hair", "cartwheel"):
        for i in range(3):
            _touch_video(tmp_path / kind / f"{kind}_{i}.avi")
        (tmp_path / f"{kind}_test_split1.txt").write_text(f"{kind}_0.avi 1\n{kind}_1.avi 2\n{kind}_2.avi 0\n")
    source = load_catalog(tmp_path, split=1)
    assert source.kind == "hmdb51" and source.class_names == ["brush_hair", "cartwheel"]
    train, val = split_train_val(source)
    assert sorted(r.path.name for r in train) == ["brush_hair_0.avi", "cartwheel_0.avi"]
    assert sorted(r.path.name for r in val) == ["brush_hair_1.avi", "cartwheel_1.avi"]


def test_kinetics_csv(tmp_path):
    _touch_video(tmp_path / "abseiling" / "abc123_000010_000020.mp4")
    _touch_video(tmp_path / "val" / "juggling" / "xyz789_000001_000011.mp4")
    (tmp_path / "k.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nabseiling,abc123,10,20,train\n"
        "juggling,xyz789,1,11,val\njuggling,missing,3,13,train\n"
    )
    source = load_catalog(tmp_path / "k.csv")
    assert source.kind == "kinetics" and source.class_names == ["abseiling", "juggling"]
    assert [r.subset for r in source.records] == ["train", "val"] and len(source.missing) == 1


def test_activitynet_json(tmp_path):
    _touch_video(tmp_path / "videos" / "v_vid1.mp4", frames=30)
    spec = {
        "labels": ["jump", "swim"],
        "database": {
            "vid1": {
                "subset": "training",
                "annotations": [{"label": "swim", "segment": [0.1, 0.5]}, {"label": "jump", "segment": [0.6, 1.0]}],
            }
        },
    }
    (tmp_path / "anet.json").write_text(json.dumps(spec))
    source = load_catalog(tmp_path / "anet.json")
    assert [(r.label, r.segment, r.subset) for r in source.records] == [
        (1, (0.1, 0.5), "train"),
        (0, (0.6, 1.0), "train"),
    ]


def test_class_folders_and_empty_data(tmp_path):
    for kind in CLASSES:
        _touch_video(tmp_path / "d" / kind / "x.mp4")
    assert load_catalog(tmp_path / "d").class_names == sorted(CLASSES)
    (tmp_path / "e" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no videos found"):
        load_catalog(tmp_path / "e")
    with pytest.raises(DataError, match="does not exist"):
        load_catalog(tmp_path / "nope")


def test_temporal_sampling_loop_pads_and_windows():
    rng = np.random.default_rng(0)
    assert random_clip(5, 8, 1, rng).tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    clip = random_clip(100, 16, 2, rng)
    assert len(clip) == 16 and np.all(np.diff(clip) == 2) and clip.max() < 100
    windows = sliding_windows(40, 16, 1)
    assert [w[0] for w in windows] == [0, 16] and len(sliding_windows(10, 16, 1)) == 1
    assert len(sliding_windows(1000, 16, 1, max_windows=5)) == 5


def test_crops_stay_inside_and_transforms_shape():
    rng = np.random.default_rng(1)
    for _ in range(100):
        top, left, h, w = random_resized_crop_box(90, 120, rng)
        assert 0 <= top and top + h <= 90 and 0 <= left and left + w <= 120
        assert 0.2 <= h * w / (90 * 120) <= 1.0 and 0.7 <= w / h <= 1.4
    frames = pattern_video("right", 0, frames=8, height=48, width=64)
    clip = train_transform(frames, 32, rng)
    assert clip.shape == (3, 8, 32, 32) and 0 <= clip.min() and clip.max() <= 1
    assert eval_transform(frames, 32).shape == (3, 8, 32, 32)


def test_hmdb51_class_names_that_prefix_others(tmp_path):
    """'climb' and 'climb_stairs': the split files sort in the other order than the names (a bug that
    swapped their labels and looked for videos in the wrong folders)."""
    for kind in ("climb", "climb_stairs", "kick", "kick_ball"):
        _touch_video(tmp_path / kind / f"{kind}_0.avi")
        (tmp_path / f"{kind}_test_split1.txt").write_text(f"{kind}_0.avi 1\n{kind}_1.avi 2\n")
    catalog = load_catalog(tmp_path, split=1)
    assert catalog.class_names == ["climb", "climb_stairs", "kick", "kick_ball"]
    assert all(catalog.class_names[r.label] == r.path.parent.name for r in catalog.records)
    assert len(catalog.records) == 4 and len(catalog.missing) == 4  # the *_1.avi test videos are not on disk


# ---- the real annotation files (../shared/data/annotations), with a few videos made for listed entries --

ANNOTATIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "annotations"
needs_annotations = pytest.mark.skipif(
    not ANNOTATIONS.is_dir(), reason=f"official annotation files not at {ANNOTATIONS}"
)


@needs_annotations
def test_ucf101_official_split_files_on_a_partial_download(tmp_path, cli):
    lines = (ANNOTATIONS / "ucf101" / "trainlist01.txt").read_bytes().decode().splitlines(keepends=True)
    assert lines[0].endswith("\r\n")  # as released: CRLF
    tests = (ANNOTATIONS / "ucf101" / "testlist01.txt").read_text().split()
    wanted = {"Archery": 3, "Basketball": 2, "YoYo": 2}  # three of the 101 classes, a few videos each
    made = []
    for name, count in wanted.items():
        made += [line.split()[0] for line in lines if line.startswith(f"{name}/")][:count]
        made += [t for t in tests if t.startswith(f"{name}/")][:1]
    for relative in made:
        _touch_video(tmp_path / relative, frames=20)
    _touch_video(tmp_path / "YoYo" / "v_YoYo_g99_c99.avi", frames=12)  # on disk, not listed; too short anyway
    catalog = load_catalog(tmp_path, split=1, splits_dir=ANNOTATIONS / "ucf101")
    assert catalog.kind == "ucf101" and catalog.listed_classes == 101
    assert catalog.class_names == ["Archery", "Basketball", "YoYo"]  # classInd order, present classes only
    assert {(catalog.class_names[r.label], r.subset) for r in catalog.records} >= {
        ("YoYo", "val"),
        ("Archery", "train"),
    }
    assert all(r.path.parent.name == catalog.class_names[r.label] for r in catalog.records)
    assert len(catalog.records) == len(made) and catalog.unlisted == 1
    assert len(catalog.missing) == 9537 + 3783 - len(made)  # every listed clip of split 1 is either here or missing
    proc = cli("check-data", str(tmp_path), "--splits-dir", str(ANNOTATIONS / "ucf101"), "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ucf101: 3 of 101 classes present" in proc.stdout and "Archery" in proc.stdout and "OK" in proc.stdout


@needs_annotations
def test_kinetics400_official_val_csv_with_a_few_clips(tmp_path):
    import csv as csv_module

    (tmp_path / "kinetics-400_val.csv").write_bytes((ANNOTATIONS / "kinetics400" / "kinetics-400_val.csv").read_bytes())
    with open(tmp_path / "kinetics-400_val.csv", newline="") as handle:
        rows = list(csv_module.DictReader(handle))
    assert len(rows) == 19906 and "is_cc" in rows[0]
    picked = [rows[0], rows[1], rows[5000], rows[19905]]
    for r in picked:
        name = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
        _touch_video(tmp_path / "val" / r["label"] / name)
    catalog = load_catalog(tmp_path / "kinetics-400_val.csv")
    assert catalog.kind == "kinetics" and len(catalog.records) == 4 and catalog.listed_classes == 400
    assert catalog.class_names == sorted({r["label"] for r in picked})
    assert all(r.subset == "val" and catalog.class_names[r.label] == r.path.parent.name for r in catalog.records)
    assert len(catalog.missing) == 19906 - 4


@needs_annotations
def test_hmdb51_official_split_files_on_a_jhmdb_like_subset(tmp_path):
    splits = ANNOTATIONS / "hmdb51"
    for kind in ("climb_stairs", "kick_ball", "wave"):
        listed = [
            line.split() for line in (splits / f"{kind}_test_split1.txt").read_text().splitlines() if line.strip()
        ]
        for video, _flag in [next(v for v in listed if v[1] == "1"), next(v for v in listed if v[1] == "2")]:
            _touch_video(tmp_path / kind / video)
    catalog = load_catalog(tmp_path, split=1, splits_dir=splits)
    assert catalog.class_names == ["climb_stairs", "kick_ball", "wave"] and catalog.listed_classes == 51
    train, val = split_train_val(catalog)
    assert len(train) == len(val) == 3 and {r.label for r in train} == {r.label for r in val} == {0, 1, 2}


@pytest.mark.parametrize(
    "body, message",
    [
        ("a.mp4,walk\na.mp4,walk\n", "a.mp4 is listed again .first on line 2.; a duplicate could put"),
        ("a.mp4,\n", ":2: empty label"),
        ("a.mp4,walk,extra\n", ":2: 3 fields where the header has 2"),
        ("a.mp4\n", ":2: 1 fields where the header has 2"),
    ],
)
def test_manifest_rows_are_checked_with_file_and_line(tmp_path, body, message):
    (tmp_path / "m.csv").write_text("path,label\n" + body)
    with pytest.raises(DataError, match=message):
        load_catalog(tmp_path / "m.csv")


@pytest.mark.parametrize("shape", [(8, 100, 130), (4, 37, 61), (4, 224, 300)])  # up, odd, down
def test_clips_resized_in_uint8_stay_within_a_gray_level_of_the_float_resize(shape):
    import torch
    import torch.nn.functional as F

    frames = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    clip = to_clip_tensor(frames, (112, 112))
    reference = F.interpolate(
        torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255, size=(112, 112), mode="bilinear", antialias=True
    ).clamp(0, 1)
    assert clip.shape == (3, shape[0], 112, 112) and clip.dtype == torch.float32
    error = (clip - reference.permute(1, 0, 2, 3)).abs() * 255  # in gray levels
    assert error.max() <= 1.1 and error.mean() <= 0.35, (error.max(), error.mean())  # rounding to uint8: mean 1/4
    mirrored_first = to_clip_tensor(np.ascontiguousarray(frames[:, :, ::-1]), (112, 112))
    assert torch.equal(to_clip_tensor(frames, (112, 112), flip=True), mirrored_first)  # flipped after the resize


def test_the_frame_cache_stays_within_its_limit_evicting_the_least_recently_used(tmp_path):
    videos = sorted(write_class_folders(tmp_path / "videos", per_class=3, frames=12))
    one = FrameCache(tmp_path / "probe", 32)
    one.load(videos[0])
    entry = one.size()  # bytes of one video's frames
    cache = FrameCache(tmp_path / "cache", 32, limit_bytes=int(3.5 * entry))
    for video in videos:  # nine videos through a cache that holds three and a half
        frames = cache.load(video)
        assert np.array_equal(frames, decode_video(video, 32))
        assert cache.size() <= cache.limit
    kept = {path for _, _, path in cache.entries()}
    assert len(kept) == 3 and cache._key(videos[-1]) in kept and cache._key(videos[0]) not in kept
    cache.load(videos[-3])  # a hit: now the most recently used
    cache.load(videos[0])  # a miss: someone must go, not the one just used
    assert cache._key(videos[-3]) in {path for _, _, path in cache.entries()}
    assert "GiB of" in cache.describe()


def test_a_training_run_over_more_video_than_the_cache_limit_keeps_the_cache_at_it(tmp_path, cli):
    write_class_folders(tmp_path / "videos", per_class=4, frames=12)
    limit_gb = 5 * 12 * 32 * 42 * 3 / 2**30  # about five of the twelve videos' frames
    proc = cli(
        "train", "--data", tmp_path / "videos", "--model", "r3d10", "--widen-factor", "0.125", "--frames", "8",
        "--size", "32", "--set", "data.short_side=32", "--epochs", "1", "--batch-size", "4", "--amp", "off",
        "--set", f"data.cache_limit_gb={limit_gb}", "--cache-dir", tmp_path / "cache", "--workers", "0",
        "--out", tmp_path / "run", check=True,
    )  # fmt: skip
    total = sum(p.stat().st_size for p in (tmp_path / "cache").glob("*/*.npy"))
    assert 0 < total <= limit_gb * 2**30
    assert "frame cache" in proc.stderr and "GiB of" in proc.stderr


def test_a_new_dataset_format_is_one_registered_loader(tmp_path, monkeypatch):
    """A layout is detect + load in the registry: registered, it is found before the class-folder catch-all,
    and a path no format reads is refused naming every layout, the new one included."""
    from videoperlin.data import sources

    monkeypatch.setattr(sources, "FORMATS", list(sources.FORMATS))
    write_class_folders(tmp_path / "clips", per_class=2, frames=4)
    (tmp_path / "clips" / "LIST.txt").write_text("every video, one class\n")

    def load(request):
        videos = sorted(request.root.rglob("*.mp4"))
        return sources.VideoCatalog([sources.VideoRecord(v, 0) for v in videos], ["all"], "one-class")

    fmt = sources.DatasetFormat("one-class", "a folder with LIST.txt", lambda r: (r.root / "LIST.txt").is_file(), load)
    sources.register_format(fmt)
    assert [f.name for f in sources.FORMATS][-2:] == ["one-class", "folders"]
    catalog = sources.load_catalog(tmp_path / "clips")
    assert catalog.kind == "one-class" and catalog.class_names == ["all"] and len(catalog.records) == 2 * len(CLASSES)
    (tmp_path / "notes.txt").write_text("not data")
    with pytest.raises(
        DataError, match="not a layout videoperlin reads; give a UCF-101 root .* a folder with LIST.txt"
    ):
        sources.load_catalog(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="already registered"):
        sources.register_format(fmt)
