"""The Ray executor on a local Ray instance (127.0.0.1): every number equals the local pool's.

Compared field by field under both executors: ``tts-gym table`` (a subset) and ``tts-gym sweep``
on the real stores, ``evaluate``'s seed chunks (handle and batch paths, traces), a sandboxed
``eval file:``, and a 2-round scripted ``discover --candidates-per-round 2`` (scripted
OpenAI-compatible server on 127.0.0.1). Faults: a Ray worker killed in the middle of a task
(seed chunk, sandboxed unit) is retried and the numbers are unchanged; a candidate's own failure
comes back as its result, the same as locally. Ctrl-C stops the command's work and its Ray
instance. No Ray process outlives the module.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests import synthesis_candidates as C
from tests.conftest import requires_data
from tests.fake_openai_server import FakeOpenAI
from tests.ray_support import (
    interrupt_when_running,
    kill_when_running,
    ray_processes,
    snapshot,
    strip,
    wait_gone,
)
from tts_gym.cli import main
from tts_gym.controller import make_controller
from tts_gym.evaluation import evaluate, protocol
from tts_gym.executor import using
from tts_gym.reporting.sweep import SWEEP_GRIDS
from tts_gym.sandbox.evaluate import evaluate_source, unit_specs
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.units import run_units
from tts_gym.testing import tiny_questions, tiny_store, write_store_json

ray = pytest.importorskip("ray", reason="the Ray tests need the ray extra")

from tts_gym.cli.executor_options import warm_worker  # noqa: E402
from tts_gym.executor.ray_executor import RayExecutor  # noqa: E402
from tts_gym.sandbox.zygote_client import remove_stale_workdirs  # noqa: E402

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=2.0, workers=2)


@pytest.fixture(scope="module")
def ray_ex():
    """A local Ray instance (2 CPUs, loopback) for the module; nothing of it may outlive it."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)"])
    ex = RayExecutor(num_cpus=2, object_store_mb=300, warm=warm_worker,
                     on_shutdown=remove_stale_workdirs)  # as the command line builds it
    assert ex.started and ex.slots() == 2
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    yield ex
    running = snapshot(ray_processes())
    assert any("raylet" in cmd for _t, cmd in running.values())
    ex.close()
    assert not ray.is_initialized()
    assert wait_gone(running) == []
    try:  # the guard stopped the instance's processes, not another child of this process
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raydata")
    write_store_json(root / "tiny-a" / "aime24.json", tiny_questions(1, questions=4, branches=12))
    write_store_json(root / "tiny-b" / "aime24.json", tiny_questions(2, questions=4, branches=12))
    write_store_json(root / "tiny-a" / "aime25.json", tiny_questions(3, questions=3, branches=12))
    return root


def _rows(path: Path) -> list[dict]:
    return strip(json.loads(path.read_text())["rows"])


# --- Ray missing, bad options -------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["table"], ["sweep"], ["plot", "--out", "x"],
    ["eval", "sc", "--model", "m", "--benchmark", "b"],
    ["discover", "--rounds", "1", "--model-name", "m", "--out", "x"],
])
def test_ray_missing_is_one_sentence_before_any_work(command, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.chdir(tmp_path)
    rc = main([*command, "--executor", "ray", "--data-dir", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and 'pip install "tts-gym[ray]"' in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written, no store looked for


def test_ray_address_needs_the_ray_executor(capsys):
    assert main(["table", "--ray-address", "auto"]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err


def test_unreachable_cluster_is_one_sentence(capsys):
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["table", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in err
    assert not ray.is_initialized()


# --- table, sweep: the CLI under both executors --------------------------------------------------
@requires_data
def test_table_subset_identical(ray_ex, tmp_path, capsys):
    args = ["table", "--models", "Qwen3-8B", "Qwen3-0.6B", "--benchmarks", "aime24", "hmmt25",
            "--seeds", "100", "--no-progress"]
    assert main([*args, "--json", str(tmp_path / "local.json")]) == 0
    local_md = capsys.readouterr().out
    assert main([*args, "--json", str(tmp_path / "ray.json"), "--executor", "ray"]) == 0
    ray_md = capsys.readouterr().out
    assert ray.is_initialized()  # the command used this process's connection and left it open
    local, remote = _rows(tmp_path / "local.json"), _rows(tmp_path / "ray.json")
    assert len(local) == 2 * 6 * 2 + 2 * 6 and remote == local
    assert ray_md == local_md


@requires_data
def test_sweep_identical(ray_ex, tmp_path, capsys):
    args = ["sweep", "--models", "Qwen3-4B", "--benchmarks", "aime25", "--seeds", "100",
            "--no-progress"]
    assert main([*args, "--json", str(tmp_path / "local.json"), "--workers", "2"]) == 0
    assert main([*args, "--json", str(tmp_path / "ray.json"), "--executor", "ray"]) == 0
    capsys.readouterr()
    local, remote = _rows(tmp_path / "local.json"), _rows(tmp_path / "ray.json")
    assert len(local) == sum(len(values) for _k, values, _f in SWEEP_GRIDS.values())  # 32
    assert remote == local


# --- evaluate's seed chunks ----------------------------------------------------------------------
def _same_result(a, b) -> None:
    assert (a.accuracy, a.avg_tokens, a.seeds, a.path) == (b.accuracy, b.avg_tokens, b.seeds,
                                                          b.path)
    np.testing.assert_array_equal(a.correct, b.correct)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert a.answers == b.answers and a.traces == b.traces
    if a.unrevealed is None or b.unrevealed is None:
        assert a.unrevealed is b.unrevealed
    else:
        np.testing.assert_array_equal(a.unrevealed, b.unrevealed)


def test_evaluate_seed_chunks_identical(ray_ex, monkeypatch):
    monkeypatch.setattr(protocol, "BATCH_SPREAD_EPISODES", 100)  # spread the batch path too
    parallel = protocol._run_parallel
    calls = []
    monkeypatch.setattr(protocol, "_run_parallel",
                        lambda *a, **k: calls.append(a[6].name) or parallel(*a, **k))
    store = tiny_store(5, questions=10, branches=16)
    seeds = list(range(3, 40))
    for name, params, kw in [("asc", {"max_samples": 16}, {"path": "handle", "traces": True}),
                             ("cmc", {"beta": 0.6}, {}), ("sc", {"n": 8}, {"path": "handle"})]:
        ctrl = make_controller(name, params)
        inproc = evaluate(ctrl, store, seeds, **kw)
        pooled = evaluate(ctrl, store, seeds, workers=2, **kw)
        distributed = evaluate(ctrl, store, seeds, executor=ray_ex, **kw)
        with using(ray_ex):
            current = evaluate(ctrl, store, seeds, **kw)
        for got in (pooled, distributed, current):
            _same_result(inproc, got)
    # pooled: asc and sc (handle path; cmc's batch path runs here); distributed: all three twice
    assert sorted(calls) == ["local"] * 2 + ["ray"] * 6


# --- the sandbox under Ray -----------------------------------------------------------------------
def test_sandboxed_eval_file_identical(ray_ex, tiny_dir, tmp_path, capsys):
    path = tmp_path / "probing.py"
    path.write_text(C.PROBING)
    args = ["eval", f"file:{path}", "--model", "tiny-a", "--benchmark", "aime24", "--data-dir",
            str(tiny_dir), "--param", "beta=0.7", "--seeds", "12", "--json", "--detail",
            "--traces", str(tmp_path / "traces.json")]
    assert main([*args, "--workers", "2"]) == 0
    local = json.loads(capsys.readouterr().out)
    local_traces = json.loads((tmp_path / "traces.json").read_text())
    assert main([*args, "--executor", "ray"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert strip(remote) == strip(local) and local["sandboxed"]
    assert json.loads((tmp_path / "traces.json").read_text()) == local_traces


def test_candidate_failure_is_its_result_not_retried(ray_ex):
    """A candidate that stalls comes back as its unit's error (the worker survives); Ray never
    runs it again, and the error names the same seed, store and question as locally."""
    store = tiny_store(4, questions=3, branches=8)
    limits = SandboxLimits(timeout_s=30.0, memory_mb=400, watchdog_s=1.0, workers=1)
    specs = unit_specs(C.INFINITE_LOOP, "loop.py", {"beta": 0.5}, [store.name], [0, 1])
    local = run_units(specs, {store.name: store}, limits, stop_on_error=False)
    start = time.monotonic()
    remote = run_units(specs, {store.name: store}, limits, stop_on_error=False, executor=ray_ex)
    assert time.monotonic() - start < 4 * 30.0
    for a, b in zip(local, remote, strict=True):
        assert a.status == b.status == "error" and a.error["kind"] == "watchdog"
        assert {k: a.error[k] for k in ("kind", "store", "seed", "question")} == {
            k: b.error[k] for k in ("kind", "store", "seed", "question")}


# --- a worker lost mid-task ----------------------------------------------------------------------
def _killer(name: str, after_s: float, out: list, with_children: bool = False
            ) -> threading.Thread:
    t = threading.Thread(
        target=lambda: out.append(kill_when_running(name, after_s, with_children=with_children)),
        daemon=True)
    t.start()
    return t


def test_worker_killed_mid_seed_chunk_gives_identical_numbers(ray_ex):
    store = tiny_store(7, questions=40, branches=48, max_probes=12)
    ctrl = make_controller("asc", {"max_samples": 48, "threshold": 0.99})
    seeds = list(range(48))
    reference = evaluate(ctrl, store, seeds, path="handle")
    killed: list = []
    t = _killer("tts-gym-seeds", 0.3, killed)
    got = evaluate(ctrl, store, seeds, path="handle", executor=ray_ex)
    t.join(5)
    assert killed and killed[0] is not None, "no seed chunk ran long enough to be killed"
    pid, _below = killed[0]
    assert not Path(f"/proc/{pid}").exists()
    _same_result(reference, got)


def test_worker_killed_mid_unit_gives_identical_numbers(ray_ex):
    """The killed worker was a broker: its fork server and candidate die with it, the unit is
    run again from scratch elsewhere, and the scores are those of an undisturbed run."""
    store = tiny_store(8, questions=30, branches=64, max_probes=12)
    seeds = list(range(8))
    limits = SandboxLimits(timeout_s=120.0, memory_mb=400, watchdog_s=5.0, workers=2)
    reference = evaluate_source(C.PROBING, store, seeds, params={"beta": 1.0}, limits=limits)
    killed: list = []
    t = _killer("tts-gym-unit", 0.3, killed, with_children=True)
    with using(ray_ex):
        got = evaluate_source(C.PROBING, store, seeds, params={"beta": 1.0}, limits=limits)
    t.join(5)
    assert killed and killed[0] is not None, "no unit ran long enough to be killed"
    _same_result(reference, got)
    _pid, below = killed[0]
    assert below, "the killed broker had no fork server"
    assert wait_gone(below, timeout=10) == []  # its fork server and candidate died with it


# --- discover: population rounds under both executors --------------------------------------------
SCRIPT = {
    (1, 1): [{"reply": C.reply(C.GOOD)}],
    (1, 2): [{"status": 429}, {"reply": C.reply(C.PROBING)}],
    (2, 1): [{"reply": C.reply(C.NON_MONOTONE)}],
    (2, 2): [{"reply": C.reply(C.INFINITE_LOOP)}],
}


def _discover(out: Path, tiny_dir: Path, url: str, *extra: str) -> int:
    return main(["discover", "--rounds", "2", "--candidates-per-round", "2", "--base-url", url,
                 "--model-name", "fake-model", "--out", str(out), "--data-dir", str(tiny_dir),
                 "--models", "tiny-a", "tiny-b", "--heldout-benchmarks", "aime25", "--betas",
                 "0", "0.5", "1", "--seeds", "2", "--final-seeds", "3", "--finalist-seeds", "3",
                 "--heldout-curve-seeds", "2", "--candidate-timeout",
                 "30", "--episode-watchdog", "1", "--memory-mb", "400", "--backoff", "0.01",
                 "--request-timeout", "5", "--price-in", "3", "--price-out", "15", *extra])


def _timeless(text: str) -> str:
    """A summary or report without the run's duration (wall time differs between runs)."""
    text = re.sub(r'"minutes": [0-9.]+', '"minutes": X', text)
    return re.sub(r"[0-9.]+ minutes of evaluation", "X minutes of evaluation", text)


def _history(out: Path) -> dict[str, dict]:
    return {p.name: strip(json.loads(p.read_text()))
            for p in sorted((out / "rounds").glob("round_*.json"))}


def test_discover_population_identical_under_both_executors(ray_ex, tiny_dir, tmp_path,
                                                            monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    runs = {}
    for name, extra in (("local", ["--candidate-workers", "2"]), ("ray", ["--executor", "ray"])):
        with FakeOpenAI(SCRIPT) as srv:
            assert _discover(tmp_path / name, tiny_dir, srv.base_url, *extra) == 0
        capsys.readouterr()
        calls = sorted((c["round"], c["proposal"]) for c in srv.calls if c["step"] == {})
        assert calls == [(1, 1), (1, 2), (2, 1), (2, 2)]  # one paid request per proposal
        runs[name] = tmp_path / name
    local, remote = _history(runs["local"]), _history(runs["ray"])
    assert list(local) == ["round_000.json", "round_001.json", "round_001_k1.json",
                           "round_002.json", "round_002_k1.json"]
    assert remote == local
    for name in ("summary.json", "report.md"):  # the run folder's name and duration aside
        texts = [_timeless((runs[k] / name).read_text().replace(str(runs[k]), "RUN"))
                 for k in runs]
        assert texts[0] == texts[1]
    r1 = [local["round_001.json"], local["round_001_k1.json"]]
    assert [(r["sibling"], r["siblings"], r["status"]) for r in r1] == [(0, 2, "ok"),
                                                                        (1, 2, "ok")]
    r2 = local["round_002_k1.json"]
    assert r2["status"] == "failed" and r2["failure_kind"] == "watchdog"
    # the siblings of a round were prompted with the same history
    h1 = [r["prompt"][1]["content"].split("\n", 2)[2] for r in r1]
    assert h1[0] == h1[1] and "Proposal 1 of 2" in r1[0]["prompt"][1]["content"]


# --- Ctrl-C --------------------------------------------------------------------------------------
def test_ctrl_c_stops_the_work_and_the_local_instance(tiny_dir, tmp_path):
    """SIGINT to ``tts-gym eval --executor ray`` while candidates run: exit 130, and every
    process the command started (its Ray instance, workers, fork servers, candidates) is
    gone."""
    path = tmp_path / "slow.py"
    path.write_text(C.INFINITE_LOOP)
    rc, err, started = interrupt_when_running(
        ["eval", f"file:{path}", "--model", "tiny-a", "--benchmark", "aime24", "--data-dir",
         str(tiny_dir), "--param", "beta=0.5", "--seeds", "20", "--executor", "ray"], units=1)
    assert rc == 130, err
    assert len(started) > 5  # GCS, raylet, agents, workers, fork servers, candidates
    assert wait_gone(started) == []
