"""The sidecar files of a collected store, and reading its metadata (no dependencies beyond the
standard library, so ``tts-gym inspect`` can show it without the ``collect`` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META_FORMAT = "tts-gym-collect/1"
RAW_FORMAT = "tts-gym-collect-raw/1"


def meta_path(store: Path) -> Path:
    """``<benchmark>.meta.json`` beside ``<benchmark>.json``."""
    return store.with_name(store.stem + ".meta.json")


def raw_path(store: Path) -> Path:
    """``<benchmark>.raw.json`` beside ``<benchmark>.json``."""
    return store.with_name(store.stem + ".raw.json")


def read_meta(store: Path) -> dict[str, Any] | None:
    """The collection metadata beside a store, or None (absent, unreadable or foreign)."""
    try:
        meta = json.loads(meta_path(store).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == META_FORMAT else None


def describe(meta: dict[str, Any]) -> dict[str, Any]:
    """The headline facts of a collection (what ``tts-gym inspect`` prints)."""
    s, c = meta.get("settings", {}), meta.get("counts", {})
    return {
        "collected_from": meta.get("model"),
        "collected_with": (f"template {s.get('template')}, token mode {s.get('token_mode')}, "
                           f"T={s.get('temperature')}, top-p={s.get('top_p')}, "
                           f"max tokens {s.get('max_tokens')}, seed {s.get('seed')}"),
        "collected_probe": (f"every {s.get('interval')} tokens, {s.get('probe_max_tokens')} "
                            f"greedy tokens, suffix {s.get('probe_suffix')!r}"),
        "collected_split": meta.get("split"),
        "collected_tokens": (f"{c.get('generated_tokens', 0):,} generated + "
                             f"{c.get('probe_generated_tokens', 0):,} in {c.get('probes', 0):,} "
                             f"probes; {c.get('prompt_tokens_reported', 0):,} prompt tokens "
                             f"reported; {c.get('requests', 0):,} requests "
                             f"({c.get('failed_attempts', 0):,} failed attempts)"),
        "collected_branches": (f"{c.get('truncated_branches', 0)} truncated, "
                               f"{c.get('final_by_probe', 0)} final answers by probe"),
        "collected_labels": (f"{c.get('distinct_raw_answers', 0):,} raw answers -> "
                             f"{c.get('answer_labels', 0):,} labels "
                             f"({meta.get('canonicalisation')})"),
        "collected_dates": f"{meta.get('started')} .. {meta.get('finished')}",
    }
