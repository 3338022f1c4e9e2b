"""Device health as a plugin reports it."""

from __future__ import annotations

from pydantic import Field

from .base import HalModel


class HealthStatus(HalModel):
    """Health of one device. An unhealthy device becomes unallocatable."""

    uuid: str
    healthy: bool
    #: Why it is unhealthy (e.g. ``device has fallen off the bus``), or None.
    reason: str | None = None
    #: Recent events the plugin saw (driver error codes, ECC counts), most recent last.
    events: list[str] = Field(default_factory=list)
