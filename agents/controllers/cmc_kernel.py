"""The CMC algorithm as a numba kernel over all seeds × questions (AutoTTS, 2026).

The same algorithm as :meth:`agents.controllers.cmc.ConfidenceMomentumController.solve`, step by
step and with the same float operation order, on answer ids instead of strings. The replay
dynamics are the shared transition kernels (``open_slot`` = ``probe_new``, ``advance_slot`` =
``probe_more``); the vote statistics are :func:`tts_gym.kernels.votes.top2` / ``majority`` and
``beta_conf`` is read from the scipy-built table passed in, so both paths agree to the last bit.

The small helpers are inlined at the numba-IR level (``inline="always"``): each array a
non-inlined helper binds costs an atomic incref/decref, which halved the kernel's speed.

Schedule vector ``sched`` (float64 ``[12]``, indices below) is built by
:func:`agents.controllers.cmc.schedule_vector`. The caps ``max_branch`` (branches one episode may
open) and ``max_outer`` (outer rounds before the final fallback) are arguments: their one
definition is the seed file's ``MAX_BRANCH`` and ``MAX_OUTER``
(``agents/synthesis/seed_files/cmc.py``), which the Python path reads too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tts_gym.kernels.state import COST, EP_COUNTERS, EP_ORDER
from tts_gym.kernels.transitions import (
    advance_slot,
    can_open,
    new_episode,
    open_slot,
    reset_episode,
)
from tts_gym.kernels.votes import majority, top2

# indices into the schedule vector
N_INIT = 0
MAX_BRANCH_USE = 1
WARM_UP = 2
ABANDON_PATIENCE = 3
T_EMA = 4
EMA_ALPHA = 5
CONF_THRESH = 6
DELTA_SLACK = 7
BURST_ALIGNED = 8
WIDEN_BURST = 9
TREND_THRESH = 10
MIN_COMPLETE = 11
SCHEDULE_KEYS = (
    "n_init",
    "max_branch_use",
    "warm_up",
    "abandon_patience",
    "T_ema",
    "ema_alpha",
    "conf_thresh",
    "delta_slack",
    "burst_aligned",
    "widen_burst",
    "trend_thresh",
    "min_complete",
)


@njit(cache=True, inline="always")
def _pool_stats(pool, n_pool, counts, conf_table):
    """``(winner id or -1, beta_conf)`` of the finished-answer pool."""
    if n_pool == 0:
        return -1, 0.0
    w, c1, c2 = top2(pool, n_pool, counts)
    return w, conf_table[c1, c2]


@njit(cache=True, inline="always")
def _spawn(
    data, n_branches, q, ep, mode, latest, fin, aband, probes, disag, pool, n_rec, n_pool, cap
):
    """``spawn()``: open the next branch as record ``n_rec`` (at most ``cap`` records); returns
    ``(ok, n_rec, n_pool)``."""
    if n_rec >= cap or not can_open(n_branches, q, ep):
        return False, n_rec, n_pool
    slot, a, _charge, f = open_slot(data, q, ep, mode)
    latest[slot] = a
    fin[slot] = f
    aband[slot] = False
    probes[slot] = 0
    disag[slot] = 0
    if f:
        pool[n_pool] = a
        n_pool += 1
    return True, n_rec + 1, n_pool


@njit(cache=True, inline="always")
def _sort_desc(idx, n, key):
    """Stable insertion sort of ``idx[:n]`` by ``key[idx]`` descending."""
    for i in range(1, n):
        v = idx[i]
        k = key[v]
        j = i - 1
        while j >= 0 and key[idx[j]] < k:
            idx[j + 1] = idx[j]
            j -= 1
        idx[j + 1] = v


@njit(cache=True, inline="always")
def _push(hist, n_h, t_ema, e):
    """``H.append(E)``, dropping ``H[0]`` while longer than ``t_ema``; returns the new length."""
    if n_h < t_ema:
        hist[n_h] = e
        return n_h + 1
    for i in range(n_h - 1):
        hist[i] = hist[i + 1]
    hist[n_h - 1] = e
    return n_h


@njit(cache=True, inline="always")
def _abandon(n_rec, w, latest, fin, aband, disag, idx, patience):
    """Update disagreement counters; abandon the most persistent dissenters, keeping 2 alive."""
    alive = 0
    n_c = 0
    for r in range(n_rec):
        if not aband[r] and not fin[r]:
            disag[r] = disag[r] + 1 if latest[r] != w else 0
            alive += 1
            if disag[r] >= patience:
                idx[n_c] = r
                n_c += 1
    _sort_desc(idx, n_c, disag)
    for i in range(min(max(0, alive - 2), n_c)):
        aband[idx[i]] = True


@njit(cache=True, inline="always")
def _probe_round(
    data, q, ep, mode, n_rec, w, aligned, latest, fin, aband, probes, idx, pool, n_pool
):
    """Probe live records, most-probed first: ``aligned`` times if agreeing with ``w``, else
    once; finished answers go to the pool. Returns the new pool size."""
    n_live = 0
    for r in range(n_rec):
        if not aband[r] and not fin[r]:
            idx[n_live] = r
            n_live += 1
    _sort_desc(idx, n_live, probes)
    for i in range(n_live):
        r = idx[i]
        n = aligned if (w >= 0 and latest[r] == w) else 1
        for _ in range(n):
            if fin[r]:
                break
            a, _charge, f = advance_slot(data, q, ep, r, mode)
            probes[r] += 1
            latest[r] = a
            fin[r] = f
            if f:
                pool[n_pool] = a
                n_pool += 1
    return n_pool


@njit(cache=True, inline="always")
def _all_done(n_rec, fin, aband):
    """True when every record is finished or abandoned."""
    for r in range(n_rec):
        if not aband[r] and not fin[r]:
            return False
    return True


@njit(cache=True, inline="always")
def _fallback(n_rec, latest, aband, idx, counts):
    """Majority of the latest answers of records not abandoned (-1 if none)."""
    n_c = 0
    for r in range(n_rec):
        if not aband[r]:
            idx[n_c] = latest[r]
            n_c += 1
    return majority(idx, n_c, counts)


@njit(cache=True)
def cmc_episode(
    data, n_branches, q, ep, mode, sched, conf_table, max_branch, max_outer, counts, work
):
    """One CMC episode on question ``q`` under the order already in ``ep[EP_ORDER]``.

    Args:
        data: store arrays tuple (``env_data``); n_branches: int32 ``[Q]``.
        q: question index; ep: episode tuple (capacity >= ``max_branch``), reset here.
        mode: cost mode; sched: float64 ``[12]`` schedule vector.
        conf_table: float64 ``[M, M]`` beta_conf table (M > ``max_branch``).
        max_branch: most records one episode opens; max_outer: most outer rounds.
        counts: int64 zero scratch ``[A]`` for the vote kernels.
        work: tuple of scratch arrays (see :func:`cmc_batch_kernel`).

    Returns:
        The answer id (-1 for no answer); tokens are in ``ep[EP_COUNTERS][COST]``.
    """
    latest, fin, aband, probes, disag, pool, idx, hist = work
    warm_up = int(sched[WARM_UP])
    t_ema = int(sched[T_EMA])
    alpha = sched[EMA_ALPHA]
    conf_thresh = sched[CONF_THRESH]
    max_use = min(int(sched[MAX_BRANCH_USE]), max_branch)
    one_minus = 1 - alpha
    widen_from = max(1, warm_up // 2)

    reset_episode(ep)
    n_rec = 0
    n_pool = 0
    for _ in range(int(sched[N_INIT])):
        ok, n_rec, n_pool = _spawn(
            data, n_branches, q, ep, mode, latest, fin, aband, probes, disag, pool, n_rec, n_pool,
            max_branch,
        )
        if not ok:
            break
    if n_rec == 0:
        return -1

    e = 0.0
    n_h = 0
    for step in range(max_outer):
        w, conf = _pool_stats(pool, n_pool, counts, conf_table)
        warm = step >= warm_up
        e = one_minus * e + alpha * conf
        n_h = _push(hist, n_h, t_ema, e)
        if warm and w >= 0:
            _abandon(n_rec, w, latest, fin, aband, disag, idx, int(sched[ABANDON_PATIENCE]))
        aligned = int(sched[BURST_ALIGNED]) if warm else 1
        n_pool = _probe_round(
            data, q, ep, mode, n_rec, w, aligned, latest, fin, aband, probes, idx, pool, n_pool
        )
        w, conf = _pool_stats(pool, n_pool, counts, conf_table)
        e = one_minus * e + alpha * conf
        hist[n_h - 1] = e
        delta = hist[n_h - 1] - hist[0] if n_h >= 2 else 0.0
        if (
            warm
            and n_pool >= int(sched[MIN_COMPLETE])
            and e >= conf_thresh
            and delta >= -sched[DELTA_SLACK]
        ):
            return w
        if _all_done(n_rec, fin, aband):
            break
        if n_rec < max_use and delta <= sched[TREND_THRESH] and step >= widen_from:
            if e < conf_thresh:
                for _ in range(int(sched[WIDEN_BURST])):
                    if n_rec >= max_use:
                        break
                    ok, n_rec, n_pool = _spawn(
                        data,
                        n_branches,
                        q,
                        ep,
                        mode,
                        latest,
                        fin,
                        aband,
                        probes,
                        disag,
                        pool,
                        n_rec,
                        n_pool,
                        max_branch,
                    )
                    if not ok:
                        break
    w, _conf = _pool_stats(pool, n_pool, counts, conf_table)
    if w < 0:
        w = _fallback(n_rec, latest, aband, idx, counts)
    return w


@njit(cache=True)
def cmc_batch_kernel(
    data,
    n_branches,
    orders,
    mode,
    sched,
    conf_table,
    max_branch,
    max_outer,
    answers_out,
    tokens_out,
    counts,
):
    """CMC over all seeds × questions.

    Args:
        data: store arrays tuple (``env_data``); n_branches: int32 ``[Q]``.
        orders: int32 ``[S, Q, N]`` protocol orders.
        mode: cost mode (MODE_REFERENCE / MODE_EXACT).
        sched: float64 ``[12]`` schedule vector; conf_table: float64 ``[M, M]``, M >
            ``max_branch``.
        max_branch: most branches one episode opens; max_outer: most outer rounds (the seed
            file's ``MAX_BRANCH`` and ``MAX_OUTER``).
        answers_out: int32 ``[S, Q]`` (written); tokens_out: int64 ``[S, Q]`` (written).
        counts: int64 zero scratch ``[A]`` (A > largest answer id).
    """
    n_s, n_q, width = orders.shape
    cap = min(width, max_branch)
    ep = new_episode(width, cap)
    work = (
        np.zeros(max_branch, np.int32),  # latest answer id
        np.zeros(max_branch, np.bool_),  # finished
        np.zeros(max_branch, np.bool_),  # abandoned
        np.zeros(max_branch, np.int64),  # probes
        np.zeros(max_branch, np.int64),  # disagree
        np.zeros(max_branch, np.int32),  # pool of final answers, finish order
        np.zeros(max_branch, np.int32),  # index / vote scratch
        np.zeros(max_branch, np.float64),  # EMA history H
    )
    for s in range(n_s):
        for q in range(n_q):
            ep[EP_ORDER][:] = orders[s, q]
            answers_out[s, q] = cmc_episode(
                data, n_branches, q, ep, mode, sched, conf_table, max_branch, max_outer, counts,
                work,
            )
            tokens_out[s, q] = ep[EP_COUNTERS][COST]
