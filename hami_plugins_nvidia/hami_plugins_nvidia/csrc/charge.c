/* charge.c - what a busy interval costs this process: the processor-sharing charge against the board's other
 * tenants (ps_charge), the context-switch gaps (switch_gap, settle_gaps), the takeover and resume rules of a
 * chained launch (taken_at, resume_time, chained_charge), and the bucket debit (consume). Separate from launch.c
 * because it runs when completions are collected (harvest, verify), not on each launch. */
#define _GNU_SOURCE
#include <string.h>

#include "launch_int.h"

/* The processor-sharing charge of this process's busy time [a, b): the other tenants' intervals come from
 * the node board (their recent closed ones, and an open one up to where its owner last saw it running), each
 * tenant counted as the contexts its record holders claim (ds->ctx_w, read by note_users within 100 ms; else
 * one). At most K contexts count at any instant, K from NVML's process count (nvmlq.c vg_nvml_others_bound, a
 * cached read): the board proves nobody busy. */
int64_t ps_charge(struct dstate *ds, int64_t a, int64_t b, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    int64_t since[HAMI_PS_MAX], until[HAMI_PS_MAX];
    int32_t w[HAMI_PS_MAX];
    int fresh = now - ds->ctx_at <= IDLE_WINDOW_NS;
    int n = 0;
    if (g) {
        uint64_t me = vg_region->container_id;
        for (int i = 0; i < HAMI_BOARD_USERS; i++) {
            uint64_t id = __atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE);
            if (!id || id == me)
                continue;
            int first = n;  /* this user's intervals are since[first..n): merged below, it counts once */
            /* its recent closed intervals that meet [a, b); a slot being rewritten reads as until 0 or changes
             * under the reader: skipped */
            for (int k = 0; k < HAMI_BOARD_RECENT && n < HAMI_PS_MAX; k++) {
                int64_t u1 = __atomic_load_n(&g->user_recent_until[i][k], __ATOMIC_ACQUIRE);
                int64_t s = board_time(__atomic_load_n(&g->user_recent_since[i][k], __ATOMIC_ACQUIRE), now,
                                       "a busy mark");
                int64_t u = board_time(__atomic_load_n(&g->user_recent_until[i][k], __ATOMIC_ACQUIRE), now,
                                       "a busy mark");
                if (s <= 0 || u != u1 || u < s || u <= a || s >= b)
                    continue;
                since[n] = s;
                until[n] = u;
                n++;
            }
            int64_t s = board_time(__atomic_load_n(&g->user_since_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
            int64_t u = board_time(__atomic_load_n(&g->user_busy_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
            if (s > 0 && u < s && n < HAMI_PS_MAX) {  /* closed: it is in the ring above */
                /* open: busy up to the last time its owner found the work running, no further */
                u = board_time(__atomic_load_n(&g->user_open_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
                if (u > now)
                    u = now;
                if (u >= s && u > a && s < b) {
                    since[n] = s;
                    until[n] = u;
                    n++;
                }
            }
            n = first + hami_vgpu_interval_union(since + first, until + first, n - first);
            for (int j = first; j < n; j++)
                w[j] = fresh ? ds->ctx_w[i] : 100;
        }
    }
    int64_t ssince[HAMI_SIB_MAX], suntil[HAMI_SIB_MAX];
    int sn = sib_collect(ds, a, b, now, ssince, suntil);  /* 0 at once while this process is alone in its container */
    return hami_vgpu_ps_charge_w_ns(a, b, since, until, w, n, vg_nvml_others_bound(ds->dev, now), ssince, suntil,
                                    sn, sn ? sib_bound(ds, now) : 0);
}

/* Switch charging (issue 18, the CUDA-graphs pair; charged only while the GPU is contended, switch_charged): the GPU
 * time that passed, while this process waited with work queued (a start mark recorded at rec on an idle process, reached by
 * the GPU at start), between the end of the last neighbour busy interval within the wait and the start: nobody
 * ran then, the GPU was switching from that neighbour's context to this one. 0 when no neighbour was seen busy in
 * the wait (nothing to switch from, or a neighbour that publishes nothing: measured coarsely), or one was still
 * busy at start. Read like ps_charge() reads the board: torn, inverted and future entries are skipped, an open
 * interval counts up to where its owner saw it running. Without it a pair whose context switches take much of the
 * GPU is charged only its kernels and never held by its limits (on the fake, calibrated to the H200 graphs pair:
 * ~26 % kernels and ~23 % switches each, charged 26 % at 30 + 70, both stepping in lockstep). */
static int64_t switch_gap(struct dstate *ds, int64_t rec, int64_t start, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    if (!g || start <= rec || vg_nvml_others_bound(ds->dev, now) == 0)
        return 0;  /* NVML lists no other process on the GPU: no context to switch from, whatever the board says */
    uint64_t me = vg_region->container_id;
    int64_t last = 0;  /* the latest neighbour end within [rec, start] */
    for (int i = 0; i < HAMI_BOARD_USERS; i++) {
        uint64_t id = __atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE);
        if (!id || id == me)
            continue;
        for (int k = 0; k <= HAMI_BOARD_RECENT; k++) {
            int64_t a, b;
            if (k < HAMI_BOARD_RECENT) {
                int64_t b1 = __atomic_load_n(&g->user_recent_until[i][k], __ATOMIC_ACQUIRE);
                a = board_time(__atomic_load_n(&g->user_recent_since[i][k], __ATOMIC_ACQUIRE), now, "a busy mark");
                b = board_time(__atomic_load_n(&g->user_recent_until[i][k], __ATOMIC_ACQUIRE), now, "a busy mark");
                if (b != b1)
                    continue;
            } else {
                a = board_time(__atomic_load_n(&g->user_since_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
                int64_t u = board_time(__atomic_load_n(&g->user_busy_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
                if (u >= a)
                    continue;  /* closed: in the ring */
                b = board_time(__atomic_load_n(&g->user_open_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
                if (b > now)
                    b = now;
            }
            if (a <= 0 || b < a || b < rec || a >= start)
                continue;
            if (b >= start)
                return 0;  /* busy at start: this process did not get the GPU from a switch then */
            if (b > last)
                last = b;
        }
    }
    if (!last)
        return 0;
    if (ds->last_end > last && ds->last_end < start)
        last = ds->last_end;  /* its own work ran later in the wait (a stream not covered by the idle test) */
    return start - last;
}

/* Charges the switch gaps of start marks that ended at least 1 ms ago (by then every neighbour has collected
 * and published its busy intervals of that time; earlier, an interval still open would count only up to where
 * its owner last saw it running and over-state the gap); all of them when now is 0 (the ring is full). */
void settle_gaps(struct dstate *ds, int64_t now)
{
    int keep = 0;
    for (int k = 0; k < ds->ngap; k++) {
        if (now && now - ds->gap_start[k] < 1000000) {
            ds->gap_rec[keep] = ds->gap_rec[k];
            ds->gap_start[keep++] = ds->gap_start[k];
            continue;
        }
        int64_t g = switch_gap(ds, ds->gap_rec[k], ds->gap_start[k], now ? now : vg_now_ns());
        if (g > 0 && !switch_charged(ds)) {
            lst_add(&lst.sw_free_ns, g);
        } else if (g > 0) {
            lst_add(&lst.sw_charged_ns, g);
            PP(PP_GAP);
            consume(ds, g, 0);
            if (!ds->coarse)
                ds->win_ns += g;  /* the precise window's average per launch, which coarse launches are charged */
        }
    }
    ds->ngap = keep;
}

/* A mark's charge, averaged: the throttle's estimate of the work in flight (inflight_ns). */
static void sample_charge(struct dstate *ds, int64_t ns)
{
    /* a charge for k marks (launch.c chained_run: a run converted once) is k samples of its average, so the queued
     * work (pending marks x the average) is not counted k times over */
    int k = ds->ewma_k > 1 ? (ds->ewma_k < RING ? ds->ewma_k : RING) : 1;
    ns /= k;
    for (int i = 0; i < k; i++)
        ds->ewma_ns = ds->ewma_ns ? (ds->ewma_ns * 7 + ns) / 8 : ns;
}

/* A precise deep run's charge c over its n launches: the estimate goes on per launch (queued_work_ns counts the
 * launches of deep runs), as n marks of one launch each would have moved it. */
void sample_launches(struct dstate *ds, int64_t c, int n)
{
    if (c <= 0 || n <= 0)
        return;
    int64_t per = c / n;
    for (int k = 0; k < n && k < 32; k++)  /* after 32 steps the older average weighs < 2 %: no need for more */
        sample_charge(ds, per);
}

#ifdef HAMI_BENCH_PAIRPROBE
__thread int pp_cat;
int64_t pp_ns[PP_K], pp_cnt[PP_K];
#endif

void consume(struct dstate *ds, int64_t ns, int sample)
{
#ifdef HAMI_BENCH_PAIRPROBE
    int cat = pp_cat;
    pp_cat = PP_OTHER;
    if (ns > 0)
        PPADD(cat, ns);
#endif
    if (ns <= 0)
        return;
    if (vg_cfg.sm_ref_mhz) {
        int64_t now = vg_now_ns();
        if (now - ds->clock_at > 2000000) {
            unsigned int mhz = vg_nvml_sm_clock(ds->dev);
            ds->clock_mhz = mhz ? mhz : ds->clock_mhz;
            ds->clock_at = now;
        }
        if (ds->clock_mhz)
            ns = ns * (int64_t)ds->clock_mhz / (int64_t)vg_cfg.sm_ref_mhz;
    }
    __atomic_sub_fetch(&vg_region->dev[ds->dev].tokens_ns, ns, __ATOMIC_ACQ_REL);
    vg_add_busy(ds->dev, (uint64_t)ns);
    if (sample)
        sample_charge(ds, ns);
}

/* The reference event's host time (launch.c ref_time) moved by d: every time this process keeps that was converted
 * from a GPU time moves with it, so each span keeps the length the GPU measured. The estimate moves when a collection
 * tightens its bounds (a prompt one after a late one moves it earlier by up to the late one's lag); a span whose start
 * was converted before the move and its end after was cut by the move (fake libcuda, a 3 ms kernel a step beside an
 * idle neighbour: the first steps' spans 2.4-2.7 ms, 0.69-0.95 x its GPU time over 5 steps), or lengthened by one
 * later. The watermark (a span's end: converted) moves too: left behind by a later move, a stretch already charged
 * would lie above it and be charged again. A hole's ends may be converted or a host enqueue (which does not move):
 * each end moves only where that shrinks the hole, so a hole never grows over time already charged. */
void charge_reframe(struct dstate *ds, int64_t d)
{
    if (!d)
        return;
    for (int i = 0; i < ds->nq; i++)
        if (ds->q[i].done_end)
            ds->q[i].done_end += d;
    if (ds->last_end)
        ds->last_end += d;
    if (ds->charged_to)
        ds->charged_to += d;
    int keep = 0;
    for (int k = 0; k < ds->nhole; k++) {
        int64_t a = ds->hole_a[k] + (d > 0 ? d : 0), b = ds->hole_b[k] + (d < 0 ? d : 0);
        if (a < b) {
            ds->hole_a[keep] = a;
            ds->hole_b[keep++] = b;
        }
    }
    ds->nhole = keep;
    for (int k = 0; k < ds->ndfr; k++) {
        int j = (ds->dfr_head + k) % DEFER_SLOTS;
        ds->dfr_a[j] += d;
        ds->dfr_b[j] += d;
    }
    for (int k = 0; k < ds->ngap; k++)
        ds->gap_start[k] += d;
}

/* The parts of busy time [a, b) not charged yet, marked charged: at most HOLE_SLOTS + 1 pieces in pa/pb, in time
 * order; returns how many. Time before charged_to counts as charged except the holes: the gaps a span that ended
 * later left uncovered (the most recent HOLE_SLOTS; an older one counts as charged, as every gap did before). A
 * collection takes the streams in the order they are asked, not in the GPU's: with a watermark alone, a span
 * collected after a later one on another stream was cut off whole (fake libcuda, a 3 ms kernel on one stream and
 * 1 us ones on 31 others beside an idle neighbour: its start marks made the spans disjoint, and the 3 ms kernels,
 * collected last, were charged 0.00-0.60 x the GPU time; docs/results/2026-12-05-fake-idle-neighbour-charge.md). */
static int span_pieces(struct dstate *ds, int64_t a, int64_t b, int64_t *pa, int64_t *pb)
{
    int64_t ka[2 * HOLE_SLOTS + 1], kb[2 * HOLE_SLOTS + 1];  /* the holes left, oldest first */
    int n = 0, nk = 0;
    for (int k = 0; k < ds->nhole; k++) {
        int64_t ha = ds->hole_a[k], hb = ds->hole_b[k];
        int64_t lo = a > ha ? a : ha, hi = b < hb ? b : hb;
        if (lo >= hi) {
            ka[nk] = ha;
            kb[nk++] = hb;
            continue;
        }
        pa[n] = lo;  /* the span fills this part of the hole */
        pb[n++] = hi;
        if (ha < lo) {
            ka[nk] = ha;
            kb[nk++] = lo;
        }
        if (hi < hb) {
            ka[nk] = hi;
            kb[nk++] = hb;
        }
    }
    if (b > ds->charged_to) {
        int64_t lo = a > ds->charged_to ? a : ds->charged_to;
        if (lo > ds->charged_to && ds->charged_to > 0) {  /* the gap it leaves below itself */
            ka[nk] = ds->charged_to;
            kb[nk++] = lo;
        }
        pa[n] = lo;
        pb[n++] = b;
        ds->charged_to = b;
    }
    int drop = nk > HOLE_SLOTS ? nk - HOLE_SLOTS : 0;  /* the oldest go: counted charged */
    ds->nhole = nk - drop;
    memcpy(ds->hole_a, ka + drop, (size_t)ds->nhole * sizeof ka[0]);
    memcpy(ds->hole_b, kb + drop, (size_t)ds->nhole * sizeof kb[0]);
    return n;
}

/* The processor-sharing charge of this process's busy time [a, b), counted once (span_pieces joins the streams'
 * intervals, in whatever order they are collected); the caller consumes it. */
int64_t span_charge(struct dstate *ds, int64_t a, int64_t b, int64_t now)
{
    int64_t pa[HOLE_SLOTS + 1], pb[HOLE_SLOTS + 1], c = 0;
    if (b <= a)
        return 0;
    int n = span_pieces(ds, a, b, pa, pb);
    for (int k = 0; k < n; k++)
        c += ps_charge(ds, pa[k], pb[k], now);
    return c;
}

/* Deferred charge (issue 18, launch-bound pairs). A neighbour's busy interval reaches the node board only when its
 * owner harvests: it opens at the GPU start of its first work, published when the owner collects that start mark
 * (every 100 us at best while it blocks in a sync, up to 1 ms after an idle spell, later on a loaded host), and
 * while open it counts only up to where the owner last saw it running. A precise span charged as soon as it
 * completed counted such a neighbour idle for the part the board did not show yet: a launch-bound tenant, which
 * closes a span every few tens of us, was charged in full for GPU time it shared with a GPU-bound neighbour's
 * long kernels (fake libcuda, this 2-core VM: an inference-shaped loop beside a GPU-bound one at 50 + 50 was
 * charged 1.5-2.9 x its GPU time; docs/results/2026-12-05-fake-launch-bound-pairs.md). So while the GPU is
 * shared a precise span's charge is taken twice from the board, when it completes and again DEFER_NS later, and
 * the lower is charged then (the first read counts as work in flight meanwhile, inflight_ns): the board only learns more in between (a neighbour's interval opened or seen running
 * longer), except where a neighbour's ring of recent intervals has turned over since (a launch-bound neighbour
 * closes one every few tens of us; the later read alone lost them and charged more). Both reads are what
 * ps_charge() says, so the bounds on forged entries hold; DEFER_SLOTS spans wait at most (a ring; a full one
 * charges its oldest at once). */
static void settle_one(struct dstate *ds, int64_t now);

static void defer_piece(struct dstate *ds, int64_t a, int64_t b, int64_t now, int64_t n);

int64_t deferred_charge(struct dstate *ds, int64_t a, int64_t b, int64_t now, int64_t n)
{
    if (b <= a || !ds->bgpu || vg_nvml_others_bound(ds->dev, now) == 0) {
        ds->win_n += n;
        return span_charge(ds, a, b, now);  /* nothing to charge, or no neighbour to wait for */
    }
    int64_t pa[HOLE_SLOTS + 1], pb[HOLE_SLOTS + 1];
    int np = span_pieces(ds, a, b, pa, pb);  /* each part not charged yet waits on its own */
    if (!np)
        ds->win_n += n;
    for (int k = 0; k < np; k++)
        defer_piece(ds, pa[k], pb[k], now, k ? 0 : n);
    return 0;
}

/* One part of a deferred span, [a, b) not charged yet, with the n launches it closes. */
static void defer_piece(struct dstate *ds, int64_t a, int64_t b, int64_t now, int64_t n)
{
    int64_t c = ps_charge(ds, a, b, now);  /* the board as it stands now: at most this is charged */
    if (c > 0)
        sample_charge(ds, c);  /* the in-flight estimate goes on at once, from the first read (the higher) */
    int last = (ds->dfr_head + ds->ndfr + DEFER_SLOTS - 1) % DEFER_SLOTS;
    if (ds->ndfr && ds->dfr_b[last] == a && a - ds->dfr_a[last] < DEFER_MERGE_NS) {
        /* continues the last one, a short one: a span that kept growing would never be DEFER_NS old (a tenant
         * queuing 2 ms kernels back to back was charged nothing until it stopped, and ran uncapped) */
        ds->dfr_b[last] = b;
        ds->dfr_n[last] += n;
        ds->dfr_c[last] += c;
    } else {
        if (ds->ndfr == DEFER_SLOTS)
            settle_one(ds, now);
        int k = (ds->dfr_head + ds->ndfr++) % DEFER_SLOTS;
        ds->dfr_a[k] = a;
        ds->dfr_b[k] = b;
        ds->dfr_n[k] = n;
        ds->dfr_c[k] = c;
    }
    ds->dfr_sum += c;
    lst_add(&lst.dfr_ns, b - a);
}

/* Charges the oldest deferred span, the lower of its two reads, counted like the precise charges it belongs to: in
 * the precise window with its launches (a window's average per launch, the coarse estimate, is of settled ones). */
static void settle_one(struct dstate *ds, int64_t now)
{
    int k = ds->dfr_head;
    int64_t c = ps_charge(ds, ds->dfr_a[k], ds->dfr_b[k], now);
    if (c > ds->dfr_c[k])
        c = ds->dfr_c[k];
    ds->dfr_head = (k + 1) % DEFER_SLOTS;
    ds->ndfr--;
    ds->dfr_sum -= ds->dfr_c[k];
    if (c > 0) {
        PP(PP_DEFERRED);
        consume(ds, c, 0);
        ds->sd_kern += c;
    }
    if (!ds->coarse) {
        ds->win_ns += c > 0 ? c : 0;
        ds->win_n += ds->dfr_n[k];
    }
}

/* Charges the deferred spans that ended DEFER_NS ago or more; all of them when now is 0. */
void settle_deferred(struct dstate *ds, int64_t now)
{
    int64_t t = now ? now : vg_now_ns();
    while (ds->ndfr && (!now || now - ds->dfr_b[ds->dfr_head] >= DEFER_NS))
        settle_one(ds, t);
}

/* Time slices (issue 18, audit4's mixed pair): the earliest GPU time after `after` (the last time this process's
 * work was seen running) and before `before` (and now) at which a neighbour took the GPU: its current interval
 * began with a start mark that waited (user_took_ns, equal to its start). On a GPU without MPS one context runs
 * at a time, so this process's chained work (an end mark pending, its kernel started when the previous one ended)
 * waits from then on; left open, its interval counted n(t) = 2 while the neighbour ran alone (a 30 % tenant
 * syncing each 1.5 ms kernel beside a 70 % one queuing 2 ms kernels, 2 ms slices, force: 45 % of the fake GPU,
 * charged 0.63 x). 0 = none; *user = the neighbour's board index. Read like ps_charge() reads the board. */
int64_t taken_at(const struct dstate *ds, int64_t after, int64_t before, int64_t now, int *user)
{
    struct hami_board_gpu *g = ds->bgpu;
    if (!g || vg_nvml_others_bound(ds->dev, now) == 0)
        return 0;  /* NVML lists no other process on the GPU: nobody took it */
    uint64_t me = vg_region->container_id;
    int64_t first = 0;
    for (int i = 0; i < HAMI_BOARD_USERS; i++) {
        uint64_t id = __atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE);
        if (!id || id == me)
            continue;
        int64_t t = board_time(__atomic_load_n(&g->user_took_ns[i], __ATOMIC_ACQUIRE), now, "a took mark");
        int64_t s = board_time(__atomic_load_n(&g->user_since_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
        if (t > after && t < before && t <= now && t == s && (!first || t < first)) {
            first = t;
            *user = i;
        }
    }
    return first;
}

/* When the neighbour that took the GPU at ds->yield_at gave it back, as far as the board says by now; h, this
 * process's own completion after the takeover (0 = none yet). Under time slices the taker held the GPU alone to
 * the end of the interval it opened then, if that ended within one slice (TAKE_MAX_NS): it drained its work, and
 * this process's chained work ran again from there. One still open when this work completed within a slice of
 * the takeover had given the GPU back before h, not yet published: it held it up to where it was last seen
 * running, at least. Returns that time; yield_at itself where nothing was proven (the interval is longer than a
 * slice, gone from the board, or unknown yet at a completion: this work may have had a slice in it); 0 while it
 * is still open within its slice (wait and see). */
int64_t resume_time(const struct dstate *ds, int64_t h, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    int i = ds->yield_user;
    int64_t t = ds->yield_at, end = -1;
    int64_t s = board_time(__atomic_load_n(&g->user_since_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
    if (s == t) {
        int64_t u = board_time(__atomic_load_n(&g->user_busy_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
        if (u >= s && u <= now) {
            end = u;
        } else {
            int64_t o = board_time(__atomic_load_n(&g->user_open_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
            if (h && h - t <= TAKE_MAX_NS)
                return o > t && o < h ? o : t;
            return now - t > TAKE_MAX_NS || h ? t : 0;
        }
    }
    for (int k = 0; k < HAMI_BOARD_RECENT && end < 0; k++) {
        int64_t u1 = __atomic_load_n(&g->user_recent_until[i][k], __ATOMIC_ACQUIRE);
        int64_t rs = __atomic_load_n(&g->user_recent_since[i][k], __ATOMIC_ACQUIRE);
        int64_t u = board_time(__atomic_load_n(&g->user_recent_until[i][k], __ATOMIC_ACQUIRE), now, "a busy mark");
        if (rs == t && u == u1 && u >= t && u <= now)
            end = u;
    }
    return end > t && end - t <= TAKE_MAX_NS && (!h || end < h) ? end : t;
}

/* The charge of chained work [start, h) from which a neighbour took the GPU at yield_at and gave it back at
 * resume_at (resume_time): the neighbour held the GPU alone in between (it waited for it, and under time slices
 * one context runs at a time), so the time between is not charged (processor sharing charged it half, and the
 * neighbour half of its own time alone: audit4's 70 % tenant 1.39 x). The whole is at least (h - a) / (1 + K),
 * K >= 1 the NVML bound as in ps_charge (1 when there is none): a forged took mark lowers a charge no further
 * than a forged busy entry already can. */
int64_t chained_charge(struct dstate *ds, int64_t start, int64_t h, int64_t now, int64_t n)
{
    if (!ds->yield_at) {  /* no collection saw the takeover while it lasted (the work resumed soon after) */
        int user = -1;
        int64_t t = taken_at(ds, ds->last_end > start ? ds->last_end : start, h, now, &user);
        if (!t)
            return deferred_charge(ds, start, h, now, n);
        ds->yield_at = t;
        ds->yield_user = user;
    }
    if (!ds->resume_at)
        ds->resume_at = resume_time(ds, h, now);
    int64_t t0 = ds->yield_at, t1 = ds->resume_at;
    int k = vg_nvml_others_bound(ds->dev, now);
    if (k == 0 || t1 <= t0 || t0 <= start || t1 >= h)
        return deferred_charge(ds, start, h, now, n);
    ds->win_n += n;
    int64_t a = start > ds->charged_to ? start : ds->charged_to;  /* the part above the watermark, for the bound */
    int64_t c = span_charge(ds, start, t0, now), pa[HOLE_SLOTS + 1], pb[HOLE_SLOTS + 1];
    span_pieces(ds, t0, t1, pa, pb);  /* the neighbour's turn: counted covered, no hole for a later span to fill */
    c += span_charge(ds, t1, h, now);
    /* the container's other processes are contexts too (sib_bound, 0 while this process is alone) */
    int64_t low = h > a ? (h - a) / (1 + (k > 1 ? k : 1) + (sib_others(ds) ? sib_bound(ds, now) : 0)) : 0;
    return c > low ? c : low;
}
