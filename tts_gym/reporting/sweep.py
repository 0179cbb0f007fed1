"""Budget sweeps: each controller over its budget knob (the paper's scaling curves).

Grids: SC ``n``, ASC ``max_samples`` and Parallel-Probe ``num_chains`` in 1, 4, 8, 16, 32, 64;
ESC ``max_samples`` in 16, 32, 64 (window 8: the paper's sweep and its published rows); CMC
``beta`` in 0.0, 0.1, ..., 1.0; trained RL policies (``rl=``) their training cost weight. Each
(model, benchmark) gets its own Pareto frontier over all its points. :data:`SWEEP_GRIDS` is also
the grid of discovery's seed controllers (``agents.synthesis.seeds.SEED_SWEEPS``); the seed
files, standalone by design, restate it and a test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tts_gym.paths import BENCHMARKS, MODELS
from tts_gym.reporting.cells import Cell, check_controllers, evaluate_cells
from tts_gym.reporting.pareto import pareto_mask
from tts_gym.reporting.rl import RL_PREFIX, cost_weight_of, is_rl, rl_sweep_cells

BUDGETS = (1, 4, 8, 16, 32, 64)
SWEEP_GRIDS: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "sc": ("n", BUDGETS, {}),
    "asc": ("max_samples", BUDGETS, {"threshold": 0.95}),
    "esc": ("max_samples", (16, 32, 64), {"window": 8}),
    "parallel-probe": ("num_chains", BUDGETS, {}),
    "cmc": ("beta", tuple(round(0.1 * i, 1) for i in range(11)), {}),
}
"""controller -> (budget parameter, values, fixed parameters)."""


def sweep_cells(
    controllers: Sequence[str], models: Sequence[str], benchmarks: Sequence[str]
) -> list[Cell]:
    """Every (controller, budget, model, benchmark) cell of the sweep.

    Raises:
        ValueError: A controller without a sweep grid.
    """
    cells = []
    for name in controllers:
        if name not in SWEEP_GRIDS:
            raise ValueError(
                f"No sweep grid for controller {name!r}; grids exist for {sorted(SWEEP_GRIDS)}."
            )
        knob, values, fixed = SWEEP_GRIDS[name]
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
) -> list[dict[str, Any]]:
    """Run the budget sweeps.

    Controllers that cannot be built are skipped (message to ``warn``). ``rl`` adds trained
    policies (``NAME=DIR/model.zip``, see :mod:`tts_gym.reporting.rl`): one point per model,
    ``budget_param="cost_weight"``, models sharing a NAME forming one curve (``label``).

    Returns:
        Flat rows (see :meth:`CellResult.to_row`) with ``budget_param``, ``budget`` and
        ``pareto`` added, in controller, model, benchmark, budget order.

    Raises:
        ValueError: No controller left, or one without a grid.
    """
    cells = sweep_cells(controllers, models, benchmarks)
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
    results = evaluate_cells(cells, seeds, workers=workers, data_dir=data_dir, progress=progress)
    rows = []
    for cell, res in zip(cells, results, strict=True):
        row = res.to_row()
        if is_rl(cell.controller):
            row["budget_param"] = "cost_weight"
            row["budget"] = cost_weight_of(cell.controller[len(RL_PREFIX) :])
        else:
            knob = SWEEP_GRIDS[cell.controller][0]
            row["budget_param"] = knob
            row["budget"] = cell.param_dict[knob]
        rows.append(row)
    return mark_pareto(rows)
