"""Every allocation path is charged against the container's limit and un-charged on free, reached the
way the CUDA 13 runtime reaches the driver (dlopen + cuGetProcAddress) and through plain dlsym; the
fake device's own counter proves no byte was handed out over the limit."""

from __future__ import annotations

import pytest

from .conftest import Workload

MIB = 1 << 20
LIMIT = 1024 * MIB


def _used(run) -> int:
    return int(run.values("used")[-1][0])


@pytest.fixture(params=["proc", "dlsym"])
def limited(workload: Workload, request: pytest.FixtureRequest) -> Workload:
    workload.env.update(CUDA_DEVICE_MEMORY_LIMIT="1g", DRIVER_RESOLVE=request.param)
    return workload


def test_cumemalloc_stops_at_the_limit_with_out_of_memory(limited: Workload) -> None:
    r = limited.run("ctx", "0", "alloc", "600m", "alloc", "600m", "used", "0", "free", "0", "alloc", "600m",
                    "used", "0")
    assert r.values("alloc") == [["ok", "0"], ["err", "2"], ["ok", "1"]]  # 2 = CUDA_ERROR_OUT_OF_MEMORY
    assert [_used(type(r)(r.lines[:4], "", 0)), _used(r)] == [600 * MIB, 600 * MIB]
    assert "would exceed the limit" in r.stderr


@pytest.mark.parametrize(("cmd", "args", "free_cmd"), [
    ("pitch", ["1000", "300k"], "free"),          # pitch rounds rows up to 512 bytes
    ("managed", ["300m"], "free"),
    ("vmm", ["300m", "0"], "vmmrelease"),          # cuMemCreate (PyTorch expandable segments)
    ("array", ["8k", "8k"], "arraydestroy"),       # 256 MiB float array
    ("array3d", ["512", "512", "256"], "arraydestroy"),
    ("mipmap", ["512", "512", "256"], "mipmapdestroy"),
])
def test_each_path_is_charged_refused_and_released(limited: Workload, cmd: str, args: list[str],
                                                   free_cmd: str) -> None:
    r = limited.run("ctx", "0", cmd, *args, "meminfo", "used", "0", cmd, *args, cmd, *args, cmd, *args,
                    cmd, *args, "used", "0", free_cmd, "0", "meminfo", "used", "0")
    results = r.values(cmd)
    assert results[0][0] == "ok"
    assert ["err", "2"] in results, f"{cmd} never hit the limit: {results}"
    one = int(r.values("used")[0][0])
    peak = int(r.values("used")[1][0])
    assert peak <= LIMIT, "the device handed out memory over the limit"
    ok = sum(1 for x in results if x[0] == "ok")
    assert peak == ok * one
    free1, total1 = map(int, r.values("meminfo")[0][1:])
    free2, total2 = map(int, r.values("meminfo")[1][1:])
    assert total1 == total2 == LIMIT
    assert free1 == LIMIT - one  # the charge is the driver's exact size, not an estimate
    assert free2 == LIMIT - (peak - one)
    assert int(r.values("used")[2][0]) == peak - one


def test_stream_ordered_pool_growth_is_charged(limited: Workload) -> None:
    # the fake pool grows in 32 MiB grains: 100m reserves 128 MiB; frees stay cached until a sync
    r = limited.run("ctx", "0", "async", "100m", "meminfo", "async", "20m", "meminfo", "asyncfree", "0",
                    "pool", "1010m", "used", "0", "sync", "meminfo", "async", "980m", "used", "0", "async", "40m")
    assert r.values("async")[:2] == [["ok", "0"], ["ok", "1"]]
    frees = [LIMIT - int(v[1]) for v in r.values("meminfo")]
    assert frees[:2] == [128 * MIB, 128 * MIB]  # the reserved pool is charged; 20m came from its cache
    assert r.values("pool") == [["err", "2"]]  # 128 MiB reserved - 108 cached + 1010m > 1 GiB
    assert int(r.values("used")[0][0]) == 128 * MIB
    assert frees[2] == 32 * MIB  # after the sync the pool shrank to what is still in use (20m)
    assert r.values("async")[2][0] == "ok"  # grows the pool to exactly 1 GiB
    assert int(r.values("used")[1][0]) == LIMIT
    assert r.values("async")[3] == ["err", "2"]


def test_pool_growth_beyond_the_request_is_given_back(limited: Workload) -> None:
    # 40m context + 980m fits, but the pool would grow by a 992 MiB grain: undone, reported as OOM
    r = limited.run("ctx", "0", "async", "980m", "used", "0", "meminfo", CUDA_DEVICE_CONTEXT_RESERVE="40m")
    assert r.values("async") == [["err", "2"]]
    assert int(r.values("used")[0][0]) == 0
    assert int(r.values("meminfo")[0][1]) == LIMIT - 40 * MIB



@pytest.mark.parametrize("end", [["ctxreset", "0"], ["ctxrelease", "0"], ["rtreset", "0"], ["rtrelease", "0"]])
def test_destroying_the_primary_context_uncharges_its_allocations(limited: Workload, end: list[str]) -> None:
    # a reset, or the release of the last reference, destroys the context and frees its allocations inside
    # the driver (no cuMemFree to see): their charges and the context's must go, a VMM handle's must stay.
    # rt*: resolved as the CUDA 13 runtime does (version 7000 -> the pre-11.0 cuDevicePrimaryCtxReset /
    # cuDevicePrimaryCtxRelease, not the _v2 entry points); cudaDeviceReset goes through rtreset's path
    r = limited.run("ctx", "0", "vmm", "100m", "0", "alloc", "600m", "array", "4k", "4k", "used", "0", *end,
                    "used", "0", "ctx", "0", "meminfo", "alloc", "600m", "alloc", "600m", "used", "0",
                    CUDA_DEVICE_CONTEXT_RESERVE="40m", FAKE_CUDA_CONTEXT_MIB="40")
    assert r.values(end[0]) == [["0"]]
    assert [int(v[0]) for v in r.values("used")[:2]] == [(40 + 100 + 600 + 64) * MIB, 100 * MIB]
    assert int(r.values("meminfo")[0][1]) == LIMIT - (40 + 100) * MIB  # context charged again, vmm kept
    assert r.values("alloc") == [["ok", "1"], ["ok", "3"], ["err", "2"]]
    assert int(r.values("used")[2][0]) == (40 + 100 + 600) * MIB

def test_reported_totals_are_the_limit(workload: Workload) -> None:
    workload.env.update(CUDA_DEVICE_MEMORY_LIMIT="2g", CUDA_DEVICE_MEMORY_LIMIT_1="512m",
                        CUDA_DEVICE_CONTEXT_RESERVE="64m")
    r = workload.run("ctx", "0", "meminfo", "totalmem", "0", "totalmem", "1", "ctx", "1", "meminfo")
    assert r.values("totalmem") == [["0", str(2 << 30)], ["0", str(512 * MIB)]]
    free0, total0 = map(int, r.values("meminfo")[0][1:])
    free1, total1 = map(int, r.values("meminfo")[1][1:])
    assert (total0, free0) == (2 << 30, (2 << 30) - 64 * MIB)  # the context is charged
    assert (total1, free1) == (512 * MIB, 448 * MIB)


def test_without_limits_nothing_changes(workload: Workload) -> None:
    native = workload.run("ctx", "0", "meminfo", "totalmem", "0", "alloc", "2g", preload=False)
    hooked = workload.run("ctx", "0", "meminfo", "totalmem", "0", "alloc", "2g")
    assert native.lines == hooked.lines


@pytest.mark.parametrize("value", ["4gigs", "99999999999999999999", "17179869184g", "-1", "0x10"])
def test_malformed_limit_is_refused_in_one_line_never_lifted(workload: Workload, value: str) -> None:
    r = workload.run("ctx", "0", "alloc", "1m", CUDA_DEVICE_MEMORY_LIMIT=value, CUDA_DEVICE_MEMORY_LIMIT_0="")
    assert r.values("alloc") == [["err", "2"]]  # the intended limit is unknown: nothing, not everything
    lines = [ln for ln in r.stderr.splitlines() if "CUDA_DEVICE_MEMORY_LIMIT" in ln]
    assert len(lines) == 1 and f'"{value}"' in lines[0] and "refusing" in lines[0], r.stderr


def test_malformed_per_device_limit_falls_back_to_a_valid_global_one(workload: Workload) -> None:
    r = workload.run("ctx", "0", "alloc", "3g", "alloc", "512m", CUDA_DEVICE_MEMORY_LIMIT="1g",
                     CUDA_DEVICE_MEMORY_LIMIT_0="x1")
    assert "CUDA_DEVICE_MEMORY_LIMIT_0=\"x1\"" in r.stderr
    assert r.values("alloc") == [["err", "2"], ["ok", "0"]]


def test_disable_control_passes_everything_through(workload: Workload) -> None:
    r = workload.run("ctx", "0", "alloc", "3g", "meminfo", "where", "alloc", CUDA_DEVICE_MEMORY_LIMIT="1g",
                     CUDA_DISABLE_CONTROL="true")
    assert r.values("alloc") == [["ok", "0"]]
    assert int(r.values("meminfo")[0][2]) == 16 << 30
    assert r.values("where") == [["driver"]]
    assert not workload.region_path.exists() or workload.region_path.stat().st_size == 0
