"""``hami-scheduler`` (and ``hami scheduler``): simulate the openb trace, serve the extender."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from hami_hal.errors import HalError, InputError

from .policies import POLICIES
from .sim.cluster import DEFAULT_TIE_BREAK, TIE_BREAKS
from .sim.trace import HOW_TO_GET, VARIANTS, cache_trace_dir, default_trace_dir, missing_files, trace_files


def _seeds(text: str) -> list[int]:
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            if hi < lo:
                raise ValueError
            return list(range(lo, hi + 1))
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise InputError("--seeds", text, "must be N, N,M,... or LO-HI") from None


def _names(text: str, allowed, field: str) -> list[str]:
    if text == "all":
        return list(allowed)
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in allowed:
            raise InputError(field, n, f"is not one of {', '.join(allowed)}")
    return names


def _positive(value: int | None, field: str) -> None:
    if value is not None and value < 1:
        raise InputError(field, value, "must be at least 1")


def _trace_dir(arg: str | None, variants: list[str]) -> Path:
    """The trace folder (``--trace-dir``, else ``$HAMI_TRACE_DIR``, else the cache) holding these variants."""
    trace_dir = Path(arg).expanduser() if arg else default_trace_dir()
    field = "--trace-dir" if arg else ("HAMI_TRACE_DIR" if os.environ.get("HAMI_TRACE_DIR") else "trace folder")
    if not trace_dir.is_dir():
        raise InputError(field, str(trace_dir), f"is not a directory ({HOW_TO_GET})")
    missing = missing_files(trace_dir, variants)
    if missing:
        raise InputError(field, str(trace_dir), f"has no {missing[0]} ({HOW_TO_GET})")
    return trace_dir


def cmd_simulate(args: argparse.Namespace) -> int:
    from .sim.report import PARTIAL_NOTE, run_sources, summarise, write_outputs
    from .sim.run import FileSource, TraceSource

    # Every argument is checked before the trace folder, so a typo is named even without the trace.
    policies = _names(args.policies, POLICIES, "--policies")
    seeds = _seeds(args.seeds)
    _positive(args.limit, "--limit")
    _positive(args.workers, "--workers")
    if args.pods or args.nodes:
        if not (args.pods and args.nodes):
            missing = "--nodes" if args.pods else "--pods"
            raise InputError(missing, None, "is required with " + ("--pods" if args.pods else "--nodes"))
        if args.variant is not None or args.trace_dir is not None:
            raise InputError("--variant/--trace-dir", args.variant or args.trace_dir, "cannot be combined with --pods")
        sources = [FileSource(args.nodes, args.pods)]
        where = {"pods_file": args.pods, "nodes_file": args.nodes,
                 "provenance": f"simulated: user node list {args.nodes} and pod list {args.pods} (FGD method); "
                               "no hardware involved"}
    else:
        variants = _names(args.variant or "default", VARIANTS, "--variant")
        trace_dir = _trace_dir(args.trace_dir, variants)
        sources = [TraceSource(str(trace_dir), v) for v in variants]
        where = {"trace_dir": str(trace_dir), "variants": variants}
    results = run_sources(
        sources, policies, seeds, workers=args.workers, limit=args.limit,
        tie_break=args.tie_break, progress=not args.json, engine_check=not args.no_engine_check,
    )
    meta = {
        "command": "hami-scheduler " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        **where, "policies": policies, "seeds": seeds,
        "tie_break": args.tie_break, "limit": args.limit, "engine_check": not args.no_engine_check,
    }
    rows = summarise(results, full_trace=args.limit is None)
    if args.out:
        paths = write_outputs(results, Path(args.out), meta)
        if not args.json:
            print("wrote " + ", ".join(str(p) for p in paths.values()))
            if "png" not in paths:
                print(f"no plot: {NO_MATPLOTLIB}; then: hami-scheduler plot {paths['csv']}")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        full = args.limit is None
        published = full and any(r["published_alloc_100"] is not None for r in rows)
        table = Table(title="GPU allocation ratio (%), median over seeds")
        cols = ["variant", "policy", "seeds", "@100", "@130", "failed pods", "bound @100", "bound @130"]
        for col in cols + (["published @100"] if published else []):
            table.add_column(col)
        for r in rows:
            cells = [r["variant"], r["policy"], str(r["seeds"]), f"{r['alloc_100_median']:.2f}",
                     f"{r['alloc_130_median']:.2f}", str(r["failed_pods_median"]),
                     *("–" if v is None else f"{v:.2f}" for v in (r["bound_100_median"], r["bound_130_median"]))]
            if published:
                cells.append(str(r["published_alloc_100"] or "–"))
            table.add_row(*cells)
        Console().print(table)
        if not full:
            print(PARTIAL_NOTE.format(limit=args.limit))
    return 0


NO_MATPLOTLIB = "matplotlib is not installed (pip install 'hami-scheduler[plot]')"


def cmd_plot(args: argparse.Namespace) -> int:
    from .sim.report import plot, read_curves

    csv_path = Path(args.csv)
    out = Path(args.out) if args.out else csv_path.with_suffix(".png")
    if plot(read_curves(csv_path), out) is None:
        print(f"hami-scheduler: {NO_MATPLOTLIB}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


class _FetchBar:
    """:class:`~.sim.trace_fetch.FetchProgress` drawn as one rich download bar per file on stderr."""

    def __init__(self, progress) -> None:
        self.p = progress
        self.task = None

    def begin(self, name: str, total: int, done: int) -> None:
        self.task = self.p.add_task(name, total=total, completed=done)

    def advance(self, nbytes: int) -> None:
        if self.task is not None:
            self.p.advance(self.task, nbytes)

    def end(self, name: str, status: str) -> None:
        self.task = None


def cmd_trace_fetch(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from .sim.trace_fetch import TERMS, fetch_trace

    variants = _names(args.variant, VARIANTS, "--variant")
    dest = Path(args.dest).expanduser() if args.dest else default_trace_dir()
    names = trace_files(variants)
    err = Console(stderr=True)
    if args.no_progress or not err.is_terminal:
        results = fetch_trace(dest, names, base_url=args.base_url)
    else:
        with Progress(TextColumn("{task.description:<32}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=err) as bar:
            results = fetch_trace(dest, names, base_url=args.base_url, progress=_FetchBar(bar))
    fetched = [r for r in results if r.status != "present"]
    print(f"{dest}: {len(results)} file(s) verified (SHA-256), {len(fetched)} downloaded, "
          f"{sum(r.transferred for r in fetched)} bytes")
    print(TERMS)
    return 0


def cmd_trace_status(args: argparse.Namespace) -> int:
    from .sim.trace_fetch import PINNED, file_state

    dest = Path(args.dest).expanduser() if args.dest else default_trace_dir()
    states = {name: file_state(dest / name, PINNED[name]) for name in trace_files(list(VARIANTS))}
    if args.json:
        print(json.dumps({"trace_dir": str(dest), "files": states}, indent=2))
    else:
        print(f"trace folder: {dest}")
        for name, state in states.items():
            print(f"  {state:<8} {name}")
    if any(state != "ok" for state in states.values()):
        if not args.json:
            print(f"not complete: {HOW_TO_GET}")
        return 1
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    return serve(args)


def _tilde(path: Path) -> str:
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)


def add_commands(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("simulate", help="replay the openb GPU trace with the FGD method")
    sim.add_argument("--trace-dir", help="openb-gpu-v2023 folder (default: $HAMI_TRACE_DIR, else "
                     f"{_tilde(cache_trace_dir())}, where `hami-scheduler trace fetch` puts it)")
    sim.add_argument("--variant", default=None,
                     help=f"comma list or 'all' ({', '.join(VARIANTS)}); default: default")
    sim.add_argument("--pods", help="your own pod list (openb CSV: name,cpu_milli,memory_mib,num_gpu,gpu_milli"
                                    "[,gpu_spec,...]) instead of a trace variant; needs --nodes")
    sim.add_argument("--nodes", help="your own node list (openb CSV: sn,cpu_milli,memory_mib,gpu,model); needs --pods")
    sim.add_argument("--policies", default="all", help=f"comma list or 'all' ({', '.join(POLICIES)})")
    sim.add_argument("--seeds", default="42-51", help="LO-HI or a comma list (paper: 42-51)")
    sim.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    sim.add_argument("--limit", type=int, default=None, help="only the first N arriving pods (tests)")
    sim.add_argument("--tie-break", choices=TIE_BREAKS, default=DEFAULT_TIE_BREAK,
                     help="equal node scores: first in a per-seed random node order (the paper's "
                          "simulator, default), first in list order, or uniform per pod")
    sim.add_argument("--no-engine-check", action="store_true",
                     help="skip committing every placement through the hami-hal engine (faster)")
    sim.add_argument("--out", help="output stem: writes <out>.csv/.json/.md/.png")
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.set_defaults(func=cmd_simulate)

    plt = sub.add_parser("plot", help="draw the PNG of a simulate CSV (unallocated GPU %% vs arrived %%)")
    plt.add_argument("csv", help="<out>.csv written by simulate --out")
    plt.add_argument("--out", help="PNG path (default: the CSV's path with .png)")
    plt.set_defaults(func=cmd_plot)

    from .sim.trace_fetch import SOURCE_URL

    trace = sub.add_parser("trace", help="the openb GPU trace the simulator replays: download it, check it",
                           description="The Alibaba openb GPU trace (cluster-trace-gpu-v2023), fetched with "
                                       "pinned SHA-256 checksums into the user's cache folder.")
    tsub = trace.add_subparsers(dest="trace_cmd", metavar="ACTION", required=True)
    fetch = tsub.add_parser("fetch", help="download the trace files (resumable; skips verified ones)")
    fetch.add_argument("--variant", default="all", help=f"comma list or 'all' ({', '.join(VARIANTS)})")
    fetch.add_argument("--dest", help="folder (default: $HAMI_TRACE_DIR, else the cache folder)")
    fetch.add_argument("--base-url", default=SOURCE_URL,
                       help="folder URL of the CSV files: a mirror, or file:///path for a local copy "
                            "(default: the public GitHub repository)")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    fetch.set_defaults(func=cmd_trace_fetch)
    status = tsub.add_parser("status", help="show the trace folder and which files are there and verified")
    status.add_argument("--dest", help="folder (default: $HAMI_TRACE_DIR, else the cache folder)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=cmd_trace_status)

    srv = sub.add_parser("serve", help="run the kube-scheduler extender (filter/prioritize/bind)")
    srv.add_argument("--bind", default="127.0.0.1:8888", help="host:port of the extender HTTP server")
    srv.add_argument("--tls-cert", default=None, help="PEM certificate (chain) the extender serves HTTPS with")
    srv.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    srv.add_argument("--client-ca", default=None,
                     help="PEM CA bundle: every client (kube-scheduler) must present a certificate it signed")
    srv.add_argument("--insecure-listen", action="store_true",
                     help="DANGEROUS: allow a non-loopback --bind without TLS client authentication; anyone who "
                          "reaches the port then controls pod placement")
    srv.add_argument("--max-connections", type=int, default=512,
                     help="open client connections at most; more are closed at once (default 512)")
    srv.add_argument("--metrics-bind", default="", help="host:port for /metrics (default: same server)")
    srv.add_argument("--legacy-metrics", action="store_true",
                     help="also serve HAMi's legacy scheduler metric names (GPUDeviceMemoryLimit...), as HAMi's switch")
    srv.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: in-cluster, then ~/.kube/config)")
    srv.add_argument("--api-server", default=None, help="API server URL without auth (tests, kubectl proxy)")
    srv.add_argument("--policy", default="binpack", help="default node policy: binpack, spread or a simulator policy")
    srv.add_argument("--workload-refresh", type=float, default=10.0, metavar="SECONDS",
                     help="fragmentation policies (fgd, frag-pack...): re-read the running pod mix at most this often")
    srv.add_argument("--workload-seed", default=None, metavar="FILE|trace:VARIANT",
                     help="fragmentation policies: the workload mix to score against until the cluster holds "
                          "--workload-takeover pods of its own (an openb-format pod list, or trace:<variant>)")
    srv.add_argument("--workload-takeover", type=int, default=100, metavar="PODS",
                     help="held device pods from which the cluster's own mix replaces the seed (default 100)")
    srv.add_argument("--capability-matrix", default=None, help="CapabilityMatrix JSON file")
    srv.add_argument("--capability-configmap", default=None, help="namespace/name[/key] of a ConfigMap holding it")
    srv.add_argument("--accept-levels", default="supported,partial",
                     help="matrix levels a hard-isolation or compute-share request may land on")
    srv.add_argument("--vendors", default=None,
                     help="JSON array of VendorInfo (resource names, annotation keys); default: installed plugins")
    srv.add_argument("--scheduler-name", default="hami-scheduler")
    from . import events, leader, webhook

    leader.add_flags(srv)
    events.add_flags(srv)
    srv.set_defaults(func=cmd_serve)
    webhook.add_command(sub)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Entry point of group ``hami_hal.cli``: adds ``hami scheduler ...``."""
    p = subparsers.add_parser("scheduler", help="scheduler extender and trace simulator")
    add_commands(p.add_subparsers(dest="scheduler_cmd", required=True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hami-scheduler", description=__doc__)
    add_commands(parser.add_subparsers(dest="cmd", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
