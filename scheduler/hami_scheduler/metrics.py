"""Prometheus metrics of the extender (own registry, so tests can run several servers)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ExtenderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hami_scheduler_extender_requests_total", "Extender requests by verb and result",
                                ["verb", "result"], registry=self.registry)
        self.latency = Histogram("hami_scheduler_extender_request_seconds", "Extender request latency",
                                 ["verb"], registry=self.registry,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
        self.nodes = Gauge("hami_scheduler_nodes", "Registered nodes", registry=self.registry)
        self.pods = Gauge("hami_scheduler_allocated_pods", "Pods holding device slices", registry=self.registry)
        self.rejected = Gauge("hami_scheduler_rejected_objects", "Objects rejected as malformed",
                              registry=self.registry)
        self.unknown_fields = Gauge("hami_scheduler_documents_with_unknown_fields",
                                    "Node inventories read with fields this version does not know (ignored: a newer "
                                    "node agent), since start", registry=self.registry)
        self.refused_connections = Gauge("hami_scheduler_extender_refused_connections",
                                         "Connections closed at once because the connection cap was reached",
                                         registry=self.registry)
        self.tls_failures = Gauge("hami_scheduler_extender_tls_handshake_failures",
                                  "TLS handshakes that failed (no or untrusted client certificate, timeout)",
                                  registry=self.registry)
        self.open_connections = Gauge("hami_scheduler_extender_open_connections", "Open client connections",
                                      registry=self.registry)
        self.slow_headers = Gauge("hami_scheduler_extender_slow_header_closes",
                                  "Connections closed because request line and headers took over the header deadline",
                                  registry=self.registry)
