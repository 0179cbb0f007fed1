"""ANSI rendering of an episode: slots as rows, probe intervals as columns."""

from __future__ import annotations

import numpy as np

from tts_gym.kernels.state import (
    BOOK_COUNTERS,
    BOOK_PRUNED,
    BOOK_REVEAL_AT,
    COST,
    EP_COUNTERS,
    EP_DEPTH,
    EP_FINISHED,
    LABELS_USED,
    OPENED,
    POOL_SIZE,
)

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_STATUS = {0: " ", 1: "+", 2: "=", 3: "x"}
LEGEND = (
    "legend: a row per opened slot (+ active, = finished, x pruned), a column per probe interval:",
    "  . advanced, answer hidden   0-9a-zA-Z label of the answer revealed there (episode-local,",
    "  in first-reveal order; # from 62 on)   |a final answer, label a",
    "  header: labels = distinct answers revealed, pool = final answers revealed",
)
"""The last lines of every ANSI picture."""


def _label_char(label: int) -> str:
    return _DIGITS[label] if label < len(_DIGITS) else "#"


def render_ansi(
    question: int, ep: tuple[np.ndarray, ...], book: tuple[np.ndarray, ...], slots: int
) -> str:
    """Draw the width × depth picture.

    Each opened slot is a row: ``+`` active, ``=`` finished, ``x`` pruned; then one column per
    probe interval consumed: ``.`` an unrevealed interval, a label character (episode-local
    label, base 62) where an answer was revealed, ``|`` the finishing advance. The picture ends
    with :data:`LEGEND`.
    """
    opened = int(ep[EP_COUNTERS][OPENED])
    labels, pool = (int(book[BOOK_COUNTERS][k]) for k in (LABELS_USED, POOL_SIZE))
    lines = [
        f"question {question}  tokens {int(ep[EP_COUNTERS][COST])}  opened {opened}/{slots}  "
        f"labels {labels}  pool {pool}"
    ]
    for s in range(opened):
        status = 3 if book[BOOK_PRUNED][s] else (2 if ep[EP_FINISHED][s] else 1)
        depth = int(ep[EP_DEPTH][s])
        cells = []
        for d in range(1, depth + 1):
            lab = int(book[BOOK_REVEAL_AT][s, d])
            cells.append(_label_char(lab) if lab >= 0 else ".")
        if ep[EP_FINISHED][s]:
            lab = int(book[BOOK_REVEAL_AT][s, depth + 1])
            cells.append("|" + (_label_char(lab) if lab >= 0 else "?"))
        lines.append(f"{s:>3} {_STATUS[status]} {''.join(cells)}")
    return "\n".join([*lines, *LEGEND]) + "\n"
