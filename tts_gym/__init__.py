"""tts-gym: a Gymnasium replay environment for test-time scaling controllers.

Implements the replay environment of "LLMs Improving LLMs: Agentic Discovery for Test-Time
Scaling" (AutoTTS, 2026): pre-collected reasoning trajectories, replayed token for token, so
controllers (and RL policies, and LLM-synthesised controllers) can be scored in seconds.

``import tts_gym`` is cheap (``tts-gym --version`` pays only for it): the names below are loaded
on first use (PEP 562), numba's cache folder is set just before numba is first imported
(:mod:`tts_gym.numba_cache`), and the envs are registered as soon as gymnasium is imported (at
once when it already is), so ``gym.make`` finds them whichever of the two is imported first.

>>> import gymnasium as gym, tts_gym
>>> "tts_gym/Replay-v0" in gym.registry and "tts_gym/ReplayMacro-v0" in gym.registry
True
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from tts_gym import import_hooks, numba_cache

__version__ = "0.1.0"

numba_cache.install()  # before any kernel module loads


def _register_envs() -> None:
    from tts_gym.registration import register_envs

    register_envs()


import_hooks.after_import("gymnasium", _register_envs)

_LAZY = {
    "EvalResult": "tts_gym.evaluation",
    "QuestionHandle": "tts_gym.handle",
    "ReplayEnv": "tts_gym.env",
    "ReplayStore": "tts_gym.store",
    "StoreFormatError": "tts_gym.store",
    "evaluate": "tts_gym.evaluation",
    "evaluate_policy": "tts_gym.evaluation.policy_eval",
    "load_store": "tts_gym.store",
    "load_store_file": "tts_gym.store",
    "make_controller": "tts_gym.controller",
    "warmup": "tts_gym.warmup",
}
"""Public name -> the module that defines it (imported on first access)."""

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tts_gym' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function (and win over a submodule)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``tts_gym.warmup`` is a function and a submodule: importing the submodule must not replace
    the function (the import system sets the parent's attribute to the submodule)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
