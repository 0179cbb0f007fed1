"""A small HTTP/1.1 client on asyncio: keep-alive connections to one server, JSON in and out.

Why not aiohttp or httpx: the collector sends hundreds of thousands of small requests, and the
client's own CPU per request must stay a small fraction of the server's time per request. On the
development machine (2 shared cores) a bare aiohttp POST costs ~250 µs of client CPU and an httpx
one several milliseconds, while this client costs ~50 µs (``benchmarks/bench_collect.py``): it
does only what the completions API needs: ``POST``/``GET``, ``Content-Length`` or chunked
bodies, keep-alive with a bounded pool of connections per server, TLS for ``https://``
(the system's default certificates), a deadline per request.

Errors are :class:`HTTPError` subclasses with a sentence-ready message: :class:`ConnectFailed`
(refused, unreachable, TLS), :class:`Disconnected` (the connection broke mid-reply),
:class:`Timeout`, :class:`BadResponse` (not HTTP). A request that fails on a *reused* idle
connection before any byte of the answer arrived (the server closed it meanwhile) is sent once
more on a fresh connection, as browsers do; that does not count as a failure.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class HTTPError(Exception):
    """A request got no complete HTTP answer."""


class ConnectFailed(HTTPError):
    """The connection could not be made."""


class Disconnected(HTTPError):
    """The connection closed before the answer was complete."""

    def __init__(self, message: str, got_bytes: bool) -> None:
        super().__init__(message)
        self.got_bytes = got_bytes


class Timeout(HTTPError):
    """No complete answer within the deadline."""


class BadResponse(HTTPError):
    """The bytes received are not an HTTP/1.x response."""


@dataclass(frozen=True)
class Response:
    """A complete answer: status, lower-cased headers, body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


SEND_BUFFER = 1 << 20
"""Socket send buffer asked for (bytes): a probe body fits, so it costs one ``send``."""

MAX_HEAD = 64 * 1024
"""Longest accepted status line + headers (bytes)."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection; parses one response at a time."""

    def __init__(self, raw: socket.socket | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.raw = raw  # plain TCP: the socket itself, for scatter-gather sends
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.reusable = True
        self.got_bytes = False
        self._head: tuple[int, dict[str, str]] | None = None
        self._need = -1  # body bytes still expected; -2: chunked; -3: until close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a late probe's body (~120 KB) leaves in one send() call
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            except OSError:
                pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._need == -3 and self._head is not None:  # body delimited by the close
            self._finish(bytes(self.buf))
            return
        self._fail(Disconnected("the connection closed before the answer was complete",
                                self.got_bytes))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    def start(self, parts: tuple[bytes | memoryview, ...], waiter: asyncio.Future[Response]
              ) -> None:
        self.waiter = waiter
        self.got_bytes = False
        self._head = None
        self._need = -1
        self.buf.clear()
        transport = self.transport
        assert transport is not None
        if self.raw is None or transport.get_write_buffer_size() or len(parts) == 1:
            transport.write(b"".join(parts))
            return
        try:  # one sendmsg, no copy of a 120 KB probe body (what 3.12's writelines does)
            sent = self.raw.sendmsg(parts)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            transport.write(b"".join(parts))  # let the transport meet the error and report it
            return
        rest = [memoryview(p) for p in parts]
        while rest and sent >= len(rest[0]):
            sent -= len(rest.pop(0))
        if rest:
            rest[0] = rest[0][sent:]
            transport.write(b"".join(rest))

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.buf += data
        try:
            self._parse()
        except BadResponse as exc:
            self._fail(exc)
            self.abort()

    def _parse(self) -> None:
        if self._head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    raise BadResponse("the answer's headers are too long")
                return
            self._head = _parse_head(bytes(self.buf[:end]))
            del self.buf[: end + 4]
            status, headers = self._head
            if headers.get("connection", "").lower() == "close":
                self.reusable = False
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._need = -2
            elif "content-length" in headers:
                try:
                    self._need = int(headers["content-length"])
                except ValueError:
                    raise BadResponse("the answer has a bad Content-Length") from None
            elif status in (204, 304) or 100 <= status < 200:
                self._need = 0
            else:
                self._need = -3
                self.reusable = False
        if self._need >= 0:
            if len(self.buf) >= self._need:
                body = bytes(self.buf[: self._need])
                del self.buf[: self._need]
                self._finish(body)
        elif self._need == -2:
            chunked = _dechunk(self.buf)
            if chunked is not None:
                self._finish(chunked)

    def _finish(self, body: bytes) -> None:
        assert self._head is not None
        status, headers = self._head
        self._head = None
        self._need = -1
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(Response(status, headers, body))

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BadResponse(f"the answer does not start with an HTTP/1.x status line "
                          f"({lines[0][:40]!r})")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def _dechunk(buf: bytearray) -> bytes | None:
    """The body of a complete chunked message in ``buf`` (None: not complete yet)."""
    out, pos = bytearray(), 0
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(bytes(buf[pos:end]).split(b";")[0], 16)
        except ValueError:
            raise BadResponse("the answer has a bad chunk size") from None
        start = end + 2
        if size == 0:  # the last chunk; then optional trailer lines and an empty line
            if buf[start : start + 2] != b"\r\n" and buf.find(b"\r\n\r\n", start) < 0:
                return None
            del buf[:]
            return bytes(out)
        if len(buf) < start + size + 2:
            return None
        out += buf[start : start + size]
        pos = start + size + 2


class HostClient:
    """Keep-alive connections to one server.

    Args:
        base_url: ``http(s)://host[:port]`` (any path is ignored; request paths are absolute).
        limit: Connections kept at most (the caller bounds requests in flight to the same).
        headers: Extra headers sent with every request (``Authorization``).
    """

    def __init__(self, base_url: str, limit: int, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = self.port == (443 if self.tls else 80)
        host_header = self.host if default_port else f"{self.host}:{self.port}"
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._fixed = f"Host: {host_header}\r\nAccept: application/json\r\n{extra}".encode()
        self.limit = limit
        self._idle: list[_Conn] = []

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            if self.tls is not None:
                _t, conn = await loop.create_connection(
                    _Conn, self.host, self.port, ssl=self.tls, server_hostname=self.host
                )
                return conn
            raw = await self._tcp_socket(loop)
            _t, conn = await loop.create_connection(lambda: _Conn(raw), sock=raw)
            return conn
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port} ({reason})") from None

    async def _tcp_socket(self, loop: asyncio.AbstractEventLoop) -> socket.socket:
        """A connected non-blocking TCP socket (each resolved address in turn)."""
        last: OSError = OSError(f"{self.host} did not resolve")
        for family, kind, proto, _name, addr in await loop.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, addr)
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last

    async def request(self, method: str, path: str,
                      body: bytes | tuple[bytes | memoryview, ...] | None, timeout: float
                      ) -> Response:
        """Send one request and wait for the complete answer (at most ``timeout`` seconds).

        Args:
            method: ``"GET"`` or ``"POST"``.
            path: Absolute path (``/v1/completions``).
            body: JSON bytes, or the pieces to send one after the other (never copied on plain
                TCP), or None.
            timeout: Seconds for the whole exchange, connecting included.

        Raises:
            HTTPError: see the module docstring.
        """
        pieces = () if body is None else (body,) if isinstance(body, bytes) else body
        size = sum(len(p) for p in pieces)
        start = f"{method} {path} HTTP/1.1\r\n".encode() + self._fixed
        if body is None:
            head: tuple[bytes | memoryview, ...] = (start + b"\r\n",)
        else:
            head = (start + b"Content-Type: application/json\r\nContent-Length: "
                    + str(size).encode() + b"\r\n\r\n" + (pieces[0] if pieces else b""),
                    *pieces[1:])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for fresh in (False, True):
            conn = None
            while not fresh and self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            reused = conn is not None
            if conn is None:
                try:
                    conn = await asyncio.wait_for(self._connect(),
                                                  max(0.001, deadline - loop.time()))
                except asyncio.TimeoutError:
                    raise Timeout("could not connect before the deadline") from None
            try:
                return await self._exchange(conn, head, deadline)
            except Disconnected as exc:
                if reused and not exc.got_bytes:
                    continue  # the server closed an idle connection: once more, fresh
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, conn: _Conn, data: tuple[bytes | memoryview, ...], deadline: float
                        ) -> Response:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        conn.start(data, waiter)
        timer = loop.call_at(deadline, _expire, waiter, conn)
        try:
            response = await waiter
        except BaseException:
            conn.abort()
            raise
        finally:
            timer.cancel()
        if conn.reusable and not conn.closed and len(self._idle) < self.limit:
            self._idle.append(conn)
        else:
            conn.abort()
        return response

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self._idle:
            conn.abort()
        self._idle.clear()


def _expire(waiter: asyncio.Future[Response], conn: _Conn) -> None:
    if not waiter.done():
        waiter.set_exception(Timeout("no complete answer before the deadline"))
    conn.abort()
