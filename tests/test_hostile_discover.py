"""No LLM reply can end a run (issue 21, "Done when"): a scripted ``discover`` whose replies are
20 hostile candidates (malformed frames, absurd schedules, timer-dodging CPU burners, note and
exception floods, answers of wrong types and sizes, a candidate that breaks only in final
scoring) is killed with SIGKILL in the middle of one round's evaluation, leaves nothing running,
then resumes, finishes and writes its report; every round is recorded, none twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.synthesis.history import History
from tests.fake_openai_server import FakeOpenAI
from tests.proc_helpers import cli, kill_and_check
from tests.redteam_candidates import EPISODES_THEN_BREAK, HOSTILE, fill
from tts_gym.testing import tiny_questions, write_store_json

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

QUESTIONS = 3
ROUNDS = 20
KILLED_ROUND = 15  # burn_without_timer: seconds of CPU before its turn check stops it


def _replies() -> list[tuple[str, str]]:
    """20 hostile candidates, the last one well-behaved on the search sweep (units of
    ``QUESTIONS`` episodes) and broken in final scoring (units over more stores)."""
    picked = [h for h in HOSTILE if h[0] != "more_episodes_then_break"][: ROUNDS - 1]
    return [*picked, ("breaks_in_final_scoring", fill(EPISODES_THEN_BREAK, EPISODES=QUESTIONS))]


def _reply(source: str) -> str:
    return f"A candidate.\n\n```python\n{source}```\n"


def _argv(out: Path, data: Path, url: str, *extra: str) -> list[str]:
    return cli("discover", "--rounds", str(ROUNDS), "--base-url", url, "--model-name", "fake",
               "--out", str(out), "--data-dir", str(data), "--models", "m-a",
               "--heldout-benchmarks", "aime25", "--betas", "0.0", "1.0", "--seeds", "2",
               "--final-seeds", "2", "--finalists", "2", "--finalist-seeds", "2",
               "--heldout-curve-seeds", "2", "--candidate-workers", "1",
               "--candidate-timeout", "60", "--episode-watchdog", "2", "--memory-mb", "400",
               "--backoff", "0.01", "--request-timeout", "10", *extra)


def test_twenty_hostile_replies_a_kill_9_and_a_resume(tmp_path):
    data = tmp_path / "data"
    write_store_json(data / "m-a" / "aime24.json",
                     tiny_questions(5, questions=QUESTIONS, branches=12, max_probes=6))
    write_store_json(data / "m-a" / "aime25.json",
                     tiny_questions(6, questions=QUESTIONS, branches=12, max_probes=6))
    out = tmp_path / "run"
    replies = _replies()
    assert len(replies) == ROUNDS
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OPENAI_API_KEY": "sk-test"}
    script = {r + 1: [{"reply": _reply(src)}] for r, (_n, src) in enumerate(replies)}
    with FakeOpenAI(script) as srv:
        report = kill_and_check(_argv(out, data, srv.base_url), env=env,
                                marker=f"round {KILLED_ROUND}: evaluating", delay_s=0.3,
                                timeout_s=600)
        assert report.reached, report.stderr[-2000:]
        assert report.left == {}, f"left running after kill -9: {report.left}"
        done = subprocess.run(_argv(out, data, srv.base_url, "--resume"), env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert all(srv.count[r] == 1 for r in range(1, ROUNDS + 1)), srv.count  # none twice
    h = History(out)
    recs = {e["round"]: e for e in h.entries() if e.get("kind") == "candidate"}
    assert sorted(recs) == list(range(1, ROUNDS + 1))
    for r, (name, _src) in enumerate(replies, start=1):
        rec = recs[r]
        assert rec["status"] in ("ok", "failed", "rejected"), (name, rec["status"])
        if rec["status"] != "ok":  # one sentence, never a traceback of the trusted side
            assert rec["failure_kind"] and rec["reason"], name
            assert "Traceback (most recent call last)" not in rec["reason"].split("\n")[0], name
    # the round killed mid-evaluation is recorded as failed, not run into the same end again
    assert (recs[KILLED_ROUND]["status"], recs[KILLED_ROUND]["failure_kind"]) == (
        "failed", "interrupted")
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "report.md").is_file() and summary["rounds_done"] == list(range(1, ROUNDS + 1))
