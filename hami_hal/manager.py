"""The typed facade the CLI, the suite and the node agent use: one method per hook.

Three parts, one module each: :mod:`hami_hal.plugin_loading` (which plugins come in, the checks at the
door, the ``HAMI_HAL_CONFIG`` file), :mod:`hami_hal.plugin_routing` (a hook called on the one plugin
owning a vendor; the cache is dropped when a plugin registers) and this facade (discovery, and one
method per hook). ``HAMI_HAL_TRACE_PLUGINS=1`` prints every hook call to stderr.

Contexts are explicit: :meth:`Hal.discover` returns a :class:`NodeInventory` that carries the
:class:`NodeContext` each vendor was discovered with (``inventory.context(vendor)``); per-device
methods take ``context=`` or use the one of this manager's latest discovery for that vendor. There is
no made-up context: a per-device call before any discovery of that vendor is an error.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Literal

import pluggy

from . import PROJECT, hookspecs
from .context import NodeContext
from .errors import BackendUnavailable, HalError, InputError, PluginLoadError, ProfileError
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
from .plugin_loading import REQUIRED_HOOKS, LoadedPlugin, PluginLoader, config_file_lists, split_list
from .plugin_routing import Router, call_one
from .simulation import ProfileCatalog, SimulatedNode
from .vendor_families import added_families, with_families

__all__ = ["REQUIRED_HOOKS", "BackendChoice", "Hal", "LoadedPlugin", "config_file_lists"]

BackendChoice = Literal["auto", "real", "sim"]


def plugin_config(config: dict | None, vendor_configs: dict[str, dict] | None, vendor: str) -> dict:
    """One plugin's ``context.config``: its own entry of ``vendor_configs`` where there is one, else ``config``."""
    if vendor_configs and vendor in vendor_configs:
        return dict(vendor_configs[vendor])
    return dict(config or {})


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
        self.router = Router(self.pm, lambda vendor: self.loader.module_for_vendor(vendor))
        self.loader = PluginLoader(self.pm, allow, deny, on_register=self.router.invalidate)
        self.plugins: dict[str, LoadedPlugin] = self.loader.plugins
        self.skipped: list[SkippedPlugin] = self.loader.skipped
        self._extra_profiles: list[Path] = []
        #: The context of this manager's latest discovery per vendor (also on the inventory it returned).
        self._discovered: dict[str, NodeContext] = {}
        if os.environ.get("HAMI_HAL_TRACE_PLUGINS"):
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()
        if entrypoints:
            self.loader.load_entrypoints()
        for mod in [*split_list(os.environ.get("HAMI_HAL_PLUGIN_MODULES")), *modules]:
            self.loader.load_module(mod)

    def register(self, plugin: object, name: str, version: str | None = None, dist: str | None = None) -> None:
        """Register and validate one plugin (see :meth:`PluginLoader.register`)."""
        self.loader.register(plugin, name, version, dist)

    def _single(self, plugin: object, hook: str, **kwargs):
        return call_one(self.pm, plugin, hook, **kwargs)

    def _vendor_call(self, vendor: str, hook: str, **kwargs):
        return self.router.call(vendor, hook, **kwargs)

    # -- identity ----------------------------------------------------------------------------

    def vendors(self) -> list[VendorInfo]:
        return [p.vendor for p in self.plugins.values()]

    def node_vendor(self, vendor: str, context: NodeContext) -> VendorInfo:
        """``vendor``'s identity on the node of ``context`` (``hami_hal_node_vendor``): its ``hami_hal_vendor``
        answer plus the families the node's settings add, checked by :func:`added_families`."""
        plugin = self.plugin_for_vendor(vendor)
        if plugin is None:
            raise HalError(f"vendor {vendor!r} has no installed plugin")
        got = self._single(plugin.module, "hami_hal_node_vendor", context=context)
        if got is None:
            return plugin.vendor
        if not isinstance(got, VendorInfo):
            raise PluginLoadError(f"plugin {plugin.name!r}: hami_hal_node_vendor returned {type(got).__name__}")
        changed = [f.common_word for f in plugin.vendor.resources if f not in got.resources]
        if changed:
            raise PluginLoadError(f"plugin {plugin.name!r}: hami_hal_node_vendor changes or drops family {changed[0]} "
                                  "of its hami_hal_vendor answer (a node may only add families)")
        others = [p.vendor for p in self.plugins.values() if p.vendor.name != vendor]
        try:
            added = added_families(plugin.vendor, got, others)
        except InputError as err:
            raise PluginLoadError(f"plugin {plugin.name!r}: hami_hal_node_vendor: {err}") from None
        return with_families(plugin.vendor, added)

    def plugin_for_vendor(self, vendor: str) -> LoadedPlugin | None:
        name = self.loader.by_vendor.get(vendor)
        return self.plugins.get(name) if name else None

    def catalog(self) -> ProfileCatalog:
        """Simulated-hardware profiles of every loaded plugin, ``add_profiles`` paths, and
        ``HAMI_HAL_PROFILE_PATH``."""
        paths: list[Path] = []
        for plugin in self.plugins.values():
            found = self._single(plugin.module, "hami_hal_sim_profiles") or []
            paths.extend(Path(p) for p in found)
        return ProfileCatalog.from_paths(paths + self._extra_profiles)

    def add_profiles(self, paths: Iterable[Path]) -> None:
        """More profile files or folders for this manager only (the conformance suite's injected faults),
        instead of rewriting ``HAMI_HAL_PROFILE_PATH`` for the whole process."""
        self._extra_profiles.extend(Path(p) for p in paths)

    # -- discovery ---------------------------------------------------------------------------

    def discover(
        self,
        backend: BackendChoice = "auto",
        *,
        node_name: str | None = None,
        sim_node: str | None = None,
        config: dict | None = None,
        vendor_configs: dict[str, dict] | None = None,
    ) -> NodeInventory:
        """Discover every plugin's devices; on ``auto`` fall back to simulation when none are real.

        Each plugin's contexts carry ``vendor_configs[<its vendor>]`` where given (the node agent's settings
        for that plugin: the knobs and its own section only), else ``config``."""
        node_name = node_name or os.environ.get("NODE_NAME") or socket.gethostname()
        skipped = list(self.skipped)
        devices: list[Device] = []
        contexts: dict[str, NodeContext] = {}
        if backend in ("auto", "real"):
            for plugin in self.plugins.values():
                ctx = NodeContext("real", node_name, config=plugin_config(config, vendor_configs, plugin.vendor.name))
                try:
                    found = self._single(plugin.module, "hami_hal_discover", context=ctx) or []
                except BackendUnavailable as err:
                    skipped.append(SkippedPlugin(name=plugin.name, reason=str(err)))
                    continue
                if not found:
                    skipped.append(SkippedPlugin(name=plugin.name, reason="no devices found"))
                    continue
                contexts[plugin.vendor.name] = ctx
                devices += self._complete(found, plugin, ctx)
        source = "real" if devices else "empty"
        if not devices and (backend == "sim" or (backend == "auto" and self.plugins)):
            devices = self._discover_sim(node_name, sim_node, config or {}, vendor_configs or {}, contexts)
            source = "simulated" if devices else "empty"
        self._discovered.update(contexts)
        topology = self._topology(devices, contexts)
        inv = NodeInventory(
            node=node_name, source=source, devices=devices, topology=topology,
            vendors=[self.node_vendor(v.name, contexts[v.name]) if v.name in contexts else v for v in self.vendors()],
            skipped=skipped,
        )
        inv.attach_contexts(contexts)
        return inv

    def check_config(self, vendor: str, config: dict) -> list[str]:
        """``vendor``'s plugin's check of the config its contexts will carry (``hami_hal_check_config``): its
        one-line notes; raises its InputError for a bad value. A plugin without the hook accepts anything."""
        plugin = self.plugin_for_vendor(vendor)
        if plugin is None:
            raise HalError(f"vendor {vendor!r} has no installed plugin")
        notes = self._single(plugin.module, "hami_hal_check_config", config=dict(config)) or []
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise PluginLoadError(f"plugin {plugin.name!r}: hami_hal_check_config returned {type(notes).__name__}; "
                                  "expected a list of one-line notes")
        return [" ".join(n.split())[:300] for n in notes]

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

    def _discover_sim(self, node_name: str, sim_node: str | None, config: dict, vendor_configs: dict[str, dict],
                      contexts: dict[str, NodeContext]) -> list[Device]:
        node = self.simulated_node(sim_node)
        devices: list[Device] = []
        for vendor in node.vendors():
            plugin = self.plugin_for_vendor(vendor)
            if plugin is None:
                continue
            ctx = NodeContext("sim", node_name, sim=node.for_vendor(vendor), config=plugin_config(config, vendor_configs, vendor))
            found = self._single(plugin.module, "hami_hal_discover", context=ctx) or []
            contexts[vendor] = ctx
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
            part = self.partition_model(dev, context=ctx)
            health = self.health(dev, context=ctx)
            update = {"partition": part}
            if health is not None and not health.healthy:
                update |= {"healthy": False, "health_reason": health.reason}
            out.append(dev.model_copy(update=update))
        return out

    def _topology(self, devices: list[Device], contexts: dict[str, NodeContext]) -> Topology:
        links, numa = [], {d.uuid: d.numa_node for d in devices}
        for vendor in sorted({d.vendor for d in devices}):
            mine = [d for d in devices if d.vendor == vendor]
            for topo in self._vendor_call(vendor, "hami_hal_topology", devices=mine, context=contexts[vendor]):
                if topo:
                    links.extend(topo.links)
                    numa |= {k: v for k, v in topo.numa.items() if v is not None or k not in numa}
        return Topology(links=links, numa=numa)

    def context(self, vendor: str, context: NodeContext | None = None) -> NodeContext:
        """``context`` when given, else the one this manager's latest discovery used for ``vendor``.

        Never made up: without a discovery of that vendor (and no ``context=``) this is an error, so a
        hook can never run against a node it was not told about.
        """
        if context is not None:
            return context
        found = self._discovered.get(vendor)
        if found is None:
            raise HalError(f"vendor {vendor!r}: no discovery has run on this manager; call discover() first "
                           "or pass context= (e.g. inventory.context(vendor))")
        return found

    # -- per-device hooks --------------------------------------------------------------------

    def partition_model(self, device: Device, *, context: NodeContext | None = None) -> PartitionModel:
        got = self._vendor_call(device.vendor, "hami_hal_partition_model", device=device,
                                context=self.context(device.vendor, context))
        return got or PartitionModel(kind=PartitionKind.WHOLE, memory_mib=device.memory_mib)

    def health(self, device: Device, *, context: NodeContext | None = None) -> HealthStatus | None:
        return self._vendor_call(device.vendor, "hami_hal_device_health", device=device,
                                 context=self.context(device.vendor, context))

    def device_metrics(self, device: Device, *, context: NodeContext | None = None) -> list[MetricSample]:
        out = self._vendor_call(device.vendor, "hami_hal_device_metrics", device=device,
                                context=self.context(device.vendor, context))
        return [s for batch in out for s in batch]

    def allocation_metrics(self, device: Device, *, context: NodeContext | None = None) -> list[MetricSample]:
        out = self._vendor_call(device.vendor, "hami_hal_allocation_metrics", device=device,
                                context=self.context(device.vendor, context))
        return [s for batch in out for s in batch]

    def container_usage(self, vendor: str, state_dir: Path, device_uuids: list[str], *,
                        context: NodeContext | None = None) -> list[MetricSample]:
        """What ``vendor``'s isolation layer recorded in one container's shared-state folder."""
        out = self._vendor_call(vendor, "hami_hal_container_usage", state_dir=state_dir,
                                device_uuids=device_uuids, context=self.context(vendor, context))
        return [s for batch in out for s in batch]

    def node_loops(self, vendor: str, *, context: NodeContext | None = None) -> list[Callable]:
        """``vendor``'s background work for the node agent (``hami_hal_node_loops``): functions of a stop event."""
        out = self._vendor_call(vendor, "hami_hal_node_loops", context=self.context(vendor, context))
        loops = [fn for batch in out for fn in (batch or [])]
        for fn in loops:
            if not callable(fn):
                raise PluginLoadError(f"plugin {vendor}: hami_hal_node_loops returned {type(fn).__name__}; "
                                      "expected functions taking the stop event")
        return loops

    def probe(self, device: Device, behaviour_id: str, *, context: NodeContext | None = None) -> ProbeResult | None:
        return self._vendor_call(device.vendor, "hami_hal_conformance_probe", device=device,
                                 behaviour_id=behaviour_id, context=self.context(device.vendor, context))

    def create_partition(self, device: Device, slice: DeviceSlice, *, context: NodeContext | None = None) -> dict | None:
        return self._vendor_call(device.vendor, "hami_hal_create_partition", device=device, slice=slice,
                                 context=self.context(device.vendor, context))

    def destroy_partition(self, device: Device, handle: dict, *, context: NodeContext | None = None) -> bool | None:
        return self._vendor_call(device.vendor, "hami_hal_destroy_partition", device=device, handle=handle,
                                 context=self.context(device.vendor, context))

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

    def container_edits(self, allocation: ContainerAllocation, devices: list[Device], *,
                        contexts: dict[str, NodeContext] | None = None) -> ContainerEdits:
        """Merged edits of every vendor that has slices in ``allocation``."""
        merged = ContainerEdits()
        for vendor in sorted({s.vendor for s in allocation.slices}):
            mine = allocation.model_copy(update={"slices": [s for s in allocation.slices if s.vendor == vendor]})
            devs = [d for d in devices if d.vendor == vendor]
            ctx = self.context(vendor, (contexts or {}).get(vendor))
            for edits in self._vendor_call(vendor, "hami_hal_container_edits", allocation=mine, devices=devs,
                                           context=ctx):
                if edits:
                    merged = merged.merged(edits)
        return merged
