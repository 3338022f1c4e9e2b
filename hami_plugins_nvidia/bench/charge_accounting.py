"""Every ms the fake GPU ran for a tenant against what the library charged it, per library build (issue 18: the
CUDA-graphs pair on 8 streams charged 0.84-0.86 x its GPU time + switch-ins; a 3 ms kernel a step beside an idle
neighbour 0.92-0.94 x).

Cases (driver_app words, on the fake's shared GPU; 200 ms idle first so credit is saved):
  pair-N    the graphs pair of issue 18 on N streams: two tenants at 30 + 70 under `default` (switches charged while
            the pair contends), each running `graphs 75 N 0 S` (a 75 us graph on each of N streams, then a sync,
            step after step) on the fake's time-sliced GPU of the graphs pair (2 ms slices, 130 us context switches,
            syncs polled every 10 us). Per tenant: the fake's GPU time and the GPU time spent switching into its
            context (the `graphs` line), what the library charged (its region's busy time), and what its stats line
            (HAMI_LAUNCH_STATS=1) says: switch-ins charged and not, its demand alone as estimated (switch_charged's
            rule: the switches are charged while the two demands reach 100 %). Ratios: the tenants' median;
  native-N  pair-N's program alone and without the library: the share of its window the fake GPU ran it (its
            demand alone, in `demand alone %`; the same for every build, run once per build);
  s1-nb,    idle_neighbour_charge.py's cases: a 3 ms kernel a step (s32: and a 1 us kernel on each of 31 more
  s32-nb,   streams), 5 steps, at 90 % `force`, beside a neighbour container that launched once and sleeps (-nb)
  s1, s32   or alone; charged / the fake's GPU time (read after the program exited: every deferred charge settled).
A process's streams never run at the same time on this fake (one FIFO per process): its GPU time is the union of
its busy intervals and their sum alike. Figures of the fake libcuda on whatever machine runs it, never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/charge_accounting.py --out /tmp/ca.json --rounds 3 --seconds 1 \\
        --lib before=/tmp/main-csrc --lib after=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import idle_neighbour_charge as inc  # noqa: E402  (the -nb cases, run as that bench runs them)
import launch_path_cost as lpc  # noqa: E402  (the fake benches' shared record and build helpers)
import region  # noqa: E402 - the region layout, read through cffi (launch_path_cost put its folder on the path)
from fake_sharing_cases import tenant_env  # noqa: E402
from stream_calls import cell  # noqa: E402  (median (min-max) of a key over the runs, '-' where none has it)

PAIR_FAKE = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "130", "FAKE_CUDA_SYNC_POLL_US": "10"}
PAIRS = {f"pair-{n}": n for n in (2, 8, 31)}
NATIVE = {f"native-{n}": n for n in PAIRS.values()}
CASES = (*PAIRS, *NATIVE, *inc.CASES)
SWITCHES = re.compile(r"switches charged ([\d.]+) ms, not ([\d.]+) ms \(demand alone ([\d.]+) %")


def tenant(out: str, err: str, reg_path: Path) -> dict[str, float]:
    """One pair tenant's accounting, ms: what the fake ran and switched for it, what the library charged and says."""
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("graphs ")]
    sw = SWITCHES.search(err)
    if not rows or rows[0][1] != "0" or not sw:
        raise RuntimeError(f"driver_app failed: {out.strip()[-300:]} {err.strip()[-300:]}")
    with region.SharedRegion(str(reg_path)) as reg:
        charged = reg.busy_ns(0) / 1e6
    gpu, switch_in = float(rows[0][4]) * 1e3, float(rows[0][6]) * 1e3
    return {"gpu_ms": gpu, "switch_ms": switch_in, "charged_ms": charged, "sw_charged_ms": float(sw.group(1)),
            "sw_free_ms": float(sw.group(2)), "demand_pct": float(sw.group(3)),
            "ratio_held": charged / (gpu + switch_in), "ratio_gpu": charged / gpu}


def run_pair(app: Path, fake_dir: Path, lib: Path, tmp: Path, streams: int, secs: float) -> dict[str, float]:
    """Both tenants of pair-N: each one's accounting (keys prefixed a_ and b_) and the median ratios."""
    words = ["ctx", "0", "launch", "kernel", "1", "10", "sleep", "200", "graphs", "75", str(streams), "0", f"{secs:g}"]
    procs = [subprocess.Popen([str(app), *words], env=tenant_env(fake_dir, lib, tmp, name, {
        "CUDA_DEVICE_SM_LIMIT": str(limit), "GPU_CORE_UTILIZATION_POLICY": "default", **PAIR_FAKE}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, limit in (("a", 30), ("b", 70))]
    res: dict[str, float] = {}
    for name, p in zip("ab", procs, strict=True):
        out, err = p.communicate(timeout=secs + 60)
        if p.returncode != 0:
            raise RuntimeError(f"pair-{streams}: tenant {name} exited {p.returncode}: {err.strip()[-300:]}")
        res.update({f"{name}_{k}": v for k, v in tenant(out, err, tmp / name / "region").items()})
    for k in ("ratio_held", "ratio_gpu"):
        res[k] = statistics.median([res["a_" + k], res["b_" + k]])
    return res


def run_case(app: Path, fake_dir: Path, lib: Path, tmp: Path, case: str, secs: float) -> dict[str, float]:
    """One run of a case: a pair's accounting, or an s case's program as tenant a."""
    if case in PAIRS:
        return run_pair(app, fake_dir, lib, tmp, PAIRS[case], secs)
    if case in NATIVE:
        env = tenant_env(fake_dir, None, tmp, "a", PAIR_FAKE)
        words = ["ctx", "0", "graphs", "75", str(NATIVE[case]), "0", f"{secs:g}"]
        p = subprocess.run([str(app), *words], env=env, capture_output=True, text=True, timeout=secs + 60)
        rows = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("graphs ")]
        if p.returncode != 0 or not rows or rows[0][1] != "0":
            raise RuntimeError(f"{case}: driver_app failed: {p.stdout.strip()[-300:]} {p.stderr.strip()[-300:]}")
        w = rows[0]
        return {"a_gpu_ms": float(w[4]) * 1e3, "a_demand_pct": 100 * float(w[4]) / (float(w[3]) - float(w[2]))}
    r = inc.run_case(app, fake_dir, lib, tmp, case)
    return {"a_gpu_ms": r["gpu_ms"], "a_charged_ms": r["charged_ms"], "ratio_gpu": r["ratio"]}


def row(runs: list[dict]) -> str:
    """A case and build's cells: the ratios, then each tenant's accounting."""
    cols = [cell(runs, "ratio_held"), cell(runs, "ratio_gpu")]
    for t in "ab":
        cols += [cell(runs, f"{t}_{k}", ".0f") for k in ("gpu_ms", "switch_ms", "charged_ms", "sw_charged_ms",
                                                          "sw_free_ms", "demand_pct")]
    return " | ".join(cols)


def main() -> int:
    a, raw = lpc.case_rounds(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]), CASES, "ca-", run_case)
    result = lpc.record_head(a, seconds=a.seconds, raw=raw)
    head = [f"{t}: {k}" for t in ("a (30 %)", "b (70 %)")
            for k in ("GPU ms", "switch-in ms", "charged ms", "switches charged ms", "switches not charged ms",
                      "demand alone %")]
    lines = [*lpc.record_title("What the fake ran for each tenant against what the library charged", result, a.note),
             "Median (min-max) of the runs. held: charged / (GPU time + switch-ins), gpu: charged / GPU time (pairs: "
             "the tenants' median). The s cases' program is tenant a.", "",
             "| case | build | held | gpu | " + " | ".join(head) + " |", "|" + "---|" * (4 + len(head)),
             *lpc.case_rows(raw, row)]
    return lpc.write_record(a, result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
