"""A launch-bound tenant alone far below its limit, with host pauses between bursts, on the fake libcuda (issue 18,
record 14: the H100's inference loop at 70 %, 25 % busy, alone in bench/launch_cost.py's paired windows, was held 23
times for 15.5 s "with nothing queued" after verifications charged 12.5 s of coarse doubt; pausegap).

Each run is one fresh container, alone, at --limit: driver_app `bursts`: --bursts bursts of --burst-ms each of the
inference loop's shape (--per kernels of --us microseconds, --gap-us of host time after each, a sync per step), every
burst followed by a host pause of --pause-ms without launches: `stop` (SIGSTOP, continued by a child: the paired
windows, a container's CPU quota, a debugger), `sleep` (idle between requests) or `busy` (a host computation). Per
run: the fake's GPU time in the run, what the library charged the container, their ratio, and from the launch stats
line the holds, their time, and the coarse doubt verifications charged. Builds run interleaved (ABAB, then BABA).
Figures of the fake on whatever machine runs it (the loaded 2-core dev VM for the record), never hardware figures.

    .venv/bin/python hami_plugins_nvidia/bench/pause_gap.py --out /tmp/pg.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib pausegap=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hami_plugins_nvidia" / "interposer"))
sys.path.insert(0, str(HERE))

import region  # noqa: E402 - the region layout, read through cffi
from launch_path_cost import (  # noqa: E402
    add_record_args,
    add_round_args,
    alternating,
    base_env,
    build_libs,
    build_tools,
    check_round_args,
    parse_cases,
    record_head,
    record_title,
    write_record,
)

MODES = ("stop", "stopq", "sleep", "busy", "none")
POLICIES = ("force", "default")
HELD_RE = re.compile(r"held (\d+) times, ([\d.]+) ms")
DOUBT_RE = re.compile(r"verifications (\d+), (\d+) charged the doubt \(([\d.]+) of ([\d.]+) ms\)")


def bursts_args(a: argparse.Namespace, mode: str) -> list[str]:
    """driver_app arguments: `none` is one burst as long as all the others' bursts together (no pause)."""
    n, pause = (1, 0) if mode == "none" else (a.bursts, a.pause_ms)
    burst = a.burst_ms * (a.bursts if mode == "none" else 1)
    # the first launches and an idle spell first: a fresh container's start (its first credit) is not the case
    return ["ctx", "0", "launch", "kernel", "20", "10", "sleep", "300", "bursts", str(a.us), str(a.gap_us), str(a.per), str(burst), str(pause),
            "sleep" if mode == "none" else mode, str(n)]


def run_once(app: Path, fake_dir: Path, lib: Path, tmp: Path, tag: str, a: argparse.Namespace, case: str) -> dict:
    policy, mode = case.split("-")
    env = base_env(fake_dir, tmp, tag)
    env.update(FAKE_CUDA_GPU=str(tmp / tag / "gpu"), GPU_CORE_UTILIZATION_POLICY=policy, HAMI_LAUNCH_STATS="1",
               LD_PRELOAD=str(lib), CUDA_DEVICE_SM_LIMIT=str(a.limit))
    p = subprocess.run([str(app), *bursts_args(a, mode)], env=env, capture_output=True, text=True,
                       timeout=120 + a.bursts * (a.burst_ms + a.pause_ms) / 500)
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.startswith(("launch ", "bursts "))]
    if p.returncode != 0 or len(rows) != 2 or any(w[1] != "0" for w in rows):
        raise RuntimeError(f"driver_app failed ({p.returncode}): {p.stdout.strip()[-200:]} {p.stderr.strip()[-300:]}")
    first, w = rows
    wall, gpu, active = float(w[3]) - float(w[2]), float(w[4]), float(w[6])
    slow, slow_s = int(w[7]), float(w[8])  # launch calls over 5 ms (held, as the program saw them)
    with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
        charged = reg.busy_ns(0) / 1e9 - float(first[4])  # less the first launches' GPU time (0.2 ms)
    out = {"wall_s": round(wall, 4), "active_s": round(active, 4), "gpu_s": round(gpu, 5),
           "charged_s": round(charged, 5), "ratio": round(charged / gpu, 4) if gpu > 0 else None,
           "busy_pct": round(100 * gpu / active, 2) if active > 0 else None, "slow_calls": slow,
           "slow_calls_s": round(slow_s, 4)}
    stats = [ln for ln in p.stderr.splitlines() if "launch stats:" in ln]
    if stats:
        m, d = HELD_RE.search(stats[-1]), DOUBT_RE.search(stats[-1])
        if m:
            out.update(held=int(m.group(1)), held_ms=float(m.group(2)))
        if d:
            out.update(verifications=int(d.group(1)), doubt_charged=int(d.group(2)),
                       doubt_charged_ms=float(d.group(3)), doubt_ms=float(d.group(4)))
        out["stats"] = stats[-1].split("launch stats: ", 1)[1]
    return out


def markdown(result: dict, note: str) -> str:
    c = result["case"]
    lines = [*record_title("A launch-bound tenant alone with host pauses", result, note),
             f"Alone at limit {c['limit']} %: {c['bursts']} bursts of {c['burst_ms']} ms (steps of {c['per']} kernels "
             f"of {c['us']} us, {c['gap_us']} us of busy host time after each, a sync per step), each followed by a "
             f"{c['pause_ms']} ms pause (none: one burst as long as all of them). ratio = charged / the fake's GPU "
             "time; held = the launch stats line's holds (the first launches' included: a fresh container's start); slow "
             "calls = the burst launch calls over 5 ms as the program saw them; doubt = what verifications charged "
             "of the coarse doubt.", "",
             "| case | build | round | busy % | GPU s | charged s | ratio | held | held ms | slow calls (s) | doubt charged ms (of) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['case']} | {r['build']} | {r['round']} | {r['busy_pct']} | {r['gpu_s']:.4f} | "
                     f"{r['charged_s']:.4f} | {r['ratio']} | {r.get('held', '-')} | {r.get('held_ms', '-')} | "
                     f"{r['slow_calls']} ({r['slow_calls_s']:.3f}) | "
                     f"{r.get('doubt_charged_ms', '-')} ({r.get('doubt_ms', '-')}) |")
    lines += ["", "| case | build | ratio median (min-max) | held median (min-max) | doubt charged ms median |",
              "|---|---|---|---|---|"]
    for case in c["cases"]:
        for name in result["builds"]:
            rs = [r for r in result["runs"] if r["case"] == case and r["build"] == name]
            q = [r["ratio"] for r in rs]
            h = [r.get("held", 0) for r in rs]
            dc = [r.get("doubt_charged_ms", 0) for r in rs]
            lines.append(f"| {case} | {name} | {statistics.median(q):.3f} ({min(q):.3f}-{max(q):.3f}) | "
                         f"{statistics.median(h):g} ({min(h)}-{max(h)}) | {statistics.median(dc):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap, seconds=False)
    ap.add_argument("--limit", type=int, default=70)
    ap.add_argument("--cases", default="force-stop,force-sleep,force-busy,default-stop",
                    help="POLICY-MODE, comma-separated: policy force|default, mode stop|sleep|busy|none")
    ap.add_argument("--bursts", type=int, default=8)
    ap.add_argument("--burst-ms", type=int, default=250)
    ap.add_argument("--pause-ms", type=int, default=500)
    ap.add_argument("--us", type=int, default=5, help="kernel length (us)")
    ap.add_argument("--gap-us", type=int, default=12, help="busy host time after each launch (us)")
    ap.add_argument("--per", type=int, default=195, help="launches per step (a sync each)")
    a = ap.parse_args()
    check_round_args(ap, a)
    allowed = [f"{p}-{m}" for p in POLICIES for m in MODES]
    cases = parse_cases(ap, a.cases, allowed)
    for name, v, lo, hi in (("--limit", a.limit, 1, 99), ("--bursts", a.bursts, 1, 100),
                            ("--burst-ms", a.burst_ms, 10, 5000), ("--pause-ms", a.pause_ms, 0, 5000),
                            ("--us", a.us, 1, 100000), ("--gap-us", a.gap_us, 0, 100000), ("--per", a.per, 1, 8192)):
        if not lo <= v <= hi:
            ap.error(f"{name} {v}: must be {lo}..{hi}")
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hami-pause-gap-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        libs = build_libs(ap, a.lib, tmp / "lib")
        for n, case, name in alternating(a.rounds, cases, list(libs)):
            r = run_once(app, fake_dir, libs[name], tmp, f"t{n}", a, case)
            r.update(case=case, build=name, round=(n - 1) // (len(cases) * len(libs)) + 1)
            runs.append(r)
            print(f"{case:14s} {name:10s} busy {r['busy_pct']}% ratio {r['ratio']} held {r.get('held')} "
                  f"({r.get('held_ms')} ms) doubt charged {r.get('doubt_charged_ms')} of {r.get('doubt_ms')} ms",
                  file=sys.stderr)
    result = {**record_head(a), "case": {"limit": a.limit, "cases": cases, "bursts": a.bursts,
                                         "burst_ms": a.burst_ms, "pause_ms": a.pause_ms, "us": a.us,
                                         "gap_us": a.gap_us, "per": a.per},
              "builds": list(libs), "runs": runs}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
