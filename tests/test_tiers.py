"""The data-free tier: every test marked ``requires_data`` also carries the ``data`` marker, so
``pytest -m "not data"`` (CONTRIBUTING.md, .ci/run) deselects exactly those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def collected(marker_expr: str, target: str, data_dir: Path) -> set[str]:
    """Node ids pytest collects from ``target`` under ``-m marker_expr`` (no test is run)."""
    env = {**os.environ, "TTS_GYM_DATA": str(data_dir)}
    got = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", marker_expr, target],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert got.returncode in (0, 5), got.stdout + got.stderr  # 5: nothing collected
    return {line for line in got.stdout.splitlines() if "::" in line}


def test_requires_data_is_the_data_marker(tmp_path):
    # test_cmc.py marks three functions with @requires_data; the rest run on tiny stores
    target = "tests/test_cmc.py"
    with_data = collected("data", target, tmp_path)
    without = collected("not data", target, tmp_path)
    assert {i.split("::")[1] for i in with_data} == {
        "test_batch_equals_handle_on_real_stores", "test_published_cmc_rows_reproduced",
        "test_cli_eval_cmc_json"}
    assert without and not with_data & without


def test_requires_data_in_param_marks_is_the_data_marker(tmp_path):
    # every published row is a pytest.param(..., marks=[requires_data, ...])
    target = "tests/test_published.py"
    with_data = collected("data", target, tmp_path)
    rows = [i for i in collected("", target, tmp_path)
            if "::test_published_row_is_reproduced[" in i]
    assert rows and set(rows) <= with_data
