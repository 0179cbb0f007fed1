"""The synthetic trajectory model: store invariants, determinism, parameter meaning, calibration
recovering known parameters, presets, and fidelity on one real model."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import real_data_dir, requires_data
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.store.pack import pack_questions
from tts_gym.store.validate import validate_store
from tts_gym.synthetic import (
    SyntheticParams,
    generate_store,
    iter_store_chunks,
    load_preset,
    preset_names,
    store_to_json,
    with_max_probes,
)
from tts_gym.synthetic.calibrate import (
    agreement_curve,
    calibrate,
    convergence_index,
    fit_difficulty,
    measure,
)

ARRAYS = ("probe_ans", "n_probes", "tokens", "final_ans", "gold")


@pytest.fixture(scope="module")
def small():
    return generate_store("Qwen3-8B", questions=12, branches=32, seed=3)


def test_store_invariants(small):
    s = small
    assert s.probe_ans.dtype == np.int32 and s.tokens.dtype == np.int64
    assert s.probe_ans.shape == (12, 32, 80) and s.max_probes == 80
    n = s.n_probes
    assert n.min() >= 0 and n.max() <= 80
    p = load_preset("Qwen3-8B")
    assert s.tokens.min() >= 1 and s.tokens.max() <= p.token_cap
    k = np.arange(80)[None, None, :]
    assert np.all((s.probe_ans >= 0) == (k < n[:, :, None]))
    has = n > 0
    last = np.take_along_axis(s.probe_ans, np.maximum(n - 1, 0)[:, :, None], 2)[:, :, 0]
    assert np.all(last[has] == s.final_ans[has]), "the last probe is the final answer"
    for q in range(s.n_questions):
        assert 0 <= s.gold[q] < len(s.answers[q])
        assert s.probe_ans[q].max() < len(s.answers[q])
        assert len(set(s.answers[q])) == len(s.answers[q])


def test_json_round_trip_is_the_ordinary_format(small):
    data = store_to_json(small)
    validate_store("<synthetic>", data)
    packed = pack_questions(data, model="m", benchmark="b", split="search", source="x", sha256="x")
    for key in ARRAYS:
        assert np.array_equal(
            getattr(packed, key),
            getattr(small, key)[:, :, : packed.max_probes]
            if key == "probe_ans"
            else getattr(small, key),
        )
    assert packed.answers == small.answers


def test_seeded_and_deterministic():
    a = generate_store("Qwen3-4B", 5, 16, seed=7)
    b = generate_store("Qwen3-4B", 5, 16, seed=7)
    c = generate_store("Qwen3-4B", 5, 16, seed=8)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ARRAYS)
    assert a.answers == b.answers and a.sha256 == b.sha256
    assert not np.array_equal(a.tokens, c.tokens) and a.sha256 != c.sha256


def test_parameters_mean_what_they_say():
    base = SyntheticParams(difficulty_a=30.0, difficulty_b=10.0, difficulty_hard_share=0.0)
    s = generate_store(base, 60, 64, seed=0)
    st = measure(s)
    assert abs(st["pass1_mean"] - 0.75) < 0.03
    noisy = generate_store(base.replace(probe_noise=0.5, probe_pool=0.2), 60, 64, seed=0)
    assert measure(noisy)["noise_rate"] > st["noise_rate"] + 0.15
    early = generate_store(
        base.replace(
            converge_a_correct=0.5,
            converge_b_correct=5.0,
            converge_a_wrong=0.5,
            converge_b_wrong=5.0,
        ),
        60,
        64,
        seed=0,
    )
    assert agreement_curve(early)[2] > agreement_curve(s)[2] + 0.3
    hard = generate_store(base.replace(difficulty_hard_share=1.0), 60, 64, seed=0)
    assert measure(hard)["pass1_mean"] < 0.05


def test_convergence_index_reference():
    s = generate_store("Qwen3-8B", 3, 8, seed=1)
    kstar = convergence_index(s)
    for q in range(3):
        for b in range(8):
            n, f = int(s.n_probes[q, b]), int(s.final_ans[q, b])
            p = s.probe_ans[q, b, :n].tolist()
            k = n
            while k > 0 and p[k - 1] == f:
                k -= 1
            assert kstar[q, b] == k


def test_calibration_recovers_known_parameters():
    truth = load_preset("Qwen3-1.7B")
    store = generate_store(truth, 150, 64, seed=11)
    fit = calibrate(store, seed=0)
    assert abs(fit.log_tokens_wrong_shift - truth.log_tokens_wrong_shift) < 0.08
    assert abs(fit.log_tokens_sd - truth.log_tokens_sd) < 0.05
    assert abs(fit.probe_noise - truth.probe_noise) < 0.02
    assert abs(fit.probe_stay - truth.probe_stay) < 0.08
    assert abs(fit.difficulty_hard_share - truth.difficulty_hard_share) < 0.12
    mean_bulk = lambda p: p.difficulty_a / (p.difficulty_a + p.difficulty_b)  # noqa: E731
    assert abs(mean_bulk(fit) - mean_bulk(truth)) < 0.08


def test_fit_difficulty_on_known_beta():
    rng = np.random.default_rng(0)
    p = rng.beta(2.0, 3.0, 400)
    counts = rng.binomial(128, p)
    a, b, pi = fit_difficulty(counts, 128)
    assert abs(a / (a + b) - 0.4) < 0.04 and pi < 0.05


def test_presets_ship_for_four_models():
    assert preset_names() == ("Qwen3-0.6B", "Qwen3-1.7B", "Qwen3-4B", "Qwen3-8B")
    for m in preset_names():
        p = load_preset(m)
        assert p.source == f"{m}/aime24" and p.statistics["questions"] == 30
    with pytest.raises(ValueError, match="shipped presets"):
        load_preset("no-such-model")
    with pytest.raises(ValueError, match="Unknown synthetic parameter"):
        SyntheticParams.from_dict({"bogus": 1})


def test_params_file_round_trip(tmp_path):
    p = load_preset("Qwen3-4B")
    path = p.save(tmp_path / "p.json")
    assert SyntheticParams.load(path) == p
    assert load_preset(str(path)) == p


def test_more_probes_and_chunks():
    p = with_max_probes(load_preset("Qwen3-8B"), 200)
    assert p.max_probes == 200 and p.token_cap > 100_000
    s = generate_store(p, 3, 16, seed=0)
    assert s.max_probes == 200 and s.n_probes.max() <= 200
    chunks = list(iter_store_chunks("Qwen3-8B", 10, 8, seed=1, chunk=4))
    assert [c.n_questions for c in chunks] == [4, 4, 2]


def test_controllers_run_unchanged_batch_equals_handle(small):
    sc = make_controller("sc", {"n": 16})
    a = evaluate(sc, small, 3, path="batch")
    b = evaluate(sc, small, 3, path="handle")
    assert np.array_equal(a.correct, b.correct) and np.array_equal(a.tokens, b.tokens)


@requires_data
def test_measure_real_store_facts():
    from tts_gym.store import load_store

    st = measure(load_store("Qwen3-8B", "aime24", real_data_dir()))
    assert st["questions"] == 30 and st["branches"] == 128
    assert abs(st["pass1_mean"] - load_preset("Qwen3-8B").statistics["pass1_mean"]) < 1e-9


@requires_data
@pytest.mark.slow
def test_fidelity_targets_on_qwen3_8b():
    from tts_gym.store import load_store
    from tts_gym.synthetic.fidelity import compare, registered_controllers

    real = load_store("Qwen3-8B", "aime24", real_data_dir())
    twin = generate_store("Qwen3-8B", 300, 128, seed=0)
    ctrls = [c for c in registered_controllers() if c[0] in ("SC@64", "CMC β=0.5")]
    report = compare(real, twin, real_seeds=10, twin_seeds=3, controllers=ctrls)
    assert abs(report["sc64_accuracy_diff"]) <= 5.0
    if "saving_diff" in report:
        assert abs(report["saving_diff"]) <= 10.0


def test_calibrate_degenerate_small_store_still_generates():
    from tts_gym.testing import tiny_store

    p = calibrate(tiny_store(questions=6, branches=16))
    assert p.max_probes == 6 and p.probe_freq == 100
    s = generate_store(p, 5, 16, seed=0)
    validate_store("<tiny-twin>", store_to_json(s))
