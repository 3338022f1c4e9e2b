"""Mutable usage of one device, the unit every fit decision reads and every commit writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import Device, DeviceUsage, PartitionKind, PartitionModel, Placement, TemplateInstance


@dataclass(slots=True)
class Contribution:
    """What one pod holds on one device; release subtracts exactly this."""

    slots: int = 0
    memory_mib: int = 0
    compute_percent: int = 0
    compute_units: int = 0
    instances: list[tuple[str, Placement | None]] = field(default_factory=list)
    exclusive: bool = False
    #: (attribute, value) a tenant carries for ``tenants`` pod-annotation rules (a QoS policy).
    tags: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class DeviceState:
    """A device with its partition model and what is taken on it."""

    device: Device
    part: PartitionModel
    used_slots: int = 0
    used_memory_mib: int = 0
    used_compute_percent: int = 0
    used_compute_units: int = 0
    instances: list[tuple[str, Placement | None]] = field(default_factory=list)
    exclusive: bool = False
    tags: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, device: Device) -> DeviceState:
        part = device.partition or PartitionModel(kind=PartitionKind.WHOLE, memory_mib=device.memory_mib)
        return cls(device=device, part=part)

    def copy(self) -> DeviceState:
        return DeviceState(
            self.device, self.part, self.used_slots, self.used_memory_mib, self.used_compute_percent,
            self.used_compute_units, list(self.instances), self.exclusive, list(self.tags),
        )

    @property
    def free_memory_mib(self) -> int:
        return self.part.memory_mib - self.used_memory_mib

    @property
    def free_compute_percent(self) -> int:
        return self.part.compute_percent - self.used_compute_percent

    def add(self, c: Contribution) -> None:
        self.used_slots += c.slots
        self.used_memory_mib += c.memory_mib
        self.used_compute_percent += c.compute_percent
        self.used_compute_units += c.compute_units
        self.instances.extend(c.instances)
        self.exclusive = self.exclusive or c.exclusive
        self.tags.extend(c.tags)

    def remove(self, c: Contribution) -> None:
        self.used_slots -= c.slots
        self.used_memory_mib -= c.memory_mib
        self.used_compute_percent -= c.compute_percent
        self.used_compute_units -= c.compute_units
        for inst in c.instances:
            self.instances.remove(inst)
        for tag in c.tags:
            self.tags.remove(tag)
        if c.exclusive:
            self.exclusive = False

    def overcommitted(self) -> str | None:
        """Which limit is exceeded, or None. The invariant every commit re-checks."""
        p = self.part
        if self.used_slots > p.max_slots:
            return f"slots {self.used_slots} > {p.max_slots}"
        if self.used_memory_mib > p.memory_mib:
            return f"memory {self.used_memory_mib} MiB > {p.memory_mib} MiB"
        if self.used_compute_percent > p.compute_percent:
            return f"compute {self.used_compute_percent}% > {p.compute_percent}%"
        if p.compute_units is not None and self.used_compute_units > p.compute_units:
            return f"compute units {self.used_compute_units} > {p.compute_units}"
        if min(self.used_slots, self.used_memory_mib, self.used_compute_percent, self.used_compute_units) < 0:
            return "negative usage (released more than held)"
        placed = [pl for _, pl in self.instances if pl is not None]
        for i, a in enumerate(placed):
            if any(a.overlaps(b) for b in placed[i + 1:]):
                return f"placement {a.start}+{a.size} overlaps another instance"
        counts: dict[str, int] = {}
        for name, _ in self.instances:
            counts[name] = counts.get(name, 0) + 1
        for t in p.templates:
            if t.max_instances is not None and counts.get(t.name, 0) > t.max_instances:
                return f"{counts[t.name]} instances of template {t.name} > {t.max_instances}"
        if p.kind is PartitionKind.SLICES and len(counts) > 1:
            return f"mixed slice sizes {sorted(counts)} on one device"
        return None

    def usage(self) -> DeviceUsage:
        return DeviceUsage(
            uuid=self.device.uuid,
            used_slots=self.used_slots,
            used_memory_mib=self.used_memory_mib,
            used_compute_percent=self.used_compute_percent,
            used_compute_units=self.used_compute_units,
            instances=[TemplateInstance(template=n, placement=p) for n, p in self.instances],
            exclusive=self.exclusive,
        )

    def score(self) -> float:
        """HAMi device score on current usage (hami-compat.md §6.4, request terms omitted)."""
        p = self.part
        if not p.max_slots or not p.compute_percent or not p.memory_mib:
            return 0.0
        return 10 * (
            self.used_slots / p.max_slots
            + self.used_compute_percent / p.compute_percent
            + self.used_memory_mib / p.memory_mib
        )
