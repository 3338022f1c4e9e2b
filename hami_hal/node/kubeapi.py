"""The few Kubernetes API calls the node agent makes, behind one small interface.

:class:`KubeNodeApi` uses the official ``kubernetes`` client (in-cluster config, a kubeconfig, or a
plain URL such as ``kubectl proxy`` or the tests' fake API server). Every failure becomes
:class:`ApiError` with the HTTP status and one line, so callers log it and change nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Protocol

from ..errors import HalError

log = logging.getLogger("hami_hal.node.kubeapi")
#: A pod list larger than this is refused rather than parsed (a node runs at most a few hundred pods).
MAX_BODY_BYTES = 64 << 20


class ApiError(HalError):
    """The API server refused or failed a call; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NodeApi(Protocol):
    """What the agent needs from the API server; plain JSON dicts in and out."""

    def get_node(self, name: str) -> dict: ...

    def patch_node_annotations(self, name: str, annotations: dict[str, str | None]) -> dict: ...

    def pods_on_node(self, node: str) -> list[dict]: ...

    def get_pod(self, ns: str, name: str) -> dict: ...

    def patch_pod_annotations(self, ns: str, name: str, annotations: dict[str, str | None],
                              resource_version: str | None = None) -> dict: ...

    def pod_event(self, pod: dict, reason: str, message: str, warning: bool = True) -> None: ...


class KubeNodeApi:
    """:class:`NodeApi` over the ``kubernetes`` client."""

    def __init__(self, host: str | None = None, kubeconfig: str | None = None, component: str = "hami-node") -> None:
        try:
            from kubernetes import client, config
        except ImportError:
            raise HalError("`hami node` needs the kubernetes client (pip install 'hami-hal[node]')") from None
        if host:
            cfg = client.Configuration()
            cfg.host = host
            api = client.ApiClient(cfg)
        else:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                try:
                    config.load_kube_config(config_file=kubeconfig)
                except (config.ConfigException, OSError) as err:
                    raise HalError(f"no Kubernetes API: not in a cluster and no usable kubeconfig ({err})") from None
            api = client.ApiClient()
        self._client = client
        self.core = client.CoreV1Api(api)
        self.component = component

    def _call(self, what: str, fn, *args, **kwargs) -> dict:
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            resp = fn(*args, _preload_content=False, _request_timeout=10, **kwargs)
            data = resp.data
        except ApiException as err:
            raise ApiError(f"{what}: API server answered {err.status} {err.reason}", err.status) from None
        except (HTTPError, OSError) as err:
            raise ApiError(f"{what}: API server unreachable ({err.__class__.__name__})") from None
        if len(data) > MAX_BODY_BYTES:
            raise ApiError(f"{what}: answer of {len(data)} bytes is over {MAX_BODY_BYTES}")
        try:
            return json.loads(data)
        except ValueError:
            raise ApiError(f"{what}: answer is not JSON") from None

    def get_node(self, name: str) -> dict:
        return self._call(f"get node {name}", self.core.read_node, name)

    def patch_node_annotations(self, name: str, annotations: dict[str, str | None]) -> dict:
        return self._call(f"patch node {name}", self.core.patch_node, name, {"metadata": {"annotations": annotations}})

    def pods_on_node(self, node: str) -> list[dict]:
        got = self._call(f"list pods on {node}", self.core.list_pod_for_all_namespaces,
                         field_selector=f"spec.nodeName={node}")
        items = got.get("items")
        return items if isinstance(items, list) else []

    def get_pod(self, ns: str, name: str) -> dict:
        return self._call(f"get pod {ns}/{name}", self.core.read_namespaced_pod, name, ns)

    def patch_pod_annotations(self, ns: str, name: str, annotations: dict[str, str | None],
                              resource_version: str | None = None) -> dict:
        meta: dict = {"annotations": annotations}
        if resource_version:
            meta["resourceVersion"] = resource_version
        return self._call(f"patch pod {ns}/{name}", self.core.patch_namespaced_pod, name, ns, {"metadata": meta})

    def pod_event(self, pod: dict, reason: str, message: str, warning: bool = True) -> None:
        """Best effort: an event that cannot be written is logged, never raised."""
        c = self._client
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace", "default")
        now = datetime.now(UTC)
        body = c.CoreV1Event(
            metadata=c.V1ObjectMeta(generate_name=f"{meta.get('name', 'pod')}.", namespace=ns),
            involved_object=c.V1ObjectReference(kind="Pod", namespace=ns, name=meta.get("name"),
                                                uid=meta.get("uid"), api_version="v1"),
            reason=reason, message=message[:1024], type="Warning" if warning else "Normal",
            source=c.V1EventSource(component=self.component), first_timestamp=now, last_timestamp=now, count=1,
        )
        try:
            self._call(f"event on pod {ns}/{meta.get('name')}", self.core.create_namespaced_event, ns, body)
        except ApiError as err:
            log.warning("%s", err)
