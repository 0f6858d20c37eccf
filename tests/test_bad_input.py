"""Bad input, by area: one probe per case the hardening reviews found, and the kinds of case they stand for.

Every probe of a command asserts exit status 2, exactly one error line on stderr (after any log
records), no traceback, and that the message names the file, field or value at fault; probes of runs that used to exit 0 with a
broken result also assert that no checkpoint was written.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY_RUN, metrics, one_line_error
from video_fixtures import CLASSES, write_class_folders

from videoperlin.errors import ConfigError, NumericsError
from videoperlin.models import create_model
from videoperlin.train.checkpointing import load_checkpoint
from videoperlin.utils.atomic import atomic_path
from videoperlin.vpn import SyntheticDataset, frequency_preset

PRE = ["pretrain", "--preset", "tiny", "--num-videos", "32", "--set", "synthetic.val_videos=8", *TINY_RUN]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    write_class_folders(root, per_class=6, frames=12)
    return root


def no_checkpoint(run: Path) -> bool:
    return not list(run.rglob("*.pt"))


# ---- the data a user hands us: videos, manifests, text files, splits, decoding -------------------


def test_every_video_unreadable(tmp_path, cli):
    for kind in CLASSES:
        (tmp_path / "bad" / kind).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "bad" / kind / f"{i}.mp4").write_bytes(os.urandom(2048))
    run = tmp_path / "run"
    proc = cli("train", "--data", str(tmp_path / "bad"), "--on-bad-video", "skip", "--out", str(run), *TINY_RUN)
    one_line_error(proc, "trained on no clip", "check-data")
    assert no_checkpoint(run)


@pytest.mark.parametrize(
    "body, needle",
    [
        ("a.mp4,walk,x\na.mp4,walk,x\n", "a.mp4 is listed again"),
        ("a.mp4,,x\n", "empty label"),
        ("a.mp4,walk\n", "2 fields where the header has 3"),
        ("a.mp4,walk,x\nb.mp4,Walk ,x\n", "label 'Walk' differs from 'walk' (line 2) only in case"),
    ],
)
def test_manifest_faults(tmp_path, cli, body, needle):
    (tmp_path / "m.csv").write_text("path,label,group\n" + body)
    proc = cli("train", "--data", str(tmp_path / "m.csv"), "--out", str(tmp_path / "run"), *TINY_RUN)
    one_line_error(proc, str(tmp_path / "m.csv"), needle)
    assert no_checkpoint(tmp_path / "run")


def test_evaluate_when_a_whole_batch_is_unreadable(tmp_path, cli, videos):
    run = tmp_path / "run"
    assert cli("train", "--data", str(videos), "--out", str(run), *TINY_RUN).returncode == 0
    data = tmp_path / "data"
    for kind in CLASSES:
        (data / kind).mkdir(parents=True)
        for video in sorted((videos / kind).glob("*.mp4"))[:2]:
            (data / kind / video.name).symlink_to(video)
    for name in ("0a.mp4", "0b.mp4"):  # sort first: the first evaluation batch (2 videos) is all unreadable
        (data / CLASSES[0] / name).write_bytes(os.urandom(1024))
    proc = cli(
        "evaluate",
        "--checkpoint",
        str(run / "checkpoints" / "last.pt"),
        "--data",
        str(data),
        "--subset",
        "all",
        "--on-bad-video",
        "skip",
        "--out",
        str(tmp_path / "eval"),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"skipped_videos": 2' in (tmp_path / "eval" / "metrics.json").read_text()


def test_malformed_class_index(tmp_path, cli, videos):
    for kind in CLASSES:
        (tmp_path / kind).symlink_to(videos / kind, target_is_directory=True)
    (tmp_path / "classInd.txt").write_text("1 down\nflicker\n")
    (tmp_path / "trainlist01.txt").write_text("down/down_00.mp4 1\n")
    (tmp_path / "testlist01.txt").write_text("down/down_01.mp4\n")
    one_line_error(cli("check-data", str(tmp_path), "-q"), "classInd.txt:2: expected '<number> <ClassName>'")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])  # Excel's "CSV UTF-8" and "Unicode text"
def test_manifests_saved_with_a_byte_order_mark_load(tmp_path, videos, encoding):
    from videoperlin.data.sources import load_catalog

    paths = sorted(videos.rglob("*.mp4"))
    rows = ["path,label"] + [f"{p},{p.parent.name}" + " " * (i % 2) for i, p in enumerate(paths)]  # spaces stripped
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n", encoding=encoding)
    catalog = load_catalog(tmp_path / "m.csv")
    assert len(catalog.records) == len(rows) - 1 and catalog.class_names == sorted(CLASSES)


def test_text_in_another_encoding_or_binary_is_refused_naming_the_file(tmp_path, cli):
    (tmp_path / "latin1.csv").write_bytes("path,label\nvidéo.mp4,walk\n".encode("latin-1"))
    one_line_error(cli("check-data", str(tmp_path / "latin1.csv"), "-q"), "latin1.csv is not UTF-8", "save it as UTF-8")
    (tmp_path / "recipe.yaml").write_bytes(bytes(range(256)))
    proc = cli("pretrain", "--config", str(tmp_path / "recipe.yaml"), "--out", str(tmp_path / "run"), "-q")
    one_line_error(proc, "--config", "recipe.yaml is not UTF-8")
    (tmp_path / "nul.yaml").write_bytes(b"train:\x00\n")
    one_line_error(cli("config", "--config", str(tmp_path / "nul.yaml")), "nul.yaml holds NUL characters")


def test_yaml_alias_bombs_and_syntax_errors_are_one_short_line_with_the_file_and_line(tmp_path, cli):
    names = "abcdefghi"
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{n}: &{n} [{', '.join(['*' + p] * 9)}]" for p, n in itertools.pairwise(names)]  # 9**9 strings
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    proc = cli("pretrain", "--config", str(tmp_path / "bomb.yaml"), "--out", str(tmp_path / "run"), "-q")
    one_line_error(proc, "bomb.yaml:1:", "expand it past 100,000 values")
    assert len(proc.stderr) < 300 and no_checkpoint(tmp_path / "run")
    (tmp_path / "labels.yaml").write_text("fx: [1, 2\nfy: [1]\nft: [1]\n")  # an unclosed bracket
    proc = cli("generate", "--labels", str(tmp_path / "labels.yaml"), "--num-videos", "4", "--out", str(tmp_path / "g"))
    one_line_error(proc, "labels.yaml:", "not valid YAML")


def test_a_class_absent_from_the_training_side_of_a_fold_is_refused(tmp_path, cli, videos):
    rows = ["path,label,group"]
    for i, path in enumerate(sorted(videos.rglob("*.mp4"))):
        group = "a" if path.parent.name == "flicker" else "bcd"[i % 3]  # groups sorted: a, c -> fold 0
        rows.append(f"{path},{path.parent.name},{group}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    proc = cli("train", "--data", str(tmp_path / "m.csv"), "--folds", "3", "--out", str(tmp_path / "run"), *TINY_RUN)
    one_line_error(proc, "class 'flicker' has no training video in fold 0 of 3", "group(s) a", "data.folds")
    assert no_checkpoint(tmp_path / "run")


def test_evaluate_from_anywhere_and_name_the_checkpoint_when_its_data_moved(tmp_path, cli, videos, monkeypatch):
    import shutil

    shutil.copytree(videos, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    run = ["train", "--data", "data", "--set", "data.val_fraction=0.25", "--out", "run", *TINY_RUN]  # relative paths
    assert cli(*run, "--cache-dir", "cache").returncode == 0
    monkeypatch.chdir(tmp_path / "run")  # another folder: the run recorded its paths absolute
    best = str(tmp_path / "run" / "checkpoints" / "best.pt")
    assert cli("evaluate", "--checkpoint", best, "-q").returncode == 0
    (tmp_path / "data").rename(tmp_path / "moved")
    one_line_error(cli("evaluate", "--checkpoint", best, "-q"), "data.path", "recorded in the checkpoint", "--data")
    assert cli("evaluate", "--checkpoint", best, "--data", str(tmp_path / "moved"), "-q").returncode == 0


def test_check_data_takes_a_short_side_below_the_training_crop(tmp_path, cli, videos):
    proc = cli("check-data", str(videos), "--short-side", "32", "--cache-dir", str(tmp_path / "c"), "-q")
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr


def _set_display_matrix(path: Path, a: int, b: int, c: int, d: int) -> None:
    """Write a rotation into the mp4's track header matrix (16.16 fixed point), as a phone does."""
    import struct

    data = bytearray(path.read_bytes())
    box = data.index(b"tkhd")
    offset = box + 4 + 4 + (32 if data[box + 4] == 1 else 20) + 16  # version/flags, times, reserved, layer..volume
    data[offset : offset + 36] = struct.pack(">9i", a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def test_a_rotated_phone_video_is_decoded_upright(tmp_path):
    from videoperlin.data.decode import decode_video
    from videoperlin.data.encode import encode_video

    frames = np.zeros((6, 32, 64, 3), np.uint8)
    frames[:, :, :16] = 255  # a white band on the left of a landscape frame
    encode_video(tmp_path / "phone.mp4", frames)
    _set_display_matrix(tmp_path / "phone.mp4", 0, 1, -1, 0)  # "rotate 90": shown turned clockwise
    shown = decode_video(tmp_path / "phone.mp4", short_side=None)
    assert shown.shape == (6, 64, 32, 3)  # portrait
    assert shown[:, :12].mean() > 200 and shown[:, 20:].mean() < 40  # the band is on top


def test_a_video_yielding_far_fewer_frames_than_its_header_declares_is_warned_about(tmp_path, caplog):
    import av

    from videoperlin.data.decode import decode_video

    with av.open(str(tmp_path / "full.mp4"), "w", options={"movflags": "faststart"}) as out:  # header first
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        noise = np.random.default_rng(0).integers(0, 256, (40, 48, 64, 3), dtype=np.uint8)
        for image in noise:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 4 // 10])  # a download cut short
    with caplog.at_level("WARNING", logger="videoperlin.data.decode"):
        frames = decode_video(tmp_path / "cut.mp4", short_side=None)
    assert 0 < len(frames) < 20 and f"decoded {len(frames)} frames but its header declares 40" in caplog.text


def test_check_data_names_a_video_cut_short_by_its_header(tmp_path, cli):
    """An .avi cut to a third of its length: its header still declares every frame, a third decode."""
    import av

    write_class_folders(tmp_path / "videos", per_class=2, frames=8)
    whole = tmp_path / "whole.avi"
    with av.open(str(whole), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(90):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = tmp_path / "videos" / CLASSES[0] / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    proc = cli("check-data", tmp_path / "videos", "--cache-dir", tmp_path / "cache", "-q")
    assert (
        proc.returncode == 0
        and f"truncated: {cut}" in proc.stdout
        and "of the 90 frames its header declares" in proc.stdout
    )
    strict = cli("check-data", tmp_path / "videos", "--cache-dir", tmp_path / "cache", "-q", "--strict")
    assert strict.returncode != 0 and "1 truncated (--strict)" in strict.stdout


def test_error_messages_cap_what_they_quote(tmp_path, cli):
    proc = cli(*PRE, "--set", "model.widen_factor=" + "x" * 100_000, "--out", str(tmp_path / "run"))
    one_line_error(proc, "model.widen_factor", "… (100,002 characters)")  # its repr, quotes included
    assert len(proc.stderr) < 400


# ---- config values and the command line ----------------------------------------------------------


@pytest.mark.parametrize(
    "setting, needle",
    [
        ("optim.lr=.inf", "optim.lr value '.inf' is not a number"),
        ("optim.lr=inf", "optim.lr inf must be a finite number"),
        ("optim.lr=nan", "optim.lr nan must be a finite number"),
        ("synthetic.val_videos=0", "synthetic.val_videos 0 must be >= 1"),
        ("synthetic.val_videos=-3", "synthetic.val_videos -3 must be >= 1"),
        ("optim.momentum=-0.5", "optim.momentum -0.5 must be in [0, 1)"),
        ("optim.weight_decay=-1", "optim.weight_decay -1.0 must be >= 0"),
        ("train.threads=-2", "train.threads -2 must be >= 0"),
        ("data.scale_min=1.5", "data.scale_min 1.5 must be in (0, 1]"),
        ("train.accum_steps=0", "train.accum_steps 0 must be >= 1"),
        ("data.fold=5", "data.fold 5 must be below folds (5)"),
        ("data.path=x.csv", "data.size 32 exceeds data.short_side 16"),
    ],
)
def test_config_values_are_checked_at_load(tmp_path, cli, setting, needle):
    proc = cli(*PRE, "--set", "data.short_side=16", "--set", setting, "--out", str(tmp_path / "run"))
    one_line_error(proc, needle)
    assert no_checkpoint(tmp_path / "run")


def test_settings_that_are_valid_but_odd_are_warned_about(tmp_path, cli):
    proc = cli(
        *[arg for arg in PRE if arg != "-q"],  # warnings are what this test reads: -q prints errors only
        "--set",
        "optim.warmup_epochs=3",
        "--set",
        "train.accum_steps=9",
        "--set",
        "optim.schedule=multistep",
        "--set",
        "optim.milestones=[0, 4]",
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "warmup_epochs 3 >= train.epochs 1" in proc.stderr and "accum_steps 9 exceeds the 8 steps" in proc.stderr
    assert "optim.milestones [0, 4] reach train.epochs 1" in proc.stderr


def test_the_real_entry_point_prints_its_version_and_one_quiet_error_line(cli_process):
    """``python -m videoperlin`` in a fresh process (the rest of the suite runs commands in-process)."""
    import videoperlin

    version = cli_process("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"videoperlin {videoperlin.__version__}"
    one_line_error(
        cli_process(*PRE, "--set", "optim.lr=nan", "--out", "unused"), "optim.lr nan must be a finite number"
    )


def test_an_unknown_allocator_setting_is_refused_in_one_line(monkeypatch, capsys):
    import videoperlin.cli as cli_module

    monkeypatch.setenv("VIDEOPERLIN_ALLOCATOR", "jemalloc")
    assert cli_module.main(["families"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "VIDEOPERLIN_ALLOCATOR='jemalloc'" in err and "reuse, default" in err


def test_every_command_takes_quiet_and_verbose_from_one_place():
    from videoperlin.cli import COMMANDS, build_parser

    parser = build_parser()

    def leaves(commands, prefix=()):
        for name, command in commands.items():
            yield from leaves(command.sub, (*prefix, name)) if command.sub else [(*prefix, name)]

    names = list(leaves(COMMANDS))
    assert len(names) >= 17
    for path in names:
        action = parser._subparsers._group_actions[0]
        sub = action.choices[path[0]]
        for part in path[1:]:
            sub = sub._subparsers._group_actions[0].choices[part]
        assert {"-q", "--quiet", "-v", "--verbose"} <= set(sub._option_string_actions), " ".join(path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "--batch-size", "0", "--out", "x"], "--batch-size: 0 must be >= 1"),
        (["generate", "--batch-size", "-4", "--out", "x"], "--batch-size: -4 must be >= 1"),
        (["generate", "--seed", str(2**64), "--out", "x"], "--seed: 18446744073709551616 must be from 0 to 4294967295"),
        (["pretrain", "--seed", str(2**64)], "train.seed 18446744073709551616 must be in [0, 4294967295]"),
        (["generate", "--crf", "99", "--out", "x"], "--crf: 99 must be from"),
        (["models", "--num-classes", "0"], "--num-classes: 0 must be >= 1"),
        (["transfer", "--folds", "1"], "--folds: 1 must be >= 2"),
    ],
)
def test_integers_beyond_what_the_code_below_takes_are_refused_in_one_line(argv, message, cli):
    proc = cli(*argv)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(
    "sets, needle",
    [
        (["data.cache_limit_gb=-1"], "data.cache_limit_gb -1.0 must be >= 0"),
        (["objective.name=bert"], "objective.name 'bert' must be one of classify, mae"),
        (["objective.name=mae", "objective.mask_ratio=1.5"], "objective.mask_ratio 1.5 must be in (0, 1)"),
        (["model.name=vit_micro", "model.drop_path=2"], "model.drop_path 2.0 must be in [0, 1)"),
        (["model.name=vit_micro", "model.patch_size=0"], "model.patch_size 0 must be >= 1"),
        (["optim.layer_decay=0"], "optim.layer_decay 0.0 must be in (0, 1]"),
        (["augment.mixup=-1"], "augment.mixup -1.0 must be >= 0"),
        (["train.tensorboard=maybe"], "train.tensorboard expects true or false, got 'maybe'"),
    ],
)
def test_the_transformer_and_tracking_fields_refuse_bad_values_in_one_line(cli, sets, needle):
    one_line_error(cli("config", "pretrain", *[a for s in sets for a in ("--set", s)]), needle)


VIT_PRE = [
    "pretrain",
    "--preset",
    "tiny",
    "--num-videos",
    "16",
    "--set",
    "synthetic.val_videos=8",
    *TINY_RUN[4:],
]  # no --model, no widen


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--model", "vit_micro", "--size", "36"], ["clip 8x36x36", "not a whole number of 2x16x16 tubelets"]),
        (
            ["--model", "vit_micro", "--set", "objective.name=mae", "--set", "objective.mask_ratio=0.9999"],
            ["objective.mask_ratio 0.9999 masks 4 of 4 token positions"],
        ),
        (["--model", "r3d10", "--set", "objective.name=mae"], ["objective.name mae masks tokens", "r3d10 has none"]),
        (["--model", "r3d10", "--set", "model.drop_path=0.5"], ["model.drop_path is an option of the vit models"]),
        (
            ["--model", "r3d10", "--batch-size", "1"],
            ["train.batch_size 1", "BatchNorm layer layer4.0.bn1", "2 or more"],
        ),
    ],
)
def test_a_run_the_transformer_options_cannot_train_is_refused_before_it_starts(tmp_path, cli, argv, needles):
    """The probe round over the new surfaces: model options against the clip, the objective against the model,
    a batch BatchNorm cannot train on; each one line before any clip is drawn, no run folder content."""
    run = tmp_path / "run"
    one_line_error(cli(*VIT_PRE, *argv, "--out", run), *needles)
    assert no_checkpoint(run)


# ---- weights and checkpoints: what --init, evaluate, export and convert are given ----------------


def test_init_from_another_architecture(tmp_path, cli, videos):
    torch.save(create_model("r2p1d10", num_classes=3, widen_factor=0.25).state_dict(), tmp_path / "other.pth")
    proc = cli(
        "train", "--data", str(videos), "--init", str(tmp_path / "other.pth"), "--out", str(tmp_path / "run"), *TINY_RUN
    )
    one_line_error(proc, "other.pth does not match the model", "another architecture")
    assert no_checkpoint(tmp_path / "run")


def test_init_names_what_it_was_given_and_what_it_takes(tmp_path, cli):
    write_class_folders(tmp_path / "videos", per_class=2, frames=8)
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    for given, said in (
        (tmp_path / "videos", "a folder of 6 videos (data, for --data)"),
        (tmp_path / "run", "a run directory"),
    ):
        proc = cli("train", "--data", tmp_path / "videos", "--init", given, "--out", tmp_path / "out")
        assert proc.returncode == 2 and said in proc.stderr and "a model directory (model.safetensors" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


class BrokenStatistics:
    """A step that leaves an infinite BatchNorm running variance, as bf16 autocast did at tiny sizes."""

    @staticmethod
    def trainer(config):
        from videoperlin.train.engine import Trainer

        class Broken(Trainer):
            def train_step(self, *args, **kwargs):
                super().train_step(*args, **kwargs)
                self.model.layer2[0].bn1.running_var.fill_(float("inf"))

        return Broken(config)


def test_non_finite_batchnorm_statistics_never_reach_a_checkpoint(tmp_path):
    from videoperlin.train.config import load_config

    config = load_config(
        None,
        {
            "train.out": str(tmp_path / "run"),
            "model.name": "r3d10",
            "model.widen_factor": 0.25,
            "data.frames": 8,
            "data.size": 32,
            "synthetic.preset": "tiny",
            "synthetic.num_videos": 16,
            "synthetic.val_videos": 4,
            "train.epochs": 1,
            "train.batch_size": 8,
            "train.amp": "off",
            "train.progress": False,
        },
        task="pretrain",
    )
    with pytest.raises(
        NumericsError, match=r"non-finite values in layer2.0.bn1.running_var .* (best|last).pt was not written"
    ):
        BrokenStatistics.trainer(config).fit()
    assert no_checkpoint(tmp_path / "run")


RANDOM_BYTES = np.random.default_rng(0).bytes(256)


# b"\x80..." reads as a pickle protocol header, on which torch.load warns before it fails
@pytest.mark.parametrize("content", [b"", b"just some text\n", RANDOM_BYTES, b"\x80\x24" + RANDOM_BYTES])
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_unreadable_weight_files(tmp_path, cli, videos, content, suffix):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(content)
    for args in (
        ["train", "--data", str(videos), "--init", str(path), "--out", str(tmp_path / "r"), *TINY_RUN],
        ["evaluate", "--checkpoint", str(path), "--data", str(videos), "--out", str(tmp_path / "e")],
        ["convert", str(path), "--out", str(tmp_path / "c")],
    ):
        one_line_error(cli(*args), str(path), "not a readable")
    if suffix == ".pt":  # says what the file is (was "(101)" for a text file: the byte torch tripped on)
        what = {b"": "an empty file", b"just some text\n": "a text file", RANDOM_BYTES: "neither a torch checkpoint"}
        one_line_error(cli(*args), what.get(content, "a pickle that is corrupt"))


def test_convert_never_lets_two_outputs_or_the_source_share_a_path(tmp_path, cli):
    from videoperlin.models.weight_files import save_model

    source = save_model(create_model("r3d10", num_classes=3, widen_factor=0.25), tmp_path / "model")
    one_line_error(
        cli("convert", str(source), "--to", "hara", "--out", str(tmp_path / "weights.json")),
        "weights.json",
        "two new files, not one",
    )
    assert not (tmp_path / "weights.json").exists()
    hara = tmp_path / "hara.pth"
    assert cli("convert", str(source), "--to", "hara", "--out", str(hara)).returncode == 0
    before = hara.read_bytes()
    one_line_error(cli("convert", str(hara), "--from", "hara", "--to", "hara", "--out", str(hara)), "not the source")
    assert hara.read_bytes() == before


def _rewrite_weights(directory: Path, change) -> None:
    """Apply ``change`` to the tensors of a saved model's model.safetensors, keeping its metadata."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = directory / "model.safetensors"
    with safe_open(str(path), "pt") as handle:
        metadata, state = handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}
    change(state)
    save_file(state, str(path), metadata=metadata)


@pytest.mark.parametrize("fault", ["nan", "extra"])
def test_evaluate_and_export_refuse_non_finite_or_foreign_weights(tmp_path, cli, fault):
    from videoperlin.models.weight_files import save_model

    source = save_model(create_model("r3d10", num_classes=3, widen_factor=0.25), tmp_path / "model")
    if fault == "nan":
        _rewrite_weights(source, lambda state: state["conv1.weight"].view(-1)[0].fill_(float("nan")))
        needle = "non-finite values in conv1.weight"
    else:
        _rewrite_weights(source, lambda state: state.update(stray=torch.zeros(2)))
        needle = "tensor(s) its own model does not use, e.g. stray"
    one_line_error(cli("convert", str(source), "--to", "torchvision", "--out", str(tmp_path / "tv.pth")), needle)
    assert not (tmp_path / "tv.pth").exists()
    evaluate = ["evaluate", "--checkpoint", str(source / "model.safetensors"), "--out", str(tmp_path / "eval"), "-q"]
    one_line_error(cli(*evaluate), needle)


def test_evaluating_a_missing_checkpoint_leaves_no_folder_behind(tmp_path, cli):
    run = tmp_path / "runs" / "ft"
    (run / "checkpoints").mkdir(parents=True)
    missing = run / "checkpoints" / "best.pt"
    one_line_error(cli("evaluate", "--checkpoint", str(missing), "-q"), str(missing), "does not exist")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints"]


# ---- runs: one writer, interrupts, resumes that tell the truth -----------------------------------


def test_interrupt_message_says_how_to_resume(monkeypatch, capsys):
    import videoperlin.cli as cli_module

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(
        cli_module.COMMANDS, "pretrain", cli_module.Command("x", cli_module.training.pretrain_arguments, interrupted)
    )
    assert cli_module.main(["pretrain"]) == 130
    assert "training runs: add --resume" in capsys.readouterr().err


def _stopped_pretrain(cli, run: Path, *extra: str) -> None:
    """A pre-training stopped after 2 of its 8 steps (train.max_steps), as a kill would leave it."""
    proc = cli(*PRE, "--set", "train.max_steps=2", "--out", str(run), *extra)
    assert proc.returncode == 0 and not (run / "checkpoints" / "best.pt").exists(), proc.stderr


def test_resume_refuses_changed_settings_unless_accepted_and_recorded(tmp_path, cli):
    run = tmp_path / "run"
    _stopped_pretrain(cli, run)
    changed = cli(*PRE, "--seed", "1", "--lr", "0.5", "--out", str(run), "--resume")
    one_line_error(changed, str(run), "train.seed 0 -> 1", "optim.lr", "-> 0.5", "--accept-changes")
    assert load_checkpoint(run / "checkpoints" / "last.pt")["position"]["global_step"] == 2  # untouched
    # settings that do not change what is computed (workers, threads, progress, max_steps...) may differ
    same = cli(*PRE, "--set", "train.threads=1", "--out", str(run), "--resume")
    assert same.returncode == 0 and "changed_settings" not in metrics(run)[0], same.stderr
    other = tmp_path / "other"
    _stopped_pretrain(cli, other)
    accepted = cli(*PRE, "--lr", "0.5", "--out", str(other), "--resume", "--accept-changes")
    assert accepted.returncode == 0, accepted.stderr
    assert metrics(other)[0]["changed_settings"] == {"optim.lr": [0.05, 0.5]}  # pretrain_cpu.yaml: 0.05
    assert "lr: 0.5" in (other / "config.yaml").read_text()
    one_line_error(cli(*PRE, "--out", str(tmp_path / "new"), "--accept-changes"), "--accept-changes goes with --resume")


def test_resume_writes_best_again_when_a_kill_fell_between_last_and_best(tmp_path, cli):
    run = tmp_path / "run"
    assert cli(*PRE, "--out", str(run)).returncode == 0
    (run / "checkpoints" / "best.pt").unlink()  # what a kill after last.pt, before best.pt, left (before the fix)
    proc = cli(*PRE, "--out", str(run), "--resume")
    assert proc.returncode == 0, proc.stderr
    best, last = (load_checkpoint(run / "checkpoints" / f"{n}.pt") for n in ("best", "last"))
    assert best["position"]["best_epoch"] == 0 and all(
        torch.equal(best["model"][k], v) for k, v in last["model"].items()
    )


def test_one_writer_per_run_directory(tmp_path, cli):
    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another pretrain is writing this run
        one_line_error(cli(*PRE, "--out", str(run)), "another process is training in", str(run))
        assert not (run / "config.yaml").exists()
    assert cli(*PRE, "--out", str(run)).returncode == 0  # released: the next writer may go


def test_a_second_writer_of_the_same_shard_is_refused(tmp_path, cli):
    out = tmp_path / "vpn"
    out.mkdir()
    with open(out / ".generate-shard-0-of-1.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another generate holds shard 0/1
        tiny_set = ["generate", "--preset", "tiny", "--num-videos", "4", "--frames", "8", "--size", "32"]
        proc = cli(*tiny_set, "--format", "npy", "--out", str(out), "-q")
        one_line_error(proc, "another process is already writing shard 0/1", str(out))
        other_shard = cli(*tiny_set, "--format", "npy", "--shard", "1/2", "--out", str(out), "-q")
        assert other_shard.returncode == 0, other_shard.stderr  # shards of one set may write together


def test_mp4_export_is_reproducible_and_within_the_space_estimate(tmp_path, cli):
    from videoperlin.vpn.export import BYTES_PER_VOXEL

    for name in ("a", "b"):
        cli(
            "generate",
            "--preset",
            "motion",
            "--num-videos",
            "24",
            "--frames",
            "16",
            "--size",
            "64",
            "--out",
            str(tmp_path / name),
            "-q",
            check=True,
        )
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.mp4"))
    assert len(files) == 24
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert max((tmp_path / "a" / f).stat().st_size for f in files) < BYTES_PER_VOXEL["mp4", "uint8"] * 16 * 64 * 64


# ---- memory and disk refused up front, before they are used --------------------------------------


def test_a_set_too_big_for_the_disk_is_refused_up_front(tmp_path, monkeypatch):
    import shutil

    from videoperlin.vpn.export import export_dataset

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(2**30, 2**30 - 2**21, 2**21))
    ds = SyntheticDataset(frequency_preset("tiny"), num_videos=100_000_000, frames=16, size=112)
    with pytest.raises(ConfigError, match=r"has 2.0 MiB free but 100000000 npy videos need about"):
        export_dataset(ds, tmp_path / "big", fmt="npy", progress=False)
    assert not list((tmp_path / "big").rglob("*.npy"))


def test_a_batch_too_big_to_render_is_named_before_the_disk(tmp_path, monkeypatch):
    """Both faults at once (no disk, no memory for one batch): the render is named, whatever this machine's disk
    holds (CI's disk once made the 60000x60000 CLI case above report free space instead)."""
    import shutil

    from videoperlin.vpn.export import export_dataset

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(2**30, 2**30 - 2**21, 2**21))
    ds = SyntheticDataset(frequency_preset("tiny"), num_videos=2, frames=16, size=60_000)
    with pytest.raises(ConfigError, match=r"rendering 2 perlin clip\(s\) of 16 frames at 60000x60000"):
        export_dataset(ds, tmp_path / "big", fmt="npy", progress=False)


@pytest.mark.parametrize(
    "flags, needles",
    [
        (["--size", "4096"], ["data.size 4096x4096", "GiB of activations", "lower data.size"]),
        (["--num-videos", str(10**12)], ["synthetic.num_videos 1,000,000,000,000", "epoch order"]),
        (["--batch-size", "1000000"], ["train.batch_size 1000000", "train.accum_steps"]),
    ],
)
def test_pretrain_refuses_up_front_what_cannot_fit_in_memory(tmp_path, cli, flags, needles):
    proc = cli(*PRE, *flags, "--out", str(tmp_path / "run"))
    one_line_error(proc, *needles)
    assert no_checkpoint(tmp_path / "run")


def test_memory_is_refused_before_it_is_used_within_the_process_limits(tmp_path):
    """Under `ulimit -v` (a container's or a cluster job's limit) the up-front estimate compares with what
    the limit leaves, not with the machine's free memory; a clip of 100,000 frames no longer makes the
    numerics guard's probe ask for 210 GB; an allocation that fails anyway ends in one line."""
    from videoperlin.train.numerics import PROBE_ELEMENTS, capped_probe_shape

    shape = capped_probe_shape([4, 16, 100_000, 32, 32], (7, 7, 7))
    assert math.prod(shape) <= PROBE_ELEMENTS and shape[3:] == [32, 32] and shape[2] >= 32
    assert capped_probe_shape([4, 64, 16, 112, 112], (3, 3, 3)) == [4, 64, 16, 112, 112]  # run sizes: unchanged
    script = "import resource; resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))\n"
    script += "import sys; from videoperlin.cli import main; sys.exit(main(sys.argv[1:]))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script, "pretrain", "--size", "4096", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "of activations but" in proc.stderr, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "GiB is available" in proc.stderr
    from videoperlin.cli import out_of_memory

    failed = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: 6585600000")
    assert out_of_memory(failed) and out_of_memory(MemoryError()) and not out_of_memory(RuntimeError("shape"))


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["preview", "--preset", "low", "--frames", "10000000", "--size", "32"], ["perlin clip(s) of 10000000 frames"]),
        (["generate", "--preset", "tiny", "--size", "60000", "--num-videos", "2"], ["at 60000x60000", "--size"]),
        (["preview", "--family", "textures", "--frames", "10000000"], ["textures clip(s)"]),
    ],
)
def test_rendering_is_refused_up_front_when_it_cannot_fit(tmp_path, cli, argv, needles):
    """generate, preview and the synthetic training path render through one check (SyntheticDataset.batch): the
    batch's peak, from the family's measured bytes per pixel, against the memory free now."""
    out = tmp_path / ("out.png" if argv[0] == "preview" else "out")
    one_line_error(cli(*argv, "--out", str(out), "-q"), *needles, "GiB is available", "--frames")
    assert not any(out.parent.glob("out*/*.mp4"))


def test_a_video_whose_frames_cannot_fit_is_refused_before_it_is_decoded(tmp_path, cli, videos, monkeypatch):
    """Training, prepare, check-data and evaluation decode through one function: a video whose frames (from its
    header: count x decoded size) exceed the memory free is refused naming the file, before a frame is decoded."""
    from videoperlin.data import decode

    video = sorted(videos.rglob("*.mp4"))[0]
    clip = tmp_path / "clip.npy"
    np.save(clip, np.zeros((12, 16, 16), np.uint8))
    monkeypatch.setattr(decode, "available_memory", lambda device: 1024)
    with pytest.raises(decode.VideoDecodeError, match=f"{video}: decoding its 12 frames at .* but 0.0 GiB"):
        decode.decode_video(video, short_side=32)
    with pytest.raises(decode.VideoDecodeError, match=f"{clip}: loading it needs"):
        decode.decode_video(clip)
    run = tmp_path / "run"
    argv = ["train", "--data", videos, "--out", run, "--on-bad-video", "fail", "--set", f"data.cache_dir={tmp_path}"]
    one_line_error(cli(*argv, *TINY_RUN), "decoding its 12 frames", "GiB is available", "data.short_side")
    assert no_checkpoint(run)


@pytest.mark.parametrize("max_windows", ["1000000000", "null"])
def test_evaluation_windows_that_cannot_fit_are_refused_naming_the_field(
    tmp_path, cli, videos, monkeypatch, max_windows
):
    """A set window count is checked before any video is decoded; 'all windows' (null) per video, as each
    video's count is known."""
    if max_windows == "null":
        from videoperlin.data import video_dataset

        monkeypatch.setattr(video_dataset, "available_memory", lambda device: 4096)
    run = tmp_path / "run"
    proc = cli("train", "--data", videos, "--out", run, "--set", f"data.max_windows={max_windows}", *TINY_RUN)
    one_line_error(proc, "evaluation windows of 8x32x32", "GiB is available", "data.max_windows")
    assert ("every video" if max_windows != "null" else ".mp4") in proc.stderr


# ---- write faults: one line, the last good state kept --------------------------------------------


@pytest.mark.parametrize("command", ["train", "pretrain", "evaluate"])
@pytest.mark.parametrize("kind", ["file", "read-only", "too-long"])
def test_unusable_out(tmp_path, cli, videos, command, kind):
    target = {"file": tmp_path / "a-file", "read-only": tmp_path / "ro" / "run", "too-long": tmp_path / ("x" * 300)}[
        kind
    ]
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    if os.access(tmp_path / "ro", os.W_OK):  # root ignores permissions
        target = tmp_path / "a-file" / "run" if kind == "read-only" else target
    if command == "evaluate":
        run = tmp_path / "ok"
        assert cli("train", "--data", str(videos), "--out", str(run), *TINY_RUN).returncode == 0
        proc = cli("evaluate", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--out", str(target), "-q")
        one_line_error(proc, "--out", "not writable")
    else:
        args = ["--data", str(videos)] if command == "train" else []
        proc = cli(*(PRE if command == "pretrain" else ["train", *TINY_RUN]), *args, "--out", str(target))
        one_line_error(proc, "train.out", "not writable")


def test_disk_full_names_the_file(tmp_path, monkeypatch):
    target = tmp_path / "clip.npy"
    with pytest.raises(ConfigError, match=f"the disk is full while writing {target}"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    with pytest.raises(ConfigError, match="the disk is full while writing .*last.pt"):
        with atomic_path(tmp_path / "last.pt"):  # torch.save's way of saying it
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                "data/0: file write failed"
            )
    with pytest.raises(ConfigError, match="the disk is full while writing .*00000003.npy"):
        with atomic_path(tmp_path / "00000003.npy"):  # numpy.save's way of saying it
            raise OSError("8192 requested and 3968 written")
    assert not list(tmp_path.iterdir())  # no temporary left behind


@pytest.mark.parametrize(
    "fault, said",
    [
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2176 vs 2064"), "the disk is full"),
        (OSError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.EROFS, "Read-only file system"), "the filesystem is read-only"),
    ],
)
def test_a_write_fault_in_a_checkpoint_ends_in_one_line_keeps_the_last_good_state_and_resumes(
    tmp_path, cli, monkeypatch, fault, said
):
    import shutil

    from videoperlin.train import checkpointing

    args = ["pretrain", "--model", "r3d10", "--widen-factor", "0.125", "--frames", "8", "--size", "32",
            "--num-videos", "8", "--set", "synthetic.val_videos=4", "--batch-size", "4", "--amp", "off",
            "--epochs", "2", "--out", tmp_path / "run", "-q"]  # fmt: skip
    cli(*args, "--max-steps", "2", check=True)  # epoch 1 written: the last good state
    good = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)["global_step"]
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        raise fault

    monkeypatch.setattr(checkpointing.torch, "save", failing_save)
    if isinstance(fault, RuntimeError):  # torch says "unexpected pos": a full disk, confirmed by the free space
        monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    proc = cli(*args, "--resume")
    assert proc.returncode == 2 and said in proc.stderr and "checkpoints/best.pt" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "intact" in proc.stderr
    assert torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)["global_step"] == good
    assert not list((tmp_path / "run").rglob("*.tmp-*"))
    monkeypatch.setattr(checkpointing.torch, "save", real_save)
    monkeypatch.undo()
    cli(*args, "--resume", check=True)  # space freed: the run finishes
    assert torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)["position"]["epoch"] == 2


class _FullDisk:
    """``os`` as seen by the atomic writer, on a disk that fills as a file is committed."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def replace(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("command", ["generate", "prepare", "pretrain", "evaluate"])
def test_a_full_disk_on_every_writing_path_ends_in_one_line_naming_the_file(
    tmp_path, cli, videos, monkeypatch, command
):
    """Exports, prepared copies, run records and reports are all committed by one atomic writer: a full
    disk there is one line naming the file, and what was there before is kept."""
    from videoperlin.utils import atomic

    out = tmp_path / "out"
    argv = {
        "generate": ["generate", "--preset", "tiny", "--num-videos", "2", "--format", "npy", "--out", out],
        "prepare": ["prepare", videos, "--short-side", "32", "--out", out, "--workers", "0"],
        "pretrain": [*PRE, "--out", out],
        "evaluate": ["evaluate", "--checkpoint", tmp_path / "run/checkpoints/best.pt", "--out", out],
    }[command]
    if command == "evaluate":
        cli("train", "--data", videos, "--out", tmp_path / "run", *TINY_RUN, check=True)
    monkeypatch.setattr(atomic, "os", _FullDisk())
    proc = cli(*argv, "-q")  # pretrain's first write may be the numerics guard's verdicts, outside --out
    one_line_error(proc, "the disk is full while writing", *([str(out)] if command != "pretrain" else []))
    assert not list(tmp_path.rglob(f"*{atomic.TMP_MARKER}*"))


def test_a_frame_cache_on_a_full_disk_warns_once_and_decodes_instead(tmp_path, videos, monkeypatch, caplog):
    """The cache only saves time: a write fault there is one warning naming the entry, then decoding goes on."""
    from videoperlin.data.decode import FrameCache
    from videoperlin.utils import atomic

    cache = FrameCache(tmp_path / "cache", short_side=32)
    monkeypatch.setattr(atomic, "os", _FullDisk())
    paths = sorted(videos.rglob("*.mp4"))[:2]
    with caplog.at_level(logging.WARNING, logger="videoperlin"):
        frames = [cache.load(path) for path in paths]
    assert all(f.shape[0] == 12 for f in frames) and cache.failed
    warnings = [r.getMessage() for r in caplog.records if "frame cache" in r.getMessage()]
    assert len(warnings) == 1 and "the disk is full while writing" in warnings[0], warnings
    assert not list((tmp_path / "cache").rglob("*.npy")) and not list(tmp_path.rglob(f"*{atomic.TMP_MARKER}*"))


def test_a_tensorboard_write_fault_warns_and_the_run_keeps_its_metrics(tmp_path, caplog):
    """TensorBoard's event writer re-raises its thread's write fault on the next write: one warning, no event
    files from then on, and nothing else stops (metrics.jsonl holds the same numbers)."""
    from videoperlin.train.tracking import TensorBoardLog

    class FullDiskWriter:
        calls = 0

        def add_scalar(self, *args):
            FullDiskWriter.calls += 1
            raise OSError(errno.ENOSPC, "No space left on device")

    board = TensorBoardLog(FullDiskWriter(), tmp_path / "tensorboard")
    with caplog.at_level(logging.WARNING, logger="videoperlin"):
        board.write({"epoch": 1, "loss": 1.0})
        board.write({"epoch": 2, "loss": 0.5})
    board.close()
    assert FullDiskWriter.calls == 1 and board.writer is None
    assert [r.getMessage() for r in caplog.records if "No space left" in r.getMessage()], caplog.text
