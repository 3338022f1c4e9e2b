/* watcher.c - the per-process watcher thread (collects completions while the program does not launch, closes
 * bursts, keeps the board fresh) and what a fork does to it. Separate from launch.c: it runs beside the launches,
 * never in them. */
#define _GNU_SOURCE
#include "launch_int.h"

static pid_t watcher_pid;
/* 1 once the watcher runs in this process; cleared in a forked child, which starts its own. Checked on every
 * launch instead of comparing getpid() (a system call since glibc 2.25: 14 % of the fake launch loop's time). */
int watcher_here;

void watcher_forked(void)
{
    watcher_here = 0;
    vg_forked_child = 1;  /* its inherited locks may be held for good: the destroy hook stays off them (launch.c) */
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {  /* a forked child draws its own samples, not its parent's */
        states[i].rng = sample_seed(i);
        states[i].rec_user = states[i].rec_lane = -1;  /* the records it inherited are its parent's */
        states[i].rec_len = states[i].rec_claim = 0;
        states[i].sib_idx = -1;  /* ... and publishes its busy intervals in an entry of its own */
        states[i].sib_token = 0;
        states[i].ndfr = 0;  /* the parent charges its own deferred spans (charge.c deferred_charge) */
        states[i].dfr_sum = 0;
    }
}

/* One watcher thread per process: it collects completions while the program does not launch, closes a
 * burst's last launches with a mark soon after the burst (so its end is measured, not guessed), keeps the
 * busy interval's heartbeat fresh on the node board, and keeps a task priority's level marked active for as
 * long as the launched work is still running on the GPU (lower levels stay held until it is really idle).
 * It polls every 100 us while work is outstanding and it collects, every millisecond while nothing is (alone and
 * coarse, up to HAMI_WATCHER_ALONE_POLL_US while the launcher collects: below).
 * While the launching thread collects itself (launcher_collects, or a launch holds the lock) a wake does nothing,
 * so those wakes back off: each one doubles the next sleep, from 100 us up to HAMI_WATCHER_BUSY_POLL_US (default
 * 1 ms), and a wake that collects starts again at 100 us. Issue 18 (H100, record 8 stage 10): the fixed 100 us
 * poll woke ~4,650 times a second beside the inference loop, 86 % of them deferred, and its ~4,700 involuntary
 * switches a second of the loop's thread cost it ~5 % on one core (83.1 % of native; 1 ms: 87.7 %, no watcher
 * 87.8 %). The price: a launcher that stops is noticed up to the ceiling later, so a coarse run's closing mark
 * may be recorded after the GPU went idle; its span then holds that idle gap, which goes to the coarse doubt
 * (charged the estimate, at most the span: over-charge at worst, never under). Not after a synchronize: the wait
 * closes the run itself (launch.c wait_close_runs). Precise launches each have their
 * own mark and lose nothing.
 * Alone (issue 18, record 8 stage 13: the back-off's ~1,100 wakes a second still cost the H100 inference loop ~5 points
 * on one core, 89.6 % of native against 94.7 % with no watcher): while every device the process measures is measured
 * coarsely (its credit far above what its in-flight work could cost, no neighbour asking for precision) and no
 * neighbour is on its GPU (ds->shared), the ceiling is HAMI_WATCHER_ALONE_POLL_US (default 4 ms) instead, and such a
 * deferred wake may sleep past the 1 ms idle poll. Nobody else's charge depends on a coarse tenant's collections (it
 * publishes no busy interval), and its own coarse spans can only grow by a late closing mark (the doubt, over-charge at
 * worst). The bound still holds: a launcher that stops is collected within the ceiling (+ the 200 us "collects"
 * window), and the first wake that finds a neighbour or a precise device goes back to the 1 ms ceiling.
 * Coarse beside a neighbour (HAMI_WATCHER_COARSE_PAIR=1, off by default; issue 18, pairlean): the same pace. A device
 * is coarse beside a neighbour only with its credit far above its in-flight work, no neighbour asking for precision and
 * no switch charging (launch.c choose_mode), so no turns either; it publishes no busy interval (the one its precise
 * phase left open closes at its first coarse collection: until then the busy ceiling), so a neighbour's charge never
 * reads its collections. What a neighbour does read from it, its activity mark, charged fraction and
 * lending record (lending.c), the launcher itself keeps fresh at each launch (note_users, every ms) and judges over
 * 100-500 ms windows, so a stop seen up to the alone ceiling later (4 ms, against 1 ms) moves none of them by more than
 * that. A deferred wake collects nothing, so no charge moves either; a run left open goes to its own doubt, as alone
 * (a step's sync closes it at the wait's return: launch.c proven_close). A neighbour's ask for precision or a switch
 * charge ends the coarse phase at the next launch, and the next wake goes back to the 1 ms ceiling. Why: the H100's
 * inference pairs (record 19) kept 74-81 % of the native pair, 58-90 % of each tenant's launches coarse, their
 * watchers waking 5-8 times a lone tenant's per launch on the loop's own core. */
static pthread_mutex_t watcher_mu = PTHREAD_MUTEX_INITIALIZER;
/* The watcher's CPU clock, for the launch stats line (launch.c): its own time, which a program pinned to one core
 * loses. Set once the thread runs. */
clockid_t watcher_clock;
int watcher_clock_set;

/* Whether the launching thread collects itself (the watcher leaves it the harvest): it launched within two harvest
 * gaps and harvested within two of its gaps. Read under the device's lock, or before taking it as a hint (relaxed
 * loads: the launcher writes these under the lock; a stale hint only means the locked test decides). */
static int launcher_collects(const struct dstate *ds, int64_t now)
{
#ifdef HAMI_BISECT_NO_HARVEST
    if (__atomic_load_n(&ds->coarse, __ATOMIC_RELAXED))
        return 0;  /* bench (launch_int.h): a coarse launcher never collects */
#endif
    return now - __atomic_load_n(&ds->launch_at, __ATOMIC_RELAXED) < 2 * HARVEST_GAP_NS &&
           now - __atomic_load_n(&ds->harvest_at, __ATOMIC_RELAXED) < 2 * harvest_gap(ds);
}

static void *watcher(void *arg)
{
    (void)arg;
    CUcontext cur = NULL;
    int64_t period = 1000000;
    int64_t defer = WATCH_POLL_MIN_US * 1000LL;  /* the next sleep after a wake that left the collecting to the launcher */
    if (vg_cfg.launch_stats && pthread_getcpuclockid(pthread_self(), &watcher_clock) == 0)
        __atomic_store_n(&watcher_clock_set, 1, __ATOMIC_RELEASE);
    for (;;) {
        sleep_ns(period);
        period = 1000000;
        int deferred = 0, collected = 0;
        int alone = !vg_cfg.priority_env;  /* every ready device coarse with no neighbour (the ceiling above); an explicit
                                              task priority keeps its level marked active at the busy pace */
        ST_COUNT(wakes);
        vg_owed_watch(vg_now_ns());  /* a sibling that died with work in flight is charged (region.c) */
        for (int d = 0; d < HAMI_MAX_DEVICES; d++) {
            struct dstate *ds = &states[d];
            if (!__atomic_load_n(&ds->ready, __ATOMIC_ACQUIRE))
                continue;
            /* relaxed reads of fields the launcher writes under the lock: a stale one only sets one sleep's ceiling
             * and one NVML count's gap */
            int nbr = __atomic_load_n(&ds->shared, __ATOMIC_RELAXED);
            /* beside a neighbour the alone pace only with HAMI_WATCHER_COARSE_PAIR=1 and no busy interval of its
             * precise phase still open on the board (closed at its first coarse collection: launch.c harvest), which
             * a neighbour's charge reads until it closes */
            int lean_pair = vg_cfg.watch_coarse_pair && !__atomic_load_n(&ds->since_gpu, __ATOMIC_RELAXED);
            if (!__atomic_load_n(&ds->coarse, __ATOMIC_RELAXED) || (nbr && !lean_pair))
                alone = 0;
            /* the bound on n(t): an NVML query every 100 ms, off the launch path; every 500 ms while no neighbour is on
             * the GPU (it bounds neighbours only). Not "coarse": every verification window (~one per 100 ms alone)
             * clears that flag, and a wake inside one counted again (record 16 stage 24: 121-192 counts in ~14 s) */
            if (vg_nvml_procs_refresh(d, !nbr && !vg_cfg.priority_env))
                ST_COUNT(nvml_q);
            int64_t now = vg_now_ns();
            sib_bound_refresh(ds, now);  /* the bound on the siblings counted (multiproc): every 100 ms */
            gate_watchdog(ds, now);  /* gatemarks: a launch call waiting for the GPU behind its own gate (unlocked) */
#ifdef HAMI_BISECT_NO_THROTTLE
            bisect_refill(ds, now);  /* bench (launch_int.h): the launches skip the throttle */
#endif
#ifndef HAMI_WATCHER_ALWAYS_HARVESTS
            if (launcher_collects(ds, now)) {
                /* the launching thread harvests, as the test under the lock below finds: read first without the
                 * lock, so this wake leaves the lock's cache line alone. A trylock and unlock every 100 us moved
                 * that line to this core and back at the launcher's next launch (issue 18: ~97 % of the H100
                 * inference loop's 6,600 wakes a second ended here). A stale read only takes the locked path */
                deferred = 1;
                ST_COUNT(wakes_deferred);
                continue;
            }
#endif
            if (pthread_mutex_trylock(&ds->mu) != 0) {
                /* a launch is in progress (the device's lock is held across the driver's launch call): the launcher
                 * collects itself. Its busy poll, as below: a launch-bound loop holds the lock most of the time, and
                 * every wake here preempts it when they share a core (issue 18, fake: 6,200 involuntary switches of
                 * the launching thread in 50,000 launches) */
                deferred = 1;
                ST_COUNT(wakes_deferred);
                continue;
            }
            now = vg_now_ns();
            if (ds->ctx != cur && vg_real.cuCtxSetCurrent && vg_real.cuCtxSetCurrent(ds->ctx) == CUDA_SUCCESS)
                cur = ds->ctx;
#ifndef HAMI_WATCHER_ALWAYS_HARVESTS
            if (launcher_collects(ds, now)) {
                pthread_mutex_unlock(&ds->mu);  /* the launching thread harvests: no contention on the lock */
                deferred = 1;
                ST_COUNT(wakes_deferred);
                continue;
            }
#endif
            collected = 1;
            if (ds->ctx == cur)
                close_bursts(ds, now);
            harvest(ds);
            ds->harvest_at = now;
            if (ds->stale)
                stale_settle(ds);  /* its events failed: the work they left uncharged is charged (launch.c) */
            if (ds->unflushed)
                flush_launches(ds, now);
            if (ds->busy_since) {
#ifdef HAMI_BISECT_NO_HARVEST
                period = ds->coarse ? COARSE_HARVEST_NS : 100000;  /* bench: the launcher's own coarse pace */
#else
                period = 100000;
#endif
                if (ds->bgpu && ds->user_idx >= 0) {
                    ds->act_at = now;
                    __atomic_store_n(&ds->bgpu->user_active_ns[ds->user_idx], now, __ATOMIC_RELEASE);
                    publish_fraction(ds, now);  /* a program blocked in a sync keeps its fraction fresh too */
                }
                if (ds->bgpu && vg_cfg.priority_set) {  /* active until the queued work is expected to finish */
                    int64_t ahead = inflight_ns(ds);
                    __atomic_store_n(&ds->bgpu->prio_active_ns[vg_cfg.priority],
                                     now + (ahead < INFLIGHT_MARK_MAX_NS ? ahead : INFLIGHT_MARK_MAX_NS),
                                     __ATOMIC_RELEASE);
                }
            }
            publish_record(ds, now);  /* kept current while it blocks, dropped once it went idle */
            pthread_mutex_unlock(&ds->mu);
        }
        /* the back-off (see above): a collection (the launcher stopped, or never collected) starts it again; each
         * wake that found the launcher collecting doubles it, up to the knob's ceiling (100 = the fixed 100 us poll
         * of before) */
        if (collected)
            defer = WATCH_POLL_MIN_US * 1000LL;
        if (deferred) {
            /* alone and coarse, a wake that only deferred sleeps the whole back-off, past the 1 ms idle poll too */
            int64_t ceiling = alone ? vg_cfg.watch_alone_ns : vg_cfg.watch_poll_ns;
            /* ... and its ramp starts at the busy ceiling, not at 100 us: a collection (a sync, a pause) restarted it
             * every few steps of a launch-bound loop (fake, a sync every 183 launches: ~540 wakes a second with the
             * 4 ms ceiling, against ~760 with 1 ms). HAMI_WATCHER_FLAT_RAMP=1: beside a neighbour too (issue 18,
             * pairhost: the H100 inference pairs' watchers woke ~1,450 times a second, 6.5 times a lone tenant's
             * wakes per launch, ~1,700 of ~5,950 collecting in the step's sync and each restarting the ramp at
             * 100 us; every wake preempts the loop on its core). The bound is unchanged: a launcher that stops is
             * noticed within the busy ceiling, as at the end of the ramp; the first wake after a collection still
             * comes at the collecting pace (100 us while work is outstanding) */
            if ((alone || vg_cfg.watch_flat_ramp) && defer < vg_cfg.watch_poll_ns)
                defer = vg_cfg.watch_poll_ns;
            period = defer < period || (alone && !collected) ? defer : period;
            if (period > vg_cfg.watch_poll_ns)
                ST_COUNT(wakes_long);
            else if (period == defer && defer < vg_cfg.watch_poll_ns)
                ST_COUNT(wakes_ramp);  /* a ramp's step below the ceiling (none with the flat ramp) */
            defer = 2 * defer < ceiling ? 2 * defer : ceiling;
        }
    }
    return NULL;
}

void start_watcher(void)
{
#ifdef HAMI_BENCH_NO_WATCHER
    /* bench only (issue18_gpu.sh stage 9): no watcher thread at all, to see what it costs a launch-bound loop on
     * its core and on the driver's lock. Not a shippable build: bursts close and charges land only when the program
     * launches, syncs or exits. */
    __atomic_store_n(&watcher_here, 1, __ATOMIC_RELEASE);
    return;
#endif
    pthread_mutex_lock(&watcher_mu);
    if (watcher_pid != getpid()) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, watcher, NULL) == 0) {
            watcher_pid = getpid();
            __atomic_store_n(&watcher_here, 1, __ATOMIC_RELEASE);
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&watcher_mu);
}
