"""Run untrusted candidate code in a child process and collect its answers (parent side).

The child (:mod:`agents.synthesis.child`) runs in its own process group/session with a scrubbed
environment (no API keys), gets gold-free store copies (:meth:`ReplayStore.without_gold`) and
lowers its own RLIMIT_AS / RLIMIT_CPU / RLIMIT_FSIZE before executing candidate code. The parent
enforces a wall-clock limit from the moment the child reports ready and kills the whole process
group with SIGKILL when it expires. Children are forked by a pre-warmed, gold-free fork server
(:mod:`agents.synthesis.zygote`, ``mode="zygote"``, the default: no seconds of imports per
candidate) or started as fresh interpreters (``mode="spawn"``). Results come back as JSON
(never pickle: the child is untrusted); scoring against gold happens in the parent
(:mod:`agents.synthesis.scoring`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts_gym.store import ReplayStore

_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
MAX_RESULT_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one candidate evaluation.

    Attributes:
        timeout_s: Wall-clock seconds from "ready" to the end (then the group is killed).
        startup_s: Wall-clock seconds allowed for imports and warm-up before "ready".
        memory_mb: Extra address space the child may map beyond its size at "ready" (MiB).
        cpu_s: CPU seconds for candidate code (RLIMIT_CPU, per process); default timeout_s + 5.
        workers: Processes the child splits the (store, beta) runs over (same group, same limits).
    """

    timeout_s: float = 600.0
    startup_s: float = 180.0
    memory_mb: int = 2048
    cpu_s: float | None = None
    workers: int = 1


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith("NUMBA_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def _tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _wait_ready(proc: subprocess.Popen, ready: Path, startup_s: float) -> bool:
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if ready.exists():
            return True
        if proc.poll() is not None:
            return ready.exists()
        time.sleep(0.02)
    return ready.exists()


def run_in_sandbox(
    source: str,
    stores: Mapping[str, ReplayStore],
    betas: Sequence[float],
    seeds: Sequence[int],
    limits: SandboxLimits | None = None,
    *,
    trace_beta: float | None = None,
    max_branches: int = 64,
    cost_mode: str = "reference",
    mode: str = "zygote",
) -> dict[str, Any]:
    """Play a candidate on every (store, beta) in a sandboxed child.

    Args:
        source: The candidate file (already validated).
        stores: ``key -> store``; gold is removed here before anything reaches the child.
        betas: The beta sweep.
        seeds: Shuffle seeds of the protocol.
        limits: Time and memory limits.
        trace_beta: The beta whose seed-0 traces are returned (size-capped).
        max_branches: Branch ceiling of the env (64).
        cost_mode: ``"reference"`` or ``"exact"``.
        mode: ``"zygote"`` (fork from the shared warm server) or ``"spawn"`` (new interpreter).

    Returns:
        The child's JSON result plus ``seconds``; ``status`` is ``"ok"``, ``"error"``
        (``kind``: runtime, memory, schedule), ``"timeout"``, ``"cpu_limit"``, ``"crashed"``
        or ``"startup_failed"``.
    """
    limits = limits or SandboxLimits()
    job = {
        "source": source,
        "stores": {k: s.without_gold() for k, s in stores.items()},
        "betas": [float(b) for b in betas],
        "seeds": [int(s) for s in seeds],
        "trace_beta": trace_beta,
        "max_branches": max_branches,
        "cost_mode": cost_mode,
        "memory_mb": int(limits.memory_mb),
        "cpu_s": float(limits.cpu_s if limits.cpu_s is not None else limits.timeout_s + 5),
        "workers": int(limits.workers),
    }
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tts-sandbox-") as tmp:
        jobdir = Path(tmp)
        with open(jobdir / "job.pkl", "wb") as fh:
            pickle.dump(job, fh, protocol=pickle.HIGHEST_PROTOCOL)
        out = shared_zygote().run(jobdir, limits) if mode == "zygote" else _launch(jobdir, limits)
    out["seconds"] = round(time.monotonic() - start, 3)
    return out


def _launch(jobdir: Path, limits: SandboxLimits) -> dict[str, Any]:
    with open(jobdir / "stdout", "wb") as so, open(jobdir / "stderr", "wb") as se:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agents.synthesis.child", str(jobdir)],
            stdin=subprocess.DEVNULL,
            stdout=so,
            stderr=se,
            env=_child_env(),
            start_new_session=True,
        )
    try:
        if not _wait_ready(proc, jobdir / "ready", limits.startup_s):
            _kill_group(proc)
            return {"status": "startup_failed", "error": _tail(jobdir / "stderr")}
        try:
            proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return {"status": "timeout", "error": f"killed after {limits.timeout_s:g} s"}
    finally:
        if proc.poll() is None:
            _kill_group(proc)
        else:  # reap any grandchildren left in the group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    return _read_result(jobdir, proc.returncode)


def _read_result(jobdir: Path, code: int) -> dict[str, Any]:
    path = jobdir / "result.json"
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and not path.exists():
        return {"status": "cpu_limit", "error": "CPU time limit exceeded"}
    if code != 0 or not path.exists():
        err = _tail(jobdir / "stderr")
        kind = "memory" if "MemoryError" in err else "crash"
        return {"status": "crashed", "kind": kind, "error": f"exit code {code}: {err}"}
    if path.stat().st_size > MAX_RESULT_BYTES:
        return {"status": "crashed", "error": "result too large"}
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        return {"status": "crashed", "error": f"unreadable result: {exc}"}


class ZygoteError(RuntimeError):
    """The fork server misbehaved (it is restarted on the next job)."""


class Zygote:
    """Parent-side handle of the fork server (:mod:`agents.synthesis.zygote`)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.buf = b""

    def _line(self, deadline: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(left, 0.05))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise ZygoteError("the fork server exited")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def start(self, startup_s: float) -> None:
        """Spawn the server and wait for its ``ready`` (kills a stale one first)."""
        self.close()
        self.buf = b""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agents.synthesis.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_child_env(),
            start_new_session=True,
            bufsize=0,
        )
        if self._line(time.monotonic() + startup_s) != "ready":
            self.close()
            raise ZygoteError(f"the fork server did not start within {startup_s:g} s")

    def close(self) -> None:
        """Kill the server (and anything in its group)."""
        if self.proc is not None:
            _kill_group(self.proc)
            for f in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(Exception):
                    f.close()
            self.proc = None

    def run(self, jobdir: Path, limits: SandboxLimits) -> dict[str, Any]:
        """Run one job folder in a forked child with the wall-clock limit."""
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.start(limits.startup_s)
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(f"{jobdir}\n".encode())
            self.proc.stdin.flush()
            line = self._line(time.monotonic() + 60)
            if not line or not line.startswith("pid "):
                raise ZygoteError(f"unexpected fork-server reply {line!r}")
            pid = int(line.split()[1])
            return self._wait(pid, jobdir, limits)
        except (ZygoteError, OSError, ValueError) as exc:
            self.close()
            return {"status": "startup_failed", "error": f"sandbox: {exc}"}

    def _wait(self, pid: int, jobdir: Path, limits: SandboxLimits) -> dict[str, Any]:
        deadline = time.monotonic() + limits.startup_s
        line = None
        while not (jobdir / "ready").exists():
            line = self._line(min(deadline, time.monotonic() + 0.05))
            if line is not None or time.monotonic() >= deadline:
                break
        timed_out = False
        if line is None and (jobdir / "ready").exists():
            line = self._line(time.monotonic() + limits.timeout_s)
            timed_out = line is None
        if line is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            line = self._line(time.monotonic() + 30)
            if line is None:
                raise ZygoteError("a killed child was not reaped")
            if not timed_out:
                return {"status": "startup_failed", "error": _tail(jobdir / "stderr")}
            return {"status": "timeout", "error": f"killed after {limits.timeout_s:g} s"}
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # anything the child left behind in its group
        code = int(line.split()[2])
        return _read_result(jobdir, code)


_SHARED: Zygote | None = None


def shared_zygote() -> Zygote:
    """The process-wide fork server (started on first use, killed at exit)."""
    global _SHARED
    if _SHARED is None:
        import atexit

        _SHARED = Zygote()
        atexit.register(_SHARED.close)
    return _SHARED
