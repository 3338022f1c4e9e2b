"""What measuring a launch costs a launch-bound program (issue 18): the small-batch inference loop
(interposer/programs.py infer) alone with no preload and under library variants, interleaved, then the
50 + 50 pair (a pair that fits: each is busy ~25-35 % alone) native and under each variant.

Variants are the library built from a source folder with extra -D flags, e.g.
    --variant new=hami_plugins_nvidia/hami_plugins_nvidia/csrc: --variant nostart=...csrc:HAMI_NO_START_MARKS
Alone runs use CUDA_TASK_PRIORITY=0 (every launch measured, nothing capped); the pair uses limits 50 + 50
under GPU_CORE_UTILIZATION_POLICY=force. Writes launch-cost.json and a log under --out.

    PYTHONUNBUFFERED=1 python3 hami_plugins_nvidia/bench/launch_cost.py --out $OUT/lc --variant ...
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))

import build  # noqa: E402 - standalone module: compiles csrc/*.c with the system C compiler
import real_workloads as rw  # noqa: E402 - the bench's worker harness


def build_variant(name: str, csrc: Path, defines: list[str], out: Path) -> Path:
    target = out / name / build.LIB_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [*shlex.split(build.compiler()), *build.CFLAGS, *[f"-D{d}" for d in defines], f"-I{csrc}", "-o",
           str(target), *map(str, build.sources(csrc)), *build.LIBS]
    subprocess.run(cmd, check=True)
    return target


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variant", action="append", default=[], help="NAME=CSRC_DIR:DEFINE,DEFINE")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pairs", default="", help="variant names to run the 50+50 pair with (default: all; none)")
    ap.add_argument("--kind", default="infer", help="program of interposer/programs.py (default: infer)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="hami-lc-"))
    libs = {}
    for v in args.variant:
        name, rest = v.split("=", 1)
        csrc, _, defs = rest.partition(":")
        libs[name] = build_variant(name, Path(csrc), [d for d in defs.split(",") if d], tmp / "libs")
    out: dict = {"command": " ".join(sys.argv), "device": rw._device(), "alone": {}, "pairs": {}}
    with open(args.out / "launch-cost.log", "w") as log:
        b = rw.Bench(next(iter(libs.values())), tmp, log)
        for k in range(args.rounds):
            out["alone"].setdefault("native", []).append(b.run(f"native #{k}", args.kind, args.seconds, False).get("rate"))
            for name, lib in libs.items():
                b.lib = lib
                r = b.run(f"{name} #{k}", args.kind, args.seconds, True, CUDA_TASK_PRIORITY="0")
                out["alone"].setdefault(name, []).append(r.get("rate"))
                out.setdefault("busy", {}).setdefault(name, []).append(r.get("gpu_busy_fraction"))
        out["alone"]["native"].append(b.run("native #last", args.kind, args.seconds, False).get("rate"))
        names = [] if args.pairs == "none" else args.pairs.split(",") if args.pairs else list(libs)
        if names:
            nat = b.pair("pair native", (args.kind, args.kind), args.seconds, ({}, {}), preload=False)
            out["pairs"]["native"] = [x.get("rate") for x in nat]
        for name in names:
            b.lib = libs[name]
            env = {"CUDA_DEVICE_SM_LIMIT": "50", "GPU_CORE_UTILIZATION_POLICY": "force"}
            pr = b.pair(f"pair 50+50 {name}", (args.kind, args.kind), args.seconds, (env, env))
            out["pairs"][name] = [x.get("rate") for x in pr]
            out.setdefault("pair_charged", {})[name] = [x.get("gpu_busy_fraction") for x in pr]
    solo = statistics.median([r for r in out["alone"]["native"] if r])
    out["alone_pct_of_native_median"] = {n: [round(100 * r / solo, 1) for r in rs if r] for n, rs in out["alone"].items()}
    nat_sum = sum(r or 0 for r in out["pairs"].get("native", []))
    out["pair_sum_pct_of_native_pair"] = {n: round(100 * sum(r or 0 for r in rs) / nat_sum, 1) if nat_sum else None
                                          for n, rs in out["pairs"].items()}
    (args.out / "launch-cost.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "device"}), flush=True)


if __name__ == "__main__":
    main()
