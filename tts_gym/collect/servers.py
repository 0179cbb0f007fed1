"""Start-up checks of the servers: the model is served, which engine each is, which token mode
the run uses (never an inexact one unless asked for), and that the engine samples as recorded."""

from __future__ import annotations

from collections.abc import Sequence

from tts_gym.collect.client import ServerPool
from tts_gym.collect.dialects import Sampling, mismatched_settings
from tts_gym.collect.engines import FIXES, Engine, detect, served_models
from tts_gym.collect.errors import CollectError


async def check_servers(pool: ServerPool, model: str, sampling: Sampling, timeout: float
                        ) -> list[Engine]:
    """Check every server serves ``model`` and detect its engine and capabilities."""
    engines = []
    for i, url in enumerate(pool.urls):
        models = await served_models(pool, i, timeout)
        if model not in models:
            raise CollectError(
                f"{url} serves {', '.join(map(repr, models)) or 'no model'}, not {model!r}; "
                "pass --model-name with the served name."
            )
        engines.append(await detect(pool, i, model, models[model], sampling, timeout))
    return engines


def context_limit(engines: Sequence[Engine]) -> int | None:
    """The smallest context any server reports (None if none does)."""
    known = [e.context for e in engines if e.context is not None]
    return min(known) if known else None


def resolve_mode(wanted: str, engines: Sequence[Engine], saved: str | None) -> str:
    """The token mode of the run.

    ``auto`` is the saved mode of a resumed run (if every server still supports it), else
    ``ids`` when every server offers it; otherwise the run is refused with one sentence naming
    the engine, what it lacks and the fix. An explicit mode must be supported by every server.
    """
    if wanted == "auto":
        if saved is not None and all(e.supports(saved) for e in engines):
            return saved
        for e in engines:
            if not e.supports("ids"):
                raise CollectError(
                    f"{e.label()} {e.lacks()}, so no probe prompt would be token-exact; "
                    f"{FIXES[e.name]}, or pass --token-mode text (or tokenize, with /tokenize) "
                    "to accept inexact cuts, recorded as such in the store."
                )
        return "ids"
    bad = [e for e in engines if not e.supports(wanted)]
    if bad:
        e = bad[0]
        raise CollectError(
            f"--token-mode {wanted} needs what {e.label()} does not offer (it {e.lacks()}); "
            f"{FIXES[e.name]}, or choose another --token-mode."
        )
    return wanted


def check_sampling(engines: Sequence[Engine], sampling: Sampling) -> None:
    """Refuse a server whose reported effective sampling differs from what was sent."""
    for e in engines:
        if e.effective is None:
            continue
        bad = mismatched_settings(sampling.fields(e.name), e.effective)
        if bad:
            raise CollectError(
                f"{e.label()} samples with {', '.join(f'{k}={e.effective[k]}' for k in bad)} "
                f"although the request set {', '.join(bad)} otherwise; restart it without "
                "sampling overrides (or upgrade it) so the store records how it was sampled."
            )
