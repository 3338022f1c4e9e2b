"""hami_hal_container_usage through the NVIDIA plugin: region files in a container's state folder."""

from __future__ import annotations

import time

from node_agent_fixtures import write_region


def test_hook_hami_hal_container_usage(hal, tmp_path):
    hal.discover("sim", node_name="n")
    uuids = ["GPU-a", "GPU-b"]
    now = time.monotonic_ns()
    write_region(tmp_path / "0f.cache", used=[3 << 30, 1 << 20], limits_mib=[10240, 10240], sm=30, busy_s=2.5,
                 last_launch_ns=now - 4_000_000_000)
    got = {(s.name, s.device_uuid): s for s in hal.container_usage("nvidia", tmp_path, uuids)}
    assert got[("memory_used", "GPU-a")].value == 3 << 30 and got[("memory_used", "GPU-b")].value == 1 << 20
    assert got[("memory_limit", "GPU-b")].value == 10240 << 20
    assert got[("core_limit", "GPU-a")].value == 0.3 and got[("busy", "GPU-a")].value == 2.5
    assert 4 <= got[("last_kernel_age", "GPU-a")].value < 60
    assert {s.labels["vdevice_index"] for s in got.values() if s.device_uuid == "GPU-b"} == {"1"}
    assert all(s.scope == "allocation" for s in got.values())


def test_foreign_corrupt_and_symlinked_files_are_skipped(hal, tmp_path):
    hal.discover("sim", node_name="n")
    (tmp_path / "junk.cache").write_bytes(b"\0" * 64)
    real = write_region(tmp_path.parent / "elsewhere.bin", used=[5], limits_mib=[1], sm=100)
    (tmp_path / "link.cache").symlink_to(real)
    assert hal.container_usage("nvidia", tmp_path, ["GPU-a"]) == []
    assert hal.container_usage("nvidia", tmp_path / "missing", ["GPU-a"]) == []
