"""SC@64 reproduces the published self-consistency figure, through every front end."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np

from agents.controllers.sc import SelfConsistency
from tests.conftest import real_data_dir, requires_data
from tts_gym import QuestionHandle, evaluate, load_store
from tts_gym.cli import main


@requires_data
def test_sc64_qwen3_8b_aime24_batch_and_handle_match_published():
    store = load_store("Qwen3-8B", "aime24", real_data_dir())
    batch = evaluate(SelfConsistency(64), store, path="batch")
    handle = evaluate(SelfConsistency(64), store, path="handle", workers=2)
    assert batch.accuracy == 80.37 and int(batch.avg_tokens) == 910813
    assert np.array_equal(batch.tokens, handle.tokens)
    assert np.array_equal(batch.correct, handle.correct)


@requires_data
def test_sc64_through_gym_make_and_handle():
    env = gym.make(
        "tts_gym/Replay-v0", model="Qwen3-8B", benchmark="aime24", data_dir=real_data_dir()
    )
    correct = total = 0
    for seed in range(100):
        for q in range(30):
            env.reset(options={"question": q, "shuffle_seed": seed})
            h = QuestionHandle(env, record_trace=False)
            res = h.submit(SelfConsistency(64).solve(h))
            correct += res["correct"]
            total += res["tokens"]
    assert round(100 * correct / 3000, 2) == 80.37
    assert int(total / 3000) == 910813


@requires_data
def test_cli_eval_sc_json(capsys):
    assert (
        main(
            [
                "eval",
                "sc",
                "--param",
                "n=64",
                "--model",
                "Qwen3-8B",
                "--benchmark",
                "aime24",
                "--json",
                "--data-dir",
                str(real_data_dir()),
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == 80.37 and int(out["avg_tokens"]) == 910813
    assert json.dumps(out["avg_tokens"]) == "910813.035"  # not 910813.0350000001


def test_sc_batch_equals_handle_on_tiny(tiny):
    for n in (1, 3, 8, 20):
        a = evaluate(SelfConsistency(n), tiny, seeds=7, path="batch")
        b = evaluate(SelfConsistency(n), tiny, seeds=7, path="handle")
        assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.correct, b.correct)
        assert a.answers == b.answers
