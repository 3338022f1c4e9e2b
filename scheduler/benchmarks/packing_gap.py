"""Where a policy's idle GPU sits at 100 % arrival, against an offline packing of the same pods.

At 100 % arrival the idle GPU equals the GPU demand that failed, so a policy can only gain by
leaving less idle. This script runs one trace simulation up to 100 % arrival and reports:

- idle GPU milli by free-milli bucket (0-99, 100-199, 200-999, whole GPUs) and the part of it
  stranded by CPU or memory (a gap at least the smallest common sharing size, >= 0.5 % of arrived
  pods, that an arrived single-GPU pod shape fits, but no such shape fits the node's free CPU and
  memory);
- the idle GPU an offline first-fit-decreasing (FFD) packing of the *same placed* sharing pods
  leaves: our idle minus this is roughly what a better online placement could still win;
- FFD over *every* sharing pod that arrived (placed or not) with the GPUs whole-GPU pods need;
- the share-packing ceiling: the fewest GPUs any packing of *every* arrived sharing pod needs (the offline
  bound's pattern LP, :func:`share_gpus_lower_bound`), so no placement that places every arrived share
  allocates more than capacity minus their least waste; and the floor of the shares >= 800 milli alone;
- failed pods by shape and the idle beside the largest share on each partly used GPU.

    python scheduler/benchmarks/packing_gap.py --variant default --policy frag-pack --seeds 42-45
    python scheduler/benchmarks/packing_gap.py --variant multigpu40,/tmp/openb-extra/openb_pod_list_cpu250.csv \\
        --seeds 42-51 --out docs/results/<date>-frag-pack-headroom
Writes ``<out>.json`` and ``<out>.md`` when ``--out`` is given; prints the tables. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from hami_scheduler.sim.bound import gpu_upper_bound
from hami_scheduler.sim.run import FileSource, TraceSource, prepare_run, shape_of
from hami_scheduler.sim.trace import NODE_FILE, TraceNode, TracePod, default_trace_dir


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


def share_gpus_lower_bound(sizes: list[int]) -> int:
    """Fewest GPUs *any* packing of these single-GPU shares needs: a proven lower bound.

    The smallest N for which the offline bound's pattern LP (:func:`hami_scheduler.sim.bound.gpu_upper_bound`,
    a Gilmore-Gomory relaxation) admits every share on N GPUs with unlimited CPU and memory; with fewer GPUs
    even the relaxation places less than all of them.
    """
    if not sizes:
        return 0
    pods = [TracePod(f"s{i}", 0, 0, 1, m) for i, m in enumerate(sizes)]
    need = sum(sizes)

    def admits(n: int) -> bool:
        nodes = tuple(TraceNode(f"n{i}", 1 << 40, 1 << 40, min(8, n - 8 * i), "X") for i in range((n + 7) // 8))
        return gpu_upper_bound(nodes, pods) >= need - 0.5

    lo, hi = (need + 999) // 1000, ffd_idle(sizes)[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if admits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def shape_class(shape) -> str:
    """A failed pod's shape class: CPU-only, sharing (by per-GPU milli bucket), or n whole GPUs."""
    if not shape.num_gpu:
        return "cpu-only"
    if shape.num_gpu == 1 and shape.milli < 1000:
        return "share<=190" if shape.milli <= 190 else "share<=500" if shape.milli <= 500 else "share>500"
    return f"{shape.num_gpu}-gpu"


def analyse(source: TraceSource | FileSource, policy_name: str, seed: int) -> dict:
    nodes, order, cluster = prepare_run(source, None, policy_name, seed)
    total = sum(n.gpus for n in nodes)
    shares: dict[tuple[int, int], list[int]] = {}

    def track(i: int, pod, gpus: tuple[int, ...]) -> None:
        if pod.num_gpu == 1 and pod.milli < 1000:
            shares.setdefault((i, gpus[0]), []).append(pod.milli)

    cluster.on_place = track
    arrived = used = 0
    placed: list[int] = []
    arrived_sharing: list[int] = []
    whole_gpus = 0
    shapes = []
    failed: dict[str, list[int]] = {}
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
        else:
            acc = failed.setdefault(shape_class(shape), [0, 0])
            acc[0] += 1
            acc[1] += shape.gpu_total
    # Gaps below the smallest *common* sharing size (>= 0.5 % of arrived pods) are dead by size
    # whatever the node's CPU; only larger ones count as stranded.
    counts: dict[int, int] = {}
    for m in arrived_sharing:
        counts[m] = counts.get(m, 0) + 1
    smallest = min((m for m, k in counts.items() if k >= 0.005 * len(shapes)), default=1000)
    singles = {(s.milli, s.cpu, s.mem, s.types) for s in shapes if s.num_gpu == 1}
    buckets = {"0-99": 0, "100-199": 0, "200-999": 0, "1000": 0}
    beside = {"beside>=800": 0, "beside500-799": 0, "beside<500": 0}
    stranded = 0
    whole_on_cpu_short = 0
    for i, view in enumerate(cluster.views):
        for g, f in enumerate(view.gpu_free):
            buckets["0-99" if f < 100 else "100-199" if f < 200 else "200-999" if f < 1000 else "1000"] += f
            if 0 < f < 1000:
                big = max(shares.get((i, g), [0]))
                beside["beside>=800" if big >= 800 else "beside500-799" if big > 500 else "beside<500"] += f
            if f >= smallest and not any(
                milli <= f and cpu <= view.cpu_free and mem <= view.mem_free and (not types or view.model in types)
                for milli, cpu, mem, types in singles
            ):
                stranded += f
                if f == 1000:
                    whole_on_cpu_short += f
    # The gap floor of the largest shares: a share of s > 500 milli holds a GPU alone but for pods of
    # <= 1000 - s, so the arrived shares >= 800 leave at least sum(1000 - s) minus every arrived share
    # small enough to close such a gap, whatever the placement (when they are all placed).
    big = [m for m in arrived_sharing if m >= 800]
    closers = sum(m for m in arrived_sharing if m <= 1000 - min(big, default=1000))
    floor = max(0, sum(1000 - m for m in big) - closers)
    # Every placement that places all arrived shares leaves at least the LP's least waste in their GPUs
    # idle (whole-GPU pods cannot use a GPU a share holds), whatever CPU, memory or multi-GPU pods do.
    share_waste = 1000 * share_gpus_lower_bound(arrived_sharing) - sum(arrived_sharing)
    idle = total * 1000 - used
    _, ffd_same = ffd_idle(placed)
    ffd_gpus_all, ffd_all = ffd_idle(arrived_sharing)
    return {
        "variant": source.label, "policy": policy_name, "seed": seed,
        "alloc_pct": round(100 * used / total / 1000, 3),
        "idle_milli": idle, **{f"idle_{k}": v for k, v in buckets.items()}, **beside,
        "stranded_by_cpu_mem": stranded, "whole_gpus_stranded": whole_on_cpu_short // 1000,
        "shares_ge800": len(big), "closers_milli": closers, "floor_ge800": floor,
        "alloc_pct_at_floor": round(100 - 100 * floor / total / 1000, 3),
        "failed": {k: tuple(v) for k, v in sorted(failed.items())},
        "share_waste_lp": share_waste,
        "alloc_pct_ceiling_all_shares": round(100 - 100 * share_waste / total / 1000, 3),
        "ffd_idle_same_pods": ffd_same,
        "alloc_pct_if_ffd_idle": round(100 - 100 * ffd_same / total / 1000, 3),
        "gpus_needed_all_arrived": whole_gpus + ffd_gpus_all, "gpus": total,
        "ffd_idle_all_arrived": ffd_all,
    }


KEYS = ["seed", "alloc_pct", "idle_milli", "idle_0-99", "idle_100-199", "idle_200-999", "idle_1000",
        "beside>=800", "beside500-799", "beside<500", "stranded_by_cpu_mem", "whole_gpus_stranded",
        "shares_ge800", "closers_milli", "floor_ge800", "alloc_pct_at_floor", "failed",
        "share_waste_lp", "alloc_pct_ceiling_all_shares",
        "ffd_idle_same_pods", "alloc_pct_if_ffd_idle", "gpus_needed_all_arrived"]


def source_of(trace_dir: str, variant: str) -> TraceSource | FileSource:
    """A public variant by name, or an openb pod-list file (``*.csv``) on the trace's GPU nodes."""
    if variant.endswith(".csv"):
        return FileSource(str(Path(trace_dir) / NODE_FILE), variant)
    return TraceSource(trace_dir, variant)


def summary(label: str, rows: list[dict]) -> str:
    """One markdown row of medians: where the idle GPU sits and the two ceilings."""
    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    return (f"| {label} | {len(rows)} | {med('alloc_pct'):.2f} | {med('idle_milli') / 1000:.1f} "
            f"| {med('beside>=800') / 1000:.1f} | {med('beside500-799') / 1000:.1f} | {med('beside<500') / 1000:.1f} "
            f"| {med('idle_1000') / 1000:.0f} | {med('stranded_by_cpu_mem') / 1000:.1f} "
            f"| {med('alloc_pct_at_floor'):.2f} | {med('alloc_pct_ceiling_all_shares'):.2f} "
            f"| {med('alloc_pct_ceiling_all_shares') - med('alloc_pct'):.2f} |")


HEADER = ["| pod list | seeds | alloc % @100 | idle k-milli | beside ≥ 800 | beside 501–799 | beside ≤ 500 "
          "| whole GPUs | stranded by CPU/mem | ≥ 800 floor % | all-shares ceiling % | ceiling − alloc |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="default",
                    help="comma-separated variant names or openb pod-list files (*.csv, e.g. from gen_variants.py)")
    ap.add_argument("--policy", default="frag-pack")
    ap.add_argument("--seeds", default="42-45")
    ap.add_argument("--trace-dir", default=str(default_trace_dir()))
    ap.add_argument("--out", type=Path, help="output stem: writes <out>.json and <out>.md")
    args = ap.parse_args(argv)
    lo, _, hi = args.seeds.partition("-")
    seeds = range(int(lo), int(hi or lo) + 1)
    table = list(HEADER)
    every: list[dict] = []
    for variant in args.variant.split(","):
        source = source_of(args.trace_dir, variant)
        rows = [analyse(source, args.policy, s) for s in seeds]
        every += rows
        print(f"{source.label} / {args.policy} at 100 % arrival (simulated, openb trace)")
        print(" | ".join(KEYS))
        for r in rows:
            print(" | ".join(str(r[k]) for k in KEYS))
        table.append(summary(source.label, rows))
    print("\n".join(table))
    if args.out:
        command = "python scheduler/benchmarks/packing_gap.py " + " ".join(argv if argv is not None else sys.argv[1:])
        date = datetime.now(UTC).isoformat(timespec="seconds")
        machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
        meta = {"command": command, "date": date, "machine": machine, "policy": args.policy,
                "provenance": "simulated: openb GPU trace v2023 node/pod lists (FGD method); no hardware involved"}
        args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": every}, indent=1) + "\n")
        head = [f"# Where {args.policy}'s idle GPU sits at 100 % arrival, and the share-packing ceiling ({date})", "",
                f"Command: `{command}`  ", f"Machine: {machine}  ", f"Provenance: {meta['provenance']}", "",
                "Medians over the seeds; idle in thousands of GPU milli (1,000 = one GPU), by the largest share on "
                "the partly used GPU. *≥ 800 floor*: the allocation if every arrived share ≥ 800 is placed and every "
                "share small enough to close its gap closes one. *All-shares ceiling*: no placement that places every "
                "arrived share allocates more (the shares' GPUs keep at least the pattern LP's least waste idle). "
                "Per-seed rows, failed pods by shape and the FFD figures are in the JSON.", ""]
        args.out.with_suffix(".md").write_text("\n".join(head + table) + "\n")


if __name__ == "__main__":
    main()
