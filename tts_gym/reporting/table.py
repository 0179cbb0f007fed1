"""The paper's main table: published controllers × models × benchmarks.

Rows SC@64, ASC, ESC, Parallel-Probe, CMC β=0.5, CMC β=1.0 for each model; columns AIME24 (the
search split), AIME25 and HMMT25 (held out) and the held-out average; each entry is accuracy (%,
1 decimal as in the paper) and average tokens per question in thousands ("483.4k").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tts_gym.paths import BENCHMARKS, MODELS, split_of
from tts_gym.reporting.cells import Cell, CellResult, check_controllers
from tts_gym.reporting.run_cells import evaluate_cells

TABLE_ROWS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("SC@64", "sc", {"n": 64}),
    ("ASC", "asc", {"max_samples": 64, "threshold": 0.95}),
    ("ESC", "esc", {"max_samples": 64, "window": 8}),
    ("Parallel-Probe", "parallel-probe", {"num_chains": 64}),
    ("CMC β=0.5", "cmc", {"beta": 0.5}),
    ("CMC β=1.0", "cmc", {"beta": 1.0}),
)
"""(row label, registry name, parameters) of the paper's table, in order."""


def format_tokens(tokens: float) -> str:
    """Tokens in thousands with one decimal, as the paper prints them.

    >>> format_tokens(483412.7)
    '483.4k'
    """
    return f"{tokens / 1000:.1f}k"


def benchmark_title(benchmark: str) -> str:
    """``"AIME24 (search)"``, ``"HMMT25"``, ..."""
    name = benchmark.upper()
    return f"{name} (search)" if split_of(benchmark) == "search" else name


@dataclass
class MainTable:
    """Results of :func:`main_table`.

    Attributes:
        results: (row label, model, benchmark) -> :class:`CellResult`.
        skipped: row label -> why it was left out (controller not available).
        seconds: wall time of the evaluation (stores loaded, kernels warm, all cells).
    """

    models: list[str]
    benchmarks: list[str]
    labels: list[str]
    results: dict[tuple[str, str, str], CellResult]
    skipped: dict[str, str] = field(default_factory=dict)
    seeds: int = 100
    seconds: float = 0.0

    @property
    def heldout(self) -> list[str]:
        """The held-out benchmarks among the columns."""
        return [b for b in self.benchmarks if split_of(b) == "heldout"]

    def heldout_average(self, label: str, model: str) -> tuple[float, float] | None:
        """Mean (accuracy, avg_tokens) over the held-out columns; None without any."""
        got = [self.results[(label, model, b)] for b in self.heldout]
        if not got:
            return None
        return (
            sum(r.accuracy for r in got) / len(got),
            sum(r.avg_tokens for r in got) / len(got),
        )

    def to_rows(self) -> list[dict[str, Any]]:
        """One flat row per (model, method, benchmark), plus ``heldout_avg`` rows."""
        out: list[dict[str, Any]] = []
        for model in self.models:
            for label in self.labels:
                for b in self.benchmarks:
                    row = self.results[(label, model, b)].to_row()
                    row["method"] = row.pop("label")
                    out.append(row)
                avg = self.heldout_average(label, model)
                if avg is not None:
                    out.append(
                        {
                            "method": label,
                            "model": model,
                            "benchmark": "heldout_avg",
                            "split": "heldout",
                            "accuracy": round(avg[0], 2),
                            "avg_tokens": round(avg[1], 3),
                        }
                    )
        return out

    def to_markdown(self) -> str:
        """The table as GitHub markdown (see :func:`table_markdown`)."""
        return table_markdown(self)


def table_markdown(table: MainTable) -> str:
    """Markdown: one row per (model, method); entries ``accuracy / tokens``."""
    cols = [benchmark_title(b) for b in table.benchmarks]
    if table.heldout:
        cols.append("Held-out avg")
    lines = [
        "| Model | Method | " + " | ".join(cols) + " |",
        "|---|---|" + "---:|" * len(cols),
    ]
    for model in table.models:
        for label in table.labels:
            cells = []
            for b in table.benchmarks:
                r = table.results[(label, model, b)]
                cells.append(f"{r.accuracy:.1f} / {format_tokens(r.avg_tokens)}")
            avg = table.heldout_average(label, model)
            if avg is not None:
                cells.append(f"{avg[0]:.1f} / {format_tokens(avg[1])}")
            lines.append(f"| {model} | {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Accuracy % / average tokens per question, {table.seeds} shuffle seeds "
        "(reference cost mode)."
    )
    for label, why in table.skipped.items():
        lines.append(f"Row {label!r} skipped: {why}")
    return "\n".join(lines)


def main_table(
    models: Sequence[str] = MODELS,
    benchmarks: Sequence[str] = BENCHMARKS,
    *,
    seeds: int = 100,
    workers: int | None = None,
    data_dir: Any = None,
    rows: Sequence[tuple[str, str, dict[str, Any]]] = TABLE_ROWS,
    rl: Sequence[str] = (),
    warn: Callable[[str], Any] | None = None,
    progress: Callable[[int], Any] | None = None,
    on_cells: Callable[[int], Any] | None = None,
    files: Any = None,
) -> MainTable:
    """Evaluate the paper's table.

    Rows whose controller cannot be built (e.g. ``cmc`` before its module exists) are skipped,
    with the reason passed to ``warn`` and kept in :attr:`MainTable.skipped`.

    Args:
        models, benchmarks: The stores (defaults: all four models, all three benchmarks).
        seeds: Shuffle seeds per cell (the paper: 100).
        workers: Processes (default: every core).
        data_dir: Folder of the stores (default: ``TTS_GYM_DATA``...).
        rows: ``(label, controller name, params)`` rows (default :data:`TABLE_ROWS`).
        rl: Trained policies ``NAME=DIR/model.zip`` appended as rows (``rl:PATH`` controllers,
            see :mod:`tts_gym.reporting.rl`).
        warn: Called with a message for every skipped row.
        progress: Called with 1 per finished cell.
        on_cells: Called once with the number of cells to run (to size a progress bar).
        files: How ``file:PATH`` rows run (:class:`tts_gym.reporting.own.FileOptions`).

    Returns:
        A :class:`MainTable`.

    Raises:
        ValueError: No row left to evaluate, or bad parameters.
        FileNotFoundError: A store is missing.
    """
    import time

    from tts_gym.reporting.rl import rl_table_rows

    rows = [*rows, *rl_table_rows(list(rl))]
    probe = [
        Cell.make(name, params, models[0], benchmarks[0], label) for label, name, params in rows
    ]
    missing = check_controllers(probe)
    skipped = {}
    kept = []
    for label, name, params in rows:
        if name in missing:
            skipped[label] = missing[name]
            if warn is not None:
                warn(f"skipping row {label!r}: {missing[name]}")
        else:
            kept.append((label, name, params))
    if not kept:
        raise ValueError("No table row can be evaluated: " + "; ".join(skipped.values()))
    cells = [
        Cell.make(name, params, m, b, label)
        for m in models
        for label, name, params in kept
        for b in benchmarks
    ]
    if on_cells is not None:
        on_cells(len(cells))
    start = time.perf_counter()
    results = evaluate_cells(cells, seeds, workers=workers, data_dir=data_dir, progress=progress,
                             files=files)
    seconds = time.perf_counter() - start
    return MainTable(
        models=list(models),
        benchmarks=list(benchmarks),
        labels=[label for label, _n, _p in kept],
        results={(c.label, c.model, c.benchmark): r for c, r in zip(cells, results, strict=True)},
        skipped=skipped,
        seeds=seeds,
        seconds=seconds,
    )
