"""Parallel-Probe, the parallel probing baseline of AutoTTS (2026), exactly as in the AutoTTS
reference implementation (which names no separate source paper for it).

Open ``num_chains`` branches with ``probe_new`` and advance them together, ``probe_burst``
intervals per round, reading each chain's intermediate answer for free. After ``warm_up`` rounds,
a chain whose latest answer disagrees with the round's majority for ``prune_patience`` rounds in
a row is pruned. Stop when the majority has been the same for ``T`` consecutive rounds, when
every chain is finished or pruned, or after ``max_steps`` rounds. The upstream signature also
carried ``K``, ``eps_inter`` and ``eps_intra``; they are accepted and change nothing. The
Python path is the seed file's (``agents/synthesis/seed_files/parallel_probe.py``, what the
discovery LLM is shown): this class subclasses its ``Controller`` and adds the parameter checks,
``params()`` and the jitted ``batch_solve``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from agents.controllers.batch import MAX_SLOTS, batch_outputs
from agents.synthesis.seed_files import parallel_probe as seed
from tts_gym.kernels.state import COST, EP_COUNTERS, EP_FINISHED, EP_ORDER
from tts_gym.kernels.transitions import (
    advance_slot,
    env_data,
    new_episode,
    open_slot,
    reset_episode,
)
from tts_gym.kernels.votes import majority


@njit(cache=True)
def _active_majority(latest, pruned, n_open, votes, counts):
    """Majority of ``latest`` over the unpruned chains, in opening order; -1 if none.

    Returns:
        ``(winner, n_active)``.
    """
    n = 0
    for c in range(n_open):
        if not pruned[c]:
            votes[n] = latest[c]
            n += 1
    return majority(votes, n, counts), n


@njit(cache=True)
def _forward(data, q, ep, mode, burst, n_open, latest, pruned, votes):
    """Advance every unpruned, unfinished chain ``burst`` times (opening order) and collect the
    latest answers of the unpruned chains into ``votes``.

    Returns:
        ``(n_active, n_alive)``: unpruned chains, and those of them not finished.
    """
    finished = ep[EP_FINISHED]
    n_active = 0
    n_alive = 0
    for c in range(n_open):
        if pruned[c]:
            continue
        for _ in range(burst):
            if finished[c]:
                break
            a, _ch, _f = advance_slot(data, q, ep, c, mode)
            latest[c] = a
        votes[n_active] = latest[c]
        n_active += 1
        if not finished[c]:
            n_alive += 1
    return n_active, n_alive


@njit(cache=True)
def _prune(finished, n_open, latest, pruned, off, winner, patience):
    """Update disagreement streaks of unfinished active chains; prune those at ``patience``.

    Returns:
        How many chains were newly pruned.
    """
    newly = 0
    for c in range(n_open):
        if pruned[c] or finished[c]:
            continue
        off[c] = off[c] + 1 if latest[c] != winner else 0
        if off[c] >= patience:
            pruned[c] = 1
            newly += 1
    return newly


@njit(cache=True)
def _episode(data, n_branches, q, ep, mode, prm, latest, pruned, off, votes, counts):
    """One Parallel-Probe episode on an already reset ``ep``; returns the answer id (-1: none).

    ``prm`` = int64 ``[num_chains, T, prune_patience, warm_up, probe_burst, max_steps]``.
    """
    finished = ep[EP_FINISHED]
    limit = min(n_branches[q], MAX_SLOTS, prm[0])
    n_open = 0
    while n_open < limit:
        slot, a, _c, _f = open_slot(data, q, ep, mode)
        latest[slot] = a
        pruned[slot] = 0
        off[slot] = 0
        n_open += 1
    if n_open == 0:
        return -1
    stable = 0
    prev = -1
    for step in range(prm[5]):
        n_active, n_alive = _forward(data, q, ep, mode, prm[4], n_open, latest, pruned, votes)
        if n_active == 0:
            return prev
        winner = majority(votes, n_active, counts)
        if step >= prm[3] and n_active > 1:
            newly = _prune(finished, n_open, latest, pruned, off, winner, prm[2])
            if newly > 0:
                n_alive -= newly
                winner, n_active = _active_majority(latest, pruned, n_open, votes, counts)
                if n_active == 0:
                    return prev
        stable = stable + 1 if winner == prev else 0
        if stable >= prm[1]:
            return winner
        prev = winner
        if n_alive == 0:  # every chain finished or pruned
            return prev
    return prev


@njit(cache=True)
def parallel_probe_batch_kernel(
    data, n_branches, orders, mode, prm, answers_out, tokens_out, counts
):
    """Parallel-Probe over all seeds × questions.

    Args:
        data: store arrays tuple (``env_data``).
        n_branches: int32 ``[Q]``.
        orders: int32 ``[S, Q, N]`` protocol orders.
        mode: cost mode (MODE_REFERENCE / MODE_EXACT).
        prm: int64 ``[6]`` parameters (see :func:`_episode`).
        answers_out: int32 ``[S, Q]`` (written); tokens_out: int64 ``[S, Q]`` (written).
        counts: int64 zero scratch ``[A]``.
    """
    n_s, n_q, width = orders.shape
    ep = new_episode(width, width)
    latest = np.empty(width, np.int32)
    pruned = np.zeros(width, np.uint8)
    off = np.zeros(width, np.int64)
    votes = np.empty(width, np.int32)
    for s in range(n_s):
        for q in range(n_q):
            ep[EP_ORDER][:] = orders[s, q]
            reset_episode(ep)
            a = _episode(data, n_branches, q, ep, mode, prm, latest, pruned, off, votes, counts)
            answers_out[s, q] = a
            tokens_out[s, q] = ep[EP_COUNTERS][COST]


def _int_param(key: str, value: Any, low: int, high: int | None = None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        span = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"parallel-probe: {key} must be an integer {span}, got {value!r}.")
    return int(value)


class ParallelProbe(seed.Controller):
    """Parallel-Probe: probe many chains in lockstep, prune dissenters, stop on a stable
    majority (published: num_chains = 64, T = 40, prune_patience = 7, warm_up = 15,
    probe_burst = 1, max_steps = 100). ``solve`` is the seed file's (PRUNE =
    ``question.prune(slot)``).

    Args:
        num_chains: Chains opened at the start, 1..64 (the env's slot ceiling).
        T: Stop once the majority stayed the same for T consecutive rounds (>= 1).
        prune_patience: Rounds of disagreement with the majority before a chain is pruned (>= 1).
        warm_up: Rounds before pruning starts (>= 0).
        probe_burst: ``probe_more`` calls per chain per round (>= 1).
        max_steps: Most rounds (>= 1).
        K, eps_inter, eps_intra: Accepted for the upstream signature; unused.

    Raises:
        ValueError: A parameter out of range or of the wrong type.
    """

    name = "parallel-probe"

    def __init__(
        self,
        num_chains: int = 64,
        T: int = 40,
        prune_patience: int = 7,
        warm_up: int = 15,
        probe_burst: int = 1,
        max_steps: int = 100,
        K: Any = None,
        eps_inter: Any = None,
        eps_intra: Any = None,
    ) -> None:
        self.num_chains = _int_param("num_chains", num_chains, 1, MAX_SLOTS)
        self.T = _int_param("T", T, 1)
        self.prune_patience = _int_param("prune_patience", prune_patience, 1)
        self.warm_up = _int_param("warm_up", warm_up, 0)
        self.probe_burst = _int_param("probe_burst", probe_burst, 1)
        self.max_steps = _int_param("max_steps", max_steps, 1)

    def params(self) -> dict[str, Any]:
        """The controller's parameters (the unused upstream ones are not listed)."""
        return {
            "num_chains": self.num_chains,
            "T": self.T,
            "prune_patience": self.prune_patience,
            "warm_up": self.warm_up,
            "probe_burst": self.probe_burst,
            "max_steps": self.max_steps,
        }

    def batch_solve(self, store: Any, orders: np.ndarray, mode: int) -> tuple[np.ndarray, ...]:
        """The same algorithm as a jitted kernel over all seeds × questions (probing is charged
        according to ``mode``)."""
        answers, tokens, counts = batch_outputs(store, orders)
        prm = np.array(
            [
                self.num_chains,
                self.T,
                self.prune_patience,
                self.warm_up,
                self.probe_burst,
                self.max_steps,
            ],
            np.int64,
        )
        parallel_probe_batch_kernel(
            env_data(store), store.n_branches, orders, int(mode), prm, answers, tokens, counts
        )
        return answers, tokens
