"""``tts-gym collect`` against the fake vLLM server: the collected store equals the store computed
directly from the toy model's known trajectories, whatever the concurrency, the servers, the
token mode, the faults, or a ``kill -9`` in the middle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.collect_helpers import (
    MODEL,
    PROBLEMS,
    cli_args,
    expected_store,
    read_store,
    store_path,
    write_problems,
)
from tests.fake_vllm_server import FakeVLLM, Fault, ToyModel
from tts_gym.cli import main
from tts_gym.store import load_store_file

ROOT = Path(__file__).resolve().parents[1]
TOY = ToyModel(interval_hint=16)


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    return write_problems(tmp_path / "toy.jsonl")


def work(srv: FakeVLLM) -> int:
    """Generations and probes served (the two 2-token start-up checks per run left out)."""
    return sum(c.body.get("max_tokens") != 2 for c in srv.served("gen") + srv.served("probe"))


def run(problems: Path, urls: list[str], out: Path, **over) -> int:
    return main(cli_args(problems, urls, out, **over))


def meta_of(out: Path) -> dict:
    return json.loads((out / "Toy-1B" / "toy.meta.json").read_text())


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ": error: " in ln]
    assert len(errors) == 1, errors
    return errors[0]


# --- equality with the reference ----------------------------------------------------------------


def test_store_equals_reference_for_any_concurrency_and_two_servers(
    problems: Path, tmp_path: Path
) -> None:
    want = expected_store(TOY)
    stores = []
    with FakeVLLM(toy=TOY) as a, FakeVLLM(toy=TOY) as b:
        for name, urls, in_flight in (("one", [a.base_url], 1), ("many", [a.base_url], 8),
                                      ("two", [a.base_url, b.base_url], 3)):
            out = tmp_path / name
            assert run(problems, urls, out, max_in_flight=in_flight) == 0
            assert read_store(out) == want
            stores.append(store_path(out).read_bytes())
            load_store_file(store_path(out), use_cache=False)  # tts-gym's own validation
        assert len(b.served("probe")) > 0 and len(b.served("gen")) > 0  # both servers worked
    assert stores[0] == stores[1] == stores[2]
    meta = meta_of(tmp_path / "two")
    branches = [b for q in want for b in q["each_branch"]]
    assert meta["counts"]["generated_tokens"] == sum(b[1] for b in branches)
    assert meta["counts"]["truncated_branches"] > 0 and meta["counts"]["final_by_probe"] > 0
    # one request per probe position, plus one for each final answer found by a probe
    positions = sum(len(b[0]) - 1 for b in branches)
    assert meta["counts"]["probes"] == positions + meta["counts"]["final_by_probe"]
    assert meta["counts"]["failed_attempts"] == 0 and meta["settings"]["token_mode"] == "ids"
    assert not (tmp_path / "two" / "Toy-1B" / ".toy.collect").exists()  # work folder removed


def test_other_token_id_sources_and_modes(problems: Path, tmp_path: Path) -> None:
    want = expected_store(TOY)
    # older vLLM: ids only through logprobs "token_id:N"
    with FakeVLLM(toy=TOY, return_token_ids=False) as srv:
        assert run(problems, [srv.base_url], tmp_path / "lp") == 0
    assert read_store(tmp_path / "lp") == want
    assert meta_of(tmp_path / "lp")["token_ids_via"] == "vllm-logprob-ids"
    # no token-id prompts: auto refuses (never silently inexact); text must be asked for, and
    # then the cuts are at the logprob text offsets (exact for this toy), measured and recorded
    with FakeVLLM(toy=TOY, token_prompts=False) as srv:
        assert run(problems, [srv.base_url], tmp_path / "auto") == 2
        assert not (tmp_path / "auto").exists()
        assert run(problems, [srv.base_url], tmp_path / "text", token_mode="text") == 0
    assert read_store(tmp_path / "text") == want
    meta = meta_of(tmp_path / "text")
    assert meta["settings"]["token_mode"] == "text"
    assert meta["token_exactness"]["exact"] is False
    assert meta["token_exactness"]["checked"] == meta["counts"]["probes"]
    # no returned ids: the generated text is re-tokenised (inexact, asked for, measured)
    with FakeVLLM(toy=TOY, return_token_ids=False, logprob_ids=False) as srv:
        assert run(problems, [srv.base_url], tmp_path / "tok0") == 2
        assert run(problems, [srv.base_url], tmp_path / "tok", token_mode="tokenize") == 0
    meta = meta_of(tmp_path / "tok")
    assert meta["settings"]["token_mode"] == "tokenize"
    branches = len(PROBLEMS) * 6
    assert meta["token_exactness"]["checked"] == branches
    load_store_file(store_path(tmp_path / "tok"), use_cache=False)
    # asking for a mode the server cannot do is one sentence
    with FakeVLLM(toy=TOY, token_prompts=False) as srv:
        assert run(problems, [srv.base_url], tmp_path / "no", token_mode="ids") == 2


# --- faults -------------------------------------------------------------------------------------

TRANSIENT = [
    Fault("429", "gen", nth=4), Fault("429", "probe", nth=5), Fault("500", "probe", nth=3),
    Fault("500", "gen", nth=1), Fault("stall", "probe", nth=4, stall_s=1.5),
    Fault("drop", "gen", nth=3), Fault("drop", "probe", nth=7), Fault("malformed", "probe", nth=2),
    Fault("malformed", "gen", nth=5), Fault("short", "gen", nth=3), Fault("short", "probe", nth=6),
    Fault("500", "tokenize", nth=3), Fault("drop", "models", nth=1),
]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """Two of the toy problems (the fault tests run with 3 branches each)."""
    return write_problems(tmp_path / "toy.jsonl", PROBLEMS[:2])


@pytest.mark.parametrize("fault", TRANSIENT, ids=lambda f: f"{f.what}-{f.kind}")
def test_each_fault_is_survived(small: Path, tmp_path: Path, fault: Fault) -> None:
    with FakeVLLM(toy=TOY, faults=[fault]) as srv:
        assert run(small, [srv.base_url], tmp_path / "o", timeout=0.6, max_in_flight=4,
                   branches=3) == 0
        assert any(c.fault == fault.what for c in srv.calls)
    assert read_store(tmp_path / "o") == expected_store(TOY, PROBLEMS[:2], branches=3)
    if fault.kind == "probe" or fault.kind == "gen" and fault.nth > 3:  # (3 start-up checks)
        assert meta_of(tmp_path / "o")["counts"]["failed_attempts"] >= 1


PERSISTENT = [
    (Fault("500", "probe", nth=4, times=-1), "HTTP 500"),
    (Fault("429", "gen", nth=3, times=-1), "HTTP 429"),
    (Fault("stall", "probe", nth=2, times=-1, stall_s=1.0), "within 0.3 s"),
    (Fault("drop", "probe", nth=2, times=-1), "broke mid-reply"),
    (Fault("malformed", "gen", nth=3, times=-1), "not JSON"),
    (Fault("short", "probe", nth=2, times=-1), "fewer tokens than asked"),
]


@pytest.mark.parametrize(("fault", "needle"), PERSISTENT, ids=lambda x: getattr(x, "what", ""))
def test_a_fault_that_persists_is_one_sentence_and_a_rerun_finishes(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: Fault, needle: str
) -> None:
    out = tmp_path / "o"
    with FakeVLLM(toy=TOY, faults=[fault]) as srv:
        assert run(small, [srv.base_url], out, timeout=0.3, retries=2, branches=3) == 2
    line = error_line(capsys)
    assert "Giving up on" in line and needle in line and "rerun the same command" in line
    assert not store_path(out).exists() and (out / "Toy-1B" / ".toy.collect").is_dir()
    with FakeVLLM(toy=TOY) as srv:
        assert run(small, [srv.base_url], out, branches=3) == 0
    assert read_store(out) == expected_store(TOY, PROBLEMS[:2], branches=3)


def test_retry_after_is_honoured(problems: Path, tmp_path: Path) -> None:
    with FakeVLLM(toy=TOY, faults=[Fault("429", "gen", nth=1, retry_after="0.4")]) as srv:
        assert run(problems, [srv.base_url], tmp_path / "o", max_in_flight=1) == 0
        gens = [c for c in srv.calls if c.kind == "gen"]
    assert gens[0].fault == "429" and gens[1].at - gens[0].at >= 0.4
    assert read_store(tmp_path / "o") == expected_store(TOY)


def test_a_dead_server_among_two_does_not_stop_the_collection(problems: Path, tmp_path: Path
                                                             ) -> None:
    # the second server passes its start-up checks (two small completions), then fails for good
    dead = [Fault("500", "gen", nth=3, times=-1), Fault("500", "probe", nth=1, times=-1)]
    with FakeVLLM(toy=TOY) as good, FakeVLLM(toy=TOY, faults=dead) as bad:
        assert run(problems, [good.base_url, bad.base_url], tmp_path / "o", retries=6) == 0
        assert work(bad) == 0
        assert sum(c.fault == "500" for c in bad.calls) >= 1
    assert read_store(tmp_path / "o") == expected_store(TOY)


# --- kill -9, resume, changed arguments, budget -------------------------------------------------


def _journal_lines(out: Path) -> int:
    path = out / "Toy-1B" / ".toy.collect" / "journal.jsonl"
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def test_kill_9_then_resume_gives_the_identical_store(problems: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    journaled = []
    with FakeVLLM(toy=TOY, delay_s=0.02) as srv:
        argv = [sys.executable, "-m", "tts_gym"] + cli_args(problems, [srv.base_url], out,
                                                            max_in_flight=2)
        for stop_at in (15, 60, 110):
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while _journal_lines(out) < stop_at and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            journaled.append(_journal_lines(out))
        assert not store_path(out).exists()
        # a resume with other settings is refused, naming the difference
        assert run(problems, [srv.base_url], out, temperature=0.6, branches=5) == 2
        line = error_line(capsys)
        assert "--branches: saved 6, now 5" in line and "--temperature: saved 0.7, now 0.6" in line
        assert run(problems, [srv.base_url], out) == 0
        served = work(srv)
    assert read_store(out) == expected_store(TOY)
    # finished requests were not asked again: only those in flight at each kill (<= 2 each)
    with FakeVLLM(toy=TOY) as fresh:
        assert run(problems, [fresh.base_url], tmp_path / "ref") == 0
        needed = work(fresh)
    assert store_path(out).read_bytes() == store_path(tmp_path / "ref").read_bytes()
    assert needed <= served <= needed + 2 * len(journaled)
    assert journaled[0] < journaled[1] < journaled[2]


def test_token_budget_stops_resumably(problems: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    with FakeVLLM(toy=TOY) as srv:
        assert run(problems, [srv.base_url], out, max_tokens_total=400, max_in_flight=1) == 3
        err = capsys.readouterr().err
        assert "token budget is reached" in err and "--max-tokens-total" in err
        assert not store_path(out).exists()
        assert run(problems, [srv.base_url], out) == 0
        gens = [c for c in srv.served("gen") if c.body["max_tokens"] != 2]
    assert read_store(out) == expected_store(TOY)
    assert len(gens) == 6 * 4  # every branch sampled exactly once over both runs


# --- refusals -----------------------------------------------------------------------------------


def test_refusals_name_the_fix(problems: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from tts_gym.testing import tiny_questions, write_store_json

    out = tmp_path / "o"
    with FakeVLLM(toy=TOY, max_model_len=150) as srv:
        assert run(problems, [srv.base_url], out, max_tokens=140) == 2
        assert "the server's context is 150 tokens" in error_line(capsys)
    with FakeVLLM(toy=TOY) as srv:
        argv = cli_args(problems, [srv.base_url], out)
        argv[argv.index(MODEL)] = "toy/Other"
        assert main(argv) == 2
        assert "serves 'toy/Toy-1B', not 'toy/Other'" in error_line(capsys)
        write_store_json(store_path(out), tiny_questions())
        assert run(problems, [srv.base_url], out) == 2
        assert "was not written by tts-gym collect" in error_line(capsys)
        store_path(out).unlink()
        assert run(problems, [srv.base_url], out) == 0
        calls = len(srv.calls)
        assert run(problems, [srv.base_url], out) == 0  # same settings: nothing to do
        assert len(srv.calls) == calls and "already collected" in capsys.readouterr().out
        assert run(problems, [srv.base_url], out, probe_max_tokens=14) == 2
        line = error_line(capsys)
        assert "--probe-max-tokens: saved 12, now 14" in line and "--overwrite" in line
        assert run(problems, [srv.base_url], out, probe_max_tokens=14, overwrite=True) == 0
    assert meta_of(out)["settings"]["probe_max_tokens"] == 14
