"""Links from ``hy-smi --showtopotype``: ``XGMI`` is the DCU fabric (xHCL, score 100), anything else (``PCIE``)
is classed by NUMA (score 20 through one CPU, 10 across sockets).
(HAMi's scheduler scores no Hygon topology; the engine's topology-aware policy can use these links.)"""

from __future__ import annotations

from hami_hal.models import Device, Link, LinkTier, Topology
from hami_hal.vendor_tool import ToolError

from .hy_smi import HySmi


def topology(port: HySmi, devices: list[Device]) -> Topology:
    by_index = {d.index: d for d in devices}
    try:
        types = port.link_types()
    except ToolError:
        types = {}
    links = []
    for (a, b), kind in sorted(types.items()):
        da, db = by_index.get(a), by_index.get(b)
        if da is None or db is None:
            continue
        if kind == "XGMI":
            links.append(Link(a=da.uuid, b=db.uuid, kind="xgmi", tier=LinkTier.FABRIC, count=1, score=100))
        else:
            same = da.numa_node is not None and da.numa_node == db.numa_node
            links.append(Link(a=da.uuid, b=db.uuid, kind=kind.lower()[:64] or "unknown",
                              tier=LinkTier.HOST if same else LinkTier.SOCKETS, score=20 if same else 10))
    return Topology(links=links, numa={d.uuid: d.numa_node for d in devices})
