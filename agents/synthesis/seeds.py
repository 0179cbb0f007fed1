"""Round 0: the seed controllers (SC, ASC, ESC, Parallel-Probe) on the search split.

Each seed is resolved by name through :func:`tts_gym.controller.make_controller` and swept over
its published budget knob (AutoTTS, 2026: SC n, ASC max_samples, ESC max_samples,
Parallel-Probe num_chains); a seed whose module is missing is recorded as unavailable. They are
trusted code, so they run in-process with :func:`tts_gym.evaluate` (the batch kernels when
present). What the LLM is shown is each seed as a standalone candidate file
(``seed_files/``): it passes the lint, runs in the sandbox, and at the beta of each grid point
gives the built-in's numbers (tests/test_discovery_feedback.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.synthesis.aliases import AnswerLabels, EpisodeAliases
from agents.synthesis.feedback import point_detail, scored_point, top_point
from agents.synthesis.scoring import budget_score, trace_text
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.store import ReplayStore

SEED_SWEEPS: dict[str, tuple[str, tuple[int, ...], dict[str, Any]]] = {
    "sc": ("n", (1, 4, 8, 16, 32, 64), {}),
    "asc": ("max_samples", (1, 4, 8, 16, 32, 64), {"threshold": 0.95}),
    "esc": ("max_samples", (16, 32, 64), {"window": 8}),
    "parallel-probe": ("num_chains", (1, 4, 8, 16, 32, 64), {}),
}
"""Seed name -> (budget knob, its published sweep, fixed parameters)."""


SEED_FILES = Path(__file__).parent / "seed_files"
FILE_OF = {"sc": "sc.py", "asc": "asc.py", "esc": "esc.py", "parallel-probe": "parallel_probe.py",
           "cmc": "cmc.py"}
"""Seed name -> its standalone candidate file (what the LLM is shown; it passes the lint and
runs in the sandbox with the built-in's numbers at the betas of :func:`beta_of`)."""


def seed_source(name: str) -> str:
    """The candidate file of a seed controller."""
    return (SEED_FILES / FILE_OF[name]).read_text()


def beta_of(name: str, value: int) -> float:
    """The beta at which the seed file plays the built-in with knob ``value``."""
    values = SEED_SWEEPS[name][1]
    return round(values.index(value) / (len(values) - 1), 4) if len(values) > 1 else 0.0


def evaluate_seed(
    name: str, stores: Mapping[str, ReplayStore], seeds: Sequence[int]
) -> dict[str, Any]:
    """Sweep one seed controller over its knob on every search store.

    Returns:
        ``{"name", "status", "knob", "fixed", "curve", "best", "score"?, "detail", "source",
        "trace"}`` (``status`` ``"unavailable"`` with ``error`` when it cannot be built).
    """
    knob, values, fixed = SEED_SWEEPS[name]
    curve, details, ctrl = [], [], None
    try:
        for v in values:
            ctrl = make_controller(name, {knob: v, **fixed})
            res = {k: evaluate(ctrl, s, list(seeds)) for k, s in stores.items()}
            curve.append(scored_point(res, {knob: v}))
            details.append(point_detail(res))
    except (ImportError, ValueError, TypeError, AttributeError) as exc:
        return {"name": name, "status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
    i = top_point(curve)
    best_ctrl = make_controller(name, {knob: values[i], **fixed})
    key, store = next(iter(stores.items()))
    traced = evaluate(best_ctrl, store, [0], traces=True, path="handle")
    labels = AnswerLabels(stores)  # the trace shows aliases, never answer strings
    return {
        "name": name,
        "status": "ok",
        "knob": knob,
        "fixed": fixed,
        "curve": curve,
        "best": {"index": i, **{k: curve[i][k] for k in (knob, "accuracy", "avg_tokens", "se")}},
        "detail": details[i],
        "file": FILE_OF[name],
        "betas": {str(v): beta_of(name, v) for v in values},
        "trace": {"store": key, "question": 0, "text": trace_text(
            traced.traces[0][0], 800, EpisodeAliases(labels.own(key, 0), labels))},
    }


def seed_round(stores: Mapping[str, ReplayStore], seeds: Sequence[int]) -> dict[str, Any]:
    """The round-0 record: every seed's sweep, each one's curve-level score over the seeds'
    common token range (``budget_range``), and the best seed by that score."""
    entries = [evaluate_seed(n, stores, seeds) for n in SEED_SWEEPS]
    ok = [e for e in entries if e["status"] == "ok"]
    tokens = [p["avg_tokens"] for e in ok for p in e["curve"]]
    budget = [max(1.0, min(tokens)), max(2.0, max(tokens))] if tokens else [1.0, 2.0]
    for e in ok:
        e["score"] = budget_score(e["curve"], *budget)
    best = max(ok, key=lambda e: e["score"], default=None)
    return {
        "round": 0,
        "kind": "seeds",
        "status": "ok",
        "seeds": entries,
        "budget_range": budget,
        "best_seed": best["name"] if best else None,
        "metrics": {"best": {"name": best["name"], **best["best"]} if best else None},
    }
