"""``tts-gym compare A B``: two controllers' curves, band by band, with the verdict.

A and B are each a controller (a registered name or ``file:PATH``, swept over its grid on the
chosen stores, as ``tts-gym sweep`` does) or a sweep file written by ``tts-gym sweep --json``
(``FILE.json``, or ``FILE.json#CURVE`` when it holds several curves). The comparison is the one
of the discovery loop, :func:`tts_gym.evaluation.curves.compare_curves`: paired over the same
episodes, question-clustered standard errors, the verdict rule
:data:`~tts_gym.evaluation.curves.VERDICT_RULE`. Its budget grid spans the token range of the
paper's four seed controllers (SC, ASC, ESC, Parallel-Probe over their sweep grids) on the same
stores and seeds, computed here, as discovery fixes its grid; or ``budgets=(lo, hi)``.

Files are refused in one sentence when a row lacks the per-question data (a CSV, or a file
written before rows carried it), or when A and B come from different stores (digests) or seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tts_gym.evaluation.curves import BudgetGrid, Comparison, CurvePoint, compare_curves
from tts_gym.reporting.cells import unpack_bits

SEED_CONTROLLERS = ("sc", "asc", "esc", "parallel-probe")
"""The paper's four seed controllers, whose curves fix the budget grid."""


@dataclass(frozen=True)
class Curve:
    """One side of a comparison.

    Attributes:
        name: The curve's name (its controller, or the ``--rl`` label).
        points: Its points, each over every store of ``stores``.
        stores: store name (``"Qwen3-8B/aime24"``) -> SHA-256 of the store scored.
        seeds: The shuffle seeds of every point.
        source: Where it came from (a file, or "computed").
    """

    name: str
    points: tuple[CurvePoint, ...]
    stores: Mapping[str, str]
    seeds: tuple[int, ...]
    source: str


def _curve_name(row: Mapping[str, Any]) -> str:
    from tts_gym.reporting.plot import curve_of

    return curve_of(row)


def curve_from_rows(rows: Sequence[Mapping[str, Any]], name: str | None = None,
                    source: str = "rows") -> Curve:
    """The curve ``name`` of sweep rows (the only curve when None), one point per budget
    averaged over the stores, with each store's correctness bits.

    Raises:
        ValueError: No such curve (or several and no name), a row without per-question data,
            or points scored on different stores or seeds.
    """
    names = list(dict.fromkeys(_curve_name(r) for r in rows))
    if name is None:
        if len(names) != 1:
            raise ValueError(f"{source} holds {len(names)} curves ({', '.join(names) or 'none'});"
                             f" pick one with {source}#CURVE.")
        name = names[0]
    mine = [r for r in rows if _curve_name(r) == name]
    if not mine:
        raise ValueError(f"{source} holds no curve {name!r}; it holds {', '.join(names)}.")
    by_point: dict[str, list[Mapping[str, Any]]] = {}
    stores: dict[str, str] = {}
    seeds: tuple[int, ...] | None = None
    for r in mine:
        missing = [k for k in ("correct_bits", "correct_shape", "store_sha256", "seed_list")
                   if not r.get(k)]
        if missing:
            raise ValueError(
                f"{source} has no per-question data for {name} (row without "
                f"{', '.join(missing)}); write it again with `tts-gym sweep --json` (a CSV "
                "never carries it).")
        store = f"{r['model']}/{r['benchmark']}"
        if stores.setdefault(store, str(r["store_sha256"])) != str(r["store_sha256"]):
            raise ValueError(f"{source} scores {name} on two different versions of {store}.")
        these = tuple(int(s) for s in r["seed_list"])
        if seeds is None:
            seeds = these
        elif these != seeds:
            raise ValueError(f"{source} scores the points of {name} on different seeds.")
        label = f"{r.get('budget_param')}={r.get('budget')}" if r.get("budget_param") else str(
            r.get("params") or name)
        by_point.setdefault(label, []).append(r)
    points = []
    for label, group in by_point.items():
        if {f"{r['model']}/{r['benchmark']}" for r in group} != set(stores):
            raise ValueError(f"{source}: point {label} of {name} lacks some of the stores "
                             f"{', '.join(sorted(stores))}.")
        correct = {f"{r['model']}/{r['benchmark']}": unpack_bits(r["correct_bits"],
                                                                 r["correct_shape"])
                   for r in group}
        tokens = {f"{r['model']}/{r['benchmark']}": np.asarray(r["per_question_tokens"],
                                                               np.float64) for r in group}
        points.append(CurvePoint(
            label, round(float(np.mean([float(r["accuracy"]) for r in group])), 2),
            round(float(np.mean([float(r["avg_tokens"]) for r in group])), 1), correct, tokens))
    return Curve(name, tuple(points), dict(sorted(stores.items())), seeds or (), source)


def read_curve(spec: str) -> Curve:
    """A curve from ``FILE.json`` or ``FILE.json#CURVE`` (``tts-gym sweep --json``).

    Raises:
        FileNotFoundError, ValueError: See :func:`tts_gym.reporting.files.read_rows` and
            :func:`curve_from_rows`.
    """
    from tts_gym.reporting.files import read_rows

    path, _sep, name = spec.partition("#")
    if Path(path).suffix.lower() != ".json":
        raise ValueError(f"{path} is not a sweep JSON file; only `tts-gym sweep --json` output "
                         "carries the per-question data a comparison needs.")
    return curve_from_rows(read_rows(path), name or None, source=path)


def is_result_file(spec: str) -> bool:
    """Whether a side of ``compare`` names a report file (``*.json`` optionally with
    ``#CURVE``, or a ``*.csv``, which :func:`read_curve` refuses)."""
    return spec.partition("#")[0].lower().endswith((".json", ".csv"))


def check_pair(a: Curve, b: Curve) -> None:
    """Refuse two curves scored on different stores or seeds.

    Raises:
        ValueError: One sentence naming the difference.
    """
    if set(a.stores) != set(b.stores):
        raise ValueError(
            f"{a.source} and {b.source} come from different stores ({', '.join(a.stores)} vs "
            f"{', '.join(b.stores)}); compare curves scored on the same stores.")
    changed = [k for k in a.stores if a.stores[k] != b.stores[k]]
    if changed:
        raise ValueError(
            f"{a.source} and {b.source} come from different versions of {', '.join(changed)} "
            "(store digests differ); score both on the same data.")
    if a.seeds != b.seeds:
        raise ValueError(
            f"{a.source} and {b.source} come from different seeds ({len(a.seeds)} vs "
            f"{len(b.seeds)} seeds); score both with the same --seeds.")


def seed_grid(stores: Sequence[Any], seeds: int, *, workers: int | None = None,
              data_dir: Any = None) -> BudgetGrid:
    """The budget grid spanning the four seed controllers' curves (:data:`SEED_CONTROLLERS`
    over :data:`~tts_gym.reporting.sweep.SWEEP_GRIDS`) on ``stores`` (``"model/benchmark"``
    names), as the discovery loop fixes its grid: each curve point averaged over the stores."""
    from tts_gym.reporting.cells import Cell
    from tts_gym.reporting.run_cells import evaluate_cells
    from tts_gym.reporting.sweep import SWEEP_GRIDS

    pairs = [tuple(str(s).split("/", 1)) for s in stores]
    cells = [Cell.make(name, {**fixed, knob: v}, m, b)
             for name in SEED_CONTROLLERS for knob, values, fixed in [SWEEP_GRIDS[name]]
             for v in values for m, b in pairs]
    results = evaluate_cells(cells, seeds, workers=workers, data_dir=data_dir)
    by_point: dict[tuple[str, tuple], list[float]] = {}
    for cell, res in zip(cells, results, strict=True):
        by_point.setdefault((cell.controller, cell.params), []).append(res.avg_tokens)
    curves: dict[str, list[dict[str, float]]] = {}
    for (name, _params), toks in by_point.items():
        curves.setdefault(name, []).append({"avg_tokens": float(np.mean(toks))})
    return BudgetGrid.spanning(list(curves.values()))


def sweep_curve(spec: str, models: Sequence[str], benchmarks: Sequence[str], seeds: int, *,
                grids: Mapping[str, tuple[str, tuple[Any, ...]]] | None = None,
                workers: int | None = None, data_dir: Any = None, files: Any = None,
                warn: Callable[[str], Any] | None = None) -> Curve:
    """A controller's curve computed now (:func:`tts_gym.reporting.sweep.sweep` of ``spec``
    alone)."""
    from tts_gym.reporting.sweep import sweep

    rows = sweep([spec], models, benchmarks, seeds=seeds, workers=workers, data_dir=data_dir,
                 grids=grids, files=files, warn=warn)
    return curve_from_rows(rows, source=spec)


def compare(a: str | Curve, b: str | Curve, *, models: Sequence[str] = ("Qwen3-8B",),
            benchmarks: Sequence[str] = ("aime24",), seeds: int = 100,
            grids: Mapping[str, tuple[str, tuple[Any, ...]]] | None = None,
            budgets: tuple[float, float] | None = None, workers: int | None = None,
            data_dir: Any = None, files: Any = None) -> tuple[Comparison, BudgetGrid]:
    """Compare two controllers or sweep files (module docstring).

    Args:
        a, b: A controller spec (``"cmc"``, ``"file:mine.py"``), a sweep file
            (``"sweep.json"``, ``"sweep.json#cmc"``) or a :class:`Curve`.
        models, benchmarks: Stores of the controllers computed here (a file's own stores are
            used for the files; when a side is a file, the controllers are computed on its
            stores and seeds).
        seeds: Shuffle seeds of the controllers computed here.
        grids: ``{name: (KEY, values)}`` replacing a controller's sweep grid (``--grid``).
        budgets: ``(lo, hi)`` tokens per question; default: the seed controllers' span.
        workers: Processes.
        data_dir: Folder of the stores.
        files: How ``file:`` controllers run (:class:`tts_gym.reporting.own.FileOptions`).

    Returns:
        ``(comparison, grid)``: ``comparison.lines()`` prints the table and the verdict.

    Raises:
        ValueError: A file without per-question data, different stores or seeds, no grid.
    """
    from tts_gym.reporting.cells import get_store

    sides: list[Curve | str] = [x if isinstance(x, Curve) else (
        read_curve(x) if is_result_file(x) else x) for x in (a, b)]
    known = next((s for s in sides if isinstance(s, Curve)), None)
    if known is not None:
        pairs = [k.split("/", 1) for k in known.stores]
        models = list(dict.fromkeys(m for m, _b in pairs))
        benchmarks = list(dict.fromkeys(bb for _m, bb in pairs))
        if known.seeds != tuple(range(len(known.seeds))):
            raise ValueError(f"{known.source} was scored on seeds {list(known.seeds)[:5]}..., "
                             "not the protocol's 0..n-1; sweep both sides with --seeds.")
        seeds = len(known.seeds)
    curves = [s if isinstance(s, Curve) else sweep_curve(
        s, models, benchmarks, seeds, grids=grids, workers=workers, data_dir=data_dir,
        files=files) for s in sides]
    check_pair(curves[0], curves[1])
    for name, sha in curves[0].stores.items():
        m, bench = name.split("/", 1)
        if budgets is None and get_store(m, bench, data_dir).sha256 != sha:
            raise ValueError(f"{curves[0].source} was scored on another version of {name} than "
                             "the data here; give --budgets LO,HI or compare on the same data.")
    if budgets is not None:
        grid = BudgetGrid(float(budgets[0]), float(budgets[1]))
    else:
        grid = seed_grid(list(curves[0].stores), len(curves[0].seeds), workers=workers,
                         data_dir=data_dir)
    name_a, name_b = curves[0].name, curves[1].name
    if name_a == name_b:
        name_a, name_b = f"{name_a} ({curves[0].source})", f"{name_b} ({curves[1].source})"
    cmp = compare_curves(list(curves[0].points), list(curves[1].points), grid,
                         name_a=name_a, name_b=name_b)
    return cmp, grid
