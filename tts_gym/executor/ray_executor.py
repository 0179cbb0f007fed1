"""The Ray executor: jobs as Ray tasks on a cluster, or on a local Ray instance.

Data moves once. :meth:`RayExecutor.share` puts an object (stores, protocol orders) into Ray's
object store once per command (memoised by its key); a map puts its small ``shared`` dict (the
handles plus settings) once, and every task gets a reference to it. A worker process resolves
each reference once, keeps the objects (numpy arrays are read straight from the node's shared
memory, not copied) and enters the job's context once; its later tasks reuse both.

Faults. A task whose worker process or node is lost is run again (``max_retries``, Ray's own
retry of system failures), and since a task is a pure function of its item and the shared data,
the command's numbers equal an undisturbed run's. An exception raised by the work itself (a
controller error, a node that refuses to run candidates) is never retried: it stops the map and
is raised here with its own type. A candidate's failure in the sandbox is not an exception at
all (a unit result with status ``"error"``), so it is never retried either. Ctrl-C (or any
exception) while a map waits cancels its remaining tasks, killing the workers that run them
(their sandbox fork servers and candidate processes die with them); a local instance started by
the executor is shut down by :meth:`RayExecutor.close`, and stopped by a guard process
(:mod:`tts_gym.executor.ray_guard`) when the command dies without closing it (SIGKILL).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import tts_gym
from tts_gym.executor.base import Executor, ExecutorError, Job
from tts_gym.executor.lifetime import descendants
from tts_gym.executor.node import claim_slot, node_label
from tts_gym.executor.ray_guard import RayGuard
from tts_gym.extras import require_extra

try:
    import ray
except ImportError:  # the ray extra is missing: RayExecutor() says so
    ray = None  # type: ignore[assignment]  # the usual optional import

LOCAL_OBJECT_STORE_MB = 512
"""Object store of a local instance (MiB): the published 12 stores and 100-seed orders for all
of them take ~35 MB; Ray spills to disk beyond this."""

MAX_RETRIES = 3
"""Times a task is run again after its worker process or node was lost."""

WAIT_S = 0.25
"""Longest single wait for results in the driver, so Ctrl-C is acted on within it (s)."""


class Shared:
    """A handle on an object in Ray's object store (see :meth:`RayExecutor.share`)."""

    __slots__ = ("ref",)

    def __init__(self, ref: Any) -> None:
        self.ref = ref


# --- the worker side ---------------------------------------------------------------------------
_OBJECTS: OrderedDict[str, Any] = OrderedDict()
_CONTEXTS: dict[str, tuple[str, Any, Any]] = {}
_KEEP_OBJECTS = 16


def _resolve(value: Any) -> Any:
    if not isinstance(value, Shared):
        return value
    key = value.ref.hex()
    if key not in _OBJECTS:
        _OBJECTS[key] = ray.get(value.ref)
        while len(_OBJECTS) > _KEEP_OBJECTS:
            _OBJECTS.popitem(last=False)
    _OBJECTS.move_to_end(key)
    return _OBJECTS[key]


def _close_contexts() -> None:
    for _key, cm, _ctx in list(_CONTEXTS.values()):
        try:
            cm.__exit__(None, None, None)
        except Exception:  # noqa: S110 - best effort at process exit
            pass
    _CONTEXTS.clear()


atexit.register(_close_contexts)


def _context(job: Job, ref: Any) -> Any:
    """The job's context in this worker for the map whose shared dict is ``ref`` (entered once;
    the context of an earlier map of the same job is closed first)."""
    key = ref.hex()
    got = _CONTEXTS.get(job.name)
    if got is not None and got[0] == key:
        return got[2]
    if got is not None:
        del _CONTEXTS[job.name]
        got[1].__exit__(None, None, None)
    shared = {k: _resolve(v) for k, v in ray.get(ref).items()}
    cm = job.open(shared, claim_slot())
    ctx = cm.__enter__()
    _CONTEXTS[job.name] = (key, cm, ctx)
    return ctx


def _task(job: Job, box: list[Any], item: Any) -> Any:
    """One item of a map, in a Ray worker. ``box`` is ``[shared ref, driver's version]`` (in a
    list so Ray passes the reference instead of resolving it for every task)."""
    ref, version = box
    if version != tts_gym.__version__:
        raise ExecutorError(
            f"node {node_label()} runs tts-gym {tts_gym.__version__}, the command runs "
            f"{version}; install the same version on every node of the cluster")
    return job.run(_context(job, ref), item)


def _warm(warm: Callable[[], Any] | None) -> int:
    """Run the caller's warm-up in a worker (the prewarm of a new executor): importing what its
    jobs run and loading kernels, while the driver loads its data."""
    if warm is not None:
        warm()
    return os.getpid()


_REMOTE: dict[str, Any] = {}


def _remote(fn: Callable[..., Any] = _task) -> Any:
    if fn.__name__ not in _REMOTE:
        _REMOTE[fn.__name__] = ray.remote(fn)
    return _REMOTE[fn.__name__]


# --- the driver side ---------------------------------------------------------------------------
def _start_local(num_cpus: int | None, object_store_mb: int) -> None:
    """Start a private Ray instance on this machine, listening on 127.0.0.1 only."""
    from ray._private import ray_constants

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no report leaves the machine
    # Ray resolves 127.0.0.1 to the machine's reachable address unless clusters are off; a
    # command's own instance has no other nodes, so it stays on the loopback interface.
    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 object_store_memory=object_store_mb * 2**20, logging_level=logging.ERROR,
                 log_to_driver=False)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast when a ``HOST:PORT`` address does not answer (``ray.init`` would retry for
    minutes)."""
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://") or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ExecutorError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with "
            "`ray start --head` (then `ray start --address HEAD:6379` on the other nodes) or "
            "check the address") from None


def _unwrap(exc: Exception) -> BaseException:
    """The exception a Ray task's work raised, with its own type and message."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, ray.exceptions.RayError):
        return cause
    return ExecutorError(f"a Ray task failed: {str(exc).strip().splitlines()[-1][:500]}")


class RayExecutor(Executor):
    """Ray tasks (see the module docstring). On creation one prewarm task per CPU of the cluster
    runs the caller's ``warm`` in a worker (importing what its jobs need, loading kernels), while
    the caller loads its data.

    Args:
        address: ``None`` starts a local instance for this executor's lifetime (loopback only);
            ``"auto"`` joins the cluster this machine belongs to; ``"HOST:PORT"`` or
            ``"ray://HOST:PORT"`` joins that cluster. When this process is already connected
            to Ray (``ray.init`` was called), that connection is used and left open.
        num_cpus: CPUs of a local instance (default: every core).
        object_store_mb: Object store of a local instance (MiB).
        max_retries: Runs of a task after its worker or node was lost.
        warm: A module-level function each prewarm task calls (None: no prewarm work); the
            command line passes :func:`tts_gym.cli.executor_options.warm_worker`.
        on_shutdown: Called in this process after a local instance this executor started is
            shut down (the command line removes the killed workers' sandbox folders).
    """

    name = "ray"
    distributed = True

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 object_store_mb: int = LOCAL_OBJECT_STORE_MB, max_retries: int = MAX_RETRIES,
                 warm: Callable[[], Any] | None = None,
                 on_shutdown: Callable[[], Any] | None = None) -> None:
        if ray is None:
            require_extra("ray", "RayExecutor")
        self.max_retries = int(max_retries)
        self._on_shutdown = on_shutdown
        self.started = False
        self._guard: RayGuard | None = None
        self._roots: list[int] = []
        if ray.is_initialized():
            pass
        elif address is None:
            self._guard = RayGuard()  # before Ray starts: it stops the instance if we die
            before = set(descendants(os.getpid()))
            try:
                _start_local(num_cpus, object_store_mb)
            except BaseException:
                self._guard.close()  # stops whatever the failed start left running
                raise
            self.started = True
            # the instance's own processes (GCS, raylet, ...): what ray.init just started
            self._roots = [p for p in descendants(os.getpid()) if p not in before
                           and p != self._guard.proc.pid]
            self._watch()
        else:
            _check_reachable(address)
            try:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ExecutorError(
                    f"cannot join the Ray cluster at {address!r} ({exc}); start it with `ray "
                    "start --head` (then `ray start --address HEAD:6379` on the other nodes) "
                    "or check the address") from None
        self._shared: dict[Hashable, Shared] = {}
        self._inflight: set[Any] = set()
        self._lock = threading.Lock()
        self._closed = False
        # workers import what the jobs run and load kernels while this process loads stores
        prewarm = _remote(_warm).options(name="tts-gym-warm", num_cpus=1)
        self._warming = [prewarm.remote(warm) for _ in range(self.slots())]

    def _watch(self) -> None:
        """Tell the guard the local instance's processes: those ``ray.init`` started, and
        everything below them now (agents, workers, their fork servers); nothing else of this
        process."""
        if self._guard is not None:
            self._guard.watch([*self._roots, *(p for r in self._roots for p in descendants(r))])

    def slots(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def nodes(self) -> int:
        """Live nodes of the cluster."""
        return sum(1 for n in ray.nodes() if n.get("Alive"))

    def share(self, obj: Any, key: Hashable) -> Shared:
        with self._lock:
            got = self._shared.get(key)
            if got is None:
                got = self._shared[key] = Shared(ray.put(obj))
            return got

    def map(
        self,
        job: Job,
        shared: dict[str, Any],
        items: Sequence[Any],
        *,
        progress: Callable[[Any], None] | None = None,
        stop: Callable[[Any], bool] | None = None,
    ) -> list[Any]:
        results: list[Any] = [None] * len(items)
        if not items:
            return results
        self._watch()  # Ray's processes started since (agents, workers)
        box = [ray.put(shared), tts_gym.__version__]
        remote = _remote().options(name=job.name, num_cpus=1, max_retries=self.max_retries,
                                 retry_exceptions=False)
        index = {remote.remote(job, box, item): i for i, item in enumerate(items)}
        pending = list(index)
        with self._lock:
            self._inflight.update(pending)
        cutoff = len(items)
        try:
            while pending:
                # a bounded wait: Python's signal handlers (Ctrl-C) run between two waits,
                # whatever Ray's own blocking call does with signals
                done, pending = ray.wait(pending, num_returns=1, timeout=WAIT_S)
                if not done:
                    continue
                if pending:  # everything else finished by now, in one call
                    more, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                    done += more
                for ref in sorted(done, key=index.__getitem__):
                    i = index[ref]
                    results[i] = value = self._get(ref, job)
                    if progress is not None:
                        progress(value)
                    if stop is not None and i < cutoff and stop(value):
                        cutoff = i
                late = [ref for ref in pending if index[ref] > cutoff]
                if late:
                    self._cancel(late, force=False)
                    pending = [ref for ref in pending if index[ref] < cutoff]
        except BaseException:
            self._cancel(pending, force=True)
            raise
        finally:
            with self._lock:
                self._inflight.difference_update(index)
        return results

    def _get(self, ref: Any, job: Job) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            raise _unwrap(exc) from None
        except ray.exceptions.RayError as exc:  # a worker or node lost max_retries + 1 times
            raise ExecutorError(
                f"Ray could not finish a {job.name!r} task ({type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0][:300]}) after {self.max_retries} "
                "retries") from None

    @staticmethod
    def _cancel(refs: Sequence[Any], force: bool) -> None:
        for ref in refs:
            try:
                ray.cancel(ref, force=force)
            except Exception:  # noqa: S110 - already finished or gone
                pass

    def cancel_all(self) -> None:
        """Cancel every task of this executor still running (from any thread)."""
        with self._lock:
            refs = list(self._inflight)
        self._cancel(refs, force=True)

    def close(self) -> None:
        """Cancel what still runs; shut the local instance down if this executor started it."""
        if self._closed:
            return
        self._closed = True
        self.cancel_all()
        self._shared.clear()
        if self.started and ray.is_initialized():
            ray.shutdown()
            if self._on_shutdown is not None:
                self._on_shutdown()
        if self._guard is not None:
            self._guard.close()  # stops whatever of the instance the shutdown left running
            self._guard = None
