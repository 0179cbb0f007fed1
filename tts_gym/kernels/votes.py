"""Vote statistics over answer ids, as numba kernels and exact float tables.

``majority`` and ``top2`` follow the AutoTTS reference: the highest count wins; ties go to
the answer whose FIRST occurrence in the list comes earliest. ``beta_conf(c1, c2) = 1 -
BetaCDF(0.5; c1 + 1, c2 + 1)`` is read from a table built once with scipy (the published numbers
were made with ``scipy.stats.beta.cdf``), so kernels and Python agree to the last bit; the table
lives in :mod:`tts_gym.beta_table`, which the candidate API also reads.
"""

from __future__ import annotations

from numba import njit

from tts_gym.beta_table import beta_conf_table
from tts_gym.candidate import majority as majority_py_
from tts_gym.candidate import top2 as top2_py_


def beta_conf(c1: int, c2: int) -> float:
    """Posterior probability that the leader (count c1) is the true majority vs c2; 0 for c1=0."""
    if c1 <= 0:
        return 0.0
    return float(beta_conf_table(max(c1, c2))[c1, c2])


majority_py = majority_py_
"""Python majority with the first-occurrence tie rule (None for an empty list): the candidate
API's :func:`tts_gym.candidate.majority`, so built-ins and candidates share one copy."""

top2_py = top2_py_
"""Python ``(winner, c1, c2)`` (:func:`tts_gym.candidate.top2`)."""


@njit(cache=True)
def majority(ids, n, counts):
    """Majority of ``ids[:n]`` (int32 answer ids >= 0); -1 if n == 0.

    ``counts`` is an int64 scratch array longer than the largest id, all zeros on entry and on
    exit.
    """
    if n == 0:
        return -1
    for i in range(n):
        counts[ids[i]] += 1
    best = -1
    best_c = 0
    for i in range(n):
        c = counts[ids[i]]
        if c > best_c:
            best_c = c
            best = ids[i]
    for i in range(n):
        counts[ids[i]] = 0
    return best


@njit(cache=True)
def top2(ids, n, counts):
    """``(winner, c1, c2)`` over ``ids[:n]``; winner -1 and counts 0 for an empty list.

    ``counts`` as in :func:`majority`.
    """
    if n == 0:
        return -1, 0, 0
    for i in range(n):
        counts[ids[i]] += 1
    best = -1
    best_c = 0
    for i in range(n):
        c = counts[ids[i]]
        if c > best_c:
            best_c = c
            best = ids[i]
    second = 0
    for i in range(n):
        a = ids[i]
        if a != best and counts[a] > second:
            second = counts[a]
    for i in range(n):
        counts[ids[i]] = 0
    return best, best_c, second
