"""``hami profiles``: the simulated device and node profiles every plugin (and the user) provides."""

from __future__ import annotations

import argparse

from rich.table import Table

from ..manager import Hal
from .common import add_json
from .output import console, emit_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("profiles", help="simulated device and node profiles")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cat = Hal().catalog()
    devices = [
        {"name": n, "vendor": p.spec.vendor, "model": p.spec.model, "memory_mib": p.spec.memory_mib,
         "compute_units": p.spec.compute_units, "description": p.metadata.description}
        for n, p in sorted(cat.devices.items())
    ]
    nodes = [
        {"name": n, "default": p.spec.default, "description": p.metadata.description or p.spec.description,
         "devices": [{"profile": g.profile, "count": g.count} for g in p.spec.devices],
         "faults": [f.model_dump() for f in p.spec.faults]}
        for n, p in sorted(cat.nodes.items())
    ]
    if args.json:
        emit_json({"simulated": True, "device_profiles": devices, "node_profiles": nodes})
        return 0
    out = console()
    dt = Table(title="simulated device profiles")
    for col in ("profile", "vendor", "model", "memory MiB", "compute units"):
        dt.add_column(col)
    for d in devices:
        dt.add_row(d["name"], d["vendor"], d["model"], str(d["memory_mib"]), str(d["compute_units"] or "-"))
    nt = Table(title="simulated node profiles (use with --sim-node)")
    for col in ("profile", "default", "devices", "faults", "description"):
        nt.add_column(col, overflow="fold")
    for n in nodes:
        devs = ", ".join(f"{g['count']}× {g['profile']}" for g in n["devices"])
        faults = ", ".join(f"{f['index']}: {f['fault']}" for f in n["faults"]) or "-"
        nt.add_row(n["name"], "yes" if n["default"] else "", devs, faults, n["description"])
    out.print(dt)
    out.print(nt)
    return 0
