"""What the built-ins share around their kernels: the slot ceiling their budget knobs are
checked against, and the arrays a ``batch_solve`` hands its kernel."""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_SLOTS = 64
"""The env's slot ceiling on the handle path (the paper's 64 branches): the largest budget knob
(``n``, ``max_samples``, ``num_chains``) a built-in accepts."""


def batch_outputs(store: Any, orders: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays a batch kernel writes into.

    Args:
        store: The :class:`~tts_gym.store.ReplayStore` played.
        orders: int32 ``[S, Q, N]`` protocol orders.

    Returns:
        ``(answers, tokens, counts)``: int32 ``[S, Q]`` and int64 ``[S, Q]`` (unset, the kernel
        writes every entry), and int64 zero scratch ``[A + 1]`` for the vote kernels (``A`` =
        ``store.max_answers``).
    """
    n_s, n_q = orders.shape[0], orders.shape[1]
    return (
        np.empty((n_s, n_q), np.int32),
        np.empty((n_s, n_q), np.int64),
        np.zeros(store.max_answers + 1, np.int64),
    )
