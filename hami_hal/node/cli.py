"""``hami node``: run the node agent (kubelet device plugin, HAMi node registration, Allocate, exporter).

Registered with the ``hami`` CLI without importing grpcio; the agent's modules load only when the
command runs, so a core install without ``hami-hal[node]`` gets one line saying what to install.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from ..errors import HalError, InputError
from .plugin_settings import check_plugin_config, node_settings, summary


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "node", help="run the node agent: kubelet device plugin, HAMi node registration, Allocate, exporter",
        description="Long-running agent for one Kubernetes node (run it as a DaemonSet with the kubelet's "
                    "device-plugin folder and the state root mounted). It serves the kubelet device plugin API "
                    "v1beta1 for every resource family of the installed plugins, writes HAMi's node "
                    "annotations, answers Allocate from the pod's HAMi allocation, and serves HAMi's "
                    "node-monitor metrics. Needs hami-hal[node].")
    p.add_argument("--node-name", metavar="NAME", help="this node's name (default: $NODE_NAME, else the host name)")
    p.add_argument("--backend", choices=("auto", "real", "sim"), default="auto",
                   help="real devices, simulated profiles, or real with a fallback to simulation (default auto)")
    p.add_argument("--sim-node", metavar="NAME", help="simulated node profile (see `hami profiles`)")
    p.add_argument("--plugin-dir", default="/var/lib/kubelet/device-plugins",
                   help="kubelet device-plugin folder (default /var/lib/kubelet/device-plugins)")
    p.add_argument("--kubelet-socket", help="kubelet registration socket (default <plugin-dir>/kubelet.sock)")
    p.add_argument("--state-root", default="/usr/local/vgpu/containers",
                   help="per-container state folders, HAMi layout <root>/<podUID>_<container> "
                        "(default /usr/local/vgpu/containers)")
    p.add_argument("--device-list-strategy", choices=("envvar", "cdi"), default="envvar",
                   help="answer Allocate with env/mounts/devices (envvar, default) or with CDI names (cdi)")
    p.add_argument("--cdi-dir", default="/var/run/cdi", help="where CDI specs go with --device-list-strategy cdi")
    p.add_argument("--api-server", metavar="URL", help="Kubernetes API URL without auth (kubectl proxy, tests); "
                                                       "default: in-cluster config, else --kubeconfig")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    port = p.add_mutually_exclusive_group()
    port.add_argument("--metrics-port", type=int, default=9394, help="exporter port, 0 = off (default 9394, HAMi's)")
    port.add_argument("--metrics-any-port", action="store_true",
                      help="exporter on a free port the system picks, named in the 'serving ... on' log line "
                           "(tests, several agents on one host)")
    p.add_argument("--metrics-addr", default="0.0.0.0", help="exporter bind address (default 0.0.0.0)")
    p.add_argument("--legacy-metrics", action="store_true",
                   help="also serve HAMi's legacy metric names (HAMi <= v2.8), as HAMi's switch of the same name")
    p.add_argument("--register-interval", type=float, default=30.0, help="seconds between node annotation refreshes")
    p.add_argument("--health-interval", type=float, default=5.0, help="seconds between device health checks")
    p.add_argument("--cleanup-interval", type=float, default=60.0,
                   help="seconds between removals of state folders of pods that are gone")
    p.add_argument("--device-split-count", type=int, metavar="N",
                   help="HAMi deviceSplitCount: tenants per device = kubelet IDs per device (1..1024; default: "
                        "the plugin's; HAMi's is 10)")
    p.add_argument("--device-memory-scaling", type=float, metavar="X",
                   help="HAMi deviceMemoryScaling: memory handed out = device memory × X (0.01..100; > 1 "
                        "oversubscribes; default 1)")
    p.add_argument("--device-core-scaling", type=float, metavar="X",
                   help="HAMi deviceCoreScaling: compute handed out = 100 %% × X (0.01..100; default 1)")
    p.add_argument("--device-config", metavar="FILE",
                   help="HAMi device-plugin config (YAML/JSON): deviceSplitCount, deviceMemoryScaling, "
                        "deviceCoreScaling at the top and/or per node under nodeconfig; flags override it")
    p.add_argument("--once", action="store_true",
                   help="discover, write the node annotations once and exit (no kubelet, no exporter)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("register_interval", "health_interval", "cleanup_interval"):
        v = getattr(args, name)
        if not 0.1 <= v <= 86400:
            raise InputError(f"--{name.replace('_', '-')}", v, "must be between 0.1 and 86400 seconds")
    if not 0 <= args.metrics_port <= 65535:
        raise InputError("--metrics-port", args.metrics_port, "must be 0..65535")
    for name in ("plugin_dir", "state_root", "cdi_dir"):
        if not os.path.isabs(getattr(args, name)):
            raise InputError(f"--{name.replace('_', '-')}", getattr(args, name), "must be an absolute path")


def run(args: argparse.Namespace) -> int:
    _check(args)
    node = args.node_name or os.environ.get("NODE_NAME") or os.uname().nodename
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # the agent logs one line per failed call itself
    log = logging.getLogger("hami_hal.node")
    from ..manager import Hal

    hal = Hal()
    vendors = {p.vendor.name for p in hal.plugins.values()}
    settings = node_settings(args.device_config, node, {
        "deviceSplitCount": args.device_split_count, "deviceMemoryScaling": args.device_memory_scaling,
        "deviceCoreScaling": args.device_core_scaling},
        entry_keys={p.vendor.name: p.vendor.node_entry_keys for p in hal.plugins.values() if p.vendor.node_entry_keys},
        hami_sections={p.vendor.name: p.vendor.hami_sections for p in hal.plugins.values() if p.vendor.hami_sections})
    settings.drop_sections_except(vendors)
    for vendor in sorted(vendors):  # every plugin checks its settings before anything starts
        settings.notes += [f"plugin {vendor}: {n}" for n in check_plugin_config(hal, settings, vendor)]
    for note in settings.notes:
        log.warning("%s", " ".join(note.split()))  # one line each, whatever the file's names hold
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise HalError("`hami node` needs grpcio (pip install 'hami-hal[node]')") from None
    from .agent import AgentConfig, NodeAgent
    from .kubeapi import KubeNodeApi

    knobs = settings.knobs
    backend = "sim" if args.sim_node and args.backend == "auto" else args.backend
    inv = hal.discover(backend, node_name=node, sim_node=args.sim_node, config=knobs,
                       vendor_configs={v: settings.config_for(v) for v in vendors})
    if not inv.devices:
        raise HalError(f"no devices on node {node} from the installed plugins "
                       f"({', '.join(p.name for p in hal.plugins.values()) or 'none installed'})")
    api = KubeNodeApi(host=args.api_server, kubeconfig=args.kubeconfig)
    cfg = AgentConfig(node_name=node, plugin_dir=args.plugin_dir, kubelet_socket=args.kubelet_socket,
                      state_root=args.state_root, cdi_dir=args.cdi_dir if args.device_list_strategy == "cdi" else None,
                      register_interval=args.register_interval, health_interval=args.health_interval,
                      cleanup_interval=args.cleanup_interval)
    agent = NodeAgent(hal, api, cfg, inv)
    source = "simulated" if inv.source == "simulated" else inv.source
    log.info("node %s: %d devices (%s), families %s%s", node, len(inv.devices), source,
             ", ".join(f.resource_name for f in agent.families),
             "; " + ", ".join(f"{k}={v:g}" for k, v in knobs.items()) if knobs else "")
    if settings.sections:
        log.info("plugin settings from --device-config: %s", summary(settings))
    if args.once:
        return 0 if agent.publish_node() else 1
    if args.metrics_port or args.metrics_any_port:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        for c in agent.collectors(legacy=args.legacy_metrics):
            registry.register(c)
        asked = 0 if args.metrics_any_port else args.metrics_port
        try:
            httpd, _ = start_http_server(asked, addr=args.metrics_addr, registry=registry)
        except OSError as exc:
            raise InputError("--metrics-port", asked,
                             f"cannot listen on {args.metrics_addr} ({exc.strerror or exc})") from None
        log.info("serving HAMi node-monitor metrics on http://%s:%d/metrics", args.metrics_addr, httpd.server_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    try:
        stop.wait()
    finally:
        agent.stop()
        log.info("node agent stopped")
    return 0
