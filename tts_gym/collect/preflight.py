"""The pre-flight: what a run will use and cost, said before its first request
(``tts-gym collect --check`` prints it and stops)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from tts_gym.collect.api import dumps
from tts_gym.collect.client import ServerPool
from tts_gym.collect.config import CollectConfig
from tts_gym.collect.dialects import DIALECTS, Sampling, parse_reply, request_body
from tts_gym.collect.engines import Engine

RATE_TOKENS = 32
"""Tokens of the one timed generation that measures a server's single-stream rate."""


def token_budget(config: CollectConfig, questions: int) -> tuple[int, int]:
    """Upper bounds ``(generated tokens, probe tokens)`` of a run: every trajectory runs to
    ``--max-tokens`` and is probed at every k·Δ below it plus once at the end.

    >>> from tts_gym.collect.config import CollectConfig
    >>> c = CollectConfig("x", ("i", "p", "a"), "m", "raw", "", "", 4, 500, 1200, 0.7, 1.0,
    ...                   "s", 10, 0, "ids", "m", "b", "heldout")
    >>> token_budget(c, 2)
    (9600, 240)
    """
    trajectories = questions * config.branches
    probes = math.ceil(config.max_tokens / config.interval)
    return trajectories * config.max_tokens, trajectories * probes * config.probe_max_tokens


async def measure_rate(pool: ServerPool, engine: Engine, config: CollectConfig,
                       sampling: Sampling, prompt: list[int] | None, timeout: float
                       ) -> float | None:
    """Generated tokens per second of one request of :data:`RATE_TOKENS` tokens on the first
    server (None if the engine has no id dialect or no tokenizer)."""
    if engine.dialect is None or not prompt:
        return None
    body = request_body(engine.dialect, config.model_name, prompt, RATE_TOKENS, sampling,
                        engine.name, config.seed)
    start = time.monotonic()
    reply = await pool.request("POST", DIALECTS[engine.dialect], dumps(body),
                               what="the timed pre-flight generation", timeout=timeout, server=0,
                               check=lambda d: parse_reply(engine.dialect or "", d, RATE_TOKENS))
    assert reply is not None
    seconds = time.monotonic() - start
    return reply.checked.completion_tokens / seconds if seconds > 0 else None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def preflight_lines(engines: Sequence[Engine], config: CollectConfig, sampling: Sampling,
                    questions: int, context: int | None, rate: float | None) -> list[str]:
    """The pre-flight, one fact per line: engine, token mode, context, sampling, estimate."""
    lines = []
    for e in engines:
        lines.append(f"engine: {e.label()} (model {e.model_path or 'path not reported'}; token "
                     f"ids via {e.dialect or 'none'})")
    lines.append(f"token mode: {config.token_mode}" + (
        " (exact: probe prompts are the sampled token ids)" if config.token_mode == "ids"
        else " (INEXACT: probe cuts are estimated; the store records a measured figure)"))
    need = config.max_tokens + config.probe_max_tokens
    lines.append(f"context: {context if context is not None else 'not reported (not checked)'} "
                 f"tokens per request; each needs prompt + {need} + the probe suffix")
    engine = engines[0]
    lines.append(f"sampling sent: {sampling.fields(engine.name)}")
    if engine.effective is not None:
        keys = sorted(k for k in sampling.fields(engine.name) if k in engine.effective)
        lines.append("sampling effective (reported by the server): "
                     + ", ".join(f"{k}={engine.effective[k]}" for k in keys))
    elif engine.name == "vllm":
        lines.append("sampling effective: as sent (vLLM's request values override its "
                     "generation-config defaults; it does not report them back)")
    else:
        lines.append("sampling effective: as sent (the server does not report it back)")
    gen, probe = token_budget(config, questions)
    estimate = (f"at most {gen:,} generated + {probe:,} probe tokens "
                f"({questions} questions x {config.branches} branches)")
    if rate:
        estimate += (f"; at the measured single-request rate of {rate:,.1f} tok/s at most "
                     f"{_hours((gen + probe) / rate)} (concurrent requests are faster)")
    lines.append("estimate: " + estimate)
    return lines
