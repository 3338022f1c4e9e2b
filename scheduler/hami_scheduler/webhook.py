"""Mutating admission webhook (AdmissionReview ``admission.k8s.io/v1`` over TLS), HAMi's behaviour.

For a Pod that requests a managed resource (any resource name of an installed or ``--vendors`` vendor),
in any container or init container:

- ``spec.schedulerName`` becomes ``--scheduler-name`` when it is empty, or ``default-scheduler`` and
  ``--force-overwrite-default-scheduler`` is on (HAMi's default); a pod naming another scheduler is left
  alone;
- HAMi's defaults are filled per resource family: memory, cores or a memory percentage without a count
  adds ``<count>: <default count>`` (HAMi ``defaultGPUNum``); a count with exclusive memory (no memory, no
  default memory, percentage absent or 100) and no cores adds ``<cores>: 100`` (HAMi PR #1354);
- a count the vendor's admission raises (an Ascend 910C ``superPod`` whole-card request of 1 -> its module pair
  of 2, HAMi's ``MutateAdmission``) is written into the container's limit and request, so the kubelet asks the
  device plugin for the devices the scheduler assigns; a request the admission refuses (a 910C odd count) is denied
  with its line (:mod:`.webhook_counts`; installed plugins only, not with ``--vendors``; pods this scheduler
  places only);
- the pod is denied, with one line naming the field and the value, when the result does not parse
  (the scheduler's own parser, so the webhook and the scheduler never disagree), when a container
  asking for a managed resource is privileged, or when ``spec.nodeName`` is preset (the pod would skip
  the scheduler and its device accounting).

Per vendor, from ``--device-config`` (HAMi's device-config.yaml, see :mod:`.device_config`), on every pod:

- ``runtimeClassName``: a pod asking for the vendor's devices (any container or init container) gets it as
  ``spec.runtimeClassName`` unless the pod names one (HAMi keeps the pod's); two vendors asking for different
  classes in one pod that names none is denied (HAMi would pick one by map order);
- ``overwriteEnv: true``: each container and init container asking for none of the vendor's devices gets the
  vendor's visible-devices variable set to "no device" (``NVIDIA_VISIBLE_DEVICES=none``), over any value of its
  own, also in pods without managed resources and pods of other schedulers.

On every pod, after the above: a container, init container or ephemeral container whose spec ``env`` gives a
managed vendor's visible-devices variable a value that shows devices (``NVIDIA_VISIBLE_DEVICES=all``, a UUID,
``valueFrom``) is refused, one line naming the container, the variable and the value; so is a container asking for
the vendor's devices whose ``envFrom`` (ConfigMap or Secret) could set that variable, one line naming the container
and the source (:mod:`.visible_devices_guard`; both off with ``--allow-visible-devices-env``).

Otherwise a pod without managed resources, or an object that is not a Pod, is allowed unchanged. Routes:
``POST /webhook`` (HAMi's path) and ``POST /mutate``; ``POST /validate`` (the visible-devices check alone, for a
ValidatingWebhookConfiguration); ``GET /healthz``. Bodies over 1 MiB are refused.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import logging
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler

from hami_hal.digits import is_digits
from hami_hal.errors import HalError, InputError
from hami_hal.models import ResourceFamily, VendorInfo
from hami_hal.requests import parse_pod_detailed
from hami_hal.requests.parser import Admit

from .device_config import HIDE_DEVICES_ENV, VendorAdmission, WebhookDeviceConfig, read_device_config
from .httpserver import BoundedHTTPServer
from .visible_devices_guard import check_pod_spec
from .webhook_counts import raise_counts

log = logging.getLogger("hami_scheduler.webhook")

MAX_BODY = 1 << 20
DEFAULT_SCHEDULER = "default-scheduler"
CONNECTION_TIMEOUT_S = 10.0  # the apiserver's webhook timeout is at most 30 s; a silent client is cut off


class Mutator:
    """The decision: AdmissionRequest -> AdmissionResponse (no I/O, so it is testable and benchmarkable)."""

    def __init__(self, vendors: list[VendorInfo], scheduler_name: str = "hami-scheduler",
                 force_overwrite_default: bool = True, admission: list[VendorAdmission] | None = None,
                 allow_visible_devices_env: bool = False, admit: Admit | None = None) -> None:
        self.vendors = vendors
        #: The vendors' admission (``Hal.admit_request``, None with ``--vendors``): a count it raises is written
        #: back into the pod (:mod:`.webhook_counts`), and a request it refuses is denied.
        self.admit = admit
        self.scheduler_name = scheduler_name
        self.force_overwrite_default = force_overwrite_default
        self.families: list[ResourceFamily] = [f for v in vendors for f in v.resources]
        self.managed = {n for f in self.families for n in f.names()}
        #: (vendor, CommonWord) -> the family's count resource: what "asks for the vendor's devices" means.
        self.family_counts = {(v.name, f.common_word): f.count for v in vendors for f in v.resources}
        names = {v.name for v in vendors}
        self.admission = [a for a in admission or [] if a.vendor in names]
        #: The visible-devices variables a pod's spec may not widen (off with ``--allow-visible-devices-env``).
        self.guards = [] if allow_visible_devices_env else [
            HIDE_DEVICES_ENV[v.name] for v in vendors if v.name in HIDE_DEVICES_ENV]
        #: guarded variable -> its vendor's resource names: a container naming one gets the variable from the
        #: device plugin, so an ``envFrom`` that could replace it is refused there.
        self.guard_resources = {HIDE_DEVICES_ENV[v.name].variable: frozenset(n for f in v.resources for n in f.names())
                                for v in vendors if v.name in HIDE_DEVICES_ENV}

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
        seen: list[tuple[str, int, dict, set[tuple[str, str]]]] = []  # (key, index, container, families asked)
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
                if names:
                    touched = True
                    sc = ctr.get("securityContext") if isinstance(ctr.get("securityContext"), dict) else {}
                    if sc.get("privileged") is True:
                        return self._deny(uid, f"spec.{key}[{i}].securityContext.privileged: true is not allowed "
                                               f"with {names[0]} (a privileged container sees every device)")
                    if self._fill_defaults(ctr):
                        ops.append({"op": "add", "path": f"/spec/{key}/{i}/resources", "value": ctr["resources"]})
                seen.append((key, i, ctr, self._families_asked(ctr)))
        if touched:
            if spec.get("nodeName"):
                return self._deny(uid, f"spec.nodeName: {spec['nodeName']!r} is preset; a pod with managed "
                                       "devices must go through the scheduler")
            meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
            name = meta.get("name") or meta.get("generateName") or "pod"
            doc = {**pod, "metadata": {**meta, "name": name, "namespace": request.get("namespace") or
                                       meta.get("namespace") or "default"}, "spec": mutated}
            try:  # the one parse of the pod: the admission below works on its result
                parsed = parse_pod_detailed(doc, self.vendors)
            except HalError as exc:
                return self._deny(uid, str(exc).splitlines()[0])
            current = spec.get("schedulerName") or ""
            ours = current == "" or (current == DEFAULT_SCHEDULER and self.force_overwrite_default)
            # the vendors' admission is this scheduler's rule: a pod another scheduler places keeps its counts
            if self.admit and (ours or current == self.scheduler_name):
                denial = raise_counts(parsed, mutated, self.vendors, self.admit, ops)
                if denial:
                    return self._deny(uid, denial)
            if ours and current != self.scheduler_name:
                ops.append({"op": "add", "path": "/spec/schedulerName", "value": self.scheduler_name})
        asked: set[tuple[str, str]] = set().union(*(fams for *_, fams in seen))
        denial = self._runtime_class(spec, asked, ops)
        if denial:
            return self._deny(uid, denial)
        denial = self._hide_devices(seen, ops) or check_pod_spec(mutated, self.guards, self.guard_resources)
        if denial:
            return self._deny(uid, denial)
        if not ops:
            return allowed
        return {**allowed, "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(ops).encode()).decode()}

    # -- device-config keys applied per vendor (runtimeClassName, overwriteEnv) ------------------

    def _families_asked(self, ctr: dict) -> set[tuple[str, str]]:
        """The (vendor, CommonWord) families the container asks for: a count in limits or requests, after the
        defaults (HAMi: the count, or memory/cores that the default count joins)."""
        res = ctr.get("resources") if isinstance(ctr.get("resources"), dict) else {}
        names: set[str] = set()
        for part in ("limits", "requests"):
            if isinstance(res.get(part), dict):
                names.update(res[part])
        return {fam for fam, count in self.family_counts.items() if count in names}

    def _runtime_class(self, spec: dict, asked: set[tuple[str, str]], ops: list[dict]) -> str | None:
        """HAMi: a pod asking for a vendor's devices gets the vendor's ``runtimeClassName`` unless it names one."""
        wanted: dict[str, str] = {}
        for a in self.admission:
            hits = sorted(cw for v, cw in asked if v == a.vendor and (a.families is None or cw in a.families))
            if a.runtime_class_name and hits:
                wanted[a.vendor if a.families is None else f"{a.vendor} {'/'.join(hits)}"] = a.runtime_class_name
        if not wanted or spec.get("runtimeClassName") is not None:
            return None
        if len(set(wanted.values())) > 1:
            listed = ", ".join(f"{v} wants {rc!r}" for v, rc in sorted(wanted.items()))
            return (f"spec.runtimeClassName: unset, and the pod asks for devices with different runtime classes "
                    f"({listed}); set spec.runtimeClassName on the pod")
        ops.append({"op": "add", "path": "/spec/runtimeClassName", "value": next(iter(wanted.values()))})
        return None

    def _hide_devices(self, seen: list[tuple[str, int, dict, set[tuple[str, str]]]], ops: list[dict]) -> str | None:
        """HAMi ``overwriteEnv``: a container without the vendor's devices gets the variable that shows none.

        It wins over the container's own value (HAMi appends, and the last entry of a name wins): an entry of that
        name is replaced in place, so the pod keeps one entry per name.
        """
        hiding = [a for a in self.admission if a.hide_env is not None]
        for key, i, ctr, asked in seen:
            vendors = {v for v, _ in asked}
            for a in hiding:
                if a.vendor in vendors:
                    continue
                denial = set_env(ctr, f"/spec/{key}/{i}/env", f"spec.{key}[{i}].env",
                                 a.hide_env.variable, a.hide_env.hidden, ops)
                if denial:
                    return denial
        return None

    def validate(self, request: dict) -> dict:
        """The validating route (``/validate``): only the visible-devices check, on the pod as it will be stored
        (after every mutating webhook), for pod creation and for ephemeral containers added to a running pod
        (``kubectl debug``: UPDATE of ``pods/ephemeralcontainers``, where only the ephemeral containers are checked:
        the others cannot change after creation). The chart registers it without the
        ``hami.io/webhook=ignore`` object selector, so a pod's own label cannot skip it."""
        uid = request.get("uid", "") if isinstance(request, dict) else ""
        if not isinstance(request, dict):
            return self._deny(uid, "request: must be an object")
        kind = request.get("kind") or {}
        op, sub = request.get("operation", "CREATE"), request.get("subResource") or ""
        if not isinstance(kind, dict) or kind.get("kind") != "Pod" or not (
                (op == "CREATE" and not sub) or (op == "UPDATE" and sub == "ephemeralcontainers")):
            return {"uid": uid, "allowed": True}
        pod = request.get("object")
        spec = pod.get("spec") if isinstance(pod, dict) else None
        if not isinstance(spec, dict):
            return self._deny(uid, "object.spec: must be an object")
        if op == "UPDATE":  # only ephemeral containers are added; the others are immutable (checked at creation,
            # or older than the check: a GPU container's envFrom there must not block every kubectl debug)
            spec = {"ephemeralContainers": spec.get("ephemeralContainers")}
        denial = check_pod_spec(spec, self.guards, self.guard_resources)
        return self._deny(uid, denial) if denial else {"uid": uid, "allowed": True}

    @staticmethod
    def _deny(uid: str, message: str) -> dict:
        return {"uid": uid, "allowed": False, "status": {"code": 400, "reason": "BadRequest", "message": message}}

    def handle(self, body: bytes, validate: bool = False) -> dict:
        """A whole AdmissionReview in, a whole AdmissionReview out (``validate``: the validating route)."""
        try:
            review = json.loads(body)
        except RecursionError:  # not a ValueError: it dropped the connection unanswered
            raise ValueError("body is nested too deep to be an AdmissionReview") from None
        if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
            raise ValueError("body must be an AdmissionReview")
        decide = self.validate if validate else self.review
        return {"apiVersion": review.get("apiVersion") or "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": decide(review.get("request"))}


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
                route = self.path.split("?")[0]
                if route not in ("/webhook", "/mutate", "/validate"):
                    return self._send(404, b"not found", "text/plain", close=True)
                raw = (self.headers.get("Content-Length") or "0").strip()
                if not (is_digits(raw) and len(raw) <= 12):
                    return self._send(400, f"Content-Length: {raw[:40]!r} is not a number".encode(), "text/plain",
                                      close=True)
                n = int(raw)
                if n > MAX_BODY:
                    return self._send(413, b"request body over 1 MiB", "text/plain", close=True)
                try:
                    out = mutator.handle(self.rfile.read(n), validate=route == "/validate")
                except (ValueError, UnicodeDecodeError) as exc:
                    return self._send(400, f"request body: {str(exc)[:200]}".encode(), "text/plain")
                except Exception as exc:  # a bug: still an answer, never a dropped connection
                    log.exception("webhook review failed")
                    return self._send(500, f"internal error: {type(exc).__name__}: {str(exc)[:200]}".encode(),
                                      "text/plain")
                self._send(200, json.dumps(out).encode())

        return Handler


def set_env(ctr: dict, path: str, where: str, name: str, value: str, ops: list[dict]) -> str | None:
    """Set ``name=value`` in the container's ``env`` and append the RFC 6902 operations that do the same on the
    pod: ``add`` of the whole array where there is none, ``replace`` of each entry of that name, else ``add`` at
    the end (``/-``). The container dict follows the patch, so a later call sees the state it leaves.
    Returns a one-line denial when ``env`` is not a list of objects."""
    env = ctr.get("env")
    entry = {"name": name, "value": value}
    if env is None:
        ctr["env"] = [entry]
        ops.append({"op": "add", "path": path, "value": [dict(entry)]})
        return None
    if not isinstance(env, list):
        return f"{where}: must be a list"
    hits = []
    for j, e in enumerate(env):
        if not isinstance(e, dict):
            return f"{where}[{j}]: must be an object"
        if e.get("name") == name:
            hits.append(j)
    for j in hits:
        if env[j] != entry:
            env[j] = dict(entry)
            ops.append({"op": "replace", "path": f"{path}/{j}", "value": dict(entry)})
    if not hits:
        env.append(dict(entry))
        ops.append({"op": "add", "path": f"{path}/-", "value": dict(entry)})
    return None


def webhook_config(vendors_file: str | None, device_config: str | None) -> WebhookDeviceConfig:
    """The vendors the webhook manages and what it applies: ``--vendors`` as data, else the installed plugins, whose
    view of the device-config's per-chip sections adds the chips those describe (as the node agents serve them)."""
    from .server import load_vendors

    node_vendor = admit = None
    if vendors_file:
        vendors = load_vendors(vendors_file)
    else:
        from hami_hal.context import NodeContext
        from hami_hal.manager import Hal

        hal = Hal()
        vendors = hal.vendors()
        admit = hal.admit_request

        def node_vendor(v: VendorInfo, sections: dict) -> VendorInfo:
            return hal.node_vendor(v.name, NodeContext("real", "hami-scheduler-webhook", config=sections))
    if not device_config:
        return WebhookDeviceConfig(vendors, [], admit=admit)
    return dataclasses.replace(read_device_config(vendors, device_config, node_vendor), admit=admit)


def cmd_webhook(args) -> int:
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        raise InputError("--tls-cert-file", args.tls_cert_file, "and --tls-private-key-file go together")
    host, _, port = args.bind.rpartition(":")
    if not is_digits(port) or int(port) > 65535:
        raise InputError("--bind", args.bind, "must be host:port")
    cfg = webhook_config(args.vendors, args.device_config)
    vendors, admission = cfg.vendors, cfg.admission
    for note in cfg.notes:
        print(note, file=sys.stderr, flush=True)
    mutator = Mutator(vendors, args.scheduler_name, args.force_overwrite_default_scheduler == "true", admission,
                      allow_visible_devices_env=args.allow_visible_devices_env, admit=cfg.admit)
    srv = WebhookServer(mutator, host or "0.0.0.0", int(port), args.tls_cert_file, args.tls_private_key_file).start()
    applied = "".join(f"; {a.vendor}:" + (f" runtimeClassName {a.runtime_class_name}" if a.runtime_class_name else "")
                      + (f" overwriteEnv {a.hide_env.variable}={a.hide_env.hidden}" if a.hide_env else "")
                      for a in mutator.admission)
    guarded = ", ".join(g.variable for g in mutator.guards) or "off (--allow-visible-devices-env)"
    print(f"hami-scheduler webhook on {srv.url} (scheduler {args.scheduler_name}, "
          f"{len(mutator.managed)} managed resource names{applied}; visible-devices check: {guarded})", flush=True)
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
                   help="HAMi device-config.yaml: <vendor>.defaultMemory/defaultCores/defaultGPUNum, "
                        "runtimeClassName, overwriteEnv")
    p.add_argument("--allow-visible-devices-env", action="store_true",
                   help="let pods set a vendor's visible-devices variable (NVIDIA_VISIBLE_DEVICES) to a value that "
                        "shows devices, in env or through envFrom; off by default: such a value widens the "
                        "container's devices past those it was given (only for nodes whose runtime ignores the "
                        "variable, see docs/install.md)")
    p.set_defaults(func=cmd_webhook)
