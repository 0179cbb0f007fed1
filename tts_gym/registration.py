"""Gymnasium registration of the tts-gym environments (done on ``import tts_gym``)."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

MAX_EPISODE_STEPS = 20_000
"""Time limit of the registered envs. A legal episode over 64 slots of the shipped stores
(at most 80 probes per branch) needs at most 64 × (2 × 81 + 2) + 1 ≈ 10,500 steps."""


def register_envs() -> None:
    """Register ``tts_gym/Replay-v0``, ``tts_gym/ReplayMacro-v0`` and ``tts_gym/Synthetic-v0``
    (idempotent).

    The macro env gets no ``max_episode_steps``: it answers by itself (terminated) after its
    ``max_macro_steps`` argument, so a ``TimeLimit`` could only cut an episode the env ends on
    the same step anyway.
    """
    if "tts_gym/Replay-v0" not in registry:
        register(
            id="tts_gym/Replay-v0",
            entry_point="tts_gym.env.replay_env:ReplayEnv",
            vector_entry_point="tts_gym.env.vector_env:ReplayVectorEnv",
            max_episode_steps=MAX_EPISODE_STEPS,
        )
    if "tts_gym/ReplayMacro-v0" not in registry:
        register(
            id="tts_gym/ReplayMacro-v0",
            entry_point="tts_gym.env.macro_env:MacroActionEnv",
        )
    if "tts_gym/Synthetic-v0" not in registry:
        register(
            id="tts_gym/Synthetic-v0",
            entry_point="tts_gym.synthetic.env:SyntheticEnv",
            vector_entry_point="tts_gym.synthetic.env:make_synthetic_vec_env",
            max_episode_steps=MAX_EPISODE_STEPS,
        )
