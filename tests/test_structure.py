"""The package's structure: no import cycle (counting imports inside functions, which must not hide one),
every module importable on its own, and the layers' order kept by the imports without exception: real video's
reading and writing (data) below the synthetic families (vpn, which export through data's encoder), then
models, train (its figures of kernels and curves included), study; analysis, the Python API and cli on top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
#: Lower layers must not import higher ones (a module may import its own layer and the ones below).
LAYERS = [
    "errors",
    "config_fields",
    "utils",
    "geometry",
    "noise",
    "data",
    "vpn",
    "scores",
    "models",
    "train",
    "study",
    "analysis",
    "api",
    "cli",
]


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "videoperlin").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported videoperlin module, line, at top level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("videoperlin"):
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
            ]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("videoperlin")]
        found += [(name, node.lineno, id(node) in top) for name in names if name in known]
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target, _, _ in imports(path, known) if target != name} for name, path in known.items()}


def test_no_import_cycle_even_through_imports_inside_functions():
    edges, cycles = graph(), []

    def visit(node: str, stack: list[str], done: set[str]) -> None:
        for target in sorted(edges.get(node, ())):
            if target in stack:
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in done:
                visit(target, stack + [target], done)
        done.add(node)

    done: set[str] = set()
    for name in sorted(edges):
        if name not in done:
            visit(name, [name], done)
    assert not cycles, cycles


def layer(module: str) -> int:
    part = module.removeprefix("videoperlin").lstrip(".").split(".")[0] or "errors"  # the package: its version
    return LAYERS.index(part) if part in LAYERS else len(LAYERS)


def test_imports_follow_the_pipeline():
    upward = []
    for name, targets in graph().items():
        for target in targets:
            short = (name.removeprefix("videoperlin."), target.removeprefix("videoperlin."))
            if layer(target) > layer(name):
                upward.append(f"{short[0]} imports {short[1]}")
    assert not upward, upward


def test_every_module_imports_on_its_own():
    """Each module imported first, in a process where no other videoperlin module is loaded yet."""
    names = sorted(n for n in modules() if not n.endswith("__main__"))
    script = (
        "import importlib, sys\nfailed = []\nfor name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('videoperlin')]:\n        del sys.modules[loaded]\n"
        "    try:\n        importlib.import_module(name)\n    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\nprint('\\n'.join(failed))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_the_package_imports_without_fcntl():
    """Windows has no fcntl: every module imports without it (the run lock is filelock's)."""
    code = (
        "import sys, importlib, pkgutil, warnings; sys.modules['fcntl'] = None; warnings.simplefilter('ignore')\n"
        "import videoperlin\n"
        "names = [m.name for m in pkgutil.walk_packages(videoperlin.__path__, 'videoperlin.') if m.name != 'videoperlin.__main__']\n"
        "[importlib.import_module(n) for n in names]\n"
        "print(len(names))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) > 80


def test_no_test_module_imports_another_and_shared_helpers_have_one_home():
    """Shared helpers live in conftest.py or tests/helpers.py (and the fixture modules beside them); a test
    module importing another would run its tests' imports and hide where a helper lives."""
    tests = Path(__file__).resolve().parent
    found = []
    for path in sorted(tests.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name} imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert not found, found
