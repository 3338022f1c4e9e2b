"""The capability matrix: what each device model really supports, with evidence and figures.

The conformance suite writes it, the scheduler reads it. One row (``DeviceModelEntry``) per
vendor + device model + provenance; one cell (``CapabilityResult``) per behaviour ID.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from .. import API_VERSION
from .base import HalModel
from .device import model_key
from .provenance import Provenance


class Level(StrEnum):
    """How far a capability holds. ``unverified`` = claimed but no probe could prove it."""

    SUPPORTED = "supported"
    PARTIAL = "partial"
    UNSUPPORTED = "unsupported"
    UNVERIFIED = "unverified"
    NOT_APPLICABLE = "not-applicable"


class Requirement(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Measurement(HalModel):
    """A measured figure with its unit and the conditions it was measured under."""

    name: str
    value: float
    unit: str
    conditions: str = ""
    #: The target it is judged against, e.g. ``<= 2 %``.
    target: str | None = None


class InjectedFault(HalModel):
    """What a behaviour showed under a fault injected on a simulated copy of the node. Kept apart from
    the cell's own level and evidence: on a real row those come from the real device only."""

    level: Level
    #: The simulated node profile the fault was injected through.
    profile: str
    evidence: list[str] = Field(default_factory=list)


class CapabilityResult(HalModel):
    """One cell: a behaviour, its level on this device model, and why."""

    id: str
    requirement: Requirement
    level: Level
    evidence: list[str] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    notes: str = ""
    #: Only for behaviours a healthy device cannot show (a fault): the injected-fault result, separate.
    injected: InjectedFault | None = None


class DeviceModelEntry(HalModel):
    """One row: a device model as one plugin version drives it, on real or simulated hardware."""

    vendor: str
    model: str
    plugin: str
    plugin_version: str
    provenance: Provenance
    nodes: list[str] = Field(default_factory=list)
    device_count: int = Field(default=0, ge=0)
    tested_at: datetime
    capabilities: list[CapabilityResult] = Field(default_factory=list)

    def cell(self, capability_id: str) -> CapabilityResult | None:
        return next((c for c in self.capabilities if c.id == capability_id), None)


class MatrixMetadata(HalModel):
    generated_at: datetime
    generator: str = "hami-conformance"
    generator_version: str = ""
    #: Version of the behaviour catalogue the run used.
    suite_version: str = ""


class CapabilityMatrix(HalModel):
    """The standardized capability matrix document."""

    api_version: Literal["hami-hal.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["CapabilityMatrix"] = "CapabilityMatrix"
    metadata: MatrixMetadata
    entries: list[DeviceModelEntry] = Field(default_factory=list)

    def entry(self, vendor: str, model: str, source: str | None = None) -> DeviceModelEntry | None:
        """The row for a device model (joined on :func:`model_key`, so any spelling of the model
        finds it); real rows win over simulated ones unless ``source`` is given."""
        key = model_key(model, vendor)
        rows = [e for e in self.entries if e.vendor == vendor and model_key(e.model, vendor) == key]
        if source:
            rows = [e for e in rows if e.provenance.source == source]
        rows.sort(key=lambda e: (e.provenance.source != "real", -e.tested_at.timestamp()))
        return rows[0] if rows else None

    def level(self, vendor: str, model: str, capability_id: str) -> Level | None:
        """Level of one capability for a device model, or None when the matrix has no such cell."""
        row = self.entry(vendor, model)
        cell = row.cell(capability_id) if row else None
        return cell.level if cell else None

    def vouch(self, vendor: str, model: str, capability_id: str, device_source: str) -> tuple[Level | None, str]:
        """The level the matrix vouches for on a device of ``device_source``, and one line saying why.

        A simulated row never vouches for a real device: the answer is then None with the reason.
        """
        row = self.entry(vendor, model)
        if row is None:
            return None, f"{capability_id}: the capability matrix has no row for {vendor} {model}"
        if device_source == "real" and row.provenance.source != "real":
            return None, (f"{capability_id}: the only {vendor} {model} row is simulated "
                          f"(profile {row.provenance.profile or '?'}); a simulated row never vouches for a real device")
        cell = row.cell(capability_id)
        if cell is None:
            return None, f"{capability_id}: the {vendor} {model} row has no such cell"
        return cell.level, f"{capability_id} is {cell.level.value} for {vendor} {model} ({row.provenance.label()})"
