"""Read the problem file of a collection: JSONL (default), CSV or Parquet.

Each row gives a question id, the problem text and the gold answer (field names configurable).
Rows keep the file's order; that order is the store's question order.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tts_gym.collect.errors import CollectError


@dataclass(frozen=True)
class Problem:
    """One question of the problem file.

    Attributes:
        id: The question id (the ``id`` field, else the 0-based row number, as a string).
        problem: The problem text sent to the model.
        answer: The gold answer, as a string (numbers are converted with ``str``).
    """

    id: str
    problem: str
    answer: str


@dataclass(frozen=True)
class Fields:
    """Field names of the problem file (``--id-field``, ``--problem-field``, ``--answer-field``)."""

    id: str = "id"
    problem: str = "problem"
    answer: str = "answer"


def file_digest(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _rows_jsonl(path: Path, raw: bytes) -> Iterable[tuple[int, Any]]:
    text = raw.decode("utf-8-sig")
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise CollectError(
                f"{path}, line {line_no}: not valid JSON ({exc.msg}); each line of a JSONL problem "
                "file must be one JSON object."
            ) from None


def _rows_csv(path: Path, raw: bytes) -> Iterable[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""))
    for row in reader:
        yield reader.line_num, row


def _rows_parquet(path: Path) -> Iterable[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CollectError(
            f"{path} is a Parquet file and reading it needs pyarrow: pip install pyarrow, or "
            "convert the file to JSONL."
        ) from None
    for i, row in enumerate(pq.read_table(path).to_pylist()):
        yield i + 1, row


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return value if isinstance(value, str) else None


def read_problems(path: str | Path, fields: Fields = Fields()) -> list[Problem]:
    """Read and check every row of the problem file.

    Args:
        path: ``.jsonl`` / ``.json`` (one object per line), ``.csv`` (header row) or ``.parquet``.
        fields: Names of the id, problem and answer fields; a missing id field numbers the rows.

    Returns:
        The problems in file order.

    Raises:
        CollectError: Unreadable file, a row without problem or answer, an empty value, a
            duplicate id, or no rows at all (the message names the file, the row and the field).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CollectError(f"Cannot read the problem file {path}: {exc.strerror or exc}.") from None
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rows = _rows_parquet(path)
        where = "row"
    elif suffix == ".csv":
        rows = _rows_csv(path, raw)
        where = "line"
    else:
        rows = _rows_jsonl(path, raw)
        where = "line"
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, (line_no, row) in enumerate(rows):
        if not isinstance(row, dict):
            raise CollectError(
                f"{path}, {where} {line_no}: expected an object with fields "
                f"'{fields.problem}' and '{fields.answer}', got {type(row).__name__}."
            )
        values = {}
        for name in (fields.problem, fields.answer):
            value = _text(row.get(name))
            if value is None or not value.strip():
                got = "is missing" if name not in row else f"is empty or not text ({row[name]!r})"
                raise CollectError(
                    f"{path}, {where} {line_no}: field '{name}' {got}; every row needs a problem "
                    f"and a gold answer (rename fields with --problem-field / --answer-field)."
                )
            values[name] = value
        qid = _text(row.get(fields.id)) if fields.id in row else str(n)
        if qid is None or not qid.strip():
            raise CollectError(
                f"{path}, {where} {line_no}: field '{fields.id}' is empty or not text; give every "
                "row an id, or drop the field to number rows automatically."
            )
        if qid in seen:
            raise CollectError(
                f"{path}, {where} {line_no}: id {qid!r} already appears at {where} {seen[qid]}; "
                "question ids must be unique."
            )
        seen[qid] = line_no
        problems.append(Problem(qid, values[fields.problem], values[fields.answer].strip()))
    if not problems:
        raise CollectError(f"The problem file {path} holds no rows.")
    return problems
