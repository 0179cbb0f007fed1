"""Reading and writing report rows as CSV or JSON (atomic writes)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tts_gym.io import write_json_atomic, write_text_atomic

NUMERIC = ("accuracy", "avg_tokens", "seconds", "budget", "seeds")


DETAIL_KEYS = ("seed_list", "correct_shape", "correct_bits", "per_question_accuracy",
               "per_question_tokens")
"""Per-question columns of a row (:func:`tts_gym.reporting.cells.cell_detail`): JSON only."""


def write_rows_csv(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Write rows as CSV (columns: the union of keys, in first-seen order; the per-question
    :data:`DETAIL_KEYS` are left to the JSON form, which ``tts-gym compare`` reads)."""
    rows = [{k: v for k, v in r.items() if k not in DETAIL_KEYS} for r in rows]
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buf.getvalue())


def write_rows_json(
    path: str | os.PathLike[str], rows: Sequence[dict[str, Any]], **meta: Any
) -> Path:
    """Write ``{"rows": rows, **meta}`` as JSON."""
    return write_json_atomic(path, {**meta, "rows": list(rows)})


def _number(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows from a ``.json`` (``{"rows": [...]}`` or a list) or ``.csv`` report.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a report of rows.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No report file {path}; write one with `tts-gym sweep --json`.")
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path} is not valid JSON ({exc}); rewrite it with `tts-gym sweep --json`."
            ) from exc
        rows = obj.get("rows") if isinstance(obj, dict) else obj
        if not isinstance(rows, list):
            raise ValueError(f"{path} holds no list of rows.")
        _check_rows(path, rows)
        return rows
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    _check_rows(path, rows)
    for r in rows:
        for k in NUMERIC:
            if k in r and r[k] not in ("", None):
                r[k] = _number(r[k])
        if "pareto" in r:
            r["pareto"] = str(r["pareto"]).lower() == "true"
    return rows


REQUIRED = ("controller", "model", "benchmark", "accuracy", "avg_tokens")
"""Columns every report row needs (``tts-gym plot --from``)."""


def _check_rows(path: Path, rows: list[Any]) -> None:
    """Raise a one-sentence ``ValueError`` if a row is not a dict with the REQUIRED keys."""
    for i, r in enumerate(rows):
        missing = [k for k in REQUIRED if k not in r] if isinstance(r, dict) else list(REQUIRED)
        if missing:
            raise ValueError(
                f"{path}, row {i}: not a sweep row (missing {', '.join(missing)}); "
                "write the file with `tts-gym sweep --json/--csv`."
            )
