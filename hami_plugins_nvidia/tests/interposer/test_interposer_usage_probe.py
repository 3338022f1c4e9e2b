"""metrics/allocation-usage: two tenants under libvgpu.so over the fake libcuda, scraped through the node
agent's exporter code; the series must equal what each tenant allocated and what the driver handed out."""

from __future__ import annotations

import importlib

import pytest

from hami_hal.models import Device, Level, Provenance

from .conftest import REAL_DRIVER, Toolchain

usage_probe = importlib.import_module("hami_plugins_nvidia.interposer.usage_probe")
probe = importlib.import_module("hami_plugins_nvidia.probe")

pytestmark = pytest.mark.skipif(REAL_DRIVER, reason="runs the tenants over the fake libcuda")
MIB = 1 << 20
UUID = "GPU-00000000-1111-2222-3333-444444444444"
DEVICE = Device(index=0, uuid=UUID, vendor="nvidia", model="fake", memory_mib=16384, hami_type="NVIDIA-fake",
                provenance=Provenance(source="real", device_model="fake libcuda (tests)"))


def _measure(toolchain: Toolchain, **kw) -> dict:
    return usage_probe.measure_allocation_usage(DEVICE, library=toolchain.lib, driver_dir=toolchain.fake_dir,
                                                visible_device="0", framework="driver",
                                                device_used=lambda uuid: None, **kw)


def test_usage_probe_series_match_each_tenant(toolchain: Toolchain) -> None:
    raw = _measure(toolchain)
    a, b = raw["tenants"]
    assert raw["outside_view"] is None or raw["outside_view"] == "nvml"
    for row, t in zip((a, b), usage_probe.DEFAULT_TENANTS, strict=True):
        assert row["framework"] == "driver"
        assert row["allocated_bytes"] == t.alloc_mib * MIB
        # the fake driver's own count of what it handed this process, and the exporter's series, agree
        assert row["driver_used_bytes"] == t.alloc_mib * MIB
        assert row["series_used_bytes"] == t.alloc_mib * MIB
        assert row["series_limit_bytes"] == t.limit_mib * MIB
    assert a["pid"] != b["pid"]
    assert raw["other_pods_in_scrape"] == []


def test_usage_probe_counts_the_context_charge(toolchain: Toolchain) -> None:
    """A context reserve is charged to the container: the series is allocation + reserve, not just the
    allocation (what NVML would show per process on a real GPU)."""
    raw = _measure(toolchain, extra_env={"CUDA_DEVICE_CONTEXT_RESERVE": "100m"})
    for row, t in zip(raw["tenants"], usage_probe.DEFAULT_TENANTS, strict=True):
        assert row["series_used_bytes"] == (t.alloc_mib + 100) * MIB


def test_usage_probe_judged_against_outside_view(toolchain: Toolchain, monkeypatch: pytest.MonkeyPatch) -> None:
    """The judge: within 1 % of the outside per-process figure is supported; 5 % off is partial; no outside
    view at all leaves the row unverified."""
    real = usage_probe.measure_allocation_usage

    def run(skew: float | None, growth: bool = False):
        monkeypatch.setattr(usage_probe, "measure_allocation_usage", lambda dev, **kw: _with_outside(
            real(dev, library=toolchain.lib, driver_dir=toolchain.fake_dir, visible_device="0",
                 framework="driver", outside=lambda u: None, device_used=lambda u: None), skew, growth))
        return probe.run_probe(DEVICE, "metrics/allocation-usage")

    ok = run(1.0)
    assert ok.level is Level.SUPPORTED, ok
    err = {m.name: m for m in ok.measurements}["usage_error"]
    assert err.value == pytest.approx(0.0) and err.target == "<= 1"
    off = run(1.05)
    assert off.level is Level.PARTIAL
    assert {m.name: m for m in off.measurements}["usage_error"].value == pytest.approx(100 * (1 - 1 / 1.05), abs=0.01)
    blind = run(None)
    assert blind.level is Level.UNVERIFIED
    # NVML names no tenant PID (a container's PID namespace): the device's growth per tenant is judged
    grown = run(1.002, growth=True)
    assert grown.level is Level.SUPPORTED
    assert {m.name for m in grown.measurements} >= {"tenant-a_device_growth", "tenant-b_device_growth"}


def _with_outside(raw: dict, skew: float | None, growth: bool = False) -> dict:
    """Stand in for NVML (absent here): the outside view is the fake driver's count times ``skew``."""
    if skew is not None:
        raw["outside_view"] = "test stand-in for NVML"
        for row in raw["tenants"]:
            row["nvml_device_growth_bytes" if growth else "nvml_process_used_bytes"] = int(
                row["driver_used_bytes"] * skew)
    return raw


def test_usage_probe_tenant_over_its_limit_is_a_clear_error(toolchain: Toolchain) -> None:
    """A tenant asking for more than its limit is refused by the interposer; the probe names why."""
    over = (usage_probe.Tenant("greedy", 1024, 50, 2048),)
    with pytest.raises(usage_probe.UsageProbeError, match="cuMemAlloc_v2 returned CUresult 2"):
        _measure(toolchain, tenants=over)


def test_usage_probe_not_run_on_a_simulated_device() -> None:
    dev = Device(index=0, uuid=UUID, vendor="nvidia", model="sim", memory_mib=81920, hami_type="NVIDIA-sim",
                 provenance=Provenance(source="simulated", profile="p"))
    assert probe.run_probe(dev, "metrics/allocation-usage") is None


def test_usage_probe_tenant_env_is_the_plugins_allocate_answer(tmp_path) -> None:
    """The tenant runs with the env the plugin's container edits give (what Allocate answers), mapped to the
    host: the region file lands in the container's own state folder."""
    folder = tmp_path / "0000-x_main"
    folder.mkdir()
    t = usage_probe.Tenant("x", 2048, 30, 1024)
    env = usage_probe._tenant_env(t, folder, tmp_path, DEVICE, tmp_path / "libvgpu.so", None, None, "driver", None)
    assert env["CUDA_DEVICE_MEMORY_LIMIT_0"] == "2048m" and env["CUDA_DEVICE_SM_LIMIT"] == "30"
    assert env["CUDA_VISIBLE_DEVICES"] == UUID and env["NVIDIA_VISIBLE_DEVICES"] == UUID
    cache = env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]
    assert cache.startswith(str(folder) + "/") and cache.endswith(".cache")
    assert env["LD_PRELOAD"] == str(tmp_path / "libvgpu.so")
