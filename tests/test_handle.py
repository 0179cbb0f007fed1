"""The question handle (the paper's primitives as env steps) against the spec's twin.

Random legal primitive programs run through ``QuestionHandle`` on a ``ReplayEnv`` and through
tests/twin.py: every answer, slot, finished flag and token charged must agree (both cost modes,
with and without reveal-on-advance). The trace must be JSON and the handle must be charged
exactly what the same atomic actions cost on a bare env.
"""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tts_gym  # noqa: F401  (registers tts_gym/Replay-v0)
from tests.test_kernels import stores
from tests.twin import TwinEpisode, TwinError, python_order
from tts_gym.env import ReplayEnv
from tts_gym.handle import QuestionHandle
from tts_gym.kernels.state import EP_DEPTH, EP_FINISHED, EP_SPENT
from tts_gym.testing import tiny_questions, tiny_store

OPS = st.lists(
    st.tuples(
        st.sampled_from(["new", "more", "more", "read", "prune", "bad_more"]),
        st.integers(0, 10**6),
    ),
    max_size=50,
)


class ActionLog(gym.Wrapper):
    """Records every atomic action the handle takes."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.actions: list[int] = []

    def step(self, action):
        out = self.env.step(action)  # an illegal action raises and is not logged
        self.actions.append(int(action))
        return out


def run_program(handles: list[QuestionHandle], twin: TwinEpisode, program, capacity: int) -> None:
    """Apply a primitive program to the twin and every handle; compare after every call."""
    for op, pick in program:
        before = twin.cost
        if op == "new":
            want = twin.probe_new()
            for h in handles:
                assert h.probe_new() == want
        elif op == "read":
            want = twin.full_read()
            for h in handles:
                assert h.full_read() == want
        elif op in ("more", "prune"):
            live = [s for s in range(twin.opened) if twin.can_advance(s)]
            if not live:
                continue
            slot = live[pick % len(live)]
            if op == "more":
                want = twin.probe_more(slot)
                for h in handles:
                    assert h.probe_more(slot) == want
            else:
                twin.prune(slot)
                for h in handles:
                    h.prune(slot)
        else:  # an illegal probe_more: unopened, finished or pruned slot
            dead = [s for s in range(capacity) if not twin.can_advance(s)]
            if not dead:
                continue
            slot = dead[pick % len(dead)]
            for h in handles:
                with pytest.raises(ValueError, match="Illegal action"):
                    h.probe_more(slot)
            with pytest.raises(TwinError):
                twin.probe_more(slot)
        for h in handles:
            assert h.tokens_used == twin.cost
            assert h.n_opened == twin.opened
            assert h.branches_left == twin.limit - twin.opened
            ep = h._base._ep  # per-slot k / spent / finished of the env's episode state
            n = twin.opened
            assert ep[EP_DEPTH][:n].tolist() == twin.k and ep[EP_SPENT][:n].tolist() == twin.spent
            assert [bool(f) for f in ep[EP_FINISHED][:n]] == twin.finished
            if op != "bad_more" and "tokens" in h.trace[-1]:
                assert h.trace[-1]["tokens"] == twin.cost - before


@pytest.mark.parametrize(
    "mode,reveal", [("reference", False), ("exact", False), ("reference", True)]
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=stores(), data=st.data())
def test_handle_matches_twin(mode, reveal, case, data):
    questions, store = case
    q = data.draw(st.integers(0, store.n_questions - 1))
    seed = data.draw(st.integers(0, 10**6))
    capacity = data.draw(st.integers(1, store.width))
    env = ActionLog(
        gym.make(
            "tts_gym/Replay-v0",
            store=store,
            max_branches=capacity,
            cost_mode=mode,
            reveal_on_advance=reveal,
        )
    )
    env.reset(options={"question": q, "shuffle_seed": seed})
    order = python_order(int(store.n_branches[q]), seed)
    twin = TwinEpisode.from_question(questions[q], order, mode, capacity)
    handle = QuestionHandle(env)  # wrapped: every atomic action goes through env.step
    bare = ReplayEnv(store=store, max_branches=capacity, cost_mode=mode, reveal_on_advance=reveal)
    bare.reset(options={"question": q, "shuffle_seed": seed})
    fast = QuestionHandle(bare)  # unwrapped: the apply_action fast path
    program = data.draw(OPS) + [("more", 0)] * (capacity * (store.max_probes + 1))
    run_program([handle, fast], twin, program, capacity)
    assert fast.trace == handle.trace

    answer = data.draw(st.sampled_from([None, questions[q]["gold_answer"], "not-an-answer"]))
    result = handle.submit(answer)
    assert fast.submit(answer) == result
    revealed = answer is None or answer in twin.revealed
    assert result == {  # an answer never revealed in the episode is wrong (protocol rule)
        "answer": answer,
        "correct": answer == questions[q]["gold_answer"] and revealed,
        "tokens": twin.cost,
        "revealed": revealed,
    }
    json.loads(json.dumps(handle.trace))

    # The same atomic actions on a bare env charge the same tokens and give the same reward.
    bare = ReplayEnv(store=store, max_branches=capacity, cost_mode=mode, reveal_on_advance=reveal)
    bare.reset(options={"question": q, "order": order})
    bare.commit_answer(answer)
    for a in env.actions:
        _o, _r, terminated, _t, info = bare.step(a)
    assert terminated and info["tokens"] == twin.cost == result["tokens"]
    assert info["correct"] == result["correct"]


def test_trace_is_json_and_complete():
    env = gym.make("tts_gym/Replay-v0", store=tiny_store(), max_branches=4)
    branches = tiny_questions()[1]["each_branch"]
    first = next(b for b, e in enumerate(branches) if len(e[0]) >= 3)  # survives probe_more
    order = [first] + [b for b in range(len(branches)) if b != first]
    env.reset(options={"question": 1, "order": order})
    h = QuestionHandle(env)
    a, slot, _fin = h.probe_new()
    h.note("decided", votes=[1, 2], why="test")
    h.probe_more(slot)
    h.full_read()
    h.prune(slot)
    while h.full_read() is not None:
        pass
    h.submit(a)
    text = json.dumps(h.trace)
    ops = [e["op"] for e in json.loads(text)]
    assert ops[:5] == ["probe_new", "note", "probe_more", "full_read", "prune"]
    assert ops[-2:] == ["full_read", "finish"] and h.trace[-2]["none_left"] is True
    assert h.trace[1] == {"op": "note", "event": "decided", "votes": [1, 2], "why": "test"}
    charged = sum(e.get("tokens", 0) for e in h.trace if e["op"] != "finish")
    assert charged == h.tokens_used == h.result["tokens"]
    with pytest.raises(RuntimeError, match="already answered"):
        h.submit(a)


def test_handle_reference_and_exact_full_probe_costs():
    """Probing one branch to the end through the handle: max(L·Δ, T) vs exactly T."""
    qs = tiny_questions(5, questions=1, branches=6, max_probes=5)
    store = tiny_store(5, questions=1, branches=6, max_probes=5)
    for mode in ("reference", "exact"):
        env = ReplayEnv(store=store, max_branches=6, cost_mode=mode)
        env.reset(options={"question": 0, "order": list(range(6))})
        h = QuestionHandle(env)
        for b, (probes, tokens, _final) in enumerate(qs[0]["each_branch"]):
            before = h.tokens_used
            _a, slot, fin = h.probe_new()
            while not fin:
                _a, fin = h.probe_more(slot)
            want = tokens if mode == "exact" else max(len(probes) * 100, tokens)
            assert h.tokens_used - before == want, (mode, b)
