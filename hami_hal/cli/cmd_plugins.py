"""``hami plugins``: installed plugins, versions, hooks implemented, and why any were skipped."""

from __future__ import annotations

import argparse

from rich.table import Table

from ..manager import Hal
from .common import add_json
from .output import console, emit_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plugins", help="installed plugins, versions and hooks")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    hal = Hal()
    rows = [
        {
            "name": p.name, "vendor": p.vendor.name, "display_name": p.vendor.display_name,
            "version": p.version, "distribution": p.distribution, "hooks": p.hooks,
            "resources": [n for fam in p.vendor.resources for n in fam.names()],
        }
        for p in hal.plugins.values()
    ]
    skipped = [s.model_dump() for s in hal.skipped]
    if args.json:
        emit_json({"plugins": rows, "skipped": skipped})
        return 0
    out = console()
    table = Table(title="hami-hal plugins")
    for col in ("plugin", "vendor", "version", "distribution", "resources", "hooks"):
        table.add_column(col, overflow="fold")
    for r in rows:
        hooks = ", ".join(h.removeprefix("hami_hal_") for h in r["hooks"])
        table.add_row(r["name"], r["vendor"], r["version"], r["distribution"] or "(module)",
                      "\n".join(r["resources"]), hooks)
    if rows:
        out.print(table)
    else:
        out.print("no plugins installed (install a hami-plugins-<vendor> distribution, "
                  "or set HAMI_HAL_PLUGIN_MODULES)")
    for s in skipped:
        out.print(f"skipped {s['name']}: {s['reason']}")
    return 0
