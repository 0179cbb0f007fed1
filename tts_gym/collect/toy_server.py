"""A loopback stand-in for vLLM's OpenAI-compatible server, driven by the deterministic toy model
(:mod:`tts_gym.collect.toy_model`): what ``tts-gym toy-server`` serves and the collect tests use.

What it emulates (learned from vLLM's ``entrypoints/openai`` protocol, not copied; last read in
vLLM 0.33.0, commit g4ba787ec9: ``entrypoints/openai/completion/protocol.py`` for
``return_token_ids``, ``return_tokens_as_token_ids``, ``top_k`` 0 = off, ``min_p``,
``repetition_penalty``; ``serve/tokenize/protocol.py`` for ``/tokenize``;
``serve/engine/protocol.py`` for ``/v1/models`` with ``max_model_len`` and ``owned_by: "vllm"``;
``serve/instrumentator/basic.py`` for ``GET /version``):

* ``POST /v1/completions``: ``prompt`` as text or as token ids, ``max_tokens``, ``temperature``,
  ``top_p``, ``seed``, ``n`` (1 only); ``logprobs`` with ``tokens`` / ``token_logprobs`` /
  ``top_logprobs`` / ``text_offset``, tokens written ``"token_id:N"`` under
  ``return_tokens_as_token_ids``; ``return_token_ids`` adds ``token_ids`` and
  ``prompt_token_ids`` to the choice; ``finish_reason`` ``"stop"`` (the EOS token, counted in
  ``usage`` and in ``token_ids`` but not in ``text``) or ``"length"``; ``usage``; a 400 when
  prompt + ``max_tokens`` exceeds ``max_model_len`` and a 404 for an unknown model, with vLLM's
  error body ``{"error": {"message", "type", "param", "code"}}``.
* ``POST /tokenize`` (``prompt``, ``add_special_tokens``) and ``POST /detokenize``;
  ``GET /v1/models`` with ``max_model_len``; ``GET /version``.
* Feature switches to look like older vLLM, SGLang or llama.cpp builds (no ``return_token_ids``,
  no ``/tokenize``, no token-id prompts, no ``text_offset``).
* Injectable faults (:class:`Fault`): 429 with ``Retry-After``, 500, a stall, a connection
  dropped mid-body, a body that is not JSON, fewer tokens than asked.

The toy model (:class:`~tts_gym.collect.toy_model.ToyModel`) is what makes the collector
testable: the store a correct collector must produce can be computed directly from its plans.
SGLang and llama.cpp stand-ins on the same model: :mod:`tts_gym.collect.toy_engines`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from tts_gym.collect.toy_model import PROBE_END, TOK, ToyModel

# --- faults -------------------------------------------------------------------------------------

@dataclass
class Fault:
    """Make the ``nth`` request of ``kind`` (and the ``times - 1`` after it) fail.

    Attributes:
        what: ``"429"`` (with ``Retry-After``), ``"500"``, ``"stall"`` (answer after
            ``stall_s``), ``"drop"`` (close the connection mid-body), ``"malformed"`` (a 200 whose
            body is not JSON), ``"short"`` (``length`` with fewer tokens than asked).
        kind: ``"gen"``, ``"probe"``, ``"tokenize"``, ``"models"`` or ``"any"``.
        nth: 1-based index among requests of that kind.
        times: Consecutive requests of that kind affected (-1: every one from ``nth`` on).
        retry_after: The 429's ``Retry-After`` header (seconds).
        stall_s: How long a stall lasts.
    """

    what: str
    kind: str = "any"
    nth: int = 1
    times: int = 1
    retry_after: str = "0"
    stall_s: float = 3.0

    def hits(self, kind: str, index: int) -> bool:
        """Whether request ``index`` (1-based) of ``kind`` is affected."""
        if self.kind not in ("any", kind):
            return False
        return index >= self.nth and (self.times < 0 or index < self.nth + self.times)


@dataclass
class Call:
    """One request the fake served (for assertions)."""

    kind: str
    prompt_len: int
    seed: int | None
    fault: str | None
    at: float
    body: dict[str, Any] = field(repr=False, default_factory=dict)


# --- the server ---------------------------------------------------------------------------------

class QuietServer(ThreadingHTTPServer):
    """A client hanging up (a timeout, a cancelled run) is normal here: no traceback. The listen
    backlog is uvicorn's (socketserver's default of 5 drops the SYNs of a client opening 64
    connections at once, and TCP retries them 1 s and 3 s later)."""

    request_queue_size = 2048

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


_Served = TypeVar("_Served", bound="LoopbackServer")


class LoopbackServer:
    """An HTTP server on 127.0.0.1 that answers from a daemon thread inside a ``with`` block.

    A subclass calls :meth:`_listen` with its handler class in its constructor; ``with srv:``
    starts answering and leaving the block stops the server and closes its socket. The toy
    engines and the tests' stand-ins (chat, recording proxies) share this lifecycle.
    """

    server: ThreadingHTTPServer
    thread: threading.Thread

    def _listen(self, handler: type[BaseHTTPRequestHandler], port: int = 0,
                server_class: type[ThreadingHTTPServer] = QuietServer) -> None:
        """Bind ``127.0.0.1:port`` (0: any free port); raises OSError if it cannot."""
        self.server = server_class(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self: _Served) -> _Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeVLLM(LoopbackServer):
    """``with FakeVLLM() as srv:`` serves on 127.0.0.1; ``srv.base_url`` ends in ``/v1``.

    Args:
        model: Served model name.
        toy: The toy model.
        max_model_len: Context limit (prompt + max_tokens).
        faults: Faults to inject.
        delay_s: Sleep before each completion (to make runs long enough to interrupt).
        return_token_ids: Honour ``return_token_ids`` (vLLM >= 0.10.2).
        logprob_ids: Honour ``return_tokens_as_token_ids``.
        tokenize: Serve ``/tokenize`` and ``/detokenize``.
        token_prompts: Accept token-id prompts.
        text_offsets: Include ``text_offset`` in logprobs.
    """

    def __init__(self, model: str = "toy/Toy-1B", toy: ToyModel | None = None,
                 max_model_len: int = 100_000, faults: list[Fault] | None = None,
                 delay_s: float = 0.0, return_token_ids: bool = True, logprob_ids: bool = True,
                 tokenize: bool = True, token_prompts: bool = True, text_offsets: bool = True,
                 port: int = 0) -> None:
        self.model = model
        self.toy = toy or ToyModel()
        self.max_model_len = max_model_len
        self.faults = list(faults or [])
        self.delay_s = delay_s
        self.features = {"return_token_ids": return_token_ids, "logprob_ids": logprob_ids,
                         "tokenize": tokenize, "token_prompts": token_prompts,
                         "text_offsets": text_offsets}
        self.calls: list[Call] = []
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self._listen(self._handler(), port)

    def served(self, kind: str) -> list[Call]:
        """Successful requests of one kind."""
        return [c for c in self.calls if c.kind == kind and c.fault is None]

    def _fault_for(self, kind: str) -> Fault | None:
        with self.lock:
            self.counts[kind] = index = self.counts.get(kind, 0) + 1
            for f in self.faults:
                if f.hits(kind, index):
                    return f
        return None

    # --- responses ------------------------------------------------------------------------------
    def completion(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        """``(status, reply, kind)`` of a ``/v1/completions`` body."""
        if body.get("model") != self.model:
            return 404, error_body(f"The model `{body.get('model')}` does not exist.",
                               "NotFoundError", 404), "gen"
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompt_ids = TOK.encode(prompt)
        elif isinstance(prompt, list) and all(isinstance(x, int) for x in prompt):
            if not self.features["token_prompts"]:
                return 400, error_body("prompt must be a string", "BadRequestError", 400), "gen"
            prompt_ids = prompt
        else:
            return 400, error_body("Either prompt or prompt_embeds must be provided and non-empty.",
                               "BadRequestError", 400), "gen"
        max_tokens = body.get("max_tokens", 16)
        if len(prompt_ids) + max_tokens > self.max_model_len:
            return 400, error_body(
                f"This model's maximum context length is {self.max_model_len} tokens. However, "
                f"you requested {len(prompt_ids) + max_tokens} tokens ({len(prompt_ids)} in the "
                f"messages, {max_tokens} in the completion). Please reduce the length of the "
                "messages or completion.", "BadRequestError", 400), "gen"
        kind = "probe" if TOK.decode(prompt_ids).endswith(PROBE_END) else "gen"
        ids, finish = self.toy.complete(prompt_ids, body.get("seed") or 0, max_tokens)
        choice: dict[str, Any] = {
            "index": 0,
            "text": TOK.decode(ids, skip_eos=True),
            "logprobs": None,
            "finish_reason": finish,
            "stop_reason": None,
        }
        if body.get("logprobs") is not None:
            as_ids = body.get("return_tokens_as_token_ids") and self.features["logprob_ids"]
            tokens = [f"token_id:{t}" if as_ids else TOK.piece(t) for t in ids]
            offsets, pos = [], 0
            for t in ids:
                offsets.append(pos)
                if t != TOK.eos:
                    pos += len(TOK.piece(t))
            choice["logprobs"] = {
                "text_offset": offsets if self.features["text_offsets"] else [],
                "token_logprobs": [-0.25] * len(ids),
                "tokens": tokens,
                "top_logprobs": [{tok: -0.25} for tok in tokens],
            }
        if body.get("return_token_ids") and self.features["return_token_ids"]:
            choice["token_ids"] = list(ids)
            choice["prompt_token_ids"] = list(prompt_ids)
        reply = {
            "id": f"cmpl-{hashlib.md5(json.dumps(body).encode()).hexdigest()[:12]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
            "usage": {"prompt_tokens": len(prompt_ids), "total_tokens": len(prompt_ids) + len(ids),
                      "completion_tokens": len(ids), "prompt_tokens_details": None},
        }
        return 200, reply, kind

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fake": self})

    def log_call(self, kind: str, body: dict[str, Any], fault: str | None) -> None:
        """Record one request."""
        prompt = body.get("prompt")
        self.calls.append(Call(kind, len(prompt) if isinstance(prompt, list) else -1,
                               body.get("seed"), fault, time.monotonic(), body))

    def tokenizer_reply(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``/tokenize`` and ``/detokenize``."""
        if path == "/detokenize":
            return 200, {"prompt": TOK.decode(body.get("tokens", []))}
        if not isinstance(body.get("prompt"), str):
            return 400, error_body("prompt is required", "BadRequestError", 400)
        ids = TOK.encode(body["prompt"])
        return 200, {"count": len(ids), "max_model_len": self.max_model_len, "tokens": ids,
                     "token_strs": None}

    def extra(self, method: str, path: str, body: dict[str, Any]
              ) -> tuple[str, int, dict[str, Any]] | None:
        """Engine-specific routes: ``(kind, status, reply)`` or None (not one). vLLM: ``GET
        /version``. Subclasses for other engines override it."""
        if method == "GET" and path == "/version":
            return "info", 200, {"version": self.version}
        return None

    version = "0.33.0"
    """What ``GET /version`` reports."""

    def models_reply(self) -> dict[str, Any]:
        """``/v1/models``."""
        return {"object": "list", "data": [{
            "id": self.model, "object": "model", "created": 0, "owned_by": "vllm",
            "root": self.model, "parent": None, "max_model_len": self.max_model_len,
            "permission": [],
        }]}


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; ``fake`` is set on the subclass :class:`FakeVLLM` makes."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    fake: FakeVLLM

    def log_message(self, *args: Any) -> None:
        pass

    def _send_bytes(self, code: int, data: bytes, headers: dict | None = None,
                    cut: bool = False) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if cut:  # promise the whole body, send half, hang up
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout) or hung up
            self.close_connection = True

    def _send(self, code: int, obj: dict[str, Any], headers: dict | None = None,
              cut: bool = False) -> None:
        self._send_bytes(code, json.dumps(obj).encode(), headers, cut)

    def _body(self) -> dict[str, Any] | None:
        n = int(self.headers.get("Content-Length", 0))
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            self._send(400, error_body("invalid JSON body", "BadRequestError", 400))
            return None
        return body if isinstance(body, dict) else {}

    def _reply(self, kind: str, reply: dict[str, Any], body: dict[str, Any]) -> None:
        """Send ``reply``, or the fault due for this request of ``kind``."""
        fault = self.fake._fault_for(kind)
        self.fake.log_call(kind, body, fault.what if fault else None)
        if fault is None:
            self._send(200, reply)
        elif fault.what == "429":
            self._send(429, error_body("Too many requests", "RateLimitError", 429),
                       {"Retry-After": fault.retry_after})
        elif fault.what == "500":
            self._send(500, error_body("internal error", "InternalServerError", 500))
        elif fault.what == "stall":
            time.sleep(fault.stall_s)
            self._send(200, reply)
        elif fault.what == "drop":
            self._send(200, reply, cut=True)
        elif fault.what == "malformed":
            self._send_bytes(200, b'{"id": "cmpl-x", "choices": [{"text": ')
        elif fault.what == "short":
            self._send(200, _shortened(reply))

    def _extra(self, method: str, body: dict[str, Any]) -> bool:
        got = self.fake.extra(method, self.path.rstrip("/"), body)
        if got is None:
            return False
        kind, status, reply = got
        if status != 200:
            self.fake.log_call(kind, body, f"http{status}")
            self._send(status, reply)
        else:
            self._reply(kind, reply, body)
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self._extra("GET", {}):
            return
        if self.path.rstrip("/") == "/v1/models":
            self._reply("models", self.fake.models_reply(), {})
        else:
            self._send(404, error_body("Not Found", "NotFoundError", 404))

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self._body()
        if body is None:
            return
        fake = self.fake
        if self._extra("POST", body):
            return
        if self.path in ("/tokenize", "/detokenize"):
            if not fake.features["tokenize"]:
                self._send(404, {"detail": "Not Found"})
                return
            status, reply = fake.tokenizer_reply(self.path, body)
            if status != 200:
                self._send(status, reply)
            else:
                self._reply("tokenize", reply, body)
            return
        if self.path != "/v1/completions":
            self._send(404, {"detail": "Not Found"})
            return
        if fake.delay_s:
            time.sleep(fake.delay_s)
        status, reply, kind = fake.completion(body)
        if status != 200:
            fake.log_call(kind, body, f"http{status}")
            self._send(status, reply)
            return
        self._reply(kind, reply, body)


def _shortened(reply: dict[str, Any]) -> dict[str, Any]:
    """A completion cut to fewer tokens than asked, still claiming ``length``."""
    choice = reply["choices"][0]
    keep = max(0, reply["usage"]["completion_tokens"] // 2 - 1)
    if choice.get("token_ids") is not None:
        choice["token_ids"] = choice["token_ids"][:keep]
    choice["finish_reason"] = "length"
    choice["text"] = choice["text"][:keep]
    reply["usage"]["completion_tokens"] = keep
    return reply


def error_body(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def serve_forever(port: int, **kwargs: Any) -> None:  # pragma: no cover - used by subprocess tests
    """Run a fake vLLM server in the foreground (``python -m tests.fake_vllm_server PORT``)."""
    srv = FakeVLLM(port=port, **kwargs)
    srv.server.serve_forever()
