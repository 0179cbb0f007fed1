"""Every bad-input case of the store format (docs/store-format.md, "Bad input").

Each case writes a mutated copy of a valid fixture store, loads it, and checks that the error names
the file, the question index, the branch index and the field (as applicable), that nothing is
returned, and that no packed cache file is written.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tts_gym.store import StoreFormatError, load_store, load_store_file
from tts_gym.testing import tiny_questions, write_store_json

Q = 1  # the question every mutation targets (not the first, so the index is really checked)
B = 2  # the branch every branch-level mutation targets


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, initially empty packed-cache folder for this test."""
    path = tmp_path / "packed"
    monkeypatch.setenv("TTS_GYM_CACHE", str(path))
    return path


def _cache_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob("*")) if cache_dir.exists() else []


def _valid() -> list[dict[str, Any]]:
    data = tiny_questions(seed=3, questions=3, branches=5, max_probes=4)
    # Make sure the targeted branch has probes, so probe-entry mutations have something to hit.
    branch = data[Q]["each_branch"][B]
    if not branch[0]:
        branch[0] = [branch[2]]
    return data


def _set(path: tuple, value: Any) -> Callable[[list], None]:
    def mutate(data: list) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(field: str) -> Callable[[list], None]:
    def mutate(data: list) -> None:
        del data[Q][field]

    return mutate


def _expect_error(tmp_path: Path, cache_dir: Path, raw: bytes) -> StoreFormatError:
    path = tmp_path / "data" / "Qwen3-8B" / "aime24.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    result = None
    with pytest.raises(StoreFormatError) as info:
        result = load_store_file(path)
    assert result is None  # nothing partial
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert "tts-gym download" in str(info.value)  # says what to do
    assert _cache_files(cache_dir) == [], "a cache of a bad file must never be written"
    # The same through the (model, benchmark) front door.
    with pytest.raises(StoreFormatError):
        load_store("Qwen3-8B", "aime24", tmp_path / "data")
    assert _cache_files(cache_dir) == []
    return info.value


def _check(err: StoreFormatError, question: int | None, branch: int | None, field: str | None):
    msg = str(err)
    assert (err.question, err.branch, err.field) == (question, branch, field)
    if question is not None:
        assert f"question {question}" in msg
    if branch is not None:
        assert f"branch {branch}" in msg
    else:
        assert "branch " not in msg.split(":")[0]
    if field is not None:
        assert f"field '{field}'" in msg


MISSING = ["question", "gold_answer", "probe_freq", "each_branch", "final_answers_trace"]


@pytest.mark.parametrize("field", MISSING)
def test_missing_field(tmp_path, cache_dir, field):
    data = _valid()
    _delete(field)(data)
    err = _expect_error(tmp_path, cache_dir, json.dumps(data).encode())
    _check(err, Q, None, field)
    assert "missing" in str(err)


# (label, mutation, branch index named, field named, words the message must contain)
QUESTION_CASES = [
    ("question-not-string", _set((Q, "question"), 7), None, "question", "string"),
    ("gold-int", _set((Q, "gold_answer"), 42), None, "gold_answer", "string"),
    ("gold-null", _set((Q, "gold_answer"), None), None, "gold_answer", "string"),
    ("gold-list", _set((Q, "gold_answer"), ["42"]), None, "gold_answer", "string"),
    ("probe-freq-zero", _set((Q, "probe_freq"), 0), None, "probe_freq", "positive"),
    ("probe-freq-negative", _set((Q, "probe_freq"), -500), None, "probe_freq", "positive"),
    ("probe-freq-float", _set((Q, "probe_freq"), 500.0), None, "probe_freq", "integer"),
    ("probe-freq-bool", _set((Q, "probe_freq"), True), None, "probe_freq", "integer"),
    ("probe-freq-string", _set((Q, "probe_freq"), "500"), None, "probe_freq", "integer"),
    ("probe-freq-huge", _set((Q, "probe_freq"), 2**70), None, "probe_freq", "positive"),
    ("branches-not-list", _set((Q, "each_branch"), {"0": []}), None, "each_branch", "list"),
    ("branches-empty", _set((Q, "each_branch"), []), None, "each_branch", "empty"),
    ("trace-not-list", _set((Q, "final_answers_trace"), "1"), None, "final_answers_trace", "list"),
]


@pytest.mark.parametrize(
    "mutate, branch, field, words",
    [c[1:] for c in QUESTION_CASES],
    ids=[c[0] for c in QUESTION_CASES],
)
def test_bad_question_field(tmp_path, cache_dir, mutate, branch, field, words):
    data = _valid()
    mutate(data)
    err = _expect_error(tmp_path, cache_dir, json.dumps(data).encode())
    _check(err, Q, branch, field)
    assert words in str(err)


@pytest.mark.parametrize("delta", [-1, 1])
def test_final_answers_trace_length_disagrees(tmp_path, cache_dir, delta):
    data = _valid()
    trace = data[Q]["final_answers_trace"]
    if delta < 0:
        trace.pop()
    else:
        trace.append("0")
    err = _expect_error(tmp_path, cache_dir, json.dumps(data).encode())
    _check(err, Q, None, "final_answers_trace")
    assert f"{len(trace)} entries" in str(err) and "each_branch has 5" in str(err)


def _branch(index: int, value: Any) -> Callable[[list], None]:
    def mutate(data: list) -> None:
        data[Q]["each_branch"][B][index] = value

    return mutate


def _probe(value: Any) -> Callable[[list], None]:
    def mutate(data: list) -> None:
        data[Q]["each_branch"][B][0][-1] = value

    return mutate


def _triple(value: Any) -> Callable[[list], None]:
    def mutate(data: list) -> None:
        data[Q]["each_branch"][B] = value

    return mutate


def _final_both(value: Any) -> Callable[[list], None]:
    """Change the final answer in the triple AND the trace, so only the type is wrong."""

    def mutate(data: list) -> None:
        data[Q]["each_branch"][B][2] = value
        data[Q]["final_answers_trace"][B] = value

    return mutate


BRANCH_CASES = [
    ("tokens-negative", _branch(1, -1), "branch_tokens", "non-negative"),
    ("tokens-float", _branch(1, 1234.5), "branch_tokens", "integer"),
    ("tokens-integral-float", _branch(1, 1200.0), "branch_tokens", "integer"),
    ("tokens-true", _branch(1, True), "branch_tokens", "integer"),
    ("tokens-false", _branch(1, False), "branch_tokens", "integer"),
    ("tokens-string", _branch(1, "1200"), "branch_tokens", "integer"),
    ("tokens-null", _branch(1, None), "branch_tokens", "integer"),
    ("tokens-huge", _branch(1, 2**64), "branch_tokens", "over the bound of 1,000,000,000"),
    ("probes-not-list", _branch(0, "42"), "probe_list", "list"),
    ("probe-int", _probe(42), "probe_list", "string"),
    ("probe-null", _probe(None), "probe_list", "string"),
    ("probe-float", _probe(4.2), "probe_list", "string"),
    ("final-int", _final_both(42), "final_answer", "string"),
    ("final-null", _final_both(None), "final_answer", "string"),
    ("branch-dict", _triple({"probes": [], "tokens": 1, "final": "1"}), "each_branch", "triple"),
    ("branch-string", _triple("1"), "each_branch", "triple"),
    ("branch-pair", _triple([["1"], 100]), "each_branch", "length 2"),
    ("branch-quad", _triple([["1"], 100, "1", "extra"]), "each_branch", "length 4"),
    ("branch-empty", _triple([]), "each_branch", "length 0"),
    ("trace-entry-int", _set((Q, "final_answers_trace", B), 7), "final_answers_trace", "string"),
    ("trace-differs", _set((Q, "final_answers_trace", B), "zzz"), "final_answers_trace", "zzz"),
]


@pytest.mark.parametrize(
    "mutate, field, words", [c[1:] for c in BRANCH_CASES], ids=[c[0] for c in BRANCH_CASES]
)
def test_bad_branch(tmp_path, cache_dir, mutate, field, words):
    data = _valid()
    mutate(data)
    err = _expect_error(tmp_path, cache_dir, json.dumps(data).encode())
    _check(err, Q, B, field)
    assert words in str(err).replace("[probe_list, branch_tokens, final_answer]", "triple")


@pytest.mark.parametrize(
    "label, raw, words",
    [
        ("object", b'{"question": "x"}', "JSON array"),
        ("string", b'"hello"', "JSON array"),
        ("number", b"3", "JSON array"),
        ("null", b"null", "JSON array"),
        ("empty-array", b"[]", "no questions"),
        ("empty-file", b"", "not valid JSON"),
        ("not-utf8", b"\xff\xfe[1, 2]", "not valid JSON"),
        ("html", b"<html>404: Not Found</html>", "not valid JSON"),
    ],
)
def test_file_not_a_json_array(tmp_path, cache_dir, label, raw, words):
    err = _expect_error(tmp_path, cache_dir, raw)
    _check(err, None, None, None)
    assert words in str(err)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.999])
def test_truncated_json(tmp_path, cache_dir, fraction):
    raw = json.dumps(_valid()).encode()
    err = _expect_error(tmp_path, cache_dir, raw[: int(len(raw) * fraction)])
    _check(err, None, None, None)
    assert "truncated" in str(err)


@pytest.mark.parametrize("item", [[], "question", 5, None])
def test_question_not_an_object(tmp_path, cache_dir, item):
    data = _valid()
    data[Q] = item
    err = _expect_error(tmp_path, cache_dir, json.dumps(data).encode())
    _check(err, Q, None, None)
    assert "JSON object" in str(err)


def test_error_in_last_branch_of_last_question_rejects_whole_file(tmp_path, cache_dir):
    """Validation runs over everything before packing: a late error still returns nothing."""
    data = _valid()
    data[-1]["each_branch"][-1][1] = -5
    err = _expect_error(tmp_path, cache_dir, json.dumps(data).encode())
    _check(err, len(data) - 1, len(data[-1]["each_branch"]) - 1, "branch_tokens")


def test_directory_instead_of_file(tmp_path, cache_dir):
    path = tmp_path / "data" / "Qwen3-8B" / "aime24.json"
    path.mkdir(parents=True)
    with pytest.raises((StoreFormatError, FileNotFoundError)) as info:
        load_store_file(path)
    assert str(path) in str(info.value)
    assert _cache_files(cache_dir) == []


@pytest.mark.parametrize(
    "label, mutate",
    [
        ("zero-probes", _branch(0, [])),
        ("zero-tokens", _branch(1, 0)),
        ("unicode-answer", _final_both("\\frac{1}{2} ✓")),
        ("noise-answers", _probe("[Boxed Answer]")),
        ("extra-field", _set((Q, "note"), {"anything": [1, 2]})),
        ("big-probe-freq", _set((Q, "probe_freq"), 10**7)),  # far past T; L x 10**7 < 10**9
    ],
)
def test_legal_edge_cases_load(tmp_path, cache_dir, label, mutate):
    """What the spec allows must not be rejected (L = 0, T = 0, noise strings, extra keys)."""
    data = _valid()
    mutate(data)
    path = write_store_json(tmp_path / "Qwen3-8B" / "aime24.json", data)
    store = load_store_file(path)
    assert store.n_questions == len(data)
    item = data[Q]
    probes, tokens, final = item["each_branch"][B]
    assert store.n_probes[Q, B] == len(probes)
    assert store.tokens[Q, B] == tokens
    assert store.answer_string(Q, int(store.final_ans[Q, B])) == final
    assert store.probe_freq[Q] == item["probe_freq"]
    assert len(_cache_files(cache_dir)) == 1  # a good file is cached


def test_mutations_do_not_leak_between_cases():
    """Guard for the helpers above: every case starts from an identical valid store."""
    a, b = _valid(), _valid()
    _branch(1, -1)(a)
    assert a != b and copy.deepcopy(b) == _valid()
