"""Accuracy-vs-tokens curves: the curve-level score and the per-band comparison of two curves.

One implementation, used wherever two controllers are compared: the discovery loop's prompt and
report, and a researcher's own comparisons. A curve is a list of :class:`CurvePoint` (one per
knob value: a beta, a budget), each holding its mean accuracy (percent) and mean tokens per
question over the same stores, and, for paired comparisons, the per-episode correctness
``bool [S, Q]`` and tokens ``[S, Q]`` of every store.

**The score** of a curve over a :class:`BudgetGrid` (``n`` budgets log-spaced from ``lo`` to
``hi`` tokens per question) is the mean over the budgets of the best accuracy the curve reaches
at or below each budget; a budget below the curve's cheapest point counts 0 (AutoTTS, 2026,
compares controllers along the whole curve, not at its top point, where curves are flat).

**The comparison** (:func:`compare_curves`) splits the grid's range into 5 bands of equal width
in log-tokens. In each band both curves are read at the point the score picks at the band's
upper budget; the difference of their accuracies carries a paired standard error clustered by
question (the episodes of one (store, question) are one cluster; stores are strata of equal
weight), and the questions whose share of seeds answered right differs by at least ``margin``
are listed as won or lost. The verdict rule is :data:`VERDICT_RULE`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

N_BANDS = 5
"""Bands of equal width in log-tokens over a grid's range."""
SE_FACTOR = 2.0
"""A band is *ahead* or *behind* when the difference exceeds this many standard errors."""
WIN_MARGIN = 0.2
"""Share of seeds by which a question's accuracy must differ to count as won or lost."""

VERDICT_RULE = (
    f"In each of {N_BANDS} budget bands (equal width in log-tokens), both curves are read at "
    "the point the score picks at the band's upper budget; a band is *ahead* when the "
    f"difference exceeds {SE_FACTOR:g} paired standard errors (clustered by question), "
    f"*behind* when it is below -{SE_FACTOR:g} SE, else *level*. Overall: *dominates* = ahead "
    "or level in every band and ahead in at least one; *behind overall* = behind or level in "
    "every band and behind in at least one; otherwise *mixed*."
)
"""The verdict rule, stated wherever a verdict is printed."""


@dataclass(frozen=True)
class CurvePoint:
    """One point of a curve over a fixed set of stores.

    Attributes:
        label: What produced it (``"beta=0.3"``, ``"n=16"``).
        accuracy: Mean over stores of the store accuracy, percent.
        avg_tokens: Mean over stores of the average tokens per question.
        correct: store key -> bool ``[S, Q]`` (seed, question); empty when unknown.
        tokens: store key -> float ``[S, Q]`` or ``[Q]`` tokens per episode (or per question,
            mean over seeds); may be empty.
    """

    label: str
    accuracy: float
    avg_tokens: float
    correct: Mapping[str, np.ndarray] = field(default_factory=dict)
    tokens: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def from_results(cls, label: str, results: Mapping[str, Any]) -> CurvePoint:
        """A point from ``store key -> EvalResult`` (accuracy and tokens as
        :class:`~tts_gym.evaluation.EvalResult` rounds them, averaged over stores)."""
        return cls(
            label=label,
            accuracy=round(float(np.mean([r.accuracy for r in results.values()])), 2),
            avg_tokens=round(float(np.mean([r.avg_tokens for r in results.values()])), 1),
            correct={k: np.asarray(r.correct, bool) for k, r in results.items()},
            tokens={k: np.asarray(r.tokens, np.float64) for k, r in results.items()},
        )


    def first_seeds(self, k: int) -> CurvePoint:
        """The point restricted to its first ``k`` seeds (accuracy and tokens recomputed as
        :class:`~tts_gym.evaluation.EvalResult` rounds them), to pair it with a curve scored on
        fewer seeds of the same protocol."""
        correct = {key: np.asarray(c)[:k] for key, c in self.correct.items()}
        tokens = {key: np.asarray(t)[:k] for key, t in self.tokens.items()
                  if np.ndim(t) == 2}
        if not correct or len(tokens) != len(correct):
            raise ValueError(f"point {self.label} holds no per-seed detail to restrict.")
        acc = np.mean([round(100.0 * float(c.mean()), 2) for c in correct.values()])
        tok = np.mean([float(t.mean()) for t in tokens.values()])
        return CurvePoint(self.label, round(float(acc), 2), round(float(tok), 1), correct, tokens)


@dataclass(frozen=True)
class BudgetGrid:
    """The budgets (tokens per question) at which a curve is scored: ``n`` log-spaced from
    ``lo`` to ``hi``."""

    lo: float
    hi: float
    n: int = 50

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and 0 < self.lo < self.hi):
            raise ValueError(f"a budget grid needs 0 < lo < hi (finite), got lo={self.lo!r}, "
                             f"hi={self.hi!r}.")
        if self.n < 2:
            raise ValueError(f"a budget grid needs at least 2 budgets, got n={self.n}.")

    @classmethod
    def spanning(cls, curves: Sequence[Sequence[Any]], n: int = 50) -> BudgetGrid:
        """The grid from the cheapest to the most expensive point of ``curves`` (points with
        ``avg_tokens``, as :class:`CurvePoint` or dicts)."""
        tokens = [_tokens(p) for c in curves for p in c]
        if not tokens:
            raise ValueError("a budget grid needs at least one scored point.")
        lo, hi = max(1.0, min(tokens)), max(tokens)
        return cls(lo, hi if hi > lo else lo * 2.0, n)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BudgetGrid:
        """The inverse of :meth:`to_dict`."""
        return cls(float(d["lo"]), float(d["hi"]), int(d.get("n", 50)))

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"lo", "hi", "n", "spacing": "log"}``."""
        return {"lo": round(self.lo, 1), "hi": round(self.hi, 1), "n": self.n, "spacing": "log"}

    def budgets(self) -> np.ndarray:
        """float64 ``[n]`` budgets, ascending."""
        return np.logspace(np.log10(self.lo), np.log10(self.hi), self.n)

    def bands(self, k: int = N_BANDS) -> list[tuple[float, float]]:
        """``k`` bands ``(lower, upper)`` of equal width in log-tokens over ``[lo, hi]``."""
        edges = np.logspace(np.log10(self.lo), np.log10(self.hi), k + 1)
        return [(float(a), float(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]

    def describe(self) -> str:
        """The grid in one sentence (numbers included)."""
        return (f"{self.n} budgets spaced evenly in log-tokens from {self.lo:,.0f} to "
                f"{self.hi:,.0f} tokens per question")


def _tokens(p: Any) -> float:
    return float(p.avg_tokens if isinstance(p, CurvePoint) else p["avg_tokens"])


def _accuracy(p: Any) -> float:
    return float(p.accuracy if isinstance(p, CurvePoint) else p["accuracy"])


def pick_at(curve: Sequence[Any], budget: float) -> int | None:
    """Index of the point the score picks at ``budget``: the highest accuracy among points with
    ``avg_tokens <= budget`` (ties: fewer tokens, then the earlier point); None when every point
    costs more."""
    ok = [i for i, p in enumerate(curve) if _tokens(p) <= budget]
    if not ok:
        return None
    return min(ok, key=lambda i: (-_accuracy(curve[i]), _tokens(curve[i]), i))


def curve_score(curve: Sequence[Any], grid: BudgetGrid) -> float:
    """The curve-level score (module docstring): mean best accuracy within each budget of
    ``grid``, 0 where the curve has no point that cheap. Rounded to 3 decimals."""
    if not curve:
        return 0.0
    tokens = np.array([_tokens(p) for p in curve], np.float64)
    acc = np.array([_accuracy(p) for p in curve], np.float64)
    best = [float(acc[tokens <= b].max()) if np.any(tokens <= b) else 0.0
            for b in grid.budgets()]
    return round(float(np.mean(best)), 3)


def clustered_se(diff: Mapping[str, np.ndarray]) -> float:
    """Standard error (points) of the mean over stores of a paired difference, clustered by
    question and stratified by store.

    Args:
        diff: store key -> float ``[S, Q]`` per-episode differences (1 right, 0 wrong; a - b).

    Returns:
        ``100 * sqrt(sum_k w_k^2 * Q_k / (Q_k - 1) * sum_q (d_kq - mean_k)^2)`` with
        ``d_kq`` the question's mean over seeds and ``w_k = 1 / (K * Q_k)``; NaN when a store
        has fewer than 2 questions.
    """
    k = len(diff)
    if not k:
        return float("nan")
    var = 0.0
    for d in diff.values():
        per_q = np.asarray(d, np.float64).mean(axis=0)
        q = per_q.size
        if q < 2:
            return float("nan")
        w = 1.0 / (k * q)
        var += w * w * q / (q - 1) * float(np.sum((per_q - per_q.mean()) ** 2))
    return 100.0 * math.sqrt(var)


@dataclass(frozen=True)
class Band:
    """One band of a comparison.

    Attributes:
        lower, upper: The band's budgets (tokens per question).
        a, b: Labels of the points read (``None``: the curve has no point that cheap).
        acc_a, acc_b: Their accuracies (0 where no point).
        tokens_a, tokens_b: Their average tokens (None where no point).
        diff: ``acc_a - acc_b`` in points, paired over the common stores.
        se: Its question-clustered standard error (NaN when not computable).
        status: ``"ahead"``, ``"behind"`` or ``"level"`` (a against b).
        won, lost: ``"store#q x->y"`` questions a wins / loses by the share of seeds right.
    """

    lower: float
    upper: float
    a: str | None
    b: str | None
    acc_a: float
    acc_b: float
    tokens_a: float | None
    tokens_b: float | None
    diff: float
    se: float
    status: str
    won: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """Curve ``a`` against curve ``b``, band by band, with the overall verdict."""

    name_a: str
    name_b: str
    bands: tuple[Band, ...]
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (floats rounded; NaN as None)."""
        def num(x: float | None, d: int) -> float | None:
            return None if x is None or not math.isfinite(x) else round(float(x), d)

        return {
            "a": self.name_a, "b": self.name_b, "verdict": self.verdict,
            "bands": [{"lower": round(b.lower), "upper": round(b.upper), "a": b.a, "b": b.b,
                       "acc_a": num(b.acc_a, 2), "acc_b": num(b.acc_b, 2),
                       "tokens_a": num(b.tokens_a, 1), "tokens_b": num(b.tokens_b, 1),
                       "diff": num(b.diff, 2), "se": num(b.se, 2), "status": b.status,
                       "won": list(b.won), "lost": list(b.lost)} for b in self.bands],
        }

    def lines(self, max_questions: int = 6) -> list[str]:
        """A table with one row per band (consecutive bands that read the same two points
        share a row) and the verdict line (for prompts and reports)."""
        rows = [f"| band (tokens) | {self.name_a} | {self.name_b} | diff (±SE) | status | "
                "questions won / lost |", "|---|---|---|---|---|---|"]
        merged: list[tuple[Band, float, int]] = []  # consecutive bands reading the same points
        for b in self.bands:
            if merged and (merged[-1][0].a, merged[-1][0].b) == (b.a, b.b):
                merged[-1] = (merged[-1][0], b.upper, merged[-1][2] + 1)
            else:
                merged.append((b, b.upper, 1))
        for b, upper, count in merged:
            span = f" ({count} bands)" if count > 1 else ""
            rows.append(
                f"| {_k(b.lower)}-{_k(upper)}{span} | {_cell(b.a, b.acc_a, b.tokens_a)} | "
                f"{_cell(b.b, b.acc_b, b.tokens_b)} | {b.diff:+.2f} (±{format_se(b.se)}) | "
                f"{b.status} | {_questions(b.won, max_questions)} / "
                f"{_questions(b.lost, max_questions)} |")
        rows.append(f"Verdict: {self.name_a} {self.verdict_text()} {self.name_b}.")
        return rows

    def verdict_text(self) -> str:
        """``"dominates"``, ``"is behind overall"``, ``"is mixed against"``, with a note when
        every band is level."""
        if self.verdict == "dominates":
            return "dominates"
        if self.verdict == "behind overall":
            return "is behind overall against"
        if all(b.status == "level" for b in self.bands):
            return "is mixed (level in every band) against"
        return "is mixed against"


def format_se(se: float) -> str:
    """A standard error for print: two decimals, ``"< 0.01"`` when it rounds to zero, ``"n/a"``
    when unknown."""
    if not math.isfinite(se):
        return "n/a"
    return "< 0.01" if round(se, 2) == 0 else f"{se:.2f}"


def _k(tokens: float) -> str:
    return f"{tokens / 1000:.1f}k" if tokens >= 1000 else f"{tokens:.0f}"


def _cell(label: str | None, acc: float, tokens: float | None) -> str:
    if label is None or tokens is None:
        return "no point (counts 0)"
    return f"{label}: {acc:.2f}% / {_k(tokens)}"


def _questions(items: Sequence[str], cap: int) -> str:
    if not items:
        return "-"
    more = f" (+{len(items) - cap})" if len(items) > cap else ""
    return f"{len(items)}: " + " ".join(items[:cap]) + more


def _band(a: Sequence[CurvePoint], b: Sequence[CurvePoint], lower: float, upper: float,
          margin: float) -> Band:
    ia, ib = pick_at(a, upper), pick_at(b, upper)
    pa = a[ia] if ia is not None else None
    pb = b[ib] if ib is not None else None
    acc_a = pa.accuracy if pa else 0.0
    acc_b = pb.accuracy if pb else 0.0
    shapes = {k: v.shape for p in (pa, pb) if p is not None for k, v in p.correct.items()}
    keys = [k for k in shapes
            if (pa is None or k in pa.correct) and (pb is None or k in pb.correct)]
    diff = {}
    won: list[str] = []
    lost: list[str] = []
    for k in keys:
        ca = pa.correct[k].astype(np.float64) if pa else np.zeros(shapes[k])
        cb = pb.correct[k].astype(np.float64) if pb else np.zeros(shapes[k])
        if ca.shape != cb.shape:
            continue
        diff[k] = ca - cb
        qa, qb = ca.mean(axis=0), cb.mean(axis=0)
        for q in range(qa.size):
            if qa[q] - qb[q] >= margin:
                won.append(f"{k}#{q} {qb[q]:.2f}->{qa[q]:.2f}")
            elif qb[q] - qa[q] >= margin:
                lost.append(f"{k}#{q} {qb[q]:.2f}->{qa[q]:.2f}")
    if diff and len(diff) == len(shapes):
        d = round(100.0 * float(np.mean([v.mean() for v in diff.values()])), 2)
        se = clustered_se(diff)
    else:  # no paired data: the accuracies' difference, without a standard error
        d, se = round(acc_a - acc_b, 2), float("nan")
    if math.isfinite(se) and d > SE_FACTOR * se:
        status = "ahead"
    elif math.isfinite(se) and d < -SE_FACTOR * se:
        status = "behind"
    else:
        status = "level"
    return Band(lower, upper, pa.label if pa else None, pb.label if pb else None, acc_a, acc_b,
                pa.avg_tokens if pa else None, pb.avg_tokens if pb else None, d, se, status,
                tuple(won), tuple(lost))


def verdict(statuses: Sequence[str]) -> str:
    """The overall verdict from per-band statuses (:data:`VERDICT_RULE`)."""
    if all(s in ("ahead", "level") for s in statuses) and "ahead" in statuses:
        return "dominates"
    if all(s in ("behind", "level") for s in statuses) and "behind" in statuses:
        return "behind overall"
    return "mixed"


def compare_curves(a: Sequence[CurvePoint], b: Sequence[CurvePoint], grid: BudgetGrid, *,
                   name_a: str = "a", name_b: str = "b", margin: float = WIN_MARGIN,
                   bands: int = N_BANDS) -> Comparison:
    """Compare curve ``a`` with curve ``b`` band by band (module docstring).

    Points are paired on the stores both hold with the same ``[S, Q]`` shape (same seeds);
    when a band has no such pairing its difference carries no standard error and is *level*.

    Args:
        a, b: The curves (any order of points).
        grid: The score's budget grid; its range is split into ``bands`` bands.
        name_a, name_b: Names in the rendered table and verdict.
        margin: Share of seeds by which a question's accuracy must differ to be won or lost.
        bands: Number of bands.

    Returns:
        The :class:`Comparison`; ``verdict`` is "dominates", "behind overall" or "mixed".
    """
    out = tuple(_band(a, b, lo, hi, margin) for lo, hi in grid.bands(bands))
    return Comparison(name_a, name_b, out, verdict([x.status for x in out]))


def comparison_from_dict(d: Mapping[str, Any]) -> Comparison:
    """The inverse of :meth:`Comparison.to_dict` (a None float reads back as NaN).

    Raises:
        KeyError, TypeError, ValueError: ``d`` is not such a record.
    """
    def num(x: Any) -> float:
        return float("nan") if x is None else float(x)

    bands = tuple(
        Band(float(b["lower"]), float(b["upper"]), b["a"], b["b"], num(b["acc_a"]),
             num(b["acc_b"]), None if b["tokens_a"] is None else float(b["tokens_a"]),
             None if b["tokens_b"] is None else float(b["tokens_b"]), num(b["diff"]),
             num(b["se"]), str(b["status"]), tuple(map(str, b["won"])),
             tuple(map(str, b["lost"])))
        for b in d["bands"])
    return Comparison(str(d["a"]), str(d["b"]), bands, str(d["verdict"]))
