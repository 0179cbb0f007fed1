"""The sandbox child: plays a candidate through the question handle on gold-free stores.

Run as ``python -m agents.synthesis.child JOBDIR`` by :mod:`agents.synthesis.sandbox` (own
process group, wall-clock kill by the parent). It reads ``JOBDIR/job.pkl`` (written by the
trusted parent), imports and warms up everything, lowers its own RLIMIT_AS / RLIMIT_CPU /
RLIMIT_FSIZE, touches ``JOBDIR/ready`` and only then executes candidate code. Every episode
gets a fresh module and ``Controller(beta)`` (no memory across episodes) and a question proxy
(:func:`agents.synthesis.proxy.question_proxy`). Output: ``JOBDIR/result.json`` with answer
STRINGS and tokens per (store, beta, seed, question); the parent scores them against gold.
"""

from __future__ import annotations

import json
import linecache
import os
import pickle
import resource
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from agents.synthesis.proxy import question_proxy, restricted_builtins
from tts_gym.env.replay_env import ReplayEnv
from tts_gym.evaluation import run_handle_episodes
from tts_gym.handle import QuestionHandle

FILENAME = "<candidate>"
MAX_TRACE_EVENTS = 120


class CandidateError(Exception):
    """The candidate raised; carries a short, candidate-only traceback."""


def _vm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - non-Linux


def set_limits(memory_mb: int, cpu_s: float, fsize_mb: int = 256) -> None:
    """Lower this process's limits: address space = now + ``memory_mb``, CPU = used + cpu_s."""
    if memory_mb > 0:
        cap = _vm_bytes() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if cpu_s > 0:
        used = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        soft = int(used + cpu_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))
    cap = fsize_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))


def _short_traceback(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    keep = [ln for ln in lines if FILENAME in ln or not ln.startswith("  File")]
    out = [ln for ln in keep if not ln.startswith("Traceback")]
    text = "".join(out[-12:]).strip()
    return text[-2000:]


class EpisodeRunner:
    """A trusted controller object for :func:`run_handle_episodes`: one fresh candidate per
    episode, answers recorded as strings, episode statistics collected."""

    def __init__(self, code: Any, beta: float) -> None:
        self.code = code
        self.beta = beta
        self.answers: list[str | None] = []
        self.bad_returns = 0

    def new_controller(self) -> Any:
        ns: dict[str, Any] = {"__builtins__": restricted_builtins(), "__name__": "candidate"}
        exec(self.code, ns)  # noqa: S102 - validated candidate code under restricted builtins
        return ns["Controller"](self.beta)

    def solve(self, handle: QuestionHandle) -> str | None:
        try:
            answer = self.new_controller().solve(question_proxy(handle))
        except Exception as exc:  # the candidate's own failure, reported to the LLM
            raise CandidateError(f"{type(exc).__name__}: {_short_traceback(exc)}") from None
        if answer is not None and not isinstance(answer, str):
            self.bad_returns += 1
            answer = None
        self.answers.append(answer)
        return answer


def _episode_stats(traces: list[list[list[dict]]]) -> dict[str, Any]:
    """Per-episode counts from the handle traces: ``[S][Q]`` lists."""
    keys = ("probe_new", "probe_more", "full_read", "note", "finish")
    out: dict[str, list] = {k: [] for k in (*keys, "opened", "finish_last")}
    for row in traces:
        rows = {k: [] for k in out}
        for tr in row:
            counts = dict.fromkeys(keys, 0)
            opened = 0
            for ev in tr:
                op = ev.get("op")
                if op in counts:
                    counts[op] += 1
                if op in ("probe_new", "full_read") and not ev.get("none_left"):
                    opened += 1
            for k in keys:
                rows[k].append(counts[k])
            rows["opened"].append(opened)
            rows["finish_last"].append(bool(tr) and tr[-1].get("op") == "finish")
        for k in out:
            out[k].append(rows[k])
    return out


def _cap_trace(tr: list[dict]) -> list[dict]:
    if len(tr) <= MAX_TRACE_EVENTS:
        return tr
    half = MAX_TRACE_EVENTS // 2
    return [*tr[:half], {"op": "...", "skipped": len(tr) - 2 * half}, *tr[-half:]]


def _schedules(code: Any, betas: list[float]) -> dict[str, Any]:
    out = {}
    for b in betas:
        runner = EpisodeRunner(code, b)
        first = runner.new_controller().schedule(b)
        again = runner.new_controller().schedule(b)
        text = json.dumps(first, sort_keys=True)
        if text != json.dumps(again, sort_keys=True):
            raise CandidateError(f"schedule({b}) is not deterministic: {first} != {again}")
        if not isinstance(first, dict):
            raise CandidateError(f"schedule({b}) must return a dict, got {type(first).__name__}")
        out[repr(float(b))] = json.loads(text)
    return out


def run_task(job: dict[str, Any], code: Any, key: str, b: float) -> dict[str, Any]:
    """Play one (store, beta): the entry of the result, or an ``{"status": "error"}`` dict."""
    store = job["stores"][key]
    runner = EpisodeRunner(code, b)
    try:
        _ids, tokens, traces = run_handle_episodes(
            runner,
            store,
            job["seeds"],
            cost_mode=job["cost_mode"],
            traces=True,
            max_branches=job["max_branches"],
        )
    except CandidateError as exc:
        kind = "memory" if str(exc).startswith("MemoryError") else "runtime"
        return {"status": "error", "kind": kind, "error": str(exc), "store": key, "beta": b}
    except ValueError as exc:  # an illegal primitive call (e.g. probe_more on a done slot)
        err = f"ValueError: {exc}"
        return {"status": "error", "kind": "runtime", "error": err, "store": key, "beta": b}
    n_s, n_q = tokens.shape
    entry = {
        "answers": [runner.answers[i * n_q : (i + 1) * n_q] for i in range(n_s)],
        "tokens": np.asarray(tokens).tolist(),
        "stats": _episode_stats(traces),
        "bad_returns": runner.bad_returns,
    }
    if job.get("trace_beta") is not None and abs(b - job["trace_beta"]) < 1e-9:
        entry["traces"] = [_cap_trace(t) for t in traces[0]]
    return entry


def _run_tasks(job: dict[str, Any], code: Any, tasks: list[tuple[str, float]]) -> list[dict]:
    out = []
    for key, b in tasks:
        entry = run_task(job, code, key, b)
        out.append(entry)
        if entry.get("status") == "error":
            break
    return out


def _run_forked(job: dict[str, Any], code: Any, tasks: list, workers: int, jobdir: Path) -> list:
    """Split ``tasks`` over ``workers`` forked processes (same process group, same limits)."""
    pids = {}
    for w in range(workers):
        part = tasks[w::workers]
        pid = os.fork()
        if pid == 0:
            code_ = 1
            try:
                watch_parent()
                entries = _run_tasks(job, code, part)
                (jobdir / f"part_{w}.json").write_text(json.dumps(entries))
                code_ = 0
            except MemoryError:
                code_ = 4
            finally:
                os._exit(code_)
        pids[pid] = w
    status = {}
    while pids:
        pid, st = os.wait()
        status[pids.pop(pid)] = os.waitstatus_to_exitcode(st)
    merged: dict[tuple[str, float], dict] = {}
    for w in range(workers):
        part = tasks[w::workers]
        path = jobdir / f"part_{w}.json"
        if status.get(w) != 0 or not path.exists():
            kind = "memory" if status.get(w) == 4 else "crash"
            err = {"status": "error", "kind": kind, "error": f"worker exit {status.get(w)}"}
            merged[part[0]] = err
            continue
        for t, entry in zip(part, json.loads(path.read_text()), strict=False):
            merged[t] = entry
    return [merged[t] for t in tasks if t in merged]


def run_job(job: dict[str, Any], code: Any, jobdir: Path | None = None) -> dict[str, Any]:
    """Play every (store, beta) of ``job``; the result as a JSON-able dict.

    With ``job["workers"] > 1`` (and a ``jobdir``) the (store, beta) tasks are split over that
    many forked processes; the first error in task order is reported.
    """
    result: dict[str, Any] = {"status": "ok", "runs": {}}
    try:
        result["schedules"] = _schedules(code, job["betas"])
    except (CandidateError, TypeError, ValueError) as exc:
        return {"status": "error", "kind": "schedule", "error": str(exc)[:2000]}
    except Exception as exc:
        return {"status": "error", "kind": "schedule", "error": _short_traceback(exc)}
    tasks = [(key, float(b)) for key in job["stores"] for b in job["betas"]]
    workers = max(1, min(int(job.get("workers", 1)), len(tasks)))
    if workers > 1 and jobdir is not None:
        entries = _run_forked(job, code, tasks, workers, jobdir)
    else:
        entries = _run_tasks(job, code, tasks)
    for (key, b), entry in zip(tasks, entries, strict=False):
        if entry.get("status") == "error":
            return entry
        result["runs"].setdefault(key, {})[repr(b)] = entry
    if len(entries) < len(tasks):
        return {"status": "error", "kind": "crash", "error": "missing results"}
    return result


def _exit_with_parent(parent: int) -> None:
    """Die at once if the parent loop dies (e.g. ``kill -9``): no orphaned candidates."""
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.5)


def run_child(jobdir: Path) -> int:
    """Load the job in ``jobdir``, lower the limits, signal ready, run it, write the result."""
    with open(jobdir / "job.pkl", "rb") as fh:
        job = pickle.load(fh)  # written by the trusted parent
    source: str = job["source"]
    linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
    code = compile(source, FILENAME, "exec", dont_inherit=True)
    # warm up the env kernels (numba) before the clock starts
    for store in job["stores"].values():
        env = ReplayEnv(store=store, max_branches=job["max_branches"])
        env.reset(options={"question": 0, "shuffle_seed": 0})
        QuestionHandle(env).submit(None)
    set_limits(job["memory_mb"], job["cpu_s"])
    (jobdir / "ready").write_text("ready")
    try:
        result = run_job(job, code, jobdir)
    except MemoryError:
        result = {"status": "error", "kind": "memory", "error": "MemoryError (memory limit)"}
    except RecursionError:
        result = {"status": "error", "kind": "runtime", "error": "RecursionError"}
    text = json.dumps(result)
    tmp = jobdir / "result.json.tmp"
    tmp.write_text(text)
    tmp.rename(jobdir / "result.json")
    return 0


def watch_parent() -> None:
    """Start the thread that ends this process when its parent dies."""
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Child entry point (``JOBDIR`` as the only argument)."""
    argv = sys.argv[1:] if argv is None else argv
    watch_parent()
    return run_child(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
