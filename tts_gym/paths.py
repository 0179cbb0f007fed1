"""Where tts-gym finds replay stores and where it caches packed arrays.

Resolution order for the data directory (the folder holding ``<model>/<benchmark>.json``):

1. an explicit ``data_dir`` argument (CLI ``--data-dir``),
2. the ``TTS_GYM_DATA`` environment variable,
3. ``<user cache>/tts-gym/replay`` (where ``tts-gym download`` writes).

Packed arrays are cached under ``TTS_GYM_CACHE`` or ``<user cache>/tts-gym/packed``, never
beside the data (the data directory may be read-only).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

MODELS: tuple[str, ...] = ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
BENCHMARKS: tuple[str, ...] = ("aime24", "aime25", "hmmt25")
SEARCH_BENCHMARKS: tuple[str, ...] = ("aime24",)
HELDOUT_BENCHMARKS: tuple[str, ...] = ("aime25", "hmmt25")


def user_cache_root() -> Path:
    """The per-user cache folder of tts-gym (``~/.cache/tts-gym`` on Linux)."""
    return Path(platformdirs.user_cache_dir("tts-gym", appauthor=False))


def default_download_dir() -> Path:
    """Where ``tts-gym download`` puts the stores when no data directory is configured."""
    return user_cache_root() / "replay"


def packed_cache_dir() -> Path:
    """Folder of the packed-array cache (``TTS_GYM_CACHE`` overrides)."""
    env = os.environ.get("TTS_GYM_CACHE")
    return Path(env) if env else user_cache_root() / "packed"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: argument, else ``TTS_GYM_DATA``, else the download cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("TTS_GYM_DATA")
    if env:
        return Path(env).expanduser()
    return default_download_dir()


def split_of(benchmark: str) -> str:
    """``"search"`` for AIME24 (discovery may read it), ``"heldout"`` otherwise."""
    return "search" if benchmark in SEARCH_BENCHMARKS else "heldout"


def store_path(model: str, benchmark: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the JSON store for (model, benchmark); raises a helpful error if it is missing."""
    root = resolve_data_dir(data_dir)
    path = root / model / f"{benchmark}.json"
    if not path.is_file():
        where = (
            "argument data_dir"
            if data_dir is not None
            else ("TTS_GYM_DATA" if os.environ.get("TTS_GYM_DATA") else "the download cache")
        )
        # download writes to the cache unless told otherwise: name the folder actually searched
        fetch = "tts-gym download"
        if where != "the download cache":
            fetch += f" --data-dir {root}"
        raise FileNotFoundError(
            f"No replay store for model={model!r}, benchmark={benchmark!r}: {path} does not exist "
            f"(data directory from {where}). Run `{fetch}`, or point --data-dir / "
            f"TTS_GYM_DATA at a folder holding <model>/<benchmark>.json "
            f"(models: {', '.join(MODELS)}; benchmarks: {', '.join(BENCHMARKS)})."
        )
    return path
