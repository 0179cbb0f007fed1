"""The 12 stores load, and the facts docs/store-format.md states hold (needs data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import real_data_dir, requires_data
from tts_gym.paths import BENCHMARKS, MODELS
from tts_gym.store import load_store

PAIRS = [(m, b) for m in MODELS for b in BENCHMARKS]


@requires_data
@pytest.mark.parametrize("model, bench", PAIRS, ids=[f"{m}/{b}" for m, b in PAIRS])
def test_shipped_store_facts(model, bench):
    # (not named "benchmark": that is pytest-benchmark's fixture)
    store = load_store(model, bench, real_data_dir())
    assert store.n_questions == 30
    assert store.width == 128
    assert store.n_branches.tolist() == [128] * 30
    assert store.probe_freq.tolist() == [500] * 30
    assert store.has_gold
    assert store.split == ("search" if bench == "aime24" else "heldout")
    # Probe counts are within the documented range and never exceed the padded axis.
    assert store.n_probes.max() <= 80 and store.n_probes.min() >= 0
    assert store.max_probes == int(store.n_probes.max())
    # The last probe always equals the final answer.
    q, b = np.nonzero(store.n_probes > 0)
    last = store.probe_ans[q, b, store.n_probes[q, b] - 1]
    assert np.array_equal(last, store.final_ans[q, b])
    assert (store.n_probes > 0).all()  # shipped stores have L >= 3
    # Padding beyond L is -1, every real probe has an id.
    depth = np.arange(store.max_probes)[None, None, :]
    real = depth < store.n_probes[:, :, None]
    assert (store.probe_ans[real] >= 0).all() and (store.probe_ans[~real] == -1).all()
    assert (store.final_ans >= 0).all() and (store.tokens > 0).all()


@requires_data
def test_maxima_across_all_shipped_stores():
    """Max L = 80 and max branch_tokens ~ 41.5k over the 12 stores (the spec's figures)."""
    stores = [load_store(m, b, real_data_dir()) for m, b in PAIRS]
    assert max(int(s.n_probes.max()) for s in stores) == 80
    assert min(int(s.n_probes.min()) for s in stores) == 3
    max_tokens = max(int(s.tokens.max()) for s in stores)
    assert 41_000 < max_tokens < 42_000
    worst = max(max(len(t) for t in s.answers) for s in stores)
    assert 100 < worst < 1000  # "up to ~900 distinct strings in one question"


@requires_data
def test_packing_agrees_with_the_raw_json():
    """An independent plain-json read of one store matches the packed arrays."""
    path = real_data_dir() / "Qwen3-1.7B" / "hmmt25.json"
    raw = json.loads(path.read_text())
    store = load_store("Qwen3-1.7B", "hmmt25", real_data_dir())
    for q, item in enumerate(raw):
        assert store.gold_string(q) == item["gold_answer"]
        assert store.questions[q] == item["question"]
        for b, (probes, tokens, final) in enumerate(item["each_branch"]):
            n = int(store.n_probes[q, b])
            assert n == len(probes) and int(store.tokens[q, b]) == tokens
            got = [store.answer_string(q, int(a)) for a in store.probe_ans[q, b, :n]]
            assert got == probes
            assert store.answer_string(q, int(store.final_ans[q, b])) == final
            assert item["final_answers_trace"][b] == final
