"""Point numba's on-disk cache at a folder keyed by the source of every kernel.

numba's ``cache=True`` checks only the timestamp of the file that defines a kernel, not of the
files whose kernels it calls: after an edit to ``tts_gym/kernels/transitions.py`` a cached
controller kernel would silently keep the old dynamics. To make that impossible, the cache
lives in ``<user cache>/tts-gym/numba/<digest>``, where the digest covers the source of every
module of ``tts_gym`` and ``agents`` that uses numba; an edit to any of them starts a fresh cache
(one recompile); edits elsewhere keep it.

A user-set ``NUMBA_CACHE_DIR`` is respected as is. This module must be imported before any
kernel module (``tts_gym/__init__.py`` does so first).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PACKAGES = ("tts_gym", "agents")


def source_digest(root: Path | None = None) -> str:
    """sha256 (16 hex digits) over the relative paths and bytes of the packages' numba modules."""
    root = root or Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in _PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            text = path.read_bytes()
            if b"numba" in text:
                h.update(str(path.relative_to(root)).encode())
                h.update(text)
    return h.hexdigest()[:16]


def configure() -> Path | None:
    """Set numba's cache folder (unless NUMBA_CACHE_DIR is set); returns the folder used."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    import numba
    import platformdirs

    folder = Path(platformdirs.user_cache_dir("tts-gym", appauthor=False)) / "numba" / \
        source_digest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.utime(folder)
    except OSError:
        return None
    numba.config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]  # set at run time
    _prune_old(folder.parent, keep=KEEP_CACHES)
    return folder


KEEP_CACHES = 4
"""How many kernel-cache folders (most recently used first) to keep."""


def _prune_old(parent: Path, keep: int) -> None:
    import shutil

    try:
        folders = sorted((p for p in parent.iterdir() if p.is_dir()),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in folders[keep:]:
        shutil.rmtree(old, ignore_errors=True)
