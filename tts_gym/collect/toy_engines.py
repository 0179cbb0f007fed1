"""Loopback stand-ins for llama.cpp's ``llama-server`` and SGLang, beside the vLLM one
(:mod:`tts_gym.collect.toy_server`), driven by the same toy model, so the same reference store
applies (``tts-gym toy-server --engine sglang|llama.cpp``).

Request and reply formats learned from the engines' own sources (read, not copied):

* llama.cpp at commit 0c1e570 (the sources vendored in the llama-cpp-python 0.3.36 sdist;
  ``tools/server/server-context.cpp``, ``server-task.cpp``, ``server-schema.cpp``):
  ``GET /v1/models`` (``owned_by: "llamacpp"``, ``meta.n_ctx`` = per-slot context, no
  ``max_model_len``); ``GET /props`` (``default_generation_settings.params`` with its sampling
  defaults top_k 40, min_p 0.05, ..., ``default_generation_settings.n_ctx``, ``model_path``,
  ``build_info``); ``POST /tokenize`` reads ``content`` (``add_special``, ``parse_special``) and
  answers a body without ``content``, such as vLLM's, with ``200 {"tokens": []}``; ``POST
  /v1/completions`` takes text or token-id prompts, ``logprobs`` is an alias of ``n_probs``, and
  with ``logprobs >= 1`` the generated ids are in ``choices[0].logprobs.content[].id`` (a token
  that ends inside a multi-byte UTF-8 character may have no entry); no ``text_offset``; ``POST
  /completion`` (native) with ``n_predict`` / ``max_tokens`` and ``return_tokens`` answers
  ``content``, ``tokens``, ``tokens_predicted``, ``tokens_evaluated``, ``stop_type`` (``eos``,
  ``word``, ``limit``), ``truncated`` and the request's effective ``generation_settings``; every
  sampling field a request leaves out takes the server default.
* SGLang 0.5.10.post1 (sdist; ``srt/entrypoints/http_server.py``, ``openai/protocol.py``,
  ``managers/tokenizer_manager.py``, ``sampling/sampling_params.py``): ``GET /v1/models``
  (``owned_by: "sglang"``, ``max_model_len``); ``GET /server_info`` (server args and
  ``version``), ``GET /model_info`` (``model_path``, ``preferred_sampling_params``); ``POST
  /tokenize`` ``{"model", "prompt", "add_special_tokens"} -> {"tokens", "count",
  "max_model_len"}`` (a body without ``prompt`` fails validation: 422); ``POST /v1/completions``
  takes token-id prompts but returns no token ids; ``POST /generate`` with ``input_ids`` and
  ``sampling_params`` (``max_new_tokens``, ``temperature``, ``top_p``, ``top_k`` -1 = off,
  ``min_p``, ``repetition_penalty``, ``sampling_seed``) answers ``text``, ``output_ids`` and
  ``meta_info`` (``finish_reason.type`` ``stop``/``length``, ``prompt_tokens``,
  ``completion_tokens``).
"""

from __future__ import annotations

import time
from typing import Any

from tts_gym.collect.toy_model import PROBE_END, TOK
from tts_gym.collect.toy_server import FakeVLLM, error_body

LLAMA_DEFAULTS: dict[str, Any] = {
    "seed": 4294967295, "temperature": 0.8, "dynatemp_range": 0.0, "dynatemp_exponent": 1.0,
    "top_k": 40, "top_p": 0.95, "min_p": 0.05, "top_n_sigma": -1.0, "xtc_probability": 0.0,
    "xtc_threshold": 0.1, "typical_p": 1.0, "repeat_last_n": 64, "repeat_penalty": 1.0,
    "presence_penalty": 0.0, "frequency_penalty": 0.0, "dry_multiplier": 0.0, "dry_base": 1.75,
    "dry_allowed_length": 2, "dry_penalty_last_n": -1, "mirostat": 0, "mirostat_tau": 5.0,
    "mirostat_eta": 0.1, "adaptive_target": -1.0, "adaptive_decay": 0.9, "n_probs": 0,
    "min_keep": 0,
}
"""llama-server's default sampling (``common/common.h`` of the commit above)."""


class FakeLlamaCpp(FakeVLLM):
    """``llama-server`` stand-in.

    Args:
        n_ctx: Per-slot context (``-c`` / ``-np``).
        native: Serve ``POST /completion`` (off: only the OpenAI routes).
        no_entry_ids: Generated token ids that get no ``logprobs.content`` entry (as tokens
            ending inside a multi-byte UTF-8 character do).
        ignore: Request sampling fields the server ignores (a server that keeps its default).
        **kwargs: As :class:`~tts_gym.collect.toy_server.FakeVLLM`.
    """

    def __init__(self, n_ctx: int = 100_000, native: bool = True,
                 no_entry_ids: frozenset[int] = frozenset(), ignore: tuple[str, ...] = (),
                 **kwargs: Any) -> None:
        super().__init__(max_model_len=n_ctx, **kwargs)
        self.native = native
        self.no_entry_ids = no_entry_ids
        self.ignore = ignore

    def settings(self, body: dict[str, Any]) -> dict[str, Any]:
        """Effective sampling of a request: its fields over the server defaults."""
        out = dict(LLAMA_DEFAULTS)
        for key in LLAMA_DEFAULTS:
            if key in body and key not in self.ignore:
                out[key] = body[key]
        if "logprobs" in body and "n_probs" not in body:
            out["n_probs"] = body["logprobs"]
        return out

    def _prompt_ids(self, prompt: Any) -> list[int] | None:
        if isinstance(prompt, str):
            return TOK.encode(prompt)
        if isinstance(prompt, list) and prompt and all(isinstance(x, int) for x in prompt):
            return prompt
        return None

    def _run(self, body: dict[str, Any]) -> tuple[int, Any, str]:
        prompt_ids = self._prompt_ids(body.get("prompt"))
        if prompt_ids is None:
            return 400, error_body("\"prompt\" must be a string or a list of tokens",
                               "invalid_request_error", 400), "gen"
        n_predict = body.get("n_predict", body.get("max_tokens", -1))
        if len(prompt_ids) >= self.max_model_len:
            return 400, {"error": {"code": 400, "type": "exceed_context_size_error",
                                   "message": "the request exceeds the available context size, "
                                   "try increasing it"}}, "gen"
        kind = "probe" if TOK.decode(prompt_ids).endswith(PROBE_END) else "gen"
        seed = body.get("seed", LLAMA_DEFAULTS["seed"])
        ids, finish = self.toy.complete(prompt_ids, seed, n_predict)
        return 200, (prompt_ids, ids, finish), kind

    def completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        """``POST /v1/completions`` in llama.cpp's OpenAI-compatible form."""
        status, got, kind = self._run(body)
        if status != 200:
            return status, got, kind
        prompt_ids, ids, finish = got
        n_probs = self.settings(body)["n_probs"]
        choice: dict[str, Any] = {"text": TOK.decode(ids, skip_eos=True), "index": 0,
                                  "logprobs": None, "finish_reason": finish}
        if n_probs:
            choice["logprobs"] = {"content": [
                {"id": t, "token": TOK.piece(t), "bytes": list(TOK.piece(t).encode()),
                 "logprob": -0.25, "top_logprobs": [{"id": t, "token": TOK.piece(t),
                                                     "bytes": [], "logprob": -0.25}]}
                for t in ids if t not in self.no_entry_ids
            ]}
        reply = {"choices": [choice], "created": int(time.time()), "model": self.model,
                 "system_fingerprint": "b1-0c1e570", "object": "text_completion",
                 "usage": {"completion_tokens": len(ids), "prompt_tokens": len(prompt_ids),
                           "total_tokens": len(ids) + len(prompt_ids)},
                 "id": "chatcmpl-toy"}
        return 200, reply, kind

    def extra(self, method: str, path: str, body: dict[str, Any]
              ) -> tuple[str, int, dict[str, Any]] | None:
        if method == "GET" and path == "/props":
            return "info", 200, {
                "default_generation_settings": {"params": dict(LLAMA_DEFAULTS),
                                                "n_ctx": self.max_model_len},
                "total_slots": 1, "model_alias": self.model, "model_path": "/models/toy.gguf",
                "build_info": "b1-0c1e570", "bos_token": "", "eos_token": "<|im_end|>",
            }
        if method == "POST" and path == "/completion" and self.native:
            if self.delay_s:
                time.sleep(self.delay_s)
            status, got, kind = self._run(body)
            if status != 200:
                return kind, status, got
            prompt_ids, ids, finish = got
            stop_type = "limit" if finish == "length" else "eos"
            return kind, 200, {
                "index": 0, "content": TOK.decode(ids, skip_eos=True),
                "tokens": list(ids) if body.get("return_tokens") else [], "id_slot": 0,
                "stop": True, "model": self.model, "tokens_predicted": len(ids),
                "tokens_evaluated": len(prompt_ids), "generation_settings": self.settings(body),
                "prompt": "", "has_new_line": False, "truncated": False,
                "stop_type": stop_type, "stopping_word": "", "tokens_cached": 0,
            }
        return None

    def tokenizer_reply(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``/tokenize`` reads ``content`` only; anything else gets an empty list."""
        if path == "/detokenize":
            return 200, {"content": TOK.decode(body.get("tokens", []))}
        content = body.get("content")
        return 200, {"tokens": TOK.encode(content) if isinstance(content, str) else []}

    def models_reply(self) -> dict[str, Any]:
        return {"models": [{"name": self.model, "model": self.model}], "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0,
                          "owned_by": "llamacpp", "meta": {
                              "vocab_type": 2, "n_vocab": 2000, "n_ctx": self.max_model_len,
                              "n_ctx_train": 40960, "n_embd": 64, "n_params": 1,
                              "size": 1}}]}


class FakeSGLang(FakeVLLM):
    """SGLang stand-in (``**kwargs`` as :class:`~tts_gym.collect.toy_server.FakeVLLM`)."""

    version = "0.5.10.post1"

    def completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        """``POST /v1/completions``: token-id prompts, but no token ids returned."""
        clean = {k: v for k, v in body.items()
                 if k not in ("return_token_ids", "return_tokens_as_token_ids", "logprobs")}
        status, reply, kind = super().completion(clean)
        if status == 200:
            reply["choices"][0]["matched_stop"] = None
        return status, reply, kind

    def extra(self, method: str, path: str, body: dict[str, Any]
              ) -> tuple[str, int, dict[str, Any]] | None:
        if method == "GET" and path in ("/server_info", "/get_server_info"):
            return "info", 200, {"model_path": "/models/toy", "context_length": None,
                                 "enable_deterministic_inference": True,
                                 "version": self.version}
        if method == "GET" and path in ("/model_info", "/get_model_info"):
            return "info", 200, {"model_path": "/models/toy", "tokenizer_path": "/models/toy",
                                 "is_generation": True, "preferred_sampling_params": None}
        if method == "POST" and path == "/generate":
            return self._generate(body)
        return None

    def _generate(self, body: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
        if self.delay_s:
            time.sleep(self.delay_s)
        prompt_ids = body.get("input_ids")
        if not (isinstance(prompt_ids, list) and prompt_ids):
            if not isinstance(body.get("text"), str):
                return "gen", 400, {"error": {"message": "Either text, input_ids or "
                                              "input_embeds should be provided."}}
            prompt_ids = TOK.encode(body["text"])
        params = body.get("sampling_params") or {}
        max_new = params.get("max_new_tokens", 128)
        if len(prompt_ids) + max_new > self.max_model_len:
            return "gen", 400, {"error": {"message": "Requested token count exceeds the "
                                          "model's maximum context length."}}
        kind = "probe" if TOK.decode(prompt_ids).endswith(PROBE_END) else "gen"
        ids, finish = self.toy.complete(prompt_ids, params.get("sampling_seed") or 42, max_new)
        reason = ({"type": "length", "length": max_new} if finish == "length"
                  else {"type": "stop", "matched": TOK.eos})
        return kind, 200, {"text": TOK.decode(ids, skip_eos=True), "output_ids": list(ids),
                           "meta_info": {"id": "toy", "finish_reason": reason,
                                         "prompt_tokens": len(prompt_ids),
                                         "completion_tokens": len(ids), "cached_tokens": 0}}

    def tokenizer_reply(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``/tokenize``: a body without ``prompt`` fails validation (422)."""
        if path == "/tokenize" and not isinstance(body.get("prompt"), str):
            return 422, {"detail": [{"type": "missing", "loc": ["body", "prompt"],
                                     "msg": "Field required"}]}
        return super().tokenizer_reply(path, body)

    def models_reply(self) -> dict[str, Any]:
        reply = super().models_reply()
        reply["data"][0]["owned_by"] = "sglang"
        return reply


ENGINES: dict[str, type[FakeVLLM]] = {"vllm": FakeVLLM, "sglang": FakeSGLang,
                                      "llama.cpp": FakeLlamaCpp}
"""``tts-gym toy-server --engine`` names -> the stand-in speaking that engine's protocol."""
