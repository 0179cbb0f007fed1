"""One round's candidate, from the LLM's reply to a scored history record.

Steps: extract the code (:mod:`~agents.synthesis.extract`), lint it
(:mod:`~agents.synthesis.validate`: early feedback for the LLM, not the boundary), run the beta
sweep on the search stores in the sandbox (:mod:`~agents.synthesis.sweep`: OS-isolated
candidate processes behind the trusted broker), score against gold on this side and derive the
feedback (:mod:`~agents.synthesis.scoring`). Every failure becomes a record with a
``failure_kind`` and a ``reason``; nothing raises into the loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.synthesis.extract import ExtractionError, extract_code
from agents.synthesis.scoring import (
    best_point,
    compare_questions,
    curve_point,
    failure_summary,
    monotone_violations,
    schedule_issues,
    trace_check,
    trace_text,
)
from agents.synthesis.sweep import SweepRun, run_sweep
from agents.synthesis.validate import validate_source
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
        trace_samples: Sampled traces kept per round.
        trace_chars: Characters per sampled trace.
    """

    betas: tuple[float, ...]
    seeds: tuple[int, ...]
    limits: SandboxLimits
    trace_samples: int = 2
    trace_chars: int = 1200

    @property
    def trace_beta(self) -> float:
        """The middle beta of the sweep (its seed-0 traces are returned)."""
        return self.betas[len(self.betas) // 2]


def _fail(kind: str, reason: str, **extra: Any) -> dict[str, Any]:
    status = "rejected" if kind in _REJECT_KINDS else "failed"
    return {"status": status, "failure_kind": kind, "reason": reason, **extra}


_REJECT_KINDS = {"extraction", "syntax_error", "contract", "forbidden_import", "forbidden_code"}


def _seed_reference(seed_record: Mapping[str, Any] | None) -> dict[str, Any]:
    if not seed_record or not seed_record.get("best_seed"):
        return {}
    entry = next(e for e in seed_record["seeds"] if e["name"] == seed_record["best_seed"])
    return entry


def _samples(
    run: SweepRun,
    stores: Mapping[str, ReplayStore],
    settings: SweepSettings,
) -> list[dict[str, Any]]:
    """Sampled traces of the trace seed at the trace beta, wrong answers first."""
    pool = []
    b = float(settings.trace_beta)
    for key in stores:
        traces = run.traces.get(b, {}).get(key) or []
        correct = run.results[b][key].correct[0]
        for q, tr in enumerate(traces):
            pool.append((bool(correct[q]), key, q, tr))
    pool.sort(key=lambda x: x[0])
    out = []
    for ok, key, q, tr in pool[: settings.trace_samples]:
        verdict = "right" if ok else "wrong"
        out.append(
            {
                "store": key,
                "question": q,
                "seed": settings.seeds[0],
                "beta": b,
                "verdict": verdict,
                "text": trace_text(tr, settings.trace_chars),
            }
        )
    return out


def _mean_dicts(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]} if rows else {}


def score_run(
    run: SweepRun,
    stores: Mapping[str, ReplayStore],
    settings: SweepSettings,
    seed_record: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Metrics and feedback of a successful sweep (this side holds the gold)."""
    results = run.results
    curve = [curve_point(results[float(b)], {"beta": float(b)}) for b in settings.betas]
    i = best_point(curve)
    bb = float(settings.betas[i])
    per_q = {k: r.per_question_accuracy.round(4).tolist() for k, r in results[bb].items()}
    seed = _seed_reference(seed_record)
    traced = [t for b in run.traces.values() for ts in b.values() for t in ts]
    fails = [failure_summary(results[bb][k], stores[k], run.stats[bb][k]) for k in stores]
    metrics = {
        "curve": curve,
        "best": {
            "beta": bb,
            "accuracy": curve[i]["accuracy"],
            "avg_tokens": curve[i]["avg_tokens"],
        },
        "per_question": per_q,
        "monotone_violations": monotone_violations(curve),
        "schedules": run.schedules,
        "schedule_issues": schedule_issues(run.schedules),
        "trace_check": trace_check(traced),
        "failures": _mean_dicts(fails),
        "unrevealed_answers": sum(
            r.unrevealed_answers for per in results.values() for r in per.values()),
    }
    if seed:
        metrics.update(
            {
                "seed_name": seed["name"],
                "seed_accuracy": seed["best"]["accuracy"],
                "seed_tokens": seed["best"]["avg_tokens"],
                "vs_best_seed": compare_questions(per_q, seed["per_question"]),
            }
        )
    opened = np.concatenate([np.ravel(run.stats[bb][k]["opened"]) for k in stores])
    probes = np.concatenate([np.ravel(run.stats[bb][k]["probe_more"]) for k in stores])
    metrics["checks"] = {
        "monotone_spending": not metrics["monotone_violations"],
        "monotone_schedule": not metrics["schedule_issues"],
        "trace_ok": metrics["trace_check"]["ends_with_one_finish"] == 1.0,
        "notes_present": metrics["trace_check"]["with_notes"] > 0,
        # at the best beta: does the number of branches vary by question, are branches probed?
        "adaptive_width": bool(opened.size and opened.min() != opened.max()),
        "adaptive_depth": bool(probes.size and probes.max() > 0),
    }
    return {"metrics": metrics, "trace_samples": _samples(run, stores, settings)}


def evaluate_reply(
    reply_text: str,
    stores: Mapping[str, ReplayStore],
    settings: SweepSettings,
    seed_record: Mapping[str, Any] | None,
    name: str = "candidate",
    forbidden_literals: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Turn an LLM reply into the evaluated part of a round record (never raises).

    Returns:
        ``status`` ("ok", "rejected", "failed"), ``failure_kind``, ``reason``, ``code``,
        ``validation``, ``sandbox`` and, when it ran, ``metrics`` and ``trace_samples``.
    """
    try:
        code = extract_code(reply_text)
    except ExtractionError as exc:
        return _fail("extraction", str(exc), code=None)
    check = validate_source(code, forbidden_literals)
    if not check.ok:
        return _fail(check.kind, check.reason, code=code, validation=check.to_dict())
    run = run_sweep(code, stores, settings.betas, settings.seeds, settings.limits, name=name,
                    filename=f"{name}.py", trace_seed=settings.seeds[0])
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
    out.update(score_run(run, stores, settings, seed_record))
    return out
