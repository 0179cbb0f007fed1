"""Kill a command at a named point and check that nothing of it is left: the one process-hygiene
helper of the tests (no machine-wide process scan anywhere).

:func:`kill_and_check` runs a small *supervisor* (this file as a script) that makes itself a
child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``), starts the command as its child, waits for
the named point, sends the command SIGKILL (or another signal) and then watches its own
descendants: since it is the subreaper, every orphan of the command is re-parented to it rather
than to init, so reading ``/proc/<pid>/task/<tid>/children`` from its own pid down finds every
process the command started, however deep or detached (``setsid``, double fork), and nothing
else on the machine. It reaps them as they exit, reports the ones still alive after the grace
period, kills those, and exits. The supervisor is a process of its own, so the test process
(pytest) never becomes a subreaper and never reaps anything it did not start.

Named points (any combination; all must hold, and still hold ``delay_s`` seconds later):

- ``marker``: a substring of the command's standard error (lines split at ``\\n`` and ``\\r``);
- ``children``: at least this many live direct children of the command (pool workers, Ray's
  processes, a fork server);
- ``candidates``: at least this many live sandboxed candidate processes (a uid of the sandbox's
  candidate range) below the command.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
UID_BASE = 1_000_000_000  # tts_gym.sandbox.child.isolation.UID_BASE (checked by a test)


@dataclass
class KillReport:
    """What :func:`kill_and_check` saw.

    Attributes:
        reached: The named point was reached (else the command was killed at the timeout).
        killed_after_s: Seconds from the command's start to the kill.
        seen: Descendants seen alive just before the kill (``pid: command line``).
        left: Descendants still alive ``grace_s`` after the kill (``pid: command line``); they
            were then killed by the supervisor.
        gone_after_s: Seconds from the kill until no descendant was left (None if some were).
        code: The command's exit code (``-9`` after SIGKILL), or None if it had ended itself.
        stderr: The end of the command's standard error.
    """

    reached: bool
    killed_after_s: float
    seen: dict[int, str]
    left: dict[int, str]
    gone_after_s: float | None
    code: int | None
    stderr: str


def kill_and_check(argv: list[str], *, env: dict[str, str] | None = None,
                   cwd: str | os.PathLike[str] | None = None, marker: str | None = None,
                   children: int = 0, candidates: int = 0, delay_s: float = 0.0,
                   sig: int = signal.SIGKILL, timeout_s: float = 120.0, grace_s: float = 10.0
                   ) -> KillReport:
    """Run ``argv``, kill it at the named point, and report what of it is left (module
    docstring). The caller asserts, typically ``report.reached and report.left == {}``."""
    spec = {"argv": argv, "env": env, "cwd": str(cwd) if cwd else None, "marker": marker,
            "children": children, "candidates": candidates, "delay_s": delay_s, "sig": int(sig),
            "timeout_s": timeout_s, "grace_s": grace_s}
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.run([sys.executable, "-s", __file__, json.dumps(spec)], cwd=root,
                          capture_output=True, text=True, timeout=timeout_s + grace_s + 60)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(f"the supervisor failed ({proc.returncode}): {proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("seen", "left"):
        out[key] = {int(k): v for k, v in out[key].items()}
    return KillReport(**out)


def cli(*args: str) -> list[str]:
    """``argv`` of ``tts-gym ARGS`` run with this checkout's code (not an installed script)."""
    return [sys.executable, "-c", "import sys; from tts_gym.cli import main; sys.exit(main())",
            *args]


# --- the supervisor (runs as a script) -----------------------------------------------------------
def children(pid: int) -> list[int]:
    """Live children of ``pid`` from ``/proc/<pid>/task/*/children`` (every thread's)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def start_time(pid: int) -> int | None:
    """When ``pid`` started (``/proc/<pid>/stat`` field 22): with the pid, one process even after
    the pid is reused; None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def state_uid(pid: int) -> tuple[str, int]:
    """(state, uid) of ``pid``; ("X", -1) once it is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state, os.stat(f"/proc/{pid}").st_uid
    except (OSError, IndexError):
        return "X", -1


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()[:160] or "?"


def descendants(pid: int) -> list[int]:
    """Every live, non-zombie process below ``pid`` (depth first)."""
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        if state_uid(p)[0] not in ("Z", "X"):
            out.append(p)
        todo += children(p)
    return out


def _reap() -> None:
    """Collect every exited child of the supervisor (orphans re-parented to it included)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _read_lines(stream: Any, out: list[str]) -> None:
    """Append the lines of ``stream`` (split at ``\\n`` and ``\\r``) to ``out`` until its end."""
    buf = b""
    while chunk := stream.read1(65536):
        buf += chunk
        *lines, buf = buf.replace(b"\r", b"\n").split(b"\n")
        out.extend(x.decode("utf-8", "replace") for x in lines)
    out.append(buf.decode("utf-8", "replace"))


def _at_point(proc: subprocess.Popen, err: list[str], spec: dict[str, Any]) -> bool:
    """Whether every condition of the named point holds now."""
    if spec["marker"] is not None and not any(spec["marker"] in line for line in list(err)):
        return False
    live = [c for c in children(proc.pid) if state_uid(c)[0] not in ("Z", "X")]
    if len(live) < spec["children"]:
        return False
    below = descendants(proc.pid)
    return sum(state_uid(p)[1] >= UID_BASE for p in below) >= spec["candidates"]


def _wait_for_point(proc: subprocess.Popen, err: list[str], spec: dict[str, Any],
                    start: float) -> float | None:
    """Wait until the named point has held for ``delay_s`` (a point that passes sooner, like
    the preflight's short probe candidate, is waited for again); returns when it was reached
    (None: the command ended first, or the timeout came)."""
    reached_at = None
    while time.monotonic() - start < spec["timeout_s"] and proc.poll() is None:
        if not _at_point(proc, err, spec):
            reached_at = None
        elif reached_at is None:
            reached_at = time.monotonic()
        elif time.monotonic() - reached_at >= spec["delay_s"]:
            break
        time.sleep(0.02)
    return reached_at


def _kill_all_below(me: int) -> None:
    """SIGKILL and reap whatever is still alive below the supervisor."""
    for _ in range(50):
        pids = descendants(me)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
        _reap()


def _supervise(spec: dict[str, Any]) -> dict[str, Any]:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    me = os.getpid()
    start = time.monotonic()
    proc = subprocess.Popen(spec["argv"], env=spec["env"], cwd=spec["cwd"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    err: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, err), daemon=True)
    reader.start()
    # the named point
    reached_at = _wait_for_point(proc, err, spec, start)
    ended_itself = proc.poll() is not None
    seen = {p: cmdline(p) for p in descendants(me)}
    # the kill
    killed = time.monotonic()
    if not ended_itself:
        os.kill(proc.pid, spec["sig"])
        try:  # SIGKILL ends it at once; another signal may take a clean shutdown
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # what is left after the grace period (orphans come to us: we are the subreaper)
    gone = None
    while time.monotonic() - killed < spec["grace_s"]:
        _reap()
        if not descendants(me):
            gone = time.monotonic() - killed
            break
        time.sleep(0.05)
    left = {p: cmdline(p) for p in descendants(me)}
    _kill_all_below(me)
    reader.join(timeout=5)
    return {"reached": reached_at is not None, "killed_after_s": round(killed - start, 3),
            "seen": seen, "left": left,
            "gone_after_s": None if gone is None else round(gone, 3),
            "code": None if ended_itself else proc.returncode,
            "stderr": "\n".join(line for line in err if line.strip())[-3000:]}


if __name__ == "__main__":
    print(json.dumps(_supervise(json.loads(sys.argv[1]))), flush=True)
