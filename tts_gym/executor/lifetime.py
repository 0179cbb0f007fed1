"""Processes a command starts die with it, whatever kills it (SIGKILL included).

Every process of a command is tied to its parent with ``PR_SET_PDEATHSIG(SIGKILL)``, so killing
the command kills the whole chain below it: a local pool's workers (here, first thing in a
worker), the sandbox's fork servers (:mod:`tts_gym.sandbox.child.zygote`) and the candidate
processes they fork (:mod:`tts_gym.sandbox.child.isolation`). A local Ray instance started for
the command is stopped by a guard process when the command ends
(:mod:`tts_gym.executor.ray_guard`).

Two properties of the kernel's parent-death signal shape the code:

- it is sent when the *thread* that forked the process exits, not the whole parent: a pool is
  created, used and shut down inside one :meth:`~tts_gym.executor.local.LocalExecutor.map`
  call, in the thread that calls it (``concurrent.futures`` forks workers from the thread that
  first submits), so that thread outlives the workers;
- it is armed only when ``prctl`` runs: a parent that died between the fork and the ``prctl``
  has already re-parented the child, so the child then compares ``getppid()`` with the pid it
  was given and ends itself.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> bool:
    """Have the kernel SIGKILL this process when its parent (thread) exits; if the parent
    ``parent`` is already gone, SIGKILL this process now.

    Args:
        parent: The pid of the process that forked this one (read before the fork).

    Returns:
        True when the tie is in place; False on a platform without ``prctl`` (not Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # died before the prctl: nobody would send the signal
        os.kill(os.getpid(), signal.SIGKILL)
    return True


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), read from
    ``/proc/<pid>/task/<tid>/children`` (no scan of the machine's processes)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as fh:
                    kids = [int(c) for c in fh.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out

