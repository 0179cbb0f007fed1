"""A pre-warmed, gold-free fork server for candidate children (``python -m
agents.synthesis.zygote``).

Starting Python, numba and the env kernels costs seconds per candidate; the zygote pays it once.
It is spawned clean by :class:`agents.synthesis.sandbox.Zygote` (scrubbed environment, its own
session), warms the kernels on a generated fixture store (never a real one), then for every job
folder read from stdin forks a child that calls :func:`os.setsid` (its own process group, killed
as a whole by the parent on timeout), redirects its output to the job folder and runs
:func:`agents.synthesis.child.run_child`. The zygote itself never executes candidate code and
never loads a store with gold. Protocol on stdout: ``ready``, then per job ``pid N`` and
``exit N CODE``. If the discovery loop dies, the zygote kills its current child and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

from agents.synthesis import child
from tts_gym.env.replay_env import ReplayEnv
from tts_gym.handle import QuestionHandle
from tts_gym.testing import tiny_store

_current: dict[str, int | None] = {"pid": None}


def warm_up() -> None:
    """Load every env kernel the primitives use (on a tiny generated store)."""
    store = tiny_store().without_gold()
    env = ReplayEnv(store=store)
    env.reset(options={"question": 0, "shuffle_seed": 0})
    h = QuestionHandle(env)
    got = h.probe_new()
    if got is not None and not got[2]:
        h.probe_more(got[1])
    h.full_read()
    h.submit(None)


def _watch(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            pid = _current["pid"]
            if pid:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            os._exit(3)
        time.sleep(0.3)


def _fork_job(jobdir: Path) -> int:
    pid = os.fork()
    if pid == 0:  # the candidate child
        code = 1
        try:
            os.setsid()
            out = os.open(jobdir / "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(jobdir / "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            child.watch_parent()
            code = child.run_child(jobdir)
        except BaseException:  # noqa: BLE001 - report and leave, never return into the zygote
            import traceback

            with contextlib.suppress(Exception):
                traceback.print_exc()
                sys.stderr.flush()
        finally:
            os._exit(code)
    return pid


def serve() -> int:
    """The zygote's main loop."""
    threading.Thread(target=_watch, args=(os.getppid(),), daemon=True).start()
    warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        jobdir = line.strip()
        if not jobdir:
            continue
        pid = _fork_job(Path(jobdir))
        _current["pid"] = pid
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        _current["pid"] = None
        print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve())
