"""HAMi's scheduler ``device-config.yaml`` as the admission webhook reads it (``--device-config``).

Per vendor section (named like the vendor, ``nvidia:``, or as :data:`HAMI_SECTIONS` says: Ascend's is HAMi's
per-chip ``vnpus`` list), the webhook takes:

- the request defaults ``defaultMemory``, ``defaultCores``, ``defaultGPUNum`` (written into the vendor's
  resource families, so the webhook and the scheduler's parser agree);
- ``runtimeClassName``: the pod's ``spec.runtimeClassName`` when it asks for the vendor's devices (in a per-chip
  section: for the chip's resources);
- ``overwriteEnv: true``: every container that asks for none of the vendor's devices gets the vendor's
  visible-devices variable set to the value that shows no device (``NVIDIA_VISIBLE_DEVICES=none``), so an image
  whose runtime hook reads the variable does not see every device of the node.

The scheduler never imports vendor plugins, so the name and the "no device" value of each vendor's variable are
data here (:data:`HIDE_DEVICES_ENV`), each with where it comes from. A vendor without an entry cannot take
``overwriteEnv: true`` (refused at start, one line).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hami_hal.errors import InputError
from hami_hal.models import VendorInfo

MAX_DEVICE_CONFIG = 1 << 20


@dataclass(frozen=True)
class VisibleDevicesEnv:
    """The container variable a vendor's runtime hook reads to choose the devices it exposes."""

    variable: str
    #: The value that exposes no device.
    hidden: str
    #: Where the variable and the value come from.
    source: str
    #: The values a pod's own spec may give the variable: those that expose no device. Any other value in the
    #: pod spec would replace the device plugin's list (the spec's env comes after it), so the webhook refuses it
    #: (:mod:`.visible_devices_guard`).
    no_device: tuple[str, ...] = ()


#: vendor (``VendorInfo.name``) -> the variable HAMi's ``overwriteEnv`` sets on containers without the vendor's
#: devices, and that a pod's spec may not widen. Only vendors whose HAMi section has ``overwriteEnv`` are listed.
HIDE_DEVICES_ENV: dict[str, VisibleDevicesEnv] = {
    "nvidia": VisibleDevicesEnv(
        variable="NVIDIA_VISIBLE_DEVICES", hidden="none",
        source="HAMi v2.10 device-config.yaml, nvidia.overwriteEnv (HAMi pkg/device/nvidia MutateAdmission); the "
               "NVIDIA container runtime hook exposes no GPU for the value none, and runs no GPU setup for void or "
               "the empty value (NVIDIA container toolkit, NVIDIA_VISIBLE_DEVICES)",
        no_device=("none", "void", "")),
    "ascend": VisibleDevicesEnv(
        variable="ASCEND_VISIBLE_DEVICES", hidden="",
        source="HAMi device-config.yaml, vnpus[].overwriteEnv (HAMi pkg/device/ascend MutateAdmission sets "
               "ASCEND_VISIBLE_DEVICES to the empty string); the Ascend plugin hands ASCEND_VISIBLE_DEVICES=<phyIDs> "
               "to the containers that hold NPUs; the empty value names no NPU",
        no_device=("",)),
}


@dataclass(frozen=True)
class HamiSection:
    """Where a vendor's keys sit in HAMi's device-config.yaml."""

    key: str
    #: A list of per-chip entries matched to the vendor's resource families by ``commonWord`` (HAMi's ``vnpus``:
    #: a bare list before HAMi v2.9, ``{configs: [...]}`` since).
    per_chip: bool = False


#: vendor -> its HAMi section where that is not a mapping named like the vendor.
HAMI_SECTIONS: dict[str, HamiSection] = {"ascend": HamiSection("vnpus", per_chip=True)}

#: Kubernetes' rule for a RuntimeClass name (a DNS-1123 subdomain).
_RUNTIME_CLASS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_DEFAULTS = (("defaultMemory", "default_memory_mib", 0, 1 << 31), ("defaultCores", "default_cores", 0, 100),
             ("defaultGPUNum", "default_count", 1, 1024))


@dataclass(frozen=True)
class VendorAdmission:
    """What the webhook does for one vendor beyond its request defaults."""

    vendor: str
    #: ``spec.runtimeClassName`` for a pod that asks for the vendor's devices ("" = none).
    runtime_class_name: str = ""
    #: Set (``overwriteEnv: true``): the variable given to containers without the vendor's devices.
    hide_env: VisibleDevicesEnv | None = None
    #: The resource families (CommonWords) the runtime class is for; None = every family of the vendor.
    families: frozenset[str] | None = None


@dataclass(frozen=True)
class WebhookDeviceConfig:
    vendors: list[VendorInfo]
    admission: list[VendorAdmission]
    #: One line per section whose added families could not be read (the installed families were kept).
    notes: tuple[str, ...] = ()
    #: The installed plugins' admission (``Hal.admit_request``); None when the vendors are data (``--vendors``).
    admit: Callable | None = None


#: (vendor, {HAMi section name: the section as written}) -> the vendor with the families the section adds: the
#: installed plugin's answer (``Hal.node_vendor``); raises InputError for a section it refuses.
NodeVendor = Callable[[VendorInfo, dict], VendorInfo]


def _load(path: str) -> dict | None:
    import yaml

    from hami_hal import bounded_yaml

    try:  # bounded: size, nesting, alias expansion (a file nested 50,000 deep was a traceback)
        raw = bounded_yaml.load(bounded_yaml.read_text(Path(path), MAX_DEVICE_CONFIG))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, bounded_yaml.YamlBoundError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError("--device-config", path, f"cannot be read as YAML: {first}") from None
    if raw is not None and not isinstance(raw, dict):
        raise InputError("--device-config", path, "must be a mapping of vendor sections")
    return raw


def _admission(path: str, vendor: str, where: str, sec: dict,
               families: frozenset[str] | None = None) -> VendorAdmission | None:
    """The keys of one section (or one per-chip entry, ``where`` naming it in errors)."""
    rc = sec.get("runtimeClassName")
    if rc is None:
        rc = ""  # HAMi (Go YAML): an empty key is ""
    if not isinstance(rc, str) or len(rc) > 253 or (rc and not _RUNTIME_CLASS.match(rc)):
        raise InputError(f"{path}: {where}.runtimeClassName", rc,
                         "must be a RuntimeClass name (lower-case DNS subdomain, at most 253 characters) or \"\"")
    ow = sec.get("overwriteEnv", False)
    if ow is None:
        ow = False
    if not isinstance(ow, bool):
        raise InputError(f"{path}: {where}.overwriteEnv", ow, "must be true or false")
    hide = None
    if ow:
        hide = HIDE_DEVICES_ENV.get(vendor)
        if hide is None:
            raise InputError(f"{path}: {where}.overwriteEnv", ow,
                             f"is not supported for {vendor}: no visible-devices variable is known for it "
                             f"(known: {', '.join(sorted(HIDE_DEVICES_ENV))})")
    if not rc and hide is None:
        return None
    return VendorAdmission(vendor, rc, hide, families)


def _per_chip(path: str, v: VendorInfo, key: str, sec: object) -> list[VendorAdmission]:
    """HAMi's per-chip section: each entry's runtime class for its chip's family. ``overwriteEnv`` of any entry
    hides the vendor's devices from containers that ask for none of them (HAMi checks per chip, which would also
    empty the variable of a container holding another chip of the vendor: not followed)."""
    entries, where = sec, key
    if isinstance(sec, dict):
        entries, where = sec.get("configs", []), f"{key}.configs"
    if not isinstance(entries, list):
        raise InputError(f"{path}: {where}", type(entries).__name__, "must be a list of chip entries")
    words = {f.common_word for f in v.resources}
    out: list[VendorAdmission] = []
    hide = None
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise InputError(f"{path}: {where}[{i}]", type(e).__name__, "must be a mapping of keys")
        cw = e.get("commonWord")
        adm = _admission(path, v.name, f"{where}[{i}]", e, frozenset([cw]) if isinstance(cw, str) else None)
        if adm is None:
            continue
        if not isinstance(cw, str) or cw not in words:
            raise InputError(f"{path}: {where}[{i}].commonWord", cw,
                             f"names no {v.name} resource family (known: {', '.join(sorted(words))}), so its "
                             "runtimeClassName/overwriteEnv cannot be applied")
        hide = hide or adm.hide_env
        if adm.runtime_class_name:
            out.append(VendorAdmission(v.name, adm.runtime_class_name, None, adm.families))
    if hide:
        out.append(VendorAdmission(v.name, hide_env=hide))
    return out


def read_device_config(vendors: list[VendorInfo], path: str, node_vendor: NodeVendor | None = None) -> WebhookDeviceConfig:
    """The vendors with the file's request defaults, and what the webhook applies per vendor.

    ``node_vendor`` (the installed plugins, when the webhook runs them): a per-chip section may add chips, hence
    resource families (an Ascend chip only the ``vnpus`` section knows); the webhook then manages their names and
    applies their entries. A section the plugin refuses keeps the installed families (the webhook reads only
    ``runtimeClassName``/``overwriteEnv`` of each entry, so HAMi's partial entries stay valid here): one note."""
    raw = _load(path)
    if raw is None:
        return WebhookDeviceConfig(vendors, [])
    out, admission, notes = [], [], []
    for v in vendors:
        where = HAMI_SECTIONS.get(v.name, HamiSection(v.name))
        if where.per_chip:
            if raw.get(where.key) is not None:
                if node_vendor is not None:
                    try:
                        v = node_vendor(v, {where.key: raw[where.key]})
                    except InputError as exc:
                        notes.append(f"{path}: {where.key}: no chips added for {v.name} ({str(exc)[:200]})")
                admission += _per_chip(path, v, where.key, raw[where.key])
            out.append(v)
            continue
        sec = raw.get(where.key)
        if sec is not None and not isinstance(sec, dict):
            raise InputError(f"{path}: {v.name}", type(sec).__name__, "must be a mapping of keys")
        if not sec:
            out.append(v)
            continue
        upd = {}
        for key, fld, lo, hi in _DEFAULTS:
            if key in sec:
                val = sec[key]
                if not isinstance(val, int) or isinstance(val, bool) or not lo <= val <= hi:
                    raise InputError(f"{path}: {v.name}.{key}", val, f"must be an integer in {lo}..{hi}")
                upd[fld] = val
        out.append(v.model_copy(update={"resources": [f.model_copy(update=upd) for f in v.resources]}))
        adm = _admission(path, v.name, v.name, sec)
        if adm:
            admission.append(adm)
    return WebhookDeviceConfig(out, admission, tuple(notes))

