"""Device health as a plugin reports it."""

from __future__ import annotations

from pydantic import Field

from .base import HalModel


class HealthStatus(HalModel):
    """Health of one device. An unhealthy device becomes unallocatable."""

    uuid: str
    healthy: bool
    #: Why it is unhealthy (``XID 79: GPU has fallen off the bus``), or None.
    reason: str | None = None
    #: Recent events the plugin saw (XIDs, ECC counts), most recent last.
    events: list[str] = Field(default_factory=list)
