"""Generate synthetic replay stores from :class:`~tts_gym.synthetic.params.SyntheticParams`.

The output is an ordinary :class:`~tts_gym.store.ReplayStore` (same arrays, answers interned in
first-appearance order like :func:`tts_gym.store.pack.pack_questions`), so every controller, env
and evaluator runs on it unchanged. Generation is vectorised numpy over ``[questions, branches]``
with one loop over the probe axis; seeded with ``np.random.default_rng``. Large stores are made
question-chunk by question-chunk (:func:`iter_store_chunks`) so memory stays bounded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from numba import njit

from tts_gym.store import ReplayStore
from tts_gym.synthetic.params import SyntheticParams, load_preset

Seed = int | np.random.Generator | None


def resolve_params(params: SyntheticParams | str | None) -> SyntheticParams:
    """A :class:`SyntheticParams` from an instance, a preset name / file path, or None (default)."""
    if params is None:
        return load_preset()
    if isinstance(params, str):
        return load_preset(params)
    return params


def with_max_probes(params: SyntheticParams, max_probes: int) -> SyntheticParams:
    """Params whose probe cap is ``max_probes``; the token cap scales with it (the real stores'
    80-probe cap and ~41.5k-token cap are the same limit seen twice)."""
    scale = max_probes / params.max_probes
    return params.replace(
        max_probes=int(max_probes), token_cap=int(round(params.token_cap * scale))
    )


@njit(cache=True)
def _first_appearance(probe, final, gold_raw, n_raw, raw_of_new, counts, gold_out):
    """Renumber raw answer ids to per-question first-appearance order, in place.

    Order: branch by branch, its probes then its final answer; the gold answer gets the next id
    if no branch produced it (the convention of ``pack_questions``).

    Args:
        probe: int32 ``[Q, N, L]`` raw ids (-1 pad), rewritten.
        final: int32 ``[Q, N]`` raw ids, rewritten.
        gold_raw: int32 ``[Q]`` raw gold ids.
        n_raw: number of raw ids.
        raw_of_new: int32 ``[Q, n_raw]`` (written): raw id of each new id.
        counts: int32 ``[Q]`` (written): distinct answers per question.
        gold_out: int32 ``[Q]`` (written): new gold id.
    """
    n_q, n_b, n_l = probe.shape
    mapping = np.full(n_raw, -1, np.int32)
    for q in range(n_q):
        nxt = 0
        for b in range(n_b):
            for k in range(n_l):
                r = probe[q, b, k]
                if r < 0:
                    break
                m = mapping[r]
                if m < 0:
                    m = nxt
                    mapping[r] = m
                    raw_of_new[q, m] = r
                    nxt += 1
                probe[q, b, k] = m
            r = final[q, b]
            m = mapping[r]
            if m < 0:
                m = nxt
                mapping[r] = m
                raw_of_new[q, m] = r
                nxt += 1
            final[q, b] = m
        g = gold_raw[q]
        if mapping[g] < 0:
            mapping[g] = nxt
            raw_of_new[q, nxt] = g
            nxt += 1
        gold_out[q] = mapping[g]
        counts[q] = nxt
        for i in range(nxt):
            mapping[raw_of_new[q, i]] = -1


class _Questions:
    """Per-question latent draws of one chunk: difficulty, attractor weights, length centre."""

    def __init__(self, p: SyntheticParams, n_q: int, rng: np.random.Generator) -> None:
        k_max = p.attractors_max
        hard = rng.random(n_q) < p.difficulty_hard_share
        hard_b = 0.5 / p.difficulty_hard_mean - 0.5
        self.pass1 = np.where(
            hard, rng.beta(0.5, hard_b, n_q), rng.beta(p.difficulty_a, p.difficulty_b, n_q)
        )
        self.k = np.minimum(1 + rng.poisson(p.attractors_mean, n_q), k_max)
        g = rng.gamma(p.attractor_concentration, 1.0, (n_q, k_max))
        g[np.arange(k_max)[None, :] >= self.k[:, None]] = 0.0
        g[:, 0] += 1e-300  # a row of underflowed gammas still has one attractor
        cum = np.cumsum(g, axis=1) / g.sum(axis=1, keepdims=True)
        cum[:, -1] = 1.0
        cum[np.arange(k_max)[None, :] >= self.k[:, None] - 1] = 1.0
        self.cum_flat = (np.arange(n_q)[:, None] + cum).ravel()
        self.mu = (
            p.log_tokens_mean
            + p.log_tokens_difficulty_slope * self.pass1
            + p.log_tokens_question_sd * rng.standard_normal(n_q)
        )
        self.n_q = n_q
        self.k_max = k_max


class _Ids:
    """Raw answer-id layout: 0 gold, 1..K attractors, then noise strings, then junk."""

    def __init__(self, p: SyntheticParams) -> None:
        self.attractor0 = 1
        self.noise0 = 1 + p.attractors_max
        self.junk0 = self.noise0 + len(p.noise_strings)
        self.n_raw = self.junk0 + p.junk_vocab


def _wrong_ids(qs: _Questions, ids: _Ids, p: SyntheticParams, qidx, rng) -> np.ndarray:
    """Raw ids drawn like wrong final answers of questions ``qidx`` (any shape): an attractor
    (by weight), else junk (probability ``wrong_tail``)."""
    shape = qidx.shape
    u = rng.random(shape)
    pos = np.searchsorted(qs.cum_flat, qidx + u, side="right") - qidx * qs.k_max
    att = ids.attractor0 + np.minimum(pos, qs.k[qidx] - 1)
    junk = ids.junk0 + rng.integers(0, p.junk_vocab, shape)
    return np.where(rng.random(shape) < p.wrong_tail, junk, att).astype(np.int32)


def _pool_ids(qs: _Questions, ids: _Ids, p: SyntheticParams, qidx, final, rng) -> np.ndarray:
    """Wrong-answer draws that differ from the branch's own final answer (junk if they clash)."""
    got = _wrong_ids(qs, ids, p, qidx, rng)
    clash = got == final
    if clash.any():
        got = np.where(clash, ids.junk0 + rng.integers(0, p.junk_vocab, final.shape), got)
    return got


def _lengths(p: SyntheticParams, qs: _Questions, final: np.ndarray, ids: _Ids, rng):
    """Tokens T int64 ``[Q, N]`` and probe counts L int32 ``[Q, N]`` (from raw final ids)."""
    shape = final.shape
    shift = np.where(
        final == 0,
        0.0,
        np.where(final >= ids.junk0, p.log_tokens_junk_shift, p.log_tokens_wrong_shift),
    )
    log_t = qs.mu[:, None] + shift + p.log_tokens_sd * rng.standard_normal(shape)
    t = np.exp(np.minimum(log_t, 30.0))
    capped = t > p.token_cap
    t = np.where(capped, p.token_cap - rng.integers(0, p.cap_jitter + 1, shape), t)
    tokens = np.maximum(1, np.rint(t)).astype(np.int64)
    r = np.maximum(0.5, rng.normal(p.tokens_per_interval_mean, p.tokens_per_interval_sd, shape))
    n_probes = np.clip(np.rint(tokens / (p.probe_freq * r)), 0, p.max_probes).astype(np.int32)
    return tokens, n_probes


def _convergence(p: SyntheticParams, correct, n_probes, rng) -> np.ndarray:
    """k*: the first probe index from which every probe equals the final answer."""
    shape = correct.shape
    at_start = rng.random(shape) < np.where(
        correct, p.converge_at_start_correct, p.converge_at_start_wrong
    )
    f = np.where(
        correct,
        rng.beta(p.converge_a_correct, p.converge_b_correct, shape),
        rng.beta(p.converge_a_wrong, p.converge_b_wrong, shape),
    )
    kstar = np.where(at_start, 0, np.floor(f * n_probes)).astype(np.int32)
    return np.minimum(kstar, np.maximum(n_probes - 1, 0))


def _probes(p, qs, ids, final, n_probes, kstar, rng) -> np.ndarray:
    """Probe answers int32 ``[Q, N, max_probes]`` (raw ids, -1 pad).

    Only branches still before convergence draw at step k: branches are sorted by k*
    (descending), so the ones drawing at step k are a prefix of that order and the work is
    proportional to the number of pre-convergence probes, not to Q × N × max_probes.
    """
    n_q, n_b = final.shape
    out = np.full((n_q * n_b, p.max_probes), -1, np.int32)
    flat_final = final.ravel()
    flat_k = kstar.ravel()
    order = np.argsort(-flat_k, kind="stable")
    k_sorted = flat_k[order]
    q_sorted = (order // n_b).astype(np.int64)
    f_sorted = flat_final[order]
    noise_cdf = np.cumsum(p.noise_weights) / np.sum(p.noise_weights)
    c_final = p.probe_final
    c_noise = c_final + p.probe_noise
    c_pool = c_noise + p.probe_pool
    top = int(k_sorted[0]) if k_sorted.size else 0
    prev = np.empty(0, np.int32)
    for k in range(top):
        m = int(np.searchsorted(-k_sorted, -k, side="left"))  # rows with k* > k
        q, f = q_sorted[:m], f_sorted[:m]
        u = rng.random(m)
        noise = ids.noise0 + np.minimum(
            np.searchsorted(noise_cdf, rng.random(m), side="right"), len(noise_cdf) - 1
        )
        new = np.where(
            u < c_final,
            f,
            np.where(
                u < c_noise,
                noise,
                np.where(
                    u < c_pool,
                    _pool_ids(qs, ids, p, q, f, rng),
                    ids.junk0 + rng.integers(0, p.junk_vocab, m),
                ),
            ),
        )
        if k > 0:
            new = np.where(rng.random(m) < p.probe_stay, prev[:m], new)
        # the probe just before k* differs from the final answer (k* is where the run starts)
        clash = (k_sorted[:m] == k + 1) & (new == f)
        if clash.any():
            new = np.where(clash, ids.junk0 + rng.integers(0, p.junk_vocab, m), new)
        new = new.astype(np.int32)
        out[order[:m], k] = new
        prev = new
    out = out.reshape(n_q, n_b, p.max_probes)
    k_axis = np.arange(p.max_probes, dtype=np.int32)[None, None, :]
    tail = (k_axis >= kstar[:, :, None]) & (k_axis < n_probes[:, :, None])
    np.copyto(out, np.broadcast_to(final[:, :, None], out.shape), where=tail)
    return out


def _answer_strings(p: SyntheticParams, ids: _Ids, n_q: int, rng) -> np.ndarray:
    """Per question, the string value of every raw id: gold and attractors are distinct integers
    0..999, noise strings as given, junk ``1000 + j``. Returns int values ``[Q, 1 + K]``."""
    k1 = 1 + p.attractors_max
    if k1 > 1000:
        return np.tile(np.arange(k1), (n_q, 1))
    return np.argsort(rng.random((n_q, 1000)), axis=1)[:, :k1]


def generate_arrays(
    params: SyntheticParams, n_questions: int, n_branches: int, rng: np.random.Generator
) -> dict[str, Any]:
    """Draw one chunk of questions: the store arrays and answer tables.

    Returns:
        A dict with ``probe_ans`` int32 ``[Q, N, max_probes]``, ``n_probes`` int32 ``[Q, N]``,
        ``tokens`` int64 ``[Q, N]``, ``final_ans`` int32 ``[Q, N]``, ``gold`` int32 ``[Q]``,
        ``answers`` (tuple of per-question string tuples) and ``pass1`` (latent p, float ``[Q]``).
    """
    p = params
    qs = _Questions(p, n_questions, rng)
    ids = _Ids(p)
    shape = (n_questions, n_branches)
    correct = rng.random(shape) < qs.pass1[:, None]
    qidx = np.broadcast_to(np.arange(n_questions)[:, None], shape)
    final = np.where(correct, 0, _wrong_ids(qs, ids, p, qidx, rng)).astype(np.int32)
    tokens, n_probes = _lengths(p, qs, final, ids, rng)
    kstar = _convergence(p, correct, n_probes, rng)
    probe = _probes(p, qs, ids, final, n_probes, kstar, rng)
    values = _answer_strings(p, ids, n_questions, rng)
    raw_of_new = np.empty((n_questions, ids.n_raw), np.int32)
    counts = np.empty(n_questions, np.int32)
    gold = np.empty(n_questions, np.int32)
    _first_appearance(
        probe, final, np.zeros(n_questions, np.int32), ids.n_raw, raw_of_new, counts, gold
    )
    fixed = list(p.noise_strings)
    tables = []
    for q in range(n_questions):
        vals = values[q]
        row = []
        for r in raw_of_new[q, : counts[q]].tolist():
            if r < ids.noise0:
                row.append(str(int(vals[r])))
            elif r < ids.junk0:
                row.append(fixed[r - ids.noise0])
            else:
                row.append(str(1000 + r - ids.junk0))
        tables.append(tuple(row))
    return {
        "probe_ans": probe,
        "n_probes": n_probes,
        "tokens": tokens,
        "final_ans": final,
        "gold": gold,
        "answers": tuple(tables),
        "pass1": qs.pass1,
    }


def _digest(params: SyntheticParams, arr: dict[str, Any]) -> str:
    """Content digest: the parameters and the drawn arrays."""
    h = hashlib.sha256(json.dumps(params.to_dict(), sort_keys=True).encode())
    for key in ("final_ans", "tokens", "n_probes", "gold"):
        h.update(np.ascontiguousarray(arr[key]).tobytes())
    return h.hexdigest()


def generate_store(
    params: SyntheticParams | str | None = None,
    questions: int = 30,
    branches: int = 128,
    seed: Seed = 0,
    *,
    max_probes: int | None = None,
    name: str | None = None,
) -> ReplayStore:
    """A synthetic :class:`ReplayStore` (benchmark ``"synthetic"``, never presented as real).

    Args:
        params: Parameters, a preset model name (``"Qwen3-8B"``) or parameter-file path; None =
            the default preset.
        questions: Q.
        branches: N (branches per question).
        seed: An int seed or a ``np.random.Generator`` (e.g. an env's ``np_random``).
        max_probes: Override the probe cap (the token cap scales with it).
        name: Model name of the store (default: the params' source model).

    Returns:
        The store; ``probe_ans`` has width ``max_probes`` exactly.

    >>> store = generate_store("Qwen3-8B", questions=4, branches=16, seed=1)
    >>> store.n_questions, store.width, store.max_probes, store.benchmark
    (4, 16, 80, 'synthetic')
    """
    p = resolve_params(params)
    if max_probes is not None:
        p = with_max_probes(p, max_probes)
    if questions < 1 or branches < 1:
        raise ValueError(f"questions and branches must be >= 1, got {questions}, {branches}.")
    from_rng = isinstance(seed, np.random.Generator)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    arr = generate_arrays(p, questions, branches, rng)
    model = name or p.source.split("/")[0] or "synthetic"
    return ReplayStore(
        model=model,
        benchmark="synthetic",
        split="search",
        source=f"synthetic:{p.source} seed={'rng' if from_rng else seed}",
        sha256=_digest(p, arr),
        probe_ans=arr["probe_ans"],
        n_probes=arr["n_probes"],
        tokens=arr["tokens"],
        final_ans=arr["final_ans"],
        gold=arr["gold"],
        probe_freq=np.full(questions, p.probe_freq, np.int64),
        n_branches=np.full(questions, branches, np.int32),
        answers=arr["answers"],
        questions=tuple(f"synthetic question {q}" for q in range(questions)),
    )


def iter_store_chunks(
    params: SyntheticParams | str | None,
    questions: int,
    branches: int,
    seed: int = 0,
    *,
    chunk: int = 256,
    max_probes: int | None = None,
) -> Iterator[ReplayStore]:
    """Yield a large synthetic store as consecutive stores of ``chunk`` questions each.

    Chunk i is drawn from ``np.random.default_rng([seed, i])``, so chunks are independent and
    reproducible; memory is bounded by one chunk (``chunk × branches × max_probes × 4`` bytes of
    probe answers).
    """
    done = 0
    i = 0
    while done < questions:
        n = min(chunk, questions - done)
        yield generate_store(
            params, n, branches, np.random.default_rng([seed, i]), max_probes=max_probes
        )
        done += n
        i += 1


def store_to_json(store: ReplayStore) -> list[dict[str, Any]]:
    """The store in the AutoTTS JSON layout (docs/store-format.md)."""
    out = []
    for q in range(store.n_questions):
        table = store.answers[q]
        each = []
        for b in range(int(store.n_branches[q])):
            n = int(store.n_probes[q, b])
            probes = [table[i] for i in store.probe_ans[q, b, :n].tolist()]
            each.append([probes, int(store.tokens[q, b]), table[int(store.final_ans[q, b])]])
        out.append(
            {
                "question": store.questions[q] if store.questions else f"question {q}",
                "gold_answer": table[int(store.gold[q])],
                "probe_freq": int(store.probe_freq[q]),
                "each_branch": each,
                "final_answers_trace": [b[2] for b in each],
            }
        )
    return out
