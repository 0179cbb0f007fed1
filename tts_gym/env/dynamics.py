"""Kernels of the atomic MDP: legality, one step, aggregation and the observation.

They add the env's bookkeeping (what was revealed, pruning, episode-local labels) on top of the
replay transitions in :mod:`tts_gym.kernels.transitions`, which they call for every charge.

``book`` is the tuple ``(pruned, shown, fresh, reveal_at, label_of, pool, book_counters)``:

- ``pruned``    uint8 ``[C]``: slot marked inactive;
- ``shown``     int32 ``[C]``: the answer id last revealed at the slot (-1: none);
- ``fresh``     uint8 ``[C]``: 1 if ``shown`` is the answer at the slot's current depth;
- ``reveal_at`` int32 ``[C, Lmax + 2]``: episode-local label revealed at depth d (index
  ``depth + finished``), -1 elsewhere; for rendering;
- ``label_of``  int32 ``[A]``: answer id -> episode-local label (first-reveal order), -1 unseen;
- ``pool``      int32 ``[C]``: revealed final answers of finished slots, in the order revealed;
- ``book_counters`` int64 ``[2]``: ``[labels used, pool size]``.

Performance note: the per-step kernels are inlined at the numba-IR level (``inline="always"``)
into their callers (:func:`step_observe` for the single env, ``vec_step`` for the vector env).
A non-inlined call that takes the ``data``/``ep``/``book`` tuples costs an atomic incref/decref
per array it binds, ~1 µs per call: more than the step itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tts_gym.kernels.transitions import (
    OPENED,
    advance_slot,
    can_advance,
    can_open,
    open_slot,
    read_slot,
)
from tts_gym.kernels.votes import majority, top2

STEP_OK = 0
STEP_ILLEGAL = 1
STEP_ANSWER = 2


def new_book(capacity: int, max_probes: int, max_answers: int) -> tuple[np.ndarray, ...]:
    """Allocate the env bookkeeping arrays (see module docstring)."""
    return (
        np.zeros(capacity, np.uint8),
        np.full(capacity, -1, np.int32),
        np.zeros(capacity, np.uint8),
        np.full((capacity, max_probes + 2), -1, np.int32),
        np.full(max_answers, -1, np.int32),
        np.full(capacity, -1, np.int32),
        np.zeros(2, np.int64),
    )


@njit(cache=True)
def reset_book(book):
    """Clear the bookkeeping for a new episode."""
    book[0][:] = 0
    book[1][:] = -1
    book[2][:] = 0
    book[3][:, :] = -1
    book[4][:] = -1
    book[5][:] = -1
    book[6][:] = 0


@njit(cache=True, inline="always")
def reveal(ep, book, slot):
    """Reveal the answer at ``slot``'s current depth; returns its episode-local label."""
    # Tuples indexed, not unpacked (see the performance note in kernels/transitions.py).
    a = ep[4][slot]
    book[1][slot] = a
    book[2][slot] = 1
    if book[4][a] < 0:
        book[4][a] = book[6][0]
        book[6][0] += 1
    book[3][slot, ep[1][slot] + ep[3][slot]] = book[4][a]
    if ep[3][slot]:
        book[5][book[6][1]] = a
        book[6][1] += 1
    return book[4][a]


@njit(cache=True, inline="always")
def is_legal(n_branches, q, ep, book, action, slots):
    """True if ``action`` may be taken now (ANSWER always may)."""
    if action == 0:
        return True
    if action == 1 or action == 2:
        return can_open(n_branches, q, ep)
    if action < 3 or action >= 3 + 3 * slots:
        return False
    kind = (action - 3) // slots
    slot = (action - 3) % slots
    if slot >= ep[5][OPENED] or book[0][slot]:
        return False
    if kind == 0:
        return can_advance(ep, slot)
    if kind == 1:
        return book[2][slot] == 0
    return ep[3][slot] == 0


@njit(cache=True, inline="always")
def fill_mask(n_branches, q, ep, book, slots, out):
    """Write the int8 legality mask of every action into ``out`` ``[3 + 3 S]``.

    Same rule as :func:`is_legal`, in one pass over the opened slots (O(S)).
    """
    out[:] = 0
    out[0] = 1
    if can_open(n_branches, q, ep):
        out[1] = 1
        out[2] = 1
    pruned, fresh = book[0], book[2]
    finished = ep[3]
    for s in range(min(ep[5][OPENED], slots)):
        if pruned[s]:
            continue
        if finished[s] == 0:
            out[3 + s] = 1
            out[3 + 2 * slots + s] = 1
        if fresh[s] == 0:
            out[3 + slots + s] = 1


@njit(cache=True, inline="always")
def env_step(data, n_branches, q, ep, book, action, slots, mode, reveal_on_advance, probe_cost):
    """Apply one atomic action.

    Returns:
        ``(status, charge_tokens)``; status is STEP_OK, STEP_ILLEGAL (nothing changed) or
        STEP_ANSWER (the episode ends; nothing is charged). PROBE charges ``probe_cost``
        tokens (κ_probe, 0 in the paper).
    """
    if not is_legal(n_branches, q, ep, book, action, slots):
        return STEP_ILLEGAL, np.int64(0)
    if action == 0:
        return STEP_ANSWER, np.int64(0)
    fresh = book[2]
    if action == 1:
        slot, _a, charge, _fin = open_slot(data, q, ep, mode)
        fresh[slot] = 0
        if reveal_on_advance:
            reveal(ep, book, slot)
        return STEP_OK, charge
    if action == 2:
        slot, _a, charge = read_slot(data, q, ep)
        reveal(ep, book, slot)
        return STEP_OK, charge
    kind = (action - 3) // slots
    slot = (action - 3) % slots
    if kind == 0:
        _a, charge, _fin = advance_slot(data, q, ep, slot, mode)
        fresh[slot] = 0
        if reveal_on_advance:
            reveal(ep, book, slot)
        return STEP_OK, charge
    if kind == 1:
        reveal(ep, book, slot)
        ep[5][1] += probe_cost
        return STEP_OK, np.int64(probe_cost)
    book[0][slot] = 1
    return STEP_OK, np.int64(0)


@njit(cache=True, inline="always")
def aggregate(ep, book, counts):
    """The env's own answer at ANSWER: majority of the revealed final answers (pool), else of
    the latest revealed answers of unpruned slots (slot order), else -1.

    ``counts`` is an int64 zero scratch array of length >= the question's answer count.
    """
    pool, book_counters = book[5], book[6]
    if book_counters[1] > 0:
        return majority(pool, book_counters[1], counts)
    opened = ep[5][OPENED]
    live = np.empty(opened, np.int32)
    n = 0
    for s in range(opened):
        if book[0][s] == 0 and book[1][s] >= 0:
            live[n] = book[1][s]
            n += 1
    return majority(live, n, counts)


@njit(cache=True, inline="always")
def fill_observation(
    ep, book, conf_table, counts, status, depth, label, fresh, agree, totals, vote
):
    """Fill a fresh observation (only revealed information) into the given arrays.

    Per slot (``[S]``): ``status`` int8 (0 unopened, 1 active, 2 finished, 3 pruned),
    ``depth`` int32 (intervals consumed), ``label`` int32 (episode-local label of the latest
    revealed answer, -1 none), ``fresh`` int8 (label is at the current depth), ``agree`` int32
    (unpruned slots showing the same label, itself included; 0 if none). ``totals`` int32 ``[4]``:
    opened, active, finished, pruned slots. ``vote`` float32 ``[5]``: tokens charged so far,
    revealed finished answers (pool size), leader count c1, runner-up count c2,
    beta_conf(c1, c2).
    """
    opened = ep[5][OPENED]
    pruned, shown, fresh_b, label_of, pool, book_counters = (
        book[0],
        book[1],
        book[2],
        book[4],
        book[5],
        book[6],
    )
    n_active = 0
    n_finished = 0
    n_pruned = 0
    n_slots = status.shape[0]
    # unopened slots: constants in straight loops (vectorised), the opened ones below
    status[opened:] = 0
    depth[opened:] = 0
    label[opened:] = -1
    fresh[opened:] = 0
    agree[opened:] = 0
    for s in range(min(opened, n_slots)):
        if pruned[s]:
            status[s] = 3
            n_pruned += 1
        elif ep[3][s]:
            status[s] = 2
            n_finished += 1
        else:
            status[s] = 1
            n_active += 1
        depth[s] = ep[1][s]
        label[s] = label_of[shown[s]] if shown[s] >= 0 else -1
        fresh[s] = fresh_b[s]
    # agree: count each label over unpruned opened slots (counts is a zeroed scratch; labels
    # are episode-local ids < the question's answer count), then read and clear.
    for s in range(opened):
        if label[s] >= 0 and not pruned[s]:
            counts[label[s]] += 1
    for s in range(min(opened, n_slots)):
        agree[s] = counts[label[s]] if label[s] >= 0 else 0
    for s in range(opened):
        if label[s] >= 0:
            counts[label[s]] = 0
    totals[0] = opened
    totals[1] = n_active
    totals[2] = n_finished
    totals[3] = n_pruned
    _w, c1, c2 = top2(pool, book_counters[1], counts)
    vote[0] = ep[5][1]
    vote[1] = book_counters[1]
    vote[2] = c1
    vote[3] = c2
    vote[4] = conf_table[c1, c2]


@njit(cache=True)
def step_observe(
    data,
    n_branches,
    q,
    ep,
    book,
    action,
    slots,
    mode,
    reveal_on_advance,
    probe_cost,
    conf_table,
    counts,
    status,
    depth,
    label,
    fresh,
    agree,
    totals,
    vote,
    mask,
):
    """One env step in one call: :func:`env_step`, then the observation and the mask.

    The output arrays (see :func:`fill_observation`; ``mask`` int8 ``[3 + 3 S]``) are filled
    for the state after the step (unchanged after an illegal action).

    Returns:
        ``(step_status, charge_tokens, tokens_so_far, opened)``.
    """
    st, charge = env_step(
        data, n_branches, q, ep, book, action, slots, mode, reveal_on_advance, probe_cost
    )
    fill_observation(ep, book, conf_table, counts, status, depth, label, fresh, agree, totals, vote)
    fill_mask(n_branches, q, ep, book, slots, mask)
    return st, charge, ep[5][1], ep[5][OPENED]


@njit(cache=True)
def observe(
    n_branches,
    q,
    ep,
    book,
    slots,
    conf_table,
    counts,
    status,
    depth,
    label,
    fresh,
    agree,
    totals,
    vote,
    mask,
):
    """The observation and mask of the current state (as :func:`step_observe`, no step)."""
    fill_observation(ep, book, conf_table, counts, status, depth, label, fresh, agree, totals, vote)
    fill_mask(n_branches, q, ep, book, slots, mask)
    return ep[5][1], ep[5][OPENED]
