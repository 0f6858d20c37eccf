"""Label spaces: the one LabelSpace of every family, perlin's frequency spaces in it (index <-> frequency
round trips, presets, names, the still class), the one naming rule, and bad input."""

from __future__ import annotations

import json

import pytest

from videoperlin.errors import ConfigError
from videoperlin.vpn import PRESETS, LabelSpace, frequency_preset, frequency_space, frequency_space_from_dict
from videoperlin.vpn.families.perlin import PerlinFamily, PerlinLabels
from videoperlin.vpn.labels import DEFAULT_PRESET
from videoperlin.vpn.source import ClipSource


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip(name):
    space = frequency_preset(name)
    spec = PRESETS[name]
    static_triples = len(spec["fx"]) * len(spec["fy"]) * len(spec["ft"])
    motions = len(spec.get("direction", [0])) * (len(spec.get("speed", [1])) - (0 in spec.get("speed", [1]))) + (
        0 in spec.get("speed", [])
    )
    assert len(space) == static_triples * motions
    seen = set()
    for k in range(len(space)):
        params = space.params(k)
        assert space.index(**params) == k and space.index(*params.values()) == k
        seen.add(tuple(params.values()))
    assert len(seen) == len(space) and len(set(space.names())) == len(space)


def test_motion_axes_names_params_and_the_static_class():
    space = frequency_space(fx=[4], fy=[2, 4], ft=[1], direction=[45, 90, 270], speed=[0, 0.25, 2])
    assert len(space) == 2 * (3 * 2 + 1) and space.still == ("direction", "speed")
    assert space.name(0) == "x004_y002_t01_d045_s0" and space.name(1) == "x004_y002_t01_d045_s0p25"
    assert space.params(2) == {"fx": 4, "fy": 2, "ft": 1, "direction": 45, "speed": 2.0}
    assert space.index(4, 2, 1, direction=270, speed=0) == 0  # a static class has no direction
    assert space.params(space.index(4, 4, 1, 90, 0.25))["direction"] == 90
    assert frequency_space_from_dict(space.to_dict()) == space and frequency_preset("low").params(0) == {
        "fx": 1,
        "fy": 1,
        "ft": 1,
    }
    assert frequency_preset("motion").name(len(frequency_preset("motion")) - 1) == "x008_y008_t01_d315_s4"
    for kwargs, message in [
        ({"direction": [0]}, "direction and speed must be given together"),
        ({"direction": [0, 360], "speed": [1]}, "whole degrees in 0..359"),
        ({"direction": [10.5], "speed": [1]}, "whole degrees"),
        ({"direction": [0], "speed": [-1]}, "lattice cells per clip"),
        ({"direction": [0], "speed": [0.501, 0.499]}, "list a value twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            frequency_space(fx=[1], fy=[1], ft=[1], **kwargs)


def test_index_order_is_fx_outermost_and_names_are_zero_padded():
    space = frequency_space(fx=[4, 8], fy=[12, 1], ft=[2, 1, 3])
    triple = lambda k: tuple(space.params(k).values())  # noqa: E731
    assert triple(0) == (4, 12, 2) and triple(1) == (4, 12, 1) and triple(3) == (4, 1, 2) and triple(6) == (8, 12, 2)
    assert space.name(space.index(4, 12, 2)) == "x004_y012_t02"


def test_paper_preset_facts():
    assert (max(frequency_preset("high").fx), max(frequency_preset("high").fy)) == (24, 24)  # reaches x024_y024
    low, high = frequency_preset("low"), frequency_preset("high")
    assert max(low.fx) <= min(high.fx) and len(low) == len(high) and low.ft == high.ft


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"fx": [0, 1], "fy": [1], "ft": [1]}, "fx frequency 0"),
        ({"fx": [1], "fy": [-3], "ft": [1]}, "fy frequency -3"),
        ({"fx": [1], "fy": [1], "ft": [1.5]}, "ft frequency 1.5"),
        ({"fx": [1, 1], "fy": [1], "ft": [1]}, "twice"),
        ({"fx": [], "fy": [1], "ft": [1]}, "non-empty"),
        ({"fx": ["2"], "fy": [1], "ft": [1]}, "not an integer"),
    ],
)
def test_bad_frequencies_name_the_value(spec, message):
    with pytest.raises(ConfigError, match=message):
        frequency_space(**spec)


def test_unknown_preset_and_lookups():
    with pytest.raises(ConfigError, match="preset 'medium' is not a preset of family perlin"):
        frequency_preset("medium")
    space = frequency_preset("tiny")
    with pytest.raises(ConfigError, match="not a class"):
        space.index(2, 2, 2)
    with pytest.raises(ConfigError, match="out of range"):
        space.params(len(space))


def test_from_file_and_dict_round_trip(tmp_path):
    space = frequency_space(fx=[1, 3], fy=[2], ft=[1, 2])
    (tmp_path / "s.json").write_text(json.dumps(space.to_dict()))
    (tmp_path / "s.yaml").write_text("fx: [1, 3]\nfy: [2]\nft: [1, 2]\n")
    assert PerlinFamily.label_space(PerlinLabels(labels=str(tmp_path / "s.json"))) == space
    assert PerlinFamily.label_space(PerlinLabels(labels=str(tmp_path / "s.yaml"))) == space
    with pytest.raises(ConfigError, match="missing ft"):
        frequency_space_from_dict({"fx": [1], "fy": [1]})
    with pytest.raises(ConfigError, match="cannot read"):
        PerlinFamily.label_space(PerlinLabels(labels=str(tmp_path / "absent.json")))


def test_one_rule_names_the_label_space(tmp_path):
    """Every family, perlin included, names its space through choose_axes: exactly one of preset, axis lists,
    labels file; with none, the family's default preset."""
    name = lambda **kw: PerlinFamily.label_space(PerlinLabels(**kw))  # noqa: E731
    assert name() == frequency_preset(DEFAULT_PRESET) and name(preset="tiny") == frequency_preset("tiny")
    assert name(fx=[1, 2], fy=[1], ft=[1, 4]) == frequency_space([1, 2], [1], [1, 4])
    (tmp_path / "s.yaml").write_text("fx: [1, 3]\nfy: [2]\nft: [1, 2]\n")
    assert name(labels=str(tmp_path / "s.yaml")) == frequency_space([1, 3], [2], [1, 2])
    with pytest.raises(
        ConfigError, match="give only one of preset, the perlin axis lists .* or labels .got preset and"
    ):
        name(preset="low", fx=[1], fy=[1], ft=[1])  # the CLI and the config used to disagree here
    with pytest.raises(ConfigError, match="perlin label space is missing ft"):
        name(fx=[1], fy=[1])
    assert ClipSource(fx=[1, 2], fy=[1], ft=[1]).label_space() == frequency_space([1, 2], [1], [1])
    moving = ClipSource(fx=[2], fy=[2], ft=[1], direction=[0, 180], speed=[0.5]).label_space()
    assert moving.names() == ["x002_y002_t01_d000_s0p5", "x002_y002_t01_d180_s0p5"]
    with pytest.raises(ConfigError, match="give only one of preset, the perlin axis lists"):
        name(preset="low", direction=[0], speed=[0.5])  # motion axes go with explicit lists
    with pytest.raises(ConfigError, match="preset 'medium' is not a preset of family perlin; its presets: low, high"):
        ClipSource(preset="medium")


def test_one_label_space_class_serves_every_family():
    """Perlin's frequency spaces and the other families' grids are the same class with the same interface."""
    from videoperlin.vpn import get_family

    spaces = [get_family(n).label_space(get_family(n).Labels()) for n in ("perlin", "layers", "shapes", "textures")]
    assert all(type(s) is LabelSpace for s in spaces)
    for space in spaces:
        k = len(space) - 1
        assert space.index(**space.params(k)) == k and LabelSpace(space.to_dict()).to_dict() == space.to_dict()
