"""The broker's side of the fork server: start it clean, ask it for isolated candidate children.

:class:`ZygoteClient` starts :mod:`tts_gym.sandbox.child.zygote` as a freshly executed
interpreter (``subprocess``, not a fork of this process, which may hold gold answers and API
keys) with a minimal environment, an empty working directory and its own session, connected
by a ``SOCK_SEQPACKET`` socket pair. For each candidate process it creates two pipes,
passes the child's ends over the socket (``SCM_RIGHTS``) and keeps its own.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import multiprocessing
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tts_gym.candidate import MAX_COUNT
from tts_gym.kernels.votes import beta_conf_table

T = TypeVar("T")

ZYGOTE_SCRIPT = Path(__file__).parent / "child" / "zygote.py"

CHILD_ENV = {
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "LANG": "C.UTF-8",
    "PATH": "/usr/bin:/bin",
}
"""The whole environment of the fork server (and so of candidates, which then clear it): BLAS
pools pinned to one thread before numpy loads (a refused thread makes OpenBLAS spin), a fixed
hash seed so set iteration is reproducible, and nothing inherited from the caller."""


WORKDIR_PREFIX = "tts-sandbox-"
"""Working folders of fork servers: ``<tmp>/tts-sandbox-<broker pid>-<random>`` (empty)."""


def remove_stale_workdirs() -> None:
    """Remove the empty working folders of fork servers whose broker died without cleaning up
    (a killed worker: Ray stops its workers with SIGKILL)."""
    for path in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = path.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            path.rmdir()


class SandboxUnavailable(RuntimeError):
    """The fork server could not start or died (the message says why)."""


@dataclass
class ChildProcess:
    """The broker's handles on one candidate process.

    Attributes:
        pid: Its process id (a child of the fork server).
        to_child: Write end of the pipe to it.
        from_child: Read end of the pipe from it.
    """

    pid: int
    to_child: int
    from_child: int

    def close(self) -> None:
        """Close the broker's descriptors (the process itself is reaped by the fork server)."""
        for fd in (self.to_child, self.from_child):
            with contextlib.suppress(OSError):
                os.close(fd)


class ZygoteClient:
    """One fork server, owned by one broker process (not thread-safe; not shared by forks)."""

    def __init__(self, startup_s: float = 60.0) -> None:
        self.startup_s = startup_s
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.owner = os.getpid()
        self.info: dict[str, Any] = {}
        self.placement: tuple[Any, ...] | None = None  # set by acquire()
        self.workdir: str | None = None
        self.borrowed = False  # lent by the parent of this pool worker (see lend())

    def running(self) -> bool:
        """Its fork server was started by this process, or lent to it, and has not exited."""
        if self.proc is None or self.owner != os.getpid():
            return False
        if self.borrowed:  # not our child: poll() cannot tell, /proc can
            return self.sock is not None and _alive(self.proc.pid)
        return self.proc.poll() is None

    def adopt(self) -> bool:
        """Use, in this forked pool worker, a fork server its parent started and lent
        (:func:`lend`). The fork server takes this worker's CPU affinity and scheduling policy,
        so the candidates it forks inherit them. False when it is not there to adopt."""
        if self.proc is None or self.sock is None or not _alive(self.proc.pid):
            return False
        try:
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(self.proc.pid, os.sched_getaffinity(0))
                os.sched_setscheduler(self.proc.pid, os.sched_getscheduler(0),
                                      os.sched_getparam(0))
        except OSError:
            return False
        self.owner = os.getpid()
        self.borrowed = True
        return True

    def _request(
        self, obj: dict[str, Any], fds: tuple[int, ...] = (), timeout: float = 30.0
    ) -> dict[str, Any]:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        try:
            if fds:
                socket.send_fds(self.sock, [json.dumps(obj).encode()], list(fds))
            else:
                self.sock.send(json.dumps(obj).encode())
            reply = self.sock.recv(1 << 16)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise SandboxUnavailable(f"the sandbox fork server stopped answering ({exc})") from exc
        if not reply:
            self.close()
            raise SandboxUnavailable("the sandbox fork server exited")
        return json.loads(reply)

    def start(self) -> None:
        """Start the fork server (idempotent) and wait until it is ready.

        It inherits this process's CPU affinity (and so do candidate processes): a broker
        pinned to one CPU talks to its candidates without waking another CPU per round.

        Raises:
            SandboxUnavailable: It did not start within ``startup_s``.
        """
        if self.running():
            return
        self.proc = None  # a fork of the owner must not use the owner's server
        self.owner = os.getpid()
        self.borrowed = False
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        remove_stale_workdirs()
        self.workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")
        os.chmod(self.workdir, 0o711)
        err = tempfile.TemporaryFile()
        try:
            self.proc = in_lasting_thread(lambda: subprocess.Popen(
                [sys.executable, "-s", "-B", str(ZYGOTE_SCRIPT), str(child.fileno()),
                 str(os.getpid())],
                env=dict(CHILD_ENV),
                cwd=self.workdir,
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            ))
        finally:
            child.close()
        self.sock = parent
        table = np.ascontiguousarray(beta_conf_table(MAX_COUNT), np.float64)
        head = json.dumps({"cmd": "init", "table_size": table.shape[0]}).encode()
        start = time.monotonic()
        try:
            self.sock.settimeout(self.startup_s)
            self.sock.send(head + b"\0" + table.tobytes())
            reply = self.sock.recv(1 << 16)
        except (OSError, TimeoutError):
            reply = b""
        if not reply:
            err.seek(0)
            tail = err.read()[-2000:].decode("utf-8", "replace")
            self.close()
            raise SandboxUnavailable(
                f"the sandbox fork server did not start within {time.monotonic() - start:.0f} s"
                + (f": {tail.strip()}" if tail.strip() else "")
            )
        err.close()
        self.info = json.loads(reply)

    def spawn(self, plan: dict[str, Any]) -> ChildProcess:
        """Fork one isolated candidate process.

        Args:
            plan: Isolation settings for :func:`tts_gym.sandbox.child.isolation.apply`
                (``memory_mb``, ``cpu_s``, ``netns``).
        """
        warm = self.running()
        self.start()
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        try:
            try:
                reply = self._request({"cmd": "spawn", "plan": plan}, (to_r, from_w))
            except SandboxUnavailable:
                if not warm:
                    raise
                # a fork server kept from an earlier command died meanwhile: start a new one
                self.start()
                reply = self._request({"cmd": "spawn", "plan": plan}, (to_r, from_w))
        except BaseException:
            for fd in (to_w, from_r):
                os.close(fd)
            raise
        finally:
            for fd in (to_r, from_w):
                os.close(fd)
        return ChildProcess(int(reply["pid"]), to_w, from_r)

    def reap(self, child: ChildProcess) -> int:
        """Kill ``child`` if it still runs, collect its exit code, close its descriptors."""
        try:
            reply = self._request({"cmd": "reap", "pid": child.pid})
            return int(reply["code"])
        finally:
            child.close()

    def close(self) -> None:
        """Stop the fork server (it kills its children) and remove its working directory; a
        borrowed one is only let go (its owner keeps it)."""
        if self.borrowed:
            if self.sock is not None:
                with contextlib.suppress(OSError):
                    self.sock.close()  # this worker's copy of the descriptor
            self.sock = self.proc = self.workdir = None
            self.borrowed = False
            return
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        if self.proc is not None and self.owner == os.getpid():
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
            if self.proc.poll() is None:
                with contextlib.suppress(Exception):
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


_KEEPER: dict[str, Any] = {}
_KEEPER_LOCK = threading.Lock()


def in_lasting_thread(start: Callable[[], T]) -> T:
    """``start()`` (which starts a process) run by a thread that lives as long as this process.

    A fork server dies with its parent by ``PR_SET_PDEATHSIG``, and the kernel sends that signal
    when the parent *thread* that started it exits, not the parent process. A fork server is
    kept between commands and may be used by another thread than the one that started it (the
    proposals of a discovery round run in threads of their own), so it is started by the main
    thread, or else by one keeper thread per process that never exits.
    """
    if threading.current_thread() is threading.main_thread():
        return start()
    with _KEEPER_LOCK:
        keeper = _KEEPER.get("thread")
        if keeper is None or _KEEPER.get("pid") != os.getpid() or not keeper.is_alive():
            jobs: queue.SimpleQueue = queue.SimpleQueue()

            def serve() -> None:
                while True:
                    fn, done = jobs.get()
                    try:
                        done.set_result(fn())
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller
                        done.set_exception(exc)

            keeper = threading.Thread(target=serve, name="tts-gym-fork-server-starter",
                                      daemon=True)
            keeper.start()
            _KEEPER.update(thread=keeper, pid=os.getpid(), jobs=jobs)
        jobs = _KEEPER["jobs"]
    done: Future = Future()
    jobs.put((start, done))
    return done.result()


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first); [] once the
    process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _alive(pid: int) -> bool:
    """Process ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


# --- fork servers kept warm between commands of one process ----------------------------------
_IDLE: dict[tuple[Any, ...], ZygoteClient] = {}
_LENDABLE: list[ZygoteClient] = []
_LENDING = threading.Lock()


def _placement() -> tuple[Any, ...]:
    """What a fork server's children inherit from it and so must match where it is reused:
    this process, its CPU affinity and its scheduling policy at the fork server's start."""
    cpus = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else ()
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else 0
    return os.getpid(), cpus, policy


def acquire(startup_s: float) -> ZygoteClient:
    """A fork server for this process: an idle one started under the same placement (CPU
    affinity, scheduling policy) by an earlier command, else a new one (started on first use).

    Starting one costs ~0.3 s of CPU (a fresh interpreter importing numpy and the candidate
    modules); a process that evaluates many candidates (``discover``, a Ray worker, a test
    session) pays it once per placement. It holds no store, no gold and no key, and it never
    runs candidate code, so what one command's candidates did cannot reach the next command's.
    """
    key = _placement()
    client = _IDLE.pop(key, None)
    if client is None or not client.running():
        if client is not None:
            client.close()
        client = ZygoteClient(startup_s)
    client.startup_s = startup_s
    client.placement = key
    return client


def lend(n: int, startup_s: float) -> list[ZygoteClient]:
    """Fork servers for the ``n`` workers of a local pool about to be forked from this process,
    one per worker (each adopts the one of its slot: :meth:`ZygoteClient.adopt`).

    They are this process's, kept between commands like an idle fork server (started here on
    first use, ~0.2 s of CPU each), so a command with a pool of workers does not start one per
    worker every time. Pass them back with :func:`give_back` when the pool has ended.
    """
    with _LENDING:
        while len(_LENDABLE) < n:
            _LENDABLE.append(ZygoteClient(startup_s))
        clients = _LENDABLE[:n]
        for client in clients:
            client.startup_s = startup_s
            if not client.running():
                client.close()
                client.start()
        return clients


def give_back(clients: list[ZygoteClient], clean: bool) -> None:
    """The pool that borrowed ``clients`` has ended. Unless it ended ``clean`` (every unit
    finished and reaped), a worker may have left a request unanswered on a fork server's
    socket: those fork servers are stopped (and their candidates with them)."""
    if clean:
        return
    with _LENDING:
        for client in clients:
            client.close()
            if client in _LENDABLE:
                _LENDABLE.remove(client)


def release(client: ZygoteClient) -> None:
    """Keep ``client`` for the next command of this process, or close it: it is not running,
    belongs to another process, an idle one with its placement is kept already, or this
    process is a multiprocessing worker (it ends with its pool: its fork server is stopped and
    reaped now, so nothing outlives the pool and its CPU is accounted to the worker). A fork
    server borrowed from the pool's parent is only let go."""
    if client.borrowed:
        client.close()
        return
    key = client.placement
    if (key is None or not client.running() or key in _IDLE
            or multiprocessing.parent_process() is not None):
        client.close()
        return
    _IDLE[key] = client


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """CPU seconds of process ``pid`` from ``/proc/<pid>/stat`` (utime + stime; with
    ``reaped``, also cutime + cstime: its children that it has reaped); 0.0 once it is gone."""
    try:
        ticks = sum(int(f) for f in _stat(pid)[11 : 15 if reaped else 13])
    except ValueError:
        return 0.0
    return ticks / os.sysconf("SC_CLK_TCK")


def idle_cpu_seconds() -> float:
    """CPU seconds used so far by this process's idle fork servers (kept for its next command
    or lent to its pools' workers) and the candidate processes they reaped. They are not reaped
    by this process until it exits, so ``RUSAGE_CHILDREN`` does not include them yet; a
    benchmark adds this to count every process of the sandbox."""
    return sum(cpu_seconds(c.proc.pid, reaped=True) for c in [*_IDLE.values(), *_LENDABLE]
               if c.proc is not None and c.owner == os.getpid())


def close_idle() -> None:
    """Stop every idle fork server of this process (at exit)."""
    while _IDLE:
        _key, client = _IDLE.popitem()
        if client.owner == os.getpid():
            client.close()
    while _LENDABLE:
        client = _LENDABLE.pop()
        if client.owner == os.getpid():
            client.close()


def _forget_in_child() -> None:
    # a forked process must neither use nor clean up its parent's fork servers, nor wait for
    # its parent's keeper thread (threads are not forked)
    global _KEEPER_LOCK
    _IDLE.clear()
    _LENDABLE.clear()
    _KEEPER.clear()
    _KEEPER_LOCK = threading.Lock()


atexit.register(close_idle)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
