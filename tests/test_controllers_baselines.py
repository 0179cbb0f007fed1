"""ASC, ESC and Parallel-Probe: parameter checks, the spec's edge rules on scripted questions, and
batch path == handle path on generated stores (both cost modes)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.controllers.asc import AdaptiveSelfConsistency
from agents.controllers.esc import EarlyStoppingSelfConsistency
from agents.controllers.parallel_probe import ParallelProbe
from tts_gym import evaluate
from tts_gym.controller import make_controller
from tts_gym.kernels.votes import beta_conf
from tts_gym.testing import tiny_store


class ScriptedQuestion:
    """A stand-in for the question handle that serves ``full_read`` answers from a list."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.reads = 0
        self.notes: list[tuple[str, dict]] = []

    def full_read(self) -> str | None:
        if self.reads == len(self.answers):
            return None
        self.reads += 1
        return self.answers[self.reads - 1]

    def note(self, event: str, **fields) -> None:
        self.notes.append((event, fields))


# --- parameters ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "factory, params, match",
    [
        (AdaptiveSelfConsistency, {"max_samples": 0}, "max_samples"),
        (AdaptiveSelfConsistency, {"max_samples": 65}, "max_samples"),
        (AdaptiveSelfConsistency, {"max_samples": 8.0}, "max_samples"),
        (AdaptiveSelfConsistency, {"threshold": 1.5}, "threshold"),
        (AdaptiveSelfConsistency, {"threshold": "high"}, "threshold"),
        (EarlyStoppingSelfConsistency, {"max_samples": 4}, "must be >= window"),
        (EarlyStoppingSelfConsistency, {"window": 0}, "window"),
        (EarlyStoppingSelfConsistency, {"window": 4, "window_size": 8}, "not both"),
        (ParallelProbe, {"num_chains": 0}, "num_chains"),
        (ParallelProbe, {"num_chains": 65}, "num_chains"),
        (ParallelProbe, {"T": 0}, "T must"),
        (ParallelProbe, {"warm_up": -1}, "warm_up"),
        (ParallelProbe, {"probe_burst": True}, "probe_burst"),
    ],
)
def test_bad_parameters_are_refused_with_the_name(factory, params, match):
    with pytest.raises(ValueError, match=match):
        factory(**params)


def test_defaults_are_the_published_settings():
    assert AdaptiveSelfConsistency().params() == {"max_samples": 64, "threshold": 0.95}
    assert EarlyStoppingSelfConsistency().params() == {"max_samples": 64, "window": 8}
    assert ParallelProbe().params() == {
        "num_chains": 64,
        "T": 40,
        "prune_patience": 7,
        "warm_up": 15,
        "probe_burst": 1,
        "max_steps": 100,
    }


def test_registry_names_and_upstream_aliases():
    esc = make_controller("esc", {"max_samples": 32, "window_size": 8})
    assert esc.params() == {"max_samples": 32, "window": 8}
    pp = make_controller(
        "parallel-probe", {"num_chains": 4, "K": 5, "eps_inter": 5.0, "eps_intra": 5.0}
    )
    assert pp.name == "parallel-probe" and pp.params()["num_chains"] == 4
    assert make_controller("asc", {"max_samples": 8}).name == "asc"


# --- the spec's rules, on scripted answers --------------------------------------------------
def test_asc_threshold_comparison_is_strict():
    # beta_conf(4, 0) = 1 - 0.5**5 = 0.96875 exactly: at the threshold ASC must keep reading.
    assert beta_conf(4, 0) == 0.96875
    q = ScriptedQuestion(["7"] * 10)
    assert AdaptiveSelfConsistency(64, threshold=0.96875).solve(q) == "7"
    assert q.reads == 5  # beta_conf(5, 0) = 0.984375 > 0.96875
    q = ScriptedQuestion(["7"] * 10)
    AdaptiveSelfConsistency(64, threshold=0.968749).solve(q)
    assert q.reads == 4


def test_asc_first_read_never_stops_and_budget_gives_majority():
    q = ScriptedQuestion(["1", "2", "2", "1", "3"])
    # threshold 1.0 can never be exceeded: read all max_samples, majority with first-occurrence
    # tie rule ("1" and "2" both twice after 4 reads; "1" came first).
    assert AdaptiveSelfConsistency(4, threshold=1.0).solve(q) == "1"
    assert q.reads == 4
    assert q.notes[-1][1]["rule"].startswith("budget")
    q = ScriptedQuestion(["5"])
    assert AdaptiveSelfConsistency(1, threshold=0.0).solve(q) == "5"


def test_esc_stops_on_first_unanimous_window_and_partial_windows():
    q = ScriptedQuestion(["1", "2", "3", "3", "3", "3"])
    assert EarlyStoppingSelfConsistency(8, window=2).solve(q) == "3"
    assert q.reads == 4
    # Only 3 branches exist: the first (partial) window is unanimous -> its answer.
    q = ScriptedQuestion(["4", "4", "4"])
    assert EarlyStoppingSelfConsistency(16, window=8).solve(q) == "4"
    # Nothing unanimous: majority over all reads (ties -> first occurrence).
    q = ScriptedQuestion(["1", "2", "2", "1", "3", "4"])
    assert EarlyStoppingSelfConsistency(6, window=2).solve(q) == "1"
    assert q.reads == 6
    # max_samples // window windows only: 7 // 2 = 3 windows = 6 reads.
    q = ScriptedQuestion(["1", "2"] * 5)
    EarlyStoppingSelfConsistency(7, window=2).solve(q)
    assert q.reads == 6
    assert EarlyStoppingSelfConsistency(4, window=2).solve(ScriptedQuestion([])) is None


# --- batch path == handle path ----------------------------------------------------------------
CASES = [
    AdaptiveSelfConsistency(3),
    AdaptiveSelfConsistency(12, threshold=0.8),
    AdaptiveSelfConsistency(64),
    EarlyStoppingSelfConsistency(8, window=2),
    EarlyStoppingSelfConsistency(12, window=5),
    EarlyStoppingSelfConsistency(64, window=8),
    ParallelProbe(4, T=2, warm_up=1, prune_patience=1),
    ParallelProbe(12, T=3, warm_up=0, prune_patience=2, probe_burst=2, max_steps=5),
    ParallelProbe(64, T=4, warm_up=2, prune_patience=2),
    ParallelProbe(1),
    ParallelProbe(),
]


@pytest.mark.parametrize("controller", CASES, ids=lambda c: f"{c.name}{c.params()}")
@pytest.mark.parametrize("cost_mode", ["reference", "exact"])
def test_batch_equals_handle_on_generated_stores(controller, cost_mode):
    for store_seed in range(3):
        store = tiny_store(store_seed, questions=4, branches=12, max_probes=7)
        a = evaluate(controller, store, seeds=6, path="batch", cost_mode=cost_mode)
        b = evaluate(controller, store, seeds=6, path="handle", cost_mode=cost_mode)
        assert a.path == "batch" and b.path == "handle"
        assert np.array_equal(a.tokens, b.tokens)
        assert a.answers == b.answers


def test_parallel_probe_prunes_through_the_handle_and_notes_its_decisions():
    store = tiny_store(1, questions=3, branches=12, max_probes=12)
    res = evaluate(ParallelProbe(12, T=6, warm_up=0, prune_patience=1), store, seeds=3, traces=True)
    events = [e for seed in res.traces for ep in seed for e in ep]
    prunes = [e for e in events if e["op"] == "prune"]
    notes = [e for e in events if e["op"] == "note"]
    assert prunes, "no chain was pruned; the fixture should make some disagree"
    pruned_slots = {e["slot"] for e in prunes}
    noted = {s for e in notes if e["event"] == "prune" for s in e["slots"]}
    assert pruned_slots <= noted
    assert {"spawn", "stop"} <= {e["event"] for e in notes}
    # A pruned slot is never advanced again within its episode.
    for seed in res.traces:
        for ep in seed:
            gone: set[int] = set()
            for e in ep:
                if e["op"] == "prune":
                    gone.add(e["slot"])
                elif e["op"] == "probe_more":
                    assert e["slot"] not in gone
