"""Load a replay store from JSON: read (bounded), validate, pack, cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tts_gym.paths import find_store, split_of
from tts_gym.store import limits
from tts_gym.store.cache import read_cached, write_cached
from tts_gym.store.pack import pack_questions
from tts_gym.store.store import ReplayStore
from tts_gym.store.validate import StoreFormatError, parse_json, parse_json_bytes, validate_store

SPLITS = ("search", "heldout")


def read_bounded(path: Path, max_bytes: int, hint: str) -> bytes:
    """The bytes of ``path``, refusing (before reading) a file over ``max_bytes``.

    Raises:
        FileNotFoundError: The file does not exist.
        StoreFormatError: A directory, or a file over the limit (``hint`` says how to raise it).
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            raw = fh.read(max_bytes + 1) if size <= max_bytes else b""
    except FileNotFoundError:
        raise FileNotFoundError(f"Replay store file {path} does not exist.") from None
    except IsADirectoryError:
        raise StoreFormatError(path, "is a directory, not a JSON file") from None
    if size > max_bytes or len(raw) > max_bytes:  # the second: a file that grew meanwhile
        size = max(size, len(raw))
        raise StoreFormatError(
            path, f"is {size:,} bytes, over the limit of {max_bytes:,} bytes", hint=hint
        )
    return raw


def store_split(path: Path, benchmark: str) -> str:
    """The store's split: ``"split"`` of its ``<benchmark>.meta.json`` sidecar when the sidecar
    exists and has one (``tts-gym collect`` writes it), else :func:`~tts_gym.paths.split_of`.

    Raises:
        StoreFormatError: The sidecar is not a JSON object, or its split is not "search" or
            "heldout".
    """
    declared = metadata_split(path)
    return split_of(benchmark) if declared is None else declared


def metadata_split(path: Path) -> str | None:
    """The split the store's ``.meta.json`` sidecar declares, or None (no sidecar, no field).

    Raises:
        StoreFormatError: As :func:`store_split`.
    """
    meta = path.with_name(f"{path.name.removesuffix('.json')}.meta.json")
    if not meta.is_file():
        return None
    hint = "Fix the sidecar file or delete it (the split then follows the benchmark's name)."
    data = parse_json(meta, read_bounded(meta, limits.SIDECAR_MAX_BYTES, hint))
    if not isinstance(data, dict):
        raise StoreFormatError(meta, f"must be a JSON object, got {type(data).__name__}", hint=hint)
    if "split" not in data:
        return None
    split = data["split"]
    if split not in SPLITS:
        raise StoreFormatError(
            meta, f"split must be 'search' or 'heldout', got {split!r}", field="split", hint=hint
        )
    return split


def load_store_file(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    benchmark: str | None = None,
    use_cache: bool = True,
    max_bytes: int | None = None,
    max_depth: int | None = None,
) -> ReplayStore:
    """Load one store file.

    Args:
        path: The JSON file (the AutoTTS format).
        model: Model name; defaults to the parent folder's name.
        benchmark: Benchmark name; defaults to the file's stem.
        use_cache: Read/write the packed-array cache keyed by the file's sha256.
        max_bytes: File-size limit (default ``TTS_GYM_MAX_STORE_BYTES``, else 512 MiB).
        max_depth: JSON nesting limit (default ``TTS_GYM_MAX_JSON_DEPTH``, else 32).

    Returns:
        The packed :class:`ReplayStore`; its split comes from a ``<benchmark>.meta.json``
        sidecar when present, else from the benchmark name (:func:`store_split`).

    Raises:
        FileNotFoundError: The file does not exist.
        StoreFormatError: The file is not a valid store (message names question, branch,
            field), or it is over a size, nesting or token bound (:mod:`tts_gym.store.limits`).
        ValueError: A limit given (or set in the environment) is not a positive integer.
    """
    path = Path(path)
    size_limit = limits.max_store_bytes(max_bytes)
    raw = read_bounded(
        path,
        size_limit,
        f"If the file is trusted, raise the limit with {limits.MAX_STORE_BYTES_ENV}=<bytes> or "
        "load_store(..., max_bytes=...).",
    )
    digest = hashlib.sha256(raw).hexdigest()
    model = model or path.parent.name
    benchmark = benchmark or path.stem
    split = store_split(path, benchmark)
    if use_cache:
        cached = read_cached(
            digest, model=model, benchmark=benchmark, split=split, source=str(path)
        )
        if cached is not None:
            return cached
    data = parse_json_bytes(path, raw, max_depth)
    validate_store(path, data)
    store = pack_questions(
        data, model=model, benchmark=benchmark, split=split, source=str(path), sha256=digest
    )
    if use_cache:
        write_cached(store)
    return store


def load_store(
    model: str,
    benchmark: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    use_cache: bool = True,
    max_bytes: int | None = None,
    max_depth: int | None = None,
) -> ReplayStore:
    """Load the store of (model, benchmark) from the data directory.

    The data directory is ``data_dir``, else ``TTS_GYM_DATA``, else the download cache
    (see :mod:`tts_gym.paths`). ``model`` and ``benchmark`` are plain names of a store it holds
    (``<data-dir>/<model>/<benchmark>.json``, collected stores included), matched
    case-insensitively (:func:`~tts_gym.paths.find_store`); the store carries the names as
    spelled on disk. ``max_bytes`` / ``max_depth`` as in :func:`load_store_file`.

    >>> import os, pathlib, pytest
    >>> data = pathlib.Path(os.environ.get("TTS_GYM_DATA", "/nonexistent"))
    >>> if not (data / "Qwen3-8B" / "aime24.json").is_file(): pytest.skip("needs TTS_GYM_DATA")
    >>> store = load_store("Qwen3-8B", "aime24")
    >>> store.n_questions, store.width, store.split
    (30, 128, 'search')

    Raises:
        ValueError: A name is a path (``../X``, ``/abs``, ``a/b``) rather than a plain name.
        FileNotFoundError: No such store (the message lists the stores present).
        StoreFormatError: See :func:`load_store_file`.
    """
    model, benchmark, path = find_store(model, benchmark, data_dir)
    return load_store_file(
        path,
        model=model,
        benchmark=benchmark,
        use_cache=use_cache,
        max_bytes=max_bytes,
        max_depth=max_depth,
    )
