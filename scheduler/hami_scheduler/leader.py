"""Leader election for extender replicas on a ``coordination.k8s.io/v1`` Lease.

Only the leader answers filter and bind; a follower keeps its cache current through the same watches,
answers with an ``Error`` naming the holder (kube-scheduler retries the pod, reaching the leader's replica),
and takes over when the holder stops renewing. Semantics follow client-go's leaderelection: a lease is
expired when its record has not changed for ``leaseDurationSeconds`` as observed on this replica's own
clock (no cross-machine clock comparison), every write carries the lease's resourceVersion (a 409 means
another replica won the race), and a leader that cannot renew within ``renew_deadline_s`` steps down
before its lease can expire. A clean stop releases the lease, so failover is immediate.

The bind-time replay under the node lock (extender.py) stays the guarantee against double allocation
even while two replicas briefly both believe they lead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from hami_hal.errors import InputError
from hami_hal.hami_compat.keys import SCHEDULER_ROLE

log = logging.getLogger("hami_scheduler.leader")

ROLE_LABEL = SCHEDULER_ROLE  # HAMi labels its scheduler pods leader|follower
#: Lease annotation: where the leader's extender answers, so a follower can forward to it.
URL_ANNOTATION = "hami-hal.io/leader-url"
FORWARD_TIMEOUT_S = 25.0  # under kube-scheduler's httpTimeout (HAMi: 30 s)


def micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    def __init__(self, api: client.ApiClient, name: str, namespace: str, identity: str | None = None,
                 lease_s: float = 15.0, renew_deadline_s: float = 10.0, retry_s: float = 2.0,
                 on_change=None, url: str = "") -> None:
        if not (0 < retry_s < renew_deadline_s < lease_s):
            raise InputError("--leader-elect-lease-duration", lease_s,
                             f"needs retry ({retry_s}s) < renew deadline ({renew_deadline_s}s) < lease duration")
        self.coord = client.CoordinationV1Api(api)
        self.name, self.namespace = name, namespace
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self.lease_s, self.renew_deadline_s, self.retry_s = lease_s, renew_deadline_s, retry_s
        self.on_change = on_change
        self.url = url
        self.leader_url = ""
        self._observed: tuple[Any, float] = (None, 0.0)  # (spec as last read, local monotonic time)
        self._renewed_at = float("-inf")  # monotonic time of this replica's last successful write
        self._leading = False
        self.holder = ""
        self.transitions = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="leader-election")

    # -- state -------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self._leading and time.monotonic() - self._renewed_at < self.renew_deadline_s

    def _set_leading(self, value: bool) -> None:
        if value != self._leading:
            self._leading = value
            log.warning("%s %s lease %s/%s", self.identity, "acquired" if value else "lost",
                        self.namespace, self.name)
            if self.on_change:
                try:
                    self.on_change(value)
                except Exception as exc:  # noqa: BLE001 - a callback must not stop the election
                    log.warning("leader callback failed: %s", exc)

    # -- one round ---------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One client-go round: read, decide, write with the read resourceVersion."""
        now = micro_time()
        try:
            lease = json.loads(self.coord.read_namespaced_lease(self.name, self.namespace,
                                                                _preload_content=False).data)
        except ApiException as exc:
            if exc.status != 404:
                return self._failed(f"read {exc.status}")
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace,
                                 "annotations": {URL_ANNOTATION: self.url}},
                    "spec": self._spec(now, now, 0)}
            try:
                self.coord.create_namespaced_lease(self.namespace, body, _preload_content=False)
            except ApiException as exc2:
                return self._failed(f"create {exc2.status}")
            return self._won()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        self.holder = holder
        if spec != self._observed[0]:
            self._observed = (spec, time.monotonic())
        duration = float(spec.get("leaseDurationSeconds") or self.lease_s)
        expired = time.monotonic() - self._observed[1] > duration
        if holder and holder != self.identity and not expired:
            self.leader_url = ((lease.get("metadata") or {}).get("annotations") or {}).get(URL_ANNOTATION, "")
            self._set_leading(False)
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        acquire = spec.get("acquireTime") or now
        if holder != self.identity:
            transitions += 1
            acquire = now
        lease["spec"] = self._spec(acquire, now, transitions)
        lease.setdefault("metadata", {}).setdefault("annotations", {})[URL_ANNOTATION] = self.url
        try:
            self.coord.replace_namespaced_lease(self.name, self.namespace, lease, _preload_content=False)
        except ApiException as exc:
            return self._failed(f"update {exc.status}")  # 409: someone else wrote first
        return self._won()

    def _spec(self, acquire: str, renew: str, transitions: int) -> dict:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_s),
                "acquireTime": acquire, "renewTime": renew, "leaseTransitions": transitions}

    def _won(self) -> bool:
        self._renewed_at = time.monotonic()
        self.holder = self.identity
        self.leader_url = self.url
        self._set_leading(True)
        return True

    def _failed(self, why: str) -> bool:
        log.info("lease %s/%s: %s", self.namespace, self.name, why)
        if not self.is_leader():
            self._set_leading(False)
        return False

    # -- loop --------------------------------------------------------------------------------

    def start(self) -> LeaseElector:
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception as exc:  # noqa: BLE001 - API unreachable: step down once the deadline passes
                self._failed(str(exc)[:120])
            if self._leading and not self.is_leader():
                self._set_leading(False)
            self.stop_event.wait(self.retry_s)

    def stop(self, release: bool = True) -> None:
        """Stop electing; a leader empties holderIdentity so a follower takes over at once."""
        self.stop_event.set()
        self.thread.join(timeout=self.retry_s + 5)
        if release and self.is_leader():
            try:
                lease = json.loads(self.coord.read_namespaced_lease(self.name, self.namespace,
                                                                    _preload_content=False).data)
                if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    lease["spec"].update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time())
                    self.coord.replace_namespaced_lease(self.name, self.namespace, lease, _preload_content=False)
            except ApiException:
                pass
        self._set_leading(False)


class LeaderGate:
    """The extender as kube-scheduler sees it: the leader answers; a follower forwards the call to the
    leader's URL (from the Lease), or refuses with the holder's name when it has none.

    Forwarding matters because kube-scheduler's own leader election is separate: the leading
    kube-scheduler may sit next to a follower extender.
    """

    def __init__(self, inner, elector: LeaseElector) -> None:
        self.inner = inner
        self.elector = elector
        self.forwarded = 0
        #: TLS for forwarding when the replicas serve HTTPS (client certificate = this replica's own)
        self.ssl_context: ssl.SSLContext | None = None

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def _refusal(self) -> str:
        holder = self.elector.holder or "nobody yet"
        return (f"this hami-scheduler replica ({self.elector.identity}) is not the leader; "
                f"lease {self.elector.namespace}/{self.elector.name} is held by {holder}")

    def _forward(self, verb: str, args: dict) -> dict | None:
        url = self.elector.leader_url
        if not url or url == self.elector.url:
            return None
        req = urllib.request.Request(f"{url.rstrip('/')}/{verb}", data=json.dumps(args).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=FORWARD_TIMEOUT_S, context=self.ssl_context) as resp:
                out = json.loads(resp.read(1 << 22))
        except (OSError, ValueError) as exc:
            return {"Error": f"{self._refusal()}; forwarding to {url} failed: {str(exc)[:160]}"}
        self.forwarded += 1
        return out if isinstance(out, dict) else {"Error": f"leader at {url} answered {str(out)[:80]}"}

    def filter(self, args: dict):
        if self.elector.is_leader():
            return self.inner.filter(args)
        from .extender import FilterOutcome, ci

        out = self._forward("filter", args)
        if out is None:
            return FilterOutcome([], {}, self._refusal())
        names = ci(out, "NodeNames") or []
        failed, unresolvable = (ci(out, k) or {} for k in ("FailedNodes", "FailedAndUnresolvableNodes"))
        return FilterOutcome(list(names) if isinstance(names, list) else [],
                             dict(failed) if isinstance(failed, dict) else {}, str(ci(out, "Error") or ""),
                             unresolvable=dict(unresolvable) if isinstance(unresolvable, dict) else {})

    def bind(self, args: dict) -> str:
        if self.elector.is_leader():
            return self.inner.bind(args)
        from .extender import ci

        out = self._forward("bind", args)
        return self._refusal() if out is None else str(ci(out, "Error") or "")


def label_own_pod(api: client.ApiClient, leading: bool) -> None:
    """HAMi's ``hami.io/scheduler-role`` label on this replica's pod (POD_NAME/POD_NAMESPACE from the downward API)."""
    name, ns = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
    if name and ns:
        client.CoreV1Api(api).patch_namespaced_pod(
            name, ns, {"metadata": {"labels": {ROLE_LABEL: "leader" if leading else "follower"}}})


def add_flags(parser) -> None:
    g = parser.add_argument_group("leader election (several replicas)")
    g.add_argument("--leader-elect", action="store_true",
                   help="only the holder of a coordination.k8s.io Lease answers filter/bind")
    g.add_argument("--leader-elect-lease-name", default="", help="Lease name (default: <scheduler-name>-extender)")
    g.add_argument("--leader-elect-namespace", default=os.environ.get("POD_NAMESPACE", "kube-system"),
                   help="Lease namespace (default: $POD_NAMESPACE or kube-system)")
    g.add_argument("--leader-elect-identity", default=os.environ.get("POD_NAME", ""),
                   help="this replica's holder identity (default: $POD_NAME or hostname_uuid)")
    g.add_argument("--leader-elect-url", default="",
                   help="where followers reach this replica's extender (default: http://$POD_IP:<--bind port>)")
    g.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS")
    g.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS")
    g.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS")


def with_leader_election(ext, api: client.ApiClient, args):
    """``serve``: gate the extender behind a Lease when ``--leader-elect`` is given (else unchanged)."""
    if not getattr(args, "leader_elect", False):
        return ext, None
    name = args.leader_elect_lease_name or f"{getattr(args, 'scheduler_name', 'hami-scheduler')}-extender"
    url = args.leader_elect_url
    tls_cert = getattr(args, "tls_cert", None)
    if not url:
        host, _, port = getattr(args, "bind", ":8888").rpartition(":")
        if port.strip("0") == "":  # the kernel picks the port after this URL is made: followers would call port 0
            raise InputError("--bind", args.bind, "has port 0; with --leader-elect give a port, or --leader-elect-url "
                                                  "with the port followers reach this replica on")
        ip = os.environ.get("POD_IP") or (host if host not in ("", "0.0.0.0", "::") else socket.gethostname())
        url = f"{'https' if tls_cert else 'http'}://{ip}:{port}"
    if not url.startswith(("http://", "https://")):
        raise InputError("--leader-elect-url", url, "must start with http:// or https://")
    elector = LeaseElector(api, name, args.leader_elect_namespace, args.leader_elect_identity or None,
                           args.leader_elect_lease_duration, args.leader_elect_renew_deadline,
                           args.leader_elect_retry_period, on_change=lambda lead: label_own_pod(api, lead), url=url)
    gate = LeaderGate(ext, elector)
    if tls_cert:
        gate.ssl_context = forward_context(tls_cert, getattr(args, "tls_key", None), getattr(args, "client_ca", None))
    return gate, elector.start()


def forward_context(cert: str, key: str | None, ca: str | None) -> ssl.SSLContext:
    """Client TLS towards the leader: trust the client CA when given (replicas' certificates come from it),
    else the serving certificate itself (the chart's replicas share one); present this replica's certificate
    (the leader may require client certificates). Pod IPs are not in certificates: no host-name check."""
    ctx = ssl.create_default_context(cafile=ca or cert)
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    return ctx
