"""What the interposer's memory accounting costs per allocation, with 0, 7 or 63 other processes of the
container holding memory (each one is a lock the kernel is asked about), on the fake libcuda (CI machine,
no GPU): the interposer's own cost, since the fake's allocation is a few table writes.

Run from a source checkout (the fake libcuda and the test program live under tests/interposer/):
    python -m hami_plugins_nvidia.interposer.bench_alloc --out docs/results/<date>-interposer-alloc-cost.json
    [--baseline-rev <git revision>]   # also measure the library as it was at that revision
Each figure is the median over --repeats runs of --pairs allocate+free pairs of 1 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from . import build

PKG = Path(__file__).resolve().parent.parent
FAKE = PKG.parent / "tests" / "interposer" / "fake_cuda"


def _compile(out: Path) -> tuple[Path, Path]:
    """The fake libcuda.so.1 (in its own folder) and driver_app."""
    cc = build.compiler()
    fake_dir = out / "fake"
    fake_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([cc, "-O1", "-fPIC", "-shared", "-Wl,-Bsymbolic", "-o", str(fake_dir / "libcuda.so.1"),
                    str(FAKE / "fake_cuda.c")], check=True)
    app = out / "driver_app"
    subprocess.run([cc, "-O1", "-o", str(app), str(FAKE / "driver_app.c"), "-ldl"], check=True)
    return fake_dir, app


def _library_at(rev: str, out: Path) -> Path:
    """libvgpu.so built from the csrc/ of a git revision."""
    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=PKG, capture_output=True, text=True,
                          check=True).stdout.strip()
    rel = (PKG / "csrc").relative_to(repo)
    out.mkdir(parents=True, exist_ok=True)
    tar = out / "csrc.tar"
    subprocess.run(["git", "archive", "-o", str(tar), rev, str(rel)], cwd=repo, check=True)
    with tarfile.open(tar) as t:
        t.extractall(out / "src", filter="data")
    return build.build_library(out / "lib", out / "src" / rel)


def _env(lib: Path | None, fake_dir: Path, region: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD"))}
    env.update(LD_LIBRARY_PATH=str(fake_dir), CUDA_DEVICE_MEMORY_SHARED_CACHE=str(region),
               HAMI_NODE_BOARD=str(region.parent / "board"), CUDA_DEVICE_MEMORY_LIMIT="100g",
               CUDA_DEVICE_CONTEXT_RESERVE="0")
    if lib:
        env["LD_PRELOAD"] = str(lib)
    return env


def measure(lib: Path | None, fake_dir: Path, app: Path, others: int, pairs: int, repeats: int) -> float:
    """Median nanoseconds per allocate+free pair with `others` processes holding 1 MiB each."""
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(lib, fake_dir, Path(tmp) / "region")
        holders = []
        try:
            for _ in range(others):
                p = subprocess.Popen([str(app), "ctx", "0", "alloc", "1m", "hang"], env=env, stdout=subprocess.PIPE,
                                     text=True)
                holders.append(p)
                for line in p.stdout:
                    if line.startswith("hanging"):
                        break
            runs = []
            for _ in range(repeats):
                out = subprocess.run([str(app), "ctx", "0", "allocloop", str(pairs), "1m"], env=env,
                                     capture_output=True, text=True, check=True).stdout
                words = next(ln for ln in out.splitlines() if ln.startswith("allocloop")).split()
                if int(words[1]) != pairs:
                    raise RuntimeError(f"{pairs - int(words[1])} allocations refused under a 100 GiB limit")
                runs.append(float(words[2]))
            return statistics.median(runs)
        finally:
            for p in holders:
                p.kill()
                p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON result file")
    ap.add_argument("--baseline-rev", help="also measure the library built from this git revision")
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--others", default="0,7,63", help="comma-separated counts of other holding processes")
    args = ap.parse_args()
    counts = [int(x) for x in args.others.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        fake_dir, app = _compile(tmp_path)
        libs: dict[str, Path | None] = {"no interposer": None, "this tree": build.build_library(tmp_path / "lib")}
        if args.baseline_rev:
            libs[f"revision {args.baseline_rev}"] = _library_at(args.baseline_rev, tmp_path / "base")
        rows = []
        for name, lib in libs.items():
            for n in counts if lib else [0]:
                ns = measure(lib, fake_dir, app, n, args.pairs, args.repeats)
                rows.append({"library": name, "other_processes": n, "ns_per_alloc_free_pair": round(ns, 1)})
                print(f"{name:>24}  others={n:<3} {ns:9.1f} ns per allocate+free pair")
    result = {
        "what": "mean wall time of one cuMemAlloc + cuMemFree pair (1 MiB) through the interposer",
        "device": "fake libcuda (tests/interposer/fake_cuda), no GPU: the interposer's own cost",
        "host": {"machine": platform.machine(), "kernel": platform.release(), "cpus": os.cpu_count()},
        "pairs": args.pairs, "repeats": args.repeats, "statistic": "median of repeats",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m hami_plugins_nvidia.interposer.bench_alloc " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
