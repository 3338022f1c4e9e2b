"""How tight the offline upper bound is: the bound against a real offline placement of the same pods.

For each variant and seed, the pods arrived by 100 % (and 130 %) get

- the offline upper bound (:func:`hami_scheduler.sim.bound.gpu_upper_bound`): no placement allocates more;
- an offline placement found with hindsight: the pods the bound's LP places (its primal, rounded) go
  first, largest first, then the rest (or simply every pod largest first), through the simulator's own
  cluster (every node, CPU, memory, model and per-GPU check applies) with each listed policy; the best
  is an achievable allocation, so the optimum lies between it and the bound.

    python scheduler/benchmarks/bound_gap.py --variants all --seeds 42-44 --out docs/results/<date>-sched-offline-bound-gap
Writes ``<out>.json`` and ``<out>.md`` when ``--out`` is given; prints the table. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from hami_scheduler.policies import make_policy
from hami_scheduler.sim import bound as lp
from hami_scheduler.sim.cluster import SimCluster
from hami_scheduler.sim.run import prepare_run, shape_of
from hami_scheduler.sim.trace import VARIANTS, TracePod, default_trace_dir
from hami_scheduler.sim.workload import class_memory, target_workload


def arrived_by_100(order: list[TracePod], total_gpus: int) -> list[TracePod]:
    """The pods arrived by the end of arrival bin 100 (simulate_one's rule for ``bound_100``)."""
    arrived = kept = 0
    for k, pod in enumerate(order):
        arrived += pod.gpu_request_milli
        if int(arrived / total_gpus / 10 + 0.5) <= 100:
            kept = k + 1
    return order[:kept]


def offline_placement(nodes, pods: list[TracePod], policy_name: str, placed_per_class: dict) -> int:
    """GPU milli one hindsight placement allocates: LP-chosen pods first, largest first, then the rest
    (with an empty ``placed_per_class``: every pod largest first)."""
    pods = [p for p in pods if p.num_gpu and p.gpu_milli]  # CPU-only pods allocate no GPU: left out
    want = dict(placed_per_class)
    chosen, rest = [], []
    for p in pods:
        key = next(iter(lp.pod_classes([p])), None)
        if key is not None and want.get(key, 0) > 0:
            want[key] -= 1
            chosen.append(p)
        else:
            rest.append(p)

    def largest_first(p: TracePod) -> tuple:
        return (-p.num_gpu, -p.gpu_milli, -p.cpu_milli)

    policy = make_policy(policy_name)
    capacity: dict[str, int] = {}
    for n in nodes:
        capacity[n.model] = capacity.get(n.model, 0) + n.gpus
    policy.prepare(target_workload(pods), class_memory(pods), capacity)
    cluster = SimCluster(nodes, policy, random.Random(0), "first")
    used = 0
    for p in sorted(chosen, key=largest_first) + sorted(rest, key=largest_first):
        if cluster.schedule(shape_of(p)) is not None:
            used += p.gpu_request_milli
    return used


def measure(trace_dir: str, variant: str, seed: int, policies: list[str]) -> dict:
    nodes, order, _cluster = prepare_run(trace_dir, variant, "fgd", seed)
    total = sum(n.gpus for n in nodes) * 1000
    row: dict = {"variant": variant, "seed": seed}
    for label, pods in (("100", arrived_by_100(order, total // 1000)), ("130", order)):
        start = time.perf_counter()
        rel = lp.build(tuple(nodes), lp.pod_classes(pods))
        lam, pi, placed = lp.solve_lp(rel)
        bound = min(lp.lagrangian_bound(rel, lam, pi), float(rel.u @ rel.g), float(total))
        row[f"bound_{label}_s"] = round(time.perf_counter() - start, 3)
        row[f"bound_{label}"] = round(100 * bound / total, 3)
        per_class = {c: int(round(x)) for c, x in zip(rel.classes, placed, strict=True)}
        found = {f"{p}, {how}": offline_placement(nodes, pods, p, chosen)
                 for p in policies for how, chosen in (("LP-chosen first", per_class), ("largest first", {}))}
        best = max(found, key=found.get)
        row[f"offline_{label}"] = round(100 * found[best] / total, 3)
        row[f"offline_{label}_policy"] = best
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace-dir", default=None)
    ap.add_argument("--variants", default="all")
    ap.add_argument("--seeds", default="42-44", help="LO-HI")
    ap.add_argument("--policies", default="frag-pack,fgd", help="policies tried for the offline placement")
    ap.add_argument("--out", default=None, help="output stem: writes <out>.json and <out>.md")
    args = ap.parse_args(argv)
    trace_dir = args.trace_dir or os.environ.get("HAMI_TRACE_DIR") or str(default_trace_dir())
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    policies = args.policies.split(",")
    rows = [measure(trace_dir, v, s, policies) for v in variants for s in seeds]
    lines = ["| variant | seed | bound @100 | offline placement @100 | gap | bound @130 | offline @130 | gap "
             "| bound s (@100/@130) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['seed']} | {r['bound_100']:.2f} | {r['offline_100']:.2f} "
                     f"({r['offline_100_policy']}) | {r['bound_100'] - r['offline_100']:.2f} | {r['bound_130']:.2f} "
                     f"| {r['offline_130']:.2f} ({r['offline_130_policy']}) | {r['bound_130'] - r['offline_130']:.2f} "
                     f"| {r['bound_100_s']:.2f} / {r['bound_130_s']:.2f} |")
    print("\n".join(lines))
    if args.out:
        meta = {
            "command": "python scheduler/benchmarks/bound_gap.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "provenance": "simulated: openb GPU trace v2023 node/pod lists; no hardware involved",
        }
        out = Path(args.out)
        out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        gaps = [r["bound_100"] - r["offline_100"] for r in rows]
        head = [f"# Offline bound against an offline placement ({meta['date']})", "",
                f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}  ",
                f"Provenance: {meta['provenance']}", "",
                "The optimum (best placement of the arrived pods, chosen with hindsight) lies between the offline "
                "placement (achieved through the simulator's cluster) and the bound (proven).",
                f"Gap @100: median {statistics.median(gaps):.2f}, max {max(gaps):.2f} points.", ""]
        out.with_suffix(".md").write_text("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
