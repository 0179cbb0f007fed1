"""``tts-gym table``: the paper's main table (published controllers × models × benchmarks)."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from tts_gym.cli.common import add_episode_cpu_arg, positive_int
from tts_gym.cli.executor_options import add_executor_args, executor_from_args
from tts_gym.paths import BENCHMARKS, MODELS


def add_grid_args(p: argparse.ArgumentParser) -> None:
    """``--models``, ``--benchmarks``, ``--seeds``, ``--workers``, ``--data-dir``,
    ``--csv``, ``--json``, ``--no-progress``, ``--executor``, ``--ray-address``."""
    p.add_argument("--models", nargs="+", default=list(MODELS), metavar="MODEL",
                   help="model folders of the data directory")
    p.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS), metavar="BENCH",
                   help="benchmarks (stores) of each model")
    p.add_argument(
        "--seeds", type=positive_int, default=100, help="shuffle seeds per cell (default 100)"
    )
    p.add_argument(
        "--workers", type=positive_int, default=None,
        help="processes (default: every core); with --executor ray, the CPUs of a local Ray "
        "instance"
    )
    add_executor_args(p)
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder with <model>/<benchmark>.json (default: TTS_GYM_DATA, else the "
        "download cache)",
    )
    p.add_argument("--csv", metavar="FILE", default=None, help="also write the rows as CSV")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the rows as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--rl",
        action="append",
        default=[],
        metavar="NAME=DIR/model.zip",
        help="also evaluate a policy trained by `tts-gym train-rl` (repeatable; the same NAME "
        "several times = one curve over the models' cost weights)",
    )
    p.add_argument(
        "--trusted",
        action="store_true",
        help="file: controllers: import them in this process (your own code); without it "
        "they run in the sandbox",
    )
    p.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="file: controllers: run in the sandbox even where a required isolation layer is "
        "missing",
    )
    add_episode_cpu_arg(p)
    p.add_argument(
        "--rl-frontier",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME DIR",
        help="NAME then run folders (or model.zip files) trained at different --cost-weight: "
        "one RL curve labelled by each model's cost weight (same as --rl NAME=DIR for each DIR)",
    )


def rl_options(args: argparse.Namespace) -> list[str]:
    """``--rl`` and ``--rl-frontier`` as a list of ``NAME=PATH`` options.

    Raises:
        SystemExit: ``--rl-frontier`` without a folder after its name.
    """
    out = list(getattr(args, "rl", []) or [])
    for group in getattr(args, "rl_frontier", []) or []:
        if len(group) < 2:
            raise SystemExit("tts-gym: --rl-frontier needs a NAME and at least one run folder.")
        out.extend(f"{group[0]}={path}" for path in group[1:])
    return out


class CellBar:
    """A tqdm bar over cells on stderr, sized once the cell count is known."""

    def __init__(self, desc: str, enabled: bool) -> None:
        self.desc = desc
        self.enabled = enabled
        self.bar: tqdm | None = None

    def start(self, total: int) -> None:
        self.bar = tqdm(
            total=total,
            desc=self.desc,
            unit="cell",
            file=sys.stderr,
            disable=not (self.enabled and sys.stderr.isatty()),  # no bar in logs and pipes
        )

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    print(f"tts-gym: {message}", file=sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``table`` sub-command."""
    p = sub.add_parser(
        "table",
        help="the paper's main table: SC@64, ASC, ESC, Parallel-Probe, CMC β=0.5/1.0",
        description="Evaluate the published controllers on every (model, benchmark) with the "
        "100-seed protocol and print the paper's main table as markdown (accuracy % / tokens "
        "in thousands; AIME24 is the search split, AIME25 and HMMT25 are held out). Rows "
        "whose controller is not installed are skipped with a message. --rl adds trained RL "
        "policies as rows.",
    )
    add_grid_args(p)
    p.add_argument(
        "--controllers",
        nargs="+",
        default=[],
        metavar="SPEC",
        help="extra rows after the published ones: a registered name or file:PATH at its "
        "default parameters (a file whose Controller takes beta: two rows, beta 0.5 and 1.0, "
        "as CMC)",
    )
    p.set_defaults(func=run)


def extra_rows(specs: list[str]) -> list[tuple[str, str, dict]]:
    """``table --controllers`` as ``(label, spec, params)`` rows."""
    from tts_gym.reporting.own import is_file, read_source, takes_beta

    out: list[tuple[str, str, dict]] = []
    for spec in specs:
        if is_file(spec) and takes_beta(read_source(spec)):
            out += [(f"{spec} β={b}", spec, {"beta": b}) for b in (0.5, 1.0)]
        else:
            out.append((spec, spec, {}))
    return out


def grid_run_kwargs(args: argparse.Namespace, bar: CellBar) -> dict:
    """Keyword arguments shared by ``main_table`` and ``sweep`` from the grid options."""
    return {
        "seeds": args.seeds,
        "workers": args.workers,
        "data_dir": args.data_dir,
        "warn": warn,
        "progress": bar.update,
        "on_cells": bar.start,
        "rl": rl_options(args),
        "files": file_options(args),
    }


def file_options(args: argparse.Namespace) -> object:
    """How ``file:`` controllers run (:class:`tts_gym.reporting.own.FileOptions`)."""
    from tts_gym.reporting.own import FileOptions

    return FileOptions(trusted=bool(getattr(args, "trusted", False)),
                       episode_cpu_s=float(args.episode_cpu),
                       unsafe=bool(getattr(args, "unsafe_no_isolation", False)))


def rows_provenance(args: argparse.Namespace, rows: list[dict], seeds: int) -> dict:
    """The provenance record (:func:`tts_gym.provenance.provenance`) of report rows: their
    stores' digests, the seeds, the reference cost mode, the executor, how files ran."""
    from tts_gym.provenance import provenance

    stores = {(f"{r['model']}/{r['benchmark']}", r["store_sha256"])
              for r in rows if r.get("store_sha256")}
    return provenance(stores=sorted(stores), seeds=seeds, cost_mode="reference",
                      executor=getattr(args, "executor", "local"),
                      files_trusted=bool(getattr(args, "trusted", False)),
                      episode_cpu_s=float(args.episode_cpu))


def run(args: argparse.Namespace) -> int:
    """Evaluate the table and print it."""
    from tts_gym.reporting import TABLE_ROWS, main_table
    from tts_gym.reporting.files import write_rows_csv, write_rows_json

    rows = [*TABLE_ROWS, *extra_rows(list(args.controllers))]
    bar = CellBar("table", enabled=not args.no_progress)
    try:
        with executor_from_args(args, args.workers):
            table = main_table(args.models, args.benchmarks, rows=rows,
                               **grid_run_kwargs(args, bar))
    finally:
        bar.close()
    print(table.to_markdown())
    out_rows = table.to_rows()
    if args.csv:
        write_rows_csv(args.csv, out_rows)
    if args.json:
        write_rows_json(
            args.json, out_rows, seeds=table.seeds, skipped=table.skipped, seconds=table.seconds,
            provenance=rows_provenance(args, out_rows, table.seeds),
        )
    print(f"{len(table.results)} cells in {table.seconds:.2f} s", file=sys.stderr)
    return 0
