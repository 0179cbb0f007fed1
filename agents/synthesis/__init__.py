"""AutoTTS controller discovery: an LLM writes controllers, a sandbox runs them, gold stays home.

The loop (shared/spec/discovery.md; AutoTTS, 2026): round 0 scores the seed controllers
(:mod:`~agents.synthesis.seeds`); each round builds a prompt from the environment, the
objective, the constraints and the history (:mod:`~agents.synthesis.prompt`), asks any
OpenAI-compatible endpoint (:mod:`~agents.synthesis.llm`), extracts one full file
(:mod:`~agents.synthesis.extract`), validates it statically (:mod:`~agents.synthesis.validate`),
runs it on gold-free stores in a killed-on-timeout child (:mod:`~agents.synthesis.sandbox`,
:mod:`~agents.synthesis.child`, forked by the warm fork server :mod:`~agents.synthesis.zygote`
and seeing only :mod:`~agents.synthesis.proxy`),
scores it in the parent (:mod:`~agents.synthesis.scoring`) and appends the round to an
atomic, resumable history (:mod:`~agents.synthesis.history`). Selection and held-out scoring
come only at the end (:mod:`~agents.synthesis.report`). CLI: ``tts-gym discover``.
"""
