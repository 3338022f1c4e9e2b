"""Shared pieces of the renderings: column order, level symbols, row titles."""

from __future__ import annotations

from hami_hal.models import CapabilityMatrix, DeviceModelEntry, Level

from ..catalogue import Catalogue, default_catalogue

SYMBOL = {
    Level.SUPPORTED: "✅",
    Level.PARTIAL: "🟡",
    Level.UNSUPPORTED: "❌",
    Level.UNVERIFIED: "❔",
    Level.NOT_APPLICABLE: "➖",
}


def columns(matrix: CapabilityMatrix, catalogue: Catalogue | None = None) -> list[str]:
    """Behaviour IDs in catalogue order, then any the catalogue does not know (older/newer suites)."""
    catalogue = catalogue or default_catalogue()
    present = {c.id for e in matrix.entries for c in e.capabilities}
    ordered = [i for i in catalogue.ids() if i in present]
    return ordered + sorted(present - set(ordered))


def row_title(e: DeviceModelEntry) -> str:
    return f"{e.model} ×{e.device_count}"


def is_simulated(matrix: CapabilityMatrix) -> bool:
    return any(e.provenance.simulated for e in matrix.entries)
