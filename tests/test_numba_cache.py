"""The kernel cache is keyed by the source of every numba module (stale kernels are impossible)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numba

import tts_gym
from tts_gym.numba_cache import source_digest


def _copy_packages(dst: Path) -> Path:
    root = Path(tts_gym.__file__).resolve().parent.parent
    for pkg in ("tts_gym", "agents"):
        shutil.copytree(root / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_digest_changes_with_kernel_source_only(tmp_path):
    root = _copy_packages(tmp_path)
    before = source_digest(root)
    (root / "tts_gym" / "paths.py").write_text("# no kernels here\n", encoding="utf-8")
    assert source_digest(root) == before
    kernel = root / "tts_gym" / "kernels" / "transitions.py"
    kernel.write_text(kernel.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert source_digest(root) != before


def test_numba_cache_dir_is_keyed_by_digest(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    folder = tts_gym.numba_cache.configure()
    assert folder is not None and folder.name == source_digest()
    assert numba.config.CACHE_DIR == str(folder)
