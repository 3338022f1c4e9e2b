"""The webhook writes a count the vendor's admission raised back into the pod (HAMi's ``MutateAdmission``).

Why: the kubelet asks the device plugin for as many devices as the container's *limit* says, and the node agent
checks the scheduler's assignment against that number. When a vendor's admission raises a count (an Ascend 910C
``superPod`` whole-card request of 1 becomes a module pair of 2, :mod:`hami_plugins_ascend.rules`) and only the
scheduler knows, the kubelet asks for 1 while the assignment holds 2 and Allocate is refused. HAMi's webhook
rewrites the container's limit (and request, where given) to the raised count; so does this one.

The patch is bounded: only the count resource of a family whose admission raised it, only in the containers that
asked, one ``replace`` per field that names it, and the new count at most ``MAX_RAISE`` times the asked one (HAMi's
only raise is 1 -> 2). A lower count, or a higher one, is a plugin's mistake: the pod is denied with one line
naming the field, nothing is patched. A refusal by the vendor's admission (HAMi's webhook refuses a 910C odd count)
denies the pod with the admission's line.

The scheduler holds the other end (:func:`unwritten_count`): at Filter a pod that went through the webhook already
carries the raised count, so the admission changes no count there. A pod whose count it still changes skipped the
webhook (the opt-out label ``hami.io/webhook=ignore``, or the webhook down under ``failurePolicy: Ignore``): the
kubelet will ask for the count the pod says, an assignment of the admitted count is refused at Allocate, so no node
can take the pod. Why the count goes up is the vendor's data (a family whose whole devices go in multiples of 2,
``PartitionModel.whole_count_multiple``); this module knows no vendor.
"""

from __future__ import annotations

from hami_hal.engine.node_state import pod_reason
from hami_hal.errors import HalError
from hami_hal.models import ResourceFamily, ResourceRequest, VendorInfo
from hami_hal.requests.parser import Admit, ParsedPod, RequestFields, admit_parsed

#: What a pod that lacks an admitted count skipped, and what its owner can do.
SKIPPED = ("this pod skipped admission (the opt-out label hami.io/webhook=ignore, or the webhook was unavailable): "
           "recreate it through the webhook, or ask for {count}")

#: An admission may at most double a count (HAMi's only raise: a 910C die to its module pair, 1 -> 2).
MAX_RAISE = 2


def _pointer(name: str) -> str:
    """RFC 6901: a resource name's ``/`` (``huawei.com/Ascend910C``) is ``~1`` in a JSON Pointer."""
    return name.replace("~", "~0").replace("/", "~1")


def _slots(spec: dict) -> list[tuple[str, int]]:
    """(key, index) of every container in the parser's order: init containers, then containers."""
    return [(key, i) for key in ("initContainers", "containers") for i in range(len(spec.get(key) or []))]


def raise_counts(parsed: ParsedPod, spec: dict, vendors: list[VendorInfo], admit: Admit,
                 ops: list[dict]) -> str | None:
    """Run ``admit`` over ``parsed`` (the webhook's one parse of ``spec``, its working copy), apply the counts it
    raised to ``spec`` and append their ``replace`` operations to ``ops``; returns a one-line denial, or None."""
    try:
        admitted = admit_parsed(parsed, admit)
    except HalError as exc:
        return str(exc).splitlines()[0]
    counts = {(v.name, f.common_word): f.count for v in vendors for f in v.resources}
    slots = _slots(spec)
    for (pos, _), (fields, before, after) in zip(parsed.fields, admitted, strict=True):
        if after.count == before.count:
            continue
        if not before.count < after.count <= before.count * MAX_RAISE:
            return (f"{fields.count}: {before.count} was changed to {after.count} by the {after.vendor} plugin's "
                    f"admission; only a raise up to {MAX_RAISE}x is written back (the pod was not changed)")
        key, i = slots[pos]
        res = spec[key][i].get("resources") or {}
        name = counts[(after.vendor, after.common_word)]
        for part in ("limits", "requests"):
            amounts = res.get(part)
            if isinstance(amounts, dict) and name in amounts:
                amounts[name] = str(after.count)
                ops.append({"op": "replace", "path": f"/spec/{key}/{i}/resources/{part}/{_pointer(name)}",
                            "value": str(after.count)})
    return None


def unwritten_count(parsed: ParsedPod, admitted: list[tuple[RequestFields, ResourceRequest, ResourceRequest]],
                    vendors: list[VendorInfo]) -> tuple[str, str] | None:
    """At Filter: why no node can take a pod whose count the admission changes (``admitted`` from
    :func:`admit_parsed` over ``parsed``), i.e. a pod that skipped the webhook, as (the short line kube-scheduler
    shows for every node, the full line with what to do); None when every count stands."""
    families = {(v.name, f.common_word): f for v in vendors for f in v.resources}
    for (pos, _), (_, before, after) in zip(parsed.fields, admitted, strict=True):
        if after.count == before.count:
            continue
        fam = families[(after.vendor, after.common_word)]
        brief, why = _changed(fam, before, after.count)
        ctr = parsed.request.containers[pos].name
        return (pod_reason(ctr, f"{fam.count}: {before.count} skipped admission, which {brief}"),
                pod_reason(ctr, f"{fam.count}: {before.count} {why}; {SKIPPED.format(count=after.count)}"))
    return None


def _changed(fam: ResourceFamily, before: ResourceRequest, count: int) -> tuple[str, str]:
    """Why the admission changed ``before.count`` to ``count``, from the family's data where it says: (in a few
    words, in full)."""
    multiple = fam.register_partition.whole_count_multiple if fam.register_partition else 1
    whole = before.takes_whole_devices or (not before.memory_mib and before.memory_percent in (None, 100))
    if whole and multiple > 1 and before.count % multiple and not count % multiple:
        return (f"raises it to {count} (whole devices go in multiples of {multiple})",
                f"whole device(s), but {fam.common_word} whole devices go in multiples of {multiple}: the admission "
                f"webhook raises the count to {count} and writes it into the pod")
    verb = "raises" if count > before.count else "changes"
    return (f"{verb} it to {count}",
            f"device(s), but the admission webhook {verb} the count to {count} and writes it into the pod")
