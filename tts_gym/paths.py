"""Where tts-gym finds replay stores and where it caches packed arrays.

Resolution order for the data directory (the folder holding ``<model>/<benchmark>.json``):

1. an explicit ``data_dir`` argument (CLI ``--data-dir``),
2. the ``TTS_GYM_DATA`` environment variable,
3. ``<user cache>/tts-gym/replay`` (where ``tts-gym download`` writes).

Packed arrays are cached under ``TTS_GYM_CACHE`` or ``<user cache>/tts-gym/packed``, never
beside the data (the data directory may be read-only).
"""

from __future__ import annotations

import difflib
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
    """The split a benchmark name implies: ``"search"`` for AIME24 (discovery may read it),
    ``"heldout"`` for every other name, published or not. A store's
    ``<benchmark>.meta.json`` sidecar overrides it (:func:`tts_gym.store.load.store_split`)."""
    return "search" if benchmark in SEARCH_BENCHMARKS else "heldout"


def check_plain_name(what: str, name: str, available: str = "") -> None:
    """Refuse a ``--model`` / ``--benchmark`` value that is not a plain name.

    A plain name is one non-empty path component: no ``/`` or ``\\``, no ``..``, not ``.``,
    not absolute, no NUL; so ``<data-dir>/<model>/<benchmark>.json`` never leaves the data
    directory.

    Raises:
        ValueError: Naming the argument, its value and (``available``) the stores present.
    """
    bad = (
        not isinstance(name, str)
        or not name
        or name == "."
        or ".." in name
        or any(sep in name for sep in ("/", "\\", "\0"))
        or os.path.isabs(name)
    )
    if bad:
        raise ValueError(
            f"{what}={name!r} is not a plain name: give the name of a store in the data "
            f"directory (no '/', '\\' or '..'), not a path{available}."
        )


def list_stores(root: Path) -> dict[str, list[str]]:
    """The stores a data directory holds: ``{model: [benchmark, ...]}``, both sorted.

    A store is ``<root>/<model>/<benchmark>.json`` (hidden entries, ``*.meta.json`` sidecars
    and partial downloads are not stores). Missing or unreadable folders hold nothing.
    """
    out: dict[str, list[str]] = {}
    try:
        models = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return out
    for folder in models:
        try:
            names = sorted(
                p.name[: -len(".json")]
                for p in folder.iterdir()
                if p.name.endswith(".json")
                and not p.name.endswith(".meta.json")
                and not p.name.startswith(".")
                and p.is_file()
            )
        except OSError:
            continue
        if names:
            out[folder.name] = names
    return out


def _match(what: str, name: str, choices: list[str]) -> tuple[str | None, str]:
    """``(choice, "")`` for the exact or the one case-insensitive match, else
    ``(None, why)`` with a "did you mean" when a close name exists."""
    if name in choices:
        return name, ""
    folded = [c for c in choices if c.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0], ""
    if folded:
        return None, f"; {what} {name!r} is ambiguous: {', '.join(map(repr, folded))}"
    lower = {c.casefold(): c for c in choices}
    close = difflib.get_close_matches(name.casefold(), list(lower), n=1, cutoff=0.6)
    return None, (f"; did you mean {what} {lower[close[0]]!r}?" if close else "")


def find_store(
    model: str, benchmark: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[str, str, Path]:
    """Resolve ``--model`` / ``--benchmark`` against the stores the data directory holds.

    Names are plain names (:func:`check_plain_name`) matched exactly, else case-insensitively
    (``qwen3-8b`` finds ``Qwen3-8B``), among ``<data-dir>/<model>/<benchmark>.json`` files,
    user-collected stores included.

    Returns:
        ``(model, benchmark, path)`` with the names as spelled on disk.

    Raises:
        ValueError: A name is not a plain name.
        FileNotFoundError: No such store; the message lists the stores present, suggests a
            close name, and says how to download the published stores when the data directory
            holds none (or the published one asked for).
    """
    root = resolve_data_dir(data_dir)
    stores = list_stores(root)
    listing = ", ".join(f"{m}/{b}" for m, names in stores.items() for b in names)
    available = f" (stores in {root}: {listing})" if listing else f" ({root} holds no stores)"
    check_plain_name("model", model, available)
    check_plain_name("benchmark", benchmark, available)
    found_model, why = _match("model", model, list(stores))
    found_bench = None
    if found_model is not None:
        found_bench, why = _match("benchmark", benchmark, stores[found_model])
        if found_bench is not None:
            return found_model, found_bench, root / found_model / f"{found_bench}.json"
        why = why or f"; {found_model} has: {', '.join(stores[found_model])}"
    where = (
        "argument data_dir"
        if data_dir is not None
        else ("TTS_GYM_DATA" if os.environ.get("TTS_GYM_DATA") else "the download cache")
    )
    # download writes to the cache unless told otherwise: name the folder actually searched
    fetch = "tts-gym download"
    if where != "the download cache":
        fetch += f" --data-dir {root}"
    head = (
        f"No replay store for model={model!r}, benchmark={benchmark!r}: "
        f"{root / model / (benchmark + '.json')} does not exist (data directory from {where})"
    )
    if not stores:
        raise FileNotFoundError(
            f"{head}, and {root} holds no stores. Run `{fetch}`, or point --data-dir / "
            f"TTS_GYM_DATA at a folder holding <model>/<benchmark>.json "
            f"(published models: {', '.join(MODELS)}; benchmarks: {', '.join(BENCHMARKS)})."
        )
    published = (found_model or model) in MODELS and (found_bench or benchmark) in BENCHMARKS
    hint = f" Run `{fetch}` to get the published stores." if published else ""
    raise FileNotFoundError(f"{head}{why}. Stores in {root}: {listing}.{hint}")


def store_path(model: str, benchmark: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the JSON store for (model, benchmark) (see :func:`find_store`, which also
    returns the names as spelled on disk)."""
    return find_store(model, benchmark, data_dir)[2]
