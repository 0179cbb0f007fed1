"""A collected store works everywhere: ``eval``, ``calibrate``, ``inspect``, ``Replay-v0``; and
the guards around ``collect`` (missing extra, published stores, real answer strings)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pytest

from tests.collect_helpers import STORE_MODEL, cli_args, read_store, write_problems
from tests.conftest import real_data_dir, requires_data
from tests.fake_vllm_server import FakeVLLM, ToyModel
from tts_gym.cli import main

TOY = ToyModel(think_range=(20, 300), interval_hint=16, p_no_think_end=0.05)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tts-gym collect ... --out S`` over the toy problems, 16 branches each."""
    tmp = tmp_path_factory.mktemp("collected")
    problems = write_problems(tmp / "toy.jsonl")
    with FakeVLLM(toy=TOY) as srv:
        code = main(cli_args(problems, [srv.base_url], tmp / "S", branches=16, max_tokens=320))
    assert code == 0
    return tmp / "S"


def store_args(data: Path) -> list[str]:
    return ["--data-dir", str(data), "--model", STORE_MODEL, "--benchmark", "toy"]


def test_eval_cmc_on_a_collected_store(collected: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    from tts_gym.controller import make_controller
    from tts_gym.evaluation import evaluate
    from tts_gym.store import load_store

    assert main(["eval", "cmc", *store_args(collected), "--seeds", "4", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = evaluate(make_controller("cmc", {}), load_store(STORE_MODEL, "toy", collected), 4)
    assert (got["model"], got["benchmark"], got["questions"]) == (STORE_MODEL, "toy", 4)
    assert got["accuracy"] == pytest.approx(want.accuracy)
    assert got["avg_tokens"] == pytest.approx(want.avg_tokens)
    data = read_store(collected)
    most = max(sum(b[1] for b in q["each_branch"]) for q in data)
    assert 0 < got["avg_tokens"] <= most


def test_calibrate_on_a_collected_store(collected: Path, tmp_path: Path) -> None:
    out = tmp_path / "params.json"
    assert main(["calibrate", *store_args(collected), "--out", str(out)]) == 0
    stats = json.loads(out.read_text())["statistics"]
    data = read_store(collected)
    pass1 = [sum(f == q["gold_answer"] for f in q["final_answers_trace"]) / 16 for q in data]
    assert stats["pass1_mean"] == pytest.approx(sum(pass1) / len(pass1), abs=1e-4)
    assert stats["questions"] == 4 and stats["branches"] == 16


def test_replay_env_on_a_collected_store(collected: Path) -> None:
    from gymnasium.utils.env_checker import check_env

    from tts_gym.handle import QuestionHandle

    data = read_store(collected)
    # check_env samples unmasked actions: illegal ones must be no-ops for it
    checked = gym.make("tts_gym/Replay-v0", data_dir=collected, model=STORE_MODEL,
                       benchmark="toy", max_branches=16, illegal_action="ignore")
    check_env(checked.unwrapped, skip_render_check=True)
    checked.close()
    env = gym.make("tts_gym/Replay-v0", data_dir=collected, model=STORE_MODEL, benchmark="toy")
    for q, item in enumerate(data):
        env.reset(options={"question": q, "shuffle_seed": 1})
        h = QuestionHandle(env)
        finals = [h.full_read() for _ in range(16)]
        assert h.full_read() is None
        assert Counter(finals) == Counter(item["final_answers_trace"])
        result = h.submit(item["gold_answer"])
        assert result["correct"] and result["tokens"] == sum(b[1] for b in item["each_branch"])
    env.close()


def test_inspect_shows_how_the_store_was_made(collected: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", *store_args(collected)]) == 0
    text = capsys.readouterr().out
    assert "collected_from" in text and "toy/Toy-1B" in text and "token mode ids" in text
    assert main(["inspect", *store_args(collected), "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)["collection"]
    assert meta["settings"]["branches"] == 16 and meta["split"] == "heldout"
    raw = json.loads((collected / STORE_MODEL / "toy.raw.json").read_text())
    half = raw["questions"][0]
    assert half["gold"] == "\\frac{1}{2}"
    assert {half["labels"][s] for s in ("0.5", "1/2", "\\frac{1}{2}") if s in half["labels"]} \
        == {"\\frac{1}{2}"}


def test_missing_extra_is_one_sentence_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = write_problems(tmp_path / "toy.jsonl")
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import math_verify -> ImportError
    assert main(cli_args(problems, ["http://127.0.0.1:9/v1"], tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "needs math-verify, which is not installed" in err
    assert '`pip install "tts-gym[collect]"`' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@requires_data
def test_a_published_store_is_never_overwritten(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = real_data_dir()
    problems = write_problems(tmp_path / "aime24.jsonl")
    argv = cli_args(problems, ["http://127.0.0.1:9/v1"], data, store_model="Qwen3-8B")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Qwen3-8B/aime24.json is a published store; collect never overwrites it" in err


@requires_data
def test_canonical_labels_on_the_most_varied_published_question() -> None:
    """902 distinct raw strings (Qwen3-1.7B, AIME24): every class is one normal form, the gold's
    class carries the gold string, and integers are never merged with other integers."""
    from tts_gym.collect.canonical import canonical_labels, normal_form

    store = json.loads((real_data_dir() / "Qwen3-1.7B" / "aime24.json").read_text())
    item = max(store, key=lambda it: len({a for b in it["each_branch"] for a in b[0] + [b[2]]}))
    counts = Counter(a for b in item["each_branch"] for a in b[0] + [b[2]])
    labels = canonical_labels(counts, item["gold_answer"])
    assert len(counts) == 902 and set(labels) == set(counts)
    gold = item["gold_answer"]
    for raw, label in labels.items():
        if label != gold:
            assert normal_form(raw) == normal_form(label)
        if raw.isdigit() and label.isdigit():
            assert int(raw) == int(label)
    assert labels.get(gold, gold) == gold
