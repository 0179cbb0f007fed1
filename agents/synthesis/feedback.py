"""What each round teaches the next: the best so far, comparisons along the whole curve,
diagnostics that discriminate, and traces chosen from questions that were lost for a reason.

Every scored controller (a seed over its knob, a candidate over beta) is summarised the same
way: its curve (with a standard error per point, :func:`~agents.synthesis.scoring.seed_se`),
its curve-level score (:func:`~tts_gym.evaluation.curves.curve_score` over the run's fixed
budget grid), and at every point of the curve the per-episode correctness bits and per-question
tokens, so later rounds compare with it band by band, episode by episode (paired,
:func:`~tts_gym.evaluation.curves.compare_curves`), without re-running it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.synthesis.aliases import AnswerLabels, EpisodeAliases
from agents.synthesis.facts import winnable
from agents.synthesis.scoring import (
    best_point,
    curve_point,
    overspend,
    pack_bits,
    seed_se,
    trace_text,
    unpack_bits,
)
from tts_gym.evaluation import EvalResult
from tts_gym.evaluation.curves import BudgetGrid, CurvePoint, compare_curves, pick_at
from tts_gym.store import ReplayStore


def scored_point(results: Mapping[str, EvalResult], knob: dict[str, Any]) -> dict[str, Any]:
    """One curve point with its standard error (accuracy points, seed noise)."""
    point = curve_point(results, knob)
    point["se"] = seed_se([r.correct for r in results.values()])
    return point


def point_detail(results: Mapping[str, EvalResult]) -> dict[str, Any]:
    """Per store at one knob value: correctness bits ``[S, Q]``, per-question accuracy (share
    of seeds) and mean tokens."""
    return {
        key: {
            "shape": list(r.correct.shape),
            "correct": pack_bits(r.correct),
            "accuracy": r.per_question_accuracy.round(4).tolist(),
            "tokens": r.per_question_tokens.round(1).tolist(),
        }
        for key, r in results.items()
    }


def correct_of(detail: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """bool ``[S, Q]`` per store from a :func:`point_detail`."""
    return {k: unpack_bits(v["correct"], v["shape"]) for k, v in detail.items()}


def point_details(results: Mapping[Any, Mapping[str, EvalResult]],
                  values: Sequence[Any]) -> list[dict[str, Any]]:
    """:func:`point_detail` of every knob value of a sweep, in curve order."""
    return [point_detail(results[v]) for v in values]


def curve_points(curve: Sequence[dict[str, Any]], details: Sequence[Mapping[str, Any]] | None,
                 knob: str) -> list[CurvePoint]:
    """A recorded curve (with its per-point :func:`point_detail`, when recorded) as
    :class:`~tts_gym.evaluation.curves.CurvePoint` s for
    :func:`~tts_gym.evaluation.curves.compare_curves`."""
    out = []
    for i, p in enumerate(curve):
        d = details[i] if details is not None and i < len(details) else None
        correct = correct_of(d) if d else {}
        tokens = {k: np.asarray(v["tokens"], np.float64) for k, v in d.items()} if d else {}
        out.append(CurvePoint(f"{knob}={_num(p.get(knob))}", float(p["accuracy"]),
                              float(p["avg_tokens"]), correct, tokens))
    return out


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def reference_points(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every scored controller of the history as ``{"name", "round", "score", "best",
    "detail", "details", "curve", "knob"}`` (seeds first, then candidates that ran;
    ``details`` is None in records written before every point kept its detail; seeds scored
    only for the budget grid, ``"shown": false``, are left out)."""
    out = []
    for e in entries:
        if e.get("kind") == "seeds":
            for s in e.get("seeds", []):
                if s.get("status") == "ok" and "detail" in s and s.get("shown", True):
                    out.append({"name": f"seed {s['name']}", "round": 0, "score": s["score"],
                                "best": s["best"], "detail": s["detail"],
                                "details": s.get("details"), "curve": s["curve"],
                                "knob": s.get("knob", "beta")})
        elif e.get("kind") == "candidate" and e.get("status") == "ok":
            m = e.get("metrics") or {}
            if "detail" in m and "score" in m:
                out.append({"name": f"round {e['round']}", "round": int(e["round"]),
                            "score": m["score"], "best": m["best"], "detail": m["detail"],
                            "details": m.get("details"), "curve": m["curve"],
                            "knob": m.get("knob", "beta")})
    return out


def best_so_far(entries: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The reference with the highest curve-level score (ties: the earlier one)."""
    refs = reference_points(entries)
    if not refs:
        return None
    return max(refs, key=lambda r: (r["score"], -r["round"]))


def grid_of(seed_record: Mapping[str, Any] | None) -> BudgetGrid | None:
    """The run's budget grid from its round-0 record (``budget_grid``, else the older
    ``budget_range``); None when neither is usable."""
    if not isinstance(seed_record, Mapping):
        return None
    g = seed_record.get("budget_grid")
    try:
        if isinstance(g, Mapping):
            return BudgetGrid.from_dict(g)
        rng = seed_record.get("budget_range")
        if isinstance(rng, list) and len(rng) == 2:
            return BudgetGrid(float(rng[0]), float(rng[1]))
    except (KeyError, TypeError, ValueError):
        return None
    return None


def ref_curve(ref: Mapping[str, Any]) -> list[CurvePoint]:
    """A :func:`reference_points` entry's curve as points."""
    return curve_points(ref["curve"], ref.get("details"), ref.get("knob", "beta"))


def compare_with(mine: Sequence[CurvePoint], ref: Mapping[str, Any], grid: BudgetGrid,
                 label: str, name: str = "this round") -> dict[str, Any]:
    """The per-band comparison (:func:`~tts_gym.evaluation.curves.compare_curves`) of a curve
    with a reference, as a JSON record ``{"label", "name", "a", "b", "verdict", "bands"}``."""
    cmp = compare_curves(mine, ref_curve(ref), grid, name_a=name, name_b=ref["name"])
    return {"label": label, "name": ref["name"], **cmp.to_dict()}


def focus_points(curve: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
    """``[(label, index)]``: the cheapest point, the middle one (tokens nearest the geometric
    mean of the two ends), the dearest one and the top point (highest accuracy), without
    repeats, in that order. Diagnostics and traces are taken there, so the cheap end, where the
    score is usually lost, is never left unexplained."""
    by_tokens = sorted(range(len(curve)), key=lambda i: (curve[i]["avg_tokens"], i))
    cheap, dear = by_tokens[0], by_tokens[-1]
    lo, hi = (max(curve[i]["avg_tokens"], 1.0) for i in (cheap, dear))
    inner = [i for i in by_tokens if i not in (cheap, dear)]
    mid = min(inner, key=lambda i: (abs(np.log(max(curve[i]["avg_tokens"], 1.0))
                                        - 0.5 * np.log(lo * hi)), i)) if inner else cheap
    out: list[tuple[str, int]] = []
    for label, i in (("cheapest", cheap), ("middle", mid), ("dearest", dear),
                     ("top", top_point(curve))):
        if all(i != j for _, j in out):
            out.append((label, i))
    return out


def matched_reference(ref: Mapping[str, Any] | None, tokens: float
                      ) -> tuple[dict[str, np.ndarray] | None, dict[str, list[float]] | None,
                                 str | None]:
    """The reference's point the score picks at ``tokens`` (its best accuracy spending no
    more): ``(correct per store [S, Q], per-question mean tokens per store, label)``; Nones
    when the reference has no point that cheap or no recorded detail there."""
    if ref is None:
        return None, None, None
    pts = ref_curve(ref)
    i = pick_at(pts, tokens)
    if i is None or not pts[i].correct:
        return None, None, None
    toks = {k: np.asarray(v, np.float64).tolist() for k, v in pts[i].tokens.items()}
    return dict(pts[i].correct), toks, pts[i].label


def diagnostics(
    results: Mapping[float, Mapping[str, EvalResult]],
    stats: Mapping[float, Mapping[str, Mapping[str, np.ndarray]]],
    traces: Mapping[float, Mapping[str, list]],
    beta: float,
    ref_correct: Mapping[str, np.ndarray] | None,
) -> dict[str, float]:
    """The diagnostics of :data:`~agents.synthesis.scoring.DIAGNOSTICS` at ``beta`` (the
    early-stop figure over every step of the sweep); ``ref_correct`` is the best so far's
    correctness ``[S, Q]`` per store at its point matched to this one
    (:func:`matched_reference`), or None."""
    values = list(results)  # the sweep's order (cheap to expensive)
    here = results[beta]
    best_correct = ref_correct or {}
    n = wrong = vs_best = seen = unrevealed = 0
    for key, r in here.items():
        w = ~r.correct
        n += w.size
        wrong += int(w.sum())
        b = best_correct.get(key)
        if b is not None and b.shape == w.shape:
            vs_best += int((w & b).sum())
        missed = stats[beta][key].get("majority_missed")
        if missed is not None:
            seen += int((w & (np.asarray(missed) > 0)).sum())
        unrevealed += r.unrevealed_answers
    early = pairs = 0  # over every step of the sweep: wrong here, right one step up
    for lo, hi in zip(values, values[1:], strict=False):
        for key, r in results[lo].items():
            early += int((~r.correct & results[hi][key].correct).sum())
            pairs += r.correct.size
    spent = [overspend(t) for ts in traces.get(beta, {}).values() for t in ts]
    return {
        "wrong": round(wrong / max(1, n), 3),
        "wrong_but_higher_beta_right": round(early / max(1, pairs), 3),
        "wrong_but_best_right": round(vs_best / max(1, n), 3),
        "majority_seen_not_chosen": round(seen / max(1, n), 3),
        "overspend_tokens": round(float(np.mean(spent)), 1) if spent else 0.0,
        "unrevealed": int(unrevealed),
    }


@dataclass(frozen=True)
class TraceTarget:
    """Where a round's traces should teach: one point of its curve against a reference.

    Attributes:
        beta: The knob value whose seed-0 traces are looked at.
        band: Its label in the prompt (``"cheapest"``, ``"middle"``, ``"top"``).
        ref_name: The reference's name (``"round 2"``, ``"seed asc"``), or None.
        ref_correct: The reference at its comparable point: per store, bool ``[S, Q]``
            (same seeds, row 0 = the traced seed), or None.
        ref_tokens: Per store, the reference's per-question mean tokens at that point, or None.
    """

    beta: float
    band: str
    ref_name: str | None = None
    ref_correct: Mapping[str, np.ndarray] | None = None
    ref_tokens: Mapping[str, Sequence[float]] | None = None


def _trace_queue(target: TraceTarget, here: Mapping[str, EvalResult],
                 traces: Mapping[str, list], stores: Mapping[str, ReplayStore]
                 ) -> list[tuple[str, str, int]]:
    """``(why, store, question)`` for one target, best first: lost episodes (largest gap of
    per-question accuracy first), then overspent ones (most tokens more first)."""
    lost, over = [], []
    for key, r in here.items():
        if key not in traces or key not in stores:
            continue
        ok = winnable(stores[key])
        ref = (target.ref_correct or {}).get(key)
        ref = ref if ref is not None and np.shape(ref)[1:] == r.correct.shape[1:] else None
        ref_tok = (target.ref_tokens or {}).get(key)
        for q in range(r.correct.shape[1]):
            if not ok[q]:
                continue
            mine_acc = float(r.per_question_accuracy[q])
            if ref is not None and not r.correct[0, q] and ref[0, q]:
                lost.append((float(np.mean(ref[:, q])) - mine_acc, key, q))
                continue
            if ref_tok is not None and len(ref_tok) == r.correct.shape[1]:
                extra = float(r.tokens[0, q]) - float(ref_tok[q])
            else:
                extra = float(overspend(traces[key][q]))
            if extra > 0:
                over.append((extra, key, q))
    lost.sort(key=lambda x: (-x[0], x[1], x[2]))
    over.sort(key=lambda x: (-x[0], x[1], x[2]))
    return [("lost", k, q) for _g, k, q in lost] + [("overspent", k, q) for _g, k, q in over]


def pick_traces(
    results: Mapping[float, Mapping[str, EvalResult]],
    traces: Mapping[float, Mapping[str, list]],
    stores: Mapping[str, ReplayStore],
    targets: Sequence[TraceTarget],
    seed: int,
    shown: Set[tuple[str, int, int]] = frozenset(),
    n: int = 3,
    chars: int = 1200,
) -> list[dict[str, Any]]:
    """Up to ``n`` traces of seed ``seed`` (row 0 of the results), one per target in turn.

    For each target: an episode this candidate got wrong while the reference got it right
    (largest per-question accuracy gap first), else the one that spent the most tokens more
    than the reference (:func:`~agents.synthesis.scoring.overspend` without reference
    tokens). Never a question no branch gets right; a (store, question, seed) in ``shown``
    (earlier rounds) or already picked only when nothing else qualifies for that target.
    Targets are visited in order, again and again, until ``n`` traces or none is left.

    Returns:
        Dicts with ``store, question, seed, beta, band, why ("lost" / "overspent"), ref_name,
        verdict ("right" / "wrong"), text`` (answers aliased, :func:`trace_text`).
    """
    labels = AnswerLabels(stores)
    queues = []
    for t in targets:
        here, tr = results.get(t.beta), traces.get(t.beta)
        queues.append(_trace_queue(t, here, tr, stores) if here and tr else [])
    picked: set[tuple[str, int, int]] = set()
    out: list[dict[str, Any]] = []
    while len(out) < n and any(queues):
        for t, queue in zip(targets, queues, strict=True):
            if len(out) >= n or not queue:
                continue
            fresh = [x for x in queue if (x[1], x[2], seed) not in shown | picked]
            choice = (fresh or [x for x in queue if (x[1], x[2], seed) not in picked]
                      or [None])[0]
            if choice is None:
                queue.clear()
                continue
            queue.remove(choice)
            why, key, q = choice
            picked.add((key, q, seed))
            aliases = EpisodeAliases(labels.own(key, q), labels)
            out.append({
                "store": key, "question": q, "seed": seed, "beta": t.beta, "band": t.band,
                "why": why, "ref_name": t.ref_name,
                "verdict": "right" if results[t.beta][key].correct[0, q] else "wrong",
                "text": trace_text(traces[t.beta][key][q], chars, aliases),
            })
    return out


def top_point(curve: Sequence[dict[str, Any]]) -> int:
    """The paper's rule: the point of highest accuracy (ties: fewer tokens)."""
    return best_point(curve)
