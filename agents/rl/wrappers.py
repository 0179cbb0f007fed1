"""A flattening observation wrapper for the atomic env (for SB3 policies that need a ``Box``).

SB3 accepts the atomic env's flat ``Dict`` observation as it is (``MultiInputPolicy``); MLP
policies, DQN's ``MlpPolicy`` and most other libraries want one vector. :class:`FlatAtomicObs`
concatenates the Dict's entries in key order (agree, depth, fresh, label, status, totals, vote;
``7 × ... = 5 S + 9`` numbers) as float32, and forwards ``action_masks()``.

>>> from tts_gym.env import ReplayEnv
>>> from tts_gym.testing import tiny_store
>>> env = FlatAtomicObs(ReplayEnv(store=tiny_store(), max_branches=4, illegal_action="ignore"))
>>> obs, info = env.reset(seed=0)
>>> obs.shape, obs.dtype.name, env.action_masks().shape
((29,), 'float32', (15,))
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class FlatAtomicObs(gym.ObservationWrapper):
    """Flatten the atomic env's Dict observation into one float32 ``Box`` (key order)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise TypeError(f"FlatAtomicObs needs a Dict observation space, got {space}.")
        self.keys = list(space.spaces)
        low = np.concatenate([space[k].low.ravel().astype(np.float32) for k in self.keys])
        high = np.concatenate([space[k].high.ravel().astype(np.float32) for k in self.keys])
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(observation[k], np.float32).ravel() for k in self.keys])

    def action_masks(self) -> np.ndarray:
        """The wrapped env's int8 action mask."""
        return self.env.unwrapped.action_masks()
