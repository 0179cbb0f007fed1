"""Throughput of the native vector env vs ``SyncVectorEnv`` of N single envs (N = 64).

Both are driven by the same vectorised random masked policy (ANSWER down-weighted so episodes
last a while); autoreset (NEXT_STEP) is exercised by both. The ratio compares CPU time spent
inside ``step`` (the policy is outside the clock), in interleaved pairs. Run::

    TTS_GYM_DATA=../shared/replay python benchmarks/bench_vector_env.py      # prints the ratio
    python -m pytest benchmarks/bench_vector_env.py --benchmark-only

Uses the Qwen3-8B/aime24 store when ``TTS_GYM_DATA`` is set, else a generated store of the same
shape class (64 branches).
"""

from __future__ import annotations

import os
import time

import gymnasium as gym
import numpy as np

import tts_gym  # noqa: F401  (registers the env)
from tts_gym.store import load_store
from tts_gym.testing import tiny_store

N_ENVS = 64
ENV_ID = "tts_gym/Replay-v0"


def bench_store():
    """The real Qwen3-8B/aime24 store if configured, else a generated 64-branch store."""
    if os.environ.get("TTS_GYM_DATA"):
        return load_store("Qwen3-8B", "aime24")
    return tiny_store(0, questions=10, branches=64, max_probes=30)


class RandomMaskedPolicy:
    """Random legal actions for int8 masks ``[N, A]`` (ANSWER's score scaled by 0.02).

    The noise is drawn once (``tables`` matrices, cycled), so the policy costs the same few
    microseconds in both measurements and does not dominate the native env's step time.
    """

    def __init__(self, n: int, n_actions: int, seed: int = 0, tables: int = 64) -> None:
        noise = np.random.default_rng(seed).random((tables, n, n_actions)).astype(np.float32)
        noise[:, :, 0] *= 0.02
        self.noise = noise + 1.0  # > 0, so a legal action always beats an illegal one (0)
        self.t = 0

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        self.t = (self.t + 1) % self.noise.shape[0]
        return (self.noise[self.t] * masks).argmax(axis=1)


def make(mode: str, store, n: int = N_ENVS):
    """The native (``vector_entry_point``) or ``sync`` vector env over ``store``."""
    return gym.make_vec(ENV_ID, num_envs=n, vectorization_mode=mode, store=store)


def run(envs, steps: int, seed: int = 0) -> float:
    """Step ``envs`` ``steps`` times; returns env steps per CPU second (steps × N / seconds).

    Only the time inside ``envs.step`` counts (the policy, identical for both envs, runs
    outside the clock; each clock read, ~1 µs, is charged to the env). Process CPU time, not
    wall time: the machine is shared, and CPU time is what another process's load does not
    inflate (both envs run in this one thread).
    """
    policy = RandomMaskedPolicy(envs.num_envs, envs.single_action_space.n, seed)
    _obs, info = envs.reset(seed=seed)
    masks = info["action_mask"]
    clock = time.process_time
    spent = 0.0
    for _ in range(steps):
        actions = policy(masks)
        start = clock()
        _obs, _r, _te, _tr, info = envs.step(actions)
        spent += clock() - start
        masks = info["action_mask"]
    return steps * envs.num_envs / spent


def compare(
    store=None, native_steps: int = 1000, sync_steps: int = 100, pairs: int = 7
) -> dict[str, float]:
    """Steps/s of both at N = 64 and their ratio, measured in this one process.

    The two are timed in interleaved pairs (native, then sync, ``pairs`` times), so both halves
    of a pair see the same machine load; the reported ``ratio`` is the median of the pair
    ratios (``ratio_min``/``ratio_max`` give the spread), and the steps/s are each side's best.
    """
    store = store if store is not None else bench_store()
    native = make("vector_entry_point", store)
    sync = make("sync", store)
    run(native, 20)
    run(sync, 5)
    a_all, b_all = [], []
    for seed in range(pairs):
        a_all.append(run(native, native_steps, seed))
        b_all.append(run(sync, sync_steps, seed))
    ratios = sorted(a / b for a, b in zip(a_all, b_all, strict=True))
    return {
        "native_steps_per_s": max(a_all),
        "sync_steps_per_s": max(b_all),
        "ratio": float(np.median(ratios)),
        "ratio_min": ratios[0],
        "ratio_max": ratios[-1],
    }


def test_native_vs_sync_ratio(benchmark, capsys):
    """Both envs timed in this one test (interleaved pairs); the ratio is printed and recorded."""
    figures = benchmark.pedantic(compare, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    with capsys.disabled():
        print(f"\n{summary(figures)}")


def summary(r: dict[str, float]) -> str:
    return (
        f"N={N_ENVS}: native {r['native_steps_per_s']:,.0f} env-steps/s, SyncVectorEnv "
        f"{r['sync_steps_per_s']:,.0f} env-steps/s, ratio {r['ratio']:.1f}x (median of "
        f"interleaved pairs; {r['ratio_min']:.1f}-{r['ratio_max']:.1f}x; target >= 20x)"
    )


def bench_one_step(benchmark, mode: str) -> None:
    """pytest-benchmark of one batch step (policy included) of the ``mode`` vector env."""
    envs = make(mode, bench_store())
    policy = RandomMaskedPolicy(envs.num_envs, envs.single_action_space.n)
    _obs, info = envs.reset(seed=0)
    state = {"masks": info["action_mask"]}

    def one_step():
        out = envs.step(policy(state["masks"]))
        state["masks"] = out[4]["action_mask"]

    benchmark(one_step)


def test_native_vector_env(benchmark):
    bench_one_step(benchmark, "vector_entry_point")


def test_sync_vector_env(benchmark):
    bench_one_step(benchmark, "sync")


if __name__ == "__main__":
    print(summary(compare()))
