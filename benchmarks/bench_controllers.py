"""Batch path vs handle path per controller, and the wall time of the paper's full table.

Needs the real stores (``TTS_GYM_DATA``). Run::

    TTS_GYM_DATA=/path/to/replay python -m pytest benchmarks/bench_controllers.py \
        --benchmark-only -s          # -s shows the printed ratios
    TTS_GYM_DATA=/path/to/replay python benchmarks/bench_controllers.py     # plain report

Per controller: the jitted batch kernel over 100 seeds × 30 questions (Qwen3-8B/aime24) against
the question-handle path over ``HANDLE_SEEDS`` seeds (the handle path is slow; its time is scaled
to 100 seeds). Both must give the same numbers on the seeds they share. The table benchmark runs
the 72 cells of ``tts-gym table`` (6 rows × 4 models × 3 benchmarks, 100 seeds) with every core,
after one untimed run that loads the stores and compiles the kernels.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import time

import numpy as np
import pytest

from tts_gym import evaluate, load_store, make_controller

HANDLE_SEEDS = 2
CONTROLLERS = [
    ("sc", {"n": 64}),
    ("asc", {}),
    ("esc", {}),
    ("parallel-probe", {}),
]
if importlib.util.find_spec("agents.controllers.cmc") is not None:
    CONTROLLERS += [("cmc", {"beta": 0.5}), ("cmc", {"beta": 1.0})]

needs_data = pytest.mark.skipif(
    not os.environ.get("TTS_GYM_DATA"), reason="needs the real stores: set TTS_GYM_DATA"
)


def batch_vs_handle(name: str, params: dict, store, handle_seeds: int = HANDLE_SEEDS) -> dict:
    """Time both paths; check they agree on the shared seeds.

    Returns:
        ``{"batch_s": CPU s for 100 seeds, "handle_s": CPU s scaled to 100 seeds, "ratio": ...}``.
    """
    ctrl = make_controller(name, params)
    evaluate(ctrl, store, seeds=1, path="batch")  # compile / load from cache
    evaluate(ctrl, store.subset([0]), seeds=1, path="handle")  # the env's kernels too
    t = time.process_time()
    batch = evaluate(ctrl, store, seeds=100, path="batch")
    batch_s = time.process_time() - t
    t = time.process_time()
    handle = evaluate(ctrl, store, seeds=handle_seeds, path="handle")
    handle_s = (time.process_time() - t) * 100 / handle_seeds
    assert np.array_equal(batch.tokens[:handle_seeds], handle.tokens)
    assert batch.answers[:handle_seeds] == handle.answers
    return {
        "batch_s": batch_s,
        "handle_s": handle_s,
        "ratio": handle_s / batch_s,
        "accuracy": batch.accuracy,
        "avg_tokens": batch.avg_tokens,
    }


@needs_data
@pytest.mark.parametrize("name, params", CONTROLLERS, ids=lambda v: str(v))
def test_batch_vs_handle(benchmark, name, params):
    store = load_store("Qwen3-8B", "aime24")
    info = batch_vs_handle(name, params, store)
    ctrl = make_controller(name, params)
    benchmark.pedantic(lambda: evaluate(ctrl, store, seeds=100, path="batch"), rounds=3)
    benchmark.extra_info.update(info)
    print(
        f"\n{name} {params}: batch {info['batch_s']:.3f} s / 100 seeds, handle "
        f"{info['handle_s']:.1f} s (scaled from {HANDLE_SEEDS} seeds), ratio {info['ratio']:.0f}x"
    )


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the pool's workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def full_table(workers: int | None = None):
    """The 72 cells of the paper's table; returns the :class:`MainTable` (``cpu`` attribute:
    CPU seconds of the run, workers included)."""
    from tts_gym.reporting import main_table

    start = cpu_seconds()
    table = main_table(workers=workers)
    table.cpu = cpu_seconds() - start
    return table


@needs_data
def test_full_table(benchmark):
    first = full_table()  # loads stores, compiles kernels
    table = benchmark.pedantic(full_table, rounds=2)
    benchmark.extra_info.update({"cells": len(table.results), "cpu_s": table.cpu})
    print(
        f"\nfull table: {len(table.results)} cells, wall {table.seconds:.2f} s (cold run "
        f"{first.seconds:.2f} s), CPU {table.cpu:.2f} s"
    )


if __name__ == "__main__":  # pragma: no cover - manual report
    from tts_gym.reporting.cells import default_workers

    s = load_store("Qwen3-8B", "aime24")
    for n, p in CONTROLLERS:
        r = batch_vs_handle(n, p, s)
        print(
            f"{n:15s} {str(p):14s} acc {r['accuracy']:6.2f} tokens {r['avg_tokens']:10.1f}  "
            f"batch {r['batch_s']:7.3f} s  handle {r['handle_s']:8.1f} s  ratio {r['ratio']:7.0f}x"
        )
    full_table()
    for _ in range(2):
        t = time.perf_counter()
        tab = full_table()
        print(
            f"full table ({len(tab.results)} cells, {default_workers()} workers): "
            f"{time.perf_counter() - t:.2f} s wall, {tab.cpu:.2f} CPU s"
        )
