"""Issue 18's unmet H200 sharing cases, rebuilt on the fake libcuda: what the library charges each tenant against
the GPU time the fake gave it, and how the throughput splits, beside the native (no library) run of each case.

Each tenant is its own container (its own region, one node board, one fake GPU, `FAKE_CUDA_GPU`); the tenants of
a run start together and run the same driver_app program for `--seconds`. Per tenant: its throughput (steps or
launches per second) as % of the median of the case's solo native runs, its share of the fake GPU (the fake's
own accounting, `fake_gpu_ns`), the library's charge (its region's busy time) as % of the window and divided by
that GPU time, and with `HAMI_LAUNCH_STATS=1` the launch path's own figures (share of launches measured coarsely,
host us per launch before and after the driver call).

Cases (the H200 program each stands for, record docs/results/2026-12-04-h200-interposer-sharing-3.md):
  graphs  programs.py w_graphs: a graph of 75 us on each of 2 streams, then a sync (polled every 10 us); on the
          H200 a step took 0.17 ms alone and was charged ~0.15 ms alone at 50 % `force`; 2 ms time slices and
          context switches of --graphs-switch-us (default 130: the H200 pair stepped in lockstep at 0.56 ms, ~3.3 x
          its solo step; two turns of ~150 us of work leave ~130 us per switch; the fake's switch stands for
          whatever the GPU spends between the two contexts' turns);
  launch  the inference loop: 195 launches of 5 us kernels per pass with ~20 us of host time each (busy-waited),
          a sync per pass (busy ~20-30 % alone); 2 ms slices, 30 us switches;
  lbpair  the inference pairs of record 5 (docs/results/2026-12-05-h200-issue18-r5.md: ~46 % busy each, ~25 us per
          launch): 10 us kernels with 12 us of host time after each (busy-waited), a sync per 195; processor sharing;
  lbmixed the conformance behaviour isolation/work-conserving-sharing: tenant a GPU-bound (2 ms kernels, a sync per
          4), tenant b the lbpair loop; its `solo-b` run is b's program alone (b's throughput reference);
  lbhigh  a launch-bound loop busier than its limit (20 us kernels, 12 us of host time after each, a sync per 195:
          ~60-70 % busy alone, never 100 %) on a time-sliced GPU (2 ms slices, 30 us switches): at 50 + 50 the pair
          contends and each tenant's demand alone exceeds its limit, yet neither fills the GPU alone (turns' edge);
  lbmixeds lbmixed on a time-sliced GPU (2 ms slices, 30 us switches, as a GPU runs two contexts): b's kernels wait
          for a's slice to end, where processor sharing runs them at once at half speed;
  cupy    the CuPy loop: 1.5 ms kernels, a sync after each; 2 ms slices, 30 us switches;
  phases  a launch-bound loop whose kernels change length every 150 ms (3 us, then 12 us, ...; 20 us of host time
          after each, a sync per 195): an inference service between short and long requests, and the stress of
          the coarse phases' verification (an estimate that turns out too low); 2 ms slices, 30 us switches;
  train   the torch training loop's shape (issue 18: charged 0.64-0.74 x on the H200 while coarse): a step of 20
          kernels of 2 ms queued ahead of the GPU, then 4000 of 5 us with 12 us of host time each (busy-waited),
          a sync per step, after ~1 s nearly idle (the credit fills: coarse measurement begins).
Runs of a case: `solo` (native, alone: the reference), `solo-b` (lbmixed: the second program alone), `native-pair`, `alone:L` (the library, limit L, `force`),
`pair:A+B` (the library, `default`), `pairf:A+B` (the library, `force`). HAMI_SM_PERIOD_MS=100 throughout. Figures of the fake on whatever machine
runs the bench (the loaded 2-core dev VM for the record in docs/results), never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/fake_sharing_cases.py --out /tmp/fsc.json --rounds 3 \\
        --md docs/results/2026-12-04-fake-graphs-and-pairs.md
"""

from __future__ import annotations

import argparse
import os
import re
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
from launch_path_cost import (  # noqa: E402 - the fake libcuda and driver_app
    add_record_args,
    add_round_args,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    write_record,
)
from turns import turn_stats  # noqa: E402 - the launch stats line's turns section (csrc/turns.c)

SLICED = {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"}
VERIFY_RE = re.compile(r"verifications (\d+), (\d+) charged the doubt \(([\d.]+) of ([\d.]+) ms\)")
SWITCH_RE = re.compile(r"switches charged ([\d.]+) ms, not ([\d.]+) ms \(demand alone ([\d.]+) %, neighbours "
                       r"([\d.]+) %\)")
STATS_RE = re.compile(r"launch stats: (\d+) measured launches \(([\d.]+) % coarse\).*?before the launch ([\d.]+), "
                      r"after the launch ([\d.]+)")


def case_program(case: str, seconds: float, graphs_switch_us: int) -> tuple[list[str], dict[str, str]]:
    """driver_app arguments and fake-device environment of a case."""
    secs = f"{seconds:g}"
    if case == "graphs":
        return (["graphs", "75", "2", "0", secs],
                {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": str(graphs_switch_us),
                 "FAKE_CUDA_SYNC_POLL_US": "10"})
    if case == "launch":
        return ["spin", "5", "20", secs, "195"], {**SLICED, "FAKE_CUDA_SYNC_POLL_US": "10"}
    if case == "lbpair":
        return ["spin", str(INFER_US), str(INFER_GAP_US), secs, "195"], {"FAKE_CUDA_SYNC_POLL_US": "10"}
    if case == "lbmixed":
        return ["spin", "2000", "0", secs, "4"], {"FAKE_CUDA_SYNC_POLL_US": "10"}
    if case == "lbhigh":
        return ["spin", "20", "12", secs, "195"], {**SLICED, "FAKE_CUDA_SYNC_POLL_US": "10"}
    if case == "lbmixeds":  # both tenants share the fake GPU's environment: the first program's
        return ["spin", "2000", "0", secs, "4"], {**SLICED, "FAKE_CUDA_SYNC_POLL_US": "10"}
    if case == "cupy":
        return ["spin", "1500", "0", secs, "1"], dict(SLICED)
    if case == "phases":
        n = max(1, round(seconds / 0.3))
        return ["spin", "3", "20", "0.15", "195", "spin", "12", "20", "0.15", "195"] * n, \
            {**SLICED, "FAKE_CUDA_SYNC_POLL_US": "10"}
    if case == "train":
        # a nearly idle second (the bucket fills, a window verifies: coarse begins), then the step
        return ["passes", "3", "3000", "0.8", "passes", TRAIN_STEP, "12", secs], \
            {**SLICED, "DRIVER_BUSY_GAP": "1"}
    raise ValueError(f"unknown case {case!r}")


#: the H200's small-batch inference loop (record 5: ~46 % busy alone, ~25 us of host time per launch, 195 launches a
#: pass): 10 us kernels with 12 us of host time after each; the fake's own busy share alone depends on the host
INFER_US, INFER_GAP_US = 10, 12
#: cases whose second tenant runs another program: lbmixed = a GPU-bound loop (2 ms kernels, a sync every 4: the
#: training tenant of the conformance behaviour isolation/work-conserving-sharing) beside the inference loop
SECOND = {"lbmixed": "lbpair", "lbmixeds": "lbpair"}
TRAIN_STEP = "20*2000,4000*5"  # test_interposer_coarse_training.py's step: GEMMs queued ahead, host-paced tiny ones
CASES = ("graphs", "launch", "lbpair", "lbhigh", "lbmixed", "lbmixeds", "cupy", "phases", "train")


def tenant_env(fake_dir: Path, lib: Path | None, tmp: Path, name: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CUDA_", "HAMI_", "LD_PRELOAD", "GPU_CORE", "FAKE_CUDA"))}
    ctr = tmp / name
    ctr.mkdir(parents=True, exist_ok=True)
    env.update(LD_LIBRARY_PATH=str(fake_dir), CUDA_DEVICE_MEMORY_SHARED_CACHE=str(ctr / "region"),
               HAMI_NODE_BOARD=str(tmp / "board"), FAKE_CUDA_GPU=str(tmp / "gpu"), HAMI_SM_PERIOD_MS="100",
               DRIVER_BUSY_GAP="1", HAMI_LAUNCH_STATS="1")
    if lib is not None:
        env["LD_PRELOAD"] = str(lib)
    env.update(extra)
    return env


def parse_run(kind: str) -> tuple[list[int | None], dict[str, str]]:
    """A run's tenants (their limits, None = native) and its policy environment."""
    if kind in ("solo", "solo-b"):
        return [None], {}
    if kind == "native-pair":
        return [None, None], {}
    what, _, lims = kind.partition(":")
    limits = [int(x) for x in lims.split("+")] if lims else []
    if not limits or any(not 1 <= x <= 99 for x in limits):
        raise ValueError(f"run {kind!r}: limits must be 1..99")
    if what == "alone" and len(limits) == 1:
        return limits, {"GPU_CORE_UTILIZATION_POLICY": "force"}
    if what == "pair" and len(limits) == 2:
        return limits, {"GPU_CORE_UTILIZATION_POLICY": "default"}
    if what == "pairf" and len(limits) == 2:
        return limits, {"GPU_CORE_UTILIZATION_POLICY": "force"}
    raise ValueError(f"run {kind!r}: expected solo, native-pair, alone:L, pair:A+B (default) or pairf:A+B (force)")


def run_once(app: Path, fake_dir: Path, lib: Path, case: str, kind: str, seconds: float,
             graphs_switch_us: int, lib_env: dict[str, str] | None = None) -> list[dict]:
    prog, fake_env = case_program(case, seconds, graphs_switch_us)
    progs = [prog, case_program(SECOND[case], seconds, graphs_switch_us)[0] if case in SECOND else prog]
    if kind == "solo-b":  # the second tenant's program alone: its own throughput reference
        progs = progs[1:]
    limits, policy = parse_run(kind)
    with tempfile.TemporaryDirectory(prefix="hami-fsc-") as d:
        tmp = Path(d)
        envs = []
        for n, lim in zip("ab", limits, strict=False):
            extra = {**fake_env, **policy}
            if lim is not None:
                extra["CUDA_DEVICE_SM_LIMIT"] = str(lim)
                extra.update(lib_env or {})
            envs.append(tenant_env(fake_dir, lib if lim is not None else None, tmp, n, extra))
        procs = [subprocess.Popen([str(app), "ctx", "0", *pr], env=e, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for e, pr in zip(envs, progs, strict=False)]
        res = []
        for p, env, lim, pr in zip(procs, envs, limits, progs, strict=False):
            out, err = p.communicate(timeout=120 + 4 * seconds)
            words = [ln.split() for ln in out.splitlines() if ln.startswith(pr[0] + " ")]
            if p.returncode != 0 or not words or words[-1][1] != "0":
                raise RuntimeError(f"driver_app failed ({p.returncode}): {err.strip()[:300]}")
            if any(w[1] != "0" for w in words):
                raise RuntimeError(f"driver_app: a command failed: {words}")
            # a program of several commands (phases): from the first's start to the last's end, summed
            t0, t1 = float(words[0][2]), float(words[-1][3])
            gpu_s, units = sum(float(w[4]) for w in words), sum(int(w[5]) for w in words)
            wall = t1 - t0
            switch_s = sum(float(w[6]) for w in words if len(w) > 6)
            row = {"limit": lim, "rate": units / wall, "gpu_pct": 100 * gpu_s / wall, "gpu_s": gpu_s,
                   "switch_pct": 100 * switch_s / wall}
            if lim is not None:
                with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
                    charged_s = reg.busy_ns(0) / 1e9
                row.update(charged_pct=100 * charged_s / wall,
                           charge_ratio=charged_s / gpu_s if gpu_s > 0 else 0.0,
                           charge_ratio_sw=charged_s / (gpu_s + switch_s) if gpu_s + switch_s > 0 else 0.0)
                m = STATS_RE.search(err)
                if m:
                    row.update(coarse_pct=float(m.group(2)), before_us=float(m.group(3)),
                               after_us=float(m.group(4)))
                sw = SWITCH_RE.search(err)
                if sw:
                    row.update(sw_charged_pct=100 * float(sw.group(1)) / 1e3 / wall,
                               sw_free_pct=100 * float(sw.group(2)) / 1e3 / wall,
                               solo_demand_pct=float(sw.group(3)), neighbours_pct=float(sw.group(4)))
                row.update(turn_stats(err))  # turns on, holds by another's window, credit holds (when present)
                v = VERIFY_RE.search(err)
                if v:
                    row.update(verifications=int(v.group(1)), doubt_charges=int(v.group(2)),
                               doubt_charged_pct=100 * float(v.group(3)) / 1e3 / wall)
            res.append(row)
        return res


def markdown(result: dict, note: str) -> str:
    lines = [f"# Issue 18's sharing cases on the fake libcuda ({result['date']}): raw table", "",
             "Simulated: the fake libcuda's shared GPU on the dev VM (not a hardware result). Command:", "",
             f"    {result['command']}", ""]
    if note:
        lines += [note, ""]
    lines += [f"Host: {result['host']}. {result['rounds']} rounds, runs interleaved; per tenant min-max (median). "
              "tput = throughput as % of the case's solo native median; GPU = share of the fake GPU's time it got "
              "(its kernels); sw = share spent switching into its context; "
              "charged = the library's charge as % of the window; c/G = charge / GPU time; c/(G+sw) = charge / (GPU "
              "time + switch-in time); coarse = % of launches "
              "measured coarsely; us = library host us per launch before + after the driver call (a held tenant's waits for "
              "credit included); doubt = coarse spans charged in full by failed verifications, % of the window; "
              "sw charged = switches into its context charged, % of the window; demand = its last estimate of its demand "
              "alone while shared (switch charging's rule; builds before 2026-12-05 report neither); turns on / held = how long "
              "it took turns and was held by another's window, ms (csrc/turns.c; '-' where its line has no turns "
              "section: turns off).", "",
              "| case | run | build | tenant | tput % | GPU % | sw % | charged % | c/G | c/(G+sw) | coarse % | us "
              "| doubt % | sw charged % | demand % | turns on ms | turns held ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def span(xs: list[float], fmt: str) -> str:
        xs = [x for x in xs if x is not None]
        if not xs:
            return "-"
        return f"{min(xs):{fmt}}-{max(xs):{fmt}} ({statistics.median(xs):{fmt}})"

    for row in result["rows"]:
        runs = row["runs"]
        for k in range(len(runs[0])):
            ts = [r[k] for r in runs]
            us = [t["before_us"] + t["after_us"] if "before_us" in t else None for t in ts]
            lines.append(f"| {row['case']} | {row['run']} | {row['build']} | {'ab'[k]} "
                         f"| {span([t['tput'] for t in ts], '.1f')} | {span([t['gpu_pct'] for t in ts], '.1f')} "
                         f"| {span([t.get('switch_pct') for t in ts], '.1f')} "
                         f"| {span([t.get('charged_pct') for t in ts], '.1f')} "
                         f"| {span([t.get('charge_ratio') for t in ts], '.2f')} "
                         f"| {span([t.get('charge_ratio_sw') for t in ts], '.2f')} "
                         f"| {span([t.get('coarse_pct') for t in ts], '.0f')} | {span(us, '.2f')} "
                         f"| {span([t.get('doubt_charged_pct') for t in ts], '.1f')} "
                         f"| {span([t.get('sw_charged_pct') for t in ts], '.1f')} "
                         f"| {span([t.get('solo_demand_pct') for t in ts], '.0f')} "
                         f"| {span([t.get('turns_on_ms') for t in ts], '.0f')} "
                         f"| {span([t.get('turn_held_ms') for t in ts], '.0f')} |")
        if len(runs[0]) == 2:
            lines.append(f"| {row['case']} | {row['run']} | {row['build']} | sum "
                         f"| {span([r[0]['tput'] + r[1]['tput'] for r in runs], '.1f')} "
                         f"| {span([r[0]['gpu_pct'] + r[1]['gpu_pct'] for r in runs], '.1f')} "
                         f"| {span([r[0].get('switch_pct', 0) + r[1].get('switch_pct', 0) for r in runs], '.1f')} "
                         f"| {span([(r[0].get('charged_pct') or 0) + (r[1].get('charged_pct') or 0) for r in runs], '.1f')}"
                         " | | | | | | | | | |")
    return "\n".join(lines) + "\n"


DEFAULT_RUNS = {
    "graphs": "solo,native-pair,alone:50,pair:30+70,pair:50+50",
    "launch": "solo,native-pair,pair:50+50",
    "lbpair": "solo,native-pair,pair:50+50,pair:30+70",
    "lbmixed": "solo,solo-b,native-pair,pair:50+50",
    "lbmixeds": "solo,solo-b,native-pair,pair:50+50",
    "lbhigh": "solo,native-pair,pair:50+50",
    "cupy": "solo,native-pair,pair:30+70",
    "phases": "solo,alone:70,native-pair,pair:50+50",
    "train": "solo,alone:50,alone:70",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    ap.add_argument("--runs", action="append", default=[],
                    help="CASE=RUN,RUN,... (runs: solo, solo-b, native-pair, alone:L, pair:A+B, pairf:A+B); default per case: "
                         + "; ".join(f"{c}={r}" for c, r in DEFAULT_RUNS.items()))
    ap.add_argument("--lib-env", action="append", default=[],
                    help="NAME:KEY=VALUE: an environment variable for the tenants of build NAME (repeatable)")
    ap.add_argument("--graphs-switch-us", type=int, default=130,
                    help="context switch cost of the graphs case (us; 0-2000)")
    a = ap.parse_args()
    check_round_args(ap, a)
    if not 0 <= a.graphs_switch_us <= 2000:
        ap.error(f"--graphs-switch-us {a.graphs_switch_us}: must be 0..2000")
    cases = [c for c in a.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            ap.error(f"--cases: unknown case {c!r} (known: {', '.join(CASES)})")
    runs = dict(DEFAULT_RUNS)
    for spec in a.runs:
        c, _, rs = spec.partition("=")
        if c not in CASES or not rs:
            ap.error(f"--runs {spec!r}: expected CASE=RUN,... with CASE one of {', '.join(CASES)}")
        runs[c] = rs
    plan = []
    for c in cases:
        kinds = [k for k in runs[c].split(",") if k]
        if "solo" not in kinds:
            kinds.insert(0, "solo")  # the reference every throughput is divided by
        for k in kinds:
            try:
                parse_run(k)
            except ValueError as exc:
                ap.error(f"--runs: {exc}")
            plan.append((c, k))
    with tempfile.TemporaryDirectory(prefix="hami-fsc-build-") as d:
        out = Path(d)
        fake_dir, app = build_tools(out)
        libs = build_libs(ap, a.lib, out)
        first = next(iter(libs))
        lib_envs: dict[str, dict[str, str]] = {n: {} for n in libs}
        for spec in a.lib_env:
            name, _, kv = spec.partition(":")
            key, eq, val = kv.partition("=")
            if name not in libs or not eq or not key.startswith(("HAMI_", "GPU_CORE_", "CUDA_")):
                ap.error(f"--lib-env {spec!r}: expected NAME:KEY=VALUE with NAME a --lib and KEY a HAMI_, "
                         "GPU_CORE_ or CUDA_ variable")
            lib_envs[name][key] = val
        rows: dict[tuple[str, str, str], list] = {}
        for _ in range(a.rounds):
            for case, kind in plan:
                native = kind in ("solo", "solo-b", "native-pair")
                for name, lib in libs.items():
                    if native and name != first:
                        continue
                    rows.setdefault((case, kind, "native" if native else name), []).append(
                        run_once(app, fake_dir, lib, case, kind, a.seconds, a.graphs_switch_us, lib_envs[name]))
    for case in cases:
        solo = statistics.median(r[0]["rate"] for r in rows[(case, "solo", "native")])
        second = (case, "solo-b", "native")  # the second tenant's own reference, where it runs another program
        solos = [solo, statistics.median(r[0]["rate"] for r in rows[second]) if second in rows else solo]
        for (c, k, _), runs_ in rows.items():
            if c == case:
                for r in runs_:
                    for i, t in enumerate(r):
                        t["tput"] = 100 * t["rate"] / solos[1 if k == "solo-b" else i]
    result = {**record_head(a, seconds=a.seconds, graphs_switch_us=a.graphs_switch_us),
              "rows": [{"case": c, "run": k, "build": n, "runs": rs} for (c, k, n), rs in rows.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
