"""Policies against the tts-gym env: published controllers, LLM synthesis, RL baselines."""
