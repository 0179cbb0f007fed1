"""The macro-action env, as the RL baselines import it (it lives in :mod:`tts_gym.env`).

The env is registered as ``tts_gym/ReplayMacro-v0`` by ``import tts_gym``
(:class:`tts_gym.env.macro_env.MacroActionEnv`, its docstring is the documentation page); the
logic it shares with evaluation is :class:`tts_gym.env.macro_core.MacroCore`. This module
re-exports both, so ``agents.rl.macro.make_macro_env`` and the action constants keep working.

>>> from tts_gym.testing import tiny_store
>>> env = make_macro_env(tiny_store(), max_branches=4)
>>> obs, info = env.reset(seed=0)
>>> obs.shape, env.action_masks().tolist()
((20,), [1, 1, 0, 0, 0, 1])
>>> obs, reward, terminated, truncated, info = env.step(WIDEN)
>>> int(info["tokens"]) > 0, reward < 0
(True, True)
"""

from __future__ import annotations

from tts_gym.env.macro_core import (
    ACTION_NAMES,
    ANSWER,
    DEEPEN_ALL,
    DEEPEN_LEADERS,
    FEATURE_HIGH,
    FEATURES,
    N_ACTIONS,
    N_FEATURES,
    PRUNE_DISSENTERS,
    SAMPLE,
    WIDEN,
    MacroCore,
)
from tts_gym.env.macro_env import MacroActionEnv, make_macro_env

__all__ = [
    "ACTION_NAMES",
    "ANSWER",
    "DEEPEN_ALL",
    "DEEPEN_LEADERS",
    "FEATURES",
    "FEATURE_HIGH",
    "N_ACTIONS",
    "N_FEATURES",
    "PRUNE_DISSENTERS",
    "SAMPLE",
    "WIDEN",
    "MacroActionEnv",
    "MacroCore",
    "make_macro_env",
]
