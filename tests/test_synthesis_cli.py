"""`tts-gym discover` end to end from the command line, and resume after ``kill -9``.

The CLI runs as a subprocess against a scripted OpenAI-compatible server on 127.0.0.1
(:mod:`tests.fake_openai_server`) and tiny stores in a temp data dir.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.synthesis.history import History
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tts_gym.testing import tiny_questions, write_store_json

SCRIPT = {
    1: [{"status": 429}, {"reply": C.reply(C.GOOD)}],
    2: [{"reply": C.reply(C.PROBING)}],
    3: [{"reply": C.reply(C.SYNTAX_ERROR)}],
}
VOLATILE = ("seconds", "eval_seconds", "signature", "candidate_cpu_s")
CLI = [sys.executable, "-c", "import sys; from tts_gym.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clidata")
    write_store_json(root / "tiny-a" / "aime24.json", tiny_questions(1, questions=4, branches=12))
    write_store_json(root / "tiny-b" / "aime24.json", tiny_questions(2, questions=4, branches=12))
    write_store_json(root / "tiny-a" / "aime25.json", tiny_questions(3, questions=3, branches=12))
    return root


def _argv(out: Path, data_dir: Path, url: str, *extra: str) -> list[str]:
    return [
        *CLI,
        "discover",
        "--rounds",
        "3",
        "--base-url",
        url,
        "--model-name",
        "fake-model",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--models",
        "tiny-a",
        "tiny-b",
        "--heldout-benchmarks",
        "aime25",
        "--betas",
        "0",
        "0.5",
        "1",
        "--seeds",
        "2",
        "--final-seeds",
        "3",
        "--finalist-seeds",
        "3",
        "--heldout-curve-seeds",
        "2",
        "--candidate-timeout",
        "20",
        "--backoff",
        "0.01",
        "--request-timeout",
        "5",
        "--price-in",
        "3",
        "--price-out",
        "15",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "sk-test"}


@pytest.fixture(scope="module")
def full_run(data_dir, tmp_path_factory) -> Path:
    """An uninterrupted scripted 3-round run (the reference history)."""
    out = tmp_path_factory.mktemp("full") / "run"
    with FakeOpenAI(SCRIPT) as srv:
        proc = subprocess.run(
            _argv(out, data_dir, srv.base_url),
            capture_output=True,
            text=True,
            timeout=240,
            env=_env(),
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report:" in proc.stdout
    return out


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def test_three_rounds_end_to_end(full_run, data_dir):
    h = History(full_run)
    assert h.finished() == [0, 1, 2, 3]
    statuses = [(r["round"], r["status"], r.get("failure_kind")) for r in h.entries()[1:]]
    assert statuses == [(1, "ok", None), (2, "ok", None), (3, "rejected", "syntax_error")]
    index = json.loads((full_run / "index.json").read_text())
    assert [row["round"] for row in index["rounds"]] == [0, 1, 2, 3]
    report = (full_run / "report.md").read_text()
    for text in (
        "## Rounds (search split)",
        "seed sc",
        "## Selection (",
        "## Does it beat CMC?",
        "cmc (nearest tokens",
        "tiny-a/aime25",
        "## Chosen code",
        "Completed.",
    ):
        assert text in report, text
    summary = json.loads((full_run / "summary.json").read_text())
    assert summary["spent_tokens"] > 0 and summary["spent_usd"] > 0
    assert (full_run / "best" / "controller.py").read_text() in (C.GOOD, C.PROBING)


def test_eval_scores_the_chosen_candidate_file(full_run, data_dir):
    """`tts-gym eval file:...` gives the report's final numbers for the chosen beta."""
    summary = json.loads((full_run / "summary.json").read_text())
    beta = summary["chosen"]["beta"]
    assert summary["paper_rule"]["round"] in (1, 2) and summary["finalists"]
    proc = subprocess.run(
        [
            *CLI,
            "eval",
            f"file:{full_run}/best/controller.py",
            "--param",
            f"beta={beta}",
            "--model",
            "tiny-a",
            "--benchmark",
            "aime25",
            "--data-dir",
            str(data_dir),
            "--seeds",
            "3",
            "--workers",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    name = next(k for k in summary["final"] if k.startswith("round"))
    ref = summary["final"][name]["tiny-a/aime25"]
    assert got["accuracy"] == ref["accuracy"]
    assert round(got["avg_tokens"], 1) == ref["avg_tokens"]


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_history(full_run, data_dir, tmp_path):
    out = tmp_path / "run"
    hang = {**SCRIPT, 2: [{"sleep": 30, "reply": C.reply(C.PROBING)}]}
    with FakeOpenAI(hang) as srv:
        proc = subprocess.Popen(
            _argv(out, data_dir, srv.base_url, "--request-timeout", "60"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_env(),
            start_new_session=True,
        )
        prompt = History(out).partial_dir(2) / "prompt.json"
        deadline = time.monotonic() + 180
        while not (prompt.exists() and srv.count[2] >= 1) and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # mid-round 2, waiting for the LLM
        proc.wait(timeout=30)
    h = History(out)
    assert h.finished() == [0, 1] and prompt.exists()
    with FakeOpenAI(SCRIPT) as srv:
        done = subprocess.run(
            _argv(out, data_dir, srv.base_url, "--resume"),
            capture_output=True,
            text=True,
            timeout=240,
            env=_env(),
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert srv.count[1] == 0 and srv.count[2] == 1 and srv.count[3] == 1
    ref = History(full_run)
    assert h.finished() == ref.finished() == [0, 1, 2, 3]
    for r in ref.finished():
        assert _strip(h.get(r)) == _strip(ref.get(r)), f"round {r} differs"
    assert not h.partial_dir(2).exists()
