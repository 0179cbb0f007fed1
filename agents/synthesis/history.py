"""The discovery history on disk: append-only, atomic, resumable.

Layout under the run folder::

    rounds/round_000.json     round 0: the seed controllers and their metrics
    rounds/round_001.json     one file per finished round, written once, atomically
    rounds/partial_002/       the round in progress: prompt.json, then response.json
    index.json                derived list of finished rounds (rebuilt from the round files)

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
import secrets
import shutil
from pathlib import Path
from typing import Any

from tts_gym.io import write_json_atomic
from tts_gym.paths import user_cache_root

SIGNATURE = "signature"


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
        self.replaced: dict[int, dict[str, Any]] = {}
        """Verified stand-ins for round files that failed verification (set by the loop)."""

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

    def round_path(self, r: int) -> Path:
        """File of finished round ``r``."""
        return self.rounds_dir / f"round_{r:03d}.json"

    def partial_dir(self, r: int) -> Path:
        """Folder of round ``r`` while it is in progress."""
        return self.rounds_dir / f"partial_{r:03d}"

    def finished(self) -> list[int]:
        """Numbers of the finished rounds, ascending."""
        if not self.rounds_dir.is_dir():
            return []
        return sorted(int(p.name[6:9]) for p in self.rounds_dir.glob("round_[0-9][0-9][0-9].json"))

    def has(self, r: int) -> bool:
        """True when round ``r`` is finished."""
        return self.round_path(r).is_file()

    def get(self, r: int) -> dict[str, Any]:
        """The record of finished round ``r`` (its verified stand-in if it was replaced)."""
        if r in self.replaced:
            return self.replaced[r]
        return self.raw(r)

    def raw(self, r: int) -> dict[str, Any]:
        """The round file as it is on disk (unverified; ``{}`` if unreadable)."""
        try:
            rec = json.loads(self.round_path(r).read_text())
        except (OSError, ValueError, RecursionError):
            return {}
        return rec if isinstance(rec, dict) else {}

    def entries(self) -> list[dict[str, Any]]:
        """All finished rounds, ascending."""
        return [self.get(r) for r in self.finished()]

    def append(self, record: dict[str, Any]) -> Path:
        """Write a finished round once (atomically), then refresh the index and drop the partial.

        Raises:
            HistoryError: The round already exists (rounds are never rewritten).
        """
        r = int(record["round"])
        path = self.round_path(r)
        if path.exists():
            raise HistoryError(f"round {r} is already in {path}; a history is append-only.")
        write_json_atomic(path, self.sign(record))
        self.write_index()
        shutil.rmtree(self.partial_dir(r), ignore_errors=True)
        return path

    def replace(self, r: int, record: dict[str, Any]) -> None:
        """Use ``record`` (recomputed, signed, saved beside the original) for round ``r``."""
        record = self.sign(record)
        write_json_atomic(self.rounds_dir / f"round_{r:03d}.recomputed.json", record)
        self.replaced[r] = record

    def load_replacements(self) -> None:
        """Pick up verified stand-ins written by an earlier resume."""
        for p in sorted(self.rounds_dir.glob("round_*.recomputed.json")):
            try:
                rec = json.loads(p.read_text())
                r = int(p.name.split("_")[1].split(".")[0])
            except (OSError, ValueError, RecursionError, IndexError):
                continue
            if isinstance(rec, dict) and self.verify(rec):
                self.replaced[r] = rec

    def write_index(self) -> None:
        """Rebuild ``index.json`` from the round files (the files are authoritative)."""
        rows = []
        for rec in self.entries():
            rows.append(
                {
                    "round": rec.get("round"),
                    "kind": rec.get("kind"),
                    "status": rec.get("status"),
                    "file": self.round_path(int(rec.get("round", -1))).name,
                    "best": (rec.get("metrics") or {}).get("best"),
                    "verified": rec.get("round") in self.replaced or self.verify(rec),
                }
            )
        write_json_atomic(self.index_path, {"rounds": rows})

    # --- the round in progress ---------------------------------------------------------------
    def save_partial(self, r: int, name: str, obj: Any) -> None:
        """Save one stage (``prompt`` or ``response``) of round ``r`` atomically."""
        write_json_atomic(self.partial_dir(r) / f"{name}.json", obj)

    def load_partial(self, r: int, name: str) -> Any | None:
        """A saved stage of round ``r``, or None."""
        path = self.partial_dir(r) / f"{name}.json"
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:  # pragma: no cover - atomic writes make this unreachable
            return None
