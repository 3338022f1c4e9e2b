"""check_replay: an allocation read back from annotations is accepted only if it is exactly the engine's fit.

The annotation codec carries device, family, memory and cores; these tests build what it decodes (template and
placement are not on the wire) and hold it against the engine's fit of the request on those devices.
"""

from __future__ import annotations

import pytest
from engine_fixtures import device, mig_like, pod, req, shares, whole

from hami_hal.engine import NodeState, check_exact, check_replay
from hami_hal.errors import AllocationError, InputError
from hami_hal.models import PodAllocation


def node(*devs, **kw) -> NodeState:
    return NodeState("n1", devs, **kw)


def wire(alloc: PodAllocation, **changes) -> PodAllocation:
    """What the codec gives back for ``alloc``: template and placement dropped, ``changes`` applied to every slice."""
    out = alloc.model_copy(deep=True)
    for c in out.containers:
        c.slices = [s.model_copy(update={"template": None, "placement": None, **changes}) for s in c.slices]
    return out


@pytest.mark.parametrize("make", [
    lambda: (node(device(0, shares()), device(1, shares())), pod("a", [req(2, 4096, 30)])),
    lambda: (node(device(0, whole()), device(1, whole())), pod("a", [req(1, whole_device=True)])),
    lambda: (node(device(0, mig_like())), pod("a", [req(1, 15000)])),  # rounds to 2g.20gb: 19968 MiB, 28 %
    lambda: (node(device(0, shares()), device(1, shares())),
             pod("a", [req(1, 4096, 20)], init=([req(1, 8192, 50)],))),
])
def test_the_engines_own_allocation_replays(make):
    n, p = make()
    fit = n.fit_pod(p)
    assert fit.ok
    check_replay(n, p, wire(fit.allocation))
    n.commit(wire(fit.allocation))
    assert n.held()


def test_a_template_device_refuses_the_requested_memory_instead_of_the_templates():
    n = node(device(0, mig_like()))
    p = pod("a", [req(1, 15000)])
    fit = n.fit_pod(p)
    with pytest.raises(InputError, match="memory of ACME-acme-0.* 15000 but the request gets 19968 MiB"):
        check_replay(n, p, wire(fit.allocation, memory_mib=15000))


def test_a_whole_device_request_refuses_a_share():
    n = node(device(0, whole()), device(1, whole()))
    p = pod("a", [req(1, whole_device=True)])
    fit = n.fit_pod(p)
    with pytest.raises(InputError, match="memory of ACME-acme-.*: 1024 but the request gets 16384 MiB"):
        check_replay(n, p, wire(fit.allocation, memory_mib=1024))


def test_an_unhealthy_device_and_a_mismatched_init_container_are_refused():
    n = node(device(0, shares(), healthy=False), device(1, shares()))
    p = pod("a", [req(1, 4096, 20)])
    on0 = pod("a", [req(1, 4096, 20, uuid_include=["ACME-acme-0"])])
    alloc = wire(node(device(0, shares()), device(1, shares())).fit_pod(on0).allocation)
    with pytest.raises(InputError, match="is refused: .*CardNotHealth"):
        check_replay(n, p, alloc)
    q = pod("b", [req(1, 4096, 20)], init=([req(1, 8192, 50)],))
    healthy = node(device(0, shares()), device(1, shares()))
    fit = healthy.fit_pod(q).allocation
    swapped = fit.model_copy(update={"containers": list(reversed(
        [c.model_copy(update={"index": 1 - c.index}) for c in fit.containers]))})
    with pytest.raises(InputError, match="the request gets"):
        check_replay(healthy, q, swapped)


def test_no_room_now_is_an_allocation_error_and_changes_nothing():
    n = node(device(0, shares()))
    p = pod("a", [req(1, 20000, 60)])
    alloc = wire(n.fit_pod(p).allocation)
    n.allocate(pod("other", [req(1, 20000, 50)]))
    before = n.usages()
    with pytest.raises(AllocationError, match="would over-commit node n1"):
        check_replay(n, p, alloc)
    assert n.usages() == before


def test_check_exact_reads_no_usage_and_still_refuses_an_oversized_allocation():
    """The scheduler's cache asks only this of a pod not yet bound: room is its own commit, exactness is not."""
    n = node(device(0, shares()))
    p = pod("a", [req(1, 20000, 60)])
    alloc = wire(n.fit_pod(p).allocation)
    n.allocate(pod("other", [req(1, 20000, 50)]))  # no room now: check_replay refuses, check_exact does not
    before = n.usages()
    check_exact(n, p, alloc)
    with pytest.raises(InputError, match="cores of ACME-acme-0: 100 but the request gets 60 %"):
        check_exact(n, p, wire(n.empty_copy().fit_pod(p).allocation, compute_percent=100))
    assert n.usages() == before
