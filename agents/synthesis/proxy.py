"""What candidate code gets at run time (the second layer behind the validator).

- :func:`question_proxy`: a fresh object per episode exposing only the paper's primitives. Its
  class holds no reference to the handle, env or store as an attribute (they live in closures),
  so ``question._env.store`` does not exist even for code that slipped past the validator.
- :func:`restricted_builtins`: the builtins candidate modules are executed with: the safe list
  of :data:`~agents.synthesis.contract.SAFE_BUILTINS`, an ``__import__`` that admits only the
  allowed modules, a silent ``print``; no ``open``, ``eval``, ``getattr``...
"""

from __future__ import annotations

import builtins
import json
from typing import Any

from agents.synthesis.contract import ALLOWED_IMPORTS, SAFE_BUILTINS

MAX_NOTE_CHARS = 2000
"""Longest JSON text one ``note`` may record (longer fields are replaced by a marker)."""


def _guarded_import(name: str, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
    if level != 0 or name.split(".")[0] not in ALLOWED_IMPORTS:
        raise ImportError(f"import of {name!r} is not allowed in a candidate controller")
    return builtins.__import__(name, globals, locals, fromlist, level)


def _silent_print(*_args: Any, **_kwargs: Any) -> None:
    return None


def restricted_builtins() -> dict[str, Any]:
    """A fresh builtins dict for executing one candidate module."""
    out = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    out["__import__"] = _guarded_import
    out["__build_class__"] = builtins.__build_class__
    out["print"] = _silent_print
    return out


def _json_fields(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        text = json.dumps(fields)
    except (TypeError, ValueError):
        return {"unserialisable_fields": sorted(str(k) for k in fields)[:10]}
    if len(text) > MAX_NOTE_CHARS:
        return {"oversized_fields": len(text)}
    return json.loads(text)


def question_proxy(handle: Any) -> Any:
    """Wrap a :class:`~tts_gym.handle.QuestionHandle` so only its primitives are reachable.

    Args:
        handle: The episode's handle (trusted side).

    Returns:
        An object with ``probe_new``, ``probe_more``, ``full_read``, ``note`` and read-only
        ``tokens_used``, ``branches_left``, ``n_opened``; nothing else.
    """

    def probe_new(self):
        return handle.probe_new()

    def probe_more(self, slot):
        if isinstance(slot, bool) or not isinstance(slot, int):
            raise ValueError(f"probe_more(slot): slot must be an int from probe_new, got {slot!r}")
        return handle.probe_more(slot)

    def full_read(self):
        return handle.full_read()

    def note(self, event, **fields):
        handle.note(str(event)[:100], **_json_fields(fields))

    def prop(fn):
        return property(lambda self: fn())

    cls = type(
        "Question",
        (),
        {
            "__slots__": (),
            "probe_new": probe_new,
            "probe_more": probe_more,
            "full_read": full_read,
            "note": note,
            "tokens_used": prop(lambda: handle.tokens_used),
            "branches_left": prop(lambda: handle.branches_left),
            "n_opened": prop(lambda: handle.n_opened),
            "__repr__": lambda self: "<question>",
        },
    )
    return cls()
