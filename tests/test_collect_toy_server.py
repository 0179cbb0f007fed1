"""``tts-gym toy-server`` and collect's first contact: the packaged toy server, run as a command,
serves each engine's protocol well enough that collect writes exactly the store computed from the
toy model's plans; examples/collect_toy.py (docs/collect.md's first section) runs end to end; a
wrong address ends at once, while a server that answered once is retried."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.collect_helpers import cli_args, expected_store, read_store, write_problems
from tts_gym.cli import main
from tts_gym.collect.client import ServerPool
from tts_gym.collect.errors import CollectError
from tts_gym.collect.toy_model import TOY_PROBLEMS, ToyModel
from tts_gym.retry import RetryPolicy

ROOT = Path(__file__).resolve().parents[1]


def start_toy_server(*args: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    """``tts-gym toy-server --port 0 ARGS`` in a child process, and the URL it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "tts_gym", "toy-server", "--port", "0", *args],
                            cwd=cwd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"at (http://127\.0\.0\.1:\d+/v1);", line)
    if m is None:
        proc.kill()
        raise AssertionError(f"toy-server printed {line!r}")
    return proc, m[1]


@pytest.mark.parametrize("engine", ["vllm", "sglang", "llama.cpp"])
def test_the_toy_server_command_gives_the_reference_store(engine, tmp_path):
    problems = write_problems(tmp_path / "toy.jsonl")
    proc, url = start_toy_server("--engine", engine, cwd=tmp_path)
    try:
        assert main(cli_args(problems, [url], tmp_path / "out")) == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert read_store(tmp_path / "out") == expected_store(ToyModel())


def test_the_example_runs_collect_inspect_eval_and_gym_make(tmp_path):
    example = ROOT / "examples" / "collect_toy.py"
    proc = subprocess.run([sys.executable, str(example), str(tmp_path)], capture_output=True,
                          text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(collected): 6 questions x 16 branches" in proc.stdout
    assert re.search(r"sc \{'n': 8\} on Toy-1B/toy \(heldout\), 10 seeds", proc.stdout)
    assert "gym.make: one episode of" in proc.stdout
    problems = [dict(p) for p in TOY_PROBLEMS]
    want = expected_store(ToyModel(), problems, branches=16, interval=16, max_tokens=200, seed=0)
    assert read_store(tmp_path / "toy-stores") == want


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url", [f"http://127.0.0.1:{_closed_port()}/v1",
                                 "http://tts-gym-no-such-host.invalid:8000/v1"])
def test_nothing_answering_ends_at_once_naming_the_url(url, tmp_path, capsys):
    problems = write_problems(tmp_path / "toy.jsonl")
    argv = cli_args(problems, [url], tmp_path / "out", retries=5, retry_backoff=30)
    start = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - start < 10  # one wait of the policy would be 30 s
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ": error: " in ln]
    assert len(errors) == 1 and f"Nothing answers at {url}: cannot connect" in errors[0]
    assert "--base-url" in errors[0]
    assert not (tmp_path / "out").exists()


def _answer_once() -> tuple[str, threading.Thread]:
    """A server on 127.0.0.1 that answers one request (``Connection: close``), then stops
    listening: every later connection is refused."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", thread


def test_a_server_that_answered_once_is_retried():
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    url, thread = _answer_once()

    async def scenario() -> None:
        async with ServerPool([url], 2, RetryPolicy(max_attempts=3, backoff_s=0.5),
                              sleep=sleep) as pool:
            got = await pool.request("GET", "/v1/models", None, what="the model list", timeout=5)
            assert got is not None and got.data == {}
            thread.join(timeout=5)
            with pytest.raises(CollectError, match="the model list after 3 attempts"):
                await pool.request("GET", "/v1/models", None, what="the model list", timeout=5)

    asyncio.run(scenario())
    assert waits == [0.5, 1.0]  # refused after an answer: retried with the policy's waits


def test_a_client_hanging_up_prints_no_traceback(capsys):
    """The toy server's socketserver reports a handler's exception through ``handle_error``; a
    client that hangs up (a timeout, a cancelled run) is normal and must not print one."""
    from http.server import BaseHTTPRequestHandler

    from tts_gym.collect.toy_server import QuietServer

    server = QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        try:
            raise ConnectionResetError("the client hung up")
        except ConnectionResetError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert capsys.readouterr().err == ""
