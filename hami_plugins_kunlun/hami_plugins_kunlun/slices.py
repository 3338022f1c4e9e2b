"""vXPU slicing rules of the P800 (docs/vendors.md, Kunlunxin; HAMi ``pkg/device/kunlun/vdevice.go``).

- A card is cut into fixed fractions: 1/4 (24576 MiB), 1/2 (49152 MiB) or the whole card (98304 MiB);
  a request is aligned up to the next size (HAMi ``trimMemory``; unset or above 49152 → whole card).
- A card hosting slices accepts only slices of the same size (HAMi ``FitVXPU``): the core's ``slices``
  partition kind enforces it.
- The driver has 32 handles per node; the 8 physical cards hold 8, and a card cut into 1/4 slices
  holds 4 more, into 1/2 slices 2 more. That reading is the one that fits all three documented
  examples: ``vxpu: 8`` × 24576 is invalid (8 + 32 > 32), ``vxpu: 6`` × 24576 is valid (8 + 24),
  ``vxpu: 8`` × 49152 is valid (8 + 16).
- Implied compute: memory × 100 / 98304 percent.
"""

from __future__ import annotations

from collections.abc import Iterable

from hami_hal.models import (
    Device,
    NodeBudget,
    PartitionKind,
    PartitionModel,
    PartitionTemplate,
    ResourceRequest,
)

from .topology import CARDS_PER_NODE

#: HAMi ``KunlunMaxMemory``: one P800 card, MiB.
CARD_MEMORY_MIB = 98304
#: Slice sizes, smallest first, with their template names.
SLICE_SIZES: tuple[int, ...] = (24576, 49152, 98304)
TEMPLATE_NAMES = {24576: "vxpu-1/4", 49152: "vxpu-1/2", 98304: "vxpu-1/1"}
#: Driver handles per node (physical cards included).
HANDLE_LIMIT = 32
#: Name of the node budget the slice templates draw from.
HANDLE_BUDGET_NAME = "kunlun-xpu-handles"


def handle_budget(cards_on_node: int) -> NodeBudget:
    """Handles left for slices once every card holds its own (HAMi: 32 − 8 = 24 on an 8-card node)."""
    return NodeBudget(name=HANDLE_BUDGET_NAME, limit=max(0, HANDLE_LIMIT - cards_on_node))


def admit(request: ResourceRequest) -> ResourceRequest | None:
    """HAMi ``MutateAdmission`` for vXPU: the memory request becomes its aligned slice size, so a request
    above one card (HAMi aligns it to the whole card) is not refused for want of a template."""
    aligned = trim_memory(request.memory_mib)
    if request.memory_mib == aligned:
        return None
    return request.model_copy(update={"memory_mib": aligned, "memory_percent": None})


def trim_memory(request_mib: int | None) -> int:
    """HAMi ``trimMemory``: the slice size a vXPU memory request is aligned to."""
    if request_mib is None or request_mib <= 0:
        return CARD_MEMORY_MIB
    return next((s for s in SLICE_SIZES if request_mib <= s), CARD_MEMORY_MIB)


def implied_cores(slice_mib: int) -> int:
    """Compute share that comes with a slice: memory × 100 / 98304."""
    return slice_mib * 100 // CARD_MEMORY_MIB


def slices_per_card(slice_mib: int) -> int:
    return CARD_MEMORY_MIB // slice_mib


def extra_handles(slice_mib: int | None) -> int:
    """Handles a card uses beyond its physical one while it hosts slices of this size."""
    if slice_mib is None or slice_mib >= CARD_MEMORY_MIB:
        return 0
    return slices_per_card(slice_mib)


def handles_used(card_count: int, slice_sizes: Iterable[int | None]) -> int:
    """Driver handles of a node: one per card plus the split cards' extra handles."""
    return card_count + sum(extra_handles(s) for s in slice_sizes)


def size_of_template(name: str | None) -> int | None:
    """Slice size of a template name (None for no template / a whole-card allocation)."""
    for size, tname in TEMPLATE_NAMES.items():
        if tname == name:
            return size
    return None


def partition_model(device: Device) -> PartitionModel:
    """Fixed same-size slices for a P800-sized card; any other card is whole only. The handle budget
    counts the node's cards (``cards_on_node``, from discovery; HAMi's 8 when unknown)."""
    if device.memory_mib < CARD_MEMORY_MIB:
        return PartitionModel(kind=PartitionKind.WHOLE, memory_mib=device.memory_mib)
    return register_partition(int(device.attributes.get("cards_on_node") or CARDS_PER_NODE))


def register_partition(cards_on_node: int = CARDS_PER_NODE) -> PartitionModel:
    """The vXPU slice model (also for nodes read from HAMi's ``hami.io/node-register-xpu``)."""
    return PartitionModel(
        kind=PartitionKind.SLICES,
        memory_mib=CARD_MEMORY_MIB,
        compute_percent=100,
        max_slots=slices_per_card(SLICE_SIZES[0]),
        templates=[
            PartitionTemplate(name=TEMPLATE_NAMES[s], memory_mib=s, compute_percent=implied_cores(s),
                              max_instances=slices_per_card(s), node_cost=extra_handles(s))
            for s in SLICE_SIZES
        ],
        node_budget=handle_budget(cards_on_node),
        exclusive_full_compute=True,
    )
