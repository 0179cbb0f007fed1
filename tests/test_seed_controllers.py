"""Start from the state of the art: ``--seed-controllers``, the budget grid fixed by the paper's
four seeds, and the CMC seed file reproducing the built-in at every beta of its grid."""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import numpy as np
import pytest

import agents.controllers.cmc as cmc_module
import agents.synthesis.seed_files.cmc as cmc_seed
from agents.controllers import cmc_kernel
from agents.synthesis.cli import config_from, register
from agents.synthesis.feedback import reference_points
from agents.synthesis.history import History
from agents.synthesis.llm import LLMConfig
from agents.synthesis.loop import DiscoveryConfig, run_discovery
from agents.synthesis.scoring import budget_score
from agents.synthesis.seeds import (
    PAPER_SEEDS,
    SEED_FILES,
    SEED_SWEEPS,
    check_seed_names,
    seed_round,
    seed_source,
)
from agents.synthesis.sweep import run_sweep
from tests import synthesis_candidates as C
from tests.conftest import real_data_dir, requires_data
from tests.fake_openai_server import FakeOpenAI
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.reporting.sweep import SWEEP_GRIDS
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.store import load_store
from tts_gym.testing import tiny_questions, tiny_store, write_store_json

LIMITS = SandboxLimits(timeout_s=600.0, memory_mb=400, watchdog_s=2.0)
BETAS = SEED_SWEEPS["cmc"][1]


def _args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["discover", "--rounds", "1", "--model-name", "m", "--out", "o",
                              *extra])


def test_the_flag_defaults_to_the_papers_four_and_refuses_unknown_names():
    assert config_from(_args()).seed_controllers == PAPER_SEEDS
    cfg = config_from(_args("--seed-controllers", "cmc,sc,cmc"))
    assert cfg.seed_controllers == ("cmc", "sc")
    with pytest.raises(ValueError) as err:
        config_from(_args("--seed-controllers", "cmc,best-of-n"))
    msg = str(err.value)
    assert "'best-of-n'" in msg and all(n in msg for n in SEED_SWEEPS) and msg.count(".") == 1
    with pytest.raises(ValueError, match="no seed controller"):
        check_seed_names([" ", ""])


def test_cmc_is_swept_over_the_builtin_grid():
    assert SEED_SWEEPS["cmc"] == SWEEP_GRIDS["cmc"] == ("beta", BETAS, {})
    assert BETAS == tuple(round(0.1 * i, 1) for i in range(11))


def _constants(path: Path) -> dict[str, object]:
    tree = ast.parse(path.read_text())
    return {t.id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def test_the_caps_live_in_the_seed_file_only(monkeypatch):
    """MAX_BRANCH and MAX_OUTER are defined once, in the seed file (spec: 64 and 500): the
    built-in and its kernel module define neither, and lifting the seed file's MAX_OUTER moves
    the handle path and the kernel alike on a store where the cap binds."""
    consts = _constants(SEED_FILES / "cmc.py")
    assert (consts["MAX_BRANCH"], consts["MAX_OUTER"]) == (64, 500)
    for module in (cmc_kernel, cmc_module):
        assert not {"MAX_BRANCH", "MAX_OUTER"} & set(vars(module)), module.__name__
    long = tiny_store(1, questions=2, branches=5, max_probes=900, answers=6)
    ctrl = make_controller("cmc", {"beta": 0.0})

    def both():
        a = evaluate(ctrl, long, [0, 1], path="batch")
        b = evaluate(ctrl, long, [0, 1], path="handle")
        assert a.answers == b.answers and np.array_equal(a.tokens, b.tokens)
        return a

    capped = both()
    with monkeypatch.context() as m:
        m.setattr(cmc_seed, "MAX_OUTER", 10**6)
        free = both()
    assert not np.array_equal(capped.tokens, free.tokens)


@pytest.fixture(scope="module")
def tiny_stores():
    return {f"m{i}/aime24": tiny_store(40 + i, questions=4, branches=24, max_probes=8)
            for i in range(2)}


def test_the_budget_grid_comes_from_the_papers_four(tiny_stores):
    paper = seed_round(tiny_stores, [0, 1])
    mine = seed_round(tiny_stores, [0, 1], ["cmc"])
    assert mine["budget_grid"] == paper["budget_grid"]
    grid = mine["budget_grid"]
    assert grid["from"] == list(PAPER_SEEDS) and grid["n"] == 50 and grid["spacing"] == "log"
    assert mine["budget_range"] == [grid["lo"], grid["hi"]]
    tokens = [p["avg_tokens"] for e in paper["seeds"] for p in e["curve"]]
    assert [grid["lo"], grid["hi"]] == [max(1.0, min(tokens)), max(2.0, max(tokens))]
    shown = {e["name"]: e["shown"] for e in mine["seeds"]}
    assert shown == {"sc": False, "asc": False, "esc": False, "parallel-probe": False,
                     "cmc": True}
    assert all(e["shown"] for e in paper["seeds"]) and len(paper["seeds"]) == 4
    by_name = {e["name"]: e for e in mine["seeds"]}
    for e in paper["seeds"]:  # the same scores in both runs
        assert by_name[e["name"]]["score"] == e["score"]
    assert mine["best_seed"] == "cmc" and mine["metrics"]["best"]["name"] == "cmc"
    assert [r["name"] for r in reference_points([mine])] == ["seed cmc"]
    assert [r["name"] for r in reference_points([paper])] == [f"seed {n}" for n in PAPER_SEEDS]
    cmc = by_name["cmc"]
    assert [p["beta"] for p in cmc["curve"]] == list(BETAS)
    assert cmc["betas"] == {str(b): b for b in BETAS}
    for p in cmc["curve"][::5]:  # the built-in's numbers
        ref = [evaluate(make_controller("cmc", {"beta": p["beta"]}), s, [0, 1])
               for s in tiny_stores.values()]
        assert p["accuracy"] == round(float(np.mean([r.accuracy for r in ref])), 2)
    assert cmc["score"] == budget_score(cmc["curve"], grid["lo"], grid["hi"], grid["n"])


def _cap_binds(store, beta, seeds, monkeypatch) -> bool:
    """Whether lifting CMC's outer-step cap changes the built-in's result on ``store``."""
    ctrl = make_controller("cmc", {"beta": beta})
    capped = evaluate(ctrl, store, seeds, path="handle")
    with monkeypatch.context() as m:
        m.setattr(cmc_seed, "MAX_OUTER", 10**6)
        free = evaluate(ctrl, store, seeds, path="handle")
    return capped.answers != free.answers or not np.array_equal(capped.tokens, free.tokens)


def _same_in_the_sandbox(stores, seeds):
    run = run_sweep(seed_source("cmc"), stores, BETAS, seeds, LIMITS, name="cmc",
                    schedules=False)
    assert run.status == "ok", run.error
    for b in BETAS:
        for key, store in stores.items():
            ref = evaluate(make_controller("cmc", {"beta": b}), store, seeds)
            got = run.results[b][key]
            assert got.answers == ref.answers, (b, key)
            assert np.array_equal(got.tokens, ref.tokens), (b, key)
            assert (got.accuracy, got.avg_tokens) == (ref.accuracy, ref.avg_tokens), (b, key)


def test_the_cmc_seed_file_equals_the_builtin_at_every_beta(monkeypatch):
    """On a generated store of ordinary branches, and on one of very long branches where the
    500-step cap decides the answer (checked: lifting it changes the built-in's result)."""
    long = tiny_store(1, questions=2, branches=5, max_probes=900, answers=6)
    assert _cap_binds(long, 0.0, [0, 1], monkeypatch)
    assert _cap_binds(long, 1.0, [0, 1], monkeypatch)
    _same_in_the_sandbox({"short": tiny_store(2, questions=4, branches=40, max_probes=12),
                          "long": long}, [0, 1])


@requires_data
@pytest.mark.data
def test_the_cmc_seed_file_equals_the_builtin_on_real_stores():
    stores = {s.name: s for s in (load_store(m, "aime24", real_data_dir())
                                  for m in ("Qwen3-0.6B", "Qwen3-1.7B"))}
    _same_in_the_sandbox(stores, [0, 1])


def _config(out: Path, url: str, data_dir: Path, **kw) -> DiscoveryConfig:
    return DiscoveryConfig(
        out=out, rounds=1,
        llm=LLMConfig(model="m", base_url=url, timeout_s=5, max_attempts=2),
        models=("m-a",), heldout_benchmarks=("aime25",), data_dir=str(data_dir),
        betas=(0.0, 1.0), seeds=2, final_seeds=2, finalists=1, finalist_seeds=2,
        heldout_curve_seeds=2, limits=SandboxLimits(timeout_s=120.0, memory_mb=400,
                                                    watchdog_s=2.0), **kw)


def test_a_run_seeded_with_cmc_and_its_resume(tmp_path):
    data = tmp_path / "data"
    write_store_json(data / "m-a" / "aime24.json", tiny_questions(7, questions=3, branches=16))
    write_store_json(data / "m-a" / "aime25.json", tiny_questions(8, questions=3, branches=16))
    out = tmp_path / "run"
    with FakeOpenAI({1: [{"reply": C.reply(C.GOOD)}]}) as srv:
        run_discovery(_config(out, srv.base_url, data, seed_controllers=("cmc",)),
                      log=lambda m: None)
        h = History(out)
        r0, r1 = h.get(0), h.get(1)
        assert [e["name"] for e in r0["seeds"] if e["shown"]] == ["cmc"]
        assert r0["best_seed"] == "cmc" and r0["budget_grid"]["from"] == list(PAPER_SEEDS)
        cmps = {c["name"] for c in r1["metrics"]["comparisons"]}
        assert cmps == {"seed cmc"}  # the best so far, the best seed and the reference, once
        assert json.loads((out / "config.json").read_text())["seed_controllers"] == ["cmc"]
        # a setting of the history: --resume with other seeds is refused
        with pytest.raises(ValueError, match="seed_controllers"):
            run_discovery(_config(out, srv.base_url, data, resume=True), log=lambda m: None)
        # a config.json written before the setting existed meant the paper's four
        cfg_path = out / "config.json"
        old = json.loads(cfg_path.read_text())
        del old["seed_controllers"]
        cfg_path.write_text(json.dumps(old))
        with pytest.raises(ValueError, match="seed_controllers"):
            run_discovery(_config(out, srv.base_url, data, resume=True, seed_controllers=("cmc",)),
                          log=lambda m: None)
        summary = run_discovery(_config(out, srv.base_url, data, resume=True),
                                log=lambda m: None)
    assert summary["chosen"] is not None
