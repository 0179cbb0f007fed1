"""The collector's HTTP/1.1 client against scripted raw-socket servers on 127.0.0.1: every way a
server may frame (or fail to frame) an answer."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable

import pytest

from tts_gym.collect.http import (
    BadResponse,
    ConnectFailed,
    Disconnected,
    HostClient,
    Timeout,
)

Script = Callable[[socket.socket, int], bool]
"""Answer the ``i``-th request read on a connection; return False to hang up after it."""


class RawServer:
    """Accepts connections; reads each request (head + Content-Length body) and runs ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf, i = b"", 0
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                if not self.script(conn, i):
                    return
                i += 1


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def ask(url: str, n: int = 1, body: bytes | tuple = b'{"x": 1}', timeout: float = 2.0):
    async def go():
        client = HostClient(url, 4)
        try:
            return [await client.request("POST", "/v1/completions", body, timeout)
                    for _ in range(n)]
        finally:
            client.close()

    return asyncio.run(go())


def test_keep_alive_reuses_one_connection_and_sends_pieces_whole() -> None:
    seen = []

    def script(conn: socket.socket, i: int) -> bool:
        conn.sendall(ok(b'{"i": %d}' % i))
        return True

    with RawServer(script) as srv:
        got = ask(srv.url, 3, body=(b'{"prompt":[', memoryview(b"1,2,3,4")[:5], b"]}"))
        seen.append(srv.connections)
    assert [r.body for r in got] == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']
    assert got[0].status == 200 and seen == [1]


def test_chunked_connection_close_and_split_packets() -> None:
    def script(conn: socket.socket, i: int) -> bool:
        if i == 0:  # chunked, delivered a few bytes at a time
            msg = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\n{\"a\"\r\n5;ext=1\r\n: 12}\r\n0\r\n\r\n")
            for k in range(0, len(msg), 7):
                conn.sendall(msg[k : k + 7])
            return True
        conn.sendall(b"HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nConnection: close\r\n"
                     b"Content-Length: 2\r\n\r\n{}")
        return False

    with RawServer(script) as srv:
        first, second = ask(srv.url, 2)
        assert first.body == b'{"a": 12}'
        assert (second.status, second.headers["retry-after"]) == (429, "3")
        third = ask(srv.url, 1)[0]  # the closed connection is not reused
        assert third.body == b'{"a": 12}' and srv.connections == 2


def test_body_delimited_by_close() -> None:
    def script(conn: socket.socket, i: int) -> bool:
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n{\"old\": true}")
        return False

    with RawServer(script) as srv:
        assert ask(srv.url)[0].body == b'{"old": true}'


def test_a_stale_idle_connection_is_replaced_silently() -> None:
    def script(conn: socket.socket, i: int) -> bool:
        conn.sendall(ok(b"{}"))
        return False  # answer, then close without saying so (an idle timeout)

    async def go():
        client = HostClient(srv.url, 4)
        a = await client.request("GET", "/v1/models", None, 2.0)
        await asyncio.sleep(0.05)
        b = await client.request("GET", "/v1/models", None, 2.0)
        client.close()
        return a, b

    with RawServer(script) as srv:
        a, b = asyncio.run(go())
        assert a.body == b.body == b"{}" and srv.connections == 2


@pytest.mark.parametrize(
    ("script", "error", "needle"),
    [
        (lambda c, i: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"cut\"") and
         False, Disconnected, "closed before the answer was complete"),
        (lambda c, i: c.sendall(b"SSH-2.0-OpenSSH\r\n\r\n") or True, BadResponse, "status line"),
        (lambda c, i: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n") or True,
         BadResponse, "Content-Length"),
        (lambda c, i: threading.Event().wait(3) or True, Timeout, "deadline"),
    ],
    ids=["dropped", "not-http", "bad-length", "stall"],
)
def test_failures_are_typed(script, error, needle) -> None:
    with RawServer(script) as srv, pytest.raises(error, match=needle):
        ask(srv.url, timeout=0.5)


def test_refused_and_bad_urls() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(ConnectFailed, match=f"cannot connect to 127.0.0.1:{port}"):
        ask(f"http://127.0.0.1:{port}")
    with pytest.raises(ValueError, match="not an http"):
        HostClient("ftp://host/v1", 1)


def test_api_key_goes_in_the_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    from tts_gym.collect.client import CollectError, api_key_from

    heads: list[bytes] = []

    def script(conn: socket.socket, i: int) -> bool:
        conn.sendall(ok(b"{}"))
        return True

    class Recording(RawServer):
        def _serve(self, conn: socket.socket) -> None:
            data = conn.recv(65536)
            heads.append(data.partition(b"\r\n\r\n")[0])
            conn.sendall(ok(b"{}"))
            conn.close()

    monkeypatch.setenv("MY_KEY", "sk-test")
    with Recording(script) as srv:

        async def go():
            client = HostClient(srv.url, 1, {"Authorization": f"Bearer {api_key_from('MY_KEY')}"})
            await client.request("GET", "/v1/models", None, 2.0)
            client.close()

        asyncio.run(go())
    assert b"Authorization: Bearer sk-test" in heads[0] and b"GET /v1/models HTTP/1.1" in heads[0]
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(CollectError, match="--api-key-env names MY_KEY, which is not set"):
        api_key_from("MY_KEY")
