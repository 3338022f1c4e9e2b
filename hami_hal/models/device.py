"""A discovered accelerator, vendor-neutral."""

from __future__ import annotations

import re

from pydantic import Field

from .base import HalModel
from .partition import PartitionModel
from .provenance import Provenance

AttributeValue = str | int | float | bool | None

_SEPARATORS = re.compile(r"[\s_\-]+")


def model_key(model: str, vendor: str = "") -> str:
    """The stable key of a device model, whatever spelling carries it.

    Discovery, the capability matrix and the scheduler join on this key (always together with the
    vendor). Case, spaces, ``-`` and ``_`` do not count, and leading words equal to the vendor key
    are dropped (a HAMi ``type`` carries the family prefix, e.g. ``ACME-Acme X100``; a mock inventory
    may write ``ACME-X100``): ``ACME-Acme X100``, ``Acme X100`` and ``acme_x100`` all give ``x100`` for
    vendor ``acme``. A leading word repeated counts once.
    """
    words = [w for w in _SEPARATORS.split(model.strip().lower()) if w]
    drop = vendor.strip().lower()
    while len(words) > 1 and (words[0] == drop or words[0] == words[1]):
        words = words[1:]
    return " ".join(words)


class Device(HalModel):
    """One physical accelerator on this node, as a vendor plugin discovered it."""

    #: Plugin vendor key that owns the device (``acme``...).
    vendor: str
    index: int = Field(ge=0)
    #: Stable identifier across restarts (GPU-..., the card serial, ...).
    uuid: str
    #: Product name as the vendor library reports it.
    model: str
    #: The resource family (HAMi CommonWord) the device serves; None = any family of its vendor. The
    #: engine refuses a request of another family (``CardTypeMismatch``), so one chip's requests never
    #: land on another chip of the same vendor.
    family: str | None = None
    #: HAMi device ``type`` string written to annotations (often ``<CommonWord>-<model>``).
    hami_type: str
    memory_mib: int = Field(ge=0)
    #: Streaming multiprocessors, AI cores, compute units; None when the library cannot say.
    compute_units: int | None = None
    numa_node: int | None = None
    #: Whether the node agent's device plugin gives the kubelet ``numa_node`` as the device's TopologyInfo (for
    #: its Topology Manager). HAMi's ``enableNumaTopology``: a plugin may set it from that setting (off by
    #: default in HAMi, since a ``single-numa-node`` policy then changes which pods the kubelet admits); a
    #: plugin that does not set it keeps the NUMA node advertised. The register annotation carries
    #: ``numa_node`` either way.
    advertise_numa: bool = True
    #: Whether the node agent tells the kubelet it answers ``GetPreferredAllocation`` for the resource serving this
    #: device (``DevicePluginOptions.get_preferred_allocation_available``). HAMi's ``enableGetPreferredAllocation``:
    #: a plugin may turn it off from that setting; a resource any of whose devices has it off registers without it
    #: and answers the RPC ``UNIMPLEMENTED``. A plugin that does not set it keeps it on.
    preferred_allocation: bool = True
    healthy: bool = True
    health_reason: str | None = None
    #: Filled from the ``hami_hal_partition_model`` hook after discovery.
    partition: PartitionModel | None = None
    #: The device's mode as the plugin names it (HAMi writes e.g. ``hami-core`` for software shares),
    #: matched by the family's mode selector; empty = the plugin names none.
    mode: str = ""
    #: Vendor-specific facts (pci_bus_id, compute_capability, mig_profiles...), documented by the plugin.
    attributes: dict[str, AttributeValue | list | dict] = Field(default_factory=dict)
    provenance: Provenance

    @property
    def model_key(self) -> str:
        """:func:`model_key` of ``model``: the join key with the capability matrix."""
        return model_key(self.model, self.vendor)
