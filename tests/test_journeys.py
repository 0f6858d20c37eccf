"""Every documented journey runs: each fenced shell and Python block of the README and of the guides, in
order, page by page, at tiny sizes -- or is marked as not runnable here, with the reason.

The one mechanism: the blocks run as written, in a fresh folder per page, with ``VIDEOPERLIN_SET`` (the
run configs' and ``generate``/``preview``'s last overrides, :data:`videoperlin.train.config.ENV_SET`)
set to :data:`TINY_SETS` and a small folder of action videos at ``my_videos/``. Blocks of plain ``videoperlin``
lines and Python blocks run in this process (as a fresh process would: ``conftest.run_cli``; a second
of interpreter start per command would cost minutes); a block that needs a shell runs in bash, with the
package's ``videoperlin`` first on ``PATH``. A block marked ``<!-- not run: REASON -->`` on the line before its fence is
skipped (a GPU, a cluster, a dataset a user downloads, an optional framework). A doc edit that breaks
a journey fails this test, naming the page, the block and its output.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_cli
from video_fixtures import write_class_folders

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").rglob("*.md"))]
#: Run configs at the size of a test: one epoch over a few 8x32x32 clips of a small network, in fp32.
TINY_SETS = ";".join(
    [
        "train.epochs=1",
        "train.batch_size=4",
        "train.amp=off",
        "synthetic.num_videos=8",
        "synthetic.val_videos=4",
        "data.frames=8",
        "data.size=32",
        "data.short_side=32",
        "data.max_windows=1",
        "data.workers=0",
    ]
)
FENCE = re.compile(r"^```(bash|sh|python)\s*$")
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->")


@dataclass(frozen=True)
class Block:
    page: Path
    number: int  # 1-based among the page's code blocks
    language: str
    code: str
    skip: str | None  # the reason it is not run here

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)} block {self.number} ({self.language})"


def blocks(page: Path) -> list[Block]:
    """The page's fenced shell and Python blocks, with the not-run reason of each marked one."""
    lines, found, number = page.read_text().splitlines(), [], 0
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            number += 1
            before = "\n".join(lines[max(0, i - 2) : i])
            reason = NOT_RUN.search(before)
            found.append(Block(page, number, match.group(1), "\n".join(lines[i + 1 : end]), reason and reason.group(1)))
            i = end
        i += 1
    return found


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def journey_folder(tmp_path: Path) -> dict[str, str]:
    """A folder as a new user has it, and the environment the blocks run in."""
    write_class_folders(tmp_path / "my_videos", per_class=4, frames=12)
    env = {**os.environ, "VIDEOPERLIN_SET": TINY_SETS, "PYTHONWARNINGS": "ignore"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def videoperlin_lines(code: str) -> list[list[str]] | None:
    """The block's commands when every one is a plain ``videoperlin ...`` line (continuations joined,
    comments dropped), as argument lists; None when it needs a shell (pipes, variables, other programs)."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] != "videoperlin" or any(c in line.split("#")[0] for c in "$|;&><`"):
            return None
        commands.append(words[1:])
    return commands


def run_block(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a block as written: ``videoperlin`` lines in this process (as a fresh process would run them:
    ``conftest.run_cli``, without a second of interpreter start per command), anything else in bash or Python."""
    commands = videoperlin_lines(block.code) if block.language != "python" else None
    if commands is not None:
        outputs = []
        for argv in commands:
            os.chdir(cwd)
            proc = run_cli(*argv)
            outputs.append(proc)
            if proc.returncode != 0:
                return subprocess.CompletedProcess(argv, proc.returncode, proc.stdout, proc.stderr)
        return subprocess.CompletedProcess(["videoperlin"], 0, "".join(p.stdout for p in outputs), "")
    if block.language == "python":
        return run_python(block, cwd)
    command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def run_python(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    """A Python block executed as a script in its own namespace, in ``cwd``; an exception is a failure."""
    os.chdir(cwd)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(block.code, str(block), "exec"), {"__name__": "__main__"})
    except Exception:
        return subprocess.CompletedProcess(["python"], 1, out.getvalue(), traceback.format_exc())
    return subprocess.CompletedProcess(["python"], 0, out.getvalue(), "")


def runnable_pages() -> list[Path]:
    return [page for page in PAGES if any(b.skip is None for b in blocks(page))]


@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pages_journey_runs_as_written(page, tmp_path, monkeypatch):
    env = journey_folder(tmp_path)
    monkeypatch.setenv("VIDEOPERLIN_SET", TINY_SETS)  # for the commands run in this process
    monkeypatch.chdir(tmp_path)
    for block in blocks(page):
        if block.skip is not None:
            continue
        proc = run_block(block, tmp_path, env)
        assert proc.returncode == 0, (
            f"{block} failed ({proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}"
        )


def test_every_block_runs_or_says_why_not():
    found = all_blocks()
    assert len(found) >= 20
    for block in found:
        assert block.skip is None or len(block.skip) > 10, f"{block}: say why it is not run"
    reasons = ("download", "GPU", "cluster", "SLURM", "sketch", "set-up", "torchvision", "whole studies", "release")
    for block in (b for b in found if b.skip):  # the reasons a block may not run here
        assert any(word in block.skip for word in reasons), f"{block}: {block.skip}"
