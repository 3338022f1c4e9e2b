"""A minimal in-process Kubernetes API server for tests and benchmarks (no kube-apiserver exists on
the package registries; kubernetes-contracts.md §5).

It serves exactly what hami-scheduler's ``kubernetes`` client calls: list/get/patch/watch of nodes
and pods (label and field selectors on ``hami.io/vgpu-node`` / ``spec.nodeName``), the pod
``binding`` subresource and ConfigMap reads. Every write bumps a global resourceVersion; a patch
carrying a stale ``metadata.resourceVersion`` gets 409 Conflict, as does binding a bound pod.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

#: How often serve_forever looks for a shutdown request: stop() waits at most this long.
STOP_POLL_S = 0.05


class _QuietServer(ThreadingHTTPServer):
    """A client that drops its connection (tests that abort requests) is not a server error."""

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def _merge(dst: dict, patch: dict) -> None:
    for k, v in patch.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


class FakeApiServer:
    def __init__(self) -> None:
        self.rv = 0
        self.nodes: dict[str, dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.configmaps: dict[tuple[str, str], dict] = {}
        self.events: list[tuple[int, str, str, dict]] = []  # (rv, kind, type, obj)
        self.cond = threading.Condition()
        self.bindings: list[tuple[str, str, str]] = []
        self.conflicts = 0
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        # serve_forever's default 0.5 s poll would make every stop() wait up to half a second (86 tests of
        # `make test` paid ~0.5 s each in teardown); shutdown is noticed within one poll
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": STOP_POLL_S},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.cond:
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- store -------------------------------------------------------------------------------

    def _bump(self, kind: str, etype: str, obj: dict) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.events.append((self.rv, kind, etype, copy.deepcopy(obj)))
        self.cond.notify_all()

    def add_node(self, node: dict) -> dict:
        with self.cond:
            node = copy.deepcopy(node)
            node.setdefault("metadata", {}).setdefault("annotations", {})
            node.setdefault("apiVersion", "v1")
            node.setdefault("kind", "Node")
            self.nodes[node["metadata"]["name"]] = node
            self._bump("nodes", "ADDED", node)
            return copy.deepcopy(node)

    def add_pod(self, pod: dict) -> dict:
        with self.cond:
            pod = copy.deepcopy(pod)
            meta = pod.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            meta.setdefault("uid", f"uid-{meta['name']}")
            meta.setdefault("annotations", {})
            pod.setdefault("apiVersion", "v1")
            pod.setdefault("kind", "Pod")
            pod.setdefault("status", {"phase": "Pending"})
            for ctr in (pod.get("spec") or {}).get("containers", []) + (pod.get("spec") or {}).get("initContainers", []):
                for kind in ("limits", "requests"):  # the API server returns quantities as strings
                    res = (ctr.get("resources") or {}).get(kind)
                    if res:
                        ctr["resources"][kind] = {k: str(v) for k, v in res.items()}
            self.pods[(meta["namespace"], meta["name"])] = pod
            self._bump("pods", "ADDED", pod)
            return copy.deepcopy(pod)

    def delete_pod(self, ns: str, name: str) -> None:
        with self.cond:
            pod = self.pods.pop((ns, name))
            self._bump("pods", "DELETED", pod)

    def add_configmap(self, ns: str, name: str, data: dict[str, str]) -> None:
        with self.cond:
            self.configmaps[(ns, name)] = {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": name, "namespace": ns}, "data": data}

    # -- HTTP --------------------------------------------------------------------------------

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Header and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms per call.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, msg: str) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": msg,
                                  "reason": reason, "code": code})

            def _body(self) -> dict:
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def do_GET(self):  # noqa: N802
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                p = u.path
                if q.get("watch") in ("true", "1"):
                    kind = "nodes" if p.endswith("/nodes") else "pods"
                    return self._watch(kind, int(q.get("resourceVersion") or 0), float(q.get("timeoutSeconds") or 5))
                with server.cond:
                    if p == "/api/v1/nodes":
                        return self._list("NodeList", list(server.nodes.values()), q)
                    m = re.fullmatch(r"/api/v1/nodes/([^/]+)", p)
                    if m:
                        node = server.nodes.get(m[1])
                        return self._send(200, node) if node else self._status(404, "NotFound", f"node {m[1]} not found")
                    if p == "/api/v1/pods":
                        return self._list("PodList", list(server.pods.values()), q)
                    m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods", p)
                    if m:
                        return self._list("PodList", [v for (ns, _), v in server.pods.items() if ns == m[1]], q)
                    m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", p)
                    if m:
                        pod = server.pods.get((m[1], m[2]))
                        return self._send(200, pod) if pod else self._status(404, "NotFound", f"pod {m[2]} not found")
                    m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/configmaps/([^/]+)", p)
                    if m:
                        cm = server.configmaps.get((m[1], m[2]))
                        return self._send(200, cm) if cm else self._status(404, "NotFound", "configmap not found")
                self._status(404, "NotFound", p)

            def _list(self, kind: str, items: list[dict], q: dict) -> None:
                sel = q.get("labelSelector")
                fsel = q.get("fieldSelector")
                out = []
                for it in items:
                    if sel:
                        k, _, v = sel.partition("=")
                        if ((it["metadata"].get("labels") or {}).get(k)) != v:
                            continue
                    if fsel:
                        k, _, v = fsel.partition("=")
                        if k == "spec.nodeName" and (it.get("spec") or {}).get("nodeName") != v:
                            continue
                    out.append(it)
                self._send(200, {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(server.rv)},
                                 "items": out})

            def _watch(self, kind: str, since: int, timeout: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                import time as _t

                end = _t.monotonic() + timeout
                last = since
                try:
                    while True:
                        with server.cond:
                            evs = [e for e in server.events if e[0] > last and e[1] == kind]
                            if not evs:
                                left = end - _t.monotonic()
                                if left <= 0:
                                    break
                                server.cond.wait(min(left, 0.5))
                                continue
                        for rv, _, etype, obj in evs:
                            line = json.dumps({"type": etype, "object": obj}).encode() + b"\n"
                            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                            last = rv
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_PATCH(self):  # noqa: N802
                p = urlparse(self.path).path
                body = self._body()
                with server.cond:
                    m = re.fullmatch(r"/api/v1/nodes/([^/]+)", p)
                    m2 = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", p)
                    if m:
                        obj, kind = server.nodes.get(m[1]), "nodes"
                    elif m2:
                        obj, kind = server.pods.get((m2[1], m2[2])), "pods"
                    else:
                        return self._status(404, "NotFound", p)
                    if obj is None:
                        return self._status(404, "NotFound", p)
                    want = (body.get("metadata") or {}).pop("resourceVersion", None)
                    if want is not None and want != obj["metadata"]["resourceVersion"]:
                        server.conflicts += 1
                        return self._status(409, "Conflict", "the object has been modified; please apply your "
                                            "changes to the latest version and try again")
                    _merge(obj, body)
                    server._bump(kind, "MODIFIED", obj)
                    return self._send(200, obj)

            def do_POST(self):  # noqa: N802
                p = urlparse(self.path).path
                body = self._body()
                m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/binding", p)
                if not m:
                    return self._status(404, "NotFound", p)
                with server.cond:
                    pod = server.pods.get((m[1], m[2]))
                    if pod is None:
                        return self._status(404, "NotFound", f"pod {m[2]} not found")
                    if (pod.get("spec") or {}).get("nodeName"):
                        server.conflicts += 1
                        return self._status(409, "Conflict", f"pod {m[2]} is already assigned to node "
                                            f"{pod['spec']['nodeName']}")
                    target = (body.get("target") or {}).get("name")
                    if target not in server.nodes:
                        return self._status(404, "NotFound", f"node {target} not found")
                    pod.setdefault("spec", {})["nodeName"] = target
                    server.bindings.append((m[1], m[2], target))
                    server._bump("pods", "MODIFIED", pod)
                    return self._send(201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201})

        return Handler
