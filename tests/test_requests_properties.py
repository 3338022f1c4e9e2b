"""Property tests: any pod the parser accepts is a valid request; anything else is one InputError line."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hami_hal.errors import InputError
from hami_hal.models import PodRequest
from hami_hal.requests import parse_pod

NAMES = ["acme.example/xpu", "acme.example/xpu-mem", "acme.example/xpu-mem-percentage", "acme.example/xpu-cores",
         "acme.example/xpu-priority", "acme.example/card", "acme.example/bogus", "cpu", "other.example/x"]
ANNOTATIONS = ["acme.example/use-xputype", "acme.example/nouse-xputype", "acme.example/use-xpuuuid",
               "acme.example/nouse-xpuuuid", "acme.example/numa-bind", "hami.io/gpu-scheduler-policy",
               "hami.io/node-scheduler-policy", "acme.example/xpu-mode"]

junk = st.one_of(
    st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none(),
    st.text(max_size=8), st.sampled_from(["1k", "2Gi", "500m", "1e3", "1.5", "-3", "x"]), st.lists(st.integers(), max_size=2),
)
small = st.integers(0, 200)
limits = st.dictionaries(st.sampled_from(NAMES), st.one_of(small, junk), max_size=5)
annotations = st.dictionaries(st.sampled_from(ANNOTATIONS), st.one_of(
    st.sampled_from(["X100", "T200", "x100,T200", "true", "false", "binpack", "spread,numa", "mutex", "ACME-1"]),
    st.text(max_size=6), st.integers()), max_size=4)


def _pod(ctrs: list[dict], anns: dict) -> dict:
    return {"kind": "Pod", "metadata": {"name": "p", "annotations": anns},
            "spec": {"containers": [{"name": f"c{i}", "resources": {"limits": lim}} for i, lim in enumerate(ctrs)]
                     or [{"name": "c"}]}}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ctrs=st.lists(limits, min_size=1, max_size=3), anns=annotations)
def test_parse_accepts_or_raises_one_line(acme_vendor, ctrs, anns):
    try:
        req = parse_pod(_pod(ctrs, anns), [acme_vendor])
    except InputError as err:
        msg = str(err)
        assert "\n" not in msg and err.field and msg.startswith(err.field)
        return
    assert isinstance(req, PodRequest)
    for ctr in req.containers:
        for r in ctr.requests:
            assert r.count >= 1 and 0 <= r.compute_percent <= 100
            assert r.memory_mib is None or r.memory_mib > 0
            assert r.memory_mib is not None or r.memory_percent is not None or r.whole_device
            assert not set(r.uuid_include) & set(r.uuid_exclude)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 8), mem=st.integers(1, 2**20), cores=st.integers(0, 100))
def test_valid_amounts_round_trip(acme_vendor, count, mem, cores):
    lim = {"acme.example/xpu": count, "acme.example/xpu-mem": mem, "acme.example/xpu-cores": str(cores)}
    (r,) = parse_pod(_pod([lim], {}), [acme_vendor]).containers[0].requests
    assert (r.count, r.memory_mib, r.compute_percent) == (count, mem, cores)
