"""``tts_gym.evaluate_policy``: the published protocol for any ``predict(obs, action_masks=...)``.

References: a scripted policy that plays SC@k on the macro and on the atomic actions must score
exactly the built-in ``sc`` controller (published-protocol numbers), and a trained MaskablePPO
must score exactly what the ``rl:`` controller path (:mod:`agents.rl.policy`) gives for the same
model file.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.rl.policy import RLController
from agents.rl.train import Args, train
from tests.conftest import real_data_dir, requires_data
from tts_gym import EvalResult, evaluate, evaluate_policy, make_controller
from tts_gym.env.actions import SAMPLE as ATOMIC_SAMPLE
from tts_gym.env.macro_core import SAMPLE as MACRO_SAMPLE
from tts_gym.store import load_store
from tts_gym.testing import tiny_store


class ScriptedSC:
    """Reads ``k`` branches to the end, then answers (the majority of final answers): SC@k.

    Counts opened slots from the observation: ``totals[0]`` on the atomic env, feature 0
    (``opened / S``) on the macro env. ``predict`` has SB3's signature."""

    def __init__(self, k: int, atomic: bool, slots: int) -> None:
        self.k, self.atomic, self.slots = k, atomic, slots

    def predict(self, obs, action_masks=None, deterministic=True):
        opened = int(obs["totals"][0]) if self.atomic else round(float(obs[0]) * self.slots)
        sample = ATOMIC_SAMPLE if self.atomic else MACRO_SAMPLE
        want = sample if opened < self.k and action_masks[sample] else 0
        return np.array(want), None


def _same(a: EvalResult, b: EvalResult) -> None:
    np.testing.assert_array_equal(a.correct, b.correct)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert a.answers == b.answers and a.seeds == b.seeds
    assert (a.accuracy, a.avg_tokens) == (b.accuracy, b.avg_tokens)


@pytest.mark.parametrize("atomic", [False, True])
def test_a_scripted_policy_scores_exactly_the_sc_controller(atomic):
    store = tiny_store(7, questions=5, branches=12, max_probes=6)
    policy = ScriptedSC(3, atomic, slots=8)
    got = evaluate_policy(policy, store, 20, actions="atomic" if atomic else "macro",
                          max_branches=8)
    want = evaluate(make_controller("sc", {"n": 3}), store, 20, max_branches=8)
    _same(got, want)
    assert got.path == "env" and got.controller == "policy-ScriptedSC"
    assert got.params["actions"] == ("atomic" if atomic else "macro")


@requires_data
@pytest.mark.parametrize("atomic", [False, True])
def test_the_100_seed_protocol_on_a_real_store(atomic):
    store = load_store("Qwen3-8B", "aime24", real_data_dir())
    got = evaluate_policy(ScriptedSC(3, atomic, 64), store,
                          actions="atomic" if atomic else "macro")
    want = evaluate(make_controller("sc", {"n": 3}), store)
    _same(got, want)
    assert len(got.seeds) == 100


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A MaskablePPO trained a few hundred steps with train-rl's Python API (tiny store)."""
    out = tmp_path_factory.mktemp("mppo")
    store = tiny_store(5, questions=6, branches=12, max_probes=8)
    train(Args(algo="maskable-ppo", timesteps=512, out=str(out), store=store, n_envs=2,
               n_steps=64, batch_size=64, max_branches=8, max_macro_steps=16, progress=False,
               checkpoint_every=0, seed=2))
    return out / "model.zip", store


def test_a_trained_maskable_ppo_scores_what_the_rl_controller_scores(trained):
    from sb3_contrib import MaskablePPO

    path, store = trained
    model = MaskablePPO.load(path, device="cpu")
    got = evaluate_policy(model, store, 8, max_branches=8, max_macro_steps=16)
    want = evaluate(RLController(path), store, 8, max_branches=8, path="handle")
    _same(got, want)
    assert len(np.unique(got.tokens)) > 3  # the policy plays varied episodes, not one rule


def test_a_policy_without_masks_and_the_errors(trained):
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    path, store = trained
    model = MaskablePPO.load(path, device="cpu")
    with pytest.raises(ValueError, match="pass actions='macro'"):
        evaluate_policy(model, store, 2, actions="atomic", max_branches=8)
    with pytest.raises(TypeError, match=r"predict\(obs, action_masks="):
        evaluate_policy(make_controller("sc", {"n": 2}), store, 2)
    with pytest.raises(ValueError, match="actions must be one of"):
        evaluate_policy(model, store, 2, actions="both")
    # PPO's predict takes no action_masks: it plays on the env's rules (illegal = counted no-op)
    ppo = PPO("MlpPolicy", _macro_env(store), n_steps=32, batch_size=32,
              seed=0, device="cpu")
    result = evaluate_policy(ppo, store, 2, max_branches=8, max_macro_steps=16)
    assert result.correct.shape == (2, store.n_questions)


def _macro_env(store):
    from tts_gym.env.macro_env import make_macro_env

    return make_macro_env(store, max_branches=8, max_macro_steps=16)


def test_the_example_that_trains_outside_train_rl(tmp_path):
    """examples/train_outside_train_rl.py (docs/rl.md) runs and prints a protocol row that
    equals evaluate_policy on the model it trained."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tts_gym.testing import tiny_questions, write_store_json

    data = tmp_path / "data"
    for bench, seed in (("aime24", 1), ("aime25", 2)):
        write_store_json(data / "tiny" / f"{bench}.json", tiny_questions(seed))
    script = Path(__file__).resolve().parents[1] / "examples" / "train_outside_train_rl.py"
    argv = [sys.executable, str(script), "--model", "tiny", "--data-dir", str(data),
            "--timesteps", "256", "--seeds", "3"]
    env = {**os.environ, "PYTHONPATH": str(script.parents[1])}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["benchmark"] == "aime25" and row["seeds"] == 3 and row["path"] == "env"
    assert row["controller"] == "maskable-ppo (own loop)" and row["timesteps"] == 256
    assert 0.0 <= row["accuracy"] <= 100.0 and row["avg_tokens"] > 0


def test_an_atomic_episode_cut_by_the_time_limit_is_scored_wrong():
    """A policy that never answers: every atomic episode runs into the registration's 20,000-step
    limit (illegal actions are free no-ops) and has no answer."""
    from tts_gym.registration import MAX_EPISODE_STEPS

    class Stuck:
        calls = 0

        def predict(self, obs, action_masks=None, deterministic=True):
            Stuck.calls += 1
            return 3, None  # CONTINUE(0) before anything is open: illegal, a no-op

    store = tiny_store(1, questions=2, branches=4)
    result = evaluate_policy(Stuck(), store, 1, actions="atomic", max_branches=4)
    assert Stuck.calls == MAX_EPISODE_STEPS * store.n_questions
    assert not result.correct.any() and (result.tokens == 0).all()
    assert result.answers == [[None, None]]
