"""tts-gym: a Gymnasium replay environment for test-time scaling controllers.

Implements the replay environment of "LLMs Improving LLMs: Agentic Discovery for Test-Time
Scaling" (AutoTTS, 2026): pre-collected reasoning trajectories, replayed token for token, so
controllers (and RL policies, and LLM-synthesised controllers) can be scored in seconds.

>>> import gymnasium as gym, tts_gym
>>> "tts_gym/Replay-v0" in gym.registry and "tts_gym/ReplayMacro-v0" in gym.registry
True
"""

from tts_gym import numba_cache

numba_cache.configure()  # before any kernel module is imported

from tts_gym.controller import make_controller
from tts_gym.env import ReplayEnv
from tts_gym.evaluation import EvalResult, evaluate
from tts_gym.evaluation.policy_eval import evaluate_policy
from tts_gym.handle import QuestionHandle
from tts_gym.registration import register_envs
from tts_gym.store import ReplayStore, StoreFormatError, load_store, load_store_file
from tts_gym.warmup import warmup

__version__ = "0.1.0"

register_envs()

__all__ = [
    "EvalResult",
    "QuestionHandle",
    "ReplayEnv",
    "ReplayStore",
    "StoreFormatError",
    "__version__",
    "evaluate",
    "evaluate_policy",
    "load_store",
    "load_store_file",
    "make_controller",
    "warmup",
]
