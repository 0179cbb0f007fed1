"""Where a collected store goes, and whether ``collect`` may write it there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tts_gym.collect.config import CollectConfig, differences
from tts_gym.collect.errors import CollectError
from tts_gym.collect.meta import read_meta


def store_file(out_dir: str | Path, config: CollectConfig) -> Path:
    """``DIR/<store-model>/<benchmark>.json``."""
    return Path(out_dir).expanduser() / config.store_model / f"{config.benchmark}.json"


def work_folder(store: Path) -> Path:
    """The journal's folder beside the store: ``.<benchmark>.collect``."""
    return store.with_name(f".{store.stem}.collect")


def _settings_differ(meta: dict[str, Any], config: CollectConfig, mode: str) -> list[str]:
    saved = dict(meta.get("settings", {}))
    saved["template_text"] = meta.get("template_text")
    if mode == "auto":
        saved["token_mode"] = config.token_mode
    try:
        return differences(CollectConfig.from_dict(saved), config)
    except (KeyError, TypeError):
        return ["the metadata's settings (unreadable)"]


def check_target(store: Path, config: CollectConfig, token_mode: str, overwrite: bool
                 ) -> dict[str, Any] | None:
    """Refuse to replace a store this command did not write.

    Args:
        store: ``DIR/<store-model>/<benchmark>.json``.
        config: The settings of this run (``token_mode`` may be ``"auto"``).
        token_mode: ``--token-mode`` as given (``auto`` accepts the saved mode).
        overwrite: ``--overwrite``: replace an own store collected with other settings.

    Returns:
        The store's metadata when the same collection is already complete (nothing to do),
        else None (collect it).

    Raises:
        CollectError: A published or foreign store, or an own store with other settings and
            no ``overwrite``; the message names the fix.
    """
    if not store.exists():
        return None
    from tts_gym.download import SHA256, file_sha256

    meta = read_meta(store)
    digest = file_sha256(store)
    if meta is None or meta.get("store_sha256") != digest:
        what = (
            "is a published store"
            if digest in SHA256.values()
            else "was not written by tts-gym collect (no matching metadata beside it)"
        )
        raise CollectError(
            f"{store} {what}; collect never overwrites it: choose another --out, "
            "--store-model or --benchmark."
        )
    diff = _settings_differ(meta, config, token_mode)
    if not diff:
        return meta
    if not overwrite:
        raise CollectError(
            f"{store} was collected with other settings ({'; '.join(diff)}); pass --overwrite "
            "to replace it, or choose another --out, --store-model or --benchmark."
        )
    return None
