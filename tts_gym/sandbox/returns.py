"""What a candidate returns, typed and bounded before the trusted side uses it.

The broker decodes four kinds of candidate output from its pipe: ``schedule(beta)`` (a SCHEDULE
frame), notes, failure reports and answers (strings of a BATCH). Each decoder here takes the
raw text, never raises, and returns plain Python values of known types and bounded size,
cleaned by :mod:`tts_gym.sandbox.sanitize` (valid UTF-8, no control characters, secrets
redacted):

- **schedule**: JSON of at most :data:`MAX_SCHEDULE_BYTES`, nested at most
  :data:`MAX_SCHEDULE_DEPTH` levels (measured on the raw text before parsing); a dict, cut to
  100 items per container, 3 levels, 200 characters per string; integers outside int64 and
  non-finite floats become None. Anything else is the unit's ``schedule`` failure.
- **note**: a dict with ``event`` (100 characters) and cleaned fields (6 levels, 64 items, 500
  characters per string); anything unreadable becomes ``{"event": "unreadable note"}``.
- **failure**: ``(kind, summary, traceback, line)`` with ``kind`` one of :data:`FAILURE_KINDS`,
  a one-line summary of at most 500 characters, a traceback of at most
  :data:`~tts_gym.sandbox.child.wire.MAX_ERROR_CHARS` characters, ``line`` an int or None.
- **answer**: ``(text, over)``: the answer cut to the store's answer bound
  (:data:`tts_gym.store.limits.MAX_ANSWER_CHARS`); ``over`` says it was longer, and such an
  answer is scored wrong (no store answer is that long).
"""

from __future__ import annotations

from typing import Any

from tts_gym.sandbox.child import wire
from tts_gym.sandbox.sanitize import clean_json, clean_text, parse_json
from tts_gym.store.limits import MAX_ANSWER_CHARS, json_depth

MAX_SCHEDULE_BYTES = wire.MAX_SCHEDULE_BYTES
"""Largest SCHEDULE report (bytes of JSON text)."""

MAX_SCHEDULE_DEPTH = 16
"""Deepest nesting of a schedule's JSON accepted (levels); the kept value has 3."""

FAILURE_KINDS = ("exception", "bad_return", "watchdog", "step_limit", "memory")
"""Failure kinds a candidate process may report (anything else becomes ``exception``)."""

_INT64 = 2**63


def _bounded_ints(obj: Any) -> Any:
    """``obj`` (cleaned JSON) with integers outside int64 replaced by None."""
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return obj if -_INT64 <= obj < _INT64 else None
    if isinstance(obj, list):
        return [_bounded_ints(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _bounded_ints(v) for k, v in obj.items()}
    return obj


def decode_schedule(text: str, secrets: list[str]) -> tuple[dict[str, Any] | None,
                                                              dict[str, Any] | None]:
    """The candidate's ``schedule(beta)`` report (the SCHEDULE frame's text).

    Returns:
        ``(schedule, None)``, or ``(None, error)`` with ``error`` the unit's ``schedule``
        failure (``kind``, one-line ``summary``, ``traceback``, ``line``).
    """
    def failed(summary: Any, tb: Any = "", line: Any = None) -> tuple[None, dict[str, Any]]:
        return None, {"kind": "schedule",
                      "summary": clean_text(summary, 500, multiline=False, secrets=secrets),
                      "traceback": clean_text(tb, wire.MAX_ERROR_CHARS, secrets=secrets),
                      "line": line if isinstance(line, int) and not isinstance(line, bool)
                      else None}

    raw = text.encode("utf-8", "replace")
    if len(raw) > MAX_SCHEDULE_BYTES:
        return failed(f"schedule report of {len(raw)} bytes (limit {MAX_SCHEDULE_BYTES})")
    depth, _ = json_depth(raw, MAX_SCHEDULE_DEPTH + 2)
    if depth > MAX_SCHEDULE_DEPTH + 2:  # the report wraps the value in two levels
        return failed(f"schedule nested deeper than {MAX_SCHEDULE_DEPTH} levels")
    info = parse_json(text, MAX_SCHEDULE_BYTES)
    if not isinstance(info, dict) or not info.get("ok") or not isinstance(info.get("value"),
                                                                          dict):
        err = info.get("value") if isinstance(info, dict) else None
        if not isinstance(err, dict):
            return failed("unreadable schedule")
        return failed(err.get("summary", ""), err.get("traceback", ""), err.get("line"))
    value = clean_json(info["value"], max_depth=3, max_items=100, max_chars=200,
                       secrets=secrets)
    return _bounded_ints(value), None


def decode_note(text: str, secrets: list[str]) -> dict[str, Any]:
    """A trace note event (``{"op": "note", "event": ..., **fields}``) from its JSON text."""
    note = parse_json(text, wire.MAX_NOTE_CHARS)
    if not isinstance(note, dict):
        note = {"event": "unreadable note"}
    note = _bounded_ints(clean_json(note, secrets=secrets))
    event = clean_text(note.pop("event", ""), 100, multiline=False, secrets=secrets)
    return {"op": "note", "event": event,
            **{k: v for k, v in note.items() if k not in ("op", "event")}}


def decode_failure(text: str, secrets: list[str]) -> tuple[str, str, str, int | None]:
    """``(kind, summary, traceback, line)`` of a failure report (its JSON text)."""
    info = parse_json(text, wire.MAX_STRING_BYTES)
    if not isinstance(info, dict):
        info = {"kind": "exception", "summary": text}
    kind = info.get("kind", "exception")
    kind = kind if isinstance(kind, str) and kind in FAILURE_KINDS else "exception"
    line = info.get("line")
    line = line if isinstance(line, int) and not isinstance(line, bool) and (
        0 <= line < _INT64) else None
    return (kind, clean_text(info.get("summary", ""), 500, multiline=False, secrets=secrets),
            clean_text(info.get("traceback", ""), wire.MAX_ERROR_CHARS, secrets=secrets), line)


def decode_setup_failure(text: str, secrets: list[str]) -> dict[str, Any]:
    """The unit's ``load`` failure from the "did not load" report's JSON text."""
    _kind, summary, tb, line = decode_failure(text, secrets)
    return {"kind": "load", "summary": summary or "the file did not load", "traceback": tb,
            "line": line}


def decode_answer(text: str) -> tuple[str, bool]:
    """``(answer, over)``: the answer as the store compares it, and whether it was longer than
    the store's answer bound (then cut there; scored wrong)."""
    if len(text) > MAX_ANSWER_CHARS:
        return text[:MAX_ANSWER_CHARS], True
    return text, False
