"""The kernels' state tables (tts_gym/kernels/state.py): derived allocation, reset, stacking and
views equal the hand-written layout they replace, in Python and in numba; and no code indexes
the state tuples by number."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from tts_gym.env.dynamics import observation_copy, stacked_views
from tts_gym.kernels import state
from tts_gym.kernels.state import (
    BOOK_FIELDS,
    EP_FIELDS,
    OBS_KEYS,
    new_book,
    new_episode,
    reset_book,
    reset_episode,
    stack,
    state_views,
)

ROOT = Path(__file__).resolve().parent.parent
WIDTH, CAP, LMAX, ANSWERS = 9, 7, 5, 11


def reference_episode(width: int, capacity: int) -> list[np.ndarray]:
    """The episode as it was written by hand before the table (kernels/transitions.py)."""
    return [
        np.arange(width).astype(np.int32),
        np.zeros(capacity, np.int32),
        np.zeros(capacity, np.int64),
        np.zeros(capacity, np.uint8),
        np.full(capacity, -1, np.int32),
        np.zeros(2, np.int64),
    ]


def reference_book(capacity: int, max_probes: int, max_answers: int) -> list[np.ndarray]:
    """The book as it was written by hand before the table (env/dynamics.py ``new_book``)."""
    return [
        np.zeros(capacity, np.uint8),
        np.full(capacity, -1, np.int32),
        np.zeros(capacity, np.uint8),
        np.full((capacity, max_probes + 2), -1, np.int32),
        np.full(max_answers, -1, np.int32),
        np.full(capacity, -1, np.int32),
        np.zeros(2, np.int64),
        np.zeros(capacity, np.int32),  # agree
        np.zeros(capacity, np.int32),  # depth
        np.zeros(capacity, np.int8),  # fresh
        np.full(capacity, -1, np.int32),  # label
        np.zeros(capacity, np.int8),  # status
        np.zeros(4, np.int32),  # totals
        np.zeros(5, np.float32),  # vote
        np.zeros(max_answers + 1, np.int32),  # agree_by_label
        np.zeros(3 + 3 * capacity, np.int8),  # mask
    ]


def assert_same_arrays(got, want) -> None:
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.dtype == w.dtype and g.shape == w.shape, k
        np.testing.assert_array_equal(g, w, err_msg=str(k))


@njit(cache=False)
def jit_new(width, capacity, max_probes, max_answers):
    return new_episode(width, capacity), new_book(capacity, max_probes, max_answers)


@njit(cache=False)
def jit_reset(ep, book):
    reset_episode(ep)
    reset_book(book)


@njit(cache=False)
def jit_views(ep_arrays, book_arrays, i):
    ep, book = stacked_views(ep_arrays, book_arrays, i)
    return ep, book


@njit(cache=False, _nrt=False)
def jit_write_through(ep_arrays, i, value):
    """Views in a kernel without reference counting (as the broker's), written through."""
    ep = state_views(ep_arrays, i)
    ep[state.EP_COUNTERS][state.COST] = value


def test_allocation_equals_the_hand_written_layout_in_python_and_numba():
    want_ep, want_book = reference_episode(WIDTH, CAP), reference_book(CAP, LMAX, ANSWERS)
    assert_same_arrays(new_episode(WIDTH, CAP), want_ep)
    assert_same_arrays(new_book(CAP, LMAX, ANSWERS), want_book)
    ep, book = jit_new(WIDTH, CAP, LMAX, ANSWERS)
    assert_same_arrays(ep, want_ep)
    assert_same_arrays(book, want_book)
    assert len(EP_FIELDS) == len(want_ep) and len(BOOK_FIELDS) == len(want_book)


@pytest.mark.parametrize("jitted", [False, True])
def test_reset_restores_allocation_and_keeps_the_order(jitted):
    ep, book = new_episode(WIDTH, CAP), new_book(CAP, LMAX, ANSWERS)
    rng = np.random.default_rng(0)
    for a in (*ep, *book):  # scribble over everything
        a[...] = rng.integers(1, 100, a.shape)
    order = ep[state.EP_ORDER].copy()
    (jit_reset if jitted else lambda e, b: (reset_episode(e), reset_book(b)))(ep, book)
    want_ep = reference_episode(WIDTH, CAP)
    want_ep[state.EP_ORDER] = order  # the caller's order is kept
    assert_same_arrays(ep, want_ep)
    assert_same_arrays(book, reference_book(CAP, LMAX, ANSWERS))


def test_stacked_views_are_views_of_env_i():
    n = 3
    ep_arrays = stack(new_episode(WIDTH, CAP), n)
    book_arrays = stack(new_book(CAP, LMAX, ANSWERS), n)
    for a in (*ep_arrays, *book_arrays):
        a[...] = np.arange(a.size).reshape(a.shape) % 97
    ep, book = jit_views(ep_arrays, book_arrays, 1)
    assert_same_arrays(ep, [a[1] for a in ep_arrays])
    assert_same_arrays(book, [a[1] for a in book_arrays])
    assert_same_arrays(state_views(book_arrays, 2), [a[2] for a in book_arrays])
    jit_write_through(ep_arrays, 2, 12345)
    assert ep_arrays[state.EP_COUNTERS][2, state.COST] == 12345
    assert ep_arrays[state.EP_COUNTERS][1, state.COST] != 12345


def test_observation_keys_and_positions_come_from_the_table():
    assert OBS_KEYS == ("agree", "depth", "fresh", "label", "status", "totals", "vote")
    book = new_book(CAP, LMAX, ANSWERS)
    book[state.OBS_VOTE][:] = 0.5
    book[state.OBS_LABEL][:] = 3
    obs = observation_copy(book)
    assert list(obs) == list(OBS_KEYS)
    assert (obs["vote"] == 0.5).all() and (obs["label"] == 3).all() and (obs["agree"] == 0).all()
    assert book[state.MASK].shape == (3 + 3 * CAP,)


def test_constants_out_of_the_tables_order_fail(monkeypatch):
    state._check_tables()
    monkeypatch.setattr(state, "EP_SPENT", state.EP_FINISHED)
    with pytest.raises(ImportError, match="EP_SPENT must be 2"):
        state._check_tables()


# Numeric indexing of the state tuples, in any of the spellings the code base used:
# ep[5], self._book[4], book_arrays[15], ep_arrays[5][i, 0], counters[1], book[:7], unpacking.
STATE = r"\b_?(?:ep|book|ep_arrays|book_arrays|episode)"
NUMERIC = [
    re.compile(STATE + r"\[\s*:?\s*\d+\s*[\]:]"),
    re.compile(r"\b(?:book_)?counters\[[^\]]*\b\d+\s*\]"),
    re.compile(r"^\s*\w+(?:\s*,\s*\w+){3,}\s*=\s*(?:self\.)?_?(?:ep|book)\s*$"),
]
SCANNED = ("tts_gym", "agents", "tests", "benchmarks", "examples", "docs")


def numeric_state_indexing() -> list[str]:
    """``path:line: text`` of every numeric index into ``ep``/``book`` in the source tree."""
    hits = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".py", ".md") or path.name == Path(__file__).name:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if any(p.search(line) for p in NUMERIC):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return hits


def test_the_grep_finds_the_old_spellings():
    for line in ("x = ep[5][1]", "self._book[4][a]", "book_arrays[15][i]", "ep_arrays[5][i, 0]",
                 "counters[:, 1].copy()", "pool, c = book[:7]",
                 "order, depth, spent, finished, current, counters = ep"):
        assert any(p.search(line) for p in NUMERIC), line
    for line in ("ep[EP_DEPTH][slot]", "ep.rng_state[0]", "steps[0]", "counters[COST]"):
        assert not any(p.search(line) for p in NUMERIC), line


def test_no_numeric_state_indexing_anywhere():
    hits = numeric_state_indexing()
    assert not hits, "index ep/book with the names of tts_gym/kernels/state.py:\n" + "\n".join(hits)
