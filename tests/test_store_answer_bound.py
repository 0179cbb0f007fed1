"""The answer-length bound of stores (docs/store-limits.md): a store whose answers are at most
``MAX_ANSWER_CHARS`` characters loads and scores the same in process and in the sandbox; one
character more is refused at load, naming the question, branch and field."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tts_gym.controller import load_file_controller
from tts_gym.evaluation import evaluate
from tts_gym.sandbox import broker
from tts_gym.sandbox.evaluate import evaluate_source
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.store import StoreFormatError, load_store_file
from tts_gym.store.limits import MAX_ANSWER_CHARS
from tts_gym.testing import tiny_questions, write_store_json

Q, B = 1, 2  # the targeted question and branch (not the first, so the indices are checked)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTS_GYM_CACHE", str(tmp_path / "packed"))


def _long(label: str, chars: int) -> str:
    """``label`` padded to exactly ``chars`` characters with a two-byte character (so the bound
    is in characters, not bytes)."""
    return label + "é" * (chars - len(label))


def _questions(chars: int) -> list[dict[str, Any]]:
    """A tiny store whose every answer is its short label padded to ``chars`` characters."""
    data = tiny_questions(seed=5, questions=3, branches=6, max_probes=4)
    for item in data:
        item["gold_answer"] = _long(item["gold_answer"], chars)
        for branch in item["each_branch"]:
            branch[0] = [_long(a, chars) for a in branch[0]]
            branch[2] = _long(branch[2], chars)
        item["final_answers_trace"] = [b[2] for b in item["each_branch"]]
    data[Q]["each_branch"][B][0] = data[Q]["each_branch"][B][0] or [data[Q]["each_branch"][B][2]]
    return data


def _load(tmp_path: Path, data: list[dict[str, Any]]):
    return load_store_file(write_store_json(tmp_path / "data" / "M" / "aime24.json", data))


def test_the_bound_is_inside_the_sandboxs_cut():
    """The broker cuts answers at its own bound; the store's may not exceed it, or a store that
    loads would score differently in the sandbox."""
    assert 129 < MAX_ANSWER_CHARS <= broker.MAX_ANSWER_CHARS


def test_answers_at_the_bound_load(tmp_path):
    store = _load(tmp_path, _questions(MAX_ANSWER_CHARS))
    assert max(len(a) for table in store.answers for a in table) == MAX_ANSWER_CHARS


@pytest.mark.parametrize(
    ("where", "field", "branch"),
    [
        (lambda d: d[Q], "gold_answer", None),
        (lambda d: d[Q]["each_branch"][B][0], "probe_list", B),
        (lambda d: d[Q]["each_branch"][B], "final_answer", B),
        (lambda d: d[Q], "final_answers_trace", B),
    ],
)
def test_one_character_over_the_bound_is_refused(tmp_path, where, field, branch):
    data = _questions(MAX_ANSWER_CHARS)
    over = _long("x", MAX_ANSWER_CHARS + 1)
    node = where(data)
    if field == "gold_answer":
        node["gold_answer"] = over
    elif field == "probe_list":
        node[-1] = over
    elif field == "final_answer":
        node[2] = over
        data[Q]["final_answers_trace"][B] = over  # kept consistent: the first check hits
    else:
        node["final_answers_trace"][B] = over
    path = tmp_path / "data" / "M" / "aime24.json"
    write_store_json(path, data)
    with pytest.raises(StoreFormatError) as info:
        load_store_file(path)
    err = info.value
    assert (err.path, err.question, err.branch, err.field) == (str(path), Q, branch, field)
    text = str(err)
    assert f"{MAX_ANSWER_CHARS + 1:,} characters" in text and f"{MAX_ANSWER_CHARS:,}" in text
    assert "tts-gym collect" in text  # says what to do
    assert not list((tmp_path / "packed").rglob("*.npz"))  # nothing cached


def test_a_lone_surrogate_is_refused(tmp_path):
    data = _questions(5)
    data[Q]["each_branch"][B][0][0] = "12\ud800"
    with pytest.raises(StoreFormatError, match="lone surrogate") as info:
        _load(tmp_path, data)
    assert (info.value.question, info.value.branch, info.value.field) == (Q, B, "probe_list")


REPEAT = '''\
class Controller:
    """Reads two branches and answers the second one's answer: a string the store holds."""

    def solve(self, question):
        question.full_read()
        return question.full_read()
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")
def test_answers_at_the_bound_score_the_same_in_process_and_in_the_sandbox(tmp_path):
    store = _load(tmp_path, _questions(MAX_ANSWER_CHARS))
    path = tmp_path / "repeat.py"
    path.write_text(REPEAT)
    ref = evaluate(load_file_controller(path, {}), store, 3, path="handle")
    got = evaluate_source(REPEAT, store, 3, limits=SandboxLimits(timeout_s=60.0))
    assert ref.correct.any(), "the fixture must have correct answers to compare"
    assert got.answers == ref.answers
    assert np.array_equal(got.correct, ref.correct) and np.array_equal(got.tokens, ref.tokens)
