"""Pod spec -> vendor-neutral :class:`PodRequest`, following HAMi's derivation rules.

The core names no vendor: resource names, units, defaults and annotation keys all come from the
:class:`VendorInfo` each installed plugin declares (``hami_hal_vendor``). Rules (hami-compat.md §2-§3):

- the count comes from ``limits`` falling back to ``requests``; memory is ``value × memory_unit_mib``;
- a memory percentage is 1..100; 0 and HAMi's sentinel 101 mean "unset"; anything else is an error;
- with neither memory nor percentage: ``default_memory_mib`` when non-zero, else 100 % of the device;
- cores default to ``default_cores``; over 100 is an error;
- webhook: memory/cores/percentage without a count get ``default_count`` devices; a count with
  exclusive memory and no cores gets 100 % cores (``full_memory_means_full_cores``);
- selectors (``use-*``/``nouse-*``) are comma lists; a value both allowed and denied is an error;
- containers are positional, init containers first (HAMi's allocation-string order);
- ``hami.io/gpu-scheduler-policy`` may be a comma chain: the first of binpack/spread/topology-aware/mutex
  becomes the device policy (``numa`` alone means spread); binpack together with spread is an error.

Every error is an :class:`InputError` naming the exact field, e.g.
``spec.containers[0].resources.limits["acme.example/xpu-cores"]: 130 must be between 0 and 100``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from hami_hal.digits import is_digits

from ..errors import HalError, InputError
from ..hami_compat.keys import GPU_POLICY, NODE_POLICY, SCORING_WEIGHTS, family_selectors
from ..models import (
    ContainerRequest,
    DevicePolicy,
    NodePolicy,
    PodRequest,
    RequestAttribute,
    ResourceRequest,
    SelectorAnnotations,
    VendorInfo,
)
from ..models.vendor import ResourceFamily
from .quantity import INT32_MAX, parse_quantity

GPU_POLICY_ANNOTATION = GPU_POLICY
NODE_POLICY_ANNOTATION = NODE_POLICY
SCORING_WEIGHTS_ANNOTATION = SCORING_WEIGHTS
#: HAMi's "percentage unset" sentinel.
PERCENT_UNSET = 101
_NUMA_POLICY = "numa"


@dataclass
class RequestFields:
    """Where each value of one ResourceRequest came from, so later checks can name the field."""

    count: str
    memory: str | None = None
    memory_percent: str | None = None
    cores: str | None = None
    type_selector: str | None = None
    uuid_selector: str | None = None
    mode_selector: str | None = None


@dataclass
class ParsedPod:
    """The parsed request plus, per (container index, request position), the source fields."""

    request: PodRequest
    fields: dict[tuple[int, int], RequestFields] = field(default_factory=dict)
    #: Extended resources (``domain/name``) no installed plugin declares: (field, name). Not an error,
    #: since another component may own them, but ``hami allocate`` says they were ignored.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    #: Accepted but worth a line to the user (e.g. memory and a memory percentage both given).
    warnings: list[str] = field(default_factory=list)


def _ann_field(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def _memory_unit_reason(fam: ResourceFamily) -> str:
    """Why a memory value is too large, naming the unit: ``10Gi`` is the number 10737418240, read as MiB."""
    unit = "MiB" if fam.memory_unit_mib == 1 else f"units of {fam.memory_unit_mib} MiB"
    return (f"is too large: {fam.memory} counts {unit} (max {INT32_MAX // fam.memory_unit_mib}), and a suffix "
            f"such as Gi multiplies by 1024^3; write {10240 // fam.memory_unit_mib} for 10 GiB")


def _memory_twice(parsed: ParsedPod) -> list[str]:
    """HAMi accepts memory and a memory percentage together; its Fit uses the memory value, and so does the
    engine (``ResourceRequest.memory_for``). Accepted, but the user hears which one was ignored."""
    out = []
    for ctr in parsed.request.containers:
        for i, req in enumerate(ctr.requests):
            flds = parsed.fields.get((ctr.index, i))
            if flds and flds.memory and flds.memory_percent and req.memory_mib and req.memory_percent is not None:
                out.append(f"{flds.memory_percent}: {req.memory_percent} is ignored because {flds.memory} "
                           f"({req.memory_mib} MiB) is also given; memory wins, as in HAMi")
    return out



def _mapping(value: object, field_name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(field_name, value, "must be a mapping")
    return value


def _comma_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _annotations(meta: dict) -> dict[str, str]:
    anns = _mapping(meta.get("annotations"), "metadata.annotations")
    for key, value in anns.items():
        if not isinstance(value, str):
            raise InputError(_ann_field(key), value, "must be a string (quote it in YAML)")
    return anns


def _device_policy(anns: dict[str, str]) -> DevicePolicy:
    raw = anns.get(GPU_POLICY_ANNOTATION)
    if raw is None:
        return DevicePolicy.SPREAD
    keys = [k.lower() for k in _comma_list(raw)]
    known = {p.value for p in DevicePolicy} | {_NUMA_POLICY}
    if not keys:
        raise InputError(_ann_field(GPU_POLICY_ANNOTATION), raw, "is empty")
    for key in keys:
        if key not in known:
            raise InputError(_ann_field(GPU_POLICY_ANNOTATION), raw,
                             f"names unknown policy {key!r} (known: {', '.join(sorted(known))})")
    if {DevicePolicy.BINPACK.value, DevicePolicy.SPREAD.value} <= set(keys):
        raise InputError(_ann_field(GPU_POLICY_ANNOTATION), raw, "asks for both binpack and spread")
    chosen = [k for k in keys if k != _NUMA_POLICY]
    return DevicePolicy(chosen[0]) if chosen else DevicePolicy.SPREAD


def _node_policy(anns: dict[str, str]) -> NodePolicy:
    raw = anns.get(NODE_POLICY_ANNOTATION)
    if raw is None:
        return NodePolicy.BINPACK
    try:
        return NodePolicy(raw.strip().lower())
    except ValueError:
        raise InputError(_ann_field(NODE_POLICY_ANNOTATION), raw, "must be binpack or spread") from None


def _check_scoring_weights(anns: dict[str, str]) -> None:
    """``slot=<int>,core=<int>,memory=<int>``: exactly those keys, >= 0, at least one > 0 (HAMi §3)."""
    raw = anns.get(SCORING_WEIGHTS_ANNOTATION)
    if raw is None:
        return
    where = _ann_field(SCORING_WEIGHTS_ANNOTATION)
    weights: dict[str, int] = {}
    for part in _comma_list(raw):
        key, _, val = part.partition("=")
        key = key.strip()
        if key not in ("slot", "core", "memory") or key in weights or not is_digits(val.strip()):
            raise InputError(where, raw, "must be slot=<int>,core=<int>,memory=<int> with each key once")
        weights[key] = int(val)
    if set(weights) != {"slot", "core", "memory"} or not any(weights.values()):
        raise InputError(where, raw, "must set slot, core and memory, at least one above 0")


@dataclass
class _Selectors:
    type_include: list[str]
    type_exclude: list[str]
    uuid_include: list[str]
    uuid_exclude: list[str]
    modes: list[str]
    numa_bind: bool
    type_field: str | None
    uuid_field: str | None
    mode_field: str | None


def _selectors(sel: SelectorAnnotations, anns: dict[str, str]) -> _Selectors:

    def get(key: str | None) -> list[str]:
        return _comma_list(anns.get(key)) if key else []

    t_in, t_out = get(sel.use_type), get(sel.nouse_type)
    clash = {t.lower() for t in t_in} & {t.lower() for t in t_out}
    if clash:
        raise InputError(_ann_field(sel.nouse_type or ""), anns.get(sel.nouse_type or ""),
                         f"excludes type {sorted(clash)[0]!r} that {_ann_field(sel.use_type or '')} requires")
    u_in, u_out = get(sel.use_uuid), get(sel.nouse_uuid)
    both = set(u_in) & set(u_out)
    if both:
        raise InputError(_ann_field(sel.nouse_uuid or ""), anns.get(sel.nouse_uuid or ""),
                         f"excludes uuid {sorted(both)[0]!r} that {_ann_field(sel.use_uuid or '')} requires")
    numa = False
    if sel.numa_bind and sel.numa_bind in anns:
        raw = anns[sel.numa_bind].strip().lower()
        if raw not in ("true", "false"):
            raise InputError(_ann_field(sel.numa_bind), anns[sel.numa_bind], 'must be "true" or "false"')
        numa = raw == "true"

    def used(*keys: str | None) -> str | None:
        return next((_ann_field(k) for k in keys if k and k in anns), None)

    return _Selectors(
        type_include=t_in, type_exclude=t_out, uuid_include=u_in, uuid_exclude=u_out,
        modes=get(sel.mode), numa_bind=numa,
        type_field=used(sel.use_type, sel.nouse_type), uuid_field=used(sel.use_uuid, sel.nouse_uuid),
        mode_field=used(sel.mode),
    )


class _ResourceIndex:
    """Resource name -> (vendor, family), plus the domains under which unknown names are errors."""

    def __init__(self, vendors: list[VendorInfo]) -> None:
        self.by_name: dict[str, tuple[VendorInfo, ResourceFamily]] = {}
        self.domains: list[tuple[str, VendorInfo]] = []
        for vendor in vendors:
            for fam in vendor.resources:
                for name in fam.names():
                    self.by_name[name] = (vendor, fam)
            for dom in vendor.domains:
                self.domains.append((dom if dom.endswith("/") else dom + "/", vendor))

    def check_known(self, name: str, field_name: str) -> None:
        if name in self.by_name:
            return
        for dom, vendor in self.domains:
            if name.startswith(dom):
                known = sorted(n for n, (v, _) in self.by_name.items() if v.name == vendor.name)
                raise InputError(field_name, name,
                                 f"is not a resource of vendor {vendor.name} (known: {', '.join(known)})")


@dataclass
class _Amounts:
    """One container's values for one family, with their fields."""

    values: dict[str, int] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    #: Roles whose quantity carried a unit suffix (``4Gi``), not a bare number.
    suffixed: set[str] = field(default_factory=set)


def _container_amounts(res: dict, prefix: str, index: _ResourceIndex,
                       ignored: list[tuple[str, str]]) -> dict[tuple[str, str], _Amounts]:
    limits = _mapping(res.get("limits"), f"{prefix}.resources.limits")
    requests = _mapping(res.get("requests"), f"{prefix}.resources.requests")
    out: dict[tuple[str, str], _Amounts] = {}
    for name in [*limits, *[n for n in requests if n not in limits]]:
        where = "limits" if name in limits else "requests"
        fld = f'{prefix}.resources.{where}["{name}"]'
        index.check_known(str(name), fld)
        if name not in index.by_name:
            if "/" in str(name) and not str(name).startswith(("kubernetes.io/", "hugepages-")):
                ignored.append((fld, str(name)))
            continue  # cpu, memory, other vendors' resources: not ours
        value = parse_quantity((limits if where == "limits" else requests)[name], fld)
        if name in limits and name in requests:
            other = parse_quantity(requests[name], f'{prefix}.resources.requests["{name}"]')
            if other != value:
                raise InputError(f'{prefix}.resources.requests["{name}"]', requests[name],
                                 f"differs from the limit {value} (extended resources need them equal)")
        if value < 0:
            raise InputError(fld, (limits if where == "limits" else requests)[name], "must not be negative")
        vendor, fam = index.by_name[name]
        role = next(r for r in ("count", "memory", "memory_percent", "cores", "priority")
                    if getattr(fam, r) == name)
        amounts = out.setdefault((vendor.name, fam.common_word), _Amounts())
        amounts.values[role] = value
        amounts.fields[role] = fld
        raw = (limits if where == "limits" else requests)[name]
        if isinstance(raw, str) and raw.strip() and not is_digits(raw.strip()[-1]):
            amounts.suffixed.add(role)
    return out


def family_attributes(fam: ResourceFamily, anns: dict[str, str]) -> list[RequestAttribute]:
    """The family's vendor pod annotations (``ResourceFamily.pod_annotations``) as request attributes."""
    out = []
    for rule in fam.pod_annotations:
        value = anns.get(rule.key, rule.default)
        if value is None:
            continue
        value = value.strip()
        if len(value) > 256:
            raise InputError(_ann_field(rule.key), value[:40] + "...", "is longer than 256 characters")
        if rule.allowed and any(v.strip() not in rule.allowed for v in value.split(",")):
            raise InputError(_ann_field(rule.key), value, f"must be one of {', '.join(rule.allowed)}")
        out.append(RequestAttribute(attribute=rule.attribute, value=value, match=rule.match, reason=rule.reason))
    return out


def _build_request(vendor: VendorInfo, fam: ResourceFamily, am: _Amounts, sel: _Selectors,
                   policy: DevicePolicy, attributes: list[RequestAttribute] | None = None,
                   ) -> tuple[ResourceRequest, RequestFields] | None:
    v, f = am.values, am.fields
    count = v.get("count")
    shaping = [r for r in ("memory", "memory_percent", "cores") if r in v]
    if count == 0:
        if shaping:
            raise InputError(f["count"], 0, f"is 0 while {f[shaping[0]]} asks for a share")
        return None
    if count is None:
        if not shaping:
            return None  # only a priority: nothing to place
        count = fam.default_count
        count_field = f[shaping[0]]
    else:
        count_field = f["count"]
    if count > INT32_MAX:
        raise InputError(count_field, count, "is too large")

    memory = v.get("memory")
    if memory is not None and fam.memory_suffix_means_bytes and "memory" in am.suffixed:
        memory = -(-memory // (1024 * 1024))  # a quantity with a unit is bytes: round up to MiB
    elif memory is not None:
        memory *= fam.memory_unit_mib
        if memory > INT32_MAX:
            raise InputError(f["memory"], v["memory"], _memory_unit_reason(fam))
        if memory == 0:
            memory = None  # HAMi: 0 means unset
    percent = v.get("memory_percent")
    if percent is not None:
        if percent in (0, PERCENT_UNSET):
            percent = None
        elif percent > 100:
            raise InputError(f["memory_percent"], v["memory_percent"], "must be between 0 and 100")
    if memory is None and percent is None:
        if fam.default_memory_mib:
            memory = fam.default_memory_mib
        else:
            percent = 100
    cores = v.get("cores")
    if cores is not None and cores > 100:
        if fam.cores_above_100 != "clamp":
            raise InputError(f["cores"], cores, "must be between 0 and 100")
        cores = 100
    if cores is None:
        exclusive_mem = (memory is None and percent == 100)
        cores = 100 if (fam.full_memory_means_full_cores and exclusive_mem) else fam.default_cores
    priority = v.get("priority")
    if priority is not None and priority not in (0, 1):
        raise InputError(f["priority"], priority, "must be 0 (high) or 1 (low)")
    if fam.whole_device:
        memory, percent, cores = None, 100, 100
    try:
        req = ResourceRequest(
            vendor=vendor.name, common_word=fam.common_word, count=count,
            memory_mib=memory, memory_percent=percent,
            compute_percent=cores, whole_device=fam.whole_device,
            type_include=sel.type_include, type_exclude=sel.type_exclude,
            uuid_include=sel.uuid_include, uuid_exclude=sel.uuid_exclude,
            modes=sel.modes, mode_reason=family_selectors(vendor, fam).mode_reason, policy=policy,
            numa_bind=sel.numa_bind,
            priority=priority, device_sets=fam.device_sets, attributes=attributes or [],
        )
    except ValidationError as err:  # pragma: no cover - every rule above is checked first
        raise InputError(count_field, count, f"is not a valid request ({err.errors()[0]['msg']})") from None
    fields = RequestFields(
        count=count_field, memory=f.get("memory"), memory_percent=f.get("memory_percent"),
        cores=f.get("cores"), type_selector=sel.type_field, uuid_selector=sel.uuid_field,
        mode_selector=sel.mode_field,
    )
    return req, fields


def _containers(spec: dict) -> list[tuple[str, dict, bool]]:
    out: list[tuple[str, dict, bool]] = []
    for key, init in (("initContainers", True), ("containers", False)):
        items = spec.get(key)
        if items is None:
            if not init:
                raise InputError("spec.containers", None, "is required")
            continue
        if not isinstance(items, list) or (not init and not items):
            raise InputError(f"spec.{key}", items, "must be a non-empty list")
        for i, ctr in enumerate(items):
            prefix = f"spec.{key}[{i}]"
            if not isinstance(ctr, dict):
                raise InputError(prefix, ctr, "must be a mapping")
            if not isinstance(ctr.get("name"), str) or not ctr["name"]:
                raise InputError(f"{prefix}.name", ctr.get("name"), "is required")
            out.append((prefix, ctr, init))
    return out


#: A vendor's admission of one request (``Hal.admit_request``): returns the request to place, or raises.
Admit = Callable[[ResourceRequest, dict[str, str]], ResourceRequest]


def _admitted(admit: Admit, req: ResourceRequest, anns: dict[str, str], field_name: str) -> ResourceRequest:
    """Run the vendor's admission; a non-input error becomes one line naming the request's field."""
    try:
        out = admit(req, anns)
    except InputError:
        raise
    except HalError as err:
        raise InputError(field_name, req.count, str(err)) from None
    if out.vendor != req.vendor or out.common_word != req.common_word:
        raise InputError(field_name, req.count, f"admission changed the request's family to {out.common_word!r}")
    return out


def parse_pod_detailed(pod: dict, vendors: list[VendorInfo], admit: Admit | None = None) -> ParsedPod:
    """Parse a Pod document; the result also maps every request to the fields it came from."""
    if not isinstance(pod, dict):
        raise InputError("pod", pod, "must be a mapping")
    kind = pod.get("kind", "Pod")
    if kind != "Pod":
        raise InputError("kind", kind, "is not supported (expected Pod)")
    meta = _mapping(pod.get("metadata"), "metadata")
    name = meta.get("name") or meta.get("generateName")
    if not isinstance(name, str) or not name:
        raise InputError("metadata.name", meta.get("name"), "is required")
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise InputError("metadata.namespace", namespace, "must be a string")
    anns = _annotations(meta)
    policy = _device_policy(anns)
    node_policy = _node_policy(anns)
    _check_scoring_weights(anns)
    spec = _mapping(pod.get("spec"), "spec")
    index = _ResourceIndex(vendors)
    selectors: dict[tuple[str, str], _Selectors] = {}  # per family, read only for families in use
    families = {(v.name, fam.common_word): (v, fam) for v in vendors for fam in v.resources}
    attributes: dict[tuple[str, str], list[RequestAttribute]] = {}  # read only for families in use

    parsed = ParsedPod(request=PodRequest(name=name, namespace=namespace, uid=meta.get("uid"),
                                          node_policy=node_policy, annotations=dict(anns)))
    for pos, (prefix, ctr, init) in enumerate(_containers(spec)):
        res = _mapping(ctr.get("resources"), f"{prefix}.resources")
        amounts = _container_amounts(res, prefix, index, parsed.ignored)
        creq = ContainerRequest(name=ctr["name"], index=pos, init=init)
        for key, am in amounts.items():
            vendor, fam = families[key]
            if key not in attributes:
                attributes[key] = family_attributes(fam, anns)
            if key not in selectors:
                selectors[key] = _selectors(family_selectors(vendor, fam), anns)
            built = _build_request(vendor, fam, am, selectors[key], policy, attributes[key])
            if built is None:
                continue
            req, flds = built
            if admit is not None:
                req = _admitted(admit, req, anns, flds.count)
            parsed.fields[(pos, len(creq.requests))] = flds
            creq.requests.append(req)
        parsed.request.containers.append(creq)
    parsed.warnings += _memory_twice(parsed)
    return parsed


def admit_parsed(parsed: ParsedPod, admit: Admit) -> list[tuple[RequestFields, ResourceRequest, ResourceRequest]]:
    """The vendors' admission over a pod already parsed without it: (fields, asked, admitted) per request, in the
    parser's order, with the same rule and the same errors as ``parse_pod_detailed(pod, vendors, admit)`` gives a pod
    that parses. Why: the webhook parses a pod once, checks it, then admits it, instead of parsing it twice."""
    anns = parsed.request.annotations
    return [(flds, req, _admitted(admit, req, anns, flds.count))
            for (pos, j), flds in parsed.fields.items()
            for req in (parsed.request.containers[pos].requests[j],)]


def parse_pod(pod: dict, vendors: list[VendorInfo], admit: Admit | None = None) -> PodRequest:
    """Turn a Pod document into per-container, vendor-neutral requests (raises InputError).

    ``admit`` (e.g. ``Hal.admit_request``) lets each vendor's ``hami_hal_admit_request`` adjust or refuse
    its requests, as HAMi's per-vendor ``MutateAdmission`` does.
    """
    return parse_pod_detailed(pod, vendors, admit).request
