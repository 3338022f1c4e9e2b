"""Pod Events for scheduling decisions, with HAMi's reasons (hami-compat.md §6.2).

``FilteringFailed`` (Warning) carries why no node fits: one ``<n> nodes <reason>(<nodes>)`` entry per
reason, so ``kubectl describe pod`` tells the user what to change. ``FilteringSucceed``,
``BindingSucceed`` and ``BindingFailed`` follow HAMi. Events go out from a bounded queue on a worker
thread, so a slow API never delays a filter; a repeat of the same event bumps ``count`` instead of
creating a new object, as client-go's recorder does. Event text is bounded (the API caps it at 1 KiB).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict, defaultdict
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.rest import ApiException

log = logging.getLogger("hami_scheduler.events")

COMPONENT = "hami-scheduler"
MAX_MESSAGE = 1024
MAX_NODES_LISTED = 5


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failed_message(failed: dict[str, str], error: str = "") -> str:
    """``2 nodes CardInsufficientMemory(n1, n2); 1 nodes node unregistered(n3)`` (HAMi's grouping)."""
    if error:
        return error[:MAX_MESSAGE]
    by_reason: dict[str, list[str]] = defaultdict(list)
    for node, why in sorted(failed.items()):
        by_reason[why].append(node)
    parts = []
    for why, nodes in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        shown = ", ".join(nodes[:MAX_NODES_LISTED]) + (", ..." if len(nodes) > MAX_NODES_LISTED else "")
        parts.append(f"{len(nodes)} nodes {why}({shown})")
    text = "; ".join(parts) or "no node offered to the extender"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class EventRecorder:
    """Posts core/v1 Events about pods; never blocks and never raises into the caller."""

    def __init__(self, api: client.ApiClient, component: str = COMPONENT, max_queue: int = 1000,
                 max_remembered: int = 4096) -> None:
        self.core = client.CoreV1Api(api)
        self.component = component
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self._seen: OrderedDict[tuple, tuple[str, int]] = OrderedDict()  # key -> (event name, count)
        self._max_remembered = max_remembered
        self.thread = threading.Thread(target=self._run, daemon=True, name="event-recorder")
        self.thread.start()

    def record(self, ns: str, pod: str, uid: str | None, kind: str, reason: str, message: str) -> None:
        try:
            self.queue.put_nowait((ns, pod, uid or "", kind, reason, message[:MAX_MESSAGE]))
        except queue.Full:
            self.dropped += 1

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued event was posted (tests, shutdown)."""
        done = threading.Event()
        self.queue.put(done)
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._post(*item)
            except Exception as exc:  # noqa: BLE001 - an event is best effort
                log.info("event not posted: %s", exc)

    def _post(self, ns: str, pod: str, uid: str, kind: str, reason: str, message: str) -> None:
        key = (ns, pod, uid, reason, message)
        now = _now()
        seen = self._seen.get(key)
        if seen is not None:
            name, count = seen
            try:
                self.core.patch_namespaced_event(name, ns, {"count": count + 1, "lastTimestamp": now})
                self._seen[key] = (name, count + 1)
                self._seen.move_to_end(key)
                return
            except ApiException as exc:
                if exc.status != 404:
                    raise
        name = f"{pod}.{uuid.uuid4().hex[:16]}"
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": ns, "uid": uid or None},
            "reason": reason, "message": message, "type": kind, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": self.component}, "reportingComponent": self.component,
        }
        self.core.create_namespaced_event(ns, body)
        self._seen[key] = (name, 1)
        if len(self._seen) > self._max_remembered:
            self._seen.popitem(last=False)


def _pod_ref(args: dict) -> tuple[str, str, str]:
    from .extender import ci

    meta = (ci(args, "Pod") or {}).get("metadata") or {}
    return meta.get("namespace") or "default", meta.get("name") or "", meta.get("uid") or ""


class EventingExtender:
    """Wraps the extender: same verbs, plus an Event on the pod for each outcome."""

    def __init__(self, inner, recorder: EventRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def filter(self, args: dict):
        from .extender import ci

        out = self.inner.filter(args)
        ns, pod, uid = _pod_ref(args)
        if not pod:
            return out
        offered = ci(args, "NodeNames")
        if out.error or not out.node_names:
            self.recorder.record(ns, pod, uid, "Warning", "FilteringFailed", failed_message(out.refused(), out.error))
        elif out.allocation is not None:
            fit = len(offered) - len(out.failed) if isinstance(offered, list) else len(out.node_names)
            self.recorder.record(ns, pod, uid, "Normal", "FilteringSucceed",
                                 f"find fit node({out.node_names[0]}), {len(out.failed)} nodes not fit, "
                                 f"{fit} nodes fit({out.node_names[0]})")
        return out

    def bind(self, args: dict) -> str:
        from .extender import ci

        err = self.inner.bind(args)
        ns, pod, uid, node = (ci(args, k) for k in ("PodNamespace", "PodName", "PodUID", "Node"))
        if isinstance(ns, str) and isinstance(pod, str) and pod:
            if err:
                self.recorder.record(ns, pod, uid, "Warning", "BindingFailed", err)
            else:
                self.recorder.record(ns, pod, uid, "Normal", "BindingSucceed", f"bound to {node}")
        return err


def with_events(ext, api: client.ApiClient, args):
    """``serve``: post pod Events unless ``--no-events``."""
    if getattr(args, "no_events", False):
        return ext
    return EventingExtender(ext, EventRecorder(api, component=getattr(args, "scheduler_name", COMPONENT)))


def add_flags(parser) -> None:
    parser.add_argument("--no-events", action="store_true", help="do not post pod Events (FilteringFailed, ...)")
