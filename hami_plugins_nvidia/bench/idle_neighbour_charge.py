"""What a multi-stream program is charged beside an idle neighbour, per library build (issue 18: charged a fraction
of its GPU time when its streams' spans were collected out of GPU order).

Cases (driver_app words, on the fake's shared GPU; the program at 90 % `force`, 200 ms idle first so credit is
saved; five steps, then the fake's GPU time (`gpu`) and a 400 ms sleep so every deferred charge settles):
  s1        a step = a 3 ms kernel on one stream, then a sync;
  s32       a step = a 3 ms kernel on one stream, a 1 us kernel on each of 31 others, then a sync;
  -nb       beside a neighbour container at 50 % `default` that launched one 10 us kernel and then sleeps.
ratio: what the library charged (the program's region's busy time) over the GPU time the fake gave the program.
Figures of the fake libcuda on whatever machine runs it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/idle_neighbour_charge.py --out /tmp/inc.json --rounds 3 \\
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import launch_path_cost as lpc  # noqa: E402  (the fake benches' shared record and build helpers)
import region  # noqa: E402 - the region layout, read through cffi (launch_path_cost put its folder on the path)
from fake_sharing_cases import tenant_env  # noqa: E402

SAVE = ("ctx", "0", "launch", "kernel", "1", "10", "sleep", "200")
CASES = ("s1", "s1-nb", "s32", "s32-nb")


def step(streams: int) -> tuple[str, ...]:
    """One step: a 3 ms kernel on stream 0x2000, a 1 us kernel on each of streams - 1 others, a sync."""
    short = (w for k in range(1, streams) for w in ("launchon", hex(0x2000 + k), "1", "1"))
    return ("launchon", "0x2000", "1", "3000", *short, "sync")


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str) -> dict[str, float]:
    """One run: the charge and the fake's GPU time of the program, ms."""
    streams, neighbour = int(case.split("-")[0][1:]), case.endswith("-nb")
    nb = None
    try:
        if neighbour:
            nb = subprocess.Popen([str(app), "ctx", "0", "launch", "kernel", "1", "10", "ready", "sleep", "5000"],
                                  env=tenant_env(fake_dir, lib, tmp, "b", {"CUDA_DEVICE_SM_LIMIT": "50",
                                                                            "GPU_CORE_UTILIZATION_POLICY": "default"}),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert nb.stdout is not None
            while (line := nb.stdout.readline()) and line.strip() != "ready":  # launched: on the board, then idle
                pass
        env = tenant_env(fake_dir, lib, tmp, "a", {"CUDA_DEVICE_SM_LIMIT": "90",
                                                    "GPU_CORE_UTILIZATION_POLICY": "force"})
        p = subprocess.run([str(app), *SAVE, *step(streams) * 5, "gpu", "sleep", "400"], env=env,
                           capture_output=True, text=True, timeout=60)
    finally:
        if nb is not None:
            nb.kill()
            nb.wait()
    gpu = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("gpu ")]
    if p.returncode != 0 or len(gpu) != 1 or int(gpu[0][1]) <= 0:
        raise RuntimeError(f"{case}: driver_app failed: {p.stdout.strip()[-300:]} {p.stderr.strip()[-300:]}")
    with region.SharedRegion(str(tmp / "a" / "region")) as reg:
        charged = reg.busy_ns(0) / 1e6
    ran = int(gpu[0][1]) / 1e6
    return {"charged_ms": charged, "gpu_ms": ran, "ratio": charged / ran}


def cell(runs: list[dict], key: str) -> str:
    xs = [r[key] for r in runs]
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lpc.add_record_args(ap)
    lpc.add_round_args(ap, seconds=False)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    a = ap.parse_args()
    lpc.check_round_args(ap, a)
    cases = lpc.parse_cases(ap, a.cases, CASES)
    raw = lpc.run_rounds(ap, a, cases, "inc-", run_case)
    result = lpc.record_head(a, raw=raw)
    lines = [*lpc.record_title("Charge of a multi-stream program beside an idle neighbour", result, a.note),
             "Median (min-max) of the runs. ratio: charged / the GPU time the fake gave the program.", "",
             "| case | build | charged ms | fake GPU ms | ratio |", "|---|---|---|---|---|",
             *lpc.case_rows(raw, lambda runs: " | ".join([cell(runs, "charged_ms"), cell(runs, "gpu_ms"),
                                                          cell(runs, "ratio")]))]
    return lpc.write_record(a, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
