"""The discovery history on disk: append-only, atomic, resumable.

Layout under the run folder::

    rounds/round_000.json     round 0: the seed controllers and their metrics
    rounds/round_001.json     one file per finished round, written once, atomically
    rounds/round_001_k1.json  with --candidates-per-round K: sibling k (1..K-1) of a round
    rounds/partial_002/       the round in progress: prompt.json, then response.json
                              (sibling k: prompt_k1.json, response_k1.json)
    index.json                derived list of finished rounds (rebuilt from the round files)

A round of a population run has K sibling records (``"sibling": k``), proposed from the same
history; sibling 0 keeps the plain file name, so a K = 1 run looks exactly as before.

A crash or ``kill -9`` at any point loses at most the unfinished round's evaluation: on resume
the round restarts from its saved prompt (and saved response, so a paid LLM reply is never
requested again) and no finished round is repeated, because round files are never rewritten.

Nothing on disk is believed on ``--resume`` without a check: every round record is signed
with an HMAC-SHA256 whose key lives outside the run folder (the user cache, see
:func:`run_key`) and which also covers the run's :attr:`History.context` (the settings a resume
must keep and the digests of the run's stores), so a record edited by anyone (or anything) that
can write the run folder, or copied from another run, fails verification and is recomputed by
the loop (its code linted and run again) instead of used. Every file a resume reads is size-,
depth- and type-checked first (:func:`read_json`); a damaged saved prompt or response is
refused in one sentence that names it and says what to do (:class:`RunFolderError`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from tts_gym.io import write_json_atomic
from tts_gym.paths import user_cache_root

SIGNATURE = "signature"
MAX_FILE_BYTES = 32 << 20
"""Largest file of a run folder that a resume reads (a round record is ~0.1-1 MB)."""
MAX_DEPTH = 64
"""Deepest nesting of lists and dicts accepted in a run folder's JSON."""
_ROUND_FILE = re.compile(r"round_(\d{3})(?:_k(\d{1,3}))?\.json")
_RECOMPUTED_FILE = re.compile(r"round_(\d{3})(?:_k(\d{1,3}))?\.recomputed\.json")


def _key(r: int, k: int = 0) -> int | tuple[int, int]:
    """Key of sibling ``k`` of round ``r`` in :attr:`History.replaced` (``r`` for sibling 0)."""
    return int(r) if not k else (int(r), int(k))


def _suffix(k: int) -> str:
    return f"_k{int(k)}" if k else ""


def key_path(run_id: str) -> Path:
    """Where the signing key of run ``run_id`` lives (outside the run folder)."""
    safe = "".join(c for c in run_id if c.isalnum() or c in "-_")[:64] or "run"
    return user_cache_root() / "discover-keys" / f"{safe}.key"


def run_key(run_id: str, create: bool) -> bytes | None:
    """The run's 32-byte signing key; created (mode 0600) when ``create`` and absent."""
    path = key_path(run_id)
    if path.is_file():
        return path.read_bytes()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def _digest(key: bytes, record: dict[str, Any], context: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != SIGNATURE}
    signed = {"record": body, "context": context} if context else body
    text = json.dumps(signed, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class HistoryError(RuntimeError):
    """An inconsistent history (e.g. rewriting a finished round)."""


class RunFolderError(ValueError):
    """A file of a run folder that a resume cannot use (the message names it and the fix)."""


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value (0 for a scalar), computed without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            depth = max(depth, d)
            if d > MAX_DEPTH:
                return d
            stack.extend((x, d + 1) for x in v)
    return depth


def read_json(path: Path, what: str) -> Any:
    """The JSON value in ``path`` after size and depth checks.

    Raises:
        RunFolderError: Missing, larger than :data:`MAX_FILE_BYTES`, not JSON, or nested deeper
            than :data:`MAX_DEPTH`; the message names the file and ``what`` it should hold.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RunFolderError(f"{path} ({what}) has {size:,} bytes, more than a run folder's "
                                 f"files may ({MAX_FILE_BYTES:,}); it is not a file tts-gym wrote.")
        value = json.loads(path.read_bytes())
    except RunFolderError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise RunFolderError(f"{path} ({what}) cannot be read as JSON "
                             f"({type(exc).__name__}).") from None
    if json_depth(value) > MAX_DEPTH:
        raise RunFolderError(f"{path} ({what}) is nested deeper than {MAX_DEPTH} levels; it is "
                             "not a file tts-gym wrote.")
    return value


def _is_prompt(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str)
        and isinstance(m.get("content"), str) for m in value)


def _is_response(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("text"), str)
            and isinstance(value.get("usage", {}), dict))


_STAGES = {
    "prompt": ("the saved prompt of the round", _is_prompt,
               "delete it and the round's prompt is built again from the finished rounds"),
    "response": ("the saved LLM reply of the round", _is_response,
                 "delete it to ask the LLM for this round again (a paid request)"),
    "evaluating": ("the mark that the reply's evaluation started", lambda v: isinstance(v, dict),
                   "delete it to evaluate the saved reply again"),
}
"""Stage name -> (what the file holds, its shape check, how to recover when it is damaged)."""


class History:
    """Rounds of one discovery run, stored under ``root``."""

    def __init__(self, root: str | Path, key: bytes | None = None,
                 context: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.rounds_dir = self.root / "rounds"
        self.index_path = self.root / "index.json"
        self.key = key
        self.context: dict[str, Any] = dict(context or {})
        """What every signature also covers: the settings a resume must keep and the digests
        of the run's stores (set by the loop before any record is read or written)."""
        self.replaced: dict[int | tuple[int, int], dict[str, Any]] = {}
        """Verified stand-ins for round files that failed verification (set by the loop); keyed
        by round, or ``(round, sibling)`` for siblings 1..K-1."""

    def verify(self, record: dict[str, Any]) -> bool:
        """True if ``record`` carries a valid signature under this run's key."""
        sig = record.get(SIGNATURE)
        if self.key is None or not isinstance(sig, str):
            return False
        try:
            return hmac.compare_digest(sig, _digest(self.key, record, self.context))
        except (TypeError, ValueError, RecursionError):  # not a JSON record tts-gym wrote
            return False

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with its signature (unchanged when there is no key)."""
        if self.key is None:
            return record
        return {**record, SIGNATURE: _digest(self.key, record, self.context)}

    def round_path(self, r: int, k: int = 0) -> Path:
        """File of finished round ``r`` (sibling ``k``)."""
        return self.rounds_dir / f"round_{r:03d}{_suffix(k)}.json"

    def partial_dir(self, r: int) -> Path:
        """Folder of round ``r`` while it is in progress."""
        return self.rounds_dir / f"partial_{r:03d}"

    def keys(self) -> list[tuple[int, int]]:
        """``(round, sibling)`` of every finished record, ascending."""
        if not self.rounds_dir.is_dir():
            return []
        found = (_ROUND_FILE.fullmatch(p.name) for p in self.rounds_dir.iterdir())
        return sorted((int(m[1]), int(m[2] or 0)) for m in found if m)

    def finished(self) -> list[int]:
        """Numbers of the rounds with at least one finished record, ascending."""
        return sorted({r for r, _k in self.keys()})

    def has(self, r: int, k: int = 0) -> bool:
        """True when round ``r`` (sibling ``k``) is finished."""
        return self.round_path(r, k).is_file()

    def get(self, r: int, k: int = 0) -> dict[str, Any]:
        """The record of finished round ``r`` (sibling ``k``; its verified stand-in if it was
        replaced)."""
        got = self.replaced.get(_key(r, k))
        return got if got is not None else self.raw(r, k)

    def raw(self, r: int, k: int = 0) -> dict[str, Any]:
        """The round file as it is on disk (unverified; ``{}`` if unreadable, too large, too
        deep or not an object: then it does not verify and is recomputed)."""
        try:
            rec = read_json(self.round_path(r, k), "a finished round's record")
        except RunFolderError:
            return {}
        return rec if isinstance(rec, dict) else {}

    def entries(self) -> list[dict[str, Any]]:
        """All finished records, by round then sibling."""
        return [self.get(r, k) for r, k in self.keys()]

    def append(self, record: dict[str, Any], drop_partial: bool = True) -> Path:
        """Write a finished round (or sibling ``record["sibling"]``) once, atomically, then
        refresh the index and drop the partial folder (unless ``drop_partial`` is False: other
        siblings of the round are still in progress).

        Raises:
            HistoryError: The record already exists (rounds are never rewritten).
        """
        r, k = int(record["round"]), int(record.get("sibling", 0))
        path = self.round_path(r, k)
        if path.exists():
            raise HistoryError(f"round {r} is already in {path}; a history is append-only.")
        write_json_atomic(path, self.sign(record))
        self.write_index()
        if drop_partial:
            self.drop_partial(r)
        return path

    def drop_partial(self, r: int) -> None:
        """Remove the partial folder of round ``r`` (every sibling is recorded)."""
        shutil.rmtree(self.partial_dir(r), ignore_errors=True)

    def replace(self, r: int, record: dict[str, Any], k: int = 0) -> None:
        """Use ``record`` (recomputed, signed, saved beside the original) for round ``r``
        (sibling ``k``)."""
        record = self.sign(record)
        write_json_atomic(self.rounds_dir / f"round_{r:03d}{_suffix(k)}.recomputed.json", record)
        self.replaced[_key(r, k)] = record

    def load_replacements(self) -> None:
        """Pick up verified stand-ins written by an earlier resume."""
        if not self.rounds_dir.is_dir():
            return
        for p in sorted(self.rounds_dir.iterdir()):
            m = _RECOMPUTED_FILE.fullmatch(p.name)
            if not m:
                continue
            try:
                rec = read_json(p, "a recomputed round's record")
            except RunFolderError:
                continue
            if isinstance(rec, dict) and self.verify(rec):
                self.replaced[_key(int(m[1]), int(m[2] or 0))] = rec

    def write_index(self) -> None:
        """Rebuild ``index.json`` from the round files (the files are authoritative)."""
        rows = []
        for r, k in self.keys():
            rec = self.get(r, k)
            rows.append(
                {
                    "round": rec.get("round"),
                    **({"sibling": k} if k else {}),
                    "kind": rec.get("kind"),
                    "status": rec.get("status"),
                    "file": self.round_path(r, k).name,
                    "best": (rec.get("metrics") or {}).get("best"),
                    "verified": _key(r, k) in self.replaced or self.verify(rec),
                }
            )
        write_json_atomic(self.index_path, {"rounds": rows})

    # --- the round in progress ---------------------------------------------------------------
    def save_partial(self, r: int, name: str, obj: Any, k: int = 0) -> None:
        """Save one stage (``prompt`` or ``response``) of round ``r`` (sibling ``k``)
        atomically."""
        write_json_atomic(self.partial_dir(r) / f"{name}{_suffix(k)}.json", obj)

    def load_partial(self, r: int, name: str, k: int = 0) -> Any | None:
        """A saved stage (``prompt``, ``response`` or ``evaluating``) of round ``r`` (sibling
        ``k``), or None when it was not saved.

        Raises:
            RunFolderError: The file is damaged or not of its stage's shape (the message names
                it and how to recover).
        """
        path = self.partial_dir(r) / f"{name}{_suffix(k)}.json"
        if not path.is_file():
            return None
        what, ok, fix = _STAGES[name]
        try:
            value = read_json(path, what)
        except RunFolderError as exc:
            raise RunFolderError(f"{exc} To resume, {fix}.") from None
        if not ok(value):
            raise RunFolderError(f"{path} is not {what} (wrong shape: it was edited or damaged); "
                                 f"to resume, {fix}.")
        return value

    def drop_stage(self, r: int, name: str, k: int = 0) -> None:
        """Remove one saved stage of round ``r`` (sibling ``k``), if present."""
        (self.partial_dir(r) / f"{name}{_suffix(k)}.json").unlink(missing_ok=True)
