"""GPU benchmark of the CUDA interposer, side by side with native, in one run (first written for the H100).

Usage (on the GPU machine, after `pip install --no-build-isolation --no-deps ./hami_plugins_nvidia`):
    PYTHONUNBUFFERED=1 python3 hami_plugins_nvidia/bench/run_h100.py --out $OUT [--tag h200]
Writes <date>-<tag>-interposer.json and .md (the record committed under docs/results/) and a log.
<tag> defaults to the model in GPU 0's NVML name (`NVIDIA H200` -> h200, `NVIDIA H100 80GB HBM3` -> h100).
Every measurement is a separate worker process (interposer/bench_worker.py), preloaded or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE.parent / "hami_plugins_nvidia" / "interposer" / "bench_worker.py"


def package_dirs() -> list[Path]:
    """Locations of hami_plugins_nvidia without importing it (its __init__ may need hami_hal)."""
    spec = importlib.util.find_spec("hami_plugins_nvidia")
    return [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []


def installed_library() -> Path | None:
    """The libvgpu.so that `pip install ./hami_plugins_nvidia` built into the package."""
    for d in package_dirs():
        if (d / "lib" / "libvgpu.so").is_file():
            return d / "lib" / "libvgpu.so"
    return None


def load_region_module():
    """interposer/region.py loaded by path (cffi view of the shared region)."""
    for d in [HERE.parent / "hami_plugins_nvidia", *package_dirs()]:  # the sources the library was built from
        path = d / "interposer" / "region.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location("hami_interposer_region", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up
            spec.loader.exec_module(module)
            return module
    raise SystemExit("interposer/region.py not found")


def device_tag(name: str) -> str:
    """File-name tag for a GPU name: its first word holding a digit, lower-cased (`NVIDIA H200` -> `h200`)."""
    for word in re.split(r"[\s_-]+", name):
        if any(ch.isdigit() for ch in word):
            return re.sub(r"[^a-z0-9]", "", word.lower()) or "gpu"
    return "gpu"


def library_version(lib: Path) -> str:
    found = re.search(rb"HAMI_VGPU_VERSION=([0-9A-Za-z.+-]+)", lib.read_bytes())
    return found.group(1).decode() if found else ""
GIB = 1 << 30
MIB = 1 << 20


class Bench:
    """Runs workers, keeps a log, and samples device memory through NVML (this process is not preloaded)."""

    def __init__(self, lib: Path, out: Path) -> None:
        self.lib = lib
        self.out = out
        self.tmp = Path(tempfile.mkdtemp(prefix="hami-bench-"))
        self.board = self.tmp / "board"
        self.log = open(out / "bench.log", "a")
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(self.handle)
        self.name = name.decode() if isinstance(name, bytes) else str(name)

    def device_used(self) -> int:
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used)

    def sampled(self, args: list[str], env: dict[str, str]) -> dict:
        """Runs a worker while sampling the SM clock (MHz) and board power (W) every 20 ms."""
        clocks: list[int] = []
        power: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                try:
                    util = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu
                    if util > 0:
                        clocks.append(self.nvml.nvmlDeviceGetClockInfo(self.handle, self.nvml.NVML_CLOCK_SM))
                        power.append(self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000)
                except self.nvml.NVMLError:
                    pass
                time.sleep(0.02)

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        res = self.run(args, env)
        stop.set()
        t.join()
        if clocks:
            res["sm_clock_median_mhz"] = statistics.median(clocks)
            res["power_median_w"] = statistics.median(power)
        return res

    def env(self, preload: bool, region: str = "default", **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_DEVICE_", "CUDA_TASK", "LD_PRELOAD"))}
        env["PYTHONUNBUFFERED"] = "1"
        if preload:
            env["LD_PRELOAD"] = str(self.lib)
            env["CUDA_DEVICE_MEMORY_SHARED_CACHE"] = str(self.tmp / f"{region}.cache")
            env["HAMI_NODE_BOARD"] = str(self.board)
        env.update(extra)
        return env

    def start(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        self.log.write(f"\n$ {' '.join(f'{k}={v}' for k, v in env.items() if k.startswith(('CUDA_', 'LD_PRE', 'PYTORCH_', 'BENCH')))} "
                       f"python3 bench_worker.py {' '.join(args)}\n")
        self.log.flush()
        return subprocess.Popen([sys.executable, str(WORKER), *args], env=env, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=self.log)

    def finish(self, proc: subprocess.Popen[str], on_peak=None, timeout: float = 180) -> dict:
        deadline = time.time() + timeout
        result: dict = {}
        for line in proc.stdout:
            self.log.write(line)
            if line.startswith("PEAK"):
                if on_peak:
                    on_peak()
                proc.stdin.write("\n")
                proc.stdin.flush()
            elif line.startswith("RESULT "):
                result = json.loads(line[7:])
            if time.time() > deadline:
                proc.kill()
                break
        proc.wait(timeout=30)
        self.log.flush()
        if not result:
            result = {"error": f"worker exited with {proc.returncode} and no result (see bench.log)"}
        return result

    def run(self, args: list[str], env: dict[str, str], on_peak=None) -> dict:
        return self.finish(self.start(args, env), on_peak)


def memory_tests(b: Bench, limit: str) -> list[dict]:
    SharedRegion = load_region_module().SharedRegion  # noqa: N806

    cases = [("native torch", "torch", False, {}),
             ("torch default allocator", "torch", True, {}),
             ("torch expandable_segments", "torch-exp", True, {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}),
             ("torch cudaMallocAsync", "torch-async", True, {"PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"}),
             ("cupy", "cupy", True, {})]
    wanted = os.environ.get("BENCH_MEM_CASES")
    if wanted:
        cases = [c for c in cases if c[1] in wanted.split(",")]
    rows = []
    for i, (name, fw, preload, extra) in enumerate(cases):
        region = f"mem{i}"
        env = b.env(preload, region, **extra)
        if preload:
            env["CUDA_DEVICE_MEMORY_LIMIT"] = limit
        baseline = b.device_used()
        peak: dict = {}

        def sample(region: str = region, preload: bool = preload, peak: dict = peak, baseline: int = baseline) -> None:
            peak["device_used_delta"] = b.device_used() - baseline
            if preload:
                with SharedRegion(b.tmp / f"{region}.cache") as reg:
                    peak["region_usage"] = reg.usage(0)

        res = b.run(["mem", fw], env, on_peak=sample)
        res.update(peak, case=name, preloaded=preload, limit=limit if preload else "")
        if preload:
            lim = int(limit[:-1]) * GIB if limit.endswith("g") else int(limit)
            res["limit_bytes"] = lim
            res["bytes_over_limit_device"] = max(0, res.get("device_used_delta", 0) - lim)
        rows.append(res)
        print(f"[mem] {name}: {json.dumps(res)}", flush=True)
    return rows


def compute_tests(b: Bench, seconds: float) -> dict:
    native = b.sampled(["matmul", str(seconds)], b.env(False))
    base = native.get("tflops", 0) or 1
    alone = []
    for pct in (10, 25, 50, 75, 90):
        res = b.sampled(["matmul", str(seconds)], b.env(True, f"sm{pct}", CUDA_DEVICE_SM_LIMIT=str(pct),
                                                                GPU_CORE_UTILIZATION_POLICY="force"))
        res.update(limit=pct, share=100 * res.get("tflops", 0) / base)
        alone.append(res)
        print(f"[sm alone] limit {pct}%: {res.get('tflops', 0):.1f} TFLOP/s = {res['share']:.1f}% of native",
              flush=True)
    pairs = []
    for lo, hi in ((30, 70), (50, 50)):
        go = b.tmp / f"go-{lo}-{hi}"
        procs = [b.start(["matmul", str(seconds)],
                         b.env(True, f"pair{lo}{hi}-{k}", CUDA_DEVICE_SM_LIMIT=str(pct), BENCH_GO=str(go)))
                 for k, pct in enumerate((lo, hi))]
        while len(list(b.tmp.glob(go.name + ".ready.*"))) < 2 and all(p.poll() is None for p in procs):
            time.sleep(0.01)
        go.touch()
        results = [b.finish(p) for p in procs]
        row = {"limits": [lo, hi], "tflops": [r.get("tflops", 0) for r in results],
               "share": [100 * r.get("tflops", 0) / base for r in results]}
        row["sum"] = sum(row["share"])
        pairs.append(row)
        print(f"[sm pair] {lo}+{hi}: shares {row['share'][0]:.1f} + {row['share'][1]:.1f} = {row['sum']:.1f}%",
              flush=True)
    native_pair_go = b.tmp / "go-native"
    procs = [b.start(["matmul", str(seconds)], b.env(False, BENCH_GO=str(native_pair_go))) for _ in range(2)]
    while len(list(b.tmp.glob(native_pair_go.name + ".ready.*"))) < 2 and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    native_pair_go.touch()
    native_pair = [b.finish(p).get("tflops", 0) for p in procs]
    return {"native_tflops": native.get("tflops") or 0.0, "native": native, "seconds": seconds, "alone": alone, "pairs": pairs,
            "native_pair_tflops": native_pair}


def variant_tests(b: Bench, seconds: float) -> dict:
    """Calibration: the SM clock under sustained load, and throttle variants at several limits."""
    native = b.sampled(["matmul", str(seconds)], b.env(False))
    base = native.get("tflops", 0) or 1
    ref = int(native.get("sm_clock_median_mhz", 0))
    rows = []
    variants = [(50, {}), (50, {"HAMI_SM_BURST_MS": "20"}), (50, {"HAMI_SM_BURST_MS": "100"}),
                (50, {"HAMI_SM_BURST_MS": "300"}), (75, {"HAMI_SM_BURST_MS": "100"}),
                (25, {"HAMI_SM_REF_MHZ": str(ref)}), (50, {"HAMI_SM_REF_MHZ": str(ref)}),
                (75, {"HAMI_SM_REF_MHZ": str(ref)})]
    for i, (pct, extra) in enumerate(variants):
        res = b.sampled(["matmul", str(seconds)], b.env(True, f"var{i}", CUDA_DEVICE_SM_LIMIT=str(pct),
                                                                GPU_CORE_UTILIZATION_POLICY="force", **extra))
        res.update(limit=pct, knobs=extra, share=100 * res.get("tflops", 0) / base)
        rows.append(res)
        print(f"[variant] {pct}% {extra}: share {res['share']:.1f}%, clock {res.get('sm_clock_median_mhz')} MHz, "
              f"power {res.get('power_median_w')} W", flush=True)
    return {"native": native, "ref_mhz": ref, "rows": rows}


def overhead_tests(b: Bench, pairs: int, launches: int, matmul_pairs: int, seconds: float) -> dict:
    launch_rows = []
    for i in range(pairs):
        order = (False, True) if i % 2 == 0 else (True, False)
        got = {}
        for preload in order:
            got[preload] = b.run(["launch", str(launches)], b.env(preload, "overhead")).get("us_per_launch") or 0.0
        launch_rows.append({"native_us": got[False], "preloaded_us": got[True],
                            "ratio": (got[True] / got[False]) if got[False] and got[True] else 0.0})
        print(f"[launch] pair {i}: native {got[False]:.3f} us, preloaded {got[True]:.3f} us", flush=True)
    mm_rows = []
    for i in range(matmul_pairs):
        order = (False, True) if i % 2 == 0 else (True, False)
        got = {}
        for preload in order:
            got[preload] = b.run(["matmul", str(seconds)], b.env(preload, "overhead")).get("tflops") or 0.0
        mm_rows.append({"native_tflops": got[False], "preloaded_tflops": got[True],
                        "ratio": (got[True] / got[False]) if got[False] and got[True] else 0.0})
        print(f"[matmul] pair {i}: native {got[False]:.1f}, preloaded {got[True]:.1f} TFLOP/s", flush=True)
    ratios = [r["ratio"] for r in launch_rows if r["ratio"]]
    mm = [r["ratio"] for r in mm_rows if r["ratio"]]
    return {"launches_per_run": launches, "launch_pairs": launch_rows,
            "launch_ratio_median": statistics.median(ratios) if ratios else 0.0,
            "matmul_pairs": mm_rows, "matmul_ratio_median": statistics.median(mm) if mm else 0.0}


def environment() -> dict:
    def sh(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.strip()
        except OSError as exc:
            return f"unavailable: {exc}"

    smi = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    versions = sh([sys.executable, "-c", "import torch, cupy; print(torch.__version__, torch.version.cuda, "
                   "cupy.__version__)"])
    return {"gpu": smi, "torch_cuda_cupy": versions, "python": sys.version.split()[0],
            "nvcc": sh(["bash", "-c", "nvcc --version | tail -2 | head -1"])}


def render(res: dict) -> str:
    e = res["environment"]
    lines = [f"# CUDA interposer on the {res.get('device', 'H100')} — {res['date']}", "",
             f"- Device / driver / memory: `{e['gpu']}`", f"- torch, torch CUDA, CuPy: `{e['torch_cuda_cupy']}`",
             f"- Python {e['python']}; nvcc: `{e['nvcc']}`", f"- Library: `{res['library']}` version {res['version']}",
             f"- Library sha256 `{res['library_sha256']}`, built from csrc/*.[ch] with sha256 `{res['csrc_sha256']}`",
             f"- Command: `{res['command']}`", "", "## Memory (limit " + res["memory_limit"] + ")", "",
             "| case | reported total MiB | largest allocated MiB | device bytes over limit | region usage MiB "
             "| error at the limit |", "|---|---|---|---|---|---|"]
    for r in res["memory"]:
        over = r.get("bytes_over_limit_device", "-")
        reg = f"{r['region_usage'] / MIB:.0f}" if "region_usage" in r else "-"
        lines.append(f"| {r['case']} | {r.get('reported_total', 0) / MIB:.0f} | {r.get('largest_allocated', 0) / MIB:.0f} "
                     f"| {over} | {reg} | {r.get('oom_error', r.get('error', ''))} |")
    c = res["compute"]
    nat = c.get("native", {})
    lines += ["", f"## Compute (bf16 8192^3 matmul, {c['seconds']} s per run; native {c['native_tflops']:.1f} TFLOP/s, "
              f"SM clock median {nat.get('sm_clock_median_mhz')} MHz, power median {nat.get('power_median_w')} W)",
              "", "| SM limit | TFLOP/s | achieved share % | error (points) | SM clock median MHz (busy samples) |",
              "|---|---|---|---|---|"]
    for r in c["alone"]:
        lines.append(f"| {r['limit']} | {r.get('tflops', 0):.1f} | {r['share']:.1f} | {r['share'] - r['limit']:+.1f} "
                     f"| {r.get('sm_clock_median_mhz', '-')} |")
    lines += ["", "| two processes (two containers) | shares % | sum % |", "|---|---|---|"]
    for p in c["pairs"]:
        lines.append(f"| {p['limits'][0]} + {p['limits'][1]} | {p['share'][0]:.1f} + {p['share'][1]:.1f} "
                     f"| {p['sum']:.1f} |")
    native_shares = " + ".join(f"{100 * t / c['native_tflops']:.1f}" for t in c["native_pair_tflops"])
    lines.append(f"| native, no preload, two processes | {native_shares} | - |")
    o = res["overhead"]
    lines += ["", f"## Overhead with no limits (preloaded vs native, interleaved pairs, {o['launches_per_run']} launches "
              "per run, each run the median of 5 repetitions)", "",
              "| pair | native us/launch | preloaded us/launch | ratio |", "|---|---|---|---|"]
    for i, r in enumerate(o["launch_pairs"]):
        lines.append(f"| {i} | {r['native_us']:.3f} | {r['preloaded_us']:.3f} | {r['ratio']:.3f} |")
    lines += ["", f"Median launch ratio: **{o['launch_ratio_median']:.4f}**", "",
              "| pair | native TFLOP/s | preloaded TFLOP/s | ratio |", "|---|---|---|---|"]
    for i, r in enumerate(o["matmul_pairs"]):
        lines.append(f"| {i} | {r['native_tflops']:.1f} | {r['preloaded_tflops']:.1f} | {r['ratio']:.4f} |")
    lines += ["", f"Median matmul ratio: **{o['matmul_ratio_median']:.4f}**", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lib", type=Path, default=None, help="libvgpu.so (default: the installed package's)")
    ap.add_argument("--limit", default="4g")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--launches", type=int, default=20000)
    ap.add_argument("--matmul-pairs", type=int, default=3)
    ap.add_argument("--only", default="memory,compute,overhead")
    ap.add_argument("--tag", default=None, help="device part of the file names (default: from GPU 0's name)")
    args = ap.parse_args()
    lib = args.lib or installed_library()
    if lib is None:
        raise SystemExit("libvgpu.so not found: install hami_plugins_nvidia or pass --lib")
    args.out.mkdir(parents=True, exist_ok=True)
    b = Bench(lib.resolve(), args.out)
    date = dt.datetime.now(dt.UTC).date().isoformat()
    import hashlib

    csrc = HERE.parent / "hami_plugins_nvidia" / "csrc"
    src_hash = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(csrc.glob("*.[ch]")))).hexdigest()
    res: dict = {"date": date, "library": str(lib), "version": library_version(lib),
                 "library_sha256": hashlib.sha256(lib.read_bytes()).hexdigest(), "csrc_sha256": src_hash,
                 "command": "PYTHONUNBUFFERED=1 python3 " + " ".join(sys.argv), "environment": environment(),
                 "memory_limit": args.limit, "device": b.name}
    only = args.only.split(",")
    if "memory" in only:
        res["memory"] = memory_tests(b, args.limit)
    if "compute" in only:
        res["compute"] = compute_tests(b, args.seconds)
    if "variants" in only:
        res["variants"] = variant_tests(b, args.seconds)
        print(f"[native] {json.dumps(res['variants']['native'])}", flush=True)
    if "overhead" in only:
        res["overhead"] = overhead_tests(b, args.pairs, args.launches, args.matmul_pairs, args.seconds)
    stem = args.out / f"{date}-{args.tag or device_tag(b.name)}-interposer"
    stem.with_suffix(".json").write_text(json.dumps(res, indent=2))
    if {"memory", "compute", "overhead"} <= set(only):
        text = render(res)
        stem.with_suffix(".md").write_text(text)
        print(text)


if __name__ == "__main__":
    main()
