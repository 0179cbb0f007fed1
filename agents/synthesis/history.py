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
:func:`run_key`), so a record edited by anyone (or anything) that can write the run folder fails
verification and is recomputed by the loop (its code linted and run again) instead of used.
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


def _digest(key: bytes, record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != SIGNATURE}
    text = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class HistoryError(RuntimeError):
    """An inconsistent history (e.g. rewriting a finished round)."""


class History:
    """Rounds of one discovery run, stored under ``root``."""

    def __init__(self, root: str | Path, key: bytes | None = None) -> None:
        self.root = Path(root)
        self.rounds_dir = self.root / "rounds"
        self.index_path = self.root / "index.json"
        self.key = key
        self.replaced: dict[int | tuple[int, int], dict[str, Any]] = {}
        """Verified stand-ins for round files that failed verification (set by the loop); keyed
        by round, or ``(round, sibling)`` for siblings 1..K-1."""

    def verify(self, record: dict[str, Any]) -> bool:
        """True if ``record`` carries a valid signature under this run's key."""
        sig = record.get(SIGNATURE)
        return (self.key is not None and isinstance(sig, str)
                and hmac.compare_digest(sig, _digest(self.key, record)))

    def sign(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with its signature (unchanged when there is no key)."""
        if self.key is None:
            return record
        return {**record, SIGNATURE: _digest(self.key, record)}

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
        """The round file as it is on disk (unverified; ``{}`` if unreadable)."""
        try:
            rec = json.loads(self.round_path(r, k).read_text())
        except (OSError, ValueError, RecursionError):
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
                rec = json.loads(p.read_text())
            except (OSError, ValueError, RecursionError):
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
        """A saved stage of round ``r`` (sibling ``k``), or None."""
        path = self.partial_dir(r) / f"{name}{_suffix(k)}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:  # pragma: no cover - atomic writes make this unreachable
            return None
