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
- ``book_counters`` int64 ``[2]``: ``[labels used, pool size]``;
- then the observation, kept current by every :func:`env_step` (indices ``VIEW`` + k, in the
  Dict space's key order ``OBS_KEYS``): ``agree`` int32 ``[C]``, ``depth`` int32 ``[C]``,
  ``fresh`` int8 ``[C]``, ``label`` int32 ``[C]``, ``status`` int8 ``[C]``, ``totals`` int32
  ``[4]``, ``vote`` float32 ``[5]`` (meanings in :func:`update_view`);
- ``agree_by_label`` int32 ``[A]``: unpruned opened slots showing each episode-local label;
- ``mask`` int8 ``[3 + 3 C]`` (index ``MASK``): the legality mask of the current state
  (:func:`fill_mask`'s rule), ANSWER only once ANSWER was taken.

The observation and the mask are maintained incrementally: a step changes one slot, so
:func:`update_view` rewrites that slot, the totals and the vote, and the ``agree`` column only
when the slot's label or pruned state changed, and :func:`update_mask` that slot's three
actions and the two opening ones (tests/test_observation.py checks both against from-scratch
computations after every step). :func:`reset_state` starts an episode with the full
:func:`fill_mask`. Both envs return copies (:func:`observation_copy`).

Performance note: the per-step kernels are inlined at the numba-IR level (``inline="always"``)
into their callers (``vec_step`` for the vector env; the single env calls :func:`env_step`).
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
    reset_episode,
)
from tts_gym.kernels.votes import majority, top2

STEP_OK = 0
STEP_ILLEGAL = 1
STEP_ANSWER = 2


OBS_KEYS = ("agree", "depth", "fresh", "label", "status", "totals", "vote")
"""Observation keys, in the Dict space's (sorted) order and in the book's order."""
VIEW = 7
"""Index in ``book`` of the first observation array (``book[VIEW + k]`` is ``OBS_KEYS[k]``)."""
_AGREE, _DEPTH, _FRESH, _LABEL, _STATUS, _TOTALS, _VOTE, _AGREE_BY_LABEL = range(VIEW, VIEW + 8)
MASK = VIEW + 8
"""Index in ``book`` of the kept legality mask."""


def new_book(capacity: int, max_probes: int, max_answers: int) -> tuple[np.ndarray, ...]:
    """Allocate the env bookkeeping arrays, observation included (see module docstring)."""
    return (
        np.zeros(capacity, np.uint8),
        np.full(capacity, -1, np.int32),
        np.zeros(capacity, np.uint8),
        np.full((capacity, max_probes + 2), -1, np.int32),
        np.full(max_answers, -1, np.int32),
        np.full(capacity, -1, np.int32),
        np.zeros(2, np.int64),
        np.zeros(capacity, np.int32),  # agree
        np.zeros(capacity, np.int32),  # depth
        np.zeros(capacity, np.int8),  # fresh
        np.full(capacity, -1, np.int32),  # label
        np.zeros(capacity, np.int8),  # status
        np.zeros(4, np.int32),  # totals
        np.zeros(5, np.float32),  # vote
        np.zeros(max_answers + 1, np.int32),  # agree_by_label
        np.zeros(3 + 3 * capacity, np.int8),  # mask (set by reset_state)
    )


def observation_copy(book: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """The observation kept in ``book`` as a dict of new arrays (Gymnasium's checker wants new
    objects every call). Works for one env's book and for the vector env's stacked book
    (leading axis N)."""
    return {k: book[VIEW + i].copy() for i, k in enumerate(OBS_KEYS)}


@njit(cache=True, inline="always")
def stacked_views(ep_arrays, book_arrays, i):
    """``(ep, book)`` of env ``i`` from the episode and bookkeeping tuples stacked on a leading
    axis (the vector env's and the broker's layout): views, no copies."""
    ep = (
        ep_arrays[0][i], ep_arrays[1][i], ep_arrays[2][i], ep_arrays[3][i], ep_arrays[4][i],
        ep_arrays[5][i],
    )
    book = (
        book_arrays[0][i], book_arrays[1][i], book_arrays[2][i], book_arrays[3][i],
        book_arrays[4][i], book_arrays[5][i], book_arrays[6][i], book_arrays[7][i],
        book_arrays[8][i], book_arrays[9][i], book_arrays[10][i], book_arrays[11][i],
        book_arrays[12][i], book_arrays[13][i], book_arrays[14][i], book_arrays[15][i],
    )
    return ep, book


@njit(cache=True)
def reset_book(book):
    """Clear the bookkeeping (and the observation) for a new episode."""
    book[0][:] = 0
    book[1][:] = -1
    book[2][:] = 0
    book[3][:, :] = -1
    book[4][:] = -1
    book[5][:] = -1
    book[6][:] = 0
    book[_AGREE][:] = 0
    book[_DEPTH][:] = 0
    book[_FRESH][:] = 0
    book[_LABEL][:] = -1
    book[_STATUS][:] = 0
    book[_TOTALS][:] = 0
    book[_VOTE][:] = 0.0  # beta_conf(0, 0) is 0
    book[_AGREE_BY_LABEL][:] = 0
    book[MASK][:] = 0


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
def mask_opening(n_branches, q, ep, out):
    """Write BRANCH and SAMPLE's legality into ``out`` (:func:`is_legal`'s rule)."""
    can = 1 if can_open(n_branches, q, ep) else 0
    out[1] = can
    out[2] = can


@njit(cache=True, inline="always")
def mask_slot(ep, book, slots, slot, out):
    """Write the legality of CONTINUE, PROBE and PRUNE at an opened ``slot`` into ``out``
    (:func:`is_legal`'s rule)."""
    if book[0][slot]:
        live = 0
        probe = 0
    else:
        live = 1 if ep[3][slot] == 0 else 0
        probe = 1 if book[2][slot] == 0 else 0
    out[3 + slot] = live
    out[3 + slots + slot] = probe
    out[3 + 2 * slots + slot] = live


@njit(cache=True, inline="always")
def fill_mask(n_branches, q, ep, book, slots, out):
    """Write the int8 legality mask of every action into ``out`` ``[3 + 3 S]``.

    Same rule as :func:`is_legal`, in one pass over the opened slots (O(S)).
    """
    out[:] = 0
    out[0] = 1
    mask_opening(n_branches, q, ep, out)
    for s in range(min(ep[5][OPENED], slots)):
        mask_slot(ep, book, slots, s, out)


@njit(cache=True, inline="always")
def update_mask(n_branches, q, ep, book, slots, slot):
    """Bring the kept mask up to date after a step that changed only ``slot`` (and maybe the
    number of opened slots): :func:`fill_mask`'s rule, for the entries that can change."""
    mask_opening(n_branches, q, ep, book[MASK])
    mask_slot(ep, book, slots, slot, book[MASK])


@njit(cache=True)
def reset_state(n_branches, q, ep, book, slots):
    """Start an episode of question ``q``: clear ``ep`` (its order is kept) and ``book``, and
    compute the first mask."""
    reset_episode(ep)
    reset_book(book)
    fill_mask(n_branches, q, ep, book, slots, book[MASK])


@njit(cache=True, inline="always")
def env_step(
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
):
    """Apply one atomic action and bring the observation and mask in ``book`` up to date.

    ``conf_table`` is ``beta_conf_table`` (read for ``vote``), ``counts`` an int64 zero scratch
    array as in :func:`aggregate`.

    Returns:
        ``(status, charge_tokens)``; status is STEP_OK, STEP_ILLEGAL (nothing changed) or
        STEP_ANSWER (the episode ends; nothing is charged or changed). PROBE charges
        ``probe_cost`` tokens (κ_probe, 0 in the paper).
    """
    if not is_legal(n_branches, q, ep, book, action, slots):
        return STEP_ILLEGAL, np.int64(0)
    if action == 0:
        book[MASK][:] = 0
        book[MASK][0] = 1  # the episode is over: only ANSWER (what the envs report)
        return STEP_ANSWER, np.int64(0)
    fresh = book[2]
    if action == 1:
        slot, _a, charge, _fin = open_slot(data, q, ep, mode)
        fresh[slot] = 0
        if reveal_on_advance:
            reveal(ep, book, slot)
    elif action == 2:
        slot, _a, charge = read_slot(data, q, ep)
        reveal(ep, book, slot)
    else:
        kind = (action - 3) // slots
        slot = (action - 3) % slots
        if kind == 0:
            _a, charge, _fin = advance_slot(data, q, ep, slot, mode)
            fresh[slot] = 0
            if reveal_on_advance:
                reveal(ep, book, slot)
        elif kind == 1:
            reveal(ep, book, slot)
            ep[5][1] += probe_cost
            charge = np.int64(probe_cost)
        else:
            book[0][slot] = 1
            charge = np.int64(0)
    update_view(ep, book, conf_table, counts, slot)
    update_mask(n_branches, q, ep, book, slots, slot)
    return STEP_OK, charge


@njit(cache=True, inline="always")
def update_view(ep, book, conf_table, counts, slot):
    """Update the observation kept in ``book`` after a step that changed only ``slot``.

    The observation holds revealed information only. Per slot (``[S]``): ``status`` int8 (0
    unopened, 1 active, 2 finished, 3 pruned), ``depth`` int32 (intervals consumed), ``label``
    int32 (episode-local label of the latest revealed answer, -1 none), ``fresh`` int8 (label
    is at the current depth), ``agree`` int32 (unpruned slots showing the same label, itself
    included; 0 if none). ``totals`` int32 ``[4]``: opened, active, finished, pruned slots.
    ``vote`` float32 ``[5]``: tokens charged so far, revealed finished answers (pool size),
    leader count c1, runner-up count c2, beta_conf(c1, c2) over that pool.

    Labels of other slots never change (a label is fixed at its first reveal), so only this
    slot, the totals, the vote and (if this slot's label or pruned state changed) the
    ``agree`` column need work: O(1), plus O(opened) for ``agree``, plus O(pool) when the
    pool grew.
    """
    old_status = book[_STATUS][slot]
    old_label = book[_LABEL][slot]
    if book[0][slot]:
        new_status = 3
    elif ep[3][slot]:
        new_status = 2
    else:
        new_status = 1
    shown = book[1][slot]
    new_label = book[4][shown] if shown >= 0 else -1
    book[_STATUS][slot] = new_status
    book[_DEPTH][slot] = ep[1][slot]
    book[_LABEL][slot] = new_label
    book[_FRESH][slot] = book[2][slot]
    opened = ep[5][OPENED]
    book[_TOTALS][0] = opened
    if old_status > 0:
        book[_TOTALS][old_status] -= 1
    book[_TOTALS][new_status] += 1
    old_counted = old_label >= 0 and old_status != 3
    new_counted = new_label >= 0 and new_status != 3
    if old_label != new_label or old_counted != new_counted:
        if old_counted:
            book[_AGREE_BY_LABEL][old_label] -= 1
        if new_counted:
            book[_AGREE_BY_LABEL][new_label] += 1
        for t in range(opened):
            lab = book[_LABEL][t]
            book[_AGREE][t] = book[_AGREE_BY_LABEL][lab] if lab >= 0 else 0
    book[_VOTE][0] = ep[5][1]
    pool_size = book[6][1]
    if book[_VOTE][1] != pool_size:
        _w, c1, c2 = top2(book[5], pool_size, counts)
        book[_VOTE][1] = pool_size
        book[_VOTE][2] = c1
        book[_VOTE][3] = c2
        book[_VOTE][4] = conf_table[c1, c2]


@njit(cache=True, inline="always")
def aggregate(ep, book, counts):
    """The env's own answer at ANSWER: majority of the revealed final answers (pool), else of
    the latest revealed answers of unpruned slots (slot order), else -1.

    ``counts`` is an int64 zero scratch array of length >= the question's answer count (zero
    again on return). Allocates nothing, so it also compiles in kernels built without numba's
    reference counting (``_nrt=False``, see ``vec_step``).
    """
    pool, book_counters = book[5], book[6]
    if book_counters[1] > 0:
        return majority(pool, book_counters[1], counts)
    # majority (first-occurrence tie rule) over the shown answers of unpruned slots, in slot
    # order, without building that list
    opened = ep[5][OPENED]
    pruned, shown = book[0], book[1]
    for s in range(opened):
        if pruned[s] == 0 and shown[s] >= 0:
            counts[shown[s]] += 1
    best = -1
    best_c = 0
    for s in range(opened):
        if pruned[s] == 0 and shown[s] >= 0 and counts[shown[s]] > best_c:
            best_c = counts[shown[s]]
            best = shown[s]
    for s in range(opened):
        if shown[s] >= 0:
            counts[shown[s]] = 0
    return best
