"""A 3 × 5 pixel bitmap font (digits, capitals, a little punctuation) for numpy rasters.

Each glyph is five rows of three characters, ``#`` for an ink pixel. :func:`text_mask` turns a
string into a bool ``[5 × scale, (4 × len - 1) × scale]`` ink mask (one blank column between
glyphs), which :func:`draw_text` stamps onto an RGB frame. No imaging library is involved.
"""

from __future__ import annotations

import numpy as np

GLYPH_H = 5
GLYPH_W = 3
ADVANCE = GLYPH_W + 1
"""Pixels from one glyph's left edge to the next (at scale 1)."""

_GLYPHS = {
    "0": "###|#.#|#.#|#.#|###", "1": ".#.|##.|.#.|.#.|###", "2": "###|..#|###|#..|###",
    "3": "###|..#|.##|..#|###", "4": "#.#|#.#|###|..#|..#", "5": "###|#..|###|..#|###",
    "6": "###|#..|###|#.#|###", "7": "###|..#|.#.|.#.|.#.", "8": "###|#.#|###|#.#|###",
    "9": "###|#.#|###|..#|###", "A": ".#.|#.#|###|#.#|#.#", "B": "##.|#.#|##.|#.#|##.",
    "C": ".##|#..|#..|#..|.##", "D": "##.|#.#|#.#|#.#|##.", "E": "###|#..|##.|#..|###",
    "F": "###|#..|##.|#..|#..", "G": ".##|#..|#.#|#.#|.##", "H": "#.#|#.#|###|#.#|#.#",
    "I": "###|.#.|.#.|.#.|###", "J": "..#|..#|..#|#.#|.#.", "K": "#.#|#.#|##.|#.#|#.#",
    "L": "#..|#..|#..|#..|###", "M": "#.#|###|###|#.#|#.#", "N": "##.|#.#|#.#|#.#|#.#",
    "O": ".#.|#.#|#.#|#.#|.#.", "P": "##.|#.#|##.|#..|#..", "Q": ".#.|#.#|#.#|##.|.##",
    "R": "##.|#.#|##.|#.#|#.#", "S": ".##|#..|.#.|..#|##.", "T": "###|.#.|.#.|.#.|.#.",
    "U": "#.#|#.#|#.#|#.#|###", "V": "#.#|#.#|#.#|#.#|.#.", "W": "#.#|#.#|###|###|#.#",
    "X": "#.#|#.#|.#.|#.#|#.#", "Y": "#.#|#.#|.#.|.#.|.#.", "Z": "###|..#|.#.|#..|###",
    " ": "...|...|...|...|...", "/": "..#|..#|.#.|#..|#..", ":": "...|.#.|...|.#.|...",
    ".": "...|...|...|...|.#.", "-": "...|...|###|...|...", "=": "...|###|...|###|...",
    "?": "##.|..#|.#.|...|.#.", "+": "...|.#.|###|.#.|...", ",": "...|...|...|.#.|#..",
}
GLYPHS: dict[str, np.ndarray] = {
    ch: np.array([[c == "#" for c in row] for row in rows.split("|")], bool)
    for ch, rows in _GLYPHS.items()
}
"""bool ``[5, 3]`` ink mask per supported character (lower case is drawn as upper case)."""


def text_width(text: str, scale: int = 1) -> int:
    """Width in pixels of ``text`` drawn at ``scale`` (0 for an empty string)."""
    return max(0, ADVANCE * len(text) - 1) * scale


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """bool ``[5 scale, text_width(text, scale)]`` ink mask of ``text``.

    Raises:
        ValueError: A character has no glyph (the message lists the supported ones).
    """
    text = text.upper()
    missing = sorted({c for c in text if c not in GLYPHS})
    if missing:
        raise ValueError(
            f"The bitmap font has no glyph for {missing}; it draws digits, A-Z and "
            f"{''.join(sorted(c for c in GLYPHS if not c.isalnum()))!r}."
        )
    out = np.zeros((GLYPH_H, max(0, ADVANCE * len(text) - 1)), bool)
    for i, ch in enumerate(text):
        out[:, ADVANCE * i : ADVANCE * i + GLYPH_W] = GLYPHS[ch]
    return np.repeat(np.repeat(out, scale, axis=0), scale, axis=1)


def draw_text(
    frame: np.ndarray, text: str, top: int, left: int, color: tuple[int, int, int], scale: int = 1
) -> None:
    """Stamp ``text`` onto ``frame`` (uint8 ``[H, W, 3]``, in place), clipped at its edges."""
    mask = text_mask(text, scale)
    h = max(0, min(mask.shape[0], frame.shape[0] - top))
    w = max(0, min(mask.shape[1], frame.shape[1] - left))
    region = frame[top : top + h, left : left + w]
    region[mask[:h, :w]] = color
