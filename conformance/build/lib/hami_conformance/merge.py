"""Merge matrices of several nodes (or runs) into one cluster matrix.

Rows of the same device model, plugin version and provenance are combined: nodes are joined, device counts
added, and each cell takes the worst level any node reported (a capability holds for the cluster only if it
holds everywhere), with per-node evidence kept. A node present in several inputs counts once: its newest
row wins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hami_hal.errors import InputError
from hami_hal.models import CapabilityMatrix, CapabilityResult, DeviceModelEntry, MatrixMetadata

from . import __version__
from .levels import worst


def _key(e: DeviceModelEntry) -> tuple:
    p = e.provenance
    return (e.vendor, e.model, e.plugin, e.plugin_version, p.source,
            p.profile if p.simulated else p.driver_version)


def _merge_cells(rows: list[DeviceModelEntry]) -> list[CapabilityResult]:
    ids: list[str] = []
    for r in rows:
        ids += [c.id for c in r.capabilities if c.id not in ids]
    multi = len(rows) > 1
    out = []
    for cid in ids:
        have = [(r, c) for r in rows if (c := r.cell(cid)) is not None]
        levels = [c.level for _, c in have]
        lvl = worst(levels)
        tag = (lambda r: f"[{', '.join(r.nodes)}] ") if multi else (lambda r: "")
        evidence = [tag(r) + ev for r, c in have for ev in c.evidence]
        measurements = [m.model_copy(update={"conditions": (tag(r) + m.conditions).strip()})
                        for r, c in have for m in c.measurements]
        notes = [c.notes for _, c in have if c.notes]
        if len(set(levels)) > 1:
            notes.insert(0, "nodes disagree: " + ", ".join(f"{'/'.join(r.nodes)} {c.level.value}" for r, c in have))
        if len(have) < len(rows):
            notes.append(f"not run on {len(rows) - len(have)} of {len(rows)} input row(s)")
        out.append(CapabilityResult(id=cid, requirement=have[0][1].requirement, level=lvl, evidence=evidence,
                                    measurements=measurements, notes="; ".join(dict.fromkeys(notes))))
    return out


def merge_matrices(matrices: list[CapabilityMatrix]) -> CapabilityMatrix:
    if not matrices:
        raise InputError("merge", [], "needs at least one matrix")
    groups: dict[tuple, list[DeviceModelEntry]] = {}
    for m in matrices:
        for e in m.entries:
            groups.setdefault(_key(e), []).append(e)
    entries = []
    for rows in groups.values():
        rows = sorted(rows, key=lambda e: e.tested_at, reverse=True)
        kept, seen = [], set()
        for r in rows:  # newest first: an older row of an already-covered node is dropped
            if set(r.nodes) and set(r.nodes) <= seen:
                continue
            kept.append(r)
            seen |= set(r.nodes)
        kept.reverse()
        base = kept[-1]
        entries.append(base.model_copy(update={
            "nodes": list(dict.fromkeys(n for r in kept for n in r.nodes)),
            "device_count": sum(r.device_count for r in kept),
            "tested_at": max(r.tested_at for r in kept),
            "capabilities": _merge_cells(kept),
        }))
    suites = list(dict.fromkeys(m.metadata.suite_version for m in matrices))
    return CapabilityMatrix(
        metadata=MatrixMetadata(generated_at=datetime.now(UTC), generator="hami-conformance merge",
                                generator_version=__version__, suite_version=" + ".join(suites)),
        entries=entries,
    )
