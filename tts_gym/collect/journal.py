"""The durable, append-only record of a collection in progress (what makes ``kill -9`` safe).

Layout, in a hidden work folder beside the store (``DIR/<model>/.<benchmark>.collect/``)::

    journal.jsonl       one JSON object per line: a header (the run's settings), then one
                        record per finished request ("gen", "probe") and per finished branch
    gen/q<Q>-b<B>.json  a sampled trajectory's token ids (or text), written atomically BEFORE
                        its "gen" record and deleted AFTER its "branch" record

Each record is written with one ``write`` on a file opened with ``O_APPEND`` as soon as its
request finishes, so a killed process loses nothing it had finished (the OS holds the bytes);
``fsync`` runs at most every :data:`SYNC_EVERY_S` seconds and at close, against power loss. A
torn last line (power loss mid-write) is cut off on resume; damage anywhere else is an error.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tts_gym.collect.errors import CollectError
from tts_gym.io import write_bytes_atomic

VERSION = 1
SYNC_EVERY_S = 1.0


@dataclass
class Pending:
    """A branch with finished requests but no "branch" record yet."""

    gen: dict[str, Any] | None = None
    probes: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Resumed:
    """What a journal says is done.

    Attributes:
        header: The header record (settings, creation time).
        done: Finished branches ``(question index, branch)``.
        pending: Branches with some finished requests.
        spent: Generated tokens already spent (generations and probes), for the budget.
    """

    header: dict[str, Any]
    done: set[tuple[int, int]]
    pending: dict[tuple[int, int], Pending]
    spent: int


class Journal:
    """The work folder of one collection.

    Args:
        folder: ``DIR/<model>/.<benchmark>.collect``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "journal.jsonl"
        self.gen_dir = folder / "gen"
        self._fd: int | None = None
        self._synced = 0.0

    def exists(self) -> bool:
        """True when a journal with a header is there."""
        return self.path.is_file() and self.path.stat().st_size > 0

    # --- writing ------------------------------------------------------------------------------
    def create(self, header: dict[str, Any]) -> None:
        """Start a new journal (the folder must not hold one)."""
        self.gen_dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.path, _line({"kind": "header", "version": VERSION, **header}))
        self.open()

    def open(self) -> None:
        """Open for appending."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def append(self, record: dict[str, Any]) -> None:
        """Write one record now (one ``write`` call); fsync if the last one is old."""
        assert self._fd is not None, "journal not open"
        data = _line(record)
        written = os.write(self._fd, data)
        if written != len(data):  # a full disk: never leave half a record behind silently
            raise CollectError(
                f"Could not write to {self.path} (disk full?); free space and rerun."
            )
        now = time.monotonic()
        if now - self._synced >= SYNC_EVERY_S:
            os.fsync(self._fd)
            self._synced = now

    def close(self) -> None:
        """fsync and close."""
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def blob_path(self, q: int, b: int) -> Path:
        """Where the trajectory of (question index q, branch b) is kept."""
        return self.gen_dir / f"q{q}-b{b}.json"

    def write_blob(self, q: int, b: int, blob: bytes) -> None:
        """Write a trajectory blob (before its "gen" record): temporary file and rename, no
        fsync (a blob lost to a power cut fails its digest check and the branch is sampled
        again; a killed process loses nothing)."""
        path = self.blob_path(q, b)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)

    def drop_blob(self, q: int, b: int) -> None:
        """Delete a trajectory blob (after its "branch" record)."""
        self.blob_path(q, b).unlink(missing_ok=True)

    # --- reading ------------------------------------------------------------------------------
    def records(self, repair: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(byte offset, record)`` for every line; a torn last line is skipped (and cut off
        the file when ``repair``)."""
        with open(self.path, "rb") as fh:
            offset = 0
            line_no = 0
            for raw in fh:
                line_no += 1
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("torn")
                    record = json.loads(raw)
                    if not isinstance(record, dict):
                        raise ValueError("not an object")
                except ValueError:
                    if fh.read(1):
                        raise CollectError(
                            f"{self.path} is damaged at line {line_no}; delete the folder "
                            f"{self.folder} to start this collection over."
                        ) from None
                    if repair:
                        os.truncate(self.path, offset)
                    return
                yield offset, record
                offset += len(raw)

    def resume(self) -> Resumed:
        """Read the journal: what is done, what is half done, tokens spent."""
        header: dict[str, Any] | None = None
        done: set[tuple[int, int]] = set()
        pending: dict[tuple[int, int], Pending] = {}
        spent = 0
        for _, rec in self.records(repair=True):
            kind = rec.get("kind")
            if header is None:
                if kind != "header" or rec.get("version") != VERSION:
                    raise CollectError(
                        f"{self.path} is not a journal this version of tts-gym wrote; delete "
                        f"the folder {self.folder} to start over."
                    )
                header = rec
                continue
            key = (rec["q"], rec["b"])
            if kind == "gen":  # a branch sampled again (its blob was lost) starts afresh
                pending[key] = Pending(gen=rec)
                spent += rec["generated"]
            elif kind == "probe":
                pending.setdefault(key, Pending()).probes[rec["at"]] = rec
                spent += rec["completion_tokens"]
            elif kind == "branch":
                pending.pop(key, None)
                done.add(key)
        if header is None:
            raise CollectError(f"{self.path} has no header; delete {self.folder} to start over.")
        return Resumed(header, done, pending, spent)


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
