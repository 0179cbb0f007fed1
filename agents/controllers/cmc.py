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
is the AutoTTS paper's CMC pseudo-code. The Python path, the schedule and the caps
(``MAX_BRANCH``, ``MAX_OUTER``) are the seed file's (``agents/synthesis/seed_files/cmc.py``, what
the discovery LLM is shown): :class:`ConfidenceMomentumController` subclasses its ``Controller``
and adds the checks of ``beta``, ``params()`` and ``batch_solve``, the jitted twin
(:mod:`agents.controllers.cmc_kernel`), which takes the seed file's caps when it is called.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from agents.controllers.batch import batch_outputs
from agents.controllers.cmc_kernel import SCHEDULE_KEYS, cmc_batch_kernel
from agents.synthesis.seed_files import cmc as seed
from tts_gym.kernels.transitions import env_data
from tts_gym.kernels.votes import beta_conf_table

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

    The seed file's ``Controller.schedule``, after the check of ``beta``; it uses Python's
    ``round`` (half to even), exactly as the published schedule.

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
    return dict(seed.Controller(clip_beta(beta)).p)


def schedule_vector(sched: dict[str, int | float]) -> np.ndarray:
    """float64 ``[12]``: the schedule in the kernel's index order (ints are exact in float64)."""
    return np.array([float(sched[k]) for k in SCHEDULE_KEYS], dtype=np.float64)


class ConfidenceMomentumController(seed.Controller):
    """CMC, the discovered controller of AutoTTS (2026); see the module docstring. ``solve`` is
    the seed file's; it reads the twelve knobs from ``p``.

    Args:
        beta: Budget parameter, a finite number clipped to [0, 1] (published default 0.5).

    Raises:
        ValueError: ``beta`` is NaN, infinite or not a number.
    """

    name = "cmc"

    def __init__(self, beta: float = DEFAULT_BETA) -> None:
        self.beta = clip_beta(beta)
        self.p = schedule(self.beta)

    def params(self) -> dict[str, Any]:
        """The controller's parameters (beta after clipping)."""
        return {"beta": self.beta}

    def schedule(self, beta: Any = None) -> dict[str, int | float]:
        """The twelve knobs of ``beta``, by default this controller's (the module-level
        :func:`schedule`).

        Raises:
            ValueError: ``beta`` is not a finite number.
        """
        return schedule(self.beta if beta is None else beta)

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
        answers, tokens, counts = batch_outputs(store, orders)
        cmc_batch_kernel(
            env_data(store),
            store.n_branches,
            np.ascontiguousarray(orders, dtype=np.int32),
            int(mode),
            schedule_vector(self.p),
            beta_conf_table(seed.MAX_BRANCH),
            seed.MAX_BRANCH,
            seed.MAX_OUTER,
            answers,
            tokens,
            counts,
        )
        return answers, tokens
