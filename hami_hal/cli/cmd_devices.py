"""``hami devices``: discovered devices, their partition model and topology."""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from ..models import Device, NodeInventory
from .common import add_node_options, discover
from .output import console, emit_json, skipped_lines, source_label


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("devices", help="discovered devices, partition model and topology")
    add_node_options(p)
    p.set_defaults(func=run)


def partition_text(dev: Device) -> str:
    part = dev.partition
    if part is None:
        return "whole"
    text = f"{part.kind.value}, {part.max_slots} slot(s)"
    if part.templates:
        text += ": " + ", ".join(t.name for t in part.templates)
    return text


def render(inv: NodeInventory) -> None:
    out = console()
    label = source_label(inv)
    table = Table(title=f"devices on {inv.node} — {label}")
    for col in ("vendor", "idx", "model", "uuid", "memory MiB", "partition", "mode", "numa", "health"):
        table.add_column(col, overflow="fold", no_wrap=col == "uuid")
    for d in inv.devices:
        health = Text("ok") if d.healthy else Text(d.health_reason or "unhealthy", style="red")
        table.add_row(d.vendor, str(d.index), d.model, d.uuid, str(d.memory_mib), partition_text(d), d.mode,
                      "-" if d.numa_node is None else str(d.numa_node), health)
    out.print(table)
    if inv.topology.links:
        names = {d.uuid: f"{d.vendor}{d.index}" for d in inv.devices}
        topo = Table(title=f"topology — {label}")
        for col in ("a", "b", "link", "tier", "count", "score"):
            topo.add_column(col)
        for lk in inv.topology.links:
            topo.add_row(names.get(lk.a, lk.a), names.get(lk.b, lk.b), lk.kind, lk.tier.value, str(lk.count),
                         str(lk.score))
        out.print(topo)
    for line in skipped_lines(inv):
        out.print(line)


def run(args: argparse.Namespace) -> int:
    _, inv = discover(args)
    if args.json:
        emit_json(inv.model_dump(mode="json", by_alias=True))
    else:
        render(inv)
    return 0
