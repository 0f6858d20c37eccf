"""Shared test helpers."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import pytest
import torch

TESTS_DIR = Path(__file__).parent
sys.path.insert(0, str(TESTS_DIR))  # for reference_perlin

import toy_family  # noqa: E402, F401 (importing it registers the test family)

from videoperlin.cli import main  # noqa: E402

torch.set_num_threads(2)
# The numerics guard's verdicts (train/numerics.py) go to a cache of this test session, shared with the
# subprocesses it starts, not to the user's ~/.cache.
os.environ["VIDEOPERLIN_CACHE_DIR"] = tempfile.mkdtemp(prefix="videoperlin-test-cache-")
# The built-in study protocols read their datasets from $VIDEOPERLIN_DATA: tests of their shape need a value
# (the folder need not hold the data); the tests of the variable itself unset it.
os.environ.setdefault("VIDEOPERLIN_DATA", str(TESTS_DIR / "no-datasets-here"))


def run_cli(*args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``videoperlin ARGS`` in this process as a fresh process would, and capture its output.

    Starting Python and torch for each of the suite's ~200 command lines cost minutes; in-process, the
    command gets what a fresh process has: its own stdout and stderr, an unconfigured root logger (so
    ``main`` sets the level and format, ``-q`` included), warnings shown on stderr with Python's default
    filters, and a traceback on stderr with exit status 1 for an exception ``main`` lets through.
    torch's global settings, the environment and the working directory are restored afterwards.
    ``timeout`` is not enforced in-process (:func:`run_cli_process` enforces it).
    """
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with _fresh_process_state(err):
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse errors and --help / --version
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # what a user would see as a traceback
                traceback.print_exc()
                code = 1
    proc = subprocess.CompletedProcess(["videoperlin", *argv], code, out.getvalue(), err.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f"videoperlin {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@contextlib.contextmanager
def _fresh_process_state(err: io.StringIO):
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    rng, environ, cwd = torch.get_rng_state(), dict(os.environ), os.getcwd()
    levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    for name in levels:  # as in a fresh process: our loggers start unset (the study sets them in-process)
        if name == "videoperlin" or name.startswith("videoperlin."):
            logging.getLogger(name).setLevel(logging.NOTSET)
    root.handlers = []
    try:
        with warnings.catch_warnings():
            warnings.resetwarnings()  # Python's own defaults, not pytest's
            for action, category in (
                ("ignore", DeprecationWarning),
                ("ignore", PendingDeprecationWarning),
                ("ignore", ImportWarning),
                ("ignore", ResourceWarning),
            ):
                warnings.simplefilter(action, category)
            warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: err.write(
                warnings.formatwarning(message, category, filename, lineno, line)
            )
            yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers, root.level = saved_handlers, saved_level
        for name, level in levels.items():  # commands may set their loggers' levels (the study does)
            logging.getLogger(name).setLevel(level)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_rng_state(rng)
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)


def run_cli_process(*args: str, timeout: float = 300, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m videoperlin ARGS`` in a fresh process (the real entry point) and capture its output."""
    proc = subprocess.run([sys.executable, "-m", "videoperlin", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"videoperlin {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture
def cli_process():
    return run_cli_process
