"""The plugin's per-node settings, with HAMi's names and defaults (hami-compat.md §7.1).

Accepts HAMi's camelCase keys (``deviceSplitCount``), the lower-case node-config keys
(``devicesplitcount``) and snake_case (``device_split_count``), optionally under an ``nvidia`` section (the
node agent hands the plugin the ``nvidia`` section of its config file there, e.g. ``procCensusDir``).
A bad value raises :class:`hami_hal.errors.InputError` naming the key and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hami_hal.errors import InputError

from .proc_census import check_dir_option

OPERATING_MODES = ("hami-core", "mig", "whole")


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
    lib_cuda_log_level: int | None = None
    #: MIG profile names allowed as templates (HAMi migProfileAllowlist); empty = every plain profile.
    mig_profile_allowlist: tuple[str, ...] = ()
    filter_uuids: tuple[str, ...] = field(default_factory=tuple)
    #: The node agent's process census folder (proc_census.py), mounted read-only into interposer containers.
    #: None: the default on a real node, none on a simulated one; "": off.
    proc_census_dir: str | None = None


_ALIASES = {
    "device_split_count": ("deviceSplitCount", "devicesplitcount"),
    "device_memory_scaling": ("deviceMemoryScaling", "devicememoryscaling"),
    "device_core_scaling": ("deviceCoreScaling", "devicecorescaling"),
    "operating_mode": ("operatingMode", "operatingmode"),
    "hook_path": ("gpuHookPath", "hookPath"),
    "disable_core_limit": ("disableCoreLimit", "disablecorelimit"),
    "lib_cuda_log_level": ("libCudaLogLevel", "libcudaloglevel"),
    "mig_profile_allowlist": ("migProfileAllowlist",),
    "filter_uuids": ("filterDevices",),
    "proc_census_dir": ("procCensusDir",),
}


#: Keys of HAMi's device-config.yaml ``nvidia`` section that HAMi's scheduler reads (hami-hal's scheduler reads
#: them from its own config): the same file may serve both, so the node side passes over them without a note.
HAMI_SCHEDULER_KEYS = frozenset({
    "resourceCountName", "resourceMemoryName", "resourceMemoryPercentageName", "resourceCoreName",
    "resourcePriorityName", "defaultMemory", "defaultCores", "defaultGPUNum", "memoryFactor", "knownMigGeometries",
})
#: Every key this plugin reads.
KNOWN_KEYS = frozenset(name for key, names in _ALIASES.items() for name in (key, *names))


def _lookup(raw: dict, key: str):
    for name in (key, *_ALIASES[key]):
        if name in raw:
            return name, raw[name]
    return None, None


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
    if name:
        if v not in OPERATING_MODES:
            raise InputError(name, v, f"must be one of {', '.join(OPERATING_MODES)}")
        values["operating_mode"] = v
    name, v = _lookup(raw, "hook_path")
    if name:
        if not isinstance(v, str) or not v.startswith("/"):
            raise InputError(name, v, "must be an absolute path")
        values["hook_path"] = v.rstrip("/") or "/"
    name, v = _lookup(raw, "disable_core_limit")
    if name:
        if not isinstance(v, bool):
            raise InputError(name, v, "must be true or false")
        values["disable_core_limit"] = v
    name, v = _lookup(raw, "lib_cuda_log_level")
    if name:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 4:
            raise InputError(name, v, "must be an integer 0..4")
        values["lib_cuda_log_level"] = v
    name, v = _lookup(raw, "mig_profile_allowlist")
    if name:
        if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
            raise InputError(name, v, "must be a list of MIG profile names")
        values["mig_profile_allowlist"] = tuple(v)
    name, v = _lookup(raw, "filter_uuids")
    if name:
        uuids = v.get("uuid", []) if isinstance(v, dict) else v
        if not isinstance(uuids, list):
            raise InputError(name, v, "must be a list of GPU UUIDs (or {uuid: [...]})")
        values["filter_uuids"] = tuple(str(u) for u in uuids)
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


def check_config(config: dict | None) -> list[str]:
    """``hami_hal_check_config``: parse (a bad value raises InputError) and note the section's keys this plugin
    does not read, so a misspelt ``procCensusDir`` is not lost without a word."""
    parse_config(config)
    section = (config or {}).get("nvidia") or {}
    unknown = sorted(str(k) for k in section if k not in KNOWN_KEYS and k not in HAMI_SCHEDULER_KEYS)
    if not unknown:
        return []
    shown = ", ".join(unknown[:10]) + (f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else "")
    return [f"nvidia: {shown} not read by the NVIDIA plugin (ignored); it reads "
            f"{', '.join(sorted(names[0] for names in _ALIASES.values()))}"]
