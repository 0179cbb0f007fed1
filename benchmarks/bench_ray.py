"""Ray executor vs the local process pool on the same cores: the full budget sweep (396 cells)
and one discovery round (a candidate's beta sweep in the sandbox), as ratios in one run; the
one-time start of a local Ray instance reported apart; and how wall time scales with nodes.

Run the figures (prints markdown; about 12 minutes on 2 cores)::

    TTS_GYM_DATA=/path/to/replay python benchmarks/bench_ray.py
    TTS_GYM_DATA=/path/to/replay python benchmarks/bench_ray.py --quick   # one model, 3 betas

or the small pytest-benchmark cases (one model's sweep under both executors)::

    TTS_GYM_DATA=/path/to/replay python -m pytest benchmarks/bench_ray.py --benchmark-only -q

Method. Every store is loaded and every kernel compiled in this process before anything is
timed. The first Ray run follows the instance's start at once (its workers still import
tts-gym and load the kernels); then each workload runs local, Ray, local, Ray, ... (interleaved,
since the machine may be shared) and the medians are compared. Both executors give identical
numbers (checked).

Nodes. A simulated 2-node cluster (``ray.cluster_utils``: 2 nodes x 1 CPU on the same 2 cores)
measures what crossing nodes costs; it cannot measure speed-up (the cores are the same). The
wall time on N real nodes is then *estimated*, not measured: the measured task durations are
list-scheduled longest-first (Ray submits the expensive cells first) onto N x cores slots, plus
the measured warm-up of a worker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # nodes on 127.0.0.1 only
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from agents.synthesis.sweep import run_sweep  # noqa: E402
from tts_gym.executor import Job  # noqa: E402
from tts_gym.paths import BENCHMARKS, MODELS  # noqa: E402
from tts_gym.reporting import SWEEP_GRIDS, evaluate_cells, sweep_cells  # noqa: E402
from tts_gym.sandbox.limits import SandboxLimits  # noqa: E402
from tts_gym.store import load_store  # noqa: E402

CMC_FILE = Path(__file__).resolve().parents[1] / "agents" / "synthesis" / "seed_files" / "cmc.py"
BETAS = tuple(round(0.1 * i, 1) for i in range(11))
WORKERS = 2


# --- the two workloads -----------------------------------------------------------------------
def sweep_run(cells: list, executor: Any = None) -> tuple[float, list]:
    """Wall seconds and results of the sweep's cells (100 seeds)."""
    start = time.perf_counter()
    res = evaluate_cells(cells, 100, workers=WORKERS, executor=executor)
    return time.perf_counter() - start, res


def round_run(stores: dict, betas: tuple, seeds: int, executor: Any = None
              ) -> tuple[float, Any, list[float]]:
    """Wall seconds, the sweep run and the units' durations of one discovery round: the CMC
    candidate file on every search store at every beta with ``seeds`` seeds, in the sandbox."""
    from tts_gym.executor import using

    durations: list[float] = []
    limits = SandboxLimits(workers=WORKERS)
    start = time.perf_counter()
    with using(executor):
        run = run_sweep(CMC_FILE.read_text(), stores, list(betas), list(range(seeds)), limits,
                        progress=lambda r: durations.append(r.seconds))
    return time.perf_counter() - start, run, durations


def same_sweep(a: list, b: list) -> bool:
    return [(r.accuracy, r.avg_tokens) for r in a] == [(r.accuracy, r.avg_tokens) for r in b]


def same_round(a: Any, b: Any) -> bool:
    return a.status == b.status == "ok" and all(
        np.array_equal(a.results[x][k].correct, b.results[x][k].correct)
        and np.array_equal(a.results[x][k].tokens, b.results[x][k].tokens)
        for x in a.results for k in a.results[x])


# --- scaling with nodes (estimate) -----------------------------------------------------------
def makespan(durations: list[float], slots: int) -> float:
    """Longest-first list scheduling of ``durations`` onto ``slots`` parallel slots."""
    loads = np.zeros(max(1, slots))
    for d in sorted(durations, reverse=True):
        loads[int(np.argmin(loads))] += d
    return float(loads.max())


def scaling_rows(name: str, durations: list[float], warm_s: float, cores: int,
                 nodes: tuple[int, ...] = (1, 2, 4, 8, 16)) -> list[str]:
    return [f"| {name} | {n} x {cores} | {len(durations)} | "
            f"{makespan(durations, n * cores) + warm_s:.1f} |" for n in nodes]


# --- the Ray instances -----------------------------------------------------------------------
def start_local_ray() -> tuple[Any, float]:
    from tts_gym.cli.executor_options import warm_worker
    from tts_gym.executor.ray_executor import RayExecutor

    start = time.perf_counter()
    ex = RayExecutor(num_cpus=WORKERS, object_store_mb=512, warm=warm_worker)
    return ex, time.perf_counter() - start


def simulated_cluster() -> tuple[Any, Any]:
    """2 nodes x 1 CPU on 127.0.0.1, and an executor joined to it."""
    from ray.cluster_utils import Cluster

    from tts_gym.cli.executor_options import warm_worker
    from tts_gym.executor.ray_executor import RayExecutor

    node = {"num_cpus": 1, "object_store_memory": 256 * 2**20, "node_ip_address": "127.0.0.1"}
    c = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    c.add_node(**node)
    c.wait_for_nodes()
    return c, RayExecutor(c.address, warm=warm_worker)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, load average {load:.1f} at start"


@contextlib.contextmanager
def _noop_context(shared: dict, slot: int | None):
    yield None


def _noop(_ctx: None, item: int) -> int:
    return item


NOOP = Job("tts-gym-noop", _noop_context, _noop)


def per_task_ms(executor: Any, n: int = 2000) -> float:
    """Milliseconds of executor time per task (no-op tasks, all slots busy)."""
    executor.map(NOOP, {}, list(range(2 * WORKERS)))  # workers up
    start = time.perf_counter()
    executor.map(NOOP, {}, list(range(n)))
    return 1000 * (time.perf_counter() - start) * executor.slots() / n


def _med(xs: list[float]) -> float:
    return float(np.median(xs))


def main(argv: list[str] | None = None) -> None:
    """Print the figures as markdown."""
    import ray

    from tts_gym.executor import LocalExecutor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one model's sweep, 3 betas")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs per executor (sweep)")
    args = ap.parse_args(argv)
    models = MODELS[-1:] if args.quick else MODELS
    cells = sweep_cells(list(SWEEP_GRIDS), models, BENCHMARKS)
    stores = {f"{m}/aime24": load_store(m, "aime24") for m in MODELS}
    betas = (0.0, 0.5, 1.0) if args.quick else BETAS
    print(f"Machine: {machine()}. Workers: {WORKERS} (local pool) = {WORKERS} CPUs (Ray).\n")

    evaluate_cells(cells, 2, workers=1)  # stores, orders and kernels in this process
    round_run(stores, betas[:1], 1)  # the broker's kernels, a fork server
    t: dict[str, list[float]] = {k: [] for k in ("sweep local", "sweep ray", "round local",
                                                 "round ray")}
    ex, start_s = start_local_ray()
    try:
        cold_sweep, ray_cells = sweep_run(cells, ex)  # workers warm up during this one
        cold_round, ray_round, _ = round_run(stores, betas, 10, ex)
        for i in range(args.repeats):
            t["sweep local"].append(sweep_run(cells)[0])
            t["sweep ray"].append(sweep_run(cells, ex)[0])
            if i < 2:
                tl, local_round, local_units = round_run(stores, betas, 10)
                t["round local"].append(tl)
                t["round ray"].append(round_run(stores, betas, 10, ex)[0])
        _, local_cells = sweep_run(cells)
        assert same_sweep(local_cells, ray_cells) and same_round(local_round, ray_round)
        task_ray = per_task_ms(ex)
        task_local = per_task_ms(LocalExecutor(WORKERS))
    finally:
        ex.close()
    assert not ray.is_initialized()

    print(f"Local Ray instance start (once per command, excluded below): {start_s:.1f} s. "
          f"Executor time per task (no-op tasks): Ray {task_ray:.2f} ms, local pool "
          f"{task_local:.2f} ms.\n")
    print("| workload | tasks | local pool s | Ray s (warm workers) | Ray / local | Ray s, first "
          "run after start | first / local |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, n, cold in (("sweep", len(cells), cold_sweep),
                          ("round", len(local_units), cold_round)):
        loc, warm = _med(t[f"{name} local"]), _med(t[f"{name} ray"])
        label = (f"full sweep ({len(cells)} cells, 100 seeds)" if name == "sweep" else
                 f"discovery round (CMC file, {len(betas)} betas x 10 seeds, 4 stores)")
        print(f"| {label} | {n} | {loc:.1f} | {warm:.1f} | {warm / loc:.2f} | {cold:.1f} | "
              f"{cold / loc:.2f} |")
    print(f"\nMedians of {args.repeats} (sweep) and 2 (round) interleaved runs; every run: "
          f"sweep local {_fmt(t['sweep local'])}, Ray {_fmt(t['sweep ray'])}; round local "
          f"{_fmt(t['round local'])}, Ray {_fmt(t['round ray'])}. Numbers identical under both "
          "executors: yes (every cell, every unit).\n")

    c, cex = simulated_cluster()
    cl: list[float] = []
    lo: list[float] = []
    try:
        sweep_run(cells, cex)  # warm the workers of both nodes
        for _ in range(2):
            lo.append(sweep_run(cells)[0])
            tc, cl_cells = sweep_run(cells, cex)
            cl.append(tc)
        assert same_sweep(local_cells, cl_cells)
    finally:
        cex.close()
        ray.shutdown()
        c.shutdown()
    print(f"Simulated cluster, measured: the sweep on 2 Ray nodes x 1 CPU (same 2 cores) took "
          f"{_fmt(cl)} s vs {_fmt(lo)} s on the local pool (ratio {_med(cl) / _med(lo):.2f}), "
          "identical numbers. It shows what crossing nodes costs, not a speed-up.\n")

    cell_s = [r.seconds for r in local_cells]
    warm_up = max(0.0, cold_sweep - _med(t["sweep ray"]))
    print("Estimated, not measured: wall time on N nodes of 2 cores, from the measured task "
          f"durations list-scheduled longest-first, plus {warm_up:.1f} s of worker warm-up (the "
          "first Ray sweep minus a warm one).\n")
    print("| workload | nodes x cores | tasks | estimated wall s |")
    print("|---|---|---:|---:|")
    for row in scaling_rows("full sweep", cell_s, warm_up, WORKERS):
        print(row)
    for row in scaling_rows("discovery round", local_units, warm_up, WORKERS):
        print(row)


def _fmt(xs: list[float]) -> str:
    return "/".join(f"{x:.1f}" for x in xs)


# --- pytest-benchmark cases (one model's sweep) ----------------------------------------------
@pytest.fixture(scope="module")
def one_model_cells():
    cells = sweep_cells(list(SWEEP_GRIDS), MODELS[-1:], BENCHMARKS)
    evaluate_cells(cells, 2, workers=1)
    return cells


@pytest.fixture(scope="module")
def ray_executor():
    ex, _ = start_local_ray()
    yield ex
    ex.close()


def test_sweep_one_model_local(benchmark, one_model_cells):
    benchmark.pedantic(sweep_run, args=(one_model_cells,), rounds=3, warmup_rounds=1)


def test_sweep_one_model_ray(benchmark, one_model_cells, ray_executor):
    benchmark.pedantic(sweep_run, args=(one_model_cells, ray_executor), rounds=3,
                       warmup_rounds=1)


if __name__ == "__main__":
    main()
