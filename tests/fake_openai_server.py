"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

Replies are chosen by the round named in the last user message (``"Round N of R"``, as
:func:`agents.synthesis.prompt.build_messages` writes it), so a resumed run gets the same reply
for the same round however often it asks; in a population round (``"Proposal P of K"``) a
script key ``(N, P)`` picks the proposal's own steps (else those of round N, counted per
proposal), so concurrent siblings get their replies whatever order their requests arrive in.
Each script entry is a list of steps used in order
(the last one repeats): ``{"reply": text}``, ``{"status": 429}`` (or any HTTP error code),
``{"sleep": seconds, "reply": text}`` (a hang past the client's timeout); a step may also carry
``"usage_json"``: raw JSON text sent verbatim as the reply's ``usage`` (``'{"prompt_tokens":
1e400}'``: what a hostile endpoint can send that ``json.dumps`` cannot write), and
``"content_json"``: raw JSON text sent as the message's ``content`` instead of the reply, and
``"body_json"``: raw JSON text sent as the whole response body.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tts_gym.collect.toy_server import LoopbackServer

ROUND_RE = re.compile(r"Round (\d+) of \d+")
PROPOSAL_RE = re.compile(r"Proposal (\d+) of \d+")


class FakeOpenAI(LoopbackServer):
    """Start with ``with FakeOpenAI(script) as srv:``; ``srv.base_url`` is the ``/v1`` root.

    Args:
        script: ``round -> list of steps`` (see the module docstring).
        default: Step used for rounds missing from the script.
    """

    def __init__(self, script: dict[Any, list[dict[str, Any]]], default: dict | None = None,
                 models: list[str] | None = None):
        self.script = script
        self.default = default or {"reply": "no script for this round"}
        self.calls: list[dict[str, Any]] = []
        self.models = models
        """Served model names for GET /v1/models (None: the route answers 404)."""
        self.bodies: list[bytes] = []
        """Every raw request body received (the red-team tests search them for secrets)."""
        self.count: dict[Any, int] = defaultdict(int)
        self.lock = threading.Lock()
        self._listen(self._handler(), server_class=ThreadingHTTPServer)

    def step_for(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The scripted step for this request (and record the call)."""
        users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
        m = ROUND_RE.search(users[-1]) if users else None
        r = int(m.group(1)) if m else -1
        mp = PROPOSAL_RE.search(users[-1]) if users else None
        key = r if mp is None else (r, int(mp.group(1)))
        with self.lock:
            i = self.count[key]
            self.count[key] += 1
            steps = self.script.get(key) or self.script.get(r) or [self.default]
            step = steps[min(i, len(steps) - 1)]
            self.calls.append(
                {
                    "round": r,
                    **({} if mp is None else {"proposal": int(mp.group(1))}),
                    "attempt": i,
                    "model": body.get("model"),
                    "step": {k: v for k, v in step.items() if k != "reply"},
                }
            )
        return r, step

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: dict[str, Any], headers: dict | None = None,
                      raw: dict[str, str] | None = None, whole: bool = False) -> None:
                text = raw["body"] if whole and raw else json.dumps(obj)
                for key, value in ({} if whole else raw or {}).items():  # '"@key@"' -> raw
                    text = text.replace(json.dumps(f"@{key}@"), value)
                data = text.encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if not self.path.endswith("/models") or fake.models is None:
                    self._send(404, {"error": {"message": "not found"}})
                    return
                self._send(200, {"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                    for m in fake.models]})

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n)
                with fake.lock:
                    fake.bodies.append(raw)
                body = json.loads(raw or b"{}")
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                _r, step = fake.step_for(body)
                if "sleep" in step:
                    time.sleep(step["sleep"])
                if "status" in step:
                    self._send(
                        step["status"],
                        {
                            "error": {
                                "message": "scripted error",
                                "type": "rate_limit" if step["status"] == 429 else "server",
                            }
                        },
                        {"retry-after": "0"},
                    )
                    return
                if "body_json" in step:
                    self._send(200, {}, raw={"body": step["body_json"]}, whole=True)
                    return
                text = step.get("reply", "")
                raw = {k: step[k] for k in ("usage_json", "content_json") if k in step}
                prompt = sum(len(m.get("content", "")) for m in body.get("messages", []))
                usage = {
                    "prompt_tokens": prompt // 4,
                    "completion_tokens": len(text) // 4,
                    "total_tokens": prompt // 4 + len(text) // 4,
                }
                self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": (
                                    "@content_json@" if "content_json" in raw else text)},
                            }
                        ],
                        "usage": "@usage_json@" if "usage_json" in raw else usage,
                    },
                    raw=raw,
                )

        return Handler
