"""The beta_conf table is bit-identical to scipy's scalar calls, which made the published numbers.

beta_conf(c1, c2) = 1 - BetaCDF(0.5; c1 + 1, c2 + 1) (the AutoTTS reference); for integer
counts it equals P(X <= c1) with X ~ Binomial(c1 + c2 + 1, 1/2). ASC stops on ``> 0.95``, CMC on
``>= conf_thresh``; both decisions must come out the same from the table as from scipy.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy.stats import beta as beta_dist

from agents.controllers.cmc import schedule
from tts_gym.kernels.votes import beta_conf, beta_conf_table

M = 128  # counts 0..128


@pytest.fixture(scope="module")
def scalar() -> np.ndarray:
    """float64 ``[M+1, M+1]`` of one scalar scipy call per (c1, c2), as the published code did."""
    out = np.empty((M + 1, M + 1))
    for c1 in range(M + 1):
        for c2 in range(M + 1):
            out[c1, c2] = 1 - beta_dist.cdf(0.5, c1 + 1, c2 + 1)
    return out


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    t = beta_conf_table(M)
    assert t.shape[0] >= M + 1 and t.shape[1] >= M + 1 and t.dtype == np.float64
    return t[: M + 1, : M + 1]


def test_table_is_bit_identical_to_scalar_scipy(table, scalar):
    # c1 = 0 is defined as 0.0 (no leader); every other entry equals the scalar call exactly
    assert np.all(table[0] == 0.0)
    assert np.array_equal(table[1:].view(np.int64), scalar[1:].view(np.int64))


def test_python_beta_conf_reads_the_same_values(scalar):
    for c1, c2 in [(1, 0), (2, 1), (5, 5), (17, 3), (64, 0), (0, 9), (128, 128), (3, 100)]:
        want = 0.0 if c1 == 0 else scalar[c1, c2]
        assert beta_conf(c1, c2) == want


def test_table_equals_binomial_tail(table):
    # P(X <= c1), X ~ Binomial(n = c1 + c2 + 1, 1/2), in exact integer arithmetic
    for n in range(2, 2 * M + 2):
        prefix = 0
        for c1 in range(0, min(n, M + 1)):
            prefix += comb(n, c1)
            c2 = n - 1 - c1
            if c1 == 0 or c2 > M:
                continue
            exact = float(Fraction(prefix, 2**n))
            assert abs(table[c1, c2] - exact) <= 1e-12, (c1, c2)


def test_asc_threshold_decisions_identical(table, scalar):
    assert np.array_equal(table[1:] > 0.95, scalar[1:] > 0.95)


@pytest.mark.parametrize("b", [k / 10 for k in range(11)] + [0.25, 0.75])
def test_cmc_threshold_decisions_identical(table, scalar, b):
    thresh = schedule(b)["conf_thresh"]
    assert np.array_equal(table[1:] >= thresh, scalar[1:] >= thresh)
    # and the decision is not vacuous: both outcomes occur
    assert (table[1:] >= thresh).any() and not (table[1:] >= thresh).all()
