"""HTTP transport of the extender: POST /filter /prioritize /bind, GET /healthz /readyz /metrics.

Every request gets an answer: a malformed one a 4xx with ``{"Error": ...}`` (and the connection
closed when its framing cannot be trusted), a handler failure a 500 with ``{"Error": ...}``; nothing
drops the connection. Framing is strict: a POST needs one ``Content-Length`` of digits only, at most
:data:`MAX_BODY`; ``Transfer-Encoding`` is refused. The JSON body must be an object nested at most
:data:`MAX_JSON_DEPTH` deep. The server itself (threads, timeouts, TLS) is httpserver.py's.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hami_hal.digits import is_digits
from hami_hal.errors import InputError
from hami_hal.models.skew import UNKNOWN_FIELDS

from .extender import Extender
from .hami_metrics import SchedulerAllocationCollector
from .httpserver import BUSY, IDLE, READING, BoundedHTTPServer, tls_context
from .metrics import ExtenderMetrics

log = logging.getLogger("hami_scheduler.server")

MAX_BODY = 1 << 20  # HAMi limits request bodies to 1 MiB
#: A kube-scheduler ExtenderArgs is about 8 deep (args > Pod > spec > containers > resources > limits).
MAX_JSON_DEPTH = 32
#: Seconds a connection may sit silent (between requests, or inside one read).
IDLE_TIMEOUT = 30.0
#: Seconds to read one whole request body, however it trickles in.
BODY_DEADLINE = 10.0
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)


class BadRequest(Exception):
    """The request cannot be served; ``code`` and one line for ``{"Error": ...}``."""

    def __init__(self, code: int, message: str, close: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.close = close


def json_depth(obj: object, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a decoded JSON value, walked without recursion; stops past ``limit``.

    Only containers are pushed: a list of 5,000 node names costs one C-level scan, not 5,000 pushes."""
    if type(obj) is not dict and type(obj) is not list:  # json.loads yields exactly these types
        return 0
    deepest = 0
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        values = node.values() if isinstance(node, dict) else node
        kinds = set(map(type, values))  # C-level: a list of 5,000 names is not walked in Python
        if dict in kinds or list in kinds:
            stack.extend((v, depth + 1) for v in values if type(v) is dict or type(v) is list)
    return deepest

def parse_body(raw: bytes) -> dict:
    """The request body as a JSON object, or BadRequest(400) saying why."""
    try:
        args = json.loads(raw or b"{}")
    except RecursionError:
        raise BadRequest(400, f"request body: JSON nested deeper than {MAX_JSON_DEPTH}") from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise BadRequest(400, f"request body: not JSON ({str(exc)[:100]})") from None
    if not isinstance(args, dict):
        raise BadRequest(400, f"request body: must be a JSON object, got {type(args).__name__}")
    if json_depth(args) > MAX_JSON_DEPTH:
        raise BadRequest(400, f"request body: JSON nested deeper than {MAX_JSON_DEPTH}")
    return args


class ExtenderServer:
    """The extender behind a :class:`BoundedHTTPServer` (TLS when ``ssl_context`` is given)."""

    def __init__(self, extender: Extender, host: str = "127.0.0.1", port: int = 0, ready=None,
                 ssl_context: ssl.SSLContext | None = None, max_connections: int = 512,
                 grace_s: float = 10.0, idle_timeout: float = IDLE_TIMEOUT, body_deadline: float = BODY_DEADLINE,
                 handshake_timeout: float = 5.0, header_deadline: float = 10.0,
                 legacy_metrics: bool = False) -> None:
        self.extender = extender
        self.idle_timeout = idle_timeout
        self.body_deadline = body_deadline
        self.metrics = ExtenderMetrics()
        cluster = extender.cluster
        self.metrics.nodes.set_function(lambda: len(cluster.nodes))
        self.metrics.pods.set_function(lambda: len(cluster.pods))
        self.metrics.rejected.set_function(lambda: len(cluster.rejected))
        self.metrics.unknown_fields.set_function(lambda: UNKNOWN_FIELDS.documents)
        # HAMi's allocation series (hami_gpu_*, hami_vgpu_*_allocated_*), computed at scrape time
        self.metrics.registry.register(SchedulerAllocationCollector(cluster, legacy=legacy_metrics))
        self.ready = ready or (lambda: True)
        self.httpd = BoundedHTTPServer((host, port), self._handler(), ssl_context=ssl_context,
                                       max_connections=max_connections, grace_s=grace_s,
                                       handshake_timeout=handshake_timeout, header_deadline=header_deadline)
        self.metrics.refused_connections.set_function(lambda: self.httpd.refused_connections)
        self.metrics.tls_failures.set_function(lambda: self.httpd.tls_failures)
        self.metrics.open_connections.set_function(lambda: self.httpd.open_connections)
        self.metrics.slow_headers.set_function(lambda: self.httpd.slow_headers)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        h, p = self.httpd.server_address[:2]
        scheme = "https" if self.httpd.ssl_context is not None else "http"
        return f"{scheme}://{h}:{p}"

    def start(self) -> ExtenderServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        """Graceful: in-flight requests finish (within ``grace_s``), idle connections are closed."""
        self.httpd.graceful_stop()

    def _handler(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            default_request_version = "HTTP/1.0"  # a garbage request line still gets a status line
            timeout = srv.idle_timeout  # socket timeout on every read (StreamRequestHandler.setup)

            def setup(self):
                super().setup()
                # one response = two writes (head, body): without NODELAY, Nagle + delayed ACK add 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *a):
                pass

            def parse_request(self):
                ok = super().parse_request()  # reads the headers
                # headers complete: from here until the answer, shutdown waits for this connection
                srv.httpd.mark(self.connection, BUSY)
                return ok

            def handle_one_request(self):
                try:
                    if not self.rfile.peek(1):  # wait (idle, under the socket timeout) for a request
                        self.close_connection = True
                        return
                    srv.httpd.mark(self.connection, READING)  # header_deadline runs from here
                    super().handle_one_request()
                except (TimeoutError, OSError):
                    self.close_connection = True  # idle/slow client, reset, or closed by the deadline
                finally:
                    srv.httpd.mark(self.connection, IDLE)
                    if srv.httpd.closing.is_set():
                        self.close_connection = True

            def send_error(self, code, message=None, explain=None):
                """Malformed request line or headers (the stdlib's parser): JSON answer, then close."""
                self.close_connection = True
                self._send(code, json.dumps({"Error": message or explain or "bad request"}).encode(),
                           close=True)

            def _send(self, code: int, data: bytes, ctype: str = "application/json", close: bool = False) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    if close or self.close_connection:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError:
                    self.close_connection = True

            def _error(self, code: int, message: str, close: bool = False) -> None:
                self._send(code, json.dumps({"Error": message}).encode(), close=close)

            def do_GET(self):  # noqa: N802
                if self.path == "/healthz":
                    return self._send(200, b"ok", "text/plain")
                if self.path == "/readyz":
                    ok = srv.ready()
                    return self._send(200 if ok else 503, b"ok" if ok else b"cache not synced", "text/plain")
                if self.path == "/metrics":
                    return self._send(200, generate_latest(srv.metrics.registry), CONTENT_TYPE_LATEST)
                self._error(404, f"no such path: {self.path[:100]}")

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding") is not None:
                    raise BadRequest(411, "Transfer-Encoding is not supported: send Content-Length", close=True)
                lengths = self.headers.get_all("Content-Length") or []
                if not lengths:
                    raise BadRequest(411, "Content-Length is required", close=True)
                if len(set(lengths)) != 1 or not _DIGITS.fullmatch(lengths[0].strip()):
                    raise BadRequest(400, f"Content-Length: {', '.join(lengths)[:40]!r} is not one non-negative "
                                     "integer", close=True)
                n = int(lengths[0])
                if n > MAX_BODY:
                    raise BadRequest(413, f"request body of {n} bytes is over the {MAX_BODY} byte limit", close=True)
                deadline = time.monotonic() + srv.body_deadline
                chunks, got = [], 0
                while got < n:
                    if time.monotonic() > deadline:
                        raise BadRequest(408, f"request body not received within {srv.body_deadline:g} s", close=True)
                    try:
                        chunk = self.rfile.read1(min(n - got, 65536))
                    except TimeoutError:
                        raise BadRequest(408, "request body: client went silent", close=True) from None
                    if not chunk:
                        raise BadRequest(400, f"request body: {got} of {n} bytes before the connection closed",
                                         close=True)
                    chunks.append(chunk)
                    got += len(chunk)
                return b"".join(chunks)

            def do_POST(self):  # noqa: N802
                verb = self.path.strip("/")
                t0 = time.perf_counter()
                try:
                    if verb not in ("filter", "prioritize", "bind"):
                        raise BadRequest(404, f"no such verb: {self.path[:100]}")
                    args = parse_body(self._read_body())
                    body, result = self._dispatch(verb, args)
                    code = 200
                except BadRequest as exc:
                    code, body, result = exc.code, {"Error": str(exc)}, "bad-request"
                    if exc.close:
                        self.close_connection = True
                except Exception as exc:  # a bug or an unexpected API failure: answer, never drop
                    log.exception("%s failed", verb)
                    code, body, result = 500, {"Error": f"{verb}: internal error: {type(exc).__name__}: "
                                                        f"{str(exc)[:200]}"}, "error"
                if verb in ("filter", "prioritize", "bind"):
                    srv.metrics.requests.labels(verb, result).inc()
                    srv.metrics.latency.labels(verb).observe(time.perf_counter() - t0)
                self._send(code, json.dumps(body).encode())

            def _dispatch(self, verb: str, args: dict) -> tuple[dict | list, str]:
                """(response body, result label)."""
                ext = srv.extender
                if verb == "filter":
                    out = ext.filter(args)
                    return ({"Nodes": None, "NodeNames": out.node_names, "FailedNodes": out.failed,
                             "FailedAndUnresolvableNodes": out.unresolvable, "Error": out.error},
                            "error" if out.error else ("fit" if out.node_names else "unfit"))
                if verb == "prioritize":
                    return ext.prioritize(args), "ok"
                err = ext.bind(args)
                return {"Error": err}, "error" if err else "ok"

            def do_PUT(self):  # noqa: N802
                self._error(405, f"method {self.command} not allowed")

            do_DELETE = do_PATCH = do_PUT  # noqa: N815

        return Handler


#: Largest ``--vendors`` file read (a VendorInfo is a few KiB).
MAX_VENDORS_FILE = 4 << 20


def load_vendors(path: str):
    """VendorInfo list from a JSON file, so the scheduler needs no vendor plugin installed."""
    from pydantic import TypeAdapter, ValidationError

    from hami_hal.models import VendorInfo

    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_VENDORS_FILE + 1)
    except OSError as exc:
        raise InputError("--vendors", path, f"cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_VENDORS_FILE:
        raise InputError("--vendors", path, f"is larger than {MAX_VENDORS_FILE} bytes")
    try:
        return TypeAdapter(list[VendorInfo]).validate_json(raw)
    except ValidationError as exc:  # invalid UTF-8 and JSON too: the first error, naming where
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"]) or "document"
        raise InputError("--vendors", path, f"is not a JSON array of VendorInfo: at {where}: {e['msg']}") from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_security(args, host: str) -> ssl.SSLContext | None:
    """The TLS context ``serve`` listens with, or None; refuses an unauthenticated network listener.

    Anyone who reaches the extender decides where pods run and which device slices they get, so off
    loopback it needs TLS and client certificates (``--tls-cert/--tls-key --client-ca``), unless
    ``--insecure-listen`` says the operator accepts that risk (e.g. behind a NetworkPolicy).
    """
    cert, key, ca = args.tls_cert, args.tls_key, args.client_ca
    if bool(cert) != bool(key):
        raise InputError("--tls-cert/--tls-key", cert or key, "must be given together")
    if ca and not cert:
        raise InputError("--client-ca", ca, "needs --tls-cert and --tls-key")
    if not is_loopback(host) and not (cert and ca) and not args.insecure_listen:
        raise InputError("--bind", f"{host}", "is not a loopback address: anyone who reaches it would control pod "
                         "placement; give --tls-cert, --tls-key and --client-ca (or --insecure-listen to accept that)")
    if not cert:
        return None
    for flag, path in (("--tls-cert", cert), ("--tls-key", key), ("--client-ca", ca)):
        if path and not Path(path).is_file():
            raise InputError(flag, path, "is not a readable file")
    try:
        return tls_context(cert, key, ca)
    except (OSError, ssl.SSLError) as exc:
        raise InputError("--tls-cert/--tls-key/--client-ca", cert, f"cannot be loaded ({exc})") from None


def serve(args) -> int:
    """``hami-scheduler serve``: sync from the API, start watches, serve until SIGTERM/SIGINT."""
    import signal

    from hami_hal.errors import HalError
    from hami_hal.manager import Hal
    from hami_hal.models import CapabilityMatrix

    from .capability import CapabilityGate, parse_levels
    from .kube import Kube, Watcher, api_client, describe, load_matrix_from_configmap
    from .state import ClusterState

    host, _, port = args.bind.rpartition(":")
    if not is_digits(port) or int(port) > 65535:
        raise InputError("--bind", args.bind, "must be host:port")
    host = host or "127.0.0.1"
    mhost, _, mport = (args.metrics_bind or ":0").rpartition(":")
    if not is_digits(mport) or int(mport) > 65535:
        raise InputError("--metrics-bind", args.metrics_bind, "must be host:port")
    if not 1 <= args.max_connections <= 65535:
        raise InputError("--max-connections", args.max_connections, "must be between 1 and 65535")
    ssl_context = listen_security(args, host)
    seed = None
    if getattr(args, "workload_seed", None):
        from .live_workload import load_seed

        if args.policy in ("binpack", "spread"):
            raise InputError("--workload-seed", args.workload_seed,
                             f"needs a fragmentation policy (--policy fgd or frag-pack), not {args.policy}")

        seed = load_seed(args.workload_seed)
    takeover = getattr(args, "workload_takeover", 100)
    if not 0 <= takeover <= 1_000_000:
        raise InputError("--workload-takeover", takeover, "must be between 0 and 1000000")
    try:
        kube = Kube(api_client(args.api_server, args.kubeconfig))
    except Exception as exc:
        raise HalError(f"Kubernetes API configuration: {describe(exc)}") from None
    matrix = None
    if args.capability_matrix:
        path = Path(args.capability_matrix)
        try:
            matrix = CapabilityMatrix.model_validate_json(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError("--capability-matrix", str(path), f"cannot be loaded: {str(exc)[:120]}") from None
    elif args.capability_configmap:
        matrix = load_matrix_from_configmap(kube, args.capability_configmap)
    # With --vendors the extender reads vendors as data and runs no plugin code; otherwise the installed
    # plugins also answer admission (HAMi MutateAdmission) and pod annotations (HAMi PatchAnnotations).
    hal = None if args.vendors else Hal()
    vendors = load_vendors(args.vendors) if hal is None else hal.vendors()
    cluster = ClusterState(vendors)
    # made before the first sync: it gives the cache the request rule (admission included) for unbound pods' claims
    ext = Extender(cluster, kube, CapabilityGate(matrix, parse_levels(args.accept_levels)), policy=args.policy,
                   workload_refresh_s=args.workload_refresh, workload_seed=seed, workload_takeover=takeover,
                   admit=hal.admit_request if hal else None, pod_annotator=hal.pod_annotations if hal else None)
    watcher = Watcher(kube, cluster)
    try:
        watcher.start()
    except HalError:
        raise
    except Exception as exc:
        raise HalError(f"first sync from the Kubernetes API failed: {describe(exc)}") from None
    # k8s helper: pod Events, then the Lease gate outermost (a follower's refusal is no pod event)
    from .events import with_events
    from .leader import with_leader_election

    ext, elector = with_leader_election(with_events(ext, kube.api, args), kube.api, args)
    try:
        server = ExtenderServer(ext, host, int(port), ready=watcher.synced.is_set, ssl_context=ssl_context,
                                max_connections=args.max_connections,
                                legacy_metrics=getattr(args, "legacy_metrics", False)).start()
    except OSError as exc:
        watcher.stop.set()
        if elector is not None:
            elector.stop()
        raise InputError("--bind", args.bind, f"cannot listen ({exc.strerror or exc})") from None
    if args.metrics_bind:  # HAMi serves metrics on their own port (:9395); /metrics stays on the extender too
        from prometheus_client import start_http_server

        start_http_server(int(mport), addr=mhost or "0.0.0.0", registry=server.metrics.registry)
    auth = "TLS, client certificates required" if ssl_context is not None and args.client_ca else (
        "TLS" if ssl_context is not None else "plain HTTP")
    print(f"hami-scheduler extender on {server.url} ({auth}; {len(cluster.nodes)} nodes, {len(cluster.pods)} "
          f"allocated pods, vendors: {', '.join(v.name for v in vendors) or 'none'})", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        if not server.thread.is_alive():
            break
    watcher.stop.set()
    server.stop()  # graceful: in-flight requests finish, idle connections close
    if elector is not None:
        elector.stop()  # hands the Lease over at once
    print("hami-scheduler extender stopped", flush=True)
    return 0
