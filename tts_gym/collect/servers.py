"""Start-up checks of the servers: the model is served, what each can do, which token mode and
request fields the run uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tts_gym.collect.api import MODE_ORDER, Capabilities, detect, served_models
from tts_gym.collect.client import ServerPool
from tts_gym.collect.errors import CollectError


async def check_servers(pool: ServerPool, model: str, timeout: float
                        ) -> tuple[list[Capabilities], int | None]:
    """Check every server serves ``model``; return their capabilities and the smallest
    ``max_model_len`` any of them reports (None if none does)."""
    caps = []
    limit: int | None = None
    for i, url in enumerate(pool.urls):
        models = await served_models(pool, i, timeout)
        if model not in models:
            raise CollectError(
                f"{url} serves {', '.join(map(repr, models)) or 'no model'}, not {model!r}; "
                "pass --model-name with the served name."
            )
        if models[model] is not None:
            limit = models[model] if limit is None else min(limit, models[model])
        caps.append(await detect(pool, i, model, timeout))
    return caps, limit


def resolve_mode(wanted: str, caps: list[Capabilities], saved: str | None,
                 urls: Sequence[str]) -> str:
    """The token mode of the run: ``wanted``, or for ``auto`` the saved mode of a resumed run
    (if every server still supports it), else the most exact mode all servers support."""
    if wanted == "auto":
        best = min((c.best_mode() for c in caps), key=MODE_ORDER.index)
        wanted = saved if saved is not None and all(c.supports(saved) for c in caps) else best
    bad = [urls[i] for i, c in enumerate(caps) if not c.supports(wanted)]
    if bad:
        raise CollectError(
            f"--token-mode {wanted} needs what {', '.join(bad)} does not offer (token-id "
            "prompts and returned token ids for ids, /tokenize for tokenize); use "
            "--token-mode auto."
        )
    return wanted


def request_fields(mode: str, caps: list[Capabilities]) -> dict[str, Any]:
    """Extra fields of a generation request: how its token ids (or offsets) come back."""
    if mode == "ids":
        if all(c.token_ids for c in caps):
            return {"return_token_ids": True}
        return {"logprobs": 0, "return_tokens_as_token_ids": True}
    if mode == "text" and all(c.offsets for c in caps):
        return {"logprobs": 0}
    return {}
