"""The AutoTTS paper's published AIME24 figures, shipped with the package.

``tts_gym/data/aime24_published.csv`` holds the 104 rows of "LLMs Improving LLMs: Agentic
Discovery for Test-Time Scaling" (AutoTTS, 2026) for AIME24: ASC, ESC and Parallel-Probe over
their budgets and CMC for beta = 0.0 ... 1.0, on each of the four Qwen3 models, under the
published protocol (100 shuffle seeds). Columns: ``model, dataset, controller, config,
accuracy, avg_tokens``; accuracy in percent with 2 decimals, avg_tokens the integer part of the
average tokens per question. ``config`` is ``key=value`` pairs joined by ``;``.

>>> rows = published_rows()
>>> len(rows), sorted({r.controller for r in rows})
(104, ['asc', 'cmc', 'esc', 'parallel-probe'])
>>> row = published_row("cmc", "Qwen3-8B", beta=0.5)
>>> row.accuracy, row.avg_tokens
(84.27, 255293)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from tts_gym.controller import parse_param

PUBLISHED_CSV = "aime24_published.csv"
"""File name of the published figures inside ``tts_gym/data``."""
CSV_NAMES = {"asc": "asc", "esc": "esc", "parallel_probe": "parallel-probe", "cmc": "cmc"}
"""The CSV's controller spelling -> the registered controller name."""


@dataclass(frozen=True)
class PublishedRow:
    """One published figure.

    Attributes:
        model: e.g. ``"Qwen3-8B"``.
        benchmark: ``"aime24"`` (the CSV's ``dataset`` column).
        controller: The registered controller name (``"parallel-probe"``, not the CSV's
            ``parallel_probe``).
        params: The controller's parameters, parsed from ``config`` (values as int/float).
        config: The CSV's ``config`` text, unchanged.
        accuracy: Percent correct, 2 decimals.
        avg_tokens: Integer part of the average tokens per question.
    """

    model: str
    benchmark: str
    controller: str
    params: dict[str, Any]
    config: str
    accuracy: float
    avg_tokens: int


def published_csv_text() -> str:
    """The shipped CSV's text."""
    return (resources.files("tts_gym") / "data" / PUBLISHED_CSV).read_text(encoding="utf-8")


@cache
def _rows() -> tuple[PublishedRow, ...]:
    rows = []
    for r in csv.DictReader(io.StringIO(published_csv_text())):
        rows.append(
            PublishedRow(
                model=r["model"],
                benchmark=r["dataset"],
                controller=CSV_NAMES[r["controller"]],
                params=dict(parse_param(p) for p in r["config"].split(";")),
                config=r["config"],
                accuracy=float(r["accuracy"]),
                avg_tokens=int(r["avg_tokens"]),
            )
        )
    return tuple(rows)


def published_rows() -> list[PublishedRow]:
    """Every published row, in the CSV's order."""
    return list(_rows())


def published_row(controller: str, model: str, benchmark: str = "aime24", **params: Any):
    """The published row of ``controller`` on (model, benchmark) whose parameters include
    ``params`` (e.g. ``published_row("asc", "Qwen3-8B", max_samples=16)``).

    Raises:
        LookupError: No row, or more than one, matches (the message lists the candidates).
    """
    hits = [
        r
        for r in _rows()
        if (r.controller, r.model, r.benchmark) == (controller, model, benchmark)
        and all(r.params.get(k) == v for k, v in params.items())
    ]
    if len(hits) != 1:
        options = [
            r.config for r in _rows() if (r.controller, r.model) == (controller, model)
        ]
        raise LookupError(
            f"{len(hits)} published rows match {controller} on {model}/{benchmark} with "
            f"{params}; its published configs: {options or 'none'}."
        )
    return hits[0]
