"""No reply and no run folder can end a discovery run (issue 21, items 2, 3 and 7): a reply whose
evaluation crashed is a failed round on resume, a failure of the trusted side is a failed round
or candidate and the report is still written, damaged files get one sentence, a record copied
from another run does not verify, and schedule values of any shape are bounded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.synthesis import candidate as candidate_mod
from agents.synthesis import loop as loop_mod
from agents.synthesis import report as report_mod
from agents.synthesis.history import History, RunFolderError, json_depth, read_json
from agents.synthesis.llm import LLMConfig
from agents.synthesis.loop import DiscoveryConfig, run_discovery
from agents.synthesis.scoring import SCHEDULE_BOUND, clean_schedule, schedule_issues
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.testing import tiny_questions, write_store_json

MODELS = ("tiny-a", "tiny-b")
LIMITS = SandboxLimits(timeout_s=120.0, memory_mb=400, watchdog_s=2.0)


def _data(root: Path, seed: int) -> Path:
    for i, m in enumerate(MODELS):
        write_store_json(root / m / "aime24.json",
                         tiny_questions(seed + i, questions=3, branches=12, max_probes=6))
        write_store_json(root / m / "aime25.json",
                         tiny_questions(seed + 10 + i, questions=3, branches=12, max_probes=6))
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return _data(tmp_path_factory.mktemp("runfolder-data"), 40)


def _cfg(out: Path, data: Path, url: str, rounds: int = 1, **kw) -> DiscoveryConfig:
    return DiscoveryConfig(
        out=out, rounds=rounds,
        llm=LLMConfig(model="fake-model", base_url=url, timeout_s=2.0, backoff_s=0.01,
                      max_attempts=2),
        models=MODELS, heldout_benchmarks=("aime25",), data_dir=str(data), betas=(0.0, 1.0),
        seeds=2, final_seeds=2, finalists=1, finalist_seeds=2, heldout_curve_seeds=2,
        limits=LIMITS, **kw)


class _Killed(BaseException):
    """Stands for the command dying (kill -9) in the middle of an evaluation."""


def test_a_reply_whose_evaluation_died_is_a_failed_round_on_resume(tmp_path, data_dir,
                                                                   monkeypatch):
    out = tmp_path / "run"
    script = {1: [{"reply": C.reply(C.GOOD)}], 2: [{"reply": C.reply(C.GOOD)}]}
    with FakeOpenAI(script) as srv:
        def die(*_a, **_k):
            raise _Killed()

        monkeypatch.setattr(loop_mod, "_evaluate", die)
        with pytest.raises(_Killed):
            run_discovery(_cfg(out, data_dir, srv.base_url, rounds=2), log=lambda m: None)
        monkeypatch.undo()
        assert (out / "rounds" / "partial_001" / "evaluating.json").is_file()
        logs: list[str] = []
        summary = run_discovery(_cfg(out, data_dir, srv.base_url, rounds=2, resume=True),
                                log=logs.append)
        assert srv.count[1] == 1  # the saved reply was not asked for again
    h = History(out)
    r1 = h.get(1)
    assert (r1["status"], r1["failure_kind"]) == ("failed", "interrupted")
    assert "did not finish" in r1["reason"] and r1["code"] and "class Controller" in r1["code"]
    assert h.get(2)["status"] == "ok"  # the loop went on
    assert summary["chosen"]["round"] == 2 and (out / "report.md").is_file()
    assert any("never finished; recorded as failed" in m for m in logs)


def test_a_failure_of_the_trusted_side_is_a_failed_round_and_final_scoring_failure_is_reported(
        tmp_path, data_dir, monkeypatch):
    out = tmp_path / "run"

    def broken(*_a, **_k):
        raise IndexError("index 7 is out of bounds")

    real = candidate_mod._run_and_score
    calls = {"n": 0}

    def first_breaks(*a, **k):  # round 1's scoring crashes on the trusted side
        calls["n"] += 1
        return broken() if calls["n"] == 1 else real(*a, **k)

    monkeypatch.setattr(candidate_mod, "_run_and_score", first_breaks)
    monkeypatch.setattr(report_mod, "final_numbers", broken)  # and the final scoring too
    with FakeOpenAI({1: [{"reply": C.reply(C.GOOD)}], 2: [{"reply": C.reply(C.PROBING)}]}) as srv:
        summary = run_discovery(_cfg(out, data_dir, srv.base_url, rounds=2), log=lambda m: None)
    h = History(out)
    assert (h.get(1)["status"], h.get(1)["failure_kind"]) == ("failed", "internal")
    assert "IndexError" in h.get(1)["reason"] and "out of bounds" not in h.get(1)["reason"]
    assert h.get(2)["status"] == "ok"
    report = (out / "report.md").read_text()
    assert summary["chosen"]["round"] == 2
    assert "final scoring failed on the trusted side (IndexError)" in json.dumps(summary["final"])
    assert "final scoring failed" in report


def test_damaged_files_get_one_sentence_naming_them(tmp_path, data_dir):
    out = tmp_path / "run"
    with FakeOpenAI({1: [{"reply": C.reply(C.GOOD)}], 2: [{"reply": C.reply(C.GOOD)}]}) as srv:
        run_discovery(_cfg(out, data_dir, srv.base_url, rounds=1), log=lambda m: None)
        partial = out / "rounds" / "partial_002"
        partial.mkdir(parents=True)
        (partial / "response.json").write_text(json.dumps(["not", "a", "reply"]))
        (partial / "prompt.json").write_text(json.dumps([{"role": "user", "content": "p"}]))
        with pytest.raises(RunFolderError, match=r"partial_002/response\.json is not the saved "
                           r"LLM reply.*delete it to ask the LLM for this round again"):
            run_discovery(_cfg(out, data_dir, srv.base_url, rounds=2, resume=True),
                          log=lambda m: None)
        (partial / "response.json").write_text("[" * 5000 + "]" * 5000)
        with pytest.raises(RunFolderError, match="response.json"):
            run_discovery(_cfg(out, data_dir, srv.base_url, rounds=2, resume=True),
                          log=lambda m: None)
        shutil.rmtree(partial)
        (out / "config.json").write_text("[1, 2]")
        with pytest.raises(RunFolderError, match=r"config\.json is not the run's settings"):
            run_discovery(_cfg(out, data_dir, srv.base_url, rounds=2, resume=True),
                          log=lambda m: None)


def test_a_deep_or_huge_round_file_is_recomputed_not_a_crash(tmp_path, data_dir):
    out = tmp_path / "run"
    with FakeOpenAI({1: [{"reply": C.reply(C.GOOD)}]}) as srv:
        run_discovery(_cfg(out, data_dir, srv.base_url, rounds=1), log=lambda m: None)
        (out / "rounds" / "round_001.json").write_text("[" * 900 + "]" * 900)
        logs: list[str] = []
        run_discovery(_cfg(out, data_dir, srv.base_url, rounds=1, resume=True),
                      log=logs.append)
    assert any("round 1: its record does not verify" in m for m in logs)
    assert (out / "rounds" / "round_001.recomputed.json").is_file()  # a verified stand-in


def test_a_record_copied_from_a_run_on_other_stores_does_not_verify(tmp_path, data_dir):
    out = tmp_path / "run"
    other = _data(tmp_path / "other-data", 90)  # same model names, other questions
    with FakeOpenAI({1: [{"reply": C.reply(C.GOOD)}]}) as srv:
        run_discovery(_cfg(out, data_dir, srv.base_url), log=lambda m: None)
        logs: list[str] = []
        run_discovery(_cfg(out, data_dir, srv.base_url, resume=True), log=logs.append)
        assert not any("does not verify" in m for m in logs)  # a legitimate resume
        # the whole folder (config with its run id, signed records) used on other stores
        copy = tmp_path / "copy"
        shutil.copytree(out, copy)
        logs = []
        run_discovery(_cfg(copy, other, srv.base_url, resume=True), log=logs.append)
    assert any("round 0: its record does not verify" in m for m in logs)
    assert any("round 1: its record does not verify" in m for m in logs)


def test_read_json_bounds(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"a": [[[1]]]}))
    assert read_json(p, "x") == {"a": [[[1]]]} and json_depth({"a": [[[1]]]}) == 4
    p.write_text(json.dumps(json.loads("[" * 70 + "]" * 70)))
    with pytest.raises(RunFolderError, match="deeper than 64"):
        read_json(p, "x")
    p.write_text("{")
    with pytest.raises(RunFolderError, match="cannot be read as JSON"):
        read_json(p, "x")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=80) | st.dictionaries(st.text(max_size=5), inner,
                                                                   max_size=80),
    max_leaves=200)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["0.0", "0.5", "1.0", "x", ""]), json_values,
                       max_size=4))
def test_schedules_of_any_shape_never_raise_and_are_bounded(raw):
    cleaned = {b: clean_schedule(v) for b, v in raw.items()}
    issues = schedule_issues(cleaned)
    assert isinstance(issues, list) and all(isinstance(i, str) for i in issues)
    assert json_depth(cleaned) <= 6
    json.dumps(cleaned)  # storable


def test_schedule_values_beyond_the_bound_are_named_not_an_overflow():
    huge = 10 ** 5000  # passes the lint; float() of it overflows
    sched = {"0.0": clean_schedule({"n": 1, "k": huge}),
             "1.0": clean_schedule({"n": 2, "k": float("nan")})}
    assert sched["0.0"]["k"].startswith("<out of range")
    assert schedule_issues(sched) == [
        f"schedule['k'] has values out of range (beyond ±{SCHEDULE_BOUND:g} or not finite)"]


@settings(max_examples=150, deadline=None)
@given(st.one_of(json_values.map(json.dumps), st.binary(max_size=300).map(
    lambda b: b.decode("latin-1"))), st.sampled_from(["prompt", "response", "evaluating"]))
def test_run_folder_files_of_any_content_load_or_are_refused_in_one_sentence(text, stage):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        h = History(Path(d), key=b"k" * 32, context={"stores": {"s": "x"}})
        (h.partial_dir(1)).mkdir(parents=True)
        (h.partial_dir(1) / f"{stage}.json").write_text(text, encoding="latin-1")
        h.round_path(2).write_text(text, encoding="latin-1")
        try:
            value = h.load_partial(1, stage)
        except RunFolderError as exc:
            assert str(exc).count("\n") == 0 and f"{stage}.json" in str(exc)
        else:
            assert value is not None
        raw = h.raw(2)
        assert isinstance(raw, dict)
        assert h.verify(raw) is False  # never signed under this key and context
