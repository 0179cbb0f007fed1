"""The local executor: a fork process pool on this machine (the default).

Workers are forked after the caller prepared the shared data, so they inherit it (stores,
protocol orders, compiled kernels) without pickling; items and results are pickled. Worker ``i``
gets CPU slot ``i`` (a job may pin itself to it). A worker dies with the command, by any signal
(:mod:`tts_gym.executor.lifetime`). One worker, one item, or a platform without ``fork`` runs
everything in this process, in order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from tts_gym.executor.base import Executor, Job, current, inline
from tts_gym.executor.lifetime import die_with_parent

_WORKER: dict[str, Any] = {}


def _init_worker(job: Job, shared: dict[str, Any], counter: Any, parent: int) -> None:
    die_with_parent(parent)  # first: a worker never outlives the command (SIGKILL included)
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    cm = job.open(shared, slot)
    _WORKER.update(job=job, ctx=cm.__enter__())
    mp.util.Finalize(None, cm.__exit__, args=(None, None, None), exitpriority=10)


def _work(item: Any) -> Any:
    return _WORKER["job"].run(_WORKER["ctx"], item)


class LocalExecutor(Executor):
    """A pool of ``workers`` forked processes, created per :meth:`map` call.

    Maps from several threads take turns (one pool at a time: a second pool would only compete
    for the same cores).
    """

    name = "local"
    distributed = False

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))
        self._turn = threading.RLock()

    def slots(self) -> int:
        return self.workers

    def map(
        self,
        job: Job,
        shared: dict[str, Any],
        items: Sequence[Any],
        *,
        progress: Callable[[Any], None] | None = None,
        stop: Callable[[Any], bool] | None = None,
    ) -> list[Any]:
        workers = min(self.workers, len(items))
        with self._turn:
            if workers <= 1 or "fork" not in mp.get_all_start_methods():
                return inline(job, shared, items, 0, progress, stop)
            return self._pool(job, shared, items, workers, progress, stop)

    @staticmethod
    def _pool(job: Job, shared: dict[str, Any], items: Sequence[Any], workers: int,
              progress: Callable[[Any], None] | None, stop: Callable[[Any], bool] | None
              ) -> list[Any]:
        results: list[Any] = [None] * len(items)
        ctx = mp.get_context("fork")
        counter = ctx.Value("i", 0)
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(job, shared, counter, os.getpid())) as pool:
            pending = {pool.submit(_work, item): i for i, item in enumerate(items)}
            cutoff = len(items)
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        i = pending.pop(fut)
                        results[i] = fut.result()
                        if progress is not None:
                            progress(results[i])
                        if stop is not None and i < cutoff and stop(results[i]):
                            cutoff = i
                    for fut in [f for f, i in pending.items() if i > cutoff]:
                        fut.cancel()
                        del pending[fut]
            except BaseException:
                for other in pending:
                    other.cancel()
                raise
        return results


def resolve(executor: Executor | None, workers: int) -> Executor:
    """``executor``, else the command's (:func:`~tts_gym.executor.base.current`), else a local
    pool of ``workers``."""
    if executor is not None:
        return executor
    got = current()
    if got is not None:
        return got
    return LocalExecutor(workers)
