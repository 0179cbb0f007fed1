"""Branch orders of the published protocol, for all seeds × questions at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tts_gym.env.episode_start import protocol_order
from tts_gym.store import ReplayStore

_CACHE: dict[tuple, np.ndarray] = {}
_CACHE_SIZE = 32


def protocol_orders(store: ReplayStore, seeds: Sequence[int]) -> np.ndarray:
    """int32 ``[S, Q, N]``: ``random.Random(seed).shuffle`` order of each question's branches.

    Columns past a question's own branch count hold the identity (never opened). Results are
    cached per (branch counts, seeds) and returned read-only.
    """
    got = _CACHE.get(_key(store, seeds))
    if got is None:
        got = _build(store, seeds)
        remember_orders(store, seeds, got)
    return got


def remember_orders(store: ReplayStore, seeds: Sequence[int], orders: np.ndarray) -> None:
    """Cache ``orders`` (computed elsewhere, e.g. shipped to a worker) as this store's and seeds'
    protocol orders (made read-only)."""
    if orders.flags.writeable:
        orders.setflags(write=False)
    key = _key(store, seeds)
    if key not in _CACHE and len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = orders


def _key(store: ReplayStore, seeds: Sequence[int]) -> tuple:
    return (store.n_branches.tobytes(), store.width, tuple(int(s) for s in seeds))


def _build(store: ReplayStore, seeds: Sequence[int]) -> np.ndarray:
    width = store.width
    out = np.empty((len(seeds), store.n_questions, width), dtype=np.int32)
    out[:] = np.arange(width, dtype=np.int32)
    by_n: dict[tuple[int, int], np.ndarray] = {}
    for i, s in enumerate(seeds):
        for q in range(store.n_questions):
            n = int(store.n_branches[q])
            key = (n, int(s))
            if key not in by_n:
                by_n[key] = protocol_order(n, int(s))
            out[i, q, :n] = by_n[key]
    return out
