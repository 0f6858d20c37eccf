"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

TESTS_DIR = Path(__file__).parent
sys.path.insert(0, str(TESTS_DIR))  # for reference_perlin

import toy_family  # noqa: E402, F401 (importing it registers the test family)

torch.set_num_threads(2)
# The numerics guard's verdicts (train/numerics.py) go to a cache of this test session, shared with the
# subprocesses it starts, not to the user's ~/.cache.
os.environ["VIDEOPERLIN_CACHE_DIR"] = tempfile.mkdtemp(prefix="videoperlin-test-cache-")


def run_cli(*args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m videoperlin ARGS`` in a fresh process and capture its output."""
    proc = subprocess.run([sys.executable, "-m", "videoperlin", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"videoperlin {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli
