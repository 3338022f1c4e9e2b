"""HAMi-compatible pod parsing: a pod spec becomes vendor-neutral requests per container.

Resource names, units and annotation keys come from the installed plugins' ``VendorInfo``; the core
names no vendor. See :mod:`.parser` for the derivation rules.
"""

from .feasibility import check_satisfiable
from .parser import ParsedPod, RequestFields, parse_pod, parse_pod_detailed
from .podfile import load_pod_file, load_pod_text
from .quantity import parse_quantity

__all__ = [
    "ParsedPod", "RequestFields", "check_satisfiable", "load_pod_file", "load_pod_text", "parse_pod",
    "parse_pod_detailed", "parse_quantity",
]
