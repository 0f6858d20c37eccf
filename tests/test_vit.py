"""Video transformers, VideoMAE checkpoints, the masked-autoencoder objective, the fine-tuning recipe's
augmentations and layer-wise lr decay, and the textures family's labels."""

from __future__ import annotations

import json

import pytest
import torch
from video_fixtures import write_class_folders

from videoperlin.errors import CheckpointError, ConfigError
from videoperlin.models import create_model, list_models
from videoperlin.models.registry import architecture, stem_of
from videoperlin.models.videomae import from_videomae, import_videomae, to_huggingface, to_videomae
from videoperlin.train.augment import AugmentConfig, erase_box, mix, random_erase
from videoperlin.train.config import load_config
from videoperlin.train.engine import parameter_groups
from videoperlin.train.objectives.mae import (
    MAEOptions,
    MaskedAutoencoder,
    normalise_patches,
    patchify,
    tube_mask,
    unpatchify,
)
from videoperlin.vpn import SyntheticDataset, get_family

TINY_VIT_OPTIONS = {"tubelet_size": 2, "patch_size": 8}
CLIP = (2, 3, 8, 32, 32)  # 4 x 4 x 4 = 64 tokens


def vit(name: str = "vit_micro", classes: int = 5, **options):
    torch.manual_seed(0)
    return create_model(name, num_classes=classes, **{**TINY_VIT_OPTIONS, **options})


# ---- the registry and the network ------------------------------------------------------------


def test_every_transformer_is_registered_with_what_the_toolkit_needs():
    for name in ("vit_micro", "vit_tiny", "vit_small", "vit_base"):
        arch = architecture(name)
        assert (arch.family, arch.stem, arch.classifier, arch.tokens) == ("vit", "patch_embed.proj", "head", True)
        assert arch.frameworks == ("videomae",) and not arch.inflates_from_2d
    assert architecture("r3d18").stem == "conv1" and not architecture("r3d18").tokens
    widths = {n: create_model(n, num_classes=3, **TINY_VIT_OPTIONS).width for n in list_models("vit_*")}
    assert widths == {"vit_micro": 128, "vit_tiny": 192, "vit_small": 384, "vit_base": 768}


def test_the_transformer_embeds_tubelets_and_pools_its_tokens():
    model = vit()
    x = torch.randn(*CLIP)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 64, 128)  # (8/2) * (32/8) * (32/8) tokens
    assert torch.allclose(model.forward_head(tokens), model(x))
    assert model.forward_head(tokens, pre_logits=True).shape == (2, 128)
    assert stem_of(model) is model.patch_embed.proj and model.patch_embed.proj.kernel_size == (2, 8, 8)
    model.reset_classifier(7)
    assert model(x).shape == (2, 7) and model.config["num_classes"] == 7
    with pytest.raises(ConfigError, match=r"clip 7x32x32 .* is not a whole number of 2x8x8 tubelets"):
        model(torch.randn(1, 3, 7, 32, 32))


def test_drop_path_drops_whole_residual_branches_in_training_only():
    model = vit(drop_path=0.5)
    assert [round(b.drop_path, 3) for b in model.blocks][:3] == [0.0, round(0.5 / 7, 3), round(1 / 7, 3)]
    x = torch.randn(*CLIP)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, model(x))


def test_layer_ids_give_the_head_the_full_lr_and_each_block_less():
    config = load_config(
        sets=["model.name=vit_micro", "optim.name=adamw", "optim.layer_decay=0.5", "optim.decay_norms_and_biases=false"]
    )
    model = vit()
    groups = parameter_groups(model, model, config)
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    top = len(model.blocks) + 1
    assert scale[id(named["head.weight"])] == 1.0
    assert scale[id(named["blocks.7.mlp.fc1.weight"])] == 0.5
    assert scale[id(named["blocks.0.attn.qkv.weight"])] == 0.5 ** (top - 1)
    assert scale[id(named["patch_embed.proj.weight"])] == 0.5**top
    assert decay[id(named["blocks.0.attn.qkv.weight"])] == config.optim.weight_decay
    for name in ("blocks.0.norm1.weight", "blocks.0.attn.q_bias", "head.bias", "fc_norm.weight"):
        assert decay[id(named[name])] == 0.0, name
    resnet = create_model("r3d10", num_classes=3, widen_factor=0.125)
    (only,) = parameter_groups(resnet, resnet, load_config())  # the ResNet recipes: one group, model order
    assert only["params"] == list(resnet.parameters()) and only["lr_scale"] == 1.0


# ---- VideoMAE checkpoints --------------------------------------------------------------------


def test_the_videomae_layout_round_trips_both_ways():
    model = vit("vit_micro", classes=4)
    state = model.state_dict()
    back = from_videomae(to_videomae(state))
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)
    hf = to_huggingface(state)
    assert "videomae.encoder.layer.0.attention.attention.key.weight" in hf and "classifier.weight" in hf
    again = from_videomae(hf)
    assert again.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)
    imported = import_videomae(to_videomae(state))
    assert imported.config == {**model.config, "drop_path": 0.0}


def test_a_videomae_pretraining_checkpoint_gives_its_encoder():
    model = vit("vit_micro", classes=4)
    encoder = {k: v for k, v in model.state_dict().items() if not k.startswith(("head.", "fc_norm."))}
    release = {f"encoder.{k}": v for k, v in encoder.items()}
    release |= {"encoder.norm.weight": torch.ones(128), "encoder.norm.bias": torch.zeros(128)}
    release |= {"encoder_to_decoder.weight": torch.zeros(64, 128), "mask_token": torch.zeros(1, 1, 64)}
    release |= {"decoder.blocks.0.norm1.weight": torch.ones(64), "decoder.head.weight": torch.zeros(384, 64)}
    imported = import_videomae({"model": release}, "pretrain.pth")
    mine = imported.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in encoder.items())
    assert imported.config["name"] == "vit_micro" and imported.config["tubelet_size"] == 2


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("pos_embed", torch.zeros(1, 64, 128), "learned position embeddings"),
        ("blocks.0.gamma_1", torch.ones(128), "layer-scale"),
        ("norm.weight", torch.ones(128), "no mean pooling"),
    ],
)
def test_videomae_tensors_without_a_counterpart_are_refused_by_name(key, value, match):
    state = {**vit().state_dict(), key: value}
    with pytest.raises(CheckpointError, match=match):
        import_videomae(state, "their.pth")


def test_outputs_equal_hugging_faces_videomae_within_1e4():
    transformers = pytest.importorskip("transformers")
    config = transformers.VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=8,
        tubelet_size=2,
        hidden_size=128,
        num_hidden_layers=8,
        num_attention_heads=2,
        intermediate_size=512,
        num_labels=5,
        layer_norm_eps=1e-6,
        qkv_bias=True,
        use_mean_pooling=True,
    )
    torch.manual_seed(0)
    reference = transformers.VideoMAEForVideoClassification(config).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))  # not the initialisation's zeros and ones
    model = import_videomae(reference.state_dict(), "huggingface").eval()
    x = torch.randn(*CLIP)
    with torch.no_grad():
        theirs = reference(pixel_values=x.transpose(1, 2)).logits
        assert (model(x) - theirs).abs().max() < 1e-4
        reference.load_state_dict(to_huggingface(model.state_dict()), strict=True)  # and back, strictly
        assert (reference(pixel_values=x.transpose(1, 2)).logits - theirs).abs().max() == 0


def test_convert_takes_videomae_both_ways_and_refuses_a_resnet(tmp_path, cli):
    model = vit("vit_micro", classes=4)
    torch.save(to_videomae(model.state_dict()), tmp_path / "release.pth")
    cli("convert", tmp_path / "release.pth", "--from", "videomae", "--out", tmp_path / "ours", check=True)
    cli("convert", tmp_path / "ours", "--to", "videomae", "--out", tmp_path / "back.pth", check=True)
    back = torch.load(tmp_path / "back.pth", weights_only=True)["model"]
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())
    settings = json.loads((tmp_path / "back.json").read_text())
    assert settings["kwargs"]["embed_dim"] == 128 and settings["kwargs"]["tubelet_size"] == 2
    from videoperlin.models.weight_files import save_model

    save_model(create_model("r3d10", num_classes=3, widen_factor=0.125), tmp_path / "resnet")
    proc = cli("convert", tmp_path / "resnet", "--to", "videomae", "--out", tmp_path / "r.pth")
    assert proc.returncode == 2 and "r3d10 has no VideoMAE counterpart" in proc.stderr


# ---- the masked autoencoder ------------------------------------------------------------------


def test_tube_masks_hide_the_same_positions_in_every_frame():
    mask = tube_mask((4, 4, 4), 0.75, 3, torch.Generator().manual_seed(0))
    frames = mask.view(3, 4, 16)
    assert (frames == frames[:, :1]).all() and (frames.sum(dim=2) == 12).all()
    assert not torch.equal(frames[0, 0], frames[1, 0])  # each clip its own
    assert torch.equal(mask, tube_mask((4, 4, 4), 0.75, 3, torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError, match="mask_ratio 0.99 masks 16 of 16"):
        tube_mask((4, 4, 4), 0.99, 1, torch.Generator())


def test_patches_cover_the_clip_once_in_token_order_and_targets_are_normalised_per_tubelet():
    x = torch.randn(*CLIP)
    patches = patchify(x, 2, 8)
    assert patches.shape == (2, 64, 128, 3) and torch.equal(unpatchify(patches, CLIP, 2, 8), x)
    assert torch.equal(patches[0, 5, :, 1].view(2, 8, 8), x[0, 1, 0:2, 8:16, 8:16])  # token 5 = (t 0, row 1, col 1)
    normalised, _, _ = normalise_patches(patches)
    assert normalised.mean(dim=2).abs().max() < 1e-5 and (normalised.std(dim=2) - 1).abs().max() < 1e-3


def test_the_loss_is_read_on_the_masked_tubelets_only():
    autoencoder = MaskedAutoencoder(vit(), MAEOptions(norm_target=False))
    x = torch.randn(*CLIP)
    masked = tube_mask((4, 4, 4), 0.75, 2, torch.Generator().manual_seed(0))
    target = autoencoder.targets(x, masked)
    assert target.shape == (2, 48, 2 * 8 * 8 * 3)
    autoencoder.predict = lambda clips, m: target  # a perfect predictor of the masked tubelets
    assert autoencoder(x, masked).abs().max() == 0
    changed = x.clone()
    visible = unpatchify((~masked)[:, :, None, None].expand(2, 64, 128, 3).float(), CLIP, 2, 8) > 0
    changed[visible] += 1.0  # visible pixels are not targets
    assert torch.equal(autoencoder.targets(changed, masked), target)


def test_objectives_are_refused_where_they_cannot_run():
    with pytest.raises(ConfigError, match="mae masks tokens, and model r3d18 has none"):
        load_config(sets=["objective.name=mae"])
    with pytest.raises(ConfigError, match="mae is a pre-training objective; train fine-tunes with classify"):
        load_config(sets=["model.name=vit_micro", "objective.name=mae"], task="train")
    with pytest.raises(ConfigError, match="objective.mask_ratio is an option of objective mae, not classify"):
        load_config(sets=["objective.mask_ratio=0.5"])
    with pytest.raises(ConfigError, match="augment mixes and erases clips for classification"):
        load_config(sets=["model.name=vit_micro", "objective.name=mae", "augment.mixup=0.8"])
    with pytest.raises(ConfigError, match="model.widen_factor is an option of the r3d/r2p1d/mc3 models, not vit_micro"):
        load_config(sets=["model.name=vit_micro", "model.widen_factor=0.5"])


def mae_run(tmp_path, cli, name: str, *extra: str):
    cli(
        "pretrain", "--model", "vit_micro", "--set", "model.tubelet_size=2", "--set", "model.patch_size=8",
        "--set", "objective.name=mae", "--set", "objective.mask_ratio=0.75", "--frames", "8", "--size", "32",
        "--num-videos", "16", "--set", "synthetic.val_videos=8", "--batch-size", "4", "--epochs", "2", "--amp", "off",
        "--set", "optim.name=adamw", "--lr", "1e-3", "--out", tmp_path / name, "-q", *extra, check=True,
    )  # fmt: skip


def test_mae_pretraining_saves_the_encoder_resumes_exactly_and_fine_tunes_from_it(tmp_path, cli):
    mae_run(tmp_path, cli, "straight")
    mae_run(tmp_path, cli, "cut", "--max-steps", "5")
    mae_run(tmp_path, cli, "cut", "--resume")
    a, b = (torch.load(tmp_path / r / "checkpoints/last.pt", weights_only=True) for r in ("straight", "cut"))
    for part in ("model", "objective_state"):
        assert a[part].keys() == b[part].keys() and all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert not any(k.startswith(("decoder", "mask_token", "encoder")) for k in a["model"])
    assert {"mask_token", "encoder_to_decoder.weight", "decoder_head.weight"} <= set(a["objective_state"])
    records = [json.loads(line) for line in (tmp_path / "straight/metrics.jsonl").read_text().splitlines()]
    assert "train_acc" not in records[-1] and records[-1]["best_val_loss"] == min(r["val_loss"] for r in records)
    assert (tmp_path / "straight/figures/mae.png").stat().st_size > 5000
    init = tmp_path / "straight/checkpoints/last.pt"
    write_class_folders(tmp_path / "videos", per_class=4, frames=12)
    cli(
        "train", "--data", tmp_path / "videos", "--init", init, "--model", "vit_micro", "--set", "model.tubelet_size=2",
        "--set", "model.patch_size=8", "--frames", "8", "--size", "32", "--set", "data.short_side=32",
        "--epochs", "1", "--batch-size", "2", "--amp", "off", "--out", tmp_path / "ft", "-q", check=True,
    )  # fmt: skip
    tuned = torch.load(tmp_path / "ft/checkpoints/last.pt", weights_only=True)["model"]
    assert not torch.equal(tuned["blocks.0.attn.qkv.weight"], a["model"]["blocks.0.attn.qkv.weight"])


# ---- the fine-tuning recipe's augmentations --------------------------------------------------


def test_random_erasing_puts_one_box_through_every_frame():
    x = torch.zeros(6, 3, 4, 32, 32)
    erased = random_erase(x, 1.0, torch.Generator().manual_seed(0))
    for clip in erased:
        changed = clip != 0
        assert (changed == changed[:, :1]).all()  # the same box in every frame (and channel)
        area = changed[0, 0].float().mean()
        assert 0.015 < area < 0.34
    assert torch.equal(random_erase(x, 0.0, torch.Generator()), x)
    assert erase_box(1, 1, __import__("numpy").random.default_rng(0)) is None  # no box fits a pixel


def test_mixup_and_cutmix_mix_clips_and_labels_alike():
    x = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 1, 2, 8, 8).contiguous()
    labels = torch.tensor([0, 1, 2, 3])
    mixed, targets = mix(x, labels, 5, AugmentConfig(mixup=1.0), torch.Generator().manual_seed(0))
    lam = float(targets[0, 0])
    assert torch.allclose(targets.sum(1), torch.ones(4)) and 0 < lam < 1
    assert torch.allclose(mixed[0], lam * x[0] + (1 - lam) * x[3]) and targets[0, 3] == pytest.approx(1 - lam)
    mixed, targets = mix(x, labels, 5, AugmentConfig(cutmix=1.0), torch.Generator().manual_seed(1))
    pasted = mixed[0, 0] == 3.0
    assert (pasted == pasted[:1]).all()  # the same box in every frame
    assert targets[0, 3] == pytest.approx(float(pasted[0].float().mean()))
    same, onehot = mix(x, labels, 5, AugmentConfig(), torch.Generator())
    assert same is x and torch.equal(onehot.argmax(1), labels)


# ---- the textures family -----------------------------------------------------------------------


def test_a_textured_object_moves_as_labelled_carrying_its_texture():
    """Rigid motion (no turn, growth or acceleration): where the labelled object covers a pixel at the
    first and the last frame, the last frame moved back by the class's displacement equals the first."""
    family = get_family("textures")
    rigid = {"textures_rotation": 0.0, "textures_scaling": 0.0, "textures_acceleration": 0.0, "textures_objects": 1}
    labels = family.Labels(
        textures_kind=["spectrum", "dead_leaves"], textures_direction=[0, 90, 180, 270], textures_speed=[0.25, 0.5]
    )
    ds = SyntheticDataset(family.label_space(labels), 200, 16, 64, seed=4, family="textures", **rigid)
    checked = wrong = 0
    for index in range(0, 48, 3):  # whole pixels: 16 or 32 px along an axis
        params = ds.space.params(ds.label(index))
        dx, dy = (round(v) for v in ds.family.arrow(ds.label(index)))
        draws = ds.draws(torch.tensor([index]))
        u = draws.uniform("objects", 17 * 4).view(1, 4, 17)[:, 0]
        _, direction, speed = ds.family.class_table(torch.tensor([ds.label(index)]))
        radius, centre, _, _ = ds.family.poses(u, direction, speed)
        shift = centre[0, -1] - centre[0, 0]
        assert torch.allclose(shift, torch.tensor([dx, dy], dtype=torch.float64)), (params, shift)
        clip = ds[index][0][0]
        first, last = clip[0], clip[-1]
        ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        cx, cy = 31.5 + float(centre[0, 0, 0]), 31.5 - float(centre[0, 0, 1])
        core = ((xs - cx) ** 2 + (ys - cy) ** 2).sqrt() < 0.3 * float(radius[0])

        def error(ddx: int, ddy: int, first=first, last=last, core=core) -> float:
            moved = torch.roll(last, shifts=(ddy, -ddx), dims=(0, 1))  # +y is up: rows go the other way
            return float((moved[core] - first[core]).abs().max())

        assert core.sum() > 5 and error(dx, dy) < 1e-2, params  # bilinear samples at float32 positions
        wrong += error(dx + 2, dy) > 2e-2 and error(dx, dy - 2) > 2e-2  # the test could fail
        checked += 1
    assert checked == 16 and wrong >= 12


def test_texture_kinds_differ_as_their_definitions_say():
    """Dead leaves are flat discs (most neighbouring pixels equal); 1/f spectra vary smoothly everywhere."""
    from videoperlin.vpn.families.textures import LEAVES, dead_leaves, spectrum_textures

    g = torch.Generator().manual_seed(0)
    leaves = dead_leaves(torch.rand(4, LEAVES, 3, generator=g, dtype=torch.float64), 64)
    spectrum = spectrum_textures(
        torch.rand(4, 64 * 33, generator=g, dtype=torch.float64), torch.rand(4, 2, generator=g), 64
    )
    flat = lambda image: (image[:, :, 1:] == image[:, :, :-1]).float().mean()  # noqa: E731
    assert flat(leaves) > 0.8 and flat(spectrum) < 0.01
    power = torch.fft.rfft2(spectrum).abs() ** 2
    low, high = power[:, 1:4, 1:4].mean(), power[:, 16:20, 16:20].mean()
    assert low > 50 * high  # the amplitude falls as 1/f^alpha, alpha >= 1


def test_render_workers_change_no_clip(tmp_path, cli):
    """Batches rendered ahead by a worker process are the clips the training process renders itself."""
    for workers in (0, 1):
        cli(
            "pretrain", "--family", "textures", "--model", "r3d10", "--widen-factor", "0.125", "--frames", "8",
            "--size", "32", "--num-videos", "8", "--set", "synthetic.val_videos=4", "--batch-size", "4", "--epochs", "1",
            "--amp", "off", "--set", f"synthetic.workers={workers}", "--out", tmp_path / f"w{workers}", "-q", check=True,
        )  # fmt: skip
    a, b = (torch.load(tmp_path / f"w{w}/checkpoints/last.pt", weights_only=True)["model"] for w in (0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["r3d18", "r2p1d10", "mc3_10", "vit_micro"])
def test_no_weight_decay_names_exactly_the_biases_and_norms(name):
    model = create_model(name, num_classes=3, **({"widen_factor": 0.25} if "vit" not in name else TINY_VIT_OPTIONS))
    assert all(model.no_weight_decay(k) == (p.ndim <= 1) for k, p in model.named_parameters())


def test_the_reconstruction_figure_shows_distinct_videos_first():
    from videoperlin.train.objectives.mae import distinct_videos_first

    assert distinct_videos_first([5, 5, 5, 5, 7, 7, 9]) == [0, 4, 6, 1, 2, 3, 5]
    assert distinct_videos_first([1, 2, 3]) == [0, 1, 2]
