"""The Gymnasium front end: :class:`ReplayEnv` and its action layout."""

from tts_gym.env.actions import ANSWER, BRANCH, SAMPLE, ActionLayout
from tts_gym.env.episode_start import protocol_order
from tts_gym.env.params import EnvParams
from tts_gym.env.replay_env import ReplayEnv

__all__ = ["ANSWER", "BRANCH", "SAMPLE", "ActionLayout", "EnvParams", "ReplayEnv", "protocol_order"]
