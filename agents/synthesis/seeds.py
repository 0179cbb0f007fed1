"""Round 0: the seed controllers (SC, ASC, ESC, Parallel-Probe) on the search split.

Each seed is resolved by name through :func:`tts_gym.controller.make_controller` and swept over
its published budget knob (AutoTTS, 2026: SC n, ASC max_samples, ESC max_samples,
Parallel-Probe num_chains); a seed whose module is missing is recorded as unavailable. They are
trusted code, so they run in-process with :func:`tts_gym.evaluate` (the batch kernels when
present).
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from agents.synthesis.scoring import best_point, curve_point, trace_text
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


def _solve_source(ctrl: Any) -> str:
    try:
        return textwrap.dedent(inspect.getsource(type(ctrl).solve))
    except (OSError, TypeError):  # pragma: no cover - source not available
        return ""


def evaluate_seed(
    name: str, stores: Mapping[str, ReplayStore], seeds: Sequence[int]
) -> dict[str, Any]:
    """Sweep one seed controller over its knob on every search store.

    Returns:
        ``{"name", "status", "knob", "curve", "best", "per_question", "source", "trace"}``
        (``status`` ``"unavailable"`` with ``error`` when it cannot be built).
    """
    knob, values, fixed = SEED_SWEEPS[name]
    curve, per_q, ctrl = [], [], None
    try:
        for v in values:
            ctrl = make_controller(name, {knob: v, **fixed})
            res = {k: evaluate(ctrl, s, list(seeds)) for k, s in stores.items()}
            curve.append(curve_point(res, {knob: v}))
            per_q.append({k: r.per_question_accuracy.round(4).tolist() for k, r in res.items()})
    except (ImportError, ValueError, TypeError, AttributeError) as exc:
        return {"name": name, "status": "unavailable", "error": f"{type(exc).__name__}: {exc}"}
    i = best_point(curve)
    best_ctrl = make_controller(name, {knob: values[i], **fixed})
    key, store = next(iter(stores.items()))
    traced = evaluate(best_ctrl, store, [0], traces=True, path="handle")
    return {
        "name": name,
        "status": "ok",
        "knob": knob,
        "fixed": fixed,
        "curve": curve,
        "best": {"index": i, **{k: curve[i][k] for k in (knob, "accuracy", "avg_tokens")}},
        "per_question": per_q[i],
        "source": _solve_source(ctrl),
        "trace": {"store": key, "question": 0, "text": trace_text(traced.traces[0][0], 800)},
    }


def seed_round(stores: Mapping[str, ReplayStore], seeds: Sequence[int]) -> dict[str, Any]:
    """The round-0 record: every seed's sweep and the best seed (accuracy, then tokens)."""
    entries = [evaluate_seed(n, stores, seeds) for n in SEED_SWEEPS]
    ok = [e for e in entries if e["status"] == "ok"]
    best = min(ok, key=lambda e: (-e["best"]["accuracy"], e["best"]["avg_tokens"]), default=None)
    return {
        "round": 0,
        "kind": "seeds",
        "status": "ok",
        "seeds": entries,
        "best_seed": best["name"] if best else None,
        "metrics": {"best": {"name": best["name"], **best["best"]} if best else None},
    }
