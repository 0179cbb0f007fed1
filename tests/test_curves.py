"""The curve score and the per-band comparison (tts_gym.evaluation.curves) against plain-Python
references written out loop by loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tts_gym.evaluation.curves import (
    BudgetGrid,
    CurvePoint,
    clustered_se,
    compare_curves,
    curve_score,
    format_se,
    pick_at,
    verdict,
)


def _point(label, acc, tok, correct=None):
    return CurvePoint(label, acc, tok, correct or {})


def _ref_score(curve, lo, hi, n):
    total = 0.0
    for i in range(n):
        b = 10 ** (math.log10(lo) + (math.log10(hi) - math.log10(lo)) * i / (n - 1))
        within = [acc for acc, tok in curve if tok <= b * (1 + 1e-12)]
        total += max(within) if within else 0.0
    return total / n


def test_score_matches_a_loop_reference():
    curve = [(40.0, 1000.0), (55.0, 8000.0), (52.0, 20000.0), (61.0, 90000.0)]
    grid = BudgetGrid(1500.0, 90000.0, 50)
    got = curve_score([_point(str(i), a, t) for i, (a, t) in enumerate(curve)], grid)
    assert got == pytest.approx(_ref_score(curve, 1500.0, 90000.0, 50), abs=1e-3)
    # a curve whose cheapest point is above the lowest budget counts 0 there
    assert curve_score([_point("x", 60.0, 1600.0)], grid) < 60.0
    assert curve_score([], grid) == 0.0


def test_pick_at_takes_best_accuracy_within_budget_then_fewer_tokens():
    curve = [_point("a", 50, 100), _point("b", 60, 300), _point("c", 60, 200), _point("d", 70, 900)]
    assert pick_at(curve, 50) is None
    assert pick_at(curve, 100) == 0
    assert pick_at(curve, 250) == 2
    assert pick_at(curve, 300) == 2  # same accuracy as b, fewer tokens
    assert pick_at(curve, 1e9) == 3


def test_grid_bands_are_equal_in_log_tokens_and_cover_the_range():
    grid = BudgetGrid(1000.0, 100000.0)
    bands = grid.bands(5)
    assert bands[0][0] == pytest.approx(1000.0) and bands[-1][1] == pytest.approx(100000.0)
    widths = [math.log(b) - math.log(a) for a, b in bands]
    assert widths == pytest.approx([widths[0]] * 5)
    assert "50 budgets" in grid.describe() and "1,000" in grid.describe()
    with pytest.raises(ValueError, match="lo < hi"):
        BudgetGrid(10.0, 5.0)
    assert BudgetGrid.from_dict(grid.to_dict()) == grid


def _ref_clustered_se(diffs):
    k = len(diffs)
    var = 0.0
    for d in diffs:
        s, q = len(d), len(d[0])
        per_q = [sum(d[i][j] for i in range(s)) / s for j in range(q)]
        m = sum(per_q) / q
        w = 1.0 / (k * q)
        var += w * w * q / (q - 1) * sum((x - m) ** 2 for x in per_q)
    return 100.0 * math.sqrt(var)


def test_clustered_se_matches_a_loop_reference():
    rng = np.random.default_rng(3)
    diffs = {f"s{i}": (rng.random((7, 11 + i)) < 0.5).astype(float)
             - (rng.random((7, 11 + i)) < 0.4).astype(float) for i in range(3)}
    assert clustered_se(diffs) == pytest.approx(
        _ref_clustered_se([d.tolist() for d in diffs.values()]))
    assert math.isnan(clustered_se({"one": np.zeros((3, 1))}))


def test_verdict_rule():
    assert verdict(["ahead", "level", "level"]) == "dominates"
    assert verdict(["behind", "level"]) == "behind overall"
    assert verdict(["ahead", "behind"]) == "mixed"
    assert verdict(["level", "level"]) == "mixed"
    assert format_se(0.004) == "< 0.01" and format_se(1.234) == "1.23"
    assert format_se(float("nan")) == "n/a"


def _curve(rng, accs, tokens, shape=(10, 30), stores=("m1/b", "m2/b")):
    pts = []
    for i, (p, t) in enumerate(zip(accs, tokens, strict=True)):
        correct = {k: rng.random(shape) < p for k in stores}
        acc = 100.0 * float(np.mean([c.mean() for c in correct.values()]))
        pts.append(CurvePoint(f"beta={i / 10:g}", round(acc, 2), t, correct))
    return pts


def test_compare_reads_each_band_at_the_scores_pick_and_pairs_episodes():
    rng = np.random.default_rng(0)
    grid = BudgetGrid(1000.0, 100000.0)
    a = _curve(rng, [0.3, 0.6, 0.9], [900.0, 9000.0, 90000.0])
    b = _curve(rng, [0.3, 0.6, 0.9], [2000.0, 20000.0, 99000.0])
    cmp = compare_curves(a, b, grid, name_a="new", name_b="old")
    assert len(cmp.bands) == 5
    first = cmp.bands[0]  # upper budget 2512: a's 900-token point, b's 2000-token point
    assert first.a == "beta=0" and first.b == "beta=0"
    for band in cmp.bands:
        ia, ib = pick_at(a, band.upper), pick_at(b, band.upper)
        pa, pb = a[ia], b[ib]
        ref = 100.0 * np.mean([pa.correct[k].mean() - pb.correct[k].mean() for k in pa.correct])
        assert band.diff == pytest.approx(round(ref, 2))
        want_se = clustered_se({k: pa.correct[k].astype(float) - pb.correct[k].astype(float)
                                for k in pa.correct})
        assert band.se == pytest.approx(want_se)
        expected = ("ahead" if band.diff > 2 * band.se else
                    "behind" if band.diff < -2 * band.se else "level")
        assert band.status == expected
    text = "\n".join(cmp.lines())
    assert "Verdict: new" in text and "old" in text


def test_a_curve_with_no_point_that_cheap_counts_zero_and_loses_the_band():
    rng = np.random.default_rng(1)
    grid = BudgetGrid(1000.0, 100000.0)
    cheap = _curve(rng, [0.7, 0.8], [1000.0, 50000.0])
    dear = _curve(rng, [0.7, 0.8], [30000.0, 60000.0])
    cmp = compare_curves(cheap, dear, grid)
    assert cmp.bands[0].b is None and cmp.bands[0].acc_b == 0.0
    assert cmp.bands[0].status == "ahead"
    assert "no point (counts 0)" in "\n".join(cmp.lines())


def test_identical_curves_are_level_everywhere_and_dominating_curves_dominate():
    rng = np.random.default_rng(2)
    grid = BudgetGrid(1000.0, 100000.0)
    a = _curve(rng, [0.5, 0.6], [1000.0, 100000.0])
    same = compare_curves(a, a, grid)
    assert {b.status for b in same.bands} == {"level"} and same.verdict == "mixed"
    assert "level in every band" in same.lines()[-1]
    worse = [CurvePoint(p.label, 0.0, p.avg_tokens,
                        {k: np.zeros_like(v) for k, v in p.correct.items()}) for p in a]
    assert compare_curves(a, worse, grid).verdict == "dominates"
    assert compare_curves(worse, a, grid).verdict == "behind overall"


def test_from_results_uses_eval_results(tiny):
    from tts_gym import evaluate, make_controller

    res = {"t": evaluate(make_controller("sc", {"n": 4}), tiny, [0, 1, 2])}
    p = CurvePoint.from_results("n=4", res)
    assert p.accuracy == res["t"].accuracy and p.avg_tokens == round(res["t"].avg_tokens, 1)
    assert p.correct["t"].shape == (3, tiny.n_questions)
