"""Run the catalogue against every selected plugin's devices and build the CapabilityMatrix.

One row per plugin x device model x provenance. ``backend="auto"`` uses each plugin's real devices when it
has any and its simulated node profiles otherwise (every fault-free profile, one row per model and
profile), so one run on a GPU node gives real rows for the present vendors and clearly labelled simulated
rows for the rest.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from hami_hal.errors import HalError
from hami_hal.manager import Hal
from hami_hal.models import (
    CapabilityMatrix,
    Device,
    DeviceModelEntry,
    Level,
    MatrixMetadata,
    NodeInventory,
)

from . import __version__
from .catalogue import Catalogue, default_catalogue
from .checks import CheckContext, run_check
from .musts import must_status

BackendChoice = Literal["auto", "real", "sim"]


class Progress(Protocol):
    """What the runner reports to (the CLI's rich progress bar, or nothing)."""

    def start(self, total: int) -> None: ...
    def step(self, description: str) -> None: ...


class _Silent:
    def start(self, total: int) -> None:
        pass

    def step(self, description: str) -> None:
        pass


@dataclass
class RowPlan:
    """The devices of one row and the plugin manager/inventory they were discovered with."""

    hal: Hal
    inventory: NodeInventory
    backend: Literal["real", "sim"]
    plugin: str
    vendor: str
    devices: list[Device]
    #: Node profile the devices were simulated from (None: real, or the merged default nodes).
    sim_node: str | None = None


@dataclass
class SuiteRun:
    """The matrix plus what the CLI prints: one summary line per row, skipped plugins, crashed checks."""

    matrix: CapabilityMatrix
    skipped: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)

    def summaries(self) -> list[str]:
        return [summary_line(e) for e in self.matrix.entries]


def summary_line(entry: DeviceModelEntry) -> str:
    counts = Counter(c.level.value for c in entry.capabilities)
    order = [lv.value for lv in Level]
    tally = ", ".join(f"{counts[k]} {k}" for k in order if counts[k])
    tail = f"; {must_status(entry).text()}"
    return (f"{entry.plugin} {entry.model} x{entry.device_count} [{entry.provenance.label()}]: {tally}{tail}")


def _group(devices: Iterable[Device]) -> dict[str, list[Device]]:
    rows: dict[str, list[Device]] = {}
    for d in sorted(devices, key=lambda d: d.index):
        rows.setdefault(d.model, []).append(d)
    return rows


def plan_rows(
    hal_factory: Callable[[], Hal],
    *,
    backend: BackendChoice = "auto",
    plugins: list[str] | None = None,
    sim_node: str | None = None,
    node_name: str | None = None,
    config: dict | None = None,
) -> tuple[list[RowPlan], list[str]]:
    """Discover devices per plugin and split them into rows; returns the rows and 'skipped' lines."""
    node_name = node_name or os.environ.get("NODE_NAME") or socket.gethostname()
    hal = hal_factory()
    names = list(hal.plugins)
    if plugins:
        unknown = [p for p in plugins if p not in hal.plugins]
        if unknown:
            known = ", ".join(names) or "none"
            raise HalError(f"--plugin: {unknown[0]!r} is not an installed plugin (installed: {known})")
        names = [n for n in names if n in plugins]
    if not names:
        raise HalError("no hami-hal plugin is installed (pip install a hami-plugins-<vendor> distribution)")
    rows: list[RowPlan] = []
    skipped: list[str] = []
    real_vendors: set[str] = set()
    if backend in ("auto", "real"):
        inv = hal.discover("real", node_name=node_name, config=config)
        for name in names:
            vendor = hal.plugins[name].vendor.name
            devs = [d for d in inv.devices if d.vendor == vendor]
            if devs:
                real_vendors.add(vendor)
                rows += [RowPlan(hal, inv, "real", name, vendor, g) for g in _group(devs).values()]
        reasons = {s.name: s.reason for s in inv.skipped}
        if backend == "real" and not rows:
            why = "; ".join(f"{n}: {reasons.get(n, 'no devices found')}" for n in names)
            raise HalError(f"--backend real: no real devices found ({why})")
        for n in names:
            if hal.plugins[n].vendor.name not in real_vendors and n in reasons and backend == "real":
                skipped.append(f"{n}: {reasons[n]}")
    want_sim = [n for n in names if hal.plugins[n].vendor.name not in real_vendors]
    if backend in ("auto", "sim") and want_sim:
        vendors = {hal.plugins[n].vendor.name: n for n in want_sim}
        covered: set[str] = set()
        for profile in sim_nodes(hal, sim_node, set(vendors)):
            # A plugin manager per node profile: its contexts must not re-route other rows' hooks.
            sim_hal = hal_factory()
            inv = sim_hal.discover("sim", node_name=node_name, sim_node=profile, config=config)
            for vendor, name in vendors.items():
                devs = [d for d in inv.devices if d.vendor == vendor]
                if devs:
                    covered.add(vendor)
                    rows += [RowPlan(sim_hal, inv, "sim", name, vendor, g, profile) for g in _group(devs).values()]
        for vendor, name in vendors.items():
            if vendor not in covered:
                skipped.append(f"{name}: no real devices and no simulated node profile with its devices")
    return rows, skipped


def sim_nodes(hal: Hal, choice: str | None, vendors: set[str]) -> list[str | None]:
    """Node profiles to simulate: ``all`` (default) = every fault-free profile holding one of ``vendors``;
    ``default`` = the plugins' default nodes merged into one (None); anything else = that profile."""
    if choice not in (None, "all"):
        return [None if choice == "default" else choice]
    cat = hal.catalog()
    out: list[str | None] = []
    for name in sorted(cat.nodes):
        if cat.nodes[name].spec.faults:
            continue  # faulty nodes serve health/unhealthy-unallocatable, not rows of their own
        if vendors & set(cat.compose(name).vendors()):
            out.append(name)
    return out


def run_suite(
    hal_factory: Callable[[], Hal] = Hal,
    *,
    backend: BackendChoice = "auto",
    plugins: list[str] | None = None,
    sim_node: str | None = None,
    node_name: str | None = None,
    catalogue: Catalogue | None = None,
    progress: Progress | None = None,
    config: dict | None = None,
) -> SuiteRun:
    """Run every behaviour of ``catalogue`` against every row; never raises for a failing behaviour."""
    catalogue = catalogue or default_catalogue()
    progress = progress or _Silent()
    rows, skipped = plan_rows(hal_factory, backend=backend, plugins=plugins, sim_node=sim_node,
                              node_name=node_name, config=config)
    progress.start(len(rows) * len(catalogue))
    entries: list[DeviceModelEntry] = []
    crashed: list[str] = []
    for row in rows:
        loaded = row.hal.plugins[row.plugin]
        vendor_devices = [d for d in row.inventory.devices if d.vendor == row.vendor]
        cells = []
        for behaviour in catalogue:
            progress.step(f"{row.plugin} {row.devices[0].model}: {behaviour.id}")
            ctx = CheckContext(
                hal=row.hal, hal_factory=hal_factory, inventory_node=row.inventory.node, backend=row.backend,
                vendor=row.vendor, devices=row.devices, vendor_devices=vendor_devices,
                topology=row.inventory.topology, behaviour=behaviour, sim_node=row.sim_node,
                config=dict(config or {}),
            )
            cell, crash = run_check(ctx)
            if crash:
                crashed.append(f"{row.plugin} {row.devices[0].model} {behaviour.id}: {cell.evidence[0]}")
            cells.append(cell)
        prov = row.devices[0].provenance
        if prov.host is None:
            prov = prov.model_copy(update={"host": row.inventory.node})
        entries.append(DeviceModelEntry(
            vendor=row.vendor, model=row.devices[0].model, plugin=row.plugin, plugin_version=loaded.version,
            provenance=prov, nodes=[row.inventory.node], device_count=len(row.devices),
            tested_at=datetime.now(UTC), capabilities=cells,
        ))
    matrix = CapabilityMatrix(
        metadata=MatrixMetadata(generated_at=datetime.now(UTC), generator="hami-conformance",
                                generator_version=__version__, suite_version=catalogue.version),
        entries=entries,
    )
    return SuiteRun(matrix=matrix, skipped=skipped, crashed=crashed)
