"""HAMi's admission rules applied to a parsed :class:`ResourceRequest` of an Ascend family.

The body of the plugin's ``hami_hal_admit_request`` hook: applies the superPod pair rule and refuses what HAMi's
webhook refuses, each refusal an :class:`~hami_hal.errors.InputError` naming the resource and value, and asks for
the topology-aware choice on multi-card requests (HAMi's HCCS-group preference). Keeping each chip its own type is
``Device.family``; HAMi's per-chip UUID filters are the family's selectors (see :mod:`.vendor`).

Admission runs where the node is not yet chosen, so it applies only the rules that need no templates. The
request's memory is left as asked, and everything that depends on the templates (the template it rounds to, a
request too large for every template, ``-memory`` only with a count of 1, the superPod pairs of a request that
rounds to whole cards) is decided by the engine on each node with that node's templates (:mod:`.partitions`), so
a node whose ``vnpus`` section changes them is judged by its own. The built-in table's figures still bound a soft
share (``memoryCapacity``) and give a chip's superPod pairing (a node's section cannot change a chip's family); a
chip only a node's ``vnpus`` section knows gets the rules that need no figures (the mode annotation, ``-core``
only in hami-core mode).
"""

from __future__ import annotations

from hami_hal.errors import InputError
from hami_hal.models import DevicePolicy, ResourceRequest

from .chips import by_common_word
from .discovery import VENDOR
from .rules import MODE_ANNOTATION, SOFT_MODE, AdmissionRefused, Refusal, admit, pod_mode
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
        return _without_figures(request, annotations)
    memory = request.memory_mib or None
    if memory is None and request.memory_percent not in (None, 100):
        # a share of the card: how much the node's card gives is the node's (memory_for with its figures); here
        # it only tells the request from a whole-card one, and bounds a soft share by the chip's figures
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
    return request.model_copy(update={"count": got.count, "compute_percent": got.cores if got.soft else 0, **pin})


def _without_figures(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest:
    """A chip outside the built-in table (a node's ``vnpus`` section adds it): the rules that need no figures."""
    if request.vendor != VENDOR:
        return request
    try:
        soft = pod_mode(annotations)
    except AdmissionRefused as err:
        raise AdmissionError(err.code, err.field, err.value, err.reason) from None
    if not soft and request.compute_percent:
        raise AdmissionError(Refusal.CORE_WITHOUT_SOFT_MODE, f"huawei.com/{request.common_word}-core",
                             request.compute_percent, f"needs the pod annotation {MODE_ANNOTATION}: {SOFT_MODE}")
    return request if soft else request.model_copy(update={"compute_percent": 0})

