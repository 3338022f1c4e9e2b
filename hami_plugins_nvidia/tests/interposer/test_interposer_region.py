"""The container region: several processes share one limit, a killed process's memory is reclaimed, a
corrupt or foreign file is detected and not trusted, and Python reads the same layout through cffi."""

from __future__ import annotations

import os
import signal

import pytest

from .conftest import Workload, region

MIB = 1 << 20


def _wait_line(proc, text: str) -> None:
    for line in proc.stdout:
        if text in line:
            return
    raise AssertionError(f"process exited before printing {text!r}: {proc.stderr.read()}")


def test_processes_of_one_container_share_the_limit(workload: Workload) -> None:
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    holder = workload.start("ctx", "0", "alloc", "600m", "hang")
    _wait_line(holder, "hanging")
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "300m", "meminfo")
    assert r.values("alloc") == [["err", "2"], ["ok", "0"]]
    assert int(r.values("meminfo")[0][1]) == 1024 * MIB - 900 * MIB  # free counts the other process too
    with region.SharedRegion(workload.region_path) as reg:
        procs = reg.processes()
        assert [p.pid for p in procs if p.used_bytes[0]] == [holder.pid]  # the second process has exited
        assert reg.usage(0) == 600 * MIB
        assert reg.limits()[0] == 1024 * MIB and reg.sm_limits()[0] == 100


def test_killed_process_memory_is_reclaimed(workload: Workload) -> None:
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    holder = workload.start("ctx", "0", "alloc", "800m", "hang")
    _wait_line(holder, "hanging")
    keeper = workload.start("ctx", "0", "alloc", "100m", "hang")  # keeps the region live
    _wait_line(keeper, "hanging")
    assert workload.run("ctx", "0", "alloc", "500m").values("alloc") == [["err", "2"]]
    holder.send_signal(signal.SIGKILL)  # no atexit: the slot stays behind
    holder.wait()
    with region.SharedRegion(workload.region_path) as reg:
        assert sorted(p.alive for p in reg.processes()) == [False, True]
    r = workload.run("ctx", "0", "alloc", "500m", "meminfo", LIBCUDA_LOG_LEVEL="3")
    assert r.values("alloc") == [["ok", "0"]]
    assert f"reclaimed slot of dead pid {holder.pid}" in r.stderr
    with region.SharedRegion(workload.region_path) as reg:
        assert [p.pid for p in reg.processes()] == [keeper.pid] and reg.usage(0) == 100 * MIB


def test_region_left_by_dead_processes_is_reinitialised_from_the_environment(workload: Workload) -> None:
    """Issue 18: a region left with no limit must not void a later process's limit."""
    workload.run("ctx", "0", "alloc", "3g")  # no limit; exits
    holder = workload.start("ctx", "0", "alloc", "100m", "hang", CUDA_DEVICE_MEMORY_LIMIT="2g")
    _wait_line(holder, "hanging")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "600m", CUDA_DEVICE_MEMORY_LIMIT="1g")
    assert r.values("alloc") == [["ok", "0"], ["err", "2"]]
    assert "re-initialised from this process's environment" in r.stderr
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.limits()[0] == 1 << 30


def test_python_reclaims_dead_slots(workload: Workload) -> None:
    workload.env["CUDA_DEVICE_MEMORY_LIMIT"] = "1g"
    holder = workload.start("ctx", "0", "alloc", "100m", "hang")
    _wait_line(holder, "hanging")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with region.SharedRegion(workload.region_path) as reg:
        assert reg.usage(0) == 100 * MIB
        assert reg.reclaim_dead() == [holder.pid]
        assert reg.usage(0) == 0


@pytest.mark.parametrize(("content", "why"), [
    (b"\x00" * region.REGION_SIZE, None),                      # zero-filled: treated as new
    (b"garbage" * 10, "not ours"),                             # wrong size
    (b"\xff" * region.REGION_SIZE, "corrupt or foreign"),      # right size, wrong magic
], ids=["zero-filled", "short-garbage", "bad-magic"])
def test_corrupt_or_foreign_region_is_reported_not_trusted(workload: Workload, content: bytes,
                                                           why: str | None) -> None:
    workload.region_path.write_bytes(content)
    r = workload.run("ctx", "0", "alloc", "600m", "alloc", "600m", CUDA_DEVICE_MEMORY_LIMIT="1g")
    assert r.values("alloc") == [["ok", "0"], ["err", "2"]]  # the limit still holds in the process
    if why:
        assert why in r.stderr and str(workload.region_path) in r.stderr
        assert workload.region_path.read_bytes() == content  # left untouched
        with pytest.raises(region.RegionError):
            region.SharedRegion(workload.region_path)
    else:
        with region.SharedRegion(workload.region_path) as reg:
            assert reg.limits()[0] == 1 << 30


def test_hami_core_region_is_named_as_such(workload: Workload) -> None:
    data = bytearray(region.REGION_SIZE)
    data[0:4] = (19920718).to_bytes(4, "little")
    workload.region_path.write_bytes(bytes(data))
    r = workload.run("ctx", "0", CUDA_DEVICE_MEMORY_LIMIT="1g")
    assert "HAMi-core region" in r.stderr
    with pytest.raises(region.RegionError, match="HAMi-core"):
        region.SharedRegion(workload.region_path)


def test_tampered_header_fails_the_checksum(workload: Workload) -> None:
    workload.run("ctx", "0", "alloc", "1m", CUDA_DEVICE_MEMORY_LIMIT="1g")
    data = bytearray(workload.region_path.read_bytes())
    data[16] ^= 0xFF  # container_id
    workload.region_path.write_bytes(bytes(data))
    with pytest.raises(region.RegionError, match="checksum"):
        region.SharedRegion(workload.region_path)
    assert "checksum" in workload.run("ctx", "0", CUDA_DEVICE_MEMORY_LIMIT="1g").stderr


def test_region_file_is_shared_and_world_writable(workload: Workload) -> None:
    workload.run("ctx", "0", "alloc", "1m", CUDA_DEVICE_MEMORY_LIMIT="1g")
    st = os.stat(workload.region_path)
    assert st.st_size == region.REGION_SIZE and st.st_mode & 0o666 == 0o666
