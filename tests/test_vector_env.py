"""The native vector env equals N single envs step for step (same seeds, same options)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import tts_gym  # noqa: F401  (registers the env)
from tests.conftest import real_data_dir, requires_data
from tts_gym.env.dynamics import OBS_KEYS
from tts_gym.env.vector_env import ReplayVectorEnv
from tts_gym.store import load_store
from tts_gym.testing import tiny_store

ENV_ID = "tts_gym/Replay-v0"


def make_pair(store, n, **kwargs):
    vec = gym.make_vec(
        ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", store=store, **kwargs
    )
    singles = [gym.make(ENV_ID, store=store, **kwargs) for _ in range(n)]
    return vec, singles


def assert_same(vec_obs, vec_info, i, obs, info):
    for k in OBS_KEYS:
        np.testing.assert_array_equal(vec_obs[k][i], obs[k], err_msg=f"obs[{k!r}] of env {i}")
        assert vec_obs[k].dtype == obs[k].dtype
    np.testing.assert_array_equal(vec_info["action_mask"][i], info["action_mask"])
    assert vec_info["tokens"][i] == info["tokens"]
    assert vec_info["question"][i] == info["question"]
    assert vec_info["opened"][i] == info["opened"]


def run_lockstep(vec, singles, steps, rng, reset_kwargs, illegal_rate=0.0):
    """Drive both with the same actions (legal ones drawn by ``rng``); compare everything."""
    n = len(singles)
    vobs, vinfo = vec.reset(**reset_kwargs)
    seed = reset_kwargs.get("seed")
    options = reset_kwargs.get("options") or {}
    done = [False] * n
    for i, env in enumerate(singles):
        opts = {k: (v[i] if np.ndim(v) else v) for k, v in options.items()}
        obs, info = env.reset(seed=None if seed is None else seed + i, options=opts or None)
        assert_same(vobs, vinfo, i, obs, info)
    np.testing.assert_array_equal(vec.action_masks(), vinfo["action_mask"])
    answered = 0
    for _ in range(steps):
        masks = vec.action_masks()
        actions = np.empty(n, np.int64)
        for i in range(n):
            legal = np.flatnonzero(masks[i])
            # ANSWER rarely, so episodes get long enough to exercise every action kind
            weights = np.where(legal == 0, 0.02, 1.0)
            actions[i] = rng.choice(legal, p=weights / weights.sum())
            if illegal_rate and rng.random() < illegal_rate:
                actions[i] = rng.integers(vec.single_action_space.n)
        vobs, vrew, vterm, vtrunc, vinfo = vec.step(actions)
        for i, env in enumerate(singles):
            if done[i]:
                obs, info = env.reset()
                rew, term, trunc = 0.0, False, False
            else:
                obs, rew, term, trunc, info = env.step(int(actions[i]))
            assert_same(vobs, vinfo, i, obs, info)
            assert vrew[i] == rew
            assert bool(vterm[i]) == term
            assert bool(vtrunc[i]) == trunc
            if term:
                answered += 1
                assert vinfo["_answer"][i] and vinfo["answer"][i] == info["answer"]
                assert bool(vinfo["correct"][i]) == info["correct"]
            if "illegal_action" in info:
                assert vinfo["illegal_action"][i]
            done[i] = term or trunc
    return answered


def test_metadata_and_spaces(tiny):
    vec = gym.make_vec(
        ENV_ID, num_envs=4, vectorization_mode="vector_entry_point", store=tiny, max_branches=5
    )
    single = gym.make(ENV_ID, store=tiny, max_branches=5)
    assert isinstance(vec, ReplayVectorEnv)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert vec.single_observation_space == single.observation_space
    assert vec.single_action_space == single.action_space
    assert vec.max_episode_steps == single.spec.max_episode_steps
    obs, info = vec.reset(seed=1)
    assert vec.observation_space.contains(obs)
    assert vec.action_masks().dtype == np.int8 and vec.action_masks().shape == (4, 18)


@pytest.mark.parametrize("reveal_on_advance", [False, True])
def test_equals_singles_random_seeds(reveal_on_advance):
    store = tiny_store(3, questions=4, branches=10)
    vec, singles = make_pair(store, 5, max_branches=6, reveal_on_advance=reveal_on_advance)
    answered = run_lockstep(vec, singles, 400, np.random.default_rng(0), {"seed": 11})
    assert answered >= 5  # autoreset exercised


def test_equals_singles_protocol_options(tiny):
    vec, singles = make_pair(tiny, 3, max_branches=8, cost_mode="exact", probe_cost=7)
    options = {"question": np.array([0, 1, 2]), "shuffle_seed": np.array([5, 6, 7])}
    run_lockstep(vec, singles, 200, np.random.default_rng(1), {"seed": 3, "options": options})


def test_equals_singles_ignore_illegal_and_time_limit(tiny):
    vec, singles = make_pair(tiny, 4, max_branches=4, illegal_action="ignore", max_episode_steps=9)
    run_lockstep(vec, singles, 150, np.random.default_rng(2), {"seed": 0}, illegal_rate=0.3)


def test_illegal_action_raises_and_changes_nothing(tiny):
    vec = ReplayVectorEnv(2, store=tiny, max_branches=4, illegal_action="raise")
    vec.reset(seed=0)
    before = vec.tokens_used
    with pytest.raises(ValueError, match="Illegal action 3 = CONTINUE\\(0\\) in env 1"):
        vec.step([1, 3])
    np.testing.assert_array_equal(vec.tokens_used, before)
    assert vec.action_masks()[0, 3] == 0


def test_reset_mask_resets_only_selected(tiny):
    vec = ReplayVectorEnv(2, store=tiny, max_branches=4)
    vec.reset(seed=0)
    vec.step([2, 2])
    tokens = vec.tokens_used
    obs, _ = vec.reset(options={"reset_mask": np.array([True, False])})
    assert vec.tokens_used[0] == 0 and vec.tokens_used[1] == tokens[1]
    assert obs["status"][1][0] == 2


def test_bad_options_are_explained(tiny):
    vec = ReplayVectorEnv(2, store=tiny, max_branches=4)
    with pytest.raises(ValueError, match="one value for all"):
        vec.reset(options={"question": [0, 1, 2]})
    with pytest.raises(ValueError, match="out of range"):
        vec.reset(options={"question": 99})


@requires_data
def test_equals_singles_real_store():
    store = load_store("Qwen3-8B", "aime24", real_data_dir())
    vec, singles = make_pair(store, 4)
    run_lockstep(vec, singles, 300, np.random.default_rng(3), {"seed": 42})


def test_same_numbers_without_jit(tmp_path):
    """``NUMBA_DISABLE_JIT=1`` (plain Python kernels) gives the jitted path's episode."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, numpy as np\n"
        "from tts_gym.env.vector_env import ReplayVectorEnv\n"
        "from tts_gym.testing import tiny_store\n"
        "v = ReplayVectorEnv(3, store=tiny_store(), max_branches=4)\n"
        "obs, _ = v.reset(seed=5)\n"
        "out = []\n"
        "for t in range(40):\n"
        "    m = v.action_masks()\n"
        "    a = [int(np.flatnonzero(m[i])[(t * 7 + i) % int(m[i].sum())]) for i in range(3)]\n"
        "    obs, r, te, tr, info = v.step(a)\n"
        "    out.append([r.tolist(), te.tolist(), obs['label'].tolist(),\n"
        "                info['tokens'].tolist()])\n"
        "print(json.dumps(out))\n"
    )
    runs = []
    for flag in ("0", "1"):
        env = {**os.environ, "NUMBA_DISABLE_JIT": flag}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        runs.append(json.loads(done.stdout))
    assert runs[0] == runs[1]


def test_ansi_render_gives_one_string_per_env(tiny):
    vec = ReplayVectorEnv(2, store=tiny, max_branches=4, render_mode="ansi")
    single = gym.make(ENV_ID, store=tiny, max_branches=4, render_mode="ansi")
    vec.reset(options={"question": 1, "shuffle_seed": 2})
    single.reset(options={"question": 1, "shuffle_seed": 2})
    vec.step([2, 2])
    single.step(2)
    frames = vec.render()
    assert len(frames) == 2 and frames[0] == frames[1] == single.render()


@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (7, 9), (3, 128)])
def test_batched_autoreset_draws_equal_the_single_env_draws(shape):
    """``draw_episodes`` (one jitted call for every resetting env) draws exactly what
    ``start_episode`` draws from each env's own Generator, and leaves the Generators in the
    same state (so later draws agree too)."""
    from tts_gym.env.episode_start import draw_episodes, generator_list, start_episode
    from tts_gym.store.pack import pack_questions
    from tts_gym.testing import tiny_questions

    n_questions, width = shape
    questions = tiny_questions(4, questions=n_questions, branches=width, max_probes=2)
    rng = np.random.default_rng(0)
    for item in questions:  # ragged branch counts: 1..width
        keep = int(rng.integers(1, width + 1))
        item["each_branch"] = item["each_branch"][:keep]
        item["final_answers_trace"] = item["final_answers_trace"][:keep]
    store = pack_questions(questions, model="m", benchmark="b", split="heldout", source="t",
                           sha256="t")
    n = 6
    mine = [np.random.default_rng(s) for s in range(100, 100 + n)]
    ref = [np.random.default_rng(s) for s in range(100, 100 + n)]
    rngs = generator_list(mine)
    qs = np.zeros(n, np.int64)
    orders = np.full((n, store.width), -7, np.int32)
    want = np.full((n, store.width), -7, np.int32)
    for _ in range(40):
        which = rng.random(n) < 0.5
        draw_episodes(rngs, which, store.n_branches, qs, orders)
        for i in np.flatnonzero(which):
            q = start_episode(store, {}, ref[i], want[i])
            assert qs[i] == q
        np.testing.assert_array_equal(orders, want)
    for a, b in zip(mine, ref, strict=True):
        assert a.random() == b.random()
