"""ReplayEnv as a Gymnasium / SB3 env: checkers, determinism, masks, no leaks, rendering.

The env's dynamics are checked against the spec's twin in tests/test_handle.py; here the
Gymnasium contract and the information the observation may (not) carry.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import tts_gym  # noqa: F401  (registers tts_gym/Replay-v0)
from tests.conftest import real_data_dir, requires_data
from tests.twin import python_order
from tts_gym.env import ANSWER, BRANCH, SAMPLE, ReplayEnv
from tts_gym.env.render import LEGEND
from tts_gym.handle import QuestionHandle
from tts_gym.kernels.state import EP_DEPTH, EP_ORDER
from tts_gym.store.pack import pack_questions
from tts_gym.testing import tiny_questions, tiny_store

S = 4  # slots in most tests: Discrete(15)


def make(store=None, **kw) -> ReplayEnv:
    return ReplayEnv(store=store if store is not None else tiny_store(), max_branches=S, **kw)


def pack(questions):
    return pack_questions(
        questions, model="tiny", benchmark="aime24", split="search", source="test", sha256="t"
    )


def random_walk(env, rng, steps=40, answer_prob=0.05):
    """Masked-random actions from ``rng`` until ANSWER; yields ``(action, step result)``."""
    for _ in range(steps):
        mask = env.action_masks()
        legal = np.flatnonzero(mask)
        a = ANSWER if rng.random() < answer_prob else int(rng.choice(legal))
        out = env.step(a)
        yield a, out
        if out[2]:
            return
    yield ANSWER, env.step(ANSWER)


def same_obs(o1, o2) -> bool:
    return list(o1) == list(o2) and all(np.array_equal(o1[k], o2[k]) for k in o1)


# --- the checkers ------------------------------------------------------------------------------
@pytest.mark.parametrize("render_mode", [None, "ansi"])
def test_gymnasium_and_sb3_checkers_pass_without_warnings(render_mode):
    # check_env steps with random UNMASKED actions (action_space.sample()); the default
    # illegal_action="ignore" turns illegal ones into flagged free no-ops (tests/
    # test_gym_conventions.py checks every env id with default arguments).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(
            "tts_gym/Replay-v0", store=tiny_store(), max_branches=S, render_mode=render_mode
        )
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
        env.close()
    assert [str(w.message) for w in caught] == []


def test_ignore_mode_flags_illegal_actions():
    env = make(illegal_action="ignore")
    obs, _ = env.reset(seed=0)
    obs2, reward, term, trunc, info = env.step(3)  # CONTINUE(0): nothing opened
    assert info["illegal_action"] is True and reward == 0.0 and not term and not trunc
    assert same_obs(obs, obs2) and info["tokens"] == 0
    _o, _r, _t, _tr, info = env.step(10**6)  # out of range: also a no-op
    assert info["illegal_action"] is True


# --- determinism and the protocol ----------------------------------------------------------
def test_reset_seed_is_deterministic():
    store = tiny_store(3, questions=5, branches=8)
    runs = []
    for _ in range(2):
        env = make(store)
        obs, info = env.reset(seed=123)
        rng = np.random.default_rng(7)
        seq = [(obs, info["question"], env._ep[EP_ORDER].copy())]
        for _a, (o, r, t, _tr, i) in random_walk(env, rng):
            seq.append((o, r, t, i["tokens"]))
        runs.append(seq)
    a, b = runs
    assert len(a) == len(b)
    assert same_obs(a[0][0], b[0][0]) and a[0][1] == b[0][1]
    assert np.array_equal(a[0][2], b[0][2])
    for x, y in zip(a[1:], b[1:], strict=True):
        assert same_obs(x[0], y[0]) and x[1:] == y[1:]
    # Different seeds draw different episodes (question or order) somewhere.
    env = make(store)
    starts = set()
    for seed in range(10):
        _o, info = env.reset(seed=seed)
        starts.add((info["question"], tuple(env._ep[EP_ORDER].tolist())))
    assert len(starts) > 1


def test_reset_options_reproduce_the_protocol_order():
    questions = tiny_questions(4, questions=2, branches=8)
    store = tiny_store(4, questions=2, branches=8)
    env = ReplayEnv(store=store, max_branches=8)
    for q in range(2):
        for seed in (0, 1, 99):
            env.reset(options={"question": q, "shuffle_seed": seed})
            h = QuestionHandle(env)
            got = [h.full_read() for _ in range(8)]
            finals = [questions[q]["each_branch"][b][2] for b in python_order(8, seed)]
            assert got == finals and h.full_read() is None
            tokens = sum(questions[q]["each_branch"][b][1] for b in range(8))
            assert h.tokens_used == tokens
    order = [7, 6, 5, 4, 3, 2, 1, 0]
    env.reset(options={"question": 1, "order": order})
    h = QuestionHandle(env)
    assert [h.full_read() for _ in range(8)] == [questions[1]["each_branch"][b][2] for b in order]


def test_reset_option_errors_are_clear():
    env = make()
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"question": 99})
    with pytest.raises(ValueError, match="permutation"):
        env.reset(options={"question": 0, "order": [0, 0, 1]})


# --- masks ---------------------------------------------------------------------------------
def expected_mask(obs, opened_limit) -> np.ndarray:
    """Legality derived from the observation alone (status, fresh, totals)."""
    m = np.zeros(3 + 3 * S, np.int8)
    m[ANSWER] = 1
    if obs["totals"][0] < opened_limit:
        m[BRANCH] = m[SAMPLE] = 1
    for s in range(S):
        if obs["status"][s] == 1:  # active
            m[3 + s] = 1
            m[3 + 2 * S + s] = 1
        if obs["status"][s] in (1, 2) and obs["fresh"][s] == 0:
            m[3 + S + s] = 1
    return m


@pytest.mark.parametrize("kw", [{}, {"reveal_on_advance": True}, {"cost_mode": "exact"}])
def test_action_masks_are_exact(kw):
    store = tiny_store(2, questions=2, branches=6, max_probes=3)
    env = make(store, illegal_action="raise", **kw)
    rng = np.random.default_rng(0)
    for episode in range(4):
        obs, info = env.reset(seed=episode)
        limit = min(S, int(store.n_branches[info["question"]]))
        for _ in range(30):
            mask = env.action_masks()
            assert np.array_equal(mask, info["action_mask"]) and mask.dtype == np.int8
            assert np.array_equal(mask, expected_mask(obs, limit))
            for a in range(env.action_space.n):
                assert env.is_legal(a) == bool(mask[a])
                if mask[a]:
                    trial = copy.deepcopy(env)
                    trial.step(a)  # every legal action steps without error
                else:
                    before = env.tokens_used, env.n_opened, env._ep[EP_DEPTH].copy()
                    with pytest.raises(ValueError, match=r"Illegal action .*action_masks"):
                        env.step(a)
                    after = env.tokens_used, env.n_opened, env._ep[EP_DEPTH].copy()
                    assert before[:2] == after[:2] and np.array_equal(before[2], after[2])
            a = int(rng.choice(np.flatnonzero(mask[1:]))) + 1 if mask[1:].any() else ANSWER
            obs, _r, term, _t, info = env.step(a)
            if term:
                break
        if not term:
            obs, _r, term, _t, info = env.step(ANSWER)
        mask = info["action_mask"]
        assert mask.tolist() == [1] + [0] * (3 + 3 * S - 1)
        with pytest.raises(RuntimeError, match="reset"):
            env.step(ANSWER)


def test_illegal_messages_say_why():
    env = make(illegal_action="raise")
    branches = tiny_questions()[0]["each_branch"]
    second = next(b for b, e in enumerate(branches) if len(e[0]) >= 1)  # not finished by BRANCH
    order = [b for b in range(8) if b != second]
    order.insert(1, second)
    env.reset(options={"question": 0, "order": order})
    with pytest.raises(ValueError, match=r"CONTINUE\(2\): slot 2 is not opened yet"):
        env.step(3 + 2)
    with pytest.raises(ValueError, match=r"out of range.*Discrete\(15\)"):
        env.step(15)
    env.step(SAMPLE)
    with pytest.raises(ValueError, match=r"slot 0 is finished"):
        env.step(3)
    env.step(BRANCH)
    env.step(3 + 2 * S + 1)  # PRUNE(1)
    with pytest.raises(ValueError, match=r"slot 1 is pruned"):
        env.step(3 + S + 1)
    for _ in range(2):
        env.step(BRANCH)
    with pytest.raises(ValueError, match=r"no branch is left to open \(4 opened"):
        env.step(BRANCH)


# --- rewards -----------------------------------------------------------------------------------
def test_rewards_are_cost_and_correctness():
    store = tiny_store()
    env = make(store, cost_weight=1e-3)
    env.reset(options={"question": 0, "shuffle_seed": 0})
    total = 0.0
    for a in (BRANCH, 3 + S, 3, SAMPLE):
        before = env.tokens_used
        _o, r, _t, _tr, info = env.step(a)
        assert isinstance(r, float) and r == pytest.approx(-1e-3 * (info["tokens"] - before))
        total += r
    env.commit_answer(store.gold_string(0))
    _o, r, term, trunc, info = env.step(ANSWER)
    assert (term, trunc, r, info["correct"]) == (True, False, 1.0, True)
    assert isinstance(term, bool) and isinstance(trunc, bool)
    assert total == pytest.approx(-1e-3 * info["tokens"])


# --- no leaks ----------------------------------------------------------------------------------
def test_observations_ignore_the_gold_answer():
    store = tiny_store(6, questions=3, branches=8)
    other = dataclasses.replace(store, gold=(store.gold + 1) % 3)
    for seed in range(5):
        runs = []
        for st in (store, other, store.without_gold()):
            env = make(st)
            obs, info = env.reset(seed=seed)
            seq = [(obs, info["tokens"])]
            rng = np.random.default_rng(seed)
            for _a, (o, _r, _t, _tr, i) in random_walk(env, rng):
                seq.append((o, i["tokens"], i.get("answer")))
            runs.append(seq)
        for other_run in runs[1:]:
            assert len(other_run) == len(runs[0])
            for x, y in zip(runs[0], other_run, strict=True):
                assert same_obs(x[0], y[0]) and x[1:] == y[1:]


def relabel(questions, seed):
    """Same shapes and tokens, every answer string replaced (a different hidden content)."""
    rng = np.random.default_rng(seed)
    out = copy.deepcopy(questions)
    for question in out:
        for entry in question["each_branch"]:
            entry[0] = [f"x{int(rng.integers(0, 3))}" for _ in entry[0]]
            entry[2] = entry[0][-1] if entry[0] else f"x{int(rng.integers(0, 3))}"
        question["final_answers_trace"] = [e[2] for e in question["each_branch"]]
    return out


def test_observations_ignore_unrevealed_answers():
    """Without PROBE / SAMPLE nothing is revealed: stores with different answers look alike."""
    base = tiny_questions(8, questions=2, branches=8, max_probes=5)
    stores = [pack(base), pack(relabel(base, 1)), pack(relabel(base, 2))]
    for seed in range(4):
        runs = []
        for st in stores:
            env = make(st)
            obs, _ = env.reset(seed=seed)
            rng = np.random.default_rng(seed)
            seq = [obs]
            for _ in range(25):  # BRANCH / CONTINUE / PRUNE only
                mask = env.action_masks()
                mask[SAMPLE] = 0
                mask[3 + S : 3 + 2 * S] = 0
                if not mask[1:].any():
                    break
                o, *_ = env.step(int(rng.choice(np.flatnonzero(mask[1:]))) + 1)
                seq.append(o)
            runs.append(seq)
        assert len(runs[0]) > 5
        for run in runs[1:]:
            assert all(same_obs(x, y) for x, y in zip(runs[0], run, strict=True))


def test_a_probe_answer_shows_only_once_revealed():
    def question(b1_probes, b1_final):
        return [
            {
                "question": "q",
                "gold_answer": "5",
                "probe_freq": 100,
                "each_branch": [[["5", "5", "5"], 400, "5"], [b1_probes, 400, b1_final]],
                "final_answers_trace": ["5", b1_final],
            }
        ]

    a = pack(question(["5", "5", "5"], "5"))
    b = pack(question(["5", "7", "7"], "7"))  # differs from depth 2 of branch 1 on
    envs = [ReplayEnv(store=st, max_branches=2) for st in (a, b)]
    for env in envs:
        env.reset(options={"question": 0, "order": [0, 1]})
    hidden = [BRANCH, 3 + 2, BRANCH, 3 + 2 + 1, 3 + 1, 3 + 1, 3 + 0, 3 + 0]
    for act in hidden:  # BRANCH, PROBE(0), BRANCH, PROBE(1), CONTINUE(1) x2, CONTINUE(0) x2
        oa, ob = (env.step(act)[0] for env in envs)
        assert same_obs(oa, ob), act
    oa, ob = (env.step(3 + 2 + 1)[0] for env in envs)  # PROBE(1): now the answers differ
    assert oa["label"][1] == 0 and ob["label"][1] == 1
    assert oa["agree"].tolist() == [2, 2] and ob["agree"].tolist() == [1, 1]


# --- objects, rendering, registration ------------------------------------------------------
def test_obs_and_info_are_new_objects_every_call():
    env = make()
    obs, info = env.reset(seed=0)
    seen = [(obs, info)]
    for a in (BRANCH, BRANCH, 3 + S, ANSWER):
        o, _r, _t, _tr, i = env.step(a)
        seen.append((o, i))
    for k, (o1, i1) in enumerate(seen):
        for o2, i2 in seen[k + 1 :]:
            assert o1 is not o2 and i1 is not i2
            assert not np.shares_memory(i1["action_mask"], i2["action_mask"])
            for key in o1:
                assert not np.shares_memory(o1[key], o2[key])
    assert list(obs) == sorted(obs) == list(env.observation_space.spaces)
    for o, _i in seen:
        assert env.observation_space.contains(o)


def test_render_ansi_is_a_picture():
    env = make(render_mode="ansi")
    env.reset(options={"question": 0, "order": list(range(8))})
    for a in (BRANCH, 3 + S, 3, SAMPLE, 3 + 2 * S):  # BRANCH PROBE(0) CONTINUE(0) SAMPLE PRUNE(0)
        env.step(a)
    text = env.render()
    assert isinstance(text, str)
    lines = text.splitlines()
    assert lines[0].startswith("question 0") and len(lines) == 1 + 2 + len(LEGEND)
    assert tuple(lines[-len(LEGEND):]) == LEGEND  # the legend closes every picture
    assert lines[1].split()[:2] == ["0", "x"] and lines[2].split()[:2] == ["1", "="]
    assert make().render() is None
    with pytest.raises(ValueError, match="render_mode"):
        make(render_mode="human")


def test_gym_make_with_a_store():
    env = gym.make("tts_gym/Replay-v0", store=tiny_store(), max_branches=S)
    assert isinstance(env.unwrapped, ReplayEnv)
    assert env.spec.max_episode_steps == 20_000
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs) and info["action_mask"][0] == 1
    with pytest.raises(ValueError, match="store=ReplayStore or both model="):
        ReplayEnv()


@requires_data
def test_gym_make_with_model_and_benchmark():
    env = gym.make(
        "tts_gym/Replay-v0", model="Qwen3-8B", benchmark="aime24", data_dir=real_data_dir()
    )
    base = env.unwrapped
    assert base.store.n_questions == 30 and base.store.width == 128
    assert env.action_space.n == 3 + 3 * 64
    env.reset(options={"question": 0, "shuffle_seed": 0})
    h = QuestionHandle(env)
    a = h.full_read()
    assert a is not None
    b = base.store.final_ans[0, int(python_order(128, 0)[0])]
    assert a == base.store.answer_string(0, int(b))
    assert h.tokens_used == int(base.store.tokens[0, python_order(128, 0)[0]])


# --- NUMBA_DISABLE_JIT gives the same numbers --------------------------------------------------
EPISODE_SCRIPT = """
import json, sys
import numpy as np
from tts_gym.env import ReplayEnv
from tts_gym.testing import tiny_store
out = []
for mode in ("reference", "exact"):
    env = ReplayEnv(store=tiny_store(1), max_branches=4, cost_mode=mode, cost_weight=1e-3)
    obs, info = env.reset(seed=5)
    out.append([{k: v.tolist() for k, v in obs.items()}, info["action_mask"].tolist()])
    rng = np.random.default_rng(0)
    for _ in range(12):
        legal = np.flatnonzero(env.action_masks()[1:]) + 1
        a = int(rng.choice(legal)) if len(legal) else 0
        obs, r, t, _tr, info = env.step(a)
        out.append([a, {k: v.tolist() for k, v in obs.items()}, r, info["tokens"]])
        if t:
            break
    if not t:
        obs, r, t, _tr, info = env.step(0)
    out.append([r, info["tokens"], info["answer"], info["correct"]])
print(json.dumps(out))
"""


def test_numba_disable_jit_matches_the_jitted_path():
    def run(disable: bool):
        env = dict(os.environ)
        env.pop("NUMBA_DISABLE_JIT", None)
        if disable:
            env["NUMBA_DISABLE_JIT"] = "1"
        proc = subprocess.run(
            [sys.executable, "-c", EPISODE_SCRIPT],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)

    plain = run(disable=True)
    jitted = run(disable=False)
    assert plain == jitted
    assert len(plain) > 6


def test_apply_action_is_step_without_the_observation():
    store = tiny_store(9)
    fast, slow = make(store, illegal_action="raise"), make(store, illegal_action="raise")
    for env in (fast, slow):
        env.reset(options={"question": 2, "shuffle_seed": 4})
    rng = np.random.default_rng(1)
    for _ in range(20):
        legal = np.flatnonzero(slow.action_masks()[1:]) + 1
        if legal.size == 0:
            break
        a = int(rng.choice(legal))
        before = slow.tokens_used
        _o, _r, _t, _tr, info = slow.step(a)
        assert fast.apply_action(a) == info["tokens"] - before
        assert fast.render() == slow.render() and np.array_equal(
            fast.action_masks(), slow.action_masks()
        )
    with pytest.raises(ValueError, match="use step"):
        fast.apply_action(ANSWER)
    with pytest.raises(ValueError, match="Illegal action"):
        fast.apply_action(10**6)
    ignoring = make(store, illegal_action="ignore")
    ignoring.reset(seed=0)
    assert ignoring.apply_action(3) == 0 and ignoring.n_opened == 0
    fast.step(ANSWER)
    with pytest.raises(RuntimeError, match="reset"):
        fast.apply_action(BRANCH)
