"""A discovered accelerator, vendor-neutral."""

from __future__ import annotations

from pydantic import Field

from .base import HalModel
from .partition import PartitionModel
from .provenance import Provenance

AttributeValue = str | int | float | bool | None


class Device(HalModel):
    """One physical accelerator on this node, as a vendor plugin discovered it."""

    #: Plugin vendor key that owns the device (``nvidia``, ``ascend``...).
    vendor: str
    index: int = Field(ge=0)
    #: Stable identifier across restarts (GPU-..., the card serial, ...).
    uuid: str
    #: Product name as the vendor library reports it.
    model: str
    #: HAMi device ``type`` string written to annotations (NVIDIA: ``NVIDIA-<model>``).
    hami_type: str
    memory_mib: int = Field(ge=0)
    #: Streaming multiprocessors, AI cores, compute units; None when the library cannot say.
    compute_units: int | None = None
    numa_node: int | None = None
    healthy: bool = True
    health_reason: str | None = None
    #: Filled from the ``hami_hal_partition_model`` hook after discovery.
    partition: PartitionModel | None = None
    #: HAMi ``mode`` of the device: ``hami-core`` (software shares), ``mig``, ``mps``...
    mode: str = "hami-core"
    #: Vendor-specific facts (pci_bus_id, compute_capability, mig_profiles...), documented by the plugin.
    attributes: dict[str, AttributeValue | list | dict] = Field(default_factory=dict)
    provenance: Provenance
