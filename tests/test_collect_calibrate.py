"""``calibrate`` on degenerate stores a weak model or a small collection produces: every
question at one pass@1, all wrong, all right, a single question. Each gets a fitted preset whose
generator runs (what such a store cannot tell keeps the default: the length-difficulty slope is
0); a store lacking what every fit needs gets one sentence (:class:`CalibrationError`); never a
numerical crash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tts_gym.store import load_store_file
from tts_gym.synthetic.calibrate import calibrate
from tts_gym.synthetic.generate import generate_store


def write_store(path: Path, correct: list[list[bool]], seed: int = 0) -> Path:
    """A store with ``correct[q][b]`` deciding branch b's final answer; probes drift towards it.

    Lengths and probe counts vary per branch (rng), so only the pass@1 pattern is degenerate.
    """
    rng = np.random.default_rng(seed)
    items = []
    for q, row in enumerate(correct):
        each = []
        for ok in row:
            final = "7" if ok else f"{rng.integers(1, 4) + 7}"
            n = int(rng.integers(1, 9))
            probes = [str(rng.choice(["ERR", "3", final])) for _ in range(n - 1)] + [final]
            each.append([probes, int(rng.integers(300, 500)) * n, final])
        items.append({"question": f"q{q}", "gold_answer": "7", "probe_freq": 500,
                      "each_branch": each, "final_answers_trace": [e[2] for e in each]})
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def _pattern(name: str) -> list[list[bool]]:
    rng = np.random.default_rng(1)
    if name == "same_pass1":
        return [list(rng.permutation([True] * 3 + [False] * 5)) for _ in range(6)]
    if name == "all_wrong":
        return [[False] * 8 for _ in range(5)]
    if name == "all_right":
        return [[True] * 8 for _ in range(5)]
    return [[True, False, False, True, False, False, False, True]]  # one question


@pytest.mark.parametrize("name", ["same_pass1", "all_wrong", "all_right", "one_question"])
def test_calibrate_degenerate_stores(tmp_path: Path, name: str) -> None:
    store = load_store_file(write_store(tmp_path / f"{name}.json", _pattern(name)),
                            use_cache=False)
    params = calibrate(store)  # each of these has enough for a preset: no CalibrationError
    values = [v for v in params.__dict__.values() if isinstance(v, float)]
    assert all(np.isfinite(values))
    gen = generate_store(params, 4, 8, 0)  # the preset generates a store
    assert gen.n_questions == 4
    pass1 = (store.final_ans == store.gold[:, None]).mean(axis=1)
    assert params.statistics["pass1_mean"] == pytest.approx(float(pass1.mean()), abs=1e-4)
    assert params.log_tokens_difficulty_slope == 0.0  # one pass@1 value: no slope to fit
