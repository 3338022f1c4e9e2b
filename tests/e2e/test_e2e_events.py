"""A pod that cannot be placed carries an Event saying why (HAMi's FilteringFailed), readable with
``kubectl describe pod``; a placed pod carries FilteringSucceed and BindingSucceed."""

from __future__ import annotations

from k8s_stack import gpu_pod


def test_unplaceable_pod_gets_an_event_with_the_reason(stack, deadline):
    stack.add_nodes(2, gpus=2)
    _, port = stack.start_extender()
    stack.start_scheduler(port)
    stack.create(gpu_pod("too-big", gpus=1, mem=81920, cores=10))  # every device has 40960 MiB
    stack.create(gpu_pod("three-gpus", gpus=3, mem=1024, cores=10))  # every node has 2 devices
    stack.create(gpu_pod("fits", gpus=1, mem=1024, cores=10))

    def reasons(pod: str) -> dict[str, str]:
        return {e["reason"]: e["message"] for e in stack.events(pod) if e.get("source", {}).get("component")
                == "hami-scheduler"}

    big = deadline(lambda: reasons("too-big").get("FilteringFailed"), 30, "FilteringFailed on too-big")
    assert big.startswith("2 nodes ") and "CardInsufficientMemory" in big, big
    for node in stack.nodes:
        assert node in big
    three = deadline(lambda: reasons("three-gpus").get("FilteringFailed"), 30, "FilteringFailed on three-gpus")
    assert "2 nodes " in three and "nvidia needs 3 devices" in three, three
    ok = deadline(lambda: "BindingSucceed" in reasons("fits") and reasons("fits"), 30, "events of the placed pod")
    assert ok["FilteringSucceed"].startswith("find fit node(")
    # kube-scheduler's own event repeats the extender's reason for each node
    sched = deadline(lambda: [e["message"] for e in stack.events("too-big") if e["reason"] == "FailedScheduling"],
                     30, "kube-scheduler's FailedScheduling")
    assert "CardInsufficientMemory" in sched[0], sched
