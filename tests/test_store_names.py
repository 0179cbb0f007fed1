"""``--model`` / ``--benchmark`` are plain names of stores the data directory holds.

Names that are paths (``../X``, ``/abs``, ``a/b``) are refused before anything is read; names are
matched against the stores actually present (user-collected ones included), case-insensitively,
with a "did you mean" and the list of available stores in the error. A store's split comes from
its ``<benchmark>.meta.json`` sidecar when present, else from the published names.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

import tts_gym  # noqa: F401  (registers the envs)
from tts_gym.cli import main
from tts_gym.paths import find_store, store_path
from tts_gym.store import StoreFormatError, load_store
from tts_gym.testing import tiny_questions, write_store_json


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "packed"
    monkeypatch.setenv("TTS_GYM_CACHE", str(path))
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory with two published-name stores and one user-collected store; and a
    valid store OUTSIDE it (``<tmp>/X/aime24.json``) that no name may reach."""
    root = tmp_path / "data"
    for model, bench in (("Qwen3-8B", "aime24"), ("Qwen3-8B", "aime25"), ("my-model_v2", "lab")):
        write_store_json(root / model / f"{bench}.json", tiny_questions(questions=2, branches=3))
    write_store_json(tmp_path / "X" / "aime24.json", tiny_questions(questions=2, branches=3))
    write_store_json(tmp_path / "aime24.json", tiny_questions(questions=2, branches=3))
    return root


def _nothing_loaded(cache_dir: Path) -> bool:
    return not cache_dir.exists() or not any(cache_dir.iterdir())


NOT_PLAIN = [
    ("model", "../X"),
    ("model", ".."),
    ("model", "."),
    ("model", "Qwen3-8B/../../X"),
    ("model", "/tmp/X"),
    ("model", "Qwen3-8B\\..\\X"),
    ("model", ""),
    ("benchmark", "../aime24"),
    ("benchmark", "../../X/aime24"),
    ("benchmark", "/etc/passwd"),
    ("benchmark", "sub/aime24"),
    ("benchmark", "a\x00b"),
]


@pytest.mark.parametrize("which, value", NOT_PLAIN)
def test_path_like_names_are_refused_before_reading(data, cache_dir, which, value):
    names = {"model": "Qwen3-8B", "benchmark": "aime24", which: value}
    with pytest.raises(ValueError) as info:
        load_store(names["model"], names["benchmark"], data)
    msg = str(info.value)
    assert f"{which}={value!r}" in msg and "plain name" in msg
    assert "Qwen3-8B/aime24" in msg and "my-model_v2/lab" in msg  # the available stores
    assert _nothing_loaded(cache_dir)


def test_model_dot_dot_on_the_command_line_reads_nothing_outside(data, cache_dir, capsys):
    code = main(["inspect", "--model", "../X", "--benchmark", "aime24", "--data-dir", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "model='../X'" in err and "plain name" in err
    assert _nothing_loaded(cache_dir)  # the valid store at <tmp>/X/aime24.json was not loaded
    with pytest.raises(ValueError, match="plain name"):
        gym.make("tts_gym/Replay-v0", model="../X", benchmark="aime24", data_dir=data)
    with pytest.raises(ValueError, match="plain name"):
        store_path("..", "aime24", data)  # <data>/../aime24.json exists and must not be used


def test_user_collected_stores_with_any_plain_names_load(data, cache_dir):
    store = load_store("my-model_v2", "lab", data)
    assert (store.model, store.benchmark, store.split) == ("my-model_v2", "lab", "heldout")
    assert store.source == str(data / "my-model_v2" / "lab.json")


def test_names_match_case_insensitively_and_report_the_stored_spelling(data, cache_dir):
    store = load_store("qwen3-8b", "AIME24", data)
    assert (store.model, store.benchmark, store.split) == ("Qwen3-8B", "aime24", "search")
    assert find_store("MY-MODEL_V2", "Lab", data) == ("my-model_v2", "lab",
                                                       data / "my-model_v2" / "lab.json")


def test_exact_spelling_wins_over_a_case_insensitive_twin(data, cache_dir):
    write_store_json(data / "qwen3-8b" / "aime24.json", tiny_questions(questions=1, branches=2))
    if "qwen3-8b" not in {p.name for p in data.iterdir()}:  # pragma: no cover
        pytest.skip("case-insensitive file system")
    assert find_store("qwen3-8b", "aime24", data)[0] == "qwen3-8b"
    assert find_store("Qwen3-8B", "aime24", data)[0] == "Qwen3-8B"
    with pytest.raises(FileNotFoundError, match=r"ambiguous.*'Qwen3-8B'.*'qwen3-8b'"):
        find_store("QWEN3-8B", "aime24", data)


@pytest.mark.parametrize(
    "model, bench, suggestion",
    [
        ("Qwen3-9B", "aime24", "did you mean model 'Qwen3-8B'"),
        ("Qwen3-8B", "aime_24", "did you mean benchmark 'aime24'"),
        ("Qwen3-8B", "aime24.json", "did you mean benchmark 'aime24'"),
        ("my-model", "lab", "did you mean model 'my-model_v2'"),
    ],
)
def test_typos_get_did_you_mean_and_the_list(data, cache_dir, model, bench, suggestion):
    with pytest.raises(FileNotFoundError) as info:
        load_store(model, bench, data)
    msg = str(info.value)
    assert suggestion in msg and str(data) in msg
    assert "Qwen3-8B/aime24, Qwen3-8B/aime25, my-model_v2/lab" in msg
    assert _nothing_loaded(cache_dir)


def test_a_benchmark_the_model_lacks_lists_what_it_has(data, cache_dir):
    with pytest.raises(FileNotFoundError) as info:
        load_store("my-model_v2", "aime24", data)
    msg = str(info.value)
    assert "my-model_v2 has: lab" in msg or "my-model_v2/lab" in msg


def test_missing_published_store_keeps_the_download_hint(data, cache_dir):
    with pytest.raises(FileNotFoundError, match=r"tts-gym download --data-dir"):
        load_store("Qwen3-4B", "hmmt25", data)


def test_empty_data_dir_keeps_the_download_hint(tmp_path, cache_dir):
    for root in (tmp_path / "nothing-here", tmp_path):
        with pytest.raises(FileNotFoundError) as info:
            load_store("Qwen3-8B", "aime24", root)
        msg = str(info.value)
        assert "tts-gym download --data-dir" in msg and "holds no stores" in msg


def test_sidecar_and_partial_files_are_not_stores(data, cache_dir):
    (data / "Qwen3-8B" / "aime24.meta.json").write_text('{"split": "search"}')
    (data / "Qwen3-8B" / "hmmt25.json.part").write_text("[")
    with pytest.raises(FileNotFoundError) as info:
        load_store("Qwen3-8B", "aime24.meta", data)
    assert "Qwen3-8B/aime24, Qwen3-8B/aime25, my-model_v2/lab" in str(info.value)


# --- the split -------------------------------------------------------------------------------
def test_published_names_keep_their_split_and_unknown_names_are_heldout(data, cache_dir):
    assert load_store("Qwen3-8B", "aime24", data).split == "search"
    assert load_store("Qwen3-8B", "aime25", data).split == "heldout"
    assert load_store("my-model_v2", "lab", data).split == "heldout"


@pytest.mark.parametrize("use_cache", [True, False])
def test_the_meta_sidecar_decides_the_split(data, cache_dir, use_cache):
    meta = data / "my-model_v2" / "lab.meta.json"
    meta.write_text(json.dumps({"split": "search", "collected_by": "tts-gym collect"}))
    for _ in range(2):  # the second load comes from the packed cache when use_cache
        assert load_store("my-model_v2", "lab", data, use_cache=use_cache).split == "search"
    (data / "Qwen3-8B" / "aime24.meta.json").write_text('{"split": "heldout"}')
    assert load_store("Qwen3-8B", "aime24", data, use_cache=use_cache).split == "heldout"
    meta.write_text('{"model": "no split field"}')
    assert load_store("my-model_v2", "lab", data, use_cache=use_cache).split == "heldout"


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"split": "train"}', "'search' or 'heldout'"),
        ('{"split": 1}', "'search' or 'heldout'"),
        ("[1, 2]", "JSON object"),
        ('{"split": ', "not valid JSON"),
    ],
)
def test_a_bad_sidecar_is_one_sentence(data, cache_dir, text, words):
    meta = data / "my-model_v2" / "lab.meta.json"
    meta.write_text(text)
    with pytest.raises(StoreFormatError) as info:
        load_store("my-model_v2", "lab", data)
    msg = str(info.value)
    assert str(meta) in msg and words in msg and "\n" not in msg
