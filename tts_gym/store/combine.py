"""Several stores as one: questions concatenated (for batching episodes of many stores)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tts_gym.store.store import ReplayStore


def concat_stores(stores: Sequence[ReplayStore]) -> ReplayStore:
    """One store holding the questions of ``stores`` in order (question ``q`` of the k-th store
    becomes ``sum of earlier question counts + q``).

    Widths and probe counts are padded (-1 answers, 0 tokens) to the largest; each question
    keeps its own branch count and probe interval, so episodes, orders and charges are those
    of the original store. Model and benchmark are joined with ``+``.
    """
    if len(stores) == 1:
        return stores[0]
    width = max(s.width for s in stores)
    lmax = max(s.max_probes for s in stores)
    n_q = sum(s.n_questions for s in stores)
    probe_ans = np.full((n_q, width, lmax), -1, np.int32)
    n_probes = np.zeros((n_q, width), np.int32)
    tokens = np.zeros((n_q, width), np.int64)
    final_ans = np.full((n_q, width), -1, np.int32)
    q0 = 0
    for s in stores:
        sl = slice(q0, q0 + s.n_questions)
        probe_ans[sl, : s.width, : s.max_probes] = s.probe_ans
        n_probes[sl, : s.width] = s.n_probes
        tokens[sl, : s.width] = s.tokens
        final_ans[sl, : s.width] = s.final_ans
        q0 += s.n_questions
    digest = hashlib.sha256("+".join(s.sha256 for s in stores).encode()).hexdigest()
    return ReplayStore(
        model="+".join(s.model for s in stores),
        benchmark="+".join(s.benchmark for s in stores),
        split="+".join(sorted({s.split for s in stores})),
        source="+".join(s.source for s in stores),
        sha256=digest,
        probe_ans=probe_ans,
        n_probes=n_probes,
        tokens=tokens,
        final_ans=final_ans,
        gold=np.concatenate([s.gold for s in stores]),
        probe_freq=np.concatenate([s.probe_freq for s in stores]),
        n_branches=np.concatenate([s.n_branches for s in stores]),
        answers=tuple(t for s in stores for t in s.answers),
        questions=tuple(t for s in stores for t in (s.questions or ("",) * s.n_questions)),
    )
