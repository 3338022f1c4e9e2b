"""``hami allocate POD.yaml``: dry run of a pod on this node: what each container would get, or why not.

Steps: parse the pod with the installed vendors' resource names, refuse a request no device here could
ever hold (one line naming the field), fit the pod with the allocation engine (vendor rules are data it reads, so
the scheduler decides the same), then ask the plugins for each container's edits (env, device nodes).
Nothing is allocated: the node state is thrown away. Exit 0 when it fits, 1 when it does not.
"""

from __future__ import annotations

import argparse

from rich.table import Table
from rich.text import Text

from ..engine import NodeState, PodFit
from ..hami_compat import allocation_annotations
from ..manager import Hal
from ..models import ContainerEdits, NodeInventory, PodAllocation, PodRequest
from ..requests import ParsedPod, check_satisfiable, load_pod_file, parse_pod_detailed
from .common import add_node_options, discover
from .output import console, emit_json, sim_profile, source_label, warn_line


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("allocate", help="dry-run a pod on this node (nothing is allocated)")
    p.add_argument("pod", metavar="POD.yaml", help="pod manifest, YAML or JSON (- for stdin)")
    add_node_options(p)
    p.set_defaults(func=run)


def hami_annotations(hal: Hal, alloc: PodAllocation, pod: dict | None = None,
                     devices: list | None = None) -> dict[str, str]:
    """The pod annotations HAMi's Filter would write: every family's allocation (``hami_compat``),
    then the plugins' own extras (``hami_hal_pod_annotations``), which never replace a HAMi key."""
    spec = (pod or {}).get("spec") or {}
    n = len(spec.get("initContainers") or []) + len(spec.get("containers") or []) or None
    out = allocation_annotations(alloc, hal.vendors(), n)
    for key, value in hal.pod_annotations(alloc, devices or [], pod or {}).items():
        out.setdefault(key, value)
    return out


def dry_run(hal: Hal, inv: NodeInventory, pod: dict) -> tuple[ParsedPod, PodFit, dict[str, ContainerEdits]]:
    """Parse, check and fit ``pod`` on ``inv``; returns the parsed pod, the fit and per-container edits."""
    parsed = parse_pod_detailed(pod, hal.vendors(), hal.admit_request)
    check_satisfiable(parsed, inv.devices)
    fit = NodeState.from_inventory(inv).fit_pod(parsed.request)
    edits: dict[str, ContainerEdits] = {}
    if fit.ok and fit.allocation:
        for ctr in fit.allocation.containers:
            if ctr.slices:
                edits[ctr.name] = hal.container_edits(ctr, inv.devices)
    return parsed, fit, edits


def _render(hal: Hal, inv: NodeInventory, req: PodRequest, fit: PodFit, edits: dict[str, ContainerEdits],
            pod: dict) -> None:
    out = console()
    label = source_label(inv)
    if not req.has_devices:
        known = ", ".join(sorted(v.name for v in hal.vendors())) or "none"
        out.print(f"pod {req.namespace}/{req.name} requests no device of an installed plugin "
                  f"(installed vendors: {known}); nothing to allocate — {label}")
        return
    if not fit.ok:
        out.print(Text.assemble((f"pod {req.namespace}/{req.name} does not fit on {inv.node}", "red"),
                                f" — {label}: {fit.reason}"))
        table = Table(title="why not")
        for col in ("device", "reason", "detail"):
            table.add_column(col, overflow="fold")
        names = {d.uuid: f"{d.vendor}{d.index}" for d in inv.devices}
        for f in fit.failures:
            table.add_row(names.get(f.uuid or "", f.uuid or "-"), f.reason.value, f.detail)
        out.print(table)
        return
    assert fit.allocation is not None
    table = Table(title=f"pod {req.namespace}/{req.name} on {inv.node} — {label} (dry run)")
    for col in ("#", "container", "device", "uuid", "memory MiB", "cores %", "template", "exclusive"):
        table.add_column(col, overflow="fold", no_wrap=col == "uuid")
    for ctr in fit.allocation.containers:
        name = f"{ctr.name} (init)" if ctr.init else ctr.name
        if not ctr.slices:
            table.add_row(str(ctr.index), name, "-", "-", "-", "-", "-", "-")
        for s in ctr.slices:
            table.add_row(str(ctr.index), name, f"{s.vendor}{s.device_index}", s.uuid, str(s.memory_mib),
                          str(s.compute_percent), s.template or "-", "yes" if s.exclusive else "")
    out.print(table)
    for cname, e in edits.items():
        env = Table(title=f"container {cname}: environment and devices")
        env.add_column("name")
        env.add_column("value", overflow="fold")
        for k, v in sorted(e.env.items()):
            env.add_row(k, v)
        for dn in e.device_nodes:
            env.add_row("device", dn.path)
        for m in e.mounts:
            env.add_row("mount", f"{m.host_path} -> {m.container_path}")
        out.print(env)
    for key, value in hami_annotations(hal, fit.allocation, pod, inv.devices).items():
        out.print(f"annotation {key}: {value}", soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    pod = load_pod_file(args.pod)
    hal, inv = discover(args)
    parsed, fit, edits = dry_run(hal, inv, pod)
    req = parsed.request
    for fld, name in parsed.ignored:
        warn_line(f"{fld}: {name!r} belongs to no installed plugin; ignored")
    for line in parsed.warnings:
        warn_line(line)
    if args.json:
        emit_json({
            "node": inv.node,
            "source": inv.source,
            "simulated": inv.source == "simulated",
            "profile": sim_profile(inv),
            "fits": fit.ok,
            "reason": fit.reason,
            "request": req.model_dump(mode="json"),
            "allocation": fit.allocation.model_dump(mode="json") if fit.allocation else None,
            "failures": [f.model_dump(mode="json") for f in fit.failures],
            "ignored_resources": [{"field": f, "name": n} for f, n in parsed.ignored],
            "warnings": parsed.warnings,
            "edits": {k: e.model_dump(mode="json") for k, e in edits.items()},
            "annotations": hami_annotations(hal, fit.allocation, pod, inv.devices) if fit.ok and fit.allocation else {},
        })
    else:
        _render(hal, inv, req, fit, edits, pod)
    return 0 if fit.ok else 1
