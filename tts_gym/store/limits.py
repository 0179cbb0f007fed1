"""Bounds on store files, so that an untrusted or broken file gets one clear error.

A store file may come from anywhere (a download, a colleague, a collection run gone wrong), so
loading it must not exhaust memory, overflow the parser's stack or make sums wrap.

**File size** (``DEFAULT_MAX_STORE_BYTES``, 512 MiB): checked before reading; the largest
published store is 3.2 MB, so the default admits stores ~166x bigger. Override with the
``TTS_GYM_MAX_STORE_BYTES`` environment variable or ``load_store(..., max_bytes=...)``.

**JSON nesting** (``DEFAULT_MAX_JSON_DEPTH``, 32 levels): a store nests 5 levels (array of
questions, question object, ``each_branch``, branch triple, ``probe_list``); deeper nesting is
found by a scan of the raw bytes (:func:`json_depth`) *before* the parser runs, so a hostile file
gets an error, never a ``RecursionError``. Override with ``TTS_GYM_MAX_JSON_DEPTH`` or
``max_depth=``.

**Token counts** (not overridable; they make the arithmetic exact). In the reference replay
semantics a branch with L probes, T tokens and probe interval Δ is charged at most
``max(L·Δ, T)`` in an episode (probed to the end; ``full_read`` and the exact cost mode charge
T), and an episode opens each branch at most once, whatever the number of slots. So the charge
of any episode of question q is at most its *worst case* ``W_q = Σ_b max(L_b·Δ_q, T_b)``
(plus ``probe_cost`` per PROBE, an env argument that is 0 in the paper). The validator requires

- ``W_q <= MAX_QUESTION_TOKENS = 10**9`` for every question (and ``Δ_q`` too): an episode's
  charge fits the observation's ``vote[0]`` ceiling (``TOKEN_CEILING``) and even an int32;
- ``Σ_q W_q <= MAX_STORE_TOKENS = 2**42`` (4.4e12) over the store: the largest integer sum the
  protocol forms, one seed's tokens summed over all questions, is at most 2**42, and a sum over
  ``SEEDS_THAT_FIT = 2**20`` (~1M) seeds of whole passes would still fit in int64
  (2**62 < 2**63 - 1); the protocol uses 100 seeds.

The published stores have ``W_q`` of at most a few million tokens (128 branches of <= ~40k) and
``Σ_q W_q`` around 1e8, four orders of magnitude inside these bounds.

**Answer length** (``MAX_ANSWER_CHARS``, 1,000 characters; not overridable): every answer string
(``gold_answer``, ``probe_list`` entries, ``final_answer``, ``final_answers_trace``) is at most
this many characters (Unicode code points) and valid Unicode (no lone surrogate, which has no
UTF-8 form). Answers are extracted final answers: the published stores' longest is 129
characters. The sandbox's broker uses this same bound
(:data:`tts_gym.sandbox.broker.MAX_ANSWER_CHARS`): every answer of a store that loads reaches a
sandboxed candidate unchanged and can be submitted back verbatim, and a submitted answer longer
than the bound is scored wrong, so ``eval`` in process and the sandboxed path score every
loadable store the same way.
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit

DEFAULT_MAX_STORE_BYTES = 512 * 2**20
"""Largest store file read by default (512 MiB, ~166x the largest published store)."""

MAX_STORE_BYTES_ENV = "TTS_GYM_MAX_STORE_BYTES"
"""Environment variable overriding :data:`DEFAULT_MAX_STORE_BYTES` (a number of bytes)."""

DEFAULT_MAX_JSON_DEPTH = 32
"""Deepest JSON nesting accepted by default (a store nests 5 levels)."""

MAX_JSON_DEPTH_ENV = "TTS_GYM_MAX_JSON_DEPTH"
"""Environment variable overriding :data:`DEFAULT_MAX_JSON_DEPTH` (a number of levels)."""

SIDECAR_MAX_BYTES = 2**20
"""Largest ``<benchmark>.meta.json`` sidecar read (1 MiB; it holds a few fields)."""

MAX_QUESTION_TOKENS = 10**9
"""Bound on a question's worst-case episode charge ``Σ_b max(L_b·Δ, T_b)`` (and on Δ)."""

MAX_STORE_TOKENS = 2**42
"""Bound on the sum of the questions' worst-case charges over a store."""

MAX_ANSWER_CHARS = 1000
"""Longest answer string a store may hold, in characters (the published stores' longest: 129).

The sandbox broker's bound too (``tts_gym.sandbox.broker.MAX_ANSWER_CHARS``: a longer submitted
answer is scored wrong), so that every path scores a store that loads the same way;
``tts-gym collect`` writes no longer answer."""

SEEDS_THAT_FIT = 2**20
"""Whole-store passes whose token sum still fits int64 (``MAX_STORE_TOKENS × this <= 2**63``)."""


def _limit(value: int | None, env: str, default: int, unit: str) -> int:
    """``value``, else the environment variable ``env``, else ``default``; a positive int."""
    if value is not None:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"The {unit} limit must be a positive integer, got {value!r}.")
        return int(value)
    text = os.environ.get(env)
    if not text:
        return default
    try:
        got = int(text)
    except ValueError:
        got = 0
    if got < 1:
        raise ValueError(f"{env}={text!r} is not a positive integer ({unit}); unset it or fix it.")
    return got


def max_store_bytes(value: int | None = None) -> int:
    """The file-size limit: ``value``, else ``TTS_GYM_MAX_STORE_BYTES``, else the default."""
    return _limit(value, MAX_STORE_BYTES_ENV, DEFAULT_MAX_STORE_BYTES, "bytes")


def max_json_depth(value: int | None = None) -> int:
    """The nesting limit: ``value``, else ``TTS_GYM_MAX_JSON_DEPTH``, else the default."""
    return _limit(value, MAX_JSON_DEPTH_ENV, DEFAULT_MAX_JSON_DEPTH, "levels")


def json_depth(raw: bytes, limit: int = -1) -> tuple[int, int]:
    """Deepest nesting of arrays and objects in JSON text, without parsing it.

    One pass over the bytes with the JSON string rules (a ``"`` opens a string; inside, ``\\``
    escapes the next byte and ``"`` closes it); brackets outside strings count. On valid JSON
    this is the parse tree's depth; on invalid JSON it is exact up to the first syntax error,
    which is as far as the parser gets, so it bounds the parser's recursion either way. UTF-8
    is scanned as bytes: ``"``, ``\\`` and brackets never occur inside a multi-byte character.

    Args:
        raw: The file's bytes.
        limit: Stop as soon as the depth exceeds it (-1: scan everything).

    Returns:
        ``(depth, offset)``: the deepest level (0 for a scalar), and the byte offset where
        ``limit`` was first exceeded (-1 if it was not).
    """
    depth, offset = _scan_depth(np.frombuffer(raw, np.uint8), limit)
    return int(depth), int(offset)


@njit(cache=True)
def _scan_depth(buf, limit):
    """:func:`json_depth` over uint8 ``buf`` (a numba loop: ~1 ns per byte)."""
    depth = 0
    deepest = 0
    in_string = False
    escaped = False
    for i in range(buf.shape[0]):
        c = buf[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c == 0x5B or c == 0x7B:  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if 0 <= limit < deepest:
                    return deepest, i
        elif c == 0x5D or c == 0x7D:  # ] }
            depth -= 1
    return deepest, -1
