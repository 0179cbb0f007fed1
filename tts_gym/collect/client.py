"""Requests to one or more OpenAI-compatible servers (vLLM, SGLang, llama.cpp): least-loaded
dispatch, bounded requests in flight per server, one retry policy.

Transport: :mod:`tts_gym.collect.http` (keep-alive HTTP/1.1 on asyncio; why not aiohttp or
httpx is said there). The ``openai`` package is not used either: it has no token-id prompts or
``/tokenize``, and adds its own retry layer.

Every request goes through one :class:`~tts_gym.retry.RetryPolicy` and one
:class:`~tts_gym.collect.dispatch.Dispatcher`: a transient failure (429, 5xx, timeout, refused or
dropped connection, a body that is not the JSON promised, a reply that fails the caller's
``check``) is retried on the least-loaded server after the policy's wait; anything else, or the
last attempt, raises :class:`~tts_gym.collect.errors.CollectError` with one sentence. A server
that never answered is not waited for: a refused connection or an unknown host there ends the run
at once, naming the URL (retries are for servers that answered once and stumble).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tts_gym.collect.dispatch import Dispatcher
from tts_gym.collect.errors import CollectError
from tts_gym.collect.http import (
    BadResponse,
    ConnectFailed,
    Disconnected,
    HostClient,
    Timeout,
)
from tts_gym.retry import RetryPolicy, parse_retry_after, retryable_status


class BadReply(Exception):
    """A reply that parsed but breaks the protocol (raised by a ``check``; retried)."""


class _Failure(Exception):
    def __init__(self, what: str, *, retryable: bool, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(what)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


def api_roots(url: str) -> tuple[str, str]:
    """``(api_root, server_root)`` of a base URL given with or without ``/v1``.

    >>> api_roots("http://127.0.0.1:8000/v1/"), api_roots("http://h:8000")
    (('http://127.0.0.1:8000/v1', 'http://127.0.0.1:8000'), ('http://h:8000/v1', 'http://h:8000'))
    """
    url = url.rstrip("/")
    if url.endswith("/v1"):
        return url, url[: -len("/v1")]
    return url + "/v1", url


def _server_message(raw: bytes) -> str:
    """The error message of an OpenAI-style error body (both vLLM layouts), else the text."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw[:200].decode("utf-8", "replace").strip()
    if isinstance(obj, dict):
        inner = obj.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(obj.get("message"), str):
            return obj["message"]
        if isinstance(inner, str):
            return inner
    return raw[:200].decode("utf-8", "replace").strip()


@dataclass
class Reply:
    """A successful reply: the decoded JSON object, the server index, the attempts made and what
    the caller's ``check`` returned."""

    data: dict[str, Any]
    server: int
    attempts: int
    checked: Any = None


@dataclass
class Stats:
    """Request accounting over the whole run (goes to the metadata)."""

    requests: int = 0
    failures: Counter[int | str] = field(default_factory=Counter)

    @property
    def retries(self) -> int:
        """Failed attempts that were retried or ended the run."""
        return sum(self.failures.values())


class ServerPool:
    """Sessions to one or more servers, least-loaded dispatch, one retry policy.

    Args:
        urls: Base URLs (``http://host:port/v1``; the ``/v1`` may be left out).
        limit: Requests in flight per server.
        policy: Retry policy.
        api_key: Bearer token for every request (None: no header).
        sleep: Injected in tests.
    """

    def __init__(
        self,
        urls: Sequence[str],
        limit: int,
        policy: RetryPolicy,
        api_key: str | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.roots = [api_roots(u) for u in urls]
        self.policy = policy
        self.dispatcher = Dispatcher(len(urls), limit)
        self.stats = Stats()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.answered: set[int] = set()
        """Servers that have sent at least one HTTP answer (any status)."""
        self._clients: list[HostClient] = []
        for api, _root in self.roots:
            try:
                self._clients.append(HostClient(api, limit, headers))
            except ValueError:
                raise CollectError(
                    f"--base-url {api!r} is not an http:// or https:// URL; give the server as "
                    "http://HOST:PORT/v1."
                ) from None
        self._sleep = sleep

    async def __aenter__(self) -> ServerPool:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for client in self._clients:
            client.close()

    def url(self, server: int, path: str) -> str:
        """Absolute URL of ``path``: ``/v1/...`` paths under the API root, others at the root."""
        api, root = self.roots[server]
        return api + path[3:] if path.startswith("/v1/") else root + path

    async def _once(self, server: int, method: str, path: str,
                    body: bytes | tuple[bytes | memoryview, ...] | None, timeout: float
                    ) -> dict[str, Any]:
        url = self.url(server, path)
        self.stats.requests += 1
        try:
            resp = await self._clients[server].request(method, urlsplit(url).path, body, timeout)
        except Timeout:
            raise _Failure(f"no complete answer from {url} within {timeout:g} s",
                           retryable=True) from None
        except ConnectFailed as exc:
            if server not in self.answered:  # a wrong address or a server not started
                raise CollectError(
                    f"Nothing answers at {self.urls[server]}: {exc}; start the server or fix "
                    "--base-url (host and port)."
                ) from None
            raise _Failure(f"{exc} for {url}", retryable=True) from None
        except Disconnected:
            raise _Failure(f"the connection to {url} broke mid-reply", retryable=True) from None
        except BadResponse as exc:
            raise _Failure(f"{url} did not answer in HTTP ({exc})", retryable=True) from None
        self.answered.add(server)
        if resp.status != 200:
            raise _Failure(
                f"{url} answered HTTP {resp.status}: {_server_message(resp.body)}",
                retryable=retryable_status(resp.status),
                retry_after=parse_retry_after(resp.headers.get("retry-after")),
                status=resp.status,
            )
        try:
            data = json.loads(resp.body)
        except (ValueError, UnicodeDecodeError):
            head = resp.body[:60].decode("utf-8", "replace")
            raise _Failure(f"{url} answered with a body that is not JSON ({head!r}...)",
                           retryable=True) from None
        if not isinstance(data, dict):
            raise _Failure(f"{url} answered JSON that is not an object", retryable=True)
        return data

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | tuple[bytes | memoryview, ...] | None,
        *,
        what: str,
        timeout: float,
        prefer: int | None = None,
        server: int | None = None,
        check: Callable[[dict[str, Any]], Any] | None = None,
        fatal: Callable[[str, int | None], str] | None = None,
        tolerate: Collection[int] = (),
        detecting: bool = False,
    ) -> Reply | None:
        """Send one request, retrying transient failures.

        Args:
            method: ``"GET"`` or ``"POST"``.
            path: ``/v1/completions``, ``/tokenize``, ...
            body: JSON bytes, or its pieces (POST).
            what: How errors name the request ("the generation of question 3, branch 7").
            timeout: Seconds for the whole exchange.
            prefer: Server to use when it is among the least loaded.
            server: Use exactly this server, outside the dispatcher (start-up checks).
            check: Raises :class:`BadReply` on a reply that breaks the protocol (retried); what
                it returns is kept in :attr:`Reply.checked`.
            fatal: Turns a non-retryable failure (message, HTTP status) into the sentence
                raised; default: the message and "check the server".
            tolerate: HTTP statuses that mean "not supported here": return None for them.
            detecting: A reply the ``check`` refuses means "not this format": return None at
                once instead of retrying (engine detection).

        Raises:
            CollectError: A non-retryable failure, or the last attempt failed.
        """
        last = ""
        for attempt in range(1, self.policy.max_attempts + 1):
            i = await self.dispatcher.acquire(prefer) if server is None else server
            try:
                data = await self._once(i, method, path, body, timeout)
                return Reply(data, i, attempt, None if check is None else check(data))
            except _Failure as exc:
                self.stats.failures[exc.status or "network"] += 1
                if not exc.retryable:
                    if exc.status in tolerate:
                        return None
                    if fatal is not None:
                        raise CollectError(fatal(str(exc), exc.status)) from None
                    raise CollectError(
                        f"Giving up on {what}: {exc}; check the server and the arguments "
                        "(progress is saved: rerun the same command to continue)."
                    ) from None
                last, retry_after = str(exc), exc.retry_after
            except BadReply as exc:
                if detecting:
                    return None
                self.stats.failures["bad reply"] += 1
                last, retry_after = f"{self.url(i, path)} sent a reply that {exc}", None
            finally:
                if server is None:
                    self.dispatcher.release(i)
            if attempt < self.policy.max_attempts:
                wait = self.policy.delay(attempt, retry_after)
                self.dispatcher.cool(i, wait)
                await self._sleep(wait)
        raise CollectError(
            f"Giving up on {what} after {self.policy.max_attempts} attempts: {last}; check the "
            "server (progress is saved: rerun the same command to continue)."
        )


def api_key_from(env_var: str | None) -> str | None:
    """The key in ``env_var`` (``--api-key-env``); a named but unset variable is an error."""
    if not env_var:
        return None
    key = os.environ.get(env_var)
    if not key:
        raise CollectError(
            f"--api-key-env names {env_var}, which is not set; export it or drop the option "
            "(a local server takes no key)."
        )
    return key
