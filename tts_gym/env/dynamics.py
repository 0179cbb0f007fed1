"""Kernels of the atomic MDP: legality, one step, aggregation and the observation.

They add the env's bookkeeping (what was revealed, pruning, episode-local labels) on top of the
replay transitions in :mod:`tts_gym.kernels.transitions`, which they call for every charge.

``book`` is the tuple declared in :mod:`tts_gym.kernels.state` (``BOOK_FIELDS``; read as
``book[BOOK_SHOWN][slot]``, counters ``book[BOOK_COUNTERS][POOL_SIZE]``):

- ``pruned``    uint8 ``[C]``: slot marked inactive;
- ``shown``     int32 ``[C]``: the answer id last revealed at the slot (-1: none);
- ``fresh``     uint8 ``[C]``: 1 if ``shown`` is the answer at the slot's current depth;
- ``reveal_at`` int32 ``[C, Lmax + 2]``: episode-local label revealed at depth d (index
  ``depth + finished``), -1 elsewhere; for rendering;
- ``label_of``  int32 ``[A]``: answer id -> episode-local label (first-reveal order), -1 unseen;
- ``pool``      int32 ``[C]``: revealed final answers of finished slots, in the order revealed;
- ``counters``  int64 ``[2]``: ``[labels used, pool size]``;
- then the observation, kept current by every :func:`env_step` (``OBS_AGREE`` ... ``OBS_VOTE``,
  in the Dict space's key order ``OBS_KEYS``): ``agree`` int32 ``[C]``, ``depth`` int32 ``[C]``,
  ``fresh`` int8 ``[C]``, ``label`` int32 ``[C]``, ``status`` int8 ``[C]``, ``totals`` int32
  ``[4]``, ``vote`` float32 ``[5]`` (meanings in :func:`update_view`);
- ``agree_by_label`` int32 ``[A]``: unpruned opened slots showing each episode-local label;
- ``mask`` int8 ``[3 + 3 C]`` (``BOOK_MASK``, alias ``MASK``): the legality mask of the current
  state (:func:`fill_mask`'s rule), ANSWER only once ANSWER was taken.

To add a state array or an observation key, follow the steps in :mod:`tts_gym.kernels.state`'s
docstring (a table row there, then its use here; for a key also ``env/params.py``).

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

from tts_gym.kernels.state import (
    BOOK_AGREE_BY_LABEL,
    BOOK_COUNTERS,
    BOOK_FRESH,
    BOOK_LABEL_OF,
    BOOK_MASK,
    BOOK_POOL,
    BOOK_PRUNED,
    BOOK_REVEAL_AT,
    BOOK_SHOWN,
    COST,
    EP_COUNTERS,
    EP_CURRENT,
    EP_DEPTH,
    EP_FINISHED,
    LABELS_USED,
    OBS_AGREE,
    OBS_DEPTH,
    OBS_FRESH,
    OBS_KEYS,
    OBS_LABEL,
    OBS_STATUS,
    OBS_TOTALS,
    OBS_VOTE,
    OPENED,
    POOL_SIZE,
    VIEW,
    reset_book,
    state_views,
)
from tts_gym.kernels.state import MASK as MASK  # re-exported (their home before the state table)
from tts_gym.kernels.state import new_book as new_book
from tts_gym.kernels.transitions import (
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



def observation_copy(book: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """The observation kept in ``book`` as a dict of new arrays (Gymnasium's checker wants new
    objects every call). Works for one env's book and for the vector env's stacked book
    (leading axis N)."""
    return {k: book[VIEW + i].copy() for i, k in enumerate(OBS_KEYS)}


@njit(cache=True, inline="always")
def stacked_views(ep_arrays, book_arrays, i):
    """``(ep, book)`` of env ``i`` from the episode and bookkeeping tuples stacked on a leading
    axis (the vector env's and the broker's layout): views, no copies."""
    return state_views(ep_arrays, i), state_views(book_arrays, i)


@njit(cache=True, inline="always")
def reveal(ep, book, slot):
    """Reveal the answer at ``slot``'s current depth; returns its episode-local label."""
    # Tuples indexed, not unpacked (see the performance note in kernels/transitions.py).
    a = ep[EP_CURRENT][slot]
    book[BOOK_SHOWN][slot] = a
    book[BOOK_FRESH][slot] = 1
    if book[BOOK_LABEL_OF][a] < 0:
        book[BOOK_LABEL_OF][a] = book[BOOK_COUNTERS][LABELS_USED]
        book[BOOK_COUNTERS][LABELS_USED] += 1
    book[BOOK_REVEAL_AT][slot, ep[EP_DEPTH][slot] + ep[EP_FINISHED][slot]] = (
        book[BOOK_LABEL_OF][a]
    )
    if ep[EP_FINISHED][slot]:
        book[BOOK_POOL][book[BOOK_COUNTERS][POOL_SIZE]] = a
        book[BOOK_COUNTERS][POOL_SIZE] += 1
    return book[BOOK_LABEL_OF][a]


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
    if slot >= ep[EP_COUNTERS][OPENED] or book[BOOK_PRUNED][slot]:
        return False
    if kind == 0:
        return can_advance(ep, slot)
    if kind == 1:
        return book[BOOK_FRESH][slot] == 0
    return ep[EP_FINISHED][slot] == 0


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
    if book[BOOK_PRUNED][slot]:
        live = 0
        probe = 0
    else:
        live = 1 if ep[EP_FINISHED][slot] == 0 else 0
        probe = 1 if book[BOOK_FRESH][slot] == 0 else 0
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
    for s in range(min(ep[EP_COUNTERS][OPENED], slots)):
        mask_slot(ep, book, slots, s, out)


@njit(cache=True, inline="always")
def update_mask(n_branches, q, ep, book, slots, slot):
    """Bring the kept mask up to date after a step that changed only ``slot`` (and maybe the
    number of opened slots): :func:`fill_mask`'s rule, for the entries that can change."""
    mask_opening(n_branches, q, ep, book[BOOK_MASK])
    mask_slot(ep, book, slots, slot, book[BOOK_MASK])


@njit(cache=True)
def reset_state(n_branches, q, ep, book, slots):
    """Start an episode of question ``q``: clear ``ep`` (its order is kept) and ``book``, and
    compute the first mask."""
    reset_episode(ep)
    reset_book(book)
    fill_mask(n_branches, q, ep, book, slots, book[BOOK_MASK])


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
        book[BOOK_MASK][:] = 0
        book[BOOK_MASK][0] = 1  # the episode is over: only ANSWER (what the envs report)
        return STEP_ANSWER, np.int64(0)
    fresh = book[BOOK_FRESH]
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
            ep[EP_COUNTERS][COST] += probe_cost
            charge = np.int64(probe_cost)
        else:
            book[BOOK_PRUNED][slot] = 1
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
    old_status = book[OBS_STATUS][slot]
    old_label = book[OBS_LABEL][slot]
    if book[BOOK_PRUNED][slot]:
        new_status = 3
    elif ep[EP_FINISHED][slot]:
        new_status = 2
    else:
        new_status = 1
    shown = book[BOOK_SHOWN][slot]
    new_label = book[BOOK_LABEL_OF][shown] if shown >= 0 else -1
    book[OBS_STATUS][slot] = new_status
    book[OBS_DEPTH][slot] = ep[EP_DEPTH][slot]
    book[OBS_LABEL][slot] = new_label
    book[OBS_FRESH][slot] = book[BOOK_FRESH][slot]
    opened = ep[EP_COUNTERS][OPENED]
    book[OBS_TOTALS][0] = opened
    if old_status > 0:
        book[OBS_TOTALS][old_status] -= 1
    book[OBS_TOTALS][new_status] += 1
    old_counted = old_label >= 0 and old_status != 3
    new_counted = new_label >= 0 and new_status != 3
    if old_label != new_label or old_counted != new_counted:
        if old_counted:
            book[BOOK_AGREE_BY_LABEL][old_label] -= 1
        if new_counted:
            book[BOOK_AGREE_BY_LABEL][new_label] += 1
        for t in range(opened):
            lab = book[OBS_LABEL][t]
            book[OBS_AGREE][t] = book[BOOK_AGREE_BY_LABEL][lab] if lab >= 0 else 0
    book[OBS_VOTE][0] = ep[EP_COUNTERS][COST]
    pool_size = book[BOOK_COUNTERS][POOL_SIZE]
    if book[OBS_VOTE][1] != pool_size:
        _w, c1, c2 = top2(book[BOOK_POOL], pool_size, counts)
        book[OBS_VOTE][1] = pool_size
        book[OBS_VOTE][2] = c1
        book[OBS_VOTE][3] = c2
        book[OBS_VOTE][4] = conf_table[c1, c2]


@njit(cache=True, inline="always")
def aggregate(ep, book, counts):
    """The env's own answer at ANSWER: majority of the revealed final answers (pool), else of
    the latest revealed answers of unpruned slots (slot order), else -1.

    ``counts`` is an int64 zero scratch array of length >= the question's answer count (zero
    again on return). Allocates nothing, so it also compiles in kernels built without numba's
    reference counting (``_nrt=False``, see ``vec_step``).
    """
    pool, book_counters = book[BOOK_POOL], book[BOOK_COUNTERS]
    if book_counters[POOL_SIZE] > 0:
        return majority(pool, book_counters[POOL_SIZE], counts)
    # majority (first-occurrence tie rule) over the shown answers of unpruned slots, in slot
    # order, without building that list
    opened = ep[EP_COUNTERS][OPENED]
    pruned, shown = book[BOOK_PRUNED], book[BOOK_SHOWN]
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
