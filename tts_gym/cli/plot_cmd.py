"""``tts-gym plot``: accuracy vs tokens per (model, benchmark), from a sweep file or computed."""

from __future__ import annotations

import argparse
import sys

from tts_gym.cli.sweep_cmd import compute_sweep
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
    p.add_argument("--controllers", nargs="+", default=list(SWEEP_GRIDS), metavar="NAME",
                   help="controllers to plot (rows of --from, or the sweep to run)")
    add_grid_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load or compute the sweep, then write one PNG per (model, benchmark)."""
    require_extra("plot", "tts-gym plot")  # before reading or computing anything
    from tts_gym.reporting.files import read_rows
    from tts_gym.reporting.plot import plot_sweep

    if args.source:
        rows = read_rows(args.source)
        rows = [
            r
            for r in rows
            if (r["controller"] in args.controllers or str(r["controller"]).startswith("rl:"))
            and r["model"] in args.models
            and r["benchmark"] in args.benchmarks
        ]
    else:
        rows = compute_sweep(args)
    for path in plot_sweep(rows, args.out):
        print(path)
    print(f"{len(rows)} points plotted", file=sys.stderr)
    return 0
