"""Gauge families for HAMi's series, new and legacy names filled side by side (node monitor and scheduler)."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterator

from .. import __version__
from . import hami_names as H

try:
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # pragma: no cover - prometheus-client comes with hami-hal[node] / hami-scheduler
    GaugeMetricFamily = None  # type: ignore[assignment,misc]


class Families:
    """New and (with ``legacy``) legacy gauge families of the series added, in the order first added."""

    def __init__(self, legacy: bool) -> None:
        if GaugeMetricFamily is None:
            from ..errors import HalError

            raise HalError("prometheus-client is not installed (pip install 'hami-hal[node]')")
        self.legacy = legacy
        self._new: dict[str, GaugeMetricFamily] = {}
        self._old: dict[str, GaugeMetricFamily] = {}

    def add(self, series: H.Series, labels: list[str], value: float, legacy_labels: list[str] | None = None) -> None:
        fam = self._new.get(series.name)
        if fam is None:
            fam = self._new[series.name] = GaugeMetricFamily(series.name, series.help, labels=list(series.labels))
        fam.add_metric(labels, value)
        if self.legacy and series.legacy:
            old = self._old.get(series.legacy)
            if old is None:
                old = self._old[series.legacy] = GaugeMetricFamily(series.legacy, series.help,
                                                                    labels=list(series.legacy_labels))
            old.add_metric(legacy_labels if legacy_labels is not None else labels, value)

    def add_build_info(self) -> None:
        """``hami_build_info = 1`` (``go_version`` empty: this is not Go; ``compiler`` names the Python)."""
        self.add(H.BUILD, [__version__, "", "", "", f"{platform.python_implementation().lower()}"
                           f"{sys.version_info.major}.{sys.version_info.minor}",
                           f"{sys.platform}/{platform.machine()}"], 1)

    def __iter__(self) -> Iterator[GaugeMetricFamily]:
        yield from self._new.values()
        yield from self._old.values()
