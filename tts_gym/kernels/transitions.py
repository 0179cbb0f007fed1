"""Replay transitions as module-level numba kernels (the replay semantics: docs/env.md).

One set of kernels serves the single env, the vector env and every batch evaluator.

Shapes and units. ``data`` is the tuple ``(probe_ans, n_probes, tokens, final_ans, probe_freq)``
of a :class:`~tts_gym.store.ReplayStore`: int32 ``[Q, N, Lmax]``, int32 ``[Q, N]``, int64
``[Q, N]`` (tokens), int32 ``[Q, N]``, int64 ``[Q]`` (tokens per probe interval Δ).

An episode (one question ``q`` under one branch order) is the tuple ``ep = (order, depth, spent,
finished, current, counters)``, declared in :mod:`tts_gym.kernels.state` (``EP_FIELDS``, read as
``ep[EP_DEPTH][slot]``):

- ``order``    int32 ``[N]``: branch index opened at slot i is ``order[i]``;
- ``depth``    int32 ``[C]``: probe intervals consumed by slot i (its ``k``);
- ``spent``    int64 ``[C]``: tokens charged to slot i;
- ``finished`` uint8 ``[C]``: 1 once slot i returned its final answer;
- ``current``  int32 ``[C]``: the answer id at slot i's current depth (hidden until revealed);
- ``counters`` int64 ``[2]``: ``[opened, total tokens charged]``.

C (slot capacity) is at most N. Kernels do not check legality; callers do (see
:func:`can_open`, :func:`can_advance`).

Performance note: the kernels index the tuples (``ep[EP_DEPTH][slot]``, a module-level constant
that numba folds like a literal) instead of unpacking them into local names. In numba every
local array reference costs an atomic incref/decref pair, and
unpacking the 6-array episode tuple made each advance ~8x slower (benchmarks/bench_env.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tts_gym.kernels.state import (
    COST,
    EP_COUNTERS,
    EP_CURRENT,
    EP_DEPTH,
    EP_FINISHED,
    EP_ORDER,
    EP_SPENT,
    OPENED,
)
from tts_gym.kernels.state import new_episode as new_episode  # re-exported: callers' import path
from tts_gym.kernels.state import reset_episode as reset_episode

PROBE_ANS, N_PROBES, TOKENS, FINAL_ANS, PROBE_FREQ = range(5)
"""Positions in the ``data`` tuple (see the module docstring and :func:`env_data`)."""

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
    # data and ep are indexed, not unpacked (module docstring)
    total = data[TOKENS][q, branch]
    if depth < data[N_PROBES][q, branch]:
        delta = data[PROBE_FREQ][q]
        if mode == MODE_EXACT:
            charge = min(delta, max(np.int64(0), total - spent))
        else:
            charge = delta
        return data[PROBE_ANS][q, branch, depth], charge, depth + 1, False
    return data[FINAL_ANS][q, branch], max(np.int64(0), total - spent), depth, True


@njit(cache=True)
def advance_slot(data, q, ep, slot, mode):
    """``probe_more``: advance an opened, unfinished slot once; charge it.

    Returns:
        ``(answer_id, charge_tokens, finished)``.
    """
    ans, charge, new_depth, fin = advance_branch(
        data, q, ep[EP_ORDER][slot], ep[EP_DEPTH][slot], ep[EP_SPENT][slot], mode
    )
    ep[EP_DEPTH][slot] = new_depth
    ep[EP_SPENT][slot] += charge
    ep[EP_CURRENT][slot] = ans
    if fin:
        ep[EP_FINISHED][slot] = 1
    ep[EP_COUNTERS][COST] += charge
    return ans, charge, fin


@njit(cache=True)
def open_slot(data, q, ep, mode):
    """``probe_new``: open the next branch of the order as a new slot and advance it once.

    Returns:
        ``(slot, answer_id, charge_tokens, finished)``.
    """
    slot = ep[EP_COUNTERS][OPENED]
    ep[EP_COUNTERS][OPENED] = slot + 1
    ep[EP_DEPTH][slot] = 0
    ep[EP_SPENT][slot] = 0
    ep[EP_FINISHED][slot] = 0
    ans, charge, fin = advance_slot(data, q, ep, slot, mode)
    return slot, ans, charge, fin


@njit(cache=True)
def read_slot(data, q, ep):
    """``full_read``: open the next branch and read it to the end at exactly T tokens.

    Returns:
        ``(slot, final_answer_id, charge_tokens)``.
    """
    slot = ep[EP_COUNTERS][OPENED]
    ep[EP_COUNTERS][OPENED] = slot + 1
    b = ep[EP_ORDER][slot]
    charge = data[TOKENS][q, b]
    ep[EP_DEPTH][slot] = data[N_PROBES][q, b]
    ep[EP_SPENT][slot] = charge
    ep[EP_FINISHED][slot] = 1
    ep[EP_CURRENT][slot] = data[FINAL_ANS][q, b]
    ep[EP_COUNTERS][COST] += charge
    return slot, data[FINAL_ANS][q, b], charge


@njit(cache=True, inline="always")
def can_open(n_branches, q, ep):
    """True while a fresh branch is left and a slot is free."""
    opened = ep[EP_COUNTERS][OPENED]
    return opened < n_branches[q] and opened < ep[EP_DEPTH].shape[0]


@njit(cache=True, inline="always")
def can_advance(ep, slot):
    """True if ``slot`` is opened and not finished."""
    return 0 <= slot < ep[EP_COUNTERS][OPENED] and ep[EP_FINISHED][slot] == 0


def env_data(store) -> tuple[np.ndarray, ...]:
    """The ``data`` tuple of a :class:`~tts_gym.store.ReplayStore` that kernels take."""
    return (store.probe_ans, store.n_probes, store.tokens, store.final_ans, store.probe_freq)
