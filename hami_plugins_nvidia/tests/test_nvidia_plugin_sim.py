"""Every hook of the NVIDIA plugin against the simulated profiles, through the core's Hal.

The same discovery/topology/health/metrics/MIG code runs here as on a GPU; only the NVML port is the
fake built from the node profile.
"""

from __future__ import annotations

import sys

import pytest
from hami_plugins_nvidia.fake_nvml import FakeNvml
from hami_plugins_nvidia.topology import LinkKind

from hami_hal.engine import NodeState
from hami_hal.errors import BackendUnavailable, HalError, InputError
from hami_hal.models import (
    ContainerAllocation,
    DeviceSlice,
    FitReason,
    PartitionKind,
)
from hami_hal.requests import parse_pod
from hami_plugins_nvidia import ports

NODES = ["nvidia-2xv100-pcie", "nvidia-8xa100-nvlink", "nvidia-2xa100-mig", "nvidia-2xt4-pcie", "nvidia-1xh100",
         "nvidia-4xt4-faulty"]


def pod(limits: dict, annotations: dict | None = None, name: str = "gpu-pod") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "main", "image": "cuda", "resources": {"limits": limits}}]}}


# -- identity and profiles -------------------------------------------------------------------


def test_vendor_uses_hami_names(hal):
    (vendor,) = hal.vendors()
    fam = vendor.resources[0]
    assert (fam.common_word, fam.count, fam.memory, fam.memory_percent, fam.cores, fam.priority) == (
        "NVIDIA", "nvidia.com/gpu", "nvidia.com/gpumem", "nvidia.com/gpumem-percentage", "nvidia.com/gpucores",
        "nvidia.com/priority")
    assert vendor.selectors.use_type == "nvidia.com/use-gputype"
    assert vendor.selectors.nouse_uuid == "nvidia.com/nouse-gpuuuid"
    assert vendor.selectors.mode == "nvidia.com/vgpu-mode"
    assert vendor.annotations.node_register == "hami.io/node-nvidia-register"
    assert vendor.annotations.node_handshake == "hami.io/node-handshake"
    assert vendor.annotations.to_allocate == "hami.io/vgpu-devices-to-allocate"


def test_profiles_ship_required_nodes_with_one_default(hal):
    cat = hal.catalog()
    assert set(NODES) <= set(cat.nodes)
    assert cat.default_nodes() == ["nvidia-2xv100-pcie"]


@pytest.mark.parametrize("node", NODES)
def test_discovery_on_every_profile(sim, node):
    inv = sim(node)
    assert inv.source == "simulated" and inv.devices
    for d in inv.devices:
        assert d.provenance.source == "simulated" and d.provenance.profile == node
        assert d.partition is not None
        if d.healthy:
            assert d.hami_type == f"NVIDIA-{d.model}"
            assert d.attributes["pci_bus_id"].startswith("00000000:")
            assert d.compute_units and d.attributes["compute_capability"]


def test_a100_facts_and_mig_profiles(sim):
    inv = sim("nvidia-8xa100-nvlink")
    d = inv.devices[0]
    assert (d.model, d.memory_mib, d.compute_units, d.attributes["compute_capability"]) == (
        "NVIDIA A100-SXM4-80GB", 81920, 108, "8.0")
    assert d.attributes["mig_capable"] and d.attributes["mig_mode"] == "disabled" and d.mode == "hami-core"
    by_name = {p["name"]: p for p in d.attributes["mig_profiles"]}
    assert {"1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"} <= set(by_name)
    assert by_name["3g.40gb"]["placements"] == [{"start": 0, "size": 4}, {"start": 4, "size": 4}]
    assert by_name["1g.10gb"]["core"] == 13  # ceil(14 SMs * 100 / 108)
    assert d.numa_node == 0 and inv.devices[7].numa_node == 1


def test_v100_has_no_mig_and_h100_numa_is_unknown(sim):
    v100 = sim("nvidia-2xv100-pcie").devices[0]
    assert v100.attributes["mig_capable"] is False and v100.attributes["mig_profiles"] == []
    assert "mig_mode" not in v100.attributes["unknown"]
    h100 = sim("nvidia-1xh100").devices[0]
    assert h100.numa_node is None
    assert "Not Supported" in h100.attributes["unknown"]["numa_node"]
    assert h100.attributes["cuda_driver_version"] == "13.0"


# -- the example pod ---------------------------------------------------------------------------


def test_example_pod_gets_two_distinct_gpus_with_22gib_left(hal, sim):
    inv = sim("nvidia-2xv100-pcie")
    req = parse_pod(pod({"nvidia.com/gpu": 2, "nvidia.com/gpumem": 10240, "nvidia.com/gpucores": 30}),
                    hal.vendors())
    node = NodeState.from_inventory(inv)
    alloc = node.allocate(req)
    slices = alloc.slices()
    assert len({s.uuid for s in slices}) == 2
    assert [(s.memory_mib, s.compute_percent) for s in slices] == [(10240, 30), (10240, 30)]
    for d in inv.devices:
        u = node.usage(d.uuid)
        assert d.partition.memory_mib - u.used_memory_mib == 22 * 1024
    edits = hal.container_edits(alloc.containers[0], inv.devices)
    assert edits.env["NVIDIA_VISIBLE_DEVICES"] == ",".join(s.uuid for s in slices)
    assert edits.env["CUDA_DEVICE_MEMORY_LIMIT_0"] == "10240m"
    assert edits.env["CUDA_DEVICE_MEMORY_LIMIT_1"] == "10240m"
    assert edits.env["CUDA_DEVICE_SM_LIMIT"] == "30"
    assert edits.env["CUDA_DEVICE_MEMORY_SHARED_CACHE"].startswith("/usr/local/vgpu/")
    assert {m.container_path for m in edits.mounts} == {"/usr/local/vgpu/libvgpu.so", "/usr/local/vgpu",
                                                         "/tmp/vgpulock", "/etc/ld.so.preload"}


def test_priority_becomes_cuda_task_priority(hal, sim):
    inv = sim("nvidia-2xv100-pcie")
    req = parse_pod(pod({"nvidia.com/gpu": 1, "nvidia.com/gpumem": 1000, "nvidia.com/priority": 1}),
                    hal.vendors())
    alloc = NodeState.from_inventory(inv).allocate(req)
    edits = hal.container_edits(alloc.containers[0], inv.devices)
    assert edits.env["CUDA_TASK_PRIORITY"] == "1"


@pytest.mark.parametrize("limits, field", [
    ({"nvidia.com/gpu": 2, "nvidia.com/gpumem": 10240, "nvidia.com/gpucores": 150}, "nvidia.com/gpucores"),
    ({"nvidia.com/gpu": 2, "nvidia.com/gpumem": -1, "nvidia.com/gpucores": 30}, "nvidia.com/gpumem"),
])
def test_example_pod_bad_values_are_refused_with_one_line(hal, limits, field):
    with pytest.raises(InputError) as info:
        parse_pod(pod(limits), hal.vendors())
    assert field in str(info.value) and "\n" not in str(info.value)


def test_type_and_uuid_selectors(hal, sim):
    inv = sim("nvidia-2xv100-pcie")
    node = NodeState.from_inventory(inv)
    first = inv.devices[0].uuid
    req = parse_pod(pod({"nvidia.com/gpu": 1, "nvidia.com/gpumem": 1000},
                        {"nvidia.com/use-gpuuuid": first}), hal.vendors())
    assert node.fit_pod(req).allocation.slices()[0].uuid == first
    req = parse_pod(pod({"nvidia.com/gpu": 1}, {"nvidia.com/use-gputype": "A100"}), hal.vendors())
    fit = node.fit_pod(req)
    assert not fit.ok and "CardTypeMismatch" in fit.reason
    req = parse_pod(pod({"nvidia.com/gpu": 1}, {"nvidia.com/nouse-gputype": "v100"}), hal.vendors())
    assert not node.fit_pod(req).ok
    req = parse_pod(pod({"nvidia.com/gpu": 1}, {"nvidia.com/vgpu-mode": "mig"}), hal.vendors())
    assert not node.fit_pod(req).ok
    req = parse_pod(pod({"nvidia.com/gpu": 1, "nvidia.com/gpumem": 1000}, {"nvidia.com/nouse-gpuuuid": first}),
                    hal.vendors())
    assert node.fit_pod(req).allocation.slices()[0].uuid == inv.devices[1].uuid
    req = parse_pod(pod({"nvidia.com/gpu": 1, "nvidia.com/gpumem": 1000}, {"nvidia.com/vgpu-mode": "hami-core"}),
                    hal.vendors())
    assert node.fit_pod(req).ok


def test_numa_bind_keeps_a_container_on_one_socket(hal, sim):
    inv = sim("nvidia-2xt4-pcie")  # GPU0 on NUMA 0, GPU1 on NUMA 1
    req = parse_pod(pod({"nvidia.com/gpu": 2, "nvidia.com/gpumem": 1000}, {"nvidia.com/numa-bind": "true"}),
                    hal.vendors())
    fit = NodeState.from_inventory(inv).fit_pod(req)
    assert not fit.ok and "NumaNotFit" in fit.reason


# -- partition models --------------------------------------------------------------------------


def test_shares_follow_hami_config(sim):
    d = sim("nvidia-2xv100-pcie").devices[0]
    assert (d.partition.kind, d.partition.max_slots, d.partition.memory_mib, d.partition.compute_percent) == (
        PartitionKind.SHARES, 10, 32768, 100)
    d = sim("nvidia-2xv100-pcie", {"deviceSplitCount": 4, "deviceMemoryScaling": 1.5,
                                    "deviceCoreScaling": 2}).devices[0]
    assert (d.partition.max_slots, d.partition.memory_mib, d.partition.compute_percent) == (4, 49152, 200)
    d = sim("nvidia-2xv100-pcie", {"nvidia": {"operatingmode": "whole"}}).devices[0]
    assert d.partition.kind is PartitionKind.WHOLE


def test_bad_config_names_the_key(sim):
    with pytest.raises(InputError, match=r"deviceSplitCount: 0 must be an integer >= 1"):
        sim("nvidia-2xv100-pcie", {"deviceSplitCount": 0})
    with pytest.raises(InputError, match="operatingmode"):
        sim("nvidia-2xv100-pcie", {"operatingmode": "fast"})


def test_oversubscription_sets_hami_env(hal, sim):
    inv = sim("nvidia-2xv100-pcie", {"deviceMemoryScaling": 2, "disableCoreLimit": True, "libCudaLogLevel": 3})
    s = DeviceSlice(vendor="nvidia", uuid=inv.devices[0].uuid, device_index=0, common_word="NVIDIA",
                    memory_mib=40000, compute_percent=10)
    edits = hal.container_edits(ContainerAllocation(name="c", index=0, slices=[s]), inv.devices)
    assert edits.env["CUDA_OVERSUBSCRIBE"] == "true"
    assert edits.env["GPU_CORE_UTILIZATION_POLICY"] == "disable"
    assert edits.env["LIBCUDA_LOG_LEVEL"] == "3"


def test_mig_enabled_gpu_offers_templates(sim):
    d = sim("nvidia-2xa100-mig").devices[0]
    part = d.partition
    assert d.mode == "mig" and part.kind is PartitionKind.TEMPLATES and part.requires_creation
    names = [t.name for t in part.templates]
    assert "1g.10gb+me" not in names and {"1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"} <= set(names)
    assert part.compute_units == 7
    allow = sim("nvidia-2xa100-mig", {"migProfileAllowlist": ["3g.40gb", "7g.80gb"]}).devices[0]
    assert [t.name for t in allow.partition.templates] == ["3g.40gb", "7g.80gb"]


def test_mig_allocation_creates_and_destroys_an_instance(hal, sim):
    inv = sim("nvidia-2xa100-mig")
    node = NodeState.from_inventory(inv)
    req = parse_pod(pod({"nvidia.com/gpu": 1, "nvidia.com/gpumem": 15000}, {"nvidia.com/vgpu-mode": "mig"}),
                    hal.vendors())
    alloc = node.allocate(req)
    (s,) = alloc.slices()
    assert s.template in ("1g.20gb", "2g.20gb") and s.placement is not None
    dev = inv.device(s.uuid)
    handle = hal.create_partition(dev, s)
    assert handle["gpuUUID"] == s.uuid and handle["migUUID"].startswith("MIG-")
    assert handle["placement"] == {"start": s.placement.start, "size": s.placement.size}
    edits = hal.container_edits(alloc.containers[0], inv.devices)
    assert edits.env == {"NVIDIA_VISIBLE_DEVICES": handle["migUUID"]}
    with pytest.raises(HalError, match="taken or the GPU is full"):
        hal.create_partition(dev, s)
    assert hal.destroy_partition(dev, handle) is True
    with pytest.raises(HalError, match="has no instance yet"):
        hal.container_edits(alloc.containers[0], inv.devices)


def test_mig_creation_refused_plainly_when_mig_mode_is_off(hal, sim):
    inv = sim("nvidia-8xa100-nvlink")
    d = inv.devices[0]
    s = DeviceSlice(vendor="nvidia", uuid=d.uuid, device_index=0, common_word="NVIDIA", memory_mib=9728,
                    compute_percent=13, template="1g.10gb", placement={"start": 0, "size": 1})
    with pytest.raises(HalError, match=r"MIG mode is disabled on this GPU .*never changes MIG mode"):
        hal.create_partition(d, s)
    v100 = sim("nvidia-2xv100-pcie").devices[0]
    with pytest.raises(HalError, match="does not support MIG"):
        hal.create_partition(v100, s.model_copy(update={"uuid": v100.uuid}))


# -- topology ----------------------------------------------------------------------------------


def test_topology_links_and_hami_scores(sim):
    a100 = sim("nvidia-8xa100-nvlink").topology
    assert len(a100.links) == 28
    assert {(lk.kind, lk.count, lk.score) for lk in a100.links} == {(LinkKind.NVLINK, 12, 1200)}
    (v100,) = sim("nvidia-2xv100-pcie").topology.links
    assert (v100.kind, v100.score) == (LinkKind.SINGLE_SWITCH, 50)
    (t4,) = sim("nvidia-2xt4-pcie").topology.links
    assert (t4.kind, t4.score) == (LinkKind.CROSS_CPU, 10)
    assert sim("nvidia-1xh100").topology.links == []


def test_topology_aware_prefers_best_pair(hal, sim):
    inv = sim("nvidia-4xt4-faulty")
    # only GPU0 is healthy: a 2-GPU request cannot be met, and the reason names the sick GPUs
    req = parse_pod(pod({"nvidia.com/gpu": 2, "nvidia.com/gpumem": 1000},
                        {"hami.io/gpu-scheduler-policy": "topology-aware"}), hal.vendors())
    fit = NodeState.from_inventory(inv).fit_pod(req)
    assert not fit.ok and "CardNotHealth" in fit.reason


# -- health ------------------------------------------------------------------------------------


def test_faulty_node_health_reasons_reach_the_inventory(sim):
    inv = sim("nvidia-4xt4-faulty")
    d0, d1, d2, d3 = inv.devices
    assert d0.healthy
    assert not d1.healthy and d1.health_reason == "XID 79: GPU has fallen off the bus"
    assert not d2.healthy and "uncorrectable ECC" in d2.health_reason
    assert not d3.healthy and "fallen off the bus" in d3.health_reason and "GPU is lost" in d3.health_reason


def test_unhealthy_gpus_are_unallocatable(hal, sim):
    inv = sim("nvidia-4xt4-faulty")
    node = NodeState.from_inventory(inv)
    req = parse_pod(pod({"nvidia.com/gpu": 1, "nvidia.com/gpumem": 1000}), hal.vendors())
    assert node.allocate(req).slices()[0].uuid == inv.devices[0].uuid
    req2 = parse_pod(pod({"nvidia.com/gpu": 2, "nvidia.com/gpumem": 1000}, name="two"), hal.vendors())
    assert not node.fit_pod(req2).ok


def test_gpu_breaking_after_discovery(hal, sim):
    inv = sim("nvidia-2xv100-pcie")
    fake = ports.fake_for(hal.context("nvidia").sim)
    d0, d1 = inv.devices
    fake.inject(0, "xid-13")  # application error: reported, not fatal
    h = hal.health(d0)
    assert h.healthy and "XID 13" in h.events
    fake.inject(0, "xid-48")
    assert hal.health(d0).reason == "XID 48: double-bit ECC error"
    fake.inject(1, "lost")
    h1 = hal.health(d1)
    assert not h1.healthy and "fallen off the bus" in h1.reason
    assert hal.device_metrics(d1) == []
    fake.inject(1, "remap-failure")
    fake.clear(1)
    fake.inject(1, "remap-failure")
    assert "row remapping failed" in hal.health(d1).reason


def test_xid_events_not_supported_is_an_event_not_a_failure(hal, sim):
    inv = sim("nvidia-2xt4-pcie")
    fake = ports.fake_for(hal.context("nvidia").sim)
    fake.devices[0].spec.vendor_data.setdefault("not_supported", [])
    fake.inject(0, "not-supported:ecc_uncorrected_volatile")
    h = hal.health(inv.devices[0])
    assert h.healthy and "ECC: Not Supported" in h.events


# -- metrics -----------------------------------------------------------------------------------


def test_device_metrics_in_base_units(hal, sim):
    inv = sim("nvidia-8xa100-nvlink")
    got = {s.name: s for s in hal.device_metrics(inv.devices[0])}
    assert got["memory_total"].value == 81920 * 2**20 and got["memory_total"].unit == "bytes"
    assert got["power"].value == 62 and got["power"].unit == "watts"
    assert got["temperature"].unit == "celsius" and got["sm_clock"].value == 1410e6
    assert got["utilization"].unit == "ratio" and 0 <= got["utilization"].value <= 1
    assert got["memory_used"].labels == {"device_index": "0", "device_type": "NVIDIA-NVIDIA A100-SXM4-80GB"}


def test_not_supported_reading_is_left_out(hal, sim):
    inv = sim("nvidia-2xt4-pcie")
    ports.fake_for(hal.context("nvidia").sim).inject(1, "not-supported:power_mw")
    names = {s.name for s in hal.device_metrics(inv.devices[1])}
    assert "power" not in names and "temperature" in names


def test_process_memory_metrics(hal, sim):
    inv = sim("nvidia-2xt4-pcie")
    fake = ports.fake_for(hal.context("nvidia").sim)
    fake.devices[0].spec.vendor_data["processes"] = [{"pid": 4242, "used_mib": 512}, {"pid": 7, "used_mib": None}]
    try:
        samples = hal.allocation_metrics(inv.devices[0])
        assert [(s.labels["pid"], s.value, s.scope) for s in samples] == [("4242", 512 * 2**20, "process")]
        used = {s.name: s.value for s in hal.device_metrics(inv.devices[0])}["memory_used"]
        assert used == 512 * 2**20
    finally:
        fake.devices[0].spec.vendor_data.pop("processes")


# -- fit veto, probe, missing driver ------------------------------------------------------------


def test_fit_refuses_more_gpus_than_the_interposer_tracks(hal, sim):
    """The 16-GPU interposer limit is data (DeviceSetRules.max_shared_devices): the scheduler applies it too."""
    from hami_hal.engine import NodeState
    from hami_hal.requests import parse_pod

    d = sim("nvidia-2xv100-pcie").devices[0]
    gpus = [d.model_copy(update={"uuid": f"GPU-{i}", "index": i}) for i in range(17)]

    def pod(limits):
        return parse_pod({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {
            "limits": limits}}]}}, hal.vendors())

    shares = NodeState("n", gpus).fit_pod(pod({"nvidia.com/gpu": 17, "nvidia.com/gpumem": 100}))
    assert not shares.ok and FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST.value in shares.reason
    assert "at most 16 devices per container" in shares.reason
    assert NodeState("n", gpus).fit_pod(pod({"nvidia.com/gpu": 16, "nvidia.com/gpumem": 100})).ok
    assert NodeState("n", gpus).fit_pod(pod({"nvidia.com/gpu": 17})).ok  # whole GPUs: no interposer limit


def test_probe_never_runs_on_simulated_gpus(hal, sim):
    d = sim("nvidia-1xh100").devices[0]
    assert hal.probe(d, "isolation/memory-hard") is None


def test_driver_missing_skips_nvidia_with_one_line_and_falls_back(hal, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    inv = hal.discover("auto", node_name="cpu-node")
    skipped = {s.name: s.reason for s in inv.skipped}
    assert skipped["nvidia"].startswith("no NVML:") and "\n" not in skipped["nvidia"]
    assert inv.source == "simulated" and len(inv.devices) == 2


def test_fake_driver_missing_raises_backend_unavailable(sim, hal):
    sim("nvidia-2xv100-pcie")
    fake = FakeNvml(hal.context("nvidia").sim, driver_missing=True)
    with pytest.raises(BackendUnavailable, match="^no NVML"):
        fake.init()


def test_hami_nvidia_cli_renders_mig_profiles(capsys):
    from hami_plugins_nvidia.cli import main

    assert main(["--sim-node", "nvidia-1xh100"]) == 0
    out = capsys.readouterr().out
    assert "7g.80gb" in out and "simulated" in out and "unknown" in out


def test_hami_nvidia_cli_reports_the_interposer_library(capsys, monkeypatch):
    import json

    from hami_plugins_nvidia import cli, interposer

    assert cli.main(["--sim-node", "nvidia-1xh100", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["interposer"]
    path = interposer.library_path()
    assert info["path"] == (str(path) if path else None)
    monkeypatch.setattr(interposer, "library_path", lambda: None)
    assert cli.main(["--sim-node", "nvidia-1xh100"]) == 0
    assert "CUDA interposer: libvgpu.so is not built" in capsys.readouterr().out
