"""CMC (AutoTTS, 2026): the jitted batch path against the question-handle path on one store.

Needs the real stores (``TTS_GYM_DATA``). Run::

    TTS_GYM_DATA=/path/to/replay python -m pytest benchmarks/bench_cmc.py --benchmark-only -s
    TTS_GYM_DATA=/path/to/replay python benchmarks/bench_cmc.py        # plain report

The batch path runs the 100-seed protocol (100 seeds × 30 questions) on Qwen3-8B/aime24 after
one untimed call (compile / cache load excluded). The handle path is slow, so it runs
``HANDLE_SEEDS`` seeds and its time is scaled per episode to 100 seeds. Both paths must give the
same answer and the same tokens on every shared episode. Times are CPU seconds of this process
(``time.process_time``), so a busy machine inflates them less than wall time would.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from agents.controllers.cmc import ConfidenceMomentumController
from tts_gym import evaluate, load_store
from tts_gym.evaluation import protocol_orders
from tts_gym.kernels.transitions import MODE_REFERENCE

HANDLE_SEEDS = 2
SEEDS = 100
TARGET_RATIO = 100.0

needs_data = pytest.mark.skipif(
    not os.environ.get("TTS_GYM_DATA"), reason="needs the real stores: set TTS_GYM_DATA"
)


def _cpu(fn):
    t = time.process_time()
    out = fn()
    return out, time.process_time() - t


def compare(beta: float, model: str = "Qwen3-8B", handle_seeds: int = HANDLE_SEEDS) -> dict:
    """Time both paths for CMC(beta) on ``model``/aime24 and check they agree.

    Returns:
        ``{"batch_ms_per_cell" (evaluate(), orders included), "kernel_ms_per_cell" (batch_solve
        alone, best of 3), "handle_s_per_cell" (scaled), "ratio" (handle / batch),
        "accuracy", "avg_tokens"}``.
    """
    store = load_store(model, "aime24")
    ctrl = ConfidenceMomentumController(beta)
    evaluate(ctrl, store, seeds=1, path="batch")  # compile or load the cached kernel
    evaluate(ctrl, store.subset([0]), seeds=1, path="handle")  # the env's kernels too
    batch, batch_s = _cpu(lambda: evaluate(ctrl, store, seeds=SEEDS, path="batch"))
    handle, handle_s = _cpu(lambda: evaluate(ctrl, store, seeds=handle_seeds, path="handle"))
    assert np.array_equal(batch.tokens[:handle_seeds], handle.tokens)
    assert batch.answers[:handle_seeds] == handle.answers
    handle_cell = handle_s * SEEDS / handle_seeds
    orders = protocol_orders(store, range(SEEDS))
    kernel_s = min(
        _cpu(lambda: ctrl.batch_solve(store, orders, MODE_REFERENCE))[1] for _ in range(3)
    )
    return {
        "batch_ms_per_cell": 1000 * batch_s,
        "kernel_ms_per_cell": 1000 * kernel_s,
        "handle_s_per_cell": handle_cell,
        "ratio": handle_cell / batch_s,
        "accuracy": batch.accuracy,
        "avg_tokens": batch.avg_tokens,
    }


@needs_data
@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_cmc_batch_vs_handle(benchmark, beta):
    info = compare(beta)
    store = load_store("Qwen3-8B", "aime24")
    ctrl = ConfidenceMomentumController(beta)
    evaluate(ctrl, store, seeds=1, path="batch")
    benchmark.pedantic(lambda: evaluate(ctrl, store, seeds=SEEDS, path="batch"), rounds=5)
    benchmark.extra_info.update(info)
    print(
        f"\ncmc beta={beta}: acc {info['accuracy']} tokens {info['avg_tokens']:.1f}; batch "
        f"{info['batch_ms_per_cell']:.1f} ms/cell (kernel {info['kernel_ms_per_cell']:.1f} ms), "
        f"handle {info['handle_s_per_cell']:.1f} s/cell "
        f"(scaled from {HANDLE_SEEDS} seeds), ratio {info['ratio']:.0f}x"
    )
    assert info["ratio"] >= TARGET_RATIO


if __name__ == "__main__":  # pragma: no cover - manual report
    for m in ("Qwen3-8B", "Qwen3-0.6B"):
        for b in (0.5, 1.0):
            r = compare(b, m)
            print(
                f"{m:11s} beta={b}: acc {r['accuracy']:6.2f} tokens {r['avg_tokens']:10.1f}  "
                f"batch {r['batch_ms_per_cell']:7.1f} ms/cell (kernel "
                f"{r['kernel_ms_per_cell']:6.1f})  handle "
                f"{r['handle_s_per_cell']:7.1f} s/cell  ratio {r['ratio']:6.0f}x"
            )
