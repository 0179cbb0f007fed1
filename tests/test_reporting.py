"""Reports: Pareto frontier vs a sort-based reference, cells in a process pool vs direct
evaluation, the main table (skipping unavailable rows), sweeps, the CLI and the PNGs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import real_data_dir, requires_data
from tts_gym import evaluate, load_store, make_controller
from tts_gym.cli import main
from tts_gym.reporting import (
    Cell,
    ControllerUnavailable,
    evaluate_cells,
    format_tokens,
    main_table,
    pareto_mask,
    sweep,
)
from tts_gym.reporting.cells import build_controller
from tts_gym.reporting.files import read_rows
from tts_gym.testing import tiny_questions, write_store_json

MODELS = ("tinyA", "tinyB")
BENCHES = ("aime24", "aime25", "hmmt25")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A data folder with two tiny 'models' × the three benchmarks (different seeds each)."""
    root = tmp_path_factory.mktemp("tiny-data")
    k = 0
    for m in MODELS:
        for b in BENCHES:
            data = tiny_questions(k, questions=4, branches=12, max_probes=8)
            write_store_json(root / m / f"{b}.json", data)
            k += 1
    return root


# --- Pareto ------------------------------------------------------------------------------------
def _pareto_reference(points):
    """Sort by tokens (ties: higher accuracy first); keep strict accuracy records, and exact
    duplicates of a kept point."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    kept, best = set(), -np.inf
    for i in order:
        if points[i][1] > best:
            kept.add(i)
            best = points[i][1]
    for i in range(len(points)):
        if any(points[i] == points[j] for j in kept):
            kept.add(i)
    return [i in kept for i in range(len(points))]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 20), st.integers(0, 10)).map(lambda p: (float(p[0]), float(p[1]))),
        min_size=1,
        max_size=30,
    )
)
def test_pareto_mask_matches_sort_based_reference(points):
    mask = pareto_mask([p[0] for p in points], [p[1] for p in points])
    assert mask.tolist() == _pareto_reference(points)


def test_pareto_mask_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal length"):
        pareto_mask([1, 2], [3])


def test_format_tokens_is_the_papers_style():
    assert format_tokens(483_400) == "483.4k"
    assert format_tokens(910_813.7) == "910.8k"
    assert format_tokens(49) == "0.0k"


# --- cells -------------------------------------------------------------------------------------
def test_cells_in_a_pool_equal_direct_evaluation(tiny_dir):
    specs = [
        ("sc", {"n": 5}),
        ("asc", {"max_samples": 8}),
        ("esc", {"max_samples": 8, "window": 2}),
        ("parallel-probe", {"num_chains": 6, "T": 3, "warm_up": 1}),
    ]
    cells = [Cell.make(n, p, m, b) for n, p in specs for m in MODELS for b in BENCHES]
    pooled = evaluate_cells(cells, seeds=5, workers=2, data_dir=tiny_dir)
    serial = evaluate_cells(cells, seeds=5, workers=1, data_dir=tiny_dir)
    for cell, a, b in zip(cells, pooled, serial, strict=True):
        assert a.cell == cell and b.cell == cell
        direct = evaluate(
            make_controller(cell.controller, cell.param_dict),
            load_store(cell.model, cell.benchmark, tiny_dir),
            seeds=5,
        )
        assert (a.accuracy, a.avg_tokens) == (direct.accuracy, direct.avg_tokens)
        assert (b.accuracy, b.avg_tokens) == (direct.accuracy, direct.avg_tokens)
        assert a.split == ("search" if cell.benchmark == "aime24" else "heldout")


def test_unknown_or_unimportable_controllers_are_reported():
    with pytest.raises(ControllerUnavailable, match="registered"):
        build_controller(Cell.make("no-such-controller", {}, "m", "aime24"))
    with pytest.raises(ValueError, match="max_samples"):  # bad parameters are not "unavailable"
        build_controller(Cell.make("asc", {"max_samples": 0}, "m", "aime24"))


def test_a_registered_controller_whose_module_is_missing_is_skipped(tiny_dir, monkeypatch):
    import tts_gym.reporting.cells as cells_mod

    real = cells_mod.make_controller

    def fake(spec, params=None):
        if spec == "cmc":
            raise ModuleNotFoundError("No module named 'agents.controllers.cmc'")
        return real(spec, params)

    monkeypatch.setattr(cells_mod, "make_controller", fake)
    warnings = []
    rows = [("SC@4", "sc", {"n": 4}), ("CMC β=0.5", "cmc", {"beta": 0.5})]
    table = main_table(
        ["tinyA"],
        ["aime24"],
        seeds=2,
        workers=1,
        data_dir=tiny_dir,
        rows=rows,
        warn=warnings.append,
    )
    assert table.labels == ["SC@4"]
    assert "cannot be imported" in table.skipped["CMC β=0.5"]
    assert warnings and "agents.controllers.cmc" in warnings[0]


# --- main table --------------------------------------------------------------------------------
def test_main_table_on_tiny_stores_skips_missing_rows(tiny_dir):
    rows = [
        ("SC@4", "sc", {"n": 4}),
        ("ASC", "asc", {"max_samples": 8}),
        ("Ghost", "no-such-controller", {}),
    ]
    warnings = []
    table = main_table(
        MODELS, BENCHES, seeds=4, workers=2, data_dir=tiny_dir, rows=rows, warn=warnings.append
    )
    assert table.labels == ["SC@4", "ASC"]
    assert "Ghost" in table.skipped and any("Ghost" in w for w in warnings)
    r24 = table.results[("ASC", "tinyB", "aime24")]
    direct = evaluate(
        make_controller("asc", {"max_samples": 8}), load_store("tinyB", "aime24", tiny_dir), 4
    )
    assert (r24.accuracy, r24.avg_tokens) == (direct.accuracy, direct.avg_tokens)
    acc, tok = table.heldout_average("SC@4", "tinyA")
    held = [table.results[("SC@4", "tinyA", b)] for b in ("aime25", "hmmt25")]
    assert acc == pytest.approx(sum(r.accuracy for r in held) / 2)
    assert tok == pytest.approx(sum(r.avg_tokens for r in held) / 2)
    md = table.to_markdown()
    assert "| AIME24 (search) | AIME25 | HMMT25 | Held-out avg |" in md
    line = next(x for x in md.splitlines() if x.startswith("| tinyA | SC@4 |"))
    assert f"{acc:.1f} / {format_tokens(tok)}" in line
    assert "'Ghost' skipped" in md
    flat = table.to_rows()
    assert len(flat) == 2 * 2 * (3 + 1)


def test_main_table_without_any_available_row_is_an_error(tiny_dir):
    with pytest.raises(ValueError, match="No table row"):
        main_table(MODELS, BENCHES, seeds=2, data_dir=tiny_dir, rows=[("G", "nope", {})])


# --- sweeps, CLI, plots ------------------------------------------------------------------------
def test_sweep_rows_and_pareto_flags(tiny_dir):
    rows = sweep(["asc", "parallel-probe"], ["tinyA"], ["aime24"], seeds=3, data_dir=tiny_dir)
    assert [r["budget"] for r in rows] == [1, 4, 8, 16, 32, 64] * 2
    assert {r["budget_param"] for r in rows} == {"max_samples", "num_chains"}
    mask = pareto_mask([r["avg_tokens"] for r in rows], [r["accuracy"] for r in rows])
    assert [r["pareto"] for r in rows] == mask.tolist()
    with pytest.raises(ValueError, match="No sweep grid"):
        sweep(["nope"], ["tinyA"], ["aime24"], data_dir=tiny_dir)


def test_cli_table_sweep_plot(tiny_dir, tmp_path, capsys):
    common = ["--models", "tinyA", "--data-dir", str(tiny_dir), "--seeds", "3", "--no-progress"]
    out_csv, out_json = tmp_path / "t.csv", tmp_path / "t.json"
    assert main(["table", *common, "--csv", str(out_csv), "--json", str(out_json)]) == 0
    md = capsys.readouterr().out
    for label in ("SC@64", "ASC", "ESC", "Parallel-Probe"):
        assert f"| tinyA | {label} |" in md
    with out_csv.open() as fh:
        table_rows = list(csv.DictReader(fh))
    assert {r["benchmark"] for r in table_rows} == {*BENCHES, "heldout_avg"}
    assert json.loads(out_json.read_text())["seeds"] == 3

    sweep_json = tmp_path / "s.json"
    assert main(["sweep", *common, "--controllers", "sc", "esc", "--json", str(sweep_json)]) == 0
    assert "| tinyA | aime24 | esc | max_samples=16 |" in capsys.readouterr().out
    rows = read_rows(sweep_json)
    assert len(rows) == (6 + 3) * 3

    png_dir = tmp_path / "png"
    assert main(["plot", "--from", str(sweep_json), "--out", str(png_dir), *common[:2]]) == 0
    pngs = sorted(png_dir.glob("*.png"))
    assert [p.name for p in pngs] == [f"tinyA_{b}.png" for b in sorted(BENCHES)]
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
    assert main(["plot", "--from", str(tmp_path / "missing.csv"), "--out", str(png_dir)]) == 2


# --- real data ---------------------------------------------------------------------------------
@requires_data
def test_table_reproduces_the_published_qwen3_8b_aime24_column():
    rows = [
        ("SC@64", "sc", {"n": 64}),
        ("ASC", "asc", {}),
        ("ESC", "esc", {}),
        ("Parallel-Probe", "parallel-probe", {}),
    ]
    table = main_table(["Qwen3-8B"], ["aime24"], workers=2, data_dir=real_data_dir(), rows=rows)
    got = {label: (r.accuracy, int(r.avg_tokens)) for (label, _m, _b), r in table.results.items()}
    assert got == {
        "SC@64": (80.37, 910813),
        "ASC": (80.37, 226033),
        "ESC": (80.37, 459359),
        "Parallel-Probe": (81.47, 730781),
    }
