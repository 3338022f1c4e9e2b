/* lending.c - this process's side of the node board (board v7): its entry in the GPU's user list and the share
 * in force (note_users), its charged fraction (publish_fraction), its demand alone (update_solo_demand) and its
 * lending record (publish_record). Separate from launch.c: the launch path calls note_users, which returns at
 * once unless a millisecond went by; the rest runs from it and from the watcher. */
#define _GNU_SOURCE
#include "launch_int.h"

/* The time a window's program would have run alone: the window dt less its host's waits for its own work b and its
 * held time h, plus the kernels among the waits (each term <= dt), at least its kernels k. */
static double solo_time(double dt, double k, double b, double h)
{
    double solo = dt - b - h + (b < k ? b : k);
    return solo < k ? k : solo;
}

/* One window's demand alone, 1/100 %: its kernel time k over the time it would have run alone (solo_time). */
static int64_t solo_sample(double dt, double k, double b, double h)
{
    double solo = solo_time(dt, k, b, h);
    return solo > 0 ? (int64_t)(10000.0 * k / solo) : 0;
}

/* The same sample with the window's waits for other contexts' slices s (note_blocked, HAMI_SM_LEND_SLICED) taken
 * out: kernels over dt - h - s, the time it would have run alone at most (each term <= dt), at least its kernels.
 * Only ever the higher of the two is used (update_solo_demand): it reads a time-sliced program that waits for each
 * step at its demand alone whatever the host's usual launch interval says. */
static int64_t sliced_sample(double dt, double k, double h, double s)
{
    double solo = dt - h - s;
    if (solo < k)
        solo = k;
    return solo > 0 ? (int64_t)(10000.0 * k / solo) : 0;
}

/* A wait of its launches since held_since, up to now: counted as held (the demand estimates) and, inside its own
 * windows, for turns' stay test (turns_note_held); held_since moves to now (the wait may go on). */
void note_held(struct dstate *ds, int64_t now)
{
    if (!ds->held_since || now <= ds->held_since)
        return;
    ds->sd_held += now - ds->held_since;
    turns_note_held(ds, ds->held_since, now);
    ds->held_since = now;
}

/* Updates solo_bp, the program's demand alone (its kernels as a share of the time it would run without waiting
 * behind its neighbours), every >= 5 ms as a ~100 ms decaying average: kernels / (wall - time its host waited for
 * its own work - time its launches waited for credit + the kernels among the waits, which it would still run
 * alone). A host-paced program (waits only at its rare syncs) comes out near its busy share; a program that syncs
 * after every step near kernels / (kernels + its host time per step). Measured precisely only (a coarse phase has
 * no start marks, so no waits: its time is left out, and kept at least 5 ms of precise time per update). Starts
 * at 0 (nothing charged until measured) and restarts whenever the tenant is not capped. Beside it turn_bp, turns'
 * own (turns.c), counts the launches' waits for a full mark ring (push_mark) as held, as the in-flight bound's holds
 * are: a loop ~127 launches ahead of its GPU waits there for its own work, and alone it would keep the GPU busy all
 * along; counted as host time, its estimate read as its charged share. turn_bp also weighs each window by its
 * solo time, not its wall time (a window spent held counts for nothing; see there), and skips a window with a quiet
 * stretch of TURN_QUIET_NS (a program back from idling keeps its estimate; see there). solo_bp keeps its meaning
 * (switch charging, the board): a ring wait overlaps the sync wait note_blocked counts at most by one launch per
 * period. */
static void update_solo_demand(struct dstate *ds, int64_t now)
{
    if (!ds->capped || !ds->sd_at || now - ds->sd_at > 10 * FRAC_TAU_NS) {
        ds->sd_at = ds->capped ? now : 0;
        ds->sd_kern = ds->sd_kern_coarse = ds->sd_blocked = ds->sd_held = ds->sd_full = ds->sd_coarse = ds->sd_sliced = 0;
        ds->sd_n = 0;
        ds->turn_bp = ds->capped ? ds->turn_bp : 0;
        turns_note_window(ds, now, now, 0, 0, 0);  /* restarts: turns' busy share in its windows as well */
        if (!ds->capped && ds->solo_bp) {
            ds->solo_bp = 0;
            if (ds->bgpu && ds->user_idx >= 0)
                __atomic_store_n(&ds->bgpu->user_solo_bp[ds->user_idx], 0, __ATOMIC_RELEASE);
        }
        return;
    }
    count_coarse(ds, now);
    note_held(ds, now);  /* called from the wait itself (note_users in throttle) */
    int64_t dt = now - ds->sd_at - ds->sd_coarse;
    if (dt < FRAC_GAP_NS)
        return;
    /* in doubles, each term bounded by the window: no sum can wrap */
    double k = ds->sd_kern < dt ? (double)ds->sd_kern : (double)dt;
    double b = ds->sd_blocked < dt ? (double)ds->sd_blocked : (double)dt;
    double h = ds->sd_held < dt ? (double)ds->sd_held : (double)dt;
    if (k <= 0 && !ds->sd_n) {  /* nothing ran yet: the estimate starts with the first window that ran kernels */
        ds->sd_kern = ds->sd_kern_coarse = ds->sd_blocked = ds->sd_held = ds->sd_full = ds->sd_coarse = ds->sd_sliced = 0;
        ds->sd_at = now;
        turns_note_window(ds, now, now, 0, 0, 0);
        return;
    }
    double f = ds->sd_full < dt ? (double)ds->sd_full : (double)dt;
    int64_t w = dt >= FRAC_TAU_NS ? 1024 : dt * 1024 / FRAC_TAU_NS;
    if (ds->sd_n < 16 && w < 1024 / (ds->sd_n + 1))
        w = 1024 / (ds->sd_n + 1);  /* the first updates: a plain mean, so the estimate is usable within ~20 ms */
    ds->sd_n++;
    int64_t sample = solo_sample(dt, k, b, h);
    if (vg_cfg.sm_lend_sliced) {  /* jaxslice: the waits behind other contexts' slices are not its own time either */
        int64_t ss = sliced_sample(dt, k, h, ds->sd_sliced < dt ? (double)ds->sd_sliced : (double)dt);
        sample = ss > sample ? ss : sample;
    }
    ds->solo_bp += (sample - ds->solo_bp) * w / 1024;
    /* turns' estimate weighs each window by the time its program would have run alone in it, not by the wall: a
     * window it spent held (another's turn, or out of credit) says nothing of its demand alone, and read as 0 it
     * pulled the estimate down to about the charged share while turns were on (H100 record 9 stage 15: graphs 30 +
     * 70 read 39.7 and 61.5 %, JAX 35.1 and 66.5 %, near the stay test's edge, and JAX was on only 2.1-3.0 s of
     * 4 s; on the fake a 5 ms window all held by turns gave a 0 sample). A ratio of sums: kernels over solo time */
    double ht = h + f < dt ? h + f : dt, st = solo_time(dt, k, b, ht);
    if (st - k >= (double)TURN_QUIET_NS) {
        /* a quiet stretch: at least TURN_QUIET_NS of the window with none of its kernels running, its host neither
         * waiting for its work nor held; only a program that launched nothing and waited for nothing that long
         * gives one (updates come every FRAC_GAP_NS while it launches). It says nothing of how busy the program
         * keeps the GPU when it runs, which is what turns ask: read as one sample (its weight is 1 once it spans
         * FRAC_TAU_NS), the ~0.5-1 s a bench pair idled before its window dropped turn_bp to ~0 (it stays under the
         * 1 s restart above), and the pair time-sliced until the estimate climbed back over turn_wanted's entry bound:
         * the fake's graphs pair ~0.2 s, H100 record 12's ~0.5 s of 4 s, at the native pair's 59 % of solo.
         * Skipped, turns' estimate keeps what the program did when it last ran, and the stay test's sums restart (its
         * windows' time in the stretch, with no kernels, would judge it out). Turns only ever hold, so no limit can
         * fail open; solo_bp (switch charging, lending) is updated as before. */
        turns_note_window(ds, now, now, 0, 0, 0);
    } else {
        int64_t wt = st >= FRAC_TAU_NS ? 1024 : (int64_t)(st * 1024 / FRAC_TAU_NS);
        if (ds->sd_n == 1)
            wt = 1024;  /* the first update replaces the estimate, as solo_bp's */
        else if (ds->sd_n <= 16 && wt < (int64_t)(st * 1024 / ((double)dt * ds->sd_n)))
            wt = (int64_t)(st * 1024 / ((double)dt * ds->sd_n));  /* the next ones: a mean, as solo_bp's */
        ds->turn_bp += (solo_sample(dt, k, b, ht) - ds->turn_bp) * wt / 1024;
        turns_note_window(ds, ds->sd_at, now, dt, (int64_t)k, ds->sd_kern_coarse);  /* turns' stay test (turns.c) */
    }
    if (ds->bgpu && ds->user_idx >= 0)
        __atomic_store_n(&ds->bgpu->user_solo_bp[ds->user_idx], (int32_t)ds->solo_bp, __ATOMIC_RELEASE);
    if (ds->shared && k > 0) {  /* for the launch stats line: the last figures while shared and launching */
        lst.solo_bp = ds->solo_bp;
        lst.turn_bp = ds->turn_bp;
        lst.nbr_bp = ds->nbr_bp;
    }
    ds->sd_kern = ds->sd_kern_coarse = ds->sd_blocked = ds->sd_held = ds->sd_full = ds->sd_coarse = ds->sd_sliced = 0;
    ds->sd_at = now;
}

/* Publishes this container's SM limit and its recent charged GPU fraction on its board entry (lending, see
 * hami_vgpu_lent_share): a decaying average over ~100 ms of the charges of all its processes (the region's
 * busy counter: precise and coarse charges alike), updated at most every 5 ms. While its launches are not
 * measured (not capped) it publishes its whole limit: a neighbour borrows only what is measured to be unused,
 * and a measured spell starts again from the limit. So does a spell that resumes after this process went idle
 * (no update for longer than the idle window, after which its readers count it gone): its first sample would
 * average the idle gap, near 0 charged and 0 queued, and it would lend its whole share the moment it came back.
 * Issue 18: the H200 policy timeline's neighbour B warms up, waits ~15 s for its start, then runs; on the fake the
 * same history gave B's first figures 0.05 % charged and 5 % queued and A a spike to 49 %
 * (docs/results/2026-12-05-fake-policy-latency.md). Record 5's "~2 s" on the H200 was a late worker read on the
 * wrong clock, not this (docs/results/2026-12-05-policy-arrival.md). */
void publish_fraction(struct dstate *ds, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    int i = ds->user_idx;
    int sm = vg_sm_limit(ds->dev);
    uint64_t busy = __atomic_load_n(&vg_region->dev[ds->dev].busy_ns, __ATOMIC_ACQUIRE);
    if (!ds->capped || !ds->frac_at || now - ds->frac_at > IDLE_WINDOW_NS) {
        ds->frac_bp = (int64_t)sm * 100;
        ds->queued_bp = 10000;  /* and contending, until measured otherwise */
        ds->frac_busy = busy;
        ds->frac_at = ds->capped ? now : 0;
        ds->frac_from = ds->frac_at;  /* measured from here (launch.c credit_falls: not before FRAC_TAU_NS) */
        ds->queued_ns = 0;
        ds->paced_ns = 0;
        ds->queued_to = now;
    } else if (now - ds->frac_at >= FRAC_GAP_NS) {
        int64_t dt = now - ds->frac_at;
        /* in doubles: the region's busy_ns is the container's own file, and a rewritten value must not wrap the
         * product into a low fraction (which would lend its own share away) */
        double ratio = busy >= ds->frac_busy ? (double)(busy - ds->frac_busy) / (double)dt : 0.0;
        int64_t sample = ratio >= 1.0 ? 10000 : (int64_t)(ratio * 10000.0);
        int64_t w = dt >= FRAC_TAU_NS ? 1024 : dt * 1024 / FRAC_TAU_NS;
        ds->frac_bp += (sample - ds->frac_bp) * w / 1024;
        count_queued(ds, now);
        double qr = ds->queued_ns > 0 ? (double)ds->queued_ns / (double)dt : 0.0;
        int64_t qs = qr >= 1.0 ? 10000 : (int64_t)(qr * 10000.0);
        /* the waits of host-paced periods are not demand: their share of the queued time is counted only as
         * far as the GPU ran it (the charged fraction, same wait ratio assumed in every period) */
        double hp = ds->queued_ns > 0 ? (double)ds->paced_ns / (double)ds->queued_ns : 0.0;
        if (hp > 1.0)
            hp = 1.0;
        if (qs > sample)
            qs -= (int64_t)(hp * (double)(qs - sample));
        ds->queued_bp += (qs - ds->queued_bp) * w / 1024;
        ds->queued_ns = 0;
        ds->paced_ns = 0;
        ds->frac_busy = busy;
        ds->frac_at = now;
    } else {
        return;
    }
    __atomic_store_n(&g->user_limit[i], sm, __ATOMIC_RELEASE);
    __atomic_store_n(&g->user_frac_bp[i], (int32_t)ds->frac_bp, __ATOMIC_RELEASE);
    __atomic_store_n(&g->user_queued_bp[i], (int32_t)ds->queued_bp, __ATOMIC_RELEASE);
    __atomic_store_n(&g->user_frac_ns[i], now, __ATOMIC_RELEASE);
}

/* Whether this process counts as active by the rule its readers apply to a board entry (note_users), on its own
 * figures: it holds its board record exactly that long (publish_record). */
static int own_active(const struct dstate *ds, int64_t now)
{
    if (ds->busy_since)
        return 1;
    if (ds->act_at <= 0)
        return 0;
    int measured = ds->act_end && ds->act_end + COVER_NS >= ds->act_at;
    int64_t last = measured && ds->act_end > ds->act_at ? ds->act_end : ds->act_at;
    return now - last < (measured ? IDLE_WINDOW_NS : SHARE_WINDOW_NS);
}

/* Sets the context claim beside this process's record (board.c, HAMI_BCTX_*): how many contexts its container kept
 * busy on the GPU per busy instant over the last 100 ms (siblings.c sib_contexts), at most one more than the other
 * processes of the container measuring on the device (sib_bound: presence locks); one context while it has no
 * sibling. Worked out at most every 5 ms; a system call only when the claim changes. Why: its neighbours count
 * the container as that many contexts in their processor-sharing charge (throttle.c hami_vgpu_ps_charge_w_ns). */
static void publish_claim(struct dstate *ds, int64_t now)
{
    if (ds->rec_claim < 100 || ds->rec_lane < 0 || now - ds->claim_at < FRAC_GAP_NS)  /* none, or poisoned */
        return;
    ds->claim_at = now;
    int c = 100;
    if (sib_others(ds)) {
        int most = 100 * (1 + sib_bound(ds, now));
        c = sib_contexts(ds, now - FRAC_TAU_NS, now, now);
        c = c < most ? c : most;
    }
    vg_board_ctx_put(ds->bgpu, ds->rec_user, ds->rec_lane, &ds->rec_claim, (uint64_t)c);
}

/* Sets this process's board record (board.c, layout in hami_region.h HAMI_BREC_*) to what it publishes on the
 * board for lending and switch charging: its SM limit, held for credit within 100 ms, its charged and queued
 * fractions and its demand alone, while it is active; none once it went idle. Called with the entry refresh
 * (note_users: every millisecond, every 4 ms alone and quiet) and by the watcher; a system call only when the record
 * changes. */
void publish_record(struct dstate *ds, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    if (!g)
        return;
    if (ds->rec_user >= 0 && ds->rec_user != ds->user_idx) {  /* moved to another user slot: the old record goes */
        vg_board_rec_put(g, ds->rec_user, &ds->rec_lane, &ds->rec_len, &ds->rec_claim, 0);
        ds->rec_user = ds->rec_lane = -1;
    }
    if (ds->user_idx < 0)
        return;
    uint64_t len = 0;
    if (own_active(ds, now)) {
        int held = ds->held_wrote > 0 && now - ds->held_wrote < HELD_FRESH_NS;
        len = hami_vgpu_brec_pack(vg_sm_limit(ds->dev), held, (int32_t)ds->frac_bp, (int32_t)ds->queued_bp,
                                  ds->capped ? (int32_t)ds->solo_bp : 0);
        if (len && ds->turn_want)
            len += HAMI_BREC_TURN;  /* HAMI_SM_TURNS: it takes turns (turns.c) */
    }
    vg_board_rec_put(g, ds->user_idx, &ds->rec_lane, &ds->rec_len, &ds->rec_claim, len);
    if (ds->rec_len || ds->rec_lane < -1) {  /* a record, or the marker of a slot with no lane free (board.c) */
        ds->rec_user = ds->user_idx;
        publish_claim(ds, now);
        if (!__atomic_load_n(&watcher_here, __ATOMIC_ACQUIRE))
            start_watcher();  /* it drops the record once this process went idle, launching or not */
    }
}

/* Refreshes this container's entry in the GPU's user list (every millisecond; every 4 ms alone and quiet:
 * launch_int.h users_quiet) and works out
 * whether another container launched on the GPU within the share window, and the share in force (ds->eff). */
void note_users(struct dstate *ds, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    if (!users_due(ds, now))
        return;
    ST_COUNT(looks);
    if (users_quiet(ds))
        ST_COUNT(looks_quiet);
    ds->user_stamp = now;
    uint64_t me = vg_region->container_id;
    if (ds->user_idx < 0 || __atomic_load_n(&g->user_id[ds->user_idx], __ATOMIC_ACQUIRE) != me) {
        ds->user_idx = -1;
        for (int i = 0; i < HAMI_BOARD_USERS && ds->user_idx < 0; i++)
            if (__atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE) == me)
                ds->user_idx = i;
        for (int i = 0; i < HAMI_BOARD_USERS && ds->user_idx < 0; i++) {
            uint64_t cur = __atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE);
            int64_t t = board_time(__atomic_load_n(&g->user_active_ns[i], __ATOMIC_ACQUIRE), now, "a user mark");
            if ((cur == 0 || now - t > 10 * SHARE_WINDOW_NS) &&
                __atomic_compare_exchange_n(&g->user_id[i], &cur, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                ds->user_idx = i;
                __atomic_store_n(&g->user_since_ns[i], 0, __ATOMIC_RELEASE);
                __atomic_store_n(&g->user_busy_ns[i], 0, __ATOMIC_RELEASE);
                __atomic_store_n(&g->user_limit[i], 0, __ATOMIC_RELEASE);  /* lends nothing until written */
                __atomic_store_n(&g->user_held_ns[i], 0, __ATOMIC_RELEASE);
                __atomic_store_n(&g->user_solo_bp[i], 0, __ATOMIC_RELEASE);
                __atomic_store_n(&g->user_took_ns[i], 0, __ATOMIC_RELEASE);
                for (int k = 0; k < HAMI_BOARD_RECENT; k++)
                    __atomic_store_n(&g->user_recent_until[i][k], 0, __ATOMIC_RELEASE);
            }
        }
        if (ds->user_idx >= 0 && ds->busy_since && ds->since_gpu)
            __atomic_store_n(&g->user_since_ns[ds->user_idx], ds->busy_since, __ATOMIC_RELEASE);
    }
    if (ds->user_idx >= 0) {
        /* a credit wait with nothing in flight while taking turns marks itself turn_gap_ns() back: its window may be
         * filled (turns.c owner_wants); list membership (100 ms and more) does not notice the difference */
        ds->act_at = ds->act_back ? now - turn_gap_ns() : now;
        __atomic_store_n(&g->user_active_ns[ds->user_idx], ds->act_at, __ATOMIC_RELEASE);
        publish_fraction(ds, now);
    }
    publish_record(ds, now);
    /* Who is active, and what each active neighbour may lend: a neighbour is active when its board entry says so
     * or when one of its processes holds a record (which it does exactly while the same rule, on its own figures,
     * says so: a rewritten or erased entry hides nobody). What it lends and its demand alone come from its records
     * combined with its board values in the direction that lends least (each bound below by the board's plain
     * value, which only its holder and forgers write: a forger can make it lend less, never more). */
    struct vg_brec rec[HAMI_BOARD_USERS];
    int rk = vg_board_rec_read(g, rec);
    /* the contexts each neighbour counts (its record holders' claims, board.c): read every 10 ms, not every 1 ms (two
     * kernel queries per holder of a slot with several); ps_charge uses them for 100 ms */
    int ctx_due = rk >= 0 && now - ds->ctx_at >= 10000000LL;
    if (ctx_due || rk < 0) {
        for (int i = 0; i < HAMI_BOARD_USERS; i++)
            ds->ctx_w[i] = 100;  /* one context each, unless its record holders claim more (below) */
        ds->ctx_at = rk < 0 ? 0 : now;
    }
    int shared = rk < 0, n = 0;  /* records that cannot be read: somebody may be there (capped, nothing lent) */
    int64_t nbr = 0, hi_sum = 0, nbr_turn = 0;
    int32_t limit[HAMI_BOARD_USERS], frac[HAMI_BOARD_USERS], queued[HAMI_BOARD_USERS], solos[HAMI_BOARD_USERS];
    int64_t frac_age[HAMI_BOARD_USERS], held_age[HAMI_BOARD_USERS];
    for (int i = 0; i < HAMI_BOARD_USERS; i++) {
        if (i == ds->user_idx)
            continue;  /* its own container (its other processes' records are in its own slot); without a slot
                          nothing is skipped, not even an entry with its id (a forger could write it anywhere) */
        uint64_t id = __atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE);
        int listed = id && id != me;
        int64_t t = board_time(__atomic_load_n(&g->user_active_ns[i], __ATOMIC_ACQUIRE), now, "a user mark");
        int64_t end = board_time(__atomic_load_n(&g->user_busy_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
        /* a neighbour whose last activity (launch, wait for credit, heartbeat of work in flight) is covered by a
         * measured busy interval went idle when that interval ended: it is gone 100 ms later. One launching
         * unmeasured (alone under default) gives no end: its work may still be queued, so it counts for 500 ms
         * after its last launch */
        int measured = end && end + COVER_NS >= t;
        int64_t last = measured && end > t ? end : t;
        int on_board = listed && t && now - last < (measured ? IDLE_WINDOW_NS : SHARE_WINDOW_NS);
        if (!on_board && !rec[i].present)
            continue;
        shared = 1;  /* an active neighbour: what it may lend (bounded in hami_vgpu_lent_share) */
        int32_t bl = __atomic_load_n(&g->user_limit[i], __ATOMIC_ACQUIRE);
        int32_t bf = __atomic_load_n(&g->user_frac_bp[i], __ATOMIC_ACQUIRE);
        int32_t bq = __atomic_load_n(&g->user_queued_bp[i], __ATOMIC_ACQUIRE);
        int32_t solo = __atomic_load_n(&g->user_solo_bp[i], __ATOMIC_ACQUIRE);
        int64_t ft = __atomic_load_n(&g->user_frac_ns[i], __ATOMIC_ACQUIRE);
        int64_t ht = __atomic_load_n(&g->user_held_ns[i], __ATOMIC_ACQUIRE);
        const struct vg_brec *r = &rec[i];
        if (ctx_due)
            ds->ctx_w[i] = vg_board_ctx_read(g, i, r);  /* 100 unless two or more hold records there */
        if (rk < 0 || !r->present || r->bad) {
            /* no record (an entry that only the board lists) or one no holder writes: lends nothing; a bad
             * record's demand is taken as the whole GPU (switches charged), an absent one's as unmeasured */
            limit[n] = 0;
            frac[n] = queued[n] = 10000;
            solos[n] = 0;
            frac_age[n] = held_age[n] = INT64_MAX;
            if (rk < 0 || r->bad) {
                nbr += 10000;
                nbr_turn += 10000;
            }
            if (bl >= 1 && bl <= 100)
                hi_sum += bl;
            n++;
            continue;
        }
        /* the lowest limit for its spare, the highest for the sum of limits, the highest fractions (each way: lends
         * less); a board value out of range is passed on as it is, and lends nothing (hami_vgpu_lent_share) */
        limit[n] = bl < 1 || bl > 100 || bl < r->limit_lo ? bl : r->limit_lo;
        hi_sum += bl > r->limit_hi && bl <= 100 ? bl : r->limit_hi;
        frac[n] = bf < 0 || bf > 10000 || bf > r->frac_bp ? bf : r->frac_bp;
        queued[n] = bq < 0 || bq > 10000 || bq > r->queued_bp ? bq : r->queued_bp;
        if (solo < r->solo_bp)
            solo = r->solo_bp;
        solos[n] = solo;  /* the higher of the two (lends less); it lowers a demand estimate at most to the charge */
        if (r->limit_lo < 100 && solo > 0)  /* capped: its demand is measured (bounded below) */
            nbr += solo < 10000 ? solo : 10000;
        /* for turns (turns.c turn_wanted): one that takes turns said its own turns estimate is at least its limit,
         * which its published demand alone (the older estimate, without its full-ring waits) may read below: on the
         * H100 the 70 % training tenant published 56-68 % and its 30 % neighbour, 33-50 % itself, read the GPU
         * as not contended. A record's limit is 1..100 (board.c), so this adds at most what a record's own demand
         * alone could say (a forger gains nothing it could not write there) */
        int64_t ts = solo < 10000 ? solo : 10000;
        if (r->turns && (int64_t)r->limit_hi * 100 > ts)
            ts = (int64_t)r->limit_hi * 100;
        if (r->limit_lo < 100 && ts > 0)
            nbr_turn += ts;
        /* ages: a time <= 0 was never written (stale, never held); one in the future gives a negative age,
         * which lends nothing (hami_vgpu_lent_share); no subtraction can overflow. Its record's held mark makes
         * it held whatever the board says */
        frac_age[n] = ft > 0 ? now - ft : INT64_MAX;
        held_age[n] = r->held ? 0 : ht > 0 ? now - ht : INT64_MAX;
        n++;
    }
    int sm = vg_sm_limit(ds->dev);
    int eff = vg_cfg.core_policy == VG_POLICY_DEFAULT && !vg_cfg.sm_no_lend && sm + hi_sum <= 100
                  ? hami_vgpu_lent_share_sliced(sm, limit, frac, queued, solos, frac_age, held_age, n,
                                                vg_nvml_others_bound(ds->dev, now), vg_cfg.sm_lend_sliced) : sm;
    if (eff != ds->eff && (eff > sm || ds->eff > sm))
        vg_log(VG_DEBUG, "device %d: share %d%% (limit %d%%, %d%% lent by idle neighbour shares)", ds->dev, eff,
               sm, eff - sm);
    ds->eff = eff;
    ds->nbr_bp = nbr < 10000 ? nbr : 10000;
    ds->turn_nbr_bp = nbr_turn < 10000 ? nbr_turn : 10000;
    update_solo_demand(ds, now);
    turns_update(ds, rec, rk, now);
    if (shared != ds->shared)
        vg_log(VG_INFO, "device %d: %s", ds->dev, shared ? "another container is launching on this GPU: the SM "
                                                            "limit applies" : "alone on this GPU: not capped "
                                                            "(GPU_CORE_UTILIZATION_POLICY=default)");
    ds->shared = shared;
    sample_rate(ds);  /* the coarse samples' rate: fewer alone far below the limit, the default at once beside anyone */
}
