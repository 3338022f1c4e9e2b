"""Load, validate and call vendor plugins: the typed facade the CLI, suite and node agent use.

Plugins come from the ``hami_hal.plugins`` entry-point group, plus modules named in
``HAMI_HAL_PLUGIN_MODULES`` (for development, like ``pytest -p``). Selection:

- ``HAMI_HAL_PLUGINS=nvidia,ascend`` loads only those (allow-list);
- ``HAMI_HAL_DISABLE_PLUGINS=kunlun`` never loads those (deny-list, wins over the allow-list);
- the same two lists under ``plugins: {allow: [...], deny: [...]}`` in the file ``HAMI_HAL_CONFIG``;
- ``HAMI_HAL_TRACE_PLUGINS=1`` prints every hook call to stderr.

A plugin that cannot be imported, or whose backend is absent, is *skipped* with one line saying why.
A plugin that implements an unknown hook or a wrong signature *fails loudly* (:class:`PluginLoadError`).
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Literal

import pluggy
import yaml

from . import ENTRY_POINT_GROUP, PROJECT, hookspecs
from .context import NodeContext
from .errors import BackendUnavailable, HalError, PluginLoadError, ProfileError
from .models import (
    ContainerAllocation,
    ContainerEdits,
    Device,
    DeviceSlice,
    HealthStatus,
    MetricSample,
    NodeInventory,
    PartitionKind,
    PartitionModel,
    PodAllocation,
    ProbeResult,
    Provenance,
    ResourceRequest,
    SkippedPlugin,
    Topology,
    VendorInfo,
)
from .simulation import ProfileCatalog, SimulatedNode

REQUIRED_HOOKS = ("hami_hal_vendor", "hami_hal_discover")
BackendChoice = Literal["auto", "real", "sim"]


@dataclass
class LoadedPlugin:
    """A registered plugin with what the CLI reports about it."""

    name: str
    module: object
    vendor: VendorInfo
    version: str
    distribution: str | None
    hooks: list[str] = field(default_factory=list)


def _split(value: str | None) -> set[str]:
    return {v.strip() for v in (value or "").split(",") if v.strip()}


def _config_lists() -> tuple[set[str], set[str]]:
    path = os.environ.get("HAMI_HAL_CONFIG")
    if not path:
        return set(), set()
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise HalError(f"HAMI_HAL_CONFIG: {path!r} cannot be read ({err.__class__.__name__})") from None
    plugins = data.get("plugins") or {}
    if not isinstance(plugins, dict):
        raise HalError(f"HAMI_HAL_CONFIG: 'plugins' must be a mapping, got {type(plugins).__name__}")
    return set(plugins.get("allow") or []), set(plugins.get("deny") or [])


class Hal:
    """The plugin manager plus one typed method per hook, routed to the plugin owning a device."""

    def __init__(
        self,
        *,
        entrypoints: bool = True,
        modules: Iterable[str | ModuleType] = (),
        allow: Iterable[str] | None = None,
        deny: Iterable[str] = (),
    ) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        cfg_allow, cfg_deny = _config_lists()
        env_allow = _split(os.environ.get("HAMI_HAL_PLUGINS"))
        self._allow = set(allow) if allow is not None else (env_allow or cfg_allow)
        self._deny = set(deny) | _split(os.environ.get("HAMI_HAL_DISABLE_PLUGINS")) | cfg_deny
        self.plugins: dict[str, LoadedPlugin] = {}
        self.skipped: list[SkippedPlugin] = []
        self._by_vendor: dict[str, str] = {}
        self._callers: dict[tuple[str, str], Callable] = {}
        self._contexts: dict[str, NodeContext] = {}
        if os.environ.get("HAMI_HAL_TRACE_PLUGINS"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()
        if entrypoints:
            self._load_entrypoints()
        extra = [*_split(os.environ.get("HAMI_HAL_PLUGIN_MODULES")), *modules]
        for mod in extra:
            self._load_module(mod)

    # -- loading -----------------------------------------------------------------------------

    def _wanted(self, name: str) -> str | None:
        if name in self._deny:
            return "disabled by the deny-list"
        if self._allow and name not in self._allow:
            return "not in the allow-list"
        return None

    def _load_entrypoints(self) -> None:
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            why = self._wanted(ep.name)
            if why:
                self.skipped.append(SkippedPlugin(name=ep.name, reason=why))
                continue
            try:
                module = ep.load()
            except ImportError as err:
                self.skipped.append(SkippedPlugin(name=ep.name, reason=f"cannot be imported: {err}"))
                continue
            dist = ep.dist
            self.register(module, ep.name, dist.version if dist else None, dist.name if dist else None)

    def _load_module(self, mod: str | ModuleType) -> None:
        if isinstance(mod, str):
            try:
                module = importlib.import_module(mod)
            except ImportError as err:
                raise PluginLoadError(f"HAMI_HAL_PLUGIN_MODULES: {mod!r} cannot be imported: {err}") from None
        else:
            module = mod
        name = getattr(module, "PLUGIN_NAME", module.__name__.rsplit(".", 1)[-1])
        if self._wanted(name) is None:
            self.register(module, name, getattr(module, "__version__", None), None)

    def register(self, plugin: object, name: str, version: str | None = None, dist: str | None = None) -> None:
        """Register and validate one plugin; raises PluginLoadError on a contract violation."""
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except pluggy.PluginValidationError as err:
            self._drop(plugin)
            one_line = "; ".join(part.strip() for part in str(err).splitlines() if part.strip())
            raise PluginLoadError(f"plugin {name!r}: {one_line}") from None
        hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        missing = [h for h in REQUIRED_HOOKS if h not in hooks]
        if missing:
            self._drop(plugin)
            raise PluginLoadError(f"plugin {name!r}: required hook {missing[0]} is not implemented")
        vendor = self._single(plugin, "hami_hal_vendor")
        if not isinstance(vendor, VendorInfo):
            self._drop(plugin)
            raise PluginLoadError(f"plugin {name!r}: hami_hal_vendor returned {type(vendor).__name__}")
        if vendor.name in self._by_vendor:
            self._drop(plugin)
            raise PluginLoadError(
                f"plugin {name!r}: vendor {vendor.name!r} is already provided by {self._by_vendor[vendor.name]!r}"
            )
        version = version or getattr(plugin, "__version__", None) or "0+unknown"
        self.plugins[name] = LoadedPlugin(name, plugin, vendor, version, dist, hooks)
        self._by_vendor[vendor.name] = name
        self._callers.clear()  # a routing answer cached before this plugin came may now be wrong

    def _drop(self, plugin: object) -> None:
        if self.pm.is_registered(plugin):
            self.pm.unregister(plugin)

    def _single(self, plugin: object, hook: str, **kwargs):
        """Call one plugin's implementation of ``hook`` (None when it has none)."""
        caller = self._caller_for(plugin, hook)
        res = caller(**kwargs)
        return res[0] if isinstance(res, list) and res else (None if isinstance(res, list) else res)

    def _caller_for(self, plugin: object, hook: str) -> Callable:
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        return self.pm.subset_hook_caller(hook, remove_plugins=others)

    def _vendor_call(self, vendor: str, hook: str, **kwargs):
        """Call ``hook`` on the plugin owning ``vendor`` only."""
        key = (vendor, hook)
        if key not in self._callers:
            name = self._by_vendor.get(vendor)
            if name is None:
                raise HalError(f"vendor {vendor!r} has no installed plugin")
            self._callers[key] = self._caller_for(self.plugins[name].module, hook)
        return self._callers[key](**kwargs)

    # -- identity ----------------------------------------------------------------------------

    def vendors(self) -> list[VendorInfo]:
        return [p.vendor for p in self.plugins.values()]

    def plugin_for_vendor(self, vendor: str) -> LoadedPlugin | None:
        name = self._by_vendor.get(vendor)
        return self.plugins.get(name) if name else None

    def catalog(self) -> ProfileCatalog:
        """Simulated-hardware profiles of every loaded plugin plus ``HAMI_HAL_PROFILE_PATH``."""
        paths: list[Path] = []
        for plugin in self.plugins.values():
            found = self._single(plugin.module, "hami_hal_sim_profiles") or []
            paths.extend(Path(p) for p in found)
        return ProfileCatalog.from_paths(paths)

    # -- discovery ---------------------------------------------------------------------------

    def discover(
        self,
        backend: BackendChoice = "auto",
        *,
        node_name: str | None = None,
        sim_node: str | None = None,
        config: dict | None = None,
    ) -> NodeInventory:
        """Discover every plugin's devices; on ``auto`` fall back to simulation when none are real."""
        node_name = node_name or os.environ.get("NODE_NAME") or socket.gethostname()
        skipped = list(self.skipped)
        devices: list[Device] = []
        if backend in ("auto", "real"):
            for plugin in self.plugins.values():
                ctx = NodeContext("real", node_name, config=dict(config or {}))
                try:
                    found = self._single(plugin.module, "hami_hal_discover", context=ctx) or []
                except BackendUnavailable as err:
                    skipped.append(SkippedPlugin(name=plugin.name, reason=str(err)))
                    continue
                if not found:
                    skipped.append(SkippedPlugin(name=plugin.name, reason="no devices found"))
                    continue
                self._contexts[plugin.vendor.name] = ctx
                devices += self._complete(found, plugin, ctx)
        source = "real" if devices else "empty"
        if not devices and (backend == "sim" or (backend == "auto" and self.plugins)):
            devices = self._discover_sim(node_name, sim_node, config or {})
            source = "simulated" if devices else "empty"
        topology = self._topology(devices)
        return NodeInventory(
            node=node_name, source=source, devices=devices, topology=topology,
            vendors=self.vendors(), skipped=skipped,
        )

    def simulated_node(self, sim_node: str | None = None) -> SimulatedNode:
        """Compose the named node profile, or the default node profiles of the installed plugins."""
        cat = self.catalog()
        names = [sim_node] if sim_node else cat.default_nodes()
        if not names:
            raise ProfileError("no simulated node profile is marked default; name one with --sim-node")
        nodes = [cat.compose(n) for n in names]
        if len(nodes) == 1:
            return nodes[0]
        merged = SimulatedNode("+".join(n.name for n in nodes), nodes[0].driver_version, None)
        for n in nodes:
            # Re-base node indexes: each profile counts from 0, and links/for_vendor match by node index.
            base = len(merged.devices)
            merged.devices.extend(replace(d, node_index=d.node_index + base) for d in n.devices)
            merged.links.extend(replace(lk, a=lk.a + base, b=lk.b + base) for lk in n.links)
        return merged

    def _discover_sim(self, node_name: str, sim_node: str | None, config: dict) -> list[Device]:
        node = self.simulated_node(sim_node)
        devices: list[Device] = []
        for vendor in node.vendors():
            plugin = self.plugin_for_vendor(vendor)
            if plugin is None:
                continue
            ctx = NodeContext("sim", node_name, sim=node.for_vendor(vendor), config=dict(config))
            found = self._single(plugin.module, "hami_hal_discover", context=ctx) or []
            self._contexts[vendor] = ctx
            devices += self._complete(found, plugin, ctx)
        return devices

    def _complete(self, found: list[Device], plugin: LoadedPlugin, ctx: NodeContext) -> list[Device]:
        """Fill partition and health; force simulated provenance so a simulation never passes as real."""
        out = []
        for dev in found:
            if dev.vendor != plugin.vendor.name:
                raise PluginLoadError(
                    f"plugin {plugin.name!r} returned a device of vendor {dev.vendor!r}"
                )
            update: dict = {}
            if ctx.simulated:
                update["provenance"] = Provenance(
                    source="simulated", profile=ctx.sim.name if ctx.sim else None,
                    device_model=dev.model, driver_version=ctx.sim.driver_version if ctx.sim else None,
                )
            dev = dev.model_copy(update=update)
            part = self.partition_model(dev)
            health = self.health(dev)
            update = {"partition": part}
            if health is not None and not health.healthy:
                update |= {"healthy": False, "health_reason": health.reason}
            out.append(dev.model_copy(update=update))
        return out

    def _topology(self, devices: list[Device]) -> Topology:
        links, numa = [], {d.uuid: d.numa_node for d in devices}
        for vendor in sorted({d.vendor for d in devices}):
            mine = [d for d in devices if d.vendor == vendor]
            for topo in self._vendor_call(vendor, "hami_hal_topology", devices=mine, context=self.context(vendor)):
                if topo:
                    links.extend(topo.links)
                    numa |= {k: v for k, v in topo.numa.items() if v is not None or k not in numa}
        return Topology(links=links, numa=numa)

    def context(self, vendor: str) -> NodeContext:
        """The context a vendor's devices were discovered with (real, unless simulated)."""
        return self._contexts.get(vendor) or NodeContext("real", socket.gethostname())

    # -- per-device hooks --------------------------------------------------------------------

    def partition_model(self, device: Device) -> PartitionModel:
        got = self._vendor_call(device.vendor, "hami_hal_partition_model", device=device,
                                context=self.context(device.vendor))
        return got or PartitionModel(kind=PartitionKind.WHOLE, memory_mib=device.memory_mib)

    def health(self, device: Device) -> HealthStatus | None:
        return self._vendor_call(device.vendor, "hami_hal_device_health", device=device,
                                 context=self.context(device.vendor))

    def device_metrics(self, device: Device) -> list[MetricSample]:
        out = self._vendor_call(device.vendor, "hami_hal_device_metrics", device=device,
                                context=self.context(device.vendor))
        return [s for batch in out for s in batch]

    def allocation_metrics(self, device: Device) -> list[MetricSample]:
        out = self._vendor_call(device.vendor, "hami_hal_allocation_metrics", device=device,
                                context=self.context(device.vendor))
        return [s for batch in out for s in batch]

    def probe(self, device: Device, behaviour_id: str) -> ProbeResult | None:
        return self._vendor_call(device.vendor, "hami_hal_conformance_probe", device=device,
                                 behaviour_id=behaviour_id, context=self.context(device.vendor))

    def create_partition(self, device: Device, slice: DeviceSlice) -> dict | None:
        return self._vendor_call(device.vendor, "hami_hal_create_partition", device=device, slice=slice,
                                 context=self.context(device.vendor))

    def destroy_partition(self, device: Device, handle: dict) -> bool | None:
        return self._vendor_call(device.vendor, "hami_hal_destroy_partition", device=device, handle=handle,
                                 context=self.context(device.vendor))

    def admit_request(self, request: ResourceRequest, annotations: dict[str, str]) -> ResourceRequest:
        """The owning plugin's ``hami_hal_admit_request`` (the request unchanged when it has none)."""
        if self.plugin_for_vendor(request.vendor) is None:
            return request
        out = self._vendor_call(request.vendor, "hami_hal_admit_request", request=request,
                                annotations=dict(annotations))
        if out is None:
            return request
        if not isinstance(out, ResourceRequest):
            raise PluginLoadError(f"plugin {request.vendor}: hami_hal_admit_request returned {type(out).__name__}")
        return out

    def pod_annotations(self, allocation: PodAllocation, devices: list[Device], pod: dict) -> dict[str, str]:
        """Every vendor's ``hami_hal_pod_annotations`` for ``allocation``, each given only its own slices."""
        out: dict[str, str] = {}
        vendors = sorted({s.vendor for s in allocation.slices()})
        for vendor in vendors:
            if self.plugin_for_vendor(vendor) is None:
                continue
            mine = allocation.model_copy(update={"containers": [
                c.model_copy(update={"slices": [s for s in c.slices if s.vendor == vendor]})
                for c in allocation.containers]})
            devs = [d for d in devices if d.vendor == vendor]
            for extra in self._vendor_call(vendor, "hami_hal_pod_annotations", allocation=mine, devices=devs, pod=pod):
                for key, value in (extra or {}).items():
                    if not isinstance(key, str) or not isinstance(value, str):
                        raise PluginLoadError(f"plugin {vendor}: hami_hal_pod_annotations returned {key!r}: "
                                              f"{value!r}; keys and values must be strings")
                    out.setdefault(key, value)
        return out

    def container_edits(self, allocation: ContainerAllocation, devices: list[Device]) -> ContainerEdits:
        """Merged edits of every vendor that has slices in ``allocation``."""
        merged = ContainerEdits()
        for vendor in sorted({s.vendor for s in allocation.slices}):
            mine = allocation.model_copy(update={"slices": [s for s in allocation.slices if s.vendor == vendor]})
            devs = [d for d in devices if d.vendor == vendor]
            for edits in self._vendor_call(vendor, "hami_hal_container_edits", allocation=mine, devices=devs,
                                           context=self.context(vendor)):
                if edits:
                    merged = merged.merged(edits)
        return merged
