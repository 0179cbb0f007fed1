"""ReplayStore packing: answer interning order, padding, ``without_gold()`` and ``subset()``."""

from __future__ import annotations

import numpy as np
import pytest

from tts_gym.store import NO_ANSWER, UNKNOWN_ANSWER, load_store_file
from tts_gym.testing import tiny_questions, write_store_json


def _q(gold, branches, freq=500):
    return {
        "question": f"gold {gold}",
        "gold_answer": gold,
        "probe_freq": freq,
        "each_branch": branches,
        "final_answers_trace": [b[2] for b in branches],
    }


HAND = [
    # gold "11" produced by no branch: it gets the last id.
    _q("11", [[["5", "7"], 900, "7"], [[], 300, "3"], [["7", "9", "9"], 1600, "9"]]),
    # gold "3" produced by a branch: it keeps that id. Only two branches (padding).
    _q("3", [[["ERR", "3"], 1000, "3"], [["No"], 20, "ERR"]], freq=250),
    # gold equal to the last-interned answer that IS produced: must survive without_gold.
    _q("8", [[["1"], 700, "8"]]),
]


@pytest.fixture
def hand(tmp_path):
    return load_store_file(write_store_json(tmp_path / "m" / "aime24.json", HAND))


def test_interning_is_first_appearance_probes_before_final_gold_last(hand):
    assert hand.answers == (("5", "7", "3", "9", "11"), ("ERR", "3", "No"), ("1", "8"))
    assert hand.gold.tolist() == [4, 1, 1]
    assert hand.gold.dtype == np.int32
    assert [hand.gold_string(q) for q in range(3)] == ["11", "3", "8"]


def test_arrays_are_padded_and_typed(hand):
    assert hand.probe_ans.shape == (3, 3, 3) and hand.probe_ans.dtype == np.int32
    assert hand.probe_ans[0].tolist() == [[0, 1, -1], [-1, -1, -1], [1, 3, 3]]
    assert hand.probe_ans[1].tolist() == [[0, 1, -1], [2, -1, -1], [-1, -1, -1]]
    assert hand.n_probes.tolist() == [[2, 0, 3], [2, 1, 0], [1, 0, 0]]
    assert hand.tokens.dtype == np.int64
    assert hand.tokens.tolist() == [[900, 300, 1600], [1000, 20, 0], [700, 0, 0]]
    assert hand.final_ans.tolist() == [[1, 2, 3], [1, 0, -1], [1, -1, -1]]
    assert hand.n_branches.tolist() == [3, 2, 1]
    assert hand.probe_freq.tolist() == [500, 250, 500]
    assert (hand.n_questions, hand.width, hand.max_probes, hand.max_answers) == (3, 3, 3, 5)
    for arr in hand.arrays():
        assert arr.flags.c_contiguous


def test_answer_id_and_string(hand):
    assert hand.answer_id(0, "9") == 3
    assert hand.answer_id(0, "42") == UNKNOWN_ANSWER
    assert hand.answer_id(0, None) == NO_ANSWER
    assert hand.answer_string(1, 2) == "No"
    assert hand.answer_string(1, NO_ANSWER) is None


def test_without_gold_hides_gold_and_gold_only_strings(hand):
    blind = hand.without_gold()
    assert not blind.has_gold and hand.has_gold
    assert blind.gold.tolist() == [NO_ANSWER] * 3
    assert blind.gold_string(0) is None
    # "11" was only the gold: dropped, so the table does not leak it. "3" and "8" were produced.
    assert blind.answers == (("5", "7", "3", "9"), ("ERR", "3", "No"), ("1", "8"))
    assert blind.answer_id(0, "11") == UNKNOWN_ANSWER
    for name in ("probe_ans", "n_probes", "tokens", "final_ans", "probe_freq", "n_branches"):
        assert np.array_equal(getattr(blind, name), getattr(hand, name))
    assert blind.sha256 != hand.sha256  # never confused with the original in caches
    assert hand.gold.tolist() == [4, 1, 1]  # original untouched


def test_without_gold_on_generated_stores_keeps_every_produced_answer(tiny):
    blind = tiny.without_gold()
    for q in range(tiny.n_questions):
        used = set(tiny.final_ans[q][tiny.final_ans[q] >= 0].tolist())
        used |= set(tiny.probe_ans[q][tiny.probe_ans[q] >= 0].tolist())
        assert len(blind.answers[q]) == max(used) + 1
        assert blind.answers[q] == tiny.answers[q][: len(blind.answers[q])]


@pytest.mark.parametrize("pick", [[2, 0], [1], [0, 1, 2], np.array([2, 2])])
def test_subset(hand, pick):
    sub = hand.subset(pick)
    idx = [int(i) for i in pick]
    assert sub.n_questions == len(idx)
    for name in (
        "probe_ans",
        "n_probes",
        "tokens",
        "final_ans",
        "gold",
        "probe_freq",
        "n_branches",
    ):
        got = getattr(sub, name)
        assert np.array_equal(got, getattr(hand, name)[idx]) and got.flags.c_contiguous
    assert sub.answers == tuple(hand.answers[i] for i in idx)
    assert sub.questions == tuple(hand.questions[i] for i in idx)
    assert [sub.gold_string(k) for k in range(len(idx))] == [hand.gold_string(i) for i in idx]
    assert sub.sha256 != hand.sha256


def test_subset_then_without_gold(tmp_path):
    store = load_store_file(write_store_json(tmp_path / "m" / "b.json", tiny_questions(seed=9)))
    a = store.subset([1]).without_gold()
    b = store.without_gold().subset([1])
    assert a.answers == b.answers
    assert np.array_equal(a.gold, b.gold) and np.array_equal(a.probe_ans, b.probe_ans)


def test_last_probe_equals_final_in_generated_stores(tiny):
    """The fixture generator mirrors the shipped stores' property (checked on real data too)."""
    for q in range(tiny.n_questions):
        for b in range(int(tiny.n_branches[q])):
            n = int(tiny.n_probes[q, b])
            if n:
                assert tiny.probe_ans[q, b, n - 1] == tiny.final_ans[q, b]
