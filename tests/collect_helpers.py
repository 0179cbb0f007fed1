"""Shared pieces of the ``tts-gym collect`` tests: toy problems and the reference store.

The reference store is computed directly from the toy model's plans (tests/fake_vllm_server.py),
with the protocol written out here in plain Python, and the answer classes the toy problems
declare (``[toy a;b | c]``), not with the collector's code or math-verify:

* probes after k·Δ generated tokens for every k·Δ < t (t = thinking tokens), then the final
  answer as the last probe;
* the final answer is the boxed answer of a finished trajectory, else the probe at t;
* labels: the gold class is the gold string; any other class is its most frequent form in the
  store (probe lists and final answers), ties to the shorter then the smaller string.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.fake_vllm_server import NO_GUESS, ToyModel, classes_of
from tts_gym.collect.templates import BUILTIN

MODEL = "toy/Toy-1B"
STORE_MODEL = "Toy-1B"

PROBLEMS: list[dict[str, str]] = [
    {"id": "half", "problem": "Half of one. [toy \\frac{1}{2};0.5;1/2;\\dfrac12 | 7 | 11;11.0]",
     "answer": "\\frac{1}{2}"},
    {"id": "root", "problem": "A root. [toy 2\\sqrt{2};\\sqrt{8} | 3;3.0 | x=5]",
     "answer": "2\\sqrt{2}"},
    {"id": "pick", "problem": "Pick one. [toy B;(B);\\textbf{B} | A | C]", "answer": "B"},
    {"id": "say", "problem": "Say it. [toy Yes;yes;\\text{Yes} | No;no]", "answer": "Yes"},
]

ARGS = {"branches": 6, "interval": 16, "max_tokens": 120, "probe_max_tokens": 12, "seed": 3}


def write_problems(path: Path, problems: list[dict[str, str]] = PROBLEMS) -> Path:
    """Write a JSONL problem file."""
    path.write_text("".join(json.dumps(p) + "\n" for p in problems), encoding="utf-8")
    return path


def cli_args(problems: Path, urls: list[str], out: Path, **over: Any) -> list[str]:
    """``tts-gym collect`` arguments for the toy run (fast retries)."""
    args = {**ARGS, "retry_backoff": 0.01, "retries": 4, **over}
    argv = ["collect", str(problems), "--model-name", MODEL, "--out", str(out)]
    for url in urls:
        argv += ["--base-url", url]
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


def seed_of(seed: int, qid: str, b: int) -> int:
    """The documented branch seed: sha256("seed/id/branch"), first 8 bytes, mod 2**31 - 1."""
    digest = hashlib.sha256(f"{seed}/{qid}/{b}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1)


def expected_store(toy: ToyModel, problems: list[dict[str, str]] = PROBLEMS,
                   template: str = "qwen3", **over: Any) -> list[dict[str, Any]]:
    """The store a correct collector writes, from the toy's plans."""
    a = {**ARGS, **over}
    text, _ = BUILTIN[template]
    out = []
    for prob in problems:
        prompt = text.replace("{problem}", prob["problem"])
        raw_branches = []
        for b in range(a["branches"]):
            plan = toy.plan(prompt, seed_of(a["seed"], prob["id"], b), a["max_tokens"])
            t = plan.thinking
            probes = [plan.belief(p) for p in range(a["interval"], t, a["interval"])]
            final = plan.final if plan.final is not None else plan.belief(t)
            raw_branches.append((probes + [final], len(plan.ids), final))
        classes = classes_of(prompt)
        cls = {form: i for i, group in enumerate(classes) for form in group}
        counts: Counter[str] = Counter()
        for probes, _, final in raw_branches:
            counts.update(probes)
            counts[final] += 1
        label: dict[str, str] = {}
        for i, group in enumerate(classes):
            seen = [f for f in group if counts[f]]
            if not seen:
                continue
            rep = prob["answer"] if i == 0 else min(seen, key=lambda s: (-counts[s], len(s), s))
            label.update({f: rep for f in group})
        label[NO_GUESS] = NO_GUESS
        assert all(k in cls or k == NO_GUESS for k in counts)
        each = [[[label[p] for p in probes], tokens, label[final]]
                for probes, tokens, final in raw_branches]
        out.append({
            "question": prob["problem"],
            "gold_answer": prob["answer"],
            "probe_freq": a["interval"],
            "each_branch": each,
            "final_answers_trace": [e[2] for e in each],
        })
    return out


def store_path(out: Path, benchmark: str = "toy") -> Path:
    """Where the toy store lands."""
    return out / STORE_MODEL / f"{benchmark}.json"


def read_store(out: Path, benchmark: str = "toy") -> list[dict[str, Any]]:
    """The collected store as JSON."""
    return json.loads(store_path(out, benchmark).read_text(encoding="utf-8"))
