"""SC@n, self-consistency (Wang et al., "Self-Consistency Improves Chain of Thought Reasoning in
Language Models", ICLR 2023), as the seed baseline of AutoTTS (2026).

Read ``n`` branches to the end with ``full_read`` and return the majority answer (ties: the
answer whose first occurrence comes earliest). The Python path is the seed file's
(``agents/synthesis/seed_files/sc.py``, what the discovery LLM is shown): this class subclasses its
``Controller`` and adds the parameter checks, ``params()`` and the jitted ``batch_solve``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from agents.controllers.batch import MAX_SLOTS, batch_outputs
from agents.synthesis.seed_files import sc as seed
from tts_gym.kernels.state import COST, EP_COUNTERS, EP_ORDER
from tts_gym.kernels.transitions import (
    env_data,
    new_episode,
    read_slot,
    reset_episode,
)
from tts_gym.kernels.votes import majority


@njit(cache=True)
def sc_batch_kernel(data, n_branches, orders, n, answers_out, tokens_out, counts):
    """Self-consistency over all seeds × questions.

    Args:
        data: store arrays tuple (``env_data``).
        n_branches: int32 ``[Q]``.
        orders: int32 ``[S, Q, N]`` protocol orders.
        n: branches to read per episode.
        answers_out: int32 ``[S, Q]`` (written); tokens_out: int64 ``[S, Q]`` (written).
        counts: int64 zero scratch ``[A]``.
    """
    n_s, n_q, width = orders.shape
    cap = min(n, width)  # slots actually used: work per episode is O(n), not O(branches)
    ep = new_episode(cap, cap)
    votes = np.empty(cap, np.int32)
    for s in range(n_s):
        for q in range(n_q):
            m = min(cap, n_branches[q])
            ep[EP_ORDER][:m] = orders[s, q, :m]
            reset_episode(ep)
            for i in range(m):
                _slot, a, _c = read_slot(data, q, ep)
                votes[i] = a
            answers_out[s, q] = majority(votes, m, counts)
            tokens_out[s, q] = ep[EP_COUNTERS][COST]


class SelfConsistency(seed.Controller):
    """SC@n: majority vote over ``n`` fully read branches (published: n = 64). ``solve`` is the
    seed file's.

    Args:
        n: Branches to read, 1..64.
    """

    name = "sc"

    def __init__(self, n: int = 64) -> None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= MAX_SLOTS:
            raise ValueError(
                f"sc: n must be an integer in 1..{MAX_SLOTS} (the env's slot "
                f"ceiling, the paper's 64 branches), got {n!r}."
            )
        self.n = int(n)

    def params(self) -> dict[str, Any]:
        """The controller's parameters."""
        return {"n": self.n}

    def batch_solve(self, store: Any, orders: np.ndarray, mode: int) -> tuple[np.ndarray, ...]:
        """The same algorithm as a jitted kernel over all seeds × questions (full_read charges
        T in every cost mode)."""
        answers, tokens, counts = batch_outputs(store, orders)
        sc_batch_kernel(env_data(store), store.n_branches, orders, self.n, answers, tokens, counts)
        return answers, tokens
