"""Nothing outlives the command: ``kill -9`` of ``eval file:``, ``table``, ``sweep`` and
``discover`` at named points (and under ``--executor ray``, and at random points from a recorded
seed) leaves no process of it running: pool workers, fork servers, candidates, a local Ray
instance.

Each case runs the command under the subreaper supervisor of :mod:`tests.proc_helpers`, which
sees every process the command started, orphans included, and nothing else on the machine.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tests.proc_helpers import UID_BASE, KillReport, cli, kill_and_check
from tts_gym.executor.lifetime import descendants, die_with_parent
from tts_gym.sandbox.child import isolation
from tts_gym.testing import tiny_questions, write_store_json

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

LOOP = C.INFINITE_LOOP  # a candidate that computes until the watchdog (10 s) stops it
RANDOM_SEED = 20261207
"""Seed of the random kill points (recorded, so a failure is replayed exactly)."""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Generated stores under the published names (table and sweep read those), big enough
    that a 2-worker table or sweep runs for a few seconds."""
    root = tmp_path_factory.mktemp("lifetime")
    for i, model in enumerate(("Qwen3-8B", "Qwen3-4B")):
        for j, bench in enumerate(("aime24", "aime25")):
            write_store_json(root / model / f"{bench}.json",
                             tiny_questions(10 * i + j, questions=30, branches=64,
                                            max_probes=20))
    return root


@pytest.fixture(scope="module")
def loop_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lifetime-src") / "loop.py"
    path.write_text(LOOP)
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OPENAI_API_KEY": "sk-test"}


def _assert_clean(report: KillReport, *, at_least: int) -> None:
    """The point was reached with ``at_least`` processes of the command alive, and none of
    them (nor anything they started) was left a few seconds after the kill."""
    assert report.reached, f"the named point was not reached: {report.stderr[-1500:]}"
    assert report.code is not None, f"the command ended by itself: {report.stderr[-1500:]}"
    assert len(report.seen) >= at_least, report.seen
    assert report.left == {}, f"left running after kill -9: {report.left}"


def _eval(data_dir: Path, loop_file: Path, workers: int, *extra: str) -> list[str]:
    return cli("eval", f"file:{loop_file}", "--model", "Qwen3-8B", "--benchmark", "aime24",
               "--data-dir", str(data_dir), "--param", "beta=0.5", "--seeds", "4",
               "--workers", str(workers), *extra)


def _cells(command: str, data_dir: Path) -> list[str]:
    return cli(command, "--models", "Qwen3-8B", "Qwen3-4B", "--benchmarks", "aime24", "aime25",
               "--data-dir", str(data_dir), "--seeds", "100", "--workers", "2")


# --- the helper itself ------------------------------------------------------------------------
def test_the_supervisor_finds_an_orphan_and_its_uid_range_is_the_sandboxs():
    """A command that leaves a detached grandchild behind (double fork, new session) is
    reported: the orphan is re-parented to the subreaper, not to init."""
    assert UID_BASE == isolation.UID_BASE
    argv = [sys.executable, "-c",
            "import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
            " start_new_session=True)\n"
            "print('started', file=sys.stderr, flush=True)\ntime.sleep(60)\n"]
    report = kill_and_check(argv, marker="started", grace_s=1.0, timeout_s=30)
    assert report.reached and report.code == -signal.SIGKILL
    assert len(report.left) == 1 and "time.sleep(60)" in next(iter(report.left.values()))


def test_die_with_parent_ends_a_process_whose_parent_is_already_gone():
    """The race of the parent dying before ``prctl``: the child sees a different parent and
    ends itself instead of running on (re-parented to init)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        die_with_parent(os.getpid())  # "my parent is me": as if re-parented meanwhile
        os._exit(0)  # not reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_descendants_reads_the_process_tree_below_a_pid():
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                             "subprocess.Popen([sys.executable, '-c', 'import time; "
                             "time.sleep(30)']); time.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        while len(descendants(proc.pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        below = descendants(proc.pid)
        assert len(below) == 1 and proc.pid in descendants(os.getpid())
    finally:
        for p in [*descendants(proc.pid), proc.pid]:
            os.kill(p, signal.SIGKILL)
        proc.wait()


# --- kill -9 at named points ------------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_of_eval_file_while_candidates_run(data_dir, loop_file, workers):
    """Point: ``workers`` candidates computing (the pool's workers, their fork servers and the
    candidates all alive)."""
    report = kill_and_check(_eval(data_dir, loop_file, workers), env=_env(),
                            candidates=workers, delay_s=0.2)
    _assert_clean(report, at_least=1 + 2 * workers + (workers > 1) * workers)


@pytest.mark.parametrize("command", ["table", "sweep"])
def test_kill_9_of_a_2_worker_table_or_sweep(data_dir, command):
    """Point: both pool workers alive and working."""
    report = kill_and_check(_cells(command, data_dir), env=_env(), children=2, delay_s=0.3)
    _assert_clean(report, at_least=3)


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_of_discover_during_round_1s_evaluation(data_dir, tmp_path, workers):
    """Point: round 1's candidate is being evaluated by ``workers`` candidate workers (the
    scripted endpoint's reply loops until the watchdog)."""
    with FakeOpenAI({1: [{"reply": C.reply(LOOP)}]}) as srv:
        argv = cli("discover", "--rounds", "2", "--base-url", srv.base_url, "--model-name",
                   "fake-model", "--out", str(tmp_path / "run"), "--data-dir", str(data_dir),
                   "--models", "Qwen3-8B", "--heldout-benchmarks", "aime25", "--betas", "0.5",
                   "--seeds", "2", "--candidate-workers", str(workers), "--candidate-timeout",
                   "60",
                   "--episode-watchdog", "30", "--backoff", "0.01", "--request-timeout", "5")
        report = kill_and_check(argv, env=_env(), marker="round 1: evaluating",
                                candidates=workers, delay_s=0.2)
    _assert_clean(report, at_least=1 + 2 * workers + (workers > 1) * workers)


@pytest.mark.slow
def test_kill_9_of_eval_file_under_a_local_ray_instance(data_dir, loop_file):
    """Point: a candidate computing in a Ray worker. The GCS, raylet, Ray's agents, workers,
    fork servers and candidates are all gone within the grace period."""
    pytest.importorskip("ray", reason="the ray extra")
    report = kill_and_check(_eval(data_dir, loop_file, 2, "--executor", "ray"), env=_env(),
                            candidates=1, delay_s=0.2, timeout_s=240, grace_s=15)
    _assert_clean(report, at_least=8)
    assert any("raylet" in cmd for cmd in report.seen.values())


@pytest.mark.slow
@pytest.mark.parametrize("case", range(3))
def test_kill_9_at_random_points(data_dir, loop_file, case):
    """A command and a delay drawn from :data:`RANDOM_SEED`: killed wherever it is then
    (importing, loading stores, forking workers, mid-unit, writing results)."""
    rng = random.Random(RANDOM_SEED + case)
    command = rng.choice(["eval1", "eval2", "table", "sweep"])
    delay = rng.uniform(0.5, 6.0)
    argv = (_eval(data_dir, loop_file, int(command[-1])) if command.startswith("eval")
            else _cells(command, data_dir))
    report = kill_and_check(argv, env=_env(), delay_s=delay)
    assert report.left == {}, f"{command} killed after {delay:.2f} s left: {report.left}"


def test_a_fork_server_started_by_a_thread_outlives_that_thread():
    """The parent-death signal fires when the parent *thread* exits: a fork server started from
    a short-lived thread (a discovery proposal's) must stay up for the thread that uses it
    next, and still die with the process."""
    import threading

    from tts_gym.sandbox.zygote_client import ZygoteClient

    client = ZygoteClient()
    t = threading.Thread(target=client.start)
    t.start()
    t.join()
    time.sleep(0.3)  # a signal sent at the thread's exit would have landed by now
    try:
        assert client.running(), "the fork server died with the thread that started it"
        child = client.spawn({"memory_mb": 400, "cpu_s": 10})
        assert client.reap(child) is not None
    finally:
        client.close()
