"""Links between devices and NUMA affinity."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import HalModel


class LinkKind(StrEnum):
    """Link classes, best first. PCIe levels follow NVML's topology levels."""

    NVLINK = "nvlink"  # also vendor fabrics of the same class (HCCS, Infinity Fabric, XPU Link)
    SAME_BOARD = "same-board"
    SINGLE_SWITCH = "single-switch"
    MULTI_SWITCH = "multi-switch"
    HOST_BRIDGE = "host-bridge"
    SAME_CPU = "same-cpu"
    CROSS_CPU = "cross-cpu"
    UNKNOWN = "unknown"


#: HAMi pair score per link class (hami-compat.md §6.7); NVLink scores 100 per link.
PAIR_SCORE = {
    LinkKind.CROSS_CPU: 10,
    LinkKind.SAME_CPU: 20,
    LinkKind.HOST_BRIDGE: 30,
    LinkKind.MULTI_SWITCH: 40,
    LinkKind.SINGLE_SWITCH: 50,
    LinkKind.SAME_BOARD: 60,
    LinkKind.UNKNOWN: 0,
}


def bandwidth_class(kind: LinkKind) -> str:
    """Coarse class the scheduler reasons with: high (device fabric), medium (PCIe switch), low."""
    if kind is LinkKind.NVLINK:
        return "high"
    if kind in (LinkKind.SAME_BOARD, LinkKind.SINGLE_SWITCH, LinkKind.MULTI_SWITCH):
        return "medium"
    return "low"


class Link(HalModel):
    """The connection between two devices, by UUID. Stored once per unordered pair."""

    a: str
    b: str
    kind: LinkKind
    #: Number of fabric links (NVLink lanes); 1 for PCIe levels.
    count: int = Field(default=1, ge=0)

    @property
    def score(self) -> int:
        """HAMi-compatible pair score."""
        if self.kind is LinkKind.NVLINK:
            return 100 * max(self.count, 1)
        return PAIR_SCORE[self.kind]

    @property
    def bandwidth_class(self) -> str:
        return bandwidth_class(self.kind)


class Topology(HalModel):
    """Pairwise links of a node's devices plus each device's NUMA node."""

    links: list[Link] = Field(default_factory=list)
    numa: dict[str, int | None] = Field(default_factory=dict)

    def pair_scores(self) -> dict[tuple[str, str], int]:
        """Symmetric ``(uuid_a, uuid_b) -> score`` map."""
        out: dict[tuple[str, str], int] = {}
        for link in self.links:
            out[(link.a, link.b)] = link.score
            out[(link.b, link.a)] = link.score
        return out

    def link(self, a: str, b: str) -> Link | None:
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        return None
