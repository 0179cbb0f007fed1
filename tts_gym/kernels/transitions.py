"""Replay transitions as module-level numba kernels (the replay semantics: docs/env.md).

One set of kernels serves the single env, the vector env and every batch evaluator.

Shapes and units. ``data`` is the tuple ``(probe_ans, n_probes, tokens, final_ans, probe_freq)``
of a :class:`~tts_gym.store.ReplayStore`: int32 ``[Q, N, Lmax]``, int32 ``[Q, N]``, int64
``[Q, N]`` (tokens), int32 ``[Q, N]``, int64 ``[Q]`` (tokens per probe interval Δ).

An episode (one question ``q`` under one branch order) is the tuple ``ep = (order, depth, spent,
finished, current, counters)``:

- ``order``    int32 ``[N]``: branch index opened at slot i is ``order[i]``;
- ``depth``    int32 ``[C]``: probe intervals consumed by slot i (its ``k``);
- ``spent``    int64 ``[C]``: tokens charged to slot i;
- ``finished`` uint8 ``[C]``: 1 once slot i returned its final answer;
- ``current``  int32 ``[C]``: the answer id at slot i's current depth (hidden until revealed);
- ``counters`` int64 ``[2]``: ``[opened, total tokens charged]``.

C (slot capacity) is at most N. Kernels do not check legality; callers do (see
:func:`can_open`, :func:`can_advance`).

Performance note: the kernels index the tuples (``ep[1][slot]``) instead of unpacking them into
local names. In numba every local array reference costs an atomic incref/decref pair, and
unpacking the 6-array episode tuple made each advance ~8x slower (benchmarks/bench_env.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OPENED = 0
COST = 1

MODE_REFERENCE = 0
"""The published charging: every interval costs Δ, the finishing advance max(0, T - spent)."""
MODE_EXACT = 1
"""Intervals are charged only up to T, so probing a branch to the end costs exactly T."""

COST_MODES = {"reference": MODE_REFERENCE, "exact": MODE_EXACT}


@njit(cache=True)
def advance_branch(data, q, branch, depth, spent, mode):
    """Advance one branch by one probe interval.

    Args:
        data: store arrays tuple (see module docstring).
        q, branch: question and branch index.
        depth: intervals already consumed (k); spent: tokens already charged to it.
        mode: MODE_REFERENCE or MODE_EXACT.

    Returns:
        ``(answer_id, charge_tokens, new_depth, finished)``.
    """
    # data = (probe_ans, n_probes, tokens, final_ans, probe_freq), indexed, not unpacked.
    total = data[2][q, branch]
    if depth < data[1][q, branch]:
        delta = data[4][q]
        if mode == MODE_EXACT:
            charge = min(delta, max(np.int64(0), total - spent))
        else:
            charge = delta
        return data[0][q, branch, depth], charge, depth + 1, False
    return data[3][q, branch], max(np.int64(0), total - spent), depth, True


@njit(cache=True)
def advance_slot(data, q, ep, slot, mode):
    """``probe_more``: advance an opened, unfinished slot once; charge it.

    Returns:
        ``(answer_id, charge_tokens, finished)``.
    """
    # ep = (order, depth, spent, finished, current, counters), indexed, not unpacked.
    ans, charge, new_depth, fin = advance_branch(
        data, q, ep[0][slot], ep[1][slot], ep[2][slot], mode
    )
    ep[1][slot] = new_depth
    ep[2][slot] += charge
    ep[4][slot] = ans
    if fin:
        ep[3][slot] = 1
    ep[5][COST] += charge
    return ans, charge, fin


@njit(cache=True)
def open_slot(data, q, ep, mode):
    """``probe_new``: open the next branch of the order as a new slot and advance it once.

    Returns:
        ``(slot, answer_id, charge_tokens, finished)``.
    """
    slot = ep[5][OPENED]
    ep[5][OPENED] = slot + 1
    ep[1][slot] = 0
    ep[2][slot] = 0
    ep[3][slot] = 0
    ans, charge, fin = advance_slot(data, q, ep, slot, mode)
    return slot, ans, charge, fin


@njit(cache=True)
def read_slot(data, q, ep):
    """``full_read``: open the next branch and read it to the end at exactly T tokens.

    Returns:
        ``(slot, final_answer_id, charge_tokens)``.
    """
    slot = ep[5][OPENED]
    ep[5][OPENED] = slot + 1
    b = ep[0][slot]
    charge = data[2][q, b]
    ep[1][slot] = data[1][q, b]
    ep[2][slot] = charge
    ep[3][slot] = 1
    ep[4][slot] = data[3][q, b]
    ep[5][COST] += charge
    return slot, data[3][q, b], charge


@njit(cache=True)
def reset_episode(ep):
    """Clear an episode's slot arrays and counters (the order is left as set)."""
    ep[1][:] = 0
    ep[2][:] = 0
    ep[3][:] = 0
    ep[4][:] = -1
    ep[5][:] = 0


@njit(cache=True, inline="always")
def can_open(n_branches, q, ep):
    """True while a fresh branch is left and a slot is free."""
    opened = ep[5][OPENED]
    return opened < n_branches[q] and opened < ep[1].shape[0]


@njit(cache=True, inline="always")
def can_advance(ep, slot):
    """True if ``slot`` is opened and not finished."""
    return 0 <= slot < ep[5][OPENED] and ep[3][slot] == 0


def env_data(store) -> tuple[np.ndarray, ...]:
    """The ``data`` tuple of a :class:`~tts_gym.store.ReplayStore` that kernels take."""
    return (store.probe_ans, store.n_probes, store.tokens, store.final_ans, store.probe_freq)


@njit(cache=True)
def new_episode(width, capacity):
    """Allocate an episode tuple for ``width`` branches (N) and ``capacity`` slots (C <= N).

    Callable from Python and from other kernels (batch controllers allocate with it too).
    """
    return (
        np.arange(width).astype(np.int32),
        np.zeros(capacity, np.int32),
        np.zeros(capacity, np.int64),
        np.zeros(capacity, np.uint8),
        np.full(capacity, -1, np.int32),
        np.zeros(2, np.int64),
    )
