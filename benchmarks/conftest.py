"""Collect ``benchmarks/bench_*.py`` when pytest is pointed at this folder.

The project's pytest ``addopts`` keep benchmarks out of the test run (``--ignore=benchmarks``),
and the default ``python_files`` pattern is ``test_*.py``. This conftest makes the documented
command work without extra options::

    python -m pytest benchmarks --benchmark-only -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Undo ``--ignore=benchmarks`` for this folder (only reached when it is asked for)."""
    if collection_path.resolve() == HERE or collection_path.resolve().parent == HERE:
        return False
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect ``bench_*.py`` modules of this folder as test modules."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        # A file named on the command line is already collected by pytest itself.
        if file_path.resolve().parent == HERE and not parent.session.isinitpath(file_path):
            return pytest.Module.from_parent(parent, path=file_path)
    return None
