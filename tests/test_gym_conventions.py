"""The first calls a Gymnasium user makes work with default arguments.

Gymnasium's and SB3's ``check_env`` step with random UNMASKED actions; with default arguments both
pass on ``tts_gym/Replay-v0`` and ``tts_gym/Synthetic-v0`` (the ``gym.make`` env and its
``.unwrapped``) because an illegal action is a documented free no-op (``illegal_action="ignore"``,
flagged in ``info["illegal_action"]``). The native vector env gets the same checks, written out
(neither library has a checker for vector envs). Masks are reachable through wrappers in the
documented way, and the question handle refuses illegal primitives whatever the env's setting.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import tts_gym  # noqa: F401  (registers the envs)
from tests.conftest import real_data_dir, requires_data
from tts_gym.env import BRANCH, SAMPLE, ReplayEnv
from tts_gym.env.dynamics import is_legal as kernel_is_legal
from tts_gym.env.vector_env import ReplayVectorEnv
from tts_gym.handle import QuestionHandle
from tts_gym.kernels.state import EP_DEPTH
from tts_gym.testing import tiny_questions, tiny_store

S = 4
WRAPPED_NOTE = "is different from the unwrapped version"  # gymnasium's advice for wrapped envs


def _run_both_checkers(env: gym.Env) -> list[str]:
    """Both checkers on ``env``; returns the warnings they raised (errors propagate)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env)
        sb3_check_env(env, warn=True)
    # a ResourceWarning is the garbage collector closing some earlier test's file, not a checker
    return [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]


def _check_made_and_unwrapped(env_id: str, **kwargs) -> None:
    env = gym.make(env_id, **kwargs)
    assert env.unwrapped.params.illegal_action == "ignore"  # the default
    notes = _run_both_checkers(env)
    # The wrapped env passes; the only remark is gymnasium's generic advice to check .unwrapped.
    assert all(WRAPPED_NOTE in n for n in notes), notes
    assert _run_both_checkers(env.unwrapped) == []
    env.close()


def test_replay_v0_passes_both_checkers_with_default_arguments():
    _check_made_and_unwrapped("tts_gym/Replay-v0", store=tiny_store(), max_branches=S)
    _check_made_and_unwrapped("tts_gym/Replay-v0", store=tiny_store(1))  # default 64 slots


@requires_data
def test_replay_v0_on_a_real_store_passes_both_checkers():
    _check_made_and_unwrapped(
        "tts_gym/Replay-v0", model="Qwen3-8B", benchmark="aime24", data_dir=real_data_dir()
    )


def test_synthetic_v0_passes_both_checkers_with_default_arguments():
    _check_made_and_unwrapped("tts_gym/Synthetic-v0")
    _check_made_and_unwrapped(
        "tts_gym/Synthetic-v0", fresh_questions_per_reset=True, branches=16, max_branches=8
    )


def test_illegal_action_is_a_documented_free_no_op_by_default():
    env = gym.make("tts_gym/Replay-v0", store=tiny_store(), max_branches=S)
    obs, info = env.reset(seed=0)
    obs2, reward, term, trunc, info2 = env.step(3)  # CONTINUE(0): nothing is opened
    assert info2["illegal_action"] is True and reward == 0.0 and (term, trunc) == (False, False)
    assert info2["tokens"] == 0 and all(np.array_equal(obs[k], obs2[k]) for k in obs)
    assert "illegal_action" in ReplayEnv.__doc__ and "Version History" in ReplayEnv.__doc__
    _o, _r, _t, _tr, info3 = env.step(BRANCH)  # legal steps carry no flag
    assert "illegal_action" not in info3


def test_masks_through_wrappers_and_the_message_says_how():
    env = gym.make("tts_gym/Replay-v0", store=tiny_store(), max_branches=S,
                   illegal_action="raise")
    env.reset(seed=0)
    with pytest.raises(AttributeError):
        env.action_masks  # noqa: B018  (a TimeLimit wrapper does not forward it)
    mask = env.unwrapped.action_masks()
    np.testing.assert_array_equal(env.get_wrapper_attr("action_masks")(), mask)
    with pytest.raises(ValueError) as info:
        env.step(3)
    msg = str(info.value)
    assert "env.unwrapped.action_masks()" in msg
    assert 'env.get_wrapper_attr("action_masks")()' in msg
    assert "env.action_masks()" not in msg.replace("unwrapped.action_masks()", "")
    # Every documented expression in the message actually works on this wrapped env.
    assert eval("env.unwrapped.action_masks()")[3] == 0  # noqa: S307
    assert eval('env.get_wrapper_attr("action_masks")()')[3] == 0  # noqa: S307


def test_vector_env_message_names_a_working_mask_call():
    envs = gym.make_vec("tts_gym/Replay-v0", num_envs=2, vectorization_mode="vector_entry_point",
                        store=tiny_store(), max_branches=S, illegal_action="raise")
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"envs\.unwrapped\.action_masks\(\)") as info:
        envs.step([1, 3])
    assert "illegal_action='raise'" in str(info.value)
    assert envs.unwrapped.action_masks().shape == (2, 3 + 3 * S)


# --- the native vector env under the checkers' random unmasked actions ------------------------
def _vector(**kw) -> ReplayVectorEnv:
    return gym.make_vec("tts_gym/Replay-v0", num_envs=5, vectorization_mode="vector_entry_point",
                        store=tiny_store(2, questions=4, branches=6), max_branches=S, **kw)


def _rollout(envs, seed: int, steps: int = 60):
    envs.action_space.seed(seed)
    obs, info = envs.reset(seed=seed)
    out = [(obs, info)]
    for _ in range(steps):
        out.append(envs.step(envs.action_space.sample()))
    return out


def test_vector_env_passes_the_checks_with_default_arguments():
    """What ``check_env`` asks of a single env, asked of the vector env with default args."""
    envs = _vector()
    assert envs.unwrapped.params.illegal_action == "ignore"
    run = _rollout(envs, seed=3)
    flagged = 0
    previous = None
    for item in run:
        obs, info = item[0], item[-1]
        assert envs.observation_space.contains(obs)
        if len(item) == 5:
            _obs, rewards, terminated, truncated, info = item
            assert rewards.dtype == np.float64 and rewards.shape == (5,)
            assert terminated.dtype == bool and truncated.dtype == bool
            if "illegal_action" in info:
                flagged += int(info["illegal_action"].sum())
                assert np.all(rewards[info["illegal_action"]] == 0.0)
        if previous is not None:  # check_env: returned data is never reused
            assert all(obs[k] is not previous[k] for k in obs)
            assert not np.shares_memory(obs["status"], previous["status"])
        previous = obs
    assert flagged > 0  # random unmasked actions hit illegal ones, and nothing raised
    again = _rollout(_vector(), seed=3)  # determinism under the same seeds
    for a, b in zip(run, again, strict=True):
        for k in a[0]:
            np.testing.assert_array_equal(a[0][k], b[0][k])
        if len(a) == 5:
            np.testing.assert_array_equal(a[1], b[1])
            np.testing.assert_array_equal(a[2], b[2])


# --- the question handle keeps refusing illegal primitives -------------------------------------
@pytest.mark.parametrize("setting", ["ignore", "raise"])
@pytest.mark.parametrize("wrapped", [False, True])
def test_handle_refuses_illegal_primitives_whatever_the_env_setting(setting, wrapped):
    store = tiny_store()
    made = gym.make("tts_gym/Replay-v0", store=store, max_branches=S, illegal_action=setting)
    env = made if wrapped else made.unwrapped
    branches = tiny_questions()[0]["each_branch"]
    second = next(b for b, e in enumerate(branches) if len(e[0]) >= 1)  # BRANCH won't finish it
    order = [b for b in range(len(branches)) if b != second]
    order.insert(1, second)
    env.reset(options={"question": 0, "order": order})
    h = QuestionHandle(env)
    base = env.unwrapped

    def state():
        elapsed = made._elapsed_steps  # the TimeLimit sees every atomic step the handle takes
        return base.tokens_used, base.n_opened, base._ep[EP_DEPTH].copy().tolist(), elapsed

    before = state()
    with pytest.raises(ValueError, match=r"Illegal .*probe_more\(1\).*slot 1 is not opened"):
        h.probe_more(1)
    assert state() == before
    h.full_read()  # slot 0: finished
    before = state()
    with pytest.raises(ValueError, match=r"probe_more\(0\).*slot 0 is finished"):
        h.probe_more(0)
    with pytest.raises(ValueError, match=r"prune\(0\).*slot 0 is finished"):
        h.prune(0)
    assert state() == before
    h.probe_new()
    h.prune(1)
    before = state()
    with pytest.raises(ValueError, match=r"prune\(1\).*slot 1 is pruned"):
        h.prune(1)
    with pytest.raises(ValueError, match=r"probe_more\(1\).*slot 1 is pruned"):
        h.probe_more(1)
    assert state() == before
    assert h.submit(None)["tokens"] == base.tokens_used


def test_handle_legality_check_agrees_with_the_env_kernel():
    """The handle's own check (the env's maintained mask) equals the kernel's rule."""
    env = ReplayEnv(store=tiny_store(5, questions=2, branches=6), max_branches=S)
    rng = np.random.default_rng(0)
    for episode in range(6):
        env.reset(seed=episode)
        for _ in range(25):
            mask = env.action_masks()
            for a in range(env.action_space.n):
                rule = kernel_is_legal(
                    env.store.n_branches, env.question, env._ep, env._book, a, S
                )
                assert env.is_legal(a) == bool(rule) == bool(mask[a])
            legal = np.flatnonzero(mask[1:]) + 1
            if legal.size == 0:
                break
            env.step(int(rng.choice(legal)))
    assert env.is_legal(env.action_space.n) is False and env.is_legal(-1) is False
    env.step(0)
    assert not any(env.is_legal(a) for a in (0, BRANCH, SAMPLE))
