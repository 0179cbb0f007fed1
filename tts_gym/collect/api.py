"""The OpenAI-compatible completions reply as the collector reads it (probes, text mode).

``POST /v1/completions`` with ``prompt`` as token ids (vLLM, SGLang, llama.cpp) or text;
generated token ids, when asked for, come back in ``choices[0].token_ids`` (vLLM >= 0.10.2 with
``return_token_ids``), as ``"token_id:N"`` logprob tokens (older vLLM) or in
``logprobs.content[].id`` (llama.cpp with ``logprobs >= 1``); ``usage.completion_tokens`` counts
them. Engine detection, tokenizing and the native generation endpoints are in
:mod:`~tts_gym.collect.engines` and :mod:`~tts_gym.collect.dialects`.

Replies are checked before use (:func:`check_completion`): a reply that breaks the protocol is a
transient failure the retry policy handles, never data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeGuard

from tts_gym.collect.client import BadReply

FINISH_REASONS = ("stop", "length")
NOT_SUPPORTED = frozenset({400, 404, 405, 422, 501})
"""Statuses that mean "this server does not do that" during detection."""


@dataclass(frozen=True)
class Completion:
    """One checked completion choice.

    Attributes:
        text: Generated text.
        finish_reason: ``"stop"`` or ``"length"``.
        token_ids: Generated token ids when the server returned them, else None.
        offsets: Character offset of each generated token in ``text`` (logprobs), else None.
        completion_tokens: Generated tokens (``usage``).
        prompt_tokens: Prompt tokens (``usage``).
    """

    text: str
    finish_reason: str
    token_ids: list[int] | None
    offsets: list[int] | None
    completion_tokens: int
    prompt_tokens: int


def _ids_from_logprobs(tokens: Any) -> list[int] | None:
    if not isinstance(tokens, list) or not tokens:
        return None
    out = []
    for t in tokens:
        if not isinstance(t, str) or not t.startswith("token_id:"):
            return None
        try:
            out.append(int(t[len("token_id:") :]))
        except ValueError:
            return None
    return out


def _ids_from_content(content: Any) -> list[int] | None:
    """llama.cpp's ``logprobs.content[].id`` (``logprobs >= 1``), or None."""
    if not isinstance(content, list) or not content:
        return None
    ids = [c.get("id") if isinstance(c, dict) else None for c in content]
    return ids if int_list(ids) else None  # type: ignore[return-value]


def int_list(value: Any) -> TypeGuard[list[int]]:
    """Whether ``value`` is a list of non-negative ints (no bools)."""
    return isinstance(value, list) and all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in value
    )


def parse_completion(data: dict[str, Any], max_tokens: int) -> Completion:
    """Check a ``/v1/completions`` reply and take its first choice.

    Raises:
        BadReply: No choice, a missing or unknown finish reason, no usage, token ids that
            disagree with the usage, more tokens than asked, or ``length`` with fewer tokens
            than asked (a server cutting short; vLLM refuses such requests instead).
    """
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadReply("has no choices")
    choice = choices[0]
    text = choice.get("text")
    if not isinstance(text, str):
        raise BadReply("has no text in its choice")
    finish = choice.get("finish_reason")
    if finish not in FINISH_REASONS:
        raise BadReply(f"has finish_reason {finish!r} (expected 'stop' or 'length')")
    usage = data.get("usage")
    if not isinstance(usage, dict) or not isinstance(usage.get("completion_tokens"), int):
        raise BadReply("has no usage.completion_tokens")
    n = usage["completion_tokens"]
    given = usage.get("prompt_tokens")
    prompt_tokens = given if isinstance(given, int) else 0
    ids = choice.get("token_ids")
    logprobs = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else None
    if ids is None and logprobs is not None:
        ids = _ids_from_logprobs(logprobs.get("tokens"))
        if ids is None:
            ids = _ids_from_content(logprobs.get("content"))
    if ids is not None:
        if not int_list(ids):
            raise BadReply("has token ids that are not non-negative integers")
        if len(ids) != n:
            raise BadReply(f"has {len(ids)} token ids but usage.completion_tokens = {n}")
    offsets = None
    if logprobs is not None and int_list(logprobs.get("text_offset")):
        offsets = logprobs["text_offset"]
        if len(offsets) != n:
            offsets = None
    if n > max_tokens:
        raise BadReply(f"has {n} tokens, more than the {max_tokens} asked for")
    if finish == "length" and n < max_tokens:
        raise BadReply(
            f"stopped for 'length' after {n} of {max_tokens} tokens (fewer tokens than asked)"
        )
    return Completion(text, finish, ids, offsets, n, prompt_tokens)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (non-ASCII kept as UTF-8)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


