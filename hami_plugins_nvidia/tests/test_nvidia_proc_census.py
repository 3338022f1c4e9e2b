"""The process census publisher (proc_census.py): format, atomic writes, stale on error, unsafe UUIDs, the folder,
the loop's stop, the plugin's config and the container's read-only mount. The interposer's side is
tests/interposer/test_interposer_proc_census.py."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from hami_plugins_nvidia.config import parse_config
from hami_plugins_nvidia.fake_nvml import FakeNvml
from hami_plugins_nvidia.nvml_port import NvmlCode, NvmlFailure
from hami_plugins_nvidia.proc_census import CensusError, ProcCensus, census_line

from hami_hal.errors import InputError
from hami_hal.models import ContainerAllocation, DeviceSlice
from hami_plugins_nvidia import proc_census

CLOCK = 123_456_789_000


class Port:
    """UUIDs and counts per GPU; a count that is an NvmlFailure makes that GPU's query fail."""

    def __init__(self, rows: list[tuple[str, int | NvmlFailure]]) -> None:
        self.rows = rows
        self.asked = 0

    def device_count(self) -> int:
        return len(self.rows)

    def uuid(self, index: int) -> str:
        return self.rows[index][0]

    def process_count(self, index: int) -> int:
        self.asked += 1
        got = self.rows[index][1]
        if isinstance(got, NvmlFailure):
            raise got
        return got


U0, U1 = "GPU-11111111-2222-3333-4444-555555555555", "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def _census(port, folder: Path, **kw) -> ProcCensus:
    return ProcCensus(port, folder, clock=lambda: CLOCK, require_host_pid=False, **kw)


def _publish(c: ProcCensus) -> dict[str, int]:
    fd = c.open_folder()
    try:
        return c.publish_once(fd)
    finally:
        os.close(fd)


def test_one_file_per_gpu_in_the_census_format(tmp_path: Path) -> None:
    folder = tmp_path / "census"
    assert _publish(_census(Port([(U0, 3), (U1, 0)]), folder)) == {U0: 3, U1: 0}
    assert sorted(p.name for p in folder.iterdir()) == sorted([U0, U1])  # no temporary file left
    assert (folder / U0).read_text() == f"hami-proc-census 1 {U0} 3 {CLOCK}\n" == census_line(U0, 3, CLOCK)
    assert (folder / U1).read_text() == census_line(U1, 0, CLOCK)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    for f in folder.iterdir():
        st = f.lstat()
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644 and st.st_nlink == 1
        assert st.st_uid == os.geteuid()


def test_modes_hold_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        folder = tmp_path / "census"
        _publish(_census(Port([(U0, 1)]), folder))
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / U0).stat().st_mode) == 0o644


def test_a_folder_made_too_open_is_closed_again(tmp_path: Path) -> None:
    folder = tmp_path / "census"
    folder.mkdir()
    os.chmod(folder, 0o777)
    _publish(_census(Port([(U0, 1)]), folder))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_each_write_replaces_the_file_whole(tmp_path: Path) -> None:
    # a reader racing the publisher sees the old line or the new one, never a partial or empty file
    folder = tmp_path / "census"
    port = Port([(U0, 1)])
    c = _census(port, folder)
    _publish(c)
    stop, seen = threading.Event(), set()
    bad_list: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            text = (folder / U0).read_text()
            if text in (census_line(U0, 1, CLOCK), census_line(U0, 1234, CLOCK)):
                seen.add(text)
            else:
                bad_list.append(text)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    fd = c.open_folder()
    try:
        for i in range(300):
            port.rows = [(U0, 1234 if i % 2 else 1)]
            c.publish_once(fd)
    finally:
        os.close(fd)
        stop.set()
        t.join(timeout=5)
    assert not bad_list, bad_list[:3]
    assert seen  # the reader did read
    assert sorted(p.name for p in folder.iterdir()) == [U0]


def test_an_nvml_error_leaves_the_old_file_to_go_stale(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "census"
    port = Port([(U0, 2), (U1, 5)])
    c = ProcCensus(port, folder, require_host_pid=False)
    _publish(c)
    before = (folder / U0).read_text()
    port.rows = [(U0, NvmlFailure(NvmlCode.GPU_LOST, "nvmlDeviceGetComputeRunningProcesses")), (U1, 6)]
    with caplog.at_level(logging.WARNING, logger="hami_plugins_nvidia.proc_census"):
        for _ in range(3):
            assert _publish(c) == {U1: 6}  # the other GPU is still published
    assert (folder / U0).read_text() == before  # never a guess: the old sample, which goes stale
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "GPU 0" in lines[0] and "GPU is lost" in lines[0] and "stale" in lines[0], lines


def test_no_device_count_writes_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Failing(Port):
        def device_count(self) -> int:
            raise NvmlFailure(NvmlCode.DRIVER_NOT_LOADED, "nvmlDeviceGetCount")

    folder = tmp_path / "census"
    with caplog.at_level(logging.WARNING, logger="hami_plugins_nvidia.proc_census"):
        assert _publish(_census(Failing([(U0, 1)]), folder)) == {}
        assert _publish(_census(Failing([(U0, 1)]), folder)) == {}
    assert list(folder.iterdir()) == []
    assert any("driver not loaded" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("uuid", ["../escape", "/etc/passwd", ".hidden", "GPU-1/2", "", "GPU 1", "x" * 200,
                                  "GPU-\n1", "GPU-ü"])
def test_a_uuid_that_is_no_safe_file_name_is_skipped_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                    uuid: str) -> None:
    folder = tmp_path / "census"
    port = Port([(uuid, 1), (U1, 2)])
    c = _census(port, folder)
    with caplog.at_level(logging.WARNING, logger="hami_plugins_nvidia.proc_census"):
        assert _publish(c) == {U1: 2}
        assert _publish(c) == {U1: 2}
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["census", U1])  # nothing written anywhere else
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "not a safe file name" in lines[0], lines
    assert port.asked == 2  # the skipped GPU is not even counted


def test_an_absurd_count_is_not_written(tmp_path: Path) -> None:
    folder = tmp_path / "census"
    assert _publish(_census(Port([(U0, 4097), (U1, -1)]), folder)) == {}
    assert list(folder.iterdir()) == []


def test_the_sample_time_is_taken_before_the_query(tmp_path: Path) -> None:
    # the file never claims a sample younger than the count it holds
    ticks: list[int] = []

    class Slow(Port):
        def process_count(self, index: int) -> int:
            ticks.append(time.monotonic_ns())
            return 1

    folder = tmp_path / "census"
    _publish(ProcCensus(Slow([(U0, 1)]), folder, require_host_pid=False))
    sampled = int((folder / U0).read_text().split()[-1])
    assert sampled <= ticks[0]


def test_a_folder_of_another_owner_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the folder another owner")
    folder = tmp_path / "census"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    with pytest.raises(CensusError, match="owned by uid 65534"):
        _census(Port([(U0, 1)]), folder).open_folder()


def test_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "census").symlink_to(real)
    with pytest.raises(CensusError, match="census"):
        _census(Port([(U0, 1)]), tmp_path / "census").open_folder()


def test_the_loop_publishes_every_100_ms_and_stops_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "census"
    port = Port([(U0, 1)])
    stop = threading.Event()
    t = threading.Thread(target=ProcCensus(port, folder, require_host_pid=False).run, args=(stop,), daemon=True)
    t.start()
    time.sleep(0.55)
    stop.set()
    t.join(timeout=2)
    assert not t.is_alive()
    assert 3 <= port.asked <= 8, port.asked
    now = time.monotonic_ns()
    assert 0 <= now - int((folder / U0).read_text().split()[-1]) < 1_000_000_000


def test_outside_the_host_pid_namespace_nothing_is_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # NVML would list only the agent's own namespace: a census from there would be a wrong (too small) count
    monkeypatch.setattr(proc_census, "in_host_pid_namespace", lambda: False)
    port = Port([(U0, 1)])
    with caplog.at_level(logging.ERROR, logger="hami_plugins_nvidia.proc_census"):
        ProcCensus(port, tmp_path / "census").run(threading.Event())
    assert port.asked == 0 and list((tmp_path / "census").iterdir()) == []  # made (containers mount it), empty
    assert any("hostPID: true" in r.getMessage() for r in caplog.records)


def test_fake_nvml_counts_compute_processes_and_mps_clients(sim) -> None:
    inv = sim("nvidia-1xh100")
    from hami_plugins_nvidia import ports

    fake: FakeNvml = ports.fake_for(inv.context("nvidia").sim)
    vd = fake.devices[0].spec.vendor_data
    procs, mps = list(vd.get("processes", [])), list(vd.get("mps_processes", []))
    assert fake.process_count(0) == len(procs) + len(mps)
    fake.inject(0, "lost")
    with pytest.raises(NvmlFailure):
        fake.process_count(0)


# ---- the plugin's setting and the container's mount ----------------------------------------

def test_census_dir_setting() -> None:
    assert parse_config({}).proc_census_dir is None
    assert parse_config({"procCensusDir": "/run/x/"}).proc_census_dir == "/run/x"
    assert parse_config({"proc_census_dir": ""}).proc_census_dir == ""
    for bad in ["relative/path", "/run/../etc", "/" + "x" * 300, 5, None]:
        with pytest.raises(InputError, match="procCensusDir|proc_census_dir"):
            parse_config({"procCensusDir": bad})
    assert proc_census.census_dir(None, simulated=False) == proc_census.DEFAULT_DIR
    assert proc_census.census_dir(None, simulated=True) is None
    assert proc_census.census_dir("", simulated=False) is None
    assert proc_census.census_dir("/run/c", simulated=True) == "/run/c"


def _alloc(inv) -> ContainerAllocation:
    d = inv.devices[0]
    s = DeviceSlice(vendor="nvidia", uuid=d.uuid, device_index=0, common_word="NVIDIA", memory_mib=1024,
                    compute_percent=30)
    return ContainerAllocation(name="main", index=0, slices=[s])


def test_interposer_containers_get_the_census_read_only(hal, sim, tmp_path: Path) -> None:
    folder = str(tmp_path / "census")
    inv = sim("nvidia-1xh100", {"procCensusDir": folder})
    edits = hal.container_edits(_alloc(inv), inv.devices, contexts=inv.contexts())
    assert "HAMI_PROC_CENSUS_DIR" not in edits.env  # no folder yet: a mount of it would stop the container
    assert "HAMI_PROC_CENSUS_REQUIRED" not in edits.env  # ... and nothing to require
    os.mkdir(folder)
    edits = hal.container_edits(_alloc(inv), inv.devices, contexts=inv.contexts())
    assert edits.env["HAMI_PROC_CENSUS_DIR"] == folder
    assert edits.env["HAMI_PROC_CENSUS_REQUIRED"] == "1"  # fails closed where a tenant hides the mount
    (mount,) = [m for m in edits.mounts if m.container_path == folder]
    assert mount.host_path == folder and "ro" in mount.options and "rw" not in mount.options
    plain = sim("nvidia-1xh100")  # a simulated node without the setting publishes nothing: no mount
    edits = hal.container_edits(_alloc(plain), plain.devices, contexts=plain.contexts())
    assert "HAMI_PROC_CENSUS_DIR" not in edits.env and "HAMI_PROC_CENSUS_REQUIRED" not in edits.env
    assert not [m for m in edits.mounts if "census" in m.container_path]


# ---- the real port's count (a stand-in pynvml, as in test_nvidia_real_port) ------------------

class _NvmlError(Exception):
    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(f"NVML error {value}")


def _raise(code: int):
    def fail(*_args):
        raise _NvmlError(code)
    return fail


def test_real_port_counts_compute_processes_and_mps_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from hami_plugins_nvidia.nvml_port import RealNvml

    m = types.ModuleType("pynvml")
    m.NVMLError = _NvmlError
    m.NVML_ERROR_NOT_SUPPORTED, m.NVML_ERROR_NO_PERMISSION, m.NVML_ERROR_GPU_IS_LOST = 3, 4, 15
    m.nvmlInit = lambda: None
    m.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=42), types.SimpleNamespace(pid=43)]
    monkeypatch.setitem(sys.modules, "pynvml", m)
    port = RealNvml()
    port.init()
    assert port.process_count(0) == 2  # this pynvml has no MPS query: no client counted
    m.nvmlDeviceGetMPSComputeRunningProcesses = lambda h: [types.SimpleNamespace(pid=7)]
    assert port.process_count(0) == 3  # MPS clients are listed apart and added
    m.nvmlDeviceGetMPSComputeRunningProcesses = _raise(3)
    assert port.process_count(0) == 2  # MPS "Not Supported": none
    m.nvmlDeviceGetMPSComputeRunningProcesses = _raise(4)
    with pytest.raises(NvmlFailure, match="insufficient permissions"):  # any other failure: no count at all
        port.process_count(0)
    m.nvmlDeviceGetComputeRunningProcesses = _raise(15)
    with pytest.raises(NvmlFailure, match="GPU is lost"):
        port.process_count(0)
