"""``tts_gym/Synthetic-v0``: the replay env over generated stores.

The same :class:`~tts_gym.env.ReplayEnv` (same actions, observations, rewards, charging) over a
store drawn from a calibrated synthetic model (:mod:`tts_gym.synthetic.generate`). With
``fresh_questions_per_reset=True`` every ``reset`` draws new questions from ``self.np_random``
(infinite training data, reproducible from the reset seed); otherwise the store is drawn once
from ``seed`` and episodes replay it like ``tts_gym/Replay-v0``.

>>> import gymnasium as gym, tts_gym
>>> env = gym.make("tts_gym/Synthetic-v0", preset="Qwen3-8B", questions=4, branches=16,
...                max_branches=8)
>>> obs, info = env.reset(seed=0)
>>> env.unwrapped.store.benchmark, obs["status"].shape
('synthetic', (8,))
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from tts_gym.env.dynamics import new_book
from tts_gym.env.replay_env import ReplayEnv
from tts_gym.kernels.transitions import env_data, new_episode
from tts_gym.store import ReplayStore
from tts_gym.synthetic.generate import generate_store, resolve_params, with_max_probes
from tts_gym.synthetic.params import DEFAULT_PRESET, SyntheticParams


class SyntheticEnv(ReplayEnv):
    """:class:`ReplayEnv` over a synthetic store (see the module docstring).

    Args:
        preset: A shipped model preset (``"Qwen3-8B"``), a parameter-file path or a
            :class:`SyntheticParams`.
        questions: Questions per store (default 30; 1 when ``fresh_questions_per_reset``).
        branches: Branches per question (default 128, as in the real stores).
        fresh_questions_per_reset: Draw new questions from ``self.np_random`` at every reset.
        seed: Generator seed of the fixed store (default 0); ignored when fresh.
        max_probes: Override the probe cap (the token cap scales with it).
        **env_kwargs: :class:`ReplayEnv` arguments (``max_branches``, ``cost_weight``, ...).
    """

    def __init__(
        self,
        preset: str | SyntheticParams = DEFAULT_PRESET,
        questions: int | None = None,
        branches: int = 128,
        fresh_questions_per_reset: bool = False,
        seed: int | None = None,
        max_probes: int | None = None,
        **env_kwargs: Any,
    ) -> None:
        for bad in ("store", "model", "benchmark", "data_dir"):
            if bad in env_kwargs:
                raise ValueError(
                    f"tts_gym/Synthetic-v0 draws its own store; drop {bad}= (use "
                    "tts_gym/Replay-v0 for a real store)."
                )
        params = resolve_params(preset)
        if max_probes is not None:
            params = with_max_probes(params, max_probes)
        self.synthetic_params = params
        self.fresh_questions_per_reset = bool(fresh_questions_per_reset)
        self.n_synthetic_questions = int(questions or (1 if fresh_questions_per_reset else 30))
        self.n_synthetic_branches = int(branches)
        store = generate_store(
            params, self.n_synthetic_questions, branches, 0 if seed is None else seed
        )
        super().__init__(store=store, **env_kwargs)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict]:
        if self.fresh_questions_per_reset:
            gym.Env.reset(self, seed=seed)
            self.use_store(
                generate_store(
                    self.synthetic_params,
                    self.n_synthetic_questions,
                    self.n_synthetic_branches,
                    self.np_random,
                )
            )
            seed = None
        return super().reset(seed=seed, options=options)

    def use_store(self, store: ReplayStore) -> None:
        """Swap in another store of the same width and probe cap (the spaces do not change)."""
        if store.width != self.store.width or store.max_probes != self.store.max_probes:
            raise ValueError(
                f"use_store needs a store of width {self.store.width} and max_probes "
                f"{self.store.max_probes}; got {store.width} and {store.max_probes}."
            )
        slots = self.params.max_branches
        self.store = store
        self._data = env_data(store)
        self._ep = new_episode(store.width, slots)
        self._book = new_book(slots, store.max_probes, store.max_answers)
        self._counts = np.zeros(store.max_answers + 1, np.int64)
        self._done = True


def make_synthetic_env(
    preset: str | SyntheticParams = DEFAULT_PRESET,
    questions: int | None = None,
    fresh_questions_per_reset: bool = False,
    seed: int | None = None,
    **env_kwargs: Any,
) -> SyntheticEnv:
    """Build a :class:`SyntheticEnv` (the function form of ``gym.make("tts_gym/Synthetic-v0")``,
    without the time-limit and checker wrappers)."""
    return SyntheticEnv(
        preset=preset,
        questions=questions,
        fresh_questions_per_reset=fresh_questions_per_reset,
        seed=seed,
        **env_kwargs,
    )


def make_synthetic_vec_env(
    num_envs: int,
    preset: str | SyntheticParams = DEFAULT_PRESET,
    questions: int | None = None,
    branches: int = 128,
    fresh_questions_per_reset: bool = False,
    seed: int | None = None,
    max_probes: int | None = None,
    **env_kwargs: Any,
):
    """``gym.make_vec("tts_gym/Synthetic-v0", vectorization_mode="vector_entry_point")``: the
    native batched env over one fixed synthetic store.

    Raises:
        ValueError: ``fresh_questions_per_reset`` (use ``vectorization_mode="sync"``).
    """
    from tts_gym.env.vector_env import ReplayVectorEnv

    if fresh_questions_per_reset:
        raise ValueError(
            "The native vector env replays one fixed store; for fresh questions per reset use "
            'gym.make_vec("tts_gym/Synthetic-v0", vectorization_mode="sync", ...).'
        )
    params = resolve_params(preset)
    if max_probes is not None:
        params = with_max_probes(params, max_probes)
    store = generate_store(params, int(questions or 30), branches, 0 if seed is None else seed)
    return ReplayVectorEnv(num_envs=num_envs, store=store, **env_kwargs)
