"""What the engine hands out, and why it refused."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import HalModel
from .partition import Placement


class FitReason(StrEnum):
    """Reasons a device or node does not fit; names match HAMi's (hami-compat.md §6.2)."""

    CARD_TYPE_MISMATCH = "CardTypeMismatch"
    CARD_UUID_MISMATCH = "CardUuidMismatch"
    CARD_TIME_SLICING_EXHAUSTED = "CardTimeSlicingExhausted"
    CARD_COMPUTE_UNITS_EXHAUSTED = "CardComputeUnitsExhausted"
    CARD_INSUFFICIENT_MEMORY = "CardInsufficientMemory"
    CARD_INSUFFICIENT_CORE = "CardInsufficientCore"
    CARD_NOT_HEALTH = "CardNotHealth"
    CARD_CORDONED = "CardCordoned"
    NUMA_NOT_FIT = "NumaNotFit"
    EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT = "ExclusiveDeviceAllocateConflict"
    #: No free placement for the template (HAMi's name for it, kept on the wire).
    PLACEMENT_INFEASIBLE = "CardMigTopologyInfeasible"
    NODE_INSUFFICIENT_DEVICE = "NodeInsufficientDevice"
    ALLOCATED_CARDS_INSUFFICIENT_REQUEST = "AllocatedCardsInsufficientRequest"
    MODE_NOT_FIT = "ModeNotFit"
    #: hami-hal addition: the capability matrix says the device model cannot enforce the request.
    CAPABILITY_NOT_VERIFIED = "CapabilityNotVerified"
    #: hami-hal addition: the template/slice geometry cannot hold the request.
    TEMPLATE_NOT_FIT = "TemplateNotFit"


class FitFailure(HalModel):
    """One device that did not fit, with the reason code and a readable detail."""

    uuid: str | None = None
    reason: FitReason
    detail: str = ""


class DeviceSlice(HalModel):
    """A share of one device given to one container."""

    vendor: str
    uuid: str
    device_index: int
    #: HAMi CommonWord written as ``Type`` in the allocation string.
    common_word: str
    memory_mib: int = Field(ge=0)
    compute_percent: int = Field(ge=0, le=100)
    template: str | None = None
    placement: Placement | None = None
    #: The container holds the whole device (no other tenant may join).
    exclusive: bool = False
    #: The request's task priority (HAMi priority resource: 0 high, 1 low), for the isolation env;
    #: not part of HAMi's allocation string.
    priority: int | None = Field(default=None, ge=0)
    #: Request attributes carried from vendor pod annotations (``RequestAttribute``), for the plugin's hooks.
    attributes: dict[str, str] = Field(default_factory=dict)


class ContainerAllocation(HalModel):
    name: str
    index: int
    init: bool = False
    slices: list[DeviceSlice] = Field(default_factory=list)


class PodAllocation(HalModel):
    """The complete, all-or-nothing placement of one pod on one node."""

    namespace: str = "default"
    name: str
    uid: str | None = None
    node: str
    containers: list[ContainerAllocation] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def slices(self) -> list[DeviceSlice]:
        return [s for c in self.containers for s in c.slices]
