"""A test-only ``hami`` subcommand registered through the ``hami_hal.cli`` entry-point group."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("acme-hello", help="say hello (test-only)")
    p.add_argument("--name", default="world")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"hello {args.name}")
    return 3
