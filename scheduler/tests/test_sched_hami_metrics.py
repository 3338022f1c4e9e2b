"""HAMi's scheduler series on the extender's /metrics, after a filter and a bind (names from hami_names)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from hami_scheduler.server import ExtenderServer
from prometheus_client.parser import text_string_to_metric_families
from sched_fakeapi import FakeApiServer
from sched_testing import SEED_POD, gpu_node, gpu_pod, start_stack

from hami_hal.metrics import hami_names as H

MIB = 1 << 20


def post(url: str, verb: str, body: dict) -> dict:
    req = urllib.request.Request(f"{url}/{verb}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url + "/metrics") as r:
        text = r.read().decode()
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


@pytest.fixture
def bound():
    """node1 (2 × 40960 MiB, split 10) with the seed pod (2 GPUs × 10240 MiB × 30 %) filtered and bound, and
    a second pod (1 GPU × 4096 MiB × 25 %) filtered only (reserved, not bound)."""
    api = FakeApiServer().start()
    api.add_node(gpu_node("node1", gpus=2))
    s = start_stack(api, watch=False)
    pod = api.add_pod(SEED_POD)
    assert post(s.server.url, "filter", {"Pod": pod, "NodeNames": ["node1"]})["NodeNames"] == ["node1"]
    assert post(s.server.url, "bind", {"PodName": "gpu-pod", "PodNamespace": "default", "PodUID": "uid-gpu-pod",
                                       "Node": "node1"}) == {"Error": ""}
    small = api.add_pod(gpu_pod("small"))
    assert post(s.server.url, "filter", {"Pod": small, "NodeNames": ["node1"]})["NodeNames"] == ["node1"]
    yield s
    s.stop()


def test_sched_hami_series_after_filter_and_bind(bound) -> None:
    got = scrape(bound.server.url)
    served = {s.name for s in H.SCHEDULER} - {H.NODE_GPU_MIG_INSTANCE.name}  # no hardware partition here
    assert served <= set(got), served - set(got)
    assert not (H.served_names(True, H.SCHEDULER) - H.served_names(False, H.SCHEDULER)) & set(got)  # no legacy
    for name in served - {H.BUILD.name}:
        assert all(s.labels.get("zone") == "vGPU" for s in got[name]), name
    by_dev = {s.labels["device_uuid"]: s for s in got["hami_gpu_memory_allocated_bytes"]}
    assert set(by_dev) == {"GPU-node1-0", "GPU-node1-1"}
    mem = sorted(s.value / MIB for s in by_dev.values())
    assert mem in ([10240, 10240 + 4096], [10240 + 4096, 10240])  # both seed slices + the small pod's
    cores = {u: int(s.labels["device_cores"]) for u, s in by_dev.items()}
    assert sorted(cores.values()) == [30, 55]
    shared = {s.labels["device_uuid"]: s.value for s in got["hami_gpu_shared_count"]}
    assert sorted(shared.values()) == [1, 2]
    assert {s.value for s in got["hami_gpu_memory_limit_bytes"]} == {40960 * MIB}
    assert {s.value for s in got["hami_gpu_core_limit_ratio"]} == {100}
    ratio = {s.labels["device_uuid"]: s.value for s in got["hami_node_gpu_memory_allocated_ratio"]}
    assert sorted(ratio.values()) == pytest.approx([10240 / 40960, (10240 + 4096) / 40960])
    over = got["hami_node_gpu_overview"]
    assert {s.labels["device_memory_limit"] for s in over} == {str(40960 * MIB)}
    assert all(s.labels["device_type"] == "NVIDIA-A100-PCIE-40GB" and s.labels["node"] == "node1" for s in over)
    per_ctr = got["hami_vgpu_memory_allocated_bytes"]
    seed = [s for s in per_ctr if s.labels["pod"] == "gpu-pod"]
    assert len(seed) == 2 and all(s.value == 10240 * MIB and s.labels["container_index"] == "0"
                                  and s.labels["namespace"] == "default" and s.labels["node"] == "node1"
                                  for s in seed)
    assert [s.value for s in per_ctr if s.labels["pod"] == "small"] == [4096 * MIB]
    assert sorted(s.value for s in got["hami_vgpu_core_allocated_ratio"]) == [25, 30, 30]


def test_sched_hami_series_follow_a_deleted_pod(bound) -> None:
    bound.cluster.remove_pod("default/gpu-pod")
    got = scrape(bound.server.url)
    assert {s.labels["pod"] for s in got["hami_vgpu_memory_allocated_bytes"]} == {"small"}
    assert sorted(s.value / MIB for s in got["hami_gpu_memory_allocated_bytes"]) == [0, 4096]


def test_sched_legacy_names_only_with_the_switch(bound) -> None:
    srv = ExtenderServer(bound.extender, legacy_metrics=True).start()
    try:
        got = scrape(srv.url)
    finally:
        srv.stop()
    for s in H.SCHEDULER:
        if s.legacy and s is not H.NODE_GPU_MIG_INSTANCE:
            assert s.legacy in got and s.name in got, s.legacy
    old = {x.labels["deviceuuid"]: x for x in got["GPUDeviceMemoryAllocated"]}
    assert set(old) == {"GPU-node1-0", "GPU-node1-1"}
    assert set(old["GPU-node1-0"].labels) == {"nodeid", "deviceuuid", "deviceidx", "devicetype", "devicecores", "zone"}
    assert {x.labels["podname"] for x in got["vGPUMemoryAllocated"]} == {"gpu-pod", "small"}
    assert set(got["nodeGPUMemoryPercentage"][0].labels) == {"nodeid", "deviceuuid", "deviceidx", "zone"}


def test_sched_serve_documents_the_legacy_switch(capsys) -> None:
    from hami_scheduler.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--legacy-metrics" in capsys.readouterr().out


def test_sched_mig_instance_info_from_placed_templates() -> None:
    """A template partition the engine placed is served as hami_node_gpu_mig_instance_info (profile and
    placement; the instance's own UUID and ids exist only on the node, so they are empty here)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from engine_fixtures import device, mig_like, pod, req
    from hami_scheduler.hami_metrics import SchedulerAllocationCollector
    from hami_scheduler.state import ClusterState, NodeEntry
    from prometheus_client import CollectorRegistry, generate_latest

    from hami_hal.engine import NodeState

    state = NodeState("mig1", [device(0, mig_like())])
    alloc = state.allocate(pod("p", [req(1, 19968)]))
    cluster = ClusterState([])
    cluster.nodes["mig1"] = NodeEntry(inventory=None, state=state)  # type: ignore[arg-type]
    cluster.pods[alloc.key] = alloc
    reg = CollectorRegistry()
    reg.register(SchedulerAllocationCollector(cluster, legacy=True))
    fams = {f.name: f for f in text_string_to_metric_families(generate_latest(reg).decode())}
    (mig,) = fams["hami_node_gpu_mig_instance_info"].samples
    assert mig.value == 1
    assert {k: mig.labels[k] for k in ("node", "device_uuid", "profile", "placement_size", "zone")} == {
        "node": "mig1", "device_uuid": "ACME-acme-0", "profile": "2g.20gb", "placement_size": "2", "zone": "vGPU"}
    (old,) = fams["nodeGPUMigInstance"].samples
    assert old.labels["migname"] == "2g.20gb"
