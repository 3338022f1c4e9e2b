"""A vectorised summary of every node's devices: the filter's prefilter, never its judge.

For each request the index computes *necessary* conditions per device (health, cordon, vendor,
type selectors, free slot, free memory, free compute, exclusivity) with numpy over all nodes at
once. Nodes that fail them are rejected with HAMi-style reason counts; the survivors are ranked
and the hami-hal engine's exact ``fit_pod`` decides, best-ranked first. Rows are refreshed lazily
for the nodes whose usage changed.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from hami_hal.engine import NodeState
from hami_hal.models import DevicePolicy, FitReason, PartitionKind, PodRequest, ResourceRequest

_REASON_ORDER = (
    FitReason.CARD_NOT_HEALTH,
    FitReason.CARD_TYPE_MISMATCH,
    FitReason.CARD_TIME_SLICING_EXHAUSTED,
    FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT,
    FitReason.CARD_INSUFFICIENT_MEMORY,
    FitReason.CARD_INSUFFICIENT_CORE,
    FitReason.CARD_COMPUTE_UNITS_EXHAUSTED,
)


class NodeIndex:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.pos: dict[str, int] = {}
        self.states: list[NodeState | None] = []
        self.dirty: set[int] = set()
        self.width = 0
        #: bumps whenever a node is added, replaced or removed (callers cache row lookups on it)
        self.generation = 0
        self._alloc(0, 1)
        self._type_cache: dict[tuple, np.ndarray] = {}
        #: some device rounds memory to a granularity > 1 MiB (otherwise rounding is skipped)
        self._coarse = False
        self._vendor_ids: dict[str, int] = {}

    def _alloc(self, n: int, d: int) -> None:
        z = lambda dt=np.int64: np.zeros((n, d), dtype=dt)  # noqa: E731
        self.valid, self.ok = z(bool), z(bool)
        self.vendor = z(np.int32)
        self.simple = np.zeros(n, dtype=bool)
        self.slots_left, self.used_slots, self.excl = z(), z(), z(bool)
        self.free_mem, self.total_mem, self.gran = z(), z(), z()
        self.free_core, self.total_core, self.used_core = z(), z(), z()
        self.score = np.zeros(n)
        self.width = d

    def _grow(self, n: int, d: int) -> None:
        old = {k: getattr(self, k) for k in ("valid", "ok", "vendor", "slots_left", "used_slots", "excl", "free_mem",
                                             "total_mem", "gran", "free_core", "total_core", "used_core")}
        old_simple, old_score = self.simple, self.score
        self._alloc(n, max(d, self.width))
        for k, arr in old.items():
            getattr(self, k)[: arr.shape[0], : arr.shape[1]] = arr
        self.simple[: old_simple.shape[0]] = old_simple
        self.score[: old_score.shape[0]] = old_score

    # -- maintenance -------------------------------------------------------------------------

    def set_node(self, name: str, state: NodeState | None) -> None:
        i = self.pos.get(name)
        if i is None:
            if state is None:
                return
            i = len(self.names)
            self.names.append(name)
            self.pos[name] = i
            self.states.append(state)
            self._grow(i + 1, len(state.devices))
        elif state is not None and len(state.devices) > self.width:
            self._grow(len(self.names), len(state.devices))
        self.states[i] = state
        self._type_cache.clear()
        self.generation += 1
        self.dirty.add(i)

    def touch(self, name: str) -> None:
        i = self.pos.get(name)
        if i is not None:
            self.dirty.add(i)

    def _vid(self, vendor: str) -> int:
        return self._vendor_ids.setdefault(vendor, len(self._vendor_ids) + 1)

    def refresh(self) -> None:
        for i in self.dirty:
            st = self.states[i]
            self.valid[i] = False
            self.ok[i] = False
            if st is None:
                self.simple[i] = True
                self.score[i] = 0
                continue
            simple = True
            for j, ds in enumerate(st.devices.values()):
                part = ds.part
                simple &= part.kind is PartitionKind.SHARES
                self.valid[i, j] = True
                self.ok[i, j] = ds.device.healthy and ds.device.uuid not in st.cordoned
                self.vendor[i, j] = self._vid(ds.device.vendor)
                self.slots_left[i, j] = part.max_slots - ds.used_slots
                self.used_slots[i, j] = ds.used_slots
                self.excl[i, j] = ds.exclusive
                self.free_mem[i, j] = part.memory_mib - ds.used_memory_mib
                self.total_mem[i, j] = part.memory_mib
                self.gran[i, j] = part.memory_granularity_mib
                self._coarse = self._coarse or part.memory_granularity_mib > 1
                self.free_core[i, j] = part.compute_percent - ds.used_compute_percent
                self.total_core[i, j] = part.compute_percent
                self.used_core[i, j] = ds.used_compute_percent
            self.simple[i] = simple
            self.score[i] = st.score()
        self.dirty.clear()

    # -- queries -----------------------------------------------------------------------------

    def _type_mask(self, req: ResourceRequest) -> np.ndarray | None:
        if not req.type_include and not req.type_exclude:
            return None
        key = (tuple(req.type_include), tuple(req.type_exclude))
        mask = self._type_cache.get(key)
        if mask is None:
            mask = np.zeros_like(self.valid)
            for i, st in enumerate(self.states):
                for j, ds in enumerate(st.devices.values() if st else ()):
                    vals = (ds.device.hami_type.lower(), ds.device.model.lower())
                    inc = not req.type_include or any(p.lower() in v for p in req.type_include for v in vals)
                    exc = bool(req.type_exclude) and any(p.lower() in v for p in req.type_exclude for v in vals)
                    mask[i, j] = inc and not exc
            self._type_cache[key] = mask
        return mask

    def _request_checks(self, req: ResourceRequest, rows: np.ndarray) -> list[tuple[FitReason, np.ndarray]]:
        """Per-device pass masks, in HAMi's check order, for the given node rows."""
        vid = self._vendor_ids.get(req.vendor, -1)
        if len(self._vendor_ids) == 1 and vid == 1:
            valid = self.valid[rows]  # one vendor in the cluster: no per-device vendor test
        else:
            valid = self.valid[rows] & (self.vendor[rows] == vid)
        checks = [(FitReason.CARD_NOT_HEALTH, self.ok[rows])]
        tmask = self._type_mask(req)
        if tmask is not None:
            checks.append((FitReason.CARD_TYPE_MISMATCH, tmask[rows]))
        checks.append((FitReason.CARD_TIME_SLICING_EXHAUSTED, self.slots_left[rows] > 0))
        used = self.used_slots[rows]
        free_excl = ~self.excl[rows]
        if req.policy is DevicePolicy.MUTEX:
            free_excl &= used == 0
        checks.append((FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT, free_excl))
        total = self.total_mem[rows]
        if req.whole_device:
            need = total
            checks.append((FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT, used == 0))
            checks.append((FitReason.CARD_INSUFFICIENT_MEMORY, need <= total))
        else:
            if req.memory_mib:
                need = np.full_like(total, req.memory_mib)
            else:
                pct = 100 if req.memory_percent is None else req.memory_percent
                need = total * pct // 100
            if self._coarse:
                gran = np.maximum(self.gran[rows], 1)
                need = -(-need // gran) * gran
            cores = min(req.compute_percent, 100)
            checks.append((FitReason.CARD_INSUFFICIENT_MEMORY, self.free_mem[rows] >= need))
            checks.append((FitReason.CARD_INSUFFICIENT_CORE, self.free_core[rows] >= cores))
            if cores >= 100:
                checks.append((FitReason.EXCLUSIVE_DEVICE_ALLOCATE_CONFLICT, used == 0))
            if cores == 0:
                checks.append((FitReason.CARD_COMPUTE_UNITS_EXHAUSTED,
                               (self.total_core[rows] == 0) | (self.used_core[rows] < self.total_core[rows])))
        return checks + [(FitReason.NODE_INSUFFICIENT_DEVICE, valid)]

    def prefilter(self, pod: PodRequest, rows: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
        """(candidate mask over ``rows``, {row: reason} for rows that certainly cannot fit)."""
        self.refresh()
        if len(rows) == len(self.names) and rows[0] == 0 and rows[-1] == len(rows) - 1 and \
                np.array_equal(rows, np.arange(len(rows))):
            rows = slice(None)  # every node, in order: views instead of fancy-index copies
            n = len(self.names)
        else:
            n = len(rows)
        cand = np.ones(n, dtype=bool)
        simple = self.simple[rows]
        reasons: dict[int, str] = {}
        for ctr in pod.containers:
            for req in ctr.requests:
                if req.uuid_include or req.uuid_exclude or req.modes:
                    continue  # the engine checks these; keep every node a candidate
                checks = self._request_checks(req, rows)
                passing = checks[-1][1].copy()
                for _, m in checks[:-1]:
                    passing &= m
                enough = passing.sum(axis=1) >= req.count
                bad = ~enough & simple & cand
                cand &= enough | ~simple
                ks = np.flatnonzero(bad)
                if len(ks):
                    self._reasons(ctr.name, req, checks, ks, rows, reasons)
        return cand, reasons

    def _reasons(self, ctr: str, req: ResourceRequest, checks, ks: np.ndarray, rows, out: dict[int, str]) -> None:
        """HAMi reason text for the rejected nodes ``ks``: each device counts under its first failed check."""
        valid = checks[-1][1][ks]
        first = np.full(valid.shape, len(checks) - 1)  # index of the first failed check; last = passed
        for c in range(len(checks) - 2, -1, -1):
            first = np.where(~checks[c][1][ks], c, first)
        first = np.where(valid, first, -1)
        names = [r.value for r, _ in checks[:-1]]
        texts: dict[bytes, str] = {}  # many rejected nodes look alike: format each pattern once
        for n, k in enumerate(ks):
            row = int(k) if isinstance(rows, slice) else int(rows[k])
            pattern = first[n].tobytes()
            text = texts.get(pattern)
            if text is None:
                text = texts[pattern] = self._reason_text(ctr, req, first[n], names, len(checks) - 1)
            out[row] = text

    @staticmethod
    def _reason_text(ctr: str, req: ResourceRequest, first: np.ndarray, names: list[str], passed: int) -> str:
        total = int((first >= 0).sum())
        if total < req.count:
            return (f"container {ctr}: {FitReason.NODE_INSUFFICIENT_DEVICE.value}: {req.vendor} needs "
                    f"{req.count} devices, node has {total}")
        counts: Counter[str] = Counter()
        fit = 0
        for c in first:
            if c < 0:
                continue
            if c == passed:
                fit += 1
            else:
                counts[names[c]] += 1
        text = ", ".join(f"{m}/{total} {r}" for r, m in sorted(counts.items()))
        return (f"container {ctr}: {FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST.value}: {req.vendor} "
                f"needs {req.count} devices, {fit} fit ({text})")
