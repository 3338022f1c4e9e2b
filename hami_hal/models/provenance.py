"""Where a device, figure or capability came from: a real device and driver, or a simulated profile."""

from __future__ import annotations

from typing import Literal

from .base import HalModel


class Provenance(HalModel):
    """Origin of data. A simulated result must never be shown as a hardware result."""

    source: Literal["real", "simulated"]
    #: Product name as the vendor library reports it (e.g. "Acme X100 16GB").
    device_model: str | None = None
    driver_version: str | None = None
    #: Vendor runtime version (e.g. the compute runtime's driver API version, "13.0").
    runtime_version: str | None = None
    #: Name of the simulated node profile, when ``source == "simulated"``.
    profile: str | None = None
    host: str | None = None

    @property
    def simulated(self) -> bool:
        return self.source == "simulated"

    def label(self) -> str:
        """One human line, e.g. ``real: Acme X100 16GB, driver 2.1.0``."""
        if self.simulated:
            return f"simulated: profile {self.profile or '?'}"
        parts = [self.device_model or "unknown device"]
        if self.driver_version:
            parts.append(f"driver {self.driver_version}")
        if self.runtime_version:
            parts.append(f"runtime {self.runtime_version}")
        return "real: " + ", ".join(parts)
