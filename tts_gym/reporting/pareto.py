"""Pareto frontier of (tokens, accuracy) points: fewer tokens and higher accuracy are better."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_mask(tokens: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """bool ``[P]``: True for points no other point dominates.

    A point is dominated when another has no more tokens and no less accuracy, and is strictly
    better in one of the two. Exact duplicates are all kept.

    >>> pareto_mask([100, 200, 150, 300], [50.0, 60.0, 49.0, 60.0]).tolist()
    [True, True, False, False]
    """
    t = np.asarray(tokens, dtype=np.float64)
    a = np.asarray(accuracy, dtype=np.float64)
    if t.shape != a.shape or t.ndim != 1:
        raise ValueError(
            f"tokens and accuracy must be 1-D of equal length, got {t.shape}, {a.shape}."
        )
    keep = np.ones(t.shape[0], dtype=bool)
    for i in range(t.shape[0]):
        better_or_equal = (t <= t[i]) & (a >= a[i])
        strictly = (t < t[i]) | (a > a[i])
        keep[i] = not np.any(better_or_equal & strictly)
    return keep
