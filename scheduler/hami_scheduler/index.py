"""A vectorised summary of every node's devices: the filter's prefilter, never its judge.

For each request the index evaluates the engine's own checks (:mod:`hami_hal.engine.predicates`:
health, cordon, type selectors, then the slot, whole-device and share checks in the engine's order)
with numpy over all nodes at once. They are *necessary* conditions: a node is rejected only when
fewer devices pass than the request counts, with the reason text the engine would give; the
survivors are ranked and the engine's exact ``fit_pod`` decides, best-ranked first. Requests the
index cannot judge exactly (uuid or mode selectors, pod-annotation rules) reject no node. Rows are
refreshed lazily for the nodes whose usage changed.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from hami_hal.engine import NodeState
from hami_hal.engine.device_sets import count_refusal
from hami_hal.engine.node_state import pod_reason
from hami_hal.engine.predicates import (
    SHARE_CHECKS,
    SLOT_CHECKS,
    WHOLE_CHECKS,
    UsageView,
    memory_need,
    type_allowed,
)
from hami_hal.models import (
    AttributeMatch,
    DevicePolicy,
    FitReason,
    PartitionKind,
    PodRequest,
    ResourceRequest,
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
        self.valid, self.healthy, self.uncordoned, self.fullx = z(bool), z(bool), z(bool), z(bool)
        self.vendor = z(np.int32)
        self.simple = np.zeros(n, dtype=bool)
        self.slots_left, self.used_slots, self.excl = z(), z(), z(bool)
        self.free_mem, self.total_mem, self.gran = z(), z(), z()
        self.free_core, self.total_core, self.used_core = z(), z(), z()
        self.score = np.zeros(n)
        self.width = d

    def _grow(self, n: int, d: int) -> None:
        old = {k: getattr(self, k) for k in ("valid", "healthy", "uncordoned", "fullx", "vendor", "slots_left", "used_slots", "excl", "free_mem",
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
            self.healthy[i] = False
            self.uncordoned[i] = False
            if st is None:
                self.simple[i] = True
                self.score[i] = 0
                continue
            simple = True
            for j, ds in enumerate(st.devices.values()):
                part = ds.part
                simple &= part.kind is PartitionKind.SHARES
                self.valid[i, j] = True
                self.healthy[i, j] = ds.device.healthy
                self.uncordoned[i, j] = ds.device.uuid not in st.cordoned
                self.fullx[i, j] = part.exclusive_full_compute
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
                    mask[i, j] = type_allowed(req, ds.device.hami_type, ds.device.model)
            self._type_cache[key] = mask
        return mask

    def _family_mask(self, req: ResourceRequest) -> np.ndarray | None:
        """Devices that serve the request's family (``Device.family`` None = any); None when all do."""
        key = ("family", req.common_word)
        mask = self._type_cache.get(key)
        if mask is None:
            mask = np.ones_like(self.valid)
            for i, st in enumerate(self.states):
                for j, ds in enumerate(st.devices.values() if st else ()):
                    fam = ds.device.family
                    mask[i, j] = fam is None or fam == req.common_word
            self._type_cache[key] = mask
        return None if mask.all() else mask

    def _request_checks(self, req: ResourceRequest, rows: np.ndarray) -> list[tuple[FitReason, np.ndarray]]:
        """Per-device pass masks of the engine's checks, in the engine's order, for the given node rows."""
        vid = self._vendor_ids.get(req.vendor, -1)
        if len(self._vendor_ids) == 1 and vid == 1:
            valid = self.valid[rows]  # one vendor in the cluster: no per-device vendor test
        else:
            valid = self.valid[rows] & (self.vendor[rows] == vid)
        checks = [(FitReason.CARD_NOT_HEALTH, self.healthy[rows]), (FitReason.CARD_CORDONED, self.uncordoned[rows])]
        fmask = self._family_mask(req)
        if fmask is not None:
            checks.append((FitReason.CARD_TYPE_MISMATCH, fmask[rows]))
        tmask = self._type_mask(req)
        if tmask is not None:
            checks.append((FitReason.CARD_TYPE_MISMATCH, tmask[rows]))
        total = self.total_mem[rows]
        gran = np.maximum(self.gran[rows], 1) if self._coarse else 1
        view = UsageView(
            used_slots=self.used_slots[rows], max_slots=self.used_slots[rows] + self.slots_left[rows],
            held_exclusive=self.excl[rows], mutex=req.policy is DevicePolicy.MUTEX, free_mem=self.free_mem[rows],
            total_mem=total, need=memory_need(req, total, gran), free_core=self.free_core[rows],
            total_core=self.total_core[rows], used_core=self.used_core[rows], cores=min(req.compute_percent, 100),
            full_exclusive=self.fullx[rows],
        )
        steps = SLOT_CHECKS + (WHOLE_CHECKS if req.takes_whole_devices else SHARE_CHECKS)
        checks += [(reason, passes(view)) for reason, passes, _ in steps]
        return checks + [(FitReason.NODE_INSUFFICIENT_DEVICE, valid)]

    @staticmethod
    def exact(req: ResourceRequest) -> bool:
        """Whether the index applies every per-device check the engine applies to ``req``."""
        return not (req.uuid_include or req.uuid_exclude or req.modes
                    or any(a.match is not AttributeMatch.CARRY for a in req.attributes))

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
                never = count_refusal(req.device_sets, req.count)
                if never:  # the engine refuses this request on every node, with this text
                    text = pod_reason(ctr.name, f"{FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST.value}: {never}")
                    for k in np.flatnonzero(cand):
                        reasons[int(k) if isinstance(rows, slice) else int(rows[k])] = text
                    cand &= False
                    continue
                if not self.exact(req):
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
        """The engine's reason for this node (``pod_reason``), from each device's first failed check."""
        total = int((first >= 0).sum())
        if total < req.count:
            return pod_reason(ctr, f"{FitReason.NODE_INSUFFICIENT_DEVICE.value}: {req.vendor} needs "
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
        return pod_reason(ctr, f"{FitReason.ALLOCATED_CARDS_INSUFFICIENT_REQUEST.value}: {req.vendor} "
                               f"needs {req.count} devices, {fit} fit", counts, total)
