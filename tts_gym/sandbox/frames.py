"""The broker's one BATCH parser: every length, type, count and index checked before use.

A BATCH frame comes from the candidate process, so it is hostile input. Both of the broker's
readers (the compiled fast loop, :func:`tts_gym.sandbox.serve_loop.serve_loop`, and the
Python reader, :meth:`tts_gym.sandbox.broker.Broker.handle`) call :func:`parse_batch` on the
payload and act only on what it accepted, so they refuse exactly the same frames. A refused
frame is the candidate's fault: the unit fails as a ``protocol`` error with the one line of
:func:`describe` (what was wrong, where), never an exception of the broker.

Layout (:mod:`tts_gym.sandbox.child.wire`), all integers little-endian::

    u8 type (3) | u32 n | u32 n_strings | n x (i32 episode, i32 op, i32 arg)
    | u32 n_strings | u32 offsets[n_strings + 1] | UTF-8 blob

What is checked, in this order, before anything is read at an unchecked position:

- the header is complete, its type byte is BATCH, ``1 <= n <= max_entries`` (the store's bound:
  episodes x (1 + notes per episode), :func:`max_batch_entries`) and ``n_strings <= n`` (each
  string belongs to one answer, note or failure);
- the entries fit in the payload; each names an episode in ``[0, n_eps)`` and a known op; a
  string index (answer, note, failure) is in ``[0, n_strings)``, or -1 for "no answer"; the
  only exception is the "did not load" report (``(-1, fail, 0)`` alone, :data:`FR_SETUP`);
- the string table's count equals the header's, its offsets start at 0, never decrease, every
  string is at most :data:`~tts_gym.sandbox.child.wire.MAX_STRING_BYTES` (an answer at most
  :data:`MAX_ANSWER_BYTES`, a note at most :data:`MAX_NOTE_BYTES`), and the table ends exactly
  at the end of the payload (no byte missing, none after it).

One pass over the payload: linear in its size, no allocation (the caller's scratch arrays are
filled; when they are too small the parser says so, :data:`FR_SPACE`, after the counts were
checked against the bound, so the caller grows them to at most ``max_entries``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tts_gym.sandbox.child.wire import (
    BATCH,
    MAX_NOTE_CHARS,
    MAX_NOTES_PER_EPISODE,
    MAX_STRING_BYTES,
    OP_ANSWER,
    OP_FAIL,
    OP_NOTE,
    OP_PROBE_NEW,
)
from tts_gym.store.limits import MAX_ANSWER_CHARS

HEAD = 9
"""Bytes of the header: type, u32 n, u32 n_strings."""

MAX_ANSWER_BYTES = 4 * (MAX_ANSWER_CHARS + 1)
"""Largest answer string in a BATCH (bytes): the store's answer bound plus one character (the
runtime cuts a longer answer there, so the broker can tell it was over), 4 bytes each."""

MAX_NOTE_BYTES = MAX_NOTE_CHARS
"""Largest note in a BATCH (bytes): the runtime's notes are ASCII JSON of at most this many
characters."""

# results of parse_batch (codes > FR_OK are protocol errors, except FR_SPACE and FR_SETUP)
FR_OK = 0
FR_SHORT = 1
FR_TYPE = 2
FR_COUNT = 3
FR_STRINGS = 4
FR_BODY = 5
FR_EPISODE = 6
FR_OP = 7
FR_ARG = 8
FR_TABLE = 9
FR_OFFSETS = 10
FR_LONG = 11
FR_TRAILING = 12
FR_SPACE = 13
"""Not an error: the scratch arrays hold fewer than ``n`` entries (``n`` is in the result)."""
FR_SETUP = 14
"""Not an error in the first frame after START: the "did not load" report."""

_MESSAGES = {
    FR_SHORT: "a batch of {value} bytes, shorter than its 9-byte header",
    FR_TYPE: "message type {value} where a batch was expected",
    FR_COUNT: "a batch announcing {value} entries (1 to {limit} allowed)",
    FR_STRINGS: "a batch announcing {value} strings for fewer entries",
    FR_BODY: "a batch whose {value} entries do not fit in its payload",
    FR_EPISODE: "entry {where}: episode {value} out of range ({limit} episodes)",
    FR_OP: "entry {where}: unknown op {value}",
    FR_ARG: "entry {where}: string index {value} out of range ({limit} strings)",
    FR_TABLE: "a string table that does not match its header (count {value})",
    FR_OFFSETS: "string {where}: offset {value} out of order or past the payload",
    FR_LONG: "string {where}: {value} bytes, longer than its kind allows ({limit})",
    FR_TRAILING: "{value} bytes after the end of the batch",
    FR_SETUP: "entry 0: episode -1 out of range ({limit} episodes)",
}


def max_batch_entries(n_eps: int) -> int:
    """The most entries a BATCH of a unit of ``n_eps`` episodes can hold: per episode, its
    notes (at most ``MAX_NOTES_PER_EPISODE`` over the whole episode) and one request, answer
    or failure (the turn order, :func:`~tts_gym.sandbox.kernel.take_turns`)."""
    return max(1, int(n_eps)) * (1 + MAX_NOTES_PER_EPISODE)


def describe(code: int, value: int, where: int, limit: int) -> str:
    """The one line naming what was wrong with a refused frame (``parse_batch``'s result)."""
    text = _MESSAGES.get(int(code), "a malformed batch (code {value})")
    return text.format(value=int(value), where=int(where), limit=int(limit))


@njit(cache=True, inline="always")
def _u32(buf, p):
    return (np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8) | (np.int64(buf[p + 2]) << 16)
            | (np.int64(buf[p + 3]) << 24))


@njit(cache=True, inline="always")
def _i32(buf, p):
    v = _u32(buf, p)
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@njit(cache=True, inline="always")
def _check_entries(buf, n, n_str, n_eps, entries):
    """Check and copy the entries: ``(code, n_others, setup, where, value)``."""
    setup = False
    n_others = 0
    for j in range(n):
        p = HEAD + 12 * j
        e = _i32(buf, p)
        op = _i32(buf, p + 4)
        arg = _i32(buf, p + 8)
        if op < OP_PROBE_NEW or op > OP_FAIL:
            return FR_OP, n_others, setup, j, op
        if e < 0 or e >= n_eps:
            if not (e == -1 and n == 1 and op == OP_FAIL and arg == 0 and n_str == 1):
                return FR_EPISODE, n_others, setup, j, e
            setup = True
        if op >= OP_ANSWER:
            n_others += 1
            if arg >= n_str or arg < -1 or (arg == -1 and op != OP_ANSWER):
                return FR_ARG, n_others, setup, j, arg
        entries[j, 0] = e
        entries[j, 1] = op
        entries[j, 2] = arg
    return FR_OK, n_others, setup, 0, 0


@njit(cache=True, inline="always")
def _check_table(buf, length, table, n_str, offsets):
    """Check the string table at ``table`` and write its absolute offsets:
    ``(code, where, value)``."""
    if _u32(buf, table) != n_str:
        return FR_TABLE, 0, _u32(buf, table)
    start = table + 4 + 4 * (n_str + 1)
    prev = np.int64(0)
    for k in range(n_str + 1):
        off = _u32(buf, table + 4 + 4 * k)
        if (k == 0 and off != 0) or off < prev or start + off > length:
            return FR_OFFSETS, k, off
        if k > 0 and off - prev > MAX_STRING_BYTES:
            return FR_LONG, k - 1, off - prev
        offsets[k] = start + off
        prev = off
    if offsets[n_str] != length:
        return FR_TRAILING, 0, length - offsets[n_str]
    return FR_OK, 0, 0


@njit(cache=True, inline="always")
def _check_kinds(n, entries, offsets):
    """Answers and notes within their own bounds: ``(code, where, value)``."""
    for j in range(n):
        op = entries[j, 1]
        arg = entries[j, 2]
        if (op == OP_ANSWER and arg >= 0) or op == OP_NOTE:
            size = offsets[arg + 1] - offsets[arg]
            if size > (MAX_ANSWER_BYTES if op == OP_ANSWER else MAX_NOTE_BYTES):
                return FR_LONG, arg, size
    return FR_OK, 0, 0


@njit(cache=True, nogil=True)
def parse_batch(buf, length, n_eps, max_entries, entries, offsets):
    """Check a BATCH payload and copy out its entries and string offsets.

    Args:
        buf: uint8 array holding the payload in ``buf[:length]`` (no length prefix).
        length: Bytes of the payload.
        n_eps: Episodes of the unit (valid episode indices are ``0 .. n_eps - 1``).
        max_entries: Most entries allowed (:func:`max_batch_entries`).
        entries: int32 ``[cap, 3]`` scratch, filled with ``(episode, op, arg)`` rows.
        offsets: int64 ``[cap + 1]`` scratch, filled with the absolute positions in ``buf``
            of the strings' starts and of the table's end (``n_strings + 1`` values).

    Returns:
        ``(code, n, n_strings, n_others, where, value)``: ``code`` is :data:`FR_OK`,
        :data:`FR_SETUP`, :data:`FR_SPACE` or an error; ``n_others`` counts the answer, note
        and failure entries; for an error, ``where`` is the entry or string at fault and
        ``value`` the offending number (:func:`describe`).
    """
    length = min(length, buf.shape[0])
    if length < HEAD:
        return FR_SHORT, 0, 0, 0, 0, length
    if buf[0] != BATCH:
        return FR_TYPE, 0, 0, 0, 0, np.int64(buf[0])
    n = _u32(buf, 1)
    n_str = _u32(buf, 5)
    if n == 0 or n > max_entries:
        return FR_COUNT, 0, 0, 0, 0, n
    if n_str > n:
        return FR_STRINGS, 0, 0, 0, 0, n_str
    table = HEAD + 12 * n
    if table + 8 + 4 * n_str > length:
        return FR_BODY, 0, 0, 0, 0, n
    if n > entries.shape[0] or n_str + 1 > offsets.shape[0]:
        return FR_SPACE, n, n_str, 0, 0, n
    code, n_others, setup, where, value = _check_entries(buf, n, n_str, n_eps, entries)
    if code == FR_OK:
        code, where, value = _check_table(buf, length, table, n_str, offsets)
    if code == FR_OK:
        code, where, value = _check_kinds(n, entries, offsets)
    if code == FR_OK and setup:
        code = FR_SETUP
    return code, n, n_str, n_others, where, value


def limit_of(code: int, n_eps: int, max_entries: int, where: int, entries: np.ndarray,
             n_str: int) -> int:
    """The bound a refused frame broke, for :func:`describe`."""
    if code == FR_COUNT:
        return max_entries
    if code in (FR_EPISODE, FR_SETUP):
        return n_eps
    if code == FR_ARG:
        return n_str
    if code == FR_LONG:
        ops = entries[:, 1]
        args = entries[:, 2]
        if np.any((ops == OP_ANSWER) & (args == where)):
            return MAX_ANSWER_BYTES
        if np.any((ops == OP_NOTE) & (args == where)):
            return MAX_NOTE_BYTES
        return MAX_STRING_BYTES
    return 0
