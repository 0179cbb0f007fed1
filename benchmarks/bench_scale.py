"""Scale: synthetic stores up to 10,000 questions × 1,024 branches, evaluation throughput and
memory against the 30 × 128 stores, and how cost grows with questions, branches and probes.

Run the figures (prints a markdown table; about 5 minutes on 2 idle cores)::

    python benchmarks/bench_scale.py                  # full: 10,000 × 1,024 in chunks of 250
    python benchmarks/bench_scale.py --questions 1000 # quicker

or the small pytest-benchmark cases::

    python -m pytest benchmarks/bench_scale.py --benchmark-only -q

A 10,000 × 1,024 store with 80 probe slots holds 3.3 GB of probe answers (int32 [Q, N, L]);
with 200 slots, 8.2 GB. The full run therefore generates and evaluates it question-chunk by
question-chunk (:func:`tts_gym.synthetic.iter_store_chunks`, independent reproducible chunks),
so memory stays at one chunk; accuracy and tokens are exact means over all 10,000 questions.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import numpy as np
import pytest

from tts_gym.controller import available_controllers, make_controller
from tts_gym.evaluation import evaluate
from tts_gym.synthetic import generate_store, iter_store_chunks, load_preset, with_max_probes

PRESET = "Qwen3-8B"
CONTROLLERS = (("SC@64", "sc", {"n": 64}), ("CMC β=0.5", "cmc", {"beta": 0.5}))


def _controllers() -> list[tuple[str, Any]]:
    names = available_controllers()
    return [(lab, make_controller(n, p)) for lab, n, p in CONTROLLERS if n in names]


def store_bytes(store) -> int:
    """Bytes of the store's arrays (answer tables not counted)."""
    return int(sum(a.nbytes for a in store.arrays()) + store.gold.nbytes)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scaled_params(max_probes: int):
    """The preset with a probe cap of ``max_probes`` and branch lengths scaled by the same factor
    (so branches really are longer, not just allowed to be)."""
    base = load_preset(PRESET)
    p = with_max_probes(base, max_probes)
    return p.replace(log_tokens_mean=base.log_tokens_mean + float(np.log(max_probes / 80)))


def throughput(store, seeds: int, repeats: int = 3) -> dict[str, float]:
    """Episodes/s of each controller on ``store`` (batch path, ``seeds`` shuffles; the best of
    ``repeats`` runs, since the machine is shared)."""
    out = {}
    for label, ctrl in _controllers():
        best = min(evaluate(ctrl, store, seeds).seconds for _ in range(repeats))
        out[label] = store.n_questions * seeds / best
    return out


def run_full(questions: int, branches: int, chunk: int, max_probes: int = 80) -> dict[str, Any]:
    """Generate and evaluate a ``questions × branches`` store chunk by chunk (1 seed)."""
    params = scaled_params(max_probes) if max_probes != 80 else load_preset(PRESET)
    gen_s = 0.0
    eval_s = {lab: 0.0 for lab, _ in _controllers()}
    correct = {lab: 0.0 for lab in eval_s}
    tokens = {lab: 0.0 for lab in eval_s}
    chunk_bytes = 0
    t0 = time.perf_counter()
    it = iter_store_chunks(params, questions, branches, seed=0, chunk=chunk)
    while True:
        t = time.perf_counter()
        store = next(it, None)
        gen_s += time.perf_counter() - t
        if store is None:
            break
        chunk_bytes = max(chunk_bytes, store_bytes(store))
        for label, ctrl in _controllers():
            r = evaluate(ctrl, store, 1)
            eval_s[label] += r.seconds
            correct[label] += float(r.correct.sum())
            tokens[label] += float(r.tokens.sum())
    whole = questions * branches * (max_probes * 4 + 4 + 8 + 4)
    return {
        "questions": questions,
        "branches": branches,
        "max_probes": max_probes,
        "generate_s": gen_s,
        "wall_s": time.perf_counter() - t0,
        "episodes_per_s": {k: questions / v for k, v in eval_s.items()},
        "accuracy": {k: 100 * v / questions for k, v in correct.items()},
        "avg_tokens": {k: v / questions for k, v in tokens.items()},
        "chunk_store_mb": chunk_bytes / 2**20,
        "whole_store_mb": whole / 2**20,
        "peak_rss_mb": peak_rss_mb(),
    }


def growth(episodes: int = 3000) -> list[dict[str, Any]]:
    """Episodes/s and generation time vs questions, branches and probe slots (about
    ``episodes`` episodes per measurement)."""
    rows = []
    cases = [("questions", q, 128, 80) for q in (30, 300, 3000)]
    cases += [("branches", 300, n, 80) for n in (256, 512, 1024)]
    cases += [("probes", 300, 128, lmax) for lmax in (120, 160, 200)]
    for axis, q, n, lmax in cases:
        params = scaled_params(lmax)
        t = time.perf_counter()
        store = generate_store(params, q, n, seed=1)
        gen = time.perf_counter() - t
        seeds = max(1, episodes // q)
        rows.append(
            {
                "axis": axis,
                "Q": q,
                "N": n,
                "L": lmax,
                "seeds": seeds,
                "generate_s": gen,
                "store_mb": store_bytes(store) / 2**20,
                "mean_probes": float(store.n_probes.mean()),
                "episodes_per_s": throughput(store, seeds),
            }
        )
    return rows


def _fmt_rate(d: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:,.0f}" for k, v in d.items())


def _print_full(full: dict[str, Any], chunk: int) -> None:
    print(
        f"{full['questions']:,} × {full['branches']:,} (80 probe slots), chunks of {chunk}: "
        f"generate {full['generate_s']:.0f} s, total {full['wall_s']:.0f} s; episodes/s: "
        f"{_fmt_rate(full['episodes_per_s'])}; accuracy "
        f"{', '.join(f'{k} {v:.2f} %' for k, v in full['accuracy'].items())}; avg tokens "
        f"{', '.join(f'{k} {v / 1000:.1f}k' for k, v in full['avg_tokens'].items())}; "
        f"store arrays {full['whole_store_mb']:,.0f} MB whole vs {full['chunk_store_mb']:.0f} MB "
        f"per chunk; peak RSS {full['peak_rss_mb']:.0f} MB"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the scale figures as markdown."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--branches", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--skip-growth", action="store_true")
    ap.add_argument("--skip-full", action="store_true")
    args = ap.parse_args(argv)
    for _lab, ctrl in _controllers():  # compile outside the timings
        evaluate(ctrl, generate_store(PRESET, 2, 64, seed=0), 1)
    base = generate_store(PRESET, 30, 128, seed=0)
    rate = throughput(base, 100)
    print(
        f"30 × 128 store (synthetic {PRESET}): {store_bytes(base) / 2**20:.1f} MB arrays; "
        f"episodes/s (100 seeds): {_fmt_rate(rate)}"
    )
    try:
        from tts_gym.store import load_store

        real = load_store(PRESET, "aime24")
        print(
            f"30 × 128 real store {real.name}: {store_bytes(real) / 2**20:.1f} MB arrays; "
            f"episodes/s (100 seeds): {_fmt_rate(throughput(real, 100))}"
        )
    except FileNotFoundError:
        pass
    if not args.skip_full:
        _print_full(run_full(args.questions, args.branches, args.chunk), args.chunk)
    if args.skip_growth:
        return
    print(
        "\n| varied | Q | N | probe slots (mean L) | generate s | store MB | episodes/s "
        "(best of 3, ~3,000 episodes) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in growth():
        print(
            f"| {r['axis']} | {r['Q']:,} | {r['N']:,} | {r['L']} ({r['mean_probes']:.0f}) | "
            f"{r['generate_s']:.2f} | {r['store_mb']:.1f} | {_fmt_rate(r['episodes_per_s'])} |"
        )


# --- pytest-benchmark cases (small) ------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_store():
    return generate_store(PRESET, 50, 1024, seed=0)


def test_generate_30x128(benchmark):
    store = benchmark(generate_store, PRESET, 30, 128, 0)
    assert store.n_questions == 30


def test_generate_50x1024(benchmark):
    store = benchmark.pedantic(generate_store, args=(PRESET, 50, 1024, 0), rounds=2)
    assert store.width == 1024


@pytest.mark.parametrize("label,name,params", CONTROLLERS)
def test_evaluate_50x1024(benchmark, wide_store, label, name, params):
    if name not in available_controllers():
        pytest.skip(f"{name} is not registered")
    ctrl = make_controller(name, params)
    evaluate(ctrl, wide_store, 1)
    res = benchmark.pedantic(evaluate, args=(ctrl, wide_store, 2), rounds=2)
    assert res.correct.shape == (2, 50)


if __name__ == "__main__":
    main()
