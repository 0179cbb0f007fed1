"""Red team: hostile candidates through the public paths (``eval file:`` and ``discover``).

Each attack class of the trust-boundary issue has a candidate here (tests/redteam_candidates.py),
most of them written to pass the discovery lint. Every attempt must fail or gain nothing: no
canary file appears, no process outlives the run, no gold or unrevealed answer reaches the
candidate process, a canary API key never reaches the run folder or a request body, and the
loop records each failure with its kind and keeps going.
"""

from __future__ import annotations

import collections
import itertools
import json
import math
import os
import re
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.synthesis.history import History
from agents.synthesis.llm import LLMConfig
from agents.synthesis.loop import DiscoveryConfig, run_discovery
from tests import redteam_candidates as R
from tests import synthesis_candidates as C
from tests.fake_openai_server import FakeOpenAI
from tests.proc_helpers import descendants, state_uid
from tts_gym.cli import main as cli_main
from tts_gym.controller import load_file_controller
from tts_gym.evaluation import evaluate
from tts_gym.sandbox import broker as broker_mod
from tts_gym.sandbox import identity
from tts_gym.sandbox.broker import UnitSpec
from tts_gym.sandbox.child.isolation import UID_BASE
from tts_gym.sandbox.evaluate import CandidateFailed, evaluate_source, unit_specs
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.units import run_units
from tts_gym.store import load_store_file
from tts_gym.testing import tiny_store, write_store_json

pytestmark = pytest.mark.skipif(not os.sys.platform.startswith("linux"), reason="Linux sandbox")

LIMITS = SandboxLimits(timeout_s=60.0, memory_mb=400, watchdog_s=1.0, stall_s=4.0)
CANARY_KEY = "sk-canary-0123456789abcdefDEADBEEF"


def secret_questions(n_q: int = 4, n_b: int = 10, seed: int = 0) -> list[dict]:
    """Questions whose every answer string is unique (``ANSSECRET-...``) and whose gold answer
    (``GOLDSECRET-...``) no branch ever produces, so any such string found where it should not
    be is a leak."""
    rng = np.random.default_rng(seed)
    out = []
    for q in range(n_q):
        each = []
        for b in range(n_b):
            n = int(rng.integers(1, 6))
            probes = [f"ANSSECRET-{q}-{b}-{k}-{rng.integers(1 << 30):x}" for k in range(n - 1)]
            final = f"ANSSECRET-{q}-{b}-F-{rng.integers(1 << 30):x}"
            each.append([[*probes, final], int(rng.integers(100, 900)), final])
        out.append({"question": f"q{q}", "gold_answer": f"GOLDSECRET-{q}-{rng.integers(1 << 30):x}",
                    "probe_freq": 100, "each_branch": each,
                    "final_answers_trace": [e[2] for e in each]})
    return out


@pytest.fixture(scope="module")
def secret(tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("secret")
    path = write_store_json(root / "secret" / "aime24.json", secret_questions())
    return path, load_store_file(path)


def candidate_processes() -> list[int]:
    """Live candidate processes (a uid of the sandbox's candidate range) below this test process;
    nothing else on the machine is looked at. A candidate orphaned by its fork server's death
    would be re-parented out of this check's reach: the kill tests of tests/test_lifetime.py,
    whose supervisor is a child subreaper, cover that case."""
    return [pid for pid in descendants(os.getpid()) if state_uid(pid)[1] >= UID_BASE]


@pytest.fixture(autouse=True)
def _no_process_outlives():
    yield
    assert candidate_processes() == [], "a candidate process outlived its run"


def notes(result, event: str) -> list[dict]:
    return [ev for per_seed in result.traces for tr in per_seed for ev in tr
            if ev.get("op") == "note" and ev.get("event") == event]


class Listener:
    """A TCP port on 127.0.0.1 that records every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


# --- eval file: --------------------------------------------------------------------------------
MUST_BE_REFUSED = (
    "write_canary", "os_open_canary", "read_gold_file", "read_etc", "listdir_root",
    "stat_gold_file", "parent_environ", "init_environ", "fork", "exec", "kill_parent",
    "kill_all", "kill_init", "setuid_root", "socket", "thread", "write_stdout", "cwd_listing",
)


def test_escapes_fail(tmp_path, secret):
    """Full Python reached through allowlisted modules: files, processes, signals, network,
    /proc, privileges, threads all refused by the operating system."""
    path, store = secret
    canary = tmp_path / "canary"
    listener = Listener()
    try:
        src = R.fill(R.ESCAPES, CANARY=canary, GOLD_FILE=path, PORT=listener.port)
        result = evaluate_source(src, store, 2, params={"beta": 0.5}, limits=LIMITS,
                                 traces=True, filename="escapes.py")
    finally:
        listener.close()
    found = notes(result, "escapes")
    assert len(found) == 2 * store.n_questions
    for got in found:
        for key in MUST_BE_REFUSED:
            assert got[key].startswith("refused"), (key, got[key])
        assert got["own_environ"] == "GOT: {}"
        # glibc's system() reports a spawn that failed as exit status 127 (32512)
        assert got["system"] in ("GOT: -1", "GOT: 32512") or got["system"].startswith("refused")
        assert got["ctypes_ptrace"] in ("GOT: -1",) or got["ctypes_ptrace"].startswith("refused")
        if os.geteuid() == 0:
            assert int(got["uid"].split()[1]) >= UID_BASE
    assert not canary.exists() and listener.connections == 0
    # and the candidate still scored exactly like the same reads through the trusted path
    assert result.unrevealed_answers == 0 and result.tokens.min() > 0


def test_no_gold_and_no_unpaid_answer_in_the_candidate_process(secret):
    """A memory scan of the candidate process finds no gold string, and no answer string
    beyond the one each of its episodes revealed."""
    _path, store = secret
    result = evaluate_source(R.MEMORY_SCAN, store, 2, params={"beta": 0.5}, limits=LIMITS,
                             traces=True, filename="scan.py")
    found = notes(result, "scan")
    assert found and all(n["golds"] == 0 for n in found)
    assert all(n["answers"] <= store.n_questions for n in found), found


def test_broker_sends_only_revealed_strings(secret, monkeypatch):
    """Protocol audit: every frame the broker writes to a candidate, during a probe-heavy run,
    holds no gold, no file path and no answer the episode did not reveal."""
    _path, store = secret
    sent: list[bytes] = []
    real = broker_mod.wire.send_frame

    def spy(fd: int, payload: bytes) -> None:
        sent.append(payload)
        real(fd, payload)

    monkeypatch.setattr(broker_mod.wire, "send_frame", spy)
    src = Path("agents/synthesis/seed_files/cmc.py").read_text()
    result = evaluate_source(src, store, 2, params={"beta": 1.0}, limits=LIMITS, traces=True)
    blob = b"".join(sent)
    assert b"GOLDSECRET" not in blob and str(store.source).encode() not in blob
    revealed = {ev["answer"] for per in result.traces for tr in per for ev in tr
                if ev.get("op") in ("probe_new", "probe_more", "full_read") and "answer" in ev}
    in_frames = {m.decode() for m in set(re.findall(rb"ANSSECRET-[-0-9a-fF]+", blob))}
    assert in_frames and in_frames <= revealed


def test_memory_across_episodes_gains_nothing(secret):
    """A process never sees a (store, question) twice, so remembering answers by episode
    index never hits: the same numbers as the memoryless reads."""
    _path, store = secret
    src = R.fill(R.REMEMBER, QUESTIONS=store.n_questions)
    result = evaluate_source(src, store, 3, params={"beta": 0.5}, limits=LIMITS, traces=True)
    assert not notes(result, "remembered") and result.tokens.min() > 0
    honest = R.REMEMBER.replace("if key in self.memory:", "if False:").replace(
        "QUESTIONS", str(store.n_questions))
    ref = evaluate_source(honest, store, 3, params={"beta": 0.5}, limits=LIMITS)
    assert np.array_equal(result.tokens, ref.tokens) and result.answers == ref.answers


def _unrevealed_from_traces(result) -> np.ndarray:
    """Which episodes answered a string that no primitive of that episode returned."""
    out = np.zeros(result.tokens.shape, bool)
    for i, per_seed in enumerate(result.traces):
        for q, tr in enumerate(per_seed):
            seen = {ev["answer"] for ev in tr if ev.get("op") in ("probe_new", "probe_more",
                                                                 "full_read") and "answer" in ev}
            final = next(ev for ev in tr if ev.get("op") == "finish")["answer"]
            out[i, q] = final is not None and final not in seen
    return out


def test_answers_from_nowhere_score_wrong_on_every_path(tmp_path, secret):
    """An answer not revealed in its own episode is wrong and counted, in the sandbox and on
    the trusted in-process path alike."""
    _path, store = secret
    boxed = evaluate_source(R.CROSS_QUESTION, store, 2, params={"beta": 0.5}, limits=LIMITS,
                            traces=True)
    assert boxed.unrevealed_answers == 2 * (store.n_questions - 1)
    assert np.array_equal(boxed.unrevealed, _unrevealed_from_traces(boxed))
    assert not (boxed.correct & boxed.unrevealed).any()
    (tmp_path / "cross.py").write_text(R.CROSS_QUESTION)
    trusted = evaluate(load_file_controller(tmp_path / "cross.py", {"beta": 0.5}), store, 2,
                       path="handle", traces=True)
    assert trusted.unrevealed_answers >= 2 * (store.n_questions - 1)
    assert np.array_equal(trusted.unrevealed, _unrevealed_from_traces(trusted))
    assert not (trusted.correct & trusted.unrevealed).any()


def test_tampering_with_the_accounting_changes_nothing(secret):
    _path, store = secret
    tampered = evaluate_source(R.TAMPER, store, 2, params={"beta": 0.5}, limits=LIMITS,
                               traces=True)
    honest = evaluate_source(R.TAMPER.replace('setattr(question, "_tokens", 0)', "pass"), store, 2,
                             params={"beta": 0.5}, limits=LIMITS)
    assert all(n["tokens"] == 0 for n in notes(tampered, "after"))  # it fooled itself only
    assert np.array_equal(tampered.tokens, honest.tokens) and tampered.tokens.min() > 0


def test_forged_frames_are_a_protocol_error(secret):
    _path, store = secret
    with pytest.raises(CandidateFailed) as info:
        evaluate_source(R.FORGE, store, 1, params={"beta": 0.5}, limits=LIMITS)
    assert info.value.error["kind"] == "protocol"
    ok = evaluate_source(C.GOOD, store, 1, params={"beta": 0.5}, limits=LIMITS)
    assert ok.tokens.min() > 0  # the next unit runs as usual


@pytest.mark.parametrize("source, loading", [(R.STALL_IN_C, False), (R.SLEEPER, True)])
def test_stalls_outside_python_are_killed_and_blamed_on_the_turn(secret, source, loading):
    """Every episode was resumed by the same reply (or by START), so the broker names them all
    and says it cannot tell which one stalled; the candidate process has no say."""
    _path, store = secret
    with pytest.raises(CandidateFailed) as info:
        evaluate_source(source, store, 1, params={"beta": 0.5}, limits=LIMITS)
    err = info.value.error
    assert err["kind"] == "stalled" and err["seed"] == 0 and "question" not in err, err
    assert err["suspects"] == [{"store": store.name, "question": q}
                               for q in range(store.n_questions)], err
    assert "cannot tell which" in err["summary"]
    assert ("top-level code" in err["summary"]) == loading
    assert f"one of questions {', '.join(map(str, range(store.n_questions)))}" in str(info.value)


def test_a_stall_alone_in_its_turn_is_blamed_on_its_question(secret):
    _path, store = secret
    for seed in (0, 1):
        with pytest.raises(CandidateFailed) as info:
            evaluate_source(R.fill(R.STALL_ALONE, TARGET="ANSSECRET-2-"), store, [seed],
                            params={"beta": 0.5}, limits=LIMITS)
        err = info.value.error
        # a C call that computes: the turn's CPU check (one episode's watchdog) or the stall
        # limit, whichever comes first on this machine
        assert err["kind"] in ("stalled", "cpu_limit"), err
        assert err["question"] == 2 and err["seed"] == seed, err


def test_a_spinning_episode_that_lies_is_blamed_by_the_brokers_record(secret):
    """The looping episode tells the runtime it is another episode and notes a false question;
    the failure still names its own question (its report came out of the turn order)."""
    _path, store = secret
    limits = replace(LIMITS, stall_s=60.0)  # the watchdog's CPU second, on a busy machine too
    for seed in (0, 1):
        with pytest.raises(CandidateFailed) as info:
            evaluate_source(R.fill(R.SPIN_AND_LIE, TARGET="ANSSECRET-2-"), store, [seed],
                            params={"beta": 0.5}, limits=limits, traces=True)
        err = info.value.error
        assert err["question"] == 2 and err["seed"] == seed, err
        assert err["kind"] == "protocol" and "turn order" in err["summary"], err


# --- CPU: the kernel and the broker bound it, not the candidate's own timer ------------------
def _burn(store, limits: SandboxLimits, **values) -> tuple[object, float]:
    spec = UnitSpec(R.fill(R.BURN_WITHOUT_TIMER, **values), "burn.py", {"beta": 0.5},
                    (store.name,), 0)
    start = time.monotonic()
    result = run_units([spec], {store.name: store}, limits)[0]
    return result, time.monotonic() - start


def test_a_timer_dodging_spin_is_stopped_by_the_turn_cpu_check(secret):
    _path, store = secret
    limits = SandboxLimits(timeout_s=300.0, memory_mb=400, watchdog_s=1.0, stall_s=120.0,
                           episode_cpu_s=60.0)
    result, wall = _burn(store, limits, MODE="spin", PER_TURN=0)
    err = result.error
    assert err["kind"] == "cpu_limit" and "in one turn" in err["summary"], err
    limit = limits.turn_cpu_s(store.n_questions)  # the reply resumed every episode
    assert limit < result.child_cpu_s < limit + 2.0 and wall < 60.0, (result.child_cpu_s, wall)
    assert len(err["suspects"]) == store.n_questions, err


def test_a_timer_dodging_burner_that_keeps_talking_is_stopped_by_the_kernel(secret):
    """Each turn stays under the turn check; the process's hard CPU limit (watchdog + per-episode
    budget x episodes) stops it, SIGXCPU ignored or not, in seconds instead of the unit's
    wall-clock timeout."""
    _path, store = secret
    limits = SandboxLimits(timeout_s=300.0, memory_mb=400, watchdog_s=1.0, stall_s=120.0,
                           episode_cpu_s=0.5)
    cap = limits.process_cpu_s(store.n_questions)
    assert cap == 1.0 + 0.5 * store.n_questions
    result, wall = _burn(store, limits, MODE="chatty", PER_TURN=0.2)
    err = result.error
    assert err["kind"] == "cpu_limit" and f"CPU limit of {cap:g} s" in err["summary"], err
    # RLIMIT_CPU is whole seconds (rounded up past what the process used before), SIGKILL at +2
    assert cap <= result.child_cpu_s <= cap + 3.5 and wall < 60.0, (result.child_cpu_s, wall)


def test_hostile_strings_are_sanitised(secret):
    _path, store = secret
    with pytest.raises(CandidateFailed) as info:
        evaluate_source(R.BAD_STRINGS, store, 1, params={"beta": 0.5}, limits=LIMITS,
                        traces=True)
    err = info.value.error
    for text in (err["summary"], err["traceback"], str(info.value)):
        text.encode("utf-8")  # no lone surrogate survives
        assert "\x00" not in text and "\x1b" not in text and "\x07" not in text
    assert len(err["summary"]) <= 500 and "broken" in err["summary"]


def test_hard_coded_answers_are_rejected_by_the_lint(secret):
    """The discovery lint refuses a string literal equal to an answer label of the search
    stores, gold or not, naming the line but not the literal (noise labels stay allowed); and a
    hard-coded answer would score wrong anyway."""
    from agents.synthesis.loop import answer_labels
    from agents.synthesis.validate import validate_source

    _path, store = secret
    gold = store.gold_string(0)
    other = next(a for a in store.answers[0] if a != gold and a != "ERR")
    for label in (gold, other):
        src = C.GOOD.replace('question.note("stop", reason="no branch")', f'return "{label}"')
        v = validate_source(src, answer_labels({"s": store}))
        assert not v.ok and v.reason.startswith("line ") and label[:6] not in v.reason
    noisy = C.GOOD.replace('reason="budget"', 'reason="ERR"')
    assert validate_source(noisy, answer_labels({"s": store}) | {"ERR"}).ok
    hard = f"""class Controller:
    def __init__(self, beta):
        pass

    def solve(self, question):
        return {gold!r}
"""
    result = evaluate_source(hard, store, 1, params={"beta": 0.5}, limits=LIMITS)
    assert result.unrevealed_answers == store.n_questions and not result.correct.any()


def test_eval_file_cli_is_sandboxed(tmp_path, secret, capsys):
    path, _store = secret
    canary = tmp_path / "canary"
    f = tmp_path / "hostile.py"
    f.write_text(R.fill(R.ESCAPES, CANARY=canary, GOLD_FILE=path, PORT=9))
    argv = ["eval", f"file:{f}", "--data-dir", str(path.parent.parent), "--model", "secret",
            "--benchmark", "aime24", "--seeds", "2", "--workers", "1", "--json",
            "--param", "beta=0.5"]
    assert cli_main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sandboxed"] and out["file"] == str(f.resolve())
    assert out["params"] == {"beta": 0.5}
    assert not canary.exists()
    bad = tmp_path / "int.py"
    bad.write_text(R.NOT_A_STRING)
    argv[1] = f"file:{bad}"
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "int.py:" in err and "returned int" in err and "seed 0" in err and "question" in err
    assert len(err.strip().splitlines()) <= 2


# --- discover ------------------------------------------------------------------------------------
def test_discover_survives_every_attack_and_leaks_nothing(tmp_path, secret, monkeypatch):
    """The public loop with a canary API key: hostile rounds are recorded with their kind, the
    loop finishes, no canary file, the key never reaches the run folder or a request body."""
    path, _store = secret
    data_dir = path.parent.parent
    canary = tmp_path / "canary"
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    script = {
        1: [{"reply": C.reply(R.fill(R.ESCAPES, CANARY=canary, GOLD_FILE=path, PORT=9))}],
        2: [{"reply": C.reply(R.FORGE)}],
        3: [{"reply": C.reply(R.BAD_STRINGS)}],
        4: [{"reply": C.reply(R.STALL_IN_C)}],
        5: [{"reply": C.reply(C.GOOD)}],
    }
    out = tmp_path / "run"
    with FakeOpenAI(script) as srv:
        cfg = DiscoveryConfig(
            out=out, rounds=5,
            llm=LLMConfig(model="m", base_url=srv.base_url, timeout_s=5, max_attempts=2),
            models=("secret",), heldout_benchmarks=(), data_dir=str(data_dir),
            betas=(0.0, 1.0), seeds=2, final_seeds=2, finalist_seeds=2,
            heldout_curve_seeds=2, limits=LIMITS)
        summary = run_discovery(cfg, log=lambda m: None)
        bodies = b"".join(srv.bodies)
    recs = {r["round"]: r for r in History(out).entries()}
    kinds = {r: (recs[r]["status"], recs[r]["failure_kind"]) for r in range(1, 6)}
    assert kinds == {1: ("ok", None), 2: ("failed", "protocol"), 3: ("failed", "exception"),
                     4: ("failed", "stalled"), 5: ("ok", None)}, kinds
    assert summary["rounds_done"] == [1, 2, 3, 4, 5]
    assert not canary.exists()
    assert CANARY_KEY.encode() not in bodies and len(srv.bodies) == 5
    for f in out.rglob("*"):
        if f.is_file():
            assert CANARY_KEY.encode() not in f.read_bytes(), f
    for body in srv.bodies:  # every request was valid UTF-8 JSON, strings from rounds included
        json.loads(body)
        body.decode("utf-8")


def test_resume_recomputes_tampered_rounds(tmp_path, secret):
    """Round files are not believed on --resume: an edited record is recomputed."""
    path, _store = secret
    data_dir = path.parent.parent
    out = tmp_path / "run"

    def cfg(url: str, rounds: int, resume: bool = False) -> DiscoveryConfig:
        return DiscoveryConfig(
            out=out, rounds=rounds,
            llm=LLMConfig(model="m", base_url=url, timeout_s=5, max_attempts=2),
            models=("secret",), heldout_benchmarks=(), data_dir=str(data_dir),
            betas=(0.0, 1.0), seeds=2, final_seeds=2, finalist_seeds=2,
            heldout_curve_seeds=2, limits=LIMITS, resume=resume)

    with FakeOpenAI({1: [{"reply": C.reply(C.GOOD)}]}) as srv:
        run_discovery(cfg(srv.base_url, 1), log=lambda m: None)
    h = History(out)
    f = h.round_path(1)
    rec = json.loads(f.read_text())
    honest = rec["metrics"]["best"]
    rec["metrics"]["best"] = {"beta": 0.0, "accuracy": 100.0, "avg_tokens": 0.0}
    rec["code"] = rec["code"].replace("votes = Counter()", "votes = Counter()\n        x = 1")
    f.write_text(json.dumps(rec))
    logs: list[str] = []
    with FakeOpenAI({2: [{"reply": C.reply(C.PROBING)}]}) as srv:
        summary = run_discovery(cfg(srv.base_url, 2, resume=True), log=logs.append)
    assert any("round 1: its record does not verify" in m for m in logs)
    again = History(out)
    again.key = h.key
    r1 = again.get(1) if 1 in again.replaced else None
    chosen = summary["chosen"]
    assert chosen["accuracy"] != 100.0 or chosen["avg_tokens"] != 0.0
    assert (out / "rounds" / "round_001.recomputed.json").is_file()
    recomputed = json.loads((out / "rounds" / "round_001.recomputed.json").read_text())
    assert recomputed["recomputed"] and recomputed["metrics"]["best"] == honest
    assert r1 is None or r1["recomputed"]


# --- identity: a candidate cannot tell which question it plays -------------------------------
PUBLIC = ["branches_left", "full_read", "n_opened", "note", "probe_more", "probe_new", "prune",
          "tokens_used"]


def chance_bound(p: float = 1e-3) -> int:
    """The smallest ``k`` with ``1/k! < p``: a uniformly random permutation (of any size) has
    ``k`` or more fixed points with probability at most ``1/k!``, so an attacker whose guesses
    are only as good as chance identifies ``k`` questions or more that rarely."""
    return next(k for k in itertools.count(1) if 1 / math.factorial(k) < p)


def identified(a: list, b: list) -> int:
    """Questions an attacker matches across two units by what it observed: ``q`` counts when
    ``q`` is the one and only question of ``b`` that showed ``a[q]``'s observation."""
    where = collections.defaultdict(list)
    for q, v in enumerate(b):
        where[json.dumps(v, sort_keys=True)].append(q)
    return sum(where.get(json.dumps(v, sort_keys=True)) == [q] for q, v in enumerate(a))


def _identity_runs(secrets: list[bytes | None]) -> tuple[list[list[dict]], int]:
    store = tiny_store(3, questions=30, branches=6)
    specs = unit_specs(R.IDENTITY, "identity.py", {"beta": 0.5}, [store.name], [0, 1],
                       traces=True)
    specs = [replace(s, secret=k) for s, k in zip(specs, secrets, strict=True)]
    results = run_units(specs, {store.name: store}, LIMITS)
    runs = []
    for r in results:
        out = r.stores[store.name]
        runs.append([{**next(ev for ev in tr if ev.get("event") == "identity"), "answer": a}
                     for tr, a in zip(out.traces, out.answers, strict=True)])
    return runs, store.n_questions


def test_a_candidate_cannot_tell_which_question_it_plays(monkeypatch):
    """Counting solve() calls, recording random draws and reading the question object (its
    public attributes, its private slots, the runtime) on two units (seeds 0 and 1, the default
    secret from the per-user key) identifies no more questions across the units than chance."""
    monkeypatch.setattr(identity, "_KEY", [bytes(range(32))])
    (a, b), n = _identity_runs([None, None])
    bound = chance_bound()
    channels = [k for k in a[0] if k not in ("op", "event")]
    assert {"calls", "py_draw", "np_draw", "rng_draw", "slots", "private_id", "answer"} <= set(
        channels)
    for key in channels:
        got = identified([x[key] for x in a], [x[key] for x in b])
        assert got < bound, (key, got, bound)
    for x in a + b:
        assert x["public"] == PUBLIC
        for name in ("ep", "rt", "index", "question", "store"):
            assert x["attr_" + name].startswith("refused: AttributeError"), x
    # the control: with one secret for both units every channel above identifies all of them
    (a, b), n = _identity_runs([b"k" * 32, b"k" * 32])
    for key in ("calls", "py_draw", "np_draw", "rng_draw", "private_id", "answer"):
        assert identified([x[key] for x in a], [x[key] for x in b]) == n, key
