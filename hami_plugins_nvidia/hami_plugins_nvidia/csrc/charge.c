/* charge.c - what a busy interval costs this process: the processor-sharing charge against the board's other
 * tenants (ps_charge), the context-switch gaps (switch_gap, settle_gaps), the takeover and resume rules of a
 * chained launch (taken_at, resume_time, chained_charge), and the bucket debit (consume). Separate from launch.c
 * because it runs when completions are collected (harvest, verify), not on each launch. */
#define _GNU_SOURCE
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
            consume(ds, g, 0);
            if (!ds->coarse)
                ds->win_ns += g;  /* the precise window's average per launch, which coarse launches are charged */
        }
    }
    ds->ngap = keep;
}

void consume(struct dstate *ds, int64_t ns, int sample)
{
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
        ds->ewma_ns = ds->ewma_ns ? (ds->ewma_ns * 7 + ns) / 8 : ns;
}

/* The processor-sharing charge of this process's busy time [a, b), counted once (a watermark joins the
 * streams' intervals); the caller consumes it. */
int64_t span_charge(struct dstate *ds, int64_t a, int64_t b, int64_t now)
{
    if (a < ds->charged_to)
        a = ds->charged_to;
    if (b <= a)
        return 0;
    ds->charged_to = b;
    return ps_charge(ds, a, b, now);
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
int64_t chained_charge(struct dstate *ds, int64_t start, int64_t h, int64_t now)
{
    if (!ds->yield_at) {  /* no collection saw the takeover while it lasted (the work resumed soon after) */
        int user = -1;
        int64_t t = taken_at(ds, ds->last_end > start ? ds->last_end : start, h, now, &user);
        if (!t)
            return span_charge(ds, start, h, now);
        ds->yield_at = t;
        ds->yield_user = user;
    }
    if (!ds->resume_at)
        ds->resume_at = resume_time(ds, h, now);
    int64_t t0 = ds->yield_at, t1 = ds->resume_at;
    int k = vg_nvml_others_bound(ds->dev, now);
    if (k == 0 || t1 <= t0 || t0 <= start || t1 >= h)
        return span_charge(ds, start, h, now);
    int64_t a = start > ds->charged_to ? start : ds->charged_to;
    if (h <= a)
        return 0;
    int64_t c = span_charge(ds, start, t0, now) + span_charge(ds, t1, h, now);
    /* the container's other processes are contexts too (sib_bound, 0 while this process is alone) */
    int64_t low = (h - a) / (1 + (k > 1 ? k : 1) + (sib_others(ds) ? sib_bound(ds, now) : 0));
    return c > low ? c : low;
}
