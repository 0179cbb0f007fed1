"""AutoTTS controller discovery: an LLM writes controllers, a sandbox runs them, gold stays home.

The loop (AutoTTS, 2026): round 0 scores the seed controllers
(:mod:`~agents.synthesis.seeds`); each round builds a prompt from the environment, the
objective, the constraints and the history (:mod:`~agents.synthesis.prompt`), asks any
OpenAI-compatible endpoint (:mod:`~agents.synthesis.llm`), extracts one full file
(:mod:`~agents.synthesis.extract`), validates it statically (:mod:`~agents.synthesis.validate`),
runs its beta sweep in OS-isolated candidate processes behind a trusted broker that alone holds
the data (:mod:`~agents.synthesis.sweep` over :mod:`tts_gym.sandbox`), scores it on the trusted
side (:mod:`~agents.synthesis.scoring`) and appends the round to an atomic, signed, resumable
history (:mod:`~agents.synthesis.history`). Selection and held-out scoring
come only at the end (:mod:`~agents.synthesis.report`). CLI: ``tts-gym discover``.
"""
