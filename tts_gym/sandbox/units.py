"""Running many units of work on an executor: one broker per worker process, each with its own
fork server.

Each worker of the executor (:mod:`tts_gym.executor`) is a broker: pinned to one CPU together
with the candidate processes it serves (a round trip between a broker and its candidate then
never wakes a second CPU), it runs units one after the other with its own fork server: kept
warm for the process's next command (:func:`~tts_gym.sandbox.zygote_client.acquire`), or, for
the workers of a local pool, lent by the process that forks the pool and kept there between
commands (:func:`~tts_gym.sandbox.zygote_client.lend`).
Brokers and candidates run under ``SCHED_BATCH``: a write to the pipe then does not preempt the
writer, which reaches its own blocking read first (measured ~10 % less time per unit than with
wake-up preemption). Units are independent, so the result depends neither on the number of
workers nor on the executor.

On a distributed executor (Ray) the stores move once per command (:meth:`Executor.share`), each
worker checks the isolation layers of its own machine before its first unit (a node lacking a
required layer refuses, naming itself), and a unit's deadline travels as wall-clock time (another
machine's monotonic clock has another origin).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from tts_gym.executor import Executor, Job, resolve
from tts_gym.executor.local import LocalExecutor
from tts_gym.executor.node import cpus as _cpus
from tts_gym.sandbox.broker import UnitResult, UnitSpec, run_unit, spec_secret
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.zygote_client import SandboxUnavailable, acquire, give_back, lend, release
from tts_gym.store import ReplayStore


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


def node_guard(limits: SandboxLimits) -> None:
    """Refuse to run units on this machine when it lacks a required isolation layer.

    Raises:
        SandboxUnavailable: Naming this machine (host, address, Ray node) and the missing layer.
    """
    from tts_gym.executor.node import node_label
    from tts_gym.sandbox.layers import check

    report = check(limits)
    if not report["ok"] and not limits.unsafe:
        raise SandboxUnavailable(
            f"node {node_label()} refuses candidate code: {report['error']}; run `tts-gym "
            "sandbox-check` on that node and fix it, or remove it from the cluster")


@contextlib.contextmanager
def _broker(shared: dict[str, Any], slot: int | None) -> Iterator[dict[str, Any]]:
    limits: SandboxLimits = shared["limits"]
    cpus = _cpus()
    cpu = cpus[slot % len(cpus)] if slot is not None and cpus and limits.pin_cpu else None
    with pinned(cpu):
        if shared["guard"]:
            node_guard(limits)
        lent = shared.get("zygotes") or []
        client = lent[slot] if slot is not None and slot < len(lent) else None
        if client is None or not client.adopt():  # none lent, or it died: start our own
            client = acquire(limits.startup_s)
        ctx = {"stores": shared["stores"], "limits": limits, "client": client}
        try:
            yield ctx
        finally:
            release(ctx["client"])  # kept warm for this process's next command


def _unit(ctx: dict[str, Any], item: tuple[UnitSpec, float | None]) -> UnitResult:
    spec, wall_deadline = item
    if wall_deadline is not None:
        spec = replace(spec, deadline=time.monotonic() + (wall_deadline - time.time()))
    try:
        return run_unit(spec, ctx["stores"], ctx["limits"], ctx["client"])
    except BaseException:  # e.g. a cancelled task: the next unit gets a fresh fork server
        ctx["client"].close()
        ctx["client"] = acquire(ctx["limits"].startup_s)
        raise


UNIT_JOB = Job("tts-gym-unit", _broker, _unit)
"""A sandboxed unit of work per item (``(spec, deadline as time.time() or None)``)."""


def _portable(spec: UnitSpec) -> tuple[UnitSpec, float | None]:
    if spec.deadline is None:
        return spec, None
    return replace(spec, deadline=None), time.time() + (spec.deadline - time.monotonic())


def run_units(
    specs: Sequence[UnitSpec],
    stores: dict[str, ReplayStore],
    limits: SandboxLimits,
    *,
    stop_on_error: bool = True,
    progress: Callable[[UnitResult], None] | None = None,
    executor: Executor | None = None,
) -> list[UnitResult | None]:
    """Run ``specs`` and return their results in order.

    Args:
        specs: The units.
        stores: Every store the units name (with gold; they stay on the trusted side).
        limits: Sandbox limits (``workers``: brokers of the local pool).
        stop_on_error: Stop at the first unit that fails (the rest stay None).
        progress: Called with each result as it arrives.
        executor: Where the units run (default: the command's executor, else a local pool of
            ``limits.workers``).

    Raises:
        tts_gym.sandbox.zygote_client.SandboxUnavailable: The sandbox cannot start, or a node
            refuses candidate code.
    """
    # identity secrets come from this (trusted) process's key, wherever the units run
    specs = [s if s.secret is not None else replace(s, secret=spec_secret(s, stores))
             for s in specs]
    ex = resolve(executor, limits.workers)
    key = ("stores", *sorted((k, s.sha256) for k, s in stores.items()))
    shared = {"stores": ex.share(dict(stores), key), "limits": limits,
              "guard": ex.distributed}
    stop = (lambda r: r.status != "ok") if stop_on_error else None
    pool = min(ex.slots(), len(specs)) if isinstance(ex, LocalExecutor) else 0
    if pool < 2:
        return ex.map(UNIT_JOB, shared, [_portable(s) for s in specs], progress=progress,
                      stop=stop)
    # a local pool forks its workers from this process: lend them fork servers kept here
    shared["zygotes"] = lent = lend(pool, limits.startup_s)
    clean = False
    try:
        out = ex.map(UNIT_JOB, shared, [_portable(s) for s in specs], progress=progress,
                     stop=stop)
        clean = True
        return out
    finally:
        give_back(lent, clean)
