"""How long the `default` policy takes to cap a tenant when a neighbour arrives and to release it when the
neighbour leaves (issue 18's target: within 1 s each), on the fake libcuda.

A (limit --limits' first) runs alone, traced every 50 ms; B (the second limit) starts --arrive seconds later,
runs --busy seconds and exits. Each runs a GPU-bound loop by default (PROGRAMS) or K/G/S. With --warm B first
runs that long beside A and then idles until it arrives: the H200 policy timeline's workers do their warm-up
steps at start and then wait ~15 s for their start time, so B comes back from a long idle spell. From A's trace: its share of the fake GPU alone (the window before
B), then "capped" = the end of the first 100 ms window after B's first launch in which A's share is at most its
limit + 5 points, and "released" = the end of the first 100 ms window after B's exit in which A's share is at
least 90 % of its share alone. Figures of the fake on whatever machine runs it (the loaded 2-core dev VM for
the record in docs/results), never hardware.

    .venv/bin/python hami_plugins_nvidia/bench/policy_latency.py --out /tmp/pl.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib fix=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_sharing_cases import tenant_env  # noqa: E402
from launch_path_cost import (  # noqa: E402
    add_record_args,
    add_round_args,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    write_record,
)

MODES = {"fluid": {}, "slices": {"FAKE_CUDA_SLICE_US": "2000", "FAKE_CUDA_SWITCH_US": "30"}}
BIN_MS = 50
WINDOW_BINS = 2  # 100 ms windows
CAP_TOLERANCE = 5.0  # points over the limit that still count as capped (issue18_judge's tolerance)
RELEASE_OF_ALONE = 0.9
# {s}: seconds. "bound": 2 ms kernels, a sync every 4 (the H200 timelines' GPU-bound training loop, on the fake);
# any other program as K/G/S (prog_arg)
PROGRAMS = {"bound": ("spin", "2000", "0", "{s}", "4")}


def program(name: str, secs: float, traced: bool) -> list[str]:
    """driver_app words of a PROGRAMS name or of K/G/S (K us kernels, G us of host time after each launch, a sync
    every S launches)."""
    if name in PROGRAMS:
        words = [w.format(s=f"{secs:g}") for w in PROGRAMS[name]]
    else:
        k, g, s = name.split("/")
        words = ["spin", k, g, f"{secs:g}", s]
    return ["trace", *words[1:], str(BIN_MS)] if traced else words


def prog_arg(v: str) -> str:
    """A program name or K/G/S, bounded (argparse turns the ValueError into one usage line)."""
    parts = v.split("/")
    if v in PROGRAMS or (len(parts) == 3 and all(p.isdigit() for p in parts) and 1 <= int(parts[0]) <= 100000
                         and int(parts[1]) <= 100000 and 1 <= int(parts[2]) <= 100000):
        return v
    raise ValueError(v)


def windows(trace: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(end time, % of the fake GPU A got in the WINDOW_BINS bins ending there)."""
    out = []
    for (ta, ga), (tb, gb) in zip(trace, trace[WINDOW_BINS:], strict=False):
        if tb > ta:
            out.append((tb, 100 * (gb - ga) / (tb - ta)))
    return out


def latencies(trace: list[tuple[float, float]], b_start: float, b_end: float, limit: int) -> dict[str, float | None]:
    """A's share alone, and seconds from B's start to A capped and from B's exit to A released (None: never)."""
    win = windows(trace)
    alone = [s for t, s in win if trace[0][0] + 0.3 <= t <= b_start]
    solo = statistics.median(alone) if alone else 0.0
    cap = next((t - b_start for t, s in win if t - 0.1 >= b_start and s <= limit + CAP_TOLERANCE), None)
    rel = next((t - b_end for t, s in win if t - 0.1 >= b_end and s >= RELEASE_OF_ALONE * solo), None)
    early = [v for t, v in win if b_start + 0.1 <= t <= b_start + 0.3]
    return {"alone_pct": round(solo, 1), "first_300ms_max_pct": round(max(early), 1) if early else None,
            "capped_s": None if cap is None else round(cap, 3),
            "released_s": None if rel is None else round(rel, 3)}


def run_once(app: Path, fake_dir: Path, lib: Path, tmp: Path, a: argparse.Namespace) -> dict[str, float | None]:
    la, lb = a.lim
    total = a.arrive + a.busy + a.linger + a.after
    fake = MODES[a.mode]
    env_a = tenant_env(fake_dir, lib, tmp, "a", {**fake, "CUDA_DEVICE_SM_LIMIT": str(la), "GPU_CORE_UTILIZATION_POLICY":
                                                 "default", "HAMI_LAUNCH_STATS": "0"})
    env_b = tenant_env(fake_dir, lib, tmp, "b", {**fake, "CUDA_DEVICE_SM_LIMIT": str(lb), "GPU_CORE_UTILIZATION_POLICY":
                                                 "default", "HAMI_LAUNCH_STATS": "0"})
    pa = subprocess.Popen([str(app), "ctx", "0", *program(a.a_prog, total, True)], env=env_a,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # --warm: B first runs its program alongside A (the H200 workers' warm-up steps, done before they wait for
    # their start time), then idles until it arrives
    warm = [*program(a.b_prog, a.warm, False)] if a.warm else []
    pb = subprocess.Popen([str(app), "ctx", "0", *warm, "sleep", str(int((a.arrive - a.warm) * 1000)),
                           *program(a.b_prog, a.busy, False),
                           *(["ctxreset", "0"] if a.reset else []), "sleep", str(int(a.linger * 1000))],
                          env=env_b, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_b, err_b = pb.communicate(timeout=120)
    out_a, err_a = pa.communicate(timeout=120)
    words_b = ([ln.split() for ln in out_b.splitlines() if ln.startswith("spin ")] or [None])[-1]
    words_a = next((ln.split() for ln in out_a.splitlines() if ln.startswith("trace ")), None)
    if pb.returncode or pa.returncode or not words_a or not words_b or words_a[1] != "0" or words_b[1] != "0":
        raise RuntimeError(f"driver_app failed: A {pa.returncode} {err_a.strip()[:200]}; B {pb.returncode} "
                           f"{err_b.strip()[:200]}")
    vals = [float(x) for x in words_a[2:]]
    trace = list(zip(vals[0::2], vals[1::2], strict=True))
    b_start, b_end = float(words_b[2]), float(words_b[3])
    if a.timeline:
        print(" ".join(f"{t - b_start:+.1f}:{v:.0f}" for t, v in windows(trace)[::WINDOW_BINS]), flush=True)
    return latencies(trace, b_start, b_end, la)


def markdown(result: dict, note: str) -> str:
    lines = [f"# `default` policy: cap and release latency, fake libcuda ({result['date']}): raw table", "",
             f"Host: {result['host']} (the fake libcuda, not a GPU). Command: `{result['command']}`", ""]
    if note:
        lines += [note, ""]
    lines += ["| build | A alone % | A's highest 100 ms share in B's first 300 ms, % | capped after, s (median) "
              "| released after, s (median) |", "|---|---|---|---|---|"]
    for name, runs in result["builds"].items():
        def col(k: str, rs: list = runs) -> str:
            v = [r[k] for r in rs]
            known = [x for x in v if x is not None]
            med = f"{statistics.median(known):.2f}" if len(known) == len(v) else "never"
            return ", ".join("never" if x is None else f"{x:.2f}" for x in v) + f" ({med})"
        lines.append(f"| {name} | {', '.join(str(r['alone_pct']) for r in runs)} | "
                     f"{', '.join(str(r['first_300ms_max_pct']) for r in runs)} | {col('capped_s')} | "
                     f"{col('released_s')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap, seconds=False)
    ap.add_argument("--limits", default="30+70", help="A + B limits, percent")
    ap.add_argument("--a-prog", default="bound", type=prog_arg, help=f"{', '.join(PROGRAMS)} or K/G/S")
    ap.add_argument("--b-prog", default="bound", type=prog_arg, help=f"{', '.join(PROGRAMS)} or K/G/S")
    ap.add_argument("--timeline", action="store_true", help="print A's share per 100 ms (seconds from B's start)")
    ap.add_argument("--mode", default="slices", choices=sorted(MODES), help="the fake GPU's sharing model")
    ap.add_argument("--warm", type=float, default=0.0, help="seconds B runs at the start, before it idles")
    ap.add_argument("--reset", action="store_true", help="B resets its primary context after its work")
    ap.add_argument("--linger", type=float, default=0.0, help="seconds B stays alive, idle, after its work")
    ap.add_argument("--arrive", type=float, default=1.5, help="seconds A runs alone first")
    ap.add_argument("--busy", type=float, default=3.0, help="seconds B runs")
    ap.add_argument("--after", type=float, default=2.0, help="seconds A runs after B")
    a = ap.parse_args()
    check_round_args(ap, a)
    try:
        a.lim = tuple(int(x) for x in a.limits.split("+"))
    except ValueError:
        a.lim = ()
    if len(a.lim) != 2 or not all(1 <= x <= 99 for x in a.lim) or sum(a.lim) > 100:
        ap.error(f"--limits {a.limits!r}: two limits of 1..99 adding up to at most 100")
    if not 0 <= a.linger <= 10:
        ap.error(f"--linger {a.linger}: must be 0..10 seconds")
    for k in ("arrive", "busy", "after"):
        if not 0.5 <= getattr(a, k) <= 20:
            ap.error(f"--{k} {getattr(a, k)}: must be 0.5..20 seconds")
    with tempfile.TemporaryDirectory(prefix="hami-pol-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        libs = build_libs(ap, a.lib, tmp / "lib")
        builds: dict[str, list] = {name: [] for name in libs}
        n = 0
        for rnd in range(a.rounds):
            for name in (list(libs) if rnd % 2 == 0 else list(reversed(libs))):
                n += 1
                run_dir = tmp / f"r{n}"
                run_dir.mkdir()
                got = run_once(app, fake_dir, libs[name], run_dir, a)
                print(f"round {rnd} {name}: {got}", flush=True)
                builds[name].append(got)
    result = record_head(a, limits=a.limits, a_prog=a.a_prog, b_prog=a.b_prog, arrive_s=a.arrive, busy_s=a.busy,
                         builds=builds)
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    raise SystemExit(main())
