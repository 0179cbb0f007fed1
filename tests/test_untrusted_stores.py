"""Hostile store files: file size, JSON nesting depth and token counts are bounded.

Every case must end in one :class:`StoreFormatError` sentence naming the file (and question,
branch, field where they apply), the limit and how to raise it; never a ``RecursionError``
traceback, never a silently wrapped int64 sum, never a partial store or a cache file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import tts_gym  # noqa: F401  (registers the envs)
from tests.conftest import real_data_dir
from tts_gym.cli import main
from tts_gym.env import SAMPLE, ReplayEnv
from tts_gym.env.params import TOKEN_CEILING
from tts_gym.evaluation.protocol import evaluate
from tts_gym.store import StoreFormatError, limits, load_store, load_store_file
from tts_gym.testing import tiny_questions, write_store_json


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "packed"
    monkeypatch.setenv("TTS_GYM_CACHE", str(path))
    return path


def _no_cache(cache_dir: Path) -> bool:
    return not cache_dir.exists() or not any(cache_dir.iterdir())


def _store_file(tmp_path: Path, data, name: str = "aime24") -> Path:
    return write_store_json(tmp_path / "data" / "Qwen3-8B" / f"{name}.json", data)


def _refused(path: Path, cache_dir: Path, **kw) -> StoreFormatError:
    got = None
    with pytest.raises(StoreFormatError) as info:
        got = load_store_file(path, **kw)
    assert got is None and _no_cache(cache_dir)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and "shared/" not in msg
    return info.value


# --- nesting depth ---------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [10**5, 10**6])
def test_deeply_nested_json_is_one_sentence_not_a_recursion_error(tmp_path, cache_dir, depth):
    path = tmp_path / "data" / "Qwen3-8B" / "aime24.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"[" * depth + b"]" * depth)
    err = _refused(path, cache_dir)
    msg = str(err)
    assert "nest" in msg and str(limits.DEFAULT_MAX_JSON_DEPTH) in msg
    assert limits.MAX_JSON_DEPTH_ENV in msg and "max_depth" in msg  # how to override
    # Unclosed nesting (a truncated attack file) too.
    path.write_bytes(b'[{"a":' * depth)
    assert "nest" in str(_refused(path, cache_dir))


def test_deep_nesting_in_an_extra_field_of_a_valid_store(tmp_path, cache_dir):
    data = tiny_questions(questions=2, branches=3)
    deep: list = []
    node = deep
    for _ in range(limits.DEFAULT_MAX_JSON_DEPTH + 5):
        node.append([])
        node = node[0]
    data[1]["extra"] = deep  # unknown fields are allowed; their nesting is not unbounded
    path = _store_file(tmp_path, data)
    assert "nest" in str(_refused(path, cache_dir))
    store = load_store_file(path, max_depth=limits.DEFAULT_MAX_JSON_DEPTH + 10)
    assert store.n_questions == 2


def test_deep_nesting_on_the_command_line_is_one_line(tmp_path, capsys, cache_dir):
    path = tmp_path / "data" / "Qwen3-8B" / "aime24.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    code = main(["inspect", "--model", "Qwen3-8B", "--benchmark", "aime24", "--data-dir",
                 str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "RecursionError" not in err and "nest" in err and str(path) in err


def _reference_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_reference_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_reference_depth(v) for v in value.values()), default=0)
    return 0


def _random_json(rng: random.Random, depth: int):
    kind = rng.random()
    if depth <= 0 or kind < 0.3:
        alphabet = ['"', "\\", "[", "]", "{", "}", "a", " ", "\\\\", '\\"', "é"]
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
    if kind < 0.4:
        return rng.randint(-5, 5)
    if kind < 0.7:
        return [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {_random_json(rng, 0): _random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))}


@pytest.mark.parametrize("seed", range(3))
def test_json_depth_scan_agrees_with_the_parser(seed):
    rng = random.Random(seed)
    for _ in range(500):
        value = _random_json(rng, rng.randint(0, 8))
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        want = _reference_depth(value)
        assert limits.json_depth(text) == (want, -1), text
        if want >= 2:  # the limit stops the scan at the first byte that exceeds it
            depth, offset = limits.json_depth(text, limit=want - 1)
            assert depth == want and text[offset : offset + 1] in (b"[", b"{")
    # Brackets and escaped quotes inside strings are not nesting.
    assert limits.json_depth(b'["[[[[", "\\\\", "\\"[[", {"{": "]]"}]') == (2, -1)


# --- file size -------------------------------------------------------------------------------
def test_file_over_the_size_limit_is_refused_with_how_to_raise_it(tmp_path, cache_dir,
                                                                   monkeypatch):
    path = _store_file(tmp_path, tiny_questions())
    size = path.stat().st_size
    msg = str(_refused(path, cache_dir, max_bytes=size - 1))
    assert f"{size:,}" in msg and f"{size - 1:,}" in msg
    assert limits.MAX_STORE_BYTES_ENV in msg and "max_bytes" in msg
    assert load_store_file(path, max_bytes=size).n_questions == 3  # the limit is inclusive
    monkeypatch.setenv(limits.MAX_STORE_BYTES_ENV, str(size - 1))
    with pytest.raises(StoreFormatError, match=limits.MAX_STORE_BYTES_ENV):
        load_store("Qwen3-8B", "aime24", tmp_path / "data", use_cache=False)
    monkeypatch.setenv(limits.MAX_STORE_BYTES_ENV, "lots")
    with pytest.raises(ValueError, match=f"{limits.MAX_STORE_BYTES_ENV}='lots'.*integer"):
        load_store("Qwen3-8B", "aime24", tmp_path / "data", use_cache=False)


def test_default_size_limit_admits_stores_100x_the_published_ones():
    largest_published = 3_219_245  # bytes: Qwen3-8B/hmmt25.json, the largest published store
    data = real_data_dir()
    if data is not None:
        largest_published = max(p.stat().st_size for p in data.glob("*/*.json"))
    assert limits.DEFAULT_MAX_STORE_BYTES >= 100 * largest_published


# --- token counts ----------------------------------------------------------------------------
def _huge(data, q: int, b: int, tokens: int):
    data[q]["each_branch"][b][1] = tokens
    return data


def test_tokens_near_2_62_are_refused_naming_question_branch_field(tmp_path, cache_dir):
    # Before the bound, these passed validation and SC's sums wrapped to 0.0 tokens.
    data = tiny_questions(questions=3, branches=8)
    for item in data:
        for branch in item["each_branch"]:
            branch[1] = 2**62
    err = _refused(_store_file(tmp_path, data), cache_dir)
    assert (err.question, err.branch, err.field) == (0, 0, "branch_tokens")
    assert f"{limits.MAX_QUESTION_TOKENS:,}" in str(err)


def test_huge_tokens_on_the_command_line_never_report_wrapped_sums(tmp_path, capsys, cache_dir):
    data = tiny_questions(questions=3, branches=8)
    for item in data:
        for branch in item["each_branch"]:
            branch[1] = 2**62
    _store_file(tmp_path, data, "huge")
    code = main(["eval", "sc", "--model", "Qwen3-8B", "--benchmark", "huge", "--data-dir",
                 str(tmp_path / "data"), "--seeds", "2", "--param", "n=4"])
    captured = capsys.readouterr()
    assert code == 2 and "accuracy" not in captured.out
    assert "question 0, branch 0, field 'branch_tokens'" in captured.err


def test_a_question_whose_branches_sum_past_the_bound_names_the_crossing_branch(tmp_path,
                                                                                 cache_dir):
    data = tiny_questions(questions=3, branches=8, max_probes=0)
    per = limits.MAX_QUESTION_TOKENS // 4
    for branch in data[1]["each_branch"]:
        branch[1] = per  # 4 branches reach the bound exactly, the 5th crosses it
    err = _refused(_store_file(tmp_path, data), cache_dir)
    assert (err.question, err.branch, err.field) == (1, 4, "branch_tokens")


def test_probe_overcharge_counts_towards_the_bound(tmp_path, cache_dir):
    # Probing a branch to the end charges max(L x probe_freq, T) in the reference mode.
    data = tiny_questions(questions=2, branches=3, max_probes=4)
    item = data[1]
    item["probe_freq"] = limits.MAX_QUESTION_TOKENS // 2
    branch = item["each_branch"][2]
    branch[0] = ["1", "2", "3"]
    branch[1] = 5
    for b in (0, 1):
        item["each_branch"][b][0] = []
        item["each_branch"][b][1] = 1
    err = _refused(_store_file(tmp_path, data), cache_dir)
    assert (err.question, err.branch, err.field) == (1, 2, "probe_list")
    assert "probe_freq" in str(err)


def test_probe_freq_itself_is_bounded(tmp_path, cache_dir):
    data = tiny_questions(questions=2, branches=3)
    data[0]["probe_freq"] = 2**62
    err = _refused(_store_file(tmp_path, data), cache_dir)
    assert (err.question, err.field) == (0, "probe_freq")


def test_store_total_is_bounded(tmp_path, cache_dir, monkeypatch):
    data = tiny_questions(questions=4, branches=2, max_probes=0)
    for item in data:
        for branch in item["each_branch"]:
            branch[1] = 10
    monkeypatch.setattr(limits, "MAX_STORE_TOKENS", 60)  # 3 questions fit, the 4th crosses
    err = _refused(_store_file(tmp_path, data), cache_dir)
    assert (err.question, err.branch) == (3, 0) and "60" in str(err)


def test_limits_are_consistent_with_int64_and_the_observation():
    # The derivation of the module docstring, as arithmetic.
    assert limits.MAX_QUESTION_TOKENS == TOKEN_CEILING
    assert limits.MAX_STORE_TOKENS * limits.SEEDS_THAT_FIT <= 2**63 - 1
    assert limits.SEEDS_THAT_FIT >= 100 * 1000  # far beyond the protocol's 100 seeds


def test_a_store_at_the_bounds_sums_exactly(tmp_path, cache_dir, capsys):
    """Every question at the per-question bound: episode and per-seed sums equal Python's."""
    n_branches = 8
    data = tiny_questions(questions=3, branches=n_branches, max_probes=0)
    per = limits.MAX_QUESTION_TOKENS // n_branches
    for item in data:
        for branch in item["each_branch"]:
            branch[1] = per
    store = load_store_file(_store_file(tmp_path, data))
    exact = per * n_branches  # Python int: the truth
    env = ReplayEnv(store=store, max_branches=n_branches)
    obs, _ = env.reset(options={"question": 0, "shuffle_seed": 0})
    for _ in range(n_branches):
        obs, *_rest, info = env.step(SAMPLE)
    assert info["tokens"] == exact and env.observation_space.contains(obs)

    class ReadAll:
        def solve(self, h):
            answers = [h.full_read() for _ in range(n_branches)]
            return answers[0]

    result = evaluate(ReadAll(), store, seeds=3)
    assert result.tokens.tolist() == [[exact] * 3] * 3
    assert result.avg_tokens == float(exact)
    # SC's jitted batch kernel on the same store (the path that reported 0.0 tokens).
    code = main(["eval", "sc", "--model", "Qwen3-8B", "--benchmark", "aime24", "--data-dir",
                 str(tmp_path / "data"), "--seeds", "3", "--param", f"n={n_branches}", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["path"] == "batch" and out["avg_tokens"] == float(exact)


def test_gym_make_refuses_a_hostile_store_before_building_anything(tmp_path, cache_dir):
    data = tiny_questions(questions=2, branches=3)
    data[1]["each_branch"][0][1] = 2**62
    _store_file(tmp_path, data)
    with pytest.raises(StoreFormatError, match="question 1, branch 0"):
        gym.make("tts_gym/Replay-v0", model="Qwen3-8B", benchmark="aime24",
                 data_dir=tmp_path / "data")
    assert _no_cache(cache_dir)
    np.testing.assert_equal(limits.MAX_QUESTION_TOKENS, 10**9)
