"""``tts-gym plot``: accuracy vs tokens per (model, benchmark), from a sweep file or computed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tts_gym.cli.sweep_cmd import add_sweep_grid_arg, compute_sweep
from tts_gym.cli.table_cmd import add_grid_args
from tts_gym.extras import require_extra


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plot`` sub-command."""
    from tts_gym.reporting.sweep import SWEEP_GRIDS

    p = sub.add_parser(
        "plot",
        help="accuracy-vs-tokens PNGs (log x, Pareto frontier), one per (model, benchmark)",
        description="Plot every controller's budget curve (the paper's Figure 3 style) as "
        "<out>/<model>_<benchmark>.png. Reads rows written by `tts-gym sweep --csv/--json` "
        "(--from), or runs the sweep first. Needs matplotlib (pip install 'tts-gym[plot]').",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
    p.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        default=None,
        help="a sweep .csv or .json (default: compute the sweep)",
    )
    p.add_argument("--controllers", nargs="+", default=None, metavar="NAME",
                   help="registered names or file:PATH; with --from: only these curves (when "
                   "omitted: every curve of the file); without --from: the sweep to run (when "
                   f"omitted: {' '.join(SWEEP_GRIDS)})")
    add_sweep_grid_arg(p)
    add_grid_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load or compute the sweep, then write one PNG per (model, benchmark)."""
    require_extra("plot", "tts-gym plot")  # before reading or computing anything
    from tts_gym.reporting.files import read_rows
    from tts_gym.reporting.plot import curve_of, plot_sweep, split_plottable

    if args.source:
        rows, left_out = select_rows(read_rows(args.source), args)
    else:
        if args.controllers is None:
            from tts_gym.reporting.sweep import SWEEP_GRIDS

            args.controllers = list(SWEEP_GRIDS)
        rows, left_out = compute_sweep(args), []
    rows, bad = split_plottable(rows)
    left_out += [(f"{r.get('model')}/{r.get('benchmark')} {curve_of(r)} "
                  f"{r.get('budget_param', '')}={r.get('budget', '')}", why) for r, why in bad]
    if not rows:
        raise ValueError("No sweep row left to plot" + (
            f" ({len(left_out)} left out: {left_out[0][1]})" if left_out else "") + ".")
    for path in plot_sweep(rows, args.out):
        print(path)
    for what, why in left_out:
        print(f"tts-gym plot: left out {what}: {why}", file=sys.stderr)
    print(f"{len(rows)} points plotted" + (f", {sum(n_of(w) for w, _ in left_out)} rows left "
          "out (named above)" if left_out else ""), file=sys.stderr)
    return 0


def n_of(what: str) -> int:
    """The row count a left-out line stands for (``"3 rows of ..."``), else 1."""
    head = what.split(" ", 1)[0]
    return int(head) if head.isdigit() and " rows of " in what else 1


def select_rows(rows: list[dict], args: argparse.Namespace) -> tuple[list[dict], list]:
    """The rows of a sweep file that ``--controllers``, ``--models`` and ``--benchmarks`` keep
    (every controller when ``--controllers`` is not given), and for each group left out a line
    ``(what, why)``."""
    from tts_gym.reporting.plot import curve_of

    kept: list[dict[str, Any]] = []
    out: dict[tuple[str, str, str, str], int] = {}
    for r in rows:
        why = None
        if args.controllers is not None and r["controller"] not in args.controllers and not (
                str(r["controller"]).startswith("rl:")):
            why = "not among --controllers"
        elif r["model"] not in args.models:
            why = "model not among --models"
        elif r["benchmark"] not in args.benchmarks:
            why = "benchmark not among --benchmarks"
        if why is None:
            kept.append(r)
        else:
            key = (curve_of(r), r["model"], r["benchmark"], why)
            out[key] = out.get(key, 0) + 1
    return kept, [(f"{n} rows of {c} on {m}/{b}", why) for (c, m, b, why), n in out.items()]
