"""The ``rgb_array`` picture of an episode: slots × probe intervals, drawn with numpy only.

Layout of the uint8 ``[H, W, 3]`` frame (H and W are fixed by ``max_branches`` S and the store's
``max_probes`` Lmax, multiples of 16 so video encoders take them unscaled):

- a header: ``QUESTION <index>  TOKENS <tokens charged so far, with thousands commas>`` and
  ``OPEN <opened>/<S>  LABELS <distinct answers revealed>`` in a 3 × 5 bitmap font
  (:mod:`tts_gym.env.bitmap_font`);
- the grid: one row per slot (S rows, slots in opening order), a status glyph (``+`` active,
  ``=`` finished, ``X`` pruned), then one cell per probe interval consumed (Lmax + 1 columns:
  Lmax intervals and the final answer). A grey cell is an interval advanced with its answer
  hidden; a coloured cell shows the answer revealed there, coloured by its episode-local label
  (labels number answers in first-reveal order: :data:`LABEL_COLORS`, ten colours, labels from
  10 on in a darker shade of the same ten); the final-answer cell of a finished slot has a white
  frame; a pruned slot's cells are dimmed and struck through in red;
- a legend: the status glyphs, the hidden and final cells, and the first label colours.

Nothing here depends on gold answers or on unrevealed probes: the frame shows what a controller
was told, like the observation.
"""

from __future__ import annotations

import numpy as np

from tts_gym.env.bitmap_font import ADVANCE, GLYPH_H, draw_text, text_width
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
)

CELL = 6
"""Pixels per grid cell: 5 of colour and a 1-pixel gap."""
MARGIN = 4
TEXT_SCALE = 2
LINE = GLYPH_H * TEXT_SCALE + 4
"""Height of one header or legend text line."""

BACKGROUND = (22, 22, 28)
EMPTY = (34, 34, 42)
HIDDEN = (120, 120, 130)
TEXT = (235, 235, 235)
FRAME = (255, 255, 255)
STRIKE = (230, 40, 40)
STATUS_COLORS = {1: (235, 235, 235), 2: (120, 220, 120), 3: (230, 40, 40)}
STATUS_GLYPHS = {1: "+", 2: "=", 3: "X"}
LABEL_COLORS = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 221, 87),
    ],
    np.uint8,
)
"""RGB of labels 0-9 (matplotlib's tab10 with yellow for its grey); label k >= 10 is drawn in
``LABEL_COLORS[k % 10]`` at 55 % brightness."""
DARK_SHADE = 0.55
PRUNED_SHADE = 0.5
LEGEND_LABELS = 10


def _palette() -> np.ndarray:
    """uint8 ``[2 + 20, 3]``: empty, hidden, labels 0-9, labels 10+ (dark) by ``k % 10``."""
    dark = (LABEL_COLORS * DARK_SHADE).astype(np.uint8)
    return np.concatenate([np.array([EMPTY, HIDDEN], np.uint8), LABEL_COLORS, dark])


PALETTE = _palette()


def frame_shape(slots: int, max_probes: int) -> tuple[int, int, int]:
    """``(H, W, 3)`` of the frames of an env with ``slots`` slots over a store whose branches have
    at most ``max_probes`` probes."""
    # the longest header: a 5-digit question and tokens up to the store limit of 1e9
    header_w = text_width(f"OPEN {slots}/{slots}  LABELS {slots * (max_probes + 1)}", TEXT_SCALE)
    header_w = max(header_w, text_width("QUESTION 99999  TOKENS 1,000,000,000", TEXT_SCALE))
    legend_w = _legend_width()
    grid_w = CELL * (max_probes + 2)  # status glyph column + Lmax + 1 cells
    width = 2 * MARGIN + max(header_w, legend_w, grid_w)
    height = 2 * MARGIN + 2 * LINE + CELL * slots + 4 + 2 * LINE
    return _round16(height), _round16(width), 3


def _round16(n: int) -> int:
    return -(-n // 16) * 16


def _legend_width() -> int:
    first = text_width("+ ACTIVE  = FINISHED  X PRUNED", TEXT_SCALE)
    second = text_width("HIDDEN  FINAL  LABEL", TEXT_SCALE) + 3 * (CELL * 2 + 4)
    second += LEGEND_LABELS * (CELL * 2 + 4)
    return max(first, second)


def label_grid(ep: tuple[np.ndarray, ...], book: tuple[np.ndarray, ...]) -> np.ndarray:
    """int ``[S, Lmax + 1]`` palette index per cell: 0 empty, 1 hidden, 2 + k label k (< 10),
    12 + k % 10 label k >= 10. Cell ``d - 1`` is probe interval d; a finished slot's final answer
    sits in cell ``depth`` (the ANSI picture's ``|`` column)."""
    reveal_at = book[BOOK_REVEAL_AT]
    slots, columns = reveal_at.shape[0], reveal_at.shape[1] - 1
    opened = int(ep[EP_COUNTERS][OPENED])
    depth = ep[EP_DEPTH][:slots].astype(np.int64)
    finished = ep[EP_FINISHED][:slots].astype(bool)
    col = np.arange(columns)[None, :]
    reached = col < (depth + finished)[:, None]
    reached[opened:] = False
    labels = reveal_at[:, 1:]  # reveal_at[s, d] for d = 1 .. Lmax + 1
    index = np.where(labels >= 10, 12 + labels % 10, 2 + labels)
    return np.where(reached, np.where(labels >= 0, index, 1), 0)


def render_rgb(
    question: int, ep: tuple[np.ndarray, ...], book: tuple[np.ndarray, ...]
) -> np.ndarray:
    """The episode's frame, uint8 ``[H, W, 3]`` with ``(H, W, 3) = frame_shape(S, Lmax)``."""
    grid = label_grid(ep, book)
    slots, columns = grid.shape
    h, w, _ = frame_shape(slots, columns - 1)
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = BACKGROUND
    # --- header ---
    opened = int(ep[EP_COUNTERS][OPENED])
    tokens = int(ep[EP_COUNTERS][COST])
    labels = int(book[BOOK_COUNTERS][LABELS_USED])
    draw_text(frame, f"QUESTION {question}  TOKENS {tokens:,}", MARGIN, MARGIN, TEXT, TEXT_SCALE)
    draw_text(frame, f"OPEN {opened}/{slots}  LABELS {labels}", MARGIN + LINE, MARGIN, TEXT,
              TEXT_SCALE)
    # --- grid: palette colours, cells expanded to CELL x CELL with a 1-pixel gap ---
    top, left = MARGIN + 2 * LINE, MARGIN + CELL
    colors = PALETTE[grid]
    pruned = book[BOOK_PRUNED][:slots].astype(bool)
    dim = pruned[:, None] & (grid > 0)  # the cells a pruned slot consumed
    colors[dim] = (colors[dim] * PRUNED_SHADE).astype(np.uint8)
    cells = np.zeros((slots, CELL, columns, CELL, 3), np.uint8)
    cells[:] = np.array(BACKGROUND, np.uint8)
    cells[:, : CELL - 1, :, : CELL - 1] = colors[:, None, :, None]
    frame[top : top + slots * CELL, left : left + columns * CELL] = cells.reshape(
        slots * CELL, columns * CELL, 3
    )
    depth, finished = ep[EP_DEPTH], ep[EP_FINISHED]
    for s in range(opened):
        status = 3 if pruned[s] else (2 if finished[s] else 1)
        y = top + s * CELL
        draw_text(frame, STATUS_GLYPHS[status], y, MARGIN + 1, STATUS_COLORS[status])
        x_end = left + int(depth[s] + finished[s]) * CELL
        if finished[s]:
            _ring(frame, y, x_end - CELL)
        if pruned[s]:
            frame[y + 2, left : x_end - 1] = STRIKE
    _legend(frame, top + slots * CELL + 4)
    return frame


def _ring(frame: np.ndarray, y: int, x: int) -> None:
    """A white 1-pixel frame around the 5 × 5 cell at ``(y, x)`` (a final answer)."""
    inner = CELL - 1
    frame[y, x : x + inner] = FRAME
    frame[y + inner - 1, x : x + inner] = FRAME
    frame[y : y + inner, x] = FRAME
    frame[y : y + inner, x + inner - 1] = FRAME


def _swatch(frame: np.ndarray, y: int, x: int, color: tuple[int, int, int] | np.ndarray) -> int:
    """A 2-cell colour square at ``(y, x)``; returns the x after it."""
    size = 2 * (CELL - 1)
    frame[y : y + size, x : x + size] = color
    return x + size + 4


def _legend(frame: np.ndarray, y: int) -> None:
    x = MARGIN
    for status in (1, 2, 3):
        name = {1: "ACTIVE", 2: "FINISHED", 3: "PRUNED"}[status]
        draw_text(frame, STATUS_GLYPHS[status], y, x, STATUS_COLORS[status], TEXT_SCALE)
        x += text_width("X ", TEXT_SCALE) + ADVANCE * TEXT_SCALE // 2
        draw_text(frame, name, y, x, TEXT, TEXT_SCALE)
        x += text_width(name + "  ", TEXT_SCALE)
    y += LINE
    x = _swatch(frame, y, MARGIN, HIDDEN)
    draw_text(frame, "HIDDEN", y, x, TEXT, TEXT_SCALE)
    x += text_width("HIDDEN  ", TEXT_SCALE)
    size = 2 * (CELL - 1)
    frame[y : y + size, x : x + size] = FRAME
    frame[y + 2 : y + size - 2, x + 2 : x + size - 2] = LABEL_COLORS[0]
    x += size + 4
    draw_text(frame, "FINAL", y, x, TEXT, TEXT_SCALE)
    x += text_width("FINAL  ", TEXT_SCALE)
    draw_text(frame, "LABEL", y, x, TEXT, TEXT_SCALE)
    x += text_width("LABEL ", TEXT_SCALE)
    for k in range(LEGEND_LABELS):
        frame[y : y + size, x : x + size] = LABEL_COLORS[k]
        draw_text(frame, str(k), y + 0, x + 3, BACKGROUND, 1)
        x += size + 4
