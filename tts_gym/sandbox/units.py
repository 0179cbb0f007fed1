"""Running many units of work: one broker per worker process, each with its own fork server.

This is the local executor of sandboxed work (the process pool): ``workers`` processes, each
pinned to one CPU together with the candidate processes it serves (a round trip between a
broker and its candidate then never wakes a second CPU), each running units one after the
other. Brokers and candidates run under ``SCHED_BATCH``: a write to the pipe then does not
preempt the writer, which reaches its own blocking read first (measured ~10 % less time per
unit than with wake-up preemption). Units are independent, so the result does not depend on
the number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from tts_gym.sandbox.broker import UnitResult, UnitSpec, run_unit
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.zygote_client import ZygoteClient
from tts_gym.store import ReplayStore

_WORKER: dict[str, Any] = {}


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return []


def _batch_policy() -> None:
    """SCHED_BATCH for this process (inherited by the fork server and candidates)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


@contextlib.contextmanager
def pinned(cpu: int | None):
    """Pin this process to ``cpu`` under SCHED_BATCH for the block, then restore both (the CPU
    part is a no-op for None)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    policy = os.sched_getscheduler(0)
    param = os.sched_getparam(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    _batch_policy()
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, policy, param)


def _init_worker(stores: dict[str, ReplayStore], limits: SandboxLimits, counter: Any) -> None:
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    cpus = _cpus()
    if cpus and limits.pin_cpu:
        os.sched_setaffinity(0, {cpus[index % len(cpus)]})
    _batch_policy()
    client = ZygoteClient(limits.startup_s)
    _WORKER.update(stores=stores, limits=limits, client=client)
    mp.util.Finalize(None, client.close, exitpriority=10)


def _work(spec: UnitSpec) -> UnitResult:
    return run_unit(spec, _WORKER["stores"], _WORKER["limits"], _WORKER["client"])


def run_units(
    specs: Sequence[UnitSpec],
    stores: dict[str, ReplayStore],
    limits: SandboxLimits,
    *,
    stop_on_error: bool = True,
    progress: Callable[[UnitResult], None] | None = None,
) -> list[UnitResult | None]:
    """Run ``specs`` (with ``limits.workers`` brokers) and return their results in order.

    Args:
        specs: The units.
        stores: Every store the units name (with gold; they stay on the trusted side).
        limits: Sandbox limits, including ``workers``.
        stop_on_error: Stop at the first unit that fails (the rest stay None).
        progress: Called with each result as it arrives.

    Raises:
        tts_gym.sandbox.zygote_client.SandboxUnavailable: The sandbox cannot start.
    """
    results: list[UnitResult | None] = [None] * len(specs)
    workers = max(1, min(int(limits.workers), len(specs)))
    if workers == 1:
        cpus = _cpus()
        client = ZygoteClient(limits.startup_s)
        try:
            with pinned(cpus[0] if cpus and limits.pin_cpu else None):
                for i, spec in enumerate(specs):
                    results[i] = run_unit(spec, stores, limits, client)
                    if progress is not None:
                        progress(results[i])
                    if stop_on_error and results[i].status != "ok":
                        break
        finally:
            client.close()
        return results
    ctx = mp.get_context("fork")
    counter = ctx.Value("i", 0)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(stores, limits, counter)) as pool:
        pending = {pool.submit(_work, spec): i for i, spec in enumerate(specs)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = fut.result()
                    if progress is not None:
                        progress(results[i])
                    if stop_on_error and results[i].status != "ok":
                        for other in pending:
                            other.cancel()
                        pending.clear()
                        break
        except BaseException:
            for other in pending:
                other.cancel()
            raise
    return results
