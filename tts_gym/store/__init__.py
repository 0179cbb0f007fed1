"""Replay stores: load, validate, pack to arrays, cache."""

from tts_gym.store.load import load_store, load_store_file
from tts_gym.store.store import NO_ANSWER, UNKNOWN_ANSWER, ReplayStore
from tts_gym.store.validate import StoreFormatError

__all__ = [
    "NO_ANSWER",
    "UNKNOWN_ANSWER",
    "ReplayStore",
    "StoreFormatError",
    "load_store",
    "load_store_file",
]
