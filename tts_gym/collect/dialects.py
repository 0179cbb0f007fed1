"""How each engine takes a token-id prompt and returns the generated token ids (one dialect per
way), and the sampling fields it needs so that the sampling used is the sampling recorded.

Learned from the engines' sources (versions in ``docs/collect.md``), never guessed:

* ``vllm-token-ids``: vLLM >= 0.10.2, ``POST /v1/completions`` with ``return_token_ids``; ids in
  ``choices[0].token_ids``.
* ``vllm-logprob-ids``: older vLLM, ``logprobs: 0`` + ``return_tokens_as_token_ids``; ids as
  ``"token_id:N"`` logprob tokens.
* ``llama.cpp-native``: llama.cpp's ``POST /completion`` with ``return_tokens``; ids in
  ``tokens``, ``content``, ``tokens_predicted``, ``stop_type`` (``eos``/``word``/``limit``) and the
  request's effective ``generation_settings``.
* ``llama.cpp-logprobs``: llama.cpp's ``/v1/completions`` with ``logprobs >= 1``; ids in
  ``choices[0].logprobs.content[].id``. A token that ends inside a multi-byte UTF-8 character
  may have no entry, so the count is checked against ``completion_tokens`` and a reply that
  disagrees is refused (never stored approximately).
* ``sglang-native``: SGLang's ``POST /generate`` with ``input_ids`` and ``sampling_params``; ids
  in ``output_ids``, counts and finish reason in ``meta_info``.

Every reply is turned into one :class:`~tts_gym.collect.api.Completion` or refused with
:class:`~tts_gym.collect.client.BadReply`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tts_gym.collect.api import Completion, int_list, parse_completion
from tts_gym.collect.client import BadReply

DIALECTS: dict[str, str] = {
    "vllm-token-ids": "/v1/completions",
    "vllm-logprob-ids": "/v1/completions",
    "llama.cpp-native": "/completion",
    "llama.cpp-logprobs": "/v1/completions",
    "sglang-native": "/generate",
}
"""Dialect name -> request path."""

ENGINE_DIALECTS: dict[str, tuple[str, ...]] = {
    "vllm": ("vllm-token-ids", "vllm-logprob-ids"),
    "sglang": ("sglang-native",),
    "llama.cpp": ("llama.cpp-native", "llama.cpp-logprobs"),
    "unknown": ("vllm-token-ids", "vllm-logprob-ids", "llama.cpp-native", "llama.cpp-logprobs",
                "sglang-native"),
}
"""Dialects tried per engine, most exact and cheapest first."""


@dataclass(frozen=True)
class Sampling:
    """Every setting that changes a trajectory's distribution (off values unless set).

    Attributes:
        temperature: Softmax temperature (0: greedy).
        top_p: Nucleus mass (1: off).
        top_k: Top-k (0: off).
        min_p: Min-p (0: off).
        repetition_penalty: Multiplicative repetition penalty (1: off).
    """

    temperature: float
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    def fields(self, engine: str) -> dict[str, Any]:
        """The request fields of this sampling in ``engine``'s API (additive penalties 0)."""
        if engine == "llama.cpp":
            return {
                "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                "min_p": self.min_p, "repeat_penalty": self.repetition_penalty,
                "presence_penalty": 0.0, "frequency_penalty": 0.0, "typical_p": 1.0,
                "dynatemp_range": 0.0, "top_n_sigma": -1.0, "xtc_probability": 0.0,
                "dry_multiplier": 0.0, "mirostat": 0, "adaptive_target": -1.0,
            }
        top_k = (-1 if self.top_k == 0 else self.top_k) if engine == "sglang" else self.top_k
        return {
            "temperature": self.temperature, "top_p": self.top_p, "top_k": top_k,
            "min_p": self.min_p, "repetition_penalty": self.repetition_penalty,
            "presence_penalty": 0.0, "frequency_penalty": 0.0,
        }


LLAMA_CHECKED = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty",
                 "frequency_penalty", "typical_p", "dry_multiplier", "xtc_probability",
                 "mirostat")
"""llama.cpp ``generation_settings`` keys compared with what was sent."""


def mismatched_settings(sent: dict[str, Any], effective: dict[str, Any]) -> list[str]:
    """Keys of :data:`LLAMA_CHECKED` whose effective value differs from the sent one (floats
    compared at 1e-6, llama.cpp stores them as float32).

    >>> mismatched_settings({"top_k": 0, "min_p": 0.0}, {"top_k": 40, "min_p": 0.0})
    ['top_k']
    """
    bad = []
    for key in LLAMA_CHECKED:
        if key in sent and key in effective:
            a, b = sent[key], effective[key]
            if not isinstance(b, (int, float)) or abs(float(a) - float(b)) > 1e-6:
                bad.append(key)
    return bad


def request_body(dialect: str, model: str, prompt: list[int], max_tokens: int,
                 sampling: Sampling, engine: str, seed: int | None) -> dict[str, Any]:
    """The generation request of ``dialect`` (token-id prompt, ``max_tokens``, every sampling
    field, ``seed``)."""
    fields = sampling.fields(engine)
    if dialect == "sglang-native":
        params = {**fields, "max_new_tokens": max_tokens}
        if seed is not None:
            params["sampling_seed"] = seed
        return {"input_ids": prompt, "sampling_params": params, "stream": False}
    body: dict[str, Any] = {"prompt": prompt, **fields}
    if seed is not None:
        body["seed"] = seed
    if dialect == "llama.cpp-native":
        return {**body, "n_predict": max_tokens, "return_tokens": True, "cache_prompt": True,
                "n_probs": 0, "stream": False}
    body = {"model": model, **body, "max_tokens": max_tokens, "n": 1}
    if dialect == "vllm-token-ids":
        body["return_token_ids"] = True
    elif dialect == "vllm-logprob-ids":
        body.update(logprobs=0, return_tokens_as_token_ids=True)
    elif dialect == "llama.cpp-logprobs":
        body["logprobs"] = 1
    return body


def _native_llama(data: dict[str, Any], max_tokens: int) -> Completion:
    text, ids, n = data.get("content"), data.get("tokens"), data.get("tokens_predicted")
    if not isinstance(text, str) or not isinstance(n, int):
        raise BadReply("has no content or tokens_predicted (not llama.cpp's /completion)")
    if not int_list(ids) or (n > 0 and not ids):
        raise BadReply("has no generated token ids (return_tokens)")
    if len(ids) != n:
        raise BadReply(f"has {len(ids)} token ids but tokens_predicted = {n}")
    if data.get("truncated") is True:
        raise BadReply("says the server truncated the prompt to fit its context")
    stop = data.get("stop_type")
    if stop not in ("eos", "word", "limit"):
        raise BadReply(f"has stop_type {stop!r} (expected eos, word or limit)")
    finish = "length" if stop == "limit" else "stop"
    if n > max_tokens or (finish == "length" and n < max_tokens):
        raise BadReply(f"has {n} tokens for 'length' with {max_tokens} asked")
    prompt_tokens = data.get("tokens_evaluated")
    return Completion(text, finish, list(ids), None, n,
                      prompt_tokens if isinstance(prompt_tokens, int) else 0)


def _native_sglang(data: dict[str, Any], max_tokens: int) -> Completion:
    text, ids, meta = data.get("text"), data.get("output_ids"), data.get("meta_info")
    if not isinstance(text, str) or not isinstance(meta, dict):
        raise BadReply("has no text or meta_info (not SGLang's /generate)")
    n = meta.get("completion_tokens")
    if not isinstance(n, int) or not int_list(ids) or (n > 0 and not ids):
        raise BadReply("has no output_ids or meta_info.completion_tokens")
    if len(ids) != n:
        raise BadReply(f"has {len(ids)} output ids but completion_tokens = {n}")
    reason = meta.get("finish_reason")
    kind = reason.get("type") if isinstance(reason, dict) else None
    if kind not in ("stop", "length"):
        raise BadReply(f"has finish_reason {reason!r} (expected type stop or length)")
    if n > max_tokens or (kind == "length" and n < max_tokens):
        raise BadReply(f"has {n} tokens for {kind!r} with {max_tokens} asked")
    prompt_tokens = meta.get("prompt_tokens")
    return Completion(text, kind, list(ids), None, n,
                      prompt_tokens if isinstance(prompt_tokens, int) else 0)


def parse_reply(dialect: str, data: dict[str, Any], max_tokens: int) -> Completion:
    """Check a generation reply of ``dialect``; the completion always carries its token ids.

    Raises:
        BadReply: The reply is not this dialect's, or its ids disagree with its token count.
    """
    if dialect == "llama.cpp-native":
        return _native_llama(data, max_tokens)
    if dialect == "sglang-native":
        return _native_sglang(data, max_tokens)
    done = parse_completion(data, max_tokens)
    if done.token_ids is None or (done.completion_tokens > 0 and not done.token_ids):
        raise BadReply("carries no generated token ids")
    return done
