"""``hami schemas export [--check]``: write (or verify) the checked-in JSON Schemas."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import schemas
from .common import add_json
from .output import console, emit_json, error_line


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("schemas", help="JSON Schemas of the hami-hal documents")
    sub = p.add_subparsers(dest="schemas_command", metavar="ACTION", required=True)
    ex = sub.add_parser("export", help="write the schema files (default: into the hami_hal package)")
    ex.add_argument("--dir", type=Path, default=schemas.SCHEMA_DIR, help="target folder")
    ex.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is stale")
    add_json(ex)
    ex.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    if args.check:
        stale = schemas.drift(args.dir)
        if args.json:
            emit_json({"dir": str(args.dir), "in_sync": not stale, "stale": stale})
            return 1 if stale else 0
        if stale:
            error_line(f"schemas out of date in {args.dir}: {', '.join(stale)} (run `hami schemas export`)")
            return 1
        console().print(f"{len(schemas.SCHEMA_MODELS)} schemas in {args.dir} match the models")
        return 0
    written = schemas.export(args.dir)
    if args.json:
        emit_json({"dir": str(args.dir), "written": [p.name for p in written]})
        return 0
    for path in written:
        console().print(f"wrote {path}")
    return 0
