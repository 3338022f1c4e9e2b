"""Several processes of one container at the edges of the sibling charge, on the fake libcuda's shared GPU: siblings
under coarse measurement, siblings holding no GPU memory, and a sibling gone (SIGKILL, exit) in the middle of 2 ms
time slices; per build and round (docs/results/2026-12-05-fake-sibling-edges.md).

Every container runs under `force` with a 100 ms square wave; every process is `spin` (GPU-bound: 2 ms kernels, a
sync every 4) unless the case says otherwise and holds 64 MiB on the GPU (CUDA_DEVICE_CONTEXT_RESERVE=64m) unless it
is "without memory" (CUDA_DEVICE_CONTEXT_RESERVE=0: a context and nothing else). Share: the GPU time the fake gave the
processes over their window; charged / GPU: each process's region slot over the GPU time it got; coarse: the share of
its launches measured coarsely (its HAMI_LAUNCH_STATS line). "gone" cases: the survivor's share in each 0.5 s after
its sibling went 1 s in, and what it was charged after over what it got. Figures of the fake on whatever machine runs
it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/sibling_edges.py --out /tmp/se.json --md /tmp/se.md \\
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --rounds 2
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_sharing_cases import tenant_env  # noqa: E402
from launch_path_cost import (  # noqa: E402
    add_record_args,
    add_round_args,
    alternating,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    record_title,
    write_record,
)
from multiproc_share import read_charges  # noqa: E402

GPU_BOUND = "spin 2000 0 {s} 4"
QUARTER = "spin 100 300 {s} 1000000"  # 100 us kernels, 300 us of host time after each: ~25 % busy alone
SLICES = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"}
STATS = re.compile(r"launch stats: \d+ measured launches \(([\d.]+) % coarse\)")

# name -> (limit, [(program, extra environment)] per process)
PAIRS: dict[str, tuple[int, list[tuple[str, dict[str, str]]]]] = {
    "coarse: 2 GPU-bound, default, 30": (30, [(GPU_BOUND, {})] * 2),
    "coarse: 2 GPU-bound, one HAMI_SM_PRECISE, 30": (30, [(GPU_BOUND, {}), (GPU_BOUND, {"HAMI_SM_PRECISE": "1"})]),
    "coarse: 2 GPU-bound, default, 60": (60, [(GPU_BOUND, {})] * 2),
    "coarse: 2 GPU-bound, one HAMI_SM_PRECISE, 60": (60, [(GPU_BOUND, {}), (GPU_BOUND, {"HAMI_SM_PRECISE": "1"})]),
    "coarse: 2 at ~25 % busy, default, 90": (90, [(QUARTER, {})] * 2),
    "coarse: 2 at ~25 % busy, both HAMI_SM_PRECISE, 90": (90, [(QUARTER, {"HAMI_SM_PRECISE": "1"})] * 2),
    "memory: 2 GPU-bound, both with, 30": (30, [(GPU_BOUND, {})] * 2),
    "memory: 2 GPU-bound, one without, 30": (30, [(GPU_BOUND, {}), (GPU_BOUND, {"CUDA_DEVICE_CONTEXT_RESERVE": "0"})]),
    "memory: 2 GPU-bound, both without, 30": (30, [(GPU_BOUND, {"CUDA_DEVICE_CONTEXT_RESERVE": "0"})] * 2),
}
GONE = ["gone: SIGKILL mid-slice, 30", "gone: exit mid-slice, 30"]


def _env(fake_dir: Path, lib: Path, tmp: Path, limit: int, extra: dict[str, str]) -> dict[str, str]:
    return tenant_env(fake_dir, lib, tmp, "c", {"GPU_CORE_UTILIZATION_POLICY": "force", "CUDA_DEVICE_SM_LIMIT": str(limit),
                                                "CUDA_DEVICE_CONTEXT_RESERVE": "64m", **extra})


def _lines(p: subprocess.Popen[str], until: str, most: int = 1 << 30) -> list[list[str]]:
    """The `spin` lines' words of p up to its line starting with `until`, or its first `most` of them."""
    out = []
    for line in p.stdout:  # type: ignore[union-attr]
        if line.startswith("spin "):
            out.append(line.split())
            if len(out) == most:
                return out
        elif line.startswith(until):
            return out
    raise RuntimeError(f"driver_app ended before {until!r}: {p.args}")


def run_pair(app: Path, fake_dir: Path, lib: Path, tmp: Path, limit: int, procs: list[tuple[str, dict[str, str]]],
             secs: float) -> dict:
    ps = [subprocess.Popen([str(app), "ctx", "0", *prog.format(s=f"{secs:g}").split(), "ready", "sleep", "2500"],
                           env=_env(fake_dir, lib, tmp, limit, extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for prog, extra in procs]
    try:
        spins = [_lines(p, "ready")[-1] for p in ps]
        time.sleep(0.3)  # the watchers collect the last marks
        _, per = read_charges(tmp / "c" / "region")
        errs = [p.communicate(timeout=60)[1] for p in ps]
    finally:
        for p in ps:
            p.kill()
            p.wait()
    rows = []
    for p, w, err in zip(ps, spins, errs, strict=True):
        t0, t1, gpu = float(w[2]), float(w[3]), float(w[4])
        m = STATS.search(err)
        rows.append({"share_pct": round(100 * gpu / (t1 - t0), 1), "charge_ratio": round(per.get(p.pid, 0.0) / gpu, 2),
                     "coarse_pct": float(m[1]) if m else -1.0})
    return {"share_pct": round(sum(r["share_pct"] for r in rows), 1), "procs": rows}


def run_gone(app: Path, fake_dir: Path, lib: Path, tmp: Path, how: str) -> dict:
    """Two GPU-bound siblings at 30 % under 2 ms slices; one goes 1 s in (SIGKILL, or its 1 s spin ends)."""
    env = _env(fake_dir, lib, tmp, 30, SLICES)
    surv = subprocess.Popen([str(app), "ctx", "0", "spin", "2000", "0", "1", "4", *(["spin", "2000", "0", "0.5", "4"] * 4),
                             "ready", "sleep", "2500"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    vict = subprocess.Popen([str(app), "ctx", "0", "spin", "2000", "0", "10" if how == "SIGKILL" else "1", "4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _lines(surv, "ready", most=1)
        if how == "SIGKILL":
            vict.send_signal(signal.SIGKILL)
        vict.wait(timeout=30)
        before = read_charges(tmp / "c" / "region")[1].get(surv.pid, 0.0)
        after = _lines(surv, "ready")
        time.sleep(0.3)
        charged = read_charges(tmp / "c" / "region")[1].get(surv.pid, 0.0) - before
    finally:
        for p in (surv, vict):
            p.kill()
            p.communicate()
    gpu = sum(float(w[4]) for w in after)
    return {"after_pct": [round(100 * float(w[4]) / (float(w[3]) - float(w[2])), 1) for w in after],
            "after_charge_ratio": round(charged / gpu, 2) if gpu else -1.0}


def markdown(result: dict, note: str) -> str:
    lines = record_title("Siblings at the edges on the fake libcuda", result, note)
    lines += ["| case | build | container share % per round (load) | each process: share %, charged / GPU, coarse % |",
              "|---|---|---|---|"]
    for r in result["rows"]:
        if r["case"].startswith("gone"):
            share = ", ".join(f"{'/'.join(f'{x:.1f}' for x in run['after_pct'])} ({run['load1']})" for run in r["runs"])
            per = ", ".join(f"charged {run['after_charge_ratio']:.2f} x" for run in r["runs"])
            lines.append(f"| {r['case']} (survivor per 0.5 s after) | {r['build']} | {share} | {per} |")
            continue
        share = ", ".join(f"{run['share_pct']:.1f} ({run['load1']})" for run in r["runs"])
        per = "; ".join(", ".join(f"{p['share_pct']:.1f} % {p['charge_ratio']:.2f} x {p['coarse_pct']:.1f} %"
                                  for p in run["procs"]) for run in r["runs"])
        lines.append(f"| {r['case']} | {r['build']} | {share} | {per} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--cases", default="coarse,memory,gone", help="comma-separated: coarse, memory, gone")
    a = ap.parse_args()
    check_round_args(ap, a)
    kinds = [k for k in a.cases.split(",") if k]
    if not kinds or any(k not in ("coarse", "memory", "gone") for k in kinds):
        ap.error(f"--cases {a.cases!r}: a comma-separated list of coarse, memory, gone")
    cases = [c for c in [*PAIRS, *GONE] if c.split(":")[0] in kinds]
    with tempfile.TemporaryDirectory(prefix="hami-se-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        libs = build_libs(ap, a.lib, tmp / "lib")
        runs: dict[tuple[str, str], list[dict]] = {}
        for n, c, name in alternating(a.rounds, cases, list(libs)):
            rd = tmp / f"r{n}"
            rd.mkdir()
            if c in PAIRS:
                limit, procs = PAIRS[c]
                r = run_pair(app, fake_dir, libs[name], rd, limit, procs, a.seconds)
            else:
                r = run_gone(app, fake_dir, libs[name], rd, "SIGKILL" if "SIGKILL" in c else "exit")
            r["load1"] = round(os.getloadavg()[0], 1)
            runs.setdefault((c, name), []).append(r)
            print(f"{c:48s} {name:8s} {r}", file=sys.stderr)
    result = {**record_head(a, seconds=a.seconds),
              "rows": [{"case": c, "build": name, "runs": rs} for (c, name), rs in runs.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
