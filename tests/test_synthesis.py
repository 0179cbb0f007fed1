"""Discovery loop: validator, extraction, sandbox, scoring, LLM client and the loop in-process.

The LLM is the real ``openai`` client talking to a scripted OpenAI-compatible server on
127.0.0.1 (:mod:`tests.fake_openai_server`). Stores are tiny generated ones in a temp data dir.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.synthesis.extract import ExtractionError, extract_code
from agents.synthesis.history import History, HistoryError
from agents.synthesis.llm import LLMClient, LLMConfig, LLMError, Pricing
from agents.synthesis.loop import DiscoveryConfig, check_search_split, run_discovery
from agents.synthesis.prompt import build_messages
from agents.synthesis.scoring import monotone_violations, schedule_issues
from agents.synthesis.sweep import run_sweep
from agents.synthesis.validate import validate_source
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tts_gym.controller import load_file_controller
from tts_gym.evaluation import evaluate
from tts_gym.sandbox import broker as broker_mod
from tts_gym.sandbox.broker import UnitSpec
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.store import load_store
from tts_gym.testing import tiny_questions, tiny_store, write_store_json

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=2.0)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Two tiny search stores and one tiny held-out store."""
    root = tmp_path_factory.mktemp("tinydata")
    write_store_json(root / "tiny-a" / "aime24.json", tiny_questions(1, questions=4, branches=12))
    write_store_json(root / "tiny-b" / "aime24.json", tiny_questions(2, questions=4, branches=12))
    write_store_json(root / "tiny-a" / "aime25.json", tiny_questions(3, questions=3, branches=12))
    return root


def _cfg(out: Path, data_dir: Path, url: str, rounds: int, **kw) -> DiscoveryConfig:
    kw.setdefault("limits", LIMITS)
    return DiscoveryConfig(
        out=out,
        rounds=rounds,
        llm=LLMConfig(
            model="fake-model", base_url=url, timeout_s=1.0, backoff_s=0.01, max_attempts=4
        ),
        models=("tiny-a", "tiny-b"),
        heldout_benchmarks=("aime25",),
        data_dir=str(data_dir),
        betas=(0.0, 0.5, 1.0),
        seeds=2,
        final_seeds=3,
        finalist_seeds=kw.pop("finalist_seeds", 3),
        heldout_curve_seeds=kw.pop("heldout_curve_seeds", 2),
        **kw,
    )


# --- validation ------------------------------------------------------------------------------
BODY = (
    "class Controller:\n    def __init__(self, beta): pass\n    def schedule(self, beta): "
    "return {}\n    def solve(self, question):\n        return {expr}\n"
)


@pytest.mark.parametrize(
    "expr, kind",
    [
        ("question._env.store.gold", "forbidden_code"),
        ("type(question).__mro__", "forbidden_code"),
        ("getattr(question, '_' + 'base')", "forbidden_code"),
        ("'{0._base.store}'.format(question)", "forbidden_code"),
        ("vars(question)", "forbidden_code"),
        ("(x for x in ()).gi_frame.f_back", "forbidden_code"),
        ("type(question).mro()", "forbidden_code"),
        ("question.probe_new.__closure__", "forbidden_code"),
        ("open('/etc/passwd').read()", "forbidden_code"),
        ("eval('1')", "forbidden_code"),
        ("__import__('os')", "forbidden_code"),
        ("__builtins__", "forbidden_code"),
    ],
)
def test_validator_rejects_escapes(expr, kind):
    v = validate_source(BODY.replace("{expr}", expr))
    assert not v.ok and v.kind == kind, v
    assert v.reason.startswith("line 5")


@pytest.mark.parametrize(
    "head, kind",
    [
        ("import os", "forbidden_import"),
        ("import subprocess", "forbidden_import"),
        ("from os import path", "forbidden_import"),
        ("import numpy.lib", "forbidden_import"),
        ("from numpy import load", "forbidden_import"),
        ("from . import x", "forbidden_import"),
        ("import numpy as np\nnp.stash = {}", "forbidden_code"),
        ("import numpy as np\nnp.typecodes['x'] = 1", "forbidden_code"),
        ("import numpy as np\nX = np.load('gold.npy')", "forbidden_code"),
    ],
)
def test_validator_rejects_imports_and_module_writes(head, kind):
    v = validate_source(head + "\n" + BODY.replace("{expr}", "None"))
    assert not v.ok and v.kind == kind, v


def test_validator_contract_and_honest_code():
    assert validate_source(C.GOOD).ok and validate_source(C.PROBING).ok
    assert validate_source(C.SYNTAX_ERROR).kind == "syntax_error"
    assert validate_source(C.MISSING_CLASS).kind == "contract"
    two_knobs = C.GOOD.replace("def __init__(self, beta):", "def __init__(self, beta, n=3):")
    assert "only knob" in validate_source(two_knobs).reason
    no_sched = C.GOOD.replace("def schedule(self, beta):", "def plan(self, beta):")
    assert validate_source(no_sched).kind == "contract"
    sup = C.GOOD.replace("self.beta = min", "super().__init__()\n        self.beta = min")
    assert validate_source(sup).ok


def test_docstring_examples():
    import doctest

    from agents.synthesis import extract, validate

    for mod in (extract, validate):
        assert doctest.testmod(mod).failed == 0


def test_extract_code():
    assert extract_code(C.reply(C.GOOD)) == C.GOOD
    two = "```python\nx = 1\n```\ntext\n" + C.reply(C.GOOD)
    assert extract_code(two) == C.GOOD
    with pytest.raises(ExtractionError, match="no ```python"):
        extract_code("I would rather not.")
    with pytest.raises(ExtractionError, match="define class Controller"):
        extract_code(C.reply(C.GOOD) + C.reply(C.PROBING))


# --- the sweep runs in the sandbox and scores like tts_gym.evaluate -------------------------
def test_sweep_equals_in_process_evaluation(tmp_path):
    """Same answers and tokens as the trusted in-process path for the same file."""
    store = tiny_store(5, questions=4, branches=10)
    run = run_sweep(C.PROBING, {"s": store}, [0.3, 0.6], [0, 1, 2], LIMITS, trace_seed=0)
    assert run.status == "ok", run.error
    path = tmp_path / "controller.py"
    path.write_text(C.PROBING)
    for b in (0.3, 0.6):
        mine = run.results[b]["s"]
        ref = evaluate(load_file_controller(path, {"beta": b}), store, 3, path="handle")
        assert np.array_equal(mine.tokens, ref.tokens) and np.array_equal(mine.correct, ref.correct)
        assert mine.answers == ref.answers
    assert set(run.schedules) == {"0.3", "0.6"}
    assert all(t[-1]["op"] == "finish" for t in run.traces[0.3]["s"])
    split = run_sweep(C.PROBING, {"s": store}, [0.3, 0.6], [0, 1, 2],
                      SandboxLimits(timeout_s=60.0, workers=2), trace_seed=0)
    for b in (0.3, 0.6):  # two brokers in parallel give the same numbers
        assert np.array_equal(split.results[b]["s"].tokens, run.results[b]["s"].tokens)
        assert split.results[b]["s"].answers == run.results[b]["s"].answers


def test_sweep_stops_loops_and_bombs(tiny):
    loop = run_sweep(C.INFINITE_LOOP, {"s": tiny}, [0.5], [0], LIMITS)
    assert loop.status == "error" and loop.error["kind"] == "watchdog", loop.error
    # every episode loops: the first one the process plays is blamed, the question the unit's
    # secret permutation puts first
    first = int(broker_mod.Broker(UnitSpec(C.INFINITE_LOOP, "candidate.py", {"beta": 0.5},
                                           ("s",), 0), {"s": tiny}, LIMITS).perm[0])
    assert loop.error["store"] == "s" and loop.error["question"] == first
    bomb = run_sweep(C.MEMORY_BOMB, {"s": tiny}, [0.5], [0],
                     SandboxLimits(timeout_s=60, memory_mb=300))
    assert bomb.status == "error" and bomb.error["kind"] == "memory", bomb.error
    after = run_sweep(C.GOOD, {"s": tiny}, [0.5], [0], LIMITS)
    assert after.status == "ok"  # the sandbox survives both


# --- checks ----------------------------------------------------------------------------------
def test_monotone_and_schedule_checks():
    def pt(b, t):
        return {
            "beta": b,
            "accuracy": 0.0,
            "avg_tokens": t,
            "per_store": {"s": {"accuracy": 0.0, "avg_tokens": t}},
        }

    assert monotone_violations([pt(0, 1), pt(0.5, 2), pt(1, 2)]) == []
    bad = monotone_violations([pt(0, 1), pt(0.5, 3), pt(1, 2)])
    assert len(bad) == 2 and "beta=0.5" in bad[0]
    assert schedule_issues({"0.0": {"n": 1}, "0.5": {"n": 4}, "1.0": {"n": 9}}) == []
    assert "'n'" in schedule_issues({"0.0": {"n": 1}, "0.5": {"n": 4}, "1.0": {"n": 2}})[0]


# --- LLM client ------------------------------------------------------------------------------
def test_llm_client_retries_in_one_layer_and_prices():
    waits: list[float] = []
    script = {
        1: [{"status": 429}, {"reply": "hello"}],
        2: [{"sleep": 1.5, "reply": "late"}, {"reply": "on time"}],
        3: [{"status": 503}],
        4: [{"status": 400}],
    }
    with FakeOpenAI(script) as srv:
        cfg = LLMConfig(
            model="m", base_url=srv.base_url, timeout_s=0.5, max_attempts=3, backoff_s=0.25
        )
        client = LLMClient(cfg, Pricing(1.0, 2.0), sleep=waits.append)
        r1 = client.complete([{"role": "user", "content": "Round 1 of 3. " + "x" * 400}])
        assert r1.text == "hello" and r1.attempts == 2 and "RateLimitError" in r1.errors[0]
        assert r1.usage["prompt_tokens"] == 103 and not r1.usage["estimated"]
        assert r1.usage["cost_usd"] == pytest.approx((103 * 1 + 1 * 2) / 1e6)
        r2 = client.complete([{"role": "user", "content": "Round 2 of 3."}])
        assert r2.text == "on time" and "APITimeoutError" in r2.errors[0]
        with pytest.raises(LLMError, match="gave up after 3"):
            client.complete([{"role": "user", "content": "Round 3 of 3."}])
        with pytest.raises(LLMError, match="BadRequest"):
            client.complete([{"role": "user", "content": "Round 4 of 3."}])
        assert srv.count[3] == 3 and srv.count[4] == 1  # no hidden retries in the openai client
    assert waits[:1] == [0.25] and waits[-2:] == [0.25, 0.5]


# --- prompt and history ----------------------------------------------------------------------
def _cand(r: int, acc: float, status: str = "ok") -> dict:
    if status != "ok":
        return {
            "round": r,
            "kind": "candidate",
            "status": status,
            "failure_kind": "contract",
            "reason": f"reason {r}",
            "code": "x",
        }
    point = {"beta": 0.5, "accuracy": acc, "avg_tokens": 100.0, "se": 1.0,
             "per_store": {"s": {"accuracy": acc, "avg_tokens": 100.0}}}
    return {
        "round": r,
        "kind": "candidate",
        "status": "ok",
        "code": f"# code of round {r}\n",
        "metrics": {
            "knob": "beta",
            "best": {"beta": 0.5, "accuracy": acc, "avg_tokens": 100.0, "se": 1.0},
            "curve": [point],
            "score": acc,
            "detail": {},
            "checks": {},
        },
    }


def test_prompt_best_so_far_latest_older_and_capped():
    seeds = {"round": 0, "kind": "seeds", "seeds": [], "best_seed": None}
    entries = [seeds, _cand(1, 50.0), _cand(2, 10.0, "rejected"), _cand(3, 30.0)]
    msgs = build_messages(4, 5, entries, "setting line")
    system, user = msgs[0]["content"], msgs[1]["content"]
    assert "probe_new" in system and "schedule(self, beta)" in system and "numpy" in system
    assert "prune(slot)" in system and "beta_conf" in system
    assert user.startswith("Round 4 of 5. setting line")
    assert "Best so far: round 1 (score 50.00)" in user and "# code of round 1" in user
    assert "Latest: round 3" in user and "# code of round 3" in user  # best and latest
    assert user.index("Best so far") < user.index("Latest: round 3") < user.index("round 2:")
    assert "reason 2" in user
    many = [seeds] + [_cand(r, 1.0, "rejected") for r in range(1, 200)]
    capped = build_messages(200, 200, many, "s", max_chars=5000)[1]["content"]
    assert len(capped) < 5200 and "older round(s) omitted" in capped


def test_prompt_shows_a_round_that_is_both_best_and_latest_once():
    seeds = {"round": 0, "kind": "seeds", "seeds": [], "best_seed": None,
             "budget_grid": {"lo": 50.0, "hi": 5000.0, "n": 50, "spacing": "log"}}
    entries = [seeds, _cand(1, 10.0), _cand(2, 40.0)]  # round 2 is the best and the latest
    user = build_messages(3, 3, entries, "s")[1]["content"]
    assert "Best so far, and the latest round: round 2" in user and "## Latest" not in user
    assert user.count("# code of round 2") == 1 and user.count("Curve (beta") == 1
    assert "50 budgets spaced evenly in log-tokens from 50 to 5,000 tokens" in user
    assert "must cost at most 50 tokens" in user


def test_prompt_prints_a_standard_error_that_rounds_to_zero_as_below_a_hundredth():
    entries = [{"round": 0, "kind": "seeds", "seeds": []}, _cand(1, 10.0)]
    entries[1]["metrics"]["best"]["se"] = 0.001
    user = build_messages(2, 2, entries, "s")[1]["content"]
    assert "(±< 0.01)" in user and "±0.00" not in user


def test_history_is_append_only(tmp_path):
    h = History(tmp_path)
    h.save_partial(1, "prompt", [{"role": "user", "content": "p"}])
    h.append({"round": 1, "kind": "candidate", "status": "ok"})
    assert h.finished() == [1] and h.load_partial(1, "prompt") is None
    with pytest.raises(HistoryError, match="append-only"):
        h.append({"round": 1, "kind": "candidate", "status": "ok"})
    assert json.loads((tmp_path / "index.json").read_text())["rounds"][0]["round"] == 1


# --- the loop --------------------------------------------------------------------------------
def test_search_split_only(tmp_path, data_dir):
    with pytest.raises(ValueError, match="held-out"):
        check_search_split(["aime24", "aime25"])
    cfg = _cfg(tmp_path / "o", data_dir, "http://127.0.0.1:9/v1", 1, search_benchmarks=("aime25",))
    with pytest.raises(ValueError, match="held.out"):
        run_discovery(cfg, log=lambda m: None)


def test_every_failure_kind_is_recorded_and_the_loop_continues(tmp_path, data_dir):
    script = {
        1: [{"status": 429}, {"reply": C.reply(C.GOOD)}],
        2: [{"sleep": 2.0, "reply": "too late"}, {"reply": C.reply(C.SYNTAX_ERROR)}],
        3: [{"reply": C.reply(C.MISSING_CLASS)}],
        4: [{"reply": C.reply(C.FORBIDDEN_IMPORT)}],
        5: [{"reply": C.reply(C.GOLD_PEEK)}],
        6: [{"reply": C.reply(C.INFINITE_LOOP)}],
        7: [{"reply": C.reply(C.MEMORY_BOMB)}],
        8: [{"reply": C.reply(C.NON_MONOTONE)}],
        9: [{"reply": "Sorry, I cannot help with that."}],
    }
    out = tmp_path / "run"
    with FakeOpenAI(script) as srv:
        cfg = _cfg(out, data_dir, srv.base_url, 9,
                   limits=SandboxLimits(60.0, memory_mb=300, watchdog_s=1.0))
        summary = run_discovery(cfg, log=lambda m: None)
    recs = {r["round"]: r for r in History(out).entries()}
    kinds = {r: (recs[r]["status"], recs[r]["failure_kind"]) for r in range(1, 10)}
    assert kinds == {
        1: ("ok", None),
        2: ("rejected", "syntax_error"),
        3: ("rejected", "contract"),
        4: ("rejected", "forbidden_import"),
        5: ("rejected", "forbidden_code"),
        6: ("failed", "watchdog"),
        7: ("failed", "memory"),
        8: ("ok", None),
        9: ("rejected", "extraction"),
    }
    assert recs[1]["response"]["attempts"] == 2 and "RateLimit" in recs[1]["response"]["errors"][0]
    assert "APITimeoutError" in recs[2]["response"]["errors"][0]
    assert "_env" in recs[5]["reason"] and "metrics" not in recs[5]
    m8 = recs[8]["metrics"]
    assert not m8["checks"]["monotone_spending"] and m8["monotone_violations"]
    assert m8["schedule_issues"] and not m8["checks"]["monotone_schedule"]
    m1 = recs[1]["metrics"]
    checks = {k: m1["checks"][k] for k in ("monotone_spending", "monotone_schedule", "trace_ok")}
    assert checks == {"monotone_spending": True, "monotone_schedule": True, "trace_ok": True}
    assert m1["checks"]["notes_present"] and not m1["checks"]["adaptive_depth"]  # full_read only
    labels = {c["label"]: c for c in m1["comparisons"]}
    assert labels["the best so far"]["name"].startswith("seed ")  # round 1: the best is a seed
    assert {"lost", "won", "status", "diff", "se"} <= set(labels["the best so far"]["bands"][0])
    assert recs[1]["trace_samples"] and "FINISH" in recs[1]["trace_samples"][0]["text"]
    # round 2's prompt showed round 1's results; round 3's showed the rejection reason
    assert "round 1: ok" in recs[2]["prompt"][1]["content"]
    assert "syntax_error" in recs[3]["prompt"][1]["content"]
    assert summary["chosen"]["round"] in (1, 8) and summary["stop_reason"] is None
    assert "tiny-a/aime25" in summary["final"][next(iter(summary["final"]))]
    report = (out / "report.md").read_text()
    assert "| 6 | failed (watchdog)" in report and "## Chosen code" in report


def test_budget_stops_cleanly_with_a_report(tmp_path, data_dir):
    script = {r: [{"reply": C.reply(C.GOOD)}] for r in range(1, 4)}
    with FakeOpenAI(script) as srv:
        cfg = _cfg(
            tmp_path / "b",
            data_dir,
            srv.base_url,
            3,
            max_tokens_total=10,
            pricing=Pricing(3.0, 15.0),
        )
        summary = run_discovery(cfg, log=lambda m: None)
        assert srv.count[1] == 1 and srv.count[2] == 0
    assert summary["rounds_done"] == [1] and "token budget reached" in summary["stop_reason"]
    assert summary["spent_usd"] > 0
    assert "Stopped early: token budget" in (tmp_path / "b" / "report.md").read_text()


def test_resume_reuses_a_saved_response(tmp_path, data_dir):
    """A round whose paid reply was saved before a crash is finished without a new call."""
    out = tmp_path / "r"
    with FakeOpenAI({1: [{"reply": C.reply(C.GOOD)}]}) as srv:
        cfg = _cfg(out, data_dir, srv.base_url, 1)
        run_discovery(cfg, log=lambda m: None)
    h = History(out)
    first = h.get(1)
    # simulate a crash after the reply of round 2 was saved
    h.save_partial(2, "prompt", [{"role": "user", "content": "Round 2 of 2."}])
    h.save_partial(2, "response", {**first["response"], "text": C.reply(C.PROBING)})
    with FakeOpenAI({}) as srv:
        with pytest.raises(ValueError, match="--resume"):
            run_discovery(_cfg(out, data_dir, srv.base_url, 2), log=lambda m: None)
        run_discovery(_cfg(out, data_dir, srv.base_url, 2, resume=True), log=lambda m: None)
        assert srv.calls == []
    assert h.finished() == [0, 1, 2] and h.get(1) == first
    assert h.get(2)["code"] == C.PROBING and h.get(2)["status"] == "ok"
    assert h.get(2)["metrics"]["checks"]["adaptive_depth"]  # probe_more is used


def test_loaded_store_keeps_gold_in_parent(data_dir):
    s = load_store("tiny-a", "aime24", data_dir)
    assert s.has_gold and not s.without_gold().has_gold


def test_endpoint_failure_stops_with_report_and_exit_code_1(tmp_path, data_dir, capsys):
    from tts_gym.cli import main

    out = tmp_path / "f"
    with FakeOpenAI({1: [{"status": 401}]}) as srv:
        argv = [
            "discover",
            "--rounds",
            "2",
            "--base-url",
            srv.base_url,
            "--model-name",
            "m",
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
            "--models",
            "tiny-a",
            "--betas",
            "0",
            "1",
            "--seeds",
            "2",
            "--final-seeds",
            "2",
        ]
        assert main(argv) == 1
        assert srv.count[1] == 1  # a 401 is not retried
    assert "LLM endpoint failed in round 1" in capsys.readouterr().out
    h = History(out)
    assert h.finished() == [0] and h.load_partial(1, "prompt") is not None
    assert "Stopped early: LLM endpoint failed" in (out / "report.md").read_text()
    # the CLI refuses held-out benchmarks during search
    assert main([*argv, "--search-benchmarks", "hmmt25", "--resume"]) == 2


def test_preflight_names_the_key_the_url_and_the_model(tmp_path, data_dir, monkeypatch):
    """discover checks the key, the endpoint and the model before round 0 (nothing claimed)."""
    import socket as _socket
    import time as _time

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "p"
    remote = _cfg(out, data_dir, "https://llm.example.invalid/v1", 1)
    with pytest.raises(ValueError, match="no API key: set OPENAI_API_KEY"):
        run_discovery(remote, log=lambda m: None)
    sock = _socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    start = _time.monotonic()
    with pytest.raises(ValueError, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        run_discovery(_cfg(out, data_dir, f"http://127.0.0.1:{port}/v1", 1), log=lambda m: None)
    assert _time.monotonic() - start < 30
    with FakeOpenAI({}, models=["other-model"]) as srv:
        with pytest.raises(ValueError, match="does not serve the model 'fake-model'.*other-model"):
            run_discovery(_cfg(out, data_dir, srv.base_url, 1), log=lambda m: None)
    assert not out.exists()  # nothing was created before the checks passed
