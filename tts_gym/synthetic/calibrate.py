"""Calibrate :class:`SyntheticParams` from a real replay store.

:func:`measure` computes the statistics the issue names (pass@1 per question, distinct-answer
counts, agreement of probe k with the final answer as a function of k / L, token quantiles, noise
rate) plus the latent quantities the generator needs (convergence index k*, the composition and
persistence of pre-convergence probes, lengths of correct vs wrong branches);
:func:`calibrate` turns them into parameters (maximum likelihood for the Beta-binomial difficulty,
moments elsewhere, a small simulated grid search for the wrong-answer attractors and a bisection
for the junk vocabulary).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln

from tts_gym.store import ReplayStore
from tts_gym.synthetic.params import SyntheticParams

NOISE_STRINGS: tuple[str, ...] = ("ERR", "No", "?", "[Boxed Answer]", "None", "")
"""Answer strings counted as noise probes (non-answers of a forced early stop)."""

AGREEMENT_BINS = 10


class CalibrationError(ValueError):
    """The store lacks what a fit needs (the message says what, in one sentence)."""


def _noise_mask(store: ReplayStore) -> np.ndarray:
    """bool ``[Q, N, L]``: the probe is a noise string."""
    out = np.zeros(store.probe_ans.shape, bool)
    for q, table in enumerate(store.answers):
        ids = [i for i, a in enumerate(table) if a in NOISE_STRINGS]
        if ids:
            out[q] = np.isin(store.probe_ans[q], ids)
    return out


def convergence_index(store: ReplayStore) -> np.ndarray:
    """int ``[Q, N]``: k*, the first probe index from which every probe equals the final answer
    (L when the last probe differs; 0 when all do)."""
    probe, final, n = store.probe_ans, store.final_ans, store.n_probes
    k = np.arange(probe.shape[2])[None, None, :]
    differs = (probe != final[:, :, None]) & (k < n[:, :, None])
    last = np.where(differs, k, -1).max(axis=2)
    return (last + 1).astype(np.int64)


def agreement_curve(store: ReplayStore, bins: int = AGREEMENT_BINS) -> list[float]:
    """Fraction of probes equal to their branch's final answer, by position (k + 1) / L in
    ``bins`` equal bins."""
    probe, final, n = store.probe_ans, store.final_ans, store.n_probes
    k = np.arange(probe.shape[2])[None, None, :]
    valid = k < n[:, :, None]
    frac = (k + 1) / np.maximum(n[:, :, None], 1)
    idx = np.minimum((frac * bins - 1e-9).astype(np.int64), bins - 1)
    agree = probe == final[:, :, None]
    hits = np.bincount(idx[valid], weights=agree[valid], minlength=bins)
    total = np.bincount(idx[valid], minlength=bins)
    return (hits / np.maximum(total, 1)).round(4).tolist()


def _runs_mean(seq_ids: np.ndarray, valid: np.ndarray) -> float:
    """Mean run length of equal consecutive values among ``valid`` positions ``[M, L]``."""
    same = (seq_ids[:, 1:] == seq_ids[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    n_valid = valid.sum()
    starts = n_valid - same.sum()
    return float(n_valid / max(starts, 1))


def _wrong_stats(final: np.ndarray, correct: np.ndarray, min_wrong: int = 10) -> np.ndarray:
    """Per question with >= ``min_wrong`` wrong finals: (top share, singleton share, distinct)."""
    rows = []
    for q in range(final.shape[0]):
        w = final[q][~correct[q]]
        if w.size < min_wrong:
            continue
        _, c = np.unique(w, return_counts=True)
        rows.append((c.max() / w.size, (c == 1).sum() / w.size, c.size / w.size))
    return np.array(rows) if rows else np.zeros((0, 3))


def _median(x: np.ndarray) -> float | None:
    return float(np.median(x)) if x.size else None


def measure(store: ReplayStore) -> dict[str, Any]:
    """The statistics of a store that calibration matches and fidelity compares.

    Returns:
        A JSON-serialisable dict (numbers only, no answer strings).
    """
    correct = store.final_ans == store.gold[:, None]
    pass1 = correct.mean(axis=1)
    noise = _noise_mask(store)
    n = store.n_probes
    k = np.arange(store.max_probes)[None, None, :]
    valid = k < n[:, :, None]
    kstar = convergence_index(store)
    pre = k < kstar[:, :, None]
    distinct = [len(t) for t in store.answers]
    distinct_final = [len(np.unique(r)) for r in store.final_ans]
    wrong = _wrong_stats(store.final_ans, correct)
    tq = [5, 25, 50, 75, 95]
    return {
        "questions": store.n_questions,
        "branches": store.width,
        "pass1_mean": round(float(pass1.mean()), 4),
        "pass1_quantiles": np.percentile(pass1, [10, 25, 50, 75, 90]).round(4).tolist(),
        "pass1_zero_share": round(float((pass1 == 0).mean()), 4),
        "pass1_one_share": round(float((pass1 == 1).mean()), 4),
        "distinct_answers_mean": round(float(np.mean(distinct)), 2),
        "distinct_answers_median": float(np.median(distinct)),
        "distinct_finals_mean": round(float(np.mean(distinct_final)), 2),
        "wrong_top_share_mean": round(float(wrong[:, 0].mean()), 4) if len(wrong) else None,
        "wrong_singleton_share_mean": round(float(wrong[:, 1].mean()), 4) if len(wrong) else None,
        "agreement_by_position": agreement_curve(store),
        "token_quantiles": np.percentile(store.tokens, tq).round(0).tolist(),
        "probe_count_quantiles": np.percentile(n, tq).round(1).tolist(),
        "tokens_correct_median": _median(store.tokens[correct]),
        "tokens_wrong_median": _median(store.tokens[~correct]),
        "noise_rate": round(float(noise[valid].mean()), 4),
        "converged_fraction_mean": round(float((kstar / np.maximum(n, 1)).mean()), 4),
        "pre_convergence_share": round(float(pre.sum() / max(valid.sum(), 1)), 4),
    }


def fit_difficulty(
    correct_counts: np.ndarray, n: int, hard_mean: float = 0.01
) -> tuple[float, float, float]:
    """Maximum-likelihood zero-inflated Beta of per-question pass@1 from Beta-binomial counts.

    Mixture: weight ``pi`` on a fixed "unsolved" component Beta(0.5, 0.5 / hard_mean - 0.5),
    ``1 - pi`` on Beta(a, b). Nelder-Mead from a few starts on (log a, log b, logit pi).

    Returns:
        ``(a, b, pi)``.
    """
    c = np.asarray(correct_counts, float)
    h = (0.5, 0.5 / hard_mean - 0.5)
    log_hard = betaln(c + h[0], n - c + h[1]) - betaln(*h)

    def nll(x: np.ndarray) -> float:
        a, b = np.exp(np.clip(x[:2], -8, 8))
        pi = 1.0 / (1.0 + np.exp(-np.clip(x[2], -30.0, 30.0)))
        bulk = betaln(c + a, n - c + b) - betaln(a, b)
        return -float(np.sum(np.logaddexp(np.log(pi) + log_hard, np.log1p(-pi) + bulk)))

    starts = [(np.log(a), np.log(b), z) for a in (0.3, 1, 3) for b in (0.3, 1, 3) for z in (-3, 0)]
    best = min(
        (minimize(nll, x0, method="Nelder-Mead", options={"maxiter": 4000}) for x0 in starts),
        key=lambda r: r.fun,
    )
    a, b = np.exp(np.clip(best.x[:2], -8, 8))
    return float(a), float(b), float(1.0 / (1.0 + np.exp(-np.clip(best.x[2], -30.0, 30.0))))


def _beta_moments(x: np.ndarray) -> tuple[float, float]:
    """Beta(a, b) with the mean and variance of ``x`` (values in (0, 1))."""
    x = np.clip(x, 1e-3, 1 - 1e-3)
    m, v = x.mean(), x.var()
    v = min(v, m * (1 - m) * 0.95)
    s = m * (1 - m) / v - 1
    return float(m * s), float((1 - m) * s)


def _fit_convergence(store: ReplayStore, correct: np.ndarray) -> dict[str, float]:
    kstar = convergence_index(store)
    n = store.n_probes
    ok = n >= 2
    out = {}
    for tag, sel in (("correct", correct & ok), ("wrong", ~correct & ok)):
        if sel.sum() < 10:
            sel = ok
        ks, ns = kstar[sel], n[sel]
        if ks.size == 0:  # no branch with two probes: the defaults stand
            continue
        out[f"converge_at_start_{tag}"] = float((ks == 0).mean())
        f = (ks[ks > 0] + 0.5) / ns[ks > 0]
        if f.size < 2 or f.var() == 0:  # no spread to fit a Beta to: the defaults stand
            continue
        a, b = _beta_moments(f)
        out[f"converge_a_{tag}"] = a
        out[f"converge_b_{tag}"] = b
    return out


def _fit_pre_probes(store: ReplayStore) -> dict[str, Any]:
    """Composition and persistence of the probes before convergence."""
    kstar = convergence_index(store)
    k = np.arange(store.max_probes)[None, None, :]
    pre = k < kstar[:, :, None]
    probe = store.probe_ans
    noise = _noise_mask(store)
    is_final = probe == store.final_ans[:, :, None]
    in_pool = np.zeros_like(pre)
    counts: dict[str, int] = {}
    for q, table in enumerate(store.answers):
        finals = np.unique(store.final_ans[q])
        in_pool[q] = np.isin(probe[q], finals)
        for i in np.unique(probe[q][pre[q] & noise[q]]):
            counts[table[i]] = counts.get(table[i], 0) + int((probe[q][pre[q]] == i).sum())
    flat_ids = probe.reshape(-1, probe.shape[2])
    flat_pre = pre.reshape(-1, probe.shape[2])
    run = _runs_mean(flat_ids, flat_pre)
    stay = float(np.clip(1.0 - 1.0 / run, 0.0, 0.95))
    total = max(int(pre.sum()), 1)
    share_final = float((pre & is_final).sum() / total)
    share_noise = float((pre & noise).sum() / total)
    share_pool = float((pre & in_pool & ~is_final & ~noise).sum() / total)
    strings = tuple(sorted(counts, key=lambda s: -counts[s])) or ("ERR",)
    weights = tuple(float(counts.get(s, 1)) for s in strings)
    tot_w = sum(weights)
    return {
        "probe_stay": stay,
        "probe_final": share_final,
        "probe_noise": share_noise,
        "pool_share": share_pool,
        "noise_strings": strings,
        "noise_weights": tuple(round(w / tot_w, 4) for w in weights),
    }


def _fit_lengths(store: ReplayStore, correct: np.ndarray, pass1: np.ndarray) -> dict[str, float]:
    """Length parameters. Wrong branches are split into those whose final answer recurs in the
    question (attractors) and those whose final is a one-off (junk); each gets its own shift of
    mean log tokens relative to the question's correct branches."""
    log_t = np.log(np.maximum(store.tokens, 1).astype(float))
    wrong = ~correct
    repeated = np.zeros_like(wrong)
    for q in range(store.n_questions):
        _, inv, cnt = np.unique(store.final_ans[q], return_inverse=True, return_counts=True)
        repeated[q] = wrong[q] & (cnt[inv] >= 2)
    single = wrong & ~repeated
    shifts = {}
    for tag, sel in (("all", wrong), ("repeated", repeated), ("single", single)):
        diffs, weights = [], []
        for q in range(store.n_questions):
            nc, nw = correct[q].sum(), sel[q].sum()
            if nc >= 3 and nw >= 2:
                diffs.append(log_t[q][sel[q]].mean() - log_t[q][correct[q]].mean())
                weights.append(min(nc, nw))
        shifts[tag] = float(np.average(diffs, weights=weights)) if diffs else None
    shift_all = shifts["all"] or 0.0
    shift_att = shifts["repeated"] if shifts["repeated"] is not None else shift_all
    shift_junk = shifts["single"] if shifts["single"] is not None else shift_all
    adj = log_t - shift_att * repeated - shift_junk * single
    mu = adj.mean(axis=1)
    resid = adj - mu[:, None]
    sd = float(resid.std())
    if np.ptp(pass1) > 0:  # length against difficulty: a line needs two pass@1 values
        slope, intercept = np.polyfit(pass1, mu, 1)
    else:  # every question at one pass@1 (all wrong, all right, one question): no slope
        slope, intercept = 0.0, float(mu.mean())
    q_sd = float(np.std(mu - (intercept + slope * pass1)))
    ratio = store.tokens / (store.probe_freq[:, None] * np.maximum(store.n_probes, 1))
    ok = store.n_probes >= 4
    if not ok.any():  # only short branches: their ratio is all there is
        ok = store.n_probes >= 1
    return {
        "log_tokens_mean": float(intercept),
        "log_tokens_difficulty_slope": float(slope),
        "log_tokens_question_sd": q_sd,
        "log_tokens_wrong_shift": shift_att,
        "log_tokens_junk_shift": shift_junk,
        "log_tokens_sd": sd,
        "token_cap": int(store.tokens.max()),
        "probe_freq": int(np.median(store.probe_freq)),
        "tokens_per_interval_mean": float(np.median(ratio[ok])),
        "tokens_per_interval_sd": float(np.std(np.clip(ratio[ok], 0.8, 1.3))),
        "max_probes": int(store.n_probes.max()),
    }


def _simulate_wrong(n_wrong, tail, conc, mean_k, k_max, rng, reps=4) -> np.ndarray:
    """Mean (top share, singleton share, distinct share) of simulated wrong finals."""
    stats = []
    for _ in range(reps):
        for nw in n_wrong:
            k = min(1 + rng.poisson(mean_k), k_max)
            w = rng.dirichlet(np.full(k, conc)) if k > 1 else np.ones(1)
            n_tail = rng.binomial(nw, tail)
            c = rng.multinomial(nw - n_tail, w)
            c = np.concatenate([c[c > 0], np.ones(n_tail, int)])
            stats.append((c.max() / nw, (c == 1).sum() / nw, c.size / nw))
    return np.mean(stats, axis=0)


def _fit_wrong(store: ReplayStore, correct: np.ndarray, k_max: int, seed: int) -> dict[str, float]:
    """Grid search of (wrong_tail, attractor_concentration, attractors_mean) on simulated wrong
    finals, matching the mean top share, singleton share and distinct share of the store."""
    target = _wrong_stats(store.final_ans, correct)
    if len(target) == 0:
        return {}
    goal = target.mean(axis=0)
    n_wrong = [int((~correct[q]).sum()) for q in range(store.n_questions)]
    n_wrong = [w for w in n_wrong if w >= 10]
    best: tuple[float, float, float] | None = None
    best_err = np.inf
    for tail in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
        for conc in (0.15, 0.3, 0.6, 1.2):
            for mean_k in (1.0, 3.0, 6.0, 12.0, 24.0):
                rng = np.random.default_rng(seed)
                got = _simulate_wrong(n_wrong, tail, conc, mean_k, k_max, rng)
                err = float(np.sum(((got - goal) / np.array([0.05, 0.05, 0.05])) ** 2))
                if err < best_err:
                    best, best_err = (tail, conc, mean_k), err
    if best is None:
        raise ValueError("no wrong-answer parameters fit the targets (the errors are not finite).")
    tail, conc, mean_k = best
    return {"wrong_tail": tail, "attractor_concentration": conc, "attractors_mean": mean_k}


def _fit_junk_vocab(params: SyntheticParams, store: ReplayStore, seed: int) -> int:
    """Bisection (log scale) of the junk vocabulary to match the mean distinct answers."""
    from tts_gym.synthetic.generate import generate_store

    goal = float(np.mean([len(t) for t in store.answers]))
    lo, hi = 1.0, 20_000.0
    for _ in range(9):
        mid = float(np.sqrt(lo * hi))
        p = params.replace(junk_vocab=int(round(mid)))
        s = generate_store(p, store.n_questions * 2, store.width, seed)
        got = float(np.mean([len(t) for t in s.answers]))
        if got < goal:
            lo = mid
        else:
            hi = mid
    return int(round(np.sqrt(lo * hi)))


def calibrate(store: ReplayStore, seed: int = 0) -> SyntheticParams:
    """Fit the generator's parameters to a real store.

    Args:
        store: A real store (with gold answers). Degenerate stores (every question at one
            pass@1, all wrong, all right, one question) are fitted too: what they cannot tell
            (a length-difficulty slope, a convergence Beta without spread) keeps the default.
        seed: Seed of the simulated fits (grid search, junk-vocabulary bisection).

    Raises:
        CalibrationError: The store lacks what any fit needs (gold answers, or the fitted
            parameters are invalid); one sentence names it.

    Returns:
        :class:`SyntheticParams` whose ``statistics`` field holds :func:`measure` of ``store``.
    """
    if not store.has_gold:
        raise CalibrationError(f"{store.name} has no gold answers, which calibration needs; use "
                               "the original store.")
    correct = store.final_ans == store.gold[:, None]
    pass1 = correct.mean(axis=1)
    base = SyntheticParams()
    a, b, pi = fit_difficulty(correct.sum(axis=1), store.width, base.difficulty_hard_mean)
    fields: dict[str, Any] = {"difficulty_a": a, "difficulty_b": b, "difficulty_hard_share": pi}
    fields.update(_fit_lengths(store, correct, pass1))
    fields.update(_fit_convergence(store, correct))
    fields.update(_fit_wrong(store, correct, base.attractors_max, seed))
    pre = _fit_pre_probes(store)
    pool_share = pre.pop("pool_share")
    tail = fields.get("wrong_tail", base.wrong_tail)
    # the shares are of all pre-convergence probes; repeats copy draws in proportion, so the
    # shares of fresh draws are the same.
    fields.update(pre)
    fields["probe_pool"] = float(
        min(pool_share / max(1.0 - tail, 1e-6), 1.0 - pre["probe_final"] - pre["probe_noise"])
    )
    fields["source"] = f"{store.model}/{store.benchmark}"
    fields["statistics"] = measure(store)
    rounded = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in fields.items()}
    # rounding can push the three shares 1e-5 over 1 when the pool share is the binding bound
    rounded["probe_pool"] = min(
        rounded["probe_pool"], round(1.0 - rounded["probe_final"] - rounded["probe_noise"], 12)
    )
    try:
        params = base.replace(**rounded)
    except ValueError as exc:
        raise CalibrationError(f"{store.name} gives parameters the generator cannot use ({exc}); "
                               "calibrate on a store with more questions and branches.") from None
    return params.replace(junk_vocab=_fit_junk_vocab(params, store, seed))
