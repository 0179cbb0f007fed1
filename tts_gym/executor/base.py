"""The executor interface: where evaluation, reporting and discovery send independent work.

A :class:`Job` is a pair of module-level functions: ``open(shared, slot)``, a context manager
entered once per worker process with the data every task needs (stores, limits, a controller),
and ``run(context, item)``, called once per item. An :class:`Executor` maps a job over items
and returns the results in item order. Each result depends only on its item and the shared
data, so it does not depend on the executor, the number of workers, the order in which tasks
finish, or on a task being run again after its worker was lost: every number is the same under
every executor.

Two executors exist: :class:`~tts_gym.executor.local.LocalExecutor` (a process pool on this
machine, the default) and :class:`~tts_gym.executor.ray_executor.RayExecutor` (a Ray cluster,
or a local Ray instance started for the command). A command selects one for its whole duration
with :func:`using`; library functions take ``executor=`` or fall back to :func:`current`, then to
a local pool of their own ``workers`` (:func:`tts_gym.executor.local.resolve`).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Job:
    """One kind of work.

    Attributes:
        name: A short name (also the Ray task's name, visible in ``ray list tasks``).
        open: ``open(shared, slot) -> context manager`` yielding the per-process context;
            ``shared`` is the dict given to :meth:`Executor.map` (handles from
            :meth:`Executor.share` already resolved); ``slot`` is this worker's CPU slot on its
            machine (0, 1, ...; None when the executor has none to give).
        run: ``run(context, item) -> result``. Must be a pure function of the item and the
            shared data (it may be run again when a worker is lost).
    """

    name: str
    open: Callable[[dict[str, Any], int | None], AbstractContextManager[Any]]
    run: Callable[[Any, Any], Any]


class ExecutorError(RuntimeError):
    """The executor itself failed (not the work): a lost cluster, retries exhausted, a node that
    cannot run the work. The message is one sentence naming what and where."""


class Executor(ABC):
    """Runs jobs; see the module docstring.

    Attributes:
        name: ``"local"`` or ``"ray"``.
        distributed: True when work leaves this machine's process tree (data must be shipped,
            clocks of other machines differ, a worker may be lost and its task run again).
    """

    name: str = ""
    distributed: bool = False

    @abstractmethod
    def slots(self) -> int:
        """Tasks that can run at the same time (a pool's workers, a cluster's CPUs)."""

    def share(self, obj: Any, key: Hashable) -> Any:
        """Make ``obj`` available to every task, moved once per command.

        Put the returned handle into the ``shared`` dict of :meth:`map` (as a top-level value).
        ``key`` identifies the content (e.g. store names and digests): a second call with the
        same key returns the first handle without moving anything. The local pool needs no
        handle (forked workers inherit the object), so it returns ``obj``.
        """
        return obj

    @abstractmethod
    def map(
        self,
        job: Job,
        shared: dict[str, Any],
        items: Sequence[Any],
        *,
        progress: Callable[[Any], None] | None = None,
        stop: Callable[[Any], bool] | None = None,
    ) -> list[Any]:
        """Run ``job`` on every item; results in item order.

        Args:
            job: The job.
            shared: Data every task needs (values may be handles from :meth:`share`).
            items: The items (each pickled to its task).
            progress: Called with each result as it arrives (in completion order).
            stop: When it returns True for the result of item ``i``, the items after ``i``
                are cancelled (their results left None) while the items before it still run,
                so the first stopping item in order is the same on every executor.

        Raises:
            Exception: The first exception a task raised (its own type), after the other tasks
                were cancelled; :class:`ExecutorError` when the executor failed.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the executor started (nothing for a local pool)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_CURRENT: list[Executor] = []


def current() -> Executor | None:
    """The executor selected for this command (:func:`using`), or None (local pools)."""
    return _CURRENT[-1] if _CURRENT else None


@contextlib.contextmanager
def using(executor: Executor | None) -> Iterator[Executor | None]:
    """Select ``executor`` for everything run inside the block (in every thread of this
    process); None leaves the local default."""
    if executor is None:
        yield None
        return
    _CURRENT.append(executor)
    try:
        yield executor
    finally:
        _CURRENT.remove(executor)


def inline(job: Job, shared: dict[str, Any], items: Sequence[Any], slot: int | None,
           progress: Callable[[Any], None] | None, stop: Callable[[Any], bool] | None
           ) -> list[Any]:
    """Run ``job`` over ``items`` in this process, in order (the one-worker case)."""
    results: list[Any] = [None] * len(items)
    with job.open(shared, slot) as ctx:
        for i, item in enumerate(items):
            results[i] = job.run(ctx, item)
            if progress is not None:
                progress(results[i])
            if stop is not None and stop(results[i]):
                break
    return results
