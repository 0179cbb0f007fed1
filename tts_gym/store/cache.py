"""Cache of packed stores as ``.npz`` files keyed by the source file's sha256.

Written atomically (temporary file + rename) and only for stores that validated; a store is
never cached beside its data.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from tts_gym.io import write_bytes_atomic
from tts_gym.paths import packed_cache_dir
from tts_gym.store.store import ReplayStore

PACK_VERSION = 2
"""Bumped when validation tightens (2: answers bounded and valid Unicode), so a store cached by
an older, laxer validator is validated again rather than trusted."""
_ARRAYS = ("probe_ans", "n_probes", "tokens", "final_ans", "gold", "probe_freq", "n_branches")


def cache_file(sha256: str) -> Path:
    """Path of the cached arrays for a source digest."""
    return packed_cache_dir() / f"v{PACK_VERSION}-{sha256}.npz"


def read_cached(
    sha256: str, *, model: str, benchmark: str, split: str, source: str
) -> ReplayStore | None:
    """The cached store for ``sha256``, or None if absent or unreadable (then it is rebuilt)."""
    path = cache_file(sha256)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: np.ascontiguousarray(npz[k]) for k in _ARRAYS}
            meta = json.loads(str(npz["meta"]))
        answers = tuple(tuple(t) for t in meta["answers"])
        questions = tuple(meta["questions"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    if len(answers) != arrays["probe_ans"].shape[0]:
        return None
    return ReplayStore(
        model=model,
        benchmark=benchmark,
        split=split,
        source=source,
        sha256=sha256,
        answers=answers,
        questions=questions,
        **arrays,
    )


def write_cached(store: ReplayStore) -> None:
    """Write ``store`` to the cache atomically; silently skip if the cache is not writable."""
    path = cache_file(store.sha256)
    meta = json.dumps({"answers": store.answers, "questions": store.questions})
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(meta), **{k: getattr(store, k) for k in _ARRAYS})
    try:
        write_bytes_atomic(path, buf.getvalue())
    except OSError:
        return
