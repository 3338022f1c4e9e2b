"""Property tests: random request/release sequences never over-commit and never leak."""

from __future__ import annotations

from engine_fixtures import device, mig_like, pod, req, shares, slices_like, whole
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hami_hal.engine import NodeState
from hami_hal.errors import AllocationError
from hami_hal.models import DevicePolicy

PARTS = {"shares": lambda: shares(16384, 4), "whole": whole, "mig": mig_like, "slices": slices_like}

requests = st.builds(
    lambda count, mem, cores, pct, policy: req(
        count, None if pct else mem, cores, memory_percent=pct, policy=policy
    ),
    st.integers(1, 3),
    st.integers(0, 100_000),
    st.integers(0, 100),
    st.one_of(st.none(), st.integers(1, 100)),
    st.sampled_from([DevicePolicy.SPREAD, DevicePolicy.BINPACK, DevicePolicy.MUTEX]),
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.lists(st.lists(requests, min_size=1, max_size=2), min_size=1, max_size=2),
                  st.booleans()),
        st.tuples(st.just("release"), st.integers(0, 50), st.just(False)),
    ),
    min_size=1,
    max_size=40,
)


def check_invariants(n: NodeState) -> None:
    for st_ in n.devices.values():
        assert st_.overcommitted() is None, st_.overcommitted()
    # usage equals the sum of what the held pods contributed: nothing lost, nothing invented
    fresh = n.empty_copy()
    for alloc in n.held():
        fresh.commit(alloc)
    assert [u.model_dump() for u in fresh.usages()] == [u.model_dump() for u in n.usages()]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(sorted(PARTS)), min_size=1, max_size=4), ops=ops)
def test_random_sequences_never_overcommit_or_leak(kinds, ops):
    n = NodeState("n", [device(i, PARTS[k]()) for i, k in enumerate(kinds)])
    live = []
    for i, (op, arg, with_init) in enumerate(ops):
        if op == "alloc":
            containers = arg[1:] if with_init else arg
            p = pod(f"p{i}", *containers, init=tuple(arg[:1]) if with_init else ())
            before = [u.model_dump() for u in n.usages()]
            fit = n.fit_pod(p)
            if fit.ok:
                n.commit(fit.allocation)  # what fit proposes must always pass commit's re-validation
                live.append(fit.allocation)
            else:
                assert fit.reason
                assert [u.model_dump() for u in n.usages()] == before  # a refusal changes nothing
        elif live:
            n.release(live.pop(arg % len(live)))
        check_invariants(n)
    for alloc in live:
        n.release(alloc)
    assert all(u.used_slots == 0 and u.used_memory_mib == 0 and u.used_compute_percent == 0
               and not u.instances and not u.exclusive for u in n.usages())


@settings(max_examples=60, deadline=None)
@given(reqs=st.lists(requests, min_size=1, max_size=12))
def test_every_granted_slice_respects_its_request(reqs):
    n = NodeState("n", [device(i, shares(16384, 4)) for i in range(3)])
    for i, r in enumerate(reqs):
        try:
            alloc = n.allocate(pod(f"p{i}", [r]))
        except AllocationError:
            continue
        slices = alloc.slices()
        assert len({s.uuid for s in slices}) == r.count  # distinct devices
        for s in slices:
            assert s.memory_mib >= r.memory_for(16384) and s.compute_percent >= r.compute_percent
