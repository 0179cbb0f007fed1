"""Answers out of model text: the last ``\\boxed{...}`` of a trajectory, the box a probe closes.

Braces are matched (``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``); escaped braces ``\\{``
and ``\\}`` count as text, not as grouping.
"""

from __future__ import annotations

import re

from tts_gym.store import limits as _store_limits

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _close(text: str, start: int, depth: int) -> int:
    """Index of the brace that brings ``depth`` to 0 scanning from ``start``, or -1."""
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``), stripped; else None.

    >>> last_boxed(r"so \\boxed{3} or rather \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> last_boxed("no box here") is None, last_boxed(r"\\boxed{12") is None
    (True, True)
    """
    for m in reversed(list(_BOX.finditer(text))):
        end = _close(text, m.end(), 1)
        if end >= 0:
            return text[m.end() : end].strip()
    return None


def open_braces(suffix: str) -> int:
    """Braces the probe suffix leaves open (1 for the default ``... \\boxed{``).

    >>> open_braces(r"**Final Answer**\\n\\n\\[ \\boxed{"), open_braces("Answer:")
    (1, 0)
    """
    depth, i = 0, 0
    while i < len(suffix):
        c = suffix[i]
        if c == "\\":
            i += 2
            continue
        depth += (c == "{") - (c == "}")
        depth = max(depth, 0)
        i += 1
    return depth


def probe_answer(output: str, opened: int) -> tuple[str, bool]:
    """The answer a probe gave: its output up to the brace closing the box the suffix opened.

    Args:
        output: The probe's completion text.
        opened: Braces the suffix left open (:func:`open_braces`).

    Returns:
        ``(answer, closed)``. If the box is never closed within the probe's tokens, the whole
        output (stripped) with ``closed=False``. With a suffix that opens no brace, the last
        ``\\boxed{...}`` of the output, else its first line.

    >>> probe_answer(r"\\frac{1}{2}} \\]\\n\\nSo", 1)
    ('\\\\frac{1}{2}', True)
    >>> probe_answer("12", 1)
    ('12', False)
    """
    if opened > 0:
        end = _close(output, 0, opened)
        if end >= 0:
            return output[:end].strip(), True
        return output.strip(), False
    boxed = last_boxed(output)
    if boxed is not None:
        return boxed, True
    lines = output.strip().splitlines()
    return (lines[0].strip() if lines else ""), False


MAX_ANSWER_CHARS: int = _store_limits.MAX_ANSWER_CHARS
"""Longest answer string ``collect`` writes into a store (characters): the store format's own
bound, which the store loader enforces (so a fresh store always loads)."""


def cut_answer(answer: str, limit: int = MAX_ANSWER_CHARS) -> str:
    """``answer`` cut to ``limit`` characters (a runaway probe cannot make the store invalid).

    >>> cut_answer("x" * 5, 3), cut_answer("ok", 3)
    ('xxx', 'ok')
    """
    return answer if len(answer) <= limit else answer[:limit]
