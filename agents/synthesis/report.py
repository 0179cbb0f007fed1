"""Selection, held-out scoring (only after selection), ``report.md`` and the scaling plot.

Selection: among the candidates that ran, the (controller, beta) with the best mean search
accuracy; ties go to fewer tokens, then the earlier round. Only then are held-out stores
loaded: the chosen controller (in the sandbox, at its beta) and the seeds (at their best search
knob) are scored with ``final_seeds`` shuffle seeds on the search and held-out stores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.synthesis.history import History
from agents.synthesis.llm import Budget
from agents.synthesis.scoring import curve_point
from agents.synthesis.seeds import SEED_SWEEPS
from agents.synthesis.sweep import run_sweep
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.io import write_json_atomic, write_text_atomic
from tts_gym.store import ReplayStore, load_store

FINAL_TIMEOUT_FACTOR = 4
"""The final scoring (all stores, ``final_seeds`` seeds) may take this many candidate timeouts."""


def select(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The chosen candidate round: best search accuracy, then fewer tokens, then earlier."""
    ok = [e for e in entries if e.get("kind") == "candidate" and e.get("status") == "ok"]
    if not ok:
        return None
    return min(
        ok,
        key=lambda e: (
            -e["metrics"]["best"]["accuracy"],
            e["metrics"]["best"]["avg_tokens"],
            e["round"],
        ),
    )


def _heldout_stores(cfg: Any, log: Callable[[str], None]) -> dict[str, ReplayStore]:
    out = {}
    for m in cfg.models:
        for b in cfg.heldout_benchmarks:
            try:
                s = load_store(m, b, cfg.data_dir)
            except FileNotFoundError:
                log(f"held-out store {m}/{b} not found; skipped")
                continue
            out[s.name] = s
    return out


def _final_numbers(
    chosen: dict[str, Any],
    seed_record: dict[str, Any],
    stores: Mapping[str, ReplayStore],
    cfg: Any,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """``name -> {store -> {accuracy, avg_tokens}}`` with ``final_seeds`` seeds."""
    seeds = list(range(cfg.final_seeds))
    beta = chosen["metrics"]["best"]["beta"]
    log(f"final scoring: round {chosen['round']} at beta={beta:g}, {len(seeds)} seeds")
    # more stores and seeds than one search sweep: allow FINAL_TIMEOUT_FACTOR x the limit
    limits = dataclasses.replace(cfg.limits, timeout_s=cfg.limits.timeout_s * FINAL_TIMEOUT_FACTOR)
    run = run_sweep(chosen["code"], stores, [beta], seeds, limits, name=f"round{chosen['round']}",
                    filename=f"round{chosen['round']}.py", schedules=False)
    table: dict[str, Any] = {}
    name = f"round {chosen['round']} (beta={beta:g})"
    if run.status != "ok":
        err = run.error or {}
        table[name] = {"error": f"{err.get('kind')}: {str(err.get('reason'))[:300]}"}
    else:
        table[name] = curve_point(run.results[float(beta)], {"beta": beta})["per_store"]
    for e in seed_record["seeds"]:
        if e["status"] != "ok":
            continue
        knob, _values, fixed = SEED_SWEEPS[e["name"]]
        v = e["best"][knob]
        ctrl = make_controller(e["name"], {knob: v, **fixed})
        res = {k: evaluate(ctrl, s, seeds) for k, s in stores.items()}
        table[f"{e['name']} ({knob}={v})"] = curve_point(res, {knob: v})["per_store"]
    return table


def _plot(entries: list[dict[str, Any]], chosen: dict[str, Any] | None, path: Any) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for e in entries:
        if e.get("kind") == "seeds":
            for s in e["seeds"]:
                if s["status"] == "ok":
                    c = s["curve"]
                    ax.plot(
                        [p["avg_tokens"] / 1000 for p in c],
                        [p["accuracy"] for p in c],
                        "--o",
                        ms=3,
                        label=s["name"],
                    )
        elif e.get("status") == "ok":
            c = e["metrics"]["curve"]
            is_best = chosen is not None and e["round"] == chosen["round"]
            ax.plot(
                [p["avg_tokens"] / 1000 for p in c],
                [p["accuracy"] for p in c],
                "-o" if is_best else "-",
                ms=3,
                lw=2.2 if is_best else 0.8,
                alpha=1.0 if is_best else 0.5,
                label=f"round {e['round']}",
            )
    ax.set_xlabel("average tokens per question (thousands)")
    ax.set_ylabel("search accuracy (%)")
    ax.set_title("Scaling curves on the search split (beta sweep / seed budget sweep)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _rounds_table(entries: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| round | status | best beta | search acc % | avg tokens | monotone | trace ok | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        if e.get("kind") == "seeds":
            for s in e["seeds"]:
                if s["status"] != "ok":
                    rows.append(f"| 0 | {s['name']}: unavailable | | | | | | |")
                    continue
                b = s["best"]
                rows.append(
                    f"| 0 | seed {s['name']} | {s['knob']}={b[s['knob']]} | {b['accuracy']:.2f} "
                    f"| {b['avg_tokens']:.0f} | | | |"
                )
            continue
        if e["status"] != "ok":
            reason = str(e.get("reason") or "").replace("|", "/").replace("\n", " ")[:90]
            rows.append(
                f"| {e['round']} | {e['status']} ({e['failure_kind']}) | | | | | | {reason} |"
            )
            continue
        m = e["metrics"]
        rows.append(
            f"| {e['round']} | ok | {m['best']['beta']:g} | {m['best']['accuracy']:.2f} | "
            f"{m['best']['avg_tokens']:.0f} | {'yes' if m['checks']['monotone_spending'] else 'NO'}"
            f" | {'yes' if m['checks']['trace_ok'] else 'NO'} | "
            f"{len(m['schedule_issues'])} schedule issue(s) |"
        )
    return rows


def _final_table(final: Mapping[str, Any], search: Sequence[str]) -> list[str]:
    """Rows = stores (then the search and held-out means), columns = controllers."""
    names = list(final)
    keys = sorted({k for v in final.values() if "error" not in v for k in v})
    rows = ["| store | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    errors = [f"{n}: {final[n]['error']}" for n in names if "error" in final[n]]

    def cell(name: str, ks: Sequence[str]) -> str:
        per = final[name]
        if "error" in per or not ks or any(k not in per for k in ks):
            return ""
        acc = sum(per[k]["accuracy"] for k in ks) / len(ks)
        tok = sum(per[k]["avg_tokens"] for k in ks) / len(ks)
        return f"{acc:.2f}% / {tok / 1000:.1f}k"

    for k in keys:
        rows.append(f"| {k} | " + " | ".join(cell(n, [k]) for n in names) + " |")
    groups = (
        ("**search mean**", [k for k in keys if k in search]),
        ("**held-out mean**", [k for k in keys if k not in search]),
    )
    for label, ks in groups:
        if ks:
            rows.append(f"| {label} | " + " | ".join(cell(n, ks) for n in names) + " |")
    return rows + ([""] + errors if errors else [])


def finalize(
    cfg: Any,
    history: History,
    stores: Mapping[str, ReplayStore],
    stop: str | None,
    budget: Budget,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Select, score the chosen controller on held-out data, write ``report.md``."""
    entries = history.entries()
    chosen = select(entries)
    final: dict[str, Any] = {}
    if chosen is not None:
        write_text_atomic(cfg.out / "best" / "controller.py", chosen["code"])
        all_stores = {**stores, **_heldout_stores(cfg, log)}
        final = _final_numbers(chosen, entries[0], all_stores, cfg, log)
    plotted = _plot(entries, chosen, cfg.out / "scaling.png")
    done = [e["round"] for e in entries if e.get("kind") == "candidate"]
    summary = {
        "rounds_done": done,
        "rounds_planned": cfg.rounds,
        "stop_reason": stop,
        "spent_usd": round(budget.spent_usd, 6),
        "spent_tokens": budget.spent_tokens,
        "chosen": None
        if chosen is None
        else {
            "round": chosen["round"],
            **chosen["metrics"]["best"],
            "file": str(cfg.out / "best" / "controller.py"),
        },
        "final": final,
        "final_seeds": cfg.final_seeds,
    }
    write_json_atomic(cfg.out / "summary.json", summary)
    lines = [
        "# Controller discovery report",
        "",
        f"Endpoint model `{cfg.llm.model}`; search stores: {', '.join(stores)}; "
        f"betas {list(cfg.betas)}; {cfg.seeds} seeds during search.",
        f"Rounds finished: {len(done)} of {cfg.rounds}. "
        + (f"Stopped early: {stop}." if stop else "Completed."),
        f"LLM usage: {budget.spent_tokens} tokens, ${budget.spent_usd:.4f}"
        + ("" if cfg.pricing.priced else " (no prices configured)")
        + ".",
        "",
        "## Rounds (search split)",
        "",
        *_rounds_table(entries),
        "",
    ]
    if chosen is None:
        lines += ["No candidate ran successfully; nothing was selected.", ""]
    else:
        b = chosen["metrics"]["best"]
        lines += [
            "## Selected controller",
            "",
            f"Round {chosen['round']} at beta = {b['beta']:g}: search accuracy "
            f"{b['accuracy']:.2f}% at {b['avg_tokens']:.0f} tokens ({cfg.seeds} seeds). "
            f"File: `best/controller.py` (score it with `tts-gym eval file:{cfg.out}/best/"
            f"controller.py --param beta={b['beta']:g} --model M --benchmark B`).",
            "",
            f"## Final numbers ({cfg.final_seeds} seeds; held-out scored only after selection)",
            "",
            "Cells: accuracy / average tokens per question.",
            "",
            *_final_table(final, list(stores)),
            "",
        ]
    if plotted:
        lines += ["## Scaling curves", "", "![scaling](scaling.png)", ""]
    if chosen is not None:
        lines += ["## Chosen code", "", "```python", chosen["code"].rstrip(), "```", ""]
    write_text_atomic(cfg.out / "report.md", "\n".join(lines))
    log(f"report: {cfg.out / 'report.md'}")
    return summary
