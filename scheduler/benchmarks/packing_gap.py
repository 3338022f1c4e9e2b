"""Where a policy's idle GPU sits at 100 % arrival, against an offline packing of the same pods.

At 100 % arrival the idle GPU equals the GPU demand that failed, so a policy can only gain by
leaving less idle. This script runs one trace simulation up to 100 % arrival and reports:

- idle GPU milli by free-milli bucket (0-99, 100-199, 200-999, whole GPUs) and the part of it
  stranded by CPU or memory (a gap at least the smallest common sharing size, >= 0.5 % of arrived
  pods, that an arrived single-GPU pod shape fits, but no such shape fits the node's free CPU and
  memory);
- the idle GPU an offline first-fit-decreasing (FFD) packing of the *same placed* sharing pods
  leaves: our idle minus this is roughly what a better online placement could still win;
- FFD over *every* sharing pod that arrived (placed or not) with the GPUs whole-GPU pods need.

    python scheduler/benchmarks/packing_gap.py --variant default --policy frag-pack --seeds 42-45
Writes nothing unless ``--out FILE.json``; prints a table. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from hami_scheduler.sim.run import prepare_run, shape_of
from hami_scheduler.sim.trace import default_trace_dir


def ffd_idle(sizes: list[int]) -> tuple[int, int]:
    """(GPUs, idle milli) of a first-fit-decreasing packing of single-GPU sharing pods."""
    gaps: list[int] = []
    for s in sorted(sizes, reverse=True):
        for i, g in enumerate(gaps):
            if g >= s:
                gaps[i] -= s
                break
        else:
            gaps.append(1000 - s)
    return len(gaps), sum(gaps)


def analyse(trace_dir: str, variant: str, policy_name: str, seed: int) -> dict:
    nodes, order, cluster = prepare_run(trace_dir, variant, policy_name, seed)
    total = sum(n.gpus for n in nodes)
    arrived = used = 0
    placed: list[int] = []
    arrived_sharing: list[int] = []
    whole_gpus = 0
    shapes = []
    for pod in order:
        shape = shape_of(pod)
        if arrived + shape.gpu_total > total * 1000:
            break
        arrived += shape.gpu_total
        shapes.append(shape)
        sharing = shape.num_gpu == 1 and shape.milli < 1000
        if sharing:
            arrived_sharing.append(shape.milli)
        elif shape.num_gpu:
            whole_gpus += shape.num_gpu
        if cluster.schedule(shape) is not None:
            used += shape.gpu_total
            if sharing:
                placed.append(shape.milli)
    # Gaps below the smallest *common* sharing size (>= 0.5 % of arrived pods) are dead by size
    # whatever the node's CPU; only larger ones count as stranded.
    counts: dict[int, int] = {}
    for m in arrived_sharing:
        counts[m] = counts.get(m, 0) + 1
    smallest = min((m for m, k in counts.items() if k >= 0.005 * len(shapes)), default=1000)
    singles = {(s.milli, s.cpu, s.mem, s.types) for s in shapes if s.num_gpu == 1}
    buckets = {"0-99": 0, "100-199": 0, "200-999": 0, "1000": 0}
    stranded = 0
    for view in cluster.views:
        for f in view.gpu_free:
            buckets["0-99" if f < 100 else "100-199" if f < 200 else "200-999" if f < 1000 else "1000"] += f
            if f >= smallest and not any(
                milli <= f and cpu <= view.cpu_free and mem <= view.mem_free and (not types or view.model in types)
                for milli, cpu, mem, types in singles
            ):
                stranded += f
    idle = total * 1000 - used
    _, ffd_same = ffd_idle(placed)
    ffd_gpus_all, ffd_all = ffd_idle(arrived_sharing)
    return {
        "variant": variant, "policy": policy_name, "seed": seed,
        "alloc_pct": round(100 * used / total / 1000, 3),
        "idle_milli": idle, **{f"idle_{k}": v for k, v in buckets.items()}, "stranded_by_cpu_mem": stranded,
        "ffd_idle_same_pods": ffd_same,
        "alloc_pct_if_ffd_idle": round(100 - 100 * ffd_same / total / 1000, 3),
        "gpus_needed_all_arrived": whole_gpus + ffd_gpus_all, "gpus": total,
        "ffd_idle_all_arrived": ffd_all,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="default")
    ap.add_argument("--policy", default="frag-pack")
    ap.add_argument("--seeds", default="42-45")
    ap.add_argument("--trace-dir", default=str(default_trace_dir()))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lo, _, hi = args.seeds.partition("-")
    rows = [analyse(args.trace_dir, args.variant, args.policy, s) for s in range(int(lo), int(hi or lo) + 1)]
    keys = ["seed", "alloc_pct", "idle_milli", "idle_0-99", "idle_100-199", "idle_200-999", "idle_1000",
            "stranded_by_cpu_mem",
            "ffd_idle_same_pods", "alloc_pct_if_ffd_idle", "gpus_needed_all_arrived"]
    print(f"{args.variant} / {args.policy} at 100 % arrival (simulated, openb trace)")
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))
    print("median alloc %:", statistics.median(r["alloc_pct"] for r in rows),
          " median alloc % at FFD idle of the same pods:", statistics.median(r["alloc_pct_if_ffd_idle"] for r in rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
