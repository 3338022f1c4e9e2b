"""HTTP transport of the extender: POST /filter /prioritize /bind, GET /healthz /readyz /metrics."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hami_hal.errors import InputError

from .extender import Extender
from .metrics import ExtenderMetrics

MAX_BODY = 1 << 20  # HAMi limits request bodies to 1 MiB


class ExtenderServer:
    def __init__(self, extender: Extender, host: str = "127.0.0.1", port: int = 0, ready=None) -> None:
        self.extender = extender
        self.metrics = ExtenderMetrics()
        cluster = extender.cluster
        self.metrics.nodes.set_function(lambda: len(cluster.nodes))
        self.metrics.pods.set_function(lambda: len(cluster.pods))
        self.metrics.rejected.set_function(lambda: len(cluster.rejected))
        self.ready = ready or (lambda: True)
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        h, p = self.httpd.server_address[:2]
        return f"http://{h}:{p}"

    def start(self) -> ExtenderServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # one response = two writes (head, body): without NODELAY, Nagle + delayed ACK add 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *a):
                pass

            def _send(self, code: int, data: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                if self.path == "/healthz":
                    return self._send(200, b"ok", "text/plain")
                if self.path == "/readyz":
                    ok = srv.ready()
                    return self._send(200 if ok else 503, b"ok" if ok else b"cache not synced", "text/plain")
                if self.path == "/metrics":
                    return self._send(200, generate_latest(srv.metrics.registry), CONTENT_TYPE_LATEST)
                self._send(404, b"not found", "text/plain")

            def do_POST(self):  # noqa: N802
                verb = self.path.strip("/")
                if verb not in ("filter", "prioritize", "bind"):
                    return self._send(404, b"not found", "text/plain")
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_BODY:
                    return self._send(413, b"request body over 1 MiB", "text/plain")
                t0 = time.perf_counter()
                try:
                    args = json.loads(self.rfile.read(n) or b"{}")
                    if not isinstance(args, dict):
                        raise ValueError("body must be a JSON object")
                except ValueError as exc:
                    srv.metrics.requests.labels(verb, "bad-request").inc()
                    return self._send(400, json.dumps({"Error": f"request body: {exc}"}).encode())
                ext = srv.extender
                if verb == "filter":
                    out = ext.filter(args)
                    body = {"Nodes": None, "NodeNames": out.node_names, "FailedNodes": out.failed,
                            "FailedAndUnresolvableNodes": {}, "Error": out.error}
                    result = "error" if out.error else ("fit" if out.node_names else "unfit")
                elif verb == "prioritize":
                    body = ext.prioritize(args)
                    result = "ok"
                else:
                    err = ext.bind(args)
                    body = {"Error": err}
                    result = "error" if err else "ok"
                srv.metrics.requests.labels(verb, result).inc()
                srv.metrics.latency.labels(verb).observe(time.perf_counter() - t0)
                self._send(200, json.dumps(body).encode())

        return Handler


def load_vendors(path: str):
    """VendorInfo list from a JSON file, so the scheduler needs no vendor plugin installed."""
    from pydantic import TypeAdapter, ValidationError

    from hami_hal.models import VendorInfo

    try:
        return TypeAdapter(list[VendorInfo]).validate_json(Path(path).read_text())
    except (OSError, ValidationError) as exc:
        raise InputError("--vendors", path, f"is not a JSON array of VendorInfo: {str(exc).splitlines()[0]}") from None


def serve(args) -> int:
    """``hami-scheduler serve``: sync from the API, start watches, serve until interrupted."""
    from hami_hal.manager import Hal
    from hami_hal.models import CapabilityMatrix

    from .capability import CapabilityGate, parse_levels
    from .kube import Kube, Watcher, api_client, load_matrix_from_configmap
    from .state import ClusterState

    host, _, port = args.bind.rpartition(":")
    if not port.isdigit():
        raise InputError("--bind", args.bind, "must be host:port")
    mhost, _, mport = (args.metrics_bind or ":0").rpartition(":")
    if not mport.isdigit():
        raise InputError("--metrics-bind", args.metrics_bind, "must be host:port")
    kube = Kube(api_client(args.api_server, args.kubeconfig))
    matrix = None
    if args.capability_matrix:
        path = Path(args.capability_matrix)
        try:
            matrix = CapabilityMatrix.model_validate_json(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError("--capability-matrix", str(path), f"cannot be loaded: {str(exc)[:120]}") from None
    elif args.capability_configmap:
        matrix = load_matrix_from_configmap(kube, args.capability_configmap)
    vendors = load_vendors(args.vendors) if args.vendors else Hal().vendors()
    cluster = ClusterState(vendors)
    watcher = Watcher(kube, cluster)
    watcher.start()
    ext = Extender(cluster, kube, CapabilityGate(matrix, parse_levels(args.accept_levels)), policy=args.policy,
                   workload_refresh_s=args.workload_refresh)
    # k8s helper: pod Events, then the Lease gate outermost (a follower's refusal is no pod event)
    from .events import with_events
    from .leader import with_leader_election

    ext, elector = with_leader_election(with_events(ext, kube.api, args), kube.api, args)
    server = ExtenderServer(ext, host or "127.0.0.1", int(port), ready=watcher.synced.is_set).start()
    if args.metrics_bind:  # HAMi serves metrics on their own port (:9395); /metrics stays on the extender too
        from prometheus_client import start_http_server

        start_http_server(int(mport), addr=mhost or "0.0.0.0", registry=server.metrics.registry)
    print(f"hami-scheduler extender on {server.url} ({len(cluster.nodes)} nodes, {len(cluster.pods)} allocated pods, "
          f"vendors: {', '.join(v.name for v in vendors) or 'none'})", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        watcher.stop.set()
        server.stop()
        if elector is not None:
            elector.stop()
    return 0
