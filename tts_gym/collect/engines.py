"""Which engine serves the model, and what it offers: tokenizer format, token-id prompts, the
dialect that returns generated token ids, context length, version and sampling defaults.

Identification (from the engines' sources): ``GET /v1/models`` names the owner (``"vllm"``,
``"sglang"``, ``"llamacpp"``) and the context (``max_model_len`` for vLLM and SGLang,
``meta.n_ctx``, the per-slot context, for llama.cpp); then ``GET /version`` (vLLM),
``GET /server_info`` and ``/model_info`` (SGLang) or ``GET /props`` (llama.cpp: build, model
path, default sampling, ``n_ctx``). An engine that answers none of these is ``unknown`` and every
format is tried.

Every capability is proven by a tiny request and its reply is checked: an empty or malformed
reply (llama.cpp answers a vLLM-style ``/tokenize`` body with ``200 {"tokens": []}``) means "not
this format", never success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tts_gym.collect.api import NOT_SUPPORTED, dumps, int_list, parse_completion
from tts_gym.collect.client import BadReply, ServerPool
from tts_gym.collect.dialects import DIALECTS, ENGINE_DIALECTS, Sampling, parse_reply, request_body
from tts_gym.collect.errors import CollectError

OWNERS = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp"}
"""``owned_by`` of ``/v1/models`` -> engine name."""

TOKENIZE_FORMATS = {"vllm": ("openai",), "sglang": ("openai",), "llama.cpp": ("llama.cpp",),
                    "unknown": ("openai", "llama.cpp")}

FIXES = {
    "vllm": "upgrade vLLM (>= 0.10.2 returns token ids with return_token_ids)",
    "sglang": "serve with a SGLang that has /tokenize and /generate (0.4 or later)",
    "llama.cpp": "use a current llama-server (its /tokenize and /completion with return_tokens)",
    "unknown": "serve the model with vLLM, SGLang or llama.cpp's llama-server",
}


@dataclass
class Engine:
    """One server as detected (:func:`detect`).

    Attributes:
        url: The server's base URL.
        name: ``vllm``, ``sglang``, ``llama.cpp`` or ``unknown``.
        version: Engine version or build (None: not reported).
        context: Tokens a request may hold, prompt and generation (None: not reported).
        model_path: The model file or folder the server loaded (None: not reported).
        defaults: The server's default sampling (llama.cpp ``/props``, SGLang's preferred
            sampling params), which every request overrides; None if not reported.
        tokenize_format: ``openai`` (``{"model","prompt","add_special_tokens"}``), ``llama.cpp``
            (``{"content","add_special"}``) or None (no working ``/tokenize``).
        token_prompts: ``/v1/completions`` accepts token-id prompts (probes).
        dialect: Generation dialect that returns token ids (None: none works).
        offsets: Text prompts get logprob ``text_offset`` (text mode).
        effective: The effective sampling the engine reported for a request with the run's
            sampling (llama.cpp's ``generation_settings``), else None.
    """

    url: str
    name: str
    version: str | None = None
    context: int | None = None
    model_path: str | None = None
    defaults: dict[str, Any] | None = None
    tokenize_format: str | None = None
    token_prompts: bool = False
    dialect: str | None = None
    offsets: bool = False
    effective: dict[str, Any] | None = field(default=None, repr=False)

    def supports(self, mode: str) -> bool:
        """Whether token mode ``mode`` works on this server."""
        if mode == "ids":
            return bool(self.tokenize_format and self.token_prompts and self.dialect)
        if mode == "tokenize":
            return bool(self.tokenize_format and self.token_prompts)
        return True

    def lacks(self) -> str:
        """What keeps ``ids`` mode off, as a clause ("offers no working /tokenize")."""
        if not self.tokenize_format:  # the other two are tried with tokenised text only
            return "offers no working /tokenize"
        missing = []
        if not self.token_prompts:
            missing.append("token-id prompts on /v1/completions")
        if not self.dialect:
            missing.append("way to return the generated token ids")
        return "offers no " + " and no ".join(missing)

    def label(self) -> str:
        """``llama.cpp b1234 at http://...``."""
        return f"{self.name}{' ' + self.version if self.version else ''} at {self.url}"

    def describe(self) -> dict[str, Any]:
        """The metadata entry of this server."""
        return {"url": self.url, "engine": self.name, "version": self.version,
                "context": self.context, "model_path": self.model_path,
                "token_ids_via": self.dialect, "tokenize_format": self.tokenize_format,
                "server_sampling_defaults": self.defaults, "effective_sampling": self.effective}


async def _get(pool: ServerPool, server: int, path: str, timeout: float) -> dict[str, Any] | None:
    try:
        reply = await pool.request("GET", path, None, what=f"GET {path}", timeout=timeout,
                                   server=server, tolerate=NOT_SUPPORTED | {403})
    except CollectError:
        return None
    return None if reply is None else reply.data


async def _post(pool: ServerPool, server: int, path: str, body: dict[str, Any], timeout: float,
                check: Any = None) -> Any:
    """The checked reply of one detection request, or None (unsupported, refused, malformed)."""
    try:
        reply = await pool.request("POST", path, dumps(body), what=f"a check of {path}",
                                   timeout=timeout, server=server, tolerate=NOT_SUPPORTED,
                                   check=check, detecting=True)
    except CollectError:
        return None
    if reply is None:
        return None
    return reply.checked if check is not None else reply.data


async def served_models(pool: ServerPool, server: int, timeout: float
                        ) -> dict[str, dict[str, Any]]:
    """``{model id: its /v1/models entry}`` of one server."""
    reply = await pool.request(
        "GET", "/v1/models", None, what=f"the model list of {pool.urls[server]}",
        timeout=timeout, server=server,
        fatal=lambda msg, status: (
            f"{msg}; is {pool.urls[server]} an OpenAI-compatible server (vLLM, SGLang, "
            "llama.cpp)? Give --base-url as http://HOST:PORT/v1."
        ),
    )
    assert reply is not None
    data = reply.data.get("data")
    if not isinstance(data, list):
        raise CollectError(
            f"{pool.urls[server]}/models did not list models; is it an OpenAI-compatible server?"
        )
    return {item["id"]: item for item in data
            if isinstance(item, dict) and isinstance(item.get("id"), str)}


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


async def tokenize(pool: ServerPool, model: str, text: str, timeout: float,
                   fmt: str | None, server: int | None = None) -> list[int] | None:
    """Token ids of ``text`` (no special tokens added) in tokenizer format ``fmt``, or None.

    An empty list for a non-empty text is a wrong request format, not an answer: None.
    """
    body = ({"content": text, "add_special": False, "parse_special": True}
            if fmt == "llama.cpp" else
            {"model": model, "prompt": text, "add_special_tokens": False})

    def check(data: dict[str, Any]) -> list[int]:
        tokens = data.get("tokens")
        if not int_list(tokens) or (text and not tokens):
            raise BadReply("holds no token ids for a non-empty text (not this /tokenize format)")
        return tokens

    if server is not None:
        return await _post(pool, server, "/tokenize", body, timeout, check)
    reply = await pool.request("POST", "/tokenize", dumps(body), what="a tokenize request",
                               timeout=timeout, check=check)
    assert reply is not None
    return reply.checked


async def _identify(pool: ServerPool, server: int, entry: dict[str, Any], timeout: float
                    ) -> Engine:
    name = OWNERS.get(str(entry.get("owned_by", "")).lower(), "unknown")
    engine = Engine(pool.urls[server], name, context=_positive(entry.get("max_model_len")))
    meta = entry.get("meta")
    if isinstance(meta, dict) and _positive(meta.get("n_ctx")):
        engine.context = meta["n_ctx"]
    if name in ("llama.cpp", "unknown"):
        props = await _get(pool, server, "/props", timeout)
        settings = props.get("default_generation_settings") if props else None
        if props is not None and isinstance(settings, dict):
            engine.name = "llama.cpp"
            engine.version = props.get("build_info") if isinstance(props.get("build_info"),
                                                                   str) else None
            engine.model_path = props.get("model_path")
            params = settings.get("params")
            engine.defaults = params if isinstance(params, dict) else None
            engine.context = engine.context or _positive(settings.get("n_ctx"))
    if engine.name == "vllm":
        info = await _get(pool, server, "/version", timeout)
        engine.version = info.get("version") if info else None
        engine.model_path = entry.get("root") if isinstance(entry.get("root"), str) else None
    elif engine.name == "sglang":
        info = await _get(pool, server, "/server_info", timeout) or {}
        engine.version = info.get("version") if isinstance(info.get("version"), str) else None
        model_info = await _get(pool, server, "/model_info", timeout) or {}
        engine.model_path = model_info.get("model_path") or info.get("model_path")
        preferred = model_info.get("preferred_sampling_params")
        engine.defaults = preferred if isinstance(preferred, dict) else None
        engine.context = engine.context or _positive(info.get("context_length"))
    return engine


async def detect(pool: ServerPool, server: int, model: str, entry: dict[str, Any],
                 sampling: Sampling, timeout: float) -> Engine:
    """Identify one server and prove each capability with a tiny request (2 tokens).

    Args:
        pool: The servers.
        server: Index of the server.
        model: Served model name.
        entry: Its ``/v1/models`` entry.
        sampling: The run's trajectory sampling (sent with the generation check, so llama.cpp
            reports the effective settings of exactly that request).
        timeout: Seconds per request.
    """
    engine = await _identify(pool, server, entry, timeout)
    ids = None
    for fmt in TOKENIZE_FORMATS[engine.name]:
        ids = await tokenize(pool, model, "Hello", timeout, fmt, server)
        if ids:
            engine.tokenize_format = fmt
            break
    if ids:
        probe = {"model": model, "prompt": ids, "max_tokens": 2, "temperature": 0.0, "n": 1}
        engine.token_prompts = await _post(pool, server, "/v1/completions", probe, timeout,
                                           lambda d: parse_completion(d, 2)) is not None
        for dialect in ENGINE_DIALECTS[engine.name]:
            body = request_body(dialect, model, ids, 2, sampling, engine.name, 0)
            reply: dict[str, Any] = {}

            def check(data: dict[str, Any], dialect: str = dialect,
                      reply: dict[str, Any] = reply) -> Any:
                reply.update(data)
                return parse_reply(dialect, data, 2)

            if await _post(pool, server, DIALECTS[dialect], body, timeout, check) is not None:
                engine.dialect = dialect
                settings = reply.get("generation_settings")
                engine.effective = settings if isinstance(settings, dict) else None
                break
    text = {"model": model, "prompt": "Hello", "max_tokens": 2, "temperature": 0.0,
            "logprobs": 0}
    done = await _post(pool, server, "/v1/completions", text, timeout,
                       lambda d: parse_completion(d, 2))
    if done is None and not engine.token_prompts:
        raise CollectError(
            f"{pool.urls[server]} accepts neither text nor token-id prompts on /v1/completions "
            f"for model {model!r}; tts-gym collect needs the (legacy) completions API."
        )
    engine.offsets = done is not None and done.offsets is not None
    return engine
