"""Helpers of the Ray tests: Ray's processes on this machine, and comparing runs number by number.

Ray runs on 127.0.0.1 only (a local instance started by :class:`RayExecutor`, or
``ray.cluster_utils.Cluster``); every test checks that no process it started outlives it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

VOLATILE = ("seconds", "eval_seconds", "signature", "candidate_cpu_s", "layers")
"""Fields that hold timings or per-process details, not results."""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", "replace")
    except OSError:
        return ""


def ray_processes() -> dict[int, str]:
    """``pid -> command line`` of every Ray process on this machine (GCS, raylets, agents,
    workers)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        cmd = _cmdline(int(entry))
        if cmd.startswith("ray::") or "/site-packages/ray/" in cmd:
            out[int(entry)] = cmd
    return out


def task_processes(name: str) -> list[int]:
    """Pids of Ray workers running a task named ``name`` right now (Ray sets the process title
    to ``ray::<task name>`` while it runs one)."""
    return [pid for pid, cmd in ray_processes().items() if cmd.startswith(f"ray::{name}")]


def candidate_processes() -> list[int]:
    """Pids of sandboxed candidate processes (uids from the sandbox's candidate range)."""
    from tts_gym.sandbox.child.isolation import UID_BASE

    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}")
        except OSError:
            continue
        if st.st_uid >= UID_BASE:
            pids.append(int(entry))
    return pids


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out.update(kids)
        todo.extend(kids)
    return out


def wait_gone(before: dict[int, str] | set[int], timeout: float = 30.0) -> list[str]:
    """Wait until every Ray process not in ``before`` has exited; returns those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p: c for p, c in ray_processes().items() if p not in before}
        if not left or time.monotonic() > deadline:
            return [f"{p}: {c[:120]}" for p, c in left.items()]
        time.sleep(0.2)


def kill_when_running(name: str, after_s: float, timeout: float = 120.0) -> int | None:
    """SIGKILL the first worker seen running task ``name`` for at least ``after_s`` seconds
    (mid-task); returns its pid, or None if none ran that long within ``timeout``."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        running = set(task_processes(name))
        seen = {p: t for p, t in seen.items() if p in running}
        for pid in running:
            seen.setdefault(pid, now)
            if now - seen[pid] >= after_s:
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.05)
    return None


def strip(obj: Any) -> Any:
    """``obj`` without :data:`VOLATILE` fields (recursively)."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def interrupt_when_running(argv: list[str], units: int) -> tuple[int, str, set[int]]:
    """Run the ``tts-gym`` command ``argv`` in a subprocess, send it SIGINT once ``units``
    sandboxed units run, and wait for it. Returns its exit code, the end of its stderr, and the
    processes it had started by then (Ray's, workers, fork servers, candidates)."""
    import subprocess
    import sys

    # Python's own SIGINT handler, as under a terminal: a test run started as a background job
    # (no job control) inherits SIGINT ignored, and Python then installs no handler
    cli = [sys.executable, "-c", "import signal, sys; "
           "signal.signal(signal.SIGINT, signal.default_int_handler); "
           "from tts_gym.cli import main; sys.exit(main())"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([*cli, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    try:
        deadline = time.monotonic() + 120
        while len(task_processes("tts-gym-unit")) < units and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.1)
        assert len(task_processes("tts-gym-unit")) >= units, "the units did not start"
        started = descendants(proc.pid)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, proc.stderr.read().decode()[-2000:], started
