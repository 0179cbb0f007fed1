"""Your own controller in every sweep, table, plot and comparison (``file:`` controllers), and
the provenance every result carries."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tts_gym.cli import main
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.evaluation.curves import BudgetGrid, CurvePoint, compare_curves
from tts_gym.provenance import git_commit, provenance
from tts_gym.reporting.cells import pack_bits, unpack_bits
from tts_gym.reporting.own import CONTRACT_GRID, takes_beta
from tts_gym.reporting.sweep import grid_of, parse_grid_option
from tts_gym.store import load_store

ROOT = Path(__file__).resolve().parents[1]

READS = '''class Controller:
    def __init__(self, reads=4):
        self.reads = int(reads)

    def solve(self, question):
        seen = []
        for _ in range(self.reads):
            answer = question.full_read()
            if answer is None:
                break
            seen.append(answer)
        return max(sorted(set(seen)), key=seen.count) if seen else None
'''

BETA = '''class Controller:
    def __init__(self, beta=0.5):
        self.reads = 1 + int(round(7 * float(beta)))

    def solve(self, question):
        seen = []
        for _ in range(self.reads):
            answer = question.full_read()
            if answer is None:
                break
            seen.append(answer)
        return max(sorted(set(seen)), key=seen.count) if seen else None
'''


@pytest.fixture
def tiny_dir(tmp_path):
    from tts_gym.testing import tiny_questions, write_store_json

    write_store_json(tmp_path / "data" / "tiny" / "aime24.json", tiny_questions())
    return tmp_path / "data"


def _files(tmp_path):
    reads, beta = tmp_path / "reads.py", tmp_path / "beta.py"
    reads.write_text(READS)
    beta.write_text(BETA)
    return reads, beta


def _grid_argv(data, *extra):
    return ["--models", "tiny", "--benchmarks", "aime24", "--seeds", "3", "--workers", "1",
            "--data-dir", str(data), "--no-progress", *extra]


def test_grid_options_and_the_contract_grid(tmp_path):
    reads, beta = _files(tmp_path)
    assert parse_grid_option(f"file:{reads}:reads=1,2,8") == (f"file:{reads}", "reads", (1, 2, 8))
    assert parse_grid_option("asc:max_samples=4") == ("asc", "max_samples", (4,))
    with pytest.raises(ValueError, match="NAME:KEY=V1,V2"):
        parse_grid_option("asc")
    assert takes_beta(BETA) and not takes_beta(READS)
    assert grid_of(f"file:{beta}") == CONTRACT_GRID
    assert CONTRACT_GRID[1] == tuple(round(0.1 * i, 1) for i in range(11))
    with pytest.raises(ValueError, match=r"takes no beta; give one with --grid"):
        grid_of(f"file:{reads}")
    knob, values, fixed = grid_of("asc", {"asc": ("max_samples", (4, 8))})
    assert (knob, values, fixed) == ("max_samples", (4, 8), {"threshold": 0.95})
    with pytest.raises(ValueError, match="does not exist"):
        grid_of("file:/no/such.py")


def test_bits_round_trip():
    rng = np.random.default_rng(0)
    bits = rng.random((7, 13)) < 0.5
    assert np.array_equal(unpack_bits(pack_bits(bits), bits.shape), bits)


@pytest.mark.parametrize("trusted", [True, False])
def test_sweep_scores_a_file_as_eval_does(tmp_path, tiny_dir, trusted):
    reads, beta = _files(tmp_path)
    out = tmp_path / "sweep.json"
    argv = ["sweep", "--controllers", f"file:{reads}", "sc",
            "--grid", f"file:{reads}:reads=1,3", "--grid", "sc:n=1,4",
            *_grid_argv(tiny_dir, "--json", str(out), *(["--trusted"] if trusted else []))]
    assert main(argv) == 0
    doc = json.loads(out.read_text())
    rows = {(r["controller"], r["budget"]): r for r in doc["rows"]}
    store = load_store("tiny", "aime24", tiny_dir)
    for reads_n in (1, 3):
        ref = evaluate(make_controller(f"file:{reads}", {"reads": reads_n}), store, 3)
        row = rows[(f"file:{reads}", reads_n)]
        assert (row["accuracy"], row["avg_tokens"]) == (ref.accuracy, ref.avg_tokens)
        assert np.array_equal(unpack_bits(row["correct_bits"], row["correct_shape"]),
                              ref.correct)
        assert row["store_sha256"] == store.sha256 and row["seed_list"] == [0, 1, 2]
        assert row["budget_param"] == "reads"
        assert row["path"] == ("handle" if trusted else "sandbox")
    sc = rows[("sc", 4)]
    ref = evaluate(make_controller("sc", {"n": 4}), store, 3)
    assert sc["per_question_accuracy"] == np.round(100 * ref.per_question_accuracy, 2).tolist()
    prov = doc["provenance"]
    assert prov["stores"] == {"tiny/aime24": store.sha256}
    assert prov["seeds"] == {"count": 3, "first": 0} and prov["files_trusted"] is trusted


def test_a_contract_file_sweeps_beta_by_default(tmp_path, tiny_dir, capsys):
    _reads, beta = _files(tmp_path)
    assert main(["sweep", "--controllers", f"file:{beta}", "--trusted",
                 *_grid_argv(tiny_dir)]) == 0
    out = capsys.readouterr().out
    for b in CONTRACT_GRID[1]:
        assert f"beta={b} |" in out


def test_a_file_without_a_grid_is_one_sentence(tmp_path, tiny_dir, capsys):
    reads, _beta = _files(tmp_path)
    assert main(["sweep", "--controllers", f"file:{reads}", *_grid_argv(tiny_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--grid file:{reads}:KEY=V1,V2" in err


def test_table_takes_a_file_row(tmp_path, tiny_dir, capsys):
    _reads, beta = _files(tmp_path)
    out = tmp_path / "table.json"
    assert main(["table", "--controllers", f"file:{beta}", "--trusted",
                 *_grid_argv(tiny_dir, "--json", str(out))]) == 0
    doc = json.loads(out.read_text())
    methods = {r["method"] for r in doc["rows"]}
    assert {f"file:{beta} β=0.5", f"file:{beta} β=1.0", "CMC β=0.5"} <= methods
    store = load_store("tiny", "aime24", tiny_dir)
    row = next(r for r in doc["rows"] if r["method"] == f"file:{beta} β=1.0")
    ref = evaluate(make_controller(f"file:{beta}", {"beta": 1.0}), store, 3)
    assert row["accuracy"] == ref.accuracy
    assert doc["provenance"]["stores"] == {"tiny/aime24": store.sha256}


def test_plot_names_every_row_it_leaves_out(tmp_path, tiny_dir, capsys):
    pytest.importorskip("matplotlib")
    reads, _beta = _files(tmp_path)
    out = tmp_path / "sweep.json"
    assert main(["sweep", "--controllers", f"file:{reads}", "sc", "--trusted",
                 "--grid", f"file:{reads}:reads=1,3", "--grid", "sc:n=1,4",
                 *_grid_argv(tiny_dir, "--json", str(out))]) == 0
    doc = json.loads(out.read_text())
    doc["rows"].append({**doc["rows"][0], "controller": "by hand", "avg_tokens": 0})
    out.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["plot", "--from", str(out), "--out", str(tmp_path / "png"),
                 "--models", "tiny", "--benchmarks", "aime24"]) == 0
    err = capsys.readouterr().err
    assert "4 points plotted, 1 rows left out" in err, err
    assert "left out tiny/aime24 by hand" in err and "logarithmic" in err
    assert main(["plot", "--from", str(out), "--out", str(tmp_path / "png"),
                 "--controllers", "sc", "--models", "tiny", "--benchmarks", "aime24"]) == 0
    err = capsys.readouterr().err
    assert f"left out 2 rows of file:{reads} on tiny/aime24: not among --controllers" in err


def _points(spec, knob, values, store, seeds=3):
    return [CurvePoint.from_results(f"{knob}={v}", {
        store.name: evaluate(make_controller(spec, {knob: v}), store, seeds)}) for v in values]


def test_compare_files_equals_compare_curves_on_the_results(tmp_path, tiny_dir, capsys):
    reads, _beta = _files(tmp_path)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["sweep", "--controllers", f"file:{reads}", "--trusted",
                 "--grid", f"file:{reads}:reads=1,2,4", *_grid_argv(tiny_dir, "--json", str(a))]
                ) == 0
    assert main(["sweep", "--controllers", "sc", "--grid", "sc:n=1,4,16",
                 *_grid_argv(tiny_dir, "--json", str(b))]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--budgets", "1000,200000", "--data-dir",
                 str(tiny_dir), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    store = load_store("tiny", "aime24", tiny_dir)
    ref = compare_curves(_points(f"file:{reads}", "reads", (1, 2, 4), store),
                         _points("sc", "n", (1, 4, 16), store), BudgetGrid(1000, 200000),
                         name_a=f"file:{reads}", name_b="sc").to_dict()
    assert {k: got[k] for k in ref} == ref
    # the same from Python, and from two controllers computed in-process, on the seed grid
    from tts_gym.reporting import compare

    cmp, grid = compare(f"file:{reads}", "sc", models=["tiny"], benchmarks=["aime24"], seeds=3,
                        grids={f"file:{reads}": ("reads", (1, 2, 4)), "sc": ("n", (1, 4, 16))},
                        data_dir=tiny_dir, workers=1,
                        files=__import__("tts_gym.reporting.own", fromlist=["x"]).FileOptions(
                            trusted=True))
    again = compare_curves(_points(f"file:{reads}", "reads", (1, 2, 4), store),
                           _points("sc", "n", (1, 4, 16), store), grid,
                           name_a=f"file:{reads}", name_b="sc")
    assert cmp.to_dict() == again.to_dict()
    assert main(["compare", str(a), str(b), "--data-dir", str(tiny_dir)]) == 0
    text = capsys.readouterr().out
    assert f"Verdict: file:{reads} " in text and "| band (tokens) |" in text


def test_compare_refuses_files_it_cannot_pair(tmp_path, tiny_dir, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["sweep", "--controllers", "sc", "--grid", "sc:n=1,4",
                 *_grid_argv(tiny_dir, "--json", str(a), "--csv", str(tmp_path / "a.csv"))]
                ) == 0
    assert main(["sweep", "--controllers", "asc", "--grid", "asc:max_samples=1,4",
                 *_grid_argv(tiny_dir, "--json", str(b))]) == 0
    doc = json.loads(b.read_text())

    def refused(other_rows, words):
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**doc, "rows": other_rows}))
        capsys.readouterr()
        assert main(["compare", str(a), str(bad), "--budgets", "10,1000",
                     "--data-dir", str(tiny_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err, err

    refused([{k: v for k, v in r.items() if k != "correct_bits"} for r in doc["rows"]],
            "has no per-question data")
    refused([{**r, "store_sha256": "0" * 64} for r in doc["rows"]], "different versions")
    refused([{**r, "seed_list": [0, 1]} for r in doc["rows"]], "different seeds")
    refused([{**r, "benchmark": "aime25"} for r in doc["rows"]], "different stores")
    assert main(["compare", str(tmp_path / "a.csv"), str(b)]) == 2
    assert "not a sweep JSON file" in capsys.readouterr().err


def test_provenance_names_the_checkout_and_never_fails(monkeypatch):
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip()
    git_commit.cache_clear()
    assert git_commit() == (head or None)

    def broken(*_a, **_k):
        raise subprocess.TimeoutExpired("git", 2.0)

    git_commit.cache_clear()
    monkeypatch.setattr(subprocess, "run", broken)
    assert git_commit() is None
    git_commit.cache_clear()
    p = provenance(stores=[("m/b", "ab")], seeds=[3, 4], cost_mode="exact", executor="ray")
    assert p["stores"] == {"m/b": "ab"} and p["seeds"] == [3, 4]
    assert (p["cost_mode"], p["executor"], p["package"]) == ("exact", "ray", "tts-gym")


def test_eval_json_carries_provenance(tiny_dir, capsys):
    assert main(["eval", "sc", "--param", "n=4", "--model", "tiny", "--benchmark", "aime24",
                 "--seeds", "2", "--data-dir", str(tiny_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    store = load_store("tiny", "aime24", tiny_dir)
    prov = out["provenance"]
    assert prov["stores"] == {store.name: store.sha256} and prov["seeds"] == [0, 1]
    assert prov["cost_mode"] == "reference" and prov["executor"] == "local"
    assert prov["git_commit"] == git_commit()
