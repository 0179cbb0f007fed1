"""``tts-gym eval``: score one controller on one store with the published protocol."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tts_gym.cli import CliError
from tts_gym.cli.common import (
    add_episode_cpu_arg,
    add_param_args,
    add_store_args,
    default_workers,
    params_from,
    positive_int,
    progress_bar,
)
from tts_gym.cli.executor_options import add_executor_args, check_executor_args, executor_from_args
from tts_gym.controller import make_controller
from tts_gym.evaluation import EvalResult, evaluate
from tts_gym.store import load_store


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` sub-command."""
    p = sub.add_parser(
        "eval",
        help="score a controller (accuracy, avg tokens) on one store",
        description="Run the 100-seed protocol for a controller: a registered "
        "name (sc, asc, esc, parallel-probe, cmc), file:PATH.py or rl:MODEL.zip. A file: "
        "controller runs in the sandbox (OS-isolated processes behind a broker that holds the "
        "data; see `tts-gym sandbox-check`) unless --trusted.",
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
    p.add_argument("--cost-mode", choices=("reference", "exact"), default="reference",
                   help="reference: the paper's token accounting; exact: probing to the end "
                   "costs exactly T (not comparable with the paper)")
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
    p.add_argument(
        "--trusted",
        action="store_true",
        help="file: only: import the file in this process (your own code: any imports, a "
        "debugger); without it, the file runs in the sandbox",
    )
    p.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="file: only: run in the sandbox even where a required isolation layer is missing",
    )
    p.add_argument("--debug", action="store_true",
                   help="on a controller error, print its traceback too")
    add_episode_cpu_arg(p)
    add_executor_args(p)
    p.set_defaults(func=run)


MAX_SOURCE_BYTES = 1 << 20


def _sandboxed(args: argparse.Namespace, store: Any, workers: int, bar: Any) -> EvalResult:
    """Score ``file:PATH`` in the sandbox (the default for files)."""
    from tts_gym.sandbox.evaluate import evaluate_source
    from tts_gym.sandbox.layers import require
    from tts_gym.sandbox.limits import SandboxLimits

    path = Path(args.controller.split(":", 1)[1])
    if not path.is_file():
        raise CliError(f"controller file {path} does not exist.")
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise CliError(f"controller file {path} is larger than {MAX_SOURCE_BYTES} bytes.")
    limits = SandboxLimits.per_episode(args.episode_cpu, workers=workers,
                                       unsafe=args.unsafe_no_isolation)
    require(limits)
    return evaluate_source(
        path.read_text(errors="replace"), store, args.seeds, params=params_from(args),
        filename=path.name, limits=limits, traces=args.traces is not None,
        cost_mode=args.cost_mode, name=f"file:{path.name}", progress=bar.update)


def _report_failure(exc: Exception, args: argparse.Namespace) -> int:
    print(f"tts-gym eval: error: {exc}", file=sys.stderr)
    detail = getattr(exc, "detail", None) or (getattr(exc, "error", None) or {}).get("traceback")
    if args.debug and detail:
        print(detail, file=sys.stderr)
    elif detail:
        print("(run again with --debug for the traceback)", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the result."""
    from tts_gym.evaluation.protocol import ControllerError
    from tts_gym.sandbox.evaluate import CandidateFailed
    from tts_gym.sandbox.zygote_client import SandboxUnavailable

    is_file = args.controller.startswith("file:")
    if not is_file and (args.trusted or args.unsafe_no_isolation):
        raise CliError("--trusted and --unsafe-no-isolation apply to file: controllers only.")
    check_executor_args(args)
    sandboxed = is_file and not args.trusted
    if sandboxed:
        from tts_gym.sandbox.precheck import precheck_source

        path = Path(args.controller.split(":", 1)[1])
        if not path.is_file():
            raise CliError(f"controller file {path} does not exist.")
        precheck_source(path.read_text(errors="replace"), str(path))
    controller = None if sandboxed else make_controller(
        args.controller, params_from(args), episode_cpu_s=args.episode_cpu if is_file else None)
    store = load_store(args.model, args.benchmark, args.data_dir)
    from tts_gym.collect.meta import warn_if_inexact

    warn_if_inexact(args.model, args.benchmark, args.data_dir)
    workers = args.workers or default_workers()
    try:
        with executor_from_args(args, args.workers), progress_bar(
            args.seeds, f"{args.controller} {store.name}", enabled=sys.stderr.isatty()
        ) as bar:
            if sandboxed:
                result = _sandboxed(args, store, workers, bar)
            else:
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
    except (ControllerError, CandidateFailed) as exc:
        return _report_failure(exc, args)
    except SandboxUnavailable as exc:
        raise CliError(str(exc)) from None
    out = result.to_dict(detail=args.detail)
    if is_file:
        out["file"] = str(Path(args.controller.split(":", 1)[1]).resolve())
        out["params"] = params_from(args)
        out["sandboxed"] = sandboxed
    from tts_gym.provenance import provenance

    out["provenance"] = provenance(
        stores=[store], seeds=result.seeds, cost_mode=args.cost_mode, executor=args.executor,
        path=result.path, sandboxed=sandboxed,
        episode_cpu_s=args.episode_cpu if is_file else None)
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
        f"{result.controller} {params_from(args) if is_file else result.params} on "
        f"{store.name} ({store.split}), "
        f"{len(result.seeds)} seeds{label}"
    )
    print(f"  accuracy   {result.accuracy:.2f} %")
    print(f"  avg tokens {result.avg_tokens:,.1f}  ({result.avg_tokens / 1000:.1f}k)")
    print(f"  path {result.path}, {result.seconds:.3f} s")
    print(unrevealed_line(result))
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


def unrevealed_line(result: EvalResult) -> str:
    """How many answers were never revealed in their episode, and what that means."""
    n = result.unrevealed_answers
    total = result.correct.size
    if result.unrevealed is None:
        return "  unrevealed answers: not tracked on this path (the batch kernels answer only " \
            "from what they read)"
    if n == 0:
        return f"  unrevealed answers: 0 of {total} (every answer was read from a branch first)"
    return (f"  unrevealed answers: {n} of {total} episodes returned an answer no primitive had "
            "revealed in that episode; those are scored wrong (read answers with probe_new, "
            "probe_more or full_read before returning them)")
