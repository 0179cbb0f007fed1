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


def inexact_warning(store: Path) -> str | None:
    """The warning line for a store ``collect`` wrote in an inexact token mode (``text`` or
    ``tokenize``, asked for explicitly), else None (exact stores, published stores, stores whose
    metadata predates the ``token_exactness`` field)."""
    meta = read_meta(store)
    exact = meta.get("token_exactness") if meta else None
    if not isinstance(exact, dict) or exact.get("exact") is not False:
        return None
    fraction = exact.get("fraction")
    measured = ("not measurable" if fraction is None else
                f"{exact.get('matching')}/{exact.get('checked')} {exact.get('measured')}")
    return (f"warning: {store.name} was collected in token mode {exact.get('mode')}: its probe "
            f"prefixes are cut inexactly ({measured}); recollect with --token-mode ids for "
            "token-exact probes.")


def warn_if_inexact(model: str, benchmark: str, data_dir: str | None) -> None:
    """Print :func:`inexact_warning` of a store on stderr, if any (``inspect`` and ``eval``)."""
    import sys

    from tts_gym.paths import store_path

    line = inexact_warning(store_path(model, benchmark, data_dir))
    if line:
        print(line, file=sys.stderr)
