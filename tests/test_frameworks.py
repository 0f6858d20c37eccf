"""Weights in and out of torchvision, mmaction2 and 3D-ResNets-PyTorch (videoperlin.models.frameworks)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from framework_references import Recognizer3D, torchvision_shapes_file, torchvision_video_resnet
from video_fixtures import write_class_folders

from videoperlin.errors import CheckpointError, ConfigError
from videoperlin.models import create_model
from videoperlin.models.frameworks import (
    check_corresponds,
    export_state_dict,
    framework_settings,
    import_state_dict,
    infer_model_config,
)
from videoperlin.models.from_3d_resnets_pytorch import import_hara_checkpoint
from videoperlin.models.pretrained import load_model, load_pretrained

#: Our counterpart of each torchvision video ResNet.
TORCHVISION = {
    "r3d_18": ("r3d18", {}),
    "mc3_18": ("mc3_18", {}),
    "r2plus1d_18": ("r2p1d18", {"mid_planes": "per_block", "stem_mid_planes": 45}),
}
TV_OPTIONS = {"conv1_t_size": 3, "no_max_pool": True}


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights and BatchNorm statistics (so a misplaced tensor changes the logits), eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var") or (name.endswith("weight") and tensor.ndim == 1):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.is_floating_point():
                tensor.copy_(
                    torch.randn(tensor.shape, generator=generator)
                    * (0.1 if tensor.ndim < 5 else tensor[0].numel() ** -0.5)
                )
    return model.eval()


def ours_for(tv_name: str, num_classes: int = 7, **options):
    name, extra = TORCHVISION[tv_name]
    return randomise(create_model(name, num_classes=num_classes, **TV_OPTIONS, **extra, **options))


def clip(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 8, 48, 48, generator=torch.Generator().manual_seed(seed))


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- torchvision ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tv_name", TORCHVISION)
def test_export_matches_torchvisions_names_and_shapes(tv_name):
    recorded = json.loads(torchvision_shapes_file().read_text())[tv_name]
    exported = export_state_dict(ours_for(tv_name, num_classes=400), "torchvision")
    assert list(exported) == list(recorded)  # same names, in torchvision's own order
    assert all(list(exported[k].shape) == shape for k, shape in recorded.items())


@pytest.mark.parametrize("tv_name", TORCHVISION)
def test_torchvision_models_both_ways(tv_name):
    module = torchvision_video_resnet()
    if module is None:
        pytest.skip("torchvision not installed (optional extra: pip install -c constraints.txt -e '.[frameworks]')")
    theirs = randomise(getattr(module, tv_name)(num_classes=7))
    ours = import_state_dict(theirs.state_dict(), "torchvision")
    assert ours.config["name"] == TORCHVISION[tv_name][0]
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(clip()), theirs(clip()), atol=1e-4, rtol=0)
    assert same_state(export_state_dict(ours, "torchvision"), theirs.state_dict())
    mine = ours_for(tv_name)  # ours -> torchvision -> ours
    fresh = getattr(module, tv_name)(num_classes=7).eval()
    fresh.load_state_dict(export_state_dict(mine, "torchvision"), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(clip()), mine(clip()), atol=1e-4, rtol=0)
    assert same_state(import_state_dict(fresh.state_dict(), "torchvision").state_dict(), mine.state_dict())


@pytest.mark.parametrize("tv_name", TORCHVISION)
def test_round_trip_through_torchvision_names_is_bit_identical(tv_name):
    mine = ours_for(tv_name)
    back = import_state_dict(export_state_dict(mine, "torchvision"), "torchvision")
    assert back.config == mine.config and same_state(back.state_dict(), mine.state_dict())


def test_a_model_that_does_not_correspond_is_refused_naming_the_options():
    with pytest.raises(
        ConfigError,
        match=r"r3d18 does not correspond to torchvision's r3d: model.conv1_t_size is 7 "
        r"where torchvision has 3; model.no_max_pool is False where",
    ):
        export_state_dict(create_model("r3d18"), "torchvision")
    with pytest.raises(ConfigError, match="model.mid_planes is 'per_conv' where torchvision has 'per_block'"):
        check_corresponds(create_model("r2p1d18", **TV_OPTIONS), "torchvision")
    with pytest.raises(ConfigError, match="mc3_18 has no counterpart in hara"):
        export_state_dict(create_model("mc3_18"), "hara")


def test_a_checkpoint_that_does_not_correspond_names_the_first_mismatching_key_and_shape():
    state = export_state_dict(ours_for("r3d_18"), "torchvision")
    state["layer3.0.conv2.0.weight"] = torch.zeros(256, 256, 1, 3, 3)
    with pytest.raises(
        CheckpointError,
        match=r"layer3.0.conv2.0.weight has shape \(256, 256, 1, 3, 3\) where r3d18 "
        r"\(torchvision layout\) needs \(256, 256, 3, 3, 3\)",
    ):
        import_state_dict(state, "torchvision", "k400.pth")
    deeper = export_state_dict(create_model("r3d34", **TV_OPTIONS), "torchvision")
    with pytest.raises(
        CheckpointError,
        match=r"k400.pth holds layer1.2.conv1.0.weight \(\d+ tensors in all\) that r3d18 "
        r"has no place for",
    ):
        import_state_dict(deeper, "torchvision", "k400.pth", name="r3d18")  # an r3d34 read as r3d18


# ---- mmaction2 (reference written from its published definitions) -------------------------------------


@pytest.mark.parametrize(
    "name, options",
    [
        ("r3d18", {"max_pool": "1x3x3"}),
        ("mc3_18", {"max_pool": "1x3x3", "conv1_t_size": 5}),
        ("r3d50", {"max_pool": "1x3x3", "widen_factor": 0.25}),
    ],
)
def test_mmaction2_recognizer_both_ways(name, options):
    mine = randomise(create_model(name, num_classes=5, **options))
    settings = framework_settings(mine, "mmaction2")
    theirs = Recognizer3D(settings["backbone"], settings["cls_head"]).eval()
    theirs.load_state_dict(export_state_dict(mine, "mmaction2"), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(theirs(clip()), mine(clip()), atol=1e-4, rtol=0)
    back = import_state_dict(theirs.state_dict(), "mmaction2")
    assert back.config == mine.config and same_state(back.state_dict(), mine.state_dict())
    backbone_only = {k[len("backbone.") :]: v for k, v in theirs.state_dict().items() if k.startswith("backbone.")}
    assert infer_model_config(export_state_dict(mine, "mmaction2"), "mmaction2")["name"] == name
    target = create_model(name, num_classes=3, **options)
    report = load_pretrained(target, backbone_only)  # an mmaction2 backbone saved alone, head swapped
    assert len(report.loaded) == len(backbone_only)


def test_mmaction2_needs_its_max_pool_and_has_no_2plus1d_counterpart():
    with pytest.raises(ConfigError, match="model.max_pool is '3x3x3' where mmaction2 has '1x3x3'"):
        export_state_dict(create_model("r3d18"), "mmaction2")
    with pytest.raises(
        ConfigError,
        match="r2p1d18 has no counterpart in mmaction2: mmaction2's ResNet2Plus1d "
        "factorises its 1x1x1 convolutions too",
    ):
        export_state_dict(create_model("r2p1d18", max_pool="1x3x3"), "mmaction2")


# ---- 3D-ResNets-PyTorch ----------------------------------------------------------------------------


def test_hara_export_loads_back_with_the_hara_importer(tmp_path):
    mine = randomise(create_model("r2p1d18", num_classes=4, widen_factor=0.25, conv1_t_stride=2))
    exported = export_state_dict(mine, "hara")
    assert exported["arch"] == "resnet2p1d-18"
    torch.save(exported, tmp_path / "hara.pth")
    back = import_hara_checkpoint(tmp_path / "hara.pth", conv1_t_stride=2)
    assert back.config == mine.config and same_state(back.state_dict(), mine.state_dict())


# ---- command line ----------------------------------------------------------------------------------


def test_convert_cli_round_trip(tmp_path, cli):
    source = export_state_dict(ours_for("r2plus1d_18"), "torchvision")
    torch.save(source, tmp_path / "tv.pth")
    cli("convert", str(tmp_path / "tv.pth"), "--from", "torchvision", "--out", str(tmp_path / "ours"), check=True)
    assert load_model(tmp_path / "ours").config["stem_mid_planes"] == 45
    cli("convert", str(tmp_path / "ours"), "--to", "torchvision", "--out", str(tmp_path / "back.pth"), check=True)
    assert same_state(torch.load(tmp_path / "back.pth", weights_only=True), source)
    assert "r2plus1d_18(num_classes=7)" in json.loads((tmp_path / "back.json").read_text())["model"]
    proc = cli("convert", str(tmp_path / "ours"), "--to", "mmaction2", "--out", str(tmp_path / "mm.pth"))
    assert proc.returncode == 2 and "r2p1d18 has no counterpart in mmaction2" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_kinetics_torchvision_checkpoint_fine_tunes_without_manual_steps(tmp_path, cli):
    """Random weights in the real key layout of torchvision's r3d_18 Kinetics-400 checkpoint."""
    kinetics = export_state_dict(ours_for("r3d_18", num_classes=400), "torchvision")
    torch.save(kinetics, tmp_path / "r3d_18_k400.pth")
    write_class_folders(tmp_path / "videos", per_class=4, frames=10)
    run = tmp_path / "run"
    proc = cli(
        "train",
        "--data",
        str(tmp_path / "videos"),
        "--init",
        str(tmp_path / "r3d_18_k400.pth"),
        "--out",
        str(run),
        "--frames",
        "8",
        "--size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--amp",
        "off",
        "--lr",
        "1e-9",
        "--set",
        "optim.weight_decay=0",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "is a torchvision checkpoint: the model is built as it is (model.conv1_t_size=3" in proc.stderr
    model = yaml.safe_load((run / "config.yaml").read_text())["model"]
    assert model["conv1_t_size"] == 3 and model["no_max_pool"] is True
    tuned = export_state_dict(load_model(run / "checkpoints" / "last.pt"), "torchvision")
    weights = [k for k in kinetics if not k.startswith("fc.") and "running" not in k and "num_batches" not in k]
    for key in weights:  # at lr 1e-9 the Kinetics weights stay (a fresh initialisation would be far off)
        torch.testing.assert_close(tuned[key], kinetics[key], atol=1e-6, rtol=0)
    assert tuned["fc.weight"].shape[0] == 3
