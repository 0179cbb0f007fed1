"""Round 0: the seed controllers on the search split.

The seeds shown to the LLM are chosen with ``--seed-controllers``: by default the paper's four
(:data:`PAPER_SEEDS`: SC, ASC, ESC, Parallel-Probe), or CMC, the paper's discovered controller,
to start from the state of the art. Each seed is resolved by name through
:func:`tts_gym.controller.make_controller` and swept over its published budget knob (AutoTTS,
2026: SC n, ASC max_samples, ESC max_samples, Parallel-Probe num_chains, CMC beta over the
built-in sweep's grid); a seed whose module is missing is recorded as unavailable. They are
trusted code, so they run in-process with :func:`tts_gym.evaluate` (the batch kernels when
present). What the LLM is shown is each seed as a standalone candidate file
(``seed_files/``): it passes the lint, runs in the sandbox, and at the beta of each grid point
gives the built-in's numbers (tests/test_discovery_feedback.py, tests/test_seed_controllers.py).
Its ``solve`` IS the built-in's Python path: each built-in subclasses the seed file's
``Controller`` (tests/test_one_copy.py).

The curve score's budget grid is always built from the paper's four seeds, whatever
``--seed-controllers`` says, so that scores of different runs compare: round 0 scores them even
when they are not shown, and marks such entries ``"shown": false``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.synthesis.aliases import AnswerLabels, EpisodeAliases
from agents.synthesis.feedback import point_detail, scored_point, top_point
from agents.synthesis.scoring import budget_score, trace_text
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.reporting.sweep import SWEEP_GRIDS
from tts_gym.store import ReplayStore

SEED_SWEEPS: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = SWEEP_GRIDS
"""Seed name -> (budget knob, its published sweep, fixed parameters): the built-in sweep's grids
(:data:`tts_gym.reporting.sweep.SWEEP_GRIDS`), the one definition."""

PAPER_SEEDS: tuple[str, ...] = ("sc", "asc", "esc", "parallel-probe")
"""The paper's seed controllers: the default of ``--seed-controllers``, and the seeds whose
curves fix the score's budget grid."""

GRID_POINTS: int = inspect.signature(budget_score).parameters["n"].default
"""Budgets of the curve score's grid (log-spaced; :func:`budget_score`'s own default)."""


def check_seed_names(names: Sequence[str]) -> tuple[str, ...]:
    """The seed names in order, duplicates dropped.

    Raises:
        ValueError: An unknown name, or none at all (the message lists the valid ones).
    """
    out = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    bad = [n for n in out if n not in SEED_SWEEPS]
    if bad or not out:
        what = f"unknown seed controller(s) {bad}" if bad else "no seed controller given"
        raise ValueError(f"--seed-controllers: {what}; choose among {', '.join(SEED_SWEEPS)} "
                         f"(comma-separated, default {','.join(PAPER_SEEDS)}).")
    return out


SEED_FILES = Path(__file__).parent / "seed_files"
FILE_OF = {"sc": "sc.py", "asc": "asc.py", "esc": "esc.py", "parallel-probe": "parallel_probe.py",
           "cmc": "cmc.py"}
"""Seed name -> its standalone candidate file (what the LLM is shown; it passes the lint, runs in
the sandbox with the built-in's numbers at the betas of :func:`beta_of`, and its ``solve`` is the
built-in's)."""


def seed_source(name: str) -> str:
    """The candidate file of a seed controller."""
    return (SEED_FILES / FILE_OF[name]).read_text()


def beta_of(name: str, value: Any) -> float:
    """The beta at which the seed file plays the built-in with knob ``value``, a point of its
    sweep (CMC's knob is beta itself). The seed files map beta ``b`` to grid point
    ``round(b * (len(grid) - 1))``; off the grid the built-ins set the knob directly."""
    knob, values, _fixed = SEED_SWEEPS[name]
    if knob == "beta":
        return float(value)
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
        "details": details,
        "file": FILE_OF[name],
        "betas": {str(v): beta_of(name, v) for v in values},
        "trace": {"store": key, "question": 0, "text": trace_text(
            traced.traces[0][0], 800, EpisodeAliases(labels.own(key, 0), labels))},
    }


def seed_round(stores: Mapping[str, ReplayStore], seeds: Sequence[int],
               names: Sequence[str] = PAPER_SEEDS) -> dict[str, Any]:
    """The round-0 record: every seed's sweep (the paper's four always, for the budget grid;
    those not in ``names`` marked ``"shown": false``), each one's curve-level score over the
    grid, and the best shown seed by that score.

    Args:
        stores: The search stores.
        seeds: Protocol shuffle seeds.
        names: The seeds shown to the LLM (``--seed-controllers``).

    Returns:
        ``{"round": 0, "kind": "seeds", "status", "seeds": [entry...], "budget_range": [lo,
        hi], "budget_grid": {"lo", "hi", "n", "spacing": "log", "from": [names]},
        "best_seed", "metrics"}``; ``budget_range`` repeats the grid's ends for old readers.

    Raises:
        ValueError: An unknown seed name (see :func:`check_seed_names`).
    """
    shown = check_seed_names(names)
    order = [*PAPER_SEEDS, *(n for n in shown if n not in PAPER_SEEDS)]
    entries = [{**evaluate_seed(n, stores, seeds), "shown": n in shown} for n in order]
    ok = [e for e in entries if e["status"] == "ok"]
    grid_from = [e for e in ok if e["name"] in PAPER_SEEDS]
    tokens = [p["avg_tokens"] for e in grid_from for p in e["curve"]]
    budget = [max(1.0, min(tokens)), max(2.0, max(tokens))] if tokens else [1.0, 2.0]
    for e in ok:
        e["score"] = budget_score(e["curve"], *budget, GRID_POINTS)
    best = max((e for e in ok if e["shown"]), key=lambda e: e["score"], default=None)
    return {
        "round": 0,
        "kind": "seeds",
        "status": "ok",
        "seeds": entries,
        "budget_range": budget,
        "budget_grid": {"lo": budget[0], "hi": budget[1], "n": GRID_POINTS, "spacing": "log",
                        "from": [e["name"] for e in grid_from]},
        "best_seed": best["name"] if best else None,
        "metrics": {"best": {"name": best["name"], **best["best"]} if best else None},
    }
