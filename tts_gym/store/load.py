"""Load a replay store from JSON: read, validate, pack, cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tts_gym.paths import split_of, store_path
from tts_gym.store.cache import read_cached, write_cached
from tts_gym.store.pack import pack_questions
from tts_gym.store.store import ReplayStore
from tts_gym.store.validate import StoreFormatError, parse_json_bytes, validate_store


def load_store_file(
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    benchmark: str | None = None,
    use_cache: bool = True,
) -> ReplayStore:
    """Load one store file.

    Args:
        path: The JSON file (the AutoTTS format).
        model: Model name; defaults to the parent folder's name.
        benchmark: Benchmark name; defaults to the file's stem.
        use_cache: Read/write the packed-array cache keyed by the file's sha256.

    Returns:
        The packed :class:`ReplayStore`.

    Raises:
        FileNotFoundError: The file does not exist.
        StoreFormatError: The file is not a valid store (message names question, branch, field).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"Replay store file {path} does not exist.") from None
    except IsADirectoryError:
        raise StoreFormatError(path, "is a directory, not a JSON file") from None
    digest = hashlib.sha256(raw).hexdigest()
    model = model or path.parent.name
    benchmark = benchmark or path.stem
    split = split_of(benchmark)
    if use_cache:
        cached = read_cached(
            digest, model=model, benchmark=benchmark, split=split, source=str(path)
        )
        if cached is not None:
            return cached
    data = parse_json_bytes(path, raw)
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
) -> ReplayStore:
    """Load the store of (model, benchmark) from the data directory.

    The data directory is ``data_dir``, else ``TTS_GYM_DATA``, else the download cache
    (see :mod:`tts_gym.paths`).

    >>> import os, pathlib, pytest
    >>> data = pathlib.Path(os.environ.get("TTS_GYM_DATA", "/nonexistent"))
    >>> if not (data / "Qwen3-8B" / "aime24.json").is_file(): pytest.skip("needs TTS_GYM_DATA")
    >>> store = load_store("Qwen3-8B", "aime24")
    >>> store.n_questions, store.width, store.split
    (30, 128, 'search')
    """
    return load_store_file(
        store_path(model, benchmark, data_dir),
        model=model,
        benchmark=benchmark,
        use_cache=use_cache,
    )
