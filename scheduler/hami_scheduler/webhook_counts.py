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
"""

from __future__ import annotations

from hami_hal.errors import HalError
from hami_hal.models import VendorInfo
from hami_hal.requests.parser import Admit, ParsedPod, admit_parsed

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
