"""The Ray executor on a simulated multi-node cluster (``ray.cluster_utils.Cluster``: several Ray
nodes, each with its own raylet, object store and workers, all on 127.0.0.1 of this machine).

The work spreads over the nodes and every number equals the local pool's (a sweep on the real
stores, sandboxed units); a node removed while it runs units is survived with identical numbers;
a node that cannot isolate candidates refuses them, naming itself; Ctrl-C on a command that
joined the cluster (``--ray-address``) cancels its tasks and leaves the cluster up. No Ray
process outlives the module.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import threading
import time

import pytest

from tests import synthesis_candidates as C
from tests.conftest import requires_data
from tests.ray_support import (
    candidate_processes,
    interrupt_when_running,
    ray_processes,
    snapshot,
    task_processes,
    wait_gone,
)
from tts_gym.controller import make_controller
from tts_gym.executor import Job, using
from tts_gym.reporting import evaluate_cells, sweep_cells
from tts_gym.sandbox.evaluate import evaluate_source
from tts_gym.sandbox.limits import SandboxLimits
from tts_gym.sandbox.zygote_client import SandboxUnavailable
from tts_gym.testing import tiny_questions, tiny_store, write_store_json

ray = pytest.importorskip("ray", reason="the Ray tests need the ray extra")

from ray.cluster_utils import Cluster  # noqa: E402

from tts_gym.executor.ray_executor import RayExecutor  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 150 * 2**20, "node_ip_address": "127.0.0.1"}
"""Each simulated node: 1 CPU, a small object store, on the loopback interface."""


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, 1 CPU each, and an executor joined to them."""
    c = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    second = c.add_node(**NODE)
    c.wait_for_nodes()
    assert c.address.startswith("127.0.0.1:")
    ex = RayExecutor(c.address)
    assert not ex.started and ex.nodes() == 2 and ex.slots() == 2
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    yield c, second, ex
    running = snapshot(ray_processes())
    assert sum("raylet" in cmd for _t, cmd in running.values()) >= 1
    ex.close()
    ray.shutdown()
    c.shutdown()
    assert wait_gone(running) == []


@contextlib.contextmanager
def _node_id(shared, slot):
    yield None


def _where(_ctx, item):
    time.sleep(0.5)
    return ray.get_runtime_context().get_node_id()


WHERE = Job("tts-gym-where", _node_id, _where)


def test_work_spreads_over_the_nodes(cluster):
    """Tasks the head node cannot take at once go to the second node (once its worker process
    is up: a few seconds on a loaded machine, hence a few tries)."""
    c, second, ex = cluster
    nodes: set[str] = set()
    for _ in range(5):
        nodes |= set(ex.map(WHERE, {}, list(range(6))))
        if len(nodes) == 2:
            break
    assert nodes == {c.head_node.node_id, second.node_id}


@requires_data
def test_sweep_on_two_nodes_identical(cluster):
    _c, _second, ex = cluster
    cells = sweep_cells(["sc", "esc", "parallel-probe", "cmc"], ["Qwen3-1.7B"], ["aime24"])
    local = evaluate_cells(cells, 100, workers=2)
    remote = evaluate_cells(cells, 100, executor=ex)
    assert [(r.accuracy, r.avg_tokens, r.seeds, r.path) for r in remote] == [
        (r.accuracy, r.avg_tokens, r.seeds, r.path) for r in local]


def test_batch_seed_chunks_on_two_nodes_identical(cluster, monkeypatch):
    from tts_gym.evaluation import evaluate, protocol

    monkeypatch.setattr(protocol, "BATCH_SPREAD_EPISODES", 100)
    _c, _second, ex = cluster
    store = tiny_store(9, questions=12, branches=32)
    ctrl = make_controller("cmc", {"beta": 0.8})
    a, b = evaluate(ctrl, store, 60), evaluate(ctrl, store, 60, executor=ex)
    assert (a.accuracy, a.avg_tokens) == (b.accuracy, b.avg_tokens)
    assert (a.correct == b.correct).all() and (a.tokens == b.tokens).all()


@contextlib.contextmanager
def _node_with_cpu_limit(address: str, seconds: int):
    """A third node whose processes have a hard RLIMIT_CPU of ``seconds``; yields its node id."""

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.ray_node", address], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=lower)
    try:
        node_id = proc.stdout.readline().strip()
        assert node_id, "the limited node did not start"
        deadline = time.monotonic() + 60
        while not any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes()):
            assert time.monotonic() < deadline, "the limited node did not join"
            time.sleep(0.2)
        yield node_id
    finally:
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_node_without_isolation_refuses_units_naming_itself(cluster):
    """A node whose hard CPU limit is below the candidates' allowance cannot apply the rlimits
    layer (required): its workers refuse every unit, naming the node, instead of running
    candidates with a weaker sandbox."""
    c, _second, ex = cluster
    store = tiny_store(3, questions=3, branches=8)
    limits = SandboxLimits(timeout_s=60.0, cpu_s=5000.0, memory_mb=400, watchdog_s=2.0)
    with _node_with_cpu_limit(c.address, 3000) as weak, using(ex):
        with pytest.raises(SandboxUnavailable) as err:
            for _ in range(5):  # until the weak node gets a unit (Ray spreads 3+ tasks)
                evaluate_source(C.GOOD, store, 6, params={"beta": 0.5}, limits=limits)
    message = str(err.value)
    assert f"Ray node {weak[:12]}" in message and "rlimits" in message, message
    assert message.count("\n") == 0
    deadline = time.monotonic() + 30
    while sum(1 for n in ray.nodes() if n["Alive"]) != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sum(1 for n in ray.nodes() if n["Alive"]) == 2


def test_ctrl_c_cancels_the_commands_tasks_and_leaves_the_cluster(cluster, tmp_path):
    c, _second, _ex = cluster
    write_store_json(tmp_path / "data" / "tiny" / "aime24.json",
                     tiny_questions(4, questions=4, branches=12))
    (tmp_path / "slow.py").write_text(C.INFINITE_LOOP)
    rc, err, _started = interrupt_when_running(
        ["eval", f"file:{tmp_path / 'slow.py'}", "--model", "tiny", "--benchmark", "aime24",
         "--data-dir", str(tmp_path / "data"), "--param", "beta=0.5", "--seeds", "20",
         "--executor", "ray", "--ray-address", c.address], units=2)
    assert rc == 130, err
    deadline = time.monotonic() + 30
    while (task_processes("tts-gym-unit") or candidate_processes()
           or ray.available_resources().get("CPU", 0) < 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert task_processes("tts-gym-unit") == [] and candidate_processes() == []
    assert ray.available_resources().get("CPU", 0) == 2
    assert sum(1 for n in ray.nodes() if n["Alive"]) == 2  # the cluster is still up


def test_node_lost_mid_units_identical(cluster):
    """The second node is removed while it runs units: they run again on the head node and the
    scores equal an undisturbed local run's. (Last test: the cluster keeps one node.)"""
    c, second, ex = cluster
    store = tiny_store(8, questions=30, branches=64, max_probes=12)
    limits = SandboxLimits(timeout_s=120.0, memory_mb=400, watchdog_s=5.0, workers=2)
    reference = evaluate_source(C.PROBING, store, 8, params={"beta": 1.0}, limits=limits)
    removed = threading.Event()

    def remove_when_busy() -> None:
        deadline = time.monotonic() + 120
        while len(task_processes("tts-gym-unit")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        c.remove_node(second)
        removed.set()

    t = threading.Thread(target=remove_when_busy, daemon=True)
    t.start()
    with using(ex):
        got = evaluate_source(C.PROBING, store, 8, params={"beta": 1.0}, limits=limits)
    t.join(30)
    assert removed.is_set()
    assert sum(1 for n in ray.nodes() if n["Alive"]) == 1
    assert (got.accuracy, got.avg_tokens) == (reference.accuracy, reference.avg_tokens)
    assert (got.correct == reference.correct).all() and (got.tokens == reference.tokens).all()
    assert got.answers == reference.answers
