"""Shared test helpers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

TESTS_DIR = Path(__file__).parent
sys.path.insert(0, str(TESTS_DIR))  # for reference_perlin

torch.set_num_threads(2)


def run_cli(*args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m videoperlin ARGS`` in a fresh process and capture its output."""
    proc = subprocess.run([sys.executable, "-m", "videoperlin", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"videoperlin {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli
