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


# Dicts shaped exactly as hami_plugins_nvidia.interposer.probe returns them (keys from its H100 run).
GOOD = {
    "measure_memory_isolation": {"device_index": 0, "framework": "torch", "limit_mib": 4096,
                                 "reported_total_mib": 4096.0, "largest_allocation_mib": 3504.0,
                                 "within_limit": True, "oom_is_framework_oom": True,
                                 "oom_error": "OutOfMemoryError: CUDA out of memory.", "library_version": "0.1.0"},
    "measure_compute_share": {"device_index": 0, "limit_percent": 30, "native_tflops": 676.2,
                              "limited_tflops": 195.6, "achieved_percent": 28.9, "error_points": -1.1,
                              "seconds_per_run": 5.0},
    "measure_launch_overhead": {"device_index": 0, "pairs": 10, "launches_per_run": 20000,
                                "native_us_per_launch_median": 7.56, "preloaded_us_per_launch_median": 7.21,
                                "ratio_median": 0.994, "ratios": [0.99]},
}


def _fake_interposer(monkeypatch, answers):
    probe = types.ModuleType("hami_plugins_nvidia.interposer.probe")
    calls = []
    for name, raw in answers.items():
        def fn(*args, _raw=raw, _name=name):
            calls.append((_name, args))
            return dict(_raw)
        setattr(probe, name, fn)
    monkeypatch.setitem(sys.modules, "hami_plugins_nvidia.interposer.probe", probe)
    import hami_plugins_nvidia.interposer as interposer
    monkeypatch.setattr(interposer, "probe", probe, raising=False)
    return calls


def _real(sim):
    dev = sim("nvidia-1xh100").devices[0]
    return dev, dev.model_copy(update={"provenance": Provenance(source="real", device_model=dev.model,
                                                                 driver_version="580.159.04")})


def test_probe_runs_interposer_measurements_on_real_gpus_only(hal, sim, monkeypatch):
    calls = _fake_interposer(monkeypatch, GOOD)
    dev, real = _real(sim)
    assert hal.probe(dev, "isolation/memory-hard") is None  # simulated: never proven
    from hami_plugins_nvidia.probe import run_probe
    res = run_probe(real, "isolation/memory-hard")
    assert res.level is Level.SUPPORTED and calls == [("measure_memory_isolation", (0, 4096))]
    by_name = {m.name: m for m in res.measurements}
    assert (by_name["memory_overshoot"].value, by_name["memory_overshoot"].unit) == (0.0, "MiB")
    assert all(m.unit for m in res.measurements)
    assert "on real: NVIDIA H100" in res.evidence[0]
    assert run_probe(real, "isolation/reported-total-typo") is None
    assert run_probe(real, "isolation/priority") is None
    for bid in ("isolation/memory-reported-total", "isolation/compute-share", "isolation/launch-overhead"):
        got = run_probe(real, bid)
        assert got.level is Level.SUPPORTED and all(m.unit for m in got.measurements), bid


def test_probe_levels_follow_the_measured_figures(sim, monkeypatch):
    bad = {
        "measure_memory_isolation": {**GOOD["measure_memory_isolation"], "largest_allocation_mib": 4200.0,
                                     "within_limit": False, "reported_total_mib": 81559.0},
        "measure_compute_share": {**GOOD["measure_compute_share"], "achieved_percent": 38.0, "error_points": 8.0},
        "measure_launch_overhead": {**GOOD["measure_launch_overhead"], "ratio_median": 1.05},
    }
    _fake_interposer(monkeypatch, bad)
    from hami_plugins_nvidia.probe import run_probe
    _, real = _real(sim)
    assert run_probe(real, "isolation/memory-hard").level is Level.UNSUPPORTED
    assert run_probe(real, "isolation/memory-reported-total").level is Level.UNSUPPORTED
    share = run_probe(real, "isolation/compute-share")
    assert share.level is Level.PARTIAL
    assert {m.name: m.value for m in share.measurements}["compute_share_error"] == 8.0
    assert run_probe(real, "isolation/launch-overhead").level is Level.PARTIAL
