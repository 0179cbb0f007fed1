"""Selection that survives noise, held-out scoring (only after selection), and the report.

Selection: the ``finalists`` candidates with the best curve-level score on the search split are
swept again with ``finalist_seeds`` seeds (sandboxed), and the one with the best score there is
chosen (ties: the earlier round); the paper's rule (the single (candidate, beta) point of
highest search accuracy at the search seed count) is reported beside it. Only then are the
held-out stores loaded. The chosen controller's top point is scored with ``final_seeds`` seeds
on every store, its held-out curve over the sweep with ``heldout_curve_seeds`` seeds, and it is
set beside CMC (at the same beta, and at the CMC beta whose held-out tokens are nearest) and
the seeds (at their best search knob, and as curves). The report answers "does it beat CMC"
with a table and a log-scale plot in the style of ``tts-gym plot``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from agents.synthesis.candidate import knob_label as _knob_label
from agents.synthesis.feedback import grid_of, scored_point, top_point
from agents.synthesis.history import History
from agents.synthesis.llm import Budget
from agents.synthesis.scoring import curve_point
from agents.synthesis.seeds import PAPER_SEEDS, SEED_SWEEPS
from agents.synthesis.sweep import run_sweep
from agents.synthesis.validate import declared_settings
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.evaluation.curves import (
    VERDICT_RULE,
    BudgetGrid,
    CurvePoint,
    compare_curves,
    comparison_from_dict,
    curve_score,
)
from tts_gym.io import write_json_atomic, write_text_atomic
from tts_gym.reporting.sweep import SWEEP_GRIDS
from tts_gym.store import ReplayStore, load_store

FINAL_TIMEOUT_FACTOR = 4
"""Final and finalist sweeps may take this many candidate timeouts."""
CMC_BETAS = SWEEP_GRIDS["cmc"][1]
"""CMC's betas wherever it is swept (``tts-gym sweep``'s grid)."""


def candidates(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidate rounds that ran."""
    return [e for e in entries if e.get("kind") == "candidate" and e.get("status") == "ok"]


def paper_pick(entries: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The paper's rule: best search top-point accuracy, then fewer tokens, then earlier."""
    ok = candidates(entries)
    if not ok:
        return None
    return min(ok, key=lambda e: (-e["metrics"]["best"]["accuracy"],
                                  e["metrics"]["best"]["avg_tokens"], e["round"]))


def select(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best candidate by curve-level score at the search seeds (ties: earlier round)."""
    ok = candidates(entries)
    if not ok:
        return None
    return max(ok, key=lambda e: (e["metrics"].get("score", 0.0), -e["round"]))


def _knob_values(cfg: Any, rec: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    if getattr(cfg, "no_beta", False):
        return "setting", tuple(declared_settings(rec["code"]))
    return "beta", tuple(cfg.betas)


def _progress(log: Callable[[str], None], what: str, total: int) -> Callable[[Any], None]:
    done = [0]
    step = max(1, total // 10)

    def tick(_result: Any) -> None:
        done[0] += 1
        if done[0] % step == 0 or done[0] == total:
            log(f"{what}: {done[0]}/{total} units")

    return tick


def rescore_finalists(cfg: Any, entries: Sequence[dict[str, Any]],
                      stores: Mapping[str, ReplayStore], grid: BudgetGrid | None,
                      log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Sweep the best ``cfg.finalists`` candidates again with ``cfg.finalist_seeds`` seeds."""
    ranked = sorted(candidates(entries), key=lambda e: (-e["metrics"].get("score", 0.0),
                                                         e["round"]))[: cfg.finalists]
    seeds = list(range(cfg.finalist_seeds))
    limits = dataclasses.replace(cfg.limits, timeout_s=cfg.limits.timeout_s * FINAL_TIMEOUT_FACTOR)
    out = []
    for rec in ranked:
        knob, values = _knob_values(cfg, rec)
        what = f"finalist round {rec['round']} ({len(seeds)} seeds)"
        log(f"{what}: sweeping {len(values)} {knob} values on {len(stores)} search store(s)")
        row = {"round": rec["round"], "search_score": rec["metrics"].get("score", 0.0),
               "knob": knob}
        try:
            run = run_sweep(rec["code"], stores, values, seeds, limits,
                            name=f"round{rec['round']}", filename=f"round{rec['round']}.py",
                            schedules=False, knob=knob,
                            progress=_progress(log, what, len(values) * len(seeds)))
        except Exception as exc:  # noqa: BLE001 - a failure of this finalist, not of the run
            row["error"] = _internal(exc, "re-scoring")
            log(f"{what}: {row['error']}")
            out.append(row)
            continue
        if run.status != "ok":
            row["error"] = str((run.error or {}).get("reason"))[:300]
        else:
            curve = [scored_point(run.results[v], {knob: v}) for v in values]
            i = top_point(curve)
            row.update(curve=curve, score=curve_score(curve, grid) if grid else 0.0,
                       best={knob: values[i], "accuracy": curve[i]["accuracy"],
                             "avg_tokens": curve[i]["avg_tokens"], "se": curve[i]["se"]})
        out.append(row)
    return out


def _internal(exc: Exception, stage: str) -> str:
    """One line for a failure of the trusted side while scoring a candidate (its type only:
    the text may quote candidate data, and the report is read beside prompts)."""
    return (f"{stage} failed on the trusted side ({type(exc).__name__}); recorded as a failure "
            "of this candidate (a tts-gym bug: please report it with the run folder)")


def _heldout_stores(cfg: Any, log: Callable[[str], None]) -> dict[str, ReplayStore]:
    out = {}
    for m in cfg.models:
        for b in cfg.heldout_benchmarks:
            try:
                s = load_store(m, b, cfg.data_dir)
            except (FileNotFoundError, ValueError) as exc:
                log(f"held-out store {m}/{b} not available ({exc}); skipped")
                continue
            out[s.name] = s
    return out


def _trusted_curve(name: str, knob: str, values: Sequence[Any], fixed: dict[str, Any],
                   stores: Mapping[str, ReplayStore], seeds: Sequence[int]
                   ) -> tuple[list[dict[str, Any]], list[CurvePoint]]:
    """A built-in's curve over ``values`` (in-process): the curve dicts and, for paired
    comparisons, the points with their per-episode detail."""
    curve, points = [], []
    for v in values:
        ctrl = make_controller(name, {knob: v, **fixed})
        res = {k: evaluate(ctrl, s, list(seeds)) for k, s in stores.items()}
        curve.append(curve_point(res, {knob: v}))
        points.append(CurvePoint.from_results(_knob_label(knob, v), res))
    return curve, points


def heldout_verdict(out: dict[str, Any], chosen_key: str, chosen_pts: Sequence[CurvePoint],
                    cmc_pts: Sequence[CurvePoint], paper_seeds: Sequence[str]) -> None:
    """Held-out scores of every curve in ``out["curves"]`` over the grid built from the paper's
    four seeds' held-out curves (like the search grid), and the per-band comparison of the
    chosen controller with CMC, paired on the chosen curve's seeds; written into ``out``."""
    base = [out["curves"][n] for n in paper_seeds if n in out["curves"]]
    if not base:
        return
    grid = BudgetGrid.spanning(base)
    out["heldout_grid"] = grid.to_dict()
    out["heldout_scores"] = {n: curve_score(c, grid) for n, c in out["curves"].items()}
    k = int(out["curve_seeds"])
    cmp = compare_curves(chosen_pts, [p.first_seeds(k) for p in cmc_pts], grid,
                         name_a=chosen_key, name_b="CMC")
    out["heldout_vs_cmc"] = {**cmp.to_dict(), "paired_seeds": k}


def final_numbers(cfg: Any, chosen: dict[str, Any], pick: dict[str, Any],
                  seed_record: dict[str, Any], search: Mapping[str, ReplayStore],
                  heldout: Mapping[str, ReplayStore], log: Callable[[str], None]) -> dict:
    """The chosen point on every store, curves on the held-out stores, CMC and the seeds, the
    held-out curve scores and the verdict against CMC (:func:`heldout_verdict`)."""
    knob, values = _knob_values(cfg, chosen)
    point = pick["best"][knob]
    seeds = list(range(cfg.final_seeds))
    limits = dataclasses.replace(cfg.limits, timeout_s=cfg.limits.timeout_s * FINAL_TIMEOUT_FACTOR)
    all_stores = {**search, **heldout}
    name = f"round {chosen['round']} ({knob}={point})"
    what = f"final scoring of {name}, {len(seeds)} seeds"
    log(f"{what}: {len(all_stores)} store(s)")
    run = run_sweep(chosen["code"], all_stores, [point], seeds, limits, name=name,
                    filename=f"round{chosen['round']}.py", schedules=False, knob=knob,
                    progress=_progress(log, what, len(seeds)))
    out: dict[str, Any] = {"chosen_name": name, "rows": {}, "curves": {}, "seeds": len(seeds),
                           "curve_seeds": cfg.heldout_curve_seeds}
    if run.status != "ok":
        out["rows"][name] = {"error": str((run.error or {}).get("reason"))[:300]}
        return out
    out["rows"][name] = curve_point(run.results[point], {knob: point})["per_store"]
    if heldout:
        cs = list(range(cfg.heldout_curve_seeds))
        what = f"held-out curve of round {chosen['round']}, {len(cs)} seeds"
        log(f"{what}: {len(values)} {knob} values")
        curve_run = run_sweep(chosen["code"], heldout, values, cs, limits, name=name,
                              filename=f"round{chosen['round']}.py", schedules=False, knob=knob,
                              progress=_progress(log, what, len(values) * len(cs)))
        chosen_key = f"round {chosen['round']}"
        chosen_pts: list[CurvePoint] = []
        if curve_run.status == "ok":
            out["curves"][chosen_key] = [
                scored_point(curve_run.results[v], {knob: v}) for v in values]
            chosen_pts = [CurvePoint.from_results(_knob_label(knob, v), curve_run.results[v])
                          for v in values]
        log(f"CMC and seeds on {len(heldout)} held-out store(s), {len(seeds)} seeds")
        cmc, cmc_pts = _trusted_curve("cmc", "beta", CMC_BETAS, {}, heldout, seeds)
        out["curves"]["cmc"] = cmc
        mine = np.mean([out["rows"][name][k]["avg_tokens"] for k in heldout])
        if knob == "beta" and point in CMC_BETAS:
            same = next(p for p in cmc if p["beta"] == point)
            out["rows"][f"cmc (same beta={point:g})"] = same["per_store"]
        near = min(cmc, key=lambda p: abs(np.log(p["avg_tokens"]) - np.log(max(1.0, mine))))
        out["rows"][f"cmc (nearest tokens, beta={near['beta']:g})"] = near["per_store"]
        for e in seed_record.get("seeds", []):
            if e.get("status") != "ok" or e["name"] == "cmc" or e["name"] not in SEED_SWEEPS:
                continue
            sk, sv, fixed = SEED_SWEEPS[e["name"]]
            best_v = e["best"][sk]
            curve, _ = _trusted_curve(e["name"], sk, sv, fixed, heldout, seeds)
            out["curves"][e["name"]] = curve
            out["rows"][f"{e['name']} ({sk}={best_v})"] = next(
                p for p in curve if p[sk] == best_v)["per_store"]
        if chosen_pts:
            heldout_verdict(out, chosen_key, chosen_pts, cmc_pts, PAPER_SEEDS)
    return out


def _rows_for_plot(curves: Mapping[str, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"controller": name, "avg_tokens": p["avg_tokens"], "accuracy": p["accuracy"]}
            for name, pts in curves.items() for p in pts]


def _plots(cfg: Any, entries: Sequence[dict[str, Any]], chosen: dict[str, Any] | None,
           final: Mapping[str, Any]) -> list[str]:
    """Log-scale plots in ``tts-gym plot``'s style: the search curves of every round and seed,
    and the held-out curves of the chosen controller, CMC and the seeds."""
    try:
        from tts_gym.reporting.plot import plot_group
    except ImportError:
        return []
    try:
        search: dict[str, list] = {}
        for e in entries:
            if e.get("kind") == "seeds":
                for s in e.get("seeds", []):
                    if s.get("status") == "ok":
                        search[s["name"]] = s["curve"]
            elif e.get("kind") == "candidate" and e.get("status") == "ok":
                star = " (chosen)" if chosen is not None and e["round"] == chosen["round"] else ""
                search[f"round {e['round']}{star}"] = e["metrics"]["curve"]
        made = [str(plot_group(_rows_for_plot(search), cfg.out / "search.png",
                               f"Search split: every round and seed ({cfg.seeds} seeds)"))]
        if final.get("curves"):
            made.append(str(plot_group(
                _rows_for_plot(final["curves"]), cfg.out / "heldout.png",
                f"Held-out mean: chosen ({final['curve_seeds']} seeds) vs CMC and seeds "
                f"({final['seeds']} seeds)")))
        return made
    except (ImportError, ValueError, RuntimeError):
        return []


def _mean_cell(per: Mapping[str, Any], keys: Sequence[str]) -> str:
    if "error" in per or not keys or any(k not in per for k in keys):
        return ""
    acc = sum(per[k]["accuracy"] for k in keys) / len(keys)
    tok = sum(per[k]["avg_tokens"] for k in keys) / len(keys)
    return f"{acc:.2f}% / {tok / 1000:.1f}k"


def _final_table(rows: Mapping[str, Any], search: Sequence[str]) -> list[str]:
    """Rows = stores (then the search and held-out means), columns = controllers."""
    names = list(rows)
    keys = sorted({k for v in rows.values() if "error" not in v for k in v})
    out = ["| store | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in keys:
        out.append(f"| {k} | " + " | ".join(_mean_cell(rows[n], [k]) for n in names) + " |")
    held = [k for k in keys if k not in search]
    models = sorted({k.split("/")[0] for k in held})
    groups = [("**search mean**", [k for k in keys if k in search]),
              *[(f"{m} held-out mean", [k for k in held if k.split("/")[0] == m])
                for m in models if len(models) > 1],
              ("**held-out mean**", held)]
    for label, ks in groups:
        if ks:
            out.append(f"| {label} | " + " | ".join(_mean_cell(rows[n], ks) for n in names) + " |")
    errors = [f"{n}: {rows[n]['error']}" for n in names if "error" in rows[n]]
    return out + ([""] + errors if errors else [])


def _verdict_lines(summary: Mapping[str, Any]) -> list[str]:
    """The verdict against CMC, its per-band table, the rule, and every held-out curve's
    score."""
    vs = summary.get("heldout_vs_cmc")
    out: list[str] = []
    if vs:
        cmp = comparison_from_dict(vs)
        out += [f"**Verdict: {cmp.name_a} {cmp.verdict_text()} CMC on the held-out stores** "
                f"(curves paired on {vs['paired_seeds']} seeds).", "", *cmp.lines()[:-1], "",
                f"The rule: {VERDICT_RULE}", ""]
    else:
        out += ["No verdict: the chosen controller has no held-out curve (no held-out store, or "
                "its held-out sweep failed).", ""]
    scores = summary.get("heldout_scores") or {}
    grid = summary.get("heldout_grid")
    if scores and grid:
        g = BudgetGrid.from_dict(grid)
        out += [f"Held-out curve scores ({g.describe()}, from the paper's four seeds' held-out "
                "curves, as on the search split):", "", "| curve | held-out score |", "|---|---|",
                *[f"| {n} | {v:.2f} |" for n, v in sorted(scores.items(), key=lambda x: -x[1])],
                ""]
    return out


def _rounds_table(entries: Sequence[dict[str, Any]]) -> list[str]:
    rows = ["| round | status | score | top point | search acc % (±se) | avg tokens | monotone "
            "| note |", "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        if e.get("kind") == "seeds":
            for s in e["seeds"]:
                if s["status"] != "ok":
                    rows.append(f"| 0 | {s['name']}: unavailable | | | | | | |")
                    continue
                b = s["best"]
                rows.append(f"| 0 | seed {s['name']} | {s.get('score', 0):.2f} | "
                            f"{s['knob']}={b[s['knob']]} | {b['accuracy']:.2f} "
                            f"(±{b.get('se', float('nan')):.2f}) | {b['avg_tokens']:,.0f} | | |")
            continue
        if e["status"] != "ok":
            reason = str(e.get("reason") or "").replace("|", "/").replace("\n", " ")[:90]
            rows.append(f"| {e['round']} | {e['status']} ({e['failure_kind']}) | | | | | | "
                        f"{reason} |")
            continue
        m = e["metrics"]
        knob = m.get("knob", "beta")
        mono = "yes" if m.get("checks", {}).get("monotone_spending", True) else "NO"
        rows.append(f"| {e['round']} | ok | {m.get('score', 0):.2f} | {knob}="
                    f"{m['best'][knob]} | {m['best']['accuracy']:.2f} "
                    f"(±{m['best'].get('se', float('nan')):.2f}) | "
                    f"{m['best']['avg_tokens']:,.0f} | {mono} | "
                    f"{len(m.get('schedule_issues') or [])} schedule issue(s) |")
    return rows


def _finalists_table(finalists: Sequence[dict[str, Any]], search_seeds: int,
                     finalist_seeds: int) -> list[str]:
    rows = [f"| round | score at {search_seeds} seeds | score at {finalist_seeds} seeds | "
            f"top point at {finalist_seeds} seeds |", "|---|---|---|---|"]
    for f in finalists:
        if "error" in f:
            rows.append(f"| {f['round']} | {f['search_score']:.2f} | failed: {f['error'][:60]} | |")
            continue
        b, k = f["best"], f["knob"]
        rows.append(f"| {f['round']} | {f['search_score']:.2f} | {f['score']:.2f} | {k}="
                    f"{b[k]}: {b['accuracy']:.2f}% (±{b['se']:.2f}) / {b['avg_tokens']:,.0f} |")
    return rows


def _spent_minutes(entries: Sequence[dict[str, Any]], extra_s: float) -> float:
    secs = sum(float(e.get("eval_seconds") or 0) + float((e.get("response") or {}).get("seconds")
                                                         or 0) for e in entries)
    return round((secs + extra_s) / 60.0, 1)


def finalize(
    cfg: Any,
    history: History,
    stores: Mapping[str, ReplayStore],
    stop: str | None,
    budget: Budget,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Select (finalists re-scored), score on held-out data, write ``report.md``."""
    start = time.monotonic()
    entries = history.entries()
    budget_grid = grid_of(entries[0]) if entries else None
    finalists = rescore_finalists(cfg, entries, stores, budget_grid, log) if candidates(
        entries) else []
    ok = [f for f in finalists if "error" not in f]
    pick = max(ok, key=lambda f: (f["score"], -f["round"])) if ok else None
    chosen = next(e for e in entries if e.get("round") == pick["round"]) if pick else None
    paper = paper_pick(entries)
    final: dict[str, Any] = {}
    if chosen is not None:
        write_text_atomic(cfg.out / "best" / "controller.py", chosen["code"])
        try:
            final = final_numbers(cfg, chosen, pick, entries[0], stores,
                                  _heldout_stores(cfg, log), log)
        except Exception as exc:  # noqa: BLE001 - a failure of the chosen candidate, recorded
            error = _internal(exc, "final scoring")
            log(f"final scoring of round {chosen['round']}: {error}")
            final = {"rows": {f"round {chosen['round']}": {"error": error}}, "curves": {}}
    plots = _plots(cfg, entries, chosen, final)
    done = [e["round"] for e in entries if e.get("kind") == "candidate"]
    minutes = _spent_minutes(entries, time.monotonic() - start)
    summary = {
        "rounds_done": done,
        "rounds_planned": cfg.rounds,
        "stop_reason": stop,
        "spent_usd": round(budget.spent_usd, 6),
        "spent_tokens": budget.spent_tokens,
        "minutes": minutes,
        "criterion": "budget-averaged accuracy over the seeds' token range, finalists re-scored",
        "chosen": None if pick is None else {
            "round": pick["round"], "score": pick["score"], **pick["best"],
            "file": str(cfg.out / "best" / "controller.py"),
        },
        "paper_rule": None if paper is None else {"round": paper["round"],
                                                  **paper["metrics"]["best"]},
        "finalists": finalists,
        "final": final.get("rows", {}),
        "final_seeds": cfg.final_seeds,
        "budget_grid": budget_grid.to_dict() if budget_grid is not None else None,
        "heldout_grid": final.get("heldout_grid"),
        "heldout_scores": final.get("heldout_scores", {}),
        "heldout_vs_cmc": final.get("heldout_vs_cmc"),
        "heldout_curves": final.get("curves", {}),
        "ablations": {"no_traces": bool(getattr(cfg, "no_traces", False)),
                      "no_beta": bool(getattr(cfg, "no_beta", False))},
    }
    from tts_gym.provenance import provenance, provenance_lines

    summary["provenance"] = provenance(
        stores=list(stores.values()), seeds=cfg.seeds, cost_mode="reference",
        executor="local", sandboxed=True, episode_cpu_s=cfg.limits.episode_cpu_s,
        final_seeds=cfg.final_seeds)
    write_json_atomic(cfg.out / "summary.json", summary)
    write_text_atomic(cfg.out / "report.md", "\n".join(
        [*_report_lines(cfg, entries, stores, stop, budget, summary, pick, paper, plots),
         *provenance_lines(summary["provenance"])]))
    log(f"report: {cfg.out / 'report.md'}")
    return summary


def _report_lines(cfg: Any, entries: Sequence[dict[str, Any]], stores: Mapping[str, Any],
                  stop: str | None, budget: Budget, summary: dict[str, Any],
                  pick: dict[str, Any] | None, paper: dict[str, Any] | None,
                  plots: Sequence[str]) -> list[str]:
    done = summary["rounds_done"]
    ablations = [k for k, v in summary["ablations"].items() if v]
    lines = [
        "# Controller discovery report",
        "",
        f"Endpoint model `{cfg.llm.model}`; search stores: {', '.join(stores)}; "
        + ("settings declared by each candidate (--no-beta)" if getattr(cfg, "no_beta", False)
           else f"betas {list(cfg.betas)}")
        + f"; {cfg.seeds} seeds during search."
        + (f" Ablations: {', '.join(ablations)}." if ablations else ""),
        f"Rounds finished: {len(done)} of {cfg.rounds}. "
        + (f"Stopped early: {stop}." if stop else "Completed."),
        f"Cost: {budget.spent_tokens:,} LLM tokens, ${budget.spent_usd:.4f}"
        + ("" if cfg.pricing.priced else " (no prices configured)")
        + f", {summary['minutes']} minutes of evaluation and LLM calls.",
        "",
        "## Rounds (search split)",
        "",
        "Score: the mean, over 50 budgets log-spaced across the seeds' token range, of the best "
        "accuracy a curve reaches within each budget. ± is the standard error from seed-to-seed "
        "variation within each question.",
        "",
        *_rounds_table(entries),
        "",
    ]
    if pick is None:
        return lines + ["No candidate ran successfully; nothing was selected.", ""]
    k = pick["knob"]
    lines += [
        f"## Selection ({cfg.finalists} finalists re-scored with {cfg.finalist_seeds} seeds)",
        "",
        *_finalists_table(summary["finalists"], cfg.seeds, cfg.finalist_seeds),
        "",
        f"**Chosen: round {pick['round']}** (best score at {cfg.finalist_seeds} seeds), top "
        f"point {k}={pick['best'][k]}. File: `best/controller.py` (score it with `tts-gym eval "
        f"file:{cfg.out}/best/controller.py --param {k}={pick['best'][k]} --model M "
        "--benchmark B`; it runs in the sandbox).",
    ]
    if paper is not None:
        pb = paper["metrics"]["best"]
        pk = paper["metrics"].get("knob", "beta")
        same = "the same round" if paper["round"] == pick["round"] else f"round {paper['round']}"
        lines.append(f"The paper's rule (best single search point at {cfg.seeds} seeds) picks "
                     f"{same} at {pk}={pb[pk]}: {pb['accuracy']:.2f}% / {pb['avg_tokens']:,.0f}.")
    lines += [
        "",
        "## Does it beat CMC? (held-out, scored only after selection)",
        "",
        *_verdict_lines(summary),
        f"Cells: accuracy / average tokens per question ({summary['final_seeds']} seeds). CMC "
        "is shown at the same beta and at the beta whose held-out tokens are nearest the "
        "chosen point's; each seed at its best search budget.",
        "",
        *_final_table(summary["final"], list(stores)),
        "",
    ]
    for p in plots:
        name = p.rsplit("/", 1)[-1]
        lines += [f"![{name}]({name})", ""]
    chosen = next(e for e in entries if e.get("round") == pick["round"])
    lines += ["## Chosen code", "", "```python", chosen["code"].rstrip(), "```", ""]
    return lines
