"""The probe signal of the search stores as aggregate facts (issue "discovery that finds
something better than CMC", item 3): where the headroom above majority voting is.

Computed once per run from the search stores with full information (every branch, every
probe), shown in every round prompt. Each figure is a rate per question, averaged over the
questions (or a count of questions), never listed per question; gold is used only inside these
rates. Noise answers (``ERR``, ``?``, ...; see :data:`agents.synthesis.facts.NOISE_LEGEND`)
count as answers like any other, since a controller sees them as opaque labels too.

Per store (one model on the search benchmark):

- ``agree``: for interval k of :data:`K_GRID`, among branches still running at k (probe count
  L >= k; shorter branches finished earlier and are left out), the share whose probe answer at
  k equals the branch's final answer; ``reach`` is the share of branches with L >= k. ``L-1``
  and ``L`` are each branch's last-but-one and last probe (branches with L >= 2, L >= 1).
- ``held``: for s of :data:`S_GRID`, each time a branch's probe answer has just been the same
  for s consecutive probes, whether a later probe or the final answer differs (``changes``) and
  whether the final answer differs (``final_differs``); shares of such runs.
- ``length_quartiles``: accuracy of a finished branch by its length quartile within its
  question (branches ranked by tokens, ties in store order; Q1 the shortest quarter).
- ``probe_vs_final``: the probe majority (most frequent answer over every probe of every
  branch) against the finished majority (most frequent final answer of all branches): among
  questions whose finished majority is wrong, how many have a right probe majority; among those
  whose finished majority is right, how many have a wrong probe majority. Ties go to the answer
  seen first (branch by branch, probes in order).
- ``majority64``: accuracy of the majority of the first 64 branches in each of the protocol's
  :data:`CEILING_SEEDS` shuffle orders (= self-consistency at n = 64; ties to the earlier
  branch in the order); ``any_right``: share of questions where some branch's final answer is
  right; ``shortest64``: share of questions where the majority of the 64 shortest branches
  (fewest tokens, ties in store order; vote ties to the shorter branch) is right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tts_gym.evaluation.orders import protocol_orders
from tts_gym.store import ReplayStore

K_GRID: tuple[int | str, ...] = (1, 2, 4, 8, 16, 32, 64, "L-1", "L")
"""Probe intervals of the agreement figure (``"L-1"``, ``"L"``: each branch's last two)."""
S_GRID: tuple[int, ...] = (1, 2, 3, 5, 8)
"""Run lengths of the held-answer figure."""
VOTES = 64
"""Branches of the finished-majority ceiling."""
CEILING_SEEDS = 100
"""Protocol shuffle orders the ceiling averages over (the paper's 100)."""


def first_majority(values: np.ndarray) -> int:
    """The most frequent value of a 1-D int array; ties go to the value seen first (-1 if
    empty)."""
    if values.size == 0:
        return -1
    uniq, first, counts = np.unique(values, return_index=True, return_counts=True)
    top = counts == counts.max()
    return int(uniq[top][np.argmin(first[top])])


def _mean(rates: Sequence[float]) -> float | None:
    """Mean in percent, rounded to 0.1 (None when no question has the figure)."""
    return round(100.0 * float(np.mean(rates)), 1) if rates else None


def _probe_grid(store: ReplayStore, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(probes [nb, Lmax], L [nb], final [nb])`` of question ``q``'s branches."""
    nb = int(store.n_branches[q])
    return store.probe_ans[q, :nb], store.n_probes[q, :nb], store.final_ans[q, :nb]


def _agreement(store: ReplayStore) -> dict[str, dict[str, float | None]]:
    out = {}
    for k in K_GRID:
        agree, reach = [], []
        for q in range(store.n_questions):
            probes, n, final = _probe_grid(store, q)
            if k in ("L-1", "L"):
                back = 2 if k == "L-1" else 1
                live = n >= back
                col = np.maximum(n - back, 0)
            else:
                live = n >= int(k)
                col = np.full(n.shape, int(k) - 1)
            reach.append(float(live.mean()))
            if live.any():
                rows = np.flatnonzero(live)
                agree.append(float(np.mean(probes[rows, col[rows]] == final[rows])))
        out[str(k)] = {"agree": _mean(agree), "reach": _mean(reach)}
    return out


def _runs(probes: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(run length ending at j, last index of the run holding j)``, int ``[nb, Lmax]``."""
    nb, lmax = probes.shape
    valid = np.arange(lmax)[None, :] < n[:, None]
    same = np.zeros((nb, lmax), bool)  # same[:, j]: probe j equals probe j-1 (both valid)
    same[:, 1:] = valid[:, 1:] & (probes[:, 1:] == probes[:, :-1])
    length = np.ones((nb, lmax), np.int64)
    for j in range(1, lmax):
        length[:, j] = np.where(same[:, j], length[:, j - 1] + 1, 1)
    end = np.tile(np.arange(lmax), (nb, 1))
    for j in range(lmax - 2, -1, -1):
        end[:, j] = np.where(same[:, j + 1], end[:, j + 1], j)
    return np.where(valid, length, 0), end


def _held(store: ReplayStore) -> dict[str, dict[str, float | None]]:
    changes: dict[int, list[float]] = {s: [] for s in S_GRID}
    differs: dict[int, list[float]] = {s: [] for s in S_GRID}
    for q in range(store.n_questions):
        probes, n, final = _probe_grid(store, q)
        length, end = _runs(probes, n)
        for s in S_GRID:
            b, j = np.nonzero(length == s)  # the probe at which a run first reaches s
            if b.size == 0:
                continue
            held = probes[b, j]
            final_diff = final[b] != held
            changes[s].append(float(np.mean((end[b, j] < n[b] - 1) | final_diff)))
            differs[s].append(float(np.mean(final_diff)))
    return {str(s): {"changes": _mean(changes[s]), "final_differs": _mean(differs[s])}
            for s in S_GRID}


def _length_quartiles(store: ReplayStore) -> list[float | None]:
    acc: list[list[float]] = [[], [], [], []]
    for q in range(store.n_questions):
        nb = int(store.n_branches[q])
        rank = np.empty(nb, np.int64)
        rank[np.argsort(store.tokens[q, :nb], kind="stable")] = np.arange(nb)
        quart = (4 * rank) // nb
        right = store.final_ans[q, :nb] == store.gold[q]
        for i in range(4):
            if np.any(quart == i):
                acc[i].append(float(np.mean(right[quart == i])))
    return [_mean(a) for a in acc]


def _probe_vs_final(store: ReplayStore) -> dict[str, int]:
    fw = fw_pr = fr = fr_pw = 0
    for q in range(store.n_questions):
        probes, n, _final = _probe_grid(store, q)
        valid = np.arange(probes.shape[1])[None, :] < n[:, None]
        probe_right = first_majority(probes[valid]) == int(store.gold[q])
        final_right = int(store.majority_final[q]) == int(store.gold[q])
        if final_right:
            fr += 1
            fr_pw += int(not probe_right)
        else:
            fw += 1
            fw_pr += int(probe_right)
    return {"final_wrong": fw, "probe_right_when_final_wrong": fw_pr,
            "final_right": fr, "probe_wrong_when_final_right": fr_pw}


def _majority64(store: ReplayStore, seeds: int) -> float:
    orders = protocol_orders(store, list(range(seeds)))
    right = []
    for q in range(store.n_questions):
        nb = int(store.n_branches[q])
        for s in range(seeds):
            first = orders[s, q, : min(VOTES, nb)]
            right.append(first_majority(store.final_ans[q, first]) == int(store.gold[q]))
    return round(100.0 * float(np.mean(right)), 1)


def _shortest_majority(store: ReplayStore) -> float:
    right = []
    for q in range(store.n_questions):
        nb = int(store.n_branches[q])
        short = np.argsort(store.tokens[q, :nb], kind="stable")[:VOTES]
        right.append(first_majority(store.final_ans[q, short]) == int(store.gold[q]))
    return round(100.0 * float(np.mean(right)), 1)


def probe_facts(store: ReplayStore, seeds: int = CEILING_SEEDS) -> dict[str, Any]:
    """The probe-signal figures of one store (see the module docstring; percentages rounded to
    0.1, None where no question has the figure).

    Args:
        store: A search store with gold answers.
        seeds: Protocol shuffle orders of the ``majority64`` ceiling.

    Returns:
        ``{"questions", "agree": {k: {"agree", "reach"}}, "held": {s: {"changes",
        "final_differs"}}, "length_quartiles": [Q1..Q4], "probe_vs_final": {...counts},
        "majority64", "shortest64", "any_right"}``.
    """
    any_right = [bool(np.any(store.final_ans[q, : store.n_branches[q]] == store.gold[q]))
                 for q in range(store.n_questions)]
    return {
        "questions": store.n_questions,
        "agree": _agreement(store),
        "held": _held(store),
        "length_quartiles": _length_quartiles(store),
        "probe_vs_final": _probe_vs_final(store),
        "majority64": _majority64(store, seeds),
        "shortest64": _shortest_majority(store),
        "any_right": _mean([float(x) for x in any_right]),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def probe_facts_text(stores: Mapping[str, ReplayStore], seeds: int = CEILING_SEEDS) -> str:
    """The probe-signal block of the prompt: one-line definitions and three compact tables
    (percentages rounded to whole points; no answer string of any store)."""
    facts = {key: probe_facts(s, seeds) for key, s in stores.items()}
    ks = [str(k) for k in K_GRID]
    agree = ["| store | " + " | ".join(f"k={k}" for k in ks) + " |",
             "|---|" + "---|" * len(ks)]
    held = ["| store | " + " | ".join(f"s={s}" for s in S_GRID) + " |",
            "|---|" + "---|" * len(S_GRID)]
    ceil = ["| store | length Q1/Q2/Q3/Q4 | probe maj. right, final maj. wrong | probe maj. "
            "wrong, final maj. right | majority of 64 | of the 64 shortest | any branch right |",
            "|---|---|---|---|---|---|---|"]
    for key, f in facts.items():
        agree.append(f"| {key} | " + " | ".join(
            f"{_pct(f['agree'][k]['agree'])} ({_pct(f['agree'][k]['reach'])})" for k in ks) + " |")
        held.append(f"| {key} | " + " | ".join(
            f"{_pct(f['held'][str(s)]['changes'])}/{_pct(f['held'][str(s)]['final_differs'])}"
            for s in S_GRID) + " |")
        pv = f["probe_vs_final"]
        ceil.append(f"| {key} | {'/'.join(_pct(x) for x in f['length_quartiles'])} | "
                    f"{pv['probe_right_when_final_wrong']} of {pv['final_wrong']} | "
                    f"{pv['probe_wrong_when_final_right']} of {pv['final_right']} | "
                    f"{_pct(f['majority64'])} | {_pct(f['shortest64'])} | "
                    f"{_pct(f['any_right'])} |")
    return "\n".join([
        "The probe signal (search stores, every branch and probe; % per question, averaged "
        "over questions; noise answers count as answers):",
        "Agreement: % of branches still running at probe k whose probe answer equals their "
        "final answer (in brackets: % of branches that reach probe k; L-1, L = each branch's "
        "last two probes).",
        *agree,
        "Held answers: once a branch's probe answer has been the same for s consecutive "
        "probes, % of cases where a later probe or the final answer differs / where the final "
        "answer differs.",
        *held,
        "Length: accuracy % of a finished branch by its length quartile (tokens) within its "
        "question, Q1 shortest. Probe majority = most frequent answer over every probe of every "
        "branch; final majority = most frequent final answer of all branches (both columns count "
        "questions). "
        f"Majority of 64: % right, the first 64 branches of each of {seeds} protocol orders "
        "(= sc at n=64); of the 64 shortest: % of questions whose 64 shortest branches "
        "(tokens) vote right. Any branch right: % of questions.",
        *ceil,
    ])
