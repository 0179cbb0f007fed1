"""Issue 21's hostile candidates against the trusted side of the sandbox (through run_units).

Malformed frames on both of the broker's readers, and every candidate of
``tests.redteam_candidates.HOSTILE``: each unit fails with a one-line reason of the expected
kind, or succeeds with its output bounded; no exception leaves ``run_units``; no candidate
process outlives its test.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

from tests import redteam_candidates as R
from tests.proc_helpers import descendants, state_uid
from tts_gym.sandbox import broker as broker_mod
from tts_gym.sandbox.broker import UnitResult, UnitSpec, event_bytes
from tts_gym.sandbox.child.isolation import UID_BASE
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.units import run_units
from tts_gym.store.limits import MAX_ANSWER_CHARS
from tts_gym.testing import tiny_store

pytestmark = pytest.mark.skipif(not os.sys.platform.startswith("linux"), reason="Linux sandbox")

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=1.0, stall_s=4.0)


@pytest.fixture(scope="module")
def store():
    return tiny_store(5, questions=4, branches=8)


@pytest.fixture(autouse=True)
def _no_process_outlives():
    yield
    left = [p for p in descendants(os.getpid()) if state_uid(p)[1] >= UID_BASE]
    assert left == [], "a candidate process outlived its run"


def run(store, source: str, *, python_loop: bool = False, traces: bool = False,
        beta: float = 0.5, schedule: bool = False, limits: SandboxLimits = LIMITS) -> UnitResult:
    spec = UnitSpec(source, "hostile.py", {"beta": beta}, (store.name,), 0, traces=traces,
                    schedule_beta=beta if schedule else None)
    got = run_units([spec], {store.name: store}, replace(limits, python_loop=python_loop))[0]
    assert got is not None
    return got


def one_line(result: UnitResult, kind: str | tuple[str, ...]) -> str:
    assert result.status == "error" and result.error is not None, result
    summary = result.error["summary"]
    assert result.error["kind"] in ((kind,) if isinstance(kind, str) else kind), result.error
    assert summary and "\n" not in summary and len(summary) <= 500, summary
    return summary


# --- malformed frames: the same one line from both readers -------------------------------------
@pytest.mark.parametrize("name", sorted(R.MALFORMED_FRAMES))
def test_a_malformed_frame_fails_the_unit_the_same_way_on_both_readers(store, name):
    data, expected = R.MALFORMED_FRAMES[name]
    source = R.frame_writer(data, R.SPLIT.get(name, 0))
    summaries = []
    for python_loop in (False, True):
        summary = one_line(run(store, source, python_loop=python_loop), "protocol")
        assert expected in summary, (python_loop, summary)
        summaries.append(summary)
    assert summaries[0] == summaries[1]
    ok = run(store, R.fill(R.RETURNS, VALUE="None"))  # the next unit runs as usual
    assert ok.status == "ok"


# --- HOSTILE: each fails cleanly, or succeeds bounded ------------------------------------------
EXPECTED = {
    "frame_empty": "protocol",
    "frame_truncated_header": "protocol",
    "frame_wrong_type": "protocol",
    "frame_huge_size": "protocol",
    "frame_negative_count": "protocol",
    "frame_episode_out_of_range": "protocol",
    "frame_string_past_table": "protocol",
    "frame_split": "protocol",
    "frame_garbage_after": "protocol",
    "schedule_huge_int": "ok",
    "schedule_nan_inf": "ok",
    "schedule_deep": "schedule",
    "schedule_huge": "schedule",
    "schedule_not_a_dict": "schedule",
    "burn_without_timer": ("cpu_limit", "stalled"),  # whichever check fires first
    "note_flood": "ok",
    "exception_huge_text": "exception",
    "answer_huge": "ok",
    "answer_not_a_string": "bad_return",
    "answer_bytes": "bad_return",
    "sweep_then_break": "ok",
    "more_episodes_then_break": "ok",  # the test store has 4 questions
}


def test_every_hostile_candidate_has_an_expectation_and_passes_the_lint():
    """They reach the sandbox when a scripted discover feeds them as LLM replies."""
    from agents.synthesis.validate import validate_source

    assert sorted(EXPECTED) == sorted(name for name, _ in R.HOSTILE)
    assert len(R.HOSTILE) >= 20
    for name, source in R.HOSTILE:
        assert validate_source(source).ok, name


@pytest.mark.parametrize("name, source", R.HOSTILE, ids=[n for n, _ in R.HOSTILE])
def test_hostile_candidates_fail_cleanly_or_stay_bounded(store, name, source):
    result = run(store, source, schedule=True, traces=name == "note_flood")
    kind = EXPECTED[name]
    if kind != "ok":
        one_line(result, kind)
        return
    assert result.status == "ok", result.error
    out = result.stores[store.name]
    if name == "schedule_huge_int":
        assert result.schedule == {"k": None, "m": None}  # beyond int64: no usable number
    elif name == "schedule_nan_inf":
        assert result.schedule == {"a": None, "b": None, "c": None}
    elif name == "answer_huge":
        assert all(len(a) == MAX_ANSWER_CHARS + 3 and a.endswith("...") for a in out.answers)
        assert (out.answer_ids == -2).all() and not out.revealed.any()  # scored wrong
    elif name == "note_flood":
        assert out.traces is not None
        assert all(tr[-2]["op"] == "trace_cut" for tr in out.traces)
    elif name == "sweep_then_break":
        assert result.schedule == {"beta": 0.5}


def test_a_candidate_that_misbehaves_only_at_another_beta(store):
    assert run(store, R.SWEEP_THEN_BREAK, beta=0.5).status == "ok"
    summary = one_line(run(store, R.SWEEP_THEN_BREAK, beta=1.0), "protocol")
    assert "frame of 0 bytes" in summary


def test_a_candidate_that_misbehaves_only_in_a_larger_unit(store):
    source = R.fill(R.EPISODES_THEN_BREAK, EPISODES=store.n_questions)
    assert run(store, source).status == "ok"
    bigger = tiny_store(5, questions=store.n_questions + 1, branches=8)
    summary = one_line(run(bigger, source), "protocol")
    assert "frame of 0 bytes" in summary


def test_an_exception_with_huge_text_is_cut_on_both_ends(store):
    result = run(store, R.RAISES_HUGE)
    err = result.error
    assert err["kind"] == "exception" and "line two xxx" in err["summary"], err
    assert len(err["traceback"]) <= broker_mod.MAX_ERROR_CHARS


# --- memory: the trace volume a unit records is capped -----------------------------------------
def test_a_note_flood_on_every_episode_stays_under_the_trace_cap():
    """Maximal notes on every episode of a 30-question unit: the broker keeps at most its
    share per episode (MAX_TRACE_BYTES in all), then one trace_cut event, then the answer."""
    store = tiny_store(8, questions=30, branches=8)
    result = run(store, R.NOTE_FLOOD, traces=True,
                 limits=replace(LIMITS, timeout_s=300.0, stall_s=60.0))
    assert result.status == "ok", result.error
    traces = result.stores[store.name].traces
    assert traces is not None and len(traces) == 30
    share = broker_mod.MAX_TRACE_BYTES // 30
    total = 0
    for tr in traces:
        *kept, cut, finish = tr
        size = sum(event_bytes(ev) for ev in kept)
        assert size <= share, size
        assert cut["op"] == "trace_cut" and cut["dropped_events"] > 0, cut
        assert cut["limit_bytes"] == share and finish["op"] == "finish"
        notes = [ev for ev in kept if ev["op"] == "note"]
        assert notes and [ev["i"] for ev in notes] == list(range(len(notes)))  # a prefix
        # what was dropped plus what was kept is the whole flood (4,000 notes and ~80 probes)
        assert len(kept) + cut["dropped_events"] >= 4000
        total += size
    assert total <= broker_mod.MAX_TRACE_BYTES
    assert np.all(result.stores[store.name].stats["note"] == 4000)
