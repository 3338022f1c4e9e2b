"""Metric names the core owns: plugins return typed samples, the core names them (Prometheus practice)."""

from __future__ import annotations

import re

from ..models import MetricSample

PREFIX = "hami_hal"
#: Units whose samples are counters (exposed with ``_total``).
COUNTER_UNITS = {"joules"}
_BAD = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(sample: MetricSample) -> str:
    """``hami_hal_<scope>_<name>_<unit>``, e.g. ``hami_hal_device_memory_used_bytes``.

    ``count`` carries no suffix (a count has no unit); a name already ending in its unit keeps one.
    """
    name = _BAD.sub("_", sample.name.strip().lower())
    unit = "" if sample.unit == "count" else sample.unit
    if unit and not name.endswith(f"_{unit}"):
        name = f"{name}_{unit}"
    return f"{PREFIX}_{sample.scope}_{name}"
