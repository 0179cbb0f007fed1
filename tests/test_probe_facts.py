"""The probe-signal facts (agents/synthesis/probe_facts.py) against hand-checked values and a
plain-Python twin that works on the raw JSON questions (strings, not packed ids)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from agents.synthesis.probe_facts import (
    CEILING_SEEDS,
    K_GRID,
    S_GRID,
    VOTES,
    probe_facts,
    probe_facts_text,
)
from tests.conftest import real_data_dir, requires_data
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.store import load_store
from tts_gym.store.pack import pack_questions
from tts_gym.store.validate import validate_store
from tts_gym.testing import tiny_questions


def _store(data, seed="hand"):
    validate_store("<test>", data)
    return pack_questions(data, model="m", benchmark="aime24", split="search",
                          source="test", sha256=f"probe-facts-{seed}")


def _question(gold, branches):
    return {"question": "q", "gold_answer": gold, "probe_freq": 100,
            "each_branch": [list(b) for b in branches],
            "final_answers_trace": [b[2] for b in branches]}


# one question, gold "B"; (probes, tokens, final)
HAND = [_question("B", [
    (["A", "A", "B"], 250, "B"),
    (["B", "B"], 150, "B"),
    (["A"], 400, "A"),
    (["C", "A", "A", "A"], 500, "A"),
    (["D", "D", "E", "D"], 300, "D"),
])]


def test_hand_checked_values():
    f = probe_facts(_store(HAND))
    agree = {k: (v["agree"], v["reach"]) for k, v in f["agree"].items()}
    assert agree["1"] == (60.0, 100.0)  # A,B,A,C,D vs B,B,A,A,D
    assert agree["2"] == (75.0, 80.0)  # the 1-probe branch has finished
    assert agree["4"] == (100.0, 40.0)
    assert agree["8"] == (None, 0.0)
    assert agree["L-1"] == (50.0, 80.0) and agree["L"] == (100.0, 100.0)
    held = {s: (v["changes"], v["final_differs"]) for s, v in f["held"].items()}
    assert held["1"] == (44.4, 33.3)  # 9 runs of length 1: 4 change later, 3 end elsewhere
    assert held["2"] == (50.0, 25.0)  # A (b0) changes, D (b4) comes back
    assert held["3"] == (0.0, 0.0) and held["5"] == (None, None)
    assert f["length_quartiles"] == [100.0, 0.0, 0.0, 0.0]  # 150, 250 | 300 | 400 | 500
    # probes: A six times, B and D three; finals B, B, A, A, D (tie B/A -> B, seen first)
    assert f["probe_vs_final"] == {"final_wrong": 0, "probe_right_when_final_wrong": 0,
                                   "final_right": 1, "probe_wrong_when_final_right": 1}
    assert f["shortest64"] == 100.0 and f["any_right"] == 100.0


def test_probe_majority_right_where_the_final_majority_is_wrong():
    data = [_question("G", [(["G", "G"], 100, "H"), (["G"], 200, "H"), (["H"], 300, "G")])]
    f = probe_facts(_store(data))
    assert f["probe_vs_final"] == {"final_wrong": 1, "probe_right_when_final_wrong": 1,
                                   "final_right": 0, "probe_wrong_when_final_right": 0}


def test_the_ceiling_is_self_consistency_at_64():
    store = _store(tiny_questions(5, questions=6, branches=80, max_probes=6), "sc64")
    sc = evaluate(make_controller("sc", {"n": VOTES}), store, CEILING_SEEDS)
    assert probe_facts(store)["majority64"] == round(sc.accuracy, 1)


# --- the plain-Python twin -------------------------------------------------------------------
def _majority(answers):
    counts = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    best = None
    for a in answers:
        if best is None or counts[a] > counts[best]:
            best = a
    return best


def _pct_mean(rates):
    return round(100.0 * sum(rates) / len(rates), 1) if rates else None


def _twin_agree(data):
    out = {}
    for k in K_GRID:
        agree, reach = [], []
        for item in data:
            ok, n_live = [], 0
            for probes, _t, final in item["each_branch"]:
                back = {"L-1": 2, "L": 1}.get(str(k))
                need = back if back else k
                if len(probes) >= need:
                    n_live += 1
                    at = probes[len(probes) - back] if back else probes[k - 1]
                    ok.append(at == final)
            reach.append(n_live / len(item["each_branch"]))
            if ok:
                agree.append(sum(ok) / len(ok))
        out[str(k)] = {"agree": _pct_mean(agree), "reach": _pct_mean(reach)}
    return out


def _twin_held(data):
    out = {}
    for s in S_GRID:
        changes, differs = [], []
        for item in data:
            ch, di = [], []
            for probes, _t, final in item["each_branch"]:
                run = 0
                for j, a in enumerate(probes):
                    run = run + 1 if j and probes[j - 1] == a else 1
                    if run == s:
                        later = probes[j + 1:] + [final]
                        ch.append(any(x != a for x in later))
                        di.append(final != a)
            if ch:
                changes.append(sum(ch) / len(ch))
                differs.append(sum(di) / len(di))
        out[str(s)] = {"changes": _pct_mean(changes), "final_differs": _pct_mean(differs)}
    return out


def _twin_quartiles(data):
    quart = [[], [], [], []]
    for item in data:
        br = item["each_branch"]
        ranked = sorted(range(len(br)), key=lambda b: (br[b][1], b))
        cells = [[], [], [], []]
        for r, b in enumerate(ranked):
            cells[4 * r // len(br)].append(br[b][2] == item["gold_answer"])
        for i in range(4):
            if cells[i]:
                quart[i].append(sum(cells[i]) / len(cells[i]))
    return [_pct_mean(x) for x in quart]


def twin(data, seeds):
    """Every figure from the raw questions, with loops over Python lists."""
    out = {"agree": _twin_agree(data), "held": _twin_held(data),
           "length_quartiles": _twin_quartiles(data)}
    pv = {"final_wrong": 0, "probe_right_when_final_wrong": 0, "final_right": 0,
          "probe_wrong_when_final_right": 0}
    m64, short, anyr = [], [], []
    for item in data:
        br, gold = item["each_branch"], item["gold_answer"]
        pr = _majority([a for probes, _t, _f in br for a in probes]) == gold
        if _majority([f for _p, _t, f in br]) == gold:
            pv["final_right"] += 1
            pv["probe_wrong_when_final_right"] += not pr
        else:
            pv["final_wrong"] += 1
            pv["probe_right_when_final_wrong"] += pr
        for s in range(seeds):
            order = list(range(len(br)))
            random.Random(s).shuffle(order)
            m64.append(_majority([br[b][2] for b in order[:VOTES]]) == gold)
        ranked = sorted(range(len(br)), key=lambda b: (br[b][1], b))
        short.append(_majority([br[b][2] for b in ranked[:VOTES]]) == gold)
        anyr.append(any(f == gold for _p, _t, f in br))
    out["probe_vs_final"] = pv
    out["majority64"] = _pct_mean(m64)
    out["shortest64"] = _pct_mean(short)
    out["any_right"] = _pct_mean(anyr)
    out["questions"] = len(data)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_the_plain_python_twin(seed):
    data = tiny_questions(seed, questions=5, branches=90, max_probes=12, answers=3)
    assert probe_facts(_store(data, seed), seeds=7) == twin(data, 7)


def test_the_text_names_no_answer():
    rng = np.random.default_rng(3)
    data = tiny_questions(4, questions=4, branches=20, max_probes=9)
    labels = {}
    for item in data:  # distinctive labels, so a leak is found by a plain search
        for a in {a for b in item["each_branch"] for a in [*b[0], b[2]]} | {item["gold_answer"]}:
            labels.setdefault(a, "ans" + "".join(rng.choice(list("qwxzvk"), 6)))
        item["gold_answer"] = labels[item["gold_answer"]]
        item["each_branch"] = [[[labels[a] for a in p], t, labels[f]]
                               for p, t, f in item["each_branch"]]
        item["final_answers_trace"] = [b[2] for b in item["each_branch"]]
    store = _store(data, "labels")
    text = probe_facts_text({"m/aime24": store, "n/aime24": store}, seeds=5)
    assert "| m/aime24 |" in text and "| n/aime24 |" in text and "Held answers" in text
    assert not any(a in text for table in store.answers for a in table)
    assert len(text) < 2500


@requires_data
@pytest.mark.data
def test_the_block_of_the_four_search_stores_is_compact():
    stores = {f"{m}/aime24": load_store(m, "aime24", real_data_dir())
              for m in ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")}
    text = probe_facts_text(stores)
    assert len(text) < 2500 and all(f"| {k} |" in text for k in stores)
    for key, store in stores.items():  # the 64-vote ceiling is sc at n = 64
        sc = evaluate(make_controller("sc", {"n": VOTES}), store, CEILING_SEEDS)
        assert probe_facts(store)["majority64"] == round(sc.accuracy, 1), key
