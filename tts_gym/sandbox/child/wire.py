"""The pipe format between the broker (trusted) and the candidate process (untrusted).

Frames are ``<u32 little-endian length><payload>``; a payload starts with one type byte. The
broker reads every frame from the candidate with a hard size cap and parses it defensively: no
pickle, only fixed-width integer arrays and UTF-8 text that is re-decoded with
``errors="replace"`` (so a lone surrogate or invalid byte never reaches the trusted side as
such). JSON travels only inside text fields and is parsed by the receiver with its own caps.

Messages, candidate -> broker:

- ``HELLO`` (JSON text): the isolation layers the process applied (sent before any candidate
  code exists in the process).
- ``BATCH``: ``n`` entries ``(episode, op, arg)`` as int32 triples, and a string table.
  ``arg`` is a slot for ``probe_more``/``prune``, and an index into the string table for
  ``answer`` (-1: None), ``note`` (JSON text) and ``fail`` (the error text). The broker checks
  a BATCH with :func:`tts_gym.sandbox.frames.parse_batch` (both of its readers) before using
  any of it; the bounds on its counts and strings are stated there.
- ``SCHEDULE`` (JSON text): ``schedule(beta)`` of the candidate, when asked for.

Messages, broker -> candidate:

- ``START`` (JSON text): the candidate source, its constructor parameters, one entry per
  episode (branch capacity and random seed) and the run's flags.
- ``REPLY``: one entry per BATCH entry, in order, six int64 each: ``status, label,
  finished, slot, opened, tokens``; then the strings of newly revealed labels as
  ``(episode, label)`` int32 pairs plus a string table. Labels are episode-local (first-reveal
  order), never the store's answer ids, so a reply says nothing the episode did not reveal.
"""

from __future__ import annotations

import array
import os
import struct
from collections.abc import Iterator

import numpy as np

HELLO = 1
START = 2
BATCH = 3
REPLY = 4
SCHEDULE = 5

# ops of a BATCH entry
OP_PROBE_NEW = 1
OP_PROBE_MORE = 2
OP_FULL_READ = 3
OP_PRUNE = 4
OP_ANSWER = 5
OP_NOTE = 6
OP_FAIL = 7
BLOCKING_OPS = (OP_PROBE_NEW, OP_PROBE_MORE, OP_FULL_READ, OP_PRUNE)
"""Ops whose reply the candidate waits for (the others are recorded, never answered)."""

# status of a REPLY entry
ST_OK = 0
ST_NONE_LEFT = 1
ST_BAD_SLOT = 2
ST_NOT_OPENED = 3
ST_FINISHED = 4
ST_PRUNED = 5
ST_STEP_LIMIT = 6
ST_RECORDED = 7

MAX_FRAME = 64 * 1024 * 1024
"""Largest frame either side accepts (bytes)."""

MAX_STRING_BYTES = 16 * 1024
"""Largest string of a BATCH's table (bytes): a failure report (summary and traceback as JSON,
which the runtime cuts to fit); answers and notes have tighter bounds
(:mod:`tts_gym.sandbox.frames`)."""

MAX_NOTE_CHARS = 2000
"""Longest note (its JSON text, ASCII) the runtime sends; a longer one is replaced by its size."""

MAX_NOTES_PER_EPISODE = 4000
"""Notes of one episode the runtime sends (and the broker records) at most."""

MAX_ERROR_CHARS = 4000
"""Longest traceback text of a failure report (characters)."""

MAX_SCHEDULE_BYTES = 1 << 16
"""Largest ``schedule(beta)`` report (bytes of JSON text); the runtime reports a larger value
as the schedule's failure."""

_LEN = struct.Struct("<I")
_BATCH_HEAD = struct.Struct("<BII")  # type, n entries, n strings
_BATCH_FRAME_HEAD = struct.Struct("<IBII")  # frame length, then _BATCH_HEAD
_REPLY_HEAD = struct.Struct("<BII")  # type, n entries, n new labels


class WireError(Exception):
    """A malformed or oversized frame (the peer is broken or hostile)."""


def send_frame(fd: int, payload: bytes) -> None:
    """Write one frame to ``fd`` (blocking, retried until complete)."""
    write_frame(fd, _LEN.pack(len(payload)) + payload)


def write_frame(fd: int, data: bytes) -> None:
    """Write a whole frame, length prefix included (one ``write`` as a rule)."""
    n = os.write(fd, data)
    if n < len(data):  # a partial write (a frame larger than the pipe's free space)
        rest = memoryview(data)[n:]
        while rest:
            rest = rest[os.write(fd, rest):]


class FrameReader:
    """Buffered frame reading from a blocking descriptor: one ``read`` per frame as a rule
    (the peer writes each frame with one ``write``).

    Linear in the frame's size: a frame longer than the first read is read straight into one
    buffer of its announced length (after the length was checked), never by concatenation.
    """

    def __init__(self, fd: int, max_bytes: int = MAX_FRAME) -> None:
        self.fd = fd
        self.max_bytes = max_bytes
        self.buf = b""

    def read(self) -> bytes:
        """The next frame.

        Raises:
            EOFError: The pipe was closed.
            WireError: The announced length is 0 or exceeds ``max_bytes``.
        """
        buf = self.buf
        while len(buf) < 4:
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.buf = buf
                raise EOFError("the peer closed the pipe")
            buf = buf + chunk if buf else chunk
        (length,) = _LEN.unpack_from(buf, 0)
        if length == 0 or length > self.max_bytes:
            self.buf = buf
            raise WireError(f"frame of {length} bytes (limit {self.max_bytes})")
        end = 4 + length
        if len(buf) >= end:
            self.buf = buf[end:]
            return buf[4:end]
        frame = bytearray(length)
        have = len(buf) - 4
        frame[:have] = buf[4:]
        view = memoryview(frame)
        while have < length:
            got = os.readv(self.fd, [view[have:]])
            if not got:
                self.buf = b""
                raise EOFError("the peer closed the pipe")
            have += got
        self.buf = b""
        return bytes(frame)


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the peer closed the pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(fd: int, max_bytes: int = MAX_FRAME) -> bytes:
    """Read one frame from ``fd``.

    Raises:
        EOFError: The pipe was closed.
        WireError: The announced length exceeds ``max_bytes`` or the frame is empty.
    """
    (length,) = _LEN.unpack(_read_exact(fd, _LEN.size))
    if length == 0 or length > max_bytes:
        raise WireError(f"frame of {length} bytes (limit {max_bytes})")
    return _read_exact(fd, length)


_EMPTY_TABLE = b"\0" * 8  # count 0, offsets [0]


def encode_strings(strings: list[str]) -> bytes:
    """``<u32 count><u32 byte offsets [count + 1]><UTF-8 blob>``; unencodable code points (lone
    surrogates) are replaced."""
    if not strings:
        return _EMPTY_TABLE
    blobs = [s.encode("utf-8", "replace") for s in strings]
    offsets = [0]
    for b in blobs:
        offsets.append(offsets[-1] + len(b))
    return struct.pack(f"<I{len(offsets)}I", len(blobs), *offsets) + b"".join(blobs)


def decode_strings(buf: bytes, pos: int, count: int, max_chars: int) -> tuple[list[str], int]:
    """Parse a string table at ``pos`` holding exactly ``count`` strings.

    Each string is decoded with ``errors="replace"`` and cut to ``max_chars`` characters.

    Returns:
        ``(strings, position after the table)``.

    Raises:
        WireError: The table is truncated, its count differs or its offsets are not monotone.
    """
    if pos + _LEN.size > len(buf):
        raise WireError("truncated string table")
    (n,) = _LEN.unpack_from(buf, pos)
    if n != count:
        raise WireError(f"string table holds {n} strings, {count} announced")
    pos += _LEN.size
    start = pos + 4 * (n + 1)
    if start > len(buf):
        raise WireError("truncated string offsets")
    offsets = struct.unpack_from(f"<{n + 1}I", buf, pos)
    if offsets[0] != 0 or start + offsets[-1] > len(buf):
        raise WireError("bad string offsets")
    out = []
    for i in range(n):
        a, b = offsets[i], offsets[i + 1]
        if b < a:
            raise WireError("bad string offsets")
        out.append(buf[start + a : start + b].decode("utf-8", "replace")[:max_chars])
    return out, start + offsets[-1]


def batch_frame(ops: array.array, strings: list[str]) -> bytes:
    """A BATCH frame, length prefix included, built with one concatenation (candidate side,
    once per round): ``ops`` holds flat int32 triples ``(episode, op, arg)``."""
    body = ops.tobytes()
    table = encode_strings(strings)
    return (_BATCH_FRAME_HEAD.pack(_BATCH_HEAD.size + len(body) + len(table), BATCH,
                                   len(ops) // 3, len(strings)) + body + table)


def encode_batch(ops: array.array, strings: list[str]) -> bytes:
    """A BATCH payload: :func:`batch_frame` without the length prefix."""
    return batch_frame(ops, strings)[_LEN.size:]


REPLY_FIELDS = 6
"""Per reply entry, int64: status, label, finished, slot, opened, tokens charged so far."""


def encode_reply(values: np.ndarray, new: list[tuple[int, int]], new_strings: list[str]) -> bytes:
    """A REPLY payload (broker side): ``values`` int64 ``[n, 6]``; ``new`` the (episode,
    label) of each newly revealed answer string in ``new_strings``."""
    head = _REPLY_HEAD.pack(REPLY, len(values), len(new_strings))
    if not new:
        return head + values.tobytes() + _EMPTY_TABLE
    flat = array.array("i", [x for pair in new for x in pair])
    return head + values.tobytes() + flat.tobytes() + encode_strings(new_strings)


_ROW = struct.Struct(f"<{REPLY_FIELDS}q")


def decode_reply(buf: bytes) -> tuple[int, Iterator[tuple[int, ...]], list[int], list[str]]:
    """Parse a REPLY payload (candidate side): ``(n, an iterator over the n rows as 6-tuples,
    flat (episode, label) pairs, strings)``.

    Raises:
        WireError: Another message type, or a truncated payload.
    """
    if len(buf) < _REPLY_HEAD.size:
        raise WireError("truncated reply header")
    kind, n, m = _REPLY_HEAD.unpack_from(buf, 0)
    if kind != REPLY:
        raise WireError(f"expected a reply, got message type {kind}")
    pos = _REPLY_HEAD.size
    end = pos + _ROW.size * n
    if end + 8 * m > len(buf):
        raise WireError("truncated reply body")
    rows = _ROW.iter_unpack(memoryview(buf)[pos:end])
    if not m:
        return n, rows, [], []
    pairs = list(struct.unpack_from(f"<{2 * m}i", buf, end))
    strings, _ = decode_strings(buf, end + 8 * m, m, 1 << 30)
    return n, rows, pairs, strings


def text_message(kind: int, text: str) -> bytes:
    """A HELLO / START / SCHEDULE payload: the type byte and UTF-8 text."""
    return bytes([kind]) + text.encode("utf-8", "replace")


def parse_text_message(buf: bytes, kind: int, max_chars: int) -> str:
    """The text of a HELLO / START / SCHEDULE payload of type ``kind``.

    Raises:
        WireError: Another message type, or longer than ``max_chars``.
    """
    if not buf or buf[0] != kind:
        raise WireError(f"expected message type {kind}, got {buf[:1]!r}")
    text = buf[1:].decode("utf-8", "replace")
    if len(text) > max_chars:
        raise WireError(f"message of {len(text)} characters (limit {max_chars})")
    return text
