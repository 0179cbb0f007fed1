"""The CLI's small promises: --version, `tts-gym controllers`, --detail without --json, JSON
numbers without float noise and in one unit, labelled traces, plots that clip nothing."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

import tts_gym
from tts_gym.cli import main
from tts_gym.controller import available_controllers
from tts_gym.evaluation import evaluate
from tts_gym.testing import tiny_questions, write_store_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    write_store_json(data / "tiny" / "aime24.json", tiny_questions(0))
    return data


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python >= 3.11 only)
    assert capsys.readouterr().out.strip() == f"tts-gym {tts_gym.__version__}"
    assert re.search(r'^version = "([^"]+)"$', pyproject, re.M)[1] == tts_gym.__version__


def test_controllers_lists_what_the_signatures_and_docstrings_say(capsys):
    assert main(["controllers", "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    registry = available_controllers()
    assert set(listed) == set(registry)
    for name, ep in registry.items():
        factory = ep.load()
        sig = inspect.signature(factory)
        params = {p["name"]: p for p in listed[name]["parameters"]}
        assert list(params) == [n for n in sig.parameters if n != "self"]
        for pname, p in sig.parameters.items():
            default = None if p.default is p.empty else p.default
            assert params[pname]["default"] == default
        assert listed[name]["source"]  # the module docstring's first paragraph
    if "sc" in listed:  # a reference read by hand from agents/controllers/sc.py
        n = listed["sc"]["parameters"][0]
        assert (n["name"], n["type"], n["default"], n["range"]) == ("n", "int", 64, "1..64")
        assert "Wang et al." in listed["sc"]["source"]
    if "cmc" in listed:
        beta = listed["cmc"]["parameters"][0]
        assert (beta["name"], beta["default"], beta["range"]) == ("beta", 0.5, "[0, 1]")
    assert main(["controllers"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in registry) and "default" in text


def test_controllers_unknown_name_is_one_sentence(capsys):
    assert main(["controllers", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Unknown controller(s) ['nope']" in err and len(err.strip().splitlines()) == 1


def test_detail_without_json_prints_the_tables(tiny_data, capsys):
    argv = ["eval", "sc", "--param", "n=3", "--model", "tiny", "--benchmark", "aime24",
            "--data-dir", str(tiny_data), "--seeds", "4"]
    assert main([*argv, "--detail", "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert main([*argv, "--detail"]) == 0
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    n_q = len(detail["per_question_accuracy"])
    per_q, per_s = rows[:n_q], rows[n_q:]
    assert [float(r[1]) for r in per_q] == detail["per_question_accuracy"]
    assert [float(r[1]) for r in per_s] == detail["per_seed_accuracy"]
    assert [int(r[0]) for r in per_s] == [0, 1, 2, 3]


def test_json_numbers_have_no_float_noise_and_one_unit(tiny_data, capsys):
    from tts_gym.store import load_store

    store = load_store("tiny", "aime24", tiny_data)
    argv = ["eval", "asc", "--model", "tiny", "--benchmark", "aime24", "--data-dir",
            str(tiny_data), "--seeds", "7", "--json", "--detail"]
    assert main(argv) == 0
    raw = capsys.readouterr().out
    out = json.loads(raw)
    ref = evaluate(tts_gym.make_controller("asc"), store, seeds=7)
    # every accuracy in percent: the mean of the per-seed figures is the headline figure
    assert out["accuracy"] == ref.accuracy
    assert np.isclose(np.mean(out["per_seed_accuracy"]), out["accuracy"], atol=0.01)
    assert np.isclose(np.mean(out["per_question_accuracy"]), out["accuracy"], atol=0.01)
    assert max(out["per_question_accuracy"]) <= 100 and max(out["per_question_accuracy"]) > 1
    # avg_tokens is the exact fraction's nearest double: total / (seeds x questions)
    assert out["avg_tokens"] == int(ref.tokens.sum()) / ref.tokens.size
    # no number is printed with more than 3 decimals except avg_tokens, whose repr is shortest
    for key in ("per_seed_tokens", "per_question_tokens", "per_seed_accuracy"):
        assert all(round(v, 3) == v for v in out[key])


def test_avg_tokens_prints_without_noise():
    """The mean of per-seed means prints 1013228.3809999999 for these tokens (the issue saw
    910813.0350000001 for SC@64); total / (seeds x questions) is the exact 1013228.381."""
    from tts_gym.evaluation.result import EvalResult

    tokens = np.random.default_rng(2).integers(10_000, 2_000_000, size=(100, 30))
    assert json.dumps(float(np.mean(tokens.sum(axis=1) / 30))) == "1013228.3809999999"
    r = EvalResult("sc", {}, "m", "b", "search", "reference", list(range(100)),
                   np.ones((100, 30), bool), tokens, [], "batch", 0.0)
    assert json.dumps(r.avg_tokens) == "1013228.381"
    assert int(r.avg_tokens) == int(np.mean(r.per_seed_tokens))


def test_traces_are_labelled_with_seed_and_question(tiny_data, tmp_path, capsys):
    path = tmp_path / "traces.json"
    argv = ["eval", "sc", "--param", "n=2", "--model", "tiny", "--benchmark", "aime24",
            "--data-dir", str(tiny_data), "--seeds", "3", "--workers", "1", "--traces", str(path),
            "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    traces = json.loads(path.read_text())
    n_q = summary["questions"]
    assert [(t["seed"], t["question"]) for t in traces] == [
        (s, q) for s in range(3) for q in range(n_q)
    ]
    from tts_gym.store import load_store

    ref = evaluate(tts_gym.make_controller("sc", {"n": 2}), load_store("tiny", "aime24",
                   tiny_data), seeds=3, path="handle")
    for t in traces:
        assert t["tokens"] == ref.tokens[t["seed"], t["question"]]
        assert t["correct"] == bool(ref.correct[t["seed"], t["question"]])
        assert t["events"][-1]["op"] == "finish" and t["events"][-1]["answer"] == t["answer"]


# --- plots -----------------------------------------------------------------------------------
def _rl_rows():
    rows = []
    for n, (t, a) in zip([1, 4, 8, 16, 64], [(17446, 67.57), (70000, 73.0), (140344, 75.7),
                                             (280709, 76.3), (1124400, 76.7)], strict=True):
        rows.append({"controller": "sc", "avg_tokens": t, "accuracy": a, "budget": n})
    for cw, (t, a) in zip([1e-6, 1e-7, 2e-8], [(17446, 67.57), (143706, 76.27),
                                                (186361, 76.37)], strict=True):
        rows.append({"controller": "rl:r/model.zip", "label": "MaskablePPO", "avg_tokens": t,
                     "accuracy": a, "budget": cw})
    return rows


def test_cost_weight_labels_clear_the_markers_and_each_other():
    pytest.importorskip("matplotlib")
    from tts_gym.reporting.plot import MARKER_CLEARANCE, group_figure, text_box

    fig = group_figure(_rl_rows(), "Qwen3-8B · AIME25 (held out)")
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [text_box(t, renderer) for t in ax.texts]
    assert sorted(t.get_text() for t in ax.texts) == ["1e-6", "1e-7", "2e-8"]
    points = [ax.transData.transform((r["avg_tokens"], r["accuracy"])) for r in _rl_rows()]
    for box in boxes:
        for px, py in points:
            assert not (box.x0 - MARKER_CLEARANCE < px < box.x1 + MARKER_CLEARANCE
                        and box.y0 - MARKER_CLEARANCE < py < box.y1 + MARKER_CLEARANCE)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1)


def test_long_titles_are_not_clipped():
    pytest.importorskip("matplotlib")
    from tts_gym.reporting.plot import group_figure

    rows = [r for r in _rl_rows() if r["controller"] == "sc"]
    title = "Qwen3-8B on aime24 — SYNTHETIC twin, not real data, a very long title (100 seeds)"
    fig = group_figure(rows, title)
    box = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


def test_gitignore_covers_the_demo_output():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/tts-gym-demo/" in ignored


def test_tensorboard_is_only_in_the_rl_extra():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any("tensorboard" in d for d in project["dependencies"])  # `train-rl --tensorboard`
    extras = {k for k, deps in project["optional-dependencies"].items()
              if any("tensorboard" in d for d in deps)}
    assert extras == {"rl"}
