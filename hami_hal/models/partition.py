"""How a device can be divided: the partition model the allocation engine honours."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from .base import HalModel


class PartitionKind(StrEnum):
    """The four ways accelerators are shared.

    - ``whole``: whole device only; any request takes the device exclusively.
    - ``shares``: arbitrary memory (MiB) and compute (%) shares, up to ``max_slots`` tenants
      (software-enforced shares).
    - ``templates``: fixed templates that may be mixed on one device, bounded by memory, compute
      units, per-template instance counts and, where given, placements (hardware instances, virtual
      device templates: the smallest template holding the request is used).
    - ``slices``: fixed templates, but all partitions on one device must use the same template
      (same-size slices per card).
    """

    WHOLE = "whole"
    SHARES = "shares"
    TEMPLATES = "templates"
    SLICES = "slices"


class Placement(HalModel):
    """A contiguous run of hardware slots a template instance occupies (memory slices)."""

    start: int = Field(ge=0)
    size: int = Field(ge=1)

    def overlaps(self, other: Placement) -> bool:
        return self.start < other.start + other.size and other.start < self.start + self.size


class PartitionTemplate(HalModel):
    """One fixed partition shape (a hardware instance profile, a virtual device template, a slice size)."""

    name: str
    memory_mib: int = Field(ge=1)
    #: Share of the device's compute the template gives, in percent.
    compute_percent: int = Field(ge=0, le=100)
    #: Compute units it consumes out of ``PartitionModel.compute_units`` (AI cores, SM slices).
    compute_units: int | None = Field(default=None, ge=0)
    #: At most this many instances of this template on one device.
    max_instances: int | None = Field(default=None, ge=1)
    #: The largest request (MiB) the template takes, where that is above ``memory_mib``; it still gives
    #: ``memory_mib`` (a whole-device template that takes any request up to the chip's capacity and gives the
    #: lower allocatable memory). None: ``memory_mib``.
    holds_up_to_mib: int | None = Field(default=None, ge=1)
    #: Where an instance may sit; an instance needs one free, non-overlapping placement.
    placements: list[Placement] = Field(default_factory=list)
    #: Charged once to the device's ``node_budget`` while the device hosts any instance of this template
    #: (e.g. a card split into quarter slices uses 4 more of the node's driver handles).
    node_cost: int = Field(default=0, ge=0)


class NodeBudget(HalModel):
    """A node-wide resource that templates draw from, shared by every device naming it."""

    name: str
    limit: int = Field(ge=0)


class PartitionModel(HalModel):
    """The partition model a plugin declares for one device."""

    kind: PartitionKind
    #: Memory the engine may hand out, in MiB (after any vendor memory scaling).
    memory_mib: int = Field(ge=0)
    #: Compute the engine may hand out, in percent of one device (100 × core scaling).
    compute_percent: int = Field(default=100, ge=0)
    #: Maximum concurrent allocations on the device (HAMi ``count`` / deviceSplitCount).
    max_slots: int = Field(default=1, ge=1)
    #: Total compute units templates draw from; ``None`` = not limited by units.
    compute_units: int | None = Field(default=None, ge=0)
    #: Memory requests are rounded up to a multiple of this (e.g. 256 or 512 MiB).
    memory_granularity_mib: int = Field(default=1, ge=1)
    templates: list[PartitionTemplate] = Field(default_factory=list)
    #: HAMi rule: a request for 100 % compute is exclusive and conflicts with any tenant.
    exclusive_full_compute: bool = True
    #: Partitions must be created on the hardware before use rather than enforced in software.
    requires_creation: bool = False
    #: Oversubscription the operator configured on purpose (HAMi ``deviceMemoryScaling`` /
    #: ``deviceCoreScaling``): ``memory_mib`` may be up to this × the device's memory, ``compute_percent``
    #: up to this × 100. The conformance suite reads these instead of any vendor's config keys.
    memory_scaling: float = Field(default=1.0, ge=1.0, le=100.0)
    compute_scaling: float = Field(default=1.0, ge=1.0, le=100.0)
    #: Node-wide budget the templates' ``node_cost`` draws from (e.g. ``NodeBudget(name="handles", limit=24)``).
    node_budget: NodeBudget | None = None
    #: A template smaller than the whole device serves requests for at most this many devices; a request for more
    #: gets whole devices or does not fit (a vendor whose virtual devices cannot span cards). None: any count.
    #: A rule of the node's templates, so the engine applies it where it rounds, with this node's templates.
    template_max_count: int | None = Field(default=None, ge=1, le=1024)
    #: Whole devices go to a request in multiples of this (chips paired in modules); a request for another
    #: count of whole devices does not fit here.
    whole_count_multiple: int = Field(default=1, ge=1, le=64)

    @model_validator(mode="after")
    def _templates_match_kind(self) -> PartitionModel:
        needs = self.kind in (PartitionKind.TEMPLATES, PartitionKind.SLICES)
        if needs and not self.templates:
            raise ValueError(f"partition kind {self.kind.value!r} needs at least one template")
        if not needs and self.templates:
            raise ValueError(f"partition kind {self.kind.value!r} takes no templates")
        return self

    def is_whole(self, template: PartitionTemplate) -> bool:
        """Whether the template gives the whole device (all its memory and compute)."""
        return template.memory_mib >= self.memory_mib and template.compute_percent >= min(self.compute_percent, 100)

    def count_refusal(self, template: PartitionTemplate | None, count: int) -> str | None:
        """Why a request for ``count`` devices cannot take ``template`` (None: a whole device) here, or None."""
        if template is not None and not self.is_whole(template):
            if self.template_max_count is not None and count > self.template_max_count:
                return (f"template {template.name} serves requests for at most {self.template_max_count} "
                        f"device(s), not {count}")
            return None
        if count % self.whole_count_multiple:
            return f"whole devices here go in multiples of {self.whole_count_multiple}, not {count}"
        return None

    def smallest_template(self, memory_mib: int, compute_percent: int = 0) -> PartitionTemplate | None:
        """The smallest template (by memory, then compute) that holds the request, or None."""
        fitting = [
            t for t in self.templates
            if max(t.memory_mib, t.holds_up_to_mib or 0) >= memory_mib and t.compute_percent >= compute_percent
        ]
        return min(fitting, key=lambda t: (t.memory_mib, t.compute_percent, t.name), default=None)
