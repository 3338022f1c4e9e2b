"""Mutating admission webhook (AdmissionReview ``admission.k8s.io/v1`` over TLS), HAMi's behaviour.

For a Pod that requests a managed resource (any resource name of an installed or ``--vendors`` vendor),
in any container or init container:

- ``spec.schedulerName`` becomes ``--scheduler-name`` when it is empty, or ``default-scheduler`` and
  ``--force-overwrite-default-scheduler`` is on (HAMi's default); a pod naming another scheduler is left
  alone;
- HAMi's defaults are filled per resource family: memory, cores or a memory percentage without a count
  adds ``<count>: <default count>`` (HAMi ``defaultGPUNum``); a count with exclusive memory (no memory, no
  default memory, percentage absent or 100) and no cores adds ``<cores>: 100`` (HAMi PR #1354);
- the pod is denied, with one line naming the field and the value, when the result does not parse
  (the scheduler's own parser, so the webhook and the scheduler never disagree), when a container
  asking for a managed resource is privileged, or when ``spec.nodeName`` is preset (the pod would skip
  the scheduler and its device accounting).

A pod without managed resources, or an object that is not a Pod, is allowed unchanged. Routes:
``POST /webhook`` (HAMi's path) and ``POST /mutate``; ``GET /healthz``. Bodies over 1 MiB are refused.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from hami_hal.errors import HalError, InputError
from hami_hal.models import ResourceFamily, VendorInfo
from hami_hal.requests import parse_pod

from .httpserver import BoundedHTTPServer

log = logging.getLogger("hami_scheduler.webhook")

MAX_BODY = 1 << 20
DEFAULT_SCHEDULER = "default-scheduler"
MAX_DEVICE_CONFIG = 1 << 20
CONNECTION_TIMEOUT_S = 10.0  # the apiserver's webhook timeout is at most 30 s; a silent client is cut off


class Mutator:
    """The decision: AdmissionRequest -> AdmissionResponse (no I/O, so it is testable and benchmarkable)."""

    def __init__(self, vendors: list[VendorInfo], scheduler_name: str = "hami-scheduler",
                 force_overwrite_default: bool = True) -> None:
        self.vendors = vendors
        self.scheduler_name = scheduler_name
        self.force_overwrite_default = force_overwrite_default
        self.families: list[ResourceFamily] = [f for v in vendors for f in v.resources]
        self.managed = {n for f in self.families for n in f.names()}

    # -- pieces ------------------------------------------------------------------------------

    def _managed_in(self, ctr: dict) -> list[str]:
        res = ctr.get("resources") if isinstance(ctr.get("resources"), dict) else {}
        names = []
        for part in ("limits", "requests"):
            amounts = res.get(part) if isinstance(res.get(part), dict) else {}
            names += [n for n in amounts if n in self.managed]
        return names

    def _fill_defaults(self, ctr: dict) -> bool:
        """HAMi's per-family defaults on one container; True when something was added."""
        res = ctr.setdefault("resources", {})
        limits = res.setdefault("limits", {}) if isinstance(res, dict) else None
        requests = res.get("requests") if isinstance(res.get("requests"), dict) else {}
        if not isinstance(limits, dict):
            return False
        changed = False

        def has(name: str | None) -> bool:
            return bool(name) and (name in limits or name in requests)

        for fam in self.families:
            shaping = [n for n in (fam.memory, fam.memory_percent, fam.cores) if has(n)]
            if shaping and not has(fam.count):
                limits[fam.count] = str(fam.default_count)
                changed = True
            if not has(fam.count) or fam.whole_device or not fam.cores or has(fam.cores):
                continue
            pct = limits.get(fam.memory_percent, requests.get(fam.memory_percent)) if fam.memory_percent else None
            exclusive = not has(fam.memory) and fam.default_memory_mib == 0 and (pct is None or str(pct) == "100")
            if fam.full_memory_means_full_cores and exclusive:
                limits[fam.cores] = "100"
                changed = True
        if not limits:
            res.pop("limits")
        return changed

    # -- review ------------------------------------------------------------------------------

    def review(self, request: dict) -> dict:
        uid = request.get("uid", "") if isinstance(request, dict) else ""
        allowed = {"uid": uid, "allowed": True}
        if not isinstance(request, dict):
            return self._deny(uid, "request: must be an object")
        kind = request.get("kind") or {}
        if not isinstance(kind, dict) or kind.get("kind") != "Pod" or request.get("operation", "CREATE") != "CREATE":
            return allowed
        pod = request.get("object")
        if not isinstance(pod, dict):
            return self._deny(uid, "object: must be a Pod object")
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return self._deny(uid, "spec: must be an object")
        mutated = copy.deepcopy(spec)
        ops: list[dict] = []
        touched = False
        for key in ("initContainers", "containers"):
            items = mutated.get(key)
            if items is None:
                continue
            if not isinstance(items, list):
                return self._deny(uid, f"spec.{key}: must be a list")
            for i, ctr in enumerate(items):
                if not isinstance(ctr, dict):
                    return self._deny(uid, f"spec.{key}[{i}]: must be an object")
                names = self._managed_in(ctr)
                if not names:
                    continue
                touched = True
                sc = ctr.get("securityContext") if isinstance(ctr.get("securityContext"), dict) else {}
                if sc.get("privileged") is True:
                    return self._deny(uid, f"spec.{key}[{i}].securityContext.privileged: true is not allowed "
                                           f"with {names[0]} (a privileged container sees every device)")
                if self._fill_defaults(ctr):
                    ops.append({"op": "add", "path": f"/spec/{key}/{i}/resources", "value": ctr["resources"]})
        if not touched:
            return allowed
        if spec.get("nodeName"):
            return self._deny(uid, f"spec.nodeName: {spec['nodeName']!r} is preset; a pod with managed devices "
                                   "must go through the scheduler")
        try:
            meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
            name = meta.get("name") or meta.get("generateName") or "pod"
            parse_pod({**pod, "metadata": {**meta, "name": name, "namespace": request.get("namespace") or
                                           meta.get("namespace") or "default"}, "spec": mutated}, self.vendors)
        except HalError as exc:
            return self._deny(uid, str(exc).splitlines()[0])
        current = spec.get("schedulerName") or ""
        if current == "" or (current == DEFAULT_SCHEDULER and self.force_overwrite_default):
            if current != self.scheduler_name:
                ops.append({"op": "add", "path": "/spec/schedulerName", "value": self.scheduler_name})
        if not ops:
            return allowed
        return {**allowed, "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(ops).encode()).decode()}

    @staticmethod
    def _deny(uid: str, message: str) -> dict:
        return {"uid": uid, "allowed": False, "status": {"code": 400, "reason": "BadRequest", "message": message}}

    def handle(self, body: bytes) -> dict:
        """A whole AdmissionReview in, a whole AdmissionReview out."""
        try:
            review = json.loads(body)
        except RecursionError:  # not a ValueError: it dropped the connection unanswered
            raise ValueError("body is nested too deep to be an AdmissionReview") from None
        if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
            raise ValueError("body must be an AdmissionReview")
        return {"apiVersion": review.get("apiVersion") or "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": self.review(review.get("request"))}


class WebhookServer:
    def __init__(self, mutator: Mutator, host: str, port: int, cert: str | None, key: str | None) -> None:
        self.mutator = mutator
        self.tls = bool(cert)
        ctx = None
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as exc:
                raise InputError("--tls-cert-file", cert, f"cannot be loaded with its key: {exc}") from None
        # The extender's bounded server: capped connection threads, backlog, TLS handshake off the accept loop.
        self.httpd = BoundedHTTPServer((host, port), self._handler(), ssl_context=ctx,
                                       handshake_timeout=CONNECTION_TIMEOUT_S, grace_s=5.0)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        h, p = self.httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{h}:{p}"

    def start(self) -> WebhookServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.graceful_stop()

    def _handler(self):
        mutator = self.mutator

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = CONNECTION_TIMEOUT_S  # socket timeout on every read: a silent client is cut off

            def setup(self):
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *a):
                pass

            def _send(self, code: int, data: bytes, ctype: str = "application/json", *,
                      close: bool = False) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                if close:
                    # The body was not read: on keep-alive it would be parsed as the next request.
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                if self.path in ("/healthz", "/readyz"):
                    return self._send(200, b"ok", "text/plain")
                self._send(404, b"not found", "text/plain")

            def do_POST(self):  # noqa: N802
                if self.path.split("?")[0] not in ("/webhook", "/mutate"):
                    return self._send(404, b"not found", "text/plain", close=True)
                raw = (self.headers.get("Content-Length") or "0").strip()
                if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
                    return self._send(400, f"Content-Length: {raw[:40]!r} is not a number".encode(), "text/plain",
                                      close=True)
                n = int(raw)
                if n > MAX_BODY:
                    return self._send(413, b"request body over 1 MiB", "text/plain", close=True)
                try:
                    out = mutator.handle(self.rfile.read(n))
                except (ValueError, UnicodeDecodeError) as exc:
                    return self._send(400, f"request body: {str(exc)[:200]}".encode(), "text/plain")
                except Exception as exc:  # a bug: still an answer, never a dropped connection
                    log.exception("webhook review failed")
                    return self._send(500, f"internal error: {type(exc).__name__}: {str(exc)[:200]}".encode(),
                                      "text/plain")
                self._send(200, json.dumps(out).encode())

        return Handler


def apply_device_config(vendors: list[VendorInfo], path: str) -> list[VendorInfo]:
    """HAMi's ``device-config.yaml`` defaults (``<vendor>.defaultMemory/defaultCores/defaultGPUNum``)."""
    import yaml

    from hami_hal import bounded_yaml

    try:  # bounded: size, nesting, alias expansion (a deep or non-UTF-8 file was a traceback)
        raw = bounded_yaml.load(bounded_yaml.read_text(Path(path), MAX_DEVICE_CONFIG))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, bounded_yaml.YamlBoundError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError("--device-config", path, f"cannot be read as YAML: {first}") from None
    if raw is None:
        return vendors
    if not isinstance(raw, dict):
        raise InputError("--device-config", path, "must be a mapping of vendor sections")
    out = []
    for v in vendors:
        sec = raw.get(v.name)
        if not isinstance(sec, dict):
            out.append(v)
            continue
        upd = {}
        for key, fld, lo, hi in (("defaultMemory", "default_memory_mib", 0, 1 << 31), ("defaultCores", "default_cores", 0, 100),
                                 ("defaultGPUNum", "default_count", 1, 1024)):
            if key in sec:
                val = sec[key]
                if not isinstance(val, int) or isinstance(val, bool) or not lo <= val <= hi:
                    raise InputError(f"{path}: {v.name}.{key}", val, f"must be an integer in {lo}..{hi}")
                upd[fld] = val
        out.append(v.model_copy(update={"resources": [f.model_copy(update=upd) for f in v.resources]}))
    return out


def cmd_webhook(args) -> int:
    from .server import load_vendors

    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        raise InputError("--tls-cert-file", args.tls_cert_file, "and --tls-private-key-file go together")
    host, _, port = args.bind.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise InputError("--bind", args.bind, "must be host:port")
    if args.vendors:
        vendors = load_vendors(args.vendors)
    else:
        from hami_hal.manager import Hal

        vendors = Hal().vendors()
    if args.device_config:
        vendors = apply_device_config(vendors, args.device_config)
    mutator = Mutator(vendors, args.scheduler_name, args.force_overwrite_default_scheduler == "true")
    srv = WebhookServer(mutator, host or "0.0.0.0", int(port), args.tls_cert_file, args.tls_private_key_file).start()
    print(f"hami-scheduler webhook on {srv.url} (scheduler {args.scheduler_name}, "
          f"{len(mutator.managed)} managed resource names)", flush=True)
    try:
        srv.thread.join()
    except KeyboardInterrupt:
        srv.stop()
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("webhook", help="serve the mutating admission webhook (AdmissionReview v1, TLS)")
    p.add_argument("--bind", default="0.0.0.0:9443", help="host:port (default 0.0.0.0:9443)")
    p.add_argument("--tls-cert-file", default=None, help="PEM certificate (the apiserver requires TLS)")
    p.add_argument("--tls-private-key-file", default=None, help="PEM private key of the certificate")
    p.add_argument("--scheduler-name", default="hami-scheduler", help="schedulerName set on managed pods")
    p.add_argument("--force-overwrite-default-scheduler", choices=("true", "false"), default="true",
                   help="also replace schedulerName default-scheduler (HAMi default: true)")
    p.add_argument("--vendors", default=None, help="JSON array of VendorInfo (default: installed plugins)")
    p.add_argument("--device-config", default=None,
                   help="HAMi device-config.yaml: <vendor>.defaultMemory/defaultCores/defaultGPUNum")
    p.set_defaults(func=cmd_webhook)
