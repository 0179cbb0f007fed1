"""Parent-side scoring and feedback: gold stays here, candidates only ever sent answer strings.

Scoring follows :func:`tts_gym.evaluate` exactly (answer ids through the store's table, correct
= id == gold, the :class:`~tts_gym.evaluation.EvalResult` rounding). On top: the scaling curve
over beta, the monotone-spending check, the schedule check, per-question comparison with the
best seed controller, trace checks and a failure summary for the next prompt.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.synthesis.aliases import NOISE, EpisodeAliases, alias_trace, noise_mark
from agents.synthesis.trace_steps import SKIP, kept_indices, walk
from tts_gym.evaluation import EvalResult
from tts_gym.evaluation.curves import BudgetGrid, curve_score
from tts_gym.store import ReplayStore


def curve_point(results: Mapping[str, EvalResult], knob: dict[str, Any]) -> dict[str, Any]:
    """One point of a scaling curve: mean accuracy and tokens over the search stores."""
    accs = [r.accuracy for r in results.values()]
    toks = [r.avg_tokens for r in results.values()]
    return {
        **knob,
        "accuracy": round(float(np.mean(accs)), 2),
        "avg_tokens": round(float(np.mean(toks)), 1),
        "per_store": {
            k: {"accuracy": r.accuracy, "avg_tokens": round(r.avg_tokens, 1)}
            for k, r in results.items()
        },
    }


def best_point(curve: Sequence[dict[str, Any]]) -> int:
    """Index of the best point: highest accuracy, ties to fewer tokens, then the earlier one."""
    return min(range(len(curve)), key=lambda i: (-curve[i]["accuracy"], curve[i]["avg_tokens"], i))


def monotone_violations(curve: Sequence[dict[str, Any]], knob: str = "beta") -> list[str]:
    """Where spending DEcreases as ``knob`` grows (mean over stores, then per store)."""
    out = []
    for a, b in zip(curve, curve[1:], strict=False):
        if b["avg_tokens"] < a["avg_tokens"]:
            out.append(
                f"mean tokens fall from {a['avg_tokens']:.0f} at {knob}={a[knob]:g} to "
                f"{b['avg_tokens']:.0f} at {knob}={b[knob]:g}"
            )
        for key, pa in a["per_store"].items():
            pb = b["per_store"].get(key)
            if pb is not None and pb["avg_tokens"] < pa["avg_tokens"]:
                out.append(
                    f"{key}: tokens fall from {pa['avg_tokens']:.0f} at {knob}={a[knob]:g} to "
                    f"{pb['avg_tokens']:.0f} at {knob}={b[knob]:g}"
                )
    return out


SCHEDULE_BOUND = 1e12
"""Largest magnitude a schedule value may have to count as a number (beyond: out of range)."""
SCHEDULE_KEYS = 64
SCHEDULE_TEXT = 200
SCHEDULE_DEPTH = 4


def clean_schedule(value: Any, depth: int = 0) -> Any:
    """A candidate's ``schedule(beta)`` value made safe to store and compare: at most
    :data:`SCHEDULE_KEYS` keys or items per container and :data:`SCHEDULE_DEPTH` levels,
    strings cut at :data:`SCHEDULE_TEXT` characters, numbers kept only when finite and within
    ``±SCHEDULE_BOUND`` (else the string ``"<out of range: ...>"``); never raises."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) <= SCHEDULE_BOUND:
            return value
        return f"<out of range: a {value.bit_length()}-bit int>"
    if isinstance(value, float):
        ok = math.isfinite(value) and abs(value) <= SCHEDULE_BOUND
        return value if ok else f"<out of range: {value!r}>"[:60]
    if isinstance(value, str):
        return value[:SCHEDULE_TEXT]
    if depth >= SCHEDULE_DEPTH:
        return f"<nested {type(value).__name__}>"
    if isinstance(value, dict):
        items = list(value.items())[:SCHEDULE_KEYS]
        return {str(k)[:100]: clean_schedule(v, depth + 1) for k, v in items}
    if isinstance(value, (list, tuple)):
        return [clean_schedule(v, depth + 1) for v in list(value)[:SCHEDULE_KEYS]]
    return f"<{type(value).__name__}>"


def _number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and abs(v) <= SCHEDULE_BOUND)


def schedule_issues(schedules: Mapping[str, Any]) -> list[str]:
    """Numeric schedule entries that are not monotone over the (sorted) beta sweep, and values
    that are out of range; never raises (the values are the candidate's)."""
    def beta_of(b: str) -> float:
        try:
            return float(b)
        except (TypeError, ValueError):
            return math.inf

    betas = sorted(schedules, key=beta_of)
    if not betas:
        return ["schedule(beta) returned nothing"]
    bad = [b for b in betas if not isinstance(schedules[b], dict)]
    if bad:
        return [f"schedule({bad[0]}) did not return a dict"]
    keys = sorted({str(k) for b in betas for k in schedules[b]})[:SCHEDULE_KEYS]
    out = []
    for k in keys:
        vals = [schedules[b].get(k) for b in betas]
        wild = [v for v in vals if isinstance(v, str) and v.startswith("<out of range")]
        if wild:
            out.append(f"schedule[{k!r}] has values out of range (beyond ±{SCHEDULE_BOUND:g} or "
                       "not finite)")
            continue
        if not all(_number(v) for v in vals):
            continue
        d = np.diff(np.asarray(vals, float))
        if np.any(d > 0) and np.any(d < 0):
            out.append(f"schedule[{k!r}] is not monotone in beta: {vals}")
    return out


def compare_questions(
    cand: Mapping[str, Sequence[float]], seed: Mapping[str, Sequence[float]], margin: float = 0.2
) -> dict[str, Any]:
    """Per-question accuracy (fraction of seeds correct) of a candidate vs the best seed.

    Returns:
        ``{"lost": [[store, q, seed_acc, cand_acc]...], "won": [...], "n_lost", "n_won"}``,
        questions whose accuracy differs by at least ``margin``, worst first.
    """
    lost, won = [], []
    for key, c in cand.items():
        s = seed.get(key)
        if s is None:
            continue
        for q, (a, b) in enumerate(zip(s, c, strict=True)):
            if a - b >= margin:
                lost.append([key, q, round(a, 2), round(b, 2)])
            elif b - a >= margin:
                won.append([key, q, round(a, 2), round(b, 2)])
    lost.sort(key=lambda x: x[3] - x[2])
    won.sort(key=lambda x: x[2] - x[3])
    return {"n_lost": len(lost), "n_won": len(won), "lost": lost[:10], "won": won[:10]}


def trace_check(traces: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """Per recorded episode trace: it ends with exactly one finish event, and the candidate's
    own decision notes are present (fractions over episodes)."""
    finish = np.asarray([sum(ev.get("op") == "finish" for ev in t) for t in traces], int)
    last = np.asarray([bool(t) and t[-1].get("op") == "finish" for t in traces], bool)
    notes = np.asarray([sum(ev.get("op") == "note" for ev in t) for t in traces], int)
    ok = (finish == 1) & last
    return {
        "episodes": int(ok.size),
        "ends_with_one_finish": round(float(ok.mean()), 4) if ok.size else 0.0,
        "with_notes": round(float((notes > 0).mean()), 4) if notes.size else 0.0,
        "notes_per_episode": round(float(notes.mean()), 2) if notes.size else 0.0,
    }


def failure_summary(result: EvalResult, store: ReplayStore, stats: Mapping[str, Any]) -> dict:
    """Where a candidate lost on one store: early stops on wrong consensus, wasted probes."""
    opened = np.asarray(stats["opened"])
    wrong = ~result.correct
    early = opened < store.n_branches[None, :]
    none = np.array([[a is None for a in row] for row in result.answers])
    n = max(1, wrong.size)
    return {
        "wrong": round(float(wrong.mean()), 3),
        "wrong_early_stop": round(float((wrong & early).sum() / n), 3),
        "no_answer": round(float(none.mean()), 3),
        "avg_opened": round(float(opened.mean()), 2),
        "avg_probe_more": round(float(np.mean(stats["probe_more"])), 2),
        "avg_full_read": round(float(np.mean(stats["full_read"])), 2),
    }


def _value_text(v: Any) -> str:
    if isinstance(v, str) and re.fullmatch(r"[\w.~‹›+-]+", v):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def _event_text(ev: dict[str, Any]) -> str:
    """One (aliased) event as shown in a trace."""
    op = ev.get("op")
    if op in ("probe_new", "probe_more", "full_read"):
        name = {"probe_new": "new", "probe_more": "more", "full_read": "read"}[op]
        if ev.get("none_left"):
            return f"{name}->None"
        if ev.get("refused"):
            return f"{name} s{ev.get('slot')} refused ({ev['refused']})"
        return f"{name} s{ev.get('slot')}={ev.get('answer')}{'!' if ev.get('finished') else ''}"
    if op == "note":
        fields = " ".join(f"{k}={_value_text(v)}" for k, v in ev.items()
                          if k not in ("op", "event"))
        text = f"NOTE {_value_text(ev.get('event', ''))}" + (f" {fields}" if fields else "")
        return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 3] + "..."
    if op == "finish":
        flag = " unrevealed" if ev.get("unrevealed") else ""
        return f"FINISH {ev.get('answer')}{flag} ({ev.get('tokens')} tok)"
    if op == "prune":
        return f"prune s{ev.get('slot')}"
    return str(ev.get("op"))


NOTE_CHARS = 200
"""Characters of one note in a trace text."""


def trace_text(trace: Sequence[dict[str, Any]], max_chars: int = 1200,
               aliases: EpisodeAliases | None = None) -> str:
    """One episode trace as one line, answers aliased (:mod:`~agents.synthesis.aliases`).

    Keeps the first and last steps, the last note and the steps where the revealed majority or
    a branch's answer changed (:mod:`~agents.synthesis.trace_steps`; a majority change is
    marked ``(maj A)``); each stretch between kept steps is shown as ``... N steps ...``.
    When that is longer than ``max_chars``, branch changes are dropped first, then majority
    changes, each time where kept steps are densest.

    Args:
        trace: The broker's (or the handle's) events of one episode.
        max_chars: Cap on the text.
        aliases: The episode's aliases (knowing its question's labels and the run's); a fresh
            one that only knows the revealed answers when None.
    """
    events = alias_trace(trace, aliases or EpisodeAliases())
    steps = walk(events, noise={noise_mark(x) for x in NOISE})
    kept = kept_indices(events, steps)
    if not kept:
        return ""
    fixed = {kept[0], kept[-1]} | {i for i in kept if events[i].get("op") == "note"}
    rank = {i: 0 if i in fixed else (1 if steps[i].majority_changed else 2) for i in kept}
    texts = {}
    for i in kept:
        t = _event_text(events[i])
        if steps[i].majority_changed and steps[i].majority is not None:
            t += f" (maj {steps[i].majority})"
        texts[i] = t
    sizes = [int(ev.get("skipped", 0)) if ev.get("op") == SKIP else 1 for ev in events]

    def render(idx: list[int]) -> str:
        parts, prev = [], -1
        for i in idx:
            gap = sum(sizes[prev + 1 : i])
            if gap:
                parts.append(f"... {gap} step{'s' if gap > 1 else ''} ...")
            parts.append(texts[i])
            prev = i
        gap = sum(sizes[prev + 1 :])
        if gap:
            parts.append(f"... {gap} step{'s' if gap > 1 else ''} ...")
        return "; ".join(parts)

    text = render(kept)
    while len(text) > max_chars:
        loose = [j for j in range(1, len(kept) - 1) if rank[kept[j]]]
        if not loose:
            break
        worst = max(rank[kept[j]] for j in loose)
        j = min((j for j in loose if rank[kept[j]] == worst),
                key=lambda j: (kept[j + 1] - kept[j - 1], j))
        kept.pop(j)
        text = render(kept)
    if len(text) > max_chars:
        text = text[: max(0, max_chars - 3)] + "..."
    return text


# --- noise, the curve-level criterion, diagnostics -----------------------------------------------
def seed_se(correct: Sequence[np.ndarray]) -> float:
    """Standard error (accuracy points) of the mean accuracy over stores, from the seed-to-seed
    variation within each question: the questions are fixed, so this is how much the figure
    would move with other shuffle seeds (episodes of one question are one cluster).

    Args:
        correct: per store, bool ``[S, Q]`` (same S everywhere).
    """
    parts = []
    for c in correct:
        c = np.asarray(c, dtype=np.float64)
        if c.shape[0] < 2:
            return float("nan")
        w = 1.0 / (len(correct) * c.shape[1])  # each store weighs the same in the mean
        parts.append((w**2) * c.var(axis=0, ddof=1).sum() / c.shape[0])
    return round(100.0 * float(np.sqrt(np.sum(parts))), 2)


def paired_se(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Standard error of the difference of two candidates' accuracy, paired on the same
    (store, question, seed) episodes (same branch orders), clustered by question."""
    return seed_se([np.asarray(x, np.float64) - np.asarray(y, np.float64)
                    for x, y in zip(a, b, strict=True)])


def budget_score(curve: Sequence[dict[str, Any]], lo: float, hi: float, n: int = 50) -> float:
    """The curve-level criterion over ``n`` budgets log-spaced from ``lo`` to ``hi`` tokens
    (:func:`tts_gym.evaluation.curves.curve_score`; 0 for a degenerate range)."""
    if lo <= 0 or hi <= lo:
        return 0.0
    return curve_score(curve, BudgetGrid(lo, hi, n))


def pack_bits(correct: np.ndarray) -> str:
    """bool ``[S, Q]`` as a hex string (history records stay small)."""
    return np.packbits(np.asarray(correct, bool).ravel()).tobytes().hex()


def unpack_bits(text: str, shape: Sequence[int]) -> np.ndarray:
    """The inverse of :func:`pack_bits`."""
    n = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), np.uint8))[:n]
    return bits.astype(bool).reshape(tuple(shape))


def overspend(trace: Sequence[dict[str, Any]]) -> int:
    """Tokens charged after the episode's final answer became, for good, the most frequent of
    the answers revealed so far (probe and final answers alike)."""
    final = next((ev.get("answer") for ev in reversed(trace) if ev.get("op") == "finish"), None)
    if final is None:
        return 0
    counts: dict[str, int] = {}
    spent = 0
    settled_at = None
    for ev in trace:
        if ev.get("op") == SKIP:  # a stretch shortened away (trace_steps.shorten)
            spent += int(ev.get("tokens", 0))
            for a, c in (ev.get("revealed") or {}).items():
                counts[a] = counts.get(a, 0) + int(c)
        elif ev.get("op") in ("probe_new", "probe_more", "full_read") and "answer" in ev:
            spent += int(ev.get("tokens", 0))
            counts[ev["answer"]] = counts.get(ev["answer"], 0) + 1
        else:
            continue
        if counts:
            top = max(counts.values())
            leads = counts.get(final, 0) == top
            if leads and settled_at is None:
                settled_at = spent
            elif not leads:
                settled_at = None
    return 0 if settled_at is None else spent - settled_at


DIAGNOSTICS = {
    "wrong": "share of episodes answered wrong",
    "wrong_but_higher_beta_right": "over every step of the sweep, episodes wrong at one beta "
    "but right at the next larger one (stopping too early)",
    "wrong_but_best_right": "wrong, while the best so far, at its best point spending no more "
    "tokens, is right on the same episode",
    "majority_seen_not_chosen": "wrong, and the 128-branch majority answer had been revealed "
    "in the episode but another was chosen",
    "overspend_tokens": "mean tokens charged after the final answer had become, for good, the "
    "most frequent revealed answer (seed-0 episodes)",
    "unrevealed": "answers that no primitive of the episode returned (scored wrong)",
}
"""Each diagnostic's one-line definition (shown in the prompt)."""
