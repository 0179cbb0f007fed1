"""``tts-gym demo``: the published controllers on one model, a table and an accuracy-vs-tokens
plot, in well under a minute, with or without the real stores.

Uses the real store of (model, aime24) when the data directory holds it; otherwise the model's
calibrated synthetic twin (:mod:`tts_gym.synthetic`, nothing downloaded) and says so in one line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from tts_gym.cli.common import positive_int
from tts_gym.extras import MissingExtraError, require_extra
from tts_gym.reporting.plot import STYLE
from tts_gym.reporting.sweep import SWEEP_GRIDS
from tts_gym.reporting.table import TABLE_ROWS

HEADLINE = TABLE_ROWS
"""Rows of the printed table: the published headline configurations (the main table's rows)."""

SWEEPS: dict[str, tuple[str, str, list[dict[str, Any]]]] = {
    STYLE[name][0]: (name, knob, [{**fixed, knob: v} for v in values])
    for name, (knob, values, fixed) in SWEEP_GRIDS.items()
}
"""Curves of the plot: the budget sweeps of ``tts-gym sweep`` (label -> name, knob, configs)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser(
        "demo",
        help="run the published controllers on one model: table + accuracy-vs-tokens plot",
        description="Score SC@64, ASC, ESC, Parallel-Probe and CMC (whichever are registered) "
        "on one model's AIME24 store and plot their budget sweeps. Without the real stores it "
        "uses the model's calibrated synthetic twin (no download, no network).",
    )
    p.add_argument("--model", default="Qwen3-8B", help="model (default Qwen3-8B)")
    p.add_argument("--benchmark", default="aime24", help="benchmark (default aime24)")
    p.add_argument("--data-dir", default=None, help="folder with <model>/<benchmark>.json")
    p.add_argument("--out", default="tts-gym-demo", help="output folder (default ./tts-gym-demo)")
    p.add_argument("--seeds", type=positive_int, default=100, help="shuffle seeds (default 100)")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic twin anyway")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--workers", type=positive_int, default=None, help="processes (default: every core)"
    )
    p.set_defaults(func=run)


def _store(args: argparse.Namespace) -> tuple[Any, bool]:
    """The real store if present, else the synthetic twin (printing one line)."""
    from tts_gym.paths import resolve_data_dir
    from tts_gym.store import load_store
    from tts_gym.synthetic import generate_store, load_preset, preset_names

    if not args.synthetic:
        try:
            return load_store(args.model, args.benchmark, args.data_dir), False
        except FileNotFoundError:
            pass
    if args.model not in preset_names():
        raise ValueError(
            f"No real store for {args.model}/{args.benchmark} and no synthetic preset for "
            f"{args.model!r}; presets: {list(preset_names())}."
        )
    params = load_preset(args.model)
    store = generate_store(params, 30, 128, seed=0, name=args.model)
    why = (
        "--synthetic given"
        if args.synthetic
        else f"no real store under {resolve_data_dir(args.data_dir)}"
    )
    print(
        f"SYNTHETIC DATA ({why}): using a calibrated synthetic twin of {args.model} "
        f"(30 generated questions x 128 branches, fitted to {params.source}); numbers are not "
        "the paper's."
    )
    return store, True


def _controller(name: str, params: dict[str, Any]) -> Any | None:
    from tts_gym.controller import available_controllers, make_controller

    if name not in available_controllers():
        return None
    try:
        return make_controller(name, params)
    except (ImportError, ValueError, AttributeError):
        return None


def _key(name: str, params: dict[str, Any]) -> str:
    return f"{name}:{sorted(params.items())}"


def _score_all(
    store: Any, name: str, configs: list[dict[str, Any]], seeds: int
) -> dict[str, dict[str, Any] | None]:
    """Score every configuration of one controller (None if it is not registered)."""
    from tts_gym.evaluation import evaluate

    out: dict[str, dict[str, Any] | None] = {}
    for params in configs:
        ctrl = _controller(name, params)
        if ctrl is None:
            out[_key(name, params)] = None
            continue
        r = evaluate(ctrl, store, seeds)
        out[_key(name, params)] = {
            "accuracy": r.accuracy,
            "avg_tokens": r.avg_tokens,
            "seconds": r.seconds,
        }
    return out


def _score_everything(store: Any, seeds: int, workers: int) -> dict[str, Any]:
    """Every headline and sweep configuration, one task per controller, in ``workers``
    processes (on a fresh install most of the time is numba compiling each controller's
    kernels, which parallelises)."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for _label, name, params in HEADLINE:
        tasks.setdefault(name, []).append(params)
    for name, _k, grid in SWEEPS.values():
        for params in grid:
            if params not in tasks.setdefault(name, []):
                tasks[name].append(params)
    order = sorted(tasks, key=lambda n: -len(tasks[n]) if n in ("cmc", "parallel-probe") else 0)
    memo: dict[str, Any] = {}
    if workers <= 1:
        for name in order:
            memo.update(_score_all(store, name, tasks[name], seeds))
        return memo
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    from tts_gym.executor.lifetime import die_with_parent

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                             initargs=(os.getpid(),)) as pool:  # workers die with the command
        futures = [pool.submit(_score_all, store, n, tasks[n], seeds) for n in order]
        for f in futures:
            memo.update(f.result())
    return memo


def _plot(path: Path, curves: dict[str, list[dict[str, Any]]], title: str) -> None:
    """The sweeps in ``tts-gym plot``'s style (Pareto frontier marked); needs matplotlib."""
    from tts_gym.reporting.plot import plot_group

    rows = [{"controller": SWEEPS[family][0], **p} for family, pts in curves.items() for p in pts]
    plot_group(rows, path, title)


def run(args: argparse.Namespace) -> int:
    """Score, print the table, write results.json and the plot."""
    from tts_gym.cli.common import default_workers

    start = time.perf_counter()
    draw = not args.no_plot
    if draw:
        try:
            require_extra("plot", "The demo's plot (accuracy_vs_tokens.png)")
        except MissingExtraError as exc:  # the table is the demo's result: go on without a PNG
            print(f"tts-gym demo: {exc} Going on without the plot (--no-plot hides this).",
                  file=sys.stderr)
            draw = False
    store, synthetic = _store(args)
    memo = _score_everything(store, args.seeds, args.workers or default_workers())
    rows = []
    for label, name, params in HEADLINE:
        got = memo.get(_key(name, params))
        if got is not None:
            rows.append({"controller": label, "name": name, "params": params, **got})
    if not rows:
        raise ValueError("No controller is registered (entry-point group tts_gym.controllers).")
    curves: dict[str, list[dict[str, Any]]] = {}
    for family, (name, key, grid) in SWEEPS.items():
        pts = [{key: p[key], **memo[_key(name, p)]} for p in grid if memo.get(_key(name, p))]
        curves[family] = pts
    what = f"{store.model}/{args.benchmark}"
    what = f"synthetic twin of {what}" if synthetic else f"{what} (real store)"
    print(f"{what}, {args.seeds} shuffle seeds")
    sc = next((r for r in rows if r["controller"] == "SC@64"), None)
    print(f"{'controller':<16}{'accuracy %':>11}{'avg tokens':>12}{'vs SC@64':>10}")
    for r in rows:
        rel = f"{r['avg_tokens'] / sc['avg_tokens']:.2f}x" if sc else "—"
        print(
            f"{r['controller']:<16}{r['accuracy']:>11.2f}{r['avg_tokens'] / 1000:>11.1f}k{rel:>10}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from tts_gym.io import write_json_atomic
    from tts_gym.provenance import provenance

    write_json_atomic(
        out / "results.json",
        {
            "store": store.name,
            "synthetic": synthetic,
            "source": store.source,
            "seeds": args.seeds,
            "table": rows,
            "curves": curves,
            "provenance": provenance(stores=[store], seeds=args.seeds, cost_mode="reference",
                                     executor="local", synthetic=synthetic),
        },
    )
    title = f"{store.model} on {args.benchmark} ({args.seeds} seeds)"
    if synthetic:
        title += "\nSYNTHETIC twin, not real data"
    png = out / "accuracy_vs_tokens.png"
    if draw:
        _plot(png, curves, title)
        print(f"plot: {png}")
    print(f"results: {out / 'results.json'}  ({time.perf_counter() - start:.1f} s)")
    return 0
