"""Tenants steering coarse measurement on the fake libcuda (issue 18 hardening): the GPU share each gets alone at
a `force` limit and what the library charges it against the GPU time the fake gave it.

Coarse launches are charged the average per launch of the last precise verification window. A tenant that tells
the two modes apart can show the windows tiny kernels with host gaps (which "explain" a large doubt) and run long
kernels while it is measured coarsely. The attackers (driver_app `steer`; each starts with 0.8 s nearly idle, so
its bucket fills and coarse measurement begins, not counted):
  oracle-K  tells the modes apart by the library's event records per launch (a tenant that wraps its own libcuda
            sees them): K us kernels back to back while coarse (a sync every ~1 ms), 1 us kernels each followed
            by 2/3 K us of host time while precise;
  after-K   like oracle-K, but in each coarse phase tiny kernels (with the gap) until it sees a random sample
            taken (two or more records in one launch), long ones only after it;
  timing-50 the same with 50 us kernels, telling the modes apart by its launch calls' own host time (the median of
            8 above 350 ns: precise; below 300: coarse; tuned on this VM);
  blind-50  no oracle: 98 ms of 50 us kernels, then 10 ms of the tiny ones, over and over (it falls into step with
            a fixed 100 ms phase by itself);
  audit2    the pattern of tests/interposer/test_interposer_coarse_attack.py (10 ms of 3 us kernels, then 88 ms
            of 1 ms kernels synced one by one).
Figures of the fake on whatever machine runs the bench (the loaded 2-core dev VM for the record in docs/results),
never hardware figures. The share is the fake's own accounting of the process's GPU time (fake_gpu_ns) over the
attack's wall time; `charged / GPU` is the region's busy time (warm-up included: a few ms) over that GPU time.

    .venv/bin/python hami_plugins_nvidia/bench/coarse_steer.py --out /tmp/steer.json --rounds 3 \\
        --lib main=/tmp/main-csrc --lib sampled=hami_plugins_nvidia/hami_plugins_nvidia/csrc --md docs/results/X.md
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
    base_env,
    build_libs,
    build_tools,
    check_round_args,
    record_head,
    write_record,
)

WARM = ["spin", "3", "3000", "0.8", "1000"]  # nearly idle: the bucket fills, a window verifies, coarse begins
STATS_RE = re.compile(r"launch stats: (\d+) measured launches \(([\d.]+) % coarse\)")


def attack_args(name: str, secs: float) -> list[str]:
    """driver_app arguments of an attacker (after the warm-up)."""
    s = f"{secs:g}"
    if name.startswith(("oracle-", "after-")):
        k = int(name.split("-")[1])
        return ["steer", "calls" if name.startswith("oracle-") else "after", str(k), str(max(1, 1000 // k)), "1", str(max(1, 2 * k // 3 + 7)), s, "0", "0"]
    if name == "timing-50":
        return ["steer", "time", "50", "20", "1", "40", s, "350", "300"]
    if name == "blind-50":
        return ["steer", "clock", "50", "20", "1", "40", s, "98", "10"]
    if name == "audit2":
        out: list[str] = []
        for _ in range(max(1, round(secs / 0.098))):
            out += ["spin", "3", "0", "0.010", "1000", "spin", "1000", "0", "0.088", "1"]
        return out
    raise ValueError(f"unknown attacker {name!r}")


ATTACKERS = ("oracle-50", "oracle-200", "oracle-1000", "after-50", "after-1000", "timing-50", "blind-50", "audit2")


def run_once(app: Path, fake_dir: Path, lib: Path, tmp: Path, tag: str, attacker: str, limit: int,
             secs: float) -> dict[str, float]:
    env = base_env(fake_dir, tmp, tag)
    env.update(LD_PRELOAD=str(lib), FAKE_CUDA_GPU=str(tmp / tag / "gpu"), GPU_CORE_UTILIZATION_POLICY="force",
               HAMI_SM_PERIOD_MS="100", CUDA_DEVICE_SM_LIMIT=str(limit), HAMI_LAUNCH_STATS="1")
    p = subprocess.run([str(app), "ctx", "0", *WARM, *attack_args(attacker, secs)], env=env, capture_output=True,
                       text=True, timeout=120 + 4 * secs)
    rows = [ln.split() for ln in p.stdout.splitlines() if ln.startswith(("spin ", "steer "))]
    if p.returncode != 0 or len(rows) < 2 or any(w[1] != "0" for w in rows):
        raise RuntimeError(f"driver_app failed ({p.returncode}): {p.stderr.strip()[-300:]}")
    warm, attack = rows[0], rows[1:]
    wall = float(attack[-1][3]) - float(attack[0][2])
    gpu = sum(float(w[4]) for w in attack)
    with region.SharedRegion(env["CUDA_DEVICE_MEMORY_SHARED_CACHE"]) as reg:
        charged = reg.busy_ns(0) / 1e9
    m = STATS_RE.search(p.stderr)
    return {"share_pct": 100 * gpu / wall, "charge_ratio": charged / (gpu + float(warm[4])),
            "coarse_pct": float(m.group(2)) if m else -1.0, "wall_s": wall}


def markdown(result: dict, note: str) -> str:
    lines = [f"# Steering attackers against coarse measurement on the fake libcuda ({result['date']})", "",
             "Simulated: the fake libcuda's GPU on the dev VM (not a hardware result). Command:", "",
             f"    {result['command']}", "", f"Host: {result['host']}. {note}".rstrip(), "",
             f"Alone, limit {result['limit']} % `force`, {result['seconds']:g} s per attack, {result['rounds']} "
             "rounds: GPU share (% of the attack's wall time), charged / GPU time, % of launches measured "
             "coarsely; min-max over the rounds.", "",
             "| attacker | build | share % | charged / GPU | coarse % |", "|---|---|---|---|---|"]

    def span(xs: list[float], fmt: str) -> str:
        return f"{min(xs):{fmt}}-{max(xs):{fmt}}" if len(xs) > 1 else f"{xs[0]:{fmt}}"

    for row in result["rows"]:
        rs = row["runs"]
        lines.append(f"| {row['attacker']} | {row['build']} | {span([r['share_pct'] for r in rs], '.1f')} | "
                     f"{span([r['charge_ratio'] for r in rs], '.2f')} | {span([r['coarse_pct'] for r in rs], '.0f')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_record_args(ap)
    add_round_args(ap)
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--attackers", default=",".join(ATTACKERS), help="comma-separated: " + ", ".join(ATTACKERS))
    a = ap.parse_args()
    check_round_args(ap, a)
    if not 1 <= a.limit <= 99:
        ap.error(f"--limit {a.limit}: must be 1..99")
    attackers = [x for x in a.attackers.split(",") if x]
    for x in attackers:
        if x not in ATTACKERS:
            ap.error(f"--attackers: unknown attacker {x!r} (known: {', '.join(ATTACKERS)})")
    with tempfile.TemporaryDirectory(prefix="hami-steer-") as d:
        tmp = Path(d)
        fake_dir, app = build_tools(tmp / "tools")
        libs = build_libs(ap, a.lib, tmp / "lib")
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        n = 0
        for rnd in range(a.rounds):
            order = [(x, name) for x in attackers for name in libs]
            if rnd % 2:
                order.reverse()  # drift on the box hits every build alike
            for x, name in order:
                n += 1
                r = run_once(app, fake_dir, libs[name], tmp, f"t{n}", x, a.limit, a.seconds)
                runs.setdefault((x, name), []).append(r)
                print(f"{x:12s} {name:10s} share {r['share_pct']:5.1f} % charged/GPU {r['charge_ratio']:.2f} "
                      f"coarse {r['coarse_pct']:.0f} %", file=sys.stderr)
    result = {**record_head(a, seconds=a.seconds, limit=a.limit),
              "rows": [{"attacker": x, "build": name, "runs": rs,
                        "share_median": round(statistics.median(r["share_pct"] for r in rs), 1),
                        "charge_ratio_median": round(statistics.median(r["charge_ratio"] for r in rs), 2)}
                       for (x, name), rs in runs.items()]}
    return write_record(a, result, markdown(result, a.note))


if __name__ == "__main__":
    sys.exit(main())
