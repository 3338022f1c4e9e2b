"""Fixtures for the interposer tests: build libvgpu.so, a fake libcuda.so.1 and a driver-style test program
with the system C compiler, once per session, and run the program under LD_PRELOAD like a real workload."""

from __future__ import annotations

import hashlib
import importlib.util
import mmap
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PKG = HERE.parent.parent / "hami_plugins_nvidia"
FAKE = HERE / "fake_cuda"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


build = _load("hami_interposer_build_under_test", PKG / "interposer" / "build.py")
region = _load("hami_interposer_region_under_test", PKG / "interposer" / "region.py")


# HAMI_INTERPOSER_REAL_DRIVER=1 runs the tests that do not need the fake's simulated kernels against the
# machine's real libcuda.so.1 (the GPU run of the tamper and fault tests); the others skip.
REAL_DRIVER = os.environ.get("HAMI_INTERPOSER_REAL_DRIVER") == "1"
fake_only = pytest.mark.skipif(REAL_DRIVER, reason="needs the fake libcuda (simulated kernels or fake_used)")


@dataclass(frozen=True)
class Toolchain:
    lib: Path
    fake_dir: Path
    app: Path


@pytest.fixture(scope="session")
def toolchain(tmp_path_factory: pytest.TempPathFactory) -> Toolchain:
    """libvgpu.so + fake libcuda.so.1 + driver_app, compiled once (skips if there is no C compiler)."""
    try:
        cc = build.compiler()
    except build.BuildError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("interposer-build")
    lib = build.build_library(out)
    fake_dir = out / "fake"
    fake_dir.mkdir()
    # -Bsymbolic: like the real driver, the fake's own calls and proc addresses bind to itself
    subprocess.run([cc, "-O1", "-fPIC", "-shared", "-Wl,-Bsymbolic", "-o", str(fake_dir / "libcuda.so.1"),
                    str(FAKE / "fake_cuda.c")], check=True)
    app = out / "driver_app"
    subprocess.run([cc, "-O1", "-o", str(app), str(FAKE / "driver_app.c"), "-ldl"], check=True)
    return Toolchain(lib, fake_dir, app)


#: A bench variant's build: its name and its -D flags (csrc's bench-only switches, e.g. HAMI_BISECT_NO_RECORDS).
Variants = Mapping[str, Sequence[str]]


@pytest.fixture(scope="session")
def variant_libs(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Variants], dict[str, Path]]:
    """Builds bench variants of libvgpu.so: variant_libs({name: defines}) -> {name: library}. Each is built once per
    session, keyed by its flags, with build.py's compiler flags, sources and libraries (build_library's command, one
    object per source, then the link). Why not build_library once per variant: a variant's flags change the
    preprocessed text of a few sources only (most of them launch.c's), so an object whose compile command and
    preprocessed source are those of one compiled before is reused, and what is left compiles on every core at once:
    the seven bisection rungs, the pair probe and the wrap-only build cost about two builds, not nine."""
    out = tmp_path_factory.mktemp("variants")
    objects: dict[str, Path] = {}  # sha256 of the compile command and the preprocessed source -> its object
    built: dict[tuple[str, ...], Path] = {}
    lock = threading.Lock()

    def run(cmd: list[str]) -> bytes:
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            raise build.BuildError(f"compiling a variant failed:\n{' '.join(cmd)}\n{proc.stderr.decode()}")
        return proc.stdout

    def compile_cmd(defines: tuple[str, ...], src: Path) -> list[str]:
        return [*build.compile_args(build.CSRC, defines), "-c", str(src)]

    def keyed(defines: tuple[str, ...], src: Path) -> str:
        # the -D flags change nothing but the preprocessed text: the key is the command without them and that text
        cmd = compile_cmd(defines, src)
        return hashlib.sha256("\0".join(compile_cmd((), src)).encode() + b"\0"
                              + run([*cmd[:-2], "-E", str(src)])).hexdigest()

    def variants(asked: Variants) -> dict[str, Path]:
        with lock, ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            todo = {name: tuple(d) for name, d in asked.items() if tuple(d) not in built}
            jobs = [(defines, src) for defines in dict.fromkeys(todo.values()) for src in build.sources()]
            keys = dict(zip(jobs, pool.map(lambda j: keyed(*j), jobs), strict=True))
            fresh = {k: j for j, k in keys.items() if k not in objects}
            paths = {k: out / "obj" / f"{k[:20]}.o" for k in fresh}
            (out / "obj").mkdir(exist_ok=True)
            list(pool.map(lambda k: run([*compile_cmd(*fresh[k]), "-o", str(paths[k])]), fresh))
            objects.update(paths)

            def link(defines: tuple[str, ...]) -> Path:
                lib = out / hashlib.sha256(repr(defines).encode()).hexdigest()[:16] / build.LIB_NAME
                lib.parent.mkdir()
                run([*build.compile_args(), "-o", str(lib),
                     *[str(objects[keys[(defines, src)]]) for src in build.sources()], *build.LIBS])
                return lib

            for defines in dict.fromkeys(todo.values()):
                built[defines] = link(defines)
        return {name: built[tuple(d)] for name, d in asked.items()}

    return variants


@dataclass
class Run:
    lines: list[str]
    stderr: str
    returncode: int

    def values(self, key: str) -> list[list[str]]:
        """The words after `key` on every output line that starts with it."""
        return [line.split()[1:] for line in self.lines if line.split() and line.split()[0] == key]


@dataclass
class Workload:
    """Runs driver_app commands in a process preloaded like a container's (one region per Workload)."""

    tc: Toolchain
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def region_path(self) -> Path:
        return Path(self.env_for()["CUDA_DEVICE_MEMORY_SHARED_CACHE"])

    def env_for(self, preload: bool = True, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD"))}
        env.update(CUDA_DEVICE_MEMORY_SHARED_CACHE=str(self.tmp / "region"),
                   HAMI_NODE_BOARD=str(self.tmp.parent / "board"))
        if not REAL_DRIVER:
            env["LD_LIBRARY_PATH"] = str(self.tc.fake_dir)
        if preload:
            env["LD_PRELOAD"] = str(self.tc.lib)
        env.update(self.env)
        env.update(extra)
        return env

    def run(self, *args: str, preload: bool = True, timeout: float = 30, **extra: str) -> Run:
        proc = subprocess.run([str(self.tc.app), *args], env=self.env_for(preload, **extra), capture_output=True,
                              text=True, timeout=timeout)
        return Run(proc.stdout.splitlines(), proc.stderr, proc.returncode)

    def start(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([str(self.tc.app), *args], env=self.env_for(True, **extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()


@pytest.fixture
def workload(toolchain: Toolchain, tmp_path: Path) -> Iterator[Workload]:
    """A fresh container (its own region file) with no limits set yet."""
    ctr = tmp_path / "ctr-a"
    ctr.mkdir()
    w = Workload(toolchain, ctr)
    yield w
    w.kill_all()
    shutil.rmtree(ctr, ignore_errors=True)


@pytest.fixture
def second_workload(toolchain: Toolchain, tmp_path: Path) -> Iterator[Workload]:
    """Another container on the same node (same node board, its own region)."""
    ctr = tmp_path / "ctr-b"
    ctr.mkdir()
    w = Workload(toolchain, ctr)
    yield w
    w.kill_all()


def end_spin(proc: subprocess.Popen[str]) -> bool:
    """Ends a started driver_app's running `spin` or `passes` now, as if its SECONDS were up: it syncs and prints its
    line as at the end of its window (SIGUSR1, sent once the process has its handler: /proc's SigCgt). For a neighbour
    there only to be present beside the tenant under test: ended once the tenant is done, instead of waiting out a
    window set long enough for a loaded host. True when it was still running (it outlasted the tenant), False when it
    had ended."""
    if proc.poll() is not None:
        return False
    bit = 1 << (signal.SIGUSR1 - 1)
    deadline = time.monotonic() + 10
    while proc.poll() is None:
        try:
            caught = int(re.search(r"SigCgt:\s*([0-9a-f]+)", Path(f"/proc/{proc.pid}/status").read_text())[1], 16)
        except (OSError, TypeError):  # gone between the poll and the read
            break
        if caught & bit:
            proc.send_signal(signal.SIGUSR1)
            return True
        assert time.monotonic() < deadline, "driver_app never set its SIGUSR1 handler"
        time.sleep(0.005)
    return False


def forge_board_user(board_path: Path, stop: threading.Event, fill: Callable[[object, int, int], None]) -> None:
    """Keeps one forged user entry on the fake GPU's board entry active (id set, heartbeat fresh) until stop,
    writing only that entry's fields in the shared mapping, as a tenant of the node could; fill(gpu, slot, now)
    writes the fields of the attack every 2 ms."""
    with open(board_path, "r+b") as f, mmap.mmap(f.fileno(), region.BOARD_SIZE) as mem:
        board = region.ffi.cast("struct hami_board *", region.ffi.from_buffer(mem))
        g, slot = board.gpu[0], region.CONST["HAMI_BOARD_USERS"] - 1
        while not stop.is_set():
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            g.user_id[slot] = 0xF0F0F0F0
            g.user_active_ns[slot] = now
            fill(g, slot, now)
            stop.wait(0.002)
        del g, board


def run_with_bad_knob(workload: Workload, knob: str, bad: str, bounds: str) -> str:
    """One launch alone at force 70 with the launch stats on and `knob` set to the bad value `bad`: the process
    runs, and exactly one warning line names the knob, the value and its bounds ("[lo, hi]"). Returns stderr, for
    the caller to check the default was kept."""
    workload.env.update(GPU_CORE_UTILIZATION_POLICY="force", CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1",
                        **{knob: bad})
    r = workload.run("ctx", "0", "launch", "kernel", "1", "0")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if knob in ln]
    assert len(lines) == 1 and f'"{bad}"' in lines[0] and bounds in lines[0], r.stderr
    return r.stderr
