"""The published evaluation protocol (docs/reproducing.md).

For each shuffle seed s in 0..seeds-1 and each question q: one episode under the order of
``random.Random(s).shuffle``; accuracy = round(100 × mean over seeds of the fraction correct, 2),
avg_tokens = mean over seeds of the average tokens per question.
"""

from __future__ import annotations

import contextlib
import functools
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tts_gym.controller import controller_name, controller_params
from tts_gym.cpu_watchdog import EpisodeCpuExceeded, cpu_budget
from tts_gym.env.params import DEFAULT_MAX_BRANCHES
from tts_gym.env.replay_env import ReplayEnv
from tts_gym.evaluation.orders import protocol_orders
from tts_gym.evaluation.result import EvalResult
from tts_gym.evaluation.scoring import score
from tts_gym.executor import Executor, Job, LocalExecutor, current
from tts_gym.handle import QuestionHandle
from tts_gym.kernels.transitions import COST_MODES
from tts_gym.source_lines import where_returned
from tts_gym.store import ReplayStore

Chunk = tuple[np.ndarray, np.ndarray, list | None, np.ndarray]
"""``(answer ids int32 [S, Q], tokens int64 [S, Q], traces or None, unrevealed bool [S, Q])``."""

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_HANDLE_FILE = QuestionHandle.probe_new.__code__.co_filename
"""The primitives' module: time inside it is the env's, not the controller's (watchdog.py)."""


class ControllerError(RuntimeError):
    """A controller failed during the protocol: the message is one line naming the file and line
    (when the failure is in user code), the store, seed and question, and the exception;
    ``detail`` holds a short traceback (``tts-gym eval --debug`` prints it)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    def __reduce__(self) -> tuple:  # survives the process pool
        return (ControllerError, (str(self), self.detail))


def _user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost traceback frame outside tts_gym (the controller's own code)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not str(Path(f.filename).resolve()).startswith(_PACKAGE_DIR)]
    return frames[-1] if frames else None


def controller_error(exc: BaseException, store: ReplayStore, seed: int, q: int) -> ControllerError:
    """A :class:`ControllerError` for an exception raised by ``solve``."""
    frame = _user_frame(exc)
    where = f"{frame.filename}:{frame.lineno}: " if frame is not None else ""
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    return ControllerError(f"{where}{head} ({store.name}, seed {seed}, question {q})", detail)


def _progress(handle: QuestionHandle) -> tuple[int, int]:
    """What a controller has done so far (the watchdog's sign of progress)."""
    return handle.tokens_used, handle.n_opened


def _bad_answer(controller: Any, answer: Any, store: ReplayStore, seed: int, q: int) -> None:
    if answer is None or isinstance(answer, str):
        return
    code = getattr(getattr(type(controller), "solve", None), "__code__", None)
    where = ""
    if code is not None:
        try:
            source = Path(code.co_filename).read_text(errors="replace")
        except OSError:
            source = ""
        where = where_returned(code.co_filename, source, code.co_firstlineno)[0] + ": "
    raise ControllerError(
        f"{where}solve() returned {type(answer).__name__} {str(answer)[:60]!r}; answers are "
        f"strings (return str(...)) or None ({store.name}, seed {seed}, question {q})")


def protocol_seeds(seeds: int | Sequence[int]) -> list[int]:
    """The protocol's shuffle seeds: ``range(seeds)`` for a count, else the given list.

    Raises:
        ValueError: A count below 1 or an empty list.
    """
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}.")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("seeds must not be empty.")
    return out


def run_handle_episodes(
    controller: Any,
    store: ReplayStore,
    seeds: Sequence[int],
    cost_mode: str = "reference",
    traces: bool = False,
    max_branches: int = DEFAULT_MAX_BRANCHES,
    progress: Any = None,
) -> Chunk:
    """Play ``controller`` through the question handle on every (seed, question).

    Returns:
        ``(answer_ids int32 [S, Q], tokens int64 [S, Q], traces [S][Q] or None, unrevealed
        bool [S, Q])``.

    Raises:
        ControllerError: ``solve`` raised or returned something that is neither a string nor
            None (the message names file:line, store, seed and question).
    """
    env = ReplayEnv(store=store, max_branches=max_branches, cost_mode=cost_mode)
    n_s, n_q = len(seeds), store.n_questions
    answers = np.full((n_s, n_q), -1, np.int32)
    tokens = np.zeros((n_s, n_q), np.int64)
    unrevealed = np.zeros((n_s, n_q), bool)
    all_traces: list | None = [] if traces else None
    budget = getattr(controller, "_tts_gym_cpu_budget", None)  # a trusted file's (watchdog.py)
    for i, s in enumerate(seeds):
        row = []
        for q in range(n_q):
            env.reset(options={"question": q, "shuffle_seed": int(s)})
            handle = QuestionHandle(env, record_trace=traces)
            try:
                if budget is None:
                    answer = controller.solve(handle)
                else:
                    with cpu_budget(budget[1], budget[0], functools.partial(
                            _progress, handle), inside=_HANDLE_FILE):
                        answer = controller.solve(handle)
            except EpisodeCpuExceeded as exc:
                raise ControllerError(f"{exc} ({store.name}, seed {s}, question {q})") from None
            except Exception as exc:
                raise controller_error(exc, store, int(s), q) from exc
            _bad_answer(controller, answer, store, int(s), q)
            if handle.result is None:
                handle.submit(answer)
            result = handle.result
            assert result is not None  # submit() sets it
            answers[i, q] = store.answer_id(q, result["answer"])
            tokens[i, q] = result["tokens"]
            unrevealed[i, q] = not result.get("revealed", True)
            if traces:
                row.append(handle.trace)
        if all_traces is not None:
            all_traces.append(row)
        if progress is not None:
            progress(1)
    return answers, tokens, all_traces, unrevealed


@contextlib.contextmanager
def _chunk_context(shared: dict[str, Any], slot: int | None) -> Iterator[dict[str, Any]]:
    yield shared


def _run_chunk(ctx: dict[str, Any], rows: list[int]) -> Chunk:
    """Seeds ``ctx["seeds"][rows]``: the handle path, or (``ctx["orders"]`` set) the batch
    kernel on those rows of the protocol orders."""
    store, controller = ctx["store"], ctx["controller"]
    if ctx["orders"] is not None:
        orders = np.ascontiguousarray(ctx["orders"][rows])
        answers, tokens = controller.batch_solve(store, orders, COST_MODES[ctx["cost_mode"]])
        return answers, tokens, None, np.zeros(answers.shape, bool)
    seeds = [ctx["seeds"][i] for i in rows]
    return run_handle_episodes(controller, store, seeds, ctx["cost_mode"], ctx["traces"],
                               ctx["max_branches"])


SEED_CHUNK_JOB = Job("tts-gym-seeds", _chunk_context, _run_chunk)
"""Some shuffle seeds of one controller on one store per item (rows of the seed list)."""

CHUNKS_PER_SLOT = 4
"""Seed chunks per parallel slot on a distributed executor: enough to balance the load and to
make a lost worker cheap (its chunk is a quarter of its share), few enough that each task plays
many episodes (100 seeds of a 30-question store on 2 CPUs: 8 chunks of ~375 episodes, ~1 s on
the handle path, against ~5 ms of Ray's time per task)."""


BATCH_SPREAD_EPISODES = 200_000
"""Episodes (seeds x questions) from which the batch path is split over a distributed executor:
the batch kernels play ~10^5-10^6 episodes/s, so the published 100 seeds x 30 questions take
milliseconds here and would only pay the trip; a 10,000-question store is worth spreading."""


def seed_chunks(n_seeds: int, executor: Executor) -> list[list[int]]:
    """Rows of the seed list per chunk: strided, one chunk per worker of a local pool;
    consecutive, ``CHUNKS_PER_SLOT`` per slot of a distributed executor."""
    if not executor.distributed:
        n = min(executor.slots(), n_seeds)
        return [list(range(i, n_seeds, n)) for i in range(n)]
    n = min(n_seeds, CHUNKS_PER_SLOT * executor.slots())
    bounds = np.linspace(0, n_seeds, n + 1).round().astype(int)
    return [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def _run_parallel(
    controller: Any,
    store: ReplayStore,
    seeds: list[int],
    cost_mode: str,
    traces: bool,
    max_branches: int,
    executor: Executor,
    progress: Any,
    batch: bool = False,
) -> Chunk:
    chunks = seed_chunks(len(seeds), executor)
    orders = None
    if batch:
        orders = executor.share(protocol_orders(store, seeds),
                                ("orders", store.name, store.sha256, tuple(seeds)))
    shared = {
        "store": executor.share(store, ("store", store.name, store.sha256)),
        "controller": controller, "orders": orders, "seeds": seeds,
        "cost_mode": cost_mode, "traces": traces, "max_branches": max_branches,
    }
    tick = None if progress is None else (lambda part: progress(len(part[0])))
    parts = executor.map(SEED_CHUNK_JOB, shared, chunks, progress=tick)
    where = [(0, 0)] * len(seeds)
    for k, rows in enumerate(chunks):
        for j, i in enumerate(rows):
            where[i] = (k, j)
    answers = np.stack([parts[k][0][j] for k, j in where])
    tokens = np.stack([parts[k][1][j] for k, j in where])
    all_traces = [parts[k][2][j] for k, j in where] if traces else None
    unrevealed = np.stack([parts[k][3][j] for k, j in where])
    return answers, tokens, all_traces, unrevealed


def evaluate(
    controller: Any,
    store: ReplayStore,
    seeds: int | Sequence[int] = 100,
    *,
    workers: int = 1,
    traces: bool = False,
    cost_mode: str = "reference",
    path: str = "auto",
    max_branches: int = DEFAULT_MAX_BRANCHES,
    progress: Any = None,
    executor: Executor | None = None,
) -> EvalResult:
    """Score ``controller`` on ``store`` with the published 100-shuffle protocol.

    Args:
        controller: An object with ``solve(question)`` (see :mod:`tts_gym.controller`).
        store: The replay store (must carry gold answers).
        seeds: Number of shuffle seeds (0..n-1) or an explicit list. The paper uses 100.
        workers: Processes for the handle path (seeds are split among them).
        traces: Record every primitive call and note per episode (forces the handle path).
        cost_mode: ``"reference"`` (the paper's charging) or ``"exact"`` (not comparable).
        path: ``"auto"`` (batch kernel when the controller has one and no traces are asked),
            ``"batch"`` or ``"handle"``.
        max_branches: Slots of the env on the handle path (the paper's ceiling, 64).
        progress: Optional callable ``progress(n_seeds_done)``.
        executor: Where seed chunks run (:mod:`tts_gym.executor`). Default: the command's
            executor when it is distributed (then the batch path is split into seed chunks
            too, from :data:`BATCH_SPREAD_EPISODES` episodes on), else a local pool of
            ``workers`` for the handle path.

    Returns:
        An :class:`EvalResult`.

    Raises:
        ValueError: Bad seeds, cost mode or path, a gold-free store, or a batch path requested
            for a controller without ``batch_solve``.
    """
    seed_list = protocol_seeds(seeds)
    if cost_mode not in COST_MODES:
        raise ValueError(f"cost_mode must be one of {sorted(COST_MODES)}, got {cost_mode!r}.")
    if path not in ("auto", "batch", "handle"):
        raise ValueError(f"path must be 'auto', 'batch' or 'handle', got {path!r}.")
    if not store.has_gold:
        raise ValueError(
            f"Store {store.name} has no gold answers (a gold-free copy); it cannot "
            "be scored. Evaluate on the original store."
        )
    has_batch = callable(getattr(controller, "batch_solve", None))
    if path == "batch" and not has_batch:
        raise ValueError(
            f"Controller {controller_name(controller)!r} has no batch_solve; use "
            "path='handle' or 'auto'."
        )
    if path == "batch" and traces:
        raise ValueError("Traces are recorded on the handle path only; use path='handle'.")
    use_batch = has_batch and not traces and path != "handle"
    ex = executor if executor is not None else current()
    spread = ex is not None and ex.distributed and len(seed_list) > 1 and (
        not use_batch or len(seed_list) * store.n_questions >= BATCH_SPREAD_EPISODES)
    if ex is None or not ex.distributed:
        ex = executor if executor is not None else LocalExecutor(min(workers, len(seed_list)))
    start = time.perf_counter()
    unrevealed = None
    if use_batch and not spread:
        orders = protocol_orders(store, seed_list)
        answers, tokens = controller.batch_solve(store, orders, COST_MODES[cost_mode])
        all_traces = None
        if progress is not None:
            progress(len(seed_list))
    elif spread or (ex.slots() > 1 and len(seed_list) > 1):
        answers, tokens, all_traces, unrevealed = _run_parallel(
            controller, store, seed_list, cost_mode, traces, max_branches, ex, progress,
            batch=use_batch)
        if use_batch:
            unrevealed = None
    else:
        answers, tokens, all_traces, unrevealed = run_handle_episodes(
            controller, store, seed_list, cost_mode, traces, max_branches, progress
        )
    return score(
        store, seed_list, answers, tokens, controller=controller_name(controller),
        params=controller_params(controller), cost_mode=cost_mode,
        path="batch" if use_batch else "handle", seconds=time.perf_counter() - start,
        traces=all_traces, unrevealed=unrevealed)
