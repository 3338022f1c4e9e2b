"""The node agent's process census bounds the neighbours a charge counts in a pod's own PID namespace.

From there NVML lists only the pod's processes (the driver leaves the others out), so NVML's count bounds
nothing and a forged busy board entry still doubled what a tenant got. The node agent, in the host's PID
namespace, publishes every GPU's process count (hami_plugins_nvidia/proc_census.py); the interposer reads it
on its watcher thread where NVML's list is namespace-filtered (csrc/nvmlq.c census_count) and trusts it only
if root owns it and its folder, nobody else can write them, the mount is read-only or the reader not root, it
parses and is at most 1 s old.

Each tenant runs in its own PID and mount namespace (unshare; through a user namespace when not root, where the
test's own files show as root's), with the census folder bind-mounted read-only as the device plugin mounts it,
beside the fake NVML listing "self" (the namespace-filtered list) and a forged busy board entry (the audit's
forging helper). The real publisher, with a port whose count the test sets, keeps the census fresh."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hami_plugins_nvidia.proc_census import ProcCensus, census_line
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import Toolchain, Workload
from .test_interposer_board_audit import _forge_ring
from .test_interposer_nvml_bound import _force, _nvml, _with_forger, fake_gpu, nvml_dir  # noqa: F401 - fixture
from .test_interposer_share import _charged_ms

UUID0 = "GPU-fa4e0000-0000-4000-8000-000000000000"  # the fake NVML's device 0 (fake_cuda/fake_nvml.c)
RO_MOUNT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
BIND_ONLY = 'shift && exec "$@"'


class _Port:
    """What the publisher asks NVML, with the count the test sets (the fake NVML's one device 0)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def device_count(self) -> int:
        return 1

    def uuid(self, index: int) -> str:
        return UUID0

    def process_count(self, index: int) -> int:
        return self.count


def _namespaces() -> list[str]:
    """unshare: own PID and mount namespaces (through a user namespace when not root), or skip."""
    tool = shutil.which("unshare")
    for prefix in (["--mount", "--pid", "--fork"], ["--user", "--map-root-user", "--mount", "--pid", "--fork"]):
        if tool and subprocess.run([tool, *prefix, "sh", "-c", RO_MOUNT, "sh", "/", "true"],
                                   capture_output=True).returncode == 0:
            return [tool, *prefix]
    pytest.skip("no PID and mount namespace can be made here (unshare refused): the pod case is not run")


@pytest.fixture
def census(workload: Workload) -> Path:
    folder = workload.tmp.parent / "census"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    return folder


@pytest.fixture
def publisher(census: Path) -> Iterator[_Port]:
    """The real publisher writing the census every 100 ms until the test ends."""
    port = _Port(1)
    stop = threading.Event()
    t = threading.Thread(target=ProcCensus(port, census, require_host_pid=False).run, args=(stop,), daemon=True)
    t.start()
    time.sleep(0.15)
    yield port
    stop.set()
    t.join(timeout=5)


def _keep_writing(path: Path, text, stop: threading.Event, mode: int = 0o644, owner: int | None = None) -> None:
    """A hand-made census file, rewritten fresh every 50 ms (text: the CLOCK_MONOTONIC ns -> the content)."""
    while not stop.is_set():
        tmp = path.with_name(".hand.tmp")
        tmp.write_text(text(time.monotonic_ns()))
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, owner, owner)
        os.replace(tmp, path)
        stop.wait(0.05)


def _tenant(w: Workload, nvml_dir: Path, census: Path | None, script: str = RO_MOUNT) -> tuple[float, str]:  # noqa: F811
    """A 30 % tenant under force in a pod-like namespace, beside a forged busy entry: its share and stderr."""
    secs, gpu, err = tenant_run(w, nvml_dir, census, script)
    return 100 * gpu / secs, err


def tenant_run(w: Workload, nvml_dir: Path, census: Path | None,  # noqa: F811
               script: str = RO_MOUNT) -> tuple[float, float, str]:
    """_tenant's run: its window (s), the GPU time the fake gave it there (s) and its stderr."""
    _force(w, 30)
    _nvml(w, nvml_dir, "self")
    if census is not None:
        w.env["HAMI_PROC_CENSUS_DIR"] = str(census)
    mount_point = census or w.tmp
    stop = _with_forger(w, _forge_ring, 0, "all")
    try:
        cmd = [*_namespaces(), "sh", "-c", script, "sh", str(mount_point), str(w.tc.app),
               "ctx", "0", "spin", "2000", "0", "2", "4"]
        proc = subprocess.Popen(cmd, env=w.env_for(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        w.procs.append(proc)
        out, err = proc.communicate(timeout=60)
    finally:
        stop.set()
    words = out.split("spin ")[1].split() if "spin " in out else ["?"]
    assert words[0] == "0", (out, err)
    return float(words[2]) - float(words[1]), float(words[3]), err


@pytest.mark.fake_timing
@fake_gpu
def test_fresh_census_bounds_a_forged_neighbour_in_a_pod(workload: Workload, nvml_dir: Path, census: Path,  # noqa: F811
                                                         publisher: _Port) -> None:
    # the census counts 1 process on the GPU (the tenant itself, holding its memory lane): K = 0, the forged
    # busy entry counts for nothing and the tenant is held to its 30 % (without the census: ~60 %)
    share, err = _tenant(workload, nvml_dir, census)
    print(f"proc-census: pod, fresh census of 1: 30 % tenant got {share:.1f} %")
    assert share <= 38, (share, err)
    assert "census is not used" not in err, err


@fake_gpu
def test_fresh_census_of_one_is_charged_as_if_alone(workload: Workload, nvml_dir: Path, census: Path,  # noqa: F811
                                                    publisher: _Port) -> None:
    # CI's guard (host-independent): the case above judged by the charge over the GPU time the fake gave the
    # tenant. K = 0 from a census of 1: charged as if alone, 1.0 x (a loaded host only lengthens the spans it
    # measures). Without a census file (no publisher: the census is not used, and not required) the forged busy
    # entry halves it: 0.50 x, 59 % at 30.
    secs, gpu, err = tenant_run(workload, nvml_dir, census)
    ratio = _charged_ms(workload) / (gpu * 1e3)
    print(f"proc-census guard: fresh census of 1: charged {ratio:.2f} x, {100 * gpu / secs:.1f} % of the fake GPU")
    assert "census is not used" not in err, err
    assert ratio >= 0.8, (ratio, err)

@pytest.mark.fake_timing
@fake_gpu
def test_census_count_is_what_bounds(workload: Workload, nvml_dir: Path, census: Path,  # noqa: F811
                                     publisher: _Port) -> None:
    # the census says a second process is on the GPU: one neighbour may be real (K = 1), so the forged entry
    # counts (the count is used, not merely the file's presence)
    publisher.count = 2
    share, err = _tenant(workload, nvml_dir, census)
    print(f"proc-census: pod, fresh census of 2: 30 % tenant got {share:.1f} %")
    assert share >= 50, (share, err)
    assert "census is not used" not in err, err


@pytest.mark.fake_timing
@fake_gpu
def test_no_census_leaves_the_pod_unbounded(workload: Workload, nvml_dir: Path) -> None:  # noqa: F811
    share, err = _tenant(workload, nvml_dir, None)
    print(f"proc-census: pod, no HAMI_PROC_CENSUS_DIR: 30 % tenant got {share:.1f} %")
    assert share >= 50, share
    assert err.count("HAMI_PROC_CENSUS_DIR is not set") == 1, err


def _is_root() -> bool:
    return os.geteuid() == 0


@pytest.mark.fake_timing
@fake_gpu
@pytest.mark.parametrize(("case", "reason"), [
    ("stale", "older than 1 s"),
    ("malformed", "is malformed"),
    ("other-gpu", "names another GPU"),
    ("file-writable", "census file is writable by group or others"),
    ("folder-writable", "census folder is writable by group or others"),
    ("file-owner", "census file is not owned by root"),
    ("symlink", "no file for the device (missing, or a symlink)"),
    ("writable-mount", "on a writable mount and this process is root"),
])
def test_untrusted_census_leaves_the_pod_unbounded(workload: Workload, nvml_dir: Path, census: Path,  # noqa: F811
                                                   case: str, reason: str) -> None:
    # each way the census can be wrong or writable by a tenant: not used, the bound stays off (today's behaviour,
    # ~60 % beside the forged entry), and one line names the reason
    path = census / UUID0
    good = lambda ns: census_line(UUID0, 1, ns)  # noqa: E731
    texts = {"stale": lambda ns: census_line(UUID0, 1, ns - 2_000_000_000),
             "malformed": lambda ns: f"hami-proc-census 1 {UUID0} 01 {ns}\n",
             "other-gpu": lambda ns: census_line("GPU-fa4e0000-0000-4000-8000-000000000001", 1, ns)}
    mode, owner, script = 0o644, None, RO_MOUNT
    if case == "file-writable":
        mode = 0o666
    elif case == "folder-writable":
        os.chmod(census, 0o775)
    elif case == "file-owner":
        if not _is_root():
            pytest.skip("needs root to give the file another owner (the pure check is tested below)")
        owner = 65534
    elif case == "writable-mount":
        script = BIND_ONLY  # the folder is not remounted read-only, and the tenant is root in its namespace
    stop = threading.Event()
    if case == "symlink":
        real = census.parent / "elsewhere"
        real.mkdir(mode=0o755)
        target = real / UUID0
        writer = threading.Thread(target=_keep_writing, args=(target, good, stop), daemon=True)
        path.symlink_to(target)
    else:
        writer = threading.Thread(target=_keep_writing, args=(path, texts.get(case, good), stop, mode, owner),
                                  daemon=True)
    writer.start()
    time.sleep(0.1)
    try:
        share, err = _tenant(workload, nvml_dir, census, script)
    finally:
        stop.set()
        writer.join(timeout=5)
    print(f"proc-census: pod, census {case}: 30 % tenant got {share:.1f} %")
    assert share >= 50, (share, err)
    lines = [ln for ln in err.splitlines() if reason in ln]
    assert len(lines) == 1, err
    assert "counted unbounded" in lines[0], lines[0]


@pytest.mark.fake_timing
@fake_gpu
def test_unsafe_uuid_is_never_a_path(workload: Workload, nvml_dir: Path, census: Path,  # noqa: F811
                                     publisher: _Port) -> None:
    # a UUID from NVML that is no safe file name ("../x") never becomes a path: no census, one line
    workload.env["FAKE_NVML_UUID"] = "../" + UUID0
    share, err = _tenant(workload, nvml_dir, census)
    assert share >= 50, (share, err)
    assert err.count("not a safe file name") == 1, err


# ---- the pure checks, unit-tested (every owner and mode, whoever runs the tests) ----

@pytest.fixture(scope="module")
def lib(toolchain: Toolchain) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(toolchain.lib))
    lib.hami_vgpu_census_untrusted.restype = ctypes.c_char_p
    lib.hami_vgpu_census_untrusted.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_uint,
                                               ctypes.c_ulong, ctypes.c_int, ctypes.c_uint]
    lib.hami_vgpu_census_parse.restype = ctypes.c_int
    lib.hami_vgpu_census_parse.argtypes = [ctypes.c_char_p, ctypes.c_long, ctypes.c_char_p, ctypes.c_int64,
                                           ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_char_p)]
    return lib


DIR, REG, LNK = 0o040000, 0o100000, 0o120000


def _untrusted(lib, dir_uid=0, dir_mode=DIR | 0o755, file_uid=0, file_mode=REG | 0o644, links=1, ro=1, euid=0):
    r = lib.hami_vgpu_census_untrusted(dir_uid, dir_mode, file_uid, file_mode, links, ro, euid)
    return r.decode() if r else None


def test_census_trust_rules(lib: ctypes.CDLL) -> None:
    assert _untrusted(lib) is None  # root's, 0755/0644, read-only mount: trusted
    assert _untrusted(lib, ro=0, euid=1000) is None  # a writable mount is fine for a reader that is not root
    assert "not owned by root" in _untrusted(lib, dir_uid=1000)
    assert "not owned by root" in _untrusted(lib, file_uid=1000)
    assert "folder is writable" in _untrusted(lib, dir_mode=DIR | 0o1777)
    assert "folder is writable" in _untrusted(lib, dir_mode=DIR | 0o775)
    assert "file is writable" in _untrusted(lib, file_mode=REG | 0o646)
    assert "file is writable" in _untrusted(lib, file_mode=REG | 0o664)
    assert "not a regular file" in _untrusted(lib, file_mode=LNK | 0o777)
    assert "not a folder" in _untrusted(lib, dir_mode=REG | 0o755)
    assert "more than one name" in _untrusted(lib, links=2)
    assert "writable mount" in _untrusted(lib, ro=0, euid=0)


def _parse(lib, text: bytes, uuid: str = UUID0, now: int = 10**12) -> tuple[int | None, str]:
    count, why = ctypes.c_int(-1), ctypes.c_char_p()
    ok = lib.hami_vgpu_census_parse(text, len(text), uuid.encode(), now, ctypes.byref(count), ctypes.byref(why))
    return (count.value if ok else None), (why.value.decode() if why.value else "")


def test_census_parse(lib: ctypes.CDLL) -> None:
    now = 10**12
    assert _parse(lib, census_line(UUID0, 3, now - 5).encode())[0] == 3
    assert _parse(lib, census_line(UUID0, 0, now - 999_999_999).encode())[0] == 0
    assert _parse(lib, census_line(UUID0, 4096, now).encode())[0] == 4096
    bad = {
        census_line(UUID0, 4097, now): "out of range",
        census_line(UUID0, 1, now - 1_000_000_001): "older than 1 s",
        census_line(UUID0, 1, now + 1): "ahead of this clock",
        census_line(UUID0 + "1", 1, now): "names another GPU",
        census_line(UUID0[:-1], 1, now): "names another GPU",
        census_line(UUID0, 1, now).replace("census 1", "census 2"): "not a version 1 census",
        f"hami-proc-census 1 {UUID0} -1 {now}\n": "malformed",
        f"hami-proc-census 1 {UUID0} +1 {now}\n": "malformed",
        f"hami-proc-census 1 {UUID0} 01 {now}\n": "malformed",
        f"hami-proc-census 1 {UUID0} 1 {now}": "malformed",  # no newline
        f"hami-proc-census 1 {UUID0} 1 {now}\n\n": "malformed",
        f"hami-proc-census 1 {UUID0} 1  {now}\n": "malformed",
        f"hami-proc-census 1 {UUID0} 1 {now}0000000\n": "malformed",  # 19 digits
        f"hami-proc-census 1 {UUID0} 99999999999999999999 {now}\n": "malformed",
        f"hami-proc-census 1 {UUID0} 1\n": "malformed",
        "": "empty",
        "x" * 257: "larger than 256",
    }
    for text, why in bad.items():
        count, got = _parse(lib, text.encode(), now=now)
        assert count is None and why in got, (text, got)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_census_parse_never_accepts_what_the_publisher_cannot_write(lib: ctypes.CDLL, data: bytes) -> None:
    # arbitrary bytes: accepted only if they are exactly a census line the publisher could have written
    count, why = _parse(lib, data)
    if count is not None:
        head, _, rest = data.decode().rpartition(" ")
        assert data.decode() == census_line(UUID0, count, int(rest)), data
    else:
        assert why, data
