"""What a candidate returns is typed and bounded before use (tts_gym/sandbox/returns.py):
hypothesis feeds the broker's decoders arbitrary text and hostile JSON (huge integers, NaN,
infinities, deep and wide containers, control characters, lone surrogates); they never raise,
and what they return has the documented types and bounds. Plain values round-trip."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts_gym.sandbox import returns
from tts_gym.sandbox.child import wire
from tts_gym.store.limits import MAX_ANSWER_CHARS

SECRETS = ["sk-secretvalue-0123456789abcdef"]
MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300),
    st.just("\ud800 \x00 \x1b[31m " + SECRETS[0]))
json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                     st.dictionaries(st.text(max_size=20), inner, max_size=6)),
    max_leaves=60)


def bounded(value, depth: int, items: int, chars: int) -> None:
    """``value`` is JSON-typed within the given nesting, container size and string length; no
    integer beyond int64, no non-finite float, no control character, no secret."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        assert -(2**63) <= value < 2**63
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, str):
        assert len(value) <= chars and SECRETS[0] not in value
        assert not any(ord(c) < 32 and c not in "\n\t" for c in value)
        value.encode("utf-8")  # no lone surrogate
    elif isinstance(value, list):
        assert depth > 0 and len(value) <= items
        for v in value:
            bounded(v, depth - 1, items, chars)
    else:
        assert isinstance(value, dict) and depth > 0 and len(value) <= items
        for k, v in value.items():
            assert isinstance(k, str) and len(k) <= 100
            bounded(v, depth - 1, items, chars)


def _dump(obj) -> str:
    try:
        return json.dumps(obj)
    except (ValueError, OverflowError):  # an integer over Python's digit limit
        return json.dumps(str(obj))


def check_schedule(text: str) -> None:
    value, error = returns.decode_schedule(text, SECRETS)
    if error is not None:
        assert value is None and error["kind"] == "schedule"
        assert "\n" not in error["summary"] and len(error["summary"]) <= 500
        assert len(error["traceback"]) <= wire.MAX_ERROR_CHARS
        assert error["line"] is None or isinstance(error["line"], int)
        return
    assert isinstance(value, dict)
    bounded(value, 4, 100, 200)


@MANY
@given(st.text(max_size=500))
def test_schedule_from_arbitrary_text(text):
    check_schedule(text)


@MANY
@given(json_values, st.booleans())
def test_schedule_from_hostile_json(value, ok):
    check_schedule(_dump({"ok": ok, "value": value}))
    check_schedule(_dump({"ok": True, "value": {"k": value}}))


def test_schedule_deep_wide_and_huge_reports_fail_in_one_line():
    deep = '{"ok": true, "value": {"d": ' + "[" * 5000 + "]" * 5000 + "}}"
    wide = json.dumps({"ok": True, "value": {str(i): i for i in range(20000)}})
    for text, words in ((deep, "deeper than 16 levels"), (wide, "bytes (limit 65536)")):
        value, error = returns.decode_schedule(text, SECRETS)
        assert value is None and words in error["summary"], error


def test_plain_schedules_round_trip():
    plain = {"beta": 0.5, "n": 3, "name": "x", "grid": [1, 2.5, None, True], "nested": {"a": 1}}
    assert returns.decode_schedule(json.dumps({"ok": True, "value": plain}), SECRETS) == (plain,
                                                                                        None)
    value, _ = returns.decode_schedule(json.dumps(
        {"ok": True, "value": {"big": 2**63, "edge": 2**63 - 1, "nan": math.nan}}), SECRETS)
    assert value == {"big": None, "edge": 2**63 - 1, "nan": None}


@MANY
@given(st.one_of(st.text(max_size=3000), json_values.map(_dump)))
def test_notes_are_typed_and_bounded(text):
    note = returns.decode_note(text, SECRETS)
    assert note["op"] == "note" and isinstance(note["event"], str)
    assert len(note["event"]) <= 100 and "\n" not in note["event"]
    bounded({k: v for k, v in note.items() if k not in ("op", "event")}, 7, 64, 500)


def test_a_plain_note_round_trips():
    text = json.dumps({"event": "probe", "slot": 3, "agree": [1, 2], "why": "majority"})
    assert returns.decode_note(text, SECRETS) == {"op": "note", "event": "probe", "slot": 3,
                                                  "agree": [1, 2], "why": "majority"}


@MANY
@given(st.one_of(st.text(max_size=3000), json_values.map(_dump),
                 st.fixed_dictionaries({"kind": json_values, "summary": json_values,
                                        "traceback": json_values, "line": json_values}
                                       ).map(_dump)))
def test_failures_are_typed_and_bounded(text):
    kind, summary, tb, line = returns.decode_failure(text, SECRETS)
    assert kind in returns.FAILURE_KINDS
    assert isinstance(summary, str) and len(summary) <= 500 and "\n" not in summary
    assert isinstance(tb, str) and len(tb) <= wire.MAX_ERROR_CHARS
    assert line is None or (type(line) is int and 0 <= line < 2**63)
    assert SECRETS[0] not in summary + tb
    load = returns.decode_setup_failure(text, SECRETS)
    assert load["kind"] == "load" and load["summary"]


def test_a_plain_failure_round_trips():
    text = json.dumps({"kind": "watchdog", "summary": "c.py:3: stuck", "line": 3,
                       "traceback": "  File \"c.py\", line 3\nValueError: x"})
    assert returns.decode_failure(text, SECRETS) == (
        "watchdog", "c.py:3: stuck", "  File \"c.py\", line 3\nValueError: x", 3)


@MANY
@given(st.text(max_size=2 * MAX_ANSWER_CHARS))
def test_answers_are_cut_at_the_store_bound_and_flagged(text):
    answer, over = returns.decode_answer(text)
    assert over == (len(text) > MAX_ANSWER_CHARS)
    assert answer == text[:MAX_ANSWER_CHARS]
