"""Opaque episode identity: which question a candidate's episode plays is the broker's secret.

A unit's candidate process sees its episodes as positions ``0 .. E-1`` in the order it starts
them. Position ``i`` plays the unit's episode ``perm[i]`` (episodes in store order: every
question of the unit's first store, then of the next), and its ``random`` / ``numpy.random``
streams are seeded with ``seeds[i]``; both come from the unit's secret, which never leaves the
trusted process. Counting ``solve`` calls, recording random draws or reading the proxy then
tells a candidate its position, and the position tells it nothing about the question.

Where the secret comes from (:func:`unit_secret`): an HMAC-SHA256, keyed with a per-user key
(:func:`user_key`: 32 random bytes in a file of the user's config folder, created on first use,
readable by the user only), of everything that decides the unit's behaviour: the candidate's
source, its parameters, the protocol seed, the stores (names and content digests) and the env
settings. Hence:

- the same command run twice gives the same numbers, also for candidates that use ``random``;
- the key is not in the open-source code, and the candidate process cannot read the file;
- a different source gets an independent permutation: a candidate that learned a position's
  question from an earlier round's traces (its notes show the position) must change its source
  to use that knowledge, and then plays a fresh permutation;
- the same candidate on two seeds plays two independent permutations.

Where the key file cannot be read or written, a per-process random key is used (still secret;
reruns of candidates that use ``random`` then differ).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

KEY_BYTES = 32
_KEY: list[bytes] = []
_LOCK = threading.Lock()


def key_path() -> Path:
    """The per-user key file (``~/.config/tts-gym/sandbox-identity.key`` on Linux)."""
    return Path(platformdirs.user_config_dir("tts-gym", appauthor=False)) / "sandbox-identity.key"


def _load_or_create(path: Path) -> bytes | None:
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        if len(data) == KEY_BYTES:
            return data
    key = os.urandom(KEY_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        try:
            os.link(tmp, path)  # first writer wins; a concurrent command reads its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        data = path.read_bytes()
    except OSError:
        return None
    return data if len(data) == KEY_BYTES else None


def user_key() -> bytes:
    """The per-user identity key (created on first use; a per-process random key when the
    file cannot be used). Read once per process."""
    with _LOCK:
        if not _KEY:
            _KEY.append(_load_or_create(key_path()) or os.urandom(KEY_BYTES))
        return _KEY[0]


def unit_secret(source: str, params: dict[str, Any], seed: int, stores: list[tuple[str, str]],
                settings: tuple[Any, ...], key: bytes | None = None) -> bytes:
    """The identity secret of one unit (32 bytes).

    Args:
        source: The candidate file's text.
        params: Its ``Controller(...)`` keyword arguments.
        seed: The protocol's shuffle seed.
        stores: ``(store key, content sha256)`` of the unit's stores, in play order.
        settings: Other settings that change the unit's play (branch cap, cost mode).
        key: The HMAC key (default :func:`user_key`).
    """
    msg = json.dumps([source, params, int(seed), stores, list(settings)], sort_keys=True,
                     default=repr, ensure_ascii=True)
    return hmac.new(key if key is not None else user_key(), msg.encode(), hashlib.sha256).digest()


def episode_plan(secret: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The permutation and random seeds of a unit of ``n`` episodes.

    Returns:
        ``(perm int64 [n], seeds int64 [n])``: the candidate's episode position ``i`` plays the
        unit's episode ``perm[i]`` and seeds its random streams with ``seeds[i]`` (in
        ``[0, 2**31)``).
    """
    words = np.frombuffer(hashlib.sha256(b"episode-plan" + secret).digest(), np.uint32)
    rng = np.random.default_rng(words.tolist())
    perm = rng.permutation(n).astype(np.int64)
    seeds = rng.integers(0, 2**31, size=n, dtype=np.int64)
    return perm, seeds
