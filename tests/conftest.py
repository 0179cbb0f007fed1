"""Shared fixtures: tiny generated stores everywhere; the real stores when they are there
(``TTS_GYM_DATA``, else the folder ``tts-gym download`` fills)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tts_gym.paths import resolve_data_dir
from tts_gym.testing import tiny_store

# Ray (the ray extra's tests) on the loopback interface only, and no usage report: read by Ray
# when it is imported, so set before any test module imports it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def real_data_dir() -> Path | None:
    """The real replay stores' folder (``TTS_GYM_DATA``, else the download cache), if the
    stores are there."""
    root = resolve_data_dir()
    if (root / "Qwen3-8B" / "aime24.json").is_file():
        return root
    return None


requires_data = pytest.mark.skipif(
    real_data_dir() is None,
    reason="needs the real stores: run `tts-gym download` or set TTS_GYM_DATA",
)
"""Skip without the real stores; every test it marks also carries the ``data`` marker, so the
data-free tier (``pytest -m "not data"``, CONTRIBUTING.md) deselects it."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every test marked :data:`requires_data` the ``data`` marker too."""
    for item in items:
        if any(m == requires_data.mark for m in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.data)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test session writes packed caches into a temporary folder, never the user's."""
    monkeypatch.setenv("TTS_GYM_CACHE", str(tmp_path_factory.getbasetemp() / "packed-cache"))


@pytest.fixture
def tiny():
    """A small deterministic store (3 questions × 8 branches, 0..6 probes)."""
    return tiny_store()
