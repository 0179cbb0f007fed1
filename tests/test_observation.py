"""The observation and mask the env keeps up to date step by step equal ones computed from
scratch.

``reference_observation`` is the observation's definition written plainly in Python over the
env's primitive state (which slots are opened, finished, pruned; what was revealed where). The
env maintains its observation incrementally inside ``env_step`` (``update_view``); these tests
compare the two after every step, through ``step``, through the handle's ``apply_action`` fast
path and through the vector env. The kept legality mask (``update_mask``) is compared with
``is_legal`` asked about every action.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tts_gym  # noqa: F401  (registers the env)
from tts_gym.env import ReplayEnv
from tts_gym.env.dynamics import MASK, OBS_KEYS, is_legal
from tts_gym.kernels.state import (
    BOOK_COUNTERS,
    BOOK_FRESH,
    BOOK_LABEL_OF,
    BOOK_POOL,
    BOOK_PRUNED,
    BOOK_SHOWN,
    COST,
    EP_COUNTERS,
    EP_DEPTH,
    EP_FINISHED,
    OPENED,
    POOL_SIZE,
)
from tts_gym.kernels.votes import beta_conf, top2_py
from tts_gym.testing import tiny_store

STORE = tiny_store(3, questions=4, branches=12, max_probes=6)


def reference_observation(ep, book) -> dict[str, np.ndarray]:
    """The observation of one env's state, from scratch (see ``update_view``'s docstring)."""
    depth, finished, counters = ep[EP_DEPTH], ep[EP_FINISHED], ep[EP_COUNTERS]
    pruned, shown, fresh = book[BOOK_PRUNED], book[BOOK_SHOWN], book[BOOK_FRESH]
    label_of, pool, book_counters = book[BOOK_LABEL_OF], book[BOOK_POOL], book[BOOK_COUNTERS]
    slots = depth.shape[0]
    opened = int(counters[OPENED])
    status = np.zeros(slots, np.int8)
    labels = np.full(slots, -1, np.int32)
    for s in range(opened):
        status[s] = 3 if pruned[s] else 2 if finished[s] else 1
        labels[s] = label_of[shown[s]] if shown[s] >= 0 else -1
    live = [int(labels[s]) for s in range(opened) if labels[s] >= 0 and not pruned[s]]
    agree = np.array(
        [live.count(int(labels[s])) if s < opened and labels[s] >= 0 else 0 for s in range(slots)],
        np.int32,
    )
    _w, c1, c2 = top2_py([int(a) for a in pool[: int(book_counters[POOL_SIZE])]])
    return {
        "agree": agree,
        "depth": np.where(np.arange(slots) < opened, depth, 0).astype(np.int32),
        "fresh": np.where(np.arange(slots) < opened, fresh, 0).astype(np.int8),
        "label": labels,
        "status": status,
        "totals": np.array(
            [opened, (status == 1).sum(), (status == 2).sum(), (status == 3).sum()], np.int32
        ),
        "vote": np.array(
            [counters[COST], book_counters[POOL_SIZE], c1, c2, beta_conf(c1, c2)], np.float32
        ),
    }


def reference_mask(store, q, ep, book, slots) -> np.ndarray:
    """Legality of every action by asking ``is_legal`` one action at a time."""
    n_actions = 3 + 3 * slots
    return np.array(
        [is_legal(store.n_branches, q, ep, book, a, slots) for a in range(n_actions)], np.int8
    )


def assert_obs_equal(obs, expected, where=""):
    assert list(obs) == list(OBS_KEYS)
    for k in OBS_KEYS:
        np.testing.assert_array_equal(obs[k], expected[k], err_msg=f"obs[{k!r}]{where}")
        assert obs[k].dtype == expected[k].dtype, k


env_settings = st.fixed_dictionaries(
    {
        "max_branches": st.sampled_from([3, 5, 12]),
        "reveal_on_advance": st.booleans(),
        "probe_cost": st.sampled_from([0, 7]),
        "cost_mode": st.sampled_from(["reference", "exact"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(kw=env_settings, seed=st.integers(0, 2**16), use_apply=st.booleans())
def test_kept_observation_equals_the_from_scratch_one(kw, seed, use_apply):
    env = ReplayEnv(store=STORE, **kw)
    rng = np.random.default_rng(seed)
    obs, _info = env.reset(seed=seed)
    assert_obs_equal(obs, reference_observation(env._ep, env._book), " after reset")
    for t in range(60):
        legal = np.flatnonzero(env.action_masks())
        weights = np.where(legal == 0, 0.03, 1.0)
        action = int(rng.choice(legal, p=weights / weights.sum()))
        if use_apply and action != 0:
            env.apply_action(action)  # the handle's path: no observation built
            obs = env._observation()
            done = False
        else:
            obs, _r, done, _tr, _info = env.step(action)
        assert_obs_equal(obs, reference_observation(env._ep, env._book), f" at step {t}")
        if not done:
            expected_mask = reference_mask(STORE, env.question, env._ep, env._book, env._slots)
            np.testing.assert_array_equal(env._book[MASK], expected_mask, err_msg=f"step {t}")
            np.testing.assert_array_equal(env.action_masks(), expected_mask)
        else:
            assert env._book[MASK].tolist() == [1] + [0] * (env.layout.n - 1)
        if done:
            obs, _info = env.reset()
            assert_obs_equal(obs, reference_observation(env._ep, env._book), " after reset")


@settings(max_examples=15, deadline=None)
@given(kw=env_settings, seed=st.integers(0, 2**16))
def test_vector_env_observations_equal_the_from_scratch_ones(kw, seed):
    n = 5
    envs = gym.make_vec(
        "tts_gym/Replay-v0", num_envs=n, vectorization_mode="vector_entry_point", store=STORE, **kw
    )
    rng = np.random.default_rng(seed)
    obs, info = envs.reset(seed=seed)
    for t in range(50):
        for i in range(n):
            ep = tuple(a[i] for a in envs._ep)
            book = tuple(a[i] for a in envs._book)
            expected = reference_observation(ep, book)
            assert_obs_equal({k: obs[k][i] for k in OBS_KEYS}, expected, f" env {i} step {t}")
            if not envs._needs_reset[i]:
                q = int(envs._q[i])
                expected_mask = reference_mask(STORE, q, ep, book, kw["max_branches"])
                np.testing.assert_array_equal(info["action_mask"][i], expected_mask)
        masks = info["action_mask"]
        # uniform over legal actions: ANSWER is common, so autoresets happen too
        actions = [int(rng.choice(np.flatnonzero(m))) for m in masks]
        obs, _r, _te, _tr, info = envs.step(actions)
