"""Your own controller files in the table, the sweeps and the plots (``file:PATH`` cells).

A ``file:PATH`` cell is scored like ``tts-gym eval file:PATH``: in the sandbox by default
(:func:`tts_gym.sandbox.evaluate.evaluate_source`, the seeds spread over ``workers`` brokers),
or imported into this process with ``trusted=True`` (:func:`tts_gym.evaluate` on a process
pool). Either way the per-episode CPU budget ``episode_cpu_s`` applies (``--episode-cpu``).
File cells run here, one after the other, each using every worker; built-in cells go to the
cell pool (:func:`tts_gym.reporting.cells.evaluate_builtin_cells`); both are called by
:func:`tts_gym.reporting.run_cells.evaluate_cells`.

A file following the candidate contract (``Controller(beta)``, docs/controllers.md) is swept
over :data:`CONTRACT_GRID` unless a grid is given (``--grid file:PATH:KEY=V1,V2``).
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts_gym.paths import split_of
from tts_gym.reporting.cells import Cell, CellResult, cell_detail, get_store

FILE_PREFIX = "file:"
MAX_SOURCE_BYTES = 1 << 20
CONTRACT_GRID: tuple[str, tuple[float, ...], dict[str, Any]] = (
    "beta", tuple(round(0.1 * i, 1) for i in range(11)), {})
"""The grid of a candidate-contract file: beta 0.0, 0.1, ..., 1.0 (CMC's)."""


@dataclass(frozen=True)
class FileOptions:
    """How ``file:`` cells run.

    Attributes:
        trusted: Import the files into this process (your own code) instead of the sandbox.
        episode_cpu_s: CPU seconds per episode (``--episode-cpu``; also the sandbox watchdog).
        unsafe: Sandbox without a required isolation layer (``--unsafe-no-isolation``).
    """

    trusted: bool = False
    episode_cpu_s: float = 1.0
    unsafe: bool = False


def is_file(spec: str) -> bool:
    """Whether a controller spec names a file (``file:PATH``)."""
    return str(spec).startswith(FILE_PREFIX)


def file_path(spec: str) -> Path:
    """The path of a ``file:PATH`` spec."""
    return Path(str(spec)[len(FILE_PREFIX):])


def read_source(spec: str) -> str:
    """The text of a ``file:PATH`` controller.

    Raises:
        ValueError: The file is missing or larger than :data:`MAX_SOURCE_BYTES`.
    """
    path = file_path(spec)
    if not path.is_file():
        raise ValueError(f"controller file {path} does not exist; check the path after file:.")
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise ValueError(f"controller file {path} is larger than {MAX_SOURCE_BYTES} bytes.")
    return path.read_text(errors="replace")


def takes_beta(source: str) -> bool:
    """Whether ``class Controller``'s constructor takes ``beta`` (the candidate contract),
    read from the source without running it.

    >>> takes_beta("class Controller:\\n    def __init__(self, beta=0.5):\\n        pass\\n")
    True
    >>> takes_beta("class Controller:\\n    def solve(self, q):\\n        return None\\n")
    False
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Controller":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    a = item.args
                    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                    return "beta" in names or a.kwarg is not None
    return False


def file_grid(spec: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """The default sweep grid of a ``file:`` controller: :data:`CONTRACT_GRID` for a
    candidate-contract file.

    Raises:
        ValueError: The file is missing, or its ``Controller`` takes no ``beta`` (then a grid
            must be given).
    """
    if takes_beta(read_source(spec)):
        return CONTRACT_GRID
    raise ValueError(
        f"No sweep grid for {spec}: its Controller takes no beta; give one with "
        f"--grid {spec}:KEY=V1,V2,... (e.g. --grid {spec}:n=4,16,64).")


def check_files(cells: Sequence[Cell], options: FileOptions) -> None:
    """Refuse, before any work, a ``file:`` cell whose file is missing, too big, or (in the
    sandbox) uses what the sandbox cannot run.

    Raises:
        ValueError: One sentence naming the file.
    """
    from tts_gym.sandbox.precheck import precheck_source

    seen: set[str] = set()
    for cell in cells:
        if not is_file(cell.controller) or cell.controller in seen:
            continue
        seen.add(cell.controller)
        source = read_source(cell.controller)
        if not options.trusted:
            precheck_source(source, str(file_path(cell.controller)))


def run_file_cell(cell: Cell, seeds: int, data_dir: Any, cost_mode: str, workers: int,
                  options: FileOptions) -> CellResult:
    """Score one ``file:`` cell (sandboxed, or trusted) with the protocol.

    Raises:
        tts_gym.sandbox.evaluate.CandidateFailed: The file failed in the sandbox.
        tts_gym.evaluation.protocol.ControllerError: The file failed in this process.
    """
    store = get_store(cell.model, cell.benchmark, data_dir)
    path = file_path(cell.controller)
    start = time.perf_counter()
    if options.trusted:
        from tts_gym.controller import make_controller
        from tts_gym.evaluation import evaluate

        ctrl = make_controller(cell.controller, cell.param_dict,
                               episode_cpu_s=options.episode_cpu_s)
        res = evaluate(ctrl, store, seeds, workers=workers, cost_mode=cost_mode)
    else:
        from tts_gym.sandbox.evaluate import evaluate_source
        from tts_gym.sandbox.layers import require
        from tts_gym.sandbox.limits import SandboxLimits

        limits = SandboxLimits.per_episode(options.episode_cpu_s, workers=workers,
                                           unsafe=options.unsafe)
        require(limits)
        res = evaluate_source(read_source(cell.controller), store, seeds,
                              params=cell.param_dict, filename=path.name, limits=limits,
                              cost_mode=cost_mode, name=cell.controller)
    return CellResult(cell=cell, accuracy=res.accuracy, avg_tokens=res.avg_tokens,
                      split=store.split or split_of(cell.benchmark), seeds=len(res.seeds),
                      path=res.path,
                      seconds=time.perf_counter() - start, extra=cell_detail(res, store))


def run_file_cells(cells: Sequence[Cell], seeds: int, data_dir: Any, cost_mode: str,
                   workers: int, options: FileOptions,
                   progress: Callable[[int], Any] | None = None) -> list[CellResult]:
    """:func:`run_file_cell` for each cell, in order (``progress(1)`` after each)."""
    out = []
    for cell in cells:
        out.append(run_file_cell(cell, seeds, data_dir, cost_mode, workers, options))
        if progress is not None:
            progress(1)
    return out
