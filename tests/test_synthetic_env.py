"""``tts_gym/Synthetic-v0``: registered, passes the Gymnasium checker, seedable, fresh questions
per reset, same dynamics as Replay-v0 on the same store."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import tts_gym  # noqa: F401  (registers the envs)
from tts_gym.synthetic import generate_store
from tts_gym.synthetic.env import SyntheticEnv, make_synthetic_env

SMALL = {"questions": 3, "branches": 16, "max_branches": 8}


def test_registered_and_checker_passes():
    assert "tts_gym/Synthetic-v0" in gym.registry
    env = gym.make("tts_gym/Synthetic-v0", illegal_action="ignore", **SMALL)
    check_env(env.unwrapped, skip_render_check=True)
    fresh = gym.make(
        "tts_gym/Synthetic-v0",
        fresh_questions_per_reset=True,
        illegal_action="ignore",
        branches=16,
        max_branches=8,
    )
    check_env(fresh.unwrapped, skip_render_check=True)


def test_fixed_store_equals_replay_env_on_same_store():
    env = make_synthetic_env("Qwen3-4B", seed=5, **SMALL)
    ref = generate_store("Qwen3-4B", 3, 16, 5)
    assert np.array_equal(env.store.tokens, ref.tokens)
    replay = gym.make("tts_gym/Replay-v0", store=ref, max_branches=8).unwrapped
    for q in range(3):
        o1, _ = env.reset(options={"question": q, "shuffle_seed": 2})
        o2, _ = replay.reset(options={"question": q, "shuffle_seed": 2})
        for action in (2, 2, 1, 3 + 2, 3 + 8 + 2, 0):
            if not env.action_masks()[action]:
                continue
            r1 = env.step(action)
            r2 = replay.step(action)
            assert r1[1] == r2[1] and r1[2] == r2[2]
            assert all(np.array_equal(r1[0][k], r2[0][k]) for k in r1[0])


def test_fresh_questions_are_new_and_seedable():
    env = make_synthetic_env(fresh_questions_per_reset=True, branches=16, max_branches=8)
    env.reset(seed=1)
    a = env.store.tokens.copy()
    env.reset()
    b = env.store.tokens.copy()
    env.reset(seed=1)
    c = env.store.tokens.copy()
    assert not np.array_equal(a, b), "a new question per reset"
    assert np.array_equal(a, c), "the reset seed fixes the drawn question"
    assert env.store.n_questions == 1


def test_fixed_mode_keeps_its_store():
    env = SyntheticEnv(**SMALL)
    env.reset(seed=0)
    first = env.store
    env.reset(seed=1)
    assert env.store is first


def test_episode_runs_to_answer_and_rejects_real_store_args():
    env = gym.make("tts_gym/Synthetic-v0", fresh_questions_per_reset=True, max_branches=4)
    env.reset(seed=3)
    for _ in range(4):
        env.step(2)
    _, reward, terminated, _, info = env.step(0)
    assert terminated and info["tokens"] > 0 and isinstance(info["correct"], bool)
    with pytest.raises(ValueError, match="draws its own store"):
        SyntheticEnv(model="Qwen3-8B")


def test_vector_entry_point():
    envs = gym.make_vec(
        "tts_gym/Synthetic-v0", num_envs=2, vectorization_mode="vector_entry_point", **SMALL
    )
    obs, _ = envs.reset(seed=0)
    assert obs["status"].shape == (2, 8)
    with pytest.raises(ValueError, match="sync"):
        gym.make_vec(
            "tts_gym/Synthetic-v0",
            num_envs=2,
            vectorization_mode="vector_entry_point",
            fresh_questions_per_reset=True,
        )
