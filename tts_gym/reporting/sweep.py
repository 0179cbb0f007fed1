"""Budget sweeps: each controller over its budget knob (the paper's scaling curves).

Grids: SC ``n``, ASC ``max_samples`` and Parallel-Probe ``num_chains`` in 1, 4, 8, 16, 32, 64;
ESC ``max_samples`` in 16, 32, 64 (window 8: the paper's sweep and its published rows); CMC
``beta`` in 0.0, 0.1, ..., 1.0; a ``file:`` controller taking ``beta`` the same; any controller
what ``--grid NAME:KEY=V1,V2`` gives; trained RL policies (``rl=``) their training cost weight.
Each (model, benchmark) gets its own Pareto frontier over all its points. :data:`SWEEP_GRIDS` is
also the grid of discovery's seed controllers (``agents.synthesis.seeds.SEED_SWEEPS``); the seed
files, standalone by design, restate it and a test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tts_gym.paths import BENCHMARKS, MODELS
from tts_gym.reporting.cells import Cell, check_controllers
from tts_gym.reporting.pareto import pareto_mask
from tts_gym.reporting.rl import RL_PREFIX, cost_weight_of, is_rl, rl_sweep_cells
from tts_gym.reporting.run_cells import evaluate_cells

BUDGETS = (1, 4, 8, 16, 32, 64)
SWEEP_GRIDS: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "sc": ("n", BUDGETS, {}),
    "asc": ("max_samples", BUDGETS, {"threshold": 0.95}),
    "esc": ("max_samples", (16, 32, 64), {"window": 8}),
    "parallel-probe": ("num_chains", BUDGETS, {}),
    "cmc": ("beta", tuple(round(0.1 * i, 1) for i in range(11)), {}),
}
"""controller -> (budget parameter, values, fixed parameters)."""


Grid = tuple[str, tuple[Any, ...], dict[str, Any]]
"""(budget parameter, values, fixed parameters)."""


def parse_grid_option(text: str) -> tuple[str, str, tuple[Any, ...]]:
    """``--grid NAME:KEY=V1,V2,...`` -> ``(NAME, KEY, values)``; NAME may itself hold a colon
    (``file:my.py``), the last one splits.

    >>> parse_grid_option("file:my.py:n=4,16,64")
    ('file:my.py', 'n', (4, 16, 64))

    Raises:
        ValueError: Not of that form, or no value.
    """
    from tts_gym.controller import parse_param

    name, sep, rest = text.rpartition(":")
    if not sep or not name or "=" not in rest:
        raise ValueError(f"--grid {text!r} must look like NAME:KEY=V1,V2,... "
                         "(e.g. --grid asc:max_samples=4,16,64 or --grid file:my.py:beta=0,0.5,1).")
    key, _eq, raw = rest.partition("=")
    values = tuple(parse_param(f"{key}={v}")[1] for v in raw.split(",") if v.strip())
    if not values:
        raise ValueError(f"--grid {text!r} gives no value for {key}.")
    return name, parse_param(f"{key}=0")[0], values


def grid_of(name: str, grids: Mapping[str, tuple[str, tuple[Any, ...]]] | None = None) -> Grid:
    """The sweep grid of a controller: ``grids[name]`` (``--grid``; a built-in keeps its fixed
    parameters), else :data:`SWEEP_GRIDS`, else for a ``file:`` controller following the
    candidate contract beta 0.0..1.0 (:func:`tts_gym.reporting.own.file_grid`).

    Raises:
        ValueError: No grid is known or given for ``name``.
    """
    from tts_gym.reporting.own import file_grid, is_file

    if grids and name in grids:
        knob, values = grids[name]
        fixed = {k: v for k, v in SWEEP_GRIDS.get(name, ("", (), {}))[2].items() if k != knob}
        return knob, tuple(values), fixed
    if name in SWEEP_GRIDS:
        return SWEEP_GRIDS[name]
    if is_file(name):
        return file_grid(name)
    raise ValueError(
        f"No sweep grid for controller {name!r}; grids exist for {sorted(SWEEP_GRIDS)}, "
        f"file:PATH controllers taking beta, or give one with --grid {name}:KEY=V1,V2,...")


def sweep_cells(
    controllers: Sequence[str], models: Sequence[str], benchmarks: Sequence[str],
    grids: Mapping[str, tuple[str, tuple[Any, ...]]] | None = None,
) -> list[Cell]:
    """Every (controller, budget, model, benchmark) cell of the sweep (:func:`grid_of`).

    Raises:
        ValueError: A controller without a sweep grid.
    """
    cells = []
    for name in controllers:
        knob, values, fixed = grid_of(name, grids)
        for m in models:
            for b in benchmarks:
                for v in values:
                    cells.append(Cell.make(name, {**fixed, knob: v}, m, b, name))
    return cells


def mark_pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set ``row["pareto"]`` per (model, benchmark) group over all controllers (in place)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["benchmark"]), []).append(r)
    for group in groups.values():
        mask = pareto_mask([r["avg_tokens"] for r in group], [r["accuracy"] for r in group])
        for r, on in zip(group, mask, strict=True):
            r["pareto"] = bool(on)
    return rows


def sweep(
    controllers: Sequence[str] = tuple(SWEEP_GRIDS),
    models: Sequence[str] = MODELS,
    benchmarks: Sequence[str] = BENCHMARKS,
    *,
    seeds: int = 100,
    workers: int | None = None,
    data_dir: Any = None,
    warn: Callable[[str], Any] | None = None,
    progress: Callable[[int], Any] | None = None,
    on_cells: Callable[[int], Any] | None = None,
    rl: Sequence[str] = (),
    grids: Mapping[str, tuple[str, tuple[Any, ...]]] | None = None,
    files: Any = None,
) -> list[dict[str, Any]]:
    """Run the budget sweeps.

    ``file:PATH`` controllers are swept too (sandboxed unless ``files.trusted``, see
    :mod:`tts_gym.reporting.own`); ``grids`` maps a controller to ``(KEY, values)`` replacing
    its default grid (``--grid``). Every row carries what a paired comparison needs
    (:func:`tts_gym.reporting.cells.cell_detail`).

    Controllers that cannot be built are skipped (message to ``warn``). ``rl`` adds trained
    policies (``NAME=DIR/model.zip``, see :mod:`tts_gym.reporting.rl`): one point per model,
    ``budget_param="cost_weight"``, models sharing a NAME forming one curve (``label``).

    Returns:
        Flat rows (see :meth:`CellResult.to_row`) with ``budget_param``, ``budget`` and
        ``pareto`` added, in controller, model, benchmark, budget order.

    Raises:
        ValueError: No controller left, or one without a grid.
    """
    cells = sweep_cells(controllers, models, benchmarks, grids)
    knobs = {name: grid_of(name, grids)[0] for name in controllers}
    cells += rl_sweep_cells(list(rl), list(models), list(benchmarks))
    missing = check_controllers(cells)
    for name, why in missing.items():
        if warn is not None:
            warn(f"skipping controller {name!r}: {why}")
    cells = [c for c in cells if c.controller not in missing]
    if not cells:
        raise ValueError("No controller of the sweep can be evaluated.")
    if on_cells is not None:
        on_cells(len(cells))
    results = evaluate_cells(cells, seeds, workers=workers, data_dir=data_dir, progress=progress,
                             files=files)
    rows = []
    for cell, res in zip(cells, results, strict=True):
        row = res.to_row()
        if is_rl(cell.controller):
            row["budget_param"] = "cost_weight"
            row["budget"] = cost_weight_of(cell.controller[len(RL_PREFIX) :])
        else:
            knob = knobs[cell.controller]
            row["budget_param"] = knob
            row["budget"] = cell.param_dict[knob]
        rows.append(row)
    return mark_pareto(rows)
