"""Point numba's on-disk cache at a folder keyed by the source of every kernel.

numba's ``cache=True`` checks only the timestamp of the file that defines a kernel, not of the
files whose kernels it calls: after an edit to ``tts_gym/kernels/transitions.py`` a cached
controller kernel would silently keep the old dynamics. To make that impossible, the cache
lives in ``<user cache>/tts-gym/numba/<digest>``, where the digest covers the source of every
module of ``tts_gym`` and ``agents`` that uses numba; an edit to any of them starts a fresh cache
(one recompile); edits elsewhere keep it.

A user-set ``NUMBA_CACHE_DIR`` is respected as is. :func:`configure` must run before the first
kernel module loads: ``import tts_gym`` arranges that with :func:`install`, which runs it just
before ``numba`` is first imported (or at once when it already is), so ``import tts_gym`` alone
neither imports numba nor reads the sources for the digest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_PACKAGES = ("tts_gym", "agents")


def source_digest(root: Path | None = None) -> str:
    """sha256 (16 hex digits) over the relative paths and bytes of the packages' numba modules."""
    import hashlib

    root = root or Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in _PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            text = path.read_bytes()
            if b"numba" in text:
                h.update(str(path.relative_to(root)).encode())
                h.update(text)
    return h.hexdigest()[:16]


_OURS = "TTS_GYM_NUMBA_CACHE_SET"
"""Set beside ``NUMBA_CACHE_DIR`` when :func:`configure` set it, so child processes (which inherit
both) know the folder is this package's choice, not the user's."""


def install() -> None:
    """Run :func:`configure` just before numba is first imported (at once if it already is)."""
    from tts_gym.import_hooks import before_import

    before_import("numba", configure)


def configure() -> Path | None:
    """Set numba's cache folder (unless the user set NUMBA_CACHE_DIR); returns the folder used.

    Before numba is imported the folder goes into ``NUMBA_CACHE_DIR``, which numba reads when
    it loads (and child processes inherit); after, into ``numba.config.CACHE_DIR``.
    """
    inherited = os.environ.get("NUMBA_CACHE_DIR")
    if inherited and os.environ.get(_OURS) is None:  # the user's choice
        return None
    if inherited:  # set by this function in a parent process: the same sources
        _apply(inherited)
        return Path(inherited)
    import platformdirs

    folder = Path(platformdirs.user_cache_dir("tts-gym", appauthor=False)) / "numba" / \
        source_digest()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.utime(folder)
    except OSError:
        return None
    _apply(str(folder))
    _prune_old(folder.parent, keep=KEEP_CACHES)
    return folder


def _apply(folder: str) -> None:
    os.environ["NUMBA_CACHE_DIR"] = folder
    os.environ[_OURS] = "1"
    if sys.modules.get("numba") is not None:  # already loaded: it read the environment then
        sys.modules["numba"].config.CACHE_DIR = folder


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
