"""No answer string of a search store reaches the LLM (issue 20, "Done when", gold).

A scripted 3-round ``discover`` run (the real openai client against
tests/fake_openai_server.py) on generated stores whose every answer label is a distinctive
random string (``ans-…-<12 hex>``), so a plain search of a text finds any leak. The candidates
try every way a candidate's own text could carry answers into the history and the next prompt:

1. round 1 notes every answer it reveals (as values, inside text, as a number-free key, as
   the event name) plus answers of earlier questions kept in module state, and returns its
   answers normally (it runs; its traces are shown);
2. round 2 raises an exception whose text holds an answer it just revealed;
3. round 3 keeps answers in module state and raises them in a later episode (answers of
   other questions).

Then no label, gold or not, and no label's random part appears in any request body the
server received, in any text file of the run folder (prompts, round records with their
``prompt``, ``trace_samples`` and ``reason``, the summary, the report, the chosen controller),
nor in the log.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agents.synthesis.history import History
from agents.synthesis.llm import LLMConfig
from agents.synthesis.loop import DiscoveryConfig, run_discovery
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.testing import distinct_label_questions, write_store_json

MODELS = ("m-a", "m-b")
LIMITS = SandboxLimits(timeout_s=120.0, memory_mb=400, watchdog_s=2.0)

NOTES_EVERYTHING = '''\
from collections import Counter

SEEN = []


class Controller:
    """Read branches to the end; note every answer in every way a note can carry it."""

    def __init__(self, beta):
        self.beta = min(1.0, max(0.0, float(beta)))
        self.cfg = self.schedule(self.beta)

    def schedule(self, beta):
        return {"n_max": max(2, round(2 + 6 * self.beta))}

    def solve(self, question):
        earlier = list(SEEN[-3:])
        votes = Counter()
        for _ in range(self.cfg["n_max"]):
            got = question.probe_new()
            if got is None:
                break
            answer, slot, finished = got
            while not finished:
                answer, finished = question.probe_more(slot)
                question.note("probe", answer=answer, said=f"branch {slot} says {answer}!")
            votes[answer] += 1
            SEEN.append(answer)
            question.note(answer, top=votes.most_common(1)[0][0], all=sorted(votes),
                          counts={a: c for a, c in votes.items()}, earlier=earlier,
                          text="seen: " + ", ".join(sorted(votes)) + " and " + " ".join(earlier))
        if not votes:
            return None
        top = votes.most_common(1)[0][0]
        question.note("stop", answer=top, why=f"{top} leads")
        return top
'''

RAISES_ITS_ANSWER = '''\
class Controller:
    """Reads one branch, then fails with the answer in the exception text."""

    def __init__(self, beta):
        self.beta = float(beta)

    def schedule(self, beta):
        return {"reads": 1}

    def solve(self, question):
        answer = question.full_read()
        question.note("read", answer=answer)
        raise ValueError(f"cannot decide between {answer} and {answer}x ({answer})")
'''

RAISES_STASHED = '''\
STASH = []


class Controller:
    """Keeps answers across episodes in module state and raises other episodes' answers (the
    episodes of a unit run interleaved, so the check follows the reads)."""

    def __init__(self, beta):
        self.beta = float(beta)

    def schedule(self, beta):
        return {"reads": 2}

    def solve(self, question):
        mine = []
        for _ in range(2):
            answer = question.full_read()
            if answer is not None:
                mine.append(answer)
                STASH.append(answer)
        others = [a for a in STASH if a not in mine]
        if others:
            raise RuntimeError("remembered " + "|".join(others))
        return mine[-1] if mine else None
'''


@pytest.fixture(scope="module")
def leak_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("leak-data")
    stores = {}
    for i, m in enumerate(MODELS):
        for b, seed in (("aime24", 100 + i), ("aime25", 200 + i)):
            data = distinct_label_questions(seed, questions=4, branches=12, max_probes=6)
            write_store_json(root / m / f"{b}.json", data)
            stores[f"{m}/{b}"] = data
    out = tmp_path_factory.mktemp("leak-run") / "run"
    script = {1: [{"reply": C.reply(NOTES_EVERYTHING)}],
              2: [{"reply": C.reply(RAISES_ITS_ANSWER)}],
              3: [{"reply": C.reply(RAISES_STASHED)}]}
    logs: list[str] = []
    with FakeOpenAI(script) as srv:
        cfg = DiscoveryConfig(
            out=out, rounds=3,
            llm=LLMConfig(model="fake-model", base_url=srv.base_url, timeout_s=5,
                          max_attempts=2),
            models=MODELS, heldout_benchmarks=("aime25",), data_dir=str(root),
            betas=(0.0, 0.5, 1.0), seeds=2, final_seeds=2, finalists=1, finalist_seeds=2,
            heldout_curve_seeds=2, limits=LIMITS)
        run_discovery(cfg, log=logs.append)
        bodies = [b.decode("utf-8") for b in srv.bodies]
    labels = {a for data in stores.values() for item in data
              for probes, _t, final in item["each_branch"] for a in [*probes, final]}
    labels |= {item["gold_answer"] for data in stores.values() for item in data}
    labels.discard("ERR")
    return {"out": out, "bodies": bodies, "logs": logs, "labels": labels}


def _leaks(text: str, labels: set[str]) -> list[str]:
    """Labels, or their random part, found in ``text``."""
    return sorted(a for a in labels if a in text or a.rsplit("-", 1)[-1] in text)


def test_the_run_exercised_every_path(leak_run):
    """The candidates did what they were written for (else the test below proves nothing)."""
    h = History(leak_run["out"])
    r1, r2, r3 = h.get(1), h.get(2), h.get(3)
    assert r1["status"] == "ok" and r1["trace_samples"], r1.get("reason")
    assert any("NOTE" in t["text"] and "‹" in t["text"] for t in r1["trace_samples"])
    assert r2["status"] == "failed" and "cannot decide between ‹A›" in r2["reason"]
    assert r3["status"] == "failed" and "remembered ‹answer›" in r3["reason"]
    assert re.search(r'File "round2\.py", line \d+, in solve', r2["reason"])
    assert len(leak_run["bodies"]) == 3  # one request per round
    assert "‹A›" in leak_run["bodies"][2]  # round 2's scrubbed failure reached the next prompt


def test_no_answer_label_in_any_request_body(leak_run):
    for body in leak_run["bodies"]:
        assert not _leaks(body, leak_run["labels"])


def test_no_answer_label_in_any_file_of_the_run_folder(leak_run):
    """Every text file the run writes: round records (with their prompt, trace samples,
    reason), the index, config, summary, report, the chosen controller. None of them holds data
    that may name an answer, so none is exempt; the only other files are the report's plots."""
    files = [p for p in Path(leak_run["out"]).rglob("*") if p.is_file()]
    texts = [p for p in files if p.suffix != ".png"]
    assert any(p.name.startswith("round_") for p in texts) and any(
        p.name == "summary.json" for p in texts) and any(p.suffix == ".md" for p in texts)
    for p in texts:
        assert not _leaks(p.read_bytes().decode("utf-8"), leak_run["labels"]), p
    assert not _leaks("\n".join(leak_run["logs"]), leak_run["labels"])
