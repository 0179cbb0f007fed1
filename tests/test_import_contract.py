"""The layers of docs/architecture.md, as import-linter contracts (``[tool.importlinter]`` in
pyproject.toml): kept by this tree, broken by one import against them in a copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter", reason="the import contract needs the dev extra")
grimp = pytest.importorskip("grimp")

from tts_gym.sandbox.child.zygote import LOADED_BY_PATH  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUN = ("import sys; from importlinter.cli import lint_imports; "
       "sys.exit(lint_imports(no_cache=True, no_logo=True))")


def lint(tree: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the packages of ``tree`` with its pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-c", RUN], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def copy_of_tree(tmp_path_factory) -> Path:
    """The packages and pyproject.toml of this checkout, copied (sources only)."""
    tree = tmp_path_factory.mktemp("tree")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "data")
    for pkg in ("tts_gym", "agents"):
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def add_line(path: Path, line: str) -> None:
    text = path.read_text()
    path.write_text(text.replace("from __future__ import annotations\n",
                                 f"from __future__ import annotations\n\n{line}\n", 1))


def test_the_tree_keeps_every_contract():
    got = lint(ROOT)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "0 broken" in got.stdout


@pytest.mark.parametrize("module, line, broken", [
    # core importing a service
    ("tts_gym/kernels/votes.py", "import tts_gym.reporting.table  # noqa", "tts_gym.reporting"),
    # a service importing the command line
    ("tts_gym/executor/local.py", "import tts_gym.cli.common  # noqa", "tts_gym.cli"),
    # the environment package importing the agents
    ("tts_gym/store/load.py", "import agents.controllers.sc  # noqa", "agents"),
    # a built-in controller importing a service
    ("agents/controllers/sc.py", "import tts_gym.sandbox.limits  # noqa", "tts_gym.sandbox"),
])
def test_one_import_against_the_layers_breaks_the_contract(copy_of_tree, module, line, broken):
    path = copy_of_tree / module
    original = path.read_text()
    add_line(path, line)
    try:
        got = lint(copy_of_tree)
    finally:
        path.write_text(original)
    assert got.returncode == 1, got.stdout + got.stderr
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {line.split()[1]}" in got.stdout
    assert f"not allowed to import {broken}" in got.stdout


# Known two-module cycles, each to be removed (and then taken off this list).
KNOWN_CYCLES: list[tuple[str, str]] = []


def test_no_two_modules_import_each_other():
    graph = grimp.build_graph("tts_gym", "agents")
    pairs = sorted({tuple(sorted((m, i))) for m in graph.modules
                    for i in graph.find_modules_directly_imported_by(m)
                    if m in graph.find_modules_directly_imported_by(i)})
    assert pairs == KNOWN_CYCLES


def test_a_new_top_level_module_must_be_placed_in_a_layer(copy_of_tree):
    new = copy_of_tree / "tts_gym" / "unplaced.py"
    new.write_text('"""A module no layer names."""\n')
    try:
        got = lint(copy_of_tree)
    finally:
        new.unlink()
    assert got.returncode == 1
    assert "tts_gym.unplaced" in got.stdout + got.stderr


@pytest.mark.parametrize("module", LOADED_BY_PATH)
def test_modules_the_sandbox_loads_by_path_import_only_the_standard_library(module):
    """The fork server loads these files by path into a process that never imports tts-gym
    (tts_gym.sandbox.child.zygote): a tts-gym or third-party import there fails at start-up."""
    import ast

    tree = ast.parse((ROOT / "tts_gym" / f"{module}.py").read_text())
    imported = set()
    for node in tree.body:  # module level: what runs when the file is loaded
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}.py: relative import"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
