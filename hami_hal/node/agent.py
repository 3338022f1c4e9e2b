"""The long-running node agent: plugin servers, kubelet registration, node annotations, health, cleanup.

One background loop does the periodic work (each step logs one line on failure and is retried on the
next tick, so an API server or kubelet outage never stops the agent):
- every ``kubelet_poll`` s: a re-created ``kubelet.sock`` or a deleted plugin socket → serve again and
  re-register every family;
- every ``health_interval`` s: ask the plugins for each device's health; a change is pushed to the
  kubelet through ``ListAndWatch`` and to the node annotations;
- every ``register_interval`` s (HAMi: 30 s): write the HAMi register/handshake annotations per vendor
  and ``hami-hal.io/node-inventory`` when they changed;
- every ``cleanup_interval`` s: remove the state folders (and partitions, CDI specs) of pods that are gone.

Plugins' own background work (``hami_hal_node_loops``, e.g. a per-device process census) runs in one
thread per function, started with the loop and stopped with the agent.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..manager import Hal
from ..models import Device, NodeInventory
from . import wire
from .allocator import Allocator
from .cdi import CdiWriter
from .families import Family, families
from .kubeapi import ApiError, NodeApi
from .plugin_server import DevicePluginService, PluginServer, plugin_options
from .registration import KubeletWatch, RegistrationError, register
from .statedirs import StateDirs

log = logging.getLogger("hami_hal.node")
DEFAULT_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
#: HAMi's hook path layout: ``<hook>/vgpu/containers`` (hami-compat.md §9).
DEFAULT_STATE_ROOT = Path("/usr/local/vgpu/containers")


@dataclass
class AgentConfig:
    node_name: str
    plugin_dir: Path = DEFAULT_PLUGIN_DIR
    kubelet_socket: Path | None = None
    state_root: Path = DEFAULT_STATE_ROOT
    cdi_dir: Path | None = None
    register_interval: float = 30.0
    health_interval: float = 5.0
    cleanup_interval: float = 60.0
    kubelet_poll: float = 1.0
    workers: int = 8

    def __post_init__(self) -> None:
        self.plugin_dir = Path(self.plugin_dir)
        self.kubelet_socket = Path(self.kubelet_socket or self.plugin_dir / "kubelet.sock")
        self.state_root = Path(self.state_root)


@dataclass
class _Timers:
    health: float = 0.0
    register: float = 0.0
    cleanup: float = 0.0


class NodeAgent:
    def __init__(self, hal: Hal, api: NodeApi, cfg: AgentConfig, inventory: NodeInventory) -> None:
        self.hal = hal
        self.api = api
        self.cfg = cfg
        self.inventory = inventory
        self.state = StateDirs(cfg.state_root)
        self.allocator = Allocator(hal, api, cfg.node_name, lambda: self.inventory.devices, self.state,
                                   CdiWriter(cfg.cdi_dir) if cfg.cdi_dir else None,
                                   node_vendors=lambda: self.inventory.vendors or hal.vendors())
        self.families: list[Family] = families(inventory.vendors or hal.vendors(), inventory.devices)
        scores = inventory.topology.pair_scores() if inventory.topology else {}
        self.servers = [PluginServer(DevicePluginService(f, self.allocator, scores), cfg.plugin_dir, cfg.workers)
                        for f in self.families]
        self.kubelet = KubeletWatch(cfg.kubelet_socket)
        self.registered: set[str] = set()
        self._collectors: dict[bool, list] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._plugin_threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, background: bool = True) -> None:
        """Serve every family, register with the kubelet, publish the node, then run the loop."""
        for s in self.servers:
            s.start()
        self.register_all()
        self.publish_node()
        if background:
            self._thread = threading.Thread(target=self.run, name="hami-node-loop", daemon=True)
            self._thread.start()
            self.start_plugin_loops()

    def start_plugin_loops(self) -> int:
        """One thread per function of every discovered vendor's ``hami_hal_node_loops``; how many started."""
        for vendor, ctx in sorted(self.inventory.contexts().items()):
            try:
                loops = self.hal.node_loops(vendor, context=ctx)
            except Exception as err:  # noqa: BLE001 - one plugin's failing hook must not stop the agent
                log.error("plugin %s: background work not started: %s: %s", vendor, err.__class__.__name__,
                          str(err)[:300])
                continue
            for i, fn in enumerate(loops):
                t = threading.Thread(target=self._plugin_loop, args=(vendor, fn), daemon=True,
                                     name=f"hami-node-{vendor}-{i}")
                t.start()
                self._plugin_threads.append(t)
        return len(self._plugin_threads)

    def _plugin_loop(self, vendor: str, fn) -> None:
        try:
            fn(self._stop)
        except Exception as err:  # noqa: BLE001 - ends this plugin thread only, with one line
            log.error("plugin %s: background work ended: %s: %s", vendor, err.__class__.__name__, str(err)[:300])

    def run(self) -> None:
        t = _Timers(health=time.monotonic(), register=time.monotonic(), cleanup=0.0)
        while not self._stop.wait(self.cfg.kubelet_poll):
            try:
                self.tick(t)
            except Exception as err:  # noqa: BLE001 - the loop must outlive any one failing step
                log.error("node agent loop: %s: %s (continuing)", err.__class__.__name__, str(err)[:300])

    def tick(self, t: _Timers) -> None:
        now = time.monotonic()
        self.check_kubelet()
        if now - t.health >= self.cfg.health_interval:
            t.health = now
            self.refresh_health()
        if now - t.register >= self.cfg.register_interval:
            t.register = now
            self.publish_node()
        if now - t.cleanup >= self.cfg.cleanup_interval:
            t.cleanup = now
            self.cleanup()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for t in self._plugin_threads:
            t.join(timeout=5)
        for s in self.servers:
            s.stop()
            s.socket.unlink(missing_ok=True)

    # -- kubelet -----------------------------------------------------------------------------

    def register_all(self) -> bool:
        """Register every family; True when all were accepted."""
        with self._lock:
            self.kubelet.mark()
            self.registered.clear()
            if self.kubelet.inode is None:
                log.warning("kubelet socket %s not there yet; registering when it appears", self.cfg.kubelet_socket)
                return False
            for s in self.servers:
                fam = s.service.family
                try:
                    register(self.cfg.kubelet_socket, fam.endpoint, fam.resource_name, plugin_options(fam))
                except RegistrationError as err:
                    log.error("register %s: %s (retrying)", fam.resource_name, err)
                    continue
                self.registered.add(fam.resource_name)
                log.info("registered %s with the kubelet: %d devices, %d virtual IDs on %s%s",
                         fam.resource_name, len(fam.devices), len(fam.replicas()), s.socket,
                         "" if fam.preferred_allocation else ", without preferred allocation")
            return len(self.registered) == len(self.servers)

    def check_kubelet(self) -> bool:
        """Restart and re-register after a kubelet restart; True when it did."""
        restarted = self.kubelet.changed()
        gone = [s for s in self.servers if s.socket_gone()]
        if not restarted and not gone and len(self.registered) == len(self.servers):
            return False
        if restarted or gone:
            log.info("kubelet restarted or plugin sockets removed: serving again and re-registering")
            for s in self.servers:
                s.start()
        if self.kubelet.current() is None:
            return False
        self.register_all()
        return True

    # -- health ------------------------------------------------------------------------------

    def refresh_health(self) -> list[str]:
        """Ask the plugins; returns the UUIDs whose health changed (pushed to kubelet and annotations)."""
        changed: list[str] = []
        devices: list[Device] = []
        for d in self.inventory.devices:
            try:
                h = self.hal.health(d)
            except Exception as err:  # noqa: BLE001 - a failing health hook marks the device, not the agent
                healthy, reason = False, f"health hook failed: {err.__class__.__name__}"
            else:
                healthy, reason = (True, None) if h is None else (h.healthy, h.reason)
            if healthy != d.healthy:
                changed.append(d.uuid)
                log.warning("device %s is now %s%s", d.uuid, "healthy" if healthy else "unhealthy",
                            f": {reason}" if reason else "")
                d = d.model_copy(update={"healthy": healthy, "health_reason": reason})
            devices.append(d)
        if changed:
            self.inventory = self.inventory.model_copy(update={"devices": devices})
            for cs in self._collectors.values():
                for c in cs:
                    if hasattr(c, "inventory"):  # HalCollector labels devices from its inventory
                        c.inventory = self.inventory
            by_uuid = {d.uuid: d for d in devices}
            for s in self.servers:
                s.service.update([by_uuid[d.uuid] for d in s.service.family.devices])
            self.publish_node()
        return changed

    # -- node annotations --------------------------------------------------------------------

    def node_annotations(self, have: dict[str, str] | None = None) -> dict[str, str]:
        """What the node should carry: HAMi's register value per family key, the handshake where the
        scheduler asked for one (or none was ever written, or the register value changed), and the full
        hami-hal inventory."""
        have = have or {}
        out = wire.register_values(self.families)
        changed = any(have.get(k) != v for k, v in out.items())
        for key in wire.handshake_keys(self.families):
            if changed or wire.handshake_stale(have.get(key)):
                out[key] = wire.reported()
        out[wire.HAL_INVENTORY] = self.inventory.model_dump_json(by_alias=True)
        return out

    def publish_node(self) -> bool:
        """Patch the node's annotations that changed; True when the node is up to date."""
        try:
            node = self.api.get_node(self.cfg.node_name)
            have = (node.get("metadata") or {}).get("annotations") or {}
            want = self.node_annotations(have)
            diff = {k: v for k, v in want.items() if have.get(k) != v}
            if diff:
                self.api.patch_node_annotations(self.cfg.node_name, diff)
                log.info("node %s: wrote %s", self.cfg.node_name, ", ".join(sorted(diff)))
        except ApiError as err:
            log.error("node %s annotations not written: %s (retrying)", self.cfg.node_name, err)
            return False
        return True

    # -- metrics -----------------------------------------------------------------------------

    def containers(self) -> list:
        """The allocated containers the exporter reports on (from the state records)."""
        from ..metrics.node_monitor import ContainerSource

        return [ContainerSource(r.namespace, r.pod, r.container, folder, r.devices, r.partitions)
                for r, folder in self.state.list()]

    def collectors(self, legacy: bool = False) -> list:
        """HAMi's node-monitor series plus the plugins' ``hami_hal_*`` device series, computed per scrape.

        The same collectors are returned on every call: utilization is a rate between two scrapes.
        """
        from ..metrics import HalCollector
        from ..metrics.node_monitor import NodeMonitorCollector

        if legacy in self._collectors:
            return self._collectors[legacy]
        self._collectors[legacy] = [NodeMonitorCollector(self.hal, self.cfg.node_name, lambda: self.inventory.devices, self.containers,
                                     legacy=legacy),
                HalCollector(self.hal, self.inventory)]
        return self._collectors[legacy]

    # -- cleanup -----------------------------------------------------------------------------

    def cleanup(self) -> int:
        """Remove state of pods no longer on this node; returns how many containers were cleaned."""
        try:
            pods = self.api.pods_on_node(self.cfg.node_name)
        except ApiError as err:
            log.warning("cleanup skipped, pods unknown: %s", err)
            return 0
        live = {str((p.get("metadata") or {}).get("uid", "")) for p in pods
                if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")}
        removed = self.state.cleanup(live)
        by_uuid = {d.uuid: d for d in self.inventory.devices}
        for rec in removed:
            for handles in rec.partitions.values():
                for h in handles:
                    dev = by_uuid.get(h.get("uuid", ""))
                    if dev is not None:
                        try:
                            self.hal.destroy_partition(dev, h.get("handle") or {})
                        except Exception as err:  # noqa: BLE001 - log and keep cleaning
                            log.error("partition on %s of pod %s not destroyed: %s", dev.uuid, rec.pod_uid, err)
            if self.allocator.cdi is not None:
                for vendor in rec.devices:
                    self.allocator.cdi.remove(vendor, rec.key)
            log.info("cleaned state of %s/%s container %s (pod gone)", rec.namespace, rec.pod, rec.container)
        return len(removed)
