"""Bounds every decoded HAMi value must respect, so no annotation can carry a huge or negative number
into the engine (HAMi itself stores memory and cores as int32)."""

from __future__ import annotations

#: Longest annotation value read at all (Kubernetes caps all annotations of an object at 256 KiB).
MAX_VALUE_CHARS = 256 * 1024
#: Devices in one node register annotation (HAMi nodes carry at most 16 of one family).
MAX_REGISTER_DEVICES = 64
#: Devices in one hami-hal inventory annotation (every family of a node together; the register path allows
#: 64 per family key). Every node's row in the scheduler's index is as wide as the widest node.
MAX_INVENTORY_DEVICES = 256
#: Templates of one partition model (hardware instance profiles, virtual templates, slice sizes).
MAX_TEMPLATES = 64
#: Compute units of one device (SMs, AI cores, slices), and the node budget a template draws from.
MAX_UNITS = 1 << 20
#: Devices in one container's allocation.
MAX_DEVICES = 1024
#: Containers of one pod (init + app) in an allocation string.
MAX_CONTAINERS = 256
#: Memory of one device or one slice, MiB (HAMi: int32).
MAX_MEMORY_MIB = 2**31 - 1
#: ``devcore`` of one device: 100 × core scaling; HAMi's scaling stays far below 100×.
MAX_DEVCORE = 10_000
#: Concurrent tasks per device (HAMi ``count`` / deviceSplitCount).
MAX_SPLIT_COUNT = 1024
#: Device index and NUMA node.
MAX_INDEX = 4096
#: Ids, types, modes, namespaces and names.
MAX_STRING = 256
