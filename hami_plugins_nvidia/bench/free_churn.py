"""GPU check of the interposer's un-charge paths: free, stream-ordered free, VMM release, context reset/release.

Usage (on the GPU machine, after `pip install --no-build-isolation --no-deps ./hami_plugins_nvidia`, or with --lib):
    PYTHONUNBUFFERED=1 python3 hami_plugins_nvidia/bench/free_churn.py --out $OUT [--lib .../libvgpu.so] [--limit auto]
Writes <date>-<tag>-interposer-churn.json and .md to --out, plus churn.log (every worker's stderr, which holds
the interposer's log lines). <tag> comes from GPU 0's NVML name as in run_h100.py (`NVIDIA H200` -> h200).

Each case is a worker process (this file, `--worker ...`) preloaded with libvgpu.so, with
CUDA_DEVICE_MEMORY_LIMIT_0=<limit> and a fresh region file (CUDA_DEVICE_MEMORY_SHARED_CACHE). The worker
allocates --size (1.5 GiB), touches it, and undoes it (free, stream-ordered free, unmap + release of a VMM
handle, or reset / release of the primary context), round after round, reading the region's usage for
device 0 after every step. The limit must hold the context's charge plus one round but not two, so a second
round only fits if the undo un-charged the first. The context's charge depends on the GPU and driver (on the
H200 with driver 580 it was 587.6 MiB, so a plain 2 GiB limit refuses even the first 1.5 GiB round): with
--limit auto (default) probe workers measure it first and the limit is context + 1.5 x size. A run whose
context + one round does not fit the limit is reported as not applicable, not as a pass or a failure of the
un-charge path. Each case has a control run that never undoes anything: it must be refused (OOM) at round 2.

APIs: rt = CUDA runtime through ctypes on libcudart (the runtime reaches the interposer's wrappers through
cuGetProcAddress); drv = driver API through ctypes on libcuda.so.1 (through the interposer's dlsym);
cupy = CuPy arrays, with its memory pool disabled (`set_allocator(None)`) or a MemoryAsyncPool.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dt
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1 << 20
GIB = 1 << 30
OOM = 2  # cudaErrorMemoryAllocation and CUDA_ERROR_OUT_OF_MEMORY are both 2
TOLERANCE = 4 * MIB  # "back to the baseline" means within this many bytes

# (name, mode, api, rounds, what it proves)
CASES = [
    ("cudaMalloc/cudaFree", "free", "rt", 50, "cuMemFree_v2 un-charges (runtime path, cuGetProcAddress)"),
    ("cuMemAlloc/cuMemFree", "free", "drv", 50, "cuMemFree_v2 un-charges (driver path, dlsym)"),
    ("CuPy, pool disabled", "free", "cupy", 50, "a framework's cudaMalloc/cudaFree un-charges"),
    ("cudaMallocAsync/cudaFreeAsync", "async", "rt", 50,
     "a stream-ordered free is un-charged once the pool releases the memory (sync + reconcile)"),
    ("cuMemAllocAsync/cuMemFreeAsync", "async", "drv", 50, "the same through the driver API"),
    ("CuPy MemoryAsyncPool", "async", "cupy", 50, "the same through a framework's async allocator"),
    ("cuMemCreate/cuMemMap/cuMemUnmap/cuMemRelease", "vmm", "drv", 20, "cuMemRelease un-charges a VMM handle"),
    ("cudaDeviceReset", "reset", "rt", 5,
     "a primary-context reset drops the context's charge and its allocations' charges"),
    ("cuDevicePrimaryCtxReset_v2", "reset", "drv", 5, "the same through the driver API"),
    ("cuDevicePrimaryCtxRelease_v2 (last reference)", "release", "drv", 5,
     "releasing the last reference (the driver destroys the context) drops both charges"),
]


# ---------------------------------------------------------------------------------------------------------
# worker side (runs preloaded)
# ---------------------------------------------------------------------------------------------------------


class CudaError(RuntimeError):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _region_module():
    """interposer/region.py loaded by path (its package __init__ may need more than cffi)."""
    import importlib.util

    for d in [HERE.parent / "hami_plugins_nvidia"]:
        path = d / "interposer" / "region.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location("hami_interposer_region", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
    raise SystemExit("interposer/region.py not found")


class Region:
    """Region usage of device 0, read from the file the preloaded interposer writes."""

    def __init__(self) -> None:
        self.path = os.environ.get("CUDA_DEVICE_MEMORY_SHARED_CACHE", "/tmp/hami-vgpu.cache")
        self.shared = _region_module().SharedRegion

    def usage(self) -> int | None:
        if not os.path.exists(self.path):
            return None
        with self.shared(self.path) as reg:
            return reg.usage(0)


def _find_cudart() -> list[str]:
    """Candidate libcudart files: $CHURN_CUDART, the toolkit's, then the nvidia-* wheels' on sys.path."""
    found = [os.environ["CHURN_CUDART"]] if os.environ.get("CHURN_CUDART") else []
    found += sorted(glob.glob("/usr/local/cuda/lib64/libcudart.so.*"), reverse=True)
    for base in sys.path:
        found += sorted(glob.glob(os.path.join(base, "nvidia", "**", "libcudart.so*"), recursive=True), reverse=True)
    lib = ctypes.util.find_library("cudart")
    if lib:
        found.append(lib)
    return [f for i, f in enumerate(found) if f and f not in found[:i]]


class Runtime:
    """CUDA runtime API through ctypes (cudaMalloc and friends, exactly one call each)."""

    def __init__(self) -> None:
        errors = []
        for cand in _find_cudart():
            try:
                self.lib = ctypes.CDLL(cand)
                self.path = cand
                break
            except OSError as exc:
                errors.append(f"{cand}: {exc}")
        else:
            raise SystemExit(f"no libcudart found: {errors}")
        self.lib.cudaGetErrorName.restype = ctypes.c_char_p
        self.stream = ctypes.c_void_p(None)

    def call(self, name: str, *args) -> None:
        r = getattr(self.lib, name)(*args)
        if r:
            raise CudaError(r, f"{name}: {self.lib.cudaGetErrorName(r).decode()} ({r})")

    def versions(self) -> dict:
        rt, drv = ctypes.c_int(), ctypes.c_int()
        self.call("cudaRuntimeGetVersion", ctypes.byref(rt))
        self.call("cudaDriverGetVersion", ctypes.byref(drv))
        return {"cudart": self.path, "runtime_version": rt.value, "driver_version": drv.value}

    def start(self) -> None:
        self.call("cudaSetDevice", 0)
        self.call("cudaFree", ctypes.c_void_p(None))  # creates the primary context

    def meminfo(self) -> tuple[int, int]:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.call("cudaMemGetInfo", ctypes.byref(free), ctypes.byref(total))
        return free.value, total.value

    def alloc(self, size: int, mode: str) -> int:
        p = ctypes.c_void_p()
        if mode == "async":
            self.call("cudaMallocAsync", ctypes.byref(p), ctypes.c_size_t(size), self.stream)
            self.call("cudaMemsetAsync", p, 1, ctypes.c_size_t(size), self.stream)
            self.call("cudaStreamSynchronize", self.stream)
        else:
            self.call("cudaMalloc", ctypes.byref(p), ctypes.c_size_t(size))
            self.call("cudaMemset", p, 1, ctypes.c_size_t(size))
            self.call("cudaDeviceSynchronize")
        return p.value

    def free(self, ptr: int, mode: str) -> None:
        if mode == "async":
            self.call("cudaFreeAsync", ctypes.c_void_p(ptr), self.stream)
        else:
            self.call("cudaFree", ctypes.c_void_p(ptr))

    def sync(self) -> None:
        self.call("cudaStreamSynchronize", self.stream)

    def trim(self) -> None:
        pool = ctypes.c_void_p()
        self.call("cudaDeviceGetDefaultMemPool", ctypes.byref(pool), 0)
        self.call("cudaMemPoolTrimTo", pool, ctypes.c_size_t(0))

    def reset(self) -> None:
        self.call("cudaDeviceReset")


class _Loc(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]


class _Prop(ctypes.Structure):  # CUmemAllocationProp
    _fields_ = [("type", ctypes.c_int), ("requestedHandleTypes", ctypes.c_int), ("location", _Loc),
                ("win32HandleMetaData", ctypes.c_void_p), ("allocFlags", ctypes.c_ubyte * 8)]


class _Access(ctypes.Structure):  # CUmemAccessDesc
    _fields_ = [("location", _Loc), ("flags", ctypes.c_int)]


class Driver:
    """CUDA driver API through ctypes on libcuda.so.1 (names resolved by dlsym, which the interposer hooks)."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libcuda.so.1")
        self.path = "libcuda.so.1"
        self.ctx = ctypes.c_void_p()
        self.have_ctx = False
        self.stream = ctypes.c_void_p(None)
        self.maps: dict[int, tuple[int, int]] = {}  # handle -> (va, size)

    def call(self, name: str, *args) -> None:
        r = getattr(self.lib, name)(*args)
        if r:
            text = ctypes.c_char_p()
            try:
                self.lib.cuGetErrorName(r, ctypes.byref(text))
            except AttributeError:
                pass
            raise CudaError(r, f"{name}: {(text.value or b'?').decode()} ({r})")

    def versions(self) -> dict:
        v = ctypes.c_int()
        self.call("cuDriverGetVersion", ctypes.byref(v))
        return {"driver_version": v.value}

    def start(self) -> None:
        self.call("cuInit", 0)
        self.ensure_ctx()

    def ensure_ctx(self) -> None:
        if not self.have_ctx:
            self.call("cuDevicePrimaryCtxRetain", ctypes.byref(self.ctx), 0)
            self.call("cuCtxSetCurrent", self.ctx)
            self.have_ctx = True

    def meminfo(self) -> tuple[int, int]:
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        self.call("cuMemGetInfo_v2", ctypes.byref(free), ctypes.byref(total))
        return free.value, total.value

    def _prop(self) -> _Prop:
        prop = _Prop()
        prop.type = 1  # CU_MEM_ALLOCATION_TYPE_PINNED
        prop.location.type = 1  # CU_MEM_LOCATION_TYPE_DEVICE
        prop.location.id = 0
        return prop

    def alloc(self, size: int, mode: str) -> int:
        self.ensure_ctx()
        p = ctypes.c_uint64()
        if mode == "async":
            self.call("cuMemAllocAsync", ctypes.byref(p), ctypes.c_size_t(size), self.stream)
            self.call("cuMemsetD8Async", p, ctypes.c_ubyte(1), ctypes.c_size_t(size), self.stream)
            self.call("cuStreamSynchronize", self.stream)
            return p.value
        if mode == "vmm":
            prop = self._prop()
            gran = ctypes.c_size_t()
            self.call("cuMemGetAllocationGranularity", ctypes.byref(gran), ctypes.byref(prop), 0)
            size = (size + gran.value - 1) // gran.value * gran.value
            self.call("cuMemCreate", ctypes.byref(p), ctypes.c_size_t(size), ctypes.byref(prop), ctypes.c_ulonglong(0))
            va = ctypes.c_uint64()
            self.call("cuMemAddressReserve", ctypes.byref(va), ctypes.c_size_t(size), ctypes.c_size_t(0),
                      ctypes.c_uint64(0), ctypes.c_ulonglong(0))
            self.call("cuMemMap", va, ctypes.c_size_t(size), ctypes.c_size_t(0), p, ctypes.c_ulonglong(0))
            access = _Access()
            access.location.type, access.location.id, access.flags = 1, 0, 3  # CU_MEM_ACCESS_FLAGS_PROT_READWRITE
            self.call("cuMemSetAccess", va, ctypes.c_size_t(size), ctypes.byref(access), ctypes.c_size_t(1))
            self.call("cuMemsetD8_v2", va, ctypes.c_ubyte(1), ctypes.c_size_t(size))
            self.call("cuCtxSynchronize")
            self.maps[p.value] = (va.value, size)
            return p.value
        self.call("cuMemAlloc_v2", ctypes.byref(p), ctypes.c_size_t(size))
        self.call("cuMemsetD8_v2", p, ctypes.c_ubyte(1), ctypes.c_size_t(size))
        self.call("cuCtxSynchronize")
        return p.value

    def free(self, ptr: int, mode: str) -> None:
        if mode == "async":
            self.call("cuMemFreeAsync", ctypes.c_uint64(ptr), self.stream)
        elif mode == "vmm":
            va, size = self.maps.pop(ptr)
            self.call("cuMemUnmap", ctypes.c_uint64(va), ctypes.c_size_t(size))
            self.call("cuMemAddressFree", ctypes.c_uint64(va), ctypes.c_size_t(size))
            self.call("cuMemRelease", ctypes.c_uint64(ptr))
        else:
            self.call("cuMemFree_v2", ctypes.c_uint64(ptr))

    def sync(self) -> None:
        self.call("cuStreamSynchronize", self.stream)

    def trim(self) -> None:
        pool = ctypes.c_void_p()
        self.call("cuDeviceGetMemPool", ctypes.byref(pool), 0)
        self.call("cuMemPoolTrimTo", pool, ctypes.c_size_t(0))

    def reset(self) -> None:
        self.call("cuDevicePrimaryCtxReset_v2", 0)
        self.have_ctx = False  # retain (and make current) again before the next allocation

    def release(self) -> None:
        self.call("cuCtxSetCurrent", ctypes.c_void_p(None))
        self.call("cuDevicePrimaryCtxRelease_v2", 0)  # our only reference: the driver destroys the context
        self.have_ctx = False


class CuPy:
    """CuPy arrays: memory pool disabled (cudaMalloc/cudaFree per array) or a MemoryAsyncPool."""

    def __init__(self, mode: str) -> None:
        import cupy

        self.cupy = cupy
        self.path = f"cupy {cupy.__version__}"
        if mode == "async":
            cupy.cuda.set_allocator(cupy.cuda.MemoryAsyncPool().malloc)
        else:
            cupy.cuda.set_allocator(None)
        self.arrays: dict[int, object] = {}

    def versions(self) -> dict:
        rt = self.cupy.cuda.runtime
        return {"cupy": self.cupy.__version__, "runtime_version": rt.runtimeGetVersion(),
                "driver_version": rt.driverGetVersion()}

    def _wrap(self, fn, *args):
        try:
            return fn(*args)
        except self.cupy.cuda.memory.OutOfMemoryError as exc:
            raise CudaError(OOM, f"{type(exc).__name__}: {exc}") from None
        except self.cupy.cuda.runtime.CUDARuntimeError as exc:
            raise CudaError(getattr(exc, "status", -1), f"CUDARuntimeError: {exc}") from None

    def start(self) -> None:
        self.cupy.cuda.runtime.setDevice(0)
        self.cupy.cuda.runtime.free(0)

    def meminfo(self) -> tuple[int, int]:
        return self._wrap(self.cupy.cuda.runtime.memGetInfo)

    def alloc(self, size: int, mode: str) -> int:
        a = self._wrap(self.cupy.empty, size, self.cupy.uint8)
        if mode == "async":
            a.data.memset_async(1, size)
        else:
            a.data.memset(1, size)
        self.cupy.cuda.get_current_stream().synchronize()
        key = a.data.ptr
        self.arrays[key] = a
        return key

    def free(self, ptr: int, mode: str) -> None:
        del self.arrays[ptr]  # the last reference: cudaFree, or cudaFreeAsync on the current stream

    def sync(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()

    def trim(self) -> None:
        rt = self.cupy.cuda.runtime
        rt.memPoolTrimTo(rt.deviceGetDefaultMemPool(0), 0)


def worker(mode: str, api_name: str, rounds: int, size: int, control: bool) -> dict:
    region = Region()
    res: dict = {"mode": mode, "api": api_name, "control": control, "rounds_planned": rounds, "size": size,
                 "rounds_completed": 0, "error": "", "error_code": None, "failed_round": None}
    try:
        api = Runtime() if api_name == "rt" else Driver() if api_name == "drv" else CuPy(mode)
        res["library"] = api.path
        api.start()
        res.update(api.versions())
        free, total = api.meminfo()
        res["reported_total"], res["reported_free"] = total, free
    except CudaError as exc:
        res.update(error=f"setup: {exc.text}", error_code=exc.code)
        return res
    except Exception as exc:  # noqa: BLE001 - report, e.g. a missing library, instead of dying silently
        res.update(error=f"setup: {type(exc).__name__}: {exc}")
        return res
    baseline = region.usage()
    res["baseline"] = baseline
    after_alloc: list[int | None] = []
    after_undo: list[int | None] = []
    after_undo_raw: list[int | None] = []  # async: after the free and a sync, before anything reconciles
    trims = 0
    for i in range(rounds):
        try:
            key = api.alloc(size, mode)
        except CudaError as exc:
            res.update(error=exc.text, error_code=exc.code, failed_round=i + 1)
            break
        except Exception as exc:  # noqa: BLE001 - not a CUDA error: record it as the failure
            res.update(error=f"{type(exc).__name__}: {exc}", failed_round=i + 1)
            break
        after_alloc.append(region.usage())
        if not control:
            try:
                if mode == "reset":
                    api.reset()
                elif mode == "release":
                    api.release()
                else:
                    api.free(key, mode)
                if mode == "async":
                    api.sync()
                    after_undo_raw.append(region.usage())
                    api.meminfo()  # cuMemGetInfo reconciles the pool's charge with its reserved size
                    if baseline is not None and (region.usage() or 0) > baseline + TOLERANCE:
                        api.trim()  # the pool kept memory after the sync: give it back explicitly
                        api.meminfo()
                        trims += 1
            except CudaError as exc:
                res.update(error=f"undo: {exc.text}", error_code=exc.code, failed_round=i + 1)
                break
            except Exception as exc:  # noqa: BLE001
                res.update(error=f"undo: {type(exc).__name__}: {exc}", failed_round=i + 1)
                break
            after_undo.append(region.usage())
        res["rounds_completed"] = i + 1
    res["after_alloc"] = after_alloc
    res["after_undo"] = after_undo
    if mode == "async":
        res["after_undo_before_reconcile"] = after_undo_raw
        res["explicit_trims"] = trims
    return res


def worker_main(argv: list[str]) -> None:
    mode, api, rounds, size, control = argv[0], argv[1], int(argv[2]), int(argv[3]), argv[4] == "1"
    print("RESULT " + json.dumps(worker(mode, api, rounds, size, control)), flush=True)


# ---------------------------------------------------------------------------------------------------------
# parent side (not preloaded)
# ---------------------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": MIB, "g": GIB}
    t = text.strip().lower()
    return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)


def mib(v: int | None) -> float | None:
    return None if v is None else round(v / MIB, 1)


def judge(res: dict, limit: int) -> dict:
    """Adds passed, applicable and why to a worker result."""
    base = res.get("baseline")
    if base is not None and base + res["size"] > limit:
        return {**res, "passed": False, "applicable": False,
                "why": f"not applicable: context charge {mib(base)} MiB + one round {mib(res['size'])} MiB is over "
                       f"the {mib(limit)} MiB limit, so no round can run and the undo path is never reached"}
    res = {**res, "applicable": True}
    if res.get("control"):
        ok = res["rounds_completed"] == 1 and res.get("failed_round") == 2 and res.get("error_code") == OOM
        why = ("refused at round 2 with OOM, as it must be" if ok else
               f"expected OOM at round 2, got {res['rounds_completed']} rounds, error {res.get('error')!r}")
        return {**res, "passed": ok, "why": why}
    if res["rounds_completed"] != res["rounds_planned"]:
        return {**res, "passed": False,
                "why": f"round {res.get('failed_round')} failed after {res['rounds_completed']} rounds: {res['error']}"}
    if base is None:
        return {**res, "passed": False, "why": "region file was never written (interposer not active?)"}
    undo = [u for u in res.get("after_undo", []) if u is not None]
    if res["mode"] in ("reset", "release"):  # the context's own charge goes too, so usage may drop below it
        bad = [u for u in undo if u > base + TOLERANCE]
    else:
        bad = [u for u in undo if abs(u - base) > TOLERANCE]
    if bad or len(undo) != res["rounds_planned"]:
        return {**res, "passed": False, "why": f"usage after undo not back to baseline {mib(base)} MiB: "
                f"{[mib(b) for b in bad[:5]]} MiB"}
    peak = max(a for a in res["after_alloc"] if a is not None)
    return {**res, "passed": True, "why": f"all rounds fit; usage back to <= baseline after every undo; "
            f"peak {mib(peak)} MiB of {mib(limit)}"}


def nvml_info() -> dict:
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(h)
        drv = pynvml.nvmlSystemGetDriverVersion()
        return {"name": name.decode() if isinstance(name, bytes) else str(name),
                "driver": drv.decode() if isinstance(drv, bytes) else str(drv),
                "memory_total_mib": pynvml.nvmlDeviceGetMemoryInfo(h).total // MIB}
    except Exception as exc:  # noqa: BLE001 - CPU dry runs have no NVML
        return {"name": "unknown", "driver": "", "error": f"{type(exc).__name__}: {exc}"}


def csrc_hash(csrc: Path) -> str:
    """sha256 of csrc/*.[ch] concatenated in name order (as run_h100.py records it)."""
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(csrc.glob("*.[ch]")))).hexdigest()


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(HERE), *args], capture_output=True, timeout=10)


def git_commit(csrc: Path) -> tuple[str, str]:
    """(commit, note). HEAD is recorded only when HEAD's csrc/*.[ch] hash to what is on disk: a copied tree can
    carry a stale .git (on the device machine `git rev-parse HEAD` once printed a commit two behind the tree that
    ran), and then the commit would be wrong. Otherwise the commit is left empty and the note says why."""
    try:
        head = _git("rev-parse", "HEAD").stdout.decode().strip()
        rel = _git("ls-files", "--full-name", "--error-unmatch", str(csrc / "mem.c"))
        if not head or rel.returncode:
            return "", "not in a git checkout"
        prefix = rel.stdout.decode().strip().rsplit("/", 1)[0]
        names = _git("ls-tree", "--full-tree", "--name-only", f"{head}:{prefix}").stdout.decode().split()
        blobs = b"".join(_git("show", f"{head}:{prefix}/{n}").stdout for n in sorted(names)
                         if n.endswith((".c", ".h")))
    except (OSError, subprocess.SubprocessError) as exc:
        return "", f"git failed: {exc}"
    if hashlib.sha256(blobs).hexdigest() != csrc_hash(csrc):
        return "", (f"git HEAD {head[:12]} does not hold these csrc files (stale .git or uncommitted changes); "
                    "identify the tree by the csrc sha256")
    return head, ""


def run_worker(args: argparse.Namespace, tmp: Path, log, tag: str, mode: str, api: str, rounds: int,
               control: bool) -> dict:
    drop = ("CUDA_DEVICE_MEMORY_LIMIT", "CUDA_DEVICE_SM_LIMIT", "CUDA_DEVICE_MEMORY_SHARED_CACHE", "CUDA_TASK",
            "LD_PRELOAD")  # CUDA_DEVICE_CONTEXT_RESERVE / _SLACK pass through (recorded under environment)
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    cache = tmp / f"{tag}.cache"
    cache.unlink(missing_ok=True)
    env.update(PYTHONUNBUFFERED="1", LD_PRELOAD=str(args.lib), CUDA_DEVICE_MEMORY_LIMIT_0=args.limit,
               CUDA_DEVICE_MEMORY_SHARED_CACHE=str(cache), HAMI_NODE_BOARD=str(tmp / "board"),
               LIBCUDA_LOG_LEVEL=env.get("LIBCUDA_LOG_LEVEL", "3"))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, api, str(rounds), str(args.size_bytes),
           "1" if control else "0"]
    log.write(f"\n=== {tag}: LD_PRELOAD={args.lib} CUDA_DEVICE_MEMORY_LIMIT_0={args.limit} {' '.join(cmd[1:])}\n")
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        err = exc.stderr or ""
        out, err, rc = (out.decode() if isinstance(out, bytes) else out), (err.decode() if isinstance(err, bytes)
                                                                             else err), "timeout"
    log.write(err)
    log.flush()
    res = next((json.loads(line[7:]) for line in out.splitlines() if line.startswith("RESULT ")), None)
    if res is None:
        res = {"mode": mode, "api": api, "control": control, "rounds_planned": rounds, "rounds_completed": 0,
               "error": f"worker exited with {rc} and no result; stderr tail: {err[-400:]}", "error_code": None}
    res["seconds"] = round(time.time() - t0, 2)
    res["interposer_warnings"] = [ln for ln in err.splitlines() if "exceed the limit" in ln or "error" in ln.lower()][-3:]
    return res


def status(r: dict) -> str:
    return "PASS" if r["passed"] else "N/A" if r.get("applicable") is False else "FAIL"


def render(rec: dict) -> str:
    e = rec["environment"]
    lines = [f"# Interposer un-charge churn on the {e['gpu'].get('name')} — {rec['date']}", "",
             f"- Device: `{e['gpu'].get('name')}`, driver `{e['gpu'].get('driver')}`, "
             f"{e['gpu'].get('memory_total_mib')} MiB",
             f"- CUDA: driver API version {e.get('cuda_driver_version')}, runtime {e.get('cuda_runtime_version')} "
             f"(`{e.get('cudart')}`); CuPy {e.get('cupy', '-')}; Python {e['python']}",
             f"- Library: `{rec['library']}`, sha256 `{rec['library_sha256']}`; csrc/*.[ch] sha256 `{rec['csrc_sha256']}`",
             f"- Commit: `{rec['commit'] or 'unknown'}`{(' — ' + rec['note']) if rec.get('note') else ''}",
             f"- Command: `{rec['command']}`",
             f"- Limit `CUDA_DEVICE_MEMORY_LIMIT_0={rec['limit']}`, {mib(rec['size'])} MiB per round, "
             f"tolerance {mib(TOLERANCE)} MiB; every run is its own process with a fresh region file", "",
             f"**{rec['passed']} of {rec['total']} runs passed; {rec['not_applicable']} not applicable "
             "(context + one round over the limit).**", "",
             "| case | API | run | rounds | passed | baseline MiB | usage after alloc MiB (first, max) "
             "| usage after undo MiB (min, max) | error / note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rec["runs"]:
        aa = [a for a in r.get("after_alloc", []) if a is not None]
        au = [a for a in r.get("after_undo", []) if a is not None]
        alloc_s = f"{mib(aa[0])}, {mib(max(aa))}" if aa else "-"
        undo_s = f"{mib(min(au))}, {mib(max(au))}" if au else "-"
        note = r.get("error") or ""
        if r.get("explicit_trims"):
            note += f" ({r['explicit_trims']} rounds needed an explicit pool trim)"
        lines.append(f"| {r['case']} | {r['api']} | {'control (never undo)' if r['control'] else 'churn'} "
                     f"| {r['rounds_completed']}/{r['rounds_planned']} | {status(r)} "
                     f"| {mib(r.get('baseline'))} | {alloc_s} | {undo_s} | {note.replace('|', '/')} |")
    lines += ["", "## What each case proves", ""]
    for name, _mode, api, _rounds, proves in CASES:
        lines.append(f"- **{name}** ({api}): {proves}. Its control (same allocations, never undone) must be refused "
                     "at round 2, which shows the check can fail.")
    lines += ["", "Full per-round samples (MiB of region usage after every allocation and undo) are in the JSON.", ""]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    sys.path.insert(0, str(HERE))
    from run_h100 import device_tag, installed_library, library_version  # noqa: E402 - sibling script

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lib", type=Path, default=None, help="libvgpu.so (default: the installed package's)")
    ap.add_argument("--limit", default="auto",
                    help="CUDA_DEVICE_MEMORY_LIMIT_0 for every worker; auto = measured context charge + 1.5 x size")
    ap.add_argument("--size", default="1536m", help="bytes per round")
    ap.add_argument("--apis", default="rt,drv,cupy", help="subset of rt,drv,cupy")
    ap.add_argument("--modes", default="free,async,vmm,reset,release", help="subset of the case modes")
    ap.add_argument("--rounds", type=int, default=None, help="override every churn case's round count")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per worker")
    ap.add_argument("--tag", default=None, help="device part of the file names (default: from GPU 0's name)")
    ap.add_argument("--commit", default=None,
                    help="commit to record (default: git HEAD, only if HEAD's csrc matches the files on disk)")
    ap.add_argument("--note", default="", help="free text recorded under the commit")
    ap.add_argument("--csrc", type=Path, default=HERE.parent / "hami_plugins_nvidia" / "csrc",
                    help="the C sources --lib was built from (their sha256 is recorded)")
    args = ap.parse_args()
    args.lib = (args.lib or installed_library())
    if args.lib is None:
        raise SystemExit("libvgpu.so not found: install hami_plugins_nvidia or pass --lib")
    args.lib = args.lib.resolve()
    args.size_bytes = parse_size(args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    gpu = nvml_info()
    tag = args.tag or device_tag(gpu["name"])
    date = dt.datetime.now(dt.UTC).date().isoformat()
    csrc = args.csrc
    commit, why = (args.commit, "") if args.commit else git_commit(csrc)
    rec: dict = {"date": date, "library": str(args.lib), "version": library_version(args.lib),
                 "library_sha256": hashlib.sha256(args.lib.read_bytes()).hexdigest(),
                 "csrc_sha256": csrc_hash(csrc), "commit": commit,
                 "note": "; ".join(x for x in (args.note, why) if x),
                 "command": "PYTHONUNBUFFERED=1 python3 " + " ".join(sys.argv), "limit": args.limit,
                 "size": args.size_bytes, "tolerance": TOLERANCE,
                 "environment": {"gpu": gpu, "python": sys.version.split()[0],
                                 "knobs": {k: v for k, v in os.environ.items() if k.startswith("CUDA_DEVICE_CONTEXT")}},
                 "runs": []}
    apis, modes = args.apis.split(","), args.modes.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="hami-churn-"))
    with open(args.out / "churn.log", "a") as log:
        if args.limit == "auto":  # zero-round workers under a limit far above the device: their context charge
            wanted = {api for _n, mode, api, _r, _p in CASES if api in apis and mode in modes}
            args.limit = "1024g"
            probes = {api: run_worker(args, tmp, log, f"probe-{api}", "free", api, 0, False).get("baseline")
                      for api in sorted(wanted)}
            rec["context_probe"] = probes
            ctx = max((v for v in probes.values() if v is not None), default=0)
            args.limit = f"{-(-(ctx + args.size_bytes * 3 // 2) // MIB)}m"
            print(f"[probe] context charge per API (MiB): { {k: mib(v) for k, v in probes.items()} } -> limit "
                  f"{args.limit}", flush=True)
        limit = parse_size(args.limit)
        rec["limit"], rec["limit_bytes"] = args.limit, limit
        for i, (name, mode, api, rounds, _proves) in enumerate(CASES):
            if api not in apis or mode not in modes:
                continue
            for control in (False, True):
                n = 2 if control else (args.rounds or rounds)
                res = run_worker(args, tmp, log, f"case{i}-{'control' if control else 'churn'}", mode, api, n, control)
                res = judge({**res, "case": name}, limit)
                rec["runs"].append(res)
                env = rec["environment"]
                for key, field in (("cuda_driver_version", "driver_version"), ("cuda_runtime_version", "runtime_version"),
                                   ("cudart", "cudart"), ("cupy", "cupy")):
                    if res.get(field) and not env.get(key):
                        env[key] = res[field]
                print(f"[{status(res)}] {name} ({api}, {'control' if control else 'churn'}): "
                      f"{res['rounds_completed']}/{res['rounds_planned']} rounds, baseline {mib(res.get('baseline'))} MiB, "
                      f"after undo {[mib(u) for u in res.get('after_undo', [])][:4]}... {res['why']}", flush=True)
    rec["passed"] = sum(r["passed"] for r in rec["runs"])
    rec["total"] = len(rec["runs"])
    rec["not_applicable"] = sum(r.get("applicable") is False for r in rec["runs"])
    stem = args.out / f"{date}-{tag}-interposer-churn"
    stem.with_suffix(".json").write_text(json.dumps(rec, indent=2))
    text = render(rec)
    stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
