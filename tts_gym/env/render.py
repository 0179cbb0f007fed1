"""ANSI rendering of an episode: slots as rows, probe intervals as columns."""

from __future__ import annotations

import numpy as np

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
    opened = int(ep[5][0])
    lines = [
        f"question {question}  tokens {int(ep[5][1])}  opened {opened}/{slots}  "
        f"labels {int(book[6][0])}  pool {int(book[6][1])}"
    ]
    for s in range(opened):
        status = 3 if book[0][s] else (2 if ep[3][s] else 1)
        depth = int(ep[1][s])
        cells = []
        for d in range(1, depth + 1):
            lab = int(book[3][s, d])
            cells.append(_label_char(lab) if lab >= 0 else ".")
        if ep[3][s]:
            lab = int(book[3][s, depth + 1])
            cells.append("|" + (_label_char(lab) if lab >= 0 else "?"))
        lines.append(f"{s:>3} {_STATUS[status]} {''.join(cells)}")
    return "\n".join([*lines, *LEGEND]) + "\n"
