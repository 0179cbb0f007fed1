"""One Python copy of each controller: the built-in's handle path IS the seed file the discovery
LLM is shown (the built-in subclasses its ``Controller``), the seed file plays the built-in at
every point of the one sweep grid, and that Python copy equals the numba kernel on the published
configurations (a real store) and off the grid (generated stores)."""

from __future__ import annotations

import ast
import importlib
import inspect
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from agents.synthesis.seeds import FILE_OF, SEED_FILES, SEED_SWEEPS, beta_of
from tests.conftest import real_data_dir, requires_data
from tts_gym import evaluate, load_store
from tts_gym.controller import available_controllers, make_controller
from tts_gym.published import published_rows
from tts_gym.reporting.sweep import SWEEP_GRIDS
from tts_gym.testing import tiny_store

NAMES = sorted(FILE_OF)
CONTROLLERS = Path(__file__).resolve().parents[1] / "agents" / "controllers"
PRIMITIVES = {"full_read", "probe_new", "probe_more", "prune"}
OWN_METHODS = {"__init__", "params", "batch_solve"}
"""What a built-in adds to its seed file's class (CMC also ``schedule()`` with a default beta)."""


def _seed_module(name: str):
    return importlib.import_module(f"agents.synthesis.seed_files.{FILE_OF[name][:-3]}")


def _builtin_class(name: str) -> type:
    return available_controllers()[name].load()


def test_every_builtin_has_a_seed_file_and_a_grid():
    builtins = {n for n, ep in available_controllers().items()
                if ep.value.startswith("agents.controllers.")}
    assert builtins == set(FILE_OF) == set(SEED_SWEEPS)


@pytest.mark.parametrize("name", NAMES)
def test_the_builtins_python_path_is_the_seed_files_code(name):
    cls = _builtin_class(name)
    seed_path = (SEED_FILES / FILE_OF[name]).resolve()
    assert cls.__mro__[1] is _seed_module(name).Controller
    assert cls.solve is _seed_module(name).Controller.solve and "solve" not in vars(cls)
    assert Path(cls.solve.__code__.co_filename).resolve() == seed_path
    assert Path(inspect.getsourcefile(cls.solve)).resolve() == seed_path
    own = {k for k, v in vars(cls).items() if inspect.isfunction(v)}
    assert own <= OWN_METHODS | ({"schedule"} if name == "cmc" else set()), own
    # the object evaluate() calls on the handle path runs that code
    ctrl = make_controller(name)
    assert type(ctrl).solve.__code__ is _seed_module(name).Controller.solve.__code__


def test_no_builtin_module_talks_to_the_handle():
    """Only the seed files call the question primitives; agents/controllers holds checks,
    params and kernels."""
    for path in sorted(CONTROLLERS.glob("*.py")):
        calls = [n.func.attr for n in ast.walk(ast.parse(path.read_text()))
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr in PRIMITIVES]
        assert not calls, (path.name, calls)


@pytest.mark.parametrize("name", NAMES)
def test_the_seed_file_plays_the_builtin_at_every_grid_point(name):
    """The seed file's standalone grid and fixed knobs equal the one sweep grid (SWEEP_GRIDS)
    and the built-in's defaults: at ``beta_of(v)`` it sets exactly the built-in's parameters."""
    assert SEED_SWEEPS[name] == SWEEP_GRIDS[name]
    knob, values, fixed = SWEEP_GRIDS[name]
    for v in values:
        builtin = make_controller(name, {knob: v, **fixed})
        seed = _seed_module(name).Controller(beta_of(name, v))
        assert {k: getattr(seed, k) for k in builtin.params()} == builtin.params(), v
        if name == "cmc":
            assert seed.p == builtin.p == builtin.schedule()


def test_esc_is_swept_over_the_published_grid():
    """ESC: the spec's sweep and the published rows are max_samples 16, 32, 64 (window 8)."""
    rows = {r.config for r in published_rows() if r.controller == "esc"}
    assert rows == {f"max_samples={m};window_size=8" for m in (16, 32, 64)}
    assert SWEEP_GRIDS["esc"] == ("max_samples", (16, 32, 64), {"window": 8})


# --- the Python copy == the kernel -------------------------------------------------------------
def _same(ctrl, store, seeds) -> None:
    a = evaluate(ctrl, store, seeds, path="batch")
    b = evaluate(ctrl, store, seeds, path="handle", workers=1)
    assert a.path == "batch" and b.path == "handle"
    assert a.answers == b.answers
    assert np.array_equal(a.tokens, b.tokens)


OFF_GRID = {"sc": {"n": 5}, "asc": {"max_samples": 23, "threshold": 0.8},
            "esc": {"max_samples": 20, "window": 3}, "parallel-probe": {"num_chains": 7, "T": 3},
            "cmc": {"beta": 0.37}}


@pytest.mark.parametrize("name", NAMES)
def test_python_copy_equals_kernel_on_generated_stores(name):
    knob, values, fixed = SWEEP_GRIDS[name]
    for seed, kw in enumerate(({"branches": 70, "max_probes": 9}, {"branches": 12, "answers": 2})):
        store = tiny_store(60 + seed, questions=4, **kw)
        for params in ({knob: values[-1], **fixed}, OFF_GRID[name]):
            _same(make_controller(name, params), store, [0, 1, 2])


@lru_cache(maxsize=1)
def _real_store():
    return load_store("Qwen3-1.7B", "aime24", real_data_dir())


def _published_configs(name: str) -> list[dict]:
    """The published rows' configs of ``name`` on Qwen3-1.7B, ends and middle of the grid (SC,
    absent from the CSV, at its published n = 64)."""
    rows = [r for r in published_rows() if r.controller == name and r.model == "Qwen3-1.7B"]
    if not rows:
        return [{"n": 64}]
    return [dict(r.params) for r in (rows[0], rows[len(rows) // 2], rows[-1])]


@requires_data
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_python_copy_equals_kernel_on_the_published_configs(name):
    store = _real_store()
    if name in ("parallel-probe", "cmc"):  # keep the handle path short on a loaded machine
        store = store.subset([0, 7, 13, 19, 26])
    for params in _published_configs(name):
        _same(make_controller(name, params), store, [0, 3])
