"""What is already taken on a device: the input of every fit decision."""

from __future__ import annotations

from pydantic import Field

from .base import HalModel
from .partition import Placement


class TemplateInstance(HalModel):
    """One live template partition (a hardware instance, a template slice) on a device."""

    template: str
    placement: Placement | None = None


class DeviceUsage(HalModel):
    """Usage of one device, summed over every allocation on it."""

    uuid: str
    used_slots: int = Field(default=0, ge=0)
    used_memory_mib: int = Field(default=0, ge=0)
    used_compute_percent: int = Field(default=0, ge=0)
    used_compute_units: int = Field(default=0, ge=0)
    instances: list[TemplateInstance] = Field(default_factory=list)
    #: A tenant holds the device exclusively.
    exclusive: bool = False
