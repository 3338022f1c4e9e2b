"""Place a mixed workload on a simulated cluster of every installed vendor through the scheduler extender,
checking after every placement that no device is over-committed.

Usage (repository root, after ``make setup``):

    .venv/bin/python examples/multi-vendor-cluster/place_workload.py [--steps 400] [--seed 7] [--out DIR]

Each node of ``cluster.yaml`` is discovered from its simulated profile by the installed plugins and given
to the extender as a Node object carrying the hami-hal inventory annotation, exactly as the node agent
publishes it. Pods come from per-vendor templates using HAMi's resource names and annotations; a share of
the placed pods is deleted again (churn). After every placement two checks run: the engine's own
invariant (``DeviceState.overcommitted``) and an independent ledger summed from every held allocation
against each device's partition model. A violation stops the run with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

import yaml
from hami_scheduler.extender import Extender
from hami_scheduler.state import ClusterState

from hami_hal.hami_compat import HAL_INVENTORY, allocation_from_pod
from hami_hal.manager import Hal
from hami_hal.models import PartitionKind

HERE = Path(__file__).resolve().parent

#: Pod templates per vendor: (label, limits, annotations), HAMi's names (docs/hami-compatibility.md).
TEMPLATES: dict[str, list[tuple[str, dict, dict]]] = {
    "nvidia": [
        ("vgpu-8g-20%", {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 8000, "nvidia.com/gpucores": 20}, {}),
        ("vgpu-2x-whole", {"nvidia.com/gpu": 2}, {}),
    ],
    "ascend": [
        ("910b3-1", {"huawei.com/Ascend910B3": 1}, {}),
        ("910b3-2", {"huawei.com/Ascend910B3": 2}, {}),
    ],
    "hygon": [
        ("dcu-4g-25%", {"hygon.com/dcunum": 1, "hygon.com/dcumem": 4096, "hygon.com/dcucores": 25}, {}),
    ],
    "kunlun": [
        ("xpu-whole-1", {"kunlunxin.com/xpu": 1}, {}),
        ("xpu-whole-4", {"kunlunxin.com/xpu": 4}, {}),
        ("vxpu-aligned-to-card", {"kunlunxin.com/vxpu": 1, "kunlunxin.com/vxpu-memory": 200000}, {}),
        ("vxpu-quarter-2", {"kunlunxin.com/vxpu": 2, "kunlunxin.com/vxpu-memory": 20000}, {}),
        ("vxpu-half-1", {"kunlunxin.com/vxpu": 1, "kunlunxin.com/vxpu-memory": 40000}, {}),
    ],
    "cambricon": [
        ("smlu-4g-20%", {"cambricon.com/vmlu": 1, "cambricon.com/mlu.smlu.vmemory": 16,
                         "cambricon.com/mlu.smlu.vcore": 20}, {}),
        ("mlu-whole-2", {"cambricon.com/vmlu": 2}, {}),
    ],
    "metax": [
        ("sgpu-4g-20%-fixed", {"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 4, "metax-tech.com/vcore": 20},
         {"metax-tech.com/sgpu-qos-policy": "fixed-share"}),
        ("sgpu-2g-10%-besteffort", {"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 2,
                                    "metax-tech.com/vcore": 10}, {}),
        ("gpu-whole-2", {"metax-tech.com/gpu": 2}, {}),
        ("sgpu-online", {"metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 8, "metax-tech.com/vcore": 30},
         {"metax-tech.com/sgpu-app-class": "online", "metax-tech.com/sgpu-qos-policy": "burst-share"}),
        ("gpu+sgpu", {"metax-tech.com/gpu": 1, "metax-tech.com/sgpu": 1, "metax-tech.com/vmemory": 2,
                      "metax-tech.com/vcore": 10}, {}),
    ],
}


def load_cluster(hal: Hal, path: Path) -> tuple[list[dict], dict[str, str], list[str]]:
    """Node objects for the vendors installed, node → vendor, and one line per skipped node."""
    spec = yaml.safe_load(path.read_text())["nodes"]
    installed = {v.name for v in hal.vendors()}
    nodes, vendor_of, skipped = [], {}, []
    for name, entry in spec.items():
        if entry["vendor"] not in installed:
            skipped.append(f"{name}: plugin {entry['vendor']!r} not installed, node left out")
            continue
        inv = hal.discover("sim", node_name=name, sim_node=entry["profile"])
        nodes.append({"metadata": {"name": name, "annotations": {HAL_INVENTORY: inv.model_dump_json()}}})
        vendor_of[name] = entry["vendor"]
    return nodes, vendor_of, skipped


def ledger_violations(cluster: ClusterState) -> list[str]:
    """Independent of the engine's counters: sum every held allocation per device against its model."""
    # Keyed by (node, device): nodes composed from one profile carry the same simulated UUIDs.
    used: dict[tuple[str, str], Counter] = defaultdict(Counter)
    templates: dict[tuple[str, str], set] = defaultdict(set)
    exclusive: dict[tuple[str, str], int] = Counter()
    for alloc in cluster.pods.values():
        for s in alloc.slices():
            key = (alloc.node, s.uuid)
            u = used[key]
            u["slots"] += 1
            u["memory"] += s.memory_mib
            u["compute"] += s.compute_percent
            if s.template:
                templates[key].add(s.template)
            if s.exclusive:
                exclusive[key] += 1
    out = []
    for entry in cluster.nodes.values():
        for dev in entry.inventory.devices:
            key = (entry.inventory.node, dev.uuid)
            part, u = dev.partition, used.get(key, Counter())
            where = f"{entry.inventory.node}/{dev.vendor}{dev.index}"
            if u["memory"] > part.memory_mib:
                out.append(f"{where}: {u['memory']} MiB held > {part.memory_mib} MiB")
            if u["compute"] > part.compute_percent:
                out.append(f"{where}: {u['compute']}% held > {part.compute_percent}%")
            if u["slots"] > part.max_slots:
                out.append(f"{where}: {u['slots']} tenants > {part.max_slots}")
            if exclusive[key] and u["slots"] > 1:
                out.append(f"{where}: an exclusive slice shares the device with {u['slots'] - 1} other(s)")
            if part.kind is PartitionKind.SLICES and len(templates[key]) > 1:
                out.append(f"{where}: mixed slice sizes {sorted(templates[key])}")
            bad = entry.state.devices[dev.uuid].overcommitted()
            if bad:
                out.append(f"{where}: engine state over-committed: {bad}")
    return out


def run(steps: int, seed: int, cluster_file: Path = HERE / "cluster.yaml") -> dict:
    hal = Hal()
    vendors = hal.vendors()
    nodes, vendor_of, skipped = load_cluster(hal, cluster_file)
    cluster = ClusterState(vendors)
    for node in nodes:
        cluster.upsert_node(node)
    ext = Extender(cluster, None, pod_annotator=hal.pod_annotations, admit=hal.admit_request)
    names = list(vendor_of)
    present = sorted(set(vendor_of.values()))
    rng = random.Random(seed)
    placed: list[dict] = []
    stats: dict[str, Counter] = defaultdict(Counter)
    checks = 0
    for step in range(steps):
        if placed and rng.random() < 0.3:
            pod = placed.pop(rng.randrange(len(placed)))
            cluster.remove_pod(f"default/{pod['metadata']['name']}")
            stats[pod["metadata"]["labels"]["vendor"]]["deleted"] += 1
            continue
        vendor = rng.choice(present)
        label, limits, anns = rng.choice(TEMPLATES[vendor])
        pod = {"metadata": {"name": f"p{step}-{vendor}-{label}".lower().replace("%", "pct").replace("+", "-"),
                            "namespace": "default", "labels": {"vendor": vendor}, "annotations": dict(anns)},
               "spec": {"containers": [{"name": "main", "resources": {"limits": dict(limits)}}]}}
        out = ext.filter({"Pod": pod, "NodeNames": names})
        if out.error:
            raise SystemExit(f"step {step}: extender error for {label}: {out.error}")
        if not out.node_names:
            stats[vendor]["refused"] += 1
            continue
        node = out.node_names[0]
        if vendor_of[node] != vendor:
            raise SystemExit(f"step {step}: {vendor} pod placed on {vendor_of[node]} node {node}")
        anns_out = ext.filter_annotations(pod, out.allocation)
        pod["metadata"]["annotations"].update(anns_out)
        back = allocation_from_pod(pod, vendors, {d.uuid: d for d in cluster.nodes[node].inventory.devices})
        if sorted((s.uuid, s.memory_mib, s.compute_percent) for s in back.slices()) != sorted(
                (s.uuid, s.memory_mib, s.compute_percent) for s in out.allocation.slices()):
            raise SystemExit(f"step {step}: HAMi annotations of {pod['metadata']['name']} do not decode to its allocation")
        placed.append(pod)
        stats[vendor]["placed"] += 1
        stats[vendor][f"placed:{label}"] += 1
        bad = ledger_violations(cluster)
        checks += 1
        if bad:
            raise SystemExit(f"step {step}: over-commit after placing {pod['metadata']['name']}: {bad[0]}")
    return {
        "simulated": True,
        "cluster": {n: vendor_of[n] for n in names},
        "skipped": skipped,
        "steps": steps, "seed": seed, "over_commit_checks": checks, "violations": 0,
        "held_at_end": len(cluster.pods),
        "per_vendor": {v: dict(sorted(c.items())) for v, c in sorted(stats.items())},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cluster", type=Path, default=HERE / "cluster.yaml")
    ap.add_argument("--out", type=Path, help="write placement.json here")
    args = ap.parse_args(argv)
    if not 1 <= args.steps <= 100_000:
        print(f"--steps: {args.steps} must be between 1 and 100000", file=sys.stderr)
        return 2
    result = run(args.steps, args.seed, args.cluster)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "placement.json").write_text(text + "\n")
    print(text)
    for line in result["skipped"]:
        print(f"skipped {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
