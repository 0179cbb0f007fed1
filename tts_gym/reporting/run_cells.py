"""Score a mixed list of cells: registered controllers on the cell pool, ``file:`` ones after.

The one entry point of the reports (table, sweep, compare): registered controllers go to
:func:`tts_gym.reporting.cells.evaluate_builtin_cells` (a process pool over the cells), your own
controller files to :func:`tts_gym.reporting.own.run_file_cells` (one file at a time, each over
every worker, sandboxed unless trusted). Results come back in the order of the cells.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from tts_gym.executor import Executor
from tts_gym.kernels.transitions import COST_MODES
from tts_gym.reporting.cells import Cell, CellResult, default_workers, evaluate_builtin_cells
from tts_gym.reporting.own import FileOptions, check_files, is_file, run_file_cells


def evaluate_cells(
    cells: Sequence[Cell],
    seeds: int = 100,
    *,
    workers: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cost_mode: str = "reference",
    progress: Callable[[int], Any] | None = None,
    executor: Executor | None = None,
    files: FileOptions | None = None,
) -> list[CellResult]:
    """Score every cell with the published protocol.

    ``file:PATH`` cells run in this process after the others, each over every worker, in the
    sandbox unless ``files.trusted`` (:mod:`tts_gym.reporting.own`).

    Args:
        cells: The cells; results come back in the same order.
        seeds: Shuffle seeds 0..seeds-1 (the paper: 100).
        workers: Processes of the local pool (default: every core). 1 runs in this process.
        data_dir: Folder of ``<model>/<benchmark>.json`` (default: ``TTS_GYM_DATA``...).
        cost_mode: ``"reference"`` (published) or ``"exact"`` (not comparable with the paper).
        progress: Optional callable, called with 1 after each finished cell.
        executor: Where the registered controllers' cells run (default: the command's
            executor, else the local pool). Stores and orders are loaded here and moved to the
            workers once.
        files: How ``file:`` cells run (default :class:`~tts_gym.reporting.own.FileOptions`:
            sandboxed, the default per-episode CPU budget).

    Returns:
        One :class:`~tts_gym.reporting.cells.CellResult` per cell.

    Raises:
        ValueError: An unknown ``cost_mode``.
        ControllerUnavailable: A cell's controller cannot be built (filter with
            :func:`tts_gym.reporting.cells.check_controllers` first to skip those).
        FileNotFoundError: A store is missing.
    """
    cells = list(cells)
    if cost_mode not in COST_MODES:
        raise ValueError(f"cost_mode must be one of {sorted(COST_MODES)}, got {cost_mode!r}.")
    mine = {i for i, c in enumerate(cells) if is_file(c.controller)}
    builtin = [c for i, c in enumerate(cells) if i not in mine]
    if not mine:
        return evaluate_builtin_cells(builtin, seeds, workers=workers, data_dir=data_dir,
                                      cost_mode=cost_mode, progress=progress, executor=executor)
    options = files if files is not None else FileOptions()
    own = [cells[i] for i in sorted(mine)]
    check_files(own, options)
    done_builtin = iter(evaluate_builtin_cells(builtin, seeds, workers=workers,
                                               data_dir=data_dir, cost_mode=cost_mode,
                                               progress=progress, executor=executor))
    n = default_workers() if workers is None else max(1, int(workers))
    done_own = iter(run_file_cells(own, seeds, data_dir, cost_mode, n, options, progress))
    return [next(done_own) if i in mine else next(done_builtin) for i in range(len(cells))]
