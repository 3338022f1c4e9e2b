"""HAMi's MetaX admission rules, applied to each parsed request before the engine sees it.

- An ``online`` app-class pod (``metax-tech.com/sgpu-app-class``) must ask for exactly one sGPU.
- Whole GPUs prefer MetaXLink (HAMi scores MetaX GPU sets by the link topology): a request for more than
  one whole GPU is placed topology-aware, so it stays inside one MetaXLink zone when one has room. The same
  holds for exclusive sGPU requests (vcore 100) when topology awareness is on
  (``metax-tech.com/sgpu-topology-aware``, HAMi counts link pairs only for exclusive allocations).
  A policy the pod names itself (``hami.io/gpu-scheduler-policy``) is kept.
"""

from __future__ import annotations

from hami_hal.errors import InputError
from hami_hal.models import DevicePolicy, ResourceRequest

from .qos import app_class, topology_aware
from .vendor import APP_CLASS_ANNOTATION, GPU_WORD, SGPU_WORD

POLICY_ANNOTATION = "hami.io/gpu-scheduler-policy"


def admit(request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest | None:
    if request.common_word == SGPU_WORD and app_class(annotations) == "online" and request.count != 1:
        raise InputError(f'metadata.annotations["{APP_CLASS_ANNOTATION}"]', "online",
                         f"pods request exactly 1 sGPU, not {request.count}")
    if POLICY_ANNOTATION in annotations or request.count < 2:
        return None
    whole = request.common_word == GPU_WORD
    exclusive_share = (request.common_word == SGPU_WORD and request.compute_percent >= 100
                       and topology_aware(annotations))
    if whole or exclusive_share:
        return request.model_copy(update={"policy": DevicePolicy.TOPOLOGY_AWARE})
    return None
