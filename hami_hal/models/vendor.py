"""What a vendor plugin owns on the Kubernetes API: resource names, units and annotations."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .allocation import FitReason
from .base import HalModel
from .constraints import DeviceSetRules, PodAnnotationRule
from .partition import PartitionModel


class AnnotationKeys(HalModel):
    """Node and pod annotation keys the vendor uses for HAMi's protocol (hami-compat.md §4, §5)."""

    node_register: str | None = None
    node_handshake: str | None = None
    to_allocate: str | None = None
    allocated: str | None = None


class SelectorAnnotations(HalModel):
    """Pod annotation keys that narrow the devices a request may use (HAMi ``use-*``/``nouse-*``)."""

    use_type: str | None = None
    nouse_type: str | None = None
    use_uuid: str | None = None
    nouse_uuid: str | None = None
    #: Comma list of allowed device modes (e.g. ``acme.example/xpu-mode``).
    mode: str | None = None
    #: Reason code when a device's ``mode`` is not among them (HAMi default ``CardTypeMismatch``, or ``ModeNotFit``).
    mode_reason: FitReason = FitReason.CARD_TYPE_MISMATCH
    #: ``"true"``: all devices of a container from one NUMA node.
    numa_bind: str | None = None


class ResourceFamily(HalModel):
    """One family of extended resources (e.g. ``acme.example/xpu`` / ``xpu-mem`` / ``xpu-cores``).

    A vendor may own several families (whole cards vs shares of a card).
    """

    #: HAMi CommonWord, also the ``Type`` field of the allocation string (``ACME``...).
    common_word: str
    count: str
    memory: str | None = None
    #: MiB per unit of the memory resource (HAMi memoryFactor; e.g. 256, or 1024 for GiB units).
    memory_unit_mib: int = Field(default=1, ge=1)
    #: A memory quantity with a unit (``4Gi``) is bytes, a bare number is ``memory_unit_mib`` units
    #: (HAMi's rule for some GiB-unit share resources).
    memory_suffix_means_bytes: bool = False
    memory_percent: str | None = None
    cores: str | None = None
    priority: str | None = None
    #: Whole devices only (e.g. ``acme.example/card``): memory and core resources are not accepted.
    whole_device: bool = False
    #: MiB given when neither memory nor percentage is requested; 0 means 100 % of the device.
    default_memory_mib: int = Field(default=0, ge=0)
    default_cores: int = Field(default=0, ge=0, le=100)
    #: Count added when only memory/cores are requested (HAMi defaultGPUNum).
    default_count: int = Field(default=1, ge=1)
    #: HAMi webhook rule: exclusive memory without cores means cores = 100.
    full_memory_means_full_cores: bool = True
    #: The family's own HAMi annotation keys (HAMi keys per CommonWord); unset fields fall back to
    #: ``VendorInfo.annotations``. Two families of one vendor (whole cards, shares) name their own.
    annotations: AnnotationKeys | None = None
    #: Partition shape of devices read from this family's HAMi register annotation (the scheduler side);
    #: ``memory_mib``, ``compute_percent`` and ``max_slots`` are taken from the annotation. Default:
    #: HAMi's shares model. A slices family declares its templates here.
    register_partition: PartitionModel | None = None
    #: Multi-device rules the engine applies to every request of the family.
    device_sets: DeviceSetRules | None = None
    #: The family's own selector annotation keys (HAMi names UUID filters per CommonWord for some
    #: vendors); unset fields fall back to ``VendorInfo.selectors``.
    selectors: SelectorAnnotations | None = None
    #: ``cores`` above 100: ``error`` (refused, HAMi's webhook rule) or ``clamp`` to 100 (some HAMi
    #: vendor adapters clamp).
    cores_above_100: Literal["error", "clamp"] = "error"
    #: Vendor pod annotations read into the family's requests (QoS policy, mode, device selection).
    pod_annotations: list[PodAnnotationRule] = Field(default_factory=list)

    def names(self) -> list[str]:
        """Every resource name of the family."""
        return [n for n in (self.count, self.memory, self.memory_percent, self.cores, self.priority) if n]


class VendorInfo(HalModel):
    """Identity of a vendor plugin, from the ``hami_hal_vendor`` hook."""

    #: Plugin vendor key, lower case (``acme``); matches ``Device.vendor``.
    name: str
    display_name: str
    resources: list[ResourceFamily]
    selectors: SelectorAnnotations = Field(default_factory=SelectorAnnotations)
    annotations: AnnotationKeys = Field(default_factory=AnnotationKeys)
    #: Known resource-name prefixes (``acme.example/``): an unknown name under them is an error.
    domains: list[str] = Field(default_factory=list)
    #: HAMi ``nodeconfig`` entry keys this vendor's plugin reads, as HAMi writes them flat in a node's entry
    #: (``operatingmode``), each mapped to the key of the vendor's section it sets (``operatingMode``): the
    #: node agent moves them into that section (over the file's value), so HAMi's per-node device-plugin config
    #: works unchanged. HAMi's capacity knobs (``devicesplitcount``...) are the core's and never listed here.
    node_entry_keys: dict[str, str] = Field(default_factory=dict)
    #: Top-level sections of HAMi's device-config.yaml this vendor's plugin reads besides its own (a
    #: per-chip section): the node agent hands each to the plugin under its HAMi name, as written (a mapping or a
    #: list), so a HAMi file works unchanged. The core knows no vendor: the plugin declares the names.
    hami_sections: list[str] = Field(default_factory=list)
