"""Configs that describe themselves: every fact in one place and everything else derived from it.

An option of a formula family is one field of that family and nothing else; these tests fail if some
place (a flag, a config key, dataset.json) stops deriving from it. Also: every field has a doc, shortcut
flags parse by their field's type, `videoperlin config` prints a recipe that loads back, old keys
are refused by name (and migrated in stored records), and no function in src/ exceeds 60 lines.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
from pathlib import Path

import pytest
import yaml

from videoperlin.cli import build_parser
from videoperlin.cli.training import COMMAND_SHORTCUTS
from videoperlin.config_fields import describe, type_name
from videoperlin.errors import ConfigError
from videoperlin.train.config import (
    SHORTCUTS,
    RunConfig,
    builtin_config,
    config_from_record,
    field_annotation,
    load_config,
)
from videoperlin.vpn.family import load_families

SRC = Path(__file__).resolve().parents[1] / "src" / "videoperlin"


def subparser(name: str):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[name]


def family_fields() -> dict[str, tuple[str, object]]:
    """Every option and label field of every registered family (the toy family of the tests included):
    name -> (family, default)."""
    return {
        f.name: (family.name, f.default if f.default is not dataclasses.MISSING else f.default_factory())
        for family in load_families().values()
        for group in (family.Options, family.Labels)
        for f in dataclasses.fields(group)
    }


@pytest.mark.parametrize("command", ["generate", "preview"])
def test_every_family_option_is_a_flag(command):
    dests = {a.dest for a in subparser(command)._actions}
    assert {"toy", "perlin", "layers", "shapes"} <= {family for family, _ in family_fields().values()}
    assert set(family_fields()) | {"family", "num_videos", "frames", "size", "seed"} <= dests
    args = subparser(command).parse_args(
        [
            "--out",
            "x",
            "--no-random-phase",
            "--octaves",
            "2",
            "--fx",
            "1,2",
            "--fy",
            "1",
            "--ft",
            "1",
            "--label-mode",
            "shuffled",
        ]
    )
    assert (args.random_phase, args.octaves, args.fx, args.label_mode) == (False, 2, [1, 2], "shuffled")


def test_every_family_option_is_a_config_key_with_its_default():
    config = RunConfig()
    for name, (_, default) in family_fields().items():
        assert getattr(config.synthetic, name) == default, name
        assert field_annotation(f"synthetic.{name}") is not None


def test_every_field_has_a_doc_and_a_type():
    rows = describe(RunConfig)
    assert len(rows) > 60
    for key, kind, _, doc in rows:
        assert doc and len(doc) > 8, f"{key} has no doc"
        assert kind, key


@pytest.mark.parametrize("command", sorted(COMMAND_SHORTCUTS))
def test_shortcut_flags_parse_by_their_fields_type(command):
    parser = subparser(command)
    for flag in COMMAND_SHORTCUTS[command]:
        action = next(a for a in parser._actions if a.dest == flag)
        assert action.metavar == type_name(field_annotation(SHORTCUTS[flag]))
        assert f"[{SHORTCUTS[flag]}]" in action.help
    base = ["somewhere"] if command == "check-data" else ["--checkpoint", "x"] if command == "evaluate" else []
    if "frames" in COMMAND_SHORTCUTS[command]:
        assert parser.parse_args([*base, "--frames", "8"]).frames == 8
    if command in ("pretrain", "train"):
        args = parser.parse_args(["--amp", "off", "--lr", "0.5", "--epochs", "3"])
        assert (args.amp, args.lr, args.epochs) == ("off", 0.5, 3)  # 'off' stays a word, not YAML's False


def test_bad_flag_values_are_one_line_errors(cli):
    for args, message in [
        (["pretrain", "--epochs", "three"], "argument --epochs: value 'three' is not an integer"),
        (["pretrain", "--amp", "fp8"], "argument --amp: 'fp8' must be one of auto, off, bf16, fp16"),
        (["train", "--lr", "fast"], "argument --lr: value 'fast' is not a number"),
        (["pretrain", "--set", "synthetic.octaves=0"], "synthetic.octaves 0 must be >= 1 (fractal octaves"),
        (["pretrain", "--set", "synthetic.presett=low"], "unknown config field 'synthetic.presett'"),
    ]:
        proc = cli(*args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_config_command_prints_a_recipe_that_loads_back(tmp_path, cli):
    proc = cli("config", "--config", "pretrain_cpu", "--set", "optim.lr=0.03", check=True)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(proc.stdout)
    printed = load_config(recipe)
    assert printed == load_config(builtin_config("pretrain_cpu"), None, ["optim.lr=0.03"])
    assert "# base learning rate" in proc.stdout and "[{auto,off,bf16,fp16}]" in proc.stdout


def test_old_keys_are_refused_by_name_and_migrated_in_records(tmp_path):
    (tmp_path / "old.yaml").write_text("task: train\ndata: {data: videos/, val_data: more/}\n")
    with pytest.raises(ConfigError, match="config key data.data was renamed to data.path"):
        load_config(tmp_path / "old.yaml")
    with pytest.raises(ConfigError, match="data.val_data was renamed to data.val_path"):
        load_config(None, None, ["data.val_data=more/"])
    record = yaml.safe_load((tmp_path / "old.yaml").read_text())
    record["vpn"] = {"preset": "low", "fx": [1, 2], "fy": [1], "ft": [1]}  # old configs preferred the lists silently
    config = config_from_record(record)
    assert (config.data.path, config.data.val_path, config.synthetic.preset) == ("videos/", "more/", None)
    assert config.synthetic.label_space().fx == (1, 2)


def test_recipes_and_protocol_load():
    for path in (SRC / "configs").glob("*.yaml"):
        if path.stem.startswith("transfer"):
            from videoperlin.study.protocol import load_protocol

            assert load_protocol(path).arms[0] == "scratch"
        else:
            assert isinstance(load_config(path), RunConfig)


def test_no_function_in_src_is_over_60_lines():
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, long


@pytest.mark.parametrize("command", ["pretrain", "train"])
def test_config_prints_what_the_command_runs_and_the_api_uses_the_same(command, tmp_path, cli):
    """Bare `videoperlin config` printed the dataclass defaults (200 epochs, full width) while `pretrain`
    ran its recipe; now `config COMMAND`, the command, `--help` and the Python API agree."""
    from videoperlin.cli import build_parser
    from videoperlin.cli.training import config_from_args
    from videoperlin.train.config import DEFAULT_RECIPES, recipe_config

    printed = cli("config", *([command] if command != "pretrain" else []), check=True).stdout
    (tmp_path / "printed.yaml").write_text(printed)
    runs = config_from_args(build_parser().parse_args([command]), command)
    assert load_config(tmp_path / "printed.yaml") == runs == recipe_config(command)
    assert runs.train.epochs < 50 and runs.model.widen_factor == 0.5  # the CPU recipe, not 200 epochs at full width
    assert DEFAULT_RECIPES[command] in cli(command, "--help").stdout


# ---- names before 0.4: the vpn section, label_mode 'frequency', vpn_arms, VPNDataset/VPNSpec ------------------


@pytest.fixture
def fresh_deprecations(monkeypatch):
    """Each test sees the one deprecation line per old name that a fresh process would."""
    from videoperlin import config_fields

    monkeypatch.setattr(config_fields, "_DEPRECATIONS_SHOWN", set())


def test_old_section_and_value_names_are_read_with_one_deprecation_line_each(cli, fresh_deprecations):
    sets = ["vpn.num_videos=8", "vpn.label_mode=frequency", "vpn.val_videos=4"]
    proc = cli("config", "pretrain", *[a for s in sets for a in ("--set", s)])
    assert proc.returncode == 0, proc.stderr
    shown = yaml.safe_load(proc.stdout)["synthetic"]
    assert (shown["num_videos"], shown["label_mode"], shown["val_videos"]) == (8, "class", 4)
    lines = [line for line in proc.stderr.splitlines() if "deprecated" in line]
    assert len(lines) == 2, proc.stderr  # the section once for both keys, the value once
    assert "config section 'vpn' is now 'synthetic'" in lines[0] and "'frequency' is now 'class'" in lines[1]


def test_a_stored_record_is_read_without_deprecation_lines_a_users_file_is_not(fresh_deprecations, caplog):
    with caplog.at_level(logging.WARNING):
        record = config_from_record({"vpn": {"preset": "low", "label_mode": "frequency"}})
    assert record.synthetic.label_mode == "class" and "deprecated" not in caplog.text  # the toolkit wrote it
    with caplog.at_level(logging.WARNING):
        mine = load_config(base={"vpn": {"preset": "low", "label_mode": "frequency"}}, task="pretrain")
    assert mine.synthetic == record.synthetic and "config section 'vpn' is now 'synthetic'" in caplog.text


def test_a_run_record_of_before_0_4_loads_and_its_run_resumes(tmp_path, cli, fresh_deprecations):
    """A run directory whose config.yaml (and checkpoint record) say vpn/frequency resumes without a changed
    setting: the old names are the same settings."""
    from helpers import TINY_RUN, metrics

    from videoperlin import config_fields

    run = tmp_path / "run"
    pre = ["pretrain", "--preset", "tiny", "--num-videos", "32", "--set", "synthetic.val_videos=8", *TINY_RUN]
    assert cli(*pre, "--set", "train.max_steps=2", "--out", run).returncode == 0
    record = yaml.safe_load((run / "config.yaml").read_text())
    record["vpn"] = {**record.pop("synthetic"), "label_mode": "frequency"}
    (run / "config.yaml").write_text(yaml.safe_dump(record))
    assert config_from_record(record).synthetic == config_from_record(yaml.safe_load(yaml.safe_dump(record))).synthetic
    assert config_from_record(record).synthetic.label_mode == "class"
    config_fields._DEPRECATIONS_SHOWN.clear()  # as a fresh process resuming the run
    proc = cli(*pre, "--out", run, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert "changed_settings" not in metrics(run)[-1] and (run / "checkpoints" / "best.pt").exists()
    assert "deprecated" not in proc.stderr  # the toolkit wrote the old names; the user's command has none


def test_an_old_protocol_and_the_old_python_names_still_load(tmp_path, fresh_deprecations, caplog):
    import logging

    from videoperlin.study.protocol import load_protocol

    (tmp_path / "p.yaml").write_text(
        "arms: [scratch, mine]\npretrain: {vpn: {num_videos: 64}}\nvpn_arms: {mine: {vpn: {preset: tiny}}}\n"
        "datasets: [{name: d, data: x}]\n"
    )
    with caplog.at_level(logging.WARNING, logger="videoperlin"):
        protocol = load_protocol(tmp_path / "p.yaml")
        from videoperlin.vpn import PerlinOptions, SyntheticDataset, VPNDataset, VPNSpec

    assert protocol.pretrain_arms == {"mine": {"synthetic": {"preset": "tiny"}}}
    config = protocol.pretrain_config("mine", protocol.archs[0], 0, str(tmp_path / "o"))
    assert (config.synthetic.preset, config.synthetic.num_videos) == ("tiny", 64)
    assert VPNDataset is SyntheticDataset and VPNSpec is PerlinOptions
    said = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(said) == 4, said  # vpn_arms, the vpn section, VPNDataset, VPNSpec: once each
