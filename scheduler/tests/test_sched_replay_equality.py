"""The live extender runs the simulator's policy: a trace slice through HTTP filter/bind (fake API server)
and through the simulator's cluster gives the same node and the same devices for every pod.

Both sides see the same inputs: node CPU and memory (the extender from ``status.allocatable`` minus the
requests of the pods on the node), the same seed mix (``trace:default``), the same tie rule (first node in
list order; the extender keeps kube-scheduler's NodeNames order among equal scores).
"""

from __future__ import annotations

import json
import os
import random
import urllib.request
from pathlib import Path

import pytest
from hami_scheduler.capability import CapabilityGate
from hami_scheduler.extender import Extender
from hami_scheduler.kube import Kube, Watcher, api_client
from hami_scheduler.live_workload import load_seed
from hami_scheduler.policies import make_policy
from hami_scheduler.server import ExtenderServer
from hami_scheduler.sim.cluster import SimCluster
from hami_scheduler.sim.run import shape_of
from hami_scheduler.sim.trace import default_trace_dir, load_nodes, load_pods
from hami_scheduler.state import ClusterState
from sched_fakeapi import FakeApiServer
from sched_testing import NVIDIA, gpu_node

TRACE = Path(os.environ.get("HAMI_TRACE_DIR") or default_trace_dir())
needs_trace = pytest.mark.skipif(not (TRACE / "openb_node_list_gpu_node.csv").is_file(),
                                 reason="openb trace not present (set HAMI_TRACE_DIR or run hami-scheduler trace fetch)")
#: GPU memory in the fake nodes: a multiple of 100 MiB, so a gpumem-percentage maps to exact milli.
DEVMEM = 100_000


def k8s_node(n) -> dict:
    node = gpu_node(n.name, gpus=n.gpus, mem=DEVMEM, count=100, model=n.model)
    node["status"] = {"allocatable": {"cpu": f"{n.cpu_milli}m", "memory": f"{n.memory_mib}Mi", "pods": "110"}}
    return node


def k8s_pod(p) -> dict:
    limits: dict = {"nvidia.com/gpu": p.num_gpu}
    if p.gpu_milli < 1000:  # a share: HAMi's whole-percent cores and memory (trace milli are multiples of 10)
        limits["nvidia.com/gpucores"] = p.gpu_milli // 10
        limits["nvidia.com/gpumem-percentage"] = p.gpu_milli // 10
    anns = {"nvidia.com/use-gputype": ",".join(p.gpu_spec)} if p.gpu_spec else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": p.name, "namespace": "default", "annotations": anns},
            "spec": {"containers": [{"name": "main", "image": "x", "resources": {
                "requests": {"cpu": f"{p.cpu_milli}m", "memory": f"{p.memory_mib}Mi"}, "limits": limits}}]}}


def post(url: str, verb: str, body: dict) -> dict:
    req = urllib.request.Request(f"{url}/{verb}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def slice_of_trace(n_nodes: int, n_pods: int):
    nodes = load_nodes(str(TRACE))
    step = len(nodes) // n_nodes
    picked = tuple(nodes[i * step] for i in range(n_nodes))  # every model family, in list order
    pods = [p for p in load_pods(str(TRACE), "default") if p.num_gpu][:n_pods]
    return picked, pods


@needs_trace
@pytest.mark.parametrize("policy", ["frag-pack", "fgd"])
def test_extender_and_simulator_place_a_trace_slice_identically(policy):
    nodes, pods = slice_of_trace(12, 60)
    seed = load_seed("trace:default", str(TRACE))
    capacity: dict[str, int] = {}
    for n in nodes:
        capacity[n.model] = capacity.get(n.model, 0) + n.gpus

    pol = make_policy(policy)
    pol.prepare(seed.workload, seed.memory, capacity, sum(n.cpu_milli for n in nodes))
    sim = SimCluster(nodes, pol, random.Random(0), tie_break="first")
    expected = []
    for p in pods:
        shape = shape_of(p)
        pick = sim.choose(shape)
        if pick is None:
            expected.append(None)
            continue
        sim.place(pick[0], shape, pick[1])
        expected.append((nodes[pick[0]].name, tuple(sorted(pick[1]))))

    api = FakeApiServer().start()
    try:
        for n in nodes:
            api.add_node(k8s_node(n))
        kube = Kube(api_client(api.url))
        cluster = ClusterState([NVIDIA])
        watcher = Watcher(kube, cluster)
        watcher.start()
        ext = Extender(cluster, kube, CapabilityGate(None), policy=policy, workload_seed=seed,
                       workload_takeover=1000)
        server = ExtenderServer(ext, ready=watcher.synced.is_set).start()
        try:
            got = []
            names = [n.name for n in nodes]
            for p in pods:
                obj = api.add_pod(k8s_pod(p))
                out = post(server.url, "filter", {"Pod": obj, "NodeNames": names})
                if not out["NodeNames"]:
                    got.append(None)
                    continue
                chosen = out["NodeNames"][0]
                assert post(server.url, "bind", {"PodName": p.name, "PodNamespace": "default",
                                                 "PodUID": obj["metadata"].get("uid"), "Node": chosen}) == {"Error": ""}
                alloc = cluster.pods[f"default/{p.name}"]
                uuids = [s.uuid for c in alloc.containers for s in c.slices]
                got.append((chosen, tuple(sorted(int(u.rsplit("-", 1)[1]) for u in uuids))))
            assert ext._feed.mode == "seed:trace:default"
            placed = sum(1 for e in expected if e)
            assert placed >= 40 and sum(1 for e in expected if e is None) >= 1  # the slice fills the nodes
            assert got == expected
            # the ledger counted every placed pod's CPU on its node
            for n in nodes:
                used = sum(p.cpu_milli for p, e in zip(pods, expected, strict=True) if e and e[0] == n.name)
                assert cluster.resources.free(n.name)[0] == n.cpu_milli - used
        finally:
            server.stop()
            watcher.stop.set()
    finally:
        api.stop()
