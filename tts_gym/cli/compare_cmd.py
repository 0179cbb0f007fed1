"""``tts-gym compare A B``: two controllers or sweep files, band by band, with the verdict."""

from __future__ import annotations

import argparse
import json

from tts_gym.cli.common import add_episode_cpu_arg, positive_int
from tts_gym.cli.sweep_cmd import add_sweep_grid_arg, grids_from


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command."""
    p = sub.add_parser(
        "compare",
        help="compare two controllers (or two `sweep --json` files) band by band, with the "
        "verdict",
        description="Compare curve A with curve B in 5 budget bands with paired, "
        "question-clustered standard errors and the discovery loop's verdict rule "
        "(tts_gym.evaluation.curves.compare_curves). A and B are controllers (a registered "
        "name or file:PATH, swept over their grids on --models x --benchmarks) or files of "
        "`tts-gym sweep --json` (FILE.json, or FILE.json#CURVE when it holds several curves). "
        "The budget grid spans the curves of SC, ASC, ESC and Parallel-Probe on the same "
        "stores and seeds, unless --budgets.",
    )
    p.add_argument("a", metavar="A", help="controller (cmc, file:mine.py) or sweep FILE.json")
    p.add_argument("b", metavar="B", help="the other one")
    p.add_argument("--models", nargs="+", default=["Qwen3-8B"], metavar="MODEL",
                   help="stores of the controllers computed here (default: %(default)s; a "
                   "file's own stores otherwise)")
    p.add_argument("--benchmarks", nargs="+", default=["aime24"], metavar="BENCH",
                   help="(default: %(default)s)")
    p.add_argument("--seeds", type=positive_int, default=100,
                   help="shuffle seeds of the controllers computed here (default: %(default)s)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="processes (default: every core)")
    p.add_argument("--data-dir", default=None,
                   help="folder with <model>/<benchmark>.json (default: TTS_GYM_DATA, else the "
                   "download cache)")
    add_sweep_grid_arg(p)
    p.add_argument("--budgets", metavar="LO,HI", default=None,
                   help="budget grid from LO to HI tokens per question (default: the span of "
                   "the four seed controllers' curves)")
    p.add_argument("--trusted", action="store_true",
                   help="file: controllers: import them in this process (your own code)")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="file: controllers: sandbox without a required isolation layer")
    add_episode_cpu_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def parse_budgets(text: str | None) -> tuple[float, float] | None:
    """``"LO,HI"`` -> ``(lo, hi)``.

    Raises:
        ValueError: Not two numbers.
    """
    if text is None:
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(x) for x in parts)
    except ValueError:
        raise ValueError(f"--budgets {text!r} must be two numbers LO,HI "
                         "(tokens per question, e.g. 5000,200000).") from None
    return lo, hi


def run(args: argparse.Namespace) -> int:
    """Compare and print the table and the verdict."""
    from tts_gym.cli.table_cmd import file_options
    from tts_gym.evaluation.curves import VERDICT_RULE
    from tts_gym.provenance import provenance
    from tts_gym.reporting.compare import compare

    cmp, grid = compare(args.a, args.b, models=args.models, benchmarks=args.benchmarks,
                        seeds=args.seeds, grids=grids_from(args),
                        budgets=parse_budgets(args.budgets), workers=args.workers,
                        data_dir=args.data_dir, files=file_options(args))
    if args.json:
        print(json.dumps({**cmp.to_dict(), "grid": grid.to_dict(), "rule": VERDICT_RULE,
                          "provenance": provenance(executor="local")}))
        return 0
    print(f"{cmp.name_a} against {cmp.name_b} over {grid.describe()}:\n")
    print("\n".join(cmp.lines()))
    print(f"\nRule: {VERDICT_RULE}")
    return 0
