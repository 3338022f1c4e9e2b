"""Options and set-up shared by the subcommands that look at a node."""

from __future__ import annotations

import argparse

from ..manager import Hal
from ..models import NodeInventory


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def add_node_options(parser: argparse.ArgumentParser, *, json: bool = True) -> None:
    parser.add_argument("--backend", choices=("auto", "real", "sim"), default="auto",
                        help="real devices, simulated profiles, or real with a fallback to simulation (default)")
    parser.add_argument("--sim-node", metavar="NAME", help="simulated node profile (see `hami profiles`)")
    parser.add_argument("--node-name", metavar="NAME", help="node name to report (default: $NODE_NAME or host)")
    if json:
        add_json(parser)


def discover(args: argparse.Namespace) -> tuple[Hal, NodeInventory]:
    """Load plugins and discover this node as the options ask."""
    hal = Hal()
    backend = "sim" if args.sim_node and args.backend == "auto" else args.backend
    inv = hal.discover(backend, node_name=args.node_name, sim_node=args.sim_node)
    return hal, inv
