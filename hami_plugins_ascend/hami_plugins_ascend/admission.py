"""HAMi's admission rules applied to a parsed :class:`ResourceRequest` of an Ascend family.

The body of the plugin's ``hami_hal_admit_request`` hook: rounds ``-memory`` to the template (or the whole
card), applies the superPod pair rule and refuses what HAMi's webhook refuses, each refusal an
:class:`~hami_hal.errors.InputError` naming the resource and value. It also pins the request to its own
chip: HAMi treats each CommonWord as its own device type, while the engine routes by vendor, so the
request gets an exact type selector (``Ascend910B4`` also excludes ``Ascend910B4-1``, of which it is a
substring), and reads HAMi's per-chip UUID filters into the request.
"""

from __future__ import annotations

from hami_hal.errors import InputError
from hami_hal.models import DevicePolicy, ResourceRequest

from .chips import by_common_word, chips
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
    pin = {"type_include": [chip.commonWord], "type_exclude": chip_type_exclusions(chip.commonWord),
           **uuid_filters(chip.commonWord, annotations, request)}
    if got.count > 1 and network_id(chip.chipName, 0, chip.superPod) is not None and not chip.superPod:
        # HAMi picks a multi-card Ascend set by HCCS group (computeBestCombination), whatever the GPU policy:
        # the topology-aware choice over the plugin's HCCS links keeps the cards in one group when it can
        pin["policy"] = DevicePolicy.TOPOLOGY_AWARE
    if got.soft:
        return request.model_copy(update={"count": got.count, "memory_mib": got.memory_mib,
                                          "memory_percent": None, "compute_percent": got.cores, **pin})
    return request.model_copy(update={"count": got.count, "memory_mib": got.memory_mib, "memory_percent": None,
                                      "compute_percent": 0, **pin})


def chip_type_exclusions(word: str) -> list[str]:
    """Other chips' CommonWords that contain ``word`` (type selectors match by substring)."""
    return [c.commonWord for c in chips() if c.commonWord != word and word.lower() in c.commonWord.lower()]


def uuid_filters(word: str, annotations: dict[str, str], request: ResourceRequest) -> dict[str, list[str]]:
    """HAMi's per-chip UUID filters ``hami.io/use-<CW>-uuid`` / ``hami.io/no-use-<CW>-uuid`` (comma lists)."""
    def values(key: str) -> list[str]:
        raw = annotations.get(key, "")
        if len(raw) > 16384:
            raise InputError(f'metadata.annotations["{key}"]', raw[:40] + "...", "is longer than 16384 characters")
        return [v.strip() for v in raw.split(",") if v.strip()]

    use_key, nouse_key = f"hami.io/use-{word}-uuid", f"hami.io/no-use-{word}-uuid"
    use, nouse = values(use_key), values(nouse_key)
    both = sorted(set(use) & set(nouse))
    if both:
        raise InputError(f'metadata.annotations["{nouse_key}"]', annotations[nouse_key],
                         f"excludes uuid {both[0]!r} that {use_key} requires")
    # dict.fromkeys: admitting an admitted request (node and scheduler both parse) adds nothing twice
    return {"uuid_include": list(dict.fromkeys([*request.uuid_include, *use])),
            "uuid_exclude": list(dict.fromkeys([*request.uuid_exclude, *nouse]))}
