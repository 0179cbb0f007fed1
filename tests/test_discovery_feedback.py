"""Discovery an LLM can steer: what the prompt shows, the seed files, selection, the report.

A scripted 3-round run (the real openai client against tests/fake_openai_server.py) on four
tiny search stores named like the paper's four models, plus held-out stores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.synthesis.feedback import best_so_far, grid_of
from agents.synthesis.history import History
from agents.synthesis.llm import LLMConfig
from agents.synthesis.loop import DiscoveryConfig, run_discovery
from agents.synthesis.scoring import budget_score, overspend, paired_se, seed_se
from agents.synthesis.seeds import SEED_SWEEPS, beta_of, seed_source
from agents.synthesis.validate import declared_settings, validate_source
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate
from tts_gym.sandbox.evaluate import evaluate_source
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.testing import tiny_questions, tiny_store, write_store_json

MODELS = ("m-0.6B", "m-1.7B", "m-4B", "m-8B")
LIMITS = SandboxLimits(timeout_s=120.0, memory_mb=400, watchdog_s=2.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feedback")
    for i, m in enumerate(MODELS):
        write_store_json(root / m / "aime24.json",
                         tiny_questions(10 + i, questions=4, branches=16, max_probes=8))
        write_store_json(root / m / "aime25.json",
                         tiny_questions(20 + i, questions=3, branches=16, max_probes=8))
    return root


@pytest.fixture(scope="module")
def run3(tmp_path_factory, data_dir) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("run") / "r"
    script = {1: [{"reply": C.reply(C.GOOD)}], 2: [{"reply": C.reply(C.PROBING)}],
              3: [{"reply": C.reply(C.NON_MONOTONE)}]}
    logs: list[str] = []
    with FakeOpenAI(script) as srv:
        cfg = DiscoveryConfig(
            out=out, rounds=3,
            llm=LLMConfig(model="fake-model", base_url=srv.base_url, timeout_s=5,
                          max_attempts=2),
            models=MODELS, heldout_benchmarks=("aime25",), data_dir=str(data_dir),
            betas=(0.0, 0.5, 1.0), seeds=3, final_seeds=4, finalists=2, finalist_seeds=5,
            heldout_curve_seeds=2, limits=LIMITS)
        run_discovery(cfg, log=logs.append)
    return out, logs


def test_round_three_prompt_shows_what_the_llm_needs(run3):
    out, _logs = run3
    h = History(out)
    p1 = h.get(1)["prompt"][1]["content"]
    p3 = h.get(3)["prompt"][1]["content"]
    best = best_so_far([h.get(0), h.get(1), h.get(2)])  # seeds count too
    assert f"Best so far: {best['name']}" in p3
    assert "Per store (accuracy % / tokens) at the curve's focus points" in p3
    for m in MODELS:  # per-store rows of the four search models, and their facts
        assert f"| {m}/aime24 |" in p3
    # the objective in numbers: the fixed grid, what a point below it counts, a worked example
    grid = grid_of(h.get(0)).to_dict()
    assert f"50 budgets spaced evenly in log-tokens from {grid['lo']:,.0f} to {grid['hi']:,.0f}" \
        in p3
    assert "counts 0" in p3 and "Worked example, seed" in p3
    # comparisons along the curve, with the rule stated, and a verdict per comparison
    assert "per budget band" in p3 and "Verdict: this round" in p3 and "*dominates*" in p3
    cmps = h.get(2)["metrics"]["comparisons"]
    assert cmps and all(len(c["bands"]) == 5 for c in cmps)
    assert {c["verdict"] for c in cmps} <= {"dominates", "behind overall", "mixed"}
    assert "| probe interval |" in p3 and "| 100 |" in p3  # tiny stores probe every 100 tokens
    assert "One episode at 3 seeds moves a store's accuracy by" in p3
    # the probe signal as facts (aggregates only)
    assert "The probe signal" in p3 and "Held answers" in p3 and "any branch right" in p3
    assert "wrong_but_best_right" in p3 and "Trace symbols" in p3
    assert "±" in p3  # standard errors beside the figures
    assert "Latest: round 2" in p3 and "Vs the best so far" in p3
    assert "Diagnostics at the focus points" in p3
    # traces are labelled and come from questions the candidate lost, at several betas
    samples = [t for r in (1, 2, 3) for t in h.get(r).get("trace_samples", [])]
    for t in samples:
        assert {"store", "question", "seed", "beta", "band"} <= set(t)
        assert t["why"] in ("lost", "overspent")
        if t["why"] == "lost":
            assert t["verdict"] == "wrong"
    assert len({t["beta"] for t in h.get(2)["trace_samples"]}) > 1
    assert "Trace (" in p3 and "beta=" in p3
    # a (store, question, seed) shown once is not shown again while others qualify
    shown = [(t["store"], t["question"], t["seed"]) for t in samples]
    assert len(shown) == len(set(shown))
    # the seeds: full candidate files in round 1, one line each afterwards
    assert "Its candidate file" in p1 and "class Controller" in p1.split("## Seed controllers")[1]
    assert "Its candidate file" not in p3
    assert len(p3.split("## Seed controllers")[1]) < len(p1.split("## Seed controllers")[1]) / 3


def test_selection_rescored_finalists_and_reported_cmc(run3):
    out, logs = run3
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["finalists"]) == 2 and all("score" in f for f in summary["finalists"])
    assert summary["chosen"]["round"] == max(
        summary["finalists"], key=lambda f: (f["score"], -f["round"]))["round"]
    assert summary["paper_rule"] is not None
    assert any(k.startswith("cmc (nearest tokens") for k in summary["final"])
    assert "cmc" in summary["heldout_curves"]
    report = (out / "report.md").read_text()
    assert "## Does it beat CMC?" in report and "The paper's rule" in report
    # the verdict against CMC on held-out, with its rule, and every curve's held-out score
    vs = summary["heldout_vs_cmc"]
    assert vs["b"] == "CMC" and vs["verdict"] in ("dominates", "behind overall", "mixed")
    assert len(vs["bands"]) == 5 and vs["paired_seeds"] == 2
    assert "**Verdict: round" in report and "The rule: In each of 5 budget bands" in report
    assert {"cmc", "sc", "asc", "esc", "parallel-probe"} <= set(summary["heldout_scores"])
    assert f"round {summary['chosen']['round']}" in summary["heldout_scores"]
    assert summary["budget_grid"]["n"] == 50 and summary["heldout_grid"]["spacing"] == "log"
    assert "| curve | held-out score |" in report
    assert "search.png" in report and "heldout.png" in report
    assert any("final scoring of round" in m for m in logs)  # progress while scoring
    assert any("units" in m for m in logs)


def test_report_plots_use_a_log_token_axis(run3):
    out, _ = run3
    from tts_gym.reporting.plot import group_figure

    rows = [{"controller": "cmc", "avg_tokens": t, "accuracy": 50.0} for t in (100, 1000)]
    fig = group_figure(rows, "t")
    assert fig.axes[0].get_xscale() == "log"
    assert (out / "heldout.png").stat().st_size > 1000


@pytest.mark.parametrize("name", sorted(SEED_SWEEPS))
def test_seed_files_pass_the_lint_and_equal_the_builtins(name):
    source = seed_source(name)
    assert validate_source(source).ok, validate_source(source)
    store = tiny_store(3, questions=3, branches=24, max_probes=10)
    knob, values, fixed = SEED_SWEEPS[name]
    for v in (values[0], values[len(values) // 2], values[-1]):
        ref = evaluate(make_controller(name, {knob: v, **fixed}), store, 3)
        got = evaluate_source(source, store, 3, params={"beta": beta_of(name, v)},
                              limits=LIMITS)
        assert got.answers == ref.answers and np.array_equal(got.tokens, ref.tokens), (name, v)


def test_noise_figures_and_the_curve_score():
    rng = np.random.default_rng(0)
    a = rng.random((10, 30)) < 0.6
    assert seed_se([a]) == pytest.approx(
        100 * np.sqrt(a.var(axis=0, ddof=1).sum() / 10) / 30, abs=0.01)
    assert paired_se([a], [a]) == 0.0
    cheap = [{"avg_tokens": 1000, "accuracy": 70.0}, {"avg_tokens": 10000, "accuracy": 80.0}]
    costly = [{"avg_tokens": 10000, "accuracy": 80.0}]
    assert budget_score(cheap, 1000, 10000) > budget_score(costly, 1000, 10000)
    trace = [{"op": "full_read", "answer": "7", "tokens": 100},
             {"op": "full_read", "answer": "7", "tokens": 100},
             {"op": "full_read", "answer": "3", "tokens": 100},
             {"op": "finish", "answer": "7", "tokens": 300}]
    assert overspend(trace) == 200


def test_no_beta_contract_and_sweep(tmp_path, data_dir):
    grid = '''from tts_gym.candidate import majority

SETTINGS = [{"reads": 1}, {"reads": 4}]


class Controller:
    def __init__(self, setting):
        self.reads = setting["reads"]

    def solve(self, question):
        votes = [question.full_read() for _ in range(self.reads)]
        return majority([v for v in votes if v is not None])
'''
    assert validate_source(grid, no_beta=True).ok
    assert declared_settings(grid) == ['{"reads": 1}', '{"reads": 4}']
    assert not validate_source(C.GOOD, no_beta=True).ok
    with FakeOpenAI({1: [{"reply": C.reply(grid)}]}) as srv:
        cfg = DiscoveryConfig(
            out=tmp_path / "nb", rounds=1,
            llm=LLMConfig(model="m", base_url=srv.base_url, timeout_s=5, max_attempts=2),
            models=MODELS[:1], heldout_benchmarks=("aime25",), data_dir=str(data_dir),
            seeds=2, final_seeds=2, finalists=1, finalist_seeds=2, heldout_curve_seeds=2,
            limits=LIMITS, no_beta=True, no_traces=True)
        summary = run_discovery(cfg, log=lambda m: None)
    rec = History(tmp_path / "nb").get(1)
    assert rec["status"] == "ok" and rec["metrics"]["knob"] == "setting"
    assert [p["setting"] for p in rec["metrics"]["curve"]] == ['{"reads": 1}', '{"reads": 4}']
    assert rec["trace_samples"] == []  # --no-traces
    assert summary["ablations"] == {"no_traces": True, "no_beta": True}
    assert "SETTINGS" in rec["prompt"][0]["content"]
    assert "Ablations: no_traces, no_beta" in (tmp_path / "nb" / "report.md").read_text()
