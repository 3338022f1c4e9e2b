"""Result of a workload probe a vendor plugin runs on a device for the conformance suite."""

from __future__ import annotations

from pydantic import Field

from .base import HalModel
from .capability import Level, Measurement


class ProbeResult(HalModel):
    """What a probe measured for one behaviour; the suite records it as the cell."""

    behaviour_id: str
    level: Level
    evidence: list[str] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    notes: str = ""
