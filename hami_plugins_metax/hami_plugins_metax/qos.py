"""sGPU QoS policies (docs/vendors.md, MetaX; HAMi ``pkg/device/metax/qos.go``).

- ``best-effort`` (the webhook's default): no compute restriction;
- ``fixed-share``: a fixed quota the pod cannot exceed;
- ``burst-share``: a fixed quota, may use idle compute.

A card's policy is per device: an idle card can switch to any policy, a card with tenants accepts only
pods of its current policy (HAMi ``checkDeviceQos``). Enforcement of the quota itself is the MetaX sGPU
runtime's (closed); HAMi and we only keep policies from mixing on one card.
"""

from __future__ import annotations

from hami_hal.errors import InputError

from .vendor import APP_CLASS_ANNOTATION, QOS_ANNOTATION, TOPOLOGY_AWARE_ANNOTATION

POLICIES = ("best-effort", "fixed-share", "burst-share")
DEFAULT_POLICY = "best-effort"
APP_CLASSES = ("online", "offline")


def _field(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def pod_policy(annotations: dict[str, str]) -> str:
    """The pod's QoS policy; an unknown value is a user error naming the annotation."""
    raw = annotations.get(QOS_ANNOTATION)
    if raw is None:
        return DEFAULT_POLICY
    value = raw.strip()
    if value not in POLICIES:
        raise InputError(_field(QOS_ANNOTATION), raw, f"must be one of {', '.join(POLICIES)}")
    return value


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


def device_refuses(device_policy: str | None, tenants: int, policy: str) -> str | None:
    """Why a card refuses a pod of ``policy``, or None (``checkDeviceQos``)."""
    if tenants == 0 or device_policy is None or device_policy == policy:
        return None
    return f"card runs {device_policy} tenants; a {policy} pod needs an idle card or one of its policy"
