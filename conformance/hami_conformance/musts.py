"""Which MUST behaviours of a row are not met, and which a simulated row simply cannot verify.

A behaviour that only a probe on real hardware can prove (``needs_probe``: a hard memory limit, what a
process sees as total memory) stays ``unverified`` on a simulated row whatever the plugin does. Calling that
"MUST not met" reads as a failure; it is a limit of simulation, so it is reported apart and does not fail
``hami conformance run --fail-on-unmet-must``. On a real row an unverified MUST is unmet: the probe ran
there and could not prove it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hami_hal.models import DeviceModelEntry, Level, Requirement

from .catalogue import Catalogue, default_catalogue

MET = (Level.SUPPORTED, Level.NOT_APPLICABLE)


@dataclass(frozen=True)
class MustStatus:
    """The MUST behaviour IDs of one row that are not met, and those that need hardware to verify."""

    unmet: list[str] = field(default_factory=list)
    needs_hardware: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The tail of a summary line: ``every MUST met``, or what is not met and what needs hardware."""
        parts = []
        if self.unmet:
            parts.append(f"MUST not met: {', '.join(self.unmet)}")
        elif self.needs_hardware:
            parts.append("every MUST that simulation can check is met")
        else:
            parts.append("every MUST met")
        if self.needs_hardware:
            parts.append(f"cannot be verified without hardware: {', '.join(self.needs_hardware)}")
        return "; ".join(parts)


def must_status(entry: DeviceModelEntry, catalogue: Catalogue | None = None) -> MustStatus:
    catalogue = catalogue or default_catalogue()
    status = MustStatus()
    for c in entry.capabilities:
        if c.requirement is not Requirement.MUST or c.level in MET:
            continue
        behaviour = catalogue.get(c.id)
        probe_only = behaviour is not None and behaviour.needs_probe
        if entry.provenance.simulated and c.level is Level.UNVERIFIED and probe_only:
            status.needs_hardware.append(c.id)
        else:
            status.unmet.append(c.id)
    return status
