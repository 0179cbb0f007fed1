"""Score many cells (controller × params × store) with the published protocol, in parallel.

A :class:`Cell` names its controller by registry name (or any ``make_controller`` spec), so the
work can be shipped to worker processes as plain data. The parent loads every store and compiles
(or loads from numba's cache) every controller's kernels once, then forks the workers, which
inherit both: a cell then costs only its kernel's run time.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate, protocol_orders
from tts_gym.evaluation.orders import remember_orders
from tts_gym.executor import Executor, Job, resolve
from tts_gym.kernels.transitions import COST_MODES
from tts_gym.paths import split_of
from tts_gym.store import ReplayStore, load_store

PROBING = ("parallel-probe", "cmc")
"""Controllers that probe many branches per episode (the expensive cells, scheduled first)."""


class ControllerUnavailable(ValueError):
    """A controller name is unknown or its module cannot be imported."""


@dataclass(frozen=True)
class Cell:
    """One evaluation: a controller with parameters on one (model, benchmark) store.

    Attributes:
        controller: Registry name (``"asc"``) or any :func:`make_controller` spec.
        params: Sorted ``(key, value)`` pairs (hashable); see :meth:`make`.
        model, benchmark: The store.
        label: Display name (the table's row name); defaults to ``controller``.
    """

    controller: str
    params: tuple[tuple[str, Any], ...]
    model: str
    benchmark: str
    label: str = ""

    @classmethod
    def make(
        cls,
        controller: str,
        params: dict[str, Any] | None,
        model: str,
        benchmark: str,
        label: str = "",
    ) -> Cell:
        """Build a cell from a params dict."""
        return cls(
            controller, tuple(sorted((params or {}).items())), model, benchmark, label or controller
        )

    @property
    def param_dict(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)

    @property
    def param_text(self) -> str:
        """``key=value;...`` (the published CSV's config style); empty for defaults."""
        return ";".join(f"{k}={v}" for k, v in self.params)


@dataclass
class CellResult:
    """The headline numbers of one cell.

    Attributes:
        accuracy: percent, rounded to 2 decimals as published.
        avg_tokens: mean tokens per question (mean over seeds).
        seconds: wall time of the cell's evaluation (kernel or handle path).
    """

    cell: Cell
    accuracy: float
    avg_tokens: float
    split: str
    seeds: int
    path: str
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """A flat, JSON/CSV-friendly dict."""
        return {
            "label": self.cell.label,
            "controller": self.cell.controller,
            "params": self.cell.param_text,
            "model": self.cell.model,
            "benchmark": self.cell.benchmark,
            "split": self.split,
            "seeds": self.seeds,
            "accuracy": self.accuracy,
            "avg_tokens": self.avg_tokens,
            "path": self.path,
            "seconds": round(self.seconds, 4),
            **self.extra,
        }


_STORES: dict[tuple[str, str, str], ReplayStore] = {}


def get_store(model: str, benchmark: str, data_dir: str | os.PathLike[str] | None) -> ReplayStore:
    """Load a store once per process (forked workers inherit the parent's)."""
    key = (model, benchmark, str(data_dir))
    if key not in _STORES:
        _STORES[key] = load_store(model, benchmark, data_dir)
    return _STORES[key]


def pack_bits(correct: np.ndarray) -> str:
    """bool ``[S, Q]`` as a hex string of its bits (row-major), the form sweep rows carry.

    >>> pack_bits(np.array([[True, False], [False, True]]))
    '90'
    """
    return np.packbits(np.asarray(correct, bool).ravel()).tobytes().hex()


def unpack_bits(text: str, shape: Sequence[int]) -> np.ndarray:
    """The inverse of :func:`pack_bits`.

    Raises:
        ValueError: ``text`` is not hex or holds fewer bits than ``shape`` needs.
    """
    n = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(text), np.uint8))
    if bits.size < n:
        raise ValueError(f"correctness bits hold {bits.size} values, fewer than {n}.")
    return bits[:n].astype(bool).reshape(tuple(int(x) for x in shape))


def cell_detail(res: Any, store: ReplayStore) -> dict[str, Any]:
    """What a paired comparison needs of a cell (:mod:`tts_gym.reporting.compare`): the store's
    SHA-256, the seed list, the per-episode correctness bits (``correct_shape`` ``[S, Q]``,
    ``correct_bits`` from :func:`pack_bits`), per-question accuracy (percent, mean over seeds)
    and per-question tokens (mean over seeds)."""
    return {
        "store_sha256": store.sha256,
        "seed_list": [int(s) for s in res.seeds],
        "correct_shape": list(res.correct.shape),
        "correct_bits": pack_bits(res.correct),
        "per_question_accuracy": np.round(100.0 * res.per_question_accuracy, 2).tolist(),
        "per_question_tokens": np.round(res.per_question_tokens, 1).tolist(),
    }


def build_controller(cell: Cell) -> Any:
    """``make_controller`` for a cell, turning import failures into :class:`ControllerUnavailable`.

    Raises:
        ControllerUnavailable: Unknown name, or the registered module is missing/broken.
        ValueError: Bad parameters (the controller's own message).
    """
    try:
        return make_controller(cell.controller, cell.param_dict)
    except ImportError as exc:
        raise ControllerUnavailable(
            f"controller {cell.controller!r} is registered but cannot be imported ({exc}); "
            "install or finish its module, or leave it out (--controllers)."
        ) from exc
    except ValueError as exc:
        if str(exc).startswith("Unknown controller"):
            raise ControllerUnavailable(str(exc)) from exc
        raise


def check_controllers(cells: Iterable[Cell]) -> dict[str, str]:
    """Controller names that cannot be built -> the reason (bad parameters still raise)."""
    missing: dict[str, str] = {}
    seen: set[tuple[str, tuple]] = set()
    for cell in cells:
        key = (cell.controller, cell.params)
        if cell.controller.startswith("file:"):  # never imported here (reporting.own checks)
            continue
        if key in seen or cell.controller in missing:
            continue
        seen.add(key)
        try:
            build_controller(cell)
        except ControllerUnavailable as exc:
            missing[cell.controller] = str(exc)
    return missing


def run_cell(cell: Cell, seeds: int, data_dir: Any, cost_mode: str) -> CellResult:
    """Evaluate one cell in this process (batch path when the controller has one, else the
    question handle through :func:`evaluate`)."""
    store = get_store(cell.model, cell.benchmark, data_dir)
    controller = build_controller(cell)
    start = time.perf_counter()
    res = evaluate(controller, store, seeds, cost_mode=cost_mode)
    return CellResult(
        cell=cell,
        accuracy=res.accuracy,
        avg_tokens=res.avg_tokens,
        split=store.split or split_of(cell.benchmark),
        seeds=len(res.seeds),
        path=res.path,
        seconds=time.perf_counter() - start,
        extra=cell_detail(res, store),
    )


def _cost(cell: Cell) -> float:
    """A rough relative cost, to schedule expensive cells first (RL policies run the handle
    path, the slowest)."""
    if cell.controller.startswith("rl:"):
        return 5.0
    if cell.controller not in PROBING:
        return 0.1
    p = cell.param_dict
    budget = p.get("num_chains", 64) / 64 if "num_chains" in p else 0.3 + p.get("beta", 0.5)
    return 1.0 + budget


def warm_up_kernels(cells: Sequence[Cell], data_dir: Any, cost_mode: str) -> None:
    """Compile/load every distinct controller's kernels once on a real store, 1 seed."""
    done: set[str] = set()
    for cell in cells:
        if cell.controller in done:
            continue
        done.add(cell.controller)
        run_cell(cell, 1, data_dir, cost_mode)


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _cell_context(shared: dict[str, Any], slot: int | None) -> Iterator[None]:
    """Install the shipped stores and protocol orders in this process's caches (forked local
    workers inherit them already)."""
    for key, store in shared["stores"].items():
        _STORES.setdefault(key, store)
        remember_orders(store, range(shared["seeds"]), shared["orders"][key])
    yield None


def _run_cell_item(_ctx: None, args: tuple) -> CellResult:
    return run_cell(*args)


CELL_JOB = Job("tts-gym-cell", _cell_context, _run_cell_item)
"""One cell per item: ``(cell, seeds, data_dir, cost_mode)``. A cell is the unit of work on
every executor: the published sweep's 396 cells take 5 ms (SC) to ~0.5 s (CMC at beta 1) each,
so a Ray task's ~1-2 ms of scheduling stays small next to the cells that matter, and the
expensive cells are submitted first."""


def evaluate_builtin_cells(
    cells: Sequence[Cell],
    seeds: int = 100,
    *,
    workers: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cost_mode: str = "reference",
    progress: Callable[[int], Any] | None = None,
    executor: Executor | None = None,
) -> list[CellResult]:
    """Score cells of registered controllers on the cell pool (the published protocol).

    The arguments are those of :func:`tts_gym.reporting.evaluate_cells`, which also takes
    ``file:PATH`` cells and sends only the others here.

    Returns:
        One :class:`CellResult` per cell, in the same order.

    Raises:
        ValueError: A ``file:`` cell (score those with :func:`tts_gym.reporting.evaluate_cells`)
            or an unknown ``cost_mode``.
        ControllerUnavailable: A cell's controller cannot be built.
        FileNotFoundError: A store is missing.
    """
    cells = list(cells)
    if cost_mode not in COST_MODES:
        raise ValueError(f"cost_mode must be one of {sorted(COST_MODES)}, got {cost_mode!r}.")
    own = [c.controller for c in cells if c.controller.startswith("file:")]
    if own:
        raise ValueError(f"{own[0]} is a controller file: score it with "
                         "tts_gym.reporting.evaluate_cells, which runs file cells.")
    if not cells:
        return []
    workers = default_workers() if workers is None else max(1, int(workers))
    ex = resolve(executor, min(workers, len(cells)))
    stores, orders = {}, {}
    for cell in cells:  # stores and orders once, here (forked workers inherit them)
        key = (cell.model, cell.benchmark, str(data_dir))
        if key not in stores:
            stores[key] = get_store(cell.model, cell.benchmark, data_dir)
            orders[key] = protocol_orders(stores[key], range(seeds))
    warm_up_kernels(cells, data_dir, cost_mode)
    tag = tuple(sorted((k, s.sha256) for k, s in stores.items()))
    shared = {"stores": ex.share(stores, ("cell-stores", tag)),
              "orders": ex.share(orders, ("cell-orders", seeds, tag)), "seeds": seeds}
    order = sorted(range(len(cells)), key=lambda i: -_cost(cells[i]))
    items = [(cells[i], seeds, data_dir, cost_mode) for i in order]
    tick = None if progress is None else (lambda _r: progress(1))
    done = ex.map(CELL_JOB, shared, items, progress=tick)
    results: list[CellResult | None] = [None] * len(cells)
    for i, res in zip(order, done, strict=True):
        results[i] = res
    return results  # type: ignore[return-value]


def results_to_rows(results: Iterable[CellResult]) -> list[dict[str, Any]]:
    """Flat dict rows of results."""
    return [r.to_row() for r in results]
