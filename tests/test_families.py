"""Formula families as plug-ins (vpn/family.py): the toy family of tests/toy_family.py is one file,
registered on import, and every entry point takes it by name -- the dataset (both random back-ends),
`families`, `generate` (flags and dataset.json), `preview`, `pretrain` (config keys), `videoperlin
config` and the transfer study's pretrain_arms -- with no other file touched."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
import yaml

from videoperlin.cli import main
from videoperlin.errors import ConfigError
from videoperlin.study.protocol import load_protocol
from videoperlin.train.config import builtin_config, load_config
from videoperlin.train.engine import Trainer
from videoperlin.vpn import SyntheticDataset, get_family, load_families
from videoperlin.vpn.draws import DrawLayout, GeneratorDraws
from videoperlin.vpn.export import load_exported_dataset
from videoperlin.vpn.source import ClipSource


def toy(**options) -> SyntheticDataset:
    family = get_family("toy")
    return SyntheticDataset(
        family.label_space(family.Labels(preset="many")),
        num_videos=40,
        frames=16,
        size=8,
        seed=2,
        family="toy",
        **options,
    )


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
    with pytest.raises(ConfigError, match="unknown family 'tv'; families are layers, perlin, shapes, textures, toy"):
        get_family("tv")


def test_generate_and_preview_take_the_family_by_name(tmp_path, capsys):
    out = tmp_path / "toy"
    assert (
        main(
            [
                "generate",
                "--family",
                "toy",
                "--preset",
                "many",
                "--flicker-depth",
                "0.8",
                "--num-videos",
                "8",
                "--frames",
                "8",
                "--size",
                "16",
                "--format",
                "npy",
                "--out",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    record = json.loads((out / "dataset.json").read_text())["synthetic"]
    assert (
        record["family"] == "toy"
        and record["flicker_depth"] == 0.8
        and record["label_space"] == {"cycles": [1, 2, 3, 4]}
    )
    assert "octaves" not in record  # only the family's own options are recorded
    again = load_exported_dataset(out)
    assert again.family.name == "toy" and torch.equal(again[3][0], toy_like(record)[3][0])
    assert main(["preview", "--family", "toy", "--out", str(tmp_path / "grid.png"), "--gif"]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 1000 and (tmp_path / "grid.gif").exists()


def toy_like(record: dict) -> SyntheticDataset:
    return SyntheticDataset.from_dict(record)


def test_options_of_another_family_are_refused_by_name():
    with pytest.raises(ConfigError, match="octaves is an option of family perlin, not toy"):
        ClipSource(family="toy", octaves=2)
    with pytest.raises(ConfigError, match="preset 'low' is not a preset of family toy; its presets: few, many"):
        ClipSource(family="toy", preset="low")
    with pytest.raises(ConfigError, match="synthetic.family 'tv' must be one of layers, perlin, shapes, textures, toy"):
        load_config(None, None, ["synthetic.family=tv"], task="pretrain")


def test_pretrain_and_config_take_the_family_by_name(tmp_path, capsys):
    config = load_config(
        None,
        {
            "train.out": str(tmp_path / "run"),
            "model.name": "r3d10",
            "model.widen_factor": 0.125,
            "data.frames": 8,
            "data.size": 16,
            "train.epochs": 1,
            "train.batch_size": 4,
            "synthetic.num_videos": 16,
            "synthetic.val_videos": 8,
            "train.progress": False,
            "train.amp": "off",
        },
        ["synthetic.family=toy", "synthetic.cycles=1,2", "synthetic.flicker_depth=0.9"],
        task="pretrain",
    )
    Trainer(config).fit()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["synthetic"]
    assert (saved["family"], saved["cycles"], saved["flicker_depth"]) == ("toy", [1, 2], 0.9)
    assert main(["config"]) == 0
    assert "flicker_depth: 0.4" in capsys.readouterr().out


def test_the_study_takes_a_family_as_an_arm():
    protocol = load_protocol(
        builtin_config("transfer_default"),
        [
            "pretrain_arms.flicker.synthetic.family=toy",
            "pretrain_arms.flicker.synthetic.preset=many",
            "arms=[scratch, flicker]",
        ],
    )
    config = protocol.pretrain_config("flicker", "r3d18", 0, "-")
    assert (config.synthetic.family, len(config.synthetic.label_space())) == ("toy", 4)


def test_a_generator_family_must_draw_in_its_declared_order():
    draws = GeneratorDraws(0, torch.tensor([1, 2]), DrawLayout(("a", "b"), {"a": 0, "b": 4}))
    with pytest.raises(RuntimeError, match="draw 'b' out of order: the generator format draws 'a' next"):
        draws.uniform("b", 1)
    with pytest.raises(ValueError, match="must name each slot"):
        DrawLayout(("a",), {"a": 0, "b": 1})


# ---- the layers and shapes families: their labels are true ------------------------------------


def family_set(name: str, frames: int = 16, size: int = 64, **options) -> SyntheticDataset:
    family = get_family(name)
    return SyntheticDataset(
        family.label_space(family.Labels()), num_videos=400, frames=frames, size=size, seed=3, family=name, **options
    )


def test_a_layer_moves_as_labelled_relative_to_the_background():
    """The known mask and whole-pixel motion: with the background still and 60 px frames, a layer of
    relative speed 0.25 crosses exactly 1 px per frame, so where its (known) mask is opaque frame t must
    equal frame 0 moved by the label, and where it is transparent the background must stay (to the
    1e-3 a soft edge lets through; a wrong motion differs by ~0.1); a still class stays whole."""
    from videoperlin.vpn.scene import warp

    ds = family_set("layers", size=60, layers_count=1, layers_background_speed=0.0)
    for direction in (0, 90, 180, 270, None):
        label = ds.space.index(layers_direction=direction or 0, layers_speed=0.0 if direction is None else 0.25)
        dx, dy = (
            (0, 0)
            if direction is None
            else (round(math.cos(math.radians(direction))), round(math.sin(math.radians(direction))))
        )
        checked = 0
        for index in range(label, 400, len(ds.space)):  # clips of this class whose layer shows enough of itself
            clip = ds[index][0][0]
            scene = ds.family.plan(ds.draws(torch.tensor([index])), torch.tensor([label]))
            mask = warp(scene.layers[0][1], scene.layers[0][2], scene.camera, (60, 60))[0, 0]
            regions = [layer_regions(mask, dx, dy, t) for t in (3, 9)]
            if any(inside.sum() < 100 or behind.sum() < 100 for inside, behind in regions):
                continue
            for t, (inside, behind) in zip((3, 9), regions):
                moved = torch.roll(clip[0], shifts=(-dy * t, dx * t), dims=(0, 1))  # content moves dx right, dy up
                assert (clip[t][inside] - moved[inside]).abs().max() < 1e-3, (direction, t)  # a wrong motion: ~0.1
                assert (clip[t][behind] - clip[0][behind]).abs().max() < 1e-3, (direction, t)
            checked += 1
        assert checked >= 2, direction


def layer_regions(mask: torch.Tensor, dx: int, dy: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the layer is opaque at frame t and was at the source pixel at frame 0 (not across the frame's
    edge), and where it was transparent at both frames (what shows through a soft edge: < 1e-3 of it)."""
    size = mask.shape[-1]
    inside = (mask[t] > 0.999) & (torch.roll(mask[0], shifts=(-dy * t, dx * t), dims=(0, 1)) > 0.999)
    inside[:, : abs(dx) * t] = inside[:, size - abs(dx) * t :] = False  # roll wraps: not the frame's edge
    inside[: abs(dy) * t] = inside[size - abs(dy) * t :] = False
    return inside, (mask[t] < 0.001) & (mask[0] < 0.001)


def test_the_plan_moves_the_labelled_layer_by_its_class_and_everything_by_the_camera():
    ds = family_set("layers")
    labels = torch.arange(len(ds.space))
    scene = ds.family.plan(ds.draws(labels), labels)
    for k in labels.tolist():
        params = ds.space.params(k)
        expected = unit_direction_of(params) * params["layers_speed"] * 64
        torch.testing.assert_close(scene.layers[0][2][k, -1], expected, atol=1e-9, rtol=0)
    assert scene.camera.shift[:, -1].norm(dim=1).max() <= 0.5 * 64 + 1e-9 and scene.camera.shift[:, 0].abs().max() == 0


def test_the_camera_turns_and_zooms_the_frame_about_its_centre():
    from videoperlin.vpn.scene import Camera, canvas_map

    def shown(camera: Camera) -> tuple[float, float]:
        """Canvas (column, row) the frame pixel at row 4, column 8 of a 9 x 9 frame shows (x = 1, y = 0 normalised)."""
        theta = canvas_map(torch.zeros(1, 1, 2, dtype=torch.float64), camera, (9, 9), (9, 9))[0, 0]
        column, row = theta @ torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
        return round(float(column), 9), round(float(row), 9)

    one, none = torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    still = torch.zeros(1, 1, 2, dtype=torch.float64)
    assert shown(Camera(one, none, still)) == (8.0, 4.0)
    assert shown(Camera(one, none + 90.0, still)) == (4.0, 8.0)  # turned a quarter: right of centre shows below it
    assert shown(Camera(one * 2.0, none, still)) == (6.0, 4.0)  # zoomed 2x: 4 px right shows what was 2 px right
    assert shown(Camera(one, none, still + torch.tensor([1.0, 2.0], dtype=torch.float64))) == (7.0, 6.0)


def unit_direction_of(params: dict) -> torch.Tensor:
    angle = math.radians(params["layers_direction"])
    return torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)


def test_a_nearer_layer_occludes_the_one_behind():
    """Where the distractor in front is opaque (its known mask), the clip shows its texture and nothing of
    the labelled layer or the background behind it."""
    from videoperlin.vpn.scene import warp

    ds = family_set("layers", layers_count=2)
    checked = 0
    for index in range(12):
        clip = ds[index][0][0]
        scene = ds.family.plan(ds.draws(torch.tensor([index])), torch.tensor([ds.label(index)]))
        texture, mask, offset = scene.layers[1]
        front = warp(torch.cat([texture, mask], 1), offset, scene.camera, (64, 64))[0]
        covered = front[-1] > 0.999
        if covered.float().mean() < 0.05:
            continue
        assert (clip[covered] - front[0][covered]).abs().max() < 2e-3  # the distractor, not what is behind it
        behind = warp(scene.layers[0][0], scene.layers[0][2], scene.camera, (64, 64))[0, 0]
        assert (clip[covered] - behind[covered]).abs().mean() > 0.02  # and what is behind would look otherwise
        checked += 1
    assert checked >= 3


def test_separation_keeps_the_labelled_layer_apart_from_the_background():
    """Mean gray of the labelled layer's texture against the background's (each a level plus a faint,
    near-zero-mean field): independent levels let some layers blend in; ``layers_separation`` keeps
    every one at least that far, on either side."""

    def gaps(**options) -> torch.Tensor:
        ds = family_set("layers", **options)
        labels = torch.arange(64) % len(ds.space)
        scene = ds.family.plan(ds.draws(torch.arange(64)), labels)
        return scene.layers[0][0].mean((1, 2, 3)) - scene.background.mean((1, 2, 3))

    assert gaps().abs().min() < 0.05
    separated = gaps(layers_separation=0.3)
    assert separated.abs().min() > 0.3 - 0.03 and (separated > 0).any() and (separated < 0).any()
    with pytest.raises(ConfigError, match="layers_separation"):
        family_set("layers", layers_separation=0.5)


def test_contrast_scales_every_texture_about_its_level():
    """``layers_contrast`` scales each texture's departure from its gray level (background and layers
    alike) and nothing else: textures at contrasts 0.05, 0.1 and 0.15 step by equal amounts wherever none
    is clipped to [0, 1]. (That the default, 0.15, leaves every clip bit for bit as it was before the
    option existed was checked against bb939a5 when it was added.)"""

    def textures(contrast: float) -> torch.Tensor:
        ds = family_set("layers", layers_contrast=contrast)
        scene = ds.family.plan(ds.draws(torch.arange(16)), torch.arange(16) % len(ds.space))
        return torch.stack([scene.background, scene.layers[0][0]])  # (2, B, C, H, W)

    low, mid, high = textures(0.05), textures(0.1), textures(0.15)
    inside = torch.stack([low, mid, high]).gt(0).all(0) & torch.stack([low, mid, high]).lt(1).all(0)
    assert inside.float().mean() > 0.9
    step = (mid - low)[inside]
    assert torch.allclose((high - mid)[inside], step, atol=1e-5) and step.abs().mean() > 0.01
    assert textures(0.3).std(dim=(2, 3, 4)).mean() > 1.5 * high.std(dim=(2, 3, 4)).mean()
    with pytest.raises(ConfigError, match="layers_contrast"):
        family_set("layers", layers_contrast=0.0)


def test_still_classes_do_not_move_and_options_shape_the_motion():
    ds = family_set("layers", layers_acceleration=0.5, layers_zoom=0.3, layers_rotation=20.0)
    still = ds.space.index(layers_direction=0, layers_speed=0)
    labels = torch.tensor([still, 1, 2])
    scene = ds.family.plan(ds.draws(torch.tensor([still, 1, 2])), labels)
    assert torch.equal(scene.layers[0][2][0], torch.zeros(16, 2, dtype=torch.float64))  # rides with the background
    steps = scene.layers[0][2][1].diff(dim=0).norm(dim=1)
    assert not torch.allclose(steps[0], steps[-1])  # acceleration: the speed changes over the clip
    assert (scene.camera.zoom[:, 0] == 1).all() and ((scene.camera.zoom[:, -1] - 1).abs() <= 0.3).all()
    assert (scene.camera.rotation[:, -1].abs() <= 20).all() and scene.camera.rotation[:, -1].abs().max() > 0
    plain = family_set("layers").family.plan(family_set("layers").draws(torch.tensor([1])), torch.tensor([1]))
    assert (plain.camera.zoom == 1).all() and (plain.camera.rotation == 0).all()


@pytest.mark.parametrize("name", ["layers", "shapes"])
def test_colour_is_an_option_of_the_new_families_and_of_perlin(name):
    gray, colour = family_set(name)[3][0], family_set(name, colour=0.8)[3][0]
    assert torch.equal(gray[0], gray[1]) and not torch.equal(colour[0], colour[1])
    perlin = SyntheticDataset(
        get_family("perlin").label_space(get_family("perlin").Labels(preset="tiny")), 8, 8, 32, 0, colour=0.8
    )[2][0]
    assert not torch.equal(perlin[0], perlin[2])


def test_a_shape_moves_as_labelled_and_keeps_its_kind():
    ds = family_set("shapes")
    moved = 0
    for index in range(40):
        params, clip = ds.space.params(ds.label(index)), ds[index][0][0]
        level = clip[0, 0, 0]  # a corner: background (paths keep the object inside)
        inside = (clip - level).abs() > 0.1  # the object contrasts by >= 0.25 with the flat background
        ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        centroid = [torch.stack([(xs * m).sum() / m.sum(), -(ys * m).sum() / m.sum()]) for m in inside.float()]
        shift = centroid[-1] - centroid[0]
        angle = math.radians(params["shapes_direction"])
        expected = torch.tensor([math.cos(angle), math.sin(angle)]) * params["shapes_speed"] * 64
        assert (shift - expected).abs().max() < 1.0, (index, params, shift, expected)
        moved += params["shapes_speed"] > 0
    assert moved >= 20
    counter = family_set("shapes", rng="counter")
    assert counter[5][0].shape == (3, 16, 64, 64) and not torch.equal(counter[5][0], ds[5][0])


def test_shapes_distractors_stay_behind_and_the_background_option_textures_it():
    """Distractors are drawn from draws of their own: the labelled object is the same with or without
    them, and where it is opaque it hides them; a textured background varies, a flat one does not."""
    plain, busy = family_set("shapes"), family_set("shapes", shapes_distractors=2)
    differs = 0
    for index in range(10):
        a, b = plain[index][0][0], busy[index][0][0]
        level = a[0, 0, 0]
        core = (a - level).abs() > 0.999 * (a - level).abs().amax()  # the object's opaque inside, every frame
        assert core.sum() > 50 and (b[core] - a[core]).abs().max() < 1e-3, index
        differs += bool((b - a).abs().amax() > 0.1)  # the distractors are there, elsewhere
        assert ((a - level).abs() < 1e-3).float().mean() > 0.6  # flat: the background is one level
    assert differs >= 8
    textured = family_set("shapes", shapes_background="texture")[3][0][0, 0]
    assert textured.std() > 0.03
    from videoperlin.vpn.families.shapes import signed_distance

    x, y = torch.tensor([[[[0.0, 9.0, 0.0]]]]), torch.tensor([[[[0.0, 0.0, 11.0]]]])
    r = torch.tensor([10.0])
    assert (signed_distance("circle", x, y, r)[0, 0, 0] < 0).tolist() == [True, True, False]
    assert (signed_distance("square", x, y, r)[0, 0, 0] < 0).tolist() == [True, False, False]


#: Every family's presets on both random back-ends (commit before the one label space): class count, a digest of
#: the class names, the labels of clips 0, 7 and 33 of a 64-clip set, and the rendered batch pinned by its sum and
#: one voxel (to float tolerance: a float32 matmul's bits may differ between CPUs; a changed draw moves both far more).
FAMILY_PINS = [
    ("perlin", "low", "generator", 108, "d386b82c342e", [0, 7, 33], 34508.571, 0.373609),
    ("perlin", "low", "counter", 108, "d386b82c342e", [0, 7, 33], 33042.386, 0.5037),
    ("perlin", "high", "generator", 108, "67529c97b15b", [0, 7, 33], 36248.407, 0.352336),
    ("perlin", "high", "counter", 108, "67529c97b15b", [0, 7, 33], 37294.203, 0.430068),
    ("perlin", "wide", "generator", 324, "b3698bd060db", [0, 7, 33], 35415.941, 0.344308),
    ("perlin", "wide", "counter", 324, "b3698bd060db", [0, 7, 33], 40055.067, 0.751812),
    ("perlin", "tiny", "generator", 8, "ae6330b8ad1a", [0, 7, 1], 37762.164, 0.57517),
    ("perlin", "tiny", "counter", 8, "ae6330b8ad1a", [0, 7, 1], 37479.798, 0.530926),
    ("perlin", "motion", "generator", 153, "eabbd83a0698", [0, 7, 33], 35570.236, 0.61457),
    ("perlin", "motion", "counter", 153, "eabbd83a0698", [0, 7, 33], 36951.982, 0.59238),
    ("layers", "default", "generator", 17, "77bee1e8cc7c", [0, 7, 16], 40197.496, 0.652675),
    ("layers", "default", "counter", 17, "77bee1e8cc7c", [0, 7, 16], 40007.531, 0.446986),
    ("shapes", "default", "generator", 68, "1ba06e4e0c34", [0, 7, 33], 36346.462, 0.398793),
    ("shapes", "default", "counter", 68, "1ba06e4e0c34", [0, 7, 33], 37135.916, 0.40708),
    ("shapes", "circles", "generator", 17, "03bcb34de2d8", [0, 7, 16], 36438.62, 0.398793),
    ("shapes", "circles", "counter", 17, "03bcb34de2d8", [0, 7, 16], 37204.549, 0.40708),
    ("textures", "default", "generator", 34, "8dff0de43c08", [0, 7, 33], 31231.393, 0.322346),
    ("textures", "default", "counter", 34, "8dff0de43c08", [0, 7, 33], 43123.575, 0.596476),
]


@pytest.mark.parametrize("name, preset, rng, classes, names, labels, total, voxel", FAMILY_PINS)
def test_every_family_and_back_end_renders_its_pinned_labels_and_clips(
    name, preset, rng, classes, names, labels, total, voxel
):
    family = get_family(name)
    space = family.label_space(family.Labels(preset=preset))
    ds = SyntheticDataset(space, num_videos=64, frames=8, size=32, seed=5, family=name, rng=rng)
    clips, drawn = ds.batch([0, 7, 33])
    assert len(space) == classes and hashlib.sha256("\n".join(space.names()).encode()).hexdigest()[:12] == names
    assert [int(k) for k in drawn] == labels
    clips = clips.double()
    assert abs(clips.sum().item() - total) < 2e-3 and abs(clips[1, 0, 3, 17, 5].item() - voxel) < 1e-5


@pytest.mark.parametrize("name", ["perlin", "layers", "shapes", "textures"])
def test_every_familys_label_space_and_dataset_pickle_for_worker_processes(name):
    """Worker processes started by spawn (macOS, Windows) receive the dataset pickled: its label space's name
    formats must be module-level functions, not lambdas."""
    import pickle

    family = get_family(name)
    ds = SyntheticDataset(family.label_space(family.Labels()), num_videos=8, frames=4, size=16, family=name)
    again = pickle.loads(pickle.dumps(ds))
    assert again.space == ds.space and again.space.names() == ds.space.names() and torch.equal(again[3][0], ds[3][0])
