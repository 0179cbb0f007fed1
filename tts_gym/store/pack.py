"""Intern answer strings and pack validated questions into :class:`ReplayStore` arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from tts_gym.store.store import ReplayStore


def _intern(table: dict[str, int], value: str) -> int:
    got = table.get(value)
    if got is None:
        got = table[value] = len(table)
    return got


def pack_questions(
    data: list[dict[str, Any]], *, model: str, benchmark: str, split: str, source: str, sha256: str
) -> ReplayStore:
    """Pack already-validated questions (see ``validate_store``) into arrays.

    Answer ids are assigned per question in first-appearance order: branch by branch, its probes
    then its final answer; the gold answer gets the next id if no branch produced it.
    """
    n_q = len(data)
    width = max(len(item["each_branch"]) for item in data)
    lmax = max(1, max(len(b[0]) for item in data for b in item["each_branch"]))
    probe_ans = np.full((n_q, width, lmax), -1, dtype=np.int32)
    n_probes = np.zeros((n_q, width), dtype=np.int32)
    tokens = np.zeros((n_q, width), dtype=np.int64)
    final_ans = np.full((n_q, width), -1, dtype=np.int32)
    gold = np.zeros(n_q, dtype=np.int32)
    probe_freq = np.zeros(n_q, dtype=np.int64)
    n_branches = np.zeros(n_q, dtype=np.int32)
    tables: list[tuple[str, ...]] = []
    for q, item in enumerate(data):
        table: dict[str, int] = {}
        for b, (probes, n_tokens, final) in enumerate(item["each_branch"]):
            probe_ans[q, b, : len(probes)] = [_intern(table, p) for p in probes]
            n_probes[q, b] = len(probes)
            tokens[q, b] = n_tokens
            final_ans[q, b] = _intern(table, final)
        gold[q] = _intern(table, item["gold_answer"])
        probe_freq[q] = item["probe_freq"]
        n_branches[q] = len(item["each_branch"])
        tables.append(tuple(table))
    return ReplayStore(
        model=model,
        benchmark=benchmark,
        split=split,
        source=source,
        sha256=sha256,
        probe_ans=probe_ans,
        n_probes=n_probes,
        tokens=tokens,
        final_ans=final_ans,
        gold=gold,
        probe_freq=probe_freq,
        n_branches=n_branches,
        answers=tuple(tables),
        questions=tuple(item["question"] for item in data),
    )
