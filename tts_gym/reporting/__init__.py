"""Reports over many evaluations: the paper's main table, budget sweeps, Pareto fronts, plots.

Controllers are named by registry name (``sc``, ``asc``, ``esc``, ``parallel-probe``, ``cmc``)
and built with :func:`tts_gym.controller.make_controller`, so this package never imports
``agents``; ``file:PATH`` controllers run in the sandbox unless trusted (:mod:`.own`).
:func:`compare` puts two controllers or sweep files side by side band by band (:mod:`.compare`).
Cells (controller × params × store) are scored with the published 100-seed protocol,
in a process pool.
"""

from tts_gym.reporting.cells import Cell, CellResult, ControllerUnavailable
from tts_gym.reporting.compare import compare, curve_from_rows, read_curve
from tts_gym.reporting.pareto import pareto_mask
from tts_gym.reporting.run_cells import evaluate_cells
from tts_gym.reporting.sweep import SWEEP_GRIDS, sweep, sweep_cells
from tts_gym.reporting.table import TABLE_ROWS, format_tokens, main_table, table_markdown

__all__ = [
    "SWEEP_GRIDS",
    "TABLE_ROWS",
    "Cell",
    "CellResult",
    "ControllerUnavailable",
    "compare",
    "curve_from_rows",
    "evaluate_cells",
    "format_tokens",
    "main_table",
    "pareto_mask",
    "read_curve",
    "sweep",
    "sweep_cells",
    "table_markdown",
]
