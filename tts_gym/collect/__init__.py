"""``tts-gym collect``: build a replay store from a model behind an OpenAI-compatible server.

Modules, one idea each: :mod:`~tts_gym.collect.problems` (the problem file),
:mod:`~tts_gym.collect.templates` (prompts), :mod:`~tts_gym.collect.protocol` (probe positions,
seeds), :mod:`~tts_gym.collect.extract` (boxed answers), :mod:`~tts_gym.collect.canonical`
(equivalent answers share a label), :mod:`~tts_gym.collect.trajectory` (token-exact probe
prompts), :mod:`~tts_gym.collect.api` (the completions reply), :mod:`~tts_gym.collect.engines`
(which engine, what it offers), :mod:`~tts_gym.collect.dialects` (each engine's token-id requests
and sampling fields), :mod:`~tts_gym.collect.preflight` (``--check``), :mod:`~tts_gym.collect.http`
(keep-alive HTTP/1.1), :mod:`~tts_gym.collect.client` and :mod:`~tts_gym.collect.dispatch`
(least-loaded dispatch, retries), :mod:`~tts_gym.collect.servers` (start-up checks, token mode,
sampling check),
:mod:`~tts_gym.collect.target` (where the store goes, refusals), :mod:`~tts_gym.collect.journal`
(resume), :mod:`~tts_gym.collect.build` and :mod:`~tts_gym.collect.meta` (store, sidecars,
metadata), :mod:`~tts_gym.collect.runner` (the loop).

Needs the ``collect`` extra (math-verify and its LaTeX parser): ``pip install "tts-gym[collect]"``;
the HTTP client is the standard library's asyncio (:mod:`~tts_gym.collect.http`). Importing this
package does not import them; :func:`require_extra` checks for them.
"""

from __future__ import annotations

from tts_gym.collect.errors import BudgetReached, CollectError


def require_extra() -> None:
    """Raise :class:`CollectError` (one sentence with the quoted pip command) if a package of the
    ``collect`` extra is missing (:func:`tts_gym.extras.require_extra`; imports nothing)."""
    from tts_gym.extras import MissingExtraError
    from tts_gym.extras import require_extra as require

    try:
        require("collect", "tts-gym collect")
    except MissingExtraError as exc:
        raise CollectError(str(exc)) from None


__all__ = ["BudgetReached", "CollectError", "require_extra"]
