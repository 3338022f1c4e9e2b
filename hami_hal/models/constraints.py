"""Vendor rules as data the engine reads: multi-device constraints and pod annotations that steer fit.

A plugin declares them on its :class:`ResourceFamily`; the pod parser copies them onto each
:class:`ResourceRequest`, so the node (``hami allocate``) and the scheduler apply the same rules
through the same engine, with no vendor code in either.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from .allocation import FitReason
from .base import HalModel


class DeviceSetRules(HalModel):
    """Which sets of devices one request (one container, one family) may take. Devices are named by
    their ``Device.index`` within the vendor on the node.

    Examples: two fabric rings of four cards ``groups=[[0,1,2,3],[4,5,6,7]]``; two dies per package taken
    together ``bundles=[[0,1],[2,3],...]``; allowed sets per count
    ``allowed_sets={2: [[0,1],[2,3],...], 4: [...]}``; a per-container limit ``max_devices=16``;
    "more than one device means whole cards" ``whole_device_above=1``. docs/writing-a-plugin.md maps
    each vendor's rule to these fields.
    """

    #: At most this many devices per request.
    max_devices: int | None = Field(default=None, ge=1)
    #: Only these device counts are accepted (empty = any).
    allowed_counts: list[int] = Field(default_factory=list)
    #: count → the exact device sets a request of that count may take (counts not listed: any set).
    allowed_sets: dict[int, list[list[int]]] = Field(default_factory=dict)
    #: A request of at most a group's size lies inside one group; a larger one takes whole groups.
    groups: list[list[int]] = Field(default_factory=list)
    #: Devices that are only ever taken together (taking one takes the bundle).
    bundles: list[list[int]] = Field(default_factory=list)
    #: At most this many devices per request when the slices are software shares (not whole devices nor
    #: templates): e.g. an enforcement layer that tracks limits for at most 16 devices per container.
    max_shared_devices: int | None = Field(default=None, ge=1)
    #: A request for more devices than this takes each device whole.
    whole_device_above: int | None = Field(default=None, ge=1)
    #: Which allowed set wins: ``policy`` = best by the request's device policy order;
    #: ``least-fragmentation`` = fewest allowed-size requests needed to fill the groups' free devices
    #: afterwards (fewest-tasks-to-fill), then policy order.
    prefer: Literal["policy", "least-fragmentation"] = "policy"

    @model_validator(mode="after")
    def _sets_match_counts(self) -> DeviceSetRules:
        for count, sets in self.allowed_sets.items():
            for s in sets:
                if len(s) != count or len(set(s)) != count:
                    raise ValueError(f"allowed_sets[{count}] holds {s}, which is not {count} distinct devices")
        seen: set[int] = set()
        for b in self.bundles:
            if seen & set(b):
                raise ValueError(f"bundle {b} shares a device with another bundle")
            seen |= set(b)
        return self

    @property
    def restricts_sets(self) -> bool:
        return bool(self.allowed_sets or self.groups or self.bundles)


class AttributeMatch(StrEnum):
    """How a pod annotation value steers fit.

    - ``device``: the device's ``attributes[attribute]`` must be one of the (comma-listed) values
      (a requested split mode against the mode the node runs).
    - ``tenants``: every tenant already on the device must carry the same value; the first tenant
      sets it (a QoS policy shared by the tenants of one device).
    - ``carry``: not a fit rule; carried on the request and the slices for the plugin's hooks
      (a device selection or a partition profile the plugin writes back).
    """

    DEVICE = "device"
    TENANTS = "tenants"
    CARRY = "carry"


class PodAnnotationRule(HalModel):
    """A vendor pod annotation the parser reads into each request of the family."""

    #: Pod annotation key, e.g. ``acme.example/qos-policy``.
    key: str
    #: Name the value travels under (request ``attributes``, device ``attributes``, slice ``attributes``).
    attribute: str
    match: AttributeMatch = AttributeMatch.CARRY
    #: Accepted values; anything else is a parse error naming the annotation (empty = any).
    allowed: list[str] = Field(default_factory=list)
    #: Value used when the pod does not set the annotation (None = the rule does not apply).
    default: str | None = None
    #: Reason code a refusal carries (a HAMi FitReason value: ``CardTypeMismatch``, ``ModeNotFit``...).
    reason: FitReason = FitReason.CARD_TYPE_MISMATCH


class RequestAttribute(HalModel):
    """A pod annotation value as the engine sees it on a request."""

    attribute: str
    value: str
    match: AttributeMatch = AttributeMatch.CARRY
    reason: FitReason = FitReason.CARD_TYPE_MISMATCH

    def values(self) -> list[str]:
        return [v.strip() for v in self.value.split(",") if v.strip()]
