"""Vendor-neutral requests, parsed from pod specs by :mod:`hami_hal.requests`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from .allocation import FitReason
from .base import HalModel
from .constraints import DeviceSetRules, RequestAttribute


class DevicePolicy(StrEnum):
    """How devices are chosen on a node (HAMi ``hami.io/gpu-scheduler-policy``)."""

    SPREAD = "spread"  # least-used device first (HAMi default)
    BINPACK = "binpack"  # most-used device first
    TOPOLOGY_AWARE = "topology-aware"  # best-linked set for k>1, worst-linked single device for k=1
    MUTEX = "mutex"  # idle devices only


class NodePolicy(StrEnum):
    """How nodes are chosen (HAMi ``hami.io/node-scheduler-policy``)."""

    BINPACK = "binpack"
    SPREAD = "spread"


class ResourceRequest(HalModel):
    """What one container asks of one vendor's devices. Memory and compute are per device."""

    vendor: str
    #: HAMi CommonWord of the resource family (``ACME``), written into allocation strings.
    common_word: str
    count: int = Field(ge=1)
    #: Memory per device in MiB; None when given as a percentage or defaulted to the whole device.
    memory_mib: int | None = Field(default=None, ge=0)
    #: Memory per device in percent of the device; used when ``memory_mib`` is None.
    memory_percent: int | None = Field(default=None, ge=0, le=100)
    compute_percent: int = Field(default=0, ge=0, le=100)
    whole_device: bool = False
    type_include: list[str] = Field(default_factory=list)
    type_exclude: list[str] = Field(default_factory=list)
    uuid_include: list[str] = Field(default_factory=list)
    uuid_exclude: list[str] = Field(default_factory=list)
    #: Allowed device modes, as the plugin names them (HAMi: ``hami-core`` and others); empty = any.
    modes: list[str] = Field(default_factory=list)
    #: Reason code of a mode mismatch (from ``SelectorAnnotations.mode_reason``).
    mode_reason: FitReason = FitReason.CARD_TYPE_MISMATCH
    policy: DevicePolicy = DevicePolicy.SPREAD
    numa_bind: bool = False
    #: 0 = high, 1 = low (HAMi priority resource); None = unset.
    priority: int | None = Field(default=None, ge=0)
    #: The family's multi-device rules (copied from ``ResourceFamily.device_sets`` by the parser).
    device_sets: DeviceSetRules | None = None
    #: Vendor pod annotations that steer fit or travel to the plugin (from ``ResourceFamily.pod_annotations``).
    attributes: list[RequestAttribute] = Field(default_factory=list)

    @property
    def takes_whole_devices(self) -> bool:
        """Whole devices: asked for, or the family's rule for multi-device requests."""
        rule = self.device_sets.whole_device_above if self.device_sets else None
        return self.whole_device or (rule is not None and self.count > rule)

    @model_validator(mode="after")
    def _selectors_consistent(self) -> ResourceRequest:
        both = set(self.uuid_include) & set(self.uuid_exclude)
        if both:
            raise ValueError(f"uuid {sorted(both)[0]!r} is both required and excluded")
        return self

    def memory_for(self, device_memory_mib: int) -> int:
        """MiB this request takes on a device with ``device_memory_mib`` allocatable."""
        if self.takes_whole_devices:
            return device_memory_mib
        if self.memory_mib is not None and self.memory_mib > 0:
            return self.memory_mib
        pct = 100 if self.memory_percent is None else self.memory_percent
        return device_memory_mib * pct // 100


class ContainerRequest(HalModel):
    """The device requests of one container. ``index`` is HAMi's positional index (init first)."""

    name: str
    index: int = Field(ge=0)
    init: bool = False
    requests: list[ResourceRequest] = Field(default_factory=list)


class PodRequest(HalModel):
    """Every container's requests, plus the pod-level scheduling hints."""

    namespace: str = "default"
    name: str
    uid: str | None = None
    containers: list[ContainerRequest] = Field(default_factory=list)
    node_policy: NodePolicy = NodePolicy.BINPACK
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def has_devices(self) -> bool:
        return any(c.requests for c in self.containers)
