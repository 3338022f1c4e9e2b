"""The processor-sharing charge of two tenants that time-slice, on the fake libcuda (issue 18, the CuPy pair).

Two containers (each its own region, one node board, one fake GPU) run the same driver_app loop, started
together, under one or more builds of the library; per tenant it reports the share of the fake GPU it got
(the fake's own accounting) and what the library charged it (its region's busy time) divided by that GPU
time. Rounds are interleaved across builds (ABAB...).

Cases (limits A + B, 3 s each):
  long     1.5 ms kernels, a sync after each (the CuPy matmul loop), 2 ms time slices with 30 us switches,
           GPU_CORE_UTILIZATION_POLICY=default: each tenant's work runs alone, in turns;
  bound    2 ms kernels, a sync every 4, force, the fluid processor-sharing model (both GPU-bound);
  bound-sliced  the same under 2 ms slices.
All with HAMI_SM_PERIOD_MS=100. These are figures of the fake on whatever machine runs the bench (the 2-core
dev VM for the record in docs/results), not hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/timeslice_charge.py --out /tmp/tsc.json \
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PKG = HERE.parent / "hami_plugins_nvidia"
sys.path.insert(0, str(PKG / "interposer"))
sys.path.insert(0, str(HERE))

import region  # noqa: E402 - the region layout, read through cffi
from launch_path_cost import (  # noqa: E402 - the fake libcuda and driver_app, built as the tests do
    add_record_args,
    add_round_args,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    write_record,
)

SLICED = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"}
CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "long": (["spin", "1500", "0", "3", "1"], {**SLICED, "GPU_CORE_UTILIZATION_POLICY": "default"}),
    "bound": (["spin", "2000", "0", "3", "4"], {"GPU_CORE_UTILIZATION_POLICY": "force"}),
    "bound-sliced": (["spin", "2000", "0", "3", "4"], {**SLICED, "GPU_CORE_UTILIZATION_POLICY": "force"}),
}


def tenant_env(fake_dir: Path, lib: Path, tmp: Path, name: str, limit: int, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "GPU_CORE", "FAKE_CUDA"))}
    ctr = tmp / name
    ctr.mkdir(parents=True, exist_ok=True)
    env.update(LD_LIBRARY_PATH=str(fake_dir), LD_PRELOAD=str(lib), CUDA_DEVICE_MEMORY_SHARED_CACHE=str(ctr / "region"),
               HAMI_NODE_BOARD=str(tmp / "board"), FAKE_CUDA_GPU=str(tmp / "gpu"), HAMI_SM_PERIOD_MS="100",
               CUDA_DEVICE_SM_LIMIT=str(limit))
    env.update(extra)
    return env


def pair(app: Path, fake_dir: Path, lib: Path, case: str, limits: tuple[int, int]) -> list[dict[str, float]]:
    """One run of the pair: per tenant its limit, share of the fake GPU (%) and charge / GPU time."""
    prog, extra = CASES[case]
    with tempfile.TemporaryDirectory(prefix="hami-tsc-") as d:
        tmp = Path(d)
        envs = [tenant_env(fake_dir, lib, tmp, n, lim, extra) for n, lim in zip("ab", limits, strict=True)]
        procs = [subprocess.Popen([str(app), "ctx", "0", *prog], env=e, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for e in envs]
        res = []
        for p, env, lim in zip(procs, envs, limits, strict=True):
            out, err = p.communicate(timeout=120)
            words = [ln.split() for ln in out.splitlines() if ln.startswith("spin ")]
            if p.returncode != 0 or not words or words[-1][1] != "0":
                raise RuntimeError(f"driver_app failed ({p.returncode}): {err.strip()[:300]}")
            t0, t1, gpu_s = float(words[-1][2]), float(words[-1][3]), float(words[-1][4])
            with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
                charged_s = reg.busy_ns(0) / 1e9
            res.append({"limit": lim, "share": 100 * gpu_s / (t1 - t0), "gpu_s": gpu_s,
                        "charged_s": charged_s, "charge_ratio": charged_s / gpu_s if gpu_s > 0 else 0.0})
        return res


def parse_limits(text: str) -> tuple[int, int]:
    a, b = (int(x) for x in text.split("+"))
    if not (1 <= a <= 99 and 1 <= b <= 99):
        raise ValueError(f"limits {text!r}: each must be 1..99")
    return a, b


def markdown(result: dict, note: str) -> str:
    lines = [f"# Processor-sharing charge of time-slicing tenants, fake libcuda ({result['date']})", "",
             "Simulated: the fake libcuda's shared GPU on the dev VM (not a hardware result). Command:", "",
             f"    {result['command']}", ""]
    if note:
        lines += [note, ""]
    lines += [f"Host: {result['host']}. Rounds: {result['rounds']} per build and case, interleaved. Per tenant: "
              "the share of the fake GPU it got and the library's charge divided by that GPU time, as "
              "min-max (median) over the rounds.", "",
              "| case | limits | build | A share % | A charge / GPU | B share % | B charge / GPU |",
              "|---|---|---|---|---|---|---|"]

    def span(xs: list[float], fmt: str) -> str:
        return f"{min(xs):{fmt}}-{max(xs):{fmt}} ({statistics.median(xs):{fmt}})"

    for row in result["rows"]:
        runs = row["runs"]
        cells = []
        for k in (0, 1):
            cells += [span([r[k]["share"] for r in runs], ".1f"), span([r[k]["charge_ratio"] for r in runs], ".2f")]
        lines.append(f"| {row['case']} | {row['limits']} | {row['build']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap, seconds=False)
    ap.add_argument("--cases", default="long:30+70,long:50+50,long:20+80,bound:30+70,bound-sliced:30+70",
                    help="CASE:A+B,... (cases: " + ", ".join(CASES) + ")")
    a = ap.parse_args()
    check_round_args(ap, a)
    plan = []
    for item in (x for x in a.cases.split(",") if x):
        case, _, lims = item.partition(":")
        if case not in CASES:
            ap.error(f"--cases: unknown case {case!r} (known: {', '.join(CASES)})")
        try:
            plan.append((case, lims, parse_limits(lims)))
        except ValueError as exc:
            ap.error(f"--cases: {exc}")
    with tempfile.TemporaryDirectory(prefix="hami-tsc-build-") as d:
        out = Path(d)
        fake_dir, app = build_tools(out)
        libs = build_libs(ap, a.lib, out)
        rows = {(c, lims, n): [] for c, lims, _ in plan for n in libs}
        for _ in range(a.rounds):
            for case, lims, limits in plan:
                for name, lib in libs.items():
                    rows[(case, lims, name)].append(pair(app, fake_dir, lib, case, limits))
    result = {**record_head(a),
              "rows": [{"case": c, "limits": lims, "build": n, "runs": runs} for (c, lims, n), runs in rows.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
