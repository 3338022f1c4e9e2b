"""The watcher's pacing on the fake libcuda (issue 18, record 8 stage 10: on the H100 the watcher's fixed 100 us poll
woke ~4,650 times a second beside the inference loop, 86 % of the wakes left the collecting to the launcher, and the
loop lost ~5 % on one core). Two measurements, builds interleaved round after round (ABAB then BABA):

- loop: a launch-bound loop (the fake driver_app's `spin`: --kernel-us kernels, no host gap, a sync every --sync
  launches, each launch costing the fake --launch-ns of host time) alone at force 70, pinned with taskset to --cores:
  launches a second, the watcher's wakes a second and the loop thread's involuntary context switches a second (its
  launch stats line, HAMI_LAUNCH_STATS=1).
- charge: shapes whose bursts the watcher closes (bursts of launches followed by host pauses, with and without a sync;
  the inference-like loop; the training step of test_interposer_coarse_training.py) alone at force 70: the charge
  (the region's busy counter) over the GPU time the fake gave the process.

A variant is NAME=CSRC[:DEFINE,...][:ENV=VALUE,...]; CSRC a csrc folder (a git revision's, extracted by the caller)
or "-" for this checkout's. Figures are the fake libcuda's on whatever host runs this, never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/watcher_pace.py --variant old=/tmp/base-csrc --variant new=- \\
        --variant poll100=-::HAMI_WATCHER_BUSY_POLL_US=100 --variant nowatch=-:HAMI_BENCH_NO_WATCHER --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hami_plugins_nvidia"))
from hami_plugins_nvidia.interposer import build, region  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_ladder import stats_fields  # noqa: E402 - the stats line's watcher and switch fields, parsed in one place

FAKE = REPO / "hami_plugins_nvidia/tests/interposer/fake_cuda"
WARM = ["spin", "3", "3000", "0.8", "1000"]  # nearly idle: the bucket fills, a window verifies, coarse begins


def shapes() -> dict[str, tuple[dict[str, str], list[str]]]:
    def cycles(n: int, *cmd: str) -> list[str]:
        return [x for _ in range(n) for x in cmd]

    burst = {"FAKE_CUDA_COSTS_NS": "launch=20000"}  # 100 launches = 2 ms of launching (the launcher collects)
    return {
        "burst-pause3ms": (burst, WARM + cycles(400, "burst", "kernel", "100", "5", "sleep", "3")),
        "burst-pause1ms": (burst, WARM + cycles(600, "burst", "kernel", "100", "5", "sleep", "1")),
        "burst-sync-pause3ms": (burst, WARM + cycles(400, "launch", "kernel", "100", "5", "sleep", "3")),
        "infer-sync200": ({"FAKE_CUDA_COSTS_NS": "launch=30000"}, WARM + ["spin", "10", "0", "2", "200"]),
        "train-step": ({"DRIVER_BUSY_GAP": "1"}, WARM + ["passes", "20*2000,4000*5", "12", "2"]),
    }


def fake_and_variants(prefix: str, specs: list[str]) -> tuple[Path, Path, list[tuple[str, Path, dict[str, str]]]]:
    """A work folder with the fake libcuda and driver_app built, and each --variant's library built in it:
    (work, driver_app, [(name, libvgpu.so, env)])."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    cc = build.compiler()
    subprocess.run([cc, "-O1", "-fPIC", "-shared", "-Wl,-Bsymbolic", "-o", str(work / "libcuda.so.1"),
                    str(FAKE / "fake_cuda.c")], check=True)
    app = work / "driver_app"
    subprocess.run([cc, "-O1", "-o", str(app), str(FAKE / "driver_app.c"), "-ldl"], check=True)
    variants = []
    for spec in specs:
        name, csrc, defines, env = parse_variant(spec)
        variants.append((name, build.build_library(work / name, csrc=csrc, defines=defines), env))
    return work, app, variants


def parse_variant(spec: str) -> tuple[str, Path, list[str], dict[str, str]]:
    name, _, rest = spec.partition("=")
    parts = rest.split(":")
    csrc = build.CSRC if parts[0] in ("", "-") else Path(parts[0])
    defines = [d for d in (parts[1] if len(parts) > 1 else "").split(",") if d]
    env = dict(kv.split("=", 1) for kv in (parts[2] if len(parts) > 2 else "").split(",") if kv)
    return name, csrc, defines, env


def run(app: Path, fake: Path, lib: Path, args: list[str], cores: str | None, **extra: str) -> tuple[str, str, float]:
    with tempfile.TemporaryDirectory() as d:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "FAKE_"))}
        env.update(LD_LIBRARY_PATH=str(fake), LD_PRELOAD=str(lib), CUDA_DEVICE_MEMORY_SHARED_CACHE=f"{d}/region",
                   HAMI_NODE_BOARD=f"{d}/board", FAKE_CUDA_GPU=f"{d}/gpu", GPU_CORE_UTILIZATION_POLICY="force",
                   HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT="70", HAMI_LAUNCH_STATS="1", **extra)
        cmd = [str(app), "ctx", "0", *args, "gpu"]
        if cores:
            cmd = ["taskset", "-c", cores, *cmd]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        if p.returncode:
            raise RuntimeError(f"driver_app failed ({p.returncode}): {p.stderr.strip()[-300:]}")
        with region.SharedRegion(Path(d) / "region") as reg:
            charged = reg.busy_ns(0) / 1e6
    return p.stdout, p.stderr, charged


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True, help="NAME=CSRC[:DEFINES][:ENV] (see the docstring)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--part", choices=["loop", "charge", "both"], default="both")
    ap.add_argument("--cores", default="1", help="taskset list for the loop ('' = not pinned)")
    ap.add_argument("--kernel-us", default="5")
    ap.add_argument("--sync", default="200")
    ap.add_argument("--launch-ns", default="30000")
    ap.add_argument("--gap-us", default="0",
                    help="busy host time after each launch (DRIVER_BUSY_GAP=1): with --launch-ns 0 the loop stays far "
                         "below its limit and is measured coarsely on the fake (the fake's modelled launch cost sits "
                         "inside each precise charge, so a --launch-ns loop is held and stays precise)")
    ap.add_argument("--seconds", default="3")
    ap.add_argument("--out", type=Path, default=None, help="JSON of every run")
    a = ap.parse_args()
    if not 1 <= a.rounds <= 20:
        ap.error("--rounds must be 1..20")
    work, app, variants = fake_and_variants("watcher-pace-", a.variant)
    res: dict = {"loop": {n: [] for n, _, _ in variants}, "charge": {}}
    for r in range(a.rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        if a.part in ("loop", "both"):
            for name, lib, env in order:
                busy = {"DRIVER_BUSY_GAP": "1"} if a.gap_us != "0" else {}
                out, err, _ = run(app, work, lib, ["spin", a.kernel_us, a.gap_us, a.seconds, a.sync], a.cores or None,
                                  FAKE_CUDA_COSTS_NS=f"launch={a.launch_ns}", **busy, **env)
                sp = next(ln for ln in out.splitlines() if ln.startswith("spin ")).split()
                el, n = float(sp[3]) - float(sp[2]), int(sp[5])
                f = stats_fields(next((ln for ln in err.splitlines() if "launch stats:" in ln), None))
                if "wakes" not in f:
                    raise SystemExit(f"watcher_pace: {name}: no launch stats line with the watcher's wakes")
                row = {"rate": n / el, "wakes_s": f["wakes"] / el, "left": f["wakes_left"], "invol_s": f["invol"] / el,
                       "coarse_pct": f.get("coarse_pct", 0.0), "library_us": f.get("library_us", 0.0),
                       "long_s": f.get("long_sleeps", 0.0) / el}
                res["loop"][name].append(row)
                print("loop", r, name, {k: round(v, 1) for k, v in row.items()}, flush=True)
        if a.part in ("charge", "both"):
            for shape, (extra, args) in shapes().items():
                for name, lib, env in order:
                    out, _, charged = run(app, work, lib, args, None, **{**extra, **env})
                    gpu = int(next(ln for ln in out.splitlines() if ln.startswith("gpu ")).split()[1]) / 1e6
                    res["charge"].setdefault(shape, {}).setdefault(name, []).append(charged / gpu)
                    print("charge", r, shape, name, f"gpu {gpu:.1f} ms charged {charged:.1f} ms", flush=True)

    def med(xs: list[float], f: str = ".0f") -> str:
        return f"{statistics.median(xs):{f}} ({min(xs):{f}}-{max(xs):{f}})"

    if a.part in ("loop", "both"):
        print("\n| variant | launches/s median (min-max) | watcher wakes/s | sleeps past 1 ms /s | involuntary switches/s "
              "| % coarse | library us/launch |\n|---|---|---|---|---|---|---|")
        for name, rows in res["loop"].items():
            print(f"| {name} | {med([x['rate'] for x in rows])} | {med([x['wakes_s'] for x in rows])} | "
                  f"{med([x['long_s'] for x in rows])} | {med([x['invol_s'] for x in rows])} | {med([x['coarse_pct'] for x in rows], '.1f')} | "
                  f"{med([x['library_us'] for x in rows], '.3f')} |")
    if a.part in ("charge", "both"):
        names = [n for n, _, _ in variants]
        print("\n| shape | " + " | ".join(f"{n} charged / GPU" for n in names) + " |\n|---|" + "---|" * len(names))
        for shape, by in res["charge"].items():
            print(f"| {shape} | " + " | ".join(med(by[n], ".3f") for n in names) + " |")
    if a.out:
        a.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
