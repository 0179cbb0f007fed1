"""The candidate API: statistics helpers a controller file may import, the same inside and outside
the sandbox.

>>> from tts_gym.candidate import majority, top2, beta_conf
>>> majority(["12", "7", "7", "12"])       # ties go to the answer seen first
'12'
>>> top2(["7", "12", "7"])
('7', 2, 1)
>>> round(beta_conf(3, 1), 4)
0.8125

These are the helpers the published controllers use (AutoTTS, 2026; ASC and CMC take
``beta_conf``), bit-identical to their batch kernels: ``beta_conf`` reads the same float64 table
built once with ``scipy.special.betainc`` (what ``scipy.stats.beta.cdf`` calls). Inside the
sandbox this module is loaded by path into the candidate process (which has no scipy and no
filesystem) and the broker hands it that table, so a candidate gets the very same numbers.

This file must import nothing but the standard library at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_COUNT = 127
"""Largest count :func:`beta_conf` accepts (an episode has at most 64 branches)."""

_TABLE: Any = None


def install_table(table: Any) -> None:
    """Give this module its ``beta_conf`` table (float64 ``[128, 128]``; the sandbox does this)."""
    global _TABLE
    _TABLE = table


def _table() -> Any:
    global _TABLE
    if _TABLE is None:  # outside the sandbox: build it as the kernels do (numpy and scipy)
        from tts_gym.beta_table import beta_conf_table

        _TABLE = beta_conf_table(MAX_COUNT)
    return _TABLE


def majority(answers: Sequence[Any]) -> Any:
    """The most frequent answer; ties go to the answer whose first occurrence comes earliest.

    Args:
        answers: Answers in the order they were seen (any hashable values).

    Returns:
        The winner, or None for an empty sequence.
    """
    counts: dict = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    best, best_c = None, 0
    for a in answers:
        if counts[a] > best_c:
            best, best_c = a, counts[a]
    return best


def top2(answers: Sequence[Any]) -> tuple[Any, int, int]:
    """``(winner, c1, c2)``: the :func:`majority` winner, its count, and the highest count among
    the other answers (0 if none); ``(None, 0, 0)`` for an empty sequence."""
    counts: dict = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    w = majority(answers)
    if w is None:
        return None, 0, 0
    c2 = max((c for a, c in counts.items() if a != w), default=0)
    return w, counts[w], c2


def beta_conf(c1: int, c2: int) -> float:
    """Confidence that the leader (count ``c1``) beats the runner-up (count ``c2``):
    ``1 - BetaCDF(0.5; c1 + 1, c2 + 1)``, and 0.0 when ``c1`` is 0.

    Raises:
        ValueError: A count is negative, above :data:`MAX_COUNT` or not an integer.
    """
    if isinstance(c1, bool) or isinstance(c2, bool):
        raise ValueError("beta_conf(c1, c2) takes integer counts, not booleans.")
    try:
        i, j = int(c1), int(c2)
    except (TypeError, ValueError):
        raise ValueError(f"beta_conf(c1, c2) takes integer counts, got {c1!r}, {c2!r}.") from None
    if i != c1 or j != c2 or not (0 <= i <= MAX_COUNT and 0 <= j <= MAX_COUNT):
        raise ValueError(
            f"beta_conf(c1, c2) takes integer counts in 0..{MAX_COUNT}, got {c1!r}, {c2!r}."
        )
    if i == 0:
        return 0.0
    return float(_table()[i, j])


__all__ = ["MAX_COUNT", "beta_conf", "majority", "top2"]
