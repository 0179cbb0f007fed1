"""The broker's inner loop, compiled: read a round of requests, serve it, write the reply.

A sandboxed unit exchanges one BATCH and one REPLY per round; a probe-heavy candidate needs a
thousand rounds or more. In Python the broker's side of a round (frame reading, decoding, a
kernel call, encoding, writing) cost ~80 µs of CPU; this loop does the same in compiled code
with two system calls (``read`` and ``write`` from libc, the GIL released) and returns to
Python only for what needs it: a batch with answers, notes or failures (strings, JSON), a
frame too large for its buffers, the end of the pipe, or a protocol error. Both paths check a
frame with the same parser (:func:`tts_gym.sandbox.frames.parse_batch`: what one refuses the
other refuses), serve requests with :func:`tts_gym.sandbox.kernel.serve_batch` and write
byte-identical replies (tests/test_sandbox.py checks the two against each other).

Frame layouts are :mod:`tts_gym.sandbox.child.wire`'s: a BATCH of ``n`` int32 triples and an
empty string table is ``17 + 12 n`` bytes; a REPLY carries ``n`` rows of six int64, then the
newly revealed labels' ``(episode, label)`` pairs and their strings, copied from a flat table
of every answer string of the unit's store (:func:`label_table`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from tts_gym.sandbox.frames import FR_OK, FR_SETUP, FR_SPACE, parse_batch
from tts_gym.sandbox.kernel import ERR_NONE, serve_batch, take_turns
from tts_gym.store import ReplayStore

_c_read = types.ExternalFunction("read", types.intp(types.intc, types.uintp, types.uintp))
_c_write = types.ExternalFunction("write", types.intp(types.intc, types.uintp, types.uintp))

LOOP_EOF = 1
"""The pipe ended (the candidate exited or was killed)."""
LOOP_PYTHON = 2
"""A frame (in ``inbuf[:length]``) that the Python path must serve."""
LOOP_BIG = 3
"""A frame longer than ``inbuf`` (or empty); its length prefix is consumed, ``length`` bytes
follow (Python's reader reads or refuses it)."""
LOOP_PROTOCOL = 4
"""``serve_batch`` refused the batch; ``detail`` is its error code."""
LOOP_INTERRUPTED = 5
"""A system call failed (e.g. EINTR): Python checks signals and calls again."""
LOOP_FRAME = 6
"""The parser refused the frame in ``inbuf[:length]`` (``detail``: its ``FR_*`` code)."""

REPLY = 4
HEAD = 9  # type byte, u32 n, u32 n_strings


def label_table(store: ReplayStore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every answer string of ``store`` as UTF-8 in one blob.

    Returns:
        ``(base int64 [Q], offsets int64 [A + 1], blob uint8)``: answer ``a`` of question ``q``
        is ``blob[offsets[base[q] + a] : offsets[base[q] + a + 1]]``.
    """
    encoded = [a.encode("utf-8", "replace") for table in store.answers for a in table]
    base = np.zeros(store.n_questions, np.int64)
    np.cumsum([len(t) for t in store.answers[:-1]], out=base[1:])
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), np.uint8).copy() if encoded else np.zeros(0, np.uint8)
    return base, offsets, blob


@njit(cache=True, inline="always")
def _get_u32(buf, p):
    return (np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8) | (np.int64(buf[p + 2]) << 16)
            | (np.int64(buf[p + 3]) << 24))


@njit(cache=True, inline="always")
def _put_u32(buf, p, v):
    buf[p] = v & 0xFF
    buf[p + 1] = (v >> 8) & 0xFF
    buf[p + 2] = (v >> 16) & 0xFF
    buf[p + 3] = (v >> 24) & 0xFF


@njit(cache=True, inline="always")
def _read_exact(fd, buf, start, n):
    """Read exactly ``n`` bytes into ``buf[start:]``: 0 ok, LOOP_EOF, or LOOP_INTERRUPTED."""
    got = 0
    while got < n:
        r = _c_read(fd, buf.ctypes.data + start + got, n - got)
        if r == 0:
            return LOOP_EOF
        if r < 0:
            return LOOP_INTERRUPTED
        got += r
    return 0


@njit(cache=True, inline="always")
def _write_all(fd, buf, n):
    done = 0
    while done < n:
        r = _c_write(fd, buf.ctypes.data + done, n - done)
        if r <= 0:
            return LOOP_EOF
        done += r
    return 0


@njit(cache=True, inline="always")
def _encode_reply(outbuf, reply_bytes, n, n_new, new_labels, answer_ids, qs,
                  label_base, label_offsets, label_blob):
    """Write a REPLY frame into ``outbuf``: length prefix, head, rows, (episode, label) pairs,
    string table. Returns its length in bytes."""
    p = 4
    outbuf[p] = REPLY
    _put_u32(outbuf, p + 1, n)
    _put_u32(outbuf, p + 5, n_new)
    p += HEAD
    nb = 48 * n
    outbuf[p : p + nb] = reply_bytes[:nb]
    p += nb
    for k in range(n_new):
        _put_u32(outbuf, p, new_labels[k, 1])
        _put_u32(outbuf, p + 4, new_labels[k, 2])
        p += 8
    _put_u32(outbuf, p, n_new)
    p += 4
    offs = p
    p += 4 * (n_new + 1)
    _put_u32(outbuf, offs, 0)
    size = 0
    for k in range(n_new):
        j = new_labels[k, 0]
        idx = label_base[qs[new_labels[k, 1]]] + answer_ids[j]
        a, b = label_offsets[idx], label_offsets[idx + 1]
        outbuf[p : p + (b - a)] = label_blob[a:b]
        p += b - a
        size += b - a
        _put_u32(outbuf, offs + 4 * (k + 1), size)
    _put_u32(outbuf, 0, p - 4)
    return p


@njit(cache=True, nogil=True)
def serve_loop(
    rfd, wfd, inbuf, outbuf, entries, offsets, max_entries, progress,
    data, n_branches, qs, ep_arrays, book_arrays, done, steps, stats, sent, slots, mode, conf,
    counts, max_steps, reply, reply_bytes, answer_ids, new_labels, others,
    label_base, label_offsets, label_blob, order, n_order, blocked,
):
    """Serve primitive-only rounds until something needs Python.

    Args:
        rfd, wfd: the pipe from / to the candidate.
        inbuf: uint8 scratch for one frame; outbuf: uint8 scratch for one reply (sized by
            the caller for ``entries.shape[0]`` entries and the longest answer string).
        entries, offsets: the parser's scratch (:func:`~tts_gym.sandbox.frames.parse_batch`);
            max_entries: its bound on a batch's entries.
        progress: int64 ``[1]``, +1 per frame read (the guard thread watches it).
        data .. others: as :func:`~tts_gym.sandbox.kernel.serve_batch`; ``reply_bytes`` is
            ``reply`` viewed as bytes.
        label_base, label_offsets, label_blob: :func:`label_table` of the unit's store.
        order, n_order, blocked: the broker's record of the turn order
            (:func:`~tts_gym.sandbox.kernel.take_turns`); a batch out of turn goes to Python.

    Returns:
        ``(code, length, detail)``: one of the ``LOOP_*`` codes, the frame length for
        LOOP_PYTHON / LOOP_BIG / LOOP_FRAME, the kernel's error code for LOOP_PROTOCOL and
        the parser's for LOOP_FRAME.
    """
    n_eps = qs.shape[0]
    while True:
        st = _read_exact(rfd, inbuf, 0, 4)
        if st != 0:
            return st, 0, 0
        length = _get_u32(inbuf, 0)
        progress[0] += 1
        if length == 0 or length > inbuf.shape[0]:  # refused or read by Python's reader
            return LOOP_BIG, length, 0
        st = _read_exact(rfd, inbuf, 0, length)
        if st != 0:
            return st, 0, 0
        code, n, _n_str, n_others, _where, _value = parse_batch(
            inbuf, length, n_eps, max_entries, entries, offsets)
        if code == FR_SPACE or code == FR_SETUP or (code == FR_OK and n_others > 0):
            return LOOP_PYTHON, length, 0  # strings, or more entries than the scratch holds
        if code != FR_OK:
            return LOOP_FRAME, length, code
        if take_turns(entries[:n], order, n_order, blocked) >= 0:
            return LOOP_PYTHON, length, 0
        err, n_new, _n_others = serve_batch(
            data, n_branches, qs, ep_arrays, book_arrays, entries[:n], 0, done, steps, stats,
            sent, slots, mode, conf, counts, max_steps, reply, answer_ids, new_labels, others,
        )
        if err != ERR_NONE:
            return LOOP_PROTOCOL, length, err
        p = _encode_reply(outbuf, reply_bytes, n, n_new, new_labels, answer_ids, qs,
                          label_base, label_offsets, label_blob)
        st = _write_all(wfd, outbuf, p)
        if st != 0:
            return st, 0, 0
