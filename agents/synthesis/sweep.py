"""A candidate's beta sweep in the sandbox, scored against gold on this (trusted) side.

One unit of work per (beta, seed): a fresh, isolated candidate process plays that seed over
every question of every store of the sweep, so no process sees a (store, question) twice
(:mod:`tts_gym.sandbox`). The first unit of each beta also returns ``schedule(beta)``; the units
of seed ``trace_seed`` record the broker's execution traces. Answers and tokens come from the
broker and are scored here with the one scoring rule (:func:`tts_gym.evaluation.score`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from agents.synthesis.aliases import AnswerLabels, scrub_error
from agents.synthesis.scoring import clean_schedule
from agents.synthesis.trace_steps import shorten
from tts_gym.evaluation import EvalResult
from tts_gym.evaluation.scoring import score
from tts_gym.sandbox.broker import UnitResult, UnitSpec
from tts_gym.sandbox.evaluate import describe_error
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.units import run_units
from tts_gym.store import ReplayStore

TRACE_EVENTS = 160
"""Events kept per recorded trace (first, last, the last note and the key steps where the
revealed majority or a branch's answer changed; :func:`~agents.synthesis.trace_steps.shorten`)."""


@dataclass
class SweepRun:
    """A finished sweep.

    Attributes:
        status: ``"ok"`` or ``"error"``.
        error: The first unit error (kind, summary, traceback, store, question, seed) plus
            ``beta`` and a one-line ``reason``; its text holds no answer string of ``stores``
            (:func:`~agents.synthesis.aliases.scrub_error`).
        results: ``beta -> store key -> EvalResult`` (when ok).
        stats: ``beta -> store key -> op -> int64 [S, Q]`` primitive counts.
        traces: ``beta -> store key -> [Q] trace`` of seed ``trace_seed`` (capped).
        schedules: ``repr(beta) -> schedule dict`` as the candidate returned it.
        layers: The isolation report of one candidate process.
        seconds: Wall time.
        child_cpu_s: CPU of all candidate processes.
    """

    status: str
    error: dict[str, Any] | None = None
    results: dict[float, dict[str, EvalResult]] = field(default_factory=dict)
    stats: dict[float, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    traces: dict[float, dict[str, list]] = field(default_factory=dict)
    schedules: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    child_cpu_s: float = 0.0


def cap_trace(trace: list[dict[str, Any]], keep: int = TRACE_EVENTS) -> list[dict[str, Any]]:
    """At most ``keep`` events of ``trace``: the key steps, with markers saying what the
    elided stretches skipped, charged and revealed (:func:`~agents.synthesis.trace_steps.
    shorten`)."""
    return shorten(trace, keep)


def run_sweep(
    source: str,
    stores: Mapping[str, ReplayStore],
    betas: Sequence[float],
    seeds: Sequence[int],
    limits: SandboxLimits,
    *,
    name: str = "candidate",
    filename: str = "candidate.py",
    trace_seed: int | None = None,
    schedules: bool = True,
    progress: Callable[[UnitResult], None] | None = None,
    knob: str = "beta",
) -> SweepRun:
    """Play ``source`` on every (beta, seed) over all ``stores`` and score it.

    Args:
        source: The candidate file (already linted).
        stores: ``key -> store`` with gold (kept on this side).
        betas: The knob values to sweep: betas, or (``knob="setting"``) JSON texts of the
            settings a ``--no-beta`` candidate declared.
        seeds: Protocol shuffle seeds.
        limits: Sandbox limits; ``timeout_s`` bounds the whole sweep.
        name: Controller name in the results.
        filename: The file's name in error messages.
        trace_seed: Seed whose units record traces (None: no traces).
        schedules: Ask each beta's first unit for ``schedule(beta)``.
        progress: Called with each finished unit.
        knob: ``"beta"`` (``Controller(beta=b)``) or ``"setting"``
            (``Controller(setting=json.loads(text))``).
    """
    keys = tuple(stores)
    deadline = time.monotonic() + limits.timeout_s
    values = [float(b) if knob == "beta" else str(b) for b in betas]
    specs = [
        UnitSpec(source=source, filename=filename,
                 params={"beta": b} if knob == "beta" else {"setting": json.loads(b)},
                 store_keys=keys, seed=int(s),
                 traces=trace_seed is not None and int(s) == trace_seed,
                 schedule_beta=b if schedules and knob == "beta" and i == 0 else None,
                 deadline=deadline)
        for b in values
        for i, s in enumerate(seeds)
    ]
    start = time.monotonic()
    out = run_units(specs, dict(stores), limits, progress=progress)
    run = SweepRun(status="ok", seconds=time.monotonic() - start,
                   child_cpu_s=sum(r.child_cpu_s for r in out if r is not None))
    for spec, r in zip(specs, out, strict=True):
        if r is not None and r.status != "ok":
            value = spec.params.get("beta", spec.params.get("setting"))
            # no answer string of a store leaves in the error's text (agents.synthesis.aliases)
            err = scrub_error(r.error or {}, AnswerLabels(stores), source, filename)
            err["beta"] = value
            where = f"beta={value:g}" if knob == "beta" else f"setting={json.dumps(value)}"
            err["reason"] = f"{describe_error(err)} at {where}"
            return replace(run, status="error", error=err, layers=r.layers)
    run.layers = out[0].layers if out and out[0] is not None else {}
    n_s = len(seeds)
    for bi, b in enumerate(values):
        units = out[bi * n_s : (bi + 1) * n_s]
        if schedules and units[0] is not None and units[0].schedule is not None:
            run.schedules[repr(b)] = clean_schedule(units[0].schedule)
        run.results[b], run.stats[b], run.traces[b] = {}, {}, {}
        for key, store in stores.items():
            outs = [u.stores[key] for u in units]  # type: ignore[union-attr]
            ids = np.stack([o.answer_ids for o in outs])
            tokens = np.stack([o.tokens for o in outs])
            unrevealed = np.stack([~o.revealed for o in outs])
            run.results[b][key] = score(
                store, list(seeds), ids, tokens, controller=name, params={knob: b},
                cost_mode="reference", path="sandbox", unrevealed=unrevealed)
            run.stats[b][key] = {k: np.stack([o.stats[k] for o in outs]) for k in outs[0].stats}
            traced = [o.traces for o in outs if o.traces is not None]
            if traced:
                run.traces[b][key] = [cap_trace(t) for t in traced[0]]
    return run
