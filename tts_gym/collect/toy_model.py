"""The toy "reasoning model" behind ``tts-gym toy-server`` and the collect tests: a tokenizer and
a deterministic model whose trajectories and per-prefix answers are known in advance.

A trajectory is a pure function of (prompt text, seed, max_tokens) and is built from an explicit
:class:`Plan` (its thinking tokens, the positions where a "guess [X]" marker completes, the final
answer); a probe answers the last complete marker of the prefix it is shown. So the store a
correct collector must produce can be computed directly from the plans, answer for answer and
token for token. A problem chooses its answers with a tag ``[toy a;b | c]`` (class 0, here ``a``
or its equivalent form ``b``, is gold); without a tag the answers are 42 (gold) and 7.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

# --- the toy tokenizer --------------------------------------------------------------------------

SPECIALS = (
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>",
    "<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
)
MERGES = ("guess ", "hmm ", "wait ", "so ", "\\boxed{", "\\frac{", "The answer is ", "...")
CHAR_BASE = 1000
EOS_TEXT = "<|im_end|>"


class ToyTokenizer:
    """Greedy longest-match over a few pieces, else one token per character (``1000 + ord``).

    Like a real BPE tokenizer, many id sequences decode to the same text (``"guess "`` is one
    token or six), so re-tokenising a generated text does not always give back its ids.
    """

    def __init__(self) -> None:
        self.pieces = SPECIALS + MERGES
        self.ids = {p: i for i, p in enumerate(self.pieces)}
        self.by_length = sorted(self.pieces, key=len, reverse=True)
        self.eos = self.ids[EOS_TEXT]

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        out, i = [], 0
        while i < len(text):
            for p in self.by_length:
                if text.startswith(p, i):
                    out.append(self.ids[p])
                    i += len(p)
                    break
            else:
                out.append(CHAR_BASE + ord(text[i]))
                i += 1
        return out

    def piece(self, token: int) -> str:
        """The text of one token."""
        return self.pieces[token] if token < CHAR_BASE else chr(token - CHAR_BASE)

    def decode(self, ids: list[int], skip_eos: bool = False) -> str:
        """Text of ``ids`` (EOS tokens dropped when ``skip_eos``, as vLLM's output text does)."""
        return "".join(self.piece(t) for t in ids if not (skip_eos and t == self.eos))

    def chars(self, text: str) -> list[int]:
        """``text`` one token per character (a non-canonical tokenisation)."""
        return [CHAR_BASE + ord(c) for c in text]


TOK = ToyTokenizer()

# --- the toy model ------------------------------------------------------------------------------

TOY_TAG = re.compile(r"\[toy ([^\]]*)\]")
MARKER = re.compile(r"guess \[([^\]]*)\]")
PROBE_END = "\\boxed{"
NO_GUESS = "?"


def classes_of(prompt_text: str) -> list[list[str]]:
    """Answer classes written in the problem as ``[toy a;b;c | d | e;f]`` (class 0 is gold)."""
    m = TOY_TAG.search(prompt_text)
    if m is None:
        return [["42"], ["7"]]
    return [[f.strip() for f in group.split(";")] for group in m.group(1).split("|")]


@dataclass
class Plan:
    """A trajectory the toy model will generate, with everything a reference store needs.

    Attributes:
        ids: Generated token ids (EOS included when it stops).
        thinking: Tokens before ``</think>`` (all of them if truncated).
        markers: ``(end, form)``: after ``end`` generated tokens the marker ``guess [form]`` is
            complete.
        truncated: True when the trajectory hit ``max_tokens``.
        final: The ``\\boxed{}`` content of the answer part, or None (no box written).
    """

    ids: list[int]
    thinking: int
    markers: list[tuple[int, str]]
    truncated: bool
    final: str | None

    def belief(self, p: int) -> str:
        """What a probe after ``p`` generated tokens answers."""
        got = NO_GUESS
        for end, form in self.markers:
            if end <= p:
                got = form
        return got


class ToyModel:
    """Deterministic "reasoning model" over :data:`TOK`.

    Args:
        think_range: Range of thinking lengths in tokens (inclusive).
        interval_hint: Marker ends are pulled onto k·hint - 1, k·hint, k·hint + 1 now and then,
            so a collector cutting one token off shows up as a wrong answer.
        p_no_box: Chance that the answer part writes no ``\\boxed{}``.
        p_no_think_end: Chance that the model never closes its thinking (runs to the budget).
    """

    def __init__(self, think_range: tuple[int, int] = (5, 140), interval_hint: int = 16,
                 p_no_box: float = 0.15, p_no_think_end: float = 0.1) -> None:
        self.think_range = think_range
        self.hint = interval_hint
        self.p_no_box = p_no_box
        self.p_no_think_end = p_no_think_end

    def plan(self, prompt_text: str, seed: int, max_tokens: int) -> Plan:
        """The trajectory sampled for ``prompt_text`` with ``seed`` under ``max_tokens``."""
        key = hashlib.sha256(f"{seed}\0{prompt_text}".encode()).digest()
        rng = random.Random(key)
        classes = classes_of(prompt_text)
        target = rng.randint(*self.think_range)
        ids: list[int] = []
        markers: list[tuple[int, str]] = []
        while len(ids) < target:
            if rng.random() < 0.35:
                form = rng.choice(rng.choice(classes))
                marker = self._marker(rng, form)
                want = self.hint * rng.randint(1, 9) + rng.choice((-1, 0, 1))
                gap = want - len(ids) - len(marker)
                if rng.random() < 0.5 and 0 <= gap < 40:
                    ids += self._filler(rng, gap)
                ids += marker
                markers.append((len(ids), form))  # complete once its "]" is generated
                ids += TOK.chars(" ")
            else:
                ids += self._filler(rng, rng.randint(1, 6))
        never_ends = rng.random() < self.p_no_think_end
        thinking = len(ids)
        answer_form = rng.choice(rng.choice(classes))
        boxed = rng.random() >= self.p_no_box
        tail = "\n\nThe answer is " + (f"\\boxed{{{answer_form}}}" if boxed else answer_form) + "."
        if never_ends:
            ids += self._filler(rng, max_tokens)
        else:
            ids += [TOK.ids["</think>"]] + TOK.encode(tail) + [TOK.eos]
        truncated = len(ids) > max_tokens
        if truncated:
            ids = ids[:max_tokens]
            thinking = min(thinking, max_tokens) if not never_ends else max_tokens
        markers = [(end, f) for end, f in markers if end <= len(ids)]
        final = answer_form if boxed and not truncated and not never_ends else None
        return Plan(ids, thinking if not never_ends else len(ids), markers, truncated, final)

    @staticmethod
    def _marker(rng: random.Random, form: str) -> list[int]:
        head = [TOK.ids["guess "]] if rng.random() < 0.5 else TOK.chars("guess ")
        return head + TOK.chars("[") + TOK.encode(form) + TOK.chars("]")

    @staticmethod
    def _filler(rng: random.Random, n: int) -> list[int]:
        words = [TOK.ids["hmm "], TOK.ids["wait "], TOK.ids["so "], CHAR_BASE + ord("x"),
                 CHAR_BASE + ord(" "), CHAR_BASE + ord("1")]
        return [rng.choice(words) for _ in range(n)]

    def answer(self, prefix_text: str, max_tokens: int) -> tuple[list[int], str]:
        """Greedy continuation of a prompt ending with ``\\boxed{``: the last complete guess."""
        guesses = MARKER.findall(prefix_text)
        belief = guesses[-1] if guesses else NO_GUESS
        text = belief + "} \\]\n\nSo that is the answer." + " Let me check it." * max_tokens
        ids = TOK.encode(text)[:max_tokens]
        return ids, "length"

    def complete(self, prompt_ids: list[int], seed: int, max_tokens: int
                 ) -> tuple[list[int], str]:
        """``(generated ids, finish_reason)`` for a prompt."""
        text = TOK.decode(prompt_ids)
        if text.endswith(PROBE_END):
            return self.answer(text, max_tokens)
        plan = self.plan(text, seed, max_tokens)
        return plan.ids, ("length" if plan.truncated else "stop")


TOY_PROBLEMS: tuple[dict[str, str], ...] = (
    {"id": "toy-half", "problem": "Half of one. [toy \\frac{1}{2};0.5;1/2 | 7 | 11;11.0]",
     "answer": "\\frac{1}{2}"},
    {"id": "toy-root", "problem": "A root. [toy 2\\sqrt{2};\\sqrt{8} | 3;3.0 | 5]",
     "answer": "2\\sqrt{2}"},
    {"id": "toy-sum", "problem": "A sum. [toy 42 | 24 | 7;7.0]", "answer": "42"},
    {"id": "toy-hard", "problem": "A hard one. [toy 13 | 31;31.0 | 3 | 1 | 103]", "answer": "13"},
    {"id": "toy-pick", "problem": "Pick one. [toy B;(B) | A | C]", "answer": "B"},
    {"id": "toy-count", "problem": "Count them. [toy 120 | 119 | 121 | 60]", "answer": "120"},
)
"""A problem file for the toy model: equivalent forms of one answer (math-verify merges them),
easy and hard questions (the wrong classes outnumber the gold one in ``toy-hard``)."""


def write_toy_problems(path: str | Path) -> Path:
    """Write :data:`TOY_PROBLEMS` as JSON lines (``id``, ``problem``, ``answer``) to ``path``."""
    path = Path(path)
    path.write_text("".join(json.dumps(p) + "\n" for p in TOY_PROBLEMS), encoding="utf-8")
    return path
