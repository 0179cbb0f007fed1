"""The replay kernels against the plain-Python twin of the spec (tests/twin.py).

Hypothesis draws tiny stores of varied shapes (L = 0 branches, T below and above L·Δ, questions
with fewer branches than the padded width) and random legal primitive sequences; every answer,
finished flag, per-slot k / spent and token charge must agree, in both cost modes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.twin import TwinBranch, TwinEpisode, cost_to_end, python_order
from tts_gym.env import protocol_order
from tts_gym.kernels.state import (
    COST,
    EP_COUNTERS,
    EP_DEPTH,
    EP_FINISHED,
    EP_ORDER,
    EP_SPENT,
    OPENED,
)
from tts_gym.kernels.transitions import (
    COST_MODES,
    advance_branch,
    advance_slot,
    can_advance,
    can_open,
    env_data,
    new_episode,
    open_slot,
    read_slot,
    reset_episode,
)
from tts_gym.store.pack import pack_questions
from tts_gym.store.validate import validate_store
from tts_gym.testing import tiny_questions

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(questions: list[dict]):
    """Validate and pack generated questions (the store the kernels read)."""
    validate_store("<hypothesis>", questions)
    return pack_questions(
        questions, model="tiny", benchmark="aime24", split="search", source="test", sha256="t"
    )


@st.composite
def stores(draw):
    """``(questions_json, store)`` of a random small shape."""
    qs = tiny_questions(
        seed=draw(st.integers(0, 2**31 - 1)),
        questions=draw(st.integers(1, 3)),
        branches=draw(st.integers(1, 8)),
        max_probes=draw(st.integers(0, 6)),
        probe_freq=draw(st.sampled_from([1, 7, 100, 333])),
        answers=draw(st.integers(1, 4)),
    )
    # Sometimes give the last question fewer branches than the padded width N.
    cut = draw(st.integers(0, len(qs[-1]["each_branch"]) - 1))
    if cut and len(qs) > 1:
        qs[-1]["each_branch"] = qs[-1]["each_branch"][:-cut]
        qs[-1]["final_answers_trace"] = qs[-1]["final_answers_trace"][:-cut]
    return qs, build(qs)


OPS = st.lists(
    st.tuples(st.sampled_from(["new", "more", "more", "read"]), st.integers(0, 10**6)), max_size=60
)


def check_slots(ep, twin: TwinEpisode) -> None:
    n = twin.opened
    assert int(ep[EP_COUNTERS][OPENED]) == n
    assert int(ep[EP_COUNTERS][COST]) == twin.cost
    assert ep[EP_DEPTH][:n].tolist() == twin.k
    assert ep[EP_SPENT][:n].tolist() == twin.spent
    assert [bool(f) for f in ep[EP_FINISHED][:n]] == twin.finished


@pytest.mark.parametrize("mode", ["reference", "exact"])
@SETTINGS
@given(case=stores(), data=st.data())
def test_kernels_match_twin(mode, case, data):
    questions, store = case
    q = data.draw(st.integers(0, store.n_questions - 1))
    n = int(store.n_branches[q])
    order = python_order(n, data.draw(st.integers(0, 10**6)))
    capacity = data.draw(st.integers(1, store.width))
    kmode = COST_MODES[mode]

    dat = env_data(store)
    ep = new_episode(store.width, capacity)
    ep[EP_ORDER][:n] = order
    reset_episode(ep)
    twin = TwinEpisode.from_question(questions[q], order, mode, capacity)

    # The drawn program, then a drain: every live slot advanced to its end (so finishing
    # advances, with their over-charge rule, are always exercised).
    program = data.draw(OPS)
    program += [("more", 0)] * (capacity * (store.max_probes + 1))
    for op, pick in program:
        assert bool(can_open(store.n_branches, q, ep)) == twin.can_open()
        for slot in range(capacity):
            assert bool(can_advance(ep, slot)) == twin.can_advance(slot)
        before = twin.cost
        if op == "new":
            want = twin.probe_new()
            if want is None:
                continue
            slot, a, charge, fin = open_slot(dat, q, ep, kmode)
            assert (store.answer_string(q, int(a)), int(slot), bool(fin)) == want
        elif op == "read":
            want = twin.full_read()
            if want is None:
                continue
            slot, a, charge = read_slot(dat, q, ep)
            assert store.answer_string(q, int(a)) == want
        else:
            live = [s for s in range(twin.opened) if twin.can_advance(s)]
            if not live:
                continue
            slot = live[pick % len(live)]
            want = twin.probe_more(slot)
            a, charge, fin = advance_slot(dat, q, ep, slot, kmode)
            assert (store.answer_string(q, int(a)), bool(fin)) == want
        assert int(charge) == twin.cost - before
        check_slots(ep, twin)


@pytest.mark.parametrize("mode", ["reference", "exact"])
@SETTINGS
@given(case=stores())
def test_probing_to_the_end(mode, case):
    """Probing costs max(L·Δ, T) in reference mode, exactly T in exact mode; L + 1 advances."""
    questions, store = case
    dat = env_data(store)
    for q, question in enumerate(questions):
        delta = int(question["probe_freq"])
        for b, entry in enumerate(question["each_branch"]):
            branch = TwinBranch.from_json(entry)
            depth, spent, steps, fin = 0, 0, 0, False
            while not fin:
                _a, charge, depth, fin = advance_branch(dat, q, b, depth, spent, COST_MODES[mode])
                spent += int(charge)
                steps += 1
            assert steps == len(branch.probes) + 1
            assert spent == cost_to_end(branch, delta, mode)
            if mode == "exact":
                assert spent == branch.tokens


def test_cost_closed_forms_on_known_branch():
    """A hand-made branch: L = 3, Δ = 100; T = 250 (over-charged) and T = 420."""
    for tokens, ref, exact in [(250, 300, 250), (420, 420, 420), (0, 300, 0)]:
        qs = [
            {
                "question": "q",
                "gold_answer": "1",
                "probe_freq": 100,
                "each_branch": [[["1", "2", "3"], tokens, "3"]],
                "final_answers_trace": ["3"],
            }
        ]
        store = build(qs)
        for mode, want in [("reference", ref), ("exact", exact)]:
            depth, spent, fin, charges = 0, 0, False, []
            while not fin:
                _a, c, depth, fin = advance_branch(
                    env_data(store), 0, 0, depth, spent, COST_MODES[mode]
                )
                spent += int(c)
                charges.append(int(c))
            assert spent == want, (tokens, mode, charges)
        slot_ep = new_episode(1, 1)
        reset_episode(slot_ep)
        _s, _a, charge = read_slot(env_data(store), 0, slot_ep)
        assert int(charge) == tokens


@given(n=st.integers(1, 130), seed=st.integers(0, 10**9))
@settings(max_examples=50, deadline=None)
def test_protocol_order_is_python_shuffle(n, seed):
    assert protocol_order(n, seed).tolist() == python_order(n, seed)
    assert protocol_order(n, seed).dtype == np.int32
