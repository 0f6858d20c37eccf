"""The repository's own contract: the README's two commands and .ci/run agree; lint, format, types, the
documentation site and the wheel are clean."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README must start with a bash block holding the two set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_two_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    assert all("-c constraints.txt" in c and "python3 -m venv .venv" in c for c in commands)
    ci_lines = [
        l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l and not l.startswith(("#", "set ", "cd "))
    ]
    assert ci_lines == [commands[1]]


def test_constraints_pin_torch():
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text().split()


# ---- habits: lint, format, types, the documentation site, the wheel -----------------------------


def tool(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a tool of the test environment (``python -m NAME``) in the repository root."""
    return subprocess.run(
        [sys.executable, "-m", name, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_ruff_lint_and_format_are_clean():
    lint = tool("ruff", "check", "src", "tests", "benchmarks", "docs/hooks.py")
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-2000:]
    form = tool("ruff", "format", "--check", "src", "tests", "benchmarks", "docs/hooks.py")
    assert form.returncode == 0, form.stdout[-3000:] + form.stderr[-2000:]


def test_type_checker_is_clean_on_src():
    proc = tool("mypy")  # files and settings: [tool.mypy] in pyproject.toml
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_documentation_site_builds_strictly(tmp_path):
    """mkdocs --strict: no broken link or anchor, no page missing from the navigation, no API symbol
    that does not exist; and the generated pages hold what they are generated from."""
    proc = tool("mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    site = tmp_path / "site"
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "train.amp" in config and "synthetic.layers_count" in config and "pretrain_seeds" in config
    assert "videoperlin transfer" in (site / "reference" / "cli" / "index.html").read_text()
    for report in (ROOT / "benchmarks" / "results").rglob("report.md"):
        name = report.parent.relative_to(ROOT / "benchmarks" / "results").as_posix()
        assert (site / "results" / name / "index.html").exists(), name
    assert "vpn-motion.gif" in (site / "index.html").read_text()  # the README is the home page


def test_readme_fits_on_a_screen_and_links_only_to_existing_files():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 10_240, len(text.encode())
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), target


@pytest.mark.slow
def test_wheel_holds_the_configs_and_runs_from_a_fresh_venv(tmp_path):
    """``python -m build`` makes a wheel; installed (not editable) into a fresh venv it pre-trains and
    prints its config, with the built-in configs from inside the wheel."""
    built = tool("build", "--wheel", "--outdir", str(tmp_path / "dist"))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("videoperlin-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "videoperlin/configs/transfer_default.yaml" in names and "videoperlin/py.typed" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    installed = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-3000:]
    run = tmp_path / "work"
    run.mkdir()
    exe = str(venv / "bin" / "videoperlin")
    for args in (["config", "--config", "pretrain_cpu"], ["pretrain", "--max-steps", "2", "--out", "runs/p", "-q"]):
        proc = subprocess.run([exe, *args], cwd=run, capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    assert (run / "runs" / "p" / "checkpoints" / "last.pt").exists()
