"""The sandbox's parts: isolation layers, the wire format, the broker, equivalence with the
in-process handle path, per-episode randomness and blame. The attacks are in
tests/test_sandbox_redteam.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.proc_helpers import kill_and_check
from tests.test_sandbox_redteam import candidate_processes
from tts_gym.cli import main as cli_main
from tts_gym.controller import load_file_controller
from tts_gym.evaluation import evaluate
from tts_gym.sandbox import layers, zygote_client
from tts_gym.sandbox.broker import Broker, ProtocolError, UnitSpec, run_unit
from tts_gym.sandbox.child import isolation, landlock, runtime, syscall_filter, wire
from tts_gym.sandbox.child.libc import libc
from tts_gym.sandbox.evaluate import CandidateFailed, evaluate_source
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.zygote_client import SandboxUnavailable, ZygoteClient
from tts_gym.testing import tiny_store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=1.0, stall_s=4.0)


@pytest.fixture(autouse=True)
def _no_process_outlives():
    yield
    assert candidate_processes() == []


def in_child(fn) -> tuple[int, str]:
    """Run ``fn(w)`` in a forked child, ``w`` the descriptor its result goes to; returns (exit
    code, what it wrote)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            out = fn(w)
            os.write(w, json.dumps(out).encode())
        except BaseException as exc:  # noqa: BLE001
            os.write(w, repr(exc).encode())
            code = 1
        os._exit(code)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), data.decode()


# --- the layers, one by one ----------------------------------------------------------------------
@pytest.mark.skipif(landlock.abi_version() < 1, reason="this kernel has no Landlock")
def test_landlock_denies_the_filesystem():
    def body(_w):
        libc().prctl(isolation.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        got = landlock.restrict_self(landlock.abi_version())
        out = {"got": got}
        for name, fn in (("open", lambda: open("/etc/hostname").read()),
                         ("listdir", lambda: os.listdir("/")),
                         ("create", lambda: open("/tmp/landlock-canary", "w"))):
            try:
                fn()
                out[name] = "allowed"
            except PermissionError:
                out[name] = "denied"
        return out

    code, text = in_child(body)
    out = json.loads(text)
    assert code == 0 and out["open"] == out["listdir"] == out["create"] == "denied"
    assert not os.path.exists("/tmp/landlock-canary")


def test_seccomp_allowlist_denies_processes_files_sockets_signals():
    program = syscall_filter.compile_policy()

    def body(_w):
        libc().prctl(isolation.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        r, w = os.pipe()  # made before the filter: reading and writing stay allowed
        syscall_filter.install(program)
        out = {}
        for name, fn in (("open", lambda: os.open("/etc/hostname", os.O_RDONLY)),
                         ("fork", os.fork),
                         ("socket", lambda: socket.socket()),
                         ("kill", lambda: os.kill(os.getppid(), 0)),
                         ("stat", lambda: os.stat("/")),
                         ("urandom", lambda: os.urandom(8))):
            try:
                fn()
                out[name] = "allowed"
            except OSError as exc:
                out[name] = exc.errno
        os.write(w, b"ok")
        out["pipe"] = os.read(r, 2).decode()
        return out

    code, text = in_child(body)
    out = json.loads(text)
    assert code == 0 and out["pipe"] == "ok", text
    for name in ("open", "fork", "socket", "kill", "stat", "urandom"):
        assert out[name] == 1, (name, out[name])  # EPERM


def test_every_layer_reports_and_a_failing_required_layer_refuses(monkeypatch):
    program = syscall_filter.compile_policy()

    def full(w):
        os.chdir(tempfile.mkdtemp())  # the fork server's working directory is empty too
        report = isolation.apply({"memory_mb": 256, "cpu_s": 30, "keep_fds": [w]},
                                 program, os.getppid())
        try:
            os.fork()
            report["fork_after"] = "allowed"
        except OSError:
            report["fork_after"] = "refused"
        return report

    code, text = in_child(full)
    report = json.loads(text)
    assert code == 0, text
    assert report.pop("fork_after") == "refused"
    assert [k for k in report] == [name for name, _ in isolation.LAYERS]
    for name, layer in report.items():
        assert layer["on"] or not layer["required"], (name, layer)
    if os.geteuid() == 0:
        assert report["uid"]["required"] and report["uid"]["on"]

    def broken(*_args):
        raise OSError(95, "not supported here")

    monkeypatch.setattr(landlock, "restrict_self", broken)
    if landlock.abi_version() >= 1:
        code, text = in_child(lambda w: (os.chdir(tempfile.mkdtemp()), isolation.apply(
            {"memory_mb": 256, "cpu_s": 30, "keep_fds": [w]}, program, os.getppid()))[1])
        assert code == 1 and "landlock" in text and "not supported here" in text
        # unsafe: the failure is reported, nothing is refused
        code, text = in_child(lambda w: (os.chdir(tempfile.mkdtemp()), isolation.apply(
            {"memory_mb": 256, "cpu_s": 30, "keep_fds": [w], "unsafe": True}, program,
            os.getppid())["landlock"])[1])
        assert code == 0 and json.loads(text)["on"] is False


def test_sandbox_check_and_the_preflight(monkeypatch, tmp_path, capsys):
    assert cli_main(["sandbox-check"]) == 0
    out = capsys.readouterr().out
    assert "all required layers on" in out and "seccomp" in out and "[on ] uid" in out
    missing = {"ok": False, "platform": "Linux test", "error": "isolation layer 'seccomp' "
               "failed: off (no seccomp here)", "layers": {}}
    monkeypatch.setattr(layers, "check", lambda limits=None: missing)
    with pytest.raises(SandboxUnavailable, match="seccomp.*--unsafe-no-isolation"):
        layers.require(SandboxLimits())
    assert layers.require(SandboxLimits(unsafe=True)) is missing
    f = tmp_path / "c.py"
    f.write_text("class Controller:\n    def solve(self, question):\n        return None\n")
    argv = ["eval", f"file:{f}", "--model", "tiny", "--benchmark", "aime24", "--seeds", "1",
            "--data-dir", str(tmp_path)]
    (tmp_path / "tiny").mkdir()
    from tts_gym.testing import tiny_questions, write_store_json

    write_store_json(tmp_path / "tiny" / "aime24.json", tiny_questions())
    assert cli_main(argv) == 2
    assert "seccomp" in capsys.readouterr().err


# --- the wire and the broker parse hostile input -------------------------------------------------
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_decode_batch_never_crashes(blob):
    try:
        wire.decode_batch(blob, 1000, 100)
    except wire.WireError:
        pass


@pytest.fixture(scope="module")
def broker():
    store = tiny_store(3, questions=3, branches=6)
    return Broker(UnitSpec("", "c.py", {}, ("s",), 0), {"s": store}, LIMITS)


def test_the_broker_serves_batches_through_the_entry_compiled_for_their_type(broker):
    """The broker's warm-up picks the compiled entry later calls use: it must be typed like
    the entries wire.decode_batch makes (read-only), not merely like an int32 array."""
    import array

    from numba import typeof

    from tts_gym.sandbox import kernel

    entries, _ = wire.decode_batch(wire.encode_batch(array.array("i", [0, 1, -1]), []), 10, 10)
    chosen = [sig for sig, res in kernel.serve_batch.overloads.items()
              if res.entry_point is broker._serve.entry]
    assert len(chosen) == 1
    assert chosen[0][5] == typeof(entries)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(-2, 5), st.integers(-1, 9), st.integers(-3, 70)),
                min_size=1, max_size=30), st.lists(st.text(max_size=20), max_size=3))
def test_broker_refuses_malformed_batches_cleanly(broker, entries, strings):
    import array

    flat = array.array("i", [x for e in entries for x in e])
    try:
        reply = broker.handle(wire.encode_batch(flat, strings))
    except ProtocolError:
        return
    n, rows, _pairs, _texts = wire.decode_reply(reply)
    assert n == len(entries) == len(list(rows))
    assert broker.tokens.min() >= 0


# --- equivalence ------------------------------------------------------------------------------
FUZZ = '''\
import random


class Controller:
    """Random legal and illegal primitives, driven by a stream the candidate seeds itself from
    the first answer it sees (so both paths make the same choices)."""

    def __init__(self, beta):
        self.beta = beta

    def schedule(self, beta):
        return {}

    def solve(self, question):
        got = question.probe_new()
        if got is None:
            return None
        rng = random.Random(got[0] + str(self.beta))
        slots = [got[1]]
        seen = [got[0]]
        for _ in range(rng.randint(0, 40)):
            op = rng.random()
            try:
                if op < 0.3:
                    got = question.probe_new()
                    if got is not None:
                        slots.append(got[1])
                        seen.append(got[0])
                elif op < 0.75:
                    a, _fin = question.probe_more(rng.choice(slots + [63, -1]))
                    seen.append(a)
                elif op < 0.85:
                    a = question.full_read()
                    if a is not None:
                        seen.append(a)
                else:
                    question.prune(rng.choice(slots))
            except ValueError:
                seen.append("refused")
        return rng.choice(seen + [None])
'''


def test_broker_equals_the_handle_path_and_both_loops_agree(tmp_path):
    store = tiny_store(11, questions=5, branches=9)
    path = tmp_path / "fuzz.py"
    path.write_text(FUZZ)
    for beta in (0.1, 0.7):
        ref = evaluate(load_file_controller(path, {"beta": beta}), store, 6, path="handle")
        fast = evaluate_source(FUZZ, store, 6, params={"beta": beta}, limits=LIMITS)
        slow = evaluate_source(FUZZ, store, 6, params={"beta": beta},
                               limits=SandboxLimits(timeout_s=60, python_loop=True))
        for got in (fast, slow):
            assert got.answers == ref.answers and np.array_equal(got.tokens, ref.tokens)
            assert np.array_equal(got.unrevealed, ref.unrevealed)
            assert np.array_equal(got.correct, ref.correct)


def test_published_cmc_runs_as_a_sandboxed_candidate():
    """The CMC seed file in the sandbox gives the built-in CMC's numbers, episode for episode."""
    from agents.controllers.cmc import ConfidenceMomentumController

    store = tiny_store(4, questions=4, branches=24, max_probes=12)
    src = open("agents/synthesis/seed_files/cmc.py").read()
    for beta in (0.0, 0.5, 1.0):
        ref = evaluate(ConfidenceMomentumController(beta), store, 5, path="batch")
        got = evaluate_source(src, store, 5, params={"beta": beta}, limits=LIMITS)
        assert got.answers == ref.answers and np.array_equal(got.tokens, ref.tokens)


# --- per-episode randomness and blame ------------------------------------------------------------
RANDOM = '''\
import random
import numpy as np


class Controller:
    def __init__(self, beta):
        self.beta = beta

    def schedule(self, beta):
        return {}

    def solve(self, question):
        draws = []
        for _ in range(3):
            draws.append(random.random())
            question.probe_new()
            draws.append(float(np.random.rand()))
            draws.append(int(np.random.default_rng().integers(1000)))
        question.note("draws", values=draws)
        return None
'''


def _draws(result):
    return [[next(ev["values"] for ev in tr if ev.get("event") == "draws") for tr in per]
            for per in result.traces]


def test_randomness_is_per_episode_and_reproducible():
    one = tiny_store(1, questions=4, branches=8)
    other = tiny_store(2, questions=6, branches=8)
    a = evaluate_source(RANDOM, one, 2, params={"beta": 0.5}, limits=LIMITS, traces=True)
    b = evaluate_source(RANDOM, one, 2, params={"beta": 0.5}, limits=LIMITS, traces=True)
    assert _draws(a) == _draws(b)  # reruns are identical
    d = _draws(a)
    assert d[0][0] != d[0][1] and d[0][0] != d[1][0]  # streams differ by question and seed
    # the same (seed, question) draws the same stream whatever else runs in the process
    specs = [UnitSpec(RANDOM, "r.py", {"beta": 0.5}, keys, 0, traces=True)
             for keys in (("one",), ("other", "one"))]
    client = ZygoteClient()
    try:
        alone, mixed = (run_unit(s, {"one": one, "other": other}, LIMITS, client) for s in specs)
    finally:
        client.close()

    def notes_of(res):
        return [next(ev["values"] for ev in tr if ev.get("event") == "draws")
                for tr in res.stores["one"].traces]

    assert notes_of(alone) == notes_of(mixed) == d[0]


LOOP_ON_THIRD = '''\
class Controller:
    calls = [0]

    def __init__(self, beta):
        self.beta = beta

    def schedule(self, beta):
        return {}

    def solve(self, question):
        self.calls[0] += 1
        mine = self.calls[0]
        question.full_read()
        while mine == 3:
            pass
        return question.full_read()
'''


def test_the_watchdog_blames_the_looping_episode_only():
    store = tiny_store(1, questions=5, branches=8)
    with pytest.raises(CandidateFailed) as info:
        evaluate_source(LOOP_ON_THIRD, store, 1, params={"beta": 0.5}, limits=LIMITS)
    err = info.value.error
    assert err["kind"] == "watchdog" and err["question"] == 2, err
    assert "question 2" in str(info.value) and "no primitive" in str(info.value)


@pytest.mark.parametrize(("source", "line", "words"), [
    ("class Controller:\n    def solve(self, q)\n        return None\n", 2, "SyntaxError"),
    ("x = 1\ny = undefined_name\n", 2, "NameError"),
])
def test_a_file_that_does_not_load_fails_as_load_with_its_line(source, line, words):
    store = tiny_store(1, questions=3, branches=4)
    with pytest.raises(CandidateFailed) as info:
        evaluate_source(source, store, 1, filename="broken.py", limits=LIMITS)
    err = info.value.error
    assert err["kind"] == "load" and err["line"] == line, err
    assert words in err["summary"] and "broken.py" in err["summary"], err


def test_the_broker_compiles_a_file_once_and_a_candidate_falls_back_to_its_source(capsys):
    import base64
    import marshal
    import warnings

    from tts_gym.sandbox.broker import compiled

    source = "import math\nclass Controller:\n    def solve(self, q):\n        return str(math.e)\n"
    expected = runtime.compile_candidate(source, "c.py")
    blob = compiled(source, "c.py")
    assert blob is not None and compiled(source, "c.py") is blob  # cached per command
    job = {"code": blob, "python": sys.version}
    assert runtime._code_of(job, source, "c.py") == expected
    other = base64.b64encode(marshal.dumps(compile("x = 1", "other.py", "exec"))).decode()
    for bad in ({"code": blob, "python": "another interpreter"}, {"code": "%%%", "python":
                sys.version}, {"code": other, "python": sys.version}, {}):
        assert runtime._code_of(bad, source, "c.py") == expected, bad
    assert compiled("class Controller(:\n", "c.py") is None  # the candidate reports it
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert compiled("x = 1 is 1\n", "noisy.py") is not None
    assert not seen and not capsys.readouterr().err  # the file's text never reaches stderr


MARKER = """\
import math


class Controller:
    def solve(self, question):
        seen = getattr(math, "tts_marker", None)
        math.tts_marker = "left by an earlier episode"
        question.note("marker", seen=seen)
        return question.full_read()
"""


def _idle_fork_servers() -> set[int]:
    return {c.proc.pid for c in zygote_client._IDLE.values() if c.proc is not None}


def _seen_markers(result, seed: int = 0) -> list:
    return [next(ev["seen"] for ev in tr if ev.get("event") == "marker")
            for tr in result.traces[seed]]


def test_a_warm_fork_server_is_reused_and_carries_nothing_between_commands():
    store = tiny_store(1, questions=3, branches=8)
    first = evaluate_source(MARKER, store, 1, limits=LIMITS, traces=True)
    servers = _idle_fork_servers()
    assert servers, "the in-process broker keeps its fork server for the next command"
    second = evaluate_source(MARKER, store, 1, limits=LIMITS, traces=True)
    assert _idle_fork_servers() == servers  # reused, not restarted
    # episodes of one process may share memory (different questions); a new command's
    # process starts from the fork server's state, never from an earlier candidate's
    assert _seen_markers(first) == _seen_markers(second) == [
        None, "left by an earlier episode", "left by an earlier episode"]


def test_a_dead_idle_fork_server_is_replaced():
    store = tiny_store(1, questions=2, branches=8)
    evaluate_source(MARKER, store, 1, limits=LIMITS)
    killed = _idle_fork_servers()
    for pid in killed:  # not waited for: the next spawn may find it alive, then dead
        os.kill(pid, signal.SIGKILL)
    out = evaluate_source(MARKER, store, 1, limits=LIMITS)
    assert out.answers is not None
    assert _idle_fork_servers() and not _idle_fork_servers() & killed


BURN = """\
class Controller:
    def solve(self, question):
        x = 0
        for i in range(3_000_000):
            x += i
        return question.full_read()
"""


def test_the_cpu_of_a_warm_fork_servers_candidates_is_accounted():
    store = tiny_store(1, questions=1, branches=8)
    evaluate_source(MARKER, store, 1, limits=LIMITS)  # start the fork server
    before = zygote_client.idle_cpu_seconds()
    child = evaluate_source(BURN, store, 1, limits=LIMITS)
    spent = zygote_client.idle_cpu_seconds() - before
    assert child.answers is not None
    assert spent >= 0.05, f"the candidate's CPU is not accounted ({spent:.3f} s)"


def test_pool_workers_borrow_the_parents_fork_servers_and_carry_nothing():
    """A local pool's workers adopt fork servers kept by the process that forks the pool (one
    per worker, pinned like the worker), so a second command starts none; nothing of the first
    command's candidates reaches the second's; a pool that did not end cleanly stops them; no
    working folder of a dead fork server is left."""
    store = tiny_store(1, questions=2, branches=8)
    workers = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=1.0, stall_s=4.0,
                            workers=2)
    expected = [[None, "left by an earlier episode"]] * 4
    first = evaluate_source(MARKER, store, 4, limits=workers, traces=True)
    lent = [c.proc.pid for c in zygote_client._LENDABLE]
    assert len(lent) == 2 and all(Path(f"/proc/{pid}").exists() for pid in lent)
    second = evaluate_source(MARKER, store, 4, limits=workers, traces=True)
    assert [c.proc.pid for c in zygote_client._LENDABLE] == lent  # reused, not restarted
    for result in (first, second):
        assert [_seen_markers(result, seed) for seed in range(4)] == expected
    if len(os.sched_getaffinity(0)) > 1:  # each worker pinned its borrowed fork server
        assert all(len(os.sched_getaffinity(pid)) == 1 for pid in lent)
    zygote_client.give_back(list(zygote_client._LENDABLE), clean=False)
    assert zygote_client._LENDABLE == []
    assert not any(Path(f"/proc/{pid}").exists() for pid in lent)
    left = [p for p in Path(tempfile.gettempdir()).glob(f"{zygote_client.WORKDIR_PREFIX}*-*")
            if not Path(f"/proc/{p.name[len(zygote_client.WORKDIR_PREFIX):].split('-')[0]}")
            .exists()]
    assert left == []


def test_killing_the_broker_leaves_no_candidate(tmp_path):
    """A broker killed with SIGKILL mid-unit takes its fork server and candidates with it (a
    subreaper supervisor sees them even once orphaned)."""
    script = tmp_path / "run.py"
    script.write_text(
        "from tts_gym.sandbox.evaluate import evaluate_source\n"
        "from tts_gym.sandbox.limits import SandboxLimits\n"
        "from tts_gym.testing import tiny_store\n"
        "src = 'class Controller:\\n    def solve(self, q):\\n        while True:\\n"
        "            q.probe_new() or q.full_read()\\n'\n"
        "evaluate_source(src, tiny_store(), 3, limits=SandboxLimits(max_steps=10**9))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    report = kill_and_check([sys.executable, str(script)], env=env, candidates=1, delay_s=0.1)
    assert report.reached, report.stderr
    assert len(report.seen) >= 3  # the broker, its fork server, a candidate
    assert report.left == {}


def test_runtime_module_imports_no_tts_gym():
    """The candidate-side package never imports tts_gym (it is loaded by path)."""
    import ast
    from pathlib import Path

    for path in Path(runtime.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("tts_gym"), (path, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("tts_gym") for a in node.names), path


CMC_ROWS = [("Qwen3-0.6B", 0.0), ("Qwen3-1.7B", 0.0), ("Qwen3-4B", 0.0), ("Qwen3-8B", 0.0),
            ("Qwen3-8B", 0.5)]


@pytest.mark.data
@pytest.mark.parametrize("model, beta", CMC_ROWS)
def test_published_cmc_rows_reproduce_as_a_sandboxed_candidate(model, beta):
    """The paper's CMC figures, printed digits, with CMC as a candidate file in the sandbox."""
    from tests.conftest import real_data_dir
    from tts_gym.published import published_row
    from tts_gym.store import load_store

    if real_data_dir() is None:
        pytest.skip("needs the real stores")
    row = published_row("cmc", model, beta=beta)
    src = open("agents/synthesis/seed_files/cmc.py").read()
    got = evaluate_source(src, load_store(model, "aime24"), 100, params={"beta": beta},
                          limits=SandboxLimits(workers=2))
    assert (got.accuracy, int(got.avg_tokens)) == (row.accuracy, row.avg_tokens)
    assert got.unrevealed_answers == 0
