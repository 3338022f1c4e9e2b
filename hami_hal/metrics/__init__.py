"""Prometheus export of the plugins' metrics (``hami metrics serve``); prometheus-client is optional."""

from .collector import HalCollector
from .naming import metric_name

__all__ = ["HalCollector", "metric_name"]
