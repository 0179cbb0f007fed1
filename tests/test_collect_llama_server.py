"""Opt-in: ``tts-gym collect`` against a real llama.cpp ``llama-server``.

Runs when ``TTS_GYM_LLAMA_SERVER`` names a ``llama-server`` binary and ``TTS_GYM_LLAMA_VOCAB``
names a vocab-only GGUF of a Qwen-style BPE tokenizer (llama.cpp's sources ship
``models/ggml-vocab-qwen2.gguf``); needs the ``gguf`` package (the ``dev`` extra). The test
writes a tiny Qwen3-architecture GGUF with random weights and that tokenizer (Qwen3's
``<think>``/``</think>`` added tokens at Qwen3's ids), serves it on 127.0.0.1 with default
flags, and collects 3 questions x 4 branches through a recording proxy. Then every probe
prompt is checked token by token against what the server itself said: the question's prompt
as the server tokenises it, the first p ids the server sampled for that branch (its
``/completion`` reply), the probe suffix's ids; and the probe positions of every branch are
exactly k·Δ. The store must work in ``inspect``, ``eval``, ``calibrate`` and ``gym.make``. See
``docs/collect.md`` ("Testing against a real llama-server").
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tts_gym.cli import main
from tts_gym.collect.toy_server import LoopbackServer

SERVER = os.environ.get("TTS_GYM_LLAMA_SERVER")
VOCAB = os.environ.get("TTS_GYM_LLAMA_VOCAB")
pytestmark = pytest.mark.skipif(
    not (SERVER and VOCAB),
    reason="set TTS_GYM_LLAMA_SERVER (llama-server binary) and TTS_GYM_LLAMA_VOCAB (a vocab-only "
    "GGUF, e.g. llama.cpp's models/ggml-vocab-qwen2.gguf) to run",
)

THINK_IDS = {151667: "<think>", 151668: "</think>"}
"""Qwen3's added thinking tokens (user-defined, not special)."""
IM_END, ENDOFTEXT = 151645, 151643
QUESTIONS = [
    {"id": "a", "problem": "What is 1 + 1?", "answer": "2"},
    {"id": "b", "problem": "Name the colour of the sky.", "answer": "blue"},
    {"id": "c", "problem": "How many sides has a square?", "answer": "4"},
]
BRANCHES, INTERVAL, MAX_TOKENS = 4, 8, 44


def write_tiny_qwen3(vocab: Path, out: Path, seed: int = 0) -> Path:
    """A Qwen3-architecture GGUF: 2 layers, width 64, random float32 weights, the vocab-only
    file's tokenizer with ``<think>``/``</think>`` as user-defined tokens at Qwen3's ids."""
    import gguf

    reader = gguf.GGUFReader(str(vocab))

    def field(name: str) -> Any:
        return reader.fields[name]

    f = field("tokenizer.ggml.tokens")
    tokens = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    t = field("tokenizer.ggml.token_type")
    types = [int(t.parts[i][0]) for i in t.data]
    m = field("tokenizer.ggml.merges")
    merges = [bytes(m.parts[i]).decode("utf-8") for i in m.data]
    for i, text in THINK_IDS.items():
        tokens[i], types[i] = text, int(gguf.TokenType.USER_DEFINED)
    n_vocab, n_embd, n_ff, n_head, n_kv, head, n_layer = len(tokens), 64, 128, 4, 2, 16, 2
    w = gguf.GGUFWriter(str(out), "qwen3")
    w.add_name("tiny-random-qwen3")
    w.add_block_count(n_layer)
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(head)
    w.add_value_length(head)
    w.add_rope_freq_base(1_000_000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(int(gguf.LlamaFileType.ALL_F32))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(str(field("tokenizer.ggml.pre").contents()))
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(ENDOFTEXT)
    w.add_eos_token_id(IM_END)
    w.add_pad_token_id(ENDOFTEXT)
    w.add_add_bos_token(False)
    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    w.add_tensor("token_embd.weight", rand(n_vocab, n_embd))
    w.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    for i in range(n_layer):
        blk = f"blk.{i}."
        w.add_tensor(blk + "attn_norm.weight", np.ones(n_embd, np.float32))
        w.add_tensor(blk + "attn_q.weight", rand(n_head * head, n_embd))
        w.add_tensor(blk + "attn_k.weight", rand(n_kv * head, n_embd))
        w.add_tensor(blk + "attn_v.weight", rand(n_kv * head, n_embd))
        w.add_tensor(blk + "attn_output.weight", rand(n_embd, n_head * head))
        w.add_tensor(blk + "attn_q_norm.weight", np.ones(head, np.float32))
        w.add_tensor(blk + "attn_k_norm.weight", np.ones(head, np.float32))
        w.add_tensor(blk + "ffn_norm.weight", np.ones(n_embd, np.float32))
        w.add_tensor(blk + "ffn_gate.weight", rand(n_ff, n_embd))
        w.add_tensor(blk + "ffn_up.weight", rand(n_ff, n_embd))
        w.add_tensor(blk + "ffn_down.weight", rand(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder(LoopbackServer):
    """A loopback proxy to the server that keeps every (path, request, reply) it forwards."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.log: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n) if n else None
                conn = http.client.HTTPConnection("127.0.0.1", rec.upstream, timeout=600)
                conn.request(method, self.path, raw, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                try:
                    reply = json.loads(data)
                except ValueError:
                    reply = {}
                with rec.lock:
                    rec.log.append((self.path, json.loads(raw) if raw else {}, reply))
                self.send_response(resp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self._forward("GET")

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                self._forward("POST")

        self._listen(Handler)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("llama")
    model = write_tiny_qwen3(Path(VOCAB or ""), tmp / "tiny-qwen3.gguf")
    port = _free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([SERVER or "", "-m", str(model), "--host", "127.0.0.1", "--port",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "llama-server did not become healthy in 120 s"
            time.sleep(0.5)
        with Recorder(port) as rec:
            yield tmp, rec
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_real_llama_server_is_token_exact(served: Any, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    from tts_gym.collect.config import DEFAULT_PROBE_SUFFIX
    from tts_gym.collect.templates import BUILTIN

    tmp, rec = served
    problems = tmp / "q.jsonl"
    problems.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    out = tmp / "S"
    argv = ["collect", str(problems), "--base-url", rec.base_url, "--model-name", "tiny",
            "--store-model", "tiny", "--benchmark", "q", "--out", str(out), "--branches",
            str(BRANCHES), "--interval", str(INTERVAL), "--max-tokens", str(MAX_TOKENS),
            "--probe-max-tokens", "6", "--max-in-flight", "4", "--retry-backoff", "0.1"]
    conn = http.client.HTTPConnection("127.0.0.1", rec.upstream, timeout=10)
    conn.request("GET", "/v1/models")
    argv[argv.index("tiny")] = json.loads(conn.getresponse().read())["data"][0]["id"]
    assert main(argv) == 0, capsys.readouterr().err
    meta = json.loads((out / "tiny" / "q.meta.json").read_text())
    assert meta["settings"]["token_mode"] == "ids"
    assert meta["token_ids_via"] == "llama.cpp-native"
    engine = meta["engines"][0]
    assert engine["engine"] == "llama.cpp" and engine["context"] > 0
    assert engine["effective_sampling"]["top_k"] == 0 and engine["effective_sampling"][
        "min_p"] == 0.0

    # the server's own words: tokenised prompts and suffix, sampled ids per generation
    tokenized = {b["content"]: r["tokens"] for p, b, r in rec.log
                 if p == "/tokenize" and "content" in b}
    suffix = tokenized[DEFAULT_PROBE_SUFFIX]
    template, _ = BUILTIN["qwen3"]
    prompts = [tokenized[template.replace("{problem}", q["problem"])] for q in QUESTIONS]
    gens = [(b["prompt"], r["tokens"]) for p, b, r in rec.log
            if p == "/completion" and b.get("n_predict") == MAX_TOKENS]
    probes = [b["prompt"] for p, b, r in rec.log
              if p == "/v1/completions" and b.get("max_tokens") == 6]
    assert len(gens) == len(QUESTIONS) * BRANCHES
    marker = tokenized["</think>"]
    expected: Counter[tuple[int, ...]] = Counter()
    for gprompt, ids in gens:
        assert gprompt in prompts
        t = next((i for i in range(len(ids)) if ids[i:i + len(marker)] == marker), len(ids))
        # probes at k·Δ below t, then the final answer's probe at t (random text writes no box)
        for p in [*range(INTERVAL, t, INTERVAL), t]:
            expected[tuple(gprompt + ids[:p] + suffix)] += 1
    got = Counter(tuple(p) for p in probes)
    exact = sum(min(n, expected[k]) for k, n in got.items())
    assert got == expected and exact == len(probes) > 0
    print(f"real llama-server: {exact}/{len(probes)} probe prompts token-exact, "
          f"{len(gens)} branches")

    args = ["--data-dir", str(out), "--model", "tiny", "--benchmark", "q"]
    assert main(["inspect", *args]) == 0
    assert main(["eval", "cmc", *args, "--seeds", "2", "--json"]) == 0
    assert main(["calibrate", *args, "--out", str(tmp / "params.json")]) == 0
    import gymnasium as gym

    env = gym.make("tts_gym/Replay-v0", data_dir=out, model="tiny", benchmark="q")
    env.reset(seed=0)
    env.close()
