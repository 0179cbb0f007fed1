"""``tts-gym eval``: score one controller on one store with the published protocol."""

from __future__ import annotations

import argparse
import json
import sys

from tts_gym.cli.common import (
    add_param_args,
    add_store_args,
    default_workers,
    params_from,
    positive_int,
    progress_bar,
)
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.store import load_store


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` sub-command."""
    p = sub.add_parser(
        "eval",
        help="score a controller (accuracy, avg tokens) on one store",
        description="Run the 100-seed protocol for a controller: a registered "
        "name (sc, asc, esc, parallel-probe, cmc), file:PATH.py or rl:MODEL.zip.",
    )
    p.add_argument("controller", help="controller name, file:PATH or scheme:VALUE")
    add_store_args(p)
    add_param_args(p)
    p.add_argument("--seeds", type=positive_int, default=100, help="shuffle seeds (default 100)")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="processes for the handle path (default: every core)",
    )
    p.add_argument("--cost-mode", choices=("reference", "exact"), default="reference")
    p.add_argument(
        "--path",
        choices=("auto", "batch", "handle"),
        default="auto",
        help="auto: jitted batch kernel when the controller has one",
    )
    p.add_argument(
        "--traces",
        metavar="FILE",
        default=None,
        help="write per-episode execution traces as JSON to FILE (handle path): a list of "
        "{seed, question, answer, correct, tokens, events}",
    )
    p.add_argument(
        "--detail",
        action="store_true",
        help="also per-question and per-seed accuracy (%%) and tokens (a table, or JSON lists "
        "with --json)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the result."""
    controller = make_controller(args.controller, params_from(args))
    store = load_store(args.model, args.benchmark, args.data_dir)
    workers = args.workers or default_workers()
    with progress_bar(
        args.seeds, f"{args.controller} {store.name}", enabled=sys.stderr.isatty()
    ) as bar:
        result = evaluate(
            controller,
            store,
            args.seeds,
            workers=workers,
            traces=args.traces is not None,
            cost_mode=args.cost_mode,
            path=args.path,
            progress=bar.update,
        )
    out = result.to_dict(detail=args.detail)
    if args.traces:
        from tts_gym.io import write_json_atomic

        write_json_atomic(args.traces, result.labelled_traces())
    if args.json:
        print(json.dumps(out))
        return 0
    label = (
        ""
        if args.cost_mode == "reference"
        else "  [exact cost mode: NOT comparable with the paper]"
    )
    print(
        f"{result.controller} {result.params} on {store.name} ({store.split}), "
        f"{len(result.seeds)} seeds{label}"
    )
    print(f"  accuracy   {result.accuracy:.2f} %")
    print(f"  avg tokens {result.avg_tokens:,.1f}  ({result.avg_tokens / 1000:.1f}k)")
    print(f"  path {result.path}, {result.seconds:.3f} s")
    if args.detail:
        print_detail(out, result.seeds)
    if args.traces:
        print(f"  traces     {args.traces} ({len(result.seeds)} seeds x "
              f"{result.correct.shape[1]} questions)")
    return 0


def print_detail(out: dict, seeds: list[int]) -> None:
    """The ``--detail`` lists of :meth:`EvalResult.to_dict` as two small tables."""
    print(f"\n  {'question':>8} {'accuracy %':>11} {'avg tokens':>12}")
    for q, (acc, tok) in enumerate(
        zip(out["per_question_accuracy"], out["per_question_tokens"], strict=True)
    ):
        print(f"  {q:>8} {acc:>11.2f} {tok:>12,.1f}")
    print(f"\n  {'seed':>8} {'accuracy %':>11} {'avg tokens':>12}")
    for seed, acc, tok in zip(
        seeds,
        out["per_seed_accuracy"],
        out["per_seed_tokens"],
        strict=True,
    ):
        print(f"  {seed:>8} {acc:>11.2f} {tok:>12,.1f}")
