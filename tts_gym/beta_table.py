"""The exact ``beta_conf`` table, shared by the kernels (:mod:`tts_gym.kernels.votes`) and the
candidate API outside the sandbox (:mod:`tts_gym.candidate`).

``table[c1, c2] = 1 - BetaCDF(0.5; c1 + 1, c2 + 1)`` (0 where ``c1`` is 0), built once with scipy
(the published numbers were made with ``scipy.stats.beta.cdf``). A module of its own, importing
numpy and scipy only, so that the kernels can import the candidate API's Python twins and the
candidate API can build this table without an import cycle.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4)
def _table(size: int) -> np.ndarray:
    # scipy.stats.beta.cdf(x, a, b) is scipy.special.betainc(a, b, x) (beta_gen._cdf); the
    # special function is imported in a third of the time (tests compare with beta.cdf).
    from scipy.special import betainc

    c = np.arange(size, dtype=np.float64)
    c1, c2 = np.meshgrid(c, c, indexing="ij")
    table = 1.0 - betainc(c1 + 1.0, c2 + 1.0, 0.5)
    table[0, :] = 0.0
    table.setflags(write=False)
    return table


def beta_conf_table(max_count: int = 128) -> np.ndarray:
    """float64 ``[M, M]`` with ``table[c1, c2] = beta_conf(c1, c2)`` for counts below ``M``.

    ``M`` is ``max_count + 1`` rounded up to a multiple of 128 (tables are shared).
    """
    size = ((max_count + 1 + 127) // 128) * 128
    return _table(size)


__all__ = ["beta_conf_table"]
