"""ASC, adaptive self-consistency (Aggarwal et al., "Let's Sample Step by Step:
Adaptive-Consistency for Efficient Reasoning and Coding with LLMs", EMNLP 2023), as a baseline of
AutoTTS (2026).

Read branches to the end one at a time with ``full_read``; after every read (from the second on)
stop as soon as the Beta posterior that the current leader is the true majority,
``beta_conf(c1, c2) = 1 - BetaCDF(0.5; c1 + 1, c2 + 1)``, is strictly greater (``>``) than
``threshold``; otherwise, after ``max_samples`` reads, return the majority (the AutoTTS
reference implementation; docs/reproducing.md lists the details that move numbers). The Python
path is the seed file's (``agents/synthesis/seed_files/asc.py``, what the discovery LLM is
shown): this class subclasses its ``Controller`` and adds the parameter checks, ``params()`` and
the jitted ``batch_solve``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from agents.controllers.batch import MAX_SLOTS, batch_outputs
from agents.synthesis.seed_files import asc as seed
from tts_gym.kernels.state import COST, EP_COUNTERS, EP_ORDER
from tts_gym.kernels.transitions import (
    env_data,
    new_episode,
    read_slot,
    reset_episode,
)
from tts_gym.kernels.votes import beta_conf_table, majority, top2


@njit(cache=True)
def asc_batch_kernel(
    data, n_branches, orders, max_samples, threshold, conf, answers_out, tokens_out, counts
):
    """Adaptive self-consistency over all seeds × questions.

    Args:
        data: store arrays tuple (``env_data``).
        n_branches: int32 ``[Q]``.
        orders: int32 ``[S, Q, N]`` protocol orders.
        max_samples: most branches read per episode.
        threshold: stop when ``conf[c1, c2] > threshold``.
        conf: float64 ``[M, M]`` beta_conf table (``beta_conf_table``), M > max_samples.
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
            m = min(max_samples, n_branches[q], MAX_SLOTS)
            answer = -2
            n = 0
            for _ in range(m):
                _slot, a, _c = read_slot(data, q, ep)
                cands[n] = a
                n += 1
                if n >= 2:
                    w, c1, c2 = top2(cands, n, counts)
                    if conf[c1, c2] > threshold:
                        answer = w
                        break
            if answer == -2:
                answer = majority(cands, n, counts)
            answers_out[s, q] = answer
            tokens_out[s, q] = ep[EP_COUNTERS][COST]


class AdaptiveSelfConsistency(seed.Controller):
    """ASC: sequential full reads with a Beta-posterior stopping rule (published: max_samples
    = 64, threshold = 0.95). ``solve`` is the seed file's.

    Args:
        max_samples: Most branches to read, 1..64 (the env's slot ceiling).
        threshold: Stop when ``beta_conf(c1, c2) > threshold``, in [0, 1].

    Raises:
        ValueError: A parameter out of range or of the wrong type.
    """

    name = "asc"

    def __init__(self, max_samples: int = 64, threshold: float = 0.95) -> None:
        if (
            not isinstance(max_samples, (int, np.integer))
            or isinstance(max_samples, bool)
            or not 1 <= max_samples <= MAX_SLOTS
        ):
            raise ValueError(
                f"asc: max_samples must be an integer in 1..{MAX_SLOTS}, got {max_samples!r}."
            )
        if (
            not isinstance(threshold, (int, float, np.integer, np.floating))
            or isinstance(threshold, bool)
            or not 0.0 <= float(threshold) <= 1.0
        ):
            raise ValueError(f"asc: threshold must be a number in [0, 1], got {threshold!r}.")
        self.max_samples = int(max_samples)
        self.threshold = float(threshold)

    def params(self) -> dict[str, Any]:
        """The controller's parameters."""
        return {"max_samples": self.max_samples, "threshold": self.threshold}

    def batch_solve(self, store: Any, orders: np.ndarray, mode: int) -> tuple[np.ndarray, ...]:
        """The same algorithm as a jitted kernel over all seeds × questions (full_read charges
        T in every cost mode, so ``mode`` does not matter)."""
        answers, tokens, counts = batch_outputs(store, orders)
        asc_batch_kernel(
            env_data(store),
            store.n_branches,
            orders,
            self.max_samples,
            self.threshold,
            beta_conf_table(self.max_samples),
            answers,
            tokens,
            counts,
        )
        return answers, tokens
