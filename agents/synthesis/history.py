"""The discovery history on disk: append-only, atomic, resumable.

Layout under the run folder::

    rounds/round_000.json     round 0: the seed controllers and their metrics
    rounds/round_001.json     one file per finished round, written once, atomically
    rounds/partial_002/       the round in progress: prompt.json, then response.json
    index.json                derived list of finished rounds (rebuilt from the round files)

A crash or ``kill -9`` at any point loses at most the unfinished round's evaluation: on resume
the round restarts from its saved prompt (and saved response, so a paid LLM reply is never
requested again) and no finished round is repeated, because round files are never rewritten.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tts_gym.io import write_json_atomic


class HistoryError(RuntimeError):
    """An inconsistent history (e.g. rewriting a finished round)."""


class History:
    """Rounds of one discovery run, stored under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.rounds_dir = self.root / "rounds"
        self.index_path = self.root / "index.json"

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
        return sorted(int(p.stem.split("_")[1]) for p in self.rounds_dir.glob("round_*.json"))

    def has(self, r: int) -> bool:
        """True when round ``r`` is finished."""
        return self.round_path(r).is_file()

    def get(self, r: int) -> dict[str, Any]:
        """The record of finished round ``r``."""
        return json.loads(self.round_path(r).read_text())

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
        write_json_atomic(path, record)
        self.write_index()
        shutil.rmtree(self.partial_dir(r), ignore_errors=True)
        return path

    def write_index(self) -> None:
        """Rebuild ``index.json`` from the round files (the files are authoritative)."""
        rows = []
        for rec in self.entries():
            rows.append(
                {
                    "round": rec["round"],
                    "kind": rec.get("kind"),
                    "status": rec.get("status"),
                    "file": self.round_path(rec["round"]).name,
                    "best": rec.get("metrics", {}).get("best"),
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
