"""The node agent's exporter: HAMi's node-monitor names and labels, per container from the regions."""

from __future__ import annotations

import time

import pytest
from node_agent_fixtures import bound_pod, write_region

prometheus_client = pytest.importorskip("prometheus_client")

from hami_hal.metrics import hami_names  # noqa: E402

RESOURCE = "nvidia.com/gpu"


def _scrape(agent, legacy=False) -> dict[str, list]:
    reg = prometheus_client.CollectorRegistry()
    for c in agent.collectors(legacy=legacy):
        reg.register(c)
    out: dict[str, list] = {}
    for fam in reg.collect():
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


@pytest.fixture
def allocated(agent, kubelet, api):
    assert kubelet.wait(lambda k: len(k.healthy(RESOURCE)) == 20)
    a, b = (d.uuid for d in agent.inventory.devices)
    bound_pod(api, "tenant", f"{a},NVIDIA,10240,30:{b},NVIDIA,10240,30:;", gpus=2)
    ids = kubelet.preferred(RESOURCE, kubelet.healthy(RESOURCE), [], 2)
    kubelet.allocate(RESOURCE, [ids])
    folder = agent.state.path("0000-tenant", "main")
    write_region(folder / "5c1e.cache", used=[3 << 30, 512 << 20], limits_mib=[10240, 10240], sm=30, busy_s=1.0,
                 last_launch_ns=time.monotonic_ns() - 2_000_000_000)
    return agent, (a, b), folder


def test_container_series_with_hami_labels(allocated):
    agent, (a, b), folder = allocated
    got = _scrape(agent)
    used = {s.labels["device_uuid"]: s for s in got["hami_vgpu_memory_used_bytes"]}
    assert used[a].value == 3 << 30 and used[b].value == 512 << 20
    assert used[a].labels == {"namespace": "default", "pod": "tenant", "container": "main", "vdevice_index": "0",
                              "device_uuid": a}
    assert {s.value for s in got["hami_vgpu_memory_limit_bytes"]} == {10240 << 20}
    assert {s.value for s in got["hami_container_device_memory_bytes"]} == {3 << 30, 512 << 20}
    assert all(2 <= s.value < 60 for s in got["hami_container_last_kernel_elapsed_seconds"])
    assert "hami_container_device_utilization_ratio" not in got  # needs two scrapes
    write_region(folder / "5c1e.cache", used=[3 << 30, 512 << 20], limits_mib=[10240, 10240], sm=30, busy_s=1.5)
    util = _scrape(agent)["hami_container_device_utilization_ratio"]
    assert len(util) == 2 and all(0 < s.value <= 100 for s in util)


def test_host_series_and_build_info(allocated):
    agent = allocated[0]
    got = _scrape(agent)
    host = got["hami_host_gpu_memory_used_bytes"]
    assert sorted(s.labels["device_uuid"] for s in host) == sorted(d.uuid for d in agent.inventory.devices)
    assert set(host[0].labels) == {"node", "device_index", "device_uuid", "device_type"}
    assert host[0].labels["device_type"].startswith("NVIDIA-")
    assert all(0 <= s.value <= 100 for s in got["hami_host_gpu_utilization_ratio"])
    assert set(got["hami_host_gpu_memory_controller_utilization_ratio"][0].labels) == {
        "device_index", "device_uuid", "device_type"}
    (info,) = got["hami_build_info"]
    assert set(info.labels) == set(hami_names.BUILD_INFO) and info.value == 1
    assert "hami_hal_device_info" in got  # the plugins' own series stay served beside HAMi's
    assert not {"HostGPUMemoryUsage", "vGPU_device_memory_usage_in_bytes"} & set(got)


def test_legacy_names_behind_the_switch(allocated):
    agent, (a, _), _ = allocated
    got = _scrape(agent, legacy=True)
    old = {s.labels["deviceuuid"]: s for s in got["vGPU_device_memory_usage_in_bytes"]}
    assert old[a].value == 3 << 30
    assert old[a].labels == {"podnamespace": "default", "podname": "tenant", "ctrname": "main", "vdeviceid": "0",
                             "deviceuuid": a}
    assert set(got["HostGPUMemoryUsage"][0].labels) == {"nodeid", "deviceidx", "deviceuuid", "devicetype"}
    assert "hami_vgpu_memory_used_bytes" in got  # new names are always served


def test_pod_gone_no_series(allocated, api):
    agent = allocated[0]
    api.delete_pod("default", "tenant")
    assert agent.cleanup() == 1
    assert "hami_vgpu_memory_used_bytes" not in _scrape(agent)
