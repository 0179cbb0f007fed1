"""Cleaning text and JSON that came from an untrusted process or server.

Every string the candidate process sends (exception text, notes, answers, schedules) passes
through here in the broker before it can reach a history file, a prompt, a report or a log:
re-encoded to valid UTF-8 (a lone surrogate becomes ``?``), stripped of control characters,
length-capped, and scrubbed of anything that equals a secret of this process's environment
(``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*`` variables) or looks like an API key.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_KEY_LIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{16,}|sk-or-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,})")
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
REDACTED = "[redacted]"


def secret_values() -> list[str]:
    """Values of this process's environment variables that name a secret (8+ characters)."""
    return sorted(
        {v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8},
        key=len,
        reverse=True,
    )


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every secret value and API-key-like token replaced by ``[redacted]``."""
    for value in secret_values() if secrets is None else secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return _KEY_LIKE.sub(REDACTED, text)


def clean_text(value: Any, max_chars: int, *, multiline: bool = True,
               secrets: list[str] | None = None) -> str:
    """A safe string: valid UTF-8, no control characters (newlines and tabs kept when
    ``multiline``), at most ``max_chars`` characters, secrets redacted (``secrets``: the values
    of :func:`secret_values`, when the caller already has them)."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8", "replace")
    text = _CONTROL.sub("?", text)
    if not multiline:
        text = text.replace("\n", " ").replace("\t", " ")
    if len(text) > max_chars:
        text = text[: max(0, max_chars - 3)] + "..."
    return redact(text, secrets)


def clean_json(obj: Any, *, max_depth: int = 6, max_items: int = 64, max_chars: int = 500,
               secrets: list[str] | None = None) -> Any:
    """A copy of parsed JSON with every string cleaned and containers bounded.

    Deeper nesting than ``max_depth`` becomes the string ``"..."``; lists and dicts keep their
    first ``max_items`` entries; non-finite floats become None.
    """
    if secrets is None:
        secrets = secret_values()  # once per call tree, not once per string
    if max_depth < 0:
        return "..."
    if isinstance(obj, str):
        return clean_text(obj, max_chars, secrets=secrets)
    if isinstance(obj, bool) or obj is None or isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    kw: dict[str, Any] = {"max_depth": max_depth - 1, "max_items": max_items,
                          "max_chars": max_chars, "secrets": secrets}
    if isinstance(obj, list):
        return [clean_json(v, **kw) for v in obj[:max_items]]
    if isinstance(obj, dict):
        return {clean_text(k, 100, multiline=False, secrets=secrets): clean_json(v, **kw)
                for k, v in list(obj.items())[:max_items]}
    return clean_text(repr(obj), max_chars, secrets=secrets)


def parse_json(text: str, max_chars: int) -> Any:
    """Parse untrusted JSON text defensively: None if it is too long, invalid or too deep."""
    if len(text) > max_chars:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
