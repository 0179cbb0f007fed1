"""The Gymnasium front end: :class:`ReplayEnv` and its action layout."""

from tts_gym.env.actions import ANSWER, BRANCH, SAMPLE, ActionLayout
from tts_gym.env.params import EnvParams
from tts_gym.env.replay_env import ReplayEnv, protocol_order

__all__ = ["ANSWER", "BRANCH", "SAMPLE", "ActionLayout", "EnvParams", "ReplayEnv", "protocol_order"]
