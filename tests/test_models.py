"""Model zoo: every model runs, parameter counts match 3D-ResNets-PyTorch, fine-tuning interface,
loading with exact reports, 2D->3D inflation, and 3D-ResNets-PyTorch checkpoint import."""

from __future__ import annotations

import copy

import pytest
import torch
from resnet2d import Basic2d, Bottle2d, ResNet2d, randomise_batchnorm

from videoperlin.errors import CheckpointError, ConfigError
from videoperlin.models import count_parameters, create_model, list_models
from videoperlin.models.from_3d_resnets_pytorch import import_hara_checkpoint
from videoperlin.models.inflate import inflate_2d
from videoperlin.models.pretrained import load_model, load_pretrained
from videoperlin.models.registry import stem_of
from videoperlin.models.weight_files import save_model

ALL_MODELS = list_models()


def test_registry_lists_every_family_at_all_depths():
    depths = [10, 18, 34, 50, 101, 152, 200]
    resnets = [f"{family}{d}" for family in ("r3d", "r2p1d", "mc3_") for d in depths]
    assert ALL_MODELS == resnets + ["vit_micro", "vit_tiny", "vit_small", "vit_base"]
    assert list_models("r2p1d1*") == ["r2p1d10", "r2p1d18", "r2p1d101", "r2p1d152"]
    with pytest.raises(ConfigError, match="unknown model 'r3d19'"):
        create_model("r3d19")
    with pytest.raises(ConfigError, match="unknown model option"):
        create_model("r3d18", width=2)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_backward_every_model(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5)
    x = torch.randn(2, 3, 8, 32, 32)
    out = model(x)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    stem = stem_of(model)  # the registry's first convolution or patch embedding
    assert stem is (
        model.conv1_s if name.startswith("r2p1d") else model.patch_embed.proj if "vit" in name else model.conv1
    )
    assert stem.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name, millions", [("r3d18", 33.41), ("r3d34", 63.72), ("r3d50", 47.02)])
def test_parameter_counts_match_3d_resnets_pytorch(name, millions):
    assert abs(count_parameters(create_model(name, num_classes=400)) / 1e6 / millions - 1) < 0.005


def test_shortcut_a_count_and_2plus1d_counts():
    with torch.device("meta"):  # shapes only: counting needs no weights
        assert abs(count_parameters(create_model("r3d18", shortcut="A")) / 1e6 / 33.24 - 1) < 0.005
        for depth in (10, 18, 34, 50, 101, 152, 200):
            r3d = count_parameters(create_model(f"r3d{depth}"))
            r2p1d = count_parameters(create_model(f"r2p1d{depth}"))
            assert abs(r2p1d / r3d - 1) < 0.02, depth


def test_options_change_the_network():
    x = torch.randn(1, 1, 8, 32, 32)
    model = create_model(
        "r3d10",
        num_classes=3,
        in_channels=1,
        conv1_t_size=3,
        conv1_t_stride=2,
        no_max_pool=True,
        widen_factor=0.25,
        dropout=0.5,
        shortcut="A",
    )
    assert model.conv1.weight.shape == (16, 1, 3, 7, 7) and model.conv1.stride == (2, 2, 2)
    feats = model.forward_features(x)
    assert feats.shape == (1, 128, 1, 2, 2)  # no max-pool: 32 -> 16 -> 16 -> 8 -> 4 -> 2
    assert not any("downsample" in k for k in model.state_dict())
    for bad in ({"shortcut": "C"}, {"widen_factor": 0}, {"dropout": 1.0}, {"conv1_t_size": 0}):
        with pytest.raises(ConfigError):
            create_model("r3d10", **bad)


def test_finetuning_interface_and_deepcopy():
    model = create_model("r2p1d10", num_classes=400, widen_factor=0.25).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    feats = model.forward_features(x)
    assert feats.shape[:2] == (2, model.num_features)
    torch.testing.assert_close(model.forward_head(feats), model(x))
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.layer1[0].conv1_s.weight.zero_()  # must not touch the original
    assert model.layer1[0].conv1_s.weight.abs().sum() > 0
    assert not torch.allclose(clone(x), model(x))
    model.reset_classifier(7)
    assert model.num_classes == 7 and model(x).shape == (2, 7) and model.config["num_classes"] == 7


# ---- loading --------------------------------------------------------------------------------


def test_load_pretrained_reports_every_key(tmp_path):
    source = create_model("r3d10", num_classes=400, widen_factor=0.25)
    target = create_model("r3d10", num_classes=10, widen_factor=0.25)
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 1}, path)
    report = load_pretrained(target, path)
    assert set(report.skipped) == {"fc.weight", "fc.bias"} and report.missing == []
    assert set(report.loaded) == set(source.state_dict()) - {"fc.weight", "fc.bias"}
    torch.testing.assert_close(target.conv1.weight, source.conv1.weight)
    with pytest.raises(CheckpointError, match="class counts differ.*drop_classifier=True"):
        load_pretrained(target, path, drop_classifier=False)


def test_shape_mismatch_outside_classifier_is_an_error():
    with pytest.raises(CheckpointError, match="shapes differ.*another architecture"):
        load_pretrained(create_model("r3d50", widen_factor=0.25), create_model("r3d18", widen_factor=0.25).state_dict())
    with pytest.raises(CheckpointError, match="shares no parameter names"):
        load_pretrained(create_model("r3d10"), {"encoder.weight": torch.zeros(3)})


def test_weights_only_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": create_model("r3d10", widen_factor=0.25).state_dict(), "obj": ConfigError("x")}, path)
    with pytest.raises(CheckpointError, match="weights_only=True refuses"):
        load_pretrained(create_model("r3d10", widen_factor=0.25), path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(create_model("r3d10"), tmp_path / "absent.pth")


def test_save_and_load_model_round_trip(tmp_path):
    model = create_model("r2p1d18", num_classes=6, widen_factor=0.25, conv1_t_size=3).eval()
    save_model(model, tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists() and (tmp_path / "m" / "config.json").exists()
    for source in (tmp_path / "m", tmp_path / "m" / "model.safetensors"):
        again = load_model(source).eval()
        x = torch.randn(1, 3, 8, 32, 32)
        torch.testing.assert_close(again(x), model(x))
        assert again.config == model.config


# ---- inflation ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, block, layers", [("r3d18", Basic2d, (2, 2, 2, 2)), ("r3d50", Bottle2d, (3, 4, 6, 3))])
def test_inflated_network_reproduces_2d_logits_on_static_clips(tmp_path, name, block, layers):
    torch.manual_seed(0)
    net2d = ResNet2d(block, layers, num_classes=10)
    randomise_batchnorm(net2d)
    net2d.eval()
    path = tmp_path / "resnet2d.pth"
    torch.save(net2d.state_dict(), path)
    frame = torch.rand(2, 3, 64, 64)
    expected = net2d(frame)
    clip = frame[:, :, None].expand(-1, -1, 8, -1, -1)
    exact = create_model(name, num_classes=10, widen_factor=0.25, temporal_padding="replicate")
    report = inflate_2d(exact, path, drop_classifier=False)
    assert report.missing == [] and report.skipped == {}
    torch.testing.assert_close(exact.eval()(clip), expected, atol=1e-4, rtol=1e-4)
    zero_padded = create_model(name, num_classes=10, widen_factor=0.25)
    inflate_2d(zero_padded, path, drop_classifier=False)
    assert (zero_padded.eval()(clip) - expected).abs().max() > 1e-3  # zero temporal padding is not exact


def test_inflated_weights_repeat_and_divide():
    net2d = ResNet2d(Basic2d, (1, 1, 1, 1), num_classes=4)
    model = create_model("r3d10", num_classes=4, widen_factor=0.25, conv1_t_size=5)
    inflate_2d(model, net2d.state_dict())
    w3, w2 = model.conv1.weight, net2d.conv1.weight
    assert w3.shape == (16, 3, 5, 7, 7)
    for t in range(5):
        torch.testing.assert_close(w3[:, :, t], w2 / 5)
    torch.testing.assert_close(model.layer1[0].conv1.weight.sum(2), net2d.layer1[0].conv1.weight)
    torch.testing.assert_close(model.bn1.weight, net2d.bn1.weight)
    with pytest.raises(ConfigError, match="full 3D convolutions"):
        inflate_2d(create_model("r2p1d10", widen_factor=0.25), net2d.state_dict())


# ---- 3D-ResNets-PyTorch checkpoints ----------------------------------------------------------

# Shapes computed by hand from 3D-ResNets-PyTorch's definitions (resnet.py, resnet2p1d.py).
HARA_SHAPES = {
    "resnet-18": {
        "conv1.weight": (64, 3, 7, 7, 7),
        "layer1.0.conv1.weight": (64, 64, 3, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1, 1),
        "layer2.0.downsample.1.running_var": (128,),
        "layer4.1.bn2.bias": (512,),
        "fc.weight": (400, 512),
    },
    "resnet2p1d-18": {
        "conv1_s.weight": (110, 3, 1, 7, 7),
        "bn1_s.weight": (110,),
        "conv1_t.weight": (64, 110, 7, 1, 1),
        "layer1.0.conv1_s.weight": (144, 64, 1, 3, 3),
        "layer1.0.conv1_t.weight": (64, 144, 3, 1, 1),
        "layer2.0.conv1_s.weight": (230, 64, 1, 3, 3),
        "layer2.0.conv2_t.weight": (128, 288, 3, 1, 1),
        "fc.weight": (400, 512),
    },
    "resnet-50": {
        "layer1.0.conv1.weight": (64, 64, 1, 1, 1),
        "layer1.0.conv2.weight": (64, 64, 3, 3, 3),
        "layer1.0.conv3.weight": (256, 64, 1, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1, 1),
        "fc.weight": (400, 2048),
    },
}


@pytest.mark.parametrize("arch, name", [("resnet-18", "r3d18"), ("resnet2p1d-18", "r2p1d18"), ("resnet-50", "r3d50")])
def test_parameter_names_and_shapes_follow_3d_resnets_pytorch(arch, name):
    state = create_model(name, num_classes=400).state_dict()
    for key, shape in HARA_SHAPES[arch].items():
        assert tuple(state[key].shape) == shape, key


@pytest.mark.parametrize(
    "name, arch, options",
    [
        ("r3d18", "resnet-18", {"num_classes": 7, "widen_factor": 0.25}),
        ("r2p1d18", "resnet2p1d-18", {"num_classes": 5, "widen_factor": 0.25, "conv1_t_size": 3}),
        ("r3d10", None, {"num_classes": 3, "widen_factor": 0.5, "shortcut": "A", "in_channels": 1}),
    ],
)
def test_hara_checkpoint_round_trip(tmp_path, cli, name, arch, options):
    torch.manual_seed(1)
    original = create_model(name, **options)
    randomise_batchnorm(original)
    original.eval()
    sgd = torch.optim.SGD(original.parameters(), lr=0.1, momentum=0.9)
    checkpoint = {
        "epoch": 12,
        "state_dict": {f"module.{k}": v for k, v in original.state_dict().items()},
        "optimizer": sgd.state_dict(),
        "scheduler": {"milestones": [50, 100, 150]},
    }
    if arch:
        checkpoint["arch"] = arch
    path = tmp_path / "save_12.pth"
    torch.save(checkpoint, path)
    imported = import_hara_checkpoint(path).eval()
    x = torch.randn(2, options.get("in_channels", 3), 8, 32, 32)
    torch.testing.assert_close(imported(x), original(x))
    proc = cli("convert", str(path), "--out", str(tmp_path / "converted"))
    assert proc.returncode == 0, proc.stderr
    converted = load_model(tmp_path / "converted").eval()
    torch.testing.assert_close(converted(x), original(x))


def test_hara_import_rejects_unsupported_arch(tmp_path, cli):
    path = tmp_path / "densenet.pth"
    torch.save({"arch": "densenet-121", "state_dict": create_model("r3d10", widen_factor=0.25).state_dict()}, path)
    proc = cli("convert", str(path), "--out", str(tmp_path / "x"))
    assert proc.returncode == 2 and "arch 'densenet-121' is not supported" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_checkpoint_of_another_architecture_is_refused_not_partly_loaded():
    source = create_model("r2p1d10", num_classes=4, widen_factor=0.25).state_dict()
    target = create_model("r3d18", num_classes=4, widen_factor=0.25)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(
        CheckpointError, match=r"does not match the model \(\d+ of its tensors are not in the model, e.g. "
    ):
        load_pretrained(target, source)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # nothing was loaded
    shallow = create_model("r3d10", num_classes=4, widen_factor=0.25).state_dict()  # a subset of r3d18's names
    with pytest.raises(CheckpointError, match="model tensors are not in it, e.g. layer1.1"):
        load_pretrained(target, shallow)
    old = {
        k: v
        for k, v in create_model("r3d18", num_classes=4, widen_factor=0.25).state_dict().items()
        if not k.endswith("num_batches_tracked")
    }  # PyTorch < 0.4.1 checkpoints: still a full load
    report = load_pretrained(target, old)
    assert len(report.loaded) == len(old) - 2 and all(k.endswith("num_batches_tracked") for k in report.missing)


def test_inflate_and_models_commands(tmp_path, cli):
    """``videoperlin inflate`` saves a 3D model that gives the 2D network's logits on a static clip
    (replicate padding: exact); ``videoperlin models`` lists the zoo with parameter counts."""
    torch.manual_seed(0)
    net2d = ResNet2d(Basic2d, (1, 1, 1, 1), widths=(64, 128, 256, 512), num_classes=10)  # the command: full width
    randomise_batchnorm(net2d)
    torch.save(net2d.eval().state_dict(), tmp_path / "resnet10_2d.pth")
    out = tmp_path / "r3d10-inflated"
    args = ["--model", "r3d10", "--num-classes", "10", "--source-classes", "10", "--temporal-padding", "replicate"]
    proc = cli("inflate", str(tmp_path / "resnet10_2d.pth"), *args, "--out", str(out))
    assert proc.returncode == 0 and f"wrote {out}" in proc.stdout, proc.stderr
    frame = torch.rand(1, 3, 64, 64)
    clip = frame[:, :, None].expand(-1, -1, 8, -1, -1)
    torch.testing.assert_close(load_model(out).eval()(clip), net2d(frame), atol=1e-4, rtol=1e-4)
    listing = cli("models", "--pattern", "r2p1d*")
    assert listing.returncode == 0 and "r2p1d18" in listing.stdout and "r3d18" not in listing.stdout


def test_a_model_directory_has_a_model_card_and_loads_offline(tmp_path, cli, monkeypatch):
    import videoperlin

    cli(
        "pretrain", "--model", "r3d10", "--widen-factor", "0.125", "--frames", "8", "--size", "32", "--num-videos",
        "8", "--set", "synthetic.val_videos=4", "--batch-size", "4", "--epochs", "1", "--amp", "off", "--out",
        tmp_path / "run", "-q", check=True,
    )  # fmt: skip
    cli("convert", tmp_path / "run/checkpoints/last.pt", "--out", tmp_path / "model", check=True)
    card = (tmp_path / "model/README.md").read_text()
    assert "# r3d10:" in card and "clips of 8 frames at 32x32 pixels" in card and "objective: classify" in card
    assert "best held-out top-1" in card and "videoperlin.from_pretrained" in card
    assert "- data: perlin clips (preset " in card and ", 8 per epoch" in card
    old = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)  # a record before 0.4: section vpn
    old["config"]["vpn"] = old["config"].pop("synthetic")
    torch.save(old, tmp_path / "old.pt")
    cli("convert", tmp_path / "old.pt", "--out", tmp_path / "old-model", check=True)
    assert (tmp_path / "old-model/README.md").read_text() == card.replace(
        str(tmp_path / "run/checkpoints/last.pt"), str(tmp_path / "old.pt")
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a local directory needs no network
    model = videoperlin.from_pretrained(tmp_path / "model")
    saved = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)["model"]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    videoperlin.save_pretrained(model, tmp_path / "again")
    assert videoperlin.from_pretrained(tmp_path / "again").config == model.config
    with pytest.raises(CheckpointError, match="the Hub repository could not be fetched"):
        videoperlin.from_pretrained("nobody-here/no-such-model")
