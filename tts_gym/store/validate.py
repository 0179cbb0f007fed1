"""Parse and validate the AutoTTS replay-store JSON (spec: shared/spec/replay-store.md).

Every problem raises :class:`StoreFormatError` naming the file, the question index, the branch
index and the field, and saying what to do. Nothing partial is returned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QUESTION_FIELDS: tuple[str, ...] = (
    "question",
    "gold_answer",
    "probe_freq",
    "each_branch",
    "final_answers_trace",
)

_INT64_MAX = 2**63 - 1


class StoreFormatError(ValueError):
    """A replay store file is malformed. The message names file, question, branch and field."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        question: int | None = None,
        branch: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.question = question
        self.branch = branch
        self.field = field
        where = [self.path]
        if question is not None:
            where.append(f"question {question}")
        if branch is not None:
            where.append(f"branch {branch}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(
            f"{', '.join(where)}: {problem}. Fix or re-download the file (`tts-gym download`); "
            "the format is described in shared/spec/replay-store.md."
        )


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _type_name(x: Any) -> str:
    return type(x).__name__


def parse_json_bytes(path: str | Path, raw: bytes) -> list[dict[str, Any]]:
    """Decode ``raw`` as a JSON array, or raise :class:`StoreFormatError`."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreFormatError(path, f"not valid JSON (truncated or corrupt?): {exc}") from None
    if not isinstance(data, list):
        raise StoreFormatError(
            path, f"top level must be a JSON array of questions, got {_type_name(data)}"
        )
    if not data:
        raise StoreFormatError(path, "the array holds no questions")
    return data


def _check_answer(path: Path | str, value: Any, q: int, b: int | None, field: str) -> None:
    if not isinstance(value, str):
        raise StoreFormatError(
            path,
            f"answers must be strings, got {_type_name(value)} {value!r}",
            question=q,
            branch=b,
            field=field,
        )


def _check_branch(path: Path | str, q: int, b: int, triple: Any) -> None:
    if not isinstance(triple, list) or len(triple) != 3:
        raise StoreFormatError(
            path,
            "each branch must be a list [probe_list, branch_tokens, "
            f"final_answer], got {_type_name(triple)}"
            f"{' of length ' + str(len(triple)) if isinstance(triple, list) else ''}",
            question=q,
            branch=b,
            field="each_branch",
        )
    probes, tokens, final = triple
    if not isinstance(probes, list):
        raise StoreFormatError(
            path,
            f"probe_list must be a list of strings, got {_type_name(probes)}",
            question=q,
            branch=b,
            field="probe_list",
        )
    for p in probes:
        _check_answer(path, p, q, b, "probe_list")
    if not _is_int(tokens):
        raise StoreFormatError(
            path,
            f"branch_tokens must be a non-negative integer, got {_type_name(tokens)} {tokens!r}",
            question=q,
            branch=b,
            field="branch_tokens",
        )
    if tokens < 0 or tokens > _INT64_MAX:
        raise StoreFormatError(
            path,
            f"branch_tokens must be a non-negative 64-bit integer, got {tokens}",
            question=q,
            branch=b,
            field="branch_tokens",
        )
    _check_answer(path, final, q, b, "final_answer")


def _check_question(path: Path | str, q: int, item: Any) -> None:
    if not isinstance(item, dict):
        raise StoreFormatError(
            path, f"each question must be a JSON object, got {_type_name(item)}", question=q
        )
    for field in QUESTION_FIELDS:
        if field not in item:
            raise StoreFormatError(path, "required field is missing", question=q, field=field)
    if not isinstance(item["question"], str):
        raise StoreFormatError(
            path,
            f"must be a string, got {_type_name(item['question'])}",
            question=q,
            field="question",
        )
    _check_answer(path, item["gold_answer"], q, None, "gold_answer")
    freq = item["probe_freq"]
    if not _is_int(freq) or not 0 < freq <= _INT64_MAX:
        raise StoreFormatError(
            path,
            f"probe_freq must be a positive integer (tokens per probe interval), got {freq!r}",
            question=q,
            field="probe_freq",
        )
    branches = item["each_branch"]
    if not isinstance(branches, list):
        raise StoreFormatError(
            path,
            f"must be a list of branches, got {_type_name(branches)}",
            question=q,
            field="each_branch",
        )
    if not branches:
        raise StoreFormatError(
            path,
            "the branch list is empty; a question needs at least one branch",
            question=q,
            field="each_branch",
        )
    trace = item["final_answers_trace"]
    if not isinstance(trace, list):
        raise StoreFormatError(
            path,
            f"must be a list of strings, got {_type_name(trace)}",
            question=q,
            field="final_answers_trace",
        )
    if len(trace) != len(branches):
        raise StoreFormatError(
            path,
            f"has {len(trace)} entries but each_branch has {len(branches)}; they must agree",
            question=q,
            field="final_answers_trace",
        )
    for b, triple in enumerate(branches):
        _check_branch(path, q, b, triple)
        _check_answer(path, trace[b], q, b, "final_answers_trace")
        if trace[b] != triple[2]:
            raise StoreFormatError(
                path,
                f"final_answers_trace[{b}] = {trace[b]!r} disagrees with "
                f"the branch's final_answer {triple[2]!r}",
                question=q,
                branch=b,
                field="final_answers_trace",
            )


def validate_store(path: str | Path, data: list[dict[str, Any]]) -> None:
    """Check every question and branch of a decoded store; raise on the first problem."""
    for q, item in enumerate(data):
        _check_question(path, q, item)
