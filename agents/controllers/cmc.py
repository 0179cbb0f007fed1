"""CMC, the Confidence Momentum Controller discovered by AutoTTS (AutoTTS, 2026).

CMC is the controller the AutoTTS paper (2026) found by LLM-driven search over test-time scaling
policies on the AIME24 replay stores. It runs a handful of reasoning branches in parallel with
cheap answer probes and decides when to stop from the *momentum* of its confidence:

- **Pool.** The final answers of branches that finished, in the order they finished. Its
  confidence is ``beta_conf(c1, c2) = 1 - BetaCDF(0.5; c1 + 1, c2 + 1)`` of the leader's count
  c1 against the runner-up's c2 (``top2``), 0 for an empty pool.
- **Momentum.** An exponential moving average ``E`` of that confidence is updated twice per
  round (before and after the round's probes; the second update replaces the round's entry in
  the history ``H`` of the last ``T_ema`` values). ``delta = H[-1] - H[0]`` is the trend.
- **Probing.** Each round, live branches (not finished, not abandoned; most-probed first) are
  advanced once, or ``burst_aligned`` times when their latest answer agrees with the pool
  leader after warm-up.
- **Abandon.** After warm-up, a live branch that disagreed with the pool leader for
  ``abandon_patience`` consecutive rounds may be abandoned (most persistent first), always
  keeping at least two live branches.
- **Stop.** After warm-up, once the pool has ``min_complete`` answers, ``E >= conf_thresh``
  and the confidence is not falling by more than ``delta_slack``: answer the pool leader.
- **Widen.** When confidence is low and flat (``delta <= trend_thresh``), open ``widen_burst``
  more branches, up to ``max_branch_use`` (at most 64).

All twelve knobs follow from one budget parameter ``beta`` in [0, 1] through
:func:`schedule` (Python's round-half-even, exactly as published). The normative description
is the AutoTTS paper's CMC pseudo-code; the jitted twin is :mod:`agents.controllers.cmc_kernel`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from agents.controllers.cmc_kernel import (
    MAX_BRANCH,
    MAX_OUTER,
    SCHEDULE_KEYS,
    cmc_batch_kernel,
)
from tts_gym.kernels.transitions import env_data
from tts_gym.kernels.votes import beta_conf, beta_conf_table, majority_py, top2_py

DEFAULT_BETA = 0.5
"""The budget parameter used when none is given."""


def clip_beta(beta: Any) -> float:
    """Validate ``beta`` and clip it to [0, 1].

    Args:
        beta: A finite real number (int or float; not a bool, string or NaN).

    Returns:
        ``min(1.0, max(0.0, float(beta)))``.

    Raises:
        ValueError: ``beta`` is not a finite real number.
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise ValueError(
            f"cmc: beta must be a finite number in [0, 1] (e.g. beta=0.5), got {beta!r}."
        )
    b = float(beta)
    if not math.isfinite(b):
        raise ValueError(f"cmc: beta must be a finite number in [0, 1] (e.g. beta=0.5), got {b}.")
    return min(1.0, max(0.0, b))


def schedule(beta: Any = DEFAULT_BETA) -> dict[str, int | float]:
    """CMC's twelve knobs from the budget parameter ``beta`` (clipped to [0, 1]).

    Uses Python's ``round`` (half to even), exactly as the published schedule.

    Args:
        beta: Budget parameter; 0 is the cheapest, 1 the most thorough.

    Returns:
        A dict with int ``n_init, max_branch_use, warm_up, abandon_patience, T_ema,
        burst_aligned, widen_burst, min_complete`` and float ``ema_alpha, conf_thresh,
        delta_slack, trend_thresh``.

    Raises:
        ValueError: ``beta`` is not a finite number.

    >>> s = schedule(0.25)
    >>> s["n_init"], s["max_branch_use"], s["warm_up"], s["ema_alpha"]
    (4, 19, 4, 0.6)
    """
    b = clip_beta(beta)
    return {
        "n_init": max(2, round(2 + 6 * b)),
        "max_branch_use": min(64, round(4 + 60 * b)),
        "warm_up": max(2, round(2 + 8 * b)),
        "abandon_patience": max(3, round(3 + 9 * b)),
        "T_ema": max(2, round(2 + 6 * b)),
        "ema_alpha": round(0.70 - 0.40 * b, 4),
        "conf_thresh": round(0.85 + 0.12 * b, 4),
        "delta_slack": round(0.04 - 0.03 * b, 4),
        "burst_aligned": max(1, round(1 + 2 * b)),
        "widen_burst": max(1, round(1 + 3 * b)),
        "trend_thresh": round(0.04 - 0.03 * b, 4),
        "min_complete": max(2, round(2 + 3 * b)),
    }


def schedule_vector(sched: dict[str, int | float]) -> np.ndarray:
    """float64 ``[12]``: the schedule in the kernel's index order (ints are exact in float64)."""
    return np.array([float(sched[k]) for k in SCHEDULE_KEYS], dtype=np.float64)


class _Branch:
    """One CMC branch record."""

    __slots__ = ("slot", "latest", "finished", "abandoned", "probes", "disagree")

    def __init__(self, slot: int, latest: str | None, finished: bool) -> None:
        self.slot = slot
        self.latest = latest
        self.finished = finished
        self.abandoned = False
        self.probes = 0
        self.disagree = 0


class ConfidenceMomentumController:
    """CMC, the discovered controller of AutoTTS (2026); see the module docstring.

    Args:
        beta: Budget parameter, a finite number clipped to [0, 1] (published default 0.5).

    Raises:
        ValueError: ``beta`` is NaN, infinite or not a number.
    """

    name = "cmc"

    def __init__(self, beta: float = DEFAULT_BETA) -> None:
        self.beta = clip_beta(beta)
        self._sched = schedule(self.beta)

    def params(self) -> dict[str, Any]:
        """The controller's parameters (beta after clipping)."""
        return {"beta": self.beta}

    def schedule(self) -> dict[str, int | float]:
        """This controller's twelve knobs (see the module-level :func:`schedule`)."""
        return dict(self._sched)

    # --- the handle path ---------------------------------------------------------------------
    def solve(self, question: Any) -> str | None:  # noqa: C901 - the published pseudo-code
        """Run CMC on one question through the handle's ``probe_new`` / ``probe_more`` /
        ``prune``; returns the pool leader (or the majority of latest answers, or None)."""
        p = self._sched
        alpha = p["ema_alpha"]
        conf_thresh = p["conf_thresh"]
        warm_up = p["warm_up"]
        records: list[_Branch] = []
        pool: list[str] = []

        def pool_stats() -> tuple[str | None, float]:
            if not pool:
                return None, 0.0
            w, c1, c2 = top2_py(pool)
            return w, beta_conf(c1, c2)

        def spawn() -> bool:
            got = question.probe_new()
            if got is None:
                return False
            a, slot, fin = got
            records.append(_Branch(slot, a, fin))
            if fin:
                pool.append(a)
            question.note("spawn", slot=slot, answer=a, finished=fin)
            return True

        for _ in range(p["n_init"]):
            if not spawn():
                break
        if not records:
            question.note("finish", answer=None, reason="no branch")
            return None

        e = 0.0
        hist: list[float] = []
        for step in range(MAX_OUTER):
            w, conf = pool_stats()
            warm = step >= warm_up
            e = (1 - alpha) * e + alpha * conf
            hist.append(e)
            while len(hist) > p["T_ema"]:
                hist.pop(0)
            if warm and w is not None:
                alive = 0
                for r in records:
                    if not r.abandoned and not r.finished:
                        r.disagree = r.disagree + 1 if r.latest != w else 0
                        alive += 1
                cands = [
                    r
                    for r in records
                    if not r.abandoned and not r.finished and r.disagree >= p["abandon_patience"]
                ]
                cands.sort(key=lambda r: r.disagree, reverse=True)
                for r in cands[: max(0, alive - 2)]:
                    r.abandoned = True
                    question.prune(r.slot)
                    question.note("abandon", slot=r.slot, disagree=r.disagree, leader=w)
            live = [r for r in records if not r.abandoned and not r.finished]
            live.sort(key=lambda r: r.probes, reverse=True)
            for r in live:
                n = p["burst_aligned"] if (warm and w is not None and r.latest == w) else 1
                done = 0
                for _ in range(n):
                    if r.finished:
                        break
                    a, fin = question.probe_more(r.slot)
                    r.probes += 1
                    r.latest = a
                    r.finished = fin
                    done += 1
                    if fin:
                        pool.append(a)
                if n > 1:
                    question.note("burst", slot=r.slot, probes=done, answer=r.latest)
            w, conf = pool_stats()
            e = (1 - alpha) * e + alpha * conf
            hist[-1] = e
            delta = hist[-1] - hist[0] if len(hist) >= 2 else 0.0
            if warm and len(pool) >= p["min_complete"] and e >= conf_thresh:
                if delta >= -p["delta_slack"]:
                    question.note(
                        "stop",
                        step=step,
                        E=e,
                        delta=delta,
                        pool=len(pool),
                        conf=conf,
                        answer=w,
                    )
                    question.note("finish", answer=w, reason="confident")
                    return w
            if all(r.finished or r.abandoned for r in records):
                break
            n_rec = len(records)
            if (
                n_rec < p["max_branch_use"]
                and n_rec < MAX_BRANCH
                and delta <= p["trend_thresh"]
                and step >= max(1, warm_up // 2)
                and e < conf_thresh
            ):
                question.note("widen", step=step, E=e, delta=delta, pool=len(pool), conf=conf)
                for _ in range(p["widen_burst"]):
                    if not (len(records) < p["max_branch_use"] and len(records) < MAX_BRANCH):
                        break
                    if not spawn():
                        break
        w, _ = pool_stats()
        reason = "pool leader"
        if w is None:
            w = majority_py([r.latest for r in records if not r.abandoned])
            reason = "majority of latest answers"
        question.note("finish", answer=w, reason=reason, pool=len(pool), E=e)
        return w

    # --- the batch path ----------------------------------------------------------------------
    def batch_solve(self, store: Any, orders: np.ndarray, mode: int) -> tuple[np.ndarray, ...]:
        """The same algorithm as a jitted kernel over all seeds × questions.

        Args:
            store: A :class:`~tts_gym.store.ReplayStore`.
            orders: int32 ``[S, Q, N]`` protocol orders.
            mode: Cost mode (``MODE_REFERENCE`` or ``MODE_EXACT``).

        Returns:
            ``(answer_ids int32 [S, Q], tokens int64 [S, Q])``.
        """
        n_s, n_q = orders.shape[0], orders.shape[1]
        answers = np.empty((n_s, n_q), np.int32)
        tokens = np.empty((n_s, n_q), np.int64)
        counts = np.zeros(store.max_answers + 1, np.int64)
        cmc_batch_kernel(
            env_data(store),
            store.n_branches,
            np.ascontiguousarray(orders, dtype=np.int32),
            int(mode),
            schedule_vector(self._sched),
            beta_conf_table(MAX_BRANCH),
            answers,
            tokens,
            counts,
        )
        return answers, tokens
