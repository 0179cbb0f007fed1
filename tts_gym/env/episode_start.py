"""How an episode starts: which question, which branch order (shared by the single and the
vector env, so their resets cannot drift apart).

:func:`start_episode` is the rule (options, else draws from the env's ``np_random``).
:func:`draw_episodes` makes the same draws for many envs in one jitted call (the vector env's
autoresets): numba's ``Generator`` support calls each env's own bit generator, and the code
below repeats NumPy's algorithms for ``Generator.integers(Q)`` and ``Generator.permutation(n)``
(Fisher-Yates from the top with NumPy's masked-rejection ``random_interval``), so the questions,
the orders and the generators' states afterwards are bit-identical to ``start_episode``'s
(tests/test_vector_env.py checks it on ragged stores).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from numba import njit, typed
from numba.np.random.random_methods import random_interval

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


def generator_list(rngs: Sequence[np.random.Generator]) -> typed.List:
    """The generators as a numba typed list for :func:`draw_episodes` (each is unboxed once,
    here, ~20 µs each: passing a tuple of generators instead would unbox all of them on every
    call). The list shares the generators' states: draws in either advance both."""
    out = typed.List()
    for rng in rngs:
        out.append(rng)
    return out


@njit(cache=True)
def draw_episodes(rngs, which, n_branches, qs, orders):
    """:func:`start_episode` without options, for every env ``i`` with ``which[i]``.

    Args:
        rngs: typed list of N ``numpy.random.Generator`` (:func:`generator_list`); env i draws
            from ``rngs[i]`` only, in the order ``start_episode`` draws.
        which: bool ``[N]``, the envs that start an episode.
        n_branches: int32 ``[Q]``, branches per question.
        qs: int64 ``[N]``, set to the drawn question where ``which``.
        orders: int32 ``[N, W]``, row i set to the drawn order where ``which`` (columns past
            the question's branch count hold the identity).
    """
    n_questions = n_branches.shape[0]
    width = orders.shape[1]
    for i in range(which.shape[0]):
        if not which[i]:
            continue
        rng = rngs[i]
        q = rng.integers(0, n_questions)  # = Generator.integers(Q): Lemire on 32 bits
        row = orders[i]
        for k in range(width):
            row[k] = k
        # Generator.permutation(n) = arange(n) shuffled by NumPy's _shuffle_raw
        bitgen = rng.bit_generator
        for k in range(n_branches[q] - 1, 0, -1):
            j = np.int64(random_interval(bitgen, k))
            t = row[k]
            row[k] = row[j]
            row[j] = t
        qs[i] = q
