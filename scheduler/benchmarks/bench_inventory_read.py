"""What reading a node's ``hami-hal.io/node-inventory`` costs with the version-skew rule (hami_hal.models.skew).

The scheduler parses a node's inventory on every node event. The skew reader parses the JSON once to drop unknown
fields, then validates the rest; this times, per document of ``--devices`` devices (8-slot share partitions, the
shape the NVIDIA plugin writes), the median of ``--repeat`` reads of:

- ``strict``: ``NodeInventory.model_validate_json`` + ``check_inventory`` (the reader before the skew rule);
- ``skew``: ``parse_node`` (the skew reader + ``check_inventory``), on this version's document;
- ``skew-newer``: ``parse_node`` on the same document with a field more at the top and in each device and partition
  (what a newer agent writes; ``strict`` refuses it).

    .venv/bin/python scheduler/benchmarks/bench_inventory_read.py --out docs/results/2026-12-05-fake-inventory-read.json

Decision code only (no HTTP, no API server, no hardware). CPU-timed on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from hami_hal.hami_compat import HAL_INVENTORY, parse_node
from hami_hal.hami_compat.register import check_inventory
from hami_hal.models import Device, NodeInventory, PartitionKind, PartitionModel, Provenance

SHARES = PartitionModel(kind=PartitionKind.SHARES, memory_mib=81920, max_slots=8)


def document(devices: int, newer: bool) -> str:
    devs = [Device(vendor="nvidia", index=i, uuid=f"GPU-{i:04d}", model="NVIDIA H100", hami_type="NVIDIA-H100",
                   memory_mib=81920, numa_node=i // 4, partition=SHARES, provenance=Provenance(source="real"))
            for i in range(devices)]
    doc = json.loads(NodeInventory(node="n", source="real", devices=devs).model_dump_json(by_alias=True))
    if newer:
        doc["future_top"] = 1
        for d in doc["devices"]:
            d["future_device"] = 1
            d["partition"]["future_partition"] = 1
    return json.dumps(doc)


def median_us(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def strict(raw: str) -> None:
    check_inventory(NodeInventory.model_validate_json(raw))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 8, 64])
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for n in args.devices:
        raw, newer = document(n, False), document(n, True)
        node = {"metadata": {"name": "n", "annotations": {HAL_INVENTORY: raw}}}
        node_newer = {"metadata": {"name": "n", "annotations": {HAL_INVENTORY: newer}}}
        row = {"devices": n, "bytes": len(raw),
               "strict_us": round(median_us(lambda raw=raw: strict(raw), args.repeat), 1),
               "skew_us": round(median_us(lambda node=node: parse_node(node, []), args.repeat), 1),
               "skew_newer_us": round(median_us(lambda node=node_newer: parse_node(node, []), args.repeat), 1)}
        rows.append(row)
        print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "python": platform.python_version(),
                                        "machine": platform.machine(), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
