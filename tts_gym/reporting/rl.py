"""Trained RL policies as report rows: ``--rl NAME=DIR/model.zip`` for table, sweep and plot.

A policy is named on the command line as ``NAME=PATH`` (``PATH`` a ``model.zip`` written by
``tts-gym train-rl``, or its folder). It is evaluated like every other controller (the 100-seed
protocol, handle path, process pool) through ``make_controller("rl:PATH")``; this module only
reads the ``config.json`` beside the model (JSON, so :mod:`tts_gym` still never imports
:mod:`agents`).

Several ``--rl`` options with the SAME name form one curve: the RL frontier. Its points are
labelled by the cost weight each model was trained with (``config.json["cost_weight"]``), the RL
analogue of CMC's beta (``budget_param = "cost_weight"`` in sweep rows).

>>> parse_rl_option("mppo=runs/a/model.zip")
('mppo', 'runs/a/model.zip')
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tts_gym.reporting.cells import Cell

RL_PREFIX = "rl:"
CONFIG_NAME = "config.json"


def parse_rl_option(text: str) -> tuple[str, str]:
    """``"NAME=PATH"`` -> ``(NAME, PATH)``; ``PATH`` alone is named after its folder.

    The first ``=`` splits (NAME cannot contain one). ``PATH`` may be the model folder;
    ``DIR/model.zip`` is then used.

    Raises:
        ValueError: Empty name or path.
    """
    name, sep, path = text.partition("=")
    if not sep:
        name, path = "", text
    path = path.strip()
    if not path:
        raise ValueError(f"--rl {text!r}: give NAME=DIR/model.zip (or a model folder).")
    if os.path.isdir(path):
        path = os.path.join(path, "model.zip")
    name = name.strip() or f"RL {Path(path).parent.name}"
    return name, path


def rl_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` written by ``tts-gym train-rl`` beside ``path`` (``{}`` if absent;
    the controller itself then explains what is missing)."""
    cfg = Path(path).parent / CONFIG_NAME
    if not cfg.is_file():
        return {}
    return json.loads(cfg.read_text())


def cost_weight_of(path: str | os.PathLike[str]) -> float | None:
    """The cost weight (reward per token) the model at ``path`` was trained with."""
    value = rl_config(path).get("cost_weight")
    return None if value is None else float(value)


def rl_table_rows(options: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Table rows ``(label, "rl:PATH", {})`` for ``--rl`` options.

    A name given several times gets its cost weight appended (``"mppo (cw=1e-06)"``) so each
    model stays a row of its own.
    """
    parsed = [parse_rl_option(o) for o in options]
    counts: dict[str, int] = {}
    for name, _p in parsed:
        counts[name] = counts.get(name, 0) + 1
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for name, path in parsed:
        label = name
        if counts[name] > 1:
            label = f"{name} (cw={cost_weight_of(path):g})"
        rows.append((label, RL_PREFIX + path, {}))
    return rows


def rl_sweep_cells(options: list[str], models: list[str], benchmarks: list[str]) -> list[Cell]:
    """One cell per (``--rl`` model, store), labelled by its NAME (its curve)."""
    cells = []
    for name, path in (parse_rl_option(o) for o in options):
        for m in models:
            for b in benchmarks:
                cells.append(Cell.make(RL_PREFIX + path, {}, m, b, name))
    return cells


def is_rl(controller: str) -> bool:
    """True for an ``rl:PATH`` controller spec."""
    return str(controller).startswith(RL_PREFIX)
