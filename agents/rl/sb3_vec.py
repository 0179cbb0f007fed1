"""An SB3 ``VecEnv`` over the native batched atomic env (:class:`ReplayVectorEnv`).

SB3 does not take a Gymnasium ``VectorEnv``; its ``VecEnv`` protocol differs in three ways this
adapter bridges: an ended env is reset *inside* the ending step (SB3) rather than on the next
step (Gymnasium NEXT_STEP autoreset), the last observation of an episode goes into
``infos[i]["terminal_observation"]``, and infos are a list of dicts. ``env_method("action_masks")``
returns the batched masks row by row, which is what sb3-contrib's MaskablePPO asks for.

Which env to train on: the macro-action env (:mod:`agents.rl.macro`) is what ``tts-gym
train-rl`` uses, through SB3's ``DummyVecEnv`` over single macro envs, because one macro step is a
variable number of atomic steps per env (a batched macro kernel would be a second copy of the
macro logic) and the policy network, not the env, dominates training time at that step rate.
This adapter is for agents acting on the atomic actions at the native env's throughput.

>>> from tts_gym.env.vector_env import ReplayVectorEnv
>>> from tts_gym.testing import tiny_store
>>> venv = SB3ReplayVecEnv(ReplayVectorEnv(4, store=tiny_store(), max_branches=4))
>>> obs = venv.reset()
>>> obs["status"].shape, len(venv.env_method("action_masks"))
((4, 4), 4)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from tts_gym.env.vector_env import ReplayVectorEnv


class SB3ReplayVecEnv(VecEnv):
    """SB3 view of a :class:`ReplayVectorEnv` (see module docstring).

    Args:
        venv: The native vector env: ``ReplayVectorEnv(num_envs, store=..., max_branches=...,
            cost_weight=..., max_episode_steps=...)`` (every argument of ``tts_gym/Replay-v0``;
            ``max_episode_steps=None`` means no time limit, ``gym.make_vec`` passes the
            registration's 20,000), or ``gym.make_vec("tts_gym/Replay-v0", num_envs=N,
            vectorization_mode="vector_entry_point", ...)``. Keep ``illegal_action="ignore"``
            (the default) for unmasked algorithms. Its ``render_mode`` is SB3's.
    """

    def __init__(self, venv: ReplayVectorEnv) -> None:
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None

    def reset(self) -> dict[str, np.ndarray]:
        obs, _info = self.venv.reset(seed=self._seed)
        self._seed = None
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in range(self.num_envs):
            infos[i]["tokens"] = int(info["tokens"][i])
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if "_correct" in info and info["_correct"][i]:
                infos[i]["correct"] = bool(info["correct"][i])
        if dones.any():
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = {k: v[i].copy() for k, v in obs.items()}
            new_obs, _ = self.venv.reset(options={"reset_mask": dones})
            for k in obs:
                obs[k][dones] = new_obs[k][dones]
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise AttributeError("SB3ReplayVecEnv does not set attributes on its batched env.")

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        idx = self._indices(indices)
        if method_name == "action_masks":
            masks = self.venv.action_masks()
            return [masks[i] for i in idx]
        raise AttributeError("SB3ReplayVecEnv supports env_method('action_masks') only.")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One uint8 frame per env with ``render_mode="rgb_array"`` (SB3's ``render`` tiles
        them), else None per env."""
        if self.venv.render_mode != "rgb_array":
            return [None] * self.num_envs
        return list(self.venv.render())

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices) if isinstance(indices, Iterable) else [indices]
