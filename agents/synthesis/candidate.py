"""One round's candidate, from the LLM's reply to a scored history record.

Steps: extract the code (:mod:`~agents.synthesis.extract`), lint it
(:mod:`~agents.synthesis.validate`: early feedback for the LLM, not the boundary), run the beta
sweep on the search stores in the sandbox (:mod:`~agents.synthesis.sweep`: OS-isolated
candidate processes behind the trusted broker), score against gold on this side and derive the
feedback (:mod:`~agents.synthesis.scoring`). Every failure becomes a record with a
``failure_kind`` and a ``reason``; nothing raises into the loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.synthesis.extract import ExtractionError, extract_code
from agents.synthesis.feedback import (
    TraceTarget,
    best_so_far,
    compare_with,
    curve_points,
    diagnostics,
    focus_points,
    matched_reference,
    pick_traces,
    point_details,
    reference_points,
    scored_point,
    top_point,
)
from agents.synthesis.scoring import (
    monotone_violations,
    schedule_issues,
    trace_check,
)
from agents.synthesis.sweep import SweepRun, run_sweep
from agents.synthesis.validate import declared_settings, validate_source
from tts_gym.evaluation.curves import BudgetGrid, curve_score
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.sanitize import clean_text
from tts_gym.store import ReplayStore


@dataclass(frozen=True)
class SweepSettings:
    """How candidates are evaluated during search.

    Attributes:
        betas: The beta sweep (ascending).
        seeds: Shuffle seeds of the protocol.
        limits: Sandbox limits.
        trace_samples: Traces kept per round (chosen by :func:`feedback.pick_traces`).
        trace_chars: Characters per kept trace.
        traces: Record execution traces at all (``--no-traces`` turns them off).
        settings: With ``--no-beta``: the candidate's own grid (filled per candidate).
    """

    betas: tuple[float, ...]
    seeds: tuple[int, ...]
    limits: SandboxLimits
    trace_samples: int = 3
    trace_chars: int = 1200
    traces: bool = True
    knob: str = "beta"
    settings: tuple[str, ...] = ()

    @property
    def knob_values(self) -> tuple[Any, ...]:
        """What the sweep runs over: the betas, or (``--no-beta``) the declared settings as
        JSON texts."""
        return self.betas if self.knob == "beta" else self.settings

    def with_settings(self, settings: Sequence[str]) -> SweepSettings:
        """A copy sweeping a candidate's declared settings (JSON texts) instead of beta."""
        return dataclasses.replace(self, settings=tuple(settings))


def _fail(kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    status = "rejected" if kind in _REJECT_KINDS else "failed"
    return {"status": status, "failure_kind": kind, "reason": reason, **extra}


_REJECT_KINDS = {"extraction", "syntax_error", "contract", "forbidden_import", "forbidden_code"}


def shown_traces(history: Sequence[dict[str, Any]]) -> set[tuple[str, int, int]]:
    """``(store, question, seed)`` of every trace already shown in ``history``."""
    out = set()
    for e in history:
        for t in e.get("trace_samples") or []:
            if isinstance(t, dict):
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    out.add((str(t["store"]), int(t["question"]), int(t.get("seed", 0))))
    return out


def score_run(
    run: SweepRun,
    stores: Mapping[str, ReplayStore],
    settings: SweepSettings,
    history: Sequence[dict[str, Any]],
    grid: BudgetGrid,
) -> dict[str, Any]:
    """Metrics and feedback of a successful sweep (this side holds the gold).

    ``history`` are the finished rounds (round 0 first): the best so far, the best seed and the
    reference seeds (CMC, when it is a seed) are taken from them and compared with this curve
    band by band over ``grid``, the run's fixed budget grid. Diagnostics and traces are taken
    at the curve's cheapest, middle and top points (:func:`feedback.focus_points`), each
    against the best so far's point matched to it.
    """
    knob = settings.knob
    values = settings.knob_values
    results = run.results
    curve = [scored_point(results[v], {knob: v}) for v in values]
    details = point_details(results, values)
    i = top_point(curve)
    bb = values[i]
    refs = reference_points(history)
    best = best_so_far(history)
    seeds = [r for r in refs if r["round"] == 0]
    best_seed = max(seeds, key=lambda r: r["score"]) if seeds else None
    mine = curve_points(curve, details, knob)
    comparisons: list[dict[str, Any]] = []
    wanted = [("the best so far", best), ("the best seed", best_seed),
              *[("a reference", r) for r in seeds if r["name"] in REFERENCE_SEEDS]]
    for label, ref in wanted:
        if ref is not None and all(c["name"] != ref["name"] for c in comparisons):
            comparisons.append(compare_with(mine, ref, grid, label))
    diag: dict[str, Any] = {}
    targets = []
    for band, j in focus_points(curve):
        v = values[j]
        ref_c, ref_t, ref_label = matched_reference(best, curve[j]["avg_tokens"])
        diag[knob_label(knob, v)] = {"band": band, **diagnostics(
            results, run.stats, run.traces, v, ref_c)}
        ref_name = f"{best['name']} at {ref_label}" if best is not None and ref_label else None
        targets.append(TraceTarget(v, band, ref_name, ref_c, ref_t))
    traced = [t for b in run.traces.values() for ts in b.values() for t in ts]
    metrics: dict[str, Any] = {
        "knob": knob,
        "curve": curve,
        "best": {knob: bb, "accuracy": curve[i]["accuracy"], "avg_tokens": curve[i]["avg_tokens"],
                 "se": curve[i]["se"]},
        "score": curve_score(curve, grid),
        "detail": details[i],
        "details": details,
        "comparisons": comparisons,
        "monotone_violations": monotone_violations(curve, knob) if knob == "beta" else [],
        "schedules": run.schedules,
        "schedule_issues": schedule_issues(run.schedules) if knob == "beta" else [],
        "trace_check": trace_check(traced),
        "diagnostics": diag,
        "unrevealed_answers": sum(
            r.unrevealed_answers for per in results.values() for r in per.values()),
    }
    opened = np.concatenate([np.ravel(run.stats[bb][k]["opened"]) for k in stores])
    probes = np.concatenate([np.ravel(run.stats[bb][k]["probe_more"]) for k in stores])
    metrics["checks"] = {
        "monotone_spending": not metrics["monotone_violations"],
        "monotone_schedule": not metrics["schedule_issues"],
        "trace_ok": metrics["trace_check"]["ends_with_one_finish"] == 1.0,
        "notes_present": metrics["trace_check"]["with_notes"] > 0,
        # at the top point: does the number of branches vary by question, are branches probed?
        "adaptive_width": bool(opened.size and opened.min() != opened.max()),
        "adaptive_depth": bool(probes.size and probes.max() > 0),
    }
    samples = [] if not settings.traces else pick_traces(
        results, run.traces, stores, targets, settings.seeds[0], shown_traces(history),
        settings.trace_samples, settings.trace_chars)
    return {"metrics": metrics, "trace_samples": samples}


REFERENCE_SEEDS = ("seed cmc",)
"""Seeds always compared with, when they are seeds of the run (the state of the art)."""


def knob_label(knob: str, v: Any) -> str:
    """``knob=value`` as curve points are labelled (``beta=0.5``, ``n=16``)."""
    return f"{knob}={v:g}" if isinstance(v, float) else f"{knob}={v}"


def evaluate_reply(
    reply_text: str,
    stores: Mapping[str, ReplayStore],
    settings: SweepSettings,
    history: Sequence[dict[str, Any]],
    name: str = "candidate",
    answer_labels: frozenset[str] = frozenset(),
    budget_grid: BudgetGrid | None = None,
) -> dict[str, Any]:
    """Turn an LLM reply into the evaluated part of a round record (never raises).

    ``answer_labels`` are the search stores' answer labels (:func:`~agents.synthesis.loop.
    answer_labels`): the lint refuses a string literal equal to one. A failed run's reason and
    traceback hold no answer string: :func:`~agents.synthesis.sweep.run_sweep` scrubbed them
    (:func:`~agents.synthesis.aliases.scrub_error`) before they are cut to length here.

    Returns:
        ``status`` ("ok", "rejected", "failed"), ``failure_kind``, ``reason``, ``code``,
        ``validation``, ``sandbox`` and, when it ran, ``metrics`` and ``trace_samples``.
    """
    try:
        code = extract_code(reply_text)
    except ExtractionError as exc:
        return _fail("extraction", str(exc), code=None)
    check = validate_source(code, answer_labels, no_beta=settings.knob == "setting")
    if not check.ok:
        return _fail(check.kind, check.reason, code=code, validation=check.to_dict())
    try:
        return _run_and_score(code, check, stores, settings, history, name, budget_grid)
    except Exception as exc:  # noqa: BLE001 - the trusted side's own failure on this reply
        # Whatever the candidate did, the loop goes on: the round is recorded as failed with
        # the error's type and first line (a tts-gym bug, reported, not a crash of the run).
        # Only the error's type: its text may quote candidate data (this reason reaches the
        # next prompt).
        return _fail("internal", "the trusted side failed while evaluating this candidate "
                     f"({type(exc).__name__}); the round is recorded as failed. This is a "
                     "tts-gym bug: please report it with the run folder.", code=code,
                     validation=check.to_dict())


def _run_and_score(code: str, check: Any, stores: Mapping[str, ReplayStore],
                   settings: SweepSettings, history: Sequence[dict[str, Any]], name: str,
                   budget_grid: BudgetGrid | None) -> dict[str, Any]:
    """The sandboxed sweep and the scoring of a linted candidate (see :func:`evaluate_reply`)."""
    grid = settings
    if settings.knob == "setting":
        try:
            grid = settings.with_settings(declared_settings(code))
        except ValueError as exc:
            return _fail("contract", str(exc), code=code, validation=check.to_dict())
    run = run_sweep(code, stores, grid.knob_values, grid.seeds, grid.limits, name=name,
                    filename=f"{name}.py", trace_seed=grid.seeds[0] if grid.traces else None,
                    knob=grid.knob, schedules=grid.knob == "beta")
    sandbox = {"status": run.status, "seconds": round(run.seconds, 3),
               "candidate_cpu_s": round(run.child_cpu_s, 3)}
    base = {"code": code, "validation": check.to_dict(), "sandbox": sandbox}
    if run.status != "ok":
        err = run.error or {}
        sandbox.update({k: err.get(k) for k in ("kind", "store", "question", "seed", "beta")})
        kind = err.get("kind") or "crash"
        reason = clean_text(err.get("reason") or kind, 2000)
        tb = clean_text(err.get("traceback") or "", 2000)
        return _fail(kind, reason + (f"\n{tb}" if tb else ""), **base)
    out = {"status": "ok", "failure_kind": None, "reason": None, **base}
    if budget_grid is None:  # no seeds to fix it: the candidate's own token range
        budget_grid = BudgetGrid.spanning(
            [[{"avg_tokens": float(np.mean([r.avg_tokens for r in per.values()]))}
              for per in run.results.values()]])
    out.update(score_run(run, stores, grid, history, budget_grid))
    return out
