"""How an episode starts: which question, which branch order (shared by the single and the
vector env, so their resets cannot drift apart)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from tts_gym.store import ReplayStore

RESET_OPTIONS = ("question", "shuffle_seed", "order")


def protocol_order(n_branches: int, shuffle_seed: int) -> np.ndarray:
    """The published protocol's branch order: ``random.Random(seed).shuffle(list(range(N)))``."""
    order = list(range(n_branches))
    random.Random(shuffle_seed).shuffle(order)
    return np.asarray(order, dtype=np.int32)


def start_episode(
    store: ReplayStore,
    options: dict[str, Any],
    rng: np.random.Generator,
    order: np.ndarray,
    where: str = "",
) -> int:
    """Choose the question and write the branch order into ``order`` (int32 ``[N]``).

    Args:
        store: The replay store.
        options: ``reset`` options: ``question`` (else drawn from ``rng``), then ``order`` (a
            permutation of the question's branches) or ``shuffle_seed`` (the published
            protocol's ``random.Random(seed).shuffle``), else a permutation drawn from ``rng``.
        rng: The env's ``np_random``.
        order: Filled in place; columns past the question's branch count hold the identity.
        where: Inserted into error messages (e.g. ``" (env 3)"``).

    Returns:
        The question index.

    Raises:
        ValueError: An unknown option key, a question out of range, or a bad ``order``.
    """
    if options:  # autoresets pass none: they skip this check
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(
                f"reset(options=...){where} got unknown key(s) {unknown}; it takes 'question' "
                "and 'shuffle_seed' or 'order'."
            )
    if "question" in options:
        q = int(options["question"])
        if not 0 <= q < store.n_questions:
            raise ValueError(
                f"options['question']={q}{where} is out of range: the store {store.name} has "
                f"{store.n_questions} questions (0...{store.n_questions - 1})."
            )
    else:
        q = int(rng.integers(store.n_questions))
    n = int(store.n_branches[q])
    if n < order.shape[0]:
        order[n:] = np.arange(n, order.shape[0], dtype=np.int32)
    if "order" in options:
        given = np.asarray(options["order"], dtype=np.int32)
        if sorted(given.tolist()) != list(range(n)):
            raise ValueError(
                f"options['order']{where} must be a permutation of range({n}) for question {q}, "
                f"got an array of length {given.shape[0]}."
            )
        order[:n] = given
    elif "shuffle_seed" in options:
        order[:n] = protocol_order(n, int(options["shuffle_seed"]))
    else:
        order[:n] = rng.permutation(n)
    return q
