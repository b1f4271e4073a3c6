"""A two-node Ray cluster on this machine for tests/test_ray.py (run as a script, so its
Ray state stays out of the test process): each node 1 CPU and a small object store.

Usage: ``ray_cluster.py DIR``. Workers on the second node mark each individual they
start in DIR (the ``started`` fault). Prints ``address <gcs address>`` and ``worker <node
id>`` once both nodes are up, then
reads commands from stdin: ``remove`` takes the second node away (its running tasks die
with it), ``stop`` shuts the cluster down."""

from __future__ import annotations

import sys

from ray.cluster_utils import Cluster

STORE = 80 * 1024 * 1024


def main() -> None:
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "object_store_memory": STORE, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, object_store_memory=STORE, env_vars={"EVOART_FAULT": f"started:{sys.argv[1]}"})
    cluster.wait_for_nodes()
    print("address", cluster.address, flush=True)
    print("worker", worker.node_id, flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "remove":
                cluster.remove_node(worker)
                print("removed", flush=True)
            elif line.strip() == "stop":
                break
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
