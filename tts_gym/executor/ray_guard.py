"""Stops a command's local Ray instance when the command dies, whatever kills it.

A local Ray instance's GCS and raylet are children of the command and die with it (Ray ties them
with a parent-death signal), and Ray's workers die with the raylet; but the raylet's agent
processes only notice its death by polling and then try to report it to the (dead) GCS, so they
linger (still running 20 s after a ``kill -9`` of the command, measured). :class:`RayGuard`
starts this file as a small process of its own (its own session: a signal to the command's
process group does not reach it) that holds the read end of a pipe only the command writes to.
The command tells it the processes of its instance (``pid start-time`` lines); when the pipe
ends (the command exited, normally or by SIGKILL) the guard SIGKILLs each of them that still
runs with the same start time (so a reused pid is never hit), and exits. It imports only the
standard library.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

_STARTTIME_FIELD = 19  # in the fields after the command name of /proc/<pid>/stat


def _start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[_STARTTIME_FIELD])
    except (OSError, IndexError, ValueError):
        return None


def guard(stream) -> int:
    """Read ``pid start-time`` lines until end of input, then kill those processes."""
    watched: dict[int, int] = {}
    for line in stream:
        try:
            pid, started = (int(x) for x in line.split())
        except ValueError:
            continue
        watched[pid] = started
    for pid, started in watched.items():
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return 0


class RayGuard:
    """The command's side: start the guard, tell it processes to stop when the command ends."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-B", os.path.abspath(__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, text=True)
        self._sent: set[tuple[int, int]] = set()

    def watch(self, pids: list[int]) -> None:
        """Stop ``pids`` (as they are now: pid and start time) when this process ends."""
        lines = []
        for pid in pids:
            started = _start_time(pid)
            if pid != self.proc.pid and started is not None and (pid, started) not in self._sent:
                self._sent.add((pid, started))
                lines.append(f"{pid} {started}\n")
        if lines and self.proc.stdin is not None:
            try:
                self.proc.stdin.write("".join(lines))
                self.proc.stdin.flush()
            except OSError:
                pass

    def close(self) -> None:
        """End the guard now (it stops whatever of the instance still runs) and reap it."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    sys.exit(guard(sys.stdin))
