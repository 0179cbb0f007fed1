"""A simulated Ray worker node in its own process (for tests), the way ``ray.cluster_utils``
adds one, so the node's processes inherit this process's limits.

``python -m tests.ray_node GCS_ADDRESS`` starts a 1-CPU node on 127.0.0.1 joined to that
cluster, prints its node id, and removes the node (killing its raylet and workers) when stdin
closes. ``ray start --address 127.0.0.1:PORT`` cannot do this on Linux: Ray rewrites 127.0.0.1
to the machine's reachable address, and the switch that stops the rewrite
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) makes ``ray start`` refuse to join worker nodes.
"""

from __future__ import annotations

import sys

import ray._private.node
import ray._private.parameter


def main(gcs_address: str) -> None:
    params = ray._private.parameter.RayParams(
        gcs_address=gcs_address, num_cpus=1, num_gpus=0, node_ip_address="127.0.0.1",
        object_store_memory=150 * 2**20, min_worker_port=0, max_worker_port=0,
        include_log_monitor=False, node_manager_port=0)
    params.dashboard_agent_listen_port = None
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print(node.node_id, flush=True)
    sys.stdin.read()
    node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)


if __name__ == "__main__":
    main(sys.argv[1])
