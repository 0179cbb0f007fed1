"""What a worker knows about the machine it runs on: its name, and a CPU slot of its own.

Used by the Ray executor, whose workers are not forked by the caller and may share a machine
with other workers (several Ray nodes can even live on one machine): a worker claims the lowest
free CPU slot of its machine with an advisory lock that the kernel releases when the process
dies, so a replacement worker can take the slot of a lost one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from pathlib import Path

SLOT_DIR = Path(tempfile.gettempdir()) / "tts-gym-cpu-slots"
"""Lock files of CPU slots, one per CPU this process may use (shared by every worker here)."""

_HELD: list[int] = []


def cpus() -> list[int]:
    """CPUs this process may run on (sorted)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return []


def claim_slot() -> int | None:
    """This process's CPU slot on this machine (claimed once, held until the process exits), or
    None when every slot is held by another live worker."""
    if _HELD:
        return _HELD[0]
    n = len(cpus())
    with contextlib.suppress(OSError):
        SLOT_DIR.mkdir(mode=0o1777, exist_ok=True)
    for i in range(n):
        try:
            fd = os.open(SLOT_DIR / f"{i}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _HELD.append(i)
        return i
    return None


def node_label() -> str:
    """``"host (ip, Ray node abcdef123456)"``: how error messages name this machine."""
    host = socket.gethostname()
    try:
        import ray

        ctx = ray.get_runtime_context()
        ip = ray.util.get_node_ip_address()
        return f"{host} ({ip}, Ray node {ctx.get_node_id()[:12]})"
    except Exception:  # not in a Ray worker
        return host
