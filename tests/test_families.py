"""Formula families as plug-ins (vpn/family.py): the toy family of tests/toy_family.py is one file,
registered on import, and every entry point takes it by name -- the dataset (both random back-ends),
`families`, `generate` (flags and dataset.json), `preview`, `pretrain` (config keys), `videoperlin
config` and the transfer study's vpn_arms -- with no other file touched."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from videoperlin.cli import main
from videoperlin.cli.training import builtin_config
from videoperlin.errors import ConfigError
from videoperlin.study.protocol import load_protocol
from videoperlin.train.config import load_config
from videoperlin.train.engine import Trainer
from videoperlin.vpn import VPNDataset, get_family, load_families
from videoperlin.vpn.draws import DrawLayout, GeneratorDraws
from videoperlin.vpn.export import load_exported_dataset
from videoperlin.vpn.source import ClipSource


def toy(**options) -> VPNDataset:
    family = get_family("toy")
    return VPNDataset(family.label_space(family.Labels(preset="many")), num_videos=40, frames=16, size=8, seed=2,
                      family="toy", **options)


def dominant_cycles(clips: torch.Tensor) -> list[int]:
    """Per clip (B, 3, T, H, W), the strongest temporal frequency of its mean gray level, in cycles per clip."""
    level = clips[:, 0].mean(dim=(2, 3)).double()
    spectrum = torch.fft.rfft(level - level.mean(dim=1, keepdim=True), dim=1).abs()
    return spectrum.argmax(dim=1).tolist()


@pytest.mark.parametrize("rng", ["generator", "counter"])
def test_the_toy_family_renders_its_label_on_both_backends(rng):
    ds = toy(rng=rng)
    clips, labels = ds.batch(range(12))
    assert clips.shape == (12, 3, 16, 8, 8) and 0.0 <= float(clips.min()) <= float(clips.max()) <= 1.0
    assert dominant_cycles(clips) == [ds.space.params(int(k))["cycles"] for k in labels]
    assert torch.equal(ds[5][0], clips[5]) and torch.equal(toy(rng=rng)[5][0], clips[5])  # per (seed, index)
    assert not torch.equal(clips[0], ds[4][0])  # same class, its own phase


def test_registry_lists_both_families_and_names_the_unknown_one(capsys):
    assert {"perlin", "toy"} <= set(load_families())
    assert main(["families"]) == 0
    printed = capsys.readouterr().out
    assert "toy: uniform flicker" in printed and "many (4 classes)" in printed and "flicker_depth" in printed
    with pytest.raises(ConfigError, match="unknown family 'tv'; families are perlin, toy"):
        get_family("tv")


def test_generate_and_preview_take_the_family_by_name(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["generate", "--family", "toy", "--preset", "many", "--flicker-depth", "0.8", "--num-videos", "8",
                 "--frames", "8", "--size", "16", "--format", "npy", "--out", str(out), "-q"]) == 0
    record = json.loads((out / "dataset.json").read_text())["vpn"]
    assert record["family"] == "toy" and record["flicker_depth"] == 0.8 and record["label_space"] == {"cycles": [1, 2, 3, 4]}
    assert "octaves" not in record  # only the family's own options are recorded
    again = load_exported_dataset(out)
    assert again.family.name == "toy" and torch.equal(again[3][0], toy_like(record)[3][0])
    assert main(["preview", "--family", "toy", "--out", str(tmp_path / "grid.png"), "--gif"]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 1000 and (tmp_path / "grid.gif").exists()


def toy_like(record: dict) -> VPNDataset:
    return VPNDataset.from_dict(record)


def test_options_of_another_family_are_refused_by_name():
    with pytest.raises(ConfigError, match="octaves is an option of family perlin, not toy"):
        ClipSource(family="toy", octaves=2)
    with pytest.raises(ConfigError, match="preset 'low' is not a preset of family toy; its presets: few, many"):
        ClipSource(family="toy", preset="low")
    with pytest.raises(ConfigError, match="vpn.family 'tv' must be one of perlin, toy"):
        load_config(None, None, ["vpn.family=tv"], task="pretrain")


def test_pretrain_and_config_take_the_family_by_name(tmp_path, capsys):
    config = load_config(None, {"train.out": str(tmp_path / "run"), "model.name": "r3d10", "model.widen_factor": 0.125,
                                "data.frames": 8, "data.size": 16, "train.epochs": 1, "train.batch_size": 4,
                                "vpn.num_videos": 16, "vpn.val_videos": 8, "train.progress": False, "train.amp": "off"},
                         ["vpn.family=toy", "vpn.cycles=1,2", "vpn.flicker_depth=0.9"], task="pretrain")
    Trainer(config).fit()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["vpn"]
    assert (saved["family"], saved["cycles"], saved["flicker_depth"]) == ("toy", [1, 2], 0.9)
    assert main(["config"]) == 0
    assert "flicker_depth: 0.4" in capsys.readouterr().out


def test_the_study_takes_a_family_as_an_arm():
    protocol = load_protocol(builtin_config("transfer_default"),
                             ["vpn_arms.flicker.vpn.family=toy", "vpn_arms.flicker.vpn.preset=many",
                              "arms=[scratch, flicker]"])
    config = protocol.pretrain_config("flicker", "r3d18", 0, "-")
    assert (config.vpn.family, len(config.vpn.label_space())) == ("toy", 4)


def test_a_generator_family_must_draw_in_its_declared_order():
    draws = GeneratorDraws(0, torch.tensor([1, 2]), DrawLayout(("a", "b"), {"a": 0, "b": 4}))
    with pytest.raises(RuntimeError, match="draw 'b' out of order: the generator format draws 'a' next"):
        draws.uniform("b", 1)
    with pytest.raises(ValueError, match="must name each slot"):
        DrawLayout(("a",), {"a": 0, "b": 1})
