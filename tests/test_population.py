"""Population rounds (``discover --candidates-per-round K``) on the local executor: K proposals
asked concurrently from the same history, recorded as siblings; budget checked before every
paid request; a resumed round never asks again for a reply it saved; sibling records are signed
and recomputed when they do not verify. (Equality with the Ray executor: tests/test_ray.py.)
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agents.synthesis.history import History, HistoryError, run_key
from agents.synthesis.llm import LLMConfig, Pricing
from agents.synthesis.loop import (
    DiscoveryConfig,
    load_search_stores,
    run_context,
    run_discovery,
)
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.testing import tiny_questions, write_store_json

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=2.0, workers=2)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("popdata")
    write_store_json(root / "tiny-a" / "aime24.json", tiny_questions(1, questions=4, branches=12))
    write_store_json(root / "tiny-a" / "aime25.json", tiny_questions(3, questions=3, branches=12))
    return root


def _cfg(out: Path, data_dir: Path, url: str, rounds: int, **kw) -> DiscoveryConfig:
    return DiscoveryConfig(
        out=out, rounds=rounds, candidates_per_round=kw.pop("k", 2),
        llm=LLMConfig(model="fake-model", base_url=url, timeout_s=5.0, backoff_s=0.01,
                      max_attempts=kw.pop("attempts", 2)),
        models=("tiny-a",), heldout_benchmarks=("aime25",), data_dir=str(data_dir),
        betas=(0.0, 1.0), seeds=2, final_seeds=2, finalist_seeds=2, heldout_curve_seeds=2,
        limits=LIMITS, **kw)


class BarrierServer(FakeOpenAI):
    """Holds every request of round 1 until both proposals of the round have arrived: a loop
    that asked one proposal after the other would time out here."""

    def __init__(self, script):
        super().__init__(script)
        self.barrier = threading.Barrier(2, timeout=4.0)

    def step_for(self, body):
        r, step = super().step_for(body)
        if r == 1 and self.count[(1, 1)] + self.count[(1, 2)] <= 2:
            self.barrier.wait()
        return r, step


def test_history_keeps_siblings_apart(tmp_path):
    h = History(tmp_path, key=b"k" * 32)
    p0, p1 = [{"role": "user", "content": "p0"}], [{"role": "user", "content": "p1"}]
    h.save_partial(3, "prompt", p0)
    h.save_partial(3, "prompt", p1, k=1)
    assert h.load_partial(3, "prompt") == p0 and h.load_partial(3, "prompt", 1) == p1
    h.append({"round": 3, "sibling": 1, "siblings": 2, "kind": "candidate", "status": "ok"},
             drop_partial=False)
    assert h.has(3, 1) and not h.has(3) and h.load_partial(3, "prompt") == p0
    h.append({"round": 3, "sibling": 0, "siblings": 2, "kind": "candidate", "status": "failed"})
    assert h.load_partial(3, "prompt", 1) is None  # the round is complete: partials dropped
    assert h.keys() == [(3, 0), (3, 1)] and h.finished() == [3]
    assert [e["status"] for e in h.entries()] == ["failed", "ok"]
    assert sorted(p.name for p in h.rounds_dir.glob("round_*")) == ["round_003.json",
                                                                   "round_003_k1.json"]
    rows = json.loads(h.index_path.read_text())["rounds"]
    assert [(r.get("sibling", 0), r["file"], r["verified"]) for r in rows] == [
        (0, "round_003.json", True), (1, "round_003_k1.json", True)]
    with pytest.raises(HistoryError, match="append-only"):
        h.append({"round": 3, "sibling": 1, "kind": "candidate"})
    h.replace(3, {"round": 3, "sibling": 1, "recomputed": True}, k=1)
    again = History(tmp_path, key=b"k" * 32)
    again.load_replacements()
    assert again.get(3, 1)["recomputed"] and not again.get(3).get("recomputed")


def test_siblings_asked_concurrently_then_resumed_without_asking_twice(tmp_path, data_dir):
    out = tmp_path / "run"
    script = {(1, 1): [{"reply": C.reply(C.GOOD)}], (1, 2): [{"status": 500}]}
    with BarrierServer(script) as srv:
        summary = run_discovery(_cfg(out, data_dir, srv.base_url, 1), log=lambda m: None)
        assert srv.count[(1, 1)] == 1 and srv.count[(1, 2)] == 2  # one retry, then it gave up
    assert summary["stop_reason"].startswith("LLM endpoint failed in round 1 proposal 2/2")
    h = History(out)
    assert h.keys() == [(0, 0), (1, 0)]
    first = (out / "rounds" / "round_001.json").read_bytes()
    assert h.load_partial(1, "prompt", 1) is not None  # kept for the resume
    assert h.load_partial(1, "response", 1) is None
    assert "Proposal 2 of 2" in h.load_partial(1, "prompt", 1)[1]["content"]

    with FakeOpenAI({(1, 2): [{"reply": C.reply(C.PROBING)}]}) as srv:
        summary = run_discovery(_cfg(out, data_dir, srv.base_url, 1, resume=True),
                                log=lambda m: None)
        assert [(c["round"], c["proposal"]) for c in srv.calls] == [(1, 2)]
    assert summary["stop_reason"] is None and summary["rounds_done"] == [1, 1]
    assert (out / "rounds" / "round_001.json").read_bytes() == first
    assert not h.partial_dir(1).exists()
    sib = h.get(1, 1)
    assert (sib["sibling"], sib["siblings"], sib["code"], sib["status"]) == (1, 2, C.PROBING,
                                                                             "ok")
    # both proposals were prompted with the same history
    p0, p1 = h.get(1)["prompt"][1]["content"], sib["prompt"][1]["content"]
    assert p0.replace("Proposal 1 of 2", "X") == p1.replace("Proposal 2 of 2", "X")


def test_budget_is_checked_before_each_request_and_resume_never_asks_twice(tmp_path, data_dir):
    """Both proposals of round 1 go out under the budget; once their replies pass it, no request
    of round 2 is sent. A resume with more budget asks round 2 only; a tampered sibling record is
    recomputed from its code, without asking."""
    out = tmp_path / "b"
    script = {(r, k): [{"reply": C.reply(C.GOOD if k == 1 else C.PROBING)}]
              for r in (1, 2) for k in (1, 2)}
    with FakeOpenAI(script) as srv:
        summary = run_discovery(_cfg(out, data_dir, srv.base_url, 2, max_tokens_total=10,
                                     pricing=Pricing(3.0, 15.0)), log=lambda m: None)
        assert sorted(srv.count.items()) == [((1, 1), 1), ((1, 2), 1)]
    assert "token budget reached" in summary["stop_reason"]
    assert summary["rounds_done"] == [1, 1] and summary["spent_tokens"] > 10
    h = History(out)
    path = h.round_path(1, 1)
    rec = json.loads(path.read_text())
    rec["metrics"]["best"]["accuracy"] = 100.0  # tampering: the signature no longer verifies
    path.write_text(json.dumps(rec))
    with FakeOpenAI(script) as srv:
        with pytest.raises(ValueError, match="different \\['candidates_per_round'\\]"):
            run_discovery(_cfg(out, data_dir, srv.base_url, 2, k=3, resume=True),
                          log=lambda m: None)
        summary = run_discovery(_cfg(out, data_dir, srv.base_url, 2, resume=True),
                                log=lambda m: None)
        assert sorted(srv.count.items()) == [((2, 1), 1), ((2, 2), 1)]
    assert summary["rounds_done"] == [1, 1, 2, 2] and summary["stop_reason"] is None
    run_id = json.loads((out / "config.json").read_text())["run_id"]
    cfg = _cfg(out, data_dir, "http://127.0.0.1:9/v1", 2, resume=True)
    h = History(out, key=run_key(run_id, create=False),
                context=run_context(cfg, load_search_stores(cfg)))
    h.load_replacements()
    assert h.get(1, 1)["recomputed"] and h.get(1, 1)["metrics"]["best"]["accuracy"] < 100.0
