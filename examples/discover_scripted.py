"""A whole discovery run against a scripted local "LLM" (no API key, no network): in about a minute.

A tiny OpenAI-compatible chat server on 127.0.0.1 (written below, standard library only)
answers each round with a prepared proposal: two honest controllers and one syntax error. The
loop does everything else for real: the seed controllers, the sandboxed beta sweeps, the
feedback, finalist re-scoring, held-out scoring beside CMC, the report. It prints what each
round cost (prompt size, sandboxed sweep time) and where the report is.

    python examples/discover_scripted.py                    # real stores if configured, else tiny
    python examples/discover_scripted.py --seeds 10 --final-seeds 100 --out runs/scripted

Ctrl-C stops it cleanly; run it again with ``--resume --out DIR`` to continue.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from agents.synthesis.llm import LLMConfig
from agents.synthesis.loop import DiscoveryConfig, run_discovery
from tts_gym.paths import MODELS, resolve_data_dir
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.testing import tiny_questions, write_store_json

READ_UNTIL_AGREE = '''\
from collections import Counter


class Controller:
    """Read branches to the end until `agree` of them concur; both grow with beta."""

    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.cfg = self.schedule(self.beta)

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {"n_max": max(1, round(2 + 62 * b)), "agree": max(2, round(2 + 6 * b))}

    def solve(self, question):
        votes = Counter()
        for _ in range(self.cfg["n_max"]):
            a = question.full_read()
            if a is None:
                break
            votes[a] += 1
            top, count = votes.most_common(1)[0]
            if count >= self.cfg["agree"]:
                question.note("stop", reason="agree", count=count, answer=top)
                return top
        top = votes.most_common(1)[0][0] if votes else None
        question.note("stop", reason="budget", votes=sum(votes.values()), answer=top)
        return top
'''

PROBE_AND_PRUNE = '''\
from tts_gym.candidate import beta_conf, top2


class Controller:
    """Probe a few branches in rounds; prune those that disagree with the leader of the
    finished pool; stop when the pool's Beta confidence is high; widen while unsure."""

    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.cfg = self.schedule(self.beta)

    def schedule(self, beta):
        b = min(1.0, max(0.0, float(beta)))
        return {"n_init": max(2, round(2 + 4 * b)), "n_max": max(4, round(4 + 60 * b)),
                "conf": round(0.8 + 0.19 * b, 4), "patience": max(2, round(2 + 6 * b))}

    def solve(self, question):
        cfg = self.cfg
        live, pool, off = {}, [], {}

        def open_one():
            got = question.probe_new()
            if got is None:
                return False
            a, slot, fin = got
            if fin:
                pool.append(a)
            else:
                live[slot] = a
                off[slot] = 0
            return True

        for _ in range(cfg["n_init"]):
            if not open_one():
                break
        while live or question.n_opened < cfg["n_max"]:
            leader, c1, c2 = top2(pool)
            if pool and beta_conf(c1, c2) >= cfg["conf"]:
                question.note("stop", pool=len(pool), c1=c1, c2=c2, answer=leader)
                return leader
            for slot in list(live):
                a, fin = question.probe_more(slot)
                if fin:
                    pool.append(a)
                    del live[slot]
                    continue
                live[slot] = a
                off[slot] = off[slot] + 1 if leader is not None and a != leader else 0
                if off[slot] >= cfg["patience"] and len(live) > 1:
                    question.prune(slot)
                    question.note("prune", slot=slot, answer=a, leader=leader)
                    del live[slot]
            if not live and question.n_opened < cfg["n_max"]:
                if not open_one():
                    break
            elif not live:
                break
        leader, _c1, _c2 = top2(pool or list(live.values()))
        question.note("stop", reason="exhausted", pool=len(pool), answer=leader)
        return leader
'''

PROPOSALS = {
    1: "Start simple: read branches until enough of them agree.\n\n```python\n"
    + READ_UNTIL_AGREE + "```\n",
    2: "Probing is cheaper than reading: probe, prune dissenters, stop when confident.\n\n"
    "```python\n" + PROBE_AND_PRUNE + "```\n",
    3: "A variant.\n\n```python\nclass Controller(:\n    pass\n```\n",
}
"""Round -> the scripted reply."""


def scripted_server() -> ThreadingHTTPServer:
    """An OpenAI-compatible ``/v1/chat/completions`` on 127.0.0.1 that answers by round."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            user = body["messages"][-1]["content"]
            match = re.search(r"Round (\d+) of", user)
            text = PROPOSALS.get(int(match.group(1)) if match else 0, "No proposal.")
            prompt = sum(len(m["content"]) for m in body["messages"]) // 4
            out = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": len(text) // 4,
                          "total_tokens": prompt + len(text) // 4},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=None, help="run folder (default: a new temp folder)")
    p.add_argument("--seeds", type=int, default=3, help="shuffle seeds during search")
    p.add_argument("--final-seeds", type=int, default=10, help="seeds of the final numbers")
    p.add_argument("--betas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    args = p.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="discover-")) / "run"
    data_dir = resolve_data_dir()
    models = MODELS
    if not (data_dir / "Qwen3-8B" / "aime24.json").is_file():
        data_dir = Path(tempfile.mkdtemp(prefix="tiny-data-"))
        models = ("tiny-a", "tiny-b")
        print(f"no replay stores configured: using generated tiny stores in {data_dir}")
        for i, m in enumerate(models):
            write_store_json(data_dir / m / "aime24.json", tiny_questions(i, questions=6))
            write_store_json(data_dir / m / "aime25.json", tiny_questions(9 + i))
    server = scripted_server()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    cfg = DiscoveryConfig(
        out=out, rounds=3, llm=LLMConfig(model="scripted", base_url=url), models=models,
        data_dir=str(data_dir), betas=tuple(args.betas), seeds=args.seeds,
        final_seeds=args.final_seeds, finalists=2, finalist_seeds=max(args.seeds, 5),
        heldout_curve_seeds=args.seeds, limits=SandboxLimits(timeout_s=1800),
        resume=args.resume)
    start = time.monotonic()
    try:
        summary = run_discovery(cfg)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: python {sys.argv[0]} --resume --out {out}")
        return 130
    finally:
        server.shutdown()
    total = time.monotonic() - start
    for r in (1, 2, 3):
        rec = json.loads((out / "rounds" / f"round_{r:03d}.json").read_text())
        chars = sum(len(m["content"]) for m in rec["prompt"])
        print(f"round {r}: {rec['status']:8s} prompt {chars:,} characters, sandboxed sweep "
              f"{rec['eval_seconds']} s")
    chosen = summary["chosen"]
    if chosen:
        print(f"chosen: round {chosen['round']} beta={chosen['beta']} (score {chosen['score']})")
    print(f"total {total:.1f} s; report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
