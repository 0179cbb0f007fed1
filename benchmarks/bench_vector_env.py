"""Throughput of the native vector env vs ``SyncVectorEnv`` of N single envs (N = 64).

Both are driven by the same vectorised random masked policy; autoreset (NEXT_STEP) is exercised
by both. Three scenarios, each a ratio measured in one run, in interleaved pairs (native, then
sync) with the median pair ratio reported (the machine is shared):

- ``answer-rare``: random legal actions with ANSWER down-weighted 50x, so episodes last a while
  (the stepping kernels dominate); policy outside the clock.
- ``uniform``: a uniform random *legal* policy (what a freshly initialised MaskablePPO does):
  ANSWER is one legal action among few at the start, so episodes are short and ~11 of the 64 envs
  autoreset every step; policy outside the clock. Target >= 20x.
- ``uniform+policy``: the same uniform legal policy drawing fresh noise from a Generator every
  step, inside the clock for both envs (what a training loop sees).

Figures (Qwen3-8B/aime24, N = 64, 2 cores shared with other jobs, load average ~2.5): median
pair ratio of three runs each, "before" = the Python per-env autoreset draws (numpy
``Generator.integers`` + ``permutation`` in a loop), "after" = one jitted ``draw_episodes`` call:

==============  ===================  ===================  =======
scenario        before               after                target
==============  ===================  ===================  =======
answer-rare     36.6x, 37.9x, 36.1x  40.0x, 39.9x, 33.3x  --
uniform         13.3x, 11.0x, 10.6x  28.4x, 26.5x, 27.9x  >= 20x
uniform+policy  11.0x, 9.9x, 10.0x   18.5x, 17.4x, 18.2x  --
==============  ===================  ===================  =======

Under the uniform policy the native env went from ~230-340k to ~480-700k env-steps/s (best of
7; SyncVectorEnv 16-30k). Run::

    TTS_GYM_DATA=/path/to/replay python benchmarks/bench_vector_env.py      # prints the ratios
    python -m pytest benchmarks/bench_vector_env.py --benchmark-only

Uses the Qwen3-8B/aime24 store when ``TTS_GYM_DATA`` is set, else a generated store of the same
shape class (64 branches).
"""

from __future__ import annotations

import os
import time

import gymnasium as gym
import numpy as np
import pytest

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
    """Random legal actions for int8 masks ``[N, A]``: the masked argmax of ``1 + noise``.

    ``answer_weight`` scales ANSWER's noise (1.0: uniform over the legal actions; 0.02: ANSWER
    rarely). The noise is drawn once (``tables`` matrices, cycled), so the policy costs the same
    few microseconds in both measurements and does not dominate the native env's step time.
    """

    def __init__(
        self, n: int, n_actions: int, seed: int = 0, tables: int = 64, answer_weight: float = 0.02
    ) -> None:
        noise = np.random.default_rng(seed).random((tables, n, n_actions)).astype(np.float32)
        noise[:, :, 0] *= answer_weight
        self.noise = noise + 1.0  # > 0, so a legal action always beats an illegal one (0)
        self.t = 0

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        self.t = (self.t + 1) % self.noise.shape[0]
        return (self.noise[self.t] * masks).argmax(axis=1)


class FreshUniformPolicy:
    """Uniform random legal actions with fresh noise from a Generator every call (vectorised:
    one ``random`` draw of ``[N, A]`` and a masked argmax; ~the cost of sampling a fresh
    MaskablePPO's uniform logits)."""

    def __init__(self, n: int, n_actions: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.shape = (n, n_actions)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        return ((self.rng.random(self.shape, dtype=np.float32) + 1.0) * masks).argmax(axis=1)


SCENARIOS = {
    # name: (policy factory(n, n_actions, seed), policy inside the clock)
    "answer-rare": (lambda n, a, seed: RandomMaskedPolicy(n, a, seed), False),
    "uniform": (lambda n, a, seed: RandomMaskedPolicy(n, a, seed, answer_weight=1.0), False),
    "uniform+policy": (lambda n, a, seed: FreshUniformPolicy(n, a, seed), True),
}


def make(mode: str, store, n: int = N_ENVS):
    """The native (``vector_entry_point``) or ``sync`` vector env over ``store``."""
    return gym.make_vec(ENV_ID, num_envs=n, vectorization_mode=mode, store=store)


def run(envs, steps: int, seed: int = 0, scenario: str = "answer-rare") -> float:
    """Step ``envs`` ``steps`` times; returns env steps per CPU second (steps × N / seconds).

    Only the time inside ``envs.step`` counts, unless the scenario puts the policy inside the
    clock too (it is identical for both envs either way; each clock read, ~1 µs, is charged to
    the env). Process CPU time, not wall time: the machine is shared, and CPU time is what
    another process's load does not inflate (both envs run in this one thread).
    """
    factory, policy_in_clock = SCENARIOS[scenario]
    policy = factory(envs.num_envs, envs.single_action_space.n, seed)
    _obs, info = envs.reset(seed=seed)
    masks = info["action_mask"]
    clock = time.process_time
    spent = 0.0
    if policy_in_clock:
        start = clock()
        for _ in range(steps):
            _obs, _r, _te, _tr, info = envs.step(policy(info["action_mask"]))
        return steps * envs.num_envs / (clock() - start)
    for _ in range(steps):
        actions = policy(masks)
        start = clock()
        _obs, _r, _te, _tr, info = envs.step(actions)
        spent += clock() - start
        masks = info["action_mask"]
    return steps * envs.num_envs / spent


def compare(
    store=None,
    native_steps: int = 1000,
    sync_steps: int = 100,
    pairs: int = 7,
    scenario: str = "answer-rare",
) -> dict[str, float]:
    """Steps/s of both at N = 64 and their ratio, measured in this one process.

    The two are timed in interleaved pairs (native, then sync, ``pairs`` times), so both halves
    of a pair see the same machine load; the reported ``ratio`` is the median of the pair
    ratios (``ratio_min``/``ratio_max`` give the spread), and the steps/s are each side's best.
    """
    store = store if store is not None else bench_store()
    native = make("vector_entry_point", store)
    sync = make("sync", store)
    run(native, 20, scenario=scenario)
    run(sync, 5, scenario=scenario)
    a_all, b_all = [], []
    for seed in range(pairs):
        a_all.append(run(native, native_steps, seed, scenario))
        b_all.append(run(sync, sync_steps, seed, scenario))
    ratios = sorted(a / b for a, b in zip(a_all, b_all, strict=True))
    return {
        "scenario": scenario,
        "native_steps_per_s": max(a_all),
        "sync_steps_per_s": max(b_all),
        "ratio": float(np.median(ratios)),
        "ratio_min": ratios[0],
        "ratio_max": ratios[-1],
    }


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_native_vs_sync_ratio(benchmark, capsys, scenario):
    """Both envs timed in this one test (interleaved pairs); the ratio is printed and recorded."""
    figures = benchmark.pedantic(compare, kwargs={"scenario": scenario}, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    with capsys.disabled():
        print(f"\n{summary(figures)}")


def summary(r: dict[str, float]) -> str:
    target = "; target >= 20x" if r["scenario"] == "uniform" else ""
    return (
        f"N={N_ENVS} {r['scenario']:<15} native {r['native_steps_per_s']:>9,.0f} env-steps/s, "
        f"SyncVectorEnv {r['sync_steps_per_s']:>7,.0f} env-steps/s, ratio {r['ratio']:.1f}x "
        f"(median of interleaved pairs; {r['ratio_min']:.1f}-{r['ratio_max']:.1f}x{target})"
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
    for name in SCENARIOS:
        print(summary(compare(scenario=name)), flush=True)
