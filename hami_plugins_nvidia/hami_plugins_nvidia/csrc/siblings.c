/* siblings.c - several processes of one container on one GPU (region layout 2, the region's sib[] table): each
 * process publishes its busy intervals in an entry of its own, and the charge counts the container's other
 * processes as contexts too. Separate from launch.c because none of it runs per launch: the charge (charge.c) and
 * the harvest call it, the watcher refreshes the bound. */
#define _GNU_SOURCE
#include "launch_int.h"

/* ---- Several processes of one container (docs/interposer.md "Several processes in one container") ----
 * The SM limit is the container's and its processes share one bucket, but each is a context of its own: the GPU
 * time-slices between them as between containers. Each process measures only its own kernels, so while two
 * siblings had work each got half of the GPU and each was charged all of it (audit4, fake: 3 processes of a
 * container at 30 % got 20-23 % together, charged 1.5-1.7 x; 2 GPU-bound ones 15 %, 2 x). So a process whose
 * container has other processes measuring on the device publishes its busy intervals in the container's region
 * (struct hami_sibling: the same intervals as on the node board, which holds one entry per container), and each
 * charges processor sharing over its siblings' contexts as well as the other containers' (throttle.c
 * hami_vgpu_ps_charge_sib_ns): the siblings' charges of an instant add up to what the container got. Alone, a
 * process publishes nothing and its charge reads one word more (the table's mask). What a sibling publishes is
 * bounded like the board: times more than 1 s ahead are ignored, an open interval counts only as far as its owner
 * saw it running (a sibling killed mid-interval stops counting where it was last seen), and at most as many
 * siblings count at an instant as the container has other live processes measuring on the device (presence locks:
 * kernel record locks counted by owner, sampled by the watcher every 100 ms; no sample: none count, the over-charge
 * side). */
#define SIB_STALE_NS 2000000000LL   /* an entry whose owner wrote nothing for 2 s may be taken over (or cleared) */
#define SIB_BOUND_GAP_NS 100000000LL /* the bound on siblings is sampled every 100 ms ... */
#define SIB_BOUND_FRESH_NS 1000000000LL /* ... and trusted for 1 s */

static uint64_t sib_bound_w[HAMI_MAX_DEVICES];  /* (time >> 10) << 16 | the container's other processes on the device */

/* The other siblings' bits of the device's mask (0: this process is alone on it, the common case). */
uint32_t sib_others(const struct dstate *ds)
{
    if (!vg_region)
        return 0;
    uint32_t m = __atomic_load_n(&vg_region->sib[ds->dev].mask, __ATOMIC_ACQUIRE);
    if (ds->sib_idx >= 0)
        m &= ~(1u << ds->sib_idx);
    return m & ((1u << HAMI_SIBLINGS) - 1);
}

/* This process's entry in the sibling table, claimed if it has none (or lost it while silent): a free entry, or
 * one whose owner wrote nothing for 2 s. NULL when all are taken (it publishes nothing: its siblings charge as if
 * it were idle, the over-charge side). */
static struct hami_sibling *sib_mine(struct dstate *ds, int64_t now)
{
    struct hami_sibling_dev *sd = &vg_region->sib[ds->dev];
    if (ds->sib_idx >= 0) {
        struct hami_sibling *e = &sd->e[ds->sib_idx];
        if (__atomic_load_n(&e->owner, __ATOMIC_ACQUIRE) == ds->sib_token) {
            uint32_t bit = 1u << ds->sib_idx;  /* a collector clearing a stale owner's bit can race our claim */
            if (!(__atomic_load_n(&sd->mask, __ATOMIC_ACQUIRE) & bit))
                __atomic_fetch_or(&sd->mask, bit, __ATOMIC_ACQ_REL);
            return e;
        }
        ds->sib_idx = -1;  /* taken over while silent, or the file was rewritten: claimed again */
    }
    if (!ds->sib_token)
        ds->sib_token = ((uint64_t)(uint32_t)getpid() << 32) | (sample_seed(ds->dev) & 0xFFFFFFFFu) | 1u;
    for (int i = 0; i < HAMI_SIBLINGS; i++) {
        struct hami_sibling *e = &sd->e[i];
        uint64_t o = __atomic_load_n(&e->owner, __ATOMIC_ACQUIRE);
        int64_t beat = __atomic_load_n(&e->beat_ns, __ATOMIC_ACQUIRE);
        if (o && beat >= now - SIB_STALE_NS)
            continue;  /* live (or a forged beat in the future: left alone) */
        if (!__atomic_compare_exchange_n(&e->owner, &o, ds->sib_token, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            continue;
        __atomic_store_n(&e->beat_ns, now, __ATOMIC_RELEASE);
        __atomic_store_n(&e->since_ns, 0, __ATOMIC_RELEASE);  /* a previous owner's intervals: gone */
        __atomic_store_n(&e->until_ns, 0, __ATOMIC_RELEASE);
        for (int k = 0; k < HAMI_SIB_RECENT; k++)
            __atomic_store_n(&e->recent_until[k], 0, __ATOMIC_RELEASE);
        __atomic_fetch_or(&sd->mask, 1u << i, __ATOMIC_ACQ_REL);
        ds->sib_idx = i;
        return e;
    }
    vg_log_once(VG_WARN, "sib-full", "device %d: %d processes of this container already publish their GPU busy time: "
                "this one does not (its siblings are charged as if it were idle)", ds->dev, HAMI_SIBLINGS);
    return NULL;
}

/* Mirrors publish() into this process's sibling entry (open: an interval opens at t; else it closes at t) while a
 * sibling measures on the device too; called by publish(). The entry is claimed at the first call, so that a sibling
 * knows this process is there; alone, nothing more is written. */
void sib_publish(struct dstate *ds, int open, int64_t t)
{
    if (!vg_region)
        return;
    struct hami_sibling *e = sib_mine(ds, t);
    if (!e || !sib_others(ds))
        return;
    __atomic_store_n(&e->beat_ns, t, __ATOMIC_RELEASE);
    if (open) {
        __atomic_store_n(&e->open_ns, t, __ATOMIC_RELEASE);
        __atomic_store_n(&e->since_ns, t, __ATOMIC_RELEASE);
        return;
    }
    int64_t since = __atomic_load_n(&e->since_ns, __ATOMIC_ACQUIRE);
    __atomic_store_n(&e->until_ns, t, __ATOMIC_RELEASE);
    if (since <= 0 || since > t)
        return;  /* its opening was not published here (claimed since): nothing to keep */
    uint32_t k = __atomic_load_n(&e->recent_head, __ATOMIC_ACQUIRE) % HAMI_SIB_RECENT;
    __atomic_store_n(&e->recent_until[k], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&e->recent_since[k], since, __ATOMIC_RELEASE);
    __atomic_store_n(&e->recent_until[k], t, __ATOMIC_RELEASE);
    __atomic_store_n(&e->recent_head, k + 1, __ATOMIC_RELEASE);
}

/* Work of the open interval (since ds->busy_since) was seen running at now: the siblings count it up to here. A
 * process that was alone when the interval opened publishes it now that a sibling measures too. */
void sib_running(struct dstate *ds, int64_t now)
{
    if (!vg_region || !sib_others(ds))
        return;
    struct hami_sibling *e = sib_mine(ds, now);
    if (!e || !ds->busy_since || !ds->since_gpu)
        return;
    __atomic_store_n(&e->beat_ns, now, __ATOMIC_RELEASE);
    __atomic_store_n(&e->open_ns, now, __ATOMIC_RELEASE);
    int64_t s = __atomic_load_n(&e->since_ns, __ATOMIC_ACQUIRE), u = __atomic_load_n(&e->until_ns, __ATOMIC_ACQUIRE);
    if (s != ds->busy_since || u >= s)
        __atomic_store_n(&e->since_ns, ds->busy_since, __ATOMIC_RELEASE);
}

/* The siblings' busy intervals that meet [a, b), each sibling's merged into their union (it is one context: it adds
 * at most 1 to n(t)), and with self this process's own too (sib_contexts); returns how many. Read like ps_charge()
 * reads the board. Entries silent for 2 s are cleared (their owner exited or was killed; one idle that long claims
 * an entry again when it next publishes). */
static int collect(struct dstate *ds, int self, int64_t a, int64_t b, int64_t now, int64_t *since, int64_t *until)
{
    uint32_t m = sib_others(ds);
    if (!m)
        return 0;
    if (self && ds->sib_idx >= 0)
        m |= 1u << ds->sib_idx;
    struct hami_sibling_dev *sd = &vg_region->sib[ds->dev];
    int n = 0;
    for (int i = 0; i < HAMI_SIBLINGS; i++) {
        if (!(m & (1u << i)))
            continue;
        struct hami_sibling *e = &sd->e[i];
        uint64_t o = __atomic_load_n(&e->owner, __ATOMIC_ACQUIRE);
        int64_t beat = __atomic_load_n(&e->beat_ns, __ATOMIC_ACQUIRE);
        if (!o || beat < now - SIB_STALE_NS) {
            if (!o || __atomic_compare_exchange_n(&e->owner, &o, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                __atomic_fetch_and(&sd->mask, ~(1u << i), __ATOMIC_ACQ_REL);
            continue;
        }
        if (o == ds->sib_token && !self)
            continue;
        int first = n;
        for (int k = 0; k < HAMI_SIB_RECENT && n < HAMI_SIB_MAX; k++) {
            int64_t u1 = __atomic_load_n(&e->recent_until[k], __ATOMIC_ACQUIRE);
            int64_t s = board_time(__atomic_load_n(&e->recent_since[k], __ATOMIC_ACQUIRE), now, "a sibling's busy mark");
            int64_t u = board_time(__atomic_load_n(&e->recent_until[k], __ATOMIC_ACQUIRE), now, "a sibling's busy mark");
            if (s <= 0 || u != u1 || u < s || u <= a || s >= b)
                continue;
            since[n] = s;
            until[n] = u;
            n++;
        }
        int64_t s = board_time(__atomic_load_n(&e->since_ns, __ATOMIC_ACQUIRE), now, "a sibling's busy mark");
        int64_t u = board_time(__atomic_load_n(&e->until_ns, __ATOMIC_ACQUIRE), now, "a sibling's busy mark");
        if (s > 0 && u < s && n < HAMI_SIB_MAX) {  /* open: busy up to where its owner last saw it running */
            u = board_time(__atomic_load_n(&e->open_ns, __ATOMIC_ACQUIRE), now, "a sibling's busy mark");
            if (u > now)
                u = now;
            if (u >= s && u > a && s < b) {
                since[n] = s;
                until[n] = u;
                n++;
            }
        }
        n = first + hami_vgpu_interval_union(since + first, until + first, n - first);
    }
    return n;
}

int sib_collect(struct dstate *ds, int64_t a, int64_t b, int64_t now, int64_t *since, int64_t *until)
{
    return collect(ds, 0, a, b, now, since, until);
}

/* The contexts the container kept busy on the device over [a, b) per instant it was busy, 1/100 (100: one, or
 * nothing busy): the sum of its processes' busy time (this one's too, from its own entry) over their union, each
 * within [a, b). What a neighbour counts it as (lending.c publish_claim, board.c context claims). */
int sib_contexts(struct dstate *ds, int64_t a, int64_t b, int64_t now)
{
    int64_t since[HAMI_SIB_MAX], until[HAMI_SIB_MAX];
    int n = collect(ds, 1, a, b, now, since, until);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {  /* clipped to [a, b); each process's own are disjoint (merged by collect) */
        since[i] = since[i] > a ? since[i] : a;
        until[i] = until[i] < b ? until[i] : b;
        sum += until[i] > since[i] ? until[i] - since[i] : 0;
    }
    n = hami_vgpu_interval_union(since, until, n);
    int64_t any = 0;
    for (int i = 0; i < n; i++)
        any += until[i] > since[i] ? until[i] - since[i] : 0;
    return any > 0 && sum > any ? (int)(sum * 100 / any) : 100;
}

/* At most this many siblings count at an instant: the container's other processes that measure their launches on the
 * device (presence locks, kernel record locks counted by owner: region.c vg_region_siblings_on), from the watcher's
 * last sample within 1 s; 0 without one. */
int sib_bound(const struct dstate *ds, int64_t now)
{
    uint64_t w = __atomic_load_n(&sib_bound_w[ds->dev], __ATOMIC_ACQUIRE);
    int64_t at = (int64_t)(w >> 16) << 10;
    if (!w || now - at > SIB_BOUND_FRESH_NS || at > now + FUTURE_MAX_NS)
        return 0;
    return (int)(w & 0xFFFF);
}

/* The watcher's part (never on the launch path: it takes the region lock and asks the kernel for locks). Once this
 * process has claimed a sibling entry on the device (it measures there), it takes its presence lock, so that its
 * siblings count it whether or not it holds memory there (audit, 2026-12-05: a sibling without memory, uncounted,
 * left the other charged as if alone, 1.9 x; the container got 20 % at 30); and every 100 ms while a sibling
 * measures too it re-takes it and samples sib_bound. */
void sib_bound_refresh(struct dstate *ds, int64_t now)
{
    static int64_t at[HAMI_MAX_DEVICES];      /* the watcher thread's own */
    /* the token of the entry's owner when it took its presence lock: a forked child's is another (watcher_forked) */
    static uint64_t present[HAMI_MAX_DEVICES];
    if (ds->sib_idx < 0)
        return;
    int others = sib_others(ds) != 0;
    if ((!others && present[ds->dev] == ds->sib_token) || (at[ds->dev] && now - at[ds->dev] < SIB_BOUND_GAP_NS))
        return;
    at[ds->dev] = now;
    int n = vg_region_siblings_on(ds->dev, 1);
    present[ds->dev] = n >= 0 ? ds->sib_token : 0;
    if (!others)
        return;
    uint64_t k = n > 0 ? (uint64_t)(n < HAMI_SIBLINGS ? n : HAMI_SIBLINGS - 1) : 0;
    __atomic_store_n(&sib_bound_w[ds->dev], ((uint64_t)(now >> 10) << 16) | k, __ATOMIC_RELEASE);
}
