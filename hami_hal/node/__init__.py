"""``hami node``: the vendor-neutral node agent.

It serves the kubelet device plugin API v1beta1 (one server per resource family), registers the node's
devices in HAMi's node annotations, turns a bound pod's HAMi allocation into container edits at
``Allocate``, keeps each container's shared-state folder, and exports HAMi's node-monitor metrics. It
drives whatever vendor plugins are installed, through the hooks only. Needs ``hami-hal[node]`` (grpcio).
"""
