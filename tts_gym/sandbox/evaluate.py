"""The published protocol for untrusted controller code: one sandboxed unit per shuffle seed.

:func:`evaluate_source` is what ``tts-gym eval file:PATH`` runs by default: every seed is a
unit (a fresh, isolated candidate process playing every question of the store once), the
broker charges and records, and the answers are scored here with the one scoring rule
(:func:`tts_gym.evaluation.score`). The numbers equal the in-process handle path's for the
same code, episode for episode (tests/test_sandbox.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tts_gym.env.params import DEFAULT_MAX_BRANCHES
from tts_gym.evaluation import EvalResult
from tts_gym.evaluation.scoring import score
from tts_gym.sandbox.broker import UnitResult, UnitSpec
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.units import run_units
from tts_gym.store import ReplayStore


class CandidateFailed(RuntimeError):
    """The controller failed in the sandbox; ``error`` holds kind, summary, traceback, store,
    question and seed, and the message is one line naming them."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(describe_error(error))


def describe_error(error: dict[str, Any]) -> str:
    """One line: what failed and where (file:line, store, seed, question)."""
    where = []
    if error.get("store"):
        where.append(str(error["store"]))
    if error.get("seed") is not None:
        where.append(f"seed {error['seed']}")
    if error.get("question") is not None:
        where.append(f"question {error['question']}")
    elif error.get("suspects"):
        qs = [str(s.get("question")) if s.get("store") == error.get("store") else
              f"{s.get('store')} question {s.get('question')}" for s in error["suspects"]]
        more = f", ... ({len(qs)} in all)" if len(qs) > 8 else ""
        where.append(f"one of questions {', '.join(qs[:8])}{more}")
    ctx = f" ({', '.join(where)})" if where else ""
    why = OUTSIDE_WATCHDOG.get(str(error.get("kind")), "")
    return f"{error.get('summary') or error.get('kind')}{ctx}{why}"


OUTSIDE_WATCHDOG = {
    "cpu_limit": "; the kernel's CPU limit or the broker's turn check stopped the process, not "
    "the in-process watchdog, so no line is known (raise the budget with --episode-cpu)",
    "stalled": "; the broker stopped the process, not the in-process watchdog, so no line is "
    "known",
}
"""What a message adds when a stop came from outside the candidate process (no frame read)."""


def unit_specs(
    source: str,
    filename: str,
    params: dict[str, Any],
    store_keys: Sequence[str],
    seeds: Sequence[int],
    *,
    traces: bool = False,
    cost_mode: str = "reference",
    max_branches: int = DEFAULT_MAX_BRANCHES,
) -> list[UnitSpec]:
    """One unit per seed, each over every question of ``store_keys``."""
    return [
        UnitSpec(source=source, filename=filename, params=dict(params),
                 store_keys=tuple(store_keys), seed=int(s), traces=traces,
                 cost_mode=cost_mode, max_branches=max_branches)
        for s in seeds
    ]


def gather(results: Sequence[UnitResult | None], key: str) -> tuple[np.ndarray, ...]:
    """``(answer ids int32 [S, Q], tokens int64 [S, Q], unrevealed bool [S, Q])`` of one store
    from per-seed unit results (all must be ``"ok"``)."""
    outs = [r.stores[key] for r in results]  # type: ignore[union-attr]
    return (np.stack([o.answer_ids for o in outs]), np.stack([o.tokens for o in outs]),
            np.stack([~o.revealed for o in outs]))


def first_error(results: Sequence[UnitResult | None]) -> dict[str, Any] | None:
    """The error of the first failed unit in order, or None."""
    for r in results:
        if r is not None and r.status != "ok":
            return r.error
    return None


def evaluate_source(
    source: str,
    store: ReplayStore,
    seeds: int | Sequence[int] = 100,
    *,
    params: dict[str, Any] | None = None,
    filename: str = "controller.py",
    limits: SandboxLimits | None = None,
    traces: bool = False,
    cost_mode: str = "reference",
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> EvalResult:
    """Score a controller file's ``class Controller`` in the sandbox with the protocol.

    Args:
        source: The file's text.
        store: The store (with gold; it never leaves this process).
        seeds: Number of shuffle seeds (0..n-1) or an explicit list.
        params: Keyword arguments of ``Controller(...)``.
        filename: The file's name in error messages.
        limits: Sandbox limits (``workers`` brokers in parallel).
        traces: Record the broker's execution traces.
        cost_mode: ``"reference"`` (the paper's) or ``"exact"``.
        name: Controller name in the result (default ``file:<filename>``).
        progress: Called with 1 per finished seed.

    Raises:
        CandidateFailed: The controller raised, returned a non-string, looped, or its process
            died; the message names file:line, seed and question.
        tts_gym.sandbox.zygote_client.SandboxUnavailable: The sandbox cannot start here.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    limits = limits or SandboxLimits()
    params = dict(params or {})
    specs = unit_specs(source, filename, params, [store.name], seed_list, traces=traces,
                       cost_mode=cost_mode)
    start = time.perf_counter()
    results = run_units(specs, {store.name: store}, limits,
                        progress=None if progress is None else (lambda _r: progress(1)))
    error = first_error(results)
    if error is not None:
        raise CandidateFailed(error)
    ids, tokens, unrevealed = gather(results, store.name)
    all_traces = ([r.stores[store.name].traces for r in results]  # type: ignore[union-attr]
                  if traces else None)
    return score(store, seed_list, ids, tokens, controller=name or f"file:{filename}",
                 params=params, cost_mode=cost_mode, path="sandbox",
                 seconds=time.perf_counter() - start, traces=all_traces, unrevealed=unrevealed)
