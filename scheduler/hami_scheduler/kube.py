"""Kubernetes API access through the official ``kubernetes`` client, as plain JSON dicts.

Every node-lock write carries the node's ``metadata.resourceVersion``; the API answers 409 on a stale
one and the lock is retried (HAMi: 5 steps from 100 ms, ×2). Watches keep a ClusterState current.

Every call carries a timeout (:data:`REQUEST_TIMEOUT`), so an API server that vanishes mid-bind
fails the bind in seconds instead of hanging it with the node lock held. A lock expires as HAMi's
does (older than the lock timeout, or its holder pod is gone); a lock stamped further in the future
than :data:`CLOCK_SKEW_S` is treated as expired too, so a bad clock cannot hold a node forever. Taking
over an expired lock is a resourceVersion-guarded patch: of two schedulers, one wins.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from datetime import UTC, datetime, timedelta

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from hami_hal.errors import AllocationError, HalError, InputError
from hami_hal.hami_compat import decode_lock, encode_lock
from hami_hal.hami_compat.keys import SCHEDULER_POD_LABELS

from .annotations import NODE_LOCK, VGPU_NODE
from .refusals import node_key, pod_key

log = logging.getLogger("hami_scheduler.kube")

#: (connect, read) seconds for every non-watch API call.
REQUEST_TIMEOUT = (5.0, 15.0)
#: A lock stamped more than this far in the future is not honoured.
CLOCK_SKEW_S = 60.0


def describe(exc: BaseException) -> str:
    """One short line for an API failure (ApiException's str() holds headers and the whole body)."""
    if isinstance(exc, ApiException):
        msg = ""
        try:
            msg = json.loads(exc.body or "{}").get("message", "")
        except (ValueError, AttributeError):
            pass
        return f"API {exc.status} {exc.reason}" + (f": {msg[:160]}" if msg else "")
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


def api_client(host: str | None = None, kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient for ``host`` (no auth; tests and kubectl proxy) or from kube/in-cluster config."""
    if host:
        cfg = client.Configuration()
        cfg.host = host
        return client.ApiClient(cfg)
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig)
    return client.ApiClient()


def _json(resp) -> dict:
    return json.loads(resp.data)


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)

    # -- reads -------------------------------------------------------------------------------

    def list_nodes(self) -> dict:
        return _json(self.core.list_node(_preload_content=False, _request_timeout=REQUEST_TIMEOUT))

    def list_pods(self) -> dict:
        return _json(self.core.list_pod_for_all_namespaces(_preload_content=False, _request_timeout=REQUEST_TIMEOUT))

    def get_pod(self, ns: str, name: str) -> dict:
        return _json(self.core.read_namespaced_pod(name, ns, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))

    def get_node(self, name: str) -> dict:
        return _json(self.core.read_node(name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))

    def pods_on_node(self, node: str) -> list[dict]:
        """Pods the filter assigned to ``node`` (label ``hami.io/vgpu-node``) or bound to it."""
        by_label = _json(self.core.list_pod_for_all_namespaces(label_selector=f"{VGPU_NODE}={node}",
                                                               _preload_content=False,
                                                               _request_timeout=REQUEST_TIMEOUT))["items"]
        bound = _json(self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}",
                                                            _preload_content=False,
                                                            _request_timeout=REQUEST_TIMEOUT))["items"]
        seen = {}
        for p in by_label + bound:
            m = p.get("metadata") or {}
            seen[(m.get("namespace"), m.get("name"))] = p
        return list(seen.values())

    def read_configmap(self, ns: str, name: str) -> dict:
        return _json(self.core.read_namespaced_config_map(name, ns, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))

    # -- writes ------------------------------------------------------------------------------

    def patch_pod_annotations(self, ns: str, name: str, annotations: dict[str, str | None]) -> dict:
        body = {"metadata": {"annotations": annotations}}
        labels = {k: annotations[k] for k in SCHEDULER_POD_LABELS if k in annotations}
        if labels:  # HAMi also labels the pod with the node (the monitor selects on it)
            body["metadata"]["labels"] = labels
        return _json(self.core.patch_namespaced_pod(name, ns, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT))

    def create_binding(self, ns: str, name: str, uid: str | None, node: str) -> None:
        body = client.V1Binding(
            metadata=client.V1ObjectMeta(name=name, namespace=ns, uid=uid or None),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
        )
        # _preload_content=False: the client cannot deserialise the Status object some servers return.
        self.core.create_namespaced_pod_binding(name, ns, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)

    def lock_node(self, node: str, ns: str, pod: str, timeout_s: float = 300.0, steps: int = 5) -> None:
        """HAMi node lock (hami-compat.md §4.6) with optimistic concurrency on resourceVersion.

        Raises AllocationError (held by another pod, or the API failed) — never anything else.
        """
        delay = 0.1
        for attempt in range(steps):
            try:
                obj = self.get_node(node)
            except Exception as exc:
                raise AllocationError(f"node {node} lock: reading the node failed: {describe(exc)}") from None
            meta = obj["metadata"]
            held = (meta.get("annotations") or {}).get(NODE_LOCK)
            if held and not self._lock_free(held, ns, pod, timeout_s, node):
                raise AllocationError(f"node {node} has been locked within {int(timeout_s)}s ({held[:120]})")
            body = {"metadata": {"resourceVersion": meta["resourceVersion"],
                                 "annotations": {NODE_LOCK: encode_lock(datetime.now(UTC), ns, pod)}}}
            try:
                self.core.patch_node(node, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
                return
            except ApiException as exc:
                if exc.status != 409 or attempt == steps - 1:
                    raise AllocationError(f"node {node} lock: {describe(exc)}") from None
            except Exception as exc:
                raise AllocationError(f"node {node} lock: {describe(exc)}") from None
            time.sleep(delay * (1 + random.random() * 0.5))
            delay *= 2

    def _lock_free(self, held: str, ns: str, pod: str, timeout_s: float, node: str = "") -> bool:
        """Whether ``held`` may be taken over: ours, malformed, expired, stamped in the future, its pod is gone,
        or its pod's bind on this node is over (the pod is bound, or a later filter sent it to another node).

        The last two free a lock that a killed extender left between lock and unlock without waiting for the
        5 min timeout; both are safe, since kube-scheduler neither re-filters a pod nor binds it twice while
        one bind of it is in flight.
        """
        try:
            lock = decode_lock(held)
        except HalError:
            return True
        if lock.held_by(ns, pod):
            return True
        now = datetime.now(UTC)
        if lock.expired(now, timedelta(seconds=timeout_s)) or (lock.at - now).total_seconds() > CLOCK_SKEW_S:
            return True
        if lock.name is not None:
            try:
                holder = self.get_pod(lock.namespace, lock.name)
            except ApiException as exc:
                return exc.status == 404
            except Exception:  # the API is unreachable: the lock stands
                return False
            if not isinstance(holder, dict):
                return False
            bound_to = (holder.get("spec") or {}).get("nodeName")
            annotations = (holder.get("metadata") or {}).get("annotations") or {}
            if bound_to or (node and annotations.get(VGPU_NODE, node) != node):
                return True
        return False

    def unlock_node(self, node: str, ns: str, pod: str, attempts: int = 5) -> bool:
        """Remove the lock only if this pod holds it (HAMi #1433); retried on conflicts and API errors.

        Returns True when the lock is no longer ours; False when every attempt failed (it then expires
        after the lock timeout, and is logged).
        """
        delay = 0.05
        for attempt in range(attempts):
            try:
                obj = self.get_node(node)
                held = (obj["metadata"].get("annotations") or {}).get(NODE_LOCK)
                if not held or not _held_by(held, ns, pod):
                    return True
                body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"],
                                     "annotations": {NODE_LOCK: None}}}
                self.core.patch_node(node, body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
                return True
            except Exception as exc:
                if getattr(exc, "status", None) == 404:
                    return True  # the node is gone, and its lock with it
                if attempt == attempts - 1:
                    log.warning("unlocking node %s for %s/%s failed %d times (%s); it expires after the lock "
                                "timeout", node, ns, pod, attempts, describe(exc))
                    return False
            time.sleep(delay * (1 + random.random() * 0.5))
            delay *= 2
        return False


def _held_by(held: str, ns: str, pod: str) -> bool:
    try:
        return decode_lock(held).held_by(ns, pod)
    except HalError:
        return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HalError):
        return str(exc)
    log.warning("object rejected by an unexpected error", exc_info=exc)
    return f"rejected: {type(exc).__name__}: {str(exc)[:200]}"


def sync(kube: Kube, cluster) -> tuple[str, str]:
    """Rebuild ``cluster`` from the API (nodes first, then pods); returns the list resourceVersions.

    Objects the API no longer lists are dropped, so a re-list after a broken watch loses nothing
    and keeps nothing stale.
    """
    nodes = kube.list_nodes()
    listed = {(n.get("metadata") or {}).get("name") for n in nodes.get("items") or []}
    for name in set(cluster.nodes) - listed:
        cluster.remove_node(name)
    for n in nodes.get("items") or []:
        try:
            cluster.upsert_node(n)
        except Exception as exc:  # one bad node is rejected whole; the others keep scheduling
            cluster.rejected[node_key((n.get('metadata') or {}).get('name'))] = _reason(exc)
    pods = kube.list_pods()
    present = {f"{(p.get('metadata') or {}).get('namespace', 'default')}/{(p.get('metadata') or {}).get('name')}"
               for p in pods.get("items") or []}
    for key in (set(cluster.pods) | set(cluster.pending)) - present:
        cluster.forget_pod(key)
    cluster.forget_absent({n for n in listed if isinstance(n, str)}, present)
    for p in pods.get("items") or []:
        try:
            cluster.upsert_pod(p)
        except Exception as exc:
            m = p.get("metadata") or {}
            cluster.rejected[pod_key(f"{m.get('namespace', 'default')}/{m.get('name')}")] = _reason(exc)
    return nodes["metadata"].get("resourceVersion", ""), pods["metadata"].get("resourceVersion", "")


class Watcher:
    """Background watches on nodes and pods; a broken watch triggers a full re-sync."""

    def __init__(self, kube: Kube, cluster) -> None:
        self.kube = kube
        self.cluster = cluster
        self.stop = threading.Event()
        self.synced = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        rv_nodes, rv_pods = sync(self.kube, self.cluster)
        with self.cluster.lock:
            self.cluster.index.refresh()  # build the prefilter summary before declaring readiness
        self.synced.set()
        for fn, rv, handler in (
            (self.kube.core.list_node, rv_nodes, self._on_node),
            (self.kube.core.list_pod_for_all_namespaces, rv_pods, self._on_pod),
        ):
            t = threading.Thread(target=self._loop, args=(fn, rv, handler), daemon=True)
            t.start()
            self.threads.append(t)

    def _loop(self, fn, rv, handler) -> None:
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(fn, resource_version=rv, timeout_seconds=5, deserialize=False,
                                      _request_timeout=60):
                    if self.stop.is_set():
                        w.stop()
                        return
                    obj = ev.get("raw_object") or ev["object"]
                    if ev.get("type") == "ERROR":
                        raise RuntimeError(f"watch error: {obj}")
                    rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                    try:
                        handler(ev["type"], obj)
                    except Exception as exc:  # one bad object is rejected, the watch goes on
                        m = obj.get("metadata") or {}
                        key = node_key(m.get("name")) if fn == self.kube.core.list_node else \
                            pod_key(f"{m.get('namespace', 'default')}/{m.get('name')}")
                        self.cluster.rejected[key] = _reason(exc)
            except Exception as exc:  # 410 Gone or connection loss: re-list
                if self.stop.is_set():
                    return
                log.warning("watch %s failed (%s); re-listing", getattr(fn, "__name__", fn), exc)
                time.sleep(0.2)
                try:
                    rv = sync(self.kube, self.cluster)[0 if fn == self.kube.core.list_node else 1]
                except Exception:
                    time.sleep(1)

    def _on_node(self, kind: str, obj: dict) -> None:
        if kind == "DELETED":
            self.cluster.remove_node(obj["metadata"]["name"])
        else:
            self.cluster.upsert_node(obj)

    def _on_pod(self, kind: str, obj: dict) -> None:
        m = obj["metadata"]
        if kind == "DELETED":
            self.cluster.forget_pod(f"{m.get('namespace', 'default')}/{m['name']}")
        else:
            self.cluster.upsert_pod(obj)


def load_matrix_from_configmap(kube: Kube, ref: str):
    """``namespace/name[/key]`` → CapabilityMatrix (key defaults to ``capability-matrix.json``)."""
    from hami_hal.models import CapabilityMatrix

    parts = ref.split("/")
    if len(parts) not in (2, 3):
        raise InputError("--capability-configmap", ref, "must be namespace/name[/key]")
    key = parts[2] if len(parts) == 3 else "capability-matrix.json"
    try:
        cm = kube.read_configmap(parts[0], parts[1])
    except ApiException as exc:
        raise InputError("--capability-configmap", ref, f"cannot be read ({exc.status})") from None
    text = (cm.get("data") or {}).get(key)
    if not text:
        raise InputError("--capability-configmap", ref, f"has no key {key}")
    try:
        return CapabilityMatrix.model_validate_json(text)
    except ValueError as exc:
        raise InputError("--capability-configmap", ref, f"is not a CapabilityMatrix: {str(exc)[:120]}") from None


__all__ = ["HalError", "Kube", "Watcher", "api_client", "load_matrix_from_configmap", "sync"]
