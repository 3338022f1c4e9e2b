"""``hami metrics dump|serve``: device metrics from the plugins in Prometheus text format."""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import HalError, InputError
from .common import add_node_options, discover
from .output import console, emit_json, sim_profile


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("metrics", help="device metrics (Prometheus exposition)")
    sub = p.add_subparsers(dest="metrics_command", metavar="ACTION", required=True)
    dump = sub.add_parser("dump", help="print one scrape to stdout")
    add_node_options(dump)
    dump.set_defaults(func=run_dump)
    serve = sub.add_parser("serve", help="serve /metrics over HTTP")
    add_node_options(serve, json=False)
    serve.add_argument("--port", type=int, default=9400,
                       help="TCP port (default 9400; 0 = any free port, printed in the serving line)")
    serve.add_argument("--addr", default="0.0.0.0", help="bind address (default 0.0.0.0)")
    serve.set_defaults(func=run_serve)


def _prometheus():
    """prometheus-client is optional for the core: a missing one is a one-line error, not a traceback."""
    try:
        import prometheus_client
    except ImportError:
        raise HalError("`hami metrics` needs prometheus-client: pip install 'hami-hal[metrics]'") from None
    return prometheus_client


def _registry(args: argparse.Namespace):
    from ..metrics import HalCollector

    registry = _prometheus().CollectorRegistry()
    hal, inv = discover(args)
    registry.register(HalCollector(hal, inv))
    return registry


def run_dump(args: argparse.Namespace) -> int:
    generate_latest = _prometheus().generate_latest
    from ..metrics import HalCollector, metric_name

    if args.json:
        hal, inv = discover(args)
        pairs, status = HalCollector(hal, inv).samples()
        emit_json({
            "node": inv.node, "source": inv.source, "simulated": inv.source == "simulated",
            "profile": sim_profile(inv),
            "samples": [{"metric": metric_name(s), **s.model_dump(mode="json")} for _, s in pairs],
            "backends": {v: {"success": ok, "seconds": t} for v, (ok, t) in status.items()},
        })
        return 0
    sys.stdout.write(generate_latest(_registry(args)).decode())
    return 0


def run_serve(args: argparse.Namespace) -> int:
    start_http_server = _prometheus().start_http_server
    if not 0 <= args.port <= 65535:
        raise InputError("--port", args.port, "must be 0..65535")
    registry = _registry(args)
    try:
        httpd, _ = start_http_server(args.port, addr=args.addr, registry=registry)
    except OSError as exc:
        raise InputError("--port", args.port, f"cannot listen on {args.addr} ({exc.strerror or exc})") from None
    # the port the server got: with --port 0 the kernel chose it, and this line is how a caller learns it
    console().print(f"serving hami-hal metrics on http://{args.addr}:{httpd.server_port}/metrics")
    while True:
        time.sleep(3600)
