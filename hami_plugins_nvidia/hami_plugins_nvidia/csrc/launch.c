/* launch.c - the SM limit and task priority, applied on every kind of kernel launch.
 *
 * The limit is a cap on GPU time, not on launches. Without MPS the kernels of two contexts never run at the
 * same time: the GPU time-slices between the contexts that have work queued. So a tenant's GPU time is
 * modelled as processor sharing: the integral, over the time its work is on the GPU, of 1/n(t), n(t) being
 * the number of tenants with work on the GPU at t. A tenant's busy period on a stream starts when the GPU
 * reaches its first launch - a start mark (a timing event recorded before a launch that finds the stream
 * idle) completes only once its context holds the GPU, so time spent waiting behind another context's time
 * slice (FIFO between contexts when kernels are shorter than the ~2 ms slice) is not charged - and each
 * later launch is chained (it starts when the previous one on the stream ended, or at its host enqueue if
 * later). A GPU-bound stream never goes idle and pays no start marks. Completion times come from the GPU:
 * timing events, converted to host time (CLOCK_MONOTONIC, one clock for every process) through a reference
 * event whose host time is known within bounds (an event cannot complete before it is recorded, nor after
 * the host saw it complete; see completion()); every start mark is a calibration sample and the reference is
 * re-based every two seconds. While the bounds are wider than 20 us a start mark is asked as its launch call returns
 * (prompt_ask): the collections see a mark a launch or more after it ran, and a loop launching every 45 us alone kept
 * ~42 us bounds, its converted times 20 us late (fake: 1.3-1.4 x its GPU time; docs/results/2026-12-06-fake-calguard.md). Each tenant publishes its current or last busy interval on the node board,
 * opened at the GPU start of the busy period, and while it is open the last time its work was seen running;
 * every tenant computes n(t) by interval intersection (throttle.c hami_vgpu_ps_charge_ns). An interval is
 * published as its owner charges itself: it closes as soon as nothing the owner will charge is on the GPU
 * (what remains waits behind a start mark for another context's slice), and an open one counts only as far
 * as it was seen running. Before this (issue 18, 1.5 ms kernels synchronised one by one under 2 ms slices on
 * the fake), an interval left open while its owner waited for its turn, and times converted early by the
 * least wait of a tenant's marks, counted n(t) = 2 while a tenant ran alone: charges of 0.80-0.99 x the GPU
 * time it got (now 1.00; docs/results/2026-12-04-fake-timeslice-charge.md). Chained work (launched behind its own
 * running work) has no start mark to say it waits: a start mark that waited publishes that its context took the
 * GPU (user_took_ns), and a neighbour's chained work yields from then until the taker's interval ends within one
 * slice (taken_at, resume_time, chained_charge; docs/results/2026-12-05-fake-mixed-slices.md). A precise start mark
 * completes before its launch's kernel is even submitted on an idle GPU: the busy period starts no earlier than the
 * launch call's return (submitted_at; HAMI_SM_LAUNCH_LEAD_NS moves it earlier, never before the call began).
 *
 * Each container has a token bucket (its shared region) earning limit% of wall time, 50 ms deep beyond the work
 * it has queued (HAMI_BURST_NS, the queued work counted as at least the in-flight bound; the square wave's resume
 * credit while it waits for it and spends it: bucket_cap; no wave taking turns or sharing the GPU under default:
 * throttle), charged with that processor-sharing time; credit earned
 * beyond that depth is a per-process reserve, up to 160 ms with the credit (HAMI_COARSE_CAP_NS), which only the
 * coarse and fast-path decisions count, dropped when the tenant is held (issue 18: the whole 160 ms, or twice the
 * resume credit, was spendable, and the H200's inference loop alone at 70 % was charged 75.7-77.7 % of a 4 s
 * window); launches wait while it is empty (the debt is carried) and
 * while the oldest outstanding launch is older than 30 ms (a deep queue cannot run far past its budget).
 * Work queued but not yet measured is counted in advance (outstanding marks x the average charge per mark; a precise
 * launch whose kernel the duration table knows at its kernel's duration: launch_int.h kern_key, queued_work_ns).
 * A program whose busy time stays below its limit is never held. Per launch: one end mark (except in a deep run,
 * below); a start mark on an idle stream only while another container is present (alone there is nobody to wait behind, so the
 * launch's submission is the start, as for a start mark: span_start, sub_floor; one start mark per 5 ms still calibrates the
 * clock). Alone the span started at the host enqueue, before the launch call, until issue 18's alonespan; a span from the
 * submission must also leave the record call's host time out of the converted end's error (sub_floor: from the call's
 * return alone the fake's inference shape was charged 0.57 x; docs/results/2026-12-06-fake-alonespan.md), at most what
 * a converted time can be early by (a preempted record call moved every span start back by its milliseconds). Completions are collected
 * by the launching thread itself every 100 us while it launches; the watcher thread does it only while the
 * program does not launch (the two contending for the lock cost the inference loop a third of its passes on
 * the H200; HAMI_WATCHER_ALWAYS_HARVESTS builds the old way for that comparison). The watcher closes any
 * launch left without a mark 100 us after it. Streams being captured into a CUDA graph get no marks (the
 * graph's launch is the launch).
 *
 * GPU_CORE_UTILIZATION_POLICY: force always caps, disable never, default caps only while another
 * container is using the same GPU under the interposer. A neighbour whose last activity (launch, wait for
 * credit, heartbeat of work in flight) is covered by a measured busy interval is gone 100 ms after that
 * interval ended (one square-wave period while shared); one whose launches are not measured (alone under
 * default, so uncapped and unmeasured) counts for 500 ms after its last launch, since its queued work may
 * run that long after it. A launch waiting for credit re-checks this, so it goes as soon as the neighbour
 * is gone. Alone under default, launches go to the driver with no measurement.
 *
 * Measured history (docs/results/2026-12-04-h200-interposer-real-workloads.md, ...-sharing.md,
 * ...-sharing-2.md): exclusive turns through a gate lost 15-60 % of the GPU on real programs; charging
 * event-measured kernel time divided by the busy tenants under-charged everyone (a kernel's events do not
 * span the other context's time slices); charging from the host enqueue charged two launch-bound tenants
 * for waiting behind each other (54 % each for programs busy 34 % alone).
 *
 * Coarse measurement (for the launch-bound cost, issue 18; measured on the H200 in record 3, run 1). Measuring
 * every launch costs a launch-bound program (a Python inference loop, ~20 us of host time per launch) two or
 * three driver calls per launch, while its decisions do not need them: a tenant whose credit is well above
 * what its in-flight work could cost (tokens - doubt > 2 x the 30 ms in-flight bound) is not held whatever
 * its launches cost. Such a tenant is measured coarsely: no start marks (one per 5 ms still calibrates), no
 * idle query, one end mark per >= 1 ms or 64-launch run of launches, completions collected every 1 ms; a stream with
 * more than 128 launches not seen completed, or a mark uncompleted 5 ms after its record, goes precise and drains
 * (coarse_behind: the in-flight bound is an age in host time, and a tenant that jumped to long kernels queued seconds
 * of them in milliseconds). A coarse mark's
 * span (from the run's first enqueue, chained, to its GPU completion) bounds the GPU time of its launches
 * from above but includes the host gaps between them; it is charged the estimate n x (average charge per
 * launch measured on the precise path), at most the span, and the rest of the span is kept as doubt, which
 * counts against the credit in the coarse test: even if every doubted nanosecond was GPU time, the tenant
 * would still be inside its budget. A coarse phase lasts at most 100 ms; then a precise verification window
 * (>= 128 launches and >= 2 ms) measures the average again: at most 1.5 x the estimate used, the doubt is
 * dropped as far as the window's host gaps per launch explain it (what they do not is charged: a tenant cannot
 * show tiny kernels to the windows and run long ones in the phases); more, the phase's launches are charged again
 * at the window's average, at most the doubt (charging the whole doubt charged the host gaps as GPU time). No
 * estimate yet: the span is charged. The windows alone can be steered by a tenant that tells the modes apart (the
 * library's event records per launch, or its launches' own host time): host gaps in its windows "explained" any
 * doubt (on the fake, 30 % force alone: 63-77 % of the GPU, charged 0.04-0.12 x it; a random phase length did
 * not help, the tenant reacts to the mode, not to a clock). So one coarse launch in 32, drawn at random when it
 * is made (coarse_sample: it cannot be steered), is measured alone between a start and an end mark (the start
 * mark is also the end mark of the run before it: one event, push_boundary; the span from the launch's submission,
 * as a precise start mark's, not from the mark: alonepath), and the verification charges the
 * phase's launches at the samples' average too (beyond 0.5 us of slack per launch, at most the doubt; a phase that
 * drew no sample, at the last samples' average): ~32 %, charged ~1.0 x.
 * The part of a coarse span after its mark was recorded is charged as it is (all its launches were queued by
 * then: no host gap can be in it), never left to the doubt: a training step's GEMMs queued ahead of the GPU, then
 * host-paced tiny kernels, was charged 0.36 x its GPU time on the fake. A mark that is all tail (the GPU reached it
 * only after it was recorded) is charged exactly and leaves the verification (its launches and samples do not
 * judge the others). Alone only: beside another container a tail may hold the neighbour's time slices.
 * A host wait proves the open coarse run of each stream it covers complete at its return (wait_note_runs, wait_end),
 * and a proven run left idle past it is closed there with no event (proven_close): a run left open across a stopped
 * process had the stop in its span, charged as doubt (issue 18 record 14: held 23 times, 15.5 s, 25 % busy at 70 %).
 * Fairness: a coarse tenant's busy intervals would over-state n(t) for its neighbours and under-charge them,
 * so a coarse tenant publishes no busy interval (its open one is closed at its last precise end; its
 * neighbours are then charged as if it were idle: over-charged, never under), and a capped tenant which is held,
 * or whose credit is low while it is charged within 2 points of its share (credit_falls), writes the time into its
 * own user slot of its GPU's board entry (user_held_ns, an even time; also into waiter_since_ns, the one per-GPU
 * field that older builds read): while another container's slot says so within the last 200 ms nobody goes coarse,
 * so the tenants whose decisions depend on n(t) see every neighbour measured precisely (one field per GPU let a
 * tenant's own request hide its neighbour's). One low on credit but charged below its share (its start ramp: a
 * capped spell starts from the credit it has) marks itself held, not asking (an odd time): it gains credit whatever
 * its neighbours do, and on the fake its requests were every request that made a fitting pair's tenant precise
 * (pairask). A forged request only makes neighbours measure precisely (their cost, not their share).
 * HAMI_SM_PRECISE=1 turns coarse mode off; HAMI_LAUNCH_STATS=1 reports the launch path's own host cost at exit
 * (two disjoint samples, see lst).
 *
 * The launch path's own cost (issue 18; docs/interposer.md "The launch path's own host cost"): one clock read per
 * launch unless it waits; no system call; one context call (cuCtxGetCurrent: the device is kept per thread with its
 * context, dl.c vg_ctx_device, invalidated by every hooked context destruction); while the credit is ample the
 * throttle is skipped (credit_ample: its refill is deferred by at most 1 ms, never lost or doubled); the region's launch
 * count is flushed once a ms; a completed mark costs one driver call, its conversion (mark_done), and a chained run of
 * precise end marks (each launched while the one before had not completed, as its idle check found) one for the run
 * (chained_run, run_probe: charged as one span, the same processor-sharing time). HAMI_SM_SAMPLE_EVERY sets the coarse samples'
 * rate (default one in 32), an A/B knob for the hardware runs (docs/interposer.md).
 *
 * Lending (GPU_CORE_UTILIZATION_POLICY=default only; HAMI_SM_NO_LEND=1 turns it off): each container publishes its
 * SM limit and its recent charged GPU fraction (a ~100 ms decaying average of its region's busy counter, every
 * >= 5 ms from the launch path and the watcher) and marks itself held when it waits for credit or runs low; a
 * capped tenant's share in force is its limit plus what its active neighbours leave unused of theirs
 * (throttle.c hami_vgpu_lent_share, which bounds every value read). Closed busy intervals also go into a ring of
 * the last 32 per user, so a long charge span sees every short busy period of a launch-bound neighbour.
 *
 * Context switches (issue 18, the CUDA-graphs pair; docs/interposer.md "CUDA graphs on two streams"): a tenant is
 * also charged the GPU time spent switching into its context (switch_gap) while the GPU is contended: its demand
 * alone plus its capped neighbours' (each estimated from its own launches, update_solo_demand, and published on
 * the board) reach 100 % (switch_charged). That holds a pair whose switches fill the GPU to its limits, and leaves
 * a fitting pair of launch-bound tenants, whose switches fill time nobody would have used, charged its kernels.
 * HAMI_SM_CHARGE_SWITCHES=1 charges them always, 0 never (the rule before 2026-12-05).
 * Taking turns (turns.c; the default, HAMI_SM_TURNS=0 turns it off) has contended GPU-bound tenants take turns in
 * windows of a shared period instead of time-slicing: throttle() asks turns_hold once the credit lets a launch go.
 *
 * Deep runs (issue 18, task deepq; deep_defer, deep_proven; HAMI_SM_DEEP_RUN, default 32, 1 = off). With one precise
 * mark per launch a stream was at most RING - 1 = 127 launches ahead of the GPU: the H100's training loop (~750
 * launches a step, one sync) waited 443-977 ms of each 5 s run for a full ring, and the short backlog ran dry in its
 * host-paced phases inside its own turns' windows (charged, no work done). A precise launch made while its stream's
 * backlog is deep (>= 16 launches and >= 2 ms of estimated work closed by marks not yet collected) gets no mark of
 * its own: the next launch's end mark closes the run (at most 32 launches or 500 us of host time; the watcher's
 * 100 us close and a start mark close it too). Its charge is the span from the previous completion to the run's
 * mark, exactly the sum of per-launch spans when the mark before it completed after the run's mark was recorded
 * (then every launch was queued behind running work, and the run's mark behind its last launch): checked at
 * collection from the converted times, at no driver call. A run that fails the check is charged its span all the
 * same (an upper bound of its GPU time: over-charged, never under) and the stream marks every launch for 20 ms.
 * The in-flight estimate counts every deferred launch at the average charge per launch (deep_extra), the 30 ms
 * bound a run's first launch; no deep runs in coarse mode, on a per-thread default stream, or once a capture was
 * seen. Fake libcuda, a training step's shape alone at 90 % precise: full-ring waits ~1.0-1.6 s -> < 0.1 s of a
 * 2-3 s run, 1.00 -> ~0.6-0.7 event records a launch (docs/results/2026-12-06-fake-deepq.md).
 * With chained runs (above): a deep run's mark may be a chained run's first (its bet judged by the completion before
 * the run, converted as the previous run's end), or a later member only once the host proved its bet (deep_seen); each
 * member's launches, deep_extra and bet are settled once as it is popped, and a span holding a deep mark feeds the
 * in-flight estimate per launch. Fake, a deep-backlog pair: ~0.5 conversions per end mark against 1.0
 * (test_interposer_chained_runs.py; docs/results/2026-12-06-fake-lbpair-calls.md).
 *
 * Gated marks (issue 18, gatemarks; HAMI_SM_GATE_MARKS, off by default until a GPU says it helps): beside a neighbour a
 * marked launch's stream waits on the GPU for a host-written word until the launch's end mark is queued, so a 2 us
 * kernel cannot end before its end mark reaches the GPU and the span cannot hold the neighbour's turn (H200 record 13:
 * a launch-bound pair charged ~2.6 x its kernels; fake infer2c 3.3-4.4 x -> 1.00 x with chained launches gated too);
 * gate_arm says where it applies and how it falls back; gate_watchdog, why it cannot hang.
 *
 * Every time read from the node board is bounded: one more than a second in the future is ignored, and an
 * open interval counts only up to where its owner saw it running, never past now (a forged or dead entry
 * cannot lower anyone's charge beyond that; a tenant cannot raise its own share by what it writes). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "launch_int.h"

/* The launch path's own cost: see launch_int.h (lst); the sections' names for the report. */
static const char *const st_names[ST_N] = {"before the launch", "after the launch", "lock", "throttle",
                                           "marks", "idle query", "harvest"};
struct launch_stats lst = {.turn_first_ns = -1};
__thread int st_in __attribute__((tls_model("initial-exec")));  /* this launch's inner sections are sampled */
static __thread unsigned st_count __attribute__((tls_model("initial-exec")));
/* this launch's sleeps in the throttle (held), while its launch is sampled (st_pick clears it; lst.held_*_ns) */
static __thread int64_t st_slept __attribute__((tls_model("initial-exec")));

struct dstate states[HAMI_MAX_DEVICES];
static pthread_once_t states_once = PTHREAD_ONCE_INIT;

/* The seed of the coarse samples' draws: kernel randomness (getrandom) mixed with the clock and the state's
 * address, never anything the tenant sets (an env var would let it replay the draws); at init, off the launch
 * path. */
uint64_t sample_seed(int dev)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = 0;
    seed ^= (uint64_t)vg_now_ns() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)&states[dev];
    return seed ? seed : 0x2545F4914F6CDD1DULL;
}

/* Whether this coarse launch is a sample: each with probability 1 / HAMI_SM_SAMPLE_EVERY (default 32), independently
 * of every launch before it (xorshift64*: a few instructions, no system call; the upper half of its output below
 * 2^32 / N: exactly 1/N for a power of two, within 2^-32 of it otherwise); alone far below the limit 1 / (N x samp_w)
 * (sample_rate). Returns the sample's weight in the samples' average (samp_w, 1 at the default rate), 0 = none. */
static int coarse_sample(struct dstate *ds)
{
#ifdef HAMI_BISECT_NO_RECORDS
    return 0;  /* bench (launch_int.h): no samples */
#endif
    uint64_t x = ds->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ds->rng = x;
    int w = ds->samp_w > 1 ? ds->samp_w : 1;
    if (((x * 0x2545F4914F6CDD1DULL) >> 32) >= (w > 1 ? ds->samp_cut : vg_cfg.sm_sample_cut))
        return 0;
    if (w > 1)
        ST_COUNT(samples_far);
    return w;
}

/* The coarse samples' rate (issue 18, inferalone), with the board every millisecond (note_users): HAMI_SM_SAMPLE_FAR
 * (default 4) times fewer while no other container is on the GPU's board and the container's charged fraction (its
 * ~100 ms average, publish_fraction, restarted at the limit whenever it is not fresh) is under SAMPLE_FAR_PCT % of
 * its limit; the default rate otherwise, from the first launch after a neighbour is seen. Each sample weighs its rate
 * (samp_w) in the samples' average, so a phase that changed rate keeps a fair average of all its launches. Why: a
 * sample costs two event records and two elapsed-time calls, 2/3 of the inference loop's driver calls alone at 70 %
 * (H200 record 13: 0.093 records a launch, 6416 samples in 212114 launches). Fewer samples were tried before and held
 * a jump to GPU-bound for seconds (alonecost); since coarsejump the coarse path bounds the launches a stream queues
 * unseen (coarse_behind), and test_interposer_coarse_jump.py holds the jump at 1 in 128 and 256 too, the rates a
 * tenant may set itself (HAMI_SM_SAMPLE_EVERY). A tenant charged far below its limit that launches longer kernels
 * raises its fraction within ~100 ms (the default rate again), is bounded by coarse_behind meanwhile, and its
 * samples still judge the phase at the verification (sampled_excess), only from fewer of them. */
void sample_rate(struct dstate *ds)
{
    int sm = vg_sm_limit(ds->dev);
    int far = !ds->shared && ds->capped && ds->user_idx >= 0 && ds->frac_at &&
              ds->frac_bp < (int64_t)sm * SAMPLE_FAR_PCT;  /* 1/100 %: sm % x 100 x SAMPLE_FAR_PCT / 100 */
    ds->far = far;  /* the verification windows' length too (verify_due) */
    ds->samp_w = far && vg_cfg.sm_sample_far > 1 ? vg_cfg.sm_sample_far : 1;
    ds->samp_cut = vg_cfg.sm_sample_cut / (uint64_t)ds->samp_w;
}

/* Set once a stream capture has begun in this process (the cuStreamBeginCapture* hooks below). Until then no
 * stream can be capturing: the capture query and the switch to the relaxed capture mode around the library's
 * own event calls are skipped: two fewer driver calls on every launch (on the H200 the gain was within the
 * inference loop's noise; CUDA graph capture kept working). */
static int capture_seen;

static void init_states(void)
{
    for (int i = 0; i < HAMI_MAX_DEVICES; i++)
        pthread_mutex_init(&states[i].mu, NULL);
    pthread_atfork(NULL, NULL, watcher_forked);
}

static CUevent get_event(struct dstate *ds)
{
    if (ds->nfree)
        return ds->freev[--ds->nfree];
    CUevent e = NULL;
    if (vg_real.cuEventCreate(&e, 0) != CUDA_SUCCESS)
        return NULL;
    return e;
}

static void put_event(struct dstate *ds, CUevent e)
{
    if (ds->nfree < EVPOOL)
        ds->freev[ds->nfree++] = e;
}

/* q's newest uncollected mark (q has one). */
static inline struct mark *newest(const struct squeue *q)
{
    return (struct mark *)&q->ring[(q->head + q->count - 1) % RING];
}

/* Whether mark m of q is known complete with no driver call: a host wait that covered it returned success (wait_end).
 * Only "is it done?" is answered so; its completion time still comes from the GPU (mark_done, completion). */
static inline int mark_known(const struct squeue *q, const struct mark *m)
{
    return m->seq < q->known_to;
}

/* Whether an event call on one of the library's own events failed; an answer other than "not ready" also marks the
 * device's measured state stale: its events belong to a context that is gone (destroyed, reset, released to zero,
 * and perhaps re-made under the same handle) or broken, and no mark of it will ever complete (drop_measured). */
static int event_failed(struct dstate *ds, CUresult r)
{
    if (r != CUDA_SUCCESS && r != CUDA_ERROR_NOT_READY)
        ds->stale = 1;
    return r != CUDA_SUCCESS;
}

/* A coarse end mark with no event (mark.hend, proven_close): completed at m->hend, a host wait's return that proved its
 * launches complete; no driver call. */
static inline int host_done(const struct dstate *ds, const struct mark *m, int64_t now)
{
    (void)ds;
    return m->hend <= now;
}

/* Whether the newest mark m of a stream has completed, asked with an event query (or, closed by a host wait, known
 * without one: host_done) */
static int query_done(struct dstate *ds, const struct mark *m, int64_t now)
{
    if (m->hend)
        return host_done(ds, m, now);
    ST_COUNT(queries);
    return !event_failed(ds, vg_real.cuEventQuery(m->e));
}

/* Host time at which event e completed (e has completed), from the reference event. The reference's host
 * time is known only within bounds: every completed mark gives one on each side (it cannot have completed
 * before it was recorded, rec, nor after the host saw it complete), and the tightest of each since the
 * reference was taken are kept. The estimate is the lower bound (alone, a start mark completes within
 * microseconds of its record), unless the upper bound says it is more than 20 us early: the promptest of
 * the collections (every 100 us), or the ask of a start mark as its launch call returns (prompt_ask), saw its mark
 * complete within 20 us. The lower bound alone put every time
 * early by the least wait a mark had behind another context's time slice: under contention no mark
 * completes promptly, and the spans shifted onto the neighbour's, counting n(t) = 2 while the tenant ran
 * alone (measured on the fake: 100-430 us early, the 30 % tenant under-charged by up to 12 %). An upper
 * bound is a clock read after the query that found the mark complete (see seen()): one read before it is
 * not one, the thread may be preempted in between (on the fake's loaded 2-core host such a bound put a
 * tenant 1.3 ms early for the rest of its run). */
static int64_t ref_time(const struct dstate *ds)
{
    if (ds->off_hi == INT64_MAX || ds->off_hi - ds->off_lo <= COLLECT_LAG_NS)
        return ds->off_lo;
    return ds->off_hi - COLLECT_LAG_NS;
}

/* Whether the reference's bounds are wider than COLLECT_LAG_NS (or there is no upper bound yet): a time converted now
 * may be late by up to the width less 20 us (ref_time), and a span's start early by up to 20 us (sub_floor). Alone
 * the bounds are wide only for the first milliseconds of a process and after each re-base (+2 x DRIFT_NS), until a
 * start mark asked as its launch call returns tightens them (prompt_ask; calibrate_due records one every ms then). */
static inline int ref_wide(const struct dstate *ds)
{
    return ds->off_hi == INT64_MAX || ds->off_hi - ds->off_lo > COLLECT_LAG_NS;
}

/* The earliest host time a span opened by a launch submitted at sub (submitted_at; 0 = none) may start from, against
 * completions converted to host time: sub itself while the reference's bounds are within 20 us (its estimate, the lower
 * bound, puts every converted time early by the promptest mark's latency, and a kernel reaches the GPU no faster than
 * an event record, so a span from the submission still holds the kernel's time; where no mark since the reference was
 * prompt, early by up to the bounds' width: the residual the rule accepts), sub less the 20 us a converted time may be
 * early by otherwise; no upper bound yet (the first marks): INT64_MIN, no move (the fake's first 10 us kernel, its end
 * converted ~9 us early, was charged 0). One rule for start marks (collect) and end marks (span_start). */
static int64_t sub_floor(const struct dstate *ds, int64_t sub)
{
    if (!sub || ds->off_hi == INT64_MAX)
        return INT64_MIN;
    int64_t early = ds->off_hi - ds->off_lo <= COLLECT_LAG_NS ? 0 : ds->off_hi - ref_time(ds);
    /* the lower bound comes from a record time read before its record call, a submission after the launch call: the
     * converted time is early by that record call's host time too, which a kernel's latency from its submission does
     * not cover (fake, 1.8 us record calls, 5 us kernels alone with a sync a pass: charged 0.57 x without this) */
    if (ds->off_lo_call > early)
        early = ds->off_lo_call;
    /* but never more than a converted time can be early: the estimate is off_lo within 20 us bounds, off_hi less 20 us
     * otherwise, and the true offset is at most off_hi, so at most min(width, 20 us). A record call preempted for
     * milliseconds after its event was queued (the event completes at once: its mark sets off_lo) moved every span
     * start back that far, until a tighter mark replaced it (over-charge); only the call's part beyond that is cut,
     * which the conversion cannot hold: the residual stays the start marks' (a record's GPU latency, above) */
    int64_t most = ds->off_hi - ds->off_lo < COLLECT_LAG_NS ? ds->off_hi - ds->off_lo : COLLECT_LAG_NS;
    if (early > most)
        early = most;
    return sub - early;
}

/* Where the span of end mark m starts: chained, where q's last completion was, or at its first launch's host enqueue
 * if later, and in both cases no earlier than that launch's submission (sub_floor). The enqueue is the host time
 * before the driver's launch call: alone a precise launch on an idle stream has no start mark (the header), and a
 * span from its enqueue held the launch call's host time and the library's code before it (fake libcuda, 5 us kernels
 * 40 us apart alone at force: charged ~4 x the fake's GPU time, held at its limit for ~11 % of the GPU at 50 %;
 * docs/results/2026-12-06-fake-alonespan.md). Every span start read from m->enq goes through here. */
static int64_t span_start(const struct dstate *ds, const struct squeue *q, const struct mark *m)
{
    int64_t start = m->enq > q->done_end ? m->enq : q->done_end;
    int64_t from = sub_floor(ds, m->sub);
    return from > start ? from : start;
}

/* Alone, a precise span converted through wide bounds (ref_wide) is charged as measured (over, never under) but starts
 * the verification window afresh: its length is the conversion's error as much as the kernel's (up to ~40 us), and a
 * window's average becomes the estimate every launch of the next coarse phase is charged (issue 18, lightcharge). On
 * the fake (this 2-core VM) the light loop (5 us kernels, 40 us of host time each) alone at force 50 was charged ~33 us
 * a launch for its first ~5 ms, until its first calibration sample asked as its launch call returned: a spell that
 * began with no credit was held at about its 66th launch, resumed with the square wave's 200 ms of credit and went
 * coarse at once on the window of those launches (64 alone far below the limit, HAMI_SM_VERIFY_FAR=2: all of them
 * wide; 128 at 1: half), so its first ~100 ms phase was charged ~33 us a launch: 1.26-1.38 x its GPU time over 2 s
 * (1.14-1.24 x at 1); now docs/results/2026-12-07-fake-lightcharge.md. Beside a neighbour the bounds may stay wide
 * while its time slices delay every start mark: there the window keeps them, as before. */
static void window_restart(struct dstate *ds, int64_t now)
{
    ds->win_ns = 0;
    ds->win_n = 0;
    ds->win_at = now;
}

/* Lowers the reference's upper bound to hi, a host time read after a query found a mark complete, less the mark's
 * elapsed time from the reference. */
static void tighten_hi(struct dstate *ds, int64_t hi)
{
    int64_t r0 = ref_time(ds);
    if (hi < ds->off_hi)
        ds->off_hi = hi;
    if (ds->off_hi < ds->off_lo)
        ds->off_hi = ds->off_lo;  /* the bounds crossed (clock drift): the record time is the certain one */
    charge_reframe(ds, ref_time(ds) - r0);  /* the times converted so far move with the estimate */
}

/* Applies the upper bound of the marks found complete since the last call: the host saw each of them
 * complete before now, which is read after their queries. */
static void seen(struct dstate *ds)
{
    if (ds->seen_raw == INT64_MIN)
        return;
    int64_t hi = vg_now_ns() - ds->seen_raw;
    ds->seen_raw = INT64_MIN;
    tighten_hi(ds, hi);
}

/* The host time of a completed mark from its elapsed time after the reference (ms), tightening the bounds. */
static int64_t convert(struct dstate *ds, float ms, int64_t rec, int64_t call)
{
    int64_t raw = (int64_t)((double)ms * 1e6), r0 = ref_time(ds);
    if (rec - raw > ds->off_lo) {
        ds->off_lo = rec - raw;
        ds->off_lo_call = call;  /* the lower bound's error includes this record call's host time (sub_floor) */
    }
    if (ds->off_hi < ds->off_lo)
        ds->off_hi = ds->off_lo;
    if (raw > ds->seen_raw)
        ds->seen_raw = raw;  /* its upper bound: at the end of the collection (seen) */
    charge_reframe(ds, ref_time(ds) - r0);
    return ref_time(ds) + raw;
}

static int64_t completion(struct dstate *ds, CUevent e, int64_t rec, int64_t call, int64_t now)
{
    float ms = 0;
    if (!ds->ref || !vg_real.cuEventElapsedTime)
        return now;
    ST_COUNT(elapsed);
    if (vg_real.cuEventElapsedTime(&ms, ds->ref, e) != CUDA_SUCCESS)
        return now;
    return convert(ds, ms, rec, call);
}

/* Whether mark m has completed, asked with the call that converts it: once there is a reference, the elapsed-time
 * call from it answers CUDA_ERROR_NOT_READY while m has not completed (the driver's documented contract: "if either
 * event has not yet completed", as cuEventQuery would say), so a completed mark costs one driver call, not an event
 * query and then the conversion (issue 18: on the H200's inference loop each is ~1.9 us of host time, and a coarse
 * harvest queried the one or two marks it then converted, 0.067 queries per launch). *h: its completion time when
 * converted here, else INT64_MIN (no reference yet: calibrate() or completion() take it as before). Any other
 * error of the conversion: the query decides, and a completed mark is then taken at `now`, as completion() does. */
static int mark_done(struct dstate *ds, struct mark *m, int64_t now, int64_t *h)
{
    *h = INT64_MIN;
    if (m->hend) {  /* closed with no event (proven_close): its time is a host wait's return, no driver call */
        if (!host_done(ds, m, now))
            return 0;  /* proven after this collection's clock read: the next one takes it */
        *h = m->hend;
        return 1;
    }
    if (ds->ref && m->ms_gen == ds->ref_gen) {  /* an idle check found it completed and took its time (stream_idle) */
        *h = convert(ds, m->ms, m->rec, m->rec_call);
        return 1;
    }
    if (ds->ref && vg_real.cuEventElapsedTime) {
        float ms = 0;
        ST_COUNT(elapsed);
        CUresult r = vg_real.cuEventElapsedTime(&ms, ds->ref, m->e);
        if (r == CUDA_SUCCESS) {
            *h = convert(ds, ms, m->rec, m->rec_call);
            return 1;
        }
        if (r == CUDA_ERROR_NOT_READY)
            return 0;
        ST_COUNT(queries);
        if (event_failed(ds, vg_real.cuEventQuery(m->e)))
            return 0;
        *h = now;
        return 1;
    }
    ST_COUNT(queries);
    return !event_failed(ds, vg_real.cuEventQuery(m->e));
}

/* A completed start mark (recorded on an idle stream) is also a calibration sample: the first becomes the
 * reference (its host time between its record time and the end of this collection); later ones re-base it
 * every 2 s, carrying the bounds over, widened by 20 us for the drift between the GPU's clock and the host's.
 * known: the completion time already converted (the event of a paired end mark, push_boundary), else INT64_MIN.
 * Returns the mark's completion time; takes its event. */
static int64_t calibrate(struct dstate *ds, struct mark *m, int64_t now, int64_t known)
{
    if (!ds->ref) {
        ds->ref = m->e;
        ds->ref_gen = ds->ref_gen + 1 ? ds->ref_gen + 1 : 1;  /* never 0: a mark's "none" */
        ds->off_lo = m->rec;
        ds->off_lo_call = m->rec_call;
        ds->off_hi = INT64_MAX;
        ds->seen_raw = 0;
        ds->ref_at = now;
        return m->rec;
    }
    int64_t h = known != INT64_MIN ? known : completion(ds, m->e, m->rec, m->rec_call, now);
    if (now - ds->ref_at < REBASE_NS) {
        put_event(ds, m->e);
        return h;
    }
    seen(ds);  /* the bounds so far belong to the old reference */
    int64_t raw = h - ref_time(ds);  /* m's time from the old reference */
    put_event(ds, ds->ref);
    ds->ref = m->e;
    ds->ref_gen = ds->ref_gen + 1 ? ds->ref_gen + 1 : 1;
    ds->off_lo += raw - DRIFT_NS;
    if (ds->off_hi != INT64_MAX)
        ds->off_hi += raw + DRIFT_NS;
    ds->ref_at = now;
    return h;
}

/* A launch on an idle process (switch_charged's demand estimate): how long its host waited for the period of work
 * that ended before it: of the time from the period's last launch to this one, what exceeds the host's usual
 * interval between launches (gap_typ), at most the time from that last launch to the period's end (after the end
 * it was the host's own time, or the host not running at all: on a loaded machine a period judged "host-paced"
 * by note_pacing's 200 us test for a descheduled host dropped a graphs tenant's estimate from ~80 to ~30 %). An
 * inference loop launching every 25 us whose kernel, delayed behind the neighbour, ended just before its next
 * launch had not waited: its host was busy between its launches. asked: the launch's time before any wait for
 * credit. */
static void note_blocked(struct dstate *ds, int64_t asked)
{
    int64_t wait = ds->pend_wait, grec = ds->pend_grec, gstart = ds->pend_gstart;
    ds->pend_wait = ds->pend_grec = ds->pend_gstart = 0;
    if (ds->pend_end <= 0 || wait <= 0 || asked <= ds->pend_end || ds->pend_last <= 0)
        return;
    int64_t w = asked - ds->pend_last - ds->gap_typ;
    ds->sd_blocked += w < wait ? (w > 0 ? w : 0) : wait;
    /* HAMI_SM_LEND_SLICED (jaxslice): the period's wait for another context's slice, from its first launch's
     * submission to the GPU start of its work (its start mark: the GPU's own time, not a guess from the host's
     * launch interval), counted when the host launched nothing after that start (pend_last <= gstart: a program that
     * waits for each step; a launch-ahead loop launches on through the wait and is left out) and bounded by the period
     * (grec .. pend_end). update_solo_demand takes the time the program would run alone as at most its wall less
     * these waits. Why: the waits note_blocked counts subtract the host's usual interval (gap_typ), which for JAX
     * (a matmul and a block_until_ready a step) is learnt only from its rare launches that find the last step not yet
     * proven complete, each a whole step: on the H100 (record 19 stage 33) its demand alone read 67-75 % against
     * ~89 % alone and the 70 % tenant lent what it wanted. Errors count a host's own work during the wait as
     * waiting: the estimate reads high, and it lends less */
    if (vg_cfg.sm_lend_sliced && gstart > grec && grec > 0 && ds->pend_last <= gstart && grec < ds->pend_end) {
        int64_t to = gstart < ds->pend_end ? gstart : ds->pend_end;
        ds->sd_sliced += to - grec;
    }
    /* HAMI_SM_TURN_FILL_STEPS=1 (fillside): taking turns, the same wait inside its own windows is time it wanted the
     * GPU and a neighbour had it (a fill of its drain gap still running when it launched again, and the switch back),
     * counted as held for turns' stay test as its host's wait for a fill in the first half of its window is
     * (turns_note_lent). Its own clocks only (the start mark's GPU time), bounded by the period */
    if (vg_cfg.sm_turn_fill_steps && gstart > grec && grec > 0 && ds->pend_last <= gstart && grec < ds->pend_end)
        turns_note_lent(ds, grec, gstart < ds->pend_end ? gstart : ds->pend_end);
}

/* The host's usual interval between its launches (gap_typ): down at once to a shorter one, up slowly (1/64 of the
 * difference per launch, at most 1 ms a sample): a program that launches two graphs back to back then waits for
 * them keeps a few us; an inference loop spending 20 us of host time per launch keeps ~20 us. */
static void note_interval(struct dstate *ds, int64_t asked)
{
    if (ds->pend_last <= 0 || asked < ds->pend_last)
        return;
    int64_t x = asked - ds->pend_last;
    if (x > 1000000)
        x = 1000000;
    ds->gap_typ = x < ds->gap_typ ? x : ds->gap_typ + (x - ds->gap_typ) / 64;
}

/* Synchronize calls this process has entered (the cu*Synchronize hooks at the end of this file): only compared
 * with the value at the start of a period of work, so a program that waits for its GPU is never taken for one that
 * the host paces (note_pacing). Shared by every device of the process: a wait on another one errs on the side of
 * lending less. */
static uint64_t host_waits;

/* A launch on an idle process: was the period of work that ended before it paced by the GPU (the program waited
 * for it: the next launch follows its end within max(200 us, a quarter of its length), a host round trip) or by
 * the host (it launched when its own work was done)? A wait behind another context lengthens the first kind's
 * cycle and would turn into idle time alone; in the second it only delays a completion the host was not waiting
 * for. publish_fraction discounts the waits of host-paced periods from the published queued share (lending's
 * demand estimate, hami_vgpu_lend_demand_bp). */
static void note_pacing(struct dstate *ds, int64_t now)
{
    /* a period during which the program called a synchronize was paced by its GPU whatever the gap after it: a
     * program that waits for each kernel and then does host work of a quarter of the period's length or more
     * (data preparation) was taken for host-paced, its demand was its squeezed charge, and a GPU-bound neighbour
     * borrowed what it needed (audit4, fake: a 70 % tenant using 48 % alone got 34 %, the 30 % borrower 57 %) */
    uint64_t waits = __atomic_load_n(&host_waits, __ATOMIC_RELAXED);
    if (ds->pend_len > 0 && ds->pend_end > 0 && waits == ds->waits_at) {
        int64_t gap = now - ds->pend_end, quick = ds->pend_len / 4 > 200000 ? ds->pend_len / 4 : 200000;
        if (gap >= quick)
            ds->paced_ns += ds->pend_len;
    }
    ds->pend_len = 0;
    ds->pend_since = now;
    ds->waits_at = waits;
}

static int queues_idle(const struct dstate *ds)
{
    for (int i = 0; i < ds->nq; i++)
        if (ds->q[i].count || ds->q[i].unmarked)
            return 0;
    return 1;
}

/* Whether work that this process will charge is on the GPU: a stream (other than skip) whose oldest
 * uncollected mark is an end mark (harvest() stops at the first mark not completed, so after it this is the
 * work in progress). A stream whose oldest mark is a start mark waits for the GPU: its launches are charged
 * from that mark's completion. Launches not yet marked count as not running (an over-count of n(t) would
 * under-charge the neighbours). */
static int running(const struct dstate *ds, const struct squeue *skip)
{
    for (int i = 0; i < ds->nq; i++) {
        const struct squeue *q = &ds->q[i];
        if (q != skip && q->count > 0 && q->ring[q->head].kind == MK_END)
            return 1;
    }
    return 0;
}

/* Publishes the start of the interval about to open when it began by taking the GPU from another context, else 0
 * (written before the interval's start: a reader sees them equal only once both are this interval's). */
static void publish_took(struct dstate *ds, int64_t t)
{
    if (ds->bgpu && ds->user_idx >= 0)
        __atomic_store_n(&ds->bgpu->user_took_ns[ds->user_idx], t, __ATOMIC_RELEASE);
}

/* Publishes this process's busy interval on the node board: open at its start, closed at its end. */
static void publish(struct dstate *ds, int open, int64_t t)
{
    sib_publish(ds, open, t);  /* the container's other processes charge this interval too (multiproc) */
    if (!ds->bgpu || ds->user_idx < 0)
        return;
    struct hami_board_gpu *g = ds->bgpu;
    int i = ds->user_idx;
    if (open) {
        ds->act_at = t;
        __atomic_store_n(&g->user_active_ns[i], t, __ATOMIC_RELEASE);
        __atomic_store_n(&g->user_open_ns[i], t, __ATOMIC_RELEASE);
        __atomic_store_n(&g->user_since_ns[i], t, __ATOMIC_RELEASE);
    } else {
        /* the current interval is closed first, then the closed one goes into the ring of recent ones (until
         * cleared while the slot is rewritten): a reader in between misses it (over-charged, never under),
         * none counts it twice */
        __atomic_store_n(&g->user_busy_ns[i], t, __ATOMIC_RELEASE);
        ds->act_end = t;
        uint32_t k = __atomic_load_n(&g->user_recent_head[i], __ATOMIC_ACQUIRE) % HAMI_BOARD_RECENT;
        __atomic_store_n(&g->user_recent_until[i][k], 0, __ATOMIC_RELEASE);
        __atomic_store_n(&g->user_recent_since[i][k], ds->busy_since, __ATOMIC_RELEASE);
        __atomic_store_n(&g->user_recent_until[i][k], t, __ATOMIC_RELEASE);
        __atomic_store_n(&g->user_recent_head[i], k + 1, __ATOMIC_RELEASE);
    }
}

/* Switches the calling thread to the relaxed capture mode, once a capture may be in progress; returns
 * whether it did (then relaxed_end restores the mode). */
static int relaxed_begin(int *mode)
{
    *mode = 2;  /* CU_STREAM_CAPTURE_MODE_RELAXED */
    return __atomic_load_n(&capture_seen, __ATOMIC_ACQUIRE) && vg_real.cuThreadExchangeStreamCaptureMode &&
           vg_real.cuThreadExchangeStreamCaptureMode(mode) == CUDA_SUCCESS;
}

static void relaxed_end(int swapped, int *mode)
{
    if (swapped)
        vg_real.cuThreadExchangeStreamCaptureMode(mode);
}

/* A mark found not completed: asked again no sooner than a quarter of the time it has waited so far (from its
 * stream's previous completion, or its enqueue if later), nor later than ASK_MAX_NS; within its first 400 us at
 * every collection, as before. Its completion time comes from the GPU, so asking later delays its charge (by at
 * most a quarter of its wait, 1 ms), never changes it; until then it counts as in-flight work (inflight_ns) and
 * in the in-flight bound (oldest_age). A CUDA graph running 40 ms was asked every 100 us (257-513 elapsed-time
 * calls on the fake); now ~15 + one per ms. */
static void ask_later(const struct dstate *ds, const struct squeue *q, struct mark *m, int64_t now)
{
    int64_t from = m->kind == MK_END ? span_start(ds, q, m) : m->enq;
    int64_t wait = (now - from) / 4;
    m->ask_at = wait > HARVEST_GAP_NS ? now + (wait < ASK_MAX_NS ? wait : ASK_MAX_NS) : 0;
}

/* The streams a collection asks, in order: those whose oldest mark is due (ask_later) or known complete (mark_known:
 * its one call converts it, it cannot miss), every stream with a mark where all is set, oldest record first (the
 * work most likely done: a GPU runs what was queued first first). Returns how many (insertion sort: <= MAXQ). */
static int harvest_order(const struct dstate *ds, int64_t now, int order[MAXQ], int all)
{
    int n = 0;
    for (int i = 0; i < ds->nq; i++) {
        const struct squeue *q = &ds->q[i];
        if (!q->count || (!all && q->ring[q->head].ask_at > now && !mark_known(q, &q->ring[q->head])))
            continue;
        int64_t rec = q->ring[q->head].rec;
        int k = n++;
        for (; k > 0 && ds->q[order[k - 1]].ring[ds->q[order[k - 1]].head].rec > rec; k--)
            order[k] = order[k - 1];
        order[k] = i;
    }
    return n;
}

/* Collects completed marks and charges the busy time they close; never blocks. A stream of this process
 * may be capturing a CUDA graph in global mode (PyTorch's default), where an event query from any thread
 * would invalidate the capture: the queries run with this thread's capture mode set to relaxed.
 * Its driver calls are bounded whatever the number of busy streams: at most one per completed mark (its conversion;
 * one for a chained run of them, chained_run) and at most HARVEST_MISSES that find a mark not completed: the streams
 * are asked oldest mark first (harvest_order),
 * each only for its oldest (a stream's marks complete in order), and a mark found not completed is not asked again
 * for a while (ask_later). Every stream's oldest mark was asked at each collection before, and with more than 16
 * marks waiting every launch collected (harvest_due): 72-133 elapsed-time calls per launch with 32 busy streams on
 * the fake libcuda (docs/results/2026-12-05-fake-stream-calls.md). */
static void collect(struct dstate *ds, int all);
static int64_t owed_from(const struct dstate *ds, int64_t now);

/* The kernel table learns key's duration from a precise span of nl launches all of that key, per launch (v): the
 * GPU time they took back to back (the span starts at the previous completion or the first launch's submission, so
 * no host gap is in it). Only alone or taking turns: time-slicing, a span holds the neighbour's slices too (x2 beside
 * one GPU-bound neighbour), and the charge divides them out, the span does not. A decaying average over ~4 spans (a
 * kernel's time varies with its clocks and caches); a new key takes an empty slot of its probe, else the one its hash
 * picks (KT_PROBE: bounded work, a key evicted is only unknown again). Under mu. */
static void kt_learn(struct dstate *ds, uint64_t key, int64_t v)
{
    if (!key || v <= 0 || (ds->shared && ds->turn_n < 2))
        return;
    v = v < KT_MAX_NS ? v : KT_MAX_NS;
    unsigned i = (unsigned)(key >> 40) & (KT_SLOTS - 1), pick = (i + (unsigned)(key & (KT_PROBE - 1))) & (KT_SLOTS - 1);
    for (int p = 0; p < KT_PROBE; p++, i = (i + 1) & (KT_SLOTS - 1)) {
        if (ds->kt_key[i] == key) {
            ds->kt_ns[i] += (v - ds->kt_ns[i]) / 4;
            if (ds->kt_ns[i] <= 0)
                ds->kt_ns[i] = 1;
            return;
        }
        if (!ds->kt_key[i]) {
            pick = i;
            break;
        }
    }
    ds->kt_key[pick] = key;
    ds->kt_ns[pick] = v;
}

/* When the work this process has queued on the device is expected to end, as published for whoever finds it dead
 * (region.c owed_charge): the throttle's own estimate (inflight_ns). While none of this process's marks was measured
 * yet that estimate is a default (0.1 ms a launch) that knows nothing of the kernels: a worker that launches a burst
 * on saved credit and dies before anything was measured was published as 1 ms for 20 ms of kernels (fake libcuda, 8
 * such workers behind a survivor charged 0.29 x). Then its queued work counts as up to the credit its container had
 * (what the throttle let it launch unmeasured), at most HAMI_OWED_MAX_NS: an honest cold process that dies loses its
 * container's saved credit, no more. Not the container's average charge per launch: a dying process leaves its last
 * launches out of the region's count (flushed every 1 ms), and the average grew from worker to worker (4.7 x). */
static int64_t owed_until(const struct dstate *ds, int64_t now)
{
    int64_t q = inflight_ns(ds), avg = queued_avg_ns(ds) + ds->dfr_sum;
    q = q > avg ? q : avg;  /* a dead process's work: the kernel table's price only where it says more (trainsplit) */
    if (!ds->ewma_ns) {
        int64_t c = __atomic_load_n(&vg_region->dev[ds->dev].tokens_ns, __ATOMIC_RELAXED);
        c = c < HAMI_OWED_MAX_NS ? c : HAMI_OWED_MAX_NS;
        q = q > c ? q : c;
    }
    return now + q;
}

/* Whether a deep run's mark m (deep_defer) closed its launches exactly: the mark before it on the stream completed
 * after m was recorded (q->done_end, the completion collected last on the stream, less what its conversion may have
 * put it late: the estimate's distance above the reference's lower bound). Then every launch of the run was
 * enqueued before the GPU had finished the one before it (each starts where the previous ended: no idle gap inside
 * the run), and m was queued before the run's last launch ended (its completion is that launch's end): the run's
 * span is the sum of the spans one mark per launch would have measured. Not proven (the GPU caught up with the
 * run): the span is charged all the same, an upper bound of the run's GPU time that may hold host gaps (over-charged,
 * never under), and the stream marks every launch for DEEP_BACKOFF_NS. */
static int deep_proven(struct dstate *ds, const struct squeue *q, const struct mark *m)
{
    int ok = m->proven || (ds->ref && q->done_end > 0 && q->done_end - (ref_time(ds) - ds->off_lo) > m->rec);
    if (!ok && vg_cfg.launch_stats)
        __atomic_add_fetch(&lst.deep_unproven, 1, __ATOMIC_RELAXED);
    if (!ok)
        vg_log(VG_DEBUG, "device %d: deep run of %d not proven: previous completion %.1f us after its mark's record "
               "(margin %.1f us), its first launch %.1f us before", ds->dev, m->n, (q->done_end - m->rec) / 1e3,
               (ref_time(ds) - ds->off_lo) / 1e3, (m->rec - m->enq) / 1e3);
    return ok;
}

/* The host's own proof of the same (deep_proven): q's mark at index `from` (0: the oldest; run_probe's guess r_g)
 * was just found not completed at `now`, so every deep run's mark after it recorded by then was queued before the GPU
 * reached the run (that mark is before the run's first launch). Needed where the reference's bounds are wide: beside a neighbour on the fake the
 * conversion's margin failed 7-13 % of the proofs. A scan of the ring, only while deep runs are outstanding. */
static void deep_seen(struct squeue *q, int from, int64_t now)
{
    for (int k = from + 1; k < q->count; k++) {
        struct mark *m = &q->ring[(q->head + k) % RING];
        if (m->deep && m->rec <= now)
            m->proven = 1;
    }
}

/* After a collection the start of the work no charge covers yet moves on: republished for whoever finds this
 * process dead (region.c vg_owed_publish; only while one is published, so an idle device costs one load). */
void harvest(struct dstate *ds)
{
    collect(ds, 0);
    if (vg_owed_published(ds->dev)) {
        int64_t now = vg_now_ns();
        vg_owed_publish(ds->dev, owed_from(ds, INT64_MAX), owed_until(ds, now), 0);
    }
}

static int ask_done(struct dstate *ds, struct mark *m);

/* Whether mark m (a precise end mark, not a coarse sample's, not sharing its event) may go into a chained run. */
static inline int run_member(const struct dstate *ds, const struct mark *m)
{
    return m->kind == MK_END && !m->coarse && !m->paired && !m->sample && m != ds->opening;
}

/* A chained run (issue 18, record 9b: the launch-bound pair on the H100 made ~2 elapsed-time calls a launch, one of
 * them each mark's own conversion): q's oldest marks r_0..r_j, precise end marks each of whose first launch was
 * enqueued before the mark before it completed (its idle check found that mark not completed: mark.chain). Such a run
 * kept the stream busy from r_0's start to r_j's end with no idle gap, and processor sharing's charge is an integral,
 * so the run is charged as one span, [r_0's start, r_j's completion), with r_j's conversion alone: the same time as
 * the marks' spans one by one, which abut (a gap between two of them would be the converted times' error, charged
 * now: never less). r_j is one known complete with no driver call (done: a host wait proved it, mark_known, after
 * a synchronize the whole backlog; or an idle check took its time, mark.ms), or the newest the GPU has reached by
 * run_probe's guess (most: how many it guesses; run_end asks it). Returns j (>= 1: r_0..r_j go as one), 0 = no run
 * (the marks are asked one by one). */
static int chained_run(const struct dstate *ds, const struct squeue *q, uint64_t done, int64_t most)
{
    if (!ds->ref || q->count < 2 || !run_member(ds, &q->ring[q->head]))
        return 0;
    int j = 0;  /* r_0..r_j chained, r_j below done, j at most `most` */
    for (int k = 1; k < q->count && k <= most; k++) {
        const struct mark *p = &q->ring[(q->head + k - 1) % RING], *m = &q->ring[(q->head + k) % RING];
        if (!run_member(ds, m) || m->chain != p->seq + 1 || m->seq >= done)
            break;
        /* a deep run's mark (deep_defer) joins only proven by the host (deep_seen): its bet is judged by the
         * completion of the mark before it (deep_proven), which a run does not convert; unproven, it opens the
         * next run, the one before it converted as that run's end */
        if (m->deep && !m->proven)
            break;
        j = k;
    }
    return j;
}

/* The end of a chained run r_0..r_j (last = r_j, known complete or guessed reached): asked with the call that also
 * takes its time (ask_done, kept in the mark), then 1 with *h its completion if the run goes as one span. Not where a
 * neighbour took the GPU inside the span (taken_at; or a takeover is being followed, yield_at): chained_charge leaves
 * out one neighbour's turn per span, and a run spanning several turns was charged the others at processor sharing
 * (fake, a GPU-bound 50 + 50 pair: 0.91 of the GPU it had before for the same charge); its marks then go one by one,
 * r_j with its time already taken (no second call). *notyet: the call found r_j not completed. */
static int run_end(struct dstate *ds, struct squeue *q, struct mark *last, int64_t now, int64_t *h, int *notyet)
{
    *h = INT64_MIN;
    *notyet = 0;
    if (last->ms_gen != ds->ref_gen && !ask_done(ds, last)) {
        *notyet = !ds->stale;
        return 0;
    }
    if (last->ms_gen != ds->ref_gen)
        return 0;  /* completed, its time not taken (the conversion failed otherwise): one by one */
    const struct mark *m = &q->ring[q->head];
    int64_t start = span_start(ds, q, m);
    int64_t end = ref_time(ds) + (int64_t)((double)last->ms * 1e6);  /* as convert() will put it, about */
    int user = -1;
    if (ds->shared && (ds->yield_at || taken_at(ds, ds->last_end > start ? ds->last_end : start, end + 1, now, &user)))
        return 0;
    return mark_done(ds, last, now, h) && *h != INT64_MIN;  /* from the time taken: no call */
}

/* A chained run not known complete (run_probe): the newest of its marks that the GPU, taking per mark the wall time
 * it took lately on this stream (svc_ns, with a quarter more), has reached since the stream's last completion, is
 * asked first, with the call that converts it (mark_done). Found completed, the marks before it are too and go with it:
 * one call for the batch (a launch-bound pair's backlog, where a collection asked each completed mark in turn, one
 * call apiece, then a miss). Found not completed, it counts as the collection's miss (HARVEST_MISSES bounds them), the
 * time per mark grows to what it says (not reached by now), and the oldest mark is asked as before. Which mark is
 * asked changes no completion time: each comes from the GPU. Returns the run's last index, 0 = none asked or none
 * completed; *missed: one was asked and found not completed. */
static int run_probe(struct dstate *ds, struct squeue *q, int64_t now, int64_t *h, int *missed)
{
    *missed = 0;
    if (!q->svc_ns || !q->done_end || now <= q->done_end)
        return 0;
    int64_t k = (now - q->done_end) / (q->svc_ns + q->svc_ns / 4);  /* marks the GPU got through, guessed */
    if (k < 2)
        return 0;
    int g = chained_run(ds, q, UINT64_MAX, k > RING ? RING : (int)k - 1);
    if (g < 1)
        return 0;
    struct mark *last = &q->ring[(q->head + g) % RING];
    int notyet;
    if (run_end(ds, q, last, now, h, &notyet))
        return g;
    if (notyet) {
        *missed = 1;
        /* a find as collect's of the oldest mark (q's backlog is real, the GPU that far behind r_g), and the same
         * host proof for the deep runs' marks after r_g recorded by now (deep_seen) */
        q->busy_seen = now;
        q->busy_lag = now - last->rec;
        if (ds->deep_extra)
            deep_seen(q, g, now);
        int64_t s = (now - q->done_end) / (g + 1);
        if (s > q->svc_ns)
            q->svc_ns = s;
    }
    return 0;
}

/* 1 + the seq of q's newest mark known complete with no driver call (chained_run), 0 = none: one a host wait proved
 * (mark_known) or one whose idle check converted it (mark.ms); every mark before it on the stream has completed. */
static uint64_t known_done(const struct dstate *ds, const struct squeue *q)
{
    for (int k = q->count - 1; k >= 0; k--) {
        const struct mark *m = &q->ring[(q->head + k) % RING];
        if (mark_known(q, m) || (ds->ref && m->ms_gen == ds->ref_gen))
            return m->seq + 1;
    }
    return 0;
}

/* all: ask every stream's oldest mark, due or not (others_idle: a launch that found its two newest asks idle, after
 * a synchronize no wait here covered; still at most HARVEST_MISSES found not completed). */
static void collect(struct dstate *ds, int all)
{
    if (ds->stale)
        return;  /* its marks will never complete: drop_measured charges them */
    ST_START();
    ST_COUNT(harvests);
    int mode;
    int swapped = relaxed_begin(&mode);
    int64_t now = vg_now_ns();
    int order[MAXQ], misses = 0;
    int asked_running = 0;  /* an end mark was found not completed: this process's work runs at `now` */
    int nask = harvest_order(ds, now, order, all);
    for (int j = 0; j < nask && !ds->stale && misses < HARVEST_MISSES; j++) {
        struct squeue *q = &ds->q[order[j]];
        /* a stream's marks complete in order: when its newest has completed, so have all before it. Before there
         * is a reference (the first start mark), completion is asked with event queries, and a drained stream's
         * newest answers for all of its marks (a launch-bound stream measured precisely: ~0.2 queries per launch
         * instead of 1). Not for the per-thread default stream's handle: it names a different stream in each
         * thread. After that, each mark's conversion is its query (mark_done): none is asked twice. A mark a host
         * wait proved complete (mark_known) needs no query, only its conversion once there is a reference */
        int known = 0;
        uint64_t done_seq = ds->ref ? known_done(ds, q) : 0;  /* q's marks below it completed (chained_run) */
        int probe = 1;  /* a chained run may go as one (chained_run, run_probe) until a try did not */
        int64_t paired_h = INT64_MIN;  /* the completion of the paired end mark just taken: its start mark's too */
        if (!ds->ref && mark_known(q, newest(q))) {
            known = q->count;
        } else if (!ds->ref && q->count > 1 && q->s != CU_STREAM_PER_THREAD) {
            if (query_done(ds, newest(q), now))
                known = q->count;
        }
        while (q->count > 0) {
            struct mark *m = &q->ring[q->head];
            if (m == ds->opening)
                break;  /* its launch call is in progress: its submission time is not known yet (submitted_at) */
            int64_t done_h = INT64_MIN;  /* its completion, where mark_done converted it */
            int run = 0;  /* marks after m charged with it, as one span (chained_run) */
            int64_t nl = m->n;  /* the launches m (and its run) close */
            int hclosed = 0;  /* closed with no event (proven_close): its time a host wait's return */
            if (m->hend) {
                if (!host_done(ds, m, now)) {  /* proven after this collection's clock read: the next one takes it */
                    misses++;
                    ST_COUNT(misses);
                    asked_running = 1;
                    break;
                }
                hclosed = 1;
                done_h = m->hend;
                if (known > 0)
                    known--;
            }
            if (!hclosed && known == 0 && probe && done_seq > m->seq + 1 &&
                (run = chained_run(ds, q, done_seq, RING)) > 0) {
                struct mark *last = &q->ring[(q->head + run) % RING];
                int notyet;
                if (run_end(ds, q, last, now, &done_h, &notyet)) {
                    for (int k = 1; k <= run; k++)
                        nl += q->ring[(q->head + k) % RING].n;
                } else {
                    run = 0;  /* a neighbour's turn inside it, or an event call failed: asked one by one */
                    probe = 0;
                    done_h = INT64_MIN;
                }
            }
            if (!hclosed && !run && known == 0 && probe && ds->ref) {
                int missed;
                run = run_probe(ds, q, now, &done_h, &missed);
                if (run)
                    for (int k = 1; k <= run; k++)
                        nl += q->ring[(q->head + k) % RING].n;
                if (!run)
                    probe = 0;  /* one try a stream: then asked oldest first */
                if (missed || ds->stale) {
                    misses++;
                    ST_COUNT(misses);
                    asked_running = 1;
                    if (ds->stale || misses >= HARVEST_MISSES)
                        break;
                }
            }
            if (run || hclosed) {
                /* known complete, converted (or the host wait's return): done_h is the run's end */
            } else if (known > 0) {
                known--;
            } else if (!ds->ref && mark_known(q, m)) {
                /* completed (a host wait proved it): no query; its time as a query would have given it */
            } else if (paired_h == INT64_MIN || m->kind != MK_START) {  /* a paired start mark has completed */
                if (!mark_done(ds, m, now, &done_h)) {
                    q->busy_seen = now;  /* its backlog is real, and the GPU that far behind it (deep_defer) */
                    q->busy_lag = now - m->rec;
                    if (ds->deep_extra)
                        deep_seen(q, 0, now);
                    ask_later(ds, q, m, now);
                    misses++;
                    ST_COUNT(misses);
                    asked_running |= m->kind == MK_END;
                    break;
                }
            }
            if (m->kind == MK_START) {
                /* the GPU reached this stream's work: it executes from here, whatever it waited for before
                 * (another context's time slice, with the launches already enqueued), so the launches it
                 * opens are charged from here, and the busy period starts here for the node board too */
                int64_t g = calibrate(ds, m, now, paired_h != INT64_MIN ? paired_h : done_h);
                if (m->first && !m->coarse && g > m->rec) {  /* HAMI_SM_CHARGE_SWITCHES: settled later */
                    if (ds->ngap == 8)
                        settle_gaps(ds, 0);
                    /* a gated mark waited for its launch's end mark too: its switch from the launch's return at the
                     * earliest (still holding the end mark's record call: over, never under) */
                    ds->gap_rec[ds->ngap] = m->gated && m->sub > m->rec ? m->sub : m->rec;
                    ds->gap_start[ds->ngap++] = g;  /* the GPU's own time: the switch ended when it reached the mark */
                    /* ... and the period's wait for the GPU, for its demand alone (note_blocked) */
                    ds->pend_grec = m->sub > m->rec ? m->sub : m->rec;
                    ds->pend_gstart = g;
                }
                int64_t h = g;
                /* the launch it opens runs from its submission at the earliest (submitted_at): the GPU idled for
                 * this process between the mark and then, so neither its charge nor its busy interval starts sooner.
                 * The submission is a host clock read, the span's end a converted GPU time: sub_floor says how far
                 * before the submission a span may start for the conversion's error (the same rule as end marks') */
                int64_t from = sub_floor(ds, m->sub);
#ifdef HAMI_BENCH_PAIRPROBE
                if (!m->coarse && m->sub) {
                    if (from > h)
                        PPADD(PP_START_EARLY, m->sub - from);
                    else
                        PPADD(PP_START_AFTER, h - m->sub);
                }
#endif
                if (from > h)
                    h = from;
                if (h > q->done_end)
                    q->done_end = h;
                if (!m->coarse && ds->since_gpu && h > ds->last_end && !running(ds, q)) {
                    /* the interval was still open, but everything charged in it had ended (a start mark is
                     * recorded on an idle stream): the time in between was not busy, nor charged */
                    publish(ds, 0, ds->last_end > ds->busy_since ? ds->last_end : ds->busy_since);
                    ds->since_gpu = 0;
                }
                if (!m->coarse && ds->busy_since && !ds->since_gpu) {
                    ds->busy_since = h > ds->busy_since ? h : ds->busy_since;
                    ds->since_gpu = 1;
                    /* it waited for the GPU (another context held it) and took it at h: said on the board, so a
                     * neighbour's chained work stops counting itself busy from h (taken_at) */
                    publish_took(ds, ds->shared && ds->busy_since == h && g - m->rec >= TAKE_WAIT_NS ? h : 0);
                    publish(ds, 1, ds->busy_since);
                }
                ds->yield_at = ds->resume_at = 0;  /* its work holds the GPU again */
            } else {
                int64_t h = done_h != INT64_MIN ? done_h : completion(ds, m->e, m->rec, m->rec_call, now);
                int64_t start = span_start(ds, q, m);
                int deep_in = 0;  /* the span closes a deep run's mark: the estimate is fed per launch */
                if (!m->coarse && h > start) {  /* run_probe's guess: wall time per mark, averaged over ~4 */
                    int64_t s = (h - start) / (run + 1);
                    q->svc_ns = q->svc_ns ? q->svc_ns + (s - q->svc_ns) / 4 : s;
                    if (q->svc_ns <= 0)
                        q->svc_ns = 1;
                }
                /* each mark the span closes (m and its chained run's) once: its launches leave the backlog, a deep
                 * run's deferred ones the in-flight estimate, and its bet is judged (deep_proven). A run's members
                 * after m are deep only if the host proved them (chained_run: their own predecessor's completion
                 * is not converted); m's proof is the previous completion, q->done_end, as one by one */
                uint64_t key = m->coarse ? 0 : m->key;  /* the span's kernel key, if one for all (kt_learn) */
                for (int k = 0; k <= run; k++) {
                    struct mark *r = &q->ring[(q->head + k) % RING];
                    q->queued -= r->n;
                    ds->kq_sum -= r->est;  /* its launches the kernel table priced leave the queued work */
                    ds->kq_n -= r->kn;
                    if (r->key != key)
                        key = 0;
                    if (r->deep) {
                        deep_in = 1;
                        ds->deep_extra -= r->deep;
                        if (!deep_proven(ds, q, r))
                            q->deep_off = now + DEEP_BACKOFF_NS;  /* the bet lost: marks per launch here a while */
                    }
                }
                if (m->coarse && ds->since_gpu) {
                    /* a coarse span would over-state n(t) for the neighbours: the published interval ends at
                     * the last precise completion, and nothing is published while coarse */
                    publish(ds, 0, ds->last_end > ds->busy_since ? ds->last_end : ds->busy_since);
                    ds->since_gpu = 0;
                }
                int64_t wm = ds->charged_to;  /* busy time before this was charged (any stream) */
                int chained = !m->coarse && ds->shared;  /* it counts the launches in the window itself */
                /* the average charge stays per mark (charge.c sample_charge); with a deep run's mark in the span, per
                 * launch (sample_launches over all nl), as deep runs keep it: queued_work_ns counts their launches */
                ds->ewma_k = deep_in ? 0 : run + 1;
                if (key && h > start && nl > 0)
                    kt_learn(ds, key, (h - start) / nl);
                int64_t c = chained ? chained_charge(ds, start, h, now, nl) : span_charge(ds, start, h, now);
#ifdef HAMI_BENCH_PAIRPROBE
                if (!m->coarse && h > start && run == 0 && nl == 1)
                    PPADD(m->chain ? PP_CHAINED : (sub_floor(ds, m->sub) >= start ? PP_SUBFLOOR : PP_STARTMARK),
                          h - start);
                if (m->coarse && h > start)
                    PPADD(PP_COARSE_N, m->n);
                if (m->coarse && m->sample && m->n == 1 && h > start)
                    PPADD(PP_SAMPLE, h - start);
#endif
                if (m->coarse) {
                    /* the estimate is bounded by this stream's own span: its launches ran inside it. Not by the
                     * part of it left after the other streams' spans (c, the union's share): two streams
                     * launching in turns have overlapping coarse spans, and the union clipped the second
                     * stream's launches to the few us its span outlasted the first's (on the fake, a program
                     * replaying a graph on each of two streams was charged 0.72-0.77 x its GPU time) */
                    int64_t own = start < wm && start < h ? ps_charge(ds, start, h, now) : c;
                    int64_t est = ds->est_ns > 0 ? ds->est_ns * m->n : own;
                    if (est > own)
                        est = own;
                    /* the part of the span after the mark was recorded is GPU time whatever the estimate says:
                     * every launch the mark closes was queued by then, so the stream ran them back to back, not
                     * waiting for the host (clipped to the union's part, c: counted once). Only the rest can hold
                     * host gaps, and only the rest is doubt a window may forgive. Without it a program that
                     * queues long kernels ahead of the GPU (a training step's GEMMs) and then launches many tiny
                     * ones paced by its host had the long ones charged the tiny kernels' estimate, and their
                     * doubt "explained" by the windows' host gaps, which also held the GEMM backlog still
                     * draining when a window began (on the fake, 50 % force alone: 83 % of the GPU, charged
                     * 0.36 x it; test_interposer_coarse_training.py) */
                    /* alone only: beside another container the stream may have waited after the record for the
                     * neighbour's time slices, which a coarse neighbour does not publish (a launch-bound 50 + 50
                     * pair on the fake was charged 1.2-1.7 x its kernels); there the tail stays doubt */
                    int alone = !ds->shared;
                    /* a host-closed mark's end is the wait's return, not the GPU's: late by the wait's wake-up (and a
                     * loop syncing every launch would have that charged as GPU time): no tail, all of it doubt */
                    int64_t from = hclosed ? h : m->rec > start ? m->rec : start;
                    if (from < wm)
                        from = wm;
                    int64_t tail = alone && from < h ? ps_charge(ds, from, h, now) : 0;
                    if (tail > c)
                        tail = c;
                    if (tail > est)
                        est = tail;
                    PP(PP_EST);
                    consume(ds, est, 0);
                    ds->sd_kern_coarse += est;  /* its kernels ran: turns' stay test may count them (turns.c) */
                    ds->doubt_ns += c > est ? c - est : 0;  /* the union's remainder: what the spans still say */
                    /* a mark the GPU reached only after it was recorded is all tail: charged exactly, it leaves
                     * the verification (its launches, and a sample among them, would make the samples' average
                     * and the window's rules judge the other launches by kernels already charged: with 2 ms GEMMs
                     * among 5 us kernels, a phase that drew two GEMM samples charged the tiny ones' host gaps,
                     * 1.13-1.16 x on the fake) */
                    if (!alone || start < m->rec) {
                        ds->coarse_n += m->n;
                        ds->coarse_est += est;
                    }
                    /* a sample counts whether or not its mark is all tail: one launch measured alone, and the
                     * average must stay a random sample of all the phase's launches. Left out with its mark, a
                     * sample queued behind a running kernel (all tail) was dropped while one after a host gap
                     * stayed: a tenant launching long kernels back to back only after it saw a sample taken had
                     * them judged by its tiny kernels' average (fake, 30 % force alone: 49-59 % of the GPU,
                     * charged 0.54-0.67 x; test_interposer_coarse_sample_tail.py) */
                    if (m->sample && m->n == 1) {  /* one launch alone, its start the previous run's end */
                        ds->samp_ns += own * m->sample;  /* weighted by its draw's rate (coarse_sample) */
                        ds->samp_n += m->sample;
                    }
                } else {
                    PP(PP_PRECISE);
                    consume(ds, c, !deep_in);
                    if (deep_in)
                        sample_launches(ds, c, (int)nl);  /* the in-flight estimate stays per launch */
                    ds->sd_kern += c;
                    if (!ds->shared && ref_wide(ds)) {
                        window_restart(ds, now);  /* charged as measured, but no estimate for a coarse phase */
                    } else {
                        ds->win_ns += c;
                        ds->win_n += chained ? 0 : nl;
                    }
                }
                ds->ewma_k = 0;
                if (h > q->done_end)
                    q->done_end = h;
                if (h > ds->last_end)
                    ds->last_end = h;
                if (m->paired)
                    paired_h = h;  /* the event goes with the start mark after it */
                else if (m->e)
                    put_event(ds, m->e);
                ds->pending--;
                if (!m->coarse && ds->busy_since && !ds->since_gpu) {
                    /* no start mark (it could not be recorded), or it yielded (taken_at) and ran again: busy from
                     * where the neighbour gave the GPU back (resume_time), or from the yield where that is unknown */
                    if (ds->yield_at && ds->resume_at > ds->yield_at && ds->resume_at < h)
                        ds->busy_since = ds->resume_at + 1;
                    ds->since_gpu = 1;
                    publish_took(ds, 0);
                    publish(ds, 1, ds->busy_since);
                }
                ds->yield_at = ds->resume_at = 0;  /* its work ran */
            }
            if (m->kind == MK_START)
                paired_h = INT64_MIN;
            q->head = (q->head + 1) % RING;
            q->count--;
            for (; run > 0; run--) {  /* the rest of a chained run: charged with m, their events back to the pool */
                put_event(ds, q->ring[q->head].e);
                q->head = (q->head + 1) % RING;
                q->count--;
                ds->pending--;
            }
            ds->oldest_stale = 1;
        }
    }
    seen(ds);
    if (ds->ngap)
        settle_gaps(ds, now);
    if (ds->ndfr)
        settle_deferred(ds, now);
    if (ds->busy_since && queues_idle(ds)) {
        int64_t end = ds->last_end > ds->pend_since && ds->last_end < now ? ds->last_end : now;
        count_queued(ds, end);
        ds->pend_len = end - ds->pend_since;
        ds->pend_end = end;
        ds->pend_wait = end > ds->pend_last && ds->pend_last > 0 ? end - ds->pend_last : 0;
        ds->pend_since = 0;
        if (ds->since_gpu)
            publish(ds, 0, ds->last_end > ds->busy_since ? ds->last_end : ds->busy_since);
        ds->busy_since = 0;
        ds->since_gpu = 0;
        ds->reopen = 0;
        ds->yield_at = ds->resume_at = 0;
    } else if (ds->busy_since && ds->since_gpu && (asked_running || !running(ds, NULL))) {
        /* (work running that this collection did not ask about is left as last seen: not said running at `now`) */
        int user = -1;
        int64_t took = running(ds, NULL) && !ds->coarse && !ds->yield_at
                           ? taken_at(ds, ds->last_end > ds->busy_since ? ds->last_end : ds->busy_since, now,
                                      now, &user)  /* before this collection's queries found the work pending */
                           : 0;
        if (took) {
            /* a neighbour took the GPU since this work was last seen running: it waits from then on, and its
             * interval closes there; it opens again where that neighbour's ends (or at the next completion) */
            publish_took(ds, 0);  /* its interval, now closed, did not hold the GPU alone to its end */
            publish(ds, 0, took);
            ds->since_gpu = 0;
            ds->busy_since = took + 1;  /* reopened after its close: one opening where it closed reads as closed */
            ds->yield_at = took;
            ds->yield_user = user;
            ds->resume_at = 0;
        } else if (running(ds, NULL)) {
            /* work of the interval is still running at `now` (its end mark had not completed when queried,
             * after now): the neighbours count the interval up to here */
            if (ds->bgpu && ds->user_idx >= 0)
                __atomic_store_n(&ds->bgpu->user_open_ns[ds->user_idx], now, __ATOMIC_RELEASE);
            sib_running(ds, now);
        } else {
            /* what remains waits behind a start mark for the GPU (another context's time slice): nothing is
             * being charged, so nothing is published as busy; the start mark's completion opens the next
             * interval */
            publish(ds, 0, ds->last_end > ds->busy_since ? ds->last_end : ds->busy_since);
            ds->since_gpu = 0;
            ds->busy_since = now;
        }
    } else if (ds->busy_since && ds->yield_at && !ds->resume_at && !ds->coarse && asked_running && running(ds, NULL)) {
        /* yielded: the chained work runs again once the neighbour's interval has ended within a slice; from the
         * yield, as before it, once it lasts longer (this work may have had a slice in it without completing) */
        int64_t back = resume_time(ds, 0, now);
        if (back) {
            ds->resume_at = back;
            ds->busy_since = back + 1;  /* after its close at the yield: one opening where it closed reads closed */
            ds->since_gpu = 1;
            publish_took(ds, 0);
            publish(ds, 1, ds->busy_since);
            if (ds->bgpu && ds->user_idx >= 0)
                __atomic_store_n(&ds->bgpu->user_open_ns[ds->user_idx], now, __ATOMIC_RELEASE);
            sib_running(ds, now);
        }
    }
    ds->harvest_left = ds->pending;
    relaxed_end(swapped, &mode);
    ST_STOP(ST_HARVEST);
}

/* Age of the oldest marked launch whose completion has not been collected (0 = none). Its enqueue time changes only
 * when a mark is recorded or collected (or the queues are dropped), not on the launches between: the scan of every
 * queue runs once after each such change (oldest_stale), not on every fast-path launch (credit_ample). */
static int64_t oldest_age(struct dstate *ds, int64_t now)
{
    if (!ds->oldest_stale)
        return ds->oldest_enq ? now - ds->oldest_enq : 0;
    int64_t oldest = 0;
    for (int i = 0; i < ds->nq; i++) {
        const struct squeue *q = &ds->q[i];
        for (int k = 0; k < q->count; k++) {
            const struct mark *m = &q->ring[(q->head + k) % RING];
            if (m->enq) {
                if (!oldest || m->enq < oldest)
                    oldest = m->enq;
                break;
            }
        }
        /* a deep run's deferred launches (deep_defer) will be closed by a mark: their age counts */
        if (q->deep_run && (!oldest || q->unmarked_enq < oldest))
            oldest = q->unmarked_enq;
    }  /* launches without a mark (a failed record) are not waited for: nothing would ever complete them */
    ds->oldest_enq = oldest;
    ds->oldest_stale = 0;
    return oldest ? now - oldest : 0;
}

static struct squeue *find_queue(struct dstate *ds, CUstream s)
{
    struct squeue *idle = NULL;
    for (int i = 0; i < ds->nq; i++) {
        if (ds->q[i].s == s)
            return &ds->q[i];
        if (!ds->q[i].count && !ds->q[i].unmarked && !idle)
            idle = &ds->q[i];
    }
    struct squeue *q = ds->nq < MAXQ ? &ds->q[ds->nq++] : idle;
    if (q) {
        memset(q, 0, sizeof(*q) - sizeof(q->ring));
        q->s = s;
    }
    return q;
}

/* Every stream queue is held by another busy stream: collected (bounded, see harvest) until a queue whose work has
 * completed is free, for at most QUEUE_WAIT_NS (the device's lock released between tries), else NULL: the launch
 * goes the unmeasured way (unmeasured_mark: a synchronize, its wall time charged, which also holds the other
 * streams' queued work: an over-charge). Before, every launch collected while > 16 marks waited, which freed such a
 * queue by the time a 33rd stream launched; collecting only as due, the CUDA-graphs program on 33 streams (100 us
 * graphs) sent 40 % of its steps the unmeasured way on the fake and got 0.55 of the GPU at a 90 % limit (0.90
 * before). *now: the launch's clock read, read again after a wait. */
static COLD struct squeue *wait_queue(struct dstate *ds, CUstream s, int64_t *now)
{
    struct squeue *q = NULL;
    for (int64_t waited = 0; !ds->stale; waited += QUEUE_POLL_NS) {
        harvest(ds);
        ds->harvest_at = *now;
        if ((q = find_queue(ds, s)) || waited >= QUEUE_WAIT_NS)
            break;
        pthread_mutex_unlock(&ds->mu);
        sleep_ns(QUEUE_POLL_NS);
        pthread_mutex_lock(&ds->mu);
        *now = ds->now_at = vg_now_ns();
    }
    return q;
}

/* Records a mark of the kind on q's stream. A stream being captured into a graph gets none: its launches are
 * recorded, not run (the graph's launch is measured), so they are forgotten. */
#define CAPTURE_ERR_FIRST 900  /* CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ... */
#define CAPTURE_ERR_LAST 908   /* ... CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD: a capture is in the way */

/* Whether q's stream is being captured: 1 yes, 0 no, -1 the driver's query failed with a stream capture error (the
 * legacy stream while a blocking stream is captured: CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, documented). Any other
 * failure reads 0, as before: a record then fails too and the state goes stale (charged, never free). */
static int capture_state(struct squeue *q)
{
    if (!__atomic_load_n(&capture_seen, __ATOMIC_ACQUIRE) || !vg_real.cuStreamIsCapturing)
        return 0;
    int capture = 0;
    CUresult r = vg_real.cuStreamIsCapturing(q->s, &capture);
    if (r >= CAPTURE_ERR_FIRST && r <= CAPTURE_ERR_LAST)
        return -1;
    return r == CUDA_SUCCESS && capture != CU_STREAM_CAPTURE_STATUS_NONE;
}

static int capturing(struct squeue *q)
{
    return capture_state(q) > 0;
}

/* capture: whether q's stream is being captured, -1 = ask the driver (a launch asks once for its marks). hend: 0, or a
 * coarse end mark with no event, completed then (proven_close; the caller left room in the ring). */
static int push_mark_x(struct dstate *ds, struct squeue *q, int64_t enq, int kind, int capture, int64_t hend)
{
    if (capture < 0)
        capture = capturing(q);
    if (capture) {
        ds->deep_extra -= q->deep_run;
        q->deep_run = 0;
        q->unmarked = 0;
        q->un_est = q->un_kn = 0;
        return 0;
    }
    if (q->count >= RING - 1) {  /* ring full: wait for the oldest work to finish */
        /* the host waits for its own queued work here, as in the in-flight bound's holds: counted for turns' demand
         * estimate (update_solo_demand), which took it for host time. Issue 18, record 7 (H100): the training loop,
         * ~750 launches a step and one sync, ran ~127 launches ahead of the GPU, and its demand alone read as its
         * charged share (33-68 %), so it rarely took turns */
        int64_t from = vg_now_ns();
        while (q->count >= RING - 1) {
            harvest(ds);
            if (q->count >= RING - 1)
                sleep_ns(50000);
        }
        int64_t waited = vg_now_ns() - from;
        if (waited > 0) {
            ds->sd_full += waited;
            lst_add(&lst.full_ns, waited);
        }
    }
    CUevent e = NULL;
    int64_t now, rec_call = 0;
    if (hend) {
        now = vg_now_ns();
    } else {
        ST_START();
        int mode;  /* relaxed, as in harvest(): another stream may be capturing in global mode */
        int swapped = relaxed_begin(&mode);
        e = get_event(ds);
        now = vg_now_ns();
        if (e)
            ST_COUNT(records);
        CUresult rec = e ? vg_real.cuEventRecord(e, q->s) : CUDA_ERROR_NOT_INITIALIZED;
        rec_call = vg_now_ns() - now;  /* the record call's host time (sub_floor) */
        relaxed_end(swapped, &mode);
        ST_STOP(ST_MARK);
        if (!e || rec != CUDA_SUCCESS) {
            ds->stale = 1;  /* no event, or it cannot be recorded: never fail open (drop_measured); e is dropped */
            return 0;
        }
        ds->recorded = 1;
    }
    q->ring[(q->head + q->count) % RING] =
        (struct mark){e, kind == MK_START ? now : enq, now, kind, kind == MK_END ? q->unmarked : 0,
                      kind == MK_END ? q->unmarked_coarse : ds->coarse, 0, kind == MK_END ? q->sample : 0, 0, 0,
                      ds->seq++};  /* numbered under the lock, once its record returned (wait_begin reads it) */
    q->ring[(q->head + q->count) % RING].chain = kind == MK_END ? q->chain_next : 0;
    q->ring[(q->head + q->count) % RING].sub = kind == MK_END ? q->unmarked_sub : 0;  /* span_start */
    q->ring[(q->head + q->count) % RING].rec_call = rec_call > 0 ? rec_call : 0;
    q->ring[(q->head + q->count) % RING].gated = kind == MK_START && ds->gate_held;
    q->ring[(q->head + q->count) % RING].hend = hend;
    q->chain_next = 0;  /* a start mark breaks the chain; an end mark took it */
    if (kind == MK_END) {
        /* a deep run's deferred launches stay in deep_extra (the in-flight estimate) beyond the one that pending
         * counts for this mark, until it is collected */
        struct mark *m = &q->ring[(q->head + q->count) % RING];
        m->deep = q->deep_run < q->unmarked ? q->deep_run : q->unmarked - 1;
        if (m->deep < 0)
            m->deep = 0;
        ds->deep_extra -= q->deep_run - m->deep;
        /* its launches the kernel table knew are priced at their estimates until it is collected (queued_work_ns);
         * only a precise mark's, each of whose launches is one of the units priced (pending counts the mark once,
         * deep_extra its deferred launches): a coarse mark of n launches stays one average, as before */
        m->key = q->unmarked > 0 && !q->unmarked_coarse ? q->un_key : 0;  /* what its span teaches (kt_learn) */
        if (m->key && q->un_kn > 0 && q->un_kn <= 1 + m->deep) {
            m->est = q->un_est;
            m->kn = q->un_kn;
            ds->kq_sum += m->est;
            ds->kq_n += m->kn;
        }
        q->un_est = q->un_kn = 0;
        q->queued += q->unmarked;
        q->deep_run = 0;
        if (m->deep && vg_cfg.launch_stats) {
            __atomic_add_fetch(&lst.deep_runs, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&lst.deep_launches, (uint64_t)q->unmarked, __ATOMIC_RELAXED);
        }
    }
    q->count++;
    ds->oldest_stale = 1;
    if (kind == MK_END) {
        q->sample = 0;
        ds->pending++;
        q->unmarked = 0;
        q->proven_end = 0;
        q->unmarked_coarse = 0;
        q->last_mark = now;
    } else {
        ds->calib_at = now;
    }
    return 1;
}

static inline int push_mark(struct dstate *ds, struct squeue *q, int64_t enq, int kind, int capture)
{
    return push_mark_x(ds, q, enq, kind, capture, 0);
}

/* A coarse sample begins: the run before it is closed (an end mark) and the sample opened (a start mark) by one
 * event. Recorded back to back with nothing between them on the stream, the two marks complete at the same GPU
 * moment, so one record and one conversion serve both: two ring entries, the end one paired (its event is the start
 * mark's, converted once in harvest). A sample cost three records (issue 18: on the H200's inference loop ~3 us of
 * host time each, 0.094 of its 0.164 records per launch); now two. No run before it: a start mark alone. Returns
 * whether the start mark was recorded. */
static COLD int push_boundary(struct dstate *ds, struct squeue *q, int64_t now)
{
    if (!q->unmarked || !push_mark(ds, q, q->unmarked_enq, MK_END, 0))
        return push_mark(ds, q, now, MK_START, 0);
    struct mark *end = &q->ring[(q->head + q->count - 1) % RING];  /* push_mark left one free slot at least */
    end->paired = 1;
    q->ring[(q->head + q->count) % RING] = (struct mark){end->e, end->rec, end->rec, MK_START, 0, ds->coarse, 0, 0, 0,
                                                         0, end->seq};
    q->ring[(q->head + q->count) % RING].rec_call = end->rec_call;  /* one record for both */
    q->ring[(q->head + q->count) % RING].gated = ds->gate_held;
    q->count++;
    ds->oldest_stale = 1;
    ds->calib_at = end->rec;
    return 1;
}

/* Gated marks (gatemarks, HAMI_SM_GATE_MARKS=1 or 2; docs/interposer.md "Gated marks"). H200 record 13: two
 * launch-bound inference loops sharing the GPU were each charged ~2.6 x their kernels' GPU time. On the fake
 * (bench/turns.py --cases infer2c) the cause: a 2 us kernel ends on the GPU while the host is still inside its end
 * mark's cuEventRecord (~3 us on the H200), the context runs out of work, the GPU switches to the neighbour, and the end
 * mark completes only after the neighbour's turn, so the span (precise, or a coarse sample's: push_boundary) holds that
 * turn. Subtracting the neighbour afterwards (board rings, low figures per kernel) kept failing; this removes the cause
 * instead: before a marked launch's start mark the stream waits (cuStreamWaitValue32_v2, GEQ, cyclic) on a word of
 * host memory registered and mapped to the device, and the host writes the ticket only once the launch's end mark is queued
 * (gate_release). The GPU then runs start mark, kernel and end mark back to back, and the span is the kernel's. Only
 * launches that get a start mark while another container is present are gated: 1 precise spans on an idle stream and
 * coarse samples (the start marks recorded anyway), 2 also chained precise launches, each given a start mark
 * (launch_begin); alone nothing holds the neighbour's turn, and plain launches (coarse runs, deep runs) have no span of
 * their own. Never on a stream being captured (a wait would become a node of the program's graph), nor where the driver
 * or device lacks the V2 stream memory operations (the wait call fails) or the word cannot be had (gate_ready: then
 * silently today's path).
 * Never a deadlock: the ticket is written on every path out of the launch (launch_end, the launch's own failure
 * included), before anything that waits for the GPU (the unmeasured path's synchronize); at most one wait is held at a
 * time per device, under the device's lock held across the launch call. The word is the library's own page, registered
 * in its context: after any context destruction it is registered again (gate_setup). What a blocked wait does to the time slice
 * (held idle by the waiting context or switched out) the fake models both ways (FAKE_CUDA_GATE_HOLDS); a GPU must say
 * which it does. */
#define HOSTREGISTER_PORTABLE 0x01  /* CU_MEMHOSTREGISTER_PORTABLE: pinned for every context */
#define HOSTREGISTER_DEVICEMAP 0x02 /* CU_MEMHOSTREGISTER_DEVICEMAP: mapped for the device (cuMemHostGetDevicePointer) */
#define HOST_ALREADY_REGISTERED 712 /* CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED: a live context still has it */
#define GATE_PAGE 4096
#define WAIT_VALUE_GEQ 0x0       /* CU_STREAM_WAIT_VALUE_GEQ: (int32_t)(*addr - value) >= 0 */
#define GATE_CHAIN_AHEAD_NS 50000LL  /* HAMI_SM_GATE_MARKS=2: chained launches gated behind at most this queued work */
/* a wait held this long: its launch call waits for the GPU (gate_watchdog; 2 ms also released the waits of a launching
 * thread merely descheduled on a loaded host: the fake's gated pair read 1.2-1.8 x its kernels, 1.00 x at 20 ms) */
#define GATE_WATCHDOG_NS 20000000LL
#define GATE_RESCUES_MAX 16          /* the watchdog's releases in a row before the gate goes off for good */

/* The gate goes off for good on this device; the first reason (any device's) is the stats line's. A compare-and-swap:
 * two devices' launching threads may get here at once (review of gatemarks: a check-then-set raced). */
static COLD void gate_off(struct dstate *ds, const char *why)
{
    ds->gate_state = -1;
    const char *none = NULL;
    if (__atomic_compare_exchange_n(&lst.gate_off, &none, why, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        vg_log(VG_INFO, "device %d: marked launches not gated (HAMI_SM_GATE_MARKS): %s", ds->dev, why);
}

/* Whether the gate's word is ready in the measured context: set up at the first gated launch, registered again after
 * any context destruction (its registration died with its context, or may have: vg_ctx_epoch), never while one is in
 * progress.
 * The word is a page of the library's own memory (mmap'd once per device, never unmapped) registered with
 * cuMemHostRegister(PORTABLE | DEVICEMAP), not cuMemHostAlloc'd (review of gatemarks, 2026-12-07): the driver unmaps
 * its own pinned allocations when their context is destroyed, so a release store (gate_release, gate_watchdog) after
 * another thread destroyed the context mid-launch faulted in the library (fake: FAKE_CUDA_HOST_UNMAP=1); a destruction
 * now only unregisters the page, and every store is to valid memory. It also ended the leak of one pinned page per
 * re-setup (each context destruction, or primary context release, left the old allocation behind), which the bound on
 * re-setups (GATE_SETUPS_MAX, 8) existed for: nothing accumulates now (the page is registered again, or found still
 * registered in a live context), so a program that retains and releases its primary context keeps its gate; a re-setup
 * costs two driver calls after a context destruction, which costs far more itself.
 * No device attribute is asked: the V2 stream memory operations (cuStreamWaitValue32_v2) need none. The CUDA 11.8
 * driver API's "Stream Memory Operations" says "The V2 APIs are available by default on all platforms" (the V1 ones
 * needed NVreg_EnableStreamMemOPs=1 and CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_MEM_OPS); in the CUDA 12 and 13 pages the
 * only attribute for the 32-bit wait is CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR_V2, which says whether the NOR
 * condition is supported, not GEQ (used here). The gate asked attribute 123 (..._NOR_V2 in CUDA 11's cuda.h; some
 * later headers number the attributes differently), which could turn it off where GEQ works. A wait call that fails
 * turns it off instead (gate_arm), its ticket written all the same. */
/* A fresh page for the gate's word (gate_setup): the first, or one for a context that found the current page registered
 * by another (review23 3). Never unmapped: a watchdog or a release may still store to an old one, and the other context
 * may still read it; at most GATE_PAGES_MAX per device (a program that keeps switching its measured context between live
 * contexts would otherwise map one per switch), then the gate goes off. MADV_WIPEONFORK (review23 4; Linux 4.14+,
 * failure ignored): the private page pinned by cuMemHostRegister is not shared with a forked child, so fork() never
 * write-protects the parent's entry for copy-on-write and the parent's next release store never moves it off the
 * physical page the GPU reads (a pin that is not FOLL_PIN on a kernel before 5.9: the RDMA ibv_fork_init problem); the
 * child gets a zero page at the same address. MADV_DONTFORK would also keep the parent's page, but would leave the
 * child's inherited gate_word pointing at nothing, and a store there (a release on its launch path) would fault. The
 * word takes the current ticket (the tickets go on from the last one: no wait is held now). */
#define GATE_PAGES_MAX 8
static COLD int gate_page(struct dstate *ds)
{
    if (ds->gate_pages >= GATE_PAGES_MAX) {
        gate_off(ds, "its word's page was registered by another live context too often");
        return 0;
    }
    void *page = mmap(NULL, GATE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        gate_off(ds, "no page for its word");
        return 0;
    }
#ifdef MADV_WIPEONFORK
    (void)madvise(page, GATE_PAGE, MADV_WIPEONFORK);
#endif
    ds->gate_pages++;
    __atomic_store_n((volatile uint32_t *)page, ds->gate_ticket, __ATOMIC_RELEASE);
    /* published before any wait can be armed on it; the watchdog reads it only once a wait is armed */
    __atomic_store_n(&ds->gate_word, (volatile uint32_t *)page, __ATOMIC_RELEASE);
    return 1;
}

static COLD int gate_setup(struct dstate *ds)
{
    int calm = 0;
    uint64_t epoch = vg_ctx_epoch(&calm);
    if (ds->gate_state < 0 || !calm)
        return 0;
    if (!vg_real.cuStreamWaitValue32 || !vg_real.cuMemHostRegister || !vg_real.cuMemHostGetDevicePointer) {
        gate_off(ds, "the driver lacks cuStreamWaitValue32_v2 or host memory registration");
        return 0;
    }
    /* every launch call waits for its stream, the gate's wait included, before it returns and the host can write the
     * ticket: the watchdog would release each one after 20 ms (review of gatemarks, 2026-12-07) */
    const char *blocking = getenv("CUDA_LAUNCH_BLOCKING");
    if (blocking && blocking[0] && strcmp(blocking, "0") != 0) {
        gate_off(ds, "CUDA_LAUNCH_BLOCKING is set (a launch call waits for the GPU)");
        return 0;
    }
    if (!ds->gate_word && !gate_page(ds))
        return 0;
    /* the word keeps its value across re-setups (the tickets go on from the last one: no wait is held now) */
    __atomic_store_n(ds->gate_word, ds->gate_ticket, __ATOMIC_RELEASE);
    CUdeviceptr d = 0;
    int mode;  /* relaxed, as push_mark: another stream may be capturing in global mode */
    int swapped = relaxed_begin(&mode);
    CUresult r = vg_real.cuMemHostRegister((void *)ds->gate_word, GATE_PAGE,
                                           HOSTREGISTER_PORTABLE | HOSTREGISTER_DEVICEMAP);
    /* ALREADY_REGISTERED is the word's own registration only where it was made in this same context (registered again
     * after an unrelated destruction or a primary context's release). Made in another context that still lives (the
     * measured one changed: drop_measured, adoption) it dies with that context, and a wait this one queued meanwhile
     * would read an unmapped page, a fault in the tenant's context (review23 3): a fresh page for this context. */
    if (r == HOST_ALREADY_REGISTERED && ds->gate_ctx != ds->ctx) {
        r = gate_page(ds) ? vg_real.cuMemHostRegister((void *)ds->gate_word, GATE_PAGE,
                                                      HOSTREGISTER_PORTABLE | HOSTREGISTER_DEVICEMAP)
                          : CUDA_ERROR_NOT_INITIALIZED;  /* gate_page turned the gate off */
        if (r == HOST_ALREADY_REGISTERED)
            r = CUDA_ERROR_NOT_INITIALIZED;  /* a page never registered before cannot be: not trusted */
    }
    if (r == CUDA_SUCCESS || r == HOST_ALREADY_REGISTERED)
        r = vg_real.cuMemHostGetDevicePointer(&d, (void *)ds->gate_word, 0);
    relaxed_end(swapped, &mode);
    if (ds->gate_state < 0)
        return 0;  /* gate_page turned it off */
    if (r != CUDA_SUCCESS || !d) {
        gate_off(ds, "no host-mapped word");
        return 0;
    }
    ds->gate_dptr = d;
    ds->gate_ctx = ds->ctx;
    ds->gate_epoch = epoch;
    ds->gate_state = 1;
    return 1;
}

static inline int gate_ready(struct dstate *ds)
{
    if (__builtin_expect(__atomic_load_n(&ds->gate_rescues, __ATOMIC_RELAXED) >= GATE_RESCUES_MAX, 0)) {
        if (ds->gate_state >= 0)
            gate_off(ds, "launch calls waited for the GPU behind the gate (released by the watcher 16 times in a row)");
        return 0;
    }
    int calm = 0;
    if (ds->gate_state > 0 && ds->gate_ctx == ds->ctx && vg_ctx_epoch(&calm) == ds->gate_epoch && calm)
        return 1;
    return gate_setup(ds);
}

/* A marked launch beside a neighbour (vg_cfg.sm_gate_marks, ds->shared, its stream not captured): the stream waits for
 * the next ticket before its start mark. Not when a wait is already held (one at a time) or the stream's mark ring is
 * half full (push_mark's wait for a full ring must never find the gated mark the oldest). A failed wait call is taken
 * as not enqueued; the ticket is written all the same and the gate goes off for good. */
static void gate_arm(struct dstate *ds, struct squeue *q)
{
    if (ds->gate_held || q->count >= RING / 2 || !gate_ready(ds)) {
        if (vg_cfg.launch_stats)
            __atomic_add_fetch(&lst.gate_skipped, 1, __ATOMIC_RELAXED);
        return;
    }
    uint32_t t = ds->gate_ticket + 1;  /* wraps: the wait's comparison is cyclic */
    int mode;
    int swapped = relaxed_begin(&mode);
    CUresult r = vg_real.cuStreamWaitValue32(q->s, ds->gate_dptr, t, WAIT_VALUE_GEQ);
    relaxed_end(swapped, &mode);
    __atomic_store_n(&ds->gate_ticket, t, __ATOMIC_RELAXED);  /* gate_watchdog reads it unlocked */
    if (r != CUDA_SUCCESS) {
        __atomic_store_n(ds->gate_word, t, __ATOMIC_RELEASE);
        gate_off(ds, "cuStreamWaitValue32 failed");
        return;
    }
    ds->gate_held = 1;
    __atomic_store_n(&ds->gate_armed_ns, vg_now_ns(), __ATOMIC_RELEASE);  /* after the ticket: gate_watchdog */
    if (vg_cfg.launch_stats)
        __atomic_add_fetch(&lst.gated, 1, __ATOMIC_RELAXED);
}

/* The held wait is released: its ticket written (a release store: everything the host queued before is queued). */
static inline void gate_release(struct dstate *ds)
{
    if (ds->gate_held) {
        __atomic_store_n(ds->gate_word, ds->gate_ticket, __ATOMIC_RELEASE);
        __atomic_store_n(&ds->gate_armed_ns, 0, __ATOMIC_RELEASE);
        if (__atomic_load_n(&ds->gate_rescued, __ATOMIC_RELAXED) != ds->gate_ticket)
            __atomic_store_n(&ds->gate_rescues, 0, __ATOMIC_RELAXED);  /* released by its own launch: the row ends */
        ds->gate_held = 0;
    }
}

/* The watcher's watchdog (watcher.c, every wake, without the device's lock): a wait held GATE_WATCHDOG_NS is one whose
 * launch call is itself waiting for the GPU (CUDA_LAUNCH_BLOCKING set after start-up, a lazily loaded module's first
 * launch synchronizing the context, a profiler serializing kernels), which would wait forever: the launching thread
 * holds the device's lock and writes the ticket only once the call returns. The watchdog writes it: a compare-and-swap
 * from the ticket before (a plain store could move the word back behind a newer wait, which would then hang). A stale
 * read (the wait released and a new one armed in between) releases the new wait early: its span is measured as
 * without the gate, never a hang. After GATE_RESCUES_MAX releases in a row (every launch call waits: a blocking
 * launch mode set after start-up) the gate goes off for good (gate_ready); a launch thread descheduled past 20 ms while
 * it holds a wait (a CPU quota's throttle), or a module's first launch, costs one early release and ends no row. */
void gate_watchdog(struct dstate *ds, int64_t now)
{
    int64_t armed = __atomic_load_n(&ds->gate_armed_ns, __ATOMIC_ACQUIRE);
    if (!armed || now - armed < GATE_WATCHDOG_NS)
        return;
    volatile uint32_t *w = __atomic_load_n(&ds->gate_word, __ATOMIC_ACQUIRE);  /* never unmapped (gate_setup) */
    uint32_t t = __atomic_load_n(&ds->gate_ticket, __ATOMIC_RELAXED);
    uint32_t before = t - 1;
    if (w && __atomic_compare_exchange_n((uint32_t *)w, &before, t, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
        __atomic_store_n(&ds->gate_rescued, t, __ATOMIC_RELAXED);
        if (__atomic_add_fetch(&ds->gate_rescues, 1, __ATOMIC_RELAXED) == 1)
            vg_log(VG_INFO, "device %d: a launch call waited for the GPU behind its gate (HAMI_SM_GATE_MARKS): "
                   "released by the watcher", ds->dev);
    }
}

/* Asks whether mark m has completed with the call that also gives its time (an elapsed-time call from the reference,
 * as mark_done asks it), kept in the mark, so the collection that converts it next makes no second call: in a
 * launch-bound pair measured precisely nearly every launch finds its stream idle, and its idle check queried the mark
 * that the collection right after it converted with another call (fake libcuda, this 2-core VM: 0.8 event queries
 * per launch on top of 2 elapsed-time calls; docs/results/2026-12-06-fake-pair-host-cost.md). A mark found not
 * completed costs one call either way. Before there is a reference, or where the call fails otherwise: an event
 * query, as before. */
static int ask_done(struct dstate *ds, struct mark *m)
{
    if (m->hend)
        return host_done(ds, m, vg_now_ns());  /* closed with no event (proven_close): nothing to ask */
    if (ds->ref && vg_real.cuEventElapsedTime) {
        float ms = 0;
        ST_COUNT(elapsed);
        CUresult r = vg_real.cuEventElapsedTime(&ms, ds->ref, m->e);
        if (r == CUDA_SUCCESS) {
            m->ms = ms;
            m->ms_gen = ds->ref_gen;
            return 1;
        }
        if (r == CUDA_ERROR_NOT_READY)
            return 0;
    }
    ST_COUNT(queries);
    return !event_failed(ds, vg_real.cuEventQuery(m->e));
}

/* Whether a launch on an idle stream alone records a calibration sample (a start mark): every CALIB_GAP_NS, and every
 * PROMPT_GAP_NS while the bounds are wide (ref_wide), so the one asked as its launch call returns (prompt_ask) tightens
 * them within ~1 ms of a process's first launch or a re-base. Every 5 ms, the light loop alone (a launch every 45 us)
 * had its first ~110 launches converted through ~46 us bounds (fake: ~33 us charged for each 5 us kernel, a spell with
 * no credit held by them; issue 18, lightcharge). At most a few records more every 2 s. */
static inline int calibrate_due(const struct dstate *ds, int64_t now)
{
    return now - ds->calib_at > (ref_wide(ds) ? PROMPT_GAP_NS : CALIB_GAP_NS);
}

/* Whether the start mark this launch recorded is asked as its launch call returns (prompt_ask): while the reference's
 * bounds are wider than 20 us, at most once per PROMPT_GAP_NS (beside a neighbour a start mark may wait behind its
 * time slices: a mark found not completed costs one call, at most one a ms). */
static inline int prompt_due(const struct dstate *ds, int64_t now)
{
    return ds->ref && ref_wide(ds) && now - ds->prompt_at >= PROMPT_GAP_NS;
}

/* The start mark q's launch recorded (newest(q), numbered ds->prompt_seq - 1), asked right after the launch call
 * returned: on an idle GPU it has completed by then (recorded before the call), and a clock read after the ask bounds
 * the reference from above within a record call, a launch call and this ask (~7 us with H100-like costs) of its lower
 * bound (after this launch's end mark's record too: every clock read of the launch's own is taken before it,
 * submitted_at). The reference's upper bound is a clock read after a query found a mark complete (seen), and the collections
 * ask a mark a launch or more after it ran: a loop launching every 45 us (5 us kernels, 40 us of host time: the light
 * loop) never saw one within 20 us, so its bounds stayed ~42 us wide, every converted time was put 20 us late (the
 * estimate, off_hi - 20 us) and every span started 20 us before its submission (sub_floor): charged 1.35-1.56 x the
 * fake's GPU time coarse, ~5 x where a precise spell's charges held it (fake libcuda, this 2-core VM). Its time is
 * kept in the mark (ask_done), so the collection that converts it makes no second call: the ask is moved, not added,
 * unless the mark had not completed. A paired start mark (push_boundary) shares its event with the end mark before it,
 * which the collection converts: the time goes to both. */
static COLD void prompt_ask(struct dstate *ds, struct squeue *q)
{
    uint64_t seq = ds->prompt_seq - 1;
    ds->prompt_seq = 0;
    ds->prompt_at = ds->now_at;
    struct mark *m = NULL;  /* the newest, or the one before this launch's end mark; gone if a collection took it */
    for (int k = 1; k <= 2 && k <= q->count; k++) {
        struct mark *c = &q->ring[(q->head + q->count - k) % RING];
        if (c->kind == MK_START && c->seq == seq)
            m = c;
    }
    if (!m || !ask_done(ds, m) || m->ms_gen != ds->ref_gen)
        return;  /* not completed yet (or no elapsed time): the collections bound it as before */
    int64_t t = vg_now_ns(), raw = (int64_t)((double)m->ms * 1e6);
    if (m != &q->ring[q->head]) {
        struct mark *p = &q->ring[(m - q->ring + RING - 1) % RING];
        if (p->paired && p->e == m->e) {
            p->ms = m->ms;
            p->ms_gen = m->ms_gen;
        }
    }
    tighten_hi(ds, t - raw);
}

/* Whether q's stream has nothing left to run: no launch without a mark, and its newest mark completed: known so
 * (mark_known: a host wait proved it, no call) or asked (one driver call, counted in *calls). own: q is the launch's
 * own stream, asked on every launch that may get a start mark: with the call that also takes the mark's time
 * (ask_done). The other streams others_idle asks (at most IDLE_ASKS, in multi-stream programs only) keep the event
 * query, so their asks stay countable apart from the conversions (test_interposer_sync_known.py). */
static int stream_idle(struct dstate *ds, struct squeue *q, int *calls, int own)
{
    if (q->unmarked)
        return 0;
    if (own)
        q->chain_next = 0;
    if (!q->count || mark_known(q, newest(q)))
        return 1;
    ST_START();
    int mode;  /* relaxed, as in harvest(): another stream may be capturing in global mode */
    int swapped = relaxed_begin(&mode);
    (*calls)++;
    int idle;
    if (own) {
        idle = ask_done(ds, newest(q));
        /* not completed, asked after this launch's time was read (its enqueue): the launch queues behind that mark,
         * so the end mark that will close it starts where that one ends (mark.chain, chained_run) */
        if (!idle)
            q->chain_next = newest(q)->seq + 1;
    } else {
        idle = query_done(ds, newest(q), vg_now_ns());
    }
    /* so has its oldest: due now, not when ask_later put it off. The launch that finds every stream idle collects
     * them, so the period of work before it closes and the host's wait counts in the demand estimate (note_blocked):
     * put off, the graphs program on 8 streams left most steps' periods open across its sync, each tenant's demand
     * came out as the share it got, and the pair's switch-ins went uncharged (fake: 0.86 x kernels + switch-ins) */
    if (idle)
        q->ring[q->head].ask_at = 0;
    relaxed_end(swapped, &mode);
    ST_STOP(ST_QUERY);
    return idle;
}

#define IDLE_ASKS 2  /* other streams' newest marks a launch asks at most (others_idle) */

/* What q's queue says without a driver call: 1 = busy (launches after its last mark), 0 = idle (no mark left
 * uncollected, or its newest known complete: mark_known), -1 = its newest mark would have to be asked. */
static int queue_says(const struct squeue *q)
{
    if (q->unmarked)
        return 1;
    return q->count && !mark_known(q, newest(q)) ? -1 : 0;
}

/* Whether a stream's newest mark is a better one to ask than b's (others_idle): the first ask takes the newest record
 * (the likeliest still running: the common answer, busy, costs one query); later ones first a stream a collection
 * would not ask now (its oldest mark found not completed lately, ask_later), then the newest record. */
static int ask_before(const struct squeue *a, const struct squeue *b, int first, int64_t now)
{
    int sa = a->ring[a->head].ask_at > now, sb = b->ring[b->head].ask_at > now;
    if (!first && sa != sb)
        return sa;
    return newest(a)->rec > newest(b)->rec;
}

/* Whether every stream of this process but q has nothing left to run (a start mark recorded then is the switch
 * into this process's context, if it waits: HAMI_SM_CHARGE_SWITCHES). Bounded (issue 18: a query ~1.5 us on the
 * H200): it asked every other stream's newest mark, up to 31 queries on a launch that found many streams just gone
 * idle with their marks not collected yet (the first launch after each synchronize, on a GPU where the streams run
 * at once). Now what the queues say needs no call (queue_says): a stream with launches after its last mark is busy,
 * one with no mark left, or whose marks a host wait proved complete (mark_known), is idle; of the rest at most
 * IDLE_ASKS newest marks are asked (ask_before); if some are still unknown, one collection (harvest) takes the
 * completed marks it may ask, each converted once as it would have been anyway (a launch that finds the process
 * idle collects at once, see launch_begin), and a stream left with a mark it was not asked about is taken as busy.
 * Busy is the safe side: the launch's start mark is then not taken for the switch into this context, which is not
 * charged (the charge errs low, as without switch charging, and never includes a switch that was not one). Bounded
 * alone (streamcost2) it erred low often: a program that synchronizes before each step left many streams unknown,
 * and the graphs pair on 31 streams was charged about half its switches (fake, 12.1 against 25.8 ms per second);
 * the synchronize now proves them idle. *harvested: whether it collected; *calls: the event queries it made. */
static COLD int others_idle(struct dstate *ds, struct squeue *q, int64_t now, int *harvested, int *calls)
{
    uint64_t asked = 0;  /* streams asked and found idle */
    int unknown = 0;
    for (int i = 0; i < ds->nq; i++) {
        int says = &ds->q[i] == q ? 0 : queue_says(&ds->q[i]);
        if (says > 0)
            return 0;
        unknown += says < 0;
    }
    for (int n = 0; n < IDLE_ASKS && unknown > 0; n++, unknown--) {
        int pick = -1;
        for (int i = 0; i < ds->nq; i++) {
            const struct squeue *q2 = &ds->q[i];
            if (q2 != q && !(asked >> i & 1) && queue_says(q2) < 0 && (pick < 0 || ask_before(q2, &ds->q[pick], !n, now)))
                pick = i;
        }
        if (!stream_idle(ds, &ds->q[pick], calls, 0))
            return 0;
        asked |= 1ULL << pick;
    }
    if (!unknown)
        return 1;
    collect(ds, 1);  /* marks asked lately and deferred (ask_later) are asked too: most completed since (a sync) */
    *harvested = 1;
    for (int i = 0; i < ds->nq; i++)
        if (&ds->q[i] != q && !(asked >> i & 1) && queue_says(&ds->q[i]) != 0)
            return 0;
    return 1;
}

/* Closes q's open run with its end mark from outside its stream's launches (the watcher), unless the driver
 * cannot say whether the stream is being captured (capture_state -1; review of pausegap item 4): a mark recorded there
 * would join the capture through its implicit dependency (a node in the program's graph, or the capture invalidated),
 * so the run stays open, neither recorded on nor dropped. Its launches are still charged: by the next pass or launch
 * that closes it once the capture is over (a longer span, charged as one: more, never less), or at exit. */
static void close_run(struct dstate *ds, struct squeue *q)
{
    int capture = capture_state(q);
    if (capture >= 0)
        push_mark(ds, q, q->unmarked_enq, MK_END, capture);
}

/* Closes q's open coarse run with no event where a host wait proved all its launches complete (q->proven_end, wait_end):
 * its end mark completed at the wait's return (mark.hend; see wait_note_runs). 1 = closed. */
static int proven_close(struct dstate *ds, struct squeue *q)
{
    if (!q->proven_end || q->unmarked != q->proven_n || !q->unmarked_coarse || q->sample || q->count >= RING - 1)
        return 0;
    return push_mark_x(ds, q, q->unmarked_enq, MK_END, 0, q->proven_end);
}

/* Closes the open burst of every stream whose last launch is older than the mark gap (watcher thread). */
void close_bursts(struct dstate *ds, int64_t now)
{
    for (int i = 0; i < ds->nq && !ds->stale; i++) {
        struct squeue *q = &ds->q[i];
        if (!q->unmarked || now - q->last_launch < MARK_GAP_NS)
            continue;
        if (q->s == CU_STREAM_PER_THREAD)
            q->unmarked = 0;  /* the handle would name the watcher's own stream: those launches go uncharged */
        else if (!proven_close(ds, q))
            close_run(ds, q);
    }
}

/* A capped tenant whose credit is low asks its neighbours on this GPU to measure precisely (see the header): the
 * time goes into its own user slot (user_held_ns, mark_held: the slot that also says it lends nothing), at most once
 * a millisecond, and into the board entry's waiter_since_ns, the one field per GPU that builds before 2026-12-06
 * read. ask = 0 (low on credit, but charged below its share: credit_falls): the slot is marked held, not asking,
 * and the per-GPU field is not written. */
static void demand_precision(struct dstate *ds, int64_t now, int ask)
{
    mark_held(ds, now, ask);  /* low on credit: it wants its share, it lends none */
    if (!ask || !ds->bgpu || now - ds->demand_wrote < 1000000)
        return;
    __atomic_store_n(&ds->bgpu->waiter_since_ns, now, __ATOMIC_RELEASE);
    ds->demand_wrote = now;
}

/* Whether another container asked for precise measurement within the last 200 ms: a fresh low-credit mark in any
 * other user's slot. One field per GPU, last writer wins, hid a neighbour's request behind this process's own write
 * (it ignored its own) on 45 % of a launch-bound pair's launches (fake libcuda; docs/results/2026-12-06-fake-lbpair.md).
 * A slot is written only by its owner and by forgers; a forged or stale one only makes this process measure precisely
 * (its cost, never its share), and times more than a second ahead are ignored (board_time). Read at most once a
 * millisecond (requests are written at most that often): 16 slots are not read on every launch. Without a slot of
 * its own (a full board) the per-GPU field, as before. */
static int precision_demanded(struct dstate *ds, int64_t now)
{
#ifdef HAMI_NO_PRECISION_REQUESTS  /* bench/test comparison only: neighbours' requests ignored */
    return 0;
#endif
    if (!ds->bgpu)
        return 0;
    if (ds->user_idx < 0) {
        int64_t t = board_time(__atomic_load_n(&ds->bgpu->waiter_since_ns, __ATOMIC_ACQUIRE), now,
                               "a precision request");
        return t && t != ds->demand_wrote && now - t < DEMAND_NS;
    }
    if (ds->dem_at && now - ds->dem_at < 1000000 && now >= ds->dem_at)
        return ds->dem_val;
    int asked = 0;
    for (int i = 0; i < HAMI_BOARD_USERS && !asked; i++) {
        if (i == ds->user_idx || !__atomic_load_n(&ds->bgpu->user_id[i], __ATOMIC_ACQUIRE))
            continue;  /* its own container's slot (its siblings share its charge: siblings.c), or a free one */
        int64_t t = board_time(__atomic_load_n(&ds->bgpu->user_held_ns[i], __ATOMIC_ACQUIRE), now,
                               "a precision request");
        asked = t && now - t < DEMAND_NS && !(t & 1);  /* the lowest bit: low on credit, not asking (mark_held) */
    }
    ds->dem_at = now;
    ds->dem_val = asked;
    return asked;
}

/* A precise window is complete: its average charge per launch becomes the estimate. The doubt of the coarse
 * phase before it is dropped when the window confirms the estimate used then (at most 1.5 x). Otherwise the
 * phase's launches are charged again at the window's average, at most the doubt: the best measure of what they
 * cost, the higher of the two averages (the over-charge side). Charging the whole doubt instead charged the
 * host gaps between launches as GPU time: on the fake, a launch-bound program whose kernels changed length
 * every 150 ms (3 / 12 us) was charged 1.67 x the GPU time it got, ~57 % of the wall for 34 % busy; its limit
 * would have held a program far below it.
 * The doubt is forgiven only as far as host gaps like the window's explain it: the window's time per launch not
 * charged as GPU time (its host gaps, (elapsed - charge) / launches), 1.5 x, times the phase's launches. What the
 * phase's spans say beyond that is charged whatever the averages say: the per-launch average alone let a tenant
 * that launched tiny kernels back to back while measured precisely and long ones in its coarse phases have the
 * long ones charged the tiny estimate and the doubt dropped (on the fake, 30 % force alone: 33-39 % of the GPU,
 * charged 0.82-0.96 x it; test_interposer_coarse_attack.py).
 * And the phase's own launches, sampled at random (coarse_sample), say what they cost whatever the window shows:
 * coarse launches x the samples' average (less 0.5 us each), less what they were charged, is charged too (at
 * most the doubt). Without it a tenant that tells the modes apart showed the windows tiny kernels with host gaps
 * that "explained" any doubt (on the fake: 63-77 % of the GPU at 30 %, charged 0.04-0.12 x it). */
/* What the coarse phase's own launches, sampled at random (coarse_sample), say they cost beyond what they were
 * charged: coarse launches x the samples' average (less 0.5 us each) - their charge; 0 = no samples yet. */
static double sampled_excess(struct dstate *ds)
{
    /* a phase that drew no sample (few launches) is judged by the last samples: a tenant cannot know beforehand
     * which phases will draw none */
    if (ds->samp_n)
        ds->samp_last = ds->samp_ns / ds->samp_n;
    return ds->samp_last ? (double)ds->coarse_n * ((double)ds->samp_last - SAMPLE_SLACK_NS) - (double)ds->coarse_est
                         : 0;
}

static COLD void verify(struct dstate *ds, int64_t now)
{
    int64_t avg = ds->win_ns / ds->win_n;
    if (ds->doubt_ns > 0 && vg_cfg.launch_stats) {
        __atomic_add_fetch(&lst.verified, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&lst.doubt_ns, ds->doubt_ns, __ATOMIC_RELAXED);
    }
    /* in doubles: coarse_n x a per-launch time of a long phase must not overflow. The window's time ends where its
     * charges do: deferred spans (charge.c deferred_charge) count their launches only when they are charged, so
     * the time since the oldest one waiting is neither charge nor host gap */
    int64_t upto = ds->ndfr ? ds->dfr_a[ds->dfr_head] : now;
    double gap = (double)(upto - ds->win_at - ds->win_ns) / (double)ds->win_n;  /* the window's host gap per launch */
    double unexplained = (double)ds->doubt_ns - 1.5 * (gap > 0 ? gap : 0) * (double)ds->coarse_n;
    int avg_ok = ds->est_ns > 0 && 2 * avg <= 3 * ds->est_ns;
    double sampled = sampled_excess(ds);
    if (ds->doubt_ns > 0 && (!avg_ok || unexplained > 0 || sampled > 0)) {
        double want = avg_ok ? 0 : (double)ds->coarse_n * (double)avg - (double)ds->coarse_est;
        if (unexplained > want)
            want = unexplained;
        if (sampled > want)
            want = sampled;
        int64_t extra = want <= 0 ? 0 : want >= (double)ds->doubt_ns ? ds->doubt_ns : (int64_t)want;
        vg_log(VG_DEBUG, "device %d: verification: %.2f us per launch against the estimate %.2f, host gaps %.2f us "
               "per launch, %lld samples %.2f us: %lld coarse launches charged %.1f ms more (doubt %.1f ms)", ds->dev,
               avg / 1e3, ds->est_ns / 1e3, gap / 1e3, (long long)ds->samp_n,
               ds->samp_last / 1e3, (long long)ds->coarse_n, extra / 1e6,
               ds->doubt_ns / 1e6);
        PP(PP_DOUBT);
        consume(ds, extra, 0);
        if (vg_cfg.launch_stats) {
            __atomic_add_fetch(&lst.failed, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&lst.doubt_charged_ns, extra, __ATOMIC_RELAXED);
        }
    }
    ds->doubt_ns = 0;
    ds->coarse_n = 0;
    ds->coarse_est = 0;
    ds->samp_ns = 0;
    ds->samp_n = 0;
    ds->est_ns = avg > 0 ? avg : 1;
    ds->verified = 1;
    ds->win_ns = 0;
    ds->win_n = 0;
}

/* Chooses how the launch on q is measured: coarsely while the credit is ample, no neighbour asked for
 * precision, no capture has begun, a precise window has verified the estimate since the last coarse
 * phase (which lasts at most 100 ms) and its switches are not charged (switch_charged: the switch gaps come from
 * start marks, which coarse mode does not record; coarse phases left a contended graphs pair charged 0.93 x the
 * GPU time it held on the fake); precisely otherwise. */
static void set_mode(struct dstate *ds, struct squeue *q, int coarse, int64_t now);

/* Whether a tenant low on credit asks its neighbours for precision (demand_precision): only while its charged
 * fraction (frac_bp, the container's ~100 ms average, publish_fraction) is within ASK_MARGIN_BP of the share its
 * bucket earns (the limit, or what lending puts in force under default), i.e. while its credit is not rising. A
 * request costs every neighbour its coarse mode (on the H100, 183 launches a step at ~1.5 us more each), and it
 * buys the requester only a lower charge (its neighbours' published busy time divides its spans): a tenant charged
 * below its share gains credit whatever its neighbours do, and its low credit is a ramp (a capped spell starts from
 * the credit it has, about none at a pair's start, and goes coarse only past 80 ms of it). Fake libcuda, a fitting
 * 50+50 / 30+70 pair (main f6d9828): every request that made a neighbour precise came from such a ramp, the first
 * ~0.5 s of the run (docs/results/2026-12-06-fake-pairask.md). Never fail-open: a neighbour that stays coarse
 * publishes no busy interval, so the tenant is charged its spans whole (more, never less); once that, or anything,
 * brings its charged fraction up to its share it asks again. A tenant held for credit always asks (throttle: held
 * = 1). Such a request, made while charged near its share, holds its 200 ms (asked_at, mark_held): the board slot
 * holds one mark, and a GPU-bound 30 % tenant held at its limit, its average dipping just under 28 % between holds,
 * withdrew its request a millisecond after some holds (its launch-bound neighbour went coarse ~30 % of the time, it
 * got 20 % of the fake GPU). A fraction measured for less than FRAC_TAU_NS (a spell's start: it starts from the
 * limit) says nothing: the tenant asks only while held, and that request does not hold (a spell's first holds at
 * ~no credit, each followed by a mark that does not ask; held 200 ms each, they kept the fake 50+50 pair's both
 * tenants precise for their first ~0.5 s as before). */
static int credit_falls(struct dstate *ds, int sm, int held, int64_t now)
{
    if (ds->user_idx < 0)
        return 1;  /* no slot of its own (a full board): its fraction is not kept, it asks as before */
    if (!ds->frac_at || now - ds->frac_from < FRAC_TAU_NS)
        return held || !ds->frac_at;  /* not measured yet: it asks while held (or with no fraction at all), a spell's
                                       * first holds at ~no credit included, but such a request does not hold */
    int share = ds->eff > sm && vg_cfg.core_policy == VG_POLICY_DEFAULT ? (ds->eff < 99 ? ds->eff : 99) : sm;
    if (ds->frac_bp + ASK_MARGIN_BP < (int64_t)share * 100)
        return 0;
    ds->asked_at = now;  /* charged near its share: its request holds its 200 ms (mark_held) */
    return 1;
}

/* The launch stats line's reasons for a precise launch (lst.why_*; HAMI_LAUNCH_STATS=1 only): every condition of
 * choose_mode that held, so a GPU run says why a pair's launches were precise (issue 18, task pairask: on the fake
 * they were found with a throwaway instrumented build). */
static COLD void count_why(struct dstate *ds, int ample, int low, int64_t now)
{
    __atomic_add_fetch(&lst.why_n, 1, __ATOMIC_RELAXED);
    if (!ample)
        __atomic_add_fetch(&lst.why_credit, 1, __ATOMIC_RELAXED);
    if (low)
        __atomic_add_fetch(&lst.why_low, 1, __ATOMIC_RELAXED);
    if (precision_demanded(ds, now))
        __atomic_add_fetch(&lst.why_asked, 1, __ATOMIC_RELAXED);
    if (ds->shared && switch_charged(ds))
        __atomic_add_fetch(&lst.why_switch, 1, __ATOMIC_RELAXED);
    if (!(ds->coarse || ds->verified) || (ds->coarse && now - ds->mode_at > COARSE_PHASE_NS))
        __atomic_add_fetch(&lst.why_unverified, 1, __ATOMIC_RELAXED);
}

/* Whether the precise window has measured enough to verify: >= 128 launches over >= 2 ms; alone and charged far below
 * the limit (sample_rate's state, the one that draws fewer samples) HAMI_SM_VERIFY_FAR (default 2) times fewer of
 * each. Why (issue 18, lightpath): on the H100 (record 15) the inference loop alone at 70 %, busy ~20 %, made 0.104
 * event records and elapsed-time calls a launch, half of them the windows' end marks (24,632 precise launches for
 * 189 verifications, 4.9 % of its launches, each also on the slower precise path). What a shorter window trades:
 * its estimate and host gaps come from fewer launches, so a phase's charge is a noisier estimate; the phase is still
 * bounded by the doubt (never more than the credit less the margin) and judged by its random samples
 * (sampled_excess), and a tenant whose charge rises towards its limit leaves the state within ~100 ms (its ~100 ms
 * charged fraction, checked every ms) and gets the full window from its next verification. Precise mode's own
 * decisions (credit, neighbours, coarse_behind) do not read the window's length. */
static int verify_due(struct dstate *ds, int64_t now)
{
    if (ds->coarse)
        return 0;
    int k = ds->far ? vg_cfg.sm_verify_far : 1;
    return ds->win_n * k >= VERIFY_LAUNCHES && (now - ds->win_at) * k >= VERIFY_MIN_NS;
}

static void choose_mode(struct dstate *ds, struct squeue *q, int sm, int64_t now)
{
    int64_t tokens = __atomic_load_n(&vg_region->dev[ds->dev].tokens_ns, __ATOMIC_ACQUIRE);
    /* 20 ms of hysteresis: a tenant hovering at the threshold does not flip on every launch. The queued work's
     * estimate counts too, as in credit_ample (coarsejump: a precise window of a tenant that had jumped to 2 ms
     * kernels, 127 of them queued, went coarse again on its reserve and queued more behind them) */
    int ample = sm < 100 && tokens + ds->reserve_ns - ds->doubt_ns - inflight_ns(ds) >
                                HAMI_COARSE_CREDIT_NS + (ds->coarse ? 0 : 20000000LL);
    int low = sm < 100 && tokens + ds->reserve_ns <= HAMI_COARSE_CREDIT_NS;
    if (low) {  /* low credit, not only doubt: it asks while its next decisions depend on n(t) */
        int ask = credit_falls(ds, sm, 0, now);
        demand_precision(ds, now, ask);
        if (vg_cfg.launch_stats)
            __atomic_add_fetch(ask ? &lst.marks_asked : &lst.marks_quiet, 1, __ATOMIC_RELAXED);
    }
    if (verify_due(ds, now))
        verify(ds, now);
    int coarse = ample && !vg_cfg.sm_precise && !__atomic_load_n(&capture_seen, __ATOMIC_ACQUIRE) &&
                 (ds->coarse || ds->verified) &&
#ifndef HAMI_BISECT_NO_RECORDS  /* bench (launch_int.h): a coarse phase never ends for a verification window */
                 !(ds->coarse && now - ds->mode_at > COARSE_PHASE_NS) &&
#endif
                 !precision_demanded(ds, now) && !(ds->shared && switch_charged(ds));
    if (!coarse && vg_cfg.launch_stats)
        count_why(ds, ample, low, now);
    if (coarse == ds->coarse)
        return;
    vg_log(VG_DEBUG, "device %d: measuring %s (credit %.1f ms, doubt %.1f ms, estimate %.1f us per launch)", ds->dev,
           coarse ? "coarsely" : "precisely", tokens / 1e6, ds->doubt_ns / 1e6, ds->est_ns / 1e3);
    set_mode(ds, q, coarse, now);
}

/* Switches the device's measurement mode (choose_mode, coarse_bound). */
static void set_mode(struct dstate *ds, struct squeue *q, int coarse, int64_t now)
{
    count_coarse(ds, now);  /* switch charging's demand estimate leaves the coarse phase out */
    if (!coarse) {
        /* back to precise: the coarse run on this stream is closed by a coarse mark, and a busy period left
         * unpublished is re-opened at the GPU start of the next launch (a start mark) */
        if (q->unmarked)  /* -1: a capture may have begun since (that ends coarse mode): ask the driver */
            push_mark(ds, q, q->unmarked_enq, MK_END, -1);
        if (ds->busy_since && !ds->since_gpu) {
            ds->busy_since = now;
            ds->reopen = 1;
        }
        window_restart(ds, now);
    }
    ds->verified = 0;
    ds->coarse = coarse;
    ds->mode_at = now;
}

/* The GPU work a coarse tenant has queued and not yet seen completed is bounded in launches, not only in age (issue
 * 18, coarsejump). Coarse marks are few (one per >= 1 ms run, the samples), each counted as one mark's average charge
 * in the throttle's in-flight estimate, and the in-flight bound is an age in host time: a tenant far below its limit
 * that jumps to back-to-back 2 ms kernels queued ~1,600 of them (3.3 s of GPU work) in its first 30 ms of host time
 * and held the whole fake GPU for 2.3-3.3 s before its first hold; with one sample in 128 for 7-13 s, all of it
 * before the throttle saw a charge (docs/results/2026-12-06-fake-coarsejump.md). Precise mode is bounded by its ring:
 * one mark a launch, at most RING - 1 launches queued a stream. A coarse stream is held to the same: its run closes
 * with a mark after 64 launches at most (COARSE_RUN_LAUNCHES), and once it has more than COARSE_AHEAD_LAUNCHES not
 * seen completed, or a mark still not completed COARSE_OVERDUE_NS after its record (a tenant far below its limit
 * leaves the GPU idle most of the time: its marks complete within microseconds of their record, or one neighbour's
 * time slice, ~2 ms), the GPU is behind it: the tenant goes precise (coming back takes a verified window and ample
 * credit, choose_mode) and waits, collecting, until every launch of the stream was seen completed: their charges are
 * in before it launches again, so the throttle holds it at once for what it queued (waiting only back to the bound
 * let the precise ring queue 127 more launches on an estimate that still knew only the tiny kernels, and the jump at
 * one sample in 128 took 0.61 of its worst second). One pipeline bubble, only for a tenant whose GPU was behind it
 * (a GPU-bound one: not coarse again before a verified window and ample credit). Checked only as a coarse
 * run's mark is recorded, and the ring's scan only then: a launch-bound loop's marks complete at once, its ring
 * holds one or two. A collection first: coarse marks are collected every 1 ms, a completed one may wait for it. */
static int queued_launches(const struct squeue *q)
{
    int ahead = q->unmarked;
    for (int k = 0; k < q->count; k++) {
        const struct mark *m = &q->ring[(q->head + k) % RING];
        ahead += m->kind == MK_END ? m->n : 0;
    }
    return ahead;
}

static int coarse_behind(const struct squeue *q, int64_t now)
{
    return q->count && (now - q->ring[q->head].rec > COARSE_OVERDUE_NS || queued_launches(q) > COARSE_AHEAD_LAUNCHES);
}

static COLD void coarse_bound(struct dstate *ds, struct squeue *q, int64_t now)
{
    collect(ds, 1);
    ds->harvest_at = now;
    if (!coarse_behind(q, now))
        return;
    vg_log(VG_DEBUG, "device %d: the GPU is behind the coarse launches (%d queued, oldest mark %.1f ms old): measuring "
           "precisely", ds->dev, queued_launches(q), (now - q->ring[q->head].rec) / 1e6);
    set_mode(ds, q, 0, now);
    /* the host waits for its own queued work, as at a full ring (push_mark): counted alike */
    int queued = queued_launches(q);
    int64_t from = vg_now_ns();
    while (!ds->stale && queued_launches(q) > 0) {
        sleep_ns(50000);
        harvest(ds);
    }
    int64_t waited = vg_now_ns() - from;
    if (waited > 0) {
        ds->sd_full += waited;
        lst_add(&lst.full_ns, waited);
        /* the throttle's estimate of a precise mark (one launch) still knew only the tiny kernels: the precise ring
         * then queued 127 of the new ones on it (0.60 of the jump's first second at one sample in 128). The drain's
         * wait per launch drained bounds what they cost from below where the GPU ran them alone (some ran before
         * the trip) and from above beside a neighbour: never an estimate below what was seen */
        if (queued > 0 && waited / queued > ds->ewma_ns)
            ds->ewma_ns = waited / queued;
    }
}

/* The bucket's depth. Outside the square wave it is the spendable burst (HAMI_BURST_NS, 50 ms) over the work
 * already queued (throttle() lets a launch go while the credit exceeds the queued work's estimated charge: with a
 * fixed depth of 50 ms a tenant that queues more ahead, a training step's GEMMs, was held with a full bucket and
 * its queue drained every step): what a tenant that was idle or under its limit can run beyond it. A stopped
 * tenant earns up to its resume credit (and the queued work, and the in-flight bound, so the resume test can pass)
 * and its on-phase spends it: the wave's credit is spent within its period, so over whole periods it holds the
 * limit. Before (issue 18): 160 ms and twice the resume credit, all spendable: alone at 70 % with the 800 ms period
 * a tenant that had been idle took 336 ms beyond its limit (the H200's inference loop, demand ~80 %: charged
 * 75.7-77.7 % of a 4 s window). */
static int64_t bucket_cap(const struct dstate *ds, int64_t resume)
{
    int64_t queued = inflight_ns(ds), burst = HAMI_BURST_NS + (queued > HAMI_INFLIGHT_NS ? queued : HAMI_INFLIGHT_NS);
    /* stopped: the resume test's credit and a margin; on: a margin more, so the on-phase reaches the cap (and
     * ends) only once the tenant earned 30 ms more than it spent */
    int64_t wave = resume + queued + (ds->wave ? 2 : 1) * HAMI_INFLIGHT_NS;
    return (ds->stopped || ds->wave) && wave > burst ? wave : burst;
}

/* Credit the cap took away goes to the reserve (with the idle depth, at most the old 160 ms), which only the decisions
 * count: a tenant under its limit keeps measuring coarsely and skipping the throttle (the fast path) as it did
 * with a 160 ms bucket, but it cannot spend more than the burst beyond its limit. The on-phase of the square wave
 * ends once its credit is down to the burst, or when the bucket is full (the tenant no longer spends it). */
static void bank_reserve(struct dstate *ds, int64_t over, int64_t tokens, int64_t resume)
{
    if (ds->wave && (tokens - inflight_ns(ds) <= HAMI_BURST_NS || tokens >= bucket_cap(ds, resume)))
        ds->wave = 0;
    if (over <= 0 || ds->stopped)
        return;
    int64_t max = HAMI_COARSE_CAP_NS - HAMI_BURST_NS - HAMI_INFLIGHT_NS;  /* with a full burst: 160 ms, as before */
    ds->reserve_ns = ds->reserve_ns + over > max ? max : ds->reserve_ns + over;
}

/* The throttle's square-wave period. Long on-phases exist for a GPU that is otherwise idle: in short bursts a
 * power-capped GPU runs above the clock it sustains, handing out more throughput than the share. While
 * another container shares the GPU it stays loaded anyway, and long off-phases of both tenants at once only
 * leave it idle: then the period is at most 100 ms. */
static int64_t period_ns(const struct dstate *ds)
{
    return ds->shared && vg_cfg.sm_period_ns > 100000000LL ? 100000000LL : vg_cfg.sm_period_ns;
}

/* The square wave's resume credit, at most HAMI_SM_RESUME_CREDIT_MS where set (unset: the whole wave credit). A
 * stopped tenant earns it before it resumes and spends it beyond its limit in the on-phase, so a window from a resume
 * to the next stop holds that much more than the limit: with the whole wave credit (168 ms at 70 % with the default
 * 800 ms period) a tenant just above its limit, alone, took +5 points of a 3 s window on the fake; capped at 80 ms
 * (the spendable burst and the in-flight bound) +2.4 (issue 18). The cap also shortens every on-phase alone (267
 * instead of 560 ms at 70 %), and power-capped GPUs run short bursts faster: the default waits for a GPU A/B
 * (bench/issue18_gpu.sh stage 6). On a shared GPU the period is 100 ms and the credit is at most 25 ms. */
static int64_t resume_credit(const struct dstate *ds, int share)
{
    int64_t wave = hami_vgpu_resume_credit_ns(period_ns(ds), share), cap = vg_cfg.sm_resume_cap_ns;
    return cap > 0 && wave > cap ? cap : wave;
}

/* Closes every open deep run of the device (deep_defer) while its backlog still runs: the host is about to wait (a
 * credit or turns hold), or a capture begins. Left to the watcher's close, 100 us after the last launch at the
 * earliest (later while the launcher collects itself), a run outlived the backlog of a pair's tenant held at its
 * window's end and failed its proof (fake: 7-13 % of a turns pair's runs). */
static void deep_close_all(struct dstate *ds)
{
    for (int i = 0; i < ds->nq && !ds->stale; i++)
        if (ds->q[i].deep_run)
            push_mark(ds, &ds->q[i], ds->q[i].unmarked_enq, MK_END, 0);
}

static void throttle(struct dstate *ds, int sm)
{
    struct hami_device_info *di = &vg_region->dev[ds->dev];
    int waited = 0;
    for (;;) {
        int64_t now = vg_now_ns();
        /* waiting for credit is still using the GPU: stay on the list; taking turns with nothing in flight, as an
         * owner that may be filled (turns.c owner_wants: before, a starved owner held its neighbours, the GPU idle) */
        ds->act_back = waited && ds->stopped && ds->turn_n >= 2 && !ds->busy_since;
#ifdef HAMI_BISECT_NO_USERS
        if (waited)  /* bench (launch_int.h): the board only while held */
#endif
        note_users(ds, now);
        ds->act_back = 0;
        if (vg_cfg.core_policy == VG_POLICY_DEFAULT && ds->bgpu && !ds->shared) {
            turns_hold_ends(ds, now);
            return;  /* the neighbour left while this launch waited: under default it goes now */
        }
#ifdef HAMI_BISECT_NO_HARVEST
        if ((waited || !ds->coarse) && harvest_due(ds, now)) {  /* bench (launch_int.h): not when coarse, unless held */
#else
        if (harvest_due(ds, now)) {
#endif
            harvest(ds);
            ds->harvest_at = now;
        }
        if (ds->stale) {
            turns_hold_ends(ds, now);
            return;  /* its marks never complete (the in-flight bound would hold it forever): stale_launch waits */
        }
        /* the share in force: the limit, plus what idle neighbours lend under default (note_users); at most
         * 99 so the bucket keeps refilling and charging (100 would freeze it and leave a debt behind) */
        int share = ds->eff > sm && vg_cfg.core_policy == VG_POLICY_DEFAULT ? (ds->eff < 99 ? ds->eff : 99) : sm;
        int64_t resume = resume_credit(ds, share);
        int64_t over = 0;
        hami_vgpu_bucket_refill_over(&di->tokens_ns, &di->refill_ns, now, share, bucket_cap(ds, resume), &over);
        int64_t tokens = __atomic_load_n(&di->tokens_ns, __ATOMIC_ACQUIRE);
        if (over > 0) {  /* the launch stats' accounting (issue 18, trainfer): credit earned and never spendable */
            lst_add(&lst.cap_ns, over);
            if (ds->stopped)
                lst_add(&lst.cap_held_ns, over);
        }
        bank_reserve(ds, over, tokens, resume);
        /* taking turns (HAMI_SM_TURNS, turns.c), the windows are its on- and off-phases: no resume credit to wait
         * for (its own square wave would keep it off in its window and on in the others'). Nor while it shares the GPU
         * under default (issue 18, the conformance pair: a training loop beside a launch-bound inference loop at
         * 50 + 50): the wave's long on-phases are for a GPU it has alone (a power-capped GPU's short bursts), while
         * its off-phase on a shared GPU drained its whole queue and left the GPU to a neighbour that does not fill it
         * (fake: held with nothing queued 14-20 % of its wall, the GPU idle 11-17 %; now 6-10 % and 7-10 %). It
         * resumes as soon as its credit covers its queued work: the same credit, spent as it comes, so its charge
         * stays at its limit plus what is lent; the cost is more time-slicing. force keeps the wave (its tenants
         * take only their limits). docs/results/2026-12-06-fake-trainfer.md */
        int waves = !ds->turn_n && !(ds->shared && vg_cfg.core_policy == VG_POLICY_DEFAULT);
        int64_t need = ds->stopped && waves ? resume : 0;
        int64_t wait = hami_vgpu_throttle_wait_ns(tokens - need, inflight_ns(ds), share);
        if (ds->stopped != (wait > 0))
            vg_log(VG_DEBUG, "device %d: %s (credit %.1f ms, reserve %.1f ms, queued %.1f ms)", ds->dev,
                   wait ? "out of credit, held" : "resuming", tokens / 1e6, ds->reserve_ns / 1e6, inflight_ns(ds) / 1e6);
        if (ds->stopped && !wait)
            ds->wave = 1;  /* the on-phase: its resume credit is spent, not capped away */
        ds->stopped = wait > 0;
        if (wait)
            ds->reserve_ns = 0;  /* held: it is over its limit, the reserve no longer says it is under */
        if (wait == 0 && oldest_age(ds, now) > HAMI_INFLIGHT_NS)
            wait = 100000;  /* enough queued: let it drain a little */
        int turn = 0;
        if (wait == 0 && vg_cfg.sm_turns) {
            wait = turns_hold(ds, now);  /* its credit lets it go; another's window may not (turns.c) */
            turn = wait > 0;
        }
        if (wait == 0)
            return;
        if (!waited && ds->deep_extra)
            deep_close_all(ds);
        if (!turn) {
            demand_precision(ds, now, credit_falls(ds, sm, 1, now) | 1);  /* held for credit: its neighbours' n(t)
                                                                                decides when it goes */
            turns_hold_ends(ds, now);   /* a hold by turns ends where a credit wait begins (turns.c) */
        }
        if (wait > 200000)
            wait = 200000;  /* keep collecting completions while waiting */
        if (vg_cfg.launch_stats && !turn) {  /* credit waits only (turns.c counts its own) */
            if (!waited)
                __atomic_add_fetch(&lst.held, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&lst.held_ns, wait, __ATOMIC_RELAXED);
            if (queues_idle(ds))
                __atomic_add_fetch(&lst.held_idle_ns, wait, __ATOMIC_RELAXED);
        }
        waited |= !turn;
        int64_t slept = vg_cfg.launch_stats ? vg_now_ns() : 0;
        pthread_mutex_unlock(&ds->mu);
        sleep_ns(wait);
        pthread_mutex_lock(&ds->mu);
        if (vg_cfg.launch_stats)
            st_slept += vg_now_ns() - slept;  /* the stats' held time, apart from the path's cost (lst.held_*_ns) */
    }
}

/* Holds the launch while a higher-priority container is active. *now: the launch's clock read, read again
 * after each wait. */
static void priority_gate(struct dstate *ds, int64_t *now_io)
{
    struct hami_board_gpu *g = ds->bgpu;
    int p = vg_cfg.priority;
    for (int waited = 0;; waited = 1) {
        int64_t now = waited ? vg_now_ns() : *now_io;
        *now_io = now;
        int blocker = -1;
        for (int lvl = 0; lvl < p && blocker < 0; lvl++) {
            int64_t t = board_time(__atomic_load_n(&g->prio_active_ns[lvl], __ATOMIC_ACQUIRE), now,
                                   "a priority mark");
            if (t && now - t < vg_cfg.priority_idle_ns)
                blocker = lvl;
        }
        if (blocker < 0) {
            if (now - ds->last_stamp > 1000000) {
                __atomic_store_n(&g->prio_active_ns[p], now, __ATOMIC_RELEASE);
                ds->last_stamp = now;
            }
            if (ds->prio_logged) {
                vg_log(VG_INFO, "device %d: resuming, higher-priority work went idle", ds->dev);
                ds->prio_logged = 0;
            }
            return;
        }
        if (!ds->prio_logged) {
            vg_log(VG_INFO, "device %d: holding launches while a priority-%d container is active", ds->dev, blocker);
            ds->prio_logged = 1;
        }
        pthread_mutex_unlock(&ds->mu);
        sleep_ns(1000000);
        pthread_mutex_lock(&ds->mu);
    }
}

#ifdef HAMI_BISECT
#ifdef HAMI_BISECT_NO_RECORDS
#define BN_1 "NO_RECORDS "
#else
#define BN_1 ""
#endif
#ifdef HAMI_BISECT_NO_HARVEST
#define BN_2 "NO_HARVEST "
#else
#define BN_2 ""
#endif
#ifdef HAMI_BISECT_NO_USERS
#define BN_3 "NO_USERS "
#else
#define BN_3 ""
#endif
#ifdef HAMI_BISECT_NO_THROTTLE
#define BN_4 "NO_THROTTLE "
#else
#define BN_4 ""
#endif
#ifdef HAMI_BISECT_NO_TIMERS
#define BN_5 "NO_TIMERS "
#else
#define BN_5 ""
#endif
#ifdef HAMI_BISECT_TOUCH
#define BN_6 "TOUCH "
#else
#define BN_6 ""
#endif
#define BISECT_NAMES BN_1 BN_2 BN_3 BN_4 BN_5 BN_6
/* the bisection build's flags (launch_int.h), findable in the file: the shipped library has no such string */
__attribute__((used)) static const char bisect_marker[] = "HAMI_BISECT=" BISECT_NAMES;
#endif
#ifdef HAMI_BENCH_PAIRPROBE
/* the pair probe's build (launch_int.h), findable in the file: the shipped library has no such string */
__attribute__((used)) static const char pairprobe_marker[] = "HAMI_BENCH_PAIRPROBE=1";
#endif
#ifdef HAMI_BISECT_TOUCH
#ifndef HAMI_BISECT_TOUCH_LINES
#define HAMI_BISECT_TOUCH_LINES 32
#endif
#ifndef HAMI_BISECT_TOUCH_CODE
#define HAMI_BISECT_TOUCH_CODE 32
#endif
#define BISECT_STR_(x) #x
#define BISECT_STR(x) BISECT_STR_(x)
/* Bench (launch_int.h): a data footprint of HAMI_BISECT_TOUCH_LINES lines on 8 pages, one byte of each line read and
 * written per launch, at offsets staggered so the lines fall in different cache sets (as the library's state does),
 * and a code footprint of HAMI_BISECT_TOUCH_CODE instruction cache lines, each one jump to the next (x86-64: 32 lines
 * and 32 branches, about what a fast-path launch runs through in launch_begin, launch_end and the entry) */
static char touch_buf[8][4096] __attribute__((aligned(4096)));
static __attribute__((noinline)) void bisect_touch(void)
{
    volatile char *b = &touch_buf[0][0];
    for (int i = 0; i < HAMI_BISECT_TOUCH_LINES; i++)
        b[(i % 8) * 4096 + ((i / 8) * 17 + (i % 8) * 5) % 64 * 64]++;
#if defined(__x86_64__) && HAMI_BISECT_TOUCH_CODE > 0
    __asm__ volatile(".rept " BISECT_STR(HAMI_BISECT_TOUCH_CODE) "\n\tjmp 1f\n\t.p2align 6\n1:\n\t.endr" ::: "memory");
#endif
}
#endif

static COLD void init_state(struct dstate *ds, int dev)
{
    ds->dev = dev;
    ds->off_hi = INT64_MAX;
    ds->rng = sample_seed(dev);
    ds->seen_raw = INT64_MIN;
    ds->user_idx = -1;
    ds->rec_user = ds->rec_lane = -1;
    ds->sib_idx = -1;
    if (vg_real.cuCtxGetCurrent)
        vg_real.cuCtxGetCurrent(&ds->ctx);
    CUuuid id;
    memset(&id, 0, sizeof(id));
    if (vg_real.cuDeviceGetUuid && vg_real.cuDeviceGetUuid(&id, dev) == CUDA_SUCCESS)
        ds->bgpu = vg_board_gpu((const uint8_t *)id.bytes);
    vg_log(VG_INFO, "device %d: SM limit %d%%, priority %d%s", dev, vg_sm_limit(dev),
           vg_cfg.priority, ds->bgpu ? "" : " (no node board)");
#ifdef HAMI_BISECT
    vg_log(VG_WARN, "device %d: a bench-only bisection build (%s): not the shipped library", dev, bisect_marker + 12);
#endif
#ifdef HAMI_BENCH_PAIRPROBE
    vg_log(VG_WARN, "device %d: a bench-only pair probe build (%s): not the shipped library", dev, pairprobe_marker);
#endif
    __atomic_store_n(&ds->ready, 1, __ATOMIC_RELEASE);
}

#ifdef HAMI_BISECT_NO_THROTTLE
/* Bench (launch_int.h): the launches skip the throttle, so the watcher refills the bucket as throttle() does (at the
 * limit, the reserve banked; nothing ever waits). Without the device's lock, which a tight launch loop on the same core
 * leaves free too rarely: the refill is atomic, and under this flag only the watcher writes the reserve and the wave
 * (throttle() never runs); the launcher's reads of them may be one refill late. */
void bisect_refill(struct dstate *ds, int64_t now)
{
    if (!__atomic_load_n(&ds->capped, __ATOMIC_RELAXED))
        return;
    struct hami_device_info *di = &vg_region->dev[ds->dev];
    int share = vg_sm_limit(ds->dev);
    int64_t resume = resume_credit(ds, share), over = 0;
    hami_vgpu_bucket_refill_over(&di->tokens_ns, &di->refill_ns, now, share, bucket_cap(ds, resume), &over);
    bank_reserve(ds, over, __atomic_load_n(&di->tokens_ns, __ATOMIC_ACQUIRE), resume);
}
#endif

/* The throttle's fast path: a launch needs none of its work (refill, harvest, waiting) when no harvest is due,
 * the bucket was refilled within the last millisecond, the tenant is not stopped, no queued work is older than
 * the in-flight bound, and its credit minus its doubt and its estimated queued work exceeds the coarse margin
 * (60 ms): far more than the next launch could need. Then throttle() would let the launch go at once, and its
 * refill is only deferred (at most 1 ms, by the next slow-path launch or wait): the bucket earns exactly the
 * same credit, added once instead of in pieces, never more than share x elapsed (capped at the depth). Two
 * atomic loads of the region, no read-modify-write, no clock read. */
static int credit_ample(struct dstate *ds, int64_t now)
{
#ifdef HAMI_BISECT_NO_HARVEST
    if (ds->stopped || (!ds->coarse && harvest_due(ds, now)) || ds->turn_n)  /* bench (launch_int.h): coarse, no */
#else
    if (ds->stopped || harvest_due(ds, now) || ds->turn_n)
#endif
        return 0;  /* taking turns (HAMI_SM_TURNS): every launch asks throttle() whose window it is */
    struct hami_device_info *di = &vg_region->dev[ds->dev];
    if (now - __atomic_load_n(&di->refill_ns, __ATOMIC_ACQUIRE) > LAZY_REFILL_NS)
        return 0;
    int64_t tokens = __atomic_load_n(&di->tokens_ns, __ATOMIC_ACQUIRE), queued = inflight_ns(ds);
    /* the spendable credit must cover the queued work (throttle()'s own test); the reserve counts only for the
     * margin, so a tenant over its limit reaches throttle() once it has spent the burst */
    return tokens - queued > 0 && tokens + ds->reserve_ns - ds->doubt_ns - queued > HAMI_COARSE_CREDIT_NS &&
           oldest_age(ds, now) <= HAMI_INFLIGHT_NS;
}

/* Adds the launches counted since the last flush to the region's count and publishes the last launch time
 * (read by the metrics exporter at second granularity): one atomic add per millisecond instead of per launch. */
void flush_launches(struct dstate *ds, int64_t now)
{
    struct hami_device_info *di = &vg_region->dev[ds->dev];
    if (ds->unflushed) {
        __atomic_add_fetch(&di->launches, ds->unflushed, __ATOMIC_RELAXED);
        __atomic_store_n(&di->last_launch_ns, ds->now_at, __ATOMIC_RELAXED);
        ds->unflushed = 0;
    }
    ds->flushed_at = now;
}

/* A launch on a limited device that the events cannot measure: made in a context other than ds->ctx (the one current
 * when the device was set up: a program's own cuCtxCreate context, or the primary after the program's own), whose
 * streams the library's events cannot be recorded on, or with no event calls in the driver. Issue 18, never fail
 * open: such a launch once went straight to the driver, neither held nor charged (a second context took ~100 % of the
 * fake GPU at a 30 % limit). It now waits for the device's one credit like any launch (throttle), and launch_end makes
 * it synchronous and charges its wall time, from the clock read after that wait to the return of a synchronize of
 * its stream: the kernel cannot start before the one nor end after the other, so the charge is never below the GPU
 * time it used (it also holds host time and any neighbour's slices: an over-charge, the safe side; no processor-
 * sharing discount). Chosen over a reference event per context: no per-context event pools, no hook on
 * cuCtxCreate/cuCtxDestroy, nothing kept that a destroyed context could leave dangling (the measured context's own
 * events can be: drop_measured). The price falls on such
 * programs only (one synchronize per launch); the primary-context program pays nothing more (launch_end reads this
 * only for a launch without a measured stream). A launch into a stream being captured is recorded, not run: no
 * synchronize (it would invalidate the capture), no charge (the graph's launch is charged). Thread-local: a launch's
 * begin and end run on its thread. 0 = none. */
static __thread int64_t unmeasured_at;
static __thread CUstream unmeasured_s;
static __thread int unmeasured_all;  /* wait for the whole context, not the stream (stale_launch) */

/* Makes the launch on s unmeasured from its clock read (ds->now_at) on, unless s is being captured. Also the measured
 * path's fallback when the device's stream queues are all in use by other streams (find_queue finds none): such a
 * launch was once held but neither marked nor charged, so a program with more busy streams than MAXQ ran its extra
 * streams' work uncharged (fake libcuda, this 2-core VM: 0.59 x the GPU time it got; docs/results/
 * 2026-12-05-fake-fail-closed.md). Now it pays what a second context's launch pays; the common path is unchanged. */
static void unmeasured_mark(struct dstate *ds, CUstream s)
{
    int capture = 0;  /* asked as capturing() asks, once a capture may be in progress */
    int recorded = __atomic_load_n(&capture_seen, __ATOMIC_ACQUIRE) && vg_real.cuStreamIsCapturing &&
                   vg_real.cuStreamIsCapturing(s, &capture) == CUDA_SUCCESS && capture != CU_STREAM_CAPTURE_STATUS_NONE;
    unmeasured_all = 0;
    if (!recorded) {
        unmeasured_at = ds->now_at;
        unmeasured_s = s;
    }
}

static COLD void unmeasured_begin(struct dstate *ds, int sm, CUstream s)
{
    throttle(ds, sm);
    ds->now_at = vg_now_ns();  /* it may have waited: the charge starts after the wait */
    unmeasured_mark(ds, s);
}

/* Charges an unmeasured launch (see unmeasured_at) its wall time up to the end of a synchronize of its stream, with
 * the device's lock released while it waits (the program's other threads launch meanwhile) and this thread in the
 * relaxed capture mode (another stream may be capturing in global mode). A failed launch is charged nothing; a
 * failed synchronize still charges the time waited. */
static void unmeasured_end(struct dstate *ds, CUresult r)
{
    int64_t t0 = unmeasured_at;
    unmeasured_at = 0;
    if (r != CUDA_SUCCESS)
        return;
    pthread_mutex_unlock(&ds->mu);
    int mode;
    int swapped = relaxed_begin(&mode);
    int all = unmeasured_all && !__atomic_load_n(&capture_seen, __ATOMIC_ACQUIRE) && vg_real.cuCtxSynchronize;
    unmeasured_all = 0;
    if (vg_real.cuStreamSynchronize && !all)
        vg_real.cuStreamSynchronize(unmeasured_s);
    else if (vg_real.cuCtxSynchronize)
        vg_real.cuCtxSynchronize();  /* the current context: the one the launch went to */
    relaxed_end(swapped, &mode);
    int64_t t1 = vg_now_ns();
    pthread_mutex_lock(&ds->mu);
    consume(ds, t1 - t0, 0);
    ds->now_at = t1;
}

/* The earliest start of the launches no charge covers yet: those of the uncollected end marks (from their chained
 * start) and of the unmarked runs, from no earlier than what was charged already; 0 = none. */
static int64_t owed_from(const struct dstate *ds, int64_t now)
{
    int64_t from = 0;
    for (int i = 0; i < ds->nq; i++) {
        const struct squeue *q = &ds->q[i];
        for (int k = 0; k < q->count; k++) {
            const struct mark *m = &q->ring[(q->head + k) % RING];
            if (m->kind == MK_END && m->n) {  /* the queue's oldest launches: chained after its last completion */
                int64_t a = span_start(ds, q, m);
                from = !from || a < from ? a : from;
                break;
            }
        }
        if (q->unmarked)
            from = !from || q->unmarked_enq < from ? q->unmarked_enq : from;
    }
    if (from && from < ds->charged_to)
        from = ds->charged_to;  /* charged already */
    return from < now ? from : 0;
}

/* Charges what no later collection will settle (the measured state is dropped, or the process exits): the gap and
 * deferred spans, and the coarse phase's doubt, which no window will judge: the samples do (verify's sampled rule),
 * the whole of it where there are none (the whole doubt is mostly host gaps: a host-paced loop at 70 % was charged
 * 1.23 x). Closes the published interval. Returns the doubt charged. */
static int64_t settle_owed(struct dstate *ds, int64_t now)
{
    settle_gaps(ds, 0);
    settle_deferred(ds, 0);
    int64_t doubt = ds->doubt_ns;
    double x = doubt > 0 ? sampled_excess(ds) : 0;
    if (doubt > 0 && ds->samp_last)
        doubt = x <= 0 ? 0 : x >= (double)doubt ? doubt : (int64_t)x;
    consume(ds, doubt, 0);
    ds->doubt_ns = 0;
    if (ds->since_gpu)
        publish(ds, 0, ds->last_end > ds->busy_since ? ds->last_end : ds->busy_since);
    ds->since_gpu = 0;
    if (ds->pend_since) {
        count_queued(ds, now);
        ds->pend_since = 0;
    }
    return doubt;
}

/* The measured context went stale (ds->stale: an event call on the library's own events failed with an error other
 * than "not ready"). Its events (the pool, the marks, the reference) belong to the context current when the device
 * was set up; a program that destroys that context (cuCtxDestroy, the primary released to zero or reset, as
 * cudaDeviceReset does) and launches in a new one whose handle has the same value (a driver may reuse it; the
 * primary's keeps it) passed the measured path's test, every record failed and every launch was charged nothing
 * (fake libcuda, this 2-core VM: 300 ms of kernels at a 30 % limit ran in 0.30 s, none of it charged;
 * docs/results/2026-12-05-fake-fail-closed.md). Issue 18, never fail open: the state is dropped and the next
 * launch's context is adopted as the measured one (fresh events). What it leaves uncharged - the launches of its
 * uncollected end marks (from their chained start) and of its unmarked runs, the deferred spans, the unverified
 * doubt of a coarse phase - is charged: the spans and the doubt at once, the launches as wall time from their
 * earliest start to the end of a synchronize (stale_launch, stale_settle), never less than the GPU time they can
 * have used. The events are forgotten, not destroyed: a driver call on a dead context's handle is not safe, and
 * there are at most EVPOOL of them. Events that fail again before any mark was recorded in the adopted context
 * (the driver's events do not work here) end measuring on the device: every launch is then unmeasured (a sync
 * each). Chosen over hooking cuCtxDestroy and the primary's release and reset: a failed call is what every way to
 * lose a context has in common (a sticky error included), and it costs the common path nothing.
 * Returns the earliest start of the work left uncharged, 0 = none. */
static int64_t drop_measured(struct dstate *ds)
{
    int64_t now = vg_now_ns();
    int64_t from = owed_from(ds, now);
    int64_t doubt = settle_owed(ds, now);
    vg_log(VG_INFO, "device %d: the library's timing events failed (context destroyed or reset?): launches since "
           "%.1f ms ago charged their wall time, %.1f ms of coarse doubt charged; measuring again in the next launch's "
           "context", ds->dev, from ? (now - from) / 1e6 : 0.0, doubt / 1e6);
    if (ds->resets++ && !ds->recorded && !ds->no_events) {
        ds->no_events = 1;
        vg_log(VG_WARN, "device %d: timing events fail in a fresh context too: every launch is now synchronous and "
               "charged its wall time", ds->dev);
    }
    ds->nfree = ds->nq = ds->pending = ds->harvest_left = ds->deep_extra = 0;
    ds->kq_sum = ds->kq_n = 0;  /* the marks the table priced are gone, and its keys may name a dead context's kernels */
    memset(ds->kt_key, 0, sizeof(ds->kt_key));
    ds->oldest_stale = 1;
    ds->ref = NULL;
    ds->off_lo = 0;
    ds->off_lo_call = 0;
    ds->off_hi = INT64_MAX;
    ds->seen_raw = INT64_MIN;
    ds->ref_at = ds->calib_at = 0;
    ds->prompt_seq = 0;
    ds->busy_since = 0;
    ds->since_gpu = ds->reopen = ds->coarse = ds->verified = 0;
    ds->mode_at = ds->win_at = now;
    ds->doubt_ns = ds->coarse_n = ds->coarse_est = ds->win_ns = ds->win_n = ds->samp_ns = ds->samp_n = 0;
    ds->yield_at = ds->resume_at = 0;
    ds->adopt = 1;  /* ctx kept until then: a launch with no context current stays unmeasured */
    ds->recorded = 0;
    ds->stale = 0;
    return from;
}

/* A launch that found (or made) the measured state stale: dropped, and the launch unmeasured (held for credit
 * again, now that no mark is left to wait for), charged from the earliest start of the work left uncharged to the
 * end of a synchronize of the whole context (that work may be on other streams), unless its stream is captured:
 * then that work is charged up to now. */
static COLD void stale_launch(struct dstate *ds, struct squeue **qout, CUstream s, int sm)
{
    int64_t from = drop_measured(ds);
    *qout = NULL;
    if (sm >= 100)
        return;
    unmeasured_begin(ds, sm, s);
    if (!unmeasured_at) {
        consume(ds, from ? ds->now_at - from : 0, 0);
        return;
    }
    unmeasured_all = 1;
    if (from && from < unmeasured_at)
        unmeasured_at = from;
}

/* The watcher found the measured state stale (watcher.c): dropped, and the work left uncharged charged its wall time
 * to the end of a synchronize of the watcher's current context (the measured one; one destroyed answers at once),
 * with the device's lock released meanwhile. */
void stale_settle(struct dstate *ds)
{
    int64_t from = drop_measured(ds);
    if (!from || !ds->capped)
        return;
    pthread_mutex_unlock(&ds->mu);
    if (!__atomic_load_n(&capture_seen, __ATOMIC_ACQUIRE) && vg_real.cuCtxSynchronize)
        vg_real.cuCtxSynchronize();
    int64_t t1 = vg_now_ns();
    pthread_mutex_lock(&ds->mu);
    consume(ds, t1 - from, 0);
}

/* Work left uncollected at exit (issue 18, never fail open). A program's last launches are charged when a later
 * collection (a launch's, the watcher's) finds their end marks completed; a program that exits first left them
 * uncharged, whether they had run (their marks completed, nobody collected them) or were still queued. A tenant
 * that launches a burst and exits, again and again, ran mostly free: on the fake libcuda (this 2-core VM) eight
 * processes of 10 x 2 ms kernels each at a 30 % limit were charged 14 ms of their 160 ms of GPU time
 * (docs/results/2026-12-05-fake-exit-capture.md). At exit each capped device's marks are collected; while some are
 * still pending they are collected again every EXIT_POLL_NS up to EXIT_WAIT_NS in all (never a hang at exit: a
 * synchronize cannot be bounded, and it would invalidate a capture in progress), with the device's lock released
 * between polls. What is left then (marks not yet completed, launches with no mark) is charged its wall time from
 * its earliest start to now - the GPU cannot have run it earlier - and the spans and doubt no collection will settle
 * are charged (settle_owed). Registered with atexit once the region is attached, so it runs before the region slot
 * is released (atexit runs in reverse order). Not in a forked child (exit_pid): the marks it inherited are its
 * parent's, which the parent charges. A process that ends by _exit or a signal runs no handler: not covered. */
#define EXIT_WAIT_NS 100000000LL
#define EXIT_POLL_NS 200000LL
static pid_t exit_pid;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void exit_settle(struct dstate *ds, int64_t deadline)
{
    CUcontext ctx = NULL;
    if (vg_real.cuCtxGetCurrent)
        vg_real.cuCtxGetCurrent(&ctx);
    harvest(ds);
    /* the last run of each stream, not yet closed by a mark (the watcher closes it after MARK_GAP_NS): marked now,
     * where this thread's context is the measured one (its events record there) and the ring has room (no wait) */
    for (int i = 0; i < ds->nq && ctx == ds->ctx && !ds->stale; i++) {
        struct squeue *q = &ds->q[i];
        if (q->unmarked && q->s != CU_STREAM_PER_THREAD && q->count < RING - 1 && !proven_close(ds, q))
            push_mark(ds, q, q->unmarked_enq, MK_END, -1);
    }
    while (ds->pending > 0 && !ds->stale && vg_now_ns() < deadline) {
        pthread_mutex_unlock(&ds->mu);
        sleep_ns(EXIT_POLL_NS);
        pthread_mutex_lock(&ds->mu);
        harvest(ds);
    }
    int64_t now = vg_now_ns();
    int64_t from = owed_from(ds, now);
    consume(ds, from ? now - from : 0, 0);
    if (from)
        ds->charged_to = now;
    int64_t doubt = settle_owed(ds, now);
    if (from || doubt)
        vg_log(VG_INFO, "device %d: at exit, launches since %.1f ms ago still uncollected, charged their wall time; "
               "%.1f ms of coarse doubt charged", ds->dev, from ? (now - from) / 1e6 : 0.0, doubt / 1e6);
    /* charged to now: cleared, so that nobody charges it again; work still queued after the wait stays owed from
     * now on, for a survivor (region.c release_slot keeps the slot) */
    vg_owed_publish(ds->dev, ds->pending > 0 && !ds->stale ? now : 0, owed_until(ds, now), 0);
}

static void exit_charge(void)
{
    if (getpid() != exit_pid)
        return;
    int64_t deadline = vg_now_ns() + EXIT_WAIT_NS;
    for (int d = 0; d < HAMI_MAX_DEVICES; d++) {
        struct dstate *ds = &states[d];
        if (!__atomic_load_n(&ds->ready, __ATOMIC_ACQUIRE))
            continue;
        int locked;  /* another thread may hold the lock (a launch, the watcher): waited for within the bound */
        while (!(locked = pthread_mutex_trylock(&ds->mu) == 0) && vg_now_ns() < deadline)
            sleep_ns(EXIT_POLL_NS);
        if (!locked) {
            vg_log(VG_WARN, "device %d: at exit the device's lock stayed busy: its last launches are not charged",
                   ds->dev);
            continue;
        }
        if (ds->capped)
            exit_settle(ds, deadline);
        else
            vg_owed_publish(ds->dev, 0, 0, 0);  /* uncapped: nothing owed */
        pthread_mutex_unlock(&ds->mu);
    }
}

static void exit_register(void)
{
    exit_pid = getpid();
    atexit(exit_charge);
}

/* Returns the device state with its mutex held, or NULL when the launch goes straight through. */
static struct dstate *launch_begin(CUstream s, struct squeue **qout)
{
    *qout = NULL;
#ifdef HAMI_BISECT_TOUCH
    bisect_touch();
#endif
    if (WRAP_ONLY || !vg_launch_control())
        return NULL;
    CUcontext ctx = NULL;  /* the current context: one driver call, its device kept with it (dl.c vg_ctx_device) */
    int dev = vg_ctx_device(&ctx);
    if (dev < 0 || !vg_region_ready())
        return NULL;
    pthread_once(&states_once, init_states);
    struct dstate *ds = &states[dev];
    ST_START();
    pthread_mutex_lock(&ds->mu);
    ST_STOP(ST_LOCK);
    if (!ds->ready) {
        init_state(ds, dev);
        pthread_once(&exit_once, exit_register);  /* after vg_region_ready's atexit: runs before it (exit_charge) */
    }
    int sm = vg_sm_limit(dev);
    int64_t now = vg_now_ns();  /* the launch's one clock read unless it waits */
    ds->now_at = now;
#ifdef HAMI_BISECT_NO_USERS
    if (users_due(ds, now) && !ds->user_stamp)  /* bench (launch_int.h): the first only */
#else
    if (users_due(ds, now))
#endif
        note_users(ds, now);
    if (sm < 100 && vg_cfg.core_policy == VG_POLICY_DEFAULT && ds->bgpu && !ds->shared) {
        /* alone on the GPU under the default policy: not capped. With no explicit priority nothing else
         * applies either (a higher-priority container would be on the user list, so not alone): straight to
         * the driver, with no capture query, no events and no board reads beyond the user mark. */
        ds->capped = 0;
        ds->launched = 1;  /* an uncapped spell: its end resets the refill clock */
        if (!vg_cfg.priority_env)
            return ds;
        sm = 100;
    }
    int watch = ds->bgpu && vg_cfg.priority_set;
    if (watch) {
        priority_gate(ds, &now);
        ds->now_at = now;
    }
    if (sm < 100 && !ds->capped) {
        /* (re)entering the capped state: no debt carried over from an uncapped spell (nothing was charged
         * then), credit kept. The process's first launch had no uncapped spell: the container's bucket keeps
         * refilling from its last refill (for a new container, the region's creation: the credit earned while the
         * program started, at its share, at most the bucket's depth), so the first launch does not open with an
         * off-phase (issue 18: every capped process was held once at start, ~185 ms on the H100's inference loop
         * at 70 %, 240 ms on the fake). A restart never gains: the credit is what the share earned in wall time. */
        struct hami_device_info *di = &vg_region->dev[dev];
        if (__atomic_load_n(&di->tokens_ns, __ATOMIC_ACQUIRE) < 0)
            __atomic_store_n(&di->tokens_ns, 0, __ATOMIC_RELEASE);
        if (ds->launched)
            __atomic_store_n(&di->refill_ns, now, __ATOMIC_RELEASE);
        ds->stopped = 0;
        ds->wave = 0;
        ds->reserve_ns = 0;
    }
    ds->capped = sm < 100;
    ds->launched = 1;
    if (ds->adopt && ctx) {  /* the measured state was dropped (drop_measured): this context is measured now */
        ds->ctx = ctx;
        ds->adopt = 0;
    }
    if ((sm < 100 || watch) && ctx == ds->ctx && !ds->no_events && vg_real.cuEventCreate && vg_real.cuEventQuery &&
        vg_real.cuEventRecord) {
        if (!__atomic_load_n(&watcher_here, __ATOMIC_ACQUIRE))
            start_watcher();
        int64_t asked = now;  /* before any wait for credit */
#ifdef HAMI_BISECT_NO_THROTTLE
        if (0 && !credit_ample(ds, now)) {  /* bench (launch_int.h): never; the watcher refills (bisect_refill) */
#else
        if (sm < 100 && !credit_ample(ds, now)) {
#endif
            ST_START();
            ds->held_since = asked;
            throttle(ds, sm);
            ST_STOP(ST_THROTTLE);
            now = vg_now_ns();  /* it may have waited */
            ds->now_at = now;
            note_held(ds, now);  /* the demand estimates and turns' stay test (lending.c) */
            ds->held_since = 0;
        } else if (sm < 100 && vg_cfg.launch_stats) {
            ds->st_fast++;
        }
        struct squeue *q = find_queue(ds, s);
        if (!q)
            q = wait_queue(ds, s, &now);
        if (q) {
            if (q->proven_end) {
                /* its run's launches completed by a host wait's return (wait_end): left idle since then for a mark
                 * gap (a pause, an idle spell), the run is closed there with no event, before anything this launch
                 * does could close it later (a mode switch, a sample's boundary); launched on sooner (a loop that
                 * synchronizes every launch), it goes on (wait_note_runs) */
                if (now - q->proven_end >= MARK_GAP_NS)
                    proven_close(ds, q);
                q->proven_end = 0;
            }
            choose_mode(ds, q, sm, now);
            /* switch charging: does this launch find every stream of the process idle (its start mark then waits
             * for the switch into this context)? If so the period of work before it has ended: harvested now (its
             * marks have all completed: work moved earlier, not added), so its end and the host's wait before
             * this launch are known (note_blocked), not merged into one endless period with the next step */
            int sidle = -1, fresh = 0;
            if (vg_cfg.sm_charge_switches != VG_SW_NEVER && ds->shared && !ds->coarse) {
                int harvested = 0, calls = 0;
                sidle = stream_idle(ds, q, &calls, 1);
                fresh = sidle && others_idle(ds, q, now, &harvested, &calls);
                ST_COUNT(idle_checks);
                if (fresh)
                    ST_COUNT(idle_found);
                if (!calls && !harvested)
                    ST_COUNT(idle_free);
                if (fresh && ds->pend_since && !harvested)
                    harvest(ds);
                if (harvested || (fresh && ds->pend_since))
                    ds->harvest_at = now;
            }
            /* the host's usual interval (gap_typ) is learnt only from a launch made while its work was outstanding:
             * the interval before a launch on an idle process holds the host's wait for its GPU (note_blocked's
             * very subject). Learnt from those too, a program that waits for each launch (JAX: one matmul and a
             * block_until_ready a step) took its whole step for host time: the waits behind its neighbour it still
             * counted excluded its kernels, which solo_time adds back, so its demand alone read about its squeezed
             * charge and it lent what it wanted (jaxover: H100 record 18, JAX 30 + 70, the 70 % tenant charged
             * 58.8 %, demand alone 59.3 % against 89 % alone, lent ~4 points; the 30 % tenant charged 34 %).
             * HAMI_SM_GAP_EVERY_LAUNCH=1 learns from every launch as before (the GPU A/B): it lowers only this
             * tenant's own demand estimate, so it can only make it lend more of its own limit */
            int outstanding = ds->pend_since != 0;
            if (!outstanding) {
                note_blocked(ds, asked);
                note_pacing(ds, now);
            }
            if (outstanding || vg_cfg.sm_gap_every_launch)
                note_interval(ds, asked);
            ds->pend_last = now;
            if (!ds->busy_since) {  /* published once its GPU start is known (harvest) */
                ds->busy_since = now;
                ds->since_gpu = 0;
            }
            /* the stream is idle: this launch starts a busy period on it. A start mark records when the GPU
             * really gets to it (after any time slice of another context), so waiting is never charged; the
             * launches queued behind it are chained (each starts when the previous one ended) */
            q->capture = capturing(q);
            int sw = 0;
            int gate = vg_cfg.sm_gate_marks && ds->shared && !q->capture;  /* gatemarks: gate_arm */
            if (ds->coarse && !q->capture && (sw = coarse_sample(ds)) > 0) {
                if (gate)
                    gate_arm(ds, q);  /* before the boundary: the sample's start mark waits for its end mark */
                /* a sample: the run before it is closed, then a start mark: the sample's span starts where
                 * the GPU reached this launch (not at another stream's work queued before it) and holds it
                 * alone */
                q->sample = push_boundary(ds, q, now) ? sw : 0;  /* its weight (coarse_sample) */
                ST_COUNT(samples);
                /* the sample's span starts at its launch's submission, as a precise start mark's does (submitted_at):
                 * on an idle GPU its start mark completes before the launch call has even begun, and the span held
                 * the call's host time and the library's (fake libcuda with H100-like call costs, 3.5 us launch calls,
                 * 5 us kernels 12 us apart: the samples read ~9 us, and their excess over the estimate was charged
                 * at 15-19 of 21 verifications, 184-361 ms in 2.4 s; now 1-4, the window averages a loaded host
                 * disturbed; docs/results/2026-12-06-fake-alonepath.md). Until launch_end the mark is not collected
                 * (opening), and it is the call's own clock read that ends there (call_at) */
                if (q->sample)
                    ds->opening = &q->ring[(q->head + q->count - 1) % RING];
            }
            int opened = 0;
            if (q->deep_run && (q->capture || ds->reopen))
                push_mark(ds, q, q->unmarked_enq, MK_END, 0);  /* its launches end before what follows begins */
            if (!q->capture && ds->reopen) {
                ds->reopen = 0;
                if (gate && !ds->coarse)
                    gate_arm(ds, q);
                opened = push_mark(ds, q, now, MK_START, 0);
            } else if (!q->capture && ((ds->shared && !ds->coarse) || !ds->ref || calibrate_due(ds, now)) &&
#ifdef HAMI_BISECT_NO_RECORDS
                       !ds->coarse &&  /* bench (launch_int.h): no calibrations either */
#endif
                       (sidle >= 0 ? sidle : stream_idle(ds, q, &(int){0}, 1))) {
                /* coarse: a calibration sample only, never published (and never gated) */
                if (gate && !ds->coarse)
                    gate_arm(ds, q);
                opened = push_mark(ds, q, now, MK_START, 0);
                if (opened && sidle >= 0)
                    q->ring[(q->head + q->count - 1) % RING].first = fresh;
            }
            if (!opened && gate && vg_cfg.sm_gate_marks > 1 && !ds->coarse && !q->deep_run &&
                (int64_t)q->queued * ds->ewma_ns <= GATE_CHAIN_AHEAD_NS) {
                /* HAMI_SM_GATE_MARKS=2: a chained precise launch too (queued behind its stream's unfinished work) gets
                 * a gated start mark while little work is queued ahead of it: the GPU catches up with a launch-bound
                 * host within a kernel of 2 us, and the kernel then ends before its end mark is queued just as on an
                 * idle stream (its span, from the previous completion, held the neighbour's turn; fake infer2c
                 * precise: 1.4-3.0 x gated on idle streams only, 1.00 x with this). Behind more queued work (a
                 * training step's GEMMs) the end mark is queued long before the GPU gets there: not gated, no
                 * record more. One record and one wait more per such launch */
                gate_arm(ds, q);
                if (ds->gate_held)
                    opened = push_mark(ds, q, now, MK_START, 0);
            }
            /* precise: the busy period this start mark opens is charged from the kernel's submission, which only
             * launch_end knows (submitted_at); until then the mark is not collected */
            if (opened && !ds->coarse)
                ds->opening = &q->ring[(q->head + q->count - 1) % RING];
            /* a start mark recorded now, while the clock's bounds are wide: asked as the launch call returns */
            if ((opened || q->sample) && prompt_due(ds, now))
                ds->prompt_seq = newest(q)->seq + 1;
#ifdef HAMI_BISECT_NO_HARVEST
            if (!ds->coarse && harvest_due(ds, now)) {  /* bench (launch_int.h): coarse, the watcher collects */
#else
            if (harvest_due(ds, now)) {
#endif
                harvest(ds);
                ds->harvest_at = now;
            }
            ds->launch_at = now;
            q->last_launch = now;
            *qout = q;
        } else if (sm < 100) {
            unmeasured_mark(ds, s);  /* no queue free: fail closed, as below (unmeasured_mark) */
        }
    } else if (sm < 100) {
        unmeasured_begin(ds, sm, s);  /* fail closed: held and charged all the same (see unmeasured_at) */
    }
    if (ds->stale) {
        gate_release(ds);  /* before anything that may wait for the GPU (the unmeasured path's synchronize) */
        ds->opening = NULL;  /* its marks are dropped */
        ds->prompt_seq = 0;
        stale_launch(ds, qout, s, sm);  /* never fail open (drop_measured) */
    }
    if (ds->opening)
        ds->call_at = vg_now_ns();  /* the driver's launch call begins: its kernel cannot start before */
    else
        ds->call_at = ds->now_at;  /* no clock read: the launch's own, before the call (an end mark's sub) */
    return ds;
}

/* The earliest host time the kernel of a launch whose precise start mark found its stream idle may have started on
 * the GPU: the start mark completes when the GPU reaches it, before the launch call has even begun on an idle GPU,
 * so a charge from there included the launch call's own host time and the library's code before it (fake libcuda,
 * 6 us launch calls: a 10 us kernel charged 17.3 us, the 30 % tenant of a launch-bound pair held at 17 % of the GPU;
 * docs/results/2026-12-06-fake-lbpair.md). A kernel is submitted within the launch call, so it starts no earlier
 * than the call began; a driver submits at the end of the call, and the GPU takes microseconds more to start it, so
 * the charge starts at the call's return less HAMI_SM_LAUNCH_LEAD_NS (default 0), never before the call began. A
 * graph launch may submit its first kernels while the call still submits the rest: charged from the call's start.
 * Called right after the launch call returned (launch_end), under the lock held across it. */
static int64_t submitted_at(const struct dstate *ds, int graph)
{
    if (graph)
        return ds->call_at;
    int64_t t = vg_now_ns() - vg_cfg.sm_launch_lead_ns;
    return t > ds->call_at ? t : ds->call_at;
}

/* Whether this precise launch's end mark is deferred: the launch joins a deep run that one later end mark closes
 * (issue 18, deepq). One mark per launch kept a precise stream at most RING - 1 launches ahead of the GPU: the H100's
 * training loop (~750 launches a step, one sync) waited 443-977 ms a 5 s run for a full ring, and each wait let the
 * GPU's queue run dry in its host-heavy phases, inside its own turns' windows. A launch is deferred only while the
 * stream's backlog is deep: at least DEEP_AHEAD_LAUNCHES launches and DEEP_AHEAD_NS of estimated work (the average
 * charge per launch) closed by marks not yet collected, and a collection found one of them not completed within
 * DEEP_SEEN_NS, DEEP_LAG_NS or more after its record (the GPU that far behind the host: the average per launch is
 * blind to the kernel, and tiny kernels queued behind a step's GEMMs, estimated at the GEMMs' average, lost 13 % of
 * a fake pair's bets once the GEMMs were done), so the GPU is still busy with them when the run closes: after
 * at most HAMI_SM_DEEP_RUN launches (default 32) or DEEP_RUN_NS of host time (the next launch's end mark closes it),
 * or MARK_GAP_NS after its last launch (the watcher's close_bursts, as for any launch left without a mark), or before
 * a start mark on the stream. The bet is checked when the run's mark is collected (deep_proven); one that lost is
 * charged its span (never less than its GPU time) and stops deferral on the stream for DEEP_BACKOFF_NS. Not in coarse
 * mode (its own runs), nor once a capture was seen in the process (a run left open when a capture began would be
 * dropped with the captured launches: push_mark), nor for a coarse sample. The in-flight estimate counts every
 * deferred launch (deep_extra), and the 30 ms in-flight bound the age of a run's first (oldest_age). */
static inline int deep_defer(const struct dstate *ds, const struct squeue *q, int64_t now)
{
    return vg_cfg.sm_deep_run > 1 && !ds->coarse && !q->capture && !q->sample && !ds->stale &&
           q->unmarked < vg_cfg.sm_deep_run && now - q->unmarked_enq < DEEP_RUN_NS && now >= q->deep_off &&
           now - q->busy_seen <= DEEP_SEEN_NS && q->busy_lag >= DEEP_LAG_NS &&
           q->queued >= DEEP_AHEAD_LAUNCHES && ds->ewma_ns > 0 && (int64_t)q->queued * ds->ewma_ns >= DEEP_AHEAD_NS &&
           q->s != CU_STREAM_PER_THREAD && !__atomic_load_n(&capture_seen, __ATOMIC_ACQUIRE);
}

static void launch_end(struct dstate *ds, struct squeue *q, CUresult r, int graph, uint64_t key)
{
    if (!ds)
        return;
    if (ds->opening) {  /* a failed launch opened nothing: its start mark keeps its own time */
        ds->opening->sub = q && r == CUDA_SUCCESS ? submitted_at(ds, graph) : 0;
        ds->opening = NULL;
    }
    if (!q || r != CUDA_SUCCESS)
        gate_release(ds);  /* the launch failed, or is unmeasured: nothing of it to wait for (gatemarks) */
    if (!q && unmeasured_at)
        unmeasured_end(ds, r);
    if (!q || r != CUDA_SUCCESS)
        ds->prompt_seq = 0;
    int64_t now = ds->now_at;  /* the launch's clock read: the driver's launch call took microseconds at most */
    if (q && r == CUDA_SUCCESS) {
        if (!q->unmarked) {
            q->unmarked_enq = q->last_launch;
            /* a precise run's first launch: where its span may start (span_start); coarse runs keep their enqueue
             * (their spans are doubt, judged by the windows) and pay no clock read */
            q->unmarked_sub = ds->coarse ? 0 : submitted_at(ds, graph);
            q->un_key = key;
            q->un_est = q->un_kn = 0;
        } else if (q->un_key != key) {
            q->un_key = 0;  /* kernels of several keys: their mark's span teaches the table nothing */
        }
        if (!ds->coarse && key) {  /* precise: priced at the table's estimate if it knows the kernel (queued_work_ns) */
            int64_t e = kt_get(ds, key);
            if (e > 0) {
                q->un_est += e;
                q->un_kn++;
            }
            if (vg_cfg.launch_stats) {
                ds->st_keyed++;
                ds->st_priced += e > 0;
            }
        }
        q->unmarked++;
        if (ds->capped) {  /* its start if none is, and its queued work's end as it grows (region.c) */
            int64_t until = owed_until(ds, now);
            if (!vg_owed_unmoved(ds->dev, until))
                vg_owed_publish(ds->dev, q->unmarked_enq, until, 1);
        }
        q->unmarked_coarse |= ds->coarse;
        /* precise: a mark per launch (measured on the H200, marking only every 100 us merged a launch-bound
         * program's idle gaps into its busy time, charged twice its GPU time); coarse: one per >= 1 ms run,
         * charged the estimate (see the header) */
        if (deep_defer(ds, q, now)) {
            if (!q->deep_run++)
                ds->oldest_stale = 1;  /* its first launch's age counts for the in-flight bound (oldest_age) */
            ds->deep_extra++;
#ifdef HAMI_BISECT_NO_RECORDS
        } else if (ds->coarse && !q->capture && ds->est_ns > 0) {  /* bench (launch_int.h): no mark, the estimate */
            int64_t span = now - q->unmarked_enq, est = ds->est_ns * q->unmarked;
            if (span >= COARSE_MARK_GAP_NS || q->unmarked >= COARSE_RUN_LAUNCHES) {
                consume(ds, span > 0 && est > span ? span : est, 0);  /* at most the run's host span, as a mark's span */
                q->unmarked = q->unmarked_coarse = 0;
            }
#endif
        } else if (!ds->coarse || q->capture || q->sample || now - q->unmarked_enq >= COARSE_MARK_GAP_NS ||
                   q->unmarked >= COARSE_RUN_LAUNCHES) {
            push_mark(ds, q, q->unmarked_enq, MK_END, q->capture);
            gate_release(ds);  /* its end mark is queued: the GPU may run start mark, kernel and end mark (gatemarks) */
            if (ds->coarse && !q->capture && !ds->stale && coarse_behind(q, now))
                coarse_bound(ds, q, now);  /* the GPU may be behind: bounded in launches (coarse_behind) */
        }
        gate_release(ds);  /* a deferred end mark (deep_defer): the launch runs, a later mark closes its span */
        if (ds->prompt_seq && !ds->stale)  /* after every clock read the launch's own times take (submitted_at) */
            prompt_ask(ds, q);
        ds->prompt_seq = 0;
        if (vg_cfg.launch_stats) {
            ds->st_launches++;
            ds->st_coarse += ds->coarse != 0;
        }
        if (ds->stale) {  /* its mark failed: charged as an unmeasured launch, from its run's first (drop_measured) */
            CUstream s = q->s;
            int64_t from = drop_measured(ds);
            unmeasured_at = from ? from : now;
            unmeasured_s = s;
            unmeasured_all = 1;
            unmeasured_end(ds, r);
            q = NULL;
        }
    } else if (q) {
        q->sample = 0;
        q->chain_next = 0;  /* it queued nothing: the next launch's own check decides */
    }
    gate_release(ds);  /* every path out of the launch writes the ticket (gatemarks: never a deadlock) */
    ds->unflushed++;
    if (now - ds->flushed_at >= FLUSH_NS)
        flush_launches(ds, now);
    pthread_mutex_unlock(&ds->mu);
}

#define PTS(s) ((s) ? (s) : CU_STREAM_PER_THREAD)
/* a cuLaunchKernelEx launch's kernel key (launch_int.h kern_key), 0 = none without a config */
#define EX_KEY(cfg, f) ((cfg) ? kern_key(f, (cfg)->gridDimX, (cfg)->gridDimY, (cfg)->gridDimZ) : 0)
/* the launch's kernel key for the table (launch_int.h kern_key), worked out only for a measured precise launch: the
 * uncapped and coarse paths pay one branch */
#define KEY(key) (q && !ds->coarse ? (key) : 0)
#define GRAPH(field) (!__builtin_strncmp(#field, "cuGraph", 7))  /* a graph launch (submitted_at): a constant */
/* The launch entries. Without HAMI_LAUNCH_STATS the launch and its two halves, nothing else; with it the sampled
 * timers around them (st_pick, launch_sampled), apart, so the common case pays one branch for them. */
#define CONTROLLED(field, key, stream, ...)                                         \
    vg_init_cuda();                                                                 \
    if (!vg_real.field)                                                             \
        return CUDA_ERROR_NOT_INITIALIZED;                                          \
    struct squeue *q;                                                               \
    if (__builtin_expect(!vg_cfg.launch_stats, 1)) {                                \
        struct dstate *ds = launch_begin(stream, &q);                               \
        CUresult r = vg_real.field(__VA_ARGS__);                                    \
        launch_end(ds, q, r, GRAPH(field), KEY(key));                               \
        return r;                                                                   \
    }                                                                               \
    int st_ = st_pick();                                                            \
    int64_t st_a_ = st_ == 1 ? vg_now_ns() : 0;                                     \
    struct dstate *ds = launch_begin(stream, &q);                                   \
    int64_t st_b_ = st_ == 1 ? vg_now_ns() : 0;                                     \
    CUresult r = vg_real.field(__VA_ARGS__);                                        \
    int64_t st_c_ = st_ == 1 ? vg_now_ns() : 0;                                     \
    launch_end(ds, q, r, GRAPH(field), KEY(key));                                   \
    if (WRAP_ONLY)                                                                  \
        ST_COUNT(launches);                                                         \
    if (st_ == 1 && (q || WRAP_ONLY))                                               \
        launch_sampled(st_b_ - st_a_, st_c_ - st_b_, vg_now_ns() - st_c_);          \
    if (st_ == 2 && q) {                                                            \
        __atomic_add_fetch(&lst.sampled_in, 1, __ATOMIC_RELAXED);                   \
        __atomic_add_fetch(&lst.held_inner_ns, st_slept, __ATOMIC_RELAXED);         \
    }                                                                               \
    if (st_)                                                                        \
        st_in = 0;                                                                  \
    return r;

/* Which of the two disjoint samples (see lst) this launch belongs to: 1 its outer times, 2 its inner sections
 * (st_in is set for them), 0 none. */
static inline int st_pick(void)
{
#ifdef HAMI_BISECT_NO_TIMERS
    return 0;  /* bench (launch_int.h): no sampled timers */
#endif
    unsigned c = ++st_count & 31;
    st_in = c == 16;
    st_slept = 0;
    return c == 0 ? 1 : c == 16 ? 2 : 0;
}

/* One sampled launch's host time before, in and after the driver's launch call. */
static void launch_sampled(int64_t before, int64_t driver, int64_t after)
{
    __atomic_add_fetch(&lst.sampled, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&lst.ns[ST_BEGIN], before, __ATOMIC_RELAXED);
    __atomic_add_fetch(&lst.drv_ns, driver, __ATOMIC_RELAXED);
    __atomic_add_fetch(&lst.ns[ST_END], after, __ATOMIC_RELAXED);
    __atomic_add_fetch(&lst.held_outer_ns, st_slept, __ATOMIC_RELAXED);  /* its sleeps held, inside "before" */
}

/* At exit, with HAMI_LAUNCH_STATS=1: one line with the launch path's own cost, so a run on the GPU says how
 * many microseconds per launch the library adds and where. */
__attribute__((destructor)) static void launch_stats_report(void)
{
    if (!vg_cfg.launch_stats)
        return;
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {  /* the per-device counts (struct dstate): the threads are done */
        lst.launches += states[i].st_launches;
        lst.coarse += states[i].st_coarse;
        lst.fast += states[i].st_fast;
        lst.keyed += states[i].st_keyed;
        lst.priced += states[i].st_priced;
        for (int k = 0; k < KT_SLOTS; k++)
            lst.kt_keys += states[i].kt_key[k] != 0;
    }
    if (!lst.launches)
        return;
#ifdef HAMI_BISECT
    vg_log(VG_MSG, "a bench-only bisection build (%s): not the shipped library", bisect_marker + 12);
#endif
    /* one clock read's cost, taken off every timed figure (each includes one) */
    enum { READS = 256 };
    int64_t t0 = vg_now_ns(), t1 = t0;
    for (int i = 0; i < READS; i++)
        t1 = vg_now_ns();
    double clock_ns = (double)(t1 - t0) / READS;
    lst.n[ST_BEGIN] = lst.n[ST_END] = lst.sampled;
    char buf[4000];  /* under log.c's 4,096-character line */
    int n = snprintf(buf, sizeof(buf), "launch stats: %llu measured launches (%.1f %% coarse); %.1f %% on the "
                     "throttle's fast path; per launch %.3f "
                     "event records, %.3f event queries, %.3f elapsed-time calls; host us per launch (%llu + %llu "
                     "sampled, %.0f ns per clock read taken off):", (unsigned long long)lst.launches,
                     100.0 * lst.coarse / lst.launches, 100.0 * lst.fast / lst.launches,
                     (double)lst.records / lst.launches,
                     (double)lst.queries / lst.launches, (double)lst.elapsed / lst.launches,
                     (unsigned long long)lst.sampled, (unsigned long long)lst.sampled_in, clock_ns);
    for (int k = 0; k < ST_N && n > 0 && n < (int)sizeof(buf); k++) {
        uint64_t per = k <= ST_END ? lst.sampled : lst.sampled_in;
        double ns = (double)lst.ns[k] - clock_ns * (double)lst.n[k];
        n += snprintf(buf + n, sizeof(buf) - n, "%s %s %.3f", k ? "," : "", st_names[k],
                      per ? (ns > 0 ? ns : 0) / 1e3 / per : 0.0);
    }
    /* of those figures, the sampled launches' sleeps held for credit or by another's turn (pausegap): time the limit
     * held the program, which the launch path's cost (before + after the launch) is read without */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; sampled launches held: before the launch %.3f, throttle %.3f us "
                      "per launch", lst.sampled ? lst.held_outer_ns / 1e3 / lst.sampled : 0.0,
                      lst.sampled_in ? lst.held_inner_ns / 1e3 / lst.sampled_in : 0.0);
    /* the coarse phases' verifications (issue 18: on the H200 a fitting pair's charges rose to 41-51 % from 24-34 %
     * alone): how many judged a doubt, how many found the estimate too low and charged part of it */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; verifications %llu, %llu charged the doubt (%.1f of %.1f ms)",
                      (unsigned long long)lst.verified, (unsigned long long)lst.failed, lst.doubt_charged_ns / 1e6,
                      lst.doubt_ns / 1e6);
    /* issue 18 (the inference loop alone over its limit): whether the throttle held it at all, and for how long
     * (the sleeps asked for, the in-flight bound's included) */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; held %llu times, %.1f ms", (unsigned long long)lst.held,
                      lst.held_ns / 1e6);
    /* HAMI_SM_SAMPLE_EVERY, so an A/B run's lines say which side they are */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; coarse samples 1 in %d (%llu drawn), 1 in %d alone far below the "
                      "limit (%llu of them)", vg_cfg.sm_sample_every, (unsigned long long)lst.samples,
                      vg_cfg.sm_sample_every * vg_cfg.sm_sample_far, (unsigned long long)lst.samples_far);
    /* switch charging (switch_charged): the switches into this context charged and not, the last demand estimate */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; switches charged %.1f ms, not %.1f ms (demand alone %.1f %%, "
                      "neighbours %.1f %%)", lst.sw_charged_ns / 1e6, lst.sw_free_ns / 1e6, lst.solo_bp / 100.0,
                      lst.nbr_bp / 100.0);
    /* HAMI_SM_TURNS (turns.c): how long turns were on, the holds by another's window, the longest, the cuts, turns'
     * demand estimate, the full-ring waits, the warm-up (from the first update shared and capped to the first with
     * turns on, -1: never) and how often turns went off again */
    if (vg_cfg.sm_turns && n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; turns on %.1f ms, held %llu times, %.1f ms, longest %.1f ms, %llu "
                      "cut, demand for turns %.1f %%, full-ring waits %.1f ms, first on after %.1f ms, off %llu times, busy "
                      "in its windows %.1f %%, judged out %llu",
                      lst.turn_on_ns / 1e6, (unsigned long long)lst.turn_holds, lst.turn_ns / 1e6,
                      lst.turn_max_ns / 1e6, (unsigned long long)lst.turn_cuts, lst.turn_bp / 100.0, lst.full_ns / 1e6,
                      lst.turn_first_ns < 0 ? -1.0 : lst.turn_first_ns / 1e6, (unsigned long long)lst.turn_offs,
                      lst.turn_win_bp / 100.0, (unsigned long long)lst.turn_outs);
    /* deferred charges (charge.c deferred_charge): precise busy time charged after a neighbour was seen */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; charges deferred %.1f ms", lst.dfr_ns / 1e6);
    /* the collections (harvest), the launch path's and the watcher's, and their calls that found a mark not
     * completed: bounded per collection (HARVEST_MISSES), whatever the number of busy streams */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; harvests %llu, %llu asks not completed",
                      (unsigned long long)lst.harvests, (unsigned long long)lst.misses);
    /* switch charging's idle checks (others_idle) and the host waits that answered them (wait_end) */
    if (n > 0 && n < (int)sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - n, "; idle checks %llu, %llu found the process idle, %llu with no driver "
                      "call; %llu waits proved marks complete", (unsigned long long)lst.idle_checks,
                      (unsigned long long)lst.idle_found, (unsigned long long)lst.idle_free,
                      (unsigned long long)lst.proofs);
    /* issue 18 (the H100's inference loop: 4.4 us a launch lost under a limit, 0.65 in the library's sections): the
     * driver's own launch call on the outer samples, the watcher's wakes and CPU time, and the exiting (main)
     * thread's CPU time and context switches, so a run says whether the driver, the watcher or the core is slower */
    double drv = lst.sampled ? ((double)lst.drv_ns - clock_ns * (double)lst.sampled) / 1e3 / lst.sampled : 0.0;
    struct timespec wcpu = {0, 0};
    if (__atomic_load_n(&watcher_clock_set, __ATOMIC_ACQUIRE))
        clock_gettime(watcher_clock, &wcpu);
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    getrusage(RUSAGE_THREAD, &ru);
    if (n > 0 && n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; driver's launch call %.2f us; watcher %llu wakes (%llu left to the "
                 "launcher), %.1f ms CPU; this thread %.1f ms CPU, %ld voluntary + %ld involuntary switches",
                 drv > 0 ? drv : 0.0, (unsigned long long)lst.wakes, (unsigned long long)lst.wakes_deferred,
                 (wcpu.tv_sec * 1e9 + wcpu.tv_nsec) / 1e6,
                 (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3,
                 ru.ru_nvcsw, ru.ru_nivcsw);
    /* the watcher's sleeps past the busy ceiling: coarse and alone (or beside a neighbour with HAMI_WATCHER_COARSE_PAIR=1)
     * only (watcher.c, HAMI_WATCHER_ALONE_POLL_US); and its ramp's sleeps below it after a collection (none with
     * HAMI_WATCHER_FLAT_RAMP=1) */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; watcher sleeps past %lld us: %llu (alone ceiling %lld us), %llu below it "
                 "ramping up after a collection", (long long)(vg_cfg.watch_poll_ns / 1000),
                 (unsigned long long)lst.wakes_long, (long long)(vg_cfg.watch_alone_ns / 1000),
                 (unsigned long long)lst.wakes_ramp);
    /* precise deep runs (deep_defer): the marks that closed one, their launches, those whose proof failed, and the
     * waits for a full mark ring (also in the turns section, printed only with turns on) */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; deep runs %llu (%llu launches, up to %d a mark), %llu unproven; ring "
                 "full %.1f ms", (unsigned long long)lst.deep_runs, (unsigned long long)lst.deep_launches,
                 vg_cfg.sm_deep_run, (unsigned long long)lst.deep_unproven, lst.full_ns / 1e6);
    /* why the launches chose precise mode (count_why; the reasons overlap) and the low-credit launches whose mark
     * asked for precise neighbours or did not (credit_falls) */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; precise by choice %llu: credit not ample %llu (low %llu), asked %llu, "
                 "switches %llu, not verified %llu; low-credit launches asking %llu, not asking %llu",
                 (unsigned long long)lst.why_n, (unsigned long long)lst.why_credit, (unsigned long long)lst.why_low,
                 (unsigned long long)lst.why_asked, (unsigned long long)lst.why_switch,
                 (unsigned long long)lst.why_unverified, (unsigned long long)lst.marks_asked,
                 (unsigned long long)lst.marks_quiet);
    /* the wall's accounting (issue 18, the conformance pair): credit the bucket's cap took away (never spent; while
     * held), and the credit waits with none of its work on the GPU */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; credit capped %.1f ms (%.1f ms held), held with nothing queued %.1f ms",
                 lst.cap_ns / 1e6, lst.cap_held_ns / 1e6, lst.held_idle_ns / 1e6);
    /* the kernel table (trainsplit, kt_get): the precise launches with a key, those it priced (it knew their kernel),
     * and the keys it holds at exit (of KT_SLOTS a device): on a real program, whether its kernels recur as keyed */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; kernel table priced %llu of %llu keyed launches, %llu keys",
                 (unsigned long long)lst.priced, (unsigned long long)lst.keyed, (unsigned long long)lst.kt_keys);
    /* the stream-destroy hook (stream_destroying): whether a program's cuStreamDestroy reaches it (through cudart's
     * cuGetProcAddress too), and how it closed the destroyed streams' open runs (review23) */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; streams destroyed %llu, runs closed by event %llu, with no event %llu, "
                 "stale %llu", (unsigned long long)lst.sd_calls, (unsigned long long)lst.sd_event,
                 (unsigned long long)lst.sd_host, (unsigned long long)lst.sd_stale);
    /* the quiet pace alone (issue 18, record 16): note_users' looks at the board (every 4 ms alone and coarse, 1 ms
     * beside anyone: users_quiet) and the watcher's NVML process counts (every 500 ms with no neighbour on the GPU, 100 ms
     * beside anyone: nvmlq.c) */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; board looks %llu (%llu at the quiet pace), NVML process counts %llu",
                 (unsigned long long)lst.looks, (unsigned long long)lst.looks_quiet, (unsigned long long)lst.nvml_q);
    /* gatemarks (HAMI_SM_GATE_MARKS=1 or 2, gate_arm): the marked launches gated, those left ungated with the knob on (a
     * wait held, a half-full ring, no gate), and why the gate went off for good if it did */
    n = (int)strlen(buf);
    if (vg_cfg.sm_gate_marks && n < (int)sizeof(buf))
        snprintf(buf + n, sizeof(buf) - n, "; gated marks %llu, %llu not gated%s%s", (unsigned long long)lst.gated,
                 (unsigned long long)lst.gate_skipped, lst.gate_off ? ", gate off: " : "",
                 lst.gate_off ? lst.gate_off : "");
#ifdef HAMI_BENCH_PAIRPROBE
    /* the pair probe (bench only, launch_int.h): the charge by rule, the one-launch precise spans by kind (count /
     * average), the start marks reached before / after their submission, the estimate per coarse launch, the samples */
    n = (int)strlen(buf);
    if (n < (int)sizeof(buf)) {
        int64_t pn[PP_K], pc[PP_K];
        for (int k = 0; k < PP_K; k++) {
            pn[k] = __atomic_load_n(&pp_ns[k], __ATOMIC_RELAXED);
            pc[k] = __atomic_load_n(&pp_cnt[k], __ATOMIC_RELAXED);
        }
#define PP_AVG_US(s, c) ((c) > 0 ? (double)(s) / (double)(c) / 1e3 : 0.0)
        snprintf(buf + n, sizeof(buf) - n, "; pairprobe: charge by rule gap %.2f, deferred %.2f, estimate %.2f, "
                 "precise %.2f, doubt %.2f, other %.2f ms; one-launch precise spans chained %lld/%.2f us, "
                 "sub-floored %lld/%.2f, start-mark %lld/%.2f; start marks before/after submission %lld/%lld; "
                 "coarse estimate %.2f us; samples %lld/%.2f us",
                 pn[PP_GAP] / 1e6, pn[PP_DEFERRED] / 1e6, pn[PP_EST] / 1e6, pn[PP_PRECISE] / 1e6, pn[PP_DOUBT] / 1e6,
                 pn[PP_OTHER] / 1e6, (long long)pc[PP_CHAINED], PP_AVG_US(pn[PP_CHAINED], pc[PP_CHAINED]),
                 (long long)pc[PP_SUBFLOOR], PP_AVG_US(pn[PP_SUBFLOOR], pc[PP_SUBFLOOR]),
                 (long long)pc[PP_STARTMARK], PP_AVG_US(pn[PP_STARTMARK], pc[PP_STARTMARK]),
                 (long long)pc[PP_START_EARLY], (long long)pc[PP_START_AFTER],
                 PP_AVG_US(pn[PP_EST], pn[PP_COARSE_N]), (long long)pc[PP_SAMPLE],
                 PP_AVG_US(pn[PP_SAMPLE], pc[PP_SAMPLE]));
#undef PP_AVG_US
    }
#endif
    vg_log(VG_MSG, "%s", buf);
}

VG_API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned shm, CUstream s, void **params, void **extra)
{
    CONTROLLED(cuLaunchKernel, kern_key(f, gx, gy, gz), s, f, gx, gy, gz, bx, by, bz, shm, s, params, extra)
}

VG_API CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                    unsigned by, unsigned bz, unsigned shm, CUstream s, void **params,
                                    void **extra)
{
    CONTROLLED(cuLaunchKernel_ptsz, kern_key(f, gx, gy, gz), PTS(s), f, gx, gy, gz, bx, by, bz, shm, s, params, extra)
}

VG_API CUresult cuLaunchKernelEx(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra)
{
    CONTROLLED(cuLaunchKernelEx, EX_KEY(cfg, f), cfg ? cfg->hStream : NULL, cfg, f, params, extra)
}

VG_API CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra)
{
    CONTROLLED(cuLaunchKernelEx_ptsz, EX_KEY(cfg, f), PTS(cfg ? cfg->hStream : NULL), cfg, f, params, extra)
}

VG_API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                          unsigned by, unsigned bz, unsigned shm, CUstream s, void **params)
{
    CONTROLLED(cuLaunchCooperativeKernel, kern_key(f, gx, gy, gz), s, f, gx, gy, gz, bx, by, bz, shm, s, params)
}

VG_API CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                               unsigned by, unsigned bz, unsigned shm, CUstream s, void **params)
{
    CONTROLLED(cuLaunchCooperativeKernel_ptsz, kern_key(f, gx, gy, gz), PTS(s), f, gx, gy, gz, bx, by, bz, shm, s,
               params)
}

VG_API CUresult cuGraphLaunch(CUgraphExec g, CUstream s)
{
    CONTROLLED(cuGraphLaunch, kern_key(g, 0, 0, 0), s, g, s)
}

VG_API CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s)
{
    CONTROLLED(cuGraphLaunch_ptsz, kern_key(g, 0, 0, 0), PTS(s), g, s)
}

/* A capture begins: from now on the library's event calls run in the relaxed capture mode. Any marking in
 * progress (it holds its device's lock) finishes first, so none of its calls can fall inside the capture. */
static void capture_begins(void)
{
    __atomic_store_n(&capture_seen, 1, __ATOMIC_RELEASE);
    pthread_once(&states_once, init_states);
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        pthread_mutex_lock(&states[i].mu);
        if (states[i].ready && states[i].deep_extra)
            deep_close_all(&states[i]);  /* no deep run after this (deep_defer): the open ones end before the capture */
        pthread_mutex_unlock(&states[i].mu);
    }
}

#define BEGIN_CAPTURE(field, ...)              \
    vg_init_cuda();                            \
    if (!vg_real.field)                        \
        return CUDA_ERROR_NOT_INITIALIZED;     \
    capture_begins();                          \
    return vg_real.field(__VA_ARGS__);

VG_API CUresult cuStreamBeginCapture(CUstream s) { BEGIN_CAPTURE(cuStreamBeginCapture, s) }
VG_API CUresult cuStreamBeginCapture_ptsz(CUstream s) { BEGIN_CAPTURE(cuStreamBeginCapture_ptsz, s) }
VG_API CUresult cuStreamBeginCapture_v2(CUstream s, int mode) { BEGIN_CAPTURE(cuStreamBeginCapture_v2, s, mode) }
VG_API CUresult cuStreamBeginCapture_v2_ptsz(CUstream s, int mode)
{
    BEGIN_CAPTURE(cuStreamBeginCapture_v2_ptsz, s, mode)
}
VG_API CUresult cuStreamBeginCaptureToGraph(CUstream s, void *g, const void *deps, const void *data, size_t n,
                                            int mode)
{
    BEGIN_CAPTURE(cuStreamBeginCaptureToGraph, s, g, deps, data, n, mode)
}
VG_API CUresult cuStreamBeginCaptureToGraph_ptsz(CUstream s, void *g, const void *deps, const void *data, size_t n,
                                                 int mode)
{
    BEGIN_CAPTURE(cuStreamBeginCaptureToGraph_ptsz, s, g, deps, data, n, mode)
}

/* What a host wait proves (issue 18: on a GPU a process's streams run at once, and the first launch after each
 * synchronize found every stream's newest mark uncollected: switch charging's idle check asked up to 31 of them, at
 * ~1-2 us each). A wait that returns CUDA_SUCCESS has seen complete every mark recorded before it began on what it
 * covers, with no driver call: cuCtxSynchronize every stream of the measured context; cuStreamSynchronize(s) the
 * stream s, the legacy one for NULL or CU_STREAM_LEGACY (its queues: NULL from the launches that are not _ptsz,
 * and CU_STREAM_LEGACY itself; not the other streams a legacy-stream launch would wait for: the documentation does
 * not say its synchronize does); nothing for a per-thread default stream (its queue's handle names every thread's
 * stream) nor for cuEventSynchronize (the library does not see where the program recorded the event). "Before it
 * began" is a mark sequence number read under the device's lock before the wait (push_mark numbers each mark
 * under that lock once its record returned), so a mark another thread records during the wait is not covered;
 * the wait's context must be the measured one. A wait that fails proves nothing. Known complete is not a
 * completion time: charges still take theirs from the GPU (mark_done); only "is it done?" is answered
 * (stream_idle, others_idle, harvest's order and its queries before a reference exists). A stream handle the
 * program destroyed and the driver handed out again names one queue, as it always did for the launches. */
#define LEGACY_STREAM ((CUstream)0x1)  /* CU_STREAM_LEGACY */
enum { PROVE_NONE, PROVE_STREAM, PROVE_LEGACY, PROVE_ALL };

struct wait_proof {
    struct dstate *ds;  /* NULL: the wait proves nothing */
    int scope;          /* PROVE_* */
    CUstream s;         /* PROVE_STREAM: the stream */
    uint64_t before;    /* the sequence number of the first mark recorded after the wait began */
    int nr;             /* the open coarse runs it covers (wait_note_runs): queue, stream, launches, first enqueue */
    int rq[MAXQ], rn[MAXQ];
    CUstream rs[MAXQ];
    int64_t renq[MAXQ];
};

/* What a synchronize of s covers; ptsz: the _ptsz entry, where NULL is the calling thread's default stream. */
static int stream_scope(CUstream s, int ptsz)
{
    if (s == CU_STREAM_PER_THREAD || (ptsz && !s))
        return PROVE_NONE;
    return !s || s == LEGACY_STREAM ? PROVE_LEGACY : PROVE_STREAM;
}

/* Whether q is among the queues a wait of this scope covers (wait_end's proof). */
static int wait_covers(const struct squeue *q, int scope, CUstream s)
{
    return scope == PROVE_ALL || (scope == PROVE_LEGACY ? !q->s || q->s == LEGACY_STREAM : q->s == s);
}

/* The host waits: the open coarse run of each queue the wait covers is noted (issue 18, pausegap; gatehard), and a wait
 * that returns success proves its launches complete by its return (wait_end: q->proven_end). A coarse run's span starts
 * at its first launch and ends at its mark's completion; left open past the wait, its mark came from the watcher (up to
 * its 4 ms alone ceiling later) or from the next launch, after whatever the host did in between: a stopped process
 * (SIGSTOP: a bench taking turns, a debugger; the watcher stops with it), a long host computation, an idle spell between
 * requests. That time went into the span's doubt, and the verification charged what the window's host gaps did not
 * explain: on the H100 (record 14) the inference loop alone at 70 %, 25 % busy, was charged 12.5 s of doubt and held 23
 * times for 15.5 s; on the fake, bursts of it between 500 ms stops were charged 6-40 x their GPU time (2026-12-07-fake-
 * pausegap.md). So a proven run left idle MARK_GAP_NS past the wait's return (the watcher's close_bursts, or the next
 * launch, launch_end) is closed with no event, its span ending at the wait's return (proven_close): late by at most the
 * wait's wake-up, never early (nothing is left out of it). Pausegap recorded an event on every such run as the wait
 * began: a record and a conversion per wait, on every launch of a loop that synchronizes after each (fake libcuda with
 * the H200's call costs modelled: +5.3 us a launch on a 25.9 us iteration, 20 %; gatehard's record); now a run whose
 * next launch follows within MARK_GAP_NS goes on as before pausegap (closed by its own mark at 1 ms or 64 launches,
 * its host gaps judged by the windows), and an idle one costs no driver call. A wait the library cannot place (an
 * event's, a per-thread default stream's), or that fails, proves nothing. */
static void wait_note_runs(struct dstate *ds, struct wait_proof *p)
{
    for (int i = 0; i < ds->nq && p->nr < MAXQ; i++) {
        struct squeue *q = &ds->q[i];
        if (q->unmarked && q->unmarked_coarse && !q->sample && q->s != CU_STREAM_PER_THREAD &&
            wait_covers(q, p->scope, p->s)) {
            p->rq[p->nr] = i;
            p->rs[p->nr] = q->s;
            p->rn[p->nr] = q->unmarked;
            p->renq[p->nr++] = q->unmarked_enq;
        }
    }
}

/* Before the wait: where it can prove anything (a measured device whose measured context is current), the
 * sequence number that bounds what it covers. */
static void wait_begin(struct wait_proof *p, int scope, CUstream s)
{
    p->ds = NULL;
    p->scope = scope;
    p->s = s;
    p->nr = 0;
    if (scope == PROVE_NONE || !vg_launch_control())
        return;
    CUcontext ctx = NULL;
    int dev = vg_ctx_device(&ctx);
    if (dev < 0 || !ctx || !__atomic_load_n(&states[dev].ready, __ATOMIC_ACQUIRE))
        return;
    struct dstate *ds = &states[dev];
    pthread_mutex_lock(&ds->mu);
    if (ctx == ds->ctx && !ds->adopt && !ds->stale && ds->nq) {
        if (ds->deep_extra)
            deep_close_all(ds);  /* the host waits: its open deep runs close while their backlog runs */
        wait_note_runs(ds, p);
        p->ds = ds;
        p->before = ds->seq;
    }
    pthread_mutex_unlock(&ds->mu);
}

/* After the wait: a success proves its queues' marks numbered below p->before complete. Marks recorded since the
 * wait began have higher numbers whatever queue they are in now (a queue freed and given to another stream
 * meanwhile, or every queue dropped with the measured state, holds only such marks). */
static void wait_end(const struct wait_proof *p, CUresult r)
{
    struct dstate *ds = p->ds;
    if (!ds || r != CUDA_SUCCESS)
        return;
    int64_t t = vg_now_ns();  /* after the wait returned: every launch it covered had completed by now */
    int proved = 0;
    pthread_mutex_lock(&ds->mu);
    for (int k = 0; k < p->nr; k++) {
        struct squeue *q = &ds->q[p->rq[k]];
        /* the same run, still open, with no launch since the wait began (a launch made meanwhile by another thread
         * is not covered): proven complete by t */
        if (p->rq[k] < ds->nq && q->s == p->rs[k] && q->unmarked == p->rn[k] && q->unmarked_enq == p->renq[k] &&
            q->unmarked_coarse && !q->sample) {
            q->proven_end = t;
            q->proven_n = p->rn[k];
        }
    }
    for (int i = 0; i < ds->nq; i++) {
        struct squeue *q = &ds->q[i];
        int covered = wait_covers(q, p->scope, p->s);
        if (covered && q->known_to < p->before) {
            proved |= q->count && q->ring[q->head].seq < p->before;  /* a mark left uncollected is now known */
            q->known_to = p->before;
        }
    }
    pthread_mutex_unlock(&ds->mu);
    if (proved)
        ST_COUNT(proofs);
}

/* A synchronize: counted (note_pacing: the host waits for its GPU), then passed on; what it proves complete is noted
 * (wait_begin, wait_end). Handed out only while launches are controlled, like the launch entries (an unlimited
 * container pays nothing). A program that waits by polling (cuEventQuery, cuStreamQuery) or through a blocking copy
 * is not seen and stays judged by its gaps. */
#define HOST_WAIT(field, scope, s, ...)                        \
    vg_init_cuda();                                            \
    if (!vg_real.field)                                        \
        return CUDA_ERROR_NOT_FOUND;                           \
    __atomic_fetch_add(&host_waits, 1, __ATOMIC_RELAXED);      \
    struct wait_proof proof_;                                  \
    wait_begin(&proof_, scope, s);                             \
    CUresult r_ = vg_real.field(__VA_ARGS__);                  \
    wait_end(&proof_, r_);                                     \
    return r_;

VG_API CUresult cuStreamSynchronize(CUstream s) { HOST_WAIT(cuStreamSynchronize, stream_scope(s, 0), s, s) }
VG_API CUresult cuStreamSynchronize_ptsz(CUstream s)
{
    HOST_WAIT(cuStreamSynchronize_ptsz, stream_scope(s, 1), s, s)
}
VG_API CUresult cuCtxSynchronize(void) { HOST_WAIT(cuCtxSynchronize, PROVE_ALL, NULL) }
VG_API CUresult cuEventSynchronize(CUevent e) { HOST_WAIT(cuEventSynchronize, PROVE_NONE, NULL, e) }

/* A stream is destroyed (review of pausegap item 5). Destroying a stream with work pending is legal: the driver runs the
 * work and frees the stream once it is done, and may hand its handle to a new stream. The library kept the handle in
 * the stream's queue and recorded marks on it later (the watcher's close_bursts 0.1-4 ms after the last launch, a
 * synchronize's wait_close_runs before gatehard, exit_settle): on a freed handle, INVALID_HANDLE at best (the state stale, charged its
 * wall time), at worst a record on another stream that got the handle. So before the driver's call, under the device's
 * lock: the queue's open run is closed by its end mark, recorded on the stream while it still lives (queued behind
 * every launch of the run, so its span holds all their GPU time: the charge stays the GPU's), and the queue forgets the
 * handle (DEAD_STREAM): no later sync, watcher pass or launch finds it, its marks are collected as any others (events
 * outlive their streams) and the queue is reused once they are (find_queue). Where the mark cannot be recorded (its
 * record fails, or the driver cannot say whether the stream is being captured: capture_state), the measured state goes
 * stale, whose launches since its oldest open one are charged their wall time (drop_measured): never free. A stream
 * being captured has its launches forgotten, as at any mark there (the graph's launch is measured). Every device is
 * searched (a stream may be destroyed from a thread whose current context is another); a handle is in at most one
 * measured queue per device. */
#define DEAD_STREAM ((CUstream)(uintptr_t)-1)  /* never a stream handle (handles are the driver's pointers) */

/* The calling thread's context around a destroyed stream's close (review23 1): the close's event is the device's, made
 * and recorded in the measured context (exit_settle's rule: "its events record there"). From a thread whose current
 * context is another, or none, get_event's create would make it there, or fail, and a pooled event would be recorded
 * with another context current; the record failed, the state went stale (an over-charge and a measured-state reset,
 * whose adoption may then measure another context). So the measured context is made current for the close and the
 * caller's put back after it: one get and two sets, on a cold path, only where a close needs the driver. Where the
 * caller's context cannot be read, or the measured one cannot be made current (destroyed), the close is not tried and
 * the state goes stale, charged its wall time (drop_measured): never free. */
struct destroy_ctx {
    int read;           /* the caller's context was asked for */
    int bad;            /* ... and could not be read: never switched */
    CUcontext caller;   /* the caller's current context, put back at the end */
    CUcontext cur;      /* the context current on this thread now */
};

static COLD int destroy_in_ctx(struct dstate *ds, struct destroy_ctx *dc)
{
    if (!dc->read) {
        dc->read = 1;
        dc->bad = !vg_real.cuCtxGetCurrent || vg_real.cuCtxGetCurrent(&dc->caller) != CUDA_SUCCESS;
        if (dc->bad)
            dc->caller = NULL;
        dc->cur = dc->caller;
    }
    if (dc->bad || !ds->ctx)
        return 0;
    if (dc->cur == ds->ctx)
        return 1;
    if (!vg_real.cuCtxSetCurrent || vg_real.cuCtxSetCurrent(ds->ctx) != CUDA_SUCCESS)
        return 0;
    dc->cur = ds->ctx;
    return 1;
}

/* Set in a forked child (watcher_forked). A child of a process that used CUDA cannot use CUDA (the driver refuses it),
 * and it inherits the devices' locks as they were at the fork: one held then by another thread (the watcher's pass, a
 * launch) is held for good in the child, whose owner does not exist there. The destroy hook then blocked forever where
 * the driver's call would have failed at once (review23 2: a CuPy stream finalized by a forked DataLoader worker's GC).
 * In a child the hook does nothing: its queues name its parent's streams, which its parent charges. */
int vg_forked_child;

static void stream_destroying(CUstream s)
{
    if (!s || s == LEGACY_STREAM || s == CU_STREAM_PER_THREAD || !vg_launch_control())
        return;  /* the default streams cannot be destroyed (the driver refuses) */
    if (__atomic_load_n(&vg_forked_child, __ATOMIC_RELAXED))
        return;  /* never block on a lock inherited held (above) */
    ST_COUNT(sd_calls);
    pthread_once(&states_once, init_states);
    struct destroy_ctx dc = {0};
    for (int d = 0; d < HAMI_MAX_DEVICES; d++) {
        struct dstate *ds = &states[d];
        if (!__atomic_load_n(&ds->ready, __ATOMIC_ACQUIRE))
            continue;
        pthread_mutex_lock(&ds->mu);
        for (int i = 0; i < ds->nq; i++) {
            struct squeue *q = &ds->q[i];
            if (q->s != s)
                continue;
            if (q->unmarked && !ds->stale && proven_close(ds, q)) {
                ST_COUNT(sd_host);
            } else if (q->unmarked && !ds->stale) {
                int capture = destroy_in_ctx(ds, &dc) ? capture_state(q) : -1;  /* -1: no context to close it in */
                if (capture < 0)
                    ds->stale = 1;  /* no mark can close the run: charged its wall time (drop_measured) */
                else
                    push_mark(ds, q, q->unmarked_enq, MK_END, capture);  /* a failed record: stale, as above */
                if (ds->stale)
                    ST_COUNT(sd_stale);
                else
                    ST_COUNT(sd_event);
            }
            q->s = DEAD_STREAM;
            if (!q->count && i == ds->nq - 1 && !q->unmarked)
                ds->nq--;  /* nothing left to collect: the queue is free now */
        }
        pthread_mutex_unlock(&ds->mu);
    }
    if (dc.cur != dc.caller)
        vg_real.cuCtxSetCurrent(dc.caller);  /* the caller's context back (destroy_in_ctx) */
}

#define STREAM_DESTROY(field, s)           \
    vg_init_cuda();                        \
    if (!vg_real.field)                    \
        return CUDA_ERROR_NOT_FOUND;       \
    stream_destroying(s);                  \
    return vg_real.field(s);

VG_API CUresult cuStreamDestroy(CUstream s) { STREAM_DESTROY(cuStreamDestroy, s) }
VG_API CUresult cuStreamDestroy_v2(CUstream s) { STREAM_DESTROY(cuStreamDestroy_v2, s) }
