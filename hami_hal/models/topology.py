"""Links between devices and NUMA affinity, in terms the core can reason with.

The core knows no vendor fabric: a plugin names each link's ``kind`` (its own word for it), says how
directly the two devices talk (``tier``), and gives the pair ``score`` its topology-aware selection
should maximise (HAMi's per-kind scores are the plugin's business).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import HalModel


class LinkTier(StrEnum):
    """How directly two devices talk, best first."""

    FABRIC = "fabric"  # a device-to-device fabric link
    BOARD = "board"  # on one board or one PCIe switch
    SWITCHES = "switches"  # across several PCIe switches
    HOST = "host"  # through the host bridge or one CPU
    SOCKETS = "sockets"  # across CPU sockets
    UNKNOWN = "unknown"


_BANDWIDTH_CLASS = {LinkTier.FABRIC: "high", LinkTier.BOARD: "medium", LinkTier.SWITCHES: "medium"}


def bandwidth_class(tier: LinkTier) -> str:
    """Coarse class the scheduler reasons with: high (device fabric), medium (PCIe switch), low."""
    return _BANDWIDTH_CLASS.get(tier, "low")


class Link(HalModel):
    """The connection between two devices, by UUID. Stored once per unordered pair."""

    a: str
    b: str
    #: The plugin's name for the link (a fabric name, a PCIe level); the core only displays it.
    kind: str = Field(min_length=1, max_length=64)
    tier: LinkTier = LinkTier.UNKNOWN
    #: Number of fabric lanes; 1 for PCIe levels.
    count: int = Field(default=1, ge=0)
    #: Pair score the ``topology-aware`` policy maximises (the plugin's scoring); 0 = no preference.
    score: int = Field(default=0, ge=0)
    bandwidth_gbps: float | None = Field(default=None, ge=0)

    @property
    def bandwidth_class(self) -> str:
        return bandwidth_class(self.tier)


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
