"""sGPU QoS policies (docs/vendors.md, MetaX; HAMi ``pkg/device/metax/qos.go``).

- ``best-effort`` (the webhook's default): no compute restriction;
- ``fixed-share``: a fixed quota the pod cannot exceed;
- ``burst-share``: a fixed quota, may use idle compute.

A card's policy is per device: an idle card can switch to any policy, a card with tenants accepts only
pods of its current policy (HAMi ``checkDeviceQos``). That rule is data the engine applies (the sGPU
family's ``PodAnnotationRule`` with ``match=tenants`` in ``vendor.py``); enforcement of the quota itself
is the MetaX sGPU runtime's (closed). This module reads the app-class and topology-aware annotations the
admission rules need.
"""

from __future__ import annotations

from hami_hal.errors import InputError

from .vendor import APP_CLASS_ANNOTATION, TOPOLOGY_AWARE_ANNOTATION

APP_CLASSES = ("online", "offline")


def _field(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def app_class(annotations: dict[str, str]) -> str:
    raw = annotations.get(APP_CLASS_ANNOTATION)
    if raw is None:
        return "offline"
    if raw.strip() not in APP_CLASSES:
        raise InputError(_field(APP_CLASS_ANNOTATION), raw, "must be online or offline")
    return raw.strip()


def topology_aware(annotations: dict[str, str], default: bool = False) -> bool:
    raw = annotations.get(TOPOLOGY_AWARE_ANNOTATION)
    if raw is None:
        return default
    if raw.strip().lower() not in ("true", "false"):
        raise InputError(_field(TOPOLOGY_AWARE_ANNOTATION), raw, 'must be "true" or "false"')
    return raw.strip().lower() == "true"
