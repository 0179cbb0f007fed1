"""CMC (AutoTTS, 2026): the schedule, parameter checks, batch == handle, the published rows."""

from __future__ import annotations

import csv
import io
import json
import math
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.controllers.cmc import ConfidenceMomentumController, clip_beta, schedule
from tests.conftest import real_data_dir, requires_data
from tts_gym import evaluate, load_store
from tts_gym.cli import main
from tts_gym.controller import make_controller
from tts_gym.published import published_csv_text
from tts_gym.testing import tiny_store

BETAS = [k / 10 for k in range(11)]
KEYS = (
    "n_init max_branch_use warm_up abandon_patience T_ema ema_alpha conf_thresh delta_slack "
    "burst_aligned widen_burst trend_thresh min_complete"
).split()

# Worked by hand from the spec's table; the .5 cases go to the even neighbour
# (b=0.25: n_init = round(3.5) = 4, burst_aligned = round(1.5) = 2;
#  b=0.5: abandon_patience = round(7.5) = 8, widen_burst = round(2.5) = 2, min_complete = 4;
#  b=0.75: n_init = round(6.5) = 6, burst_aligned = round(2.5) = 2).
HAND = {
    0.0: (2, 4, 2, 3, 2, 0.7, 0.85, 0.04, 1, 1, 0.04, 2),
    0.1: (3, 10, 3, 4, 3, 0.66, 0.862, 0.037, 1, 1, 0.037, 2),
    0.25: (4, 19, 4, 5, 4, 0.6, 0.88, 0.0325, 2, 2, 0.0325, 3),
    0.5: (5, 34, 6, 8, 5, 0.5, 0.91, 0.025, 2, 2, 0.025, 4),
    0.75: (6, 49, 8, 10, 6, 0.4, 0.94, 0.0175, 2, 3, 0.0175, 4),
    1.0: (8, 64, 10, 12, 8, 0.3, 0.97, 0.01, 3, 4, 0.01, 5),
}


@pytest.mark.parametrize("beta", sorted(HAND))
def test_schedule_hand_checked(beta):
    got = schedule(beta)
    assert list(got) == KEYS
    assert tuple(got.values()) == HAND[beta]
    ints = {k for k in KEYS if k not in ("ema_alpha", "conf_thresh", "delta_slack", "trend_thresh")}
    assert all(isinstance(got[k], int) for k in ints)


def _q4(x: float) -> float:
    """round(x, 4) of the double x, half-even, through Decimal (the exact binary value)."""
    return float(Decimal(x).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def _exact(beta: float) -> dict:
    """The spec's integer formulas in exact rational arithmetic (round() of a Fraction is
    half-even); the 4-digit knobs round the float expression, as the spec's Python does."""
    b = Fraction(beta)
    r = round
    return {
        "n_init": max(2, r(2 + 6 * b)),
        "max_branch_use": min(64, r(4 + 60 * b)),
        "warm_up": max(2, r(2 + 8 * b)),
        "abandon_patience": max(3, r(3 + 9 * b)),
        "T_ema": max(2, r(2 + 6 * b)),
        "ema_alpha": _q4(0.70 - 0.40 * beta),
        "conf_thresh": _q4(0.85 + 0.12 * beta),
        "delta_slack": _q4(0.04 - 0.03 * beta),
        "burst_aligned": max(1, r(1 + 2 * b)),
        "widen_burst": max(1, r(1 + 3 * b)),
        "trend_thresh": _q4(0.04 - 0.03 * beta),
        "min_complete": max(2, r(2 + 3 * b)),
    }


@pytest.mark.parametrize("beta", BETAS + [0.05, 0.0625, 0.125, 0.25, 0.3125, 0.375, 0.75, 0.875])
def test_schedule_matches_exact_arithmetic(beta):
    assert schedule(beta) == _exact(beta)


def test_round_half_even_is_what_the_schedule_uses():
    # the cases where half-up would differ
    assert schedule(0.25)["n_init"] == 4 and schedule(0.75)["n_init"] == 6
    assert schedule(0.5)["widen_burst"] == 2 and schedule(0.75)["burst_aligned"] == 2
    assert schedule(0.5)["abandon_patience"] == 8 and schedule(0.5)["min_complete"] == 4
    # 0.04 - 0.03 * 0.125 is the double just above 0.03625, so it rounds up
    assert schedule(0.125)["delta_slack"] == 0.0363


def test_beta_is_clipped_and_validated():
    assert schedule(-3) == schedule(0.0) and schedule(7) == schedule(1.0)
    assert ConfidenceMomentumController(2.5).params() == {"beta": 1.0}
    assert ConfidenceMomentumController(-0.1).params() == {"beta": 0.0}
    assert ConfidenceMomentumController().params() == {"beta": 0.5}
    assert ConfidenceMomentumController(np.float32(0.5)).schedule() == schedule(0.5)
    assert clip_beta(1) == 1.0
    for bad in (math.nan, math.inf, -math.inf, "0.5", None, True, [0.5]):
        with pytest.raises(ValueError, match="beta must be a finite number"):
            ConfidenceMomentumController(bad)
        with pytest.raises(ValueError, match="beta must be a finite number"):
            schedule(bad)


def test_make_controller_cmc():
    c = make_controller("cmc", {"beta": 0.3})
    assert isinstance(c, ConfidenceMomentumController) and c.name == "cmc"
    assert c.schedule() == schedule(0.3)
    with pytest.raises(ValueError, match="beta must be a finite number"):
        make_controller("cmc", {"beta": "high"})
    with pytest.raises(ValueError, match="no parameter"):
        make_controller("cmc", {"n": 3})


def _same(a, b):
    assert a.answers == b.answers
    assert np.array_equal(a.tokens, b.tokens)
    assert np.array_equal(a.correct, b.correct)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"seed": 1, "questions": 4, "branches": 12, "max_probes": 9, "answers": 2},
        {"seed": 2, "questions": 3, "branches": 3, "max_probes": 4, "answers": 3},
        {"seed": 3, "questions": 2, "branches": 70, "max_probes": 12, "answers": 5},
        {"seed": 4, "questions": 3, "branches": 40, "max_probes": 0, "answers": 3},
    ],
)
def test_batch_equals_handle_on_tiny_stores(kwargs):
    store = tiny_store(**kwargs)
    for beta in (0.0, 0.25, 0.5, 0.8, 1.0):
        ctrl = ConfidenceMomentumController(beta)
        for mode in ("reference", "exact"):
            a = evaluate(ctrl, store, seeds=6, path="batch", cost_mode=mode)
            b = evaluate(ctrl, store, seeds=6, path="handle", cost_mode=mode)
            _same(a, b)


@settings(max_examples=25, deadline=None)
@given(
    store_seed=st.integers(0, 10_000),
    branches=st.integers(1, 80),
    max_probes=st.integers(0, 15),
    answers=st.integers(1, 6),
    beta=st.floats(-0.5, 1.5, allow_nan=False),
)
def test_batch_equals_handle_property(store_seed, branches, max_probes, answers, beta):
    store = tiny_store(
        store_seed, questions=2, branches=branches, max_probes=max_probes, answers=answers
    )
    ctrl = ConfidenceMomentumController(beta)
    _same(
        evaluate(ctrl, store, seeds=3, path="batch"),
        evaluate(ctrl, store, seeds=3, path="handle"),
    )


def test_trace_records_the_decisions(tiny):
    res = evaluate(ConfidenceMomentumController(0.5), tiny, seeds=3, traces=True)
    sched = schedule(0.5)
    events = [ev for row in res.traces for tr in row for ev in tr if ev["op"] == "note"]
    kinds = {ev["event"] for ev in events}
    assert {"spawn", "finish"} <= kinds
    for ev in events:
        if ev["event"] == "stop":
            assert ev["E"] >= sched["conf_thresh"] and ev["delta"] >= -sched["delta_slack"]
            assert ev["pool"] >= sched["min_complete"]
    for row in res.traces:
        for tr in row:
            finishes = [ev for ev in tr if ev.get("event") == "finish"]
            assert len(finishes) == 1
    json.dumps(res.traces)


@requires_data
def test_batch_equals_handle_on_real_stores():
    for model, beta, seeds in (("Qwen3-8B", 0.5, [0, 41]), ("Qwen3-0.6B", 1.0, [7])):
        store = load_store(model, "aime24", real_data_dir())
        ctrl = ConfidenceMomentumController(beta)
        _same(
            evaluate(ctrl, store, seeds=seeds, path="batch"),
            evaluate(ctrl, store, seeds=seeds, path="handle"),
        )


def _published_cmc_rows():
    """The CMC rows of the published figures shipped in ``tts_gym/data``."""
    rows = csv.DictReader(io.StringIO(published_csv_text()))
    return [r for r in rows if r["controller"] == "cmc"]


@requires_data
def test_published_cmc_rows_reproduced():
    rows = _published_cmc_rows()
    assert len(rows) == 44
    stores = {}
    for row in rows:
        key = (row["model"], row["dataset"])
        if key not in stores:
            stores[key] = load_store(*key, real_data_dir())
        beta = float(row["config"].removeprefix("beta="))
        res = evaluate(ConfidenceMomentumController(beta), stores[key], path="batch")
        got = (res.accuracy, int(res.avg_tokens))
        assert got == (float(row["accuracy"]), int(row["avg_tokens"])), row


@requires_data
def test_cli_eval_cmc_json(capsys):
    argv = ["eval", "cmc", "--param", "beta=0.5", "--model", "Qwen3-8B", "--benchmark", "aime24"]
    assert main([*argv, "--json", "--data-dir", str(real_data_dir())]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == 84.27 and int(out["avg_tokens"]) == 255293
    assert out["path"] == "batch" and out["params"] == {"beta": 0.5}
