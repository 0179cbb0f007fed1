"""One round's candidate, from the LLM's reply to a scored history record.

Steps: extract the code (:mod:`~agents.synthesis.extract`), validate it
(:mod:`~agents.synthesis.validate`), run it in the sandbox over the beta sweep on the search
stores (:mod:`~agents.synthesis.sandbox`), score the answers against gold in this process and
derive the feedback (:mod:`~agents.synthesis.scoring`). Every failure becomes a record with a
``failure_kind`` and a ``reason``; nothing raises into the loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.synthesis.extract import ExtractionError, extract_code
from agents.synthesis.sandbox import SandboxLimits, run_in_sandbox
from agents.synthesis.scoring import (
    best_point,
    compare_questions,
    curve_point,
    failure_summary,
    monotone_violations,
    schedule_issues,
    score_answers,
    trace_check,
    trace_text,
)
from agents.synthesis.validate import validate_source
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
    run: Mapping[str, Any],
    stores: Mapping[str, ReplayStore],
    results: Mapping[str, Any],
    settings: SweepSettings,
) -> list[dict[str, Any]]:
    """Sampled seed-0 traces at the trace beta, wrong answers first."""
    pool = []
    key_b = repr(float(settings.trace_beta))
    for key in stores:
        traces = run["runs"][key][key_b].get("traces") or []
        correct = results[settings.trace_beta][key].correct[0]
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
                "verdict": verdict,
                "text": trace_text(tr, settings.trace_chars),
            }
        )
    return out


def _mean_dicts(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]} if rows else {}


def score_run(
    run: Mapping[str, Any],
    stores: Mapping[str, ReplayStore],
    settings: SweepSettings,
    name: str,
    seed_record: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Metrics and feedback of a successful sandbox run (parent side, with gold)."""
    results: dict[float, dict[str, Any]] = {}
    for b in settings.betas:
        results[b] = {}
        for key, store in stores.items():
            r = run["runs"][key][repr(float(b))]
            results[b][key] = score_answers(
                store, settings.seeds, r["answers"], r["tokens"], name, {"beta": b}
            )
    curve = [curve_point(results[b], {"beta": b}) for b in settings.betas]
    i = best_point(curve)
    bb = settings.betas[i]
    per_q = {k: r.per_question_accuracy.round(4).tolist() for k, r in results[bb].items()}
    seed = _seed_reference(seed_record)
    all_stats = [run["runs"][k][repr(float(b))]["stats"] for k in stores for b in settings.betas]
    merged = {
        f: [row for st in all_stats for row in st[f]] for f in ("finish", "finish_last", "note")
    }
    fails = [
        failure_summary(results[bb][k], stores[k], run["runs"][k][repr(float(bb))]["stats"])
        for k in stores
    ]
    metrics = {
        "curve": curve,
        "best": {
            "beta": bb,
            "accuracy": curve[i]["accuracy"],
            "avg_tokens": curve[i]["avg_tokens"],
        },
        "per_question": per_q,
        "monotone_violations": monotone_violations(curve),
        "schedules": run.get("schedules", {}),
        "schedule_issues": schedule_issues(run.get("schedules", {})),
        "trace_check": trace_check(merged),
        "failures": _mean_dicts(fails),
        "bad_returns": sum(
            run["runs"][k][repr(float(b))]["bad_returns"] for k in stores for b in settings.betas
        ),
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
    best_stats = [run["runs"][k][repr(float(bb))]["stats"] for k in stores]
    opened = np.concatenate([np.ravel(st["opened"]) for st in best_stats])
    probes = np.concatenate([np.ravel(st["probe_more"]) for st in best_stats])
    metrics["checks"] = {
        "monotone_spending": not metrics["monotone_violations"],
        "monotone_schedule": not metrics["schedule_issues"],
        "trace_ok": metrics["trace_check"]["ends_with_one_finish"] == 1.0,
        "notes_present": metrics["trace_check"]["with_notes"] > 0,
        # at the best beta: does the number of branches vary by question, are branches probed?
        "adaptive_width": bool(opened.size and opened.min() != opened.max()),
        "adaptive_depth": bool(probes.size and probes.max() > 0),
    }
    return {"metrics": metrics, "trace_samples": _samples(run, stores, results, settings)}


def evaluate_reply(
    reply_text: str,
    stores: Mapping[str, ReplayStore],
    settings: SweepSettings,
    seed_record: Mapping[str, Any] | None,
    name: str = "candidate",
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
    check = validate_source(code)
    if not check.ok:
        return _fail(check.kind, check.reason, code=code, validation=check.to_dict())
    run = run_in_sandbox(
        code,
        stores,
        settings.betas,
        settings.seeds,
        settings.limits,
        trace_beta=settings.trace_beta,
    )
    sandbox = {k: run.get(k) for k in ("status", "kind", "error", "seconds", "store", "beta")}
    base = {"code": code, "validation": check.to_dict(), "sandbox": sandbox}
    if run.get("status") != "ok":
        kind = run.get("kind") if run.get("status") in ("error", "crashed") else run.get("status")
        return _fail(kind or "crash", str(run.get("error"))[:2000], **base)
    out = {"status": "ok", "failure_kind": None, "reason": None, **base}
    out.update(score_run(run, stores, settings, name, seed_record))
    return out
