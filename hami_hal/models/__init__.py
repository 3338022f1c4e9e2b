"""Versioned pydantic models shared by the node side, the conformance suite and the scheduler.

JSON Schemas of the top-level documents are exported to ``hami_hal/schemas/`` by ``hami schemas export``.
"""

from .allocation import ContainerAllocation, DeviceSlice, FitFailure, FitReason, PodAllocation
from .capability import (
    CapabilityMatrix,
    CapabilityResult,
    DeviceModelEntry,
    InjectedFault,
    Level,
    MatrixMetadata,
    Measurement,
    Requirement,
)
from .constraints import AttributeMatch, DeviceSetRules, PodAnnotationRule, RequestAttribute
from .device import Device, model_key
from .health import HealthStatus
from .inventory import NodeInventory, SkippedPlugin
from .isolation import ContainerEdits, DeviceNode, Mount
from .metrics import MetricSample
from .partition import NodeBudget, PartitionKind, PartitionModel, PartitionTemplate, Placement
from .probe import ProbeResult
from .provenance import Provenance
from .request import ContainerRequest, DevicePolicy, NodePolicy, PodRequest, ResourceRequest
from .topology import Link, LinkTier, Topology
from .usage import DeviceUsage, TemplateInstance
from .vendor import AnnotationKeys, ResourceFamily, SelectorAnnotations, VendorInfo

__all__ = [
    "AttributeMatch", "DeviceSetRules", "InjectedFault", "NodeBudget", "PodAnnotationRule", "RequestAttribute", "model_key",
    "AnnotationKeys", "CapabilityMatrix", "CapabilityResult", "ContainerAllocation", "ContainerEdits",
    "ContainerRequest", "Device", "DeviceModelEntry", "DeviceNode", "DevicePolicy", "DeviceSlice",
    "DeviceUsage", "FitFailure", "FitReason", "HealthStatus", "Level", "Link", "LinkTier", "MatrixMetadata",
    "Measurement", "MetricSample", "Mount", "NodeInventory", "NodePolicy", "PartitionKind", "PartitionModel",
    "PartitionTemplate", "Placement", "PodAllocation", "PodRequest", "ProbeResult", "Provenance",
    "Requirement", "ResourceFamily", "ResourceRequest", "SelectorAnnotations", "SkippedPlugin",
    "TemplateInstance", "Topology", "VendorInfo",
]
