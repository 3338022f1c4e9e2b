"""The plugin's per-node settings, with HAMi's names and defaults (hami-compat.md §7.1).

Accepts HAMi's camelCase keys (``deviceSplitCount``), the lower-case node-config keys
(``devicesplitcount``) and snake_case (``device_split_count``), optionally under an ``nvidia`` section (the
node agent hands the plugin the ``nvidia`` section of its config file there, e.g. ``procCensusDir``, and the
NVIDIA keys of a node's HAMi ``nodeconfig`` entry, see :data:`NODE_ENTRY_KEYS`). When one setting is written
in several spellings, HAMi's camelCase wins, then the lower-case node-config key, then snake_case.
A bad value raises :class:`hami_hal.errors.InputError` naming the key and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hami_hal.errors import InputError

from .proc_census import check_dir_option

OPERATING_MODES = ("hami-core", "mig", "whole")
#: HAMi's ``gpuCorePolicy`` values, passed to HAMi-core as ``GPU_CORE_UTILIZATION_POLICY``.
CORE_POLICIES = ("default", "force", "disable")
#: HAMi's ``migstrategy`` values (HAMi v2.10 accepts none and mixed).
MIG_STRATEGIES = ("none", "mixed")
#: ``<N>g.<mem>gb``, the profile names HAMi's allowlist and hami-hal's templates use.
MIG_PROFILE = re.compile(r"[1-9][0-9]?g\.[0-9]{1,4}gb")
#: Bounds on list settings (one node: a few GPUs; a cluster's allowlist: a few dozen models).
MAX_LIST = 1024
MAX_NAME = 128
#: preConfiguredDeviceMemory above this (MiB, 16 TiB) is a typo, not a GPU.
MAX_DEVICE_MEMORY_MIB = 16 << 20


@dataclass(frozen=True)
class NvidiaConfig:
    device_split_count: int = 10
    device_memory_scaling: float = 1.0
    device_core_scaling: float = 1.0
    #: ``hami-core`` (software shares), ``mig`` (MIG templates where MIG mode is on), ``whole``.
    operating_mode: str = "hami-core"
    #: HAMi ``global.gpuHookPath``: libvgpu.so lives in ``<hook>/vgpu``.
    hook_path: str = "/usr/local"
    disable_core_limit: bool = False
    #: HAMi ``gpuCorePolicy``; None = not set (HAMi's ``default``).
    gpu_core_policy: str | None = None
    lib_cuda_log_level: int | None = None
    #: MIG profile names allowed as templates on every GPU (the flat form); empty = every plain profile.
    mig_profile_allowlist: tuple[str, ...] = ()
    #: HAMi v2.10's per-model form: ((models, profiles), ...); a GPU takes the entry whose model name is the
    #: longest substring of its NVML name (allowed_mig_profiles).
    mig_profile_allowlist_by_model: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()
    #: HAMi ``migstrategy``: None = not set (MIG templates wherever MIG mode is on).
    mig_strategy: str | None = None
    filter_uuids: tuple[str, ...] = field(default_factory=tuple)
    #: HAMi ``filterdevices.index``: NVML indexes of GPUs this node does not register.
    filter_indexes: tuple[int, ...] = ()
    #: HAMi ``preConfiguredDeviceMemory``: total MiB of a GPU whose memory NVML cannot report; 0 = none.
    pre_configured_device_memory: int = 0
    #: HAMi ``enableNumaTopology``: advertise each GPU's NUMA node to the kubelet (TopologyInfo).
    enable_numa_topology: bool = False
    #: HAMi ``enableGetPreferredAllocation``; None = not set (on). False: the kubelet is told the RPC is not
    #: available (``Device.preferred_allocation``) and picks the replica IDs itself.
    enable_get_preferred_allocation: bool | None = None
    #: HAMi ``overwriteEnv`` / ``runtimeClassName``: the admission webhook applies them (``hami-scheduler webhook
    #: --device-config`` with the same section); accepted and checked here, without a note.
    overwrite_env: bool = False
    runtime_class_name: str = ""
    #: The node agent's process census folder (proc_census.py), mounted read-only into interposer containers.
    #: None: the default on a real node, none on a simulated one; "": off.
    proc_census_dir: str | None = None

    def allowed_mig_profiles(self, model: str) -> tuple[str, ...] | None:
        """The MIG profiles a GPU named ``model`` may offer; None = no filter (every plain profile).

        Per-model entries match as in HAMi: a ``models`` name matches when it is a substring of the NVML name.
        Where several entries match, the most specific (longest) model name decides, the first entry among
        equals: HAMi documents "the first matching entry", which with its own default list gives an
        ``NVIDIA H200 NVL`` the ``H20`` entry, whose profiles an H200 does not have. A GPU no entry names is not
        filtered (HAMi does not register it; hami-hal keeps it usable with every plain profile NVML reports)."""
        if self.mig_profile_allowlist:
            return self.mig_profile_allowlist
        best: tuple[int, tuple[str, ...]] | None = None
        for models, profiles in self.mig_profile_allowlist_by_model:
            longest = max((len(m) for m in models if m in model), default=0)
            if longest and (best is None or longest > best[0]):
                best = (longest, profiles)
        return best[1] if best else None

    def core_policy_env(self) -> str | None:
        """``GPU_CORE_UTILIZATION_POLICY`` for a shared slice, HAMi's precedence: ``gpuCorePolicy`` force or
        disable (HAMi's webhook puts it in the container spec, which the runtime applies after the device
        plugin's variables) wins; otherwise ``disableCoreLimit: true`` gives ``disable``; otherwise none
        (HAMi-core's ``default``)."""
        if self.gpu_core_policy in ("force", "disable"):
            return self.gpu_core_policy
        return "disable" if self.disable_core_limit else None

    def uses_mig(self) -> bool:
        """Whether MIG-enabled GPUs are partitioned by their MIG profiles: not under ``migstrategy: none``
        unless the operating mode is ``mig`` (HAMi v2.10's dynamic MIG)."""
        return self.operating_mode == "mig" or self.mig_strategy != "none"


_ALIASES = {
    "device_split_count": ("deviceSplitCount", "devicesplitcount"),
    "device_memory_scaling": ("deviceMemoryScaling", "devicememoryscaling"),
    "device_core_scaling": ("deviceCoreScaling", "devicecorescaling"),
    "operating_mode": ("operatingMode", "operatingmode"),
    "hook_path": ("gpuHookPath", "hookPath"),
    "disable_core_limit": ("disableCoreLimit", "disablecorelimit"),
    "gpu_core_policy": ("gpuCorePolicy",),
    "lib_cuda_log_level": ("libCudaLogLevel", "libcudaloglevel"),
    "mig_profile_allowlist": ("migProfileAllowlist",),
    "mig_strategy": ("migStrategy", "migstrategy"),
    "filter_devices": ("filterDevices", "filterdevices", "filter_uuids"),
    "pre_configured_device_memory": ("preConfiguredDeviceMemory", "preconfigureddevicememory"),
    "enable_numa_topology": ("enableNumaTopology", "enablenumatopology"),
    "enable_get_preferred_allocation": ("enableGetPreferredAllocation", "enablegetpreferredallocation"),
    "overwrite_env": ("overwriteEnv",),
    "runtime_class_name": ("runtimeClassName",),
    "proc_census_dir": ("procCensusDir",),
}

#: HAMi's ``nodeconfig`` entry keys (as HAMi writes them, flat in the entry) this plugin reads, and the key of
#: the ``nvidia`` section each sets: the node agent routes them here (``VendorInfo.node_entry_keys``), so a HAMi
#: device-plugin ``config.json`` works unchanged. The three capacity knobs are the core's.
NODE_ENTRY_KEYS = {
    "operatingmode": "operatingMode",
    "migstrategy": "migStrategy",
    "filterdevices": "filterDevices",
    "preconfigureddevicememory": "preConfiguredDeviceMemory",
    "enablenumatopology": "enableNumaTopology",
    "enablegetpreferredallocation": "enableGetPreferredAllocation",
    "libcudaloglevel": "libCudaLogLevel",
    "disablecorelimit": "disableCoreLimit",
}

#: Keys of HAMi's device-config.yaml ``nvidia`` section that HAMi's scheduler reads: the same file may serve
#: both, so the node side passes over them without a note, unless hami-hal cannot follow the value (the resource
#: names and memory unit are fixed in VendorInfo; the defaults are the webhook's ``--device-config``).
HAMI_SCHEDULER_KEYS = frozenset({
    "resourceCountName", "resourceMemoryName", "resourceMemoryPercentageName", "resourceCoreName",
    "resourcePriorityName", "defaultMemory", "defaultCores", "defaultGPUNum", "memoryFactor", "knownMigGeometries",
})
#: Every key this plugin reads.
KNOWN_KEYS = frozenset(name for key, names in _ALIASES.items() for name in (key, *names))


def _lookup(raw: dict, key: str):
    for name in (*_ALIASES[key], key):
        if name in raw:
            return name, raw[name]
    return None, None


def _bool(raw: dict, key: str, values: dict) -> None:
    name, v = _lookup(raw, key)
    if name:
        if not isinstance(v, bool):
            raise InputError(name, v, "must be true or false")
        values[key] = v


def _choice(raw: dict, key: str, choices: tuple[str, ...], values: dict) -> None:
    name, v = _lookup(raw, key)
    if name:
        if not isinstance(v, str) or v not in choices:
            raise InputError(name, v, f"must be one of {', '.join(choices)}")
        values[key] = v


def _names(name: str, v: object, what: str, pattern: re.Pattern | None = None) -> tuple[str, ...]:
    """A bounded list of short strings (each matching ``pattern`` when given)."""
    if not isinstance(v, list) or len(v) > MAX_LIST:
        raise InputError(name, v if not isinstance(v, list) else f"{len(v)} entries",
                         f"must be a list of at most {MAX_LIST} {what}")
    for item in v:
        if not isinstance(item, str) or not 0 < len(item) <= MAX_NAME or (pattern and not pattern.fullmatch(item)):
            rule = "<N>g.<mem>gb such as 1g.10gb" if pattern else f"a non-empty string of at most {MAX_NAME} characters"
            raise InputError(name, item, f"is not one of {what}: each must be {rule}")
    return tuple(v)


def _allowlist(name: str, v: object, values: dict) -> None:
    """The flat list of profile names, or HAMi v2.10's ``[{models: [...], profiles: [...]}]``."""
    if not isinstance(v, list) or len(v) > MAX_LIST:
        raise InputError(name, v if not isinstance(v, list) else f"{len(v)} entries",
                         "must be a list of MIG profile names or of {models: [...], profiles: [...]} entries")
    if all(isinstance(p, str) for p in v):
        values["mig_profile_allowlist"] = _names(name, v, "MIG profile names", MIG_PROFILE)
        return
    entries = []
    for i, entry in enumerate(v):
        at = f"{name}[{i}]"
        if not isinstance(entry, dict):
            raise InputError(at, entry, "must be a {models: [...], profiles: [...]} entry (the flat list of "
                                        "profile names and the per-model entries do not mix)")
        extra = sorted((k for k in entry if k not in ("models", "profiles")), key=str)
        if extra:
            raise InputError(f"{at}.{extra[0]}", entry[extra[0]], "is not a key of an allowlist entry "
                                                                  "(models, profiles)")
        models = _names(f"{at}.models", entry.get("models"), "GPU model names")
        profiles = _names(f"{at}.profiles", entry.get("profiles"), "MIG profile names", MIG_PROFILE)
        if not models or not profiles:
            raise InputError(f"{at}.{'models' if not models else 'profiles'}", [],
                             "must not be empty (each entry names its GPU models and their profiles)")
        entries.append((models, profiles))
    values["mig_profile_allowlist_by_model"] = tuple(entries)


def _filter_devices(name: str, v: object, values: dict) -> None:
    """HAMi ``filterdevices: {uuid: [...], index: [...]}``; a bare list is UUIDs (hami-hal's older form)."""
    if isinstance(v, list):
        values["filter_uuids"] = _names(name, v, "GPU UUIDs")
        return
    if not isinstance(v, dict):
        raise InputError(name, v, "must be {uuid: [...], index: [...]} (GPUs this node does not register)")
    extra = sorted((k for k in v if k not in ("uuid", "index")), key=str)
    if extra:
        raise InputError(f"{name}.{extra[0]}", v[extra[0]], "is not a key of filterDevices (uuid, index)")
    uuids = v.get("uuid")
    values["filter_uuids"] = _names(f"{name}.uuid", [] if uuids is None else uuids, "GPU UUIDs")
    index = v.get("index")
    index = [] if index is None else index
    if not isinstance(index, list) or len(index) > MAX_LIST:
        raise InputError(f"{name}.index", index, f"must be a list of at most {MAX_LIST} GPU indexes")
    for i in index:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < MAX_LIST:
            raise InputError(f"{name}.index", i, f"must be a GPU index 0..{MAX_LIST - 1}")
    values["filter_indexes"] = tuple(index)


def parse_config(config: dict | None) -> NvidiaConfig:
    """Build the typed config from the context's merged dict."""
    raw = dict(config or {})
    if "nvidia" in raw:
        if not isinstance(raw["nvidia"], dict):
            raise InputError("nvidia", raw["nvidia"], "must be a mapping of the NVIDIA plugin's settings")
        raw = {**raw, **raw["nvidia"]}
    values: dict = {}
    name, v = _lookup(raw, "device_split_count")
    if name:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(name, v, "must be an integer >= 1")
        values["device_split_count"] = v
    for key in ("device_memory_scaling", "device_core_scaling"):
        name, v = _lookup(raw, key)
        if name:
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise InputError(name, v, "must be a number > 0")
            values[key] = float(v)
    name, v = _lookup(raw, "operating_mode")
    if v == "mps":
        raise InputError(name, v, "is not supported: hami-hal's NVIDIA plugin has no MPS mode (HAMi's "
                                  "operatingmode mps); use hami-core (software shares), mig or whole")
    _choice(raw, "operating_mode", OPERATING_MODES, values)
    name, v = _lookup(raw, "hook_path")
    if name:
        if not isinstance(v, str) or not v.startswith("/"):
            raise InputError(name, v, "must be an absolute path")
        values["hook_path"] = v.rstrip("/") or "/"
    for key in ("disable_core_limit", "enable_numa_topology", "enable_get_preferred_allocation", "overwrite_env"):
        _bool(raw, key, values)
    _choice(raw, "gpu_core_policy", CORE_POLICIES, values)
    _choice(raw, "mig_strategy", MIG_STRATEGIES, values)
    name, v = _lookup(raw, "lib_cuda_log_level")
    if name:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 4:
            raise InputError(name, v, "must be an integer 0..4")
        values["lib_cuda_log_level"] = v
    name, v = _lookup(raw, "mig_profile_allowlist")
    if name:
        _allowlist(name, v, values)
    name, v = _lookup(raw, "filter_devices")
    if name:
        _filter_devices(name, v, values)
    name, v = _lookup(raw, "pre_configured_device_memory")
    if name:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_DEVICE_MEMORY_MIB:
            raise InputError(name, v, f"must be an integer number of MiB 0..{MAX_DEVICE_MEMORY_MIB} (0 = none)")
        values["pre_configured_device_memory"] = v
    name, v = _lookup(raw, "runtime_class_name")
    if name:
        if not isinstance(v, str) or len(v) > 253:
            raise InputError(name, v, "must be a RuntimeClass name (at most 253 characters) or \"\"")
        values["runtime_class_name"] = v
    name, v = _lookup(raw, "proc_census_dir")
    if name:
        if v == "":
            values["proc_census_dir"] = ""
        else:
            try:
                values["proc_census_dir"] = check_dir_option(v)
            except ValueError as err:
                raise InputError(name, v, str(err)) from None
    return NvidiaConfig(**values)


def _scheduler_keys_not_applied(section: dict) -> list[str]:
    """HAMi's scheduler-side keys of the section whose value hami-hal cannot follow: the resource names and the
    memory unit are fixed in the plugin's VendorInfo; ``knownMigGeometries`` (before v2.10) is superseded."""
    from .vendor import vendor_info  # vendor.py imports this module

    fam = vendor_info().resources[0]
    fixed = {"resourceCountName": fam.count, "resourceMemoryName": fam.memory,
             "resourceMemoryPercentageName": fam.memory_percent, "resourceCoreName": fam.cores,
             "resourcePriorityName": fam.priority, "memoryFactor": fam.memory_unit_mib}
    out = [f"{key}: {section[key]!r} not applied: hami-hal's NVIDIA plugin uses {want!r} (HAMi's default)"
           for key, want in fixed.items() if key in section and section[key] != want]
    if "knownMigGeometries" in section:
        out.append("knownMigGeometries not read: MIG profiles, sizes and placements come from NVML; "
                   "migProfileAllowlist (HAMi v2.10) selects among them")
    return out


def check_config(config: dict | None) -> list[str]:
    """``hami_hal_check_config``: parse (a bad value raises InputError) and note the section's keys this plugin
    does not read, so a misspelt ``procCensusDir`` is not lost without a word, and the HAMi settings it reads
    but cannot apply."""
    parse_config(config)
    section = (config or {}).get("nvidia") or {}
    notes = [f"nvidia: {n}" for n in _scheduler_keys_not_applied(section)]
    unknown = sorted(str(k) for k in section if k not in KNOWN_KEYS and k not in HAMI_SCHEDULER_KEYS)
    if not unknown:
        return notes
    shown = ", ".join(unknown[:10]) + (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else "")
    return [f"nvidia: {shown} not read by the NVIDIA plugin (ignored); it reads "
            f"{', '.join(sorted(names[0] for names in _ALIASES.values()))}", *notes]
