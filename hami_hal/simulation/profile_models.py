"""Simulated hardware as data: a device profile per SKU, composed into node profiles.

A vendor plugin ships YAML files of both kinds and declares them through ``hami_hal_sim_profiles``;
users add their own through ``HAMI_HAL_PROFILE_PATH`` (a ``:``-separated list of files or folders).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .. import API_VERSION
from ..models.base import HalModel


class ProfileMeta(HalModel):
    name: str
    description: str = ""


class DeviceSpec(HalModel):
    """One SKU. ``vendor_data`` is free-form and read only by the owning plugin's fake SDK."""

    vendor: str
    model: str
    memory_mib: int = Field(ge=1)
    compute_units: int | None = Field(default=None, ge=1)
    attributes: dict = Field(default_factory=dict)
    vendor_data: dict = Field(default_factory=dict)


class DeviceProfile(HalModel):
    """``kind: DeviceProfile``: one SKU as data, composed into nodes like a mock library's device tables."""

    api_version: Literal["hami-hal.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["DeviceProfile"] = "DeviceProfile"
    metadata: ProfileMeta
    spec: DeviceSpec


class DeviceGroup(HalModel):
    """``count`` devices of one SKU, with their NUMA nodes (one entry per device, or one for all)."""

    profile: str
    count: int = Field(default=1, ge=1, le=64)
    numa_nodes: list[int | None] = Field(default_factory=list)

    @model_validator(mode="after")
    def _numa_len(self) -> DeviceGroup:
        if len(self.numa_nodes) not in (0, 1, self.count):
            raise ValueError(f"numa_nodes has {len(self.numa_nodes)} entries for {self.count} devices")
        return self


class LinkSpec(HalModel):
    """Links between device indexes of the node. ``between: all`` sets every pair not listed later."""

    between: Literal["all"] | list[int]
    #: The plugin's name for the link (e.g. a fabric or a PCIe level); its fake SDK interprets it.
    kind: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    count: int = Field(default=1, ge=0)

    @field_validator("between")
    @classmethod
    def _pair(cls, v):
        if isinstance(v, list) and (len(v) != 2 or v[0] == v[1]):
            raise ValueError(f"between must name two different device indexes, got {v}")
        return v


class FaultSpec(HalModel):
    """A fault injected into the simulated device ``index`` (e.g. ``ecc-dbe``, ``lost``)."""

    index: int = Field(ge=0)
    fault: str


class NodeSpec(HalModel):
    description: str = ""
    #: Used when the CLI falls back to simulation and no node is named.
    default: bool = False
    driver_version: str = "sim-1.0"
    runtime_version: str | None = None
    devices: list[DeviceGroup]
    links: list[LinkSpec] = Field(default_factory=list)
    faults: list[FaultSpec] = Field(default_factory=list)


class NodeProfile(HalModel):
    """``kind: NodeProfile``: a named node composed of device profiles (the ``dgxa100.New()`` idea)."""

    api_version: Literal["hami-hal.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["NodeProfile"] = "NodeProfile"
    metadata: ProfileMeta
    spec: NodeSpec
