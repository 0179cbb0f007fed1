"""The broker's batched primitives: one jitted call answers a round of requests.

Each request is one of the paper's primitives (AutoTTS, 2026) for one episode, carried out as
the same atomic env steps the question handle takes (:class:`tts_gym.handle.QuestionHandle`),
through the env's own kernel :func:`tts_gym.env.dynamics.env_step`, so there is one dynamics:

- ``probe_new``: BRANCH, then PROBE of the new slot (unless the env reveals on advance);
- ``probe_more(slot)``: CONTINUE(slot), then PROBE(slot);
- ``full_read``: SAMPLE;
- ``prune(slot)``: PRUNE(slot).

The ops and statuses are :mod:`tts_gym.sandbox.child.wire`'s (one definition for both ends).
Episode state is the vector env's layout: the episode tuple and the bookkeeping tuple of
:mod:`tts_gym.env.dynamics`, each array with a leading axis of episodes (all of one store).
Legality is checked here, whatever the env's ``illegal_action`` setting: an illegal request
changes nothing and gets a status saying why.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numba import njit

try:  # numba's C fingerprint of a value's type (what its dispatcher caches typing by)
    from numba._dispatcher import compute_fingerprint
except ImportError:  # pragma: no cover - another numba layout: type every broker's first call

    def compute_fingerprint(value: Any) -> bytes:  # type: ignore[misc]  # numba's is positional-only
        raise TypeError("no fingerprint")

from tts_gym.env.dynamics import env_step, reset_state, stacked_views
from tts_gym.kernels.state import (
    BOOK_LABEL_OF,
    BOOK_PRUNED,
    BOOK_SHOWN,
    COST,
    EP_COUNTERS,
    EP_FINISHED,
    OPENED,
)
from tts_gym.kernels.transitions import can_open
from tts_gym.sandbox.child.wire import (  # the pipe's codes, frozen into the kernels
    OP_ANSWER,
    OP_FAIL,
    OP_FULL_READ,
    OP_NOTE,
    OP_PROBE_NEW,
    OP_PRUNE,
    ST_BAD_SLOT,
    ST_FINISHED,
    ST_NONE_LEFT,
    ST_NOT_OPENED,
    ST_OK,
    ST_PRUNED,
    ST_RECORDED,
    ST_STEP_LIMIT,
)


@njit(cache=True)
def broker_reset(n_branches, qs, ep_arrays, book_arrays, slots):
    """Start every episode of a group (orders already written into ``ep_arrays[EP_ORDER]``)."""
    for i in range(qs.shape[0]):
        ep, book = stacked_views(ep_arrays, book_arrays, i)
        reset_state(n_branches, qs[i], ep, book, slots)

# per-episode statistics columns
STAT_PROBE_NEW, STAT_PROBE_MORE, STAT_FULL_READ, STAT_PRUNE, STAT_NOTE, STAT_REFUSED = range(6)
# reply columns
R_STATUS, R_LABEL, R_FINISHED, R_SLOT, R_OPENED, R_TOKENS = range(6)
# protocol errors (a broken or hostile candidate runtime)
ERR_NONE = 0
ERR_EPISODE = 1
ERR_OP = 2
ERR_DONE = 3
ERR_STRING = 4
ERR_FLOOD = 5
PROTOCOL_ERRORS = {
    ERR_EPISODE: "episode index out of range",
    ERR_OP: "unknown op",
    ERR_DONE: "a request for an episode that already ended",
    ERR_STRING: "string index out of range",
    ERR_FLOOD: "kept calling primitives long after the episode's limit",
}
FLOOD_MARGIN = 1000
"""Requests refused for the step limit before the unit is stopped (a candidate that ignores
``StepLimitExceeded``)."""


@njit(cache=True, inline="always")
def entry_error(i, op, arg, n_eps, n_strings, done):
    """The protocol error of one batch entry, or ``ERR_NONE``."""
    if i < 0 or i >= n_eps:
        return ERR_EPISODE
    if op < OP_PROBE_NEW or op > OP_FAIL:
        return ERR_OP
    if done[i]:
        return ERR_DONE
    if op >= OP_ANSWER and (arg >= n_strings or arg < -1 or (arg == -1 and op != OP_ANSWER)):
        return ERR_STRING
    return ERR_NONE


@njit(cache=True, inline="always")
def take_turns(entries, order, n_order, blocked):
    """Check that a batch follows the turn order, then advance the order.

    The candidate's scheduler runs its episodes one at a time, in the order of the broker's
    last reply (START's order at first); an episode's entries are its notes, then one request,
    answer or failure, after which the next episode runs. Episodes that did not act (after a
    watchdog abandoned one) run first next time. The broker keeps this record itself, so it
    knows which episodes held the turn without asking the candidate.

    Args:
        entries: int32 ``[n, 3]`` (episode, op, arg) of the batch.
        order: int64 ``[E]``: ``order[:n_order[0]]`` is the turn order of the last reply;
            rewritten in place with the next turn order when the batch follows it.
        n_order: int64 ``[1]``.
        blocked: int64 ``[E]`` scratch.

    Returns:
        -1, or the position in ``entries`` of the first entry out of turn (then nothing is
        changed and ``order[k]`` is the episode whose turn it was, ``k`` from
        :func:`turn_holder`).
    """
    m = n_order[0]
    k = 0
    nb = 0
    for j in range(entries.shape[0]):
        e = entries[j, 0]
        if k >= m or e != order[k]:
            return j
        op = entries[j, 1]
        if op == OP_NOTE:
            continue
        k += 1
        if op <= OP_PRUNE:
            blocked[nb] = e
            nb += 1
    for t in range(m - k):
        order[t] = order[k + t]
    for t in range(nb):
        order[m - k + t] = blocked[t]
    n_order[0] = m - k + nb
    return -1


@njit(cache=True)
def turn_holder(entries, upto, order, n_order):
    """The episode whose turn it was at entry ``upto`` of a batch (:func:`take_turns`), or -1."""
    k = 0
    for j in range(upto):
        if entries[j, 1] != OP_NOTE:
            k += 1
    return order[k] if k < n_order[0] else -1


@njit(cache=True, inline="always")
def plan_primitive(op, arg, q, ep, book, n_branches, slots):
    """``(status, slot, first action, second action)`` of a primitive (-1: no action); the
    legality checks of the question handle, whatever the env's ``illegal_action``."""
    if op == OP_PROBE_NEW or op == OP_FULL_READ:
        if not can_open(n_branches, q, ep):
            return ST_NONE_LEFT, arg, -1, -1
        slot = ep[EP_COUNTERS][OPENED]
        if op == OP_FULL_READ:
            return ST_OK, slot, 2, -1  # SAMPLE
        return ST_OK, slot, 1, 3 + slots + slot  # BRANCH, PROBE(slot)
    if arg < 0 or arg >= slots:
        return ST_BAD_SLOT, arg, -1, -1
    if arg >= ep[EP_COUNTERS][OPENED]:
        return ST_NOT_OPENED, arg, -1, -1
    if book[BOOK_PRUNED][arg]:
        return ST_PRUNED, arg, -1, -1
    if ep[EP_FINISHED][arg]:
        return ST_FINISHED, arg, -1, -1
    if op == OP_PRUNE:
        return ST_OK, arg, 3 + 2 * slots + arg, -1  # PRUNE(slot)
    return ST_OK, arg, 3 + arg, 3 + slots + arg  # CONTINUE(slot), PROBE(slot)


@njit(cache=True, _nrt=False)  # type: ignore[call-overload]  # _nrt: numba-private, unstubbed
def serve_batch(
    data,
    n_branches,
    qs,
    ep_arrays,
    book_arrays,
    entries,
    n_strings,
    done,
    steps,
    stats,
    sent,
    slots,
    mode,
    conf,
    counts,
    max_steps,
    reply,
    answer_ids,
    new_labels,
    others,
):
    """Check and serve one BATCH in order (see the module docstring for the primitives).

    Args:
        data, n_branches: the unit's store (kernel data) and int32 ``[Q]`` branch counts.
        qs: int64 ``[E]`` question of each episode.
        ep_arrays, book_arrays: the episodes' stacked episode and bookkeeping tuples.
        entries: int32 ``[n, 3]`` (episode, op, arg) as the candidate sent them.
        n_strings: entries of the batch's string table.
        done: uint8 ``[E]``, set here when an episode's answer or failure arrives.
        steps: int64 ``[E]`` primitives served per episode; past ``max_steps`` a request gets
            ``ST_STEP_LIMIT`` and changes nothing.
        stats: int64 ``[E, 6]`` counts (probe_new, probe_more, full_read, prune, note,
            refused).
        sent: int64 ``[E]`` labels whose string the candidate already got.
        slots, mode, conf, counts: the env's settings and scratch (``env_step``).
        reply: int64 ``[n, 6]`` output (status, label, finished, slot, opened, tokens).
        answer_ids: int32 ``[n]`` output: the store's answer id revealed by each entry (for
            traces; never sent to the candidate).
        new_labels: int64 ``[n, 3]`` output: (entry, episode, label) of labels revealed for the
            first time, in order.
        others: int64 ``[n]`` output: positions of answer, note and failure entries.

    Returns:
        ``(error, n_new, n_others)``: ``error`` is ``ERR_NONE`` or a protocol error code (the
        batch was served up to the offending entry; for ``ERR_FLOOD`` the episode is in
        ``others[0]``).
    """
    n_new = 0
    n_others = 0
    n_eps = qs.shape[0]
    for j in range(entries.shape[0]):
        i = entries[j, 0]
        op = entries[j, 1]
        arg = entries[j, 2]
        err = entry_error(i, op, arg, n_eps, n_strings, done)
        if err != ERR_NONE:
            return err, n_new, n_others
        reply[j, R_LABEL] = -1
        reply[j, R_FINISHED] = 0
        answer_ids[j] = -1
        if op >= OP_ANSWER:
            if op == OP_NOTE:
                stats[i, STAT_NOTE] += 1
            else:
                done[i] = 1
            others[n_others] = j
            n_others += 1
            reply[j, R_STATUS] = ST_RECORDED
            reply[j, R_SLOT] = -1
            reply[j, R_OPENED] = ep_arrays[EP_COUNTERS][i, OPENED]
            reply[j, R_TOKENS] = ep_arrays[EP_COUNTERS][i, COST]
            continue
        q = qs[i]
        ep, book = stacked_views(ep_arrays, book_arrays, i)
        steps[i] += 1
        if steps[i] > max_steps:
            if steps[i] > max_steps + FLOOD_MARGIN:
                others[0] = i
                return ERR_FLOOD, n_new, n_others
            status, slot, action, second = ST_STEP_LIMIT, arg, -1, -1
        else:
            status, slot, action, second = plan_primitive(op, arg, q, ep, book, n_branches, slots)
        while action >= 0:
            env_step(data, n_branches, q, ep, book, action, slots, mode, False, 0, conf, counts)
            action = second
            second = -1
        reply[j, R_STATUS] = status
        reply[j, R_SLOT] = slot
        if status == ST_OK:
            stats[i, op - OP_PROBE_NEW] += 1
            if op != OP_PRUNE:
                a = book[BOOK_SHOWN][slot]
                lab = book[BOOK_LABEL_OF][a]
                answer_ids[j] = a
                reply[j, R_LABEL] = lab
                reply[j, R_FINISHED] = ep[EP_FINISHED][slot]
                if lab == sent[i]:
                    sent[i] += 1
                    new_labels[n_new, 0] = j
                    new_labels[n_new, 1] = i
                    new_labels[n_new, 2] = lab
                    n_new += 1
        elif status != ST_NONE_LEFT:
            stats[i, STAT_REFUSED] += 1
        reply[j, R_OPENED] = ep[EP_COUNTERS][OPENED]
        reply[j, R_TOKENS] = ep[EP_COUNTERS][COST]
    return ERR_NONE, n_new, n_others


def new_outputs(n: int) -> tuple[np.ndarray, ...]:
    """``(reply, answer_ids, new_labels, others)`` for a batch of ``n`` entries."""
    return (
        np.zeros((n, 6), np.int64),
        np.full(n, -1, np.int32),
        np.zeros((n, 3), np.int64),
        np.zeros(n, np.int64),
    )


def _signature_key(args: tuple) -> tuple | None:
    """What numba's typing of ``args`` depends on, cheaply: numba's own C fingerprint of each
    argument (kind, dtype, ndim, layout, read-only flag; what its dispatcher caches types by).
    None when an argument has no fingerprint."""
    try:
        return tuple(compute_fingerprint(a) for a in args)
    except (TypeError, ValueError, NotImplementedError):
        return None


class FastCall:
    """Calls a numba kernel through the compiled entry point of its arguments' signature:
    ~2 µs instead of ~8 µs of argument typing per call, which matters when a broker answers a
    round of requests in ~20 µs.

    The signature is taken on the first call of each :class:`FastCall` (each broker makes its
    own, warmed up before a candidate's clock starts) and every later call of that object must
    pass arguments of the same types (the broker's calls do: its warm-up calls make their
    arrays the way later calls make them). Entry points are shared, per process, by all
    objects of one kernel whose first calls have the same signature key
    (:func:`_signature_key`), so a new broker pays ~0.1 ms, not numba's Python-level typing of
    ~50 arguments (~3 ms). Falls back to the dispatcher (e.g. under ``NUMBA_DISABLE_JIT``)."""

    _entries: ClassVar[dict[tuple, Any]] = {}

    def __init__(self, dispatcher) -> None:
        self.dispatcher = dispatcher
        self.entry = None

    def __call__(self, *args):
        if self.entry is not None:
            return self.entry(*args)
        typeof = getattr(self.dispatcher, "typeof_pyval", None)
        key = _signature_key(args) if typeof is not None else None
        if key is not None:
            key = (id(self.dispatcher), key)
            entry = self._entries.get(key)
            if entry is not None:
                self.entry = entry
                return entry(*args)
        out = self.dispatcher(*args)
        if typeof is not None:
            got = self.dispatcher.overloads.get(tuple(typeof(a) for a in args))
            self.entry = None if got is None else got.entry_point
            if key is not None and self.entry is not None:
                self._entries[key] = self.entry
        return out
