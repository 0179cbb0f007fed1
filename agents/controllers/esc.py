"""ESC, early-stopping self-consistency (Li et al., "Escape Sky-high Cost: Early-stopping
Self-Consistency for Multi-step Reasoning", ICLR 2024), as a baseline of AutoTTS (2026).

Read branches to the end in windows of ``window`` (``full_read``); stop after the first window
whose answers are all equal and return that answer; otherwise, after ``max_samples // window``
windows, return the majority of everything read (the AutoTTS reference implementation;
docs/reproducing.md lists the details that move numbers). ESC with
``window = max_samples`` equals SC@max_samples. The Python path is the seed file's
(``agents/synthesis/seed_files/esc.py``, what the discovery LLM is shown): this class subclasses
its ``Controller`` and adds the parameter checks, ``params()`` and the jitted ``batch_solve``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from agents.controllers.batch import MAX_SLOTS, batch_outputs
from agents.synthesis.seed_files import esc as seed
from tts_gym.kernels.state import COST, EP_COUNTERS, EP_ORDER, OPENED
from tts_gym.kernels.transitions import (
    env_data,
    new_episode,
    read_slot,
    reset_episode,
)
from tts_gym.kernels.votes import majority


@njit(cache=True)
def esc_batch_kernel(
    data, n_branches, orders, max_samples, window, answers_out, tokens_out, counts
):
    """Early-stopping self-consistency over all seeds × questions.

    Args:
        data: store arrays tuple (``env_data``).
        n_branches: int32 ``[Q]``.
        orders: int32 ``[S, Q, N]`` protocol orders.
        max_samples, window: the controller's parameters (``max_samples // window`` windows).
        answers_out: int32 ``[S, Q]`` (written); tokens_out: int64 ``[S, Q]`` (written).
        counts: int64 zero scratch ``[A]``.
    """
    n_s, n_q, width = orders.shape
    ep = new_episode(width, width)
    cands = np.empty(width, np.int32)
    for s in range(n_s):
        for q in range(n_q):
            ep[EP_ORDER][:] = orders[s, q]
            reset_episode(ep)
            limit = min(n_branches[q], MAX_SLOTS)
            n = 0
            answer = -2
            for _w in range(max_samples // window):
                start = n
                for _ in range(window):
                    if ep[EP_COUNTERS][OPENED] >= limit:
                        break
                    _slot, a, _c = read_slot(data, q, ep)
                    cands[n] = a
                    n += 1
                if n == start:
                    continue
                same = True
                for i in range(start + 1, n):
                    if cands[i] != cands[start]:
                        same = False
                        break
                if same:
                    answer = cands[start]
                    break
            if answer == -2:
                answer = majority(cands, n, counts)
            answers_out[s, q] = answer
            tokens_out[s, q] = ep[EP_COUNTERS][COST]


class EarlyStoppingSelfConsistency(seed.Controller):
    """ESC: windows of full reads, stop at the first unanimous window (published:
    max_samples = 64, window = 8). ``solve`` is the seed file's.

    Args:
        max_samples: Read budget, ``window``..64 (the env's slot ceiling).
        window: Branches per window (>= 1); 8 when neither it nor ``window_size`` is given.
        window_size: Alias of ``window`` (the published CSV's spelling); give one of the two.

    Raises:
        ValueError: A parameter out of range, of the wrong type, or both spellings given.
    """

    name = "esc"

    def __init__(
        self, max_samples: int = 64, window: int | None = None, window_size: int | None = None
    ) -> None:
        if window is not None and window_size is not None and window != window_size:
            raise ValueError(
                f"esc: give window or its alias window_size, not both ({window} != {window_size})."
            )
        if window is None:
            window = 8 if window_size is None else window_size
        for key, value in (("max_samples", max_samples), ("window", window)):
            if (
                not isinstance(value, (int, np.integer))
                or isinstance(value, bool)
                or not 1 <= value <= MAX_SLOTS
            ):
                raise ValueError(f"esc: {key} must be an integer in 1..{MAX_SLOTS}, got {value!r}.")
        if max_samples < window:
            raise ValueError(
                f"esc: max_samples ({max_samples}) must be >= window ({window}), else no "
                "window is read; lower window or raise max_samples."
            )
        self.max_samples = int(max_samples)
        self.window = int(window)

    def params(self) -> dict[str, Any]:
        """The controller's parameters."""
        return {"max_samples": self.max_samples, "window": self.window}

    def batch_solve(self, store: Any, orders: np.ndarray, mode: int) -> tuple[np.ndarray, ...]:
        """The same algorithm as a jitted kernel over all seeds × questions (full_read charges
        T in every cost mode, so ``mode`` does not matter)."""
        answers, tokens, counts = batch_outputs(store, orders)
        esc_batch_kernel(
            env_data(store),
            store.n_branches,
            orders,
            self.max_samples,
            self.window,
            answers,
            tokens,
            counts,
        )
        return answers, tokens
