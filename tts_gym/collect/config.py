"""What a collection is: the settings that decide its data, and how a resume checks them."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

DEFAULT_PROBE_SUFFIX = (
    "... Oh, I suddenly got the answer to the whole problem, **Final Answer**\n\n\\[ \\boxed{"
)
"""Dynasor's probe suffix (Certaindex), the one used by Parallel-Probe."""

TOKEN_MODES: tuple[str, ...] = ("ids", "tokenize", "text")
"""``ids``: exact (the server returns generated token ids and takes token-id prompts);
``tokenize``: generated text re-tokenised by the server's ``/tokenize``; ``text``: character
cuts at the server's logprob text offsets, else at the mean characters per token. ``auto``
picks ``ids`` only; the two inexact modes must be asked for and their store records a measured
exactness figure."""


@dataclass(frozen=True)
class CollectConfig:
    """Every setting that changes the collected data. Saved with the run; a resume must match.

    Attributes:
        problems_sha256: Digest of the problem file's bytes.
        fields: ``(id, problem, answer)`` field names of the problem file.
        model_name: The model as the server knows it (``--model-name``).
        template: Template name (``qwen3``, ``deepseek-r1``, ``raw``, ``file:<name>``).
        template_text: The template itself.
        think_end: End-of-thinking marker ("" = none).
        branches: Trajectories per question N.
        interval: Probe interval Δ in generated tokens.
        max_tokens: Generation budget per trajectory (generated tokens).
        temperature: Sampling temperature of the trajectories.
        top_p: Nucleus sampling of the trajectories.
        probe_suffix: Text appended to a prefix to ask for the answer.
        probe_max_tokens: Tokens a probe may generate (greedy).
        seed: Run seed; branch seeds derive from it.
        token_mode: ``ids``, ``tokenize`` or ``text`` (resolved; see :data:`TOKEN_MODES`).
        store_model: Folder name of the store (``--store-model``).
        benchmark: File stem of the store (``--benchmark``).
        split: ``heldout`` or ``search`` (written to the metadata).
        top_k: Top-k of the trajectories (0: off).
        min_p: Min-p of the trajectories (0: off).
        repetition_penalty: Repetition penalty of the trajectories (1: off).

    Fields with defaults came after the first release: a saved run without them had the same
    values (they were not sent then, and are sent as "off" now), so it resumes.
    """

    problems_sha256: str
    fields: tuple[str, str, str]
    model_name: str
    template: str
    template_text: str
    think_end: str
    branches: int
    interval: int
    max_tokens: int
    temperature: float
    top_p: float
    probe_suffix: str
    probe_max_tokens: int
    seed: int
    token_mode: str
    store_model: str
    benchmark: str
    split: str
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form (lists for tuples)."""
        out = asdict(self)
        out["fields"] = list(self.fields)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectConfig:
        """Inverse of :meth:`to_dict`; raises KeyError/TypeError on a foreign layout."""
        values = {f.name: data[f.name] for f in fields(cls)
                  if f.name in data or f.default is MISSING}
        values["fields"] = tuple(values["fields"])
        return cls(**values)


FLAG: dict[str, str] = {
    "problems_sha256": "the problem file's content",
    "fields": "--id-field/--problem-field/--answer-field",
    "model_name": "--model-name",
    "template": "--template",
    "template_text": "the template's text",
    "think_end": "--think-end",
    "branches": "--branches",
    "interval": "--interval",
    "max_tokens": "--max-tokens",
    "temperature": "--temperature",
    "top_p": "--top-p",
    "probe_suffix": "--probe-suffix",
    "probe_max_tokens": "--probe-max-tokens",
    "seed": "--seed",
    "token_mode": "--token-mode",
    "store_model": "--store-model",
    "benchmark": "--benchmark",
    "split": "--split",
    "top_k": "--top-k",
    "min_p": "--min-p",
    "repetition_penalty": "--repetition-penalty",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def differences(saved: CollectConfig, now: CollectConfig) -> list[str]:
    """Human-readable differences, e.g. ``"--temperature: saved 0.7, now 0.6"``.

    >>> a = CollectConfig("x", ("id", "problem", "answer"), "m", "qwen3", "t", "</think>", 8,
    ...                   500, 100, 0.7, 0.95, "s", 32, 0, "ids", "m", "b", "heldout")
    >>> import dataclasses
    >>> differences(a, dataclasses.replace(a, temperature=0.6, branches=16))
    ['--branches: saved 8, now 16', '--temperature: saved 0.7, now 0.6']
    """
    out = []
    for f in fields(CollectConfig):
        a, b = getattr(saved, f.name), getattr(now, f.name)
        if a != b:
            if f.name in ("problems_sha256", "template_text"):
                out.append(f"{FLAG[f.name]} changed")
            else:
                out.append(f"{FLAG[f.name]}: saved {_short(a)}, now {_short(b)}")
    return out
