"""``hami conformance``: run the suite, and validate, merge or diff matrices.

Registered in the ``hami`` CLI through the ``hami_hal.cli`` entry-point group; ``python -m
hami_conformance`` runs the same commands without it. Exit codes: 0 when the command completed (a run with
unsupported cells still completed), 1 for an invalid matrix, a regression asked to fail, or an unmet MUST
with ``run --fail-on-unmet-must``; 2 for errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hami_hal import bounded_yaml
from hami_hal.cli.output import emit_json, error_line, warn_line
from hami_hal.errors import HalError, InputError

from .catalogue import default_catalogue
from .diff import diff_matrices
from .matrix_io import dump_matrix, load_matrix
from .merge import merge_matrices
from .musts import must_status
from .report import write_reports
from .runner import run_suite, summary_line
from .validate import validate_matrix

DEFAULT_OUT = "conformance-out"


def console() -> Console:
    """stdout console with markup (every data string is escaped), wide enough for long names when piped."""
    c = Console(highlight=False)
    return c if c.is_terminal else Console(highlight=False, width=max(c.width, 200))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("conformance", help="run the conformance suite; validate, merge, diff matrices",
                              description="Turn installed plugins into the standardized capability matrix.")
    sub = p.add_subparsers(dest="conformance_command", metavar="SUBCOMMAND")

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=usage)

    r = sub.add_parser("run", help="run every behaviour against this node's devices and write the matrix")
    r.add_argument("--plugin", action="append", metavar="NAME",
                   help="only this plugin (repeat or comma-separate; default: every installed plugin)")
    r.add_argument("--backend", choices=("auto", "real", "sim"), default="auto",
                   help="real devices, simulated profiles, or per plugin real if present else simulated (default)")
    r.add_argument("--sim-node", metavar="NAME",
                   help="simulated node profile to test, 'default' for the plugins' default nodes, or 'all' "
                        "(default: every fault-free node profile of the plugins)")
    r.add_argument("--node-name", metavar="NAME", help="node name to record (default: $NODE_NAME or host)")
    r.add_argument("--behaviour", "--behavior", action="append", metavar="ID",
                   help="only behaviours with this ID or ID prefix (e.g. partition/)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", dest="settings",
                   help="plugin configuration passed to every hook, e.g. device_memory_scaling=2 "
                        "(HAMi per-node settings; repeatable)")
    r.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                   help=f"folder for capability-matrix.json/.md/.html (default: {DEFAULT_OUT})")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print the matrix JSON on stdout instead of the summary")
    r.add_argument("--fail-on-unmet-must", action="store_true",
                   help="exit 1 when a row leaves a MUST behaviour unmet (vendor CI); MUSTs that only real "
                        "hardware can verify do not count on simulated rows. Default: exit 0 once the run completed")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check a matrix file: schema, evidence rules, unmet MUSTs")
    v.add_argument("file", metavar="FILE")
    v.add_argument("--strict", action="store_true", help="a MUST behaviour that is not supported is an error")
    v.add_argument("--json", action="store_true", help="print the findings as JSON")
    v.set_defaults(func=cmd_validate)

    m = sub.add_parser("merge", help="merge matrices of several nodes into one cluster matrix")
    m.add_argument("files", metavar="FILE", nargs="+")
    m.add_argument("--out", metavar="DIR", help="also write the JSON/Markdown/HTML renderings into DIR")
    m.add_argument("-o", "--output", metavar="FILE", help="write the merged JSON here (default: stdout)")
    m.set_defaults(func=cmd_merge)

    d = sub.add_parser("diff", help="what changed between two matrices")
    d.add_argument("before", metavar="A")
    d.add_argument("after", metavar="B")
    d.add_argument("--json", action="store_true", help="print the changes as JSON")
    d.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any level or figure got worse")
    d.set_defaults(func=cmd_diff)

    ls = sub.add_parser("behaviours", aliases=["behaviors"], help="list the behaviour catalogue")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_behaviours)


class _RichProgress:
    """The runner's progress sink drawn as a rich bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.task = None

    def start(self, total: int) -> None:
        self.task = self.p.add_task("conformance", total=total)

    def step(self, description: str) -> None:
        if self.task is not None:
            self.p.update(self.task, advance=1, description=description[:60])


def _plugins(values: list[str] | None) -> list[str] | None:
    names = [n.strip() for v in values or [] for n in v.split(",") if n.strip()]
    return names or None


def _settings(values: list[str] | None) -> dict:
    """``KEY=VALUE`` pairs; values are read as YAML scalars so numbers and booleans keep their type."""
    out: dict = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError("--set", item, "must look like KEY=VALUE")
        try:
            value = bounded_yaml.load(raw) if raw.strip() else ""
        except (yaml.YAMLError, ValueError):  # ValueError: bounded_yaml's size/depth/alias limits
            raise InputError("--set", item, "has a value that is not a plain scalar") from None
        if isinstance(value, (dict, list)):
            raise InputError("--set", item, "has a value that is not a plain scalar")
        out[key.strip()] = value
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from hami_hal.manager import Hal

    catalogue = default_catalogue().select(args.behaviour)
    backend = "sim" if args.sim_node not in (None, "all") and args.backend == "auto" else args.backend
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise HalError(f"--out: {str(out_dir)!r} exists and is not a folder")
    kw = dict(backend=backend, plugins=_plugins(args.plugin), sim_node=args.sim_node, node_name=args.node_name,
              catalogue=catalogue, config=_settings(args.settings))
    if args.no_progress or args.json:
        run = run_suite(Hal, **kw)
    else:
        with Progress(TextColumn("{task.description:<60}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            run = run_suite(Hal, progress=_RichProgress(bar), **kw)
    paths = write_reports(run.matrix, out_dir)
    for s in run.skipped:
        warn_line(f"skipped {s}")
    for c in run.crashed:
        warn_line(f"check did not complete: {c}")
    if args.json:
        sys.stdout.write(dump_matrix(run.matrix))
    else:
        out = console()
        for e in run.matrix.entries:
            style = "yellow" if e.provenance.simulated else "green"
            out.print(f"[{style}]{'SIMULATED' if e.provenance.simulated else 'REAL'}[/] {escape(summary_line(e))}",
                      soft_wrap=True)
        out.print(f"wrote {paths['json']}, {paths['md'].name}, {paths['html'].name}", soft_wrap=True)
    return _unmet_exit(run.matrix) if args.fail_on_unmet_must else 0


def _unmet_exit(matrix) -> int:
    """``--fail-on-unmet-must``: 1 and one line on stderr when any row leaves a MUST unmet, else 0."""
    failing = [(e, st) for e in matrix.entries if (st := must_status(e)).unmet]
    if not failing:
        return 0
    rows = "; ".join(f"{e.plugin} {e.model} [{e.provenance.label()}]: {', '.join(st.unmet)}" for e, st in failing)
    error_line(f"MUST not met on {len(failing)} row(s) (--fail-on-unmet-must): {rows}")
    return 1


def cmd_validate(args: argparse.Namespace) -> int:
    matrix = load_matrix(args.file)
    findings = validate_matrix(matrix, strict=args.strict)
    errors = [f for f in findings if f.severity == "error"]
    if args.json:
        emit_json({"file": args.file, "valid": not errors,
                   "findings": [f.__dict__ for f in findings]})
    else:
        out = console()
        for f in findings:
            colour = "red" if f.severity == "error" else "yellow"
            out.print(f"[{colour}]{f.severity}[/]: {escape(f.where)}: {escape(f.message)}", soft_wrap=True)
        verdict = "[red]invalid[/]" if errors else "[green]valid[/]"
        out.print(f"{args.file}: {verdict} — {len(matrix.entries)} row(s), {len(errors)} error(s), "
                  f"{len(findings) - len(errors)} warning(s)", soft_wrap=True)
    return 1 if errors else 0


def cmd_merge(args: argparse.Namespace) -> int:
    merged = merge_matrices([load_matrix(f) for f in args.files])
    text = dump_matrix(merged)
    if args.out:
        write_reports(merged, Path(args.out))
    if args.output:
        Path(args.output).write_text(text)
    elif not args.out:
        sys.stdout.write(text)
    if args.out or args.output:
        console().print(f"merged {len(args.files)} matrices into {len(merged.entries)} row(s)")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    changes = diff_matrices(load_matrix(args.before), load_matrix(args.after))
    worse = [c for c in changes if c.direction == "worse"]
    if args.json:
        emit_json([c.as_dict() for c in changes])
    elif not changes:
        console().print("no changes")
    else:
        t = Table(title=f"{args.before} → {args.after}")
        for col in ("row", "behaviour", "change", "before", "after", ""):
            t.add_column(col, overflow="fold")
        mark = {"better": "[green]better[/]", "worse": "[red]worse[/]", "changed": "changed", "info": "info"}
        for c in changes:
            t.add_row(escape(c.row), escape(c.behaviour or ""), c.kind, escape(c.before or ""),
                      escape(c.after or ""), mark[c.direction])
        console().print(t)
    return 1 if worse and args.fail_on_regression else 0


def cmd_behaviours(args: argparse.Namespace) -> int:
    cat = default_catalogue()
    if args.json:
        emit_json({"suite_version": cat.version, "behaviours": [b.model_dump(mode="json") for b in cat]})
        return 0
    t = Table(title=f"behaviour catalogue {cat.version}")
    for col in ("id", "req", "probe", "title"):
        t.add_column(col)
    for b in cat:
        t.add_row(b.id, b.requirement.value, "yes" if b.needs_probe else "", b.title)
    console().print(t)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hami_conformance ...``: the same subcommands without the ``hami`` CLI."""
    parser = argparse.ArgumentParser(prog="python -m hami_conformance")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["conformance", *(argv if argv is not None else sys.argv[1:])])
    try:
        return int(args.func(args) or 0)
    except HalError as err:
        error_line(str(err))
        return err.exit_code


__all__ = ["main", "register"]
