"""How tight the offline upper bound is: the bound against a real offline placement of the same pods.

For each variant and seed, the pods arrived by 100 % (and 130 %) get

- the offline upper bound (:func:`hami_scheduler.sim.bound.gpu_upper_bound`): no placement allocates more;
- the best placement found (a lower bound on the optimum): each listed policy places the pods through the
  simulator's own cluster (every node, CPU, memory, model and per-GPU check applies) in three orders
  (:func:`placement_order`: the LP's chosen pods first, every pod largest first, the arrival order);
  the best is an achievable allocation, so the optimum lies between it and the bound.

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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from hami_scheduler.policies import make_policy
from hami_scheduler.sim import bound as lp
from hami_scheduler.sim.cluster import DEFAULT_TIE_BREAK, SimCluster
from hami_scheduler.sim.run import prepare_run, shape_of
from hami_scheduler.sim.trace import VARIANTS, TraceNode, TracePod, default_trace_dir
from hami_scheduler.sim.workload import class_memory, target_workload
from packing_gap import source_of  # the sibling script: variant name or pod-list file


def arrived_by_100(order: list[TracePod], total_gpus: int) -> list[TracePod]:
    """The pods arrived by the end of arrival bin 100 (simulate_one's rule for ``bound_100``)."""
    arrived = kept = 0
    for k, pod in enumerate(order):
        arrived += pod.gpu_request_milli
        if int(arrived / total_gpus / 10 + 0.5) <= 100:
            kept = k + 1
    return order[:kept]


def _restricted_then_largest(p: TracePod) -> tuple:
    """Multi-GPU pods first, then pods allowed on fewer models, then larger shares and more CPU first."""
    return (-p.num_gpu, len(set(p.gpu_spec)) or 99, -p.gpu_milli, -p.cpu_milli)


def placement_order(nodes, pods: list[TracePod], how: str) -> tuple[tuple[TraceNode, ...], list[TracePod]]:
    """The nodes and the order one hindsight placement tries the GPU pods in.

    ``arrival``: the seed's own order (what an online policy sees); ``largest``: every pod, restricted and
    large first; ``lp``: the pods the LP places (its primal, rounded per class) that way, then the rest;
    ``lp-shapes``: the same with one atom per node shape, each chosen pod pinned to the shape the LP put it
    on (node models are renamed per shape so ``gpu_spec`` can pin it).
    """
    pods = [p for p in pods if p.num_gpu and p.gpu_milli]  # CPU-only pods allocate no GPU: left out
    if how == "arrival":
        return tuple(nodes), pods
    if how == "largest":
        return tuple(nodes), sorted(pods, key=_restricted_then_largest)
    atoms = lp.atoms_by_shape if how == "lp-shapes" else lp.atoms_by_spec
    rel = lp.build(tuple(nodes), lp.pod_classes(pods), atoms)
    x = lp.solve_lp(rel)[2]
    slots: dict[int, list[int]] = {}  # class → atom per LP-placed pod
    for (ci, ai), value in zip(rel.cols, x, strict=True):
        slots.setdefault(ci, []).extend([ai] * int(round(value)))
    pinned = how == "lp-shapes"
    atom_of = {n.name: ai for ai, a in enumerate(rel.atoms) for n in a.nodes}
    if pinned:
        nodes = tuple(replace(n, model=f"{n.model}@{atom_of[n.name]}") if n.name in atom_of else n for n in nodes)
    models = sorted({n.model for n in nodes})
    chosen, rest = [], []
    for p in pods:
        ci = rel.members.get(next(iter(lp.pod_classes([p])), None))
        free = slots.get(ci) if ci is not None else None
        if pinned and p.gpu_spec:
            p = replace(p, gpu_spec=tuple(m for m in models if m.split("@")[0] in p.gpu_spec))
        if free:
            ai = free.pop()
            chosen.append(replace(p, gpu_spec=(models_of(nodes, rel.atoms[ai]))) if pinned else p)
        else:
            rest.append(p)
    return tuple(nodes), sorted(chosen, key=_restricted_then_largest) + sorted(rest, key=_restricted_then_largest)


def models_of(nodes: tuple[TraceNode, ...], atom: lp.Atom) -> tuple[str, ...]:
    """The renamed model(s) of one shape atom's nodes."""
    names = {n.name for n in atom.nodes}
    return tuple(sorted({n.model for n in nodes if n.name in names}))


def offline_placement(nodes, pods: list[TracePod], policy_name: str, seed: int) -> int:
    """GPU milli a placement of ``pods`` in the given order allocates through the simulator's cluster
    (its default tie rule, seeded as the seed's own run)."""
    policy = make_policy(policy_name)
    capacity: dict[str, int] = {}
    for n in nodes:
        capacity[n.model] = capacity.get(n.model, 0) + n.gpus
    policy.prepare(target_workload(pods), class_memory(pods), capacity, sum(n.cpu_milli for n in nodes))
    cluster = SimCluster(nodes, policy, random.Random(seed), DEFAULT_TIE_BREAK)
    return sum(p.gpu_request_milli for p in pods if cluster.schedule(shape_of(p)) is not None)


def measure(trace_dir: str, variant: str, seed: int, policies: list[str]) -> dict:
    source = source_of(trace_dir, variant)
    nodes, order, _cluster = prepare_run(source, None, "fgd", seed)
    total = sum(n.gpus for n in nodes) * 1000
    row: dict = {"variant": source.label, "seed": seed}
    for label, pods in (("100", arrived_by_100(order, total // 1000)), ("130", order)):
        start = time.perf_counter()
        bound = lp.gpu_upper_bound(nodes, pods)  # what simulate reports (cold cache: one LP per pod list)
        row[f"bound_{label}_s"] = round(time.perf_counter() - start, 3)
        row[f"bound_{label}"] = round(100 * bound / total, 3)
        found = {}
        for how in ("lp", "lp-shapes", "largest", "arrival"):
            placed_nodes, placed_pods = placement_order(nodes, pods, how)
            for p in policies:
                found[f"{p}, {how}"] = offline_placement(placed_nodes, placed_pods, p, seed)
        best = max(found, key=found.get)
        row[f"offline_{label}"] = round(100 * found[best] / total, 3)
        row[f"offline_{label}_policy"] = best
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace-dir", default=None)
    ap.add_argument("--variants", default="all",
                    help="comma-separated variant names or openb pod-list files (*.csv, e.g. from gen_variants.py)")
    ap.add_argument("--seeds", default="42-44", help="LO-HI")
    ap.add_argument("--policies", default="frag-pack,fgd", help="policies tried for the placements")
    ap.add_argument("--out", default=None, help="output stem: writes <out>.json and <out>.md")
    args = ap.parse_args(argv)
    trace_dir = args.trace_dir or os.environ.get("HAMI_TRACE_DIR") or str(default_trace_dir())
    variants = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    policies = args.policies.split(",")
    rows = [measure(trace_dir, v, s, policies) for v in variants for s in seeds]
    lines = ["| variant | seed | bound @100 | best placement found @100 | gap | bound @130 | best found @130 | gap "
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
