"""The Gymnasium front end: :class:`ReplayEnv` and its action layout.

Also here: the native vector env (:mod:`~tts_gym.env.vector_env`), the macro-action env
``tts_gym/ReplayMacro-v0`` (:mod:`~tts_gym.env.macro_env`, logic in
:mod:`~tts_gym.env.macro_core`; not imported here, as it builds on the question handle) and the
renderers (:mod:`~tts_gym.env.render` for ``"ansi"``, :mod:`~tts_gym.env.raster` for
``"rgb_array"``).
"""

from tts_gym.env.actions import ANSWER, BRANCH, SAMPLE, ActionLayout
from tts_gym.env.episode_start import protocol_order
from tts_gym.env.params import EnvParams
from tts_gym.env.replay_env import ReplayEnv

__all__ = ["ANSWER", "BRANCH", "SAMPLE", "ActionLayout", "EnvParams", "ReplayEnv", "protocol_order"]
