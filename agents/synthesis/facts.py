"""Facts about the search stores that a controller designer needs, computed once per run.

Shown in every prompt (issue "discovery that an LLM can steer"): the probe interval, the scale
of branch lengths (tokens and probe counts) per store, how often a single branch is right
(pass@1) and how often the majority of all 128 branches is, the noise answers that appear and
how much accuracy one episode is worth at the search seed count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tts_gym.store import ReplayStore

NOISE_LEGEND = {
    "ERR": "the model's output had no parsable answer at that point",
    "?": "the probe produced no answer",
    "No": "a non-answer word the probe returned",
    "[Boxed Answer]": "the template placeholder, copied instead of an answer",
}


def winnable(store: ReplayStore) -> np.ndarray:
    """bool ``[Q]``: some branch's final answer is the gold answer."""
    return np.array([bool(np.any(store.final_ans[q, : store.n_branches[q]] == store.gold[q]))
                     for q in range(store.n_questions)])


def store_facts(store: ReplayStore) -> dict[str, Any]:
    """Figures of one store (tokens and probe counts over all branches)."""
    mask = np.arange(store.width)[None, :] < store.n_branches[:, None]
    tokens = store.tokens[mask]
    probes = store.n_probes[mask]
    pass1 = float(np.mean([np.mean(store.final_ans[q, : store.n_branches[q]] == store.gold[q])
                           for q in range(store.n_questions)]))
    maj = store.majority_final
    noise = {}
    for q in range(store.n_questions):
        for a, text in enumerate(store.answers[q]):
            if text in NOISE_LEGEND:
                noise[text] = noise.get(text, 0) + int(np.sum(store.final_ans[q] == a))
    return {
        "questions": store.n_questions,
        "branches": int(store.n_branches.max()),
        "probe_interval": int(np.median(store.probe_freq)),
        "tokens_p10_p50_p90": [int(np.percentile(tokens, p)) for p in (10, 50, 90)],
        "probes_p10_p50_p90": [int(np.percentile(probes, p)) for p in (10, 50, 90)],
        "pass_at_1": round(100 * pass1, 1),
        "majority_right": int(np.sum(maj == store.gold)),
        "winnable": int(np.sum(winnable(store))),
        "noise_final_answers": noise,
    }


def facts_text(stores: Mapping[str, ReplayStore], seeds: int) -> str:
    """The facts block of the prompt."""
    rows = ["| store | probe interval | branch tokens p10/p50/p90 | probes per branch p10/p50/p90 "
            "| pass@1 % | questions whose 128-branch majority is right | with a right branch |",
            "|---|---|---|---|---|---|---|"]
    noise: dict[str, int] = {}
    n_q = 0
    for key, store in stores.items():
        f = store_facts(store)
        n_q += f["questions"]
        for k, v in f["noise_final_answers"].items():
            noise[k] = noise.get(k, 0) + v
        t, p = f["tokens_p10_p50_p90"], f["probes_p10_p50_p90"]
        rows.append(f"| {key} | {f['probe_interval']} | {t[0]}/{t[1]}/{t[2]} | "
                    f"{p[0]}/{p[1]}/{p[2]} | {f['pass_at_1']} | {f['majority_right']}/"
                    f"{f['questions']} | {f['winnable']}/{f['questions']} |")
    per_store = 100.0 / (seeds * (n_q // max(1, len(stores))))
    legend = "; ".join(f"{k!r} ({noise[k]} final answers): {NOISE_LEGEND[k]}"
                       for k in NOISE_LEGEND if noise.get(k))
    lines = [
        "Facts about the search stores (all branches):",
        *rows,
        f"One episode at {seeds} seeds moves a store's accuracy by {per_store:.2f} points and the "
        f"mean over the {len(stores)} stores by {per_store / len(stores):.2f}.",
        "A question whose 128-branch majority is wrong and that no branch gets right cannot be "
        "won by any controller.",
        "Costs: probe_new and probe_more charge one probe interval each (a branch that ends "
        "earlier is charged what it generated); full_read charges the branch's whole length; "
        "prune and reading an answer are free.",
    ]
    if legend:
        lines.append(f"Noise answers: {legend}.")
    return "\n".join(lines)
