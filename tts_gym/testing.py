"""Tiny, deterministic fixture stores for tests, doctests and examples (no data needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tts_gym.store.pack import pack_questions
from tts_gym.store.store import ReplayStore
from tts_gym.store.validate import validate_store


def tiny_questions(
    seed: int = 0,
    questions: int = 3,
    branches: int = 8,
    max_probes: int = 6,
    probe_freq: int = 100,
    answers: int = 4,
) -> list[dict[str, Any]]:
    """Questions in the AutoTTS JSON layout, drawn from ``np.random.default_rng(seed)``.

    Probe counts range over 0..max_probes (0 is legal) and token counts are drawn both below and
    above ``L · probe_freq`` so both charging branches of the replay semantics are exercised.
    """
    rng = np.random.default_rng(seed)
    out = []
    for q in range(questions):
        labels = [str(10 * q + a) for a in range(answers)] + ["ERR"]
        each = []
        for _ in range(branches):
            n = int(rng.integers(0, max_probes + 1))
            final = labels[int(rng.integers(0, len(labels)))]
            probes = [labels[int(rng.integers(0, len(labels)))] for _ in range(max(0, n - 1))]
            if n:
                probes.append(final)
            tokens = int(rng.integers(0, (max_probes + 2) * probe_freq))
            each.append([probes, tokens, final])
        out.append(
            {
                "question": f"tiny question {q}",
                "gold_answer": labels[0],
                "probe_freq": probe_freq,
                "each_branch": each,
                "final_answers_trace": [b[2] for b in each],
            }
        )
    return out


def tiny_store(seed: int = 0, **kwargs: Any) -> ReplayStore:
    """A packed fixture store (model ``"tiny"``, benchmark ``"aime24"``, search split)."""
    data = tiny_questions(seed, **kwargs)
    validate_store("<tiny>", data)
    return pack_questions(
        data,
        model="tiny",
        benchmark="aime24",
        split="search",
        source="tts_gym.testing.tiny_store",
        sha256=f"tiny-{seed}-{kwargs}",
    )


def write_store_json(path: str | Path, data: list[dict[str, Any]]) -> Path:
    """Write questions as a store JSON file (creating parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def distinct_label_questions(seed: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`tiny_questions` whose answer labels are distinctive random strings
    (``ans-`` and 12 hex digits, unique across every call with another ``seed``), gold or not
    alike; ``ERR`` stays as the noise answer. A plain substring search of any text then finds
    every answer that leaked into it (the gold-leak tests)."""
    rng = np.random.default_rng([seed, 0x90_1D])
    out = []
    for q, item in enumerate(tiny_questions(seed, **kwargs)):
        names: dict[str, str] = {"ERR": "ERR"}

        def label(text: str, names: dict[str, str] = names, q: int = q) -> str:
            if text not in names:
                names[text] = f"ans-{seed:x}{q:x}-{rng.bytes(6).hex()}"
            return names[text]

        out.append({
            **item,
            "gold_answer": label(item["gold_answer"]),
            "each_branch": [[[label(p) for p in probes], tokens, label(final)]
                            for probes, tokens, final in item["each_branch"]],
            "final_answers_trace": [label(f) for f in item["final_answers_trace"]],
        })
    return out
