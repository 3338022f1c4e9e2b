"""A request no device of the node could ever hold is bad input: one line naming the field."""

from __future__ import annotations

import pytest

from hami_hal.errors import InputError
from hami_hal.requests import check_satisfiable, parse_pod_detailed


def _pod(limits: dict, annotations: dict | None = None) -> dict:
    return {"metadata": {"name": "p", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": limits}}]}}


def _check(limits, inv, vendor, annotations=None):
    return check_satisfiable(parse_pod_detailed(_pod(limits, annotations), [vendor]), inv.devices)


def test_satisfiable_requests_pass(inv, acme_vendor):
    """Feasible requests come back with the engine's placement on the empty node, the proof they fit."""
    (four,) = _check({"acme.example/xpu": 4, "acme.example/xpu-mem": 8000}, inv, acme_vendor)
    assert len({s.uuid for s in four.slices()}) == 4 and all(s.memory_mib >= 8000 for s in four.slices())
    (big,) = _check({"acme.example/xpu": 1, "acme.example/xpu-mem": 30000, "acme.example/xpu-cores": 100}, inv,
                    acme_vendor)
    (sl,) = big.slices()
    assert sl.memory_mib >= 30000 and sl.compute_percent == 100
    (cards,) = _check({"acme.example/card": 4}, inv, acme_vendor)
    assert sorted(s.device_index for s in cards.slices()) == [0, 1, 2, 3] and all(s.exclusive for s in cards.slices())


def test_engine_rules_make_a_request_infeasible(inv, acme_vendor):
    """Rules only the engine knows (device sets) also count: the whole request runs on the empty node."""
    with pytest.raises(InputError) as exc:
        _check({"acme.example/card": 3}, inv, acme_vendor)
    assert exc.value.field.endswith('["acme.example/card"]') and "allows 1, 2, 4" in str(exc.value)


@pytest.mark.parametrize(("limits", "annotations", "field", "why"), [
    ({"acme.example/xpu": 5}, None, 'limits["acme.example/xpu"]', "more distinct acme devices than the 4"),
    ({"acme.example/xpu": 1, "acme.example/xpu-mem": 40000}, None, 'limits["acme.example/xpu-mem"]',
     "largest: 32768 MiB"),
    ({"acme.example/xpu": 3, "acme.example/xpu-mem": 20000}, None, 'limits["acme.example/xpu-mem"]',
     "more memory per device"),
    ({"acme.example/xpu": 1}, {"acme.example/use-xputype": "Z900"}, 'annotations["acme.example/use-xputype"]',
     "matches no device type"),
    ({"acme.example/xpu": 1}, {"acme.example/use-xpuuuid": "ACME-nope"}, 'annotations["acme.example/use-xpuuuid"]',
     "matches no device uuid"),
    ({"acme.example/xpu": 3}, {"acme.example/use-xputype": "T200"}, 'limits["acme.example/xpu"]',
     "than the 2 that match"),
    ({"acme.example/xpu": 1}, {"acme.example/xpu-mode": "mig"}, 'annotations["acme.example/xpu-mode"]',
     "matches no device mode"),
])
def test_never_satisfiable(inv, acme_vendor, limits, annotations, field, why):
    with pytest.raises(InputError) as exc:
        _check(limits, inv, acme_vendor, annotations)
    assert field in exc.value.field and why in str(exc.value)


def test_no_device_of_the_vendor(acme_vendor):
    parsed = parse_pod_detailed(_pod({"acme.example/xpu": 1}), [acme_vendor])
    with pytest.raises(InputError, match="this node has none"):
        check_satisfiable(parsed, [])


def test_template_devices_refuse_compute_beyond_every_template(inv, acme_vendor):
    from hami_hal.models import PartitionKind, PartitionModel, PartitionTemplate

    small = PartitionModel(kind=PartitionKind.TEMPLATES, memory_mib=16384, max_slots=2,
                           templates=[PartitionTemplate(name="q", memory_mib=8192, compute_percent=25)])
    dev = inv.devices[0].model_copy(update={"partition": small})
    ok = parse_pod_detailed(_pod({"acme.example/xpu": 1, "acme.example/xpu-mem": 4000,
                                  "acme.example/xpu-cores": 25}), [acme_vendor])
    check_satisfiable(ok, [dev])
    bad = parse_pod_detailed(_pod({"acme.example/xpu": 1, "acme.example/xpu-mem": 4000,
                                   "acme.example/xpu-cores": 50}), [acme_vendor])
    with pytest.raises(InputError) as exc:
        check_satisfiable(bad, [dev])
    assert exc.value.field.endswith('["acme.example/xpu-cores"]') and exc.value.value == 50
