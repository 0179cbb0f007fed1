"""``tts-gym inspect``: a summary of one replay store."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from tts_gym.cli.common import add_store_args
from tts_gym.store import ReplayStore, load_store


def store_summary(store: ReplayStore) -> dict[str, Any]:
    """Headline statistics of a store (JSON-serialisable)."""
    valid = np.arange(store.width)[None, :] < store.n_branches[:, None]
    correct = (store.final_ans == store.gold[:, None]) & valid
    probes = store.n_probes[valid]
    tokens = store.tokens[valid]
    distinct = [len(t) for t in store.answers]
    hist_edges = [0, 5, 10, 20, 40, 60, 80, max(81, int(probes.max()) + 1)]
    hist, _ = np.histogram(probes, bins=hist_edges)
    return {
        "store": store.name,
        "split": store.split,
        "source": store.source,
        "questions": store.n_questions,
        "branches": int(store.n_branches.sum()),
        "branches_per_question": sorted(set(store.n_branches.tolist())),
        "probe_interval_tokens": sorted(set(store.probe_freq.tolist())),
        "pass_at_1": round(100.0 * float(correct.sum() / valid.sum()), 2),
        "questions_solved_by_some_branch": int(correct.any(axis=1).sum()),
        "mean_tokens": round(float(tokens.mean()), 1),
        "max_tokens": int(tokens.max()),
        "probes_min": int(probes.min()),
        "probes_mean": round(float(probes.mean()), 2),
        "probes_max": int(probes.max()),
        "probe_count_histogram": {
            f"{lo}-{hi - 1}": int(c)
            for lo, hi, c in zip(hist_edges[:-1], hist_edges[1:], hist, strict=True)
        },
        "distinct_answers_mean": round(float(np.mean(distinct)), 1),
        "distinct_answers_max": int(max(distinct)),
    }


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` sub-command."""
    p = sub.add_parser("inspect", help="summarise a replay store")
    add_store_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary (and, for a store ``tts-gym collect`` wrote, how it was made)."""
    from tts_gym.collect.meta import describe, read_meta, warn_if_inexact
    from tts_gym.paths import store_path

    summary = store_summary(load_store(args.model, args.benchmark, args.data_dir))
    warn_if_inexact(args.model, args.benchmark, args.data_dir)
    meta = read_meta(store_path(args.model, args.benchmark, args.data_dir))
    if args.json:
        print(json.dumps({**summary, "collection": meta} if meta else summary))
        return 0
    shown = {**summary, **describe(meta)} if meta else summary
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        print(f"{key:<{width}}  {value}")
    return 0
