"""HAMi's admission rules applied to a parsed :class:`ResourceRequest` of an Ascend family.

The body of the plugin's ``hami_hal_admit_request`` hook: rounds ``-memory`` to the template (or the whole
card), applies the superPod pair rule and refuses what HAMi's webhook refuses, each refusal an
:class:`~hami_hal.errors.InputError` naming the resource and value, and asks for the topology-aware
choice on multi-card requests (HAMi's HCCS-group preference). Keeping each chip its own type is
``Device.family``; HAMi's per-chip UUID filters are the family's selectors (see :mod:`.vendor`).
"""

from __future__ import annotations

from hami_hal.errors import InputError
from hami_hal.models import DevicePolicy, ResourceRequest

from .chips import by_common_word
from .rules import AdmissionRefused, Refusal, admit
from .topology import network_id


class AdmissionError(InputError):
    """HAMi's webhook would refuse this request; ``code`` says which rule (see :class:`Refusal`)."""

    def __init__(self, code: Refusal, field: str, value: object, reason: str) -> None:
        self.code = code
        super().__init__(field, value, reason)


def admit_request(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest:
    """The request as HAMi's webhook leaves it; raises InputError for a request HAMi refuses."""
    chip = by_common_word(request.common_word)
    if chip is None:
        return request
    memory = request.memory_mib if request.memory_mib else None
    if memory is None and request.memory_percent not in (None, 100):
        memory = chip.memoryAllocatable * request.memory_percent // 100
    try:
        got = admit(chip, request.count, memory, request.compute_percent or None, annotations)
    except AdmissionRefused as err:
        raise AdmissionError(err.code, err.field, err.value, err.reason) from None
    pin: dict = {}
    if got.count > 1 and network_id(chip.chipName, 0, chip.superPod) is not None and not chip.superPod:
        # HAMi picks a multi-card Ascend set by HCCS group (computeBestCombination), whatever the GPU policy:
        # the topology-aware choice over the plugin's HCCS links keeps the cards in one group when it can
        pin["policy"] = DevicePolicy.TOPOLOGY_AWARE
    if got.soft:
        return request.model_copy(update={"count": got.count, "memory_mib": got.memory_mib,
                                          "memory_percent": None, "compute_percent": got.cores, **pin})
    return request.model_copy(update={"count": got.count, "memory_mib": got.memory_mib, "memory_percent": None,
                                      "compute_percent": 0, **pin})

