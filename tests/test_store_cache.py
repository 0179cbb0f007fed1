"""Packed-array cache (keyed by the source's sha256) and data-directory resolution."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

import tts_gym.store.load as load_module
from tts_gym import paths
from tts_gym.cli import main
from tts_gym.store import ReplayStore, load_store, load_store_file
from tts_gym.store.cache import cache_file
from tts_gym.testing import tiny_questions, write_store_json

ARRAYS = ("probe_ans", "n_probes", "tokens", "final_ans", "gold", "probe_freq", "n_branches")


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "packed"
    monkeypatch.setenv("TTS_GYM_CACHE", str(path))
    return path


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    return write_store_json(tmp_path / "data" / "Qwen3-4B" / "hmmt25.json", tiny_questions(seed=5))


def assert_same_store(a: ReplayStore, b: ReplayStore) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name
        assert y.flags.c_contiguous, name
    assert a.answers == b.answers
    assert a.questions == b.questions
    assert (a.model, a.benchmark, a.split, a.sha256) == (b.model, b.benchmark, b.split, b.sha256)


def _no_parse(*args, **kwargs):
    raise AssertionError("the JSON was parsed: the cache was not used")


def test_second_load_comes_from_cache_and_is_array_equal(store_file, cache_dir, monkeypatch):
    first = load_store_file(store_file)
    digest = hashlib.sha256(store_file.read_bytes()).hexdigest()
    assert first.sha256 == digest
    assert cache_file(digest).parent == cache_dir
    assert [p.name for p in cache_dir.iterdir()] == [cache_file(digest).name]
    monkeypatch.setattr(load_module, "parse_json_bytes", _no_parse)
    monkeypatch.setattr(load_module, "validate_store", _no_parse)
    second = load_store_file(store_file)
    assert_same_store(first, second)
    assert (second.model, second.benchmark, second.split) == ("Qwen3-4B", "hmmt25", "heldout")


def test_cache_is_keyed_by_content_not_name(store_file, cache_dir):
    first = load_store_file(store_file)
    write_store_json(store_file, tiny_questions(seed=6))
    second = load_store_file(store_file)
    assert second.sha256 != first.sha256
    assert second.answers != first.answers or not np.array_equal(second.tokens, first.tokens)
    assert len(list(cache_dir.iterdir())) == 2
    fresh = load_store_file(store_file, use_cache=False)
    assert_same_store(fresh, second)


def test_use_cache_false_writes_nothing(store_file, cache_dir):
    load_store_file(store_file, use_cache=False)
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def _truncated_npz(path: Path) -> bytes:
    raw = path.read_bytes()
    return raw[: len(raw) // 2]


def _npz_missing_key(path: Path) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps({"answers": [], "questions": []})))
    return buf.getvalue()


def _npz_wrong_meta(path: Path) -> bytes:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
    buf = io.BytesIO()
    np.savez(buf, meta=np.array('{"answers": [["x"]], "questions": []}'), **arrays)
    return buf.getvalue()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda p: b"",
        lambda p: b"this is not an npz file" * 10,
        lambda p: b"PK\x03\x04" + b"\x00" * 64,
        _truncated_npz,
        _npz_missing_key,
        _npz_wrong_meta,
    ],
    ids=["empty", "garbage", "bad-zip", "truncated", "missing-array", "inconsistent-meta"],
)
def test_corrupted_cache_is_ignored_and_rebuilt(store_file, cache_dir, monkeypatch, corrupt):
    good = load_store_file(store_file)
    cached = cache_file(good.sha256)
    cached.write_bytes(corrupt(cached))
    again = load_store_file(store_file)
    assert_same_store(good, again)
    # Rebuilt: a third load is served from the cache again.
    monkeypatch.setattr(load_module, "parse_json_bytes", _no_parse)
    assert_same_store(good, load_store_file(store_file))


def test_unwritable_cache_is_skipped_silently(store_file, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("TTS_GYM_CACHE", str(blocker / "packed"))
    store = load_store_file(store_file)
    assert store.n_questions == 3


def test_packed_cache_defaults_to_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("TTS_GYM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.packed_cache_dir() == tmp_path / "xdg" / "tts-gym" / "packed"
    assert paths.default_download_dir() == tmp_path / "xdg" / "tts-gym" / "replay"


@pytest.fixture
def three_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An argument folder, a TTS_GYM_DATA folder and the download cache, each a different store."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dirs = {
        "arg": tmp_path / "arg",
        "env": tmp_path / "env",
        "cache": paths.default_download_dir(),
    }
    for seed, root in enumerate(dirs.values()):
        write_store_json(root / "Qwen3-8B" / "aime25.json", tiny_questions(seed=seed, questions=2))
    return dirs


def _which(store: ReplayStore, dirs: dict[str, Path]) -> str:
    matches = [k for k, d in dirs.items() if store.source == str(d / "Qwen3-8B" / "aime25.json")]
    assert len(matches) == 1
    return matches[0]


def test_data_dir_resolution_order(three_dirs, monkeypatch):
    monkeypatch.setenv("TTS_GYM_DATA", str(three_dirs["env"]))
    assert _which(load_store("Qwen3-8B", "aime25", three_dirs["arg"]), three_dirs) == "arg"
    assert _which(load_store("Qwen3-8B", "aime25", str(three_dirs["arg"])), three_dirs) == "arg"
    assert _which(load_store("Qwen3-8B", "aime25"), three_dirs) == "env"
    monkeypatch.delenv("TTS_GYM_DATA")
    assert _which(load_store("Qwen3-8B", "aime25"), three_dirs) == "cache"
    monkeypatch.setenv("TTS_GYM_DATA", "")  # empty means unset
    assert _which(load_store("Qwen3-8B", "aime25"), three_dirs) == "cache"
    assert paths.resolve_data_dir("~/x") == Path("~/x").expanduser()


@pytest.mark.parametrize("source", ["arg", "env", "cache"])
def test_missing_store_error_says_where_and_what_to_do(tmp_path, monkeypatch, source):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("TTS_GYM_DATA", raising=False)
    arg = None
    if source == "arg":
        arg = tmp_path / "nowhere"
    elif source == "env":
        monkeypatch.setenv("TTS_GYM_DATA", str(tmp_path / "env-nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        load_store("Qwen3-8B", "aime24", arg)
    msg = str(info.value)
    expected_dir = {
        "arg": tmp_path / "nowhere",
        "env": tmp_path / "env-nowhere",
        "cache": tmp_path / "xdg" / "tts-gym" / "replay",
    }[source]
    assert str(expected_dir / "Qwen3-8B" / "aime24.json") in msg
    assert "'Qwen3-8B'" in msg and "'aime24'" in msg
    assert {"arg": "argument data_dir", "env": "TTS_GYM_DATA", "cache": "download cache"}[
        source
    ] in msg
    assert "tts-gym download" in msg and "--data-dir" in msg


def test_missing_store_on_the_command_line_is_one_line(tmp_path, capsys):
    code = main(
        ["inspect", "--model", "Qwen3-8B", "--benchmark", "aime24", "--data-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("tts-gym inspect: error: No replay store")


def test_bad_store_on_the_command_line_is_one_line(tmp_path, capsys):
    (tmp_path / "Qwen3-8B").mkdir()
    (tmp_path / "Qwen3-8B" / "aime24.json").write_text('[{"question": "x"')
    code = main(
        ["inspect", "--model", "Qwen3-8B", "--benchmark", "aime24", "--data-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "truncated" in err


def test_cache_of_a_good_version_never_masks_a_bad_edit(store_file, cache_dir):
    """The key is the content: after a good load, damaging the file makes loading fail."""
    from tts_gym.store import StoreFormatError

    load_store_file(store_file)
    raw = store_file.read_bytes()
    store_file.write_bytes(raw[: len(raw) - 10])
    with pytest.raises(StoreFormatError, match="truncated"):
        load_store_file(store_file)
    assert len(list(cache_dir.iterdir())) == 1
