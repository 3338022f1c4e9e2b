"""Topology-aware placement on a mixed NVLink/PCIe node, and the conformance probe on a real device."""

from __future__ import annotations

import sys
import types

import pytest
import yaml

from hami_hal.engine import NodeState
from hami_hal.models import Level, LinkKind, Provenance
from hami_hal.requests import parse_pod

NODE = [
    {"apiVersion": "hami-hal.io/v1alpha1", "kind": "DeviceProfile",
     "metadata": {"name": "test-a100-pcie-bridged"},
     "spec": {"vendor": "nvidia", "model": "NVIDIA A100 80GB PCIe", "memory_mib": 81920, "compute_units": 108,
              "vendor_data": {"uuid_prefix": "GPU-", "compute_capability": "8.0", "cuda_cores": 6912,
                              "mig_capable": False, "nvlink_capable": True}}},
    {"apiVersion": "hami-hal.io/v1alpha1", "kind": "NodeProfile", "metadata": {"name": "test-4xa100-bridged"},
     "spec": {"devices": [{"profile": "test-a100-pcie-bridged", "count": 4, "numa_nodes": [0, 0, 1, 1]}],
              "links": [{"between": "all", "kind": "cross-cpu"},
                        {"between": [0, 1], "kind": "same-cpu"},
                        {"between": [2, 3], "kind": "nvlink", "count": 3}]}},
]


@pytest.fixture
def bridged(tmp_path, monkeypatch, sim):
    path = tmp_path / "bridged.yaml"
    path.write_text(yaml.safe_dump_all(NODE))
    monkeypatch.setenv("HAMI_HAL_PROFILE_PATH", str(path))
    return sim("test-4xa100-bridged")


def _pod(limits):
    return {"metadata": {"name": "p", "annotations": {"hami.io/gpu-scheduler-policy": "topology-aware"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


def test_nvlink_bridge_pair_is_found_through_nvml_links(bridged):
    topo = bridged.topology
    d = bridged.devices
    assert topo.link(d[2].uuid, d[3].uuid).kind is LinkKind.NVLINK
    assert topo.link(d[2].uuid, d[3].uuid).score == 300
    assert topo.link(d[0].uuid, d[1].uuid).kind is LinkKind.SAME_CPU
    assert topo.link(d[0].uuid, d[2].uuid).score == 10


def test_topology_aware_takes_the_nvlink_pair_for_two_gpus(hal, bridged):
    req = parse_pod(_pod({"nvidia.com/gpu": 2, "nvidia.com/gpumem": 1000}), hal.vendors())
    got = {s.uuid for s in NodeState.from_inventory(bridged).allocate(req).slices()}
    assert got == {bridged.devices[2].uuid, bridged.devices[3].uuid}


def test_topology_aware_takes_a_worst_linked_gpu_for_one(hal, bridged):
    req = parse_pod(_pod({"nvidia.com/gpu": 1, "nvidia.com/gpumem": 1000}), hal.vendors())
    (s,) = NodeState.from_inventory(bridged).allocate(req).slices()
    assert s.uuid in {bridged.devices[0].uuid, bridged.devices[1].uuid}


def test_probe_runs_interposer_measurements_on_real_gpus_only(hal, sim, monkeypatch):
    probe = types.ModuleType("hami_plugins_nvidia.interposer.probe")
    calls = []

    def measure_memory_isolation(device_index, limit_mib):
        calls.append((device_index, limit_mib))
        return {"ok": True, "limit_mib": limit_mib, "allocated_mib": limit_mib, "overshoot_mib": 0}
    probe.measure_memory_isolation = measure_memory_isolation
    monkeypatch.setitem(sys.modules, "hami_plugins_nvidia.interposer.probe", probe)
    import hami_plugins_nvidia.interposer as interposer
    monkeypatch.setattr(interposer, "probe", probe, raising=False)
    dev = sim("nvidia-1xh100").devices[0]
    assert hal.probe(dev, "isolation/memory-hard") is None  # simulated: never proven
    from hami_plugins_nvidia.probe import run_probe
    real = dev.model_copy(update={"provenance": Provenance(source="real", device_model=dev.model,
                                                            driver_version="580.159.04")})
    res = run_probe(real, "isolation/memory-hard")
    assert res.level is Level.SUPPORTED and calls == [(0, 4096)]
    assert {m.name: (m.value, m.unit) for m in res.measurements}["overshoot_mib"] == (0.0, "MiB")
    assert res.evidence[0].startswith("measure_memory_isolation(0, 4096) on real: NVIDIA H100")
    assert run_probe(real, "isolation/priority") is None
