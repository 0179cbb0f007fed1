"""One retry policy for every network client of tts-gym (``collect``; discovery may share it).

Transient failures (HTTP 408, 409, 429, 5xx, timeouts, refused or dropped connections, a body that
is not the JSON the protocol promises) are retried with exponential backoff: ``backoff_s`` before
the second attempt, doubling each time, capped at ``max_backoff_s``; a server's ``Retry-After``
(seconds) lengthens the wait up to the same cap. No jitter: waits are reproducible, and the
collector's dispatcher already spreads load by moving a retried request to the least-loaded
server. This is the policy of the discovery client (``agents/synthesis/llm.py``: 6 attempts, 2 s,
60 s cap), written once here so both can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRYABLE_STATUS: frozenset[int] = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt (other 5xx also count: :func:`retryable_status`)."""


def retryable_status(code: int) -> bool:
    """True for statuses a later attempt may fix (rate limits, overload, server errors).

    >>> [retryable_status(c) for c in (200, 400, 404, 429, 500, 503)]
    [False, False, False, True, True, True]
    """
    return code in RETRYABLE_STATUS or (500 <= code < 600 and code != 501)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds only; an HTTP date is ignored).

    >>> parse_retry_after("2"), parse_retry_after("0.5"), parse_retry_after("soon")
    (2.0, 0.5, None)
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried.

    Attributes:
        max_attempts: Attempts per request, the first one included (>= 1).
        backoff_s: Wait before the second attempt, in seconds; doubles each retry.
        max_backoff_s: Cap on any wait, ``Retry-After`` included, in seconds.
    """

    max_attempts: int = 6
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff times must be >= 0")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        >>> p = RetryPolicy(backoff_s=1.0, max_backoff_s=5.0)
        >>> [p.delay(a) for a in (1, 2, 3, 4)], p.delay(1, retry_after=3.0), p.delay(1, 99.0)
        ([1.0, 2.0, 4.0, 5.0], 3.0, 5.0)
        """
        wait = self.backoff_s * 2 ** (attempt - 1)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(self.max_backoff_s, wait)
