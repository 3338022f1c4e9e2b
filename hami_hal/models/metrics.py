"""Typed metric samples in base units; the exporter names them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import HalModel

Unit = Literal["bytes", "ratio", "watts", "celsius", "hertz", "seconds", "count", "joules"]


class MetricSample(HalModel):
    """One measured value. ``name`` is vendor-neutral snake_case without unit (``memory_used``)."""

    name: str
    value: float
    unit: Unit
    device_uuid: str
    #: ``device`` for whole-device samples, ``allocation``/``process`` for per-tenant ones.
    scope: Literal["device", "allocation", "process"] = "device"
    labels: dict[str, str] = Field(default_factory=dict)
