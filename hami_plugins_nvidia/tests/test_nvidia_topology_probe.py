"""Topology-aware placement on a mixed NVLink/PCIe node, and the conformance probe on a real device."""

from __future__ import annotations

import sys
import types

import pytest
import yaml
from hami_plugins_nvidia.topology import LinkKind

from hami_hal.engine import NodeState
from hami_hal.models import Level, Provenance
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
    assert topo.link(d[2].uuid, d[3].uuid).kind == LinkKind.NVLINK
    assert topo.link(d[2].uuid, d[3].uuid).score == 300
    assert topo.link(d[0].uuid, d[1].uuid).kind == LinkKind.SAME_CPU
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
    "measure_priority": {"device_index": 0, "seconds_per_run": 5.0, "priorities": [0, 1], "priority_idle_ms": 50,
                         "solo_tflops": [640.0, 642.0], "high_tflops": 620.0, "low_tflops": 12.0,
                         "high_percent_of_solo": 96.9, "low_percent_of_solo": 1.9, "overlap_s": 5.0,
                         "low_end_after_high_s": 5.1, "low_was_held": True, "equal_tflops": [318.0, 322.0],
                         "equal_percent_of_solo": [49.7, 50.2], "equal_overlap_s": 5.0, "equal_was_held": False},
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
    for bid in ("isolation/memory-reported-total", "isolation/compute-share", "isolation/launch-overhead",
                "isolation/priority"):
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


def _priority(sim, monkeypatch, **changes):
    raw = {**GOOD["measure_priority"], **changes}
    for key in [k for k, v in changes.items() if v is None]:
        del raw[key]
    _fake_interposer(monkeypatch, {"measure_priority": raw})
    from hami_plugins_nvidia.probe import run_probe
    return run_probe(_real(sim)[1], "isolation/priority")


def test_priority_probe_passes_on_a_held_low_priority_process(sim, monkeypatch):
    res = _priority(sim, monkeypatch)
    assert res.level is Level.SUPPORTED
    by = {m.name: m for m in res.measurements}
    assert (by["high_priority_share"].value, by["high_priority_share"].unit, by["high_priority_share"].target) == (
        96.9, "% of solo", ">= 80")
    assert (by["low_priority_share"].value, by["low_priority_share"].target) == (1.9, "<= 30")
    assert (by["equal_priority_share_min"].value, by["equal_priority_share_max"].value) == (49.7, 50.2)
    assert all(m.unit for m in res.measurements)
    assert any(e.startswith("pass: while both run, high-priority throughput >= 80 %") for e in res.evidence)


def test_priority_probe_fails_when_both_time_slice(sim, monkeypatch):
    res = _priority(sim, monkeypatch, high_percent_of_solo=51.0, low_percent_of_solo=49.5)
    assert res.level is Level.UNSUPPORTED
    assert "no better than at equal priority" in res.notes
    some = _priority(sim, monkeypatch, high_percent_of_solo=72.0, low_percent_of_solo=28.0)
    assert some.level is Level.PARTIAL  # an effect, short of the 80 % target


def test_priority_probe_without_a_fair_baseline_or_keys_is_unverified(sim, monkeypatch):
    res = _priority(sim, monkeypatch, equal_percent_of_solo=[97.0, 3.0])
    assert res.level is Level.UNVERIFIED and "cannot tell priority" in res.notes
    missing = _priority(sim, monkeypatch, low_percent_of_solo=None)
    assert missing.level is Level.UNVERIFIED and not missing.measurements
    assert "low_percent_of_solo" in missing.evidence[0]


def test_priority_overlap_counts_only_the_work_inside_the_shared_window():
    from hami_plugins_nvidia.interposer.probe import overlap_shares
    flop = 1e12  # one "matmul" = 1 TFLOP, batches of 1: shares come out in plain numbers
    def run(start, done):
        return {"start": start, "done": done, "flop_per_iter": flop, "batch": 1}
    solo = [{"tflops": 10.0}, {"tflops": 10.0}]
    high = run(0.0, [0.1 * i for i in range(1, 51)])  # 10 per s from 0 to 5 s: all of its solo rate
    low = run(0.0, [0.5, 6.0, 6.1])  # one batch, then held until high went idle
    got = overlap_shares(solo, [high, low])
    assert got["overlap_s"] == pytest.approx(5.0)
    assert got["percent_of_solo"][0] == pytest.approx(100.0)
    # 1 batch in 0-0.5 s, plus 4.5/5.5 of the held batch that ended at 6 s: (1 + 0.818) / 5 s / 10
    assert got["percent_of_solo"][1] == pytest.approx(100 * (1 + 4.5 / 5.5) / 5 / 10)
    assert got["end_after_overlap_s"][1] == pytest.approx(1.1)


FAKE_PRIO_WORKER = """
import json, os, sys, time
go = os.environ.get("BENCH_GO")
if go:
    open(go + f".ready.{os.getpid()}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
t0, done = time.perf_counter(), []
while time.perf_counter() - t0 < float(sys.argv[2]):
    time.sleep(0.01)
    done.append(time.perf_counter())
print("RESULT " + json.dumps(dict(batch=1, flop_per_iter=1e10, start=t0, done=done, tflops=1.0,
                                  prio=os.environ["CUDA_TASK_PRIORITY"], board=os.environ["HAMI_NODE_BOARD"],
                                  cache=os.environ["CUDA_DEVICE_MEMORY_SHARED_CACHE"])))
"""


def test_measure_priority_releases_both_workers_together(tmp_path, monkeypatch):
    """The orchestration without a GPU: a stand-in worker (no torch, no CUDA) in place of bench_worker."""
    from hami_plugins_nvidia.interposer import library_path
    from hami_plugins_nvidia.interposer import probe as iprobe
    if library_path() is None:
        pytest.skip("libvgpu.so is not built")
    worker = tmp_path / "worker.py"
    worker.write_text(FAKE_PRIO_WORKER)
    monkeypatch.setattr(iprobe, "WORKER", worker)
    seen = []
    real_pair = iprobe._pair
    monkeypatch.setattr(iprobe, "_pair", lambda *a, **k: seen.append(real_pair(*a, **k)) or seen[-1])
    got = iprobe.measure_priority(0, seconds=0.3)
    assert [r["prio"] for r in seen[0]] == ["0", "1"] and [r["prio"] for r in seen[1]] == ["1", "1"]
    for pair in seen:
        assert pair[0]["board"] == pair[1]["board"] and pair[0]["cache"] != pair[1]["cache"]
        assert abs(pair[0]["start"] - pair[1]["start"]) < 0.1  # released by the same go file
    assert got["overlap_s"] > 0.2 and got["priorities"] == [0, 1]
    assert 80 < got["high_percent_of_solo"] < 120 and 80 < got["low_percent_of_solo"] < 120  # nothing held
    assert got["low_was_held"] is False and len(got["equal_percent_of_solo"]) == 2
