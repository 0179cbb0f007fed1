"""The LLM client: any OpenAI-compatible chat-completions endpoint through the ``openai`` client.

Retries live in ONE layer, here: the ``openai`` client is built with ``max_retries=0`` and
:meth:`LLMClient.complete` retries 429, 5xx, timeouts and connection errors with exponential
backoff (honouring ``Retry-After`` up to the cap). Every reply's token usage is recorded and
priced (:class:`Pricing`, USD per million tokens); :class:`Budget` stops the loop cleanly once
``--budget-usd`` or ``--max-tokens-total`` is reached.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"


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
        """Account one call's ``usage`` dict (``total_tokens``, ``cost_usd``)."""
        self.spent_tokens += int(usage.get("total_tokens", 0))
        self.spent_usd += float(usage.get("cost_usd", 0.0))

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
    """

    def __init__(
        self,
        config: LLMConfig,
        pricing: Pricing | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import openai

        self.config = config
        self.pricing = pricing or Pricing()
        self._sleep = sleep
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

    def _usage(self, resp: Any, messages: Sequence[dict[str, str]], text: str) -> dict:
        u = getattr(resp, "usage", None)
        if u is not None and getattr(u, "prompt_tokens", None) is not None:
            pt, ct, estimated = int(u.prompt_tokens), int(u.completion_tokens or 0), False
        else:  # some local servers omit usage: ~4 characters per token
            pt = sum(len(m["content"]) for m in messages) // 4
            ct, estimated = len(text) // 4, True
        return {
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "total_tokens": pt + ct,
            "estimated": estimated,
            "cost_usd": round(self.pricing.cost(pt, ct), 6),
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
            choice = resp.choices[0] if resp.choices else None
            text = (choice.message.content or "") if choice is not None else ""
            return LLMReply(
                text=text,
                usage=self._usage(resp, messages, text),
                attempts=attempt,
                errors=errors,
                seconds=time.monotonic() - start,
                finish_reason=getattr(choice, "finish_reason", None),
            )
        raise LLMError(f"gave up after {cfg.max_attempts} attempts: {errors[-1] if errors else ''}")
