"""``tts-gym inspect``: its summary checked against figures recomputed from the raw JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import real_data_dir, requires_data
from tts_gym.cli import main
from tts_gym.testing import tiny_questions, write_store_json


def expected_summary(data: list[dict]) -> dict:
    """The inspect figures computed in plain Python from the AutoTTS JSON."""
    branches = [b for item in data for b in item["each_branch"]]
    correct = [b[2] == item["gold_answer"] for item in data for b in item["each_branch"]]
    probes = [len(b[0]) for b in branches]
    tokens = [b[1] for b in branches]
    distinct = []
    for item in data:
        seen = {item["gold_answer"]}
        for p, _, f in item["each_branch"]:
            seen.update(p)
            seen.add(f)
        distinct.append(len(seen))
    return {
        "questions": len(data),
        "branches": len(branches),
        "branches_per_question": sorted({len(item["each_branch"]) for item in data}),
        "probe_interval_tokens": sorted({item["probe_freq"] for item in data}),
        "pass_at_1": round(100 * sum(correct) / len(correct), 2),
        "questions_solved_by_some_branch": sum(
            any(b[2] == item["gold_answer"] for b in item["each_branch"]) for item in data
        ),
        "mean_tokens": round(sum(tokens) / len(tokens), 1),
        "max_tokens": max(tokens),
        "probes_min": min(probes),
        "probes_mean": round(sum(probes) / len(probes), 2),
        "probes_max": max(probes),
        "distinct_answers_mean": round(sum(distinct) / len(distinct), 1),
        "distinct_answers_max": max(distinct),
        "_probes": probes,
    }


def check(summary: dict, expected: dict) -> None:
    probes = expected.pop("_probes")
    for key, value in expected.items():
        assert summary[key] == pytest.approx(value, abs=1e-9), key
    hist = summary["probe_count_histogram"]
    assert sum(hist.values()) == expected["branches"]
    for label, count in hist.items():
        lo, hi = map(int, label.split("-"))
        assert count == sum(lo <= n <= hi for n in probes), label


@pytest.fixture
def tiny_dir(tmp_path: Path) -> tuple[Path, list[dict]]:
    data = tiny_questions(seed=11, questions=4, branches=16, max_probes=12)
    data[2]["each_branch"] = data[2]["each_branch"][:9]  # uneven branch counts
    data[2]["final_answers_trace"] = data[2]["final_answers_trace"][:9]
    data[3]["gold_answer"] = "never produced"  # a gold-only answer string
    write_store_json(tmp_path / "Tiny-1B" / "hmmt25.json", data)
    return tmp_path, data


def test_inspect_json_on_a_tiny_store(tiny_dir, capsys):
    root, data = tiny_dir
    code = main(
        [
            "inspect",
            "--model",
            "Tiny-1B",
            "--benchmark",
            "hmmt25",
            "--data-dir",
            str(root),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.count("\n") == 1
    summary = json.loads(out)
    assert summary["store"] == "Tiny-1B/hmmt25" and summary["split"] == "heldout"
    assert summary["source"] == str(root / "Tiny-1B" / "hmmt25.json")
    assert summary["branches_per_question"] == [9, 16]
    check(summary, expected_summary(data))


def test_inspect_text_lists_every_figure(tiny_dir, capsys):
    root, _ = tiny_dir
    argv = ["inspect", "--model", "Tiny-1B", "--benchmark", "hmmt25", "--data-dir", str(root)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    lines = text.splitlines()
    assert len(lines) == len(summary)
    for line, (key, value) in zip(lines, summary.items(), strict=True):
        assert line.split()[0] == key and line.rstrip().endswith(str(value))


@requires_data
@pytest.mark.parametrize("model, bench", [("Qwen3-8B", "aime24"), ("Qwen3-0.6B", "hmmt25")])
def test_inspect_json_on_a_real_store(model, bench, capsys):
    root = real_data_dir()
    code = main(
        ["inspect", "--model", model, "--benchmark", bench, "--data-dir", str(root), "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    data = json.loads((root / model / f"{bench}.json").read_text())
    expected = expected_summary(data)
    assert (expected["questions"], expected["branches"]) == (30, 3840)
    assert summary["probe_interval_tokens"] == [500]
    assert summary["branches_per_question"] == [128]
    check(summary, expected)
