"""The OpenAI-compatible completions protocol as the collector speaks it (vLLM's dialect first).

* ``POST /v1/completions`` with ``prompt`` as token ids (vLLM, SGLang, llama.cpp) or text;
  generated token ids come back in ``choices[0].token_ids`` (vLLM >= 0.10.2 with
  ``return_token_ids``) or as ``"token_id:N"`` logprob tokens (``logprobs`` with
  ``return_tokens_as_token_ids``, older vLLM); ``usage.completion_tokens`` counts them.
* ``POST /tokenize``: vLLM's ``{"model", "prompt", "add_special_tokens"} -> {"tokens"}``, else
  llama.cpp's ``{"content", "add_special"} -> {"tokens"}``.
* ``GET /v1/models``: the served names (and vLLM's ``max_model_len``).

Replies are checked before use (:func:`check_completion`): a reply that breaks the protocol is a
transient failure the retry policy handles, never data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tts_gym.collect.client import BadReply, CollectError, ServerPool

FINISH_REASONS = ("stop", "length")
NOT_SUPPORTED = frozenset({400, 404, 405, 422, 501})
"""Statuses that mean "this server does not do that" during capability checks."""


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


def _int_list(value: Any) -> bool:
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
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage.get("prompt_tokens"), int) else 0
    ids = choice.get("token_ids")
    logprobs = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else None
    if ids is None and logprobs is not None:
        ids = _ids_from_logprobs(logprobs.get("tokens"))
    if ids is not None:
        if not _int_list(ids):
            raise BadReply("has token ids that are not non-negative integers")
        if len(ids) != n:
            raise BadReply(f"has {len(ids)} token ids but usage.completion_tokens = {n}")
    offsets = None
    if logprobs is not None and _int_list(logprobs.get("text_offset")):
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


async def served_models(pool: ServerPool, server: int, timeout: float) -> dict[str, int | None]:
    """``{model id: max_model_len or None}`` served by one server (``GET /v1/models``)."""
    reply = await pool.request(
        "GET", "/v1/models", None, what=f"the model list of {pool.urls[server]}",
        timeout=timeout, server=server,
        fatal=lambda msg, status: (
            f"{msg}; is {pool.urls[server]} an OpenAI-compatible server (vLLM, SGLang, "
            "llama.cpp)? Give --base-url as http://HOST:PORT/v1."
        ),
    )
    data = reply.data.get("data")
    if not isinstance(data, list):
        raise CollectError(
            f"{pool.urls[server]}/models did not list models; is it an OpenAI-compatible server?"
        )
    out: dict[str, int | None] = {}
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            mml = item.get("max_model_len")
            out[item["id"]] = mml if isinstance(mml, int) else None
    return out


async def tokenize(
    pool: ServerPool, model: str, text: str, timeout: float, server: int | None = None
) -> list[int] | None:
    """Token ids of ``text`` without special tokens added, or None if the server cannot tell.

    Tries vLLM's ``/tokenize`` body, then llama.cpp's; a 404/400/422 on both means "no tokenizer
    endpoint".
    """
    bodies = (
        {"model": model, "prompt": text, "add_special_tokens": False},
        {"content": text, "add_special": False},
    )
    for body in bodies:
        reply = await pool.request(
            "POST", "/tokenize", dumps(body), what="a tokenize request", timeout=timeout,
            server=server, tolerate=NOT_SUPPORTED,
        )
        if reply is None:
            continue
        tokens = reply.data.get("tokens")
        if _int_list(tokens):
            return tokens
    return None


@dataclass(frozen=True)
class Capabilities:
    """What one server can do, found by two tiny completions (:func:`detect`).

    Attributes:
        tokenize: ``/tokenize`` works.
        token_prompts: Token-id prompts are accepted.
        token_ids: Generated ids come back in ``choices[0].token_ids`` (``return_token_ids``).
        logprob_ids: Generated ids come back as ``"token_id:N"`` logprob tokens.
        offsets: Logprobs with ``text_offset`` come back for text prompts.
    """

    tokenize: bool
    token_prompts: bool
    token_ids: bool
    logprob_ids: bool
    offsets: bool

    def best_mode(self) -> str:
        """The most exact token mode this server supports."""
        if self.tokenize and self.token_prompts and (self.token_ids or self.logprob_ids):
            return "ids"
        if self.tokenize and self.token_prompts:
            return "tokenize"
        return "text"

    def supports(self, mode: str) -> bool:
        """Whether ``mode`` works on this server."""
        return MODE_ORDER.index(mode) <= MODE_ORDER.index(self.best_mode())


MODE_ORDER = ("text", "tokenize", "ids")
"""Token modes from least to most exact."""


async def _try_completion(pool: ServerPool, server: int, body: dict[str, Any], timeout: float
                          ) -> dict[str, Any] | None:
    reply = await pool.request(
        "POST", "/v1/completions", dumps(body), what="a capability check", timeout=timeout,
        server=server, tolerate=NOT_SUPPORTED,
    )
    return None if reply is None else reply.data


async def detect(pool: ServerPool, server: int, model: str, timeout: float) -> Capabilities:
    """Probe one server with two-token completions to find its token capabilities."""
    ids = await tokenize(pool, model, "Hello", timeout, server=server)
    base = {"model": model, "max_tokens": 2, "temperature": 0.0}
    token_prompts = token_ids = logprob_ids = False
    if ids:
        data = await _try_completion(
            pool, server,
            {**base, "prompt": ids, "return_token_ids": True, "logprobs": 0,
             "return_tokens_as_token_ids": True},
            timeout,
        )
        if data is not None:
            token_prompts = True
            choice = (data.get("choices") or [{}])[0]
            if isinstance(choice, dict):
                token_ids = bool(_int_list(choice.get("token_ids")) and choice["token_ids"])
                lp = choice.get("logprobs")
                logprob_ids = isinstance(lp, dict) and (
                    _ids_from_logprobs(lp.get("tokens")) is not None
                )
    data = await _try_completion(pool, server, {**base, "prompt": "Hello", "logprobs": 0}, timeout)
    offsets = False
    if data is not None:
        choice = (data.get("choices") or [{}])[0]
        lp = choice.get("logprobs") if isinstance(choice, dict) else None
        offsets = isinstance(lp, dict) and _int_list(lp.get("text_offset"))
    elif not token_prompts:
        raise CollectError(
            f"{pool.urls[server]} accepts neither text nor token-id prompts on /v1/completions "
            f"for model {model!r}; tts-gym collect needs the (legacy) completions API."
        )
    return Capabilities(ids is not None, token_prompts, token_ids, logprob_ids, offsets)
