"""The sandbox's parts: isolation layers, the wire format, the broker, equivalence with the
in-process handle path, per-episode randomness and blame. The attacks are in
tests/test_sandbox_redteam.py."""

from __future__ import annotations

import json
import os
import random
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
from tests.test_sandbox_redteam import candidate_processes, secret_questions
from tts_gym.cli import main as cli_main
from tts_gym.controller import load_file_controller
from tts_gym.evaluation import evaluate
from tts_gym.sandbox import identity, kernel, layers, zygote_client
from tts_gym.sandbox.broker import Broker, ProtocolError, UnitSpec, run_unit
from tts_gym.sandbox.child import isolation, landlock, runtime, syscall_filter, wire
from tts_gym.sandbox.child.libc import libc
from tts_gym.sandbox.evaluate import CandidateFailed, evaluate_source
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.zygote_client import SandboxUnavailable, ZygoteClient
from tts_gym.store.pack import pack_questions
from tts_gym.testing import tiny_store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=1.0, stall_s=4.0)
SEED_FILES = Path(__file__).resolve().parents[1] / "agents" / "synthesis" / "seed_files"


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
@pytest.fixture(scope="module")
def broker():
    store = tiny_store(3, questions=3, branches=6)
    return Broker(UnitSpec("", "c.py", {}, ("s",), 0), {"s": store}, LIMITS)


def test_the_broker_serves_batches_through_the_entry_compiled_for_their_type(broker):
    """The broker's warm-up picks the compiled entry later calls use: it must be typed like
    the entries the frame parser hands over (a view of its scratch array), not merely like an
    int32 array."""
    import array

    from numba import typeof

    from tts_gym.sandbox import kernel

    _code, entries, _ = broker.parse(wire.encode_batch(array.array("i", [0, 1, -1]), []))
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


def test_randomness_is_per_episode_reproducible_and_secret():
    """Each episode's streams are seeded from the unit's secret (never from the question): a
    rerun draws the same numbers, a different secret other numbers, and question ``q`` draws
    exactly what ``random.Random`` / ``RandomState`` seeded with the plan's seed of its
    position would."""
    one = tiny_store(1, questions=4, branches=8)
    a = evaluate_source(RANDOM, one, 2, params={"beta": 0.5}, limits=LIMITS, traces=True)
    b = evaluate_source(RANDOM, one, 2, params={"beta": 0.5}, limits=LIMITS, traces=True)
    assert _draws(a) == _draws(b)  # reruns are identical (the per-user key)
    assert len({x[0] for per in _draws(a) for x in per}) == 8  # streams differ by episode and seed

    def draws_with(secret: bytes) -> list:
        spec = UnitSpec(RANDOM, "r.py", {"beta": 0.5}, ("one",), 0, traces=True, secret=secret)
        client = ZygoteClient()
        try:
            res = run_unit(spec, {"one": one}, LIMITS, client)
        finally:
            client.close()
        return [next(ev["values"] for ev in tr if ev.get("event") == "draws")
                for tr in res.stores["one"].traces]

    got = draws_with(b"s" * 32)
    assert got != draws_with(b"t" * 32)
    perm, seeds = identity.episode_plan(b"s" * 32, one.n_questions)
    for q, values in enumerate(got):
        seed = int(seeds[int(np.argsort(perm)[q])])
        assert values[0] == random.Random(seed).random()
        assert values[1] == np.random.RandomState(seed % 2**32).rand()


def test_the_identity_secret_and_plan(tmp_path, monkeypatch):
    """The per-user key file is made once (mode 0600) and reused; the secret changes with the
    source, the parameters, the seed and the key; the plan is a permutation, fixed by the
    secret."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(identity, "_KEY", [])
    key = identity.user_key()
    path = identity.key_path()
    assert path.is_relative_to(tmp_path) and path.read_bytes() == key and len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setattr(identity, "_KEY", [])
    assert identity.user_key() == key  # read back, not made again
    base = ("src", {"beta": 0.5}, 0, [("a/b", "d1")], (64, "reference"))
    one = identity.unit_secret(*base)
    assert one == identity.unit_secret(*base)
    for i, other in enumerate(["src2", {"beta": 0.6}, 1, [("a/b", "d2")], (32, "reference")]):
        changed = list(base)
        changed[i] = other
        assert identity.unit_secret(*changed) != one
    assert identity.unit_secret(*base, key=b"x" * 32) != one
    perm, seeds = identity.episode_plan(one, 50)
    assert sorted(perm.tolist()) == list(range(50)) and perm.tolist() != list(range(50))
    assert np.array_equal(identity.episode_plan(one, 50)[0], perm)
    assert ((seeds >= 0) & (seeds < 2**31)).all() and len(set(seeds.tolist())) == 50


def _take_turns_twin(entries, order):
    """Plain-Python reference of kernel.take_turns: (first entry out of turn or -1, the next
    order)."""
    k, blocked = 0, []
    for j, (e, op, _arg) in enumerate(entries):
        if k >= len(order) or e != order[k]:
            return j, order
        if op == wire.OP_NOTE:
            continue
        k += 1
        if op <= wire.OP_PRUNE:
            blocked.append(e)
    return -1, order[k:] + blocked


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True),
       st.lists(st.tuples(st.integers(-1, 6), st.integers(1, 7)), max_size=12))
def test_take_turns_matches_its_python_twin(order, entries):
    rows = [(e, op, 0) for e, op in entries]
    arr = np.array(rows, np.int32).reshape(-1, 3)
    buf = np.zeros(8, np.int64)
    buf[: len(order)] = order
    n = np.array([len(order)], np.int64)
    bad = kernel.take_turns(arr, buf, n, np.zeros(8, np.int64))
    want_bad, want_order = _take_turns_twin(rows, order)
    assert bad == want_bad and buf[: n[0]].tolist() == want_order
    if bad >= 0:
        k = sum(op != wire.OP_NOTE for _e, op, _a in rows[:bad])
        want = order[k] if k < len(order) else -1
        assert kernel.turn_holder(arr, bad, buf, n) == want


LOOP_ON_TARGET = '''\
class Controller:
    def __init__(self, beta):
        self.beta = beta

    def schedule(self, beta):
        return {}

    def solve(self, question):
        first = question.full_read()
        while first.startswith("ANSSECRET-2-"):
            pass
        return question.full_read()
'''


def test_the_watchdog_blames_the_looping_episode_only():
    store = pack_questions(secret_questions(5), model="m", benchmark="b", split="search",
                           source="test", sha256="secret-5")
    limits = SandboxLimits(timeout_s=120.0, memory_mb=400, watchdog_s=1.0, stall_s=60.0)
    for seed in (0, 1):
        with pytest.raises(CandidateFailed) as info:
            evaluate_source(LOOP_ON_TARGET, store, [seed], params={"beta": 0.5}, limits=limits)
        err = info.value.error
        assert err["kind"] == "watchdog" and err["question"] == 2, err
        assert "question 2" in str(info.value) and "without calling a primitive" in str(info.value)


@pytest.mark.parametrize("name", sorted(p.name for p in SEED_FILES.glob("*.py")))
def test_seed_files_give_the_handle_paths_numbers_in_the_sandbox(name):
    """The permutation changes only what the candidate sees: every seed file's answers and
    tokens equal the in-process handle path's, question for question."""
    store = tiny_store(5, questions=6, branches=16, max_probes=8)
    path = SEED_FILES / name
    for beta in (0.2, 0.8):
        ref = evaluate(load_file_controller(path, {"beta": beta}), store, 3, path="handle")
        got = evaluate_source(path.read_text(), store, 3, params={"beta": beta}, limits=LIMITS)
        assert got.answers == ref.answers and np.array_equal(got.tokens, ref.tokens)


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
    """What each episode of a unit found, in the order the process played them (the secret
    permutation decides which question that is: the first one played found nothing)."""
    seen = [next(ev["seen"] for ev in tr if ev.get("event") == "marker")
            for tr in result.traces[seed]]
    return sorted(seen, key=lambda v: v is not None)


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
    """The candidate-side package never imports tts_gym (it is loaded by path), except the
    standard-library modules the fork server itself loads by path."""
    import ast
    from pathlib import Path

    from tts_gym.sandbox.child.zygote import LOADED_BY_PATH

    allowed = {f"tts_gym.{name}" for name in LOADED_BY_PATH}
    for path in Path(runtime.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert (not node.module.startswith("tts_gym")
                        or node.module in allowed), (path, node.module)
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
