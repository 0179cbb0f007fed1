"""Helpers of the Ray tests: the Ray processes a test started, and comparing runs number by number.

Ray runs on 127.0.0.1 only (a local instance started by :class:`RayExecutor`, or
``ray.cluster_utils.Cluster``); every test checks that no process it started outlives it. Only
processes below the test process are looked at (:func:`own_processes`), never the machine's:
another tts-gym or Ray running on the machine is not ours. Processes are followed by identity
(:data:`Snapshot`), so one re-parented to init when its parent died is still checked.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from tests.proc_helpers import UID_BASE, cmdline, descendants, start_time, state_uid

VOLATILE = ("seconds", "eval_seconds", "signature", "candidate_cpu_s", "layers", "executor")
"""Fields that hold timings or per-process details, not results (``executor``: the provenance
record says where the work ran, which is what these tests vary)."""


Snapshot = dict[int, tuple[int | None, str]]
"""``pid -> (start time, command line)``: processes as they were, so a later check is about
the same processes even if they were re-parented (orphans) or their pids reused."""


def own_processes() -> dict[int, str]:
    """``pid -> command line`` of every process below this (test) process: a Ray instance or
    cluster it started, their workers, fork servers and candidates, a command it runs. Nothing
    else on the machine is looked at."""
    return {pid: cmdline(pid) for pid in descendants(os.getpid())}


def snapshot(procs: dict[int, str] | set[int] | list[int]) -> Snapshot:
    """The identities of ``procs`` now (see :data:`Snapshot`)."""
    return {pid: (start_time(pid), cmdline(pid)) for pid in procs}


def ray_processes() -> dict[int, str]:
    """``pid -> command line`` of the Ray processes this test process started (GCS, raylets,
    agents, workers)."""
    return {pid: cmd for pid, cmd in own_processes().items()
            if cmd.startswith("ray::") or "/site-packages/ray/" in cmd}


def task_processes(name: str) -> list[int]:
    """Pids of this test process's Ray workers running a task named ``name`` right now (Ray
    sets the process title to ``ray::<task name>`` while it runs one)."""
    return [pid for pid, cmd in ray_processes().items() if cmd.startswith(f"ray::{name}")]


def candidate_processes() -> list[int]:
    """Pids of sandboxed candidate processes (uids from the sandbox's candidate range) below
    this test process."""
    return [pid for pid in descendants(os.getpid()) if state_uid(pid)[1] >= UID_BASE]


def wait_gone(procs: Snapshot, timeout: float = 30.0) -> list[str]:
    """Wait until every process of ``procs`` has exited (wherever it was re-parented); returns
    those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p: c for p, (t, c) in procs.items() if t is not None and start_time(p) == t
                and state_uid(p)[0] not in ("Z", "X")}
        if not left or time.monotonic() > deadline:
            return [f"{p}: {c[:120]}" for p, c in left.items()]
        time.sleep(0.2)


def kill_when_running(name: str, after_s: float, timeout: float = 120.0,
                      with_children: bool = False) -> tuple[int, Snapshot] | None:
    """SIGKILL the first worker seen running task ``name`` for at least ``after_s`` seconds
    (mid-task); returns its pid and what ran below it (its fork server and candidates), or
    None if none ran that long within ``timeout``. ``with_children``: only a worker that has
    processes below it at that moment is killed (a broker whose fork server has started; on a
    loaded machine a unit can run for a while before it starts one)."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        running = set(task_processes(name))
        seen = {p: t for p, t in seen.items() if p in running}
        for pid in running:
            seen.setdefault(pid, now)
            if now - seen[pid] >= after_s:
                below = snapshot(descendants(pid))
                if with_children and not below:
                    continue
                os.kill(pid, signal.SIGKILL)
                return pid, below
        time.sleep(0.05)
    return None


def strip(obj: Any) -> Any:
    """``obj`` without :data:`VOLATILE` fields (recursively)."""
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def interrupt_when_running(argv: list[str], units: int) -> tuple[int, str, Snapshot]:
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
        started = snapshot(descendants(proc.pid))
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, proc.stderr.read().decode()[-2000:], started
