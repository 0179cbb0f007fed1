"""``tts-gym sweep``: each controller over its budget grid (the paper's scaling curves)."""

from __future__ import annotations

import argparse

from tts_gym.cli.table_cmd import CellBar, add_grid_args, grid_run_kwargs, rows_provenance


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` sub-command."""
    from tts_gym.reporting.sweep import SWEEP_GRIDS

    grids = "; ".join(f"{k}: {v[0]} in {', '.join(map(str, v[1]))}" for k, v in SWEEP_GRIDS.items())
    p = sub.add_parser(
        "sweep",
        help="budget sweeps (accuracy vs tokens) with Pareto frontiers",
        description=f"Evaluate each controller over its budget grid ({grids}) on every "
        "(model, benchmark); print a markdown summary, write rows with --csv/--json "
        "(input of `tts-gym plot --from`).",
    )
    p.add_argument(
        "--controllers",
        nargs="+",
        default=list(SWEEP_GRIDS),
        metavar="NAME",
        help="registered names or file:PATH (your own controller; sandboxed unless --trusted)",
    )
    add_sweep_grid_arg(p)
    add_grid_args(p)
    p.set_defaults(func=run)


def add_sweep_grid_arg(p: argparse.ArgumentParser) -> None:
    """Repeatable ``--grid NAME:KEY=V1,V2,...``."""
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME:KEY=V1,V2",
        help="a controller's grid, repeatable (e.g. --grid file:my.py:n=4,16,64 or --grid "
        "asc:max_samples=8,64); a file whose Controller takes beta sweeps beta 0.0..1.0 "
        "without one",
    )


def grids_from(args: argparse.Namespace) -> dict:
    """``--grid`` options as ``{NAME: (KEY, values)}``."""
    from tts_gym.reporting.sweep import parse_grid_option

    out = {}
    for text in getattr(args, "grid", []) or []:
        name, key, values = parse_grid_option(text)
        out[name] = (key, values)
    return out


def sweep_markdown(rows: list[dict]) -> str:
    """Rows as a markdown table (``*`` marks Pareto-optimal points; RL rows by ``--rl`` NAME)."""

    def name(r: dict) -> str:
        rl = str(r["controller"]).startswith("rl:")
        return str(r.get("label") or r["controller"]) if rl else str(r["controller"])

    from tts_gym.reporting.table import format_tokens

    lines = [
        "| Model | Benchmark | Controller | Budget | Accuracy | Tokens | Pareto |",
        "|---|---|---|---|---:|---:|:---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['benchmark']} | {name(r)} | "
            f"{r['budget_param']}={r['budget']} | {r['accuracy']:.2f} | "
            f"{format_tokens(r['avg_tokens'])} | {'*' if r['pareto'] else ''} |"
        )
    return "\n".join(lines)


def compute_sweep(args: argparse.Namespace) -> list[dict]:
    """Run the sweep the grid arguments describe (progress bar on a terminal) and write the
    rows to ``--csv`` / ``--json`` if asked; ``tts-gym plot`` without ``--from`` uses it too."""
    from tts_gym.cli.executor_options import executor_from_args
    from tts_gym.reporting import sweep
    from tts_gym.reporting.files import write_rows_csv, write_rows_json

    bar = CellBar("sweep", enabled=not args.no_progress)
    try:
        with executor_from_args(args, args.workers):
            rows = sweep(args.controllers, args.models, args.benchmarks,
                         grids=grids_from(args), **grid_run_kwargs(args, bar))
    finally:
        bar.close()
    if args.csv:
        write_rows_csv(args.csv, rows)
    if args.json:
        write_rows_json(args.json, rows, seeds=args.seeds,
                        provenance=rows_provenance(args, rows, args.seeds))
    return rows


def run(args: argparse.Namespace) -> int:
    """Run the sweep, print it, write files."""
    print(sweep_markdown(compute_sweep(args)))
    return 0
