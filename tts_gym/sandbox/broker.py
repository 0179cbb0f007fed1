"""The broker: the trusted side of one sandboxed unit of work.

A unit is one candidate process playing one protocol seed over every question of one or more
stores (so it never sees the same (store, question) twice). The broker owns those stores with
their gold answers, the episodes' env state, the charging, the traces and the answers; the
candidate process owns nothing but its code and proxies (:mod:`tts_gym.sandbox.child.runtime`).

Per round the broker reads one BATCH (parsed defensively: sizes capped, every index checked,
the order of an episode's requests enforced), serves its primitives with one jitted call per
store (:func:`tts_gym.sandbox.kernel.broker_apply`: the env's own ``env_step``), records
answers, notes and failures, and writes one REPLY. It believes nothing the child says about
cost or correctness: tokens are the env's counters, answers are mapped to the store's ids here
and an answer that was never revealed in its episode is recorded as unrevealed (scored wrong).

The candidate never learns which question an episode plays (:mod:`tts_gym.sandbox.identity`):
its episode ``i`` is the unit's episode ``perm[i]`` (a secret permutation). The broker keeps
every per-episode array in the candidate's order (``qs[i] = perm[i]`` is the question the
kernels play), so a round needs no translation; answers, tokens, statistics and traces are put
back in store order by :meth:`Broker.outcome`, and :meth:`Broker.where` names the question of
an episode in error messages. Blame is the broker's own record of the turn order
(:func:`~tts_gym.sandbox.kernel.take_turns`), never something the candidate process writes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import marshal
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_gym.env.dynamics import new_book
from tts_gym.env.params import DEFAULT_MAX_BRANCHES
from tts_gym.evaluation.orders import protocol_orders
from tts_gym.kernels.state import BOOK_LABEL_OF, COST, EP_COUNTERS, EP_ORDER, OPENED
from tts_gym.kernels.transitions import COST_MODES, MODE_REFERENCE, env_data, new_episode
from tts_gym.kernels.votes import beta_conf_table
from tts_gym.sandbox import frames, kernel, serve_loop
from tts_gym.sandbox.child import wire
from tts_gym.sandbox.child.isolation import UID_BASE
from tts_gym.sandbox.child.runtime import CANDIDATE_MODULES, compile_candidate
from tts_gym.sandbox.identity import episode_plan, unit_secret
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.returns import (
    decode_answer,
    decode_failure,
    decode_note,
    decode_schedule,
    decode_setup_failure,
)
from tts_gym.sandbox.sanitize import clean_json, clean_text, parse_json, secret_values
from tts_gym.sandbox.zygote_client import ChildProcess, ZygoteClient, cpu_seconds
from tts_gym.store import ReplayStore
from tts_gym.store.combine import concat_stores
from tts_gym.store.limits import MAX_ANSWER_CHARS as STORE_MAX_ANSWER_CHARS

MAX_ANSWER_CHARS = STORE_MAX_ANSWER_CHARS
"""Longest answer kept (characters): the store's bound; a longer one is scored wrong."""
MAX_NOTE_CHARS = wire.MAX_NOTE_CHARS
MAX_NOTES_PER_EPISODE = wire.MAX_NOTES_PER_EPISODE
MAX_ERROR_CHARS = wire.MAX_ERROR_CHARS
MAX_TRACE_BYTES = 4 * 2**20
"""Trace volume one unit records at most (bytes, counted as :func:`event_bytes`), shared
evenly by its episodes: past its share an episode's events are dropped (its answer or failure
is always kept) and one ``trace_cut`` event says how many and how many bytes."""
OPS = ("", "probe_new", "probe_more", "full_read", "prune", "answer", "note", "fail")
STAT_OPS = ("probe_new", "probe_more", "full_read", "prune", "note", "refused")
_REFUSAL = {
    wire.ST_BAD_SLOT: "slot out of range",
    wire.ST_NOT_OPENED: "slot not opened",
    wire.ST_FINISHED: "slot finished",
    wire.ST_PRUNED: "slot pruned",
    wire.ST_STEP_LIMIT: "step limit",
}


class ProtocolError(Exception):
    """The candidate process broke the pipe protocol (a broken or hostile runtime).

    Attributes:
        episode: The candidate's episode whose turn it was by the broker's record, when the
            broker knows it (None otherwise).
    """

    def __init__(self, message: str, episode: int | None = None) -> None:
        super().__init__(message)
        self.episode = episode


@dataclass(frozen=True)
class UnitSpec:
    """One unit of work: a candidate process playing one seed over whole stores.

    Attributes:
        source: The candidate file's text.
        filename: Its name in tracebacks and error messages.
        params: Keyword arguments of ``Controller(...)`` (``{"beta": 0.3}`` in discovery).
        store_keys: Stores (``"<model>/<benchmark>"``) whose questions are played, all of them.
        seed: The protocol's shuffle seed.
        traces: Record execution traces (and let the candidate's notes through).
        schedule_beta: Ask the candidate for ``schedule(beta)`` first (discovery), or None.
        imports: Modules the candidate may import (a subset of the pre-imported ones).
        max_branches, cost_mode: The env settings (the paper's 64 and ``"reference"``).
        deadline: ``time.monotonic()`` by which the unit must end (a sweep's overall limit),
            or None; the unit's own limit is ``SandboxLimits.timeout_s`` either way.
        secret: The unit's identity secret (32 bytes: the permutation of its episodes and
            their random seeds), or None for :func:`spec_secret` (the per-user key's HMAC of
            the unit; :func:`~tts_gym.sandbox.units.run_units` fills it in on the trusted
            side before a unit travels to a worker).
    """

    source: str
    filename: str
    params: dict[str, Any]
    store_keys: tuple[str, ...]
    seed: int
    traces: bool = False
    schedule_beta: float | None = None
    imports: tuple[str, ...] = CANDIDATE_MODULES
    max_branches: int = DEFAULT_MAX_BRANCHES
    cost_mode: str = "reference"
    deadline: float | None = None
    secret: bytes | None = None


@dataclass
class StoreOutcome:
    """What one unit produced on one store (``[Q]`` arrays, question order).

    Attributes:
        answer_ids: int32 answer ids in the store's table (-1 None, -2 a string no branch
            produced).
        answers: The submitted strings (cleaned, capped), None for no answer.
        revealed: bool, the answer was revealed in its episode (None counts as revealed).
        tokens: int64 tokens charged.
        stats: ``op -> int64 [Q]`` primitive counts (``probe_new``, ``probe_more``,
            ``full_read``, ``prune``, ``note``, ``refused``), and ``opened``.
        traces: Per question the broker's event list, when traces were asked for.
    """

    answer_ids: np.ndarray
    answers: list[str | None]
    revealed: np.ndarray
    tokens: np.ndarray
    stats: dict[str, np.ndarray]
    traces: list[list[dict[str, Any]]] | None = None


@dataclass
class UnitResult:
    """The outcome of one unit.

    Attributes:
        status: ``"ok"`` or ``"error"``.
        error: When ``"error"``: ``kind`` (exception, bad_return, watchdog, step_limit,
            memory, load, schedule, timeout, stalled, cpu_limit, crash, protocol, isolation),
            ``summary`` (one line), ``traceback`` (candidate frames only), ``store``,
            ``question`` and ``seed`` when one episode is to blame, or ``suspects`` (a list
            of ``{"store", "question"}``) when the broker knows only that one of several
            episodes held the turn.
        stores: ``store key -> StoreOutcome`` (only when ``"ok"``).
        schedule: The candidate's ``schedule(beta)`` when it was asked for.
        layers: The isolation report of the candidate process.
        seconds: Wall time of the unit.
        child_cpu_s: CPU seconds the candidate process used.
        turn_cpu_s: The most CPU seconds the broker measured in one turn of the candidate
            process (sampled from ``/proc`` every 50 ms, so turns shorter than that count as 0).
    """

    status: str
    error: dict[str, Any] | None = None
    stores: dict[str, StoreOutcome] = field(default_factory=dict)
    schedule: dict[str, Any] | None = None
    layers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    child_cpu_s: float = 0.0
    turn_cpu_s: float = 0.0


def spec_secret(spec: UnitSpec, stores: dict[str, ReplayStore]) -> bytes:
    """The unit's identity secret: ``spec.secret``, else the per-user key's HMAC of what
    decides the unit's play (:func:`~tts_gym.sandbox.identity.unit_secret`)."""
    if spec.secret is not None:
        return spec.secret
    return unit_secret(spec.source, spec.params, spec.seed,
                       [(k, stores[k].sha256) for k in spec.store_keys],
                       (spec.max_branches, spec.cost_mode))


class Broker:
    """The state and request handling of one unit (see the module docstring).

    All episodes live in one concatenated store (:func:`~tts_gym.store.combine.concat_stores`)
    so one jitted call serves a whole round, whatever the number of stores.
    """

    def __init__(self, spec: UnitSpec, stores: dict[str, ReplayStore], limits: SandboxLimits):
        self.spec = spec
        self.limits = limits
        self.secrets = secret_values()  # read once per unit, not once per answer
        self.slots = int(spec.max_branches)
        self.mode = COST_MODES.get(spec.cost_mode, MODE_REFERENCE)
        self.conf = beta_conf_table(self.slots)
        parts = [stores[k] for k in spec.store_keys]
        self.parts = parts
        self.store = _combined(parts)
        store = self.store
        n = store.n_questions
        self.n = n
        self.data = env_data(store)
        # the candidate's episode i plays the unit's episode perm[i]; every per-episode array
        # below is in the candidate's order
        self.perm, self.seeds = episode_plan(spec_secret(spec, stores), n)
        self.inv = np.argsort(self.perm)  # the candidate's position of each unit episode
        self.qs = self.perm.copy()
        episode = new_episode(store.width, self.slots)
        self.ep = tuple(np.repeat(a[None], n, axis=0) for a in episode)
        book = new_book(self.slots, store.max_probes, store.max_answers)
        self.book = tuple(np.repeat(a[None], n, axis=0) for a in book)
        self.ep[EP_ORDER][:] = protocol_orders(store, [spec.seed])[0][self.perm]
        kernel.broker_reset(store.n_branches, self.qs, self.ep, self.book, self.slots)
        self.counts = np.zeros(store.max_answers + 1, np.int64)
        self.steps = np.zeros(n, np.int64)
        self.stats = np.zeros((n, len(STAT_OPS)), np.int64)
        self.sent = np.zeros(n, np.int64)
        self.done = np.zeros(n, np.uint8)
        self.charged = np.zeros(n, np.int64)  # tokens at the last traced event
        self.answer_ids = np.full(n, -1, np.int32)
        self.answers: list[str | None] = [None] * n
        self.revealed = np.ones(n, bool)
        self.tokens = np.zeros(n, np.int64)
        self.traces: list[list[dict[str, Any]]] | None = (
            [[] for _ in range(n)] if spec.traces else None)
        # trace bytes each episode may still record, and what it dropped past that
        self.trace_room = np.full(n, MAX_TRACE_BYTES // max(n, 1), np.int64)
        self.trace_dropped = np.zeros((n, 2), np.int64)  # events, bytes
        self.error: dict[str, Any] | None = None
        self.error_rank = -1  # the failing question's rank while its batch is recorded
        self.offsets = np.cumsum([0] + [p.n_questions for p in parts])
        self.labels = _label_table(store)
        # the turn order (take_turns): START runs every episode in order
        self.order = np.arange(n, dtype=np.int64)
        self.n_order = np.array([n], np.int64)
        self.blocked = np.zeros(max(n, 1), np.int64)
        self.turn_open = False  # a reply (or START) was sent and no batch read since
        self.frames = np.zeros(1, np.int64)  # frames read from the child (the guard's counter)
        self.start_frames = -1  # frames read when START was sent
        self.max_entries = frames.max_batch_entries(n)
        self._allocate(2 * n + 16)  # grown when a batch is larger, up to max_entries
        # each broker calls the kernels through entry points typed by its own first calls
        # (its arrays' dtypes), made below before a candidate's clock starts
        self._serve = kernel.FastCall(kernel.serve_batch)
        self._loop = kernel.FastCall(serve_loop.serve_loop)
        self._turns = kernel.FastCall(kernel.take_turns)
        self._parse = kernel.FastCall(frames.parse_batch)
        if not limits.python_loop:  # a read on fd -1 fails at once: compiles (or loads) only
            self.loop(-1, -1, np.zeros(1, np.int64))
        # typed like the later calls: views of the parser's scratch arrays
        self._parse(self.inbuf, 0, n, self.max_entries, self.entries, self.str_offsets)
        no_entries = self.entries[:0]
        self._serve(self.data, store.n_branches, self.qs, self.ep, self.book, no_entries, 0,
                    self.done, self.steps, self.stats, self.sent, self.slots, self.mode,
                    self.conf, self.counts, 0, *self.out)
        self._turns(no_entries, self.order, self.n_order, self.blocked)

    def _allocate(self, cap: int) -> None:
        """Output, parser and loop buffers for batches of up to ``cap`` entries (kept
        together; ``cap`` is at most :attr:`max_entries`, checked by the parser first). A
        reply reveals at most one answer string per episode (one request each per batch), so
        its buffer holds ``min(cap, episodes)`` of the store's longest answer."""
        cap = min(int(cap), self.max_entries)
        self.out = kernel.new_outputs(cap)
        offsets = self.labels[1]
        longest = int(np.max(np.diff(offsets))) if len(offsets) > 1 else 0
        self.entries = np.zeros((cap, 3), np.int32)
        self.str_offsets = np.zeros(cap + 1, np.int64)
        self.inbuf = np.zeros(32 + 12 * cap, np.uint8)
        self.outbuf = np.zeros(64 + 64 * cap + min(cap, self.n) * (longest + 8), np.uint8)
        self.reply_bytes = self.out[0].view(np.uint8).reshape(-1)

    def loop(self, rfd: int, wfd: int, progress: np.ndarray) -> tuple[int, int, int]:
        """Run the compiled loop (:func:`~tts_gym.sandbox.serve_loop.serve_loop`)."""
        reply, answer_ids, new, others = self.out
        return self._loop(
            rfd, wfd, self.inbuf, self.outbuf, self.entries, self.str_offsets, self.max_entries,
            progress, self.data,
            self.store.n_branches, self.qs, self.ep, self.book, self.done, self.steps,
            self.stats, self.sent, self.slots, self.mode, self.conf, self.counts,
            self.limits.max_steps, reply, self.reply_bytes, answer_ids, new, others,
            *self.labels, self.order, self.n_order, self.blocked,
        )

    # --- START -------------------------------------------------------------------------------
    def start_message(self) -> bytes:
        """The START payload: the source, parameters and one entry per episode."""
        cap = np.minimum(self.store.n_branches, self.slots)[self.perm]
        eps = [{"capacity": int(c), "seed": int(s)}
               for c, s in zip(cap.tolist(), self.seeds.tolist(), strict=True)]
        job = {
            "source": self.spec.source,
            "filename": self.spec.filename,
            "params": self.spec.params,
            "episodes": eps,
            "traces": self.spec.traces,
            "schedule_beta": self.spec.schedule_beta,
            "imports": list(self.spec.imports),
            "code": compiled(self.spec.source, self.spec.filename),
            "python": sys.version,
            "watchdog_s": self.limits.watchdog_s,
            "max_answer_chars": MAX_ANSWER_CHARS,
        }
        return wire.text_message(wire.START, json.dumps(job))

    def where(self, e: int) -> dict[str, Any]:
        """Store, question and seed of the candidate's episode ``e`` (for error messages)."""
        u = int(self.perm[e])
        k = int(np.searchsorted(self.offsets, u, side="right")) - 1
        return {"store": self.spec.store_keys[k], "question": int(u - self.offsets[k]),
                "seed": self.spec.seed}

    @property
    def loading(self) -> bool:
        """START was sent and no frame came since: the file's top-level code may be running."""
        return self.start_frames >= 0 and int(self.frames[0]) == self.start_frames

    def turn(self) -> list[int]:
        """The episodes that may hold the turn now, by the broker's own record: those the last
        reply (or START) resumed, in turn order; empty while the broker owes a reply."""
        if not self.turn_open:
            return []
        return [int(e) for e in self.order[: int(self.n_order[0])]]

    # --- one round ---------------------------------------------------------------------------
    def parse(self, payload: bytes) -> tuple[int, np.ndarray, list[str]]:
        """Check a BATCH payload with :func:`~tts_gym.sandbox.frames.parse_batch` (the fast
        loop's parser too) and decode its strings.

        Returns:
            ``(code, entries int32 [n, 3] (a view of the scratch array), strings)``; ``code``
            is ``FR_OK`` or ``FR_SETUP`` (the "did not load" report).

        Raises:
            ProtocolError: The frame is malformed (one line naming what and where).
        """
        buf = np.frombuffer(payload, np.uint8)
        n_eps = self.n
        code, n, n_str, _o, where, value = self._parse(buf, len(buf), n_eps, self.max_entries,
                                                        self.entries, self.str_offsets)
        if code == frames.FR_SPACE:
            self._allocate(max(n, 2 * len(self.entries)))
            code, n, n_str, _o, where, value = self._parse(
                buf, len(buf), n_eps, self.max_entries, self.entries, self.str_offsets)
        entries = self.entries[:n]
        if code not in (frames.FR_OK, frames.FR_SETUP):
            raise ProtocolError(self.frame_error(code, where, value, entries, n_str))
        bounds = self.str_offsets[: n_str + 1].tolist()
        strings = [payload[a:b].decode("utf-8", "replace")
                   for a, b in zip(bounds, bounds[1:], strict=False)]
        return code, entries, strings

    def frame_error(self, code: int, where: int, value: int, entries: np.ndarray,
                    n_str: int) -> str:
        """The one-line protocol error of a frame the parser refused."""
        limit = frames.limit_of(code, self.n, self.max_entries, where, entries, n_str)
        return "malformed batch: " + frames.describe(code, value, where, limit)

    def handle(self, payload: bytes) -> bytes:
        """Serve one BATCH payload; returns the REPLY payload.

        Raises:
            ProtocolError: The batch breaks the protocol (framing, index, op, order).
        """
        code, entries, strings = self.parse(payload)
        if code == frames.FR_SETUP:
            raise ProtocolError(self.frame_error(code, 0, -1, entries, len(strings)))
        self.turn_open = False
        bad = self._turns(entries, self.order, self.n_order, self.blocked)
        if bad >= 0:
            holder = int(kernel.turn_holder(entries, bad, self.order, self.n_order))
            raise ProtocolError("it sent a request out of its episodes' turn order",
                                None if holder < 0 else holder)
        n = len(entries)
        reply, answer_ids, new, others = self.out
        err, n_new, n_others = self._serve(
            self.data, self.store.n_branches, self.qs, self.ep, self.book, entries,
            len(strings), self.done, self.steps, self.stats, self.sent, self.slots, self.mode,
            self.conf, self.counts, self.limits.max_steps, reply, answer_ids, new, others,
        )
        if err == kernel.ERR_FLOOD:
            self._fail(int(others[0]), "step_limit",
                       f"kept calling primitives after the limit of {self.limits.max_steps}", "")
            return wire.encode_reply(reply[:0], [], [])
        if err != kernel.ERR_NONE:
            raise ProtocolError(kernel.PROTOCOL_ERRORS[err])
        pairs, texts = [], []
        if n_new:
            answer_string = self.store.answer_string
            qs = self.qs
            for j, e, lab in new[:n_new].tolist():
                pairs.append((e, lab))
                texts.append(answer_string(int(qs[e]), int(answer_ids[j])) or "")
        if self.traces is not None:
            self._trace(entries, reply, answer_ids)
        if n_others:
            rows = entries.tolist()
            self.error_rank = -1  # failures of one batch compete for the report (see _fail)
            for j in others[:n_others].tolist():
                e, op, arg = rows[j]
                if self.error is None or op == wire.OP_FAIL:
                    self._record(e, op, arg, strings)
        return wire.encode_reply(reply[:n], pairs, texts)

    def _trace(self, entries: np.ndarray, reply: np.ndarray, answer_ids: np.ndarray) -> None:
        assert self.traces is not None
        room = self.trace_room
        for j, (e, op, arg) in enumerate(entries.tolist()):
            if op > wire.OP_PRUNE:
                continue  # notes, answers and failures are traced by _record
            st, _lab, fin, slot, _opened, tok = reply[j].tolist()
            name = OPS[op]
            if st == wire.ST_NONE_LEFT:
                ev: dict[str, Any] = {"op": name, "none_left": True}
            elif st != wire.ST_OK:
                ev = {"op": name, "slot": arg, "refused": _REFUSAL.get(st, "")}
            else:
                ev = {"op": name, "slot": slot}
                if op != wire.OP_PRUNE:
                    ev["answer"] = self.store.answer_string(int(self.qs[e]), int(answer_ids[j]))
                    if op != wire.OP_FULL_READ:
                        ev["finished"] = bool(fin)
                    ev["tokens"] = tok - int(self.charged[e])
                self.charged[e] = tok
            size = event_bytes(ev)
            if size > room[e]:
                self._drop(e, size)
                continue
            room[e] -= size
            self.traces[e].append(ev)

    def _drop(self, e: int, size: int) -> None:
        """Count an event of episode ``e`` that its trace share has no room for."""
        self.trace_room[e] = 0  # later events are dropped too: the kept trace is a prefix
        self.trace_dropped[e, 0] += 1
        self.trace_dropped[e, 1] += size

    def _record(self, e: int, op: int, arg: int, strings: list[str]) -> None:
        if op == wire.OP_NOTE:
            if self.traces is None or self.stats[e, 4] > MAX_NOTES_PER_EPISODE:
                return
            size = len(strings[arg]) + _EVENT_BYTES
            if size > self.trace_room[e]:  # not even decoded
                self._drop(e, size)
                return
            event = decode_note(strings[arg], self.secrets)
            self.trace_room[e] -= event_bytes(event)
            self.traces[e].append(event)
        elif op == wire.OP_ANSWER:
            self._finish(e, None if arg < 0 else strings[arg])
        elif op == wire.OP_FAIL:
            kind, summary, tb, line = decode_failure(strings[arg], self.secrets)
            self._fail(e, kind, summary, tb, line)

    def _finish(self, e: int, answer: str | None) -> None:
        self.tokens[e] = self.ep[EP_COUNTERS][e, COST]
        over = False
        if answer is None:
            self.answer_ids[e] = -1
            self.answers[e] = None
        else:
            answer, over = decode_answer(answer)
            # longer than any store answer: no branch produced it (scored wrong)
            aid = -2 if over else self.store.answer_id(int(self.qs[e]), answer)
            self.answer_ids[e] = aid
            self.answers[e] = clean_text(answer, MAX_ANSWER_CHARS + (3 if over else 0),
                                         multiline=False, secrets=self.secrets) + (
                "..." if over else "")
            self.revealed[e] = aid >= 0 and bool(self.book[BOOK_LABEL_OF][e, aid] >= 0)
        if self.traces is not None:
            dropped, size = self.trace_dropped[e].tolist()
            if dropped:
                self.traces[e].append({"op": "trace_cut", "dropped_events": dropped,
                                       "dropped_bytes": size,
                                       "limit_bytes": MAX_TRACE_BYTES // max(self.n, 1)})
            self.traces[e].append({"op": "finish", "answer": self.answers[e],
                                   "tokens": int(self.tokens[e]),
                                   **({"answer_over_bound": MAX_ANSWER_CHARS} if over else {}),
                                   **({} if self.revealed[e] else {"unrevealed": True})})

    def _fail(self, e: int, kind: str, summary: Any, tb: Any, line: Any = None) -> None:
        """Record episode ``e``'s failure as the unit's error. Of several failures in one batch
        the one of the first question (in store order) is reported, so which one is named does
        not depend on the secret order the candidate played them in."""
        rank = int(self.perm[e])
        if self.error is not None and not 0 <= rank < self.error_rank:
            return
        self.error_rank = rank
        self.done[e] = 1
        self.error = {
            "kind": kind,
            "summary": clean_text(summary, 500, multiline=False, secrets=self.secrets),
            "traceback": clean_text(tb, MAX_ERROR_CHARS, secrets=self.secrets),
            "line": line if isinstance(line, int) and not isinstance(line, bool) else None,
            **self.where(e),
        }

    @property
    def all_done(self) -> bool:
        """Every episode answered or failed."""
        return bool(self.done.all())

    def outcome(self) -> dict[str, StoreOutcome]:
        """Per store, the recorded answers, tokens, statistics and traces (in question order:
        the candidate's order put back)."""
        out = {}
        for k, key in enumerate(self.spec.store_keys):
            sl = self.inv[int(self.offsets[k]) : int(self.offsets[k + 1])]  # positions
            stats = {name: self.stats[sl, c].copy() for c, name in enumerate(STAT_OPS)}
            stats["opened"] = self.ep[EP_COUNTERS][sl, OPENED].copy()
            maj = self.parts[k].majority_final
            label_of = self.book[BOOK_LABEL_OF][sl]
            given = self.answer_ids[sl]
            stats["majority_missed"] = np.array(  # the 128-branch majority was seen, not chosen
                [m >= 0 and label_of[q, m] >= 0 and given[q] != m for q, m in enumerate(maj)],
                np.int64)
            out[key] = StoreOutcome(
                answer_ids=self.answer_ids[sl].copy(),
                answers=[self.answers[i] for i in sl.tolist()],
                revealed=self.revealed[sl].copy(),
                tokens=self.tokens[sl].copy(),
                stats=stats,
                traces=None if self.traces is None else [self.traces[i] for i in sl.tolist()],
            )
        return out


_EVENT_BYTES = 200
"""What a trace event costs in memory beyond its strings (a small dict), in bytes."""


def event_bytes(event: dict[str, Any]) -> int:
    """The bytes a trace event is counted as: :data:`_EVENT_BYTES` plus the characters of its
    keys and string values (top level; nested values by their ``repr`` length)."""
    size = _EVENT_BYTES
    for k, v in event.items():
        size += len(k) + (len(v) if isinstance(v, str) else 8 if isinstance(
            v, (int, float, bool)) or v is None else len(repr(v)))
    return size


_COMBINED: dict[tuple[str, ...], ReplayStore] = {}
_LABELS: dict[str, tuple[np.ndarray, ...]] = {}
_CODE: dict[tuple[str, str], str | None] = {}
_QUIET = threading.Lock()  # warnings.catch_warnings changes process-wide state


def compiled(source: str, filename: str) -> str | None:
    """The candidate file compiled (never run) in this process, marshalled and base64-encoded
    for START, cached per (source, filename): a command's units share one compilation instead
    of compiling in each candidate process (~1.5 ms each). None when it does not compile: the
    candidate process then compiles it and reports the error as a load failure."""
    key = (source, filename)
    cached = _CODE.get(key, False)  # one lookup: another thread may clear the cache meanwhile
    if not isinstance(cached, bool):  # a cached code object, or None (does not compile)
        return cached
    try:
        with _QUIET, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the file's text never reaches our stderr
            code = marshal.dumps(compile_candidate(source, filename))
        got: str | None = base64.b64encode(code).decode("ascii")
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError, OverflowError):
        got = None
    if len(_CODE) > 16:
        _CODE.clear()
    _CODE[key] = got
    return got


def _label_table(store: ReplayStore) -> tuple[np.ndarray, ...]:
    got = _LABELS.get(store.sha256)
    if got is None:
        if len(_LABELS) > 8:
            _LABELS.clear()
        got = _LABELS[store.sha256] = serve_loop.label_table(store)
    return got


def _combined(parts: list[ReplayStore]) -> ReplayStore:
    """The concatenation of ``parts``, cached per (store digests) in this process."""
    key = tuple(p.sha256 for p in parts)
    got = _COMBINED.get(key)
    if got is None:
        if len(_COMBINED) > 8:
            _COMBINED.clear()
        got = _COMBINED[key] = concat_stores(parts)
    return got


# --- running a unit --------------------------------------------------------------------------
class _Guard(threading.Thread):
    """Kills a candidate process that misses its deadline, stops talking, or computes in one
    turn more than the watchdogs of the episodes it resumed allow.

    The broker thread blocks in plain reads (no ``select`` per round); when the guard kills
    the child, that read ends with EOF and :attr:`reason` says why (``"startup"``,
    ``"timeout"``, ``"stalled"`` or ``"turn_cpu"``). A turn is the time between two frames
    from the child; every 50 ms of a turn the guard reads the child's CPU from ``/proc`` and
    compares what the turn used with ``limits.turn_cpu_s`` of the episodes the broker's record
    says it resumed (:meth:`Broker.turn`; one more while the file may still be loading). A
    candidate pid cannot be reused while the guard runs: the fork server reaps it only when the
    broker asks, after the guard has stopped.
    """

    def __init__(self, pid: int, limits: SandboxLimits, broker: Broker | None = None) -> None:
        super().__init__(daemon=True, name=f"tts-sandbox-guard-{pid}")
        self.pid = pid
        self.stall_s = limits.stall_limit_s
        self.limits = limits
        self.broker = broker
        self.deadline = float("inf")
        self.kind = "startup"
        self.progress = np.zeros(1, np.int64)  # frames read (also by the compiled loop)
        self.reason: str | None = None
        self.turn_cpu = 0.0  # the most CPU seconds seen in one turn
        self.turn_limit = 0.0  # the limit of the turn that was stopped
        self.done = threading.Event()

    def set_deadline(self, deadline: float, kind: str) -> None:
        self.deadline = deadline
        self.kind = kind

    def _turn_limit(self) -> float:
        b = self.broker
        assert b is not None
        return self.limits.turn_cpu_s(int(b.n_order[0]) + (1 if b.loading else 0))

    def run(self) -> None:
        seen, since = -1, time.monotonic()
        cpu0: float | None = None
        while not self.done.wait(0.05):
            now = time.monotonic()
            progress = int(self.progress[0])
            if progress != seen:
                seen, since, cpu0 = progress, now, None
            reason = None
            if now > self.deadline:
                reason = self.kind
            elif self.kind != "startup":
                if now - since > self.stall_s:
                    reason = "stalled"
                elif self.broker is not None:
                    cpu = cpu_seconds(self.pid)
                    if cpu0 is None:
                        cpu0 = cpu  # the turn's first sample
                    else:
                        used = cpu - cpu0
                        self.turn_cpu = max(self.turn_cpu, used)
                        limit = self._turn_limit()
                        if used > limit:
                            self.turn_limit = limit
                            reason = "turn_cpu"
            if reason is not None:
                self.reason = reason
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
                return


def _proc_status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError:
        return {}


def verify_isolation(pid: int) -> str | None:
    """Check from outside (``/proc/<pid>/status``) what the child reported: no_new_privs, a
    seccomp filter, and an unprivileged uid when this process is root. Returns the problem,
    or None."""
    st = _proc_status(pid)
    if not st:
        return "its /proc entry is unreadable"
    if st.get("NoNewPrivs", "").strip() != "1":
        return "no_new_privs is not set"
    if st.get("Seccomp", "").strip() != "2":
        return "no seccomp filter is installed"
    if os.geteuid() == 0:
        uids = [int(x) for x in st.get("Uid", "0").split()]
        if any(u < UID_BASE for u in uids):
            return f"it still runs as uid {uids}"
    return None


def _exit_error(code: int, limits: SandboxLimits, episodes: int) -> dict[str, Any]:
    if code in (-signal.SIGXCPU, -signal.SIGKILL):
        cpu = limits.process_cpu_s(episodes)
        how = "" if limits.cpu_s is not None else (
            f" (the {limits.watchdog_s:g} s watchdog + {limits.episode_cpu_s:g} s per episode x "
            f"{episodes} episodes)")
        return {"kind": "cpu_limit",
                "summary": f"the candidate process exceeded its CPU limit of {cpu:g} s{how}"}
    if code == 71:
        return {"kind": "isolation", "summary": "the candidate process could not be isolated"}
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return {"kind": "crash", "summary": f"the candidate process died ({name})"}
    return {"kind": "crash", "summary": f"the candidate process exited early (code {code})"}


class _Session:
    """The pipe conversation of one unit (the guard watches its clock)."""

    def __init__(self, broker: Broker, child: ChildProcess, limits: SandboxLimits,
                 guard: _Guard) -> None:
        self.broker = broker
        self.child = child
        self.limits = limits
        self.guard = guard
        self.reader = wire.FrameReader(child.from_child, wire.MAX_FRAME)
        self.layers: dict[str, Any] = {}
        self.schedule: dict[str, Any] | None = None

    def read(self, max_bytes: int = wire.MAX_FRAME) -> bytes:
        frame = self.reader.read()
        if len(frame) > max_bytes:
            raise wire.WireError(f"message of {len(frame)} bytes (limit {max_bytes})")
        self.guard.progress[0] += 1
        return frame

    def hello(self) -> dict[str, Any] | None:
        self.guard.set_deadline(time.monotonic() + self.limits.startup_s, "startup")
        text = wire.parse_text_message(self.read(1 << 20), wire.HELLO, 1 << 20)
        info = parse_json(text, 1 << 20)
        if not isinstance(info, dict):
            return {"kind": "isolation", "summary": "the candidate process sent no layer report"}
        if "error" in info:
            self.layers = clean_json(info.get("report") or {}, secrets=self.broker.secrets)
            return {"kind": "isolation",
                    "summary": clean_text(info["error"], 500, secrets=self.broker.secrets)}
        self.layers = clean_json(info, secrets=self.broker.secrets)
        problem = None if self.limits.unsafe else verify_isolation(self.child.pid)
        if problem:
            return {"kind": "isolation",
                    "summary": f"the candidate process is not isolated: {problem}"}
        return None

    def converse(self) -> None:
        b = self.broker
        deadline = time.monotonic() + self.limits.timeout_s
        if b.spec.deadline is not None:
            deadline = min(deadline, b.spec.deadline)
        self.guard.set_deadline(deadline, "timeout")
        b.frames = self.guard.progress
        b.start_frames = int(b.frames[0])
        wire.send_frame(self.child.to_child, b.start_message())
        b.turn_open = True  # every episode runs, after the file's top-level code
        if b.spec.schedule_beta is not None:
            frame = self.read(1 << 20)
            if frame[:1] == bytes([wire.SCHEDULE]):
                self.schedule = self._schedule(frame)
                if b.error is not None:
                    return
            else:
                self._batch(frame)
        fast = b.traces is None and not self.limits.python_loop
        while not b.all_done and b.error is None:
            if fast and not self.reader.buf:
                self._fast_round()
            else:
                self._batch(self.read())

    def _fast_round(self) -> None:
        """Let the compiled loop serve rounds until one needs Python (see serve_loop)."""
        b = self.broker
        code, length, detail = b.loop(self.child.from_child, self.child.to_child,
                                      self.guard.progress)
        if code == serve_loop.LOOP_PYTHON:
            self._batch(bytes(b.inbuf[:length]))
        elif code == serve_loop.LOOP_BIG:
            if length == 0 or length > wire.MAX_FRAME:
                raise wire.WireError(f"frame of {length} bytes (limit {wire.MAX_FRAME})")
            self.reader.buf = length.to_bytes(4, "little") + self.reader.buf
            self._batch(self.read())
        elif code == serve_loop.LOOP_EOF:
            raise EOFError("the candidate process closed its pipe")
        elif code == serve_loop.LOOP_FRAME:
            # the parser refused the frame in inbuf[:length]: the Python reader's parse of
            # the same bytes gives the same verdict and names what was wrong
            b.parse(bytes(b.inbuf[:length]))
            raise ProtocolError("malformed batch")  # not reached: the parser refuses it
        elif code == serve_loop.LOOP_PROTOCOL:
            if detail == kernel.ERR_FLOOD:
                b._fail(int(b.out[3][0]), "step_limit", "kept calling primitives after the "
                        f"limit of {self.limits.max_steps}", "")
            else:
                raise ProtocolError(kernel.PROTOCOL_ERRORS.get(detail, "bad batch"))

    def _schedule(self, frame: bytes) -> dict[str, Any]:
        text = wire.parse_text_message(frame, wire.SCHEDULE, 1 << 20)  # the read's cap
        value, error = decode_schedule(text, self.broker.secrets)
        if error is not None:
            self.broker.error = {**error, "seed": self.broker.spec.seed}
            return {}
        assert value is not None
        return value

    def _batch(self, frame: bytes) -> None:
        b = self.broker
        # "did not load" is the first frame after START or nothing (the frame is counted)
        if int(b.frames[0]) == b.start_frames + 1:
            code, _entries, strings = b.parse(frame)
            if code == frames.FR_SETUP:
                b.error = {**decode_setup_failure(strings[0], b.secrets), "seed": b.spec.seed}
                return
        wire.send_frame(self.child.to_child, b.handle(frame))
        b.turn_open = True


def run_unit(
    spec: UnitSpec,
    stores: dict[str, ReplayStore],
    limits: SandboxLimits,
    client: ZygoteClient,
) -> UnitResult:
    """Play one unit: spawn an isolated candidate process, serve it, collect the outcome.

    Never raises for anything the candidate does; a sandbox that cannot start raises
    :class:`~tts_gym.sandbox.zygote_client.SandboxUnavailable`.
    """
    start = time.monotonic()
    if spec.deadline is not None and start >= spec.deadline:
        return UnitResult(status="error", error={
            "kind": "timeout", "summary": f"the evaluation did not finish within "
            f"{limits.timeout_s:g} s", "seed": spec.seed, "traceback": ""})
    broker = Broker(spec, stores, limits)
    child = client.spawn(limits.plan(broker.n))
    guard = _Guard(child.pid, limits, broker)
    guard.start()
    session = _Session(broker, child, limits, guard)
    error: dict[str, Any] | None = None
    ended = False
    try:
        error = session.hello()
        if error is None:
            session.converse()
            error = broker.error
    except (EOFError, OSError):
        ended = True  # killed by the guard, or died: decided below
    except (ProtocolError, wire.WireError) as exc:
        error = {"kind": "protocol", "summary": "the candidate process broke the protocol: "
                 f"{clean_text(str(exc), 200)}"}
        holder = getattr(exc, "episode", None)
        if holder is not None:
            error.update(broker.where(holder))  # whose turn it was, by the broker's record
    finally:
        guard.done.set()
        guard.join()
        cpu = cpu_seconds(child.pid)
        code = client.reap(child)
    if ended:
        error = _ended_error(guard, code, limits, broker.n)
        blame(error, broker)
    result = UnitResult(status="ok" if error is None else "error", layers=session.layers,
                        schedule=session.schedule, seconds=time.monotonic() - start,
                        child_cpu_s=cpu, turn_cpu_s=guard.turn_cpu)
    if error is not None:
        error.setdefault("seed", spec.seed)
        error.setdefault("traceback", "")
        result.error = error
    else:
        result.stores = broker.outcome()
    return result


def blame(error: dict[str, Any], broker: Broker) -> None:
    """Name in ``error`` the episode(s) that held the turn when the process ended, by the
    broker's own record (:meth:`Broker.turn`): one episode by its store and question, several
    as ``suspects`` with a summary that says the broker cannot tell which (they were resumed
    together by one reply). Nothing when the broker owed the reply."""
    turn = sorted(broker.turn(), key=lambda e: int(broker.perm[e]))
    if not turn:
        return
    if len(turn) == 1 and not broker.loading:
        error.update(broker.where(turn[0]))
        return
    places = [broker.where(e) for e in turn]
    error["suspects"] = [{"store": w["store"], "question": w["question"]} for w in places]
    if len({w["store"] for w in places}) == 1:
        error["store"] = places[0]["store"]
    who = (f"the file's top-level code or one of the {len(turn)} episodes it started"
           if broker.loading else f"one of the {len(turn)} episodes the last reply resumed")
    error["summary"] = (f"{error.get('summary', '')}; {who} held the turn, and the broker "
                        "cannot tell which")


def _ended_error(guard: _Guard, code: int, limits: SandboxLimits,
                 episodes: int) -> dict[str, Any]:
    reason = guard.reason
    if reason == "turn_cpu":
        return {"kind": "cpu_limit", "summary": f"the candidate process used over "
                f"{guard.turn_limit:.1f} s of CPU in one turn, more than the {limits.watchdog_s:g}"
                " s watchdog allows the episodes it resumed (its timer was turned off)"}
    if reason == "timeout":
        return {"kind": "timeout",
                "summary": f"the unit did not finish within {limits.timeout_s:g} s"}
    if reason == "stalled":
        return {"kind": "stalled", "summary": "an episode kept the process busy without calling "
                "a primitive, beyond the watchdog's reach (e.g. inside one long C call)"}
    if reason == "startup":
        return {"kind": "isolation", "summary": "the candidate process did not start within "
                f"{limits.startup_s:g} s"}
    return _exit_error(code, limits, episodes)
