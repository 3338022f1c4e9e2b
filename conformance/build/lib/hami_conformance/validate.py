"""Validate a matrix beyond its schema, with rules in the spirit of CNCF k8s-ai-conformance's validator.

Errors make a matrix unacceptable (claims without evidence, hardware claims from simulation); warnings
list what a reader must know (MUST behaviours not met, behaviours not run). ``strict`` turns unmet MUSTs
into errors, for a vendor's certification run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from hami_hal.models import CapabilityMatrix, Level, Requirement

from .catalogue import Catalogue, default_catalogue


@dataclass(frozen=True)
class Finding:
    severity: Literal["error", "warning"]
    where: str
    message: str

    def line(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"


def validate_matrix(matrix: CapabilityMatrix, *, catalogue: Catalogue | None = None,
                    strict: bool = False) -> list[Finding]:
    catalogue = catalogue or default_catalogue()
    out: list[Finding] = []

    def add(sev, where, msg):
        out.append(Finding(sev, where, msg))

    rows = Counter((e.vendor, e.model, e.plugin, e.plugin_version, e.provenance.source, e.provenance.profile,
                    e.provenance.driver_version, tuple(e.nodes)) for e in matrix.entries)
    for key, n in rows.items():
        if n > 1:
            add("error", f"{key[0]} {key[1]}", f"row appears {n} times for the same nodes and provenance")
    for e in matrix.entries:
        row = f"{e.vendor} {e.model} [{e.provenance.source}]"
        prov = e.provenance
        if prov.simulated and not prov.profile:
            add("error", row, "simulated provenance must name its profile")
        if not prov.simulated and not prov.device_model:
            add("error", row, "real provenance must name the device model")
        if not prov.simulated and not prov.driver_version:
            add("warning", row, "real provenance does not name the driver version")
        if e.device_count == 0:
            add("warning", row, "device_count is 0")
        ids = Counter(c.id for c in e.capabilities)
        for cid, n in ids.items():
            if n > 1:
                add("error", f"{row} {cid}", f"cell appears {n} times")
        for b in catalogue:
            if b.id not in ids:
                add("warning", f"{row} {b.id}", "behaviour was not run")
        for c in e.capabilities:
            where = f"{row} {c.id}"
            b = catalogue.get(c.id)
            if b is None:
                add("warning", where, f"not in the catalogue of suite {catalogue.version}")
            elif b.requirement != c.requirement:
                add("error", where, f"requirement {c.requirement.value} but the catalogue says {b.requirement.value}")
            if c.level is Level.NOT_APPLICABLE and not c.notes.strip():
                add("error", where, "not-applicable needs notes saying why")
            if c.level is Level.SUPPORTED and not c.evidence:
                add("error", where, "supported needs evidence")
            if b is not None and b.needs_probe and c.level is Level.SUPPORTED:
                if not c.measurements:
                    add("error", where, "supported needs measurements from the plugin's probe")
                if prov.simulated:
                    add("error", where, "supported on simulated hardware: only a real probe can prove it")
            for m in c.measurements:
                if not m.unit.strip():
                    add("error", where, f"measurement {m.name!r} has no unit")
            if c.requirement is Requirement.MUST and c.level not in (Level.SUPPORTED, Level.NOT_APPLICABLE):
                add("error" if strict else "warning", where, f"MUST behaviour is {c.level.value}")
    return out
