"""Parse and validate the AutoTTS replay-store JSON.

Every problem raises :class:`StoreFormatError` naming the file, the question index, the branch
index and the field, and saying what to do. Nothing partial is returned. The bounds on nesting
depth and token counts (and why they make every sum exact) are in :mod:`tts_gym.store.limits`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tts_gym.store import limits

QUESTION_FIELDS: tuple[str, ...] = (
    "question",
    "gold_answer",
    "probe_freq",
    "each_branch",
    "final_answers_trace",
)


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
        hint: str = "Fix or re-download the file (`tts-gym download`).",
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
        super().__init__(f"{', '.join(where)}: {problem}. {hint}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _type_name(x: Any) -> str:
    return type(x).__name__


def parse_json(path: str | Path, raw: bytes, max_depth: int | None = None) -> Any:
    """Decode JSON ``raw`` after checking its nesting depth, or raise :class:`StoreFormatError`.

    Args:
        path: The file (for messages).
        raw: Its bytes.
        max_depth: Nesting limit (default: :func:`tts_gym.store.limits.max_json_depth`).
    """
    limit = limits.max_json_depth(max_depth)
    depth, offset = limits.json_depth(raw, limit)
    too_deep = (
        f"nests JSON arrays/objects more than {limit} levels deep (at byte {offset}; a store "
        "nests 5)"
    )
    hint = (
        f"If the file is trusted, raise the limit with {limits.MAX_JSON_DEPTH_ENV}=<levels> or "
        "load_store(..., max_depth=...)."
    )
    if offset >= 0:
        raise StoreFormatError(path, too_deep, hint=hint)
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreFormatError(path, f"not valid JSON (truncated or corrupt?): {exc}") from None
    except RecursionError:  # only if the limit was raised past this interpreter's stack
        raise StoreFormatError(
            path, f"nests JSON {depth} levels deep, more than this Python can parse", hint=hint
        ) from None


def parse_json_bytes(
    path: str | Path, raw: bytes, max_depth: int | None = None
) -> list[dict[str, Any]]:
    """Decode ``raw`` as a JSON array of questions, or raise :class:`StoreFormatError`."""
    data = parse_json(path, raw, max_depth)
    if not isinstance(data, list):
        raise StoreFormatError(
            path, f"top level must be a JSON array of questions, got {_type_name(data)}"
        )
    if not data:
        raise StoreFormatError(path, "the array holds no questions")
    return data


ANSWER_HINT = (
    "Answers are extracted final answers, not reasoning: cut or re-extract this one in the file, "
    "or collect the store again with `tts-gym collect`."
)


def _check_answer(
    path: Path | str, value: Any, q: int, b: int | None, field: str, entry: int | None = None
) -> None:
    """An answer is a string of at most :data:`~tts_gym.store.limits.MAX_ANSWER_CHARS`
    characters with a UTF-8 form (``entry``: its index in a ``probe_list``, for messages)."""
    if not isinstance(value, str):
        raise StoreFormatError(
            path,
            f"answers must be strings, got {_type_name(value)} {value!r}",
            question=q,
            branch=b,
            field=field,
        )
    where = "" if entry is None else f"entry {entry} is "
    if len(value) > limits.MAX_ANSWER_CHARS:
        raise StoreFormatError(
            path,
            f"{where}an answer of {len(value):,} characters, over the bound of "
            f"{limits.MAX_ANSWER_CHARS:,} characters per answer (starts {value[:40]!r})",
            question=q,
            branch=b,
            field=field,
            hint=ANSWER_HINT,
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise StoreFormatError(
                path,
                f"{where}an answer holding a lone surrogate {value[exc.start]!r} at character "
                f"{exc.start}, which is not text and reaches a sandboxed candidate altered",
                question=q,
                branch=b,
                field=field,
                hint=ANSWER_HINT,
            ) from None


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
    for i, p in enumerate(probes):
        _check_answer(path, p, q, b, "probe_list", i)
    if not _is_int(tokens):
        raise StoreFormatError(
            path,
            f"branch_tokens must be a non-negative integer, got {_type_name(tokens)} {tokens!r}",
            question=q,
            branch=b,
            field="branch_tokens",
        )
    if tokens < 0:
        raise StoreFormatError(
            path,
            f"branch_tokens must be a non-negative integer, got {tokens}",
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
    if not _is_int(freq) or not 0 < freq <= limits.MAX_QUESTION_TOKENS:
        raise StoreFormatError(
            path,
            f"probe_freq must be a positive integer (tokens per probe interval) of at most "
            f"{limits.MAX_QUESTION_TOKENS:,}, got {freq!r}",
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


def _check_tokens(path: Path | str, q: int, item: dict[str, Any], total: int) -> int:
    """Bound the question's worst-case charge and the store's running total (see
    :mod:`tts_gym.store.limits`); returns the new total. Python ints: nothing wraps here."""
    freq = item["probe_freq"]
    worst = 0
    for b, (probes, tokens, _final) in enumerate(item["each_branch"]):
        probed = len(probes) * freq
        charge = max(probed, tokens)
        field = "branch_tokens" if tokens >= probed else "probe_list"
        what = (
            f"{tokens:,} tokens"
            if field == "branch_tokens"
            else f"{len(probes)} probes x probe_freq {freq:,} = {probed:,} tokens"
        )
        worst += charge
        if worst > limits.MAX_QUESTION_TOKENS:
            raise StoreFormatError(
                path,
                f"with this branch ({what}) the question's branches can be charged "
                f"{worst:,} tokens in one episode, over the bound of "
                f"{limits.MAX_QUESTION_TOKENS:,} that keeps every token sum exact "
                "(sum over branches of max(probes x probe_freq, branch_tokens))",
                question=q,
                branch=b,
                field=field,
            )
        if total + worst > limits.MAX_STORE_TOKENS:
            raise StoreFormatError(
                path,
                f"the store's questions can be charged {total + worst:,} tokens in one pass, "
                f"over the bound of {limits.MAX_STORE_TOKENS:,} that keeps every token sum "
                "exact (sum over questions and branches of max(probes x probe_freq, "
                "branch_tokens))",
                question=q,
                branch=b,
                field=field,
            )
    return total + worst


def validate_store(path: str | Path, data: list[dict[str, Any]]) -> None:
    """Check every question and branch of a decoded store; raise on the first problem."""
    total = 0
    for q, item in enumerate(data):
        _check_question(path, q, item)
        total = _check_tokens(path, q, item, total)
