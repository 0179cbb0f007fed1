"""The LLM client: any OpenAI-compatible chat-completions endpoint through the ``openai`` client.

Retries live in ONE layer, here: the ``openai`` client is built with ``max_retries=0`` and
:meth:`LLMClient.complete` retries 429, 5xx, timeouts and connection errors with exponential
backoff (honouring ``Retry-After`` up to the cap). Every reply's token usage is recorded and
priced (:class:`Pricing`, USD per million tokens); :class:`Budget` stops the loop cleanly once
``--budget-usd`` or ``--max-tokens-total`` is reached.

Nothing in a reply is trusted to be well formed (:func:`reply_text`, :func:`token_count`): a
token count that is not an integer in ``[0, MAX_REPLY_TOKENS]`` (a string, a nested object, a
negative number, ``1e400`` which JSON decodes to infinity) is ignored with a warning and the
count is estimated from the text instead, as for a server that reports no usage; a reply whose
text is not a string counts as empty. So an endpoint can neither crash the loop nor shrink what
the budget sees.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"

MAX_REPLY_TOKENS = 10**9
"""Largest token count believed of one reply (prompt or completion); more is ignored."""

CHARS_PER_TOKEN = 4
"""Estimate used when a reply reports no (believable) usage: ~4 characters per token."""


def token_count(value: Any) -> int | None:
    """``value`` as a token count, or None when it is not believable: an int (or a float with an
    integral, finite value) in ``[0, MAX_REPLY_TOKENS]``; never raises."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= MAX_REPLY_TOKENS else None


def _shown(value: Any) -> str:
    """A short, safe description of an untrusted value for a warning."""
    text = repr(value) if isinstance(value, (int, float, bool)) or value is None else (
        f"a {type(value).__name__}")
    return text[:40]


def reply_text(resp: Any) -> tuple[str, str | None, list[str]]:
    """``(text, finish_reason, problems)`` of a chat-completion response whose fields may be of
    any type (the ``openai`` client does not validate them); never raises."""
    problems = []
    choices = getattr(resp, "choices", None)
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    if content is not None and not isinstance(content, str):
        problems.append(f"message content is {_shown(content)}, not text (counted as empty)")
    text = content if isinstance(content, str) else ""
    reason = getattr(choice, "finish_reason", None)
    return text, reason if isinstance(reason, str) else None, problems


class LLMError(RuntimeError):
    """The endpoint failed for good (non-retryable error, or retries exhausted)."""


@dataclass(frozen=True)
class Pricing:
    """USD per million prompt / completion tokens (0 = unpriced)."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for one call."""
        return (
            prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok
        ) / 1e6

    @property
    def priced(self) -> bool:
        """True when any price is configured."""
        return self.input_per_mtok > 0 or self.output_per_mtok > 0


@dataclass
class Budget:
    """Hard limits over the whole run (None = unlimited) and what was spent so far."""

    max_usd: float | None = None
    max_tokens: int | None = None
    spent_usd: float = 0.0
    spent_tokens: int = 0

    def add(self, usage: dict[str, Any]) -> None:
        """Account one call's ``usage`` dict (``total_tokens``, ``cost_usd``, as
        :meth:`LLMClient.complete` records them; anything else counts as 0)."""
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        cost = usage.get("cost_usd") if isinstance(usage, dict) else None
        self.spent_tokens += token_count(tokens) or 0
        finite = isinstance(cost, (int, float)) and math.isfinite(cost) and cost >= 0
        self.spent_usd += float(cost) if finite else 0.0

    def exhausted(self) -> str | None:
        """Why no further call may be made, or None."""
        if self.max_usd is not None and self.spent_usd >= self.max_usd:
            return f"budget reached: ${self.spent_usd:.4f} spent of ${self.max_usd:.4f}"
        if self.max_tokens is not None and self.spent_tokens >= self.max_tokens:
            return f"token budget reached: {self.spent_tokens} of {self.max_tokens} tokens"
        return None


@dataclass(frozen=True)
class LLMConfig:
    """How to reach the endpoint.

    Attributes:
        model: Model name as the endpoint knows it.
        base_url: Endpoint root (``.../v1``); None = ``OPENAI_BASE_URL`` or OpenAI.
        api_key_env: Environment variable holding the key (a local server takes any key).
        timeout_s: Per-request timeout (seconds).
        max_attempts: Attempts per call, retries included.
        backoff_s: First backoff; doubles each retry up to ``max_backoff_s``.
        temperature: Sampling temperature (None = server default).
        max_output_tokens: Cap on completion tokens per call (None = server default).
    """

    model: str
    base_url: str | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    timeout_s: float = 600.0
    max_attempts: int = 6
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    temperature: float | None = None
    max_output_tokens: int | None = None


@dataclass
class LLMReply:
    """One completed call: the text and its accounting."""

    text: str
    usage: dict[str, Any]
    """``prompt_tokens``, ``completion_tokens``, ``total_tokens`` (ints), ``estimated`` (any
    count estimated from the text), ``cost_usd``; ``ignored``: the reported fields that were not
    believable (present only then)."""
    attempts: int
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored in the history)."""
        return {
            "text": self.text,
            "usage": self.usage,
            "attempts": self.attempts,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "finish_reason": self.finish_reason,
        }


def _retry_after(exc: Exception) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if not headers:
        return None
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


class LLMClient:
    """Chat completions with retries, usage and pricing.

    Args:
        config: Endpoint and retry settings.
        pricing: Prices for the cost column.
        sleep: Injected for tests.
        warn: Where a warning about a malformed reply goes (default: standard error, as the
            loop's log).
    """

    def __init__(
        self,
        config: LLMConfig,
        pricing: Pricing | None = None,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        import openai

        self.config = config
        self.pricing = pricing or Pricing()
        self._sleep = sleep
        self._warn = warn or (lambda msg: print(msg, file=sys.stderr, flush=True))
        key = os.environ.get(config.api_key_env) or "not-needed-by-a-local-server"
        self._openai = openai
        self.base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.client = openai.OpenAI(
            base_url=self.base_url,
            api_key=key,
            timeout=config.timeout_s,
            max_retries=0,
        )

    def preflight(self, timeout_s: float = 10.0) -> str:
        """Check before round 0 that the key is there (or not needed), the endpoint answers and
        serves the model (where it lists its models). Returns a one-line description.

        Raises:
            LLMError: One sentence naming the key variable, the URL or the model.
        """
        url = self.base_url or "https://api.openai.com/v1"
        local = any(h in url for h in ("://127.0.0.1", "://localhost", "://[::1]", "://0.0.0.0"))
        if not os.environ.get(self.config.api_key_env) and not local:
            raise LLMError(
                f"no API key: set {self.config.api_key_env} (or name another variable with "
                f"--api-key-env) for {url}; a local server that needs no key is reached through "
                "--base-url http://127.0.0.1:PORT/v1")
        o = self._openai
        try:
            listed = [m.id for m in self.client.with_options(timeout=timeout_s).models.list()]
        except o.AuthenticationError as exc:
            raise LLMError(f"{url} refused the API key in {self.config.api_key_env}: "
                           f"{str(exc)[:200]}") from None
        except (o.APIConnectionError, o.APITimeoutError) as exc:
            raise LLMError(f"cannot reach {url} ({type(exc).__name__}: {str(exc)[:120]}); check "
                           "--base-url and that the server is up") from None
        except (o.APIStatusError, TypeError, ValueError, AttributeError):
            return f"{url} answers (it does not list its models)"
        if listed and self.config.model not in listed:
            shown = ", ".join(listed[:8]) + (" ..." if len(listed) > 8 else "")
            raise LLMError(f"{url} does not serve the model {self.config.model!r} (it serves: "
                           f"{shown}); check --model-name")
        return f"{url} answers and serves {self.config.model}"

    def _retryable(self, exc: Exception) -> bool:
        o = self._openai
        if isinstance(exc, (o.RateLimitError, o.APITimeoutError, o.APIConnectionError)):
            return True
        return isinstance(exc, o.APIStatusError) and exc.status_code >= 500

    def _usage(self, resp: Any, messages: Sequence[dict[str, Any]], text: str) -> dict:
        """The reply's token usage, each count checked (:func:`token_count`) and estimated from
        the text (~4 characters per token) when absent or not believable."""
        u = getattr(resp, "usage", None)
        reported = {k: getattr(u, k, None) for k in ("prompt_tokens", "completion_tokens")}
        prompt_chars = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str))
        estimates = {"prompt_tokens": prompt_chars // CHARS_PER_TOKEN,
                     "completion_tokens": len(text) // CHARS_PER_TOKEN}
        counts, ignored = {}, []
        for key, value in reported.items():
            counts[key] = token_count(value)
            if counts[key] is None:
                counts[key] = estimates[key]
                if value is not None:
                    ignored.append(key)
                    self._warn(f"WARNING: {self.base_url or 'the endpoint'} reported "
                               f"usage.{key} = {_shown(value)}, not a token count in 0.."
                               f"{MAX_REPLY_TOKENS:,}; ignored, estimated from the text as "
                               f"{counts[key]:,}")
        if u is not None and not any(hasattr(u, k) for k in reported):
            ignored.append("usage")
            self._warn(f"WARNING: {self.base_url or 'the endpoint'} reported usage as "
                       f"{_shown(u)}; ignored, tokens estimated from the text")
        pt, ct = counts["prompt_tokens"], counts["completion_tokens"]
        estimated = any(token_count(v) is None for v in reported.values())
        return {
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "total_tokens": pt + ct,
            "estimated": estimated,
            "cost_usd": round(self.pricing.cost(pt, ct), 6),
            **({"ignored": ignored} if ignored else {}),
        }

    def complete(self, messages: Sequence[dict[str, str]]) -> LLMReply:
        """Send ``messages``; retry transient failures; return the reply.

        Raises:
            LLMError: A non-retryable error, or ``max_attempts`` failures in a row.
        """
        cfg = self.config
        extra: dict[str, Any] = {}
        if cfg.temperature is not None:
            extra["temperature"] = cfg.temperature
        if cfg.max_output_tokens is not None:
            extra["max_tokens"] = cfg.max_output_tokens
        errors: list[str] = []
        start = time.monotonic()
        for attempt in range(1, cfg.max_attempts + 1):
            try:
                resp = self.client.chat.completions.create(
                    model=cfg.model, messages=list(messages), **extra
                )
            except self._openai.OpenAIError as exc:
                errors.append(f"attempt {attempt}: {type(exc).__name__}: {str(exc)[:200]}")
                if not self._retryable(exc):
                    raise LLMError(f"{type(exc).__name__}: {exc}") from exc
                if attempt == cfg.max_attempts:
                    break
                wait = min(cfg.max_backoff_s, cfg.backoff_s * 2 ** (attempt - 1))
                hinted = _retry_after(exc)
                if hinted is not None:
                    wait = min(cfg.max_backoff_s, max(wait, hinted))
                self._sleep(wait)
                continue
            text, reason, problems = reply_text(resp)
            for problem in problems:
                self._warn(f"WARNING: {self.base_url or 'the endpoint'}'s reply: {problem}")
            return LLMReply(
                text=text,
                usage=self._usage(resp, messages, text),
                attempts=attempt,
                errors=errors,
                seconds=time.monotonic() - start,
                finish_reason=reason,
            )
        raise LLMError(f"gave up after {cfg.max_attempts} attempts: {errors[-1] if errors else ''}")
