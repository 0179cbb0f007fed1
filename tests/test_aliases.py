"""Per-question answer aliases, scrubbing, shortened traces and trace picking (issue 20, items
4 and 5): each rule against a hand-written expectation or a plain twin."""

from __future__ import annotations

import numpy as np

from agents.synthesis.aliases import (
    NEUTRAL,
    AnswerLabels,
    EpisodeAliases,
    alias_name,
    alias_trace,
    scrub_error,
)
from agents.synthesis.candidate import shown_traces
from agents.synthesis.feedback import TraceTarget, pick_traces
from agents.synthesis.scoring import overspend, trace_text
from agents.synthesis.sweep import cap_trace
from agents.synthesis.trace_steps import SKIP, walk
from agents.synthesis.validate import validate_source
from tests import synthesis_candidates as C
from tests.conftest import real_data_dir, requires_data
from tts_gym.evaluation import EvalResult
from tts_gym.store.pack import pack_questions
from tts_gym.testing import distinct_label_questions, tiny_store


def _ev(op, slot, answer, finished=False, tokens=100):
    return {"op": op, "slot": slot, "answer": answer, "finished": finished, "tokens": tokens}


def test_alias_names_run_past_z():
    assert [alias_name(i) for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "A", "B", "Z", "AA", "AB", "ZZ", "AAA"]


def test_answers_alias_in_order_of_first_revelation_noise_marked_unrevealed_aliased():
    trace = [_ev("probe_new", 0, "42"), _ev("probe_new", 1, "ERR"), _ev("probe_more", 0, "17"),
             _ev("probe_more", 1, "42", True),
             {"op": "finish", "answer": "99", "tokens": 400, "unrevealed": True}]
    got = alias_trace(trace, EpisodeAliases({"42", "17", "99", "5"}))
    assert [e.get("answer") for e in got] == ["A", "~ERR", "B", "A", "C"]
    assert got[-1]["unrevealed"] is True
    text = trace_text(trace, 2000, EpisodeAliases({"42", "17", "99"}))
    assert "FINISH C unrevealed (400 tok)" in text and "42" not in text and "17" not in text


def test_note_values_keys_and_text_are_scrubbed():
    labels = AnswerLabels({"s": tiny_store(0, questions=2)})  # labels "0".."3", "10".."13"
    al = EpisodeAliases(labels.own("s", 0), labels)
    note = {"op": "note", "event": "2", "answer": "2", "n": 2, "count": 3, "other": "12",
            "both": ["2", 12, 3.5], "map": {"2": 7}, "text": "top 2 beats 12; 123 and x2",
            "flag": True, "noise": "ERR", "own": "1"}
    got = alias_trace([_ev("probe_new", 0, "2"), note], al)[1]
    assert got["event"] == "A" and got["answer"] == "A" and got["n"] == "A"  # int("2")
    assert got["count"] == 3  # an own label, but never revealed: a count, left alone
    assert got["other"] == NEUTRAL  # "12" is question 1's label
    assert got["both"] == ["A", 12, 3.5] and got["map"] == {"A": 7}
    assert got["text"] == f"top ‹A› beats {NEUTRAL}; 123 and x2"  # short labels: whole tokens
    assert got["flag"] is True and got["noise"] == "ERR"
    assert got["own"] == "B"  # an own label first named in a note (as a string)


def test_long_labels_are_scrubbed_anywhere_short_ones_as_whole_tokens():
    data = distinct_label_questions(5, questions=2, branches=4)
    store = pack_questions(data, model="x", benchmark="aime24", split="search", source="t",
                           sha256="t5")
    labels = AnswerLabels({"x/aime24": store})
    a, b = data[0]["gold_answer"], data[1]["gold_answer"]
    al = EpisodeAliases(labels.own("x/aime24", 0), labels)
    assert labels.scrub(f"{a}x and ({b}) and y{a}", al) == f"‹A›x and ({NEUTRAL}) and y‹A›"
    assert labels.scrub(f"cut at {a[:9]}...") == f"cut at {NEUTRAL}..."  # a truncated label


def test_failure_text_scrubbed_frame_headers_kept_forged_ones_not():
    store = tiny_store(0, questions=2)
    labels = AnswerLabels({"s": store})
    code = "class Controller:\n    def solve(self, q):\n        raise ValueError(q)\n"
    tb = ('  File "r.py", line 3, in solve\n        raise ValueError(q)\n'
          '  File "r.py", line 12, in solve\n    x\nValueError: 2 and 12')
    err = {"kind": "exception", "summary": "r.py:3: ValueError: 2 and 12", "traceback": tb,
           "store": "s", "question": 0, "seed": 0}
    got = scrub_error(err, labels, code, "r.py")
    lines = got["traceback"].split("\n")
    assert lines[:2] == tb.split("\n")[:2]  # a real frame: header and its source line
    assert lines[2] == f'  File "r.py", line {NEUTRAL}, in solve'  # line 12 does not exist
    assert lines[-1] == f"ValueError: ‹A› and {NEUTRAL}"
    assert got["summary"] == f"r.py:3: ValueError: ‹A› and {NEUTRAL}"
    assert {k: got[k] for k in ("store", "question", "seed")} == {"store": "s", "question": 0,
                                                                   "seed": 0}
    broker_text = {"kind": "timeout", "summary": "the unit did not finish within 12 s"}
    assert scrub_error(broker_text, labels, code, "r.py") == broker_text


def test_the_lint_refuses_every_answer_label_and_echoes_none():
    store = tiny_store(0, questions=2)
    labels = AnswerLabels({"s": store}).all
    gold, other = store.gold_string(0), next(a for a in store.answers[1]
                                             if a != store.gold_string(1) and a != "ERR")
    for label in (gold, other):
        src = C.GOOD.replace('reason="budget"', f'reason="{label}"')
        v = validate_source(src, labels)
        assert not v.ok and v.kind == "forbidden_code"
        line = next(i for i, t in enumerate(src.splitlines(), 1) if f'"{label}"' in t)
        assert v.reason.startswith(f"line {line}: ") and f"'{label}'" not in v.reason
        assert f'"{label}"' not in v.reason
    assert validate_source(C.GOOD.replace('reason="budget"', 'reason="ERR"'), labels).ok
    assert validate_source(C.GOOD.replace('"agree"', '"n"'), labels | {"n"}).ok  # a key name


def _long_trace():
    """Four branches agree on 120 for 20 probes; two switch to 77 (through noise)."""
    tr = [_ev("probe_new", s, "120") for s in range(4)]
    for k in range(30):
        for s in range(4):
            a = "120" if k < 20 or s > 1 else ("ERR" if k == 20 else "77")
            tr.append(_ev("probe_more", s, a, k == 29))
    tr += [{"op": "note", "event": "stop", "answer": "77"},
           {"op": "finish", "answer": "77", "tokens": 12400}]
    return tr


def test_trace_text_keeps_the_changes_and_counts_what_it_elides():
    tr = _long_trace()
    text = trace_text(tr, 2000, EpisodeAliases({"120", "77"}))
    assert text.startswith("new s0=A (maj A); ... 83 steps ...; more s0=~ERR; more s1=~ERR")
    assert "more s0=B; more s1=B" in text and text.endswith("NOTE stop answer=B; FINISH B "
                                                          "(12400 tok)")
    parts = text.split("; ")
    shown = sum(1 for p in parts if not p.startswith("... "))
    elided = sum(int(p.split()[1]) for p in parts if p.startswith("... "))
    assert shown + elided == len(tr)
    short = trace_text(tr, 120, EpisodeAliases({"120", "77"}))
    assert len(short) <= 120 and short.startswith("new s0=A") and "FINISH B" in short


def test_majority_and_branch_changes_match_a_plain_twin():
    rng = np.random.default_rng(3)
    pick = ["0", "1", "2", "3", "ERR"]
    tr = [_ev("probe_new", s, pick[rng.integers(5)]) for s in range(4)]
    tr += [_ev("probe_more", int(rng.integers(4)), pick[rng.integers(5)]) for _ in range(300)]
    latest, order, prev, got = {}, [], None, walk(tr)
    for ev, step in zip(tr, got, strict=True):
        changed = ev["op"] == "probe_more" and latest.get(ev["slot"]) not in (None, ev["answer"])
        latest[ev["slot"]] = ev["answer"]
        order += [ev["answer"]] if ev["answer"] not in order else []
        counts = {a: list(latest.values()).count(a) for a in order if a != "ERR"}
        live = [a for a in counts if counts[a]]
        top = max(live, key=lambda a: (counts[a], -order.index(a))) if live else None
        assert (step.majority, step.majority_changed, step.branch_changed) == (
            top, top != prev, changed)
        prev = top


def test_cap_trace_keeps_the_key_steps_and_overspend_across_markers():
    tr = _long_trace()
    capped = cap_trace(tr, 12)
    assert len([e for e in capped if e["op"] != SKIP]) <= 12
    assert sum(e["skipped"] if e["op"] == SKIP else 1 for e in capped) == len(tr)
    assert sum(e.get("tokens", 0) for e in capped if e["op"] != "finish") == sum(
        e.get("tokens", 0) for e in tr if e["op"] != "finish")
    assert overspend(capped) == overspend(tr)
    assert trace_text(capped, 2000, EpisodeAliases()) == trace_text(tr, 2000, EpisodeAliases())


def _result(correct, tokens):
    c = np.asarray(correct, bool)
    return EvalResult(controller="x", params={}, model="m", benchmark="aime24", split="search",
                      cost_mode="reference", seeds=list(range(c.shape[0])), correct=c,
                      tokens=np.asarray(tokens, np.int64),
                      answers=[[None] * c.shape[1]] * c.shape[0], path="sandbox", seconds=0.0)


def test_pick_traces_prefers_lost_then_overspent_skips_shown_and_unwinnable():
    store = tiny_store(1, questions=4, branches=8)
    ok = [bool(np.any(store.final_ans[q, : store.n_branches[q]] == store.gold[q]))
          for q in range(4)]
    qs = [q for q in range(4) if ok[q]]
    assert len(qs) >= 2
    mine = np.ones((2, 4), bool)
    mine[0, qs[0]] = mine[0, qs[1]] = False
    ref = np.ones((2, 4), bool)
    tokens = np.full((2, 4), 100)
    tokens[0, qs[-1]] = 900
    results = {0.5: {"s": _result(mine, tokens)}}
    traces = {0.5: {"s": [[_ev("full_read", 0, store.answers[q][0]),
                           {"op": "finish", "answer": store.answers[q][0], "tokens": 100}]
                          for q in range(4)]}}
    target = TraceTarget(0.5, "top", "round 1", {"s": ref}, {"s": [100.0] * 4})
    got = pick_traces(results, traces, {"s": store}, [target], seed=0, shown=set(), n=3)
    assert [(t["why"], t["question"]) for t in got][:2] == [("lost", qs[0]), ("lost", qs[1])]
    assert all(t["band"] == "top" and t["ref_name"] == "round 1" for t in got)
    assert all(t["question"] in qs for t in got)
    again = pick_traces(results, traces, {"s": store}, [target], 0, {("s", qs[0], 0)}, n=1)
    assert again[0]["question"] == qs[1]
    only = pick_traces(results, traces, {"s": store}, [target], 0,
                       {("s", q, 0) for q in range(4)}, n=1)
    assert only[0]["question"] == qs[0]  # nothing else qualifies: shown again
    two = pick_traces(results | {0.0: results[0.5]}, traces | {0.0: traces[0.5]},
                      {"s": store}, [target, TraceTarget(0.0, "cheapest", None, None,
                                                         {"s": [50.0] * 4})], 0, set(), n=2)
    assert [(t["band"], t["why"]) for t in two] == [("top", "lost"), ("cheapest", "overspent")]
    assert two[1]["question"] != two[0]["question"]  # not the same episode twice in a round
    for t in got + two:
        for label in store.answers[t["question"]]:
            assert label == "ERR" or f"={label}" not in t["text"]


def test_traces_shown_in_earlier_rounds_are_collected_for_the_next_pick():
    history = [{"round": 0, "kind": "seeds"},
               {"round": 1, "trace_samples": [{"store": "s", "question": 2, "seed": 0},
                                              {"store": "t", "question": 0}]},
               {"round": 2, "status": "failed", "trace_samples": None}]
    assert shown_traces(history) == {("s", 2, 0), ("t", 0, 0)}


@requires_data
def test_seed_files_pass_the_lint_with_the_published_answer_labels():
    """The published stores hold answers like ``n`` or ``False`` (broken extractions): the
    files shown to the LLM as examples must still pass the label rule."""
    from agents.synthesis.loop import answer_labels
    from agents.synthesis.seeds import FILE_OF, seed_source
    from tts_gym.paths import MODELS
    from tts_gym.store import load_store

    labels = answer_labels({f"{m}/aime24": load_store(m, "aime24", str(real_data_dir()))
                            for m in MODELS})
    assert "n" in labels  # the case this test is about
    for name in FILE_OF:
        assert validate_source(seed_source(name), labels).ok, name
