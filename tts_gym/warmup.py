"""Compile (or load from numba's on-disk cache) every kernel once, before timing anything.

Cold: a few seconds; warm cache (``NUMBA_CACHE_DIR`` or ``__pycache__``): well under a second.
Spawned worker processes pay the load again; call :func:`warmup` at their start.
"""

from __future__ import annotations


def warmup() -> None:
    """Run one tiny episode through the env, so all env kernels are compiled/loaded."""
    from tts_gym.env.replay_env import ReplayEnv
    from tts_gym.testing import tiny_store

    env = ReplayEnv(store=tiny_store(), max_branches=4)
    env.reset(options={"question": 0, "shuffle_seed": 0})
    for _ in range(3):
        mask = env.action_masks()
        legal = [a for a in range(1, mask.shape[0]) if mask[a]]
        if not legal:
            break
        env.step(legal[-1])
        env.render()
    env.step(0)
