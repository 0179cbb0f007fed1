"""The candidate process's main loop: every episode's ``solve`` in a greenlet, primitives batched.

After :mod:`.isolation` has locked the process down, the runtime says HELLO, receives START
(the candidate source, its constructor parameters and one entry per episode), executes the
source once (memory across *different* questions is allowed; the broker never gives one
process the same (store, question) twice), and runs one greenlet per episode:
``Controller(**params).solve(question)``. A primitive called on ``question`` queues one request
and switches back to the scheduler; when every greenlet is blocked or done, the scheduler sends
all queued requests as one BATCH and resumes each greenlet with its reply. The pipe is crossed
once per round of requests, not once per primitive.

Nothing here is trusted by the broker: it charges, reveals and scores on its own state. What
this loop reports (an exception's text, a note, a schedule) is sanitised there.

Per-episode guards:

- randomness: ``random`` and ``numpy.random`` module functions are swapped for wrappers that
  give each episode its own stream, seeded by the broker (from its secret, not from the
  question), whatever the interleaving of episodes;
- a CPU watchdog (``ITIMER_VIRTUAL``): an episode that computes ``watchdog_s`` CPU seconds
  without calling a primitive is abandoned (its greenlet is never resumed) and reported as
  that episode's failure;
- answers must be ``str`` or ``None``; anything else fails the episode with the file and line
  of the ``return`` statement that gave it (:func:`tts_gym.source_lines.return_lines`; the fork
  server loads that standard-library module by path, as it loads the candidate API).

The watchdog names where the episode was running when it stopped it (the innermost frame of the
candidate's file in the interrupted stack, :func:`candidate_line`).
"""

from __future__ import annotations

import array
import base64
import builtins
import itertools
import json
import linecache
import marshal
import random
import signal
import sys
import traceback
import types
from collections.abc import Iterator
from typing import Any

import greenlet
import numpy as np

from tts_gym.source_lines import where_returned

from . import wire

CANDIDATE_MODULES: tuple[str, ...] = (
    "math",
    "cmath",
    "statistics",
    "collections",
    "collections.abc",
    "itertools",
    "functools",
    "operator",
    "heapq",
    "bisect",
    "typing",
    "dataclasses",
    "enum",
    "random",
    "numpy",
    "numpy.random",
    "numpy.linalg",
    "tts_gym.candidate",
)
"""Modules a candidate may import in the sandbox (pre-imported: there is no filesystem)."""

MAX_NOTE_CHARS = wire.MAX_NOTE_CHARS
MAX_NOTES_PER_EPISODE = wire.MAX_NOTES_PER_EPISODE
MAX_ERROR_CHARS = wire.MAX_ERROR_CHARS
WATCHDOG_PERIOD_S = 0.25
MAX_ROUND_NOTE_BYTES = wire.MAX_FRAME // 4
"""Note text one round sends at most (bytes); later notes of the round are dropped, so a
BATCH stays well inside the broker's frame limit."""


_ACTIVE: list[Any] = [None]
"""The process's :class:`Runtime` once it runs (the randomness wrappers ask it for the stream)."""
_WRAPPED: list[bool] = [False]


def wrap_randomness() -> None:
    """Route ``random.*`` and ``numpy.random.*`` module functions through the running
    runtime's per-episode states (swapped only when another episode used randomness last).

    Idempotent; the fork server calls it once, so candidate processes inherit the wrappers
    instead of building them (~0.6 ms each). Until a runtime runs, the wrappers call through.
    """
    if _WRAPPED[0]:
        return
    _WRAPPED[0] = True

    def wrap(fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            rt = _ACTIVE[0]
            if rt is not None:
                rt._ensure_rng()
            return fn(*args, **kwargs)

        call.__name__ = getattr(fn, "__name__", "call")
        call.__doc__ = getattr(fn, "__doc__", None)
        return call

    inst = random._inst  # type: ignore[attr-defined]
    for name in dir(random):
        fn = getattr(random, name)
        if getattr(fn, "__self__", None) is inst:
            setattr(random, name, wrap(fn))
    np_rand = np.random.mtrand._rand
    for name in dir(np.random):
        fn = getattr(np.random, name)
        if getattr(fn, "__self__", None) is np_rand:
            setattr(np.random, name, wrap(fn))
    default_rng = np.random.default_rng

    def seeded_default_rng(seed: Any = None) -> Any:
        rt = _ACTIVE[0]
        if seed is None and rt is not None:  # no entropy in the sandbox: derive it from the episode
            ep = rt.current if rt.current is not None else rt.module_rng
            ep.rng_calls += 1
            seed = [ep.seed, ep.rng_calls]
        return default_rng(seed)

    np.random.default_rng = seeded_default_rng


def compile_candidate(source: str, filename: str) -> types.CodeType:
    """The code object of a candidate file as the sandbox runs it: no future flags inherited
    from the caller, no ``-O``. The broker compiles (never runs) each file once per command
    and sends the code object in START; a candidate process compiles it itself only when
    that failed (so compile errors are reported from the process, with their traceback)."""
    return compile(source, filename, "exec", dont_inherit=True, optimize=0)


def _code_of(job: dict[str, Any], source: str, filename: str) -> types.CodeType:
    """The code sent by the broker when it fits this interpreter, else the source compiled."""
    blob = job.get("code")
    if isinstance(blob, str) and job.get("python") == sys.version:
        try:
            code = marshal.loads(base64.b64decode(blob))
        except (ValueError, TypeError, EOFError):
            code = None
        if isinstance(code, types.CodeType) and code.co_filename == filename:
            return code
    return compile_candidate(source, filename)


class StepLimitExceeded(BaseException):
    """The broker refused further primitives for this episode (its step cap was reached)."""


class _Episode:
    """The scheduler's side of one episode (the candidate holds only its :class:`Question`).

    ``index`` is the episode's position in this process (the order START listed it), which the
    broker maps to a (store, question) with a secret permutation: it identifies nothing."""

    __slots__ = ("index", "seed", "greenlet", "switch", "proxy", "abandoned", "rng_state",
                 "rng_calls")

    def __init__(self, index: int, seed: int) -> None:
        self.index = index
        self.seed = seed
        self.greenlet: Any = None
        self.switch: Any = None  # greenlet.switch, bound once (the scheduler's hot path)
        self.proxy: Any = None
        self.abandoned = False
        self.rng_state: Any = None
        self.rng_calls = 0


def _short_traceback(exc: BaseException, filename: str) -> tuple[str, int | None]:
    """``(text, line)``: the exception with the candidate file's frames only, and the line of
    the innermost candidate frame."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    line = frames[-1].lineno if frames else None
    if line is None and isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno  # the file did not compile: no frame of it ran
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}\n    {f.line}' for f in frames]
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    text = "\n".join([*lines[-8:], head])
    return text[-MAX_ERROR_CHARS:], line


def failure_text(kind: str, summary: str, line: Any, tb: str) -> str:
    """A failure report as JSON text of at most ``wire.MAX_STRING_BYTES`` bytes (ASCII): the
    summary and the traceback's end are cut until it fits."""
    line = line if isinstance(line, int) and not isinstance(line, bool) else None
    keep = MAX_ERROR_CHARS
    while True:
        text = json.dumps({"kind": kind, "summary": summary[:500], "line": line,
                           "traceback": tb[-keep:] if keep else ""})
        if len(text) <= wire.MAX_STRING_BYTES or keep == 0:
            return text[: wire.MAX_STRING_BYTES]
        keep //= 2


def _summary(exc: BaseException, filename: str, line: int | None) -> str:
    msg = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    first = msg[-1] if msg else type(exc).__name__
    where = f"{filename}:{line}" if line else filename
    return f"{where}: {first}"[:500]


def candidate_line(frame: Any, filename: str) -> tuple[int | None, str | None]:
    """``(line, function)`` of the innermost frame of ``filename`` in the stack ending at
    ``frame`` (the frame a signal interrupted); ``(None, None)`` when no such frame runs."""
    while frame is not None:
        if frame.f_code.co_filename == filename:
            return frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back
    return None, None


_PROBE_NEW, _PROBE_MORE, _FULL_READ, _PRUNE = (
    wire.OP_PROBE_NEW, wire.OP_PROBE_MORE, wire.OP_FULL_READ, wire.OP_PRUNE)
_NONE_LEFT = wire.ST_NONE_LEFT
assert wire.ST_OK == 0  # the proxies test ``if st:``


def _check_slot(name: str, slot: Any) -> int:
    if slot.__class__ is int:
        return slot
    if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)):
        raise ValueError(f"{name}(slot): slot must be an int from probe_new, got {slot!r}")
    return int(slot)


_REASONS = {
    wire.ST_BAD_SLOT: "slot {slot} is out of range (0..{last})",
    wire.ST_NOT_OPENED: "slot {slot} is not opened yet ({opened} opened)",
    wire.ST_FINISHED: "slot {slot} is finished",
    wire.ST_PRUNED: "slot {slot} was pruned",
}


def _raise_for(status: int, name: str, slot: int, q: Question) -> None:
    if status == wire.ST_STEP_LIMIT:
        raise StepLimitExceeded("this episode reached its primitive limit")
    reason = _REASONS.get(status, "refused (status {status})").format(
        slot=slot, last=q._capacity - 1, opened=q._opened, status=status)
    raise ValueError(f"{name}({slot}): {reason}")


class Question:
    """One episode seen through the paper's primitives (AutoTTS, 2026): ``probe_new``,
    ``probe_more``, ``full_read``, ``prune``, ``note`` and the read-only counters
    ``tokens_used``, ``n_opened``, ``branches_left``. Every primitive is a request to the
    broker: the proxy hands it to the scheduler with the switch itself (``_wait(request)``), so
    a request is queued exactly when its episode blocks on it.

    By design an instance holds nothing but this episode's counters, the answer strings it
    revealed, the scheduler's switch and its request tuples (which carry the episode's position
    in this process, mapped to a question by a secret permutation on the broker's side): no
    runtime, no scheduler record, no index of a question. Its fields start with an underscore,
    which the discovery lint refuses to read."""

    __slots__ = ("_wait", "_labels", "_req_new", "_req_read", "_id", "_capacity", "_opened",
                 "_tokens", "_notes")

    def __init__(self, wait: Any, index: int, capacity: int) -> None:
        self._wait = wait
        self._labels: list[str] = []
        self._req_new = (index, _PROBE_NEW, -1)
        self._req_read = (index, _FULL_READ, -1)
        self._id = index
        self._capacity = capacity
        self._opened = 0
        self._tokens = 0
        self._notes = 0

    def probe_new(self) -> tuple[str, int, bool] | None:
        st, label, fin, slot, self._opened, self._tokens = self._wait(self._req_new)
        if st:
            if st == _NONE_LEFT:
                return None
            _raise_for(st, "probe_new", -1, self)
        return self._labels[label], slot, fin == 1

    def probe_more(self, slot: int) -> tuple[str, bool]:
        s = slot if slot.__class__ is int else _check_slot("probe_more", slot)
        st, label, fin, _slot, self._opened, self._tokens = self._wait(
            (self._id, _PROBE_MORE, s))
        if st:
            _raise_for(st, "probe_more", s, self)
        return self._labels[label], fin == 1

    def full_read(self) -> str | None:
        st, label, _fin, _slot, self._opened, self._tokens = self._wait(self._req_read)
        if st:
            if st == _NONE_LEFT:
                return None
            _raise_for(st, "full_read", -1, self)
        return self._labels[label]

    def prune(self, slot: int) -> None:
        s = slot if slot.__class__ is int else _check_slot("prune", slot)
        st, _label, _fin, _slot, self._opened, self._tokens = self._wait(
            (self._id, _PRUNE, s))
        if st:
            _raise_for(st, "prune", s, self)

    def note(self, event: str, **fields: Any) -> None:
        rt = _ACTIVE[0]
        if rt is not None:
            rt.note(self, event, fields)

    @property
    def tokens_used(self) -> int:
        return self._tokens

    @property
    def n_opened(self) -> int:
        return self._opened

    @property
    def branches_left(self) -> int:
        return self._capacity - self._opened

    def __repr__(self) -> str:
        return "<question>"


class Runtime:
    """The scheduler, the proxies and the guards of one candidate process.

    Args:
        rfd, wfd: The pipe from / to the broker.

    Episodes run in START's order, then in the order of the broker's replies; the broker keeps
    the same record to know which episodes hold the turn (this process reports nothing that
    is used to blame an episode).
    """

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.reader = wire.FrameReader(rfd, 1 << 30)
        self.main = greenlet.getcurrent()
        self.ops: list[int] = []  # flat (episode, op, arg) triples of this round, in order
        self.strings: list[str] = []
        self.recorded = 0  # answers, notes and failures queued this round (never answered)
        self.round_note_bytes = 0  # note text queued this round
        self.current: _Episode | None = None
        self.passes = 0  # scheduler passes over the runnable episodes (watchdog progress)
        self.seen: tuple[int, Any] = (-1, None)
        self.strikes = 0
        self.watchdog_strikes = 40
        self.abandoned: list[Any] = []
        self.traces = False
        self.filename = "<candidate>"
        self.source = ""
        self.watchdog_line: int | None = None
        self.watchdog_summary = ""
        self.max_answer_chars = 1000
        self.rng_owner: _Episode | None = None
        self.np_rand = np.random.mtrand._rand
        self.py_rand = random._inst  # type: ignore[attr-defined]
        self.module_rng = _Episode(-1, 0)  # draws made outside any episode

    # --- the pipe ---------------------------------------------------------------------------
    def hello(self, report: dict[str, Any]) -> None:
        """Tell the broker which isolation layers are on (before any candidate code exists)."""
        wire.send_frame(self.wfd, wire.text_message(wire.HELLO, json.dumps(report)))

    def start(self) -> dict[str, Any]:
        """Wait for START."""
        text = wire.parse_text_message(self.reader.read(), wire.START, 1 << 26)
        return json.loads(text)

    # --- randomness: one stream per episode -------------------------------------------------
    def _ensure_rng(self) -> None:
        ep = self.current
        if ep is self.rng_owner or ep is None:
            return
        owner = self.rng_owner
        py = self.py_rand  # the instance behind random.*, not the wrapped module functions
        if owner is not None:
            owner.rng_state = (py.getstate(), self.np_rand.get_state())
        if ep.rng_state is None:
            py.seed(ep.seed)
            self.np_rand.seed(ep.seed % (2**32))
        else:
            py.setstate(ep.rng_state[0])
            self.np_rand.set_state(ep.rng_state[1])
        self.rng_owner = ep

    # --- the CPU watchdog --------------------------------------------------------------------
    def _on_timer(self, _signum: int, frame: Any) -> None:
        ep = self.current
        # an episode runs at most once per pass: the same one at the same pass on two ticks has
        # called no primitive in between
        if ep is None or self.seen[0] != self.passes or self.seen[1] is not ep:
            self.seen = (self.passes, ep)
            self.strikes = 0
            return
        self.strikes += 1
        if self.strikes < self.watchdog_strikes:
            return
        seconds = self.watchdog_strikes * WATCHDOG_PERIOD_S
        line, func = candidate_line(frame, self.filename)
        where = f"{self.filename}:{line}" if line else self.filename
        inside = f" in {func}()" if func and func != "<module>" else ""
        summary = (f"{where}: stopped after {seconds:g} s of CPU without calling a primitive "
                   f"(the episode's CPU budget), running at line {line}{inside}" if line else
                   f"{where}: stopped after {seconds:g} s of CPU without calling a primitive "
                   "(the episode's CPU budget), outside the file's own code")
        self.watchdog_line = line
        self.watchdog_summary = summary
        self._fail(ep, "watchdog", summary, line, "")
        ep.abandoned = True
        self.abandoned.append(ep.greenlet)
        self.strikes = 0
        self.main.switch(None)  # abandon the looping greenlet: it is never resumed

    # --- queued requests ---------------------------------------------------------------------
    def _string(self, text: str) -> int:
        self.strings.append(text)
        return len(self.strings) - 1

    def _fail(self, ep: _Episode, kind: str, summary: str, line: int | None, tb: str) -> None:
        self.recorded += 1
        self.ops.extend((ep.index, wire.OP_FAIL, self._string(failure_text(kind, summary, line,
                                                                           tb))))

    def note(self, q: Question, event: Any, fields: dict[str, Any]) -> None:
        """Queue a trace note of ``q``'s episode (dropped when no traces are wanted or past
        the cap)."""
        if not self.traces or q._notes >= MAX_NOTES_PER_EPISODE:
            return
        q._notes += 1
        head = {"event": str(event)[:100]}
        try:
            text = json.dumps({**head, **fields})
        except (TypeError, ValueError):
            text = json.dumps({**head, "unserialisable_fields": sorted(map(str, fields))[:10]})
        if len(text) > MAX_NOTE_CHARS:
            text = json.dumps({**head, "oversized_fields": len(text)})
        if self.round_note_bytes + len(text) > MAX_ROUND_NOTE_BYTES:
            return  # this round's frame would outgrow the broker's frame limit
        self.round_note_bytes += len(text)
        self.recorded += 1
        self.ops.extend((q._id, wire.OP_NOTE, self._string(text)))

    # --- running the candidate ---------------------------------------------------------------
    def _guarded(self, fn: Any) -> tuple[bool, Any]:
        """Run ``fn()`` in a greenlet under the watchdog (episode -1): ``(ok, value or error)``."""
        pseudo = _Episode(-1, 0)
        result: list[Any] = [False, None]

        def body() -> None:
            try:
                result[1] = fn()
                result[0] = True
            except BaseException as exc:  # noqa: BLE001 - reported, never re-raised
                text, line = _short_traceback(exc, self.filename)
                result[1] = {"summary": _summary(exc, self.filename, line), "line": line,
                             "traceback": text}

        pseudo.greenlet = greenlet.greenlet(body)
        self.current = pseudo
        self.passes += 1
        pseudo.greenlet.switch()
        self.current = None
        if pseudo.abandoned:
            self.ops.clear()
            self.strings.clear()
            return False, {"summary": self.watchdog_summary, "line": self.watchdog_line,
                           "traceback": ""}
        return result[0], result[1]

    def _namespace(self, allowed: set[str]) -> dict[str, Any]:
        def guarded_import(name: str, globals: Any = None, locals: Any = None,  # noqa: A002
                           fromlist: Any = (), level: int = 0) -> Any:
            known = name in allowed or name.split(".")[0] in allowed
            if level != 0 or not known or name not in sys.modules:
                raise ImportError(
                    f"import of {name!r} is not available in the sandbox (available: "
                    f"{', '.join(sorted(allowed))}); evaluate your own code with --trusted "
                    "for other imports"
                )
            return builtins.__import__(name, globals, locals, fromlist, level)

        safe = dict(builtins.__dict__)
        for name in ("open", "input", "breakpoint", "help", "exit", "quit"):
            safe.pop(name, None)
        safe["__import__"] = guarded_import
        safe["print"] = lambda *a, **k: None
        return {"__builtins__": safe, "__name__": "candidate"}

    def _episode_body(self, ep: _Episode, factory: Any, params: dict[str, Any],
                      solve_line: int | None) -> None:
        try:
            answer = factory(**params).solve(ep.proxy)
        except BaseException as exc:  # noqa: BLE001 - the candidate's failure, reported
            kind = "step_limit" if isinstance(exc, StepLimitExceeded) else (
                "memory" if isinstance(exc, MemoryError) else "exception")
            text, line = _short_traceback(exc, self.filename)
            self._fail(ep, kind, _summary(exc, self.filename, line), line, text)
            return
        if answer is not None and not isinstance(answer, str):
            where, line = where_returned(self.filename, self.source, solve_line)
            summary = (f"{where}: solve() returned {type(answer).__name__} {str(answer)[:60]!r}; "
                       "answers are strings (return str(...)) or None")
            self._fail(ep, "bad_return", summary, line, "")
            return
        # an answer over the store's bound cannot be right: cut one character past it, so the
        # broker sees that it was longer (and scores it wrong) without reading all of it
        arg = -1 if answer is None else self._string(answer[: self.max_answer_chars + 1])
        self.recorded += 1
        self.ops.extend((ep.index, wire.OP_ANSWER, arg))

    def run(self) -> int:
        """Serve one START to the end. Returns the exit code."""
        job = self.start()
        self.traces = bool(job.get("traces"))
        self.filename = str(job.get("filename") or "<candidate>")
        self.max_answer_chars = int(job.get("max_answer_chars", self.max_answer_chars))
        watchdog_s = float(job.get("watchdog_s", 10.0))
        self.watchdog_strikes = max(1, round(watchdog_s / WATCHDOG_PERIOD_S))
        source = self.source = str(job["source"])
        linecache.cache[self.filename] = (len(source), None, source.splitlines(True), self.filename)
        signal.signal(signal.SIGVTALRM, self._on_timer)
        signal.setitimer(signal.ITIMER_VIRTUAL, WATCHDOG_PERIOD_S, WATCHDOG_PERIOD_S)
        wrap_randomness()
        _ACTIVE[0] = self
        ns = self._namespace(set(job.get("imports") or []))
        params = dict(job.get("params") or {})

        def load() -> Any:
            exec(_code_of(job, source, self.filename), ns)  # noqa: S102
            factory = ns.get("Controller")
            if factory is None:
                raise NameError("the file defines no `class Controller`")
            return factory

        ok, factory = self._guarded(load)
        if not ok:
            self._send_setup_error("load", factory)
            return 0
        if job.get("schedule_beta") is not None:
            b = float(job["schedule_beta"])
            ok, sched = self._guarded(lambda: self._schedule_twice(factory, params, b))
            wire.send_frame(self.wfd, wire.text_message(
                wire.SCHEDULE, json.dumps({"ok": ok, "value": sched})))
        solve = getattr(factory, "solve", None)
        solve_line = getattr(getattr(solve, "__code__", None), "co_firstlineno", None)
        episodes = [_Episode(i, int(e["seed"])) for i, e in enumerate(job["episodes"])]
        wait = self.main.switch
        for ep, e in zip(episodes, job["episodes"], strict=True):
            ep.proxy = Question(wait, ep.index, int(e["capacity"]))
            ep.greenlet = greenlet.greenlet(
                lambda *_args, ep=ep: self._episode_body(ep, factory, params, solve_line))
            ep.switch = ep.greenlet.switch
        self._schedule(episodes)
        return 0

    def _schedule_twice(self, factory: Any, params: dict[str, Any], beta: float) -> Any:
        first = json.dumps(factory(**params).schedule(beta), sort_keys=True)
        again = json.dumps(factory(**params).schedule(beta), sort_keys=True)
        if first != again:
            raise ValueError(f"schedule({beta}) is not deterministic: {first[:200]} != "
                             f"{again[:200]}")
        if len(first) > wire.MAX_SCHEDULE_BYTES - 100:  # room for the report around it
            raise ValueError(f"schedule({beta}) is {len(first)} characters of JSON (limit "
                             f"{wire.MAX_SCHEDULE_BYTES - 100})")
        value = json.loads(first)
        if not isinstance(value, dict):
            raise TypeError(f"schedule({beta}) must return a dict, got {type(value).__name__}")
        return value

    def _send_setup_error(self, stage: str, error: dict[str, Any]) -> None:
        self.ops[:] = [-1, wire.OP_FAIL, 0]  # the broker reads episode -1 as "did not load"
        self.strings = [failure_text(stage, str(error.get("summary", "")), error.get("line"),
                                     str(error.get("traceback", "")))]
        self._flush()

    def _flush(self) -> None:
        """Send this round's requests as one BATCH and start the next round's lists."""
        wire.write_frame(self.wfd, wire.batch_frame(array.array("i", self.ops), self.strings))
        self.round_note_bytes = 0
        self.ops.clear()
        self.strings = []

    def _schedule(self, episodes: list[_Episode]) -> None:
        ops = self.ops
        queue = ops.extend
        labels = [ep.proxy._labels for ep in episodes]
        runnable: Iterator[tuple[_Episode, Any]] = iter([(ep, None) for ep in episodes])
        while True:
            # run each runnable episode until it blocks on a primitive (its greenlet hands the
            # request over with the switch) or ends (its answer or failure is queued already)
            blocked: list[_Episode] = []
            block = blocked.append
            waiting: list[tuple[_Episode, Any]] = []  # not run yet when the watchdog fired
            self.passes += 1
            for ep, value in runnable:
                self.current = ep
                request = ep.switch(value)
                if request is not None:
                    queue(request)
                    block(ep)
                elif ep.abandoned:  # the watchdog fired: report it now, run the rest after
                    waiting = list(runnable)
                    break
            self.current = None
            if not ops:
                if not waiting:
                    return
                runnable = iter(waiting)
                continue
            n = len(ops) // 3
            codes = ops[1::3] if self.recorded else None
            self.recorded = 0
            self._flush()
            n_rows, rows, pairs, texts = wire.decode_reply(self.reader.read())
            if n_rows != n:
                return  # the broker refused the batch (e.g. past the step limit) and ends
            for k, text in enumerate(texts):
                labels[pairs[2 * k]].append(text)
            # one reply per request: (status, label, finished, slot, opened, tokens); answers,
            # notes and failures are never answered
            if codes is not None:
                rows = iter([row for op, row in zip(codes, rows, strict=True) if op <= _PRUNE])
            runnable = zip(blocked, rows, strict=True)
            if waiting:
                runnable = itertools.chain(waiting, runnable)


def main(rfd: int, wfd: int, report: dict[str, Any]) -> int:
    """Run the candidate process after isolation (called by the fork server's child)."""
    sys.stdout = None  # type: ignore[assignment]
    sys.stderr = None  # type: ignore[assignment]
    rt = Runtime(rfd, wfd)
    rt.hello(report)
    return rt.run()
