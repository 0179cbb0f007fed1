"""Speed of the single env and of the raw replay kernels (issue 2, "Done when").

Run (compile time excluded: every measured function is called once before timing)::

    TTS_GYM_DATA=/path/to/replay python -m pytest benchmarks/bench_env.py --benchmark-only -q
    TTS_GYM_DATA=/path/to/replay python benchmarks/bench_env.py        # just print the figures

(a) a bare ``ReplayEnv.step`` loop (a fixed legal action sequence, resets included) against
Gymnasium's ``CartPole-v1`` step, both unwrapped, measured in the same run; target: no worse
than 3× CartPole. (b) raw kernel advances per second: a jitted loop calling
``advance_branch`` / ``open_slot`` + ``advance_slot`` (the transitions of
:mod:`tts_gym.kernels.transitions`); target: at least 10 million per second on one core.

Uses the Qwen3-8B/aime24 store when ``TTS_GYM_DATA`` is set, else a generated store of the same
width class (64 branches, up to 30 probes).
"""

from __future__ import annotations

import os
import time

import gymnasium as gym
import numpy as np
from numba import njit

from tts_gym.env import ANSWER, ReplayEnv
from tts_gym.kernels.transitions import (
    MODE_REFERENCE,
    advance_branch,
    advance_slot,
    can_open,
    env_data,
    new_episode,
    open_slot,
    reset_episode,
)
from tts_gym.store import load_store
from tts_gym.testing import tiny_store

STEPS_PER_CALL = 1000
"""Env steps per measured call (resets happen inside, as an episode ends)."""
ADVANCES_PER_CALL = 2_000_000
"""Kernel advances per measured call."""


def bench_store():
    """The real Qwen3-8B/aime24 store if ``TTS_GYM_DATA`` is set, else a generated one."""
    if os.environ.get("TTS_GYM_DATA"):
        return load_store("Qwen3-8B", "aime24")
    return tiny_store(0, questions=10, branches=64, max_probes=30)


# --- (a) ReplayEnv.step vs CartPole-v1 ---------------------------------------------------------
def episode_script(env: ReplayEnv, seed: int = 0, length: int = 120) -> tuple[dict, list[int]]:
    """A fixed legal episode: reset options and the atomic actions of a masked-random policy.

    Replaying the actions after ``env.reset(options=...)`` is legal by construction.
    """
    rng = np.random.default_rng(seed)
    options = {"question": seed % env.store.n_questions, "shuffle_seed": seed}
    env.reset(options=options)
    actions = []
    for _ in range(length):
        legal = np.flatnonzero(env.action_masks()[1:]) + 1
        if legal.size == 0:
            break
        a = int(rng.choice(legal))
        env.step(a)
        actions.append(a)
    actions.append(ANSWER)
    return options, actions


class EnvLoop:
    """Calls ``ReplayEnv.step`` ``STEPS_PER_CALL`` times, cycling fixed episodes with resets."""

    def __init__(self, env: ReplayEnv, episodes: int = 4) -> None:
        self.env = env
        self.scripts = [episode_script(env, seed) for seed in range(episodes)]
        self.i = 0

    def __call__(self, steps: int = STEPS_PER_CALL) -> None:
        env = self.env
        step = env.step
        done = 0
        while done < steps:
            options, actions = self.scripts[self.i % len(self.scripts)]
            self.i += 1
            env.reset(options=options)
            for a in actions:
                step(a)
            done += len(actions)


class CartPoleLoop:
    """Calls ``CartPole-v1``'s (unwrapped) step ``STEPS_PER_CALL`` times, with resets."""

    def __init__(self) -> None:
        self.env = gym.make("CartPole-v1").unwrapped
        self.env.reset(seed=0)

    def __call__(self, steps: int = STEPS_PER_CALL) -> None:
        env = self.env
        step = env.step
        for i in range(steps):
            _o, _r, terminated, truncated, _i = step(i & 1)
            if terminated or truncated:
                env.reset()


def per_step_us(loop, steps: int = STEPS_PER_CALL, repeats: int = 7) -> float:
    """Best-of-``repeats`` microseconds per step (the minimum is the least load-disturbed)."""
    loop(steps)  # warm-up (compilation, caches)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        loop(steps)
        best = min(best, time.perf_counter() - t)
    return best / steps * 1e6


def compare_with_cartpole(store=None, repeats: int = 7) -> dict[str, float]:
    """Interleaved best-of timings of both loops in one process; ratio = env / CartPole."""
    env_loop = EnvLoop(ReplayEnv(store=store or bench_store()))
    cart_loop = CartPoleLoop()
    env_us, cart_us = float("inf"), float("inf")
    for _ in range(repeats):  # interleave, so both see the same machine load
        env_us = min(env_us, per_step_us(env_loop, repeats=1))
        cart_us = min(cart_us, per_step_us(cart_loop, repeats=1))
    return {"env_us": env_us, "cartpole_us": cart_us, "ratio": env_us / cart_us}


def test_replay_env_step(benchmark):
    loop = EnvLoop(ReplayEnv(store=bench_store()))
    loop()  # compile / warm caches before timing
    benchmark.pedantic(loop, rounds=20, iterations=1, warmup_rounds=1)
    benchmark.extra_info["us_per_step"] = benchmark.stats.stats.mean / STEPS_PER_CALL * 1e6


def test_cartpole_step(benchmark):
    loop = CartPoleLoop()
    loop()
    benchmark.pedantic(loop, rounds=20, iterations=1, warmup_rounds=1)
    benchmark.extra_info["us_per_step"] = benchmark.stats.stats.mean / STEPS_PER_CALL * 1e6


def test_env_vs_cartpole_ratio(benchmark, capsys):
    """Both loops timed in this one test (interleaved); the ratio is printed and recorded."""
    figures = benchmark.pedantic(compare_with_cartpole, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    with capsys.disabled():
        print(
            f"\nReplayEnv.step {figures['env_us']:.1f} us/step, CartPole-v1 "
            f"{figures['cartpole_us']:.1f} us/step, ratio {figures['ratio']:.2f}x (target <= 3x)"
        )


# --- (b) raw kernel advances per second ------------------------------------------------------
@njit(cache=False)  # no cache: a cached copy would keep stale inlined kernels
def branch_advances(data, n_branches, n_advances, mode):
    """Advance branches with ``advance_branch`` (each to its end, question by question) until
    ``n_advances`` advances were made. Returns ``(advances, tokens charged)``."""
    count = 0
    tokens = np.int64(0)
    n_q = n_branches.shape[0]
    q = 0
    b = 0
    depth = 0
    spent = np.int64(0)
    while count < n_advances:
        _a, charge, depth, fin = advance_branch(data, q, b, depth, spent, mode)
        spent += charge
        tokens += charge
        count += 1
        if fin:
            depth = 0
            spent = 0
            b += 1
            if b >= n_branches[q]:
                b = 0
                q = (q + 1) % n_q
    return count, tokens


@njit(cache=False)  # no cache: a cached copy would keep stale inlined kernels
def slot_advances(data, n_branches, ep, n_advances, mode):
    """``probe_new`` then ``probe_more`` until finished, slot after slot (``open_slot``,
    ``advance_slot``); a new question's episode when no branch is left.
    Returns ``(advances, tokens charged)``."""
    count = 0
    n_q = n_branches.shape[0]
    q = 0
    tokens = np.int64(0)
    reset_episode(ep)
    while count < n_advances:
        if not can_open(n_branches, q, ep):
            q = (q + 1) % n_q
            reset_episode(ep)
        slot, _a, charge, fin = open_slot(data, q, ep, mode)
        tokens += charge
        count += 1
        while not fin:
            _a, charge, fin = advance_slot(data, q, ep, slot, mode)
            tokens += charge
            count += 1
    return count, tokens


def advances_per_second(store=None, n: int = ADVANCES_PER_CALL, repeats: int = 5) -> dict:
    """Best-of timings of both kernel loops (after a compile/warm-up call)."""
    store = store or bench_store()
    data = env_data(store)
    ep = new_episode(store.width, store.width)
    out = {}
    for name, call in (
        ("advance_branch", lambda: branch_advances(data, store.n_branches, n, MODE_REFERENCE)),
        ("advance_slot", lambda: slot_advances(data, store.n_branches, ep, n, MODE_REFERENCE)),
    ):
        call()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            count, _tokens = call()
            best = min(best, time.perf_counter() - t)
        out[name] = count / best
    return out


def test_kernel_advance_branch(benchmark, capsys):
    store = bench_store()
    data = env_data(store)
    branch_advances(data, store.n_branches, 1000, MODE_REFERENCE)  # compile
    count, _ = benchmark.pedantic(
        branch_advances,
        args=(data, store.n_branches, ADVANCES_PER_CALL, MODE_REFERENCE),
        rounds=5,
        iterations=1,
    )
    rate = count / benchmark.stats.stats.min
    benchmark.extra_info["advances_per_s_best"] = rate
    with capsys.disabled():
        print(f"\nadvance_branch: {rate / 1e6:.1f} M advances/s (best round; target >= 10 M/s)")


def test_kernel_advance_slot(benchmark, capsys):
    store = bench_store()
    data = env_data(store)
    ep = new_episode(store.width, store.width)
    slot_advances(data, store.n_branches, ep, 1000, MODE_REFERENCE)  # compile
    count, _ = benchmark.pedantic(
        slot_advances,
        args=(data, store.n_branches, ep, ADVANCES_PER_CALL, MODE_REFERENCE),
        rounds=5,
        iterations=1,
    )
    rate = count / benchmark.stats.stats.min
    benchmark.extra_info["advances_per_s_best"] = rate
    with capsys.disabled():
        print(f"\nopen_slot/advance_slot: {rate / 1e6:.1f} M advances/s (best round)")


if __name__ == "__main__":
    figures = compare_with_cartpole()
    print(
        f"ReplayEnv.step {figures['env_us']:.1f} us/step, CartPole-v1 "
        f"{figures['cartpole_us']:.1f} us/step, ratio {figures['ratio']:.2f}x"
    )
    for name, rate in advances_per_second().items():
        print(f"{name}: {rate / 1e6:.1f} M advances/s")
