"""Every published row (``tts_gym/data/aime24_published.csv``, shipped with the package) is
reproduced (accuracy at 2 decimals, the integer part of avg_tokens), and the batch path equals
the handle path on a real store."""

from __future__ import annotations

import csv
import importlib.util
import io
from functools import lru_cache

import numpy as np
import pytest

from tests.conftest import real_data_dir, requires_data
from tts_gym import evaluate, load_store
from tts_gym.controller import make_controller, parse_param
from tts_gym.published import CSV_NAMES, published_csv_text, published_rows

REGISTRY = CSV_NAMES
HAS_CMC = importlib.util.find_spec("agents.controllers.cmc") is not None


def _rows() -> list[dict[str, str]]:
    """The shipped CSV read as plain text rows (independently of tts_gym.published's parser)."""
    return list(csv.DictReader(io.StringIO(published_csv_text())))


def _row_id(row: dict[str, str]) -> str:
    cfg = ";".join(p for p in row["config"].split(";") if not p.startswith(("K=", "eps_")))
    return f"{row['model']}-{row['controller']}-{cfg}"


@lru_cache(maxsize=8)
def _store(model: str, benchmark: str):
    return load_store(model, benchmark, real_data_dir())


def _published_param(row: dict[str, str]) -> pytest.param:
    marks = [requires_data]
    if row["controller"] in ("parallel_probe", "cmc"):
        marks.append(pytest.mark.slow)  # 0.1-2 s per row on a loaded 2-core machine
    if row["controller"] == "cmc" and not HAS_CMC:
        marks.append(
            pytest.mark.skip(reason="agents/controllers/cmc.py is not there yet (another helper)")
        )
    return pytest.param(row, id=_row_id(row), marks=marks)


ROWS = _rows()


def test_the_published_file_is_there_and_complete():
    assert len(ROWS) == 104
    assert {r["controller"] for r in ROWS} == set(REGISTRY)
    assert sum(r["controller"] == "cmc" for r in ROWS) == 44  # 4 models x beta 0.0 ... 1.0
    parsed = published_rows()
    assert [(p.model, p.config, p.accuracy, p.avg_tokens) for p in parsed] == [
        (r["model"], r["config"], float(r["accuracy"]), int(r["avg_tokens"])) for r in ROWS
    ]


@pytest.mark.parametrize("row", [_published_param(r) for r in ROWS])
def test_published_row_is_reproduced(row):
    params = dict(parse_param(p) for p in row["config"].split(";"))
    controller = make_controller(REGISTRY[row["controller"]], params)
    result = evaluate(controller, _store(row["model"], row["dataset"]), path="batch")
    assert result.seeds == list(range(100))
    assert f"{result.accuracy:.2f}" == f"{float(row['accuracy']):.2f}"
    assert int(result.avg_tokens) == int(row["avg_tokens"])


REAL_CASES = [
    ("asc", {}, None),
    ("asc", {"max_samples": 16, "threshold": 0.9}, None),
    ("esc", {}, None),
    ("esc", {"max_samples": 32, "window": 4}, None),
    ("parallel-probe", {}, [0, 5, 11, 17, 23, 29]),
    ("parallel-probe", {"num_chains": 16, "T": 10, "warm_up": 3}, [2, 9, 21]),
]


@requires_data
@pytest.mark.parametrize("name, params, questions", REAL_CASES)
def test_batch_equals_handle_on_a_real_store(name, params, questions):
    store = _store("Qwen3-1.7B", "aime24")
    if questions is not None:  # keep the handle path short: a few questions, 5 seeds
        store = store.subset(questions)
    controller = make_controller(name, params)
    a = evaluate(controller, store, seeds=5, path="batch")
    b = evaluate(controller, store, seeds=5, path="handle", workers=1)
    assert np.array_equal(a.tokens, b.tokens)
    assert a.answers == b.answers
