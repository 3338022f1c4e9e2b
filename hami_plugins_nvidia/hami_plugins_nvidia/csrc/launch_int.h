/* launch_int.h - what the SM limit's C files share (launch.c, charge.c, siblings.c, lending.c, watcher.c): the
 * per-device launch state (struct dstate and its stream queues and marks), the constants of the rules, the launch
 * path's own cost counters, and the functions one file calls in another. Private to the interposer: nothing here
 * is exported (the build compiles with -fvisibility=hidden; only VG_API symbols leave libvgpu.so). The small
 * helpers that the launch path calls on every launch are static inline here, so they stay inlined in launch.c. */
#ifndef HAMI_LAUNCH_INT_H
#define HAMI_LAUNCH_INT_H
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "vgpu.h"

/* A helper the launch path calls rarely (once per phase, per sample, on a failure): kept out of line and away from
 * the fast path's code, so the instructions a fast-path launch runs stay in a few cache lines */
#define COLD __attribute__((noinline, cold))

/* Bench only: the alone bisection (issue 18, bench/issue18_gpu.sh stage 19). The H100's inference loop alone at force
 * 70 runs ~1 us a launch behind the wrap-only build while the library's own sections say 0.55. Each HAMI_BISECT_* flag
 * takes one part off the coarse alone path, so the ladder says what each part costs the loop on a real host:
 *   NO_RECORDS  no event records: no coarse samples, end marks or calibrations, no verification windows after the
 *               first; a coarse run is charged the estimate (n x est_ns, at most its host span) where its mark
 *               would have been recorded
 *   NO_HARVEST  no collection on coarse launches: the watcher collects on each wake, every 1 ms while busy (a
 *               precise window still collects on its launches: the watcher's late collections over-charge precise
 *               spans, and the tenant would run out of credit before its first verification)
 *   NO_USERS    no note_users (board entry, records, fcntl queries) after the first, outside credit waits
 *   NO_THROTTLE no credit_ample or throttle() on the launches: the watcher refills the bucket; never holds
 *   NO_TIMERS   no sampled section timers (HAMI_LAUNCH_STATS still counts the calls)
 *   MIN         all five: the hook's bookkeeping minimum
 *   TOUCH       with the wrap-only build: HAMI_BISECT_TOUCH_LINES (default 32) data cache lines on 8 pages and
 *               HAMI_BISECT_TOUCH_CODE (default 32, 0 = none) instruction cache lines run through per launch, no
 *               other work: what a footprint costs the loop beyond its own time (the likeliest cost outside the
 *               sections: the library's lines, and its branches, evict the loop's between its calls)
 * Never shipped (build.py passes no define): such a build says so at its first launch and carries the marker
 * below, which test_interposer_bisect.py finds in none but these builds (nor HAMI_BENCH_PAIRPROBE's, below). Limits
 * are not kept by every one of them (NO_THROTTLE never holds): a short bench alone far below its limit only. */
#ifdef HAMI_BISECT_MIN
#define HAMI_BISECT_NO_RECORDS
#define HAMI_BISECT_NO_HARVEST
#define HAMI_BISECT_NO_USERS
#define HAMI_BISECT_NO_THROTTLE
#define HAMI_BISECT_NO_TIMERS
#endif
#if defined(HAMI_BISECT_NO_RECORDS) || defined(HAMI_BISECT_NO_HARVEST) || defined(HAMI_BISECT_NO_USERS) || \
    defined(HAMI_BISECT_NO_THROTTLE) || defined(HAMI_BISECT_NO_TIMERS) || defined(HAMI_BISECT_TOUCH)
#define HAMI_BISECT 1
#endif

#ifndef RING
#define RING 128  /* marks a stream keeps; a bench may build another size (-DRING=512: deep_queue.py's larger ring) */
#endif
#define MAXQ 32
#define EVPOOL (MAXQ * RING + 8)

enum { MK_END = 0, MK_START = 1 };

struct mark {
    CUevent e;
    int64_t enq;  /* host enqueue time of the first launch this mark closes (MK_START: its record time) */
    int64_t rec;  /* host time the mark was recorded */
    int kind;     /* MK_END closes launches (their GPU end); MK_START opens a busy period (its GPU start) */
    int n;        /* MK_END: launches it closes */
    int coarse;   /* recorded in coarse mode: charged the estimate, never published */
    int first;    /* MK_START recorded while every stream of the process was idle (HAMI_SM_CHARGE_SWITCHES) */
    int sample;   /* MK_END closing one coarse launch drawn at random (coarse_sample): its own GPU time; the value is
                     its weight in the samples' average (1, or samp_w alone far below the limit) */
    int paired;   /* MK_END whose event is also the next mark's, a MK_START (push_boundary): one record for both */
    int64_t ask_at;  /* found not completed: not asked again before this (launch.c ask_later), 0 = at any harvest */
    uint64_t seq;    /* its place in the device's record order (dstate.seq): what a host wait proves (mark_known) */
    float ms;        /* its elapsed time after the reference, taken by an idle check (launch.c stream_idle) ... */
    uint32_t ms_gen; /* ... from the reference of this generation (dstate.ref_gen), 0 = none: its conversion needs no
                        second driver call (mark_done) */
    int deep;        /* MK_END closing a deep run (launch.c deep_defer): its launches whose own mark was deferred, counted
                        in dstate.deep_extra until it is collected */
    int proven;      /* ... a collection found a mark before it not completed after it was recorded (deep_proven) */
    int64_t sub;     /* precise MK_START opening a launch, or MK_END of launches whose first was precise: the host time
                        that (first) launch's kernel may start from at the earliest (launch.c submitted_at), 0 = none;
                        the launch call has not returned while dstate.opening points at it */
    int64_t rec_call; /* the host time its cuEventRecord call took (rec is read before it): how much of a converted time's
                        error, when this mark set the reference's lower bound, is the call's (launch.c sub_floor) */
    uint64_t chain;  /* precise MK_END: 1 + the seq of the mark before it on its stream that the idle check of its
                        first launch found not completed (launch.c stream_idle), 0 = none: its launches queued behind
                        that mark's, so its span starts where that one ends, with no idle gap between (chained_run) */
    /* the kernel duration table (kt_*, trainsplit): MK_END's key if all its launches had one (kern_key), 0 = mixed or
     * none; and the estimates of those of its launches the table knew when they were made (kq_sum, kq_n): what it
     * adds to the queued work until it is collected */
    uint64_t key;
    int64_t est;
    int kn;
    int gated;       /* MK_START behind a gate's wait (launch.c gate_arm): it completes once the launch's end mark was
                        queued, so its wait from its record is not all a switch (the switch gap starts at sub) */
    /* a coarse MK_END with no event (launch.c proven_close): the host time a wait that covered all its launches
     * returned (their completion, late by at most the wait's wake-up: never early); 0 = an evented mark */
    int64_t hend;
};

struct squeue {
    CUstream s;
    int head, count;
    int unmarked;          /* launches after the last mark */
    int unmarked_coarse;   /* some of them were launched in coarse mode */
    int capture;           /* the stream was being captured at the current launch */
    int sample;            /* the current launch is a coarse sample, its weight (coarse_sample): its end mark closes
                              it alone */
    int64_t unmarked_enq;  /* host enqueue time of the first of them */
    int64_t unmarked_sub;  /* ... and its submission (launch.c submitted_at), 0 = none (coarse): its end mark's sub */
    int deep_run;          /* precise: of them, launches whose own end mark was deferred (launch.c deep_defer) */
    int queued;            /* launches closed by its end marks not collected yet (the GPU's backlog, an upper bound) */
    int64_t deep_off;      /* no deferral before this (a deep run's proof failed: the bet on the backlog lost) */
    int64_t busy_seen;     /* when a collection last found one of its marks not completed, ... */
    int64_t busy_lag;      /* ... and how long after that mark's record */
    int64_t last_mark, last_launch;
    int64_t done_end;      /* host time the last completed mark on this stream completed */
    uint64_t known_to;     /* its marks with seq below this are known complete: a host wait that covered them
                              returned success (launch.c wait_end); no driver call asks them whether they are done */
    uint64_t chain_next;   /* the chain of the next end mark pushed here (mark.chain): set by the idle check */
    int64_t svc_ns;        /* wall time the GPU took per end mark of this stream lately (its converted spans over
                              the marks they closed, averaged): run_probe's guess of how far it got, 0 = none yet */
    uint64_t un_key;       /* the unmarked launches' kernel key if they share one, else 0 (mark.key) ... */
    int64_t un_est;        /* ... the table's estimates of those of them it knew ... */
    int un_kn;             /* ... and how many (mark.est, mark.kn) */
    /* the open coarse run's first proven_n launches completed by proven_end: a host wait that covered them returned
     * then (launch.c wait_end), 0 = none; a mark closing the run, or a launch joining it, ends the proof */
    int64_t proven_end;
    int proven_n;
    struct mark ring[RING];
};

#define FUTURE_MAX_NS 1000000000LL   /* board times further ahead than this are forged: ignored */
#define TURN_PERIOD_NS 100000000LL   /* HAMI_SM_TURNS (turns.c): the period split into windows, fixed for every process */
#define TURN_IDLE_NS 3000000LL       /* ... a window's owner with no mark this recent is idle */
#define TURN_HOLD_MAX_NS 200000000LL /* ... no hold by turns lasts longer ... */
#define TURN_OFF_NS 1000000000LL     /* ... and one that reached it drops turns for this long */
#define TURN_GAP_NS 1500000LL        /* ... an owner with no mark this recent (host work) may have its window filled
                                      * (HAMI_SM_TURN_GAP_US's default, vgpu.h; turn_gap_ns) */
/* HAMI_SM_TURN_GAP_US in force (env.c), TURN_GAP_NS before the environment was read */
static inline int64_t turn_gap_ns(void)
{
    return vg_cfg.sm_turn_gap_ns > 0 ? vg_cfg.sm_turn_gap_ns : TURN_GAP_NS;
}
_Static_assert(TURN_GAP_NS == TURN_GAP_DEFAULT_US * 1000LL && TURN_GAP_MAX_US * 1000LL < TURN_IDLE_NS,
               "HAMI_SM_TURN_GAP_US: its default is TURN_GAP_NS, its ceiling under TURN_IDLE_NS");
#define TURN_ACT_NS 200000LL         /* ... while taking turns a launch refreshes the activity mark this often */
#define TURN_RUN_NS 2000000LL        /* ... a neighbour's open interval counts as running if seen running this recently */
#define TURN_FILL_NS 2000000LL       /* ... a neighbour fills a paused owner's window with at most this queued */
#define TURN_STEP_RUNS 4             /* ... an owner whose last this many closed busy intervals ... */
#define TURN_STEP_BUSY_NS 4000000LL  /* ... each lasted at most this and came at most this after the one before: it
                                      * steps one launch at a time, its drain gaps may be filled (turns.c owner_steps) */
#define TURN_STEP_MIN_NS 1000000LL   /* ... and at least this (a fill's two switches a small part of a step) */
#define TURN_STEP_HELD_NS 20000000LL /* ... and not waiting for credit this recently (turns.c owner_steps) */
#define TURN_STEPPER_KEEP_NS 1000000000LL /* HAMI_SM_TURNS_STEPPERS=0: a tenant seen stepping stays out of turns this
                                            * long (turns.c turn_wanted: out of turns its steps stretch) */
#define TURN_STEP_POLL_NS 50000LL    /* ... and a neighbour held by its step asks again this often (its gap is short) */
#define TURN_STAY_BP 9000            /* ... a process that takes part stays in while the GPU is this contended */
#define TURN_ENTER_MARGIN_BP 1000    /* ... and enters once twice its busy fraction is the limits' sum + this (turn_wanted) */
/* ... and a tenant stays in only while it fills the GPU in its own windows: busy at least this much there (turns.c
 * turns_note_window). On the H100 (record 9) the programs that gained by taking turns were busy 87-100 % alone
 * (matmul ~100, training 98, CuPy 97, CUDA graphs 88, JAX 87 %); the small-batch inference loop (50-59 % alone) is
 * launch-bound: in its window most of the GPU idled, outside it it was held, and beside a training loop at 50 + 50
 * it was charged 36.1 % instead of ~45 (stage 16). 70 % sits between the two groups; at 75 % a graphs-like
 * tenant on the fake (~80-87 % busy alone there) was judged out now and then (its figure swings by ~10 points). The library's demand estimates cannot draw that line: paired on the H100 the GPU-bound programs read
 * 42-83 % (turns off, stage 2), the inference loop 50.4 % */
#define TURN_BOUND_BP 7000
#define TURN_JUDGE_NS 20000000LL     /* ... judged so once this much of its windows' time was measured, ... */
#define TURN_JUDGE_EDGE_NS 3000000LL /* ... at the start of its own window, within this (turns.c turn_judged) ... */
#define TURN_MISSES 2                /* ... out after this many windows' starts in a row found it below the bound ... */
/* HAMI_SM_TURN_MISSES in force (env.c), TURN_MISSES before the environment was read */
static inline int turn_misses(void)
{
    return vg_cfg.sm_turn_misses > 0 ? vg_cfg.sm_turn_misses : TURN_MISSES;
}
_Static_assert(TURN_MISSES == TURN_MISSES_DEFAULT && TURN_MISSES_MIN >= 1 && TURN_MISSES_MAX >= TURN_MISSES,
               "HAMI_SM_TURN_MISSES: its default is TURN_MISSES, its floor 1");
#define TURN_BOUND_OFF_NS 1000000000LL /* ... and one judged out takes no turns for this long, doubled each time ... */
#define TURN_BOUND_OFF_MAX_NS 16000000000LL /* ... up to this (a launch-bound loop then spends ~1-4 % of its time in
                                             turns: ~0.2-0.6 s each time it gets in, fake) */
#define TURN_WIN_TAU_NS 200000000LL  /* ... over ~two periods (decaying sums) */
/* turns' demand estimate and stay test skip a window with this much of it quiet: neither its kernels running nor its
 * host waiting for its work or held (lending.c update_solo_demand; issue 18 record 12: a pair idle ~0.5-1 s before
 * its measured window re-entered turns only ~0.5 s into it, the graphs pair time-slicing there) */
#define TURN_QUIET_NS 100000000LL
#define INFLIGHT_MARK_MAX_NS 500000000LL
#define SHARE_WINDOW_NS 500000000LL  /* a neighbour whose work is not measured shares for 500 ms after its last launch */
#define IDLE_WINDOW_NS 100000000LL   /* one whose last work was measured to end: for 100 ms after that end */
#define COVER_NS 1000000LL           /* its last activity counts as measured if within 1 ms of its busy end */
#define HELD_FRESH_NS 100000000LL    /* a container held for credit this recently lends nothing (hami_vgpu_lent_share) */
#define MARK_GAP_NS 100000LL         /* coarse marking: at most one mark per 100 us per stream */
#define CALIB_GAP_NS 5000000LL       /* alone, a start mark (a calibration sample) at most every 5 ms */
#define PROMPT_GAP_NS 1000000LL      /* a start mark asked as its launch call returns at most every 1 ms (prompt_ask) */
#define HARVEST_GAP_NS 100000LL     /* completions are collected every 100 us while work is outstanding */
#define HARVEST_MARKS 16            /* ... and sooner once this many marks were recorded since the last collection */
#define HARVEST_MISSES 2            /* a collection stops at the second mark it finds not completed (harvest) */
#define ASK_MAX_NS 1000000LL        /* a mark not completed is asked again within a quarter of its wait, <= 1 ms */
#define QUEUE_WAIT_NS 200000LL      /* a launch that finds every stream queue held waits this long for one ... */
#define QUEUE_POLL_NS 50000LL       /* ... collecting every 50 us (launch.c wait_queue) */
#define REBASE_NS 2000000000LL       /* a new reference event every 2 s (float precision, clock drift) */
#define COLLECT_LAG_NS 20000LL       /* the promptest collection of a completed mark lags it by at most 20 us */
#define DRIFT_NS 20000LL             /* the bounds on the reference widen by 20 us at each re-base (drift) */
#define DEEP_RUN_NS 500000LL         /* precise: a deep run (launch.c deep_defer) closes within 500 us of its first
                                        launch ... */
#define DEEP_AHEAD_NS 2000000LL      /* ... and is opened only while at least 2 ms of work is queued ahead of it ... */
#define DEEP_AHEAD_LAUNCHES 16       /* ... in at least 16 launches, ... */
#define DEEP_SEEN_NS 300000LL        /* ... one of whose marks a collection found not completed this recently ... */
#define DEEP_LAG_NS 1000000LL        /* ... this long after its record */
#define DEEP_BACKOFF_NS 20000000LL   /* a run whose proof failed stops deferral on its stream for 20 ms */
#define COARSE_MARK_GAP_NS 1000000LL /* coarse: one end mark per >= 1 ms run of launches */
#define COARSE_RUN_LAUNCHES 64      /* ... or per 64 launches, whichever comes first (launch.c coarse_behind) */
#define COARSE_AHEAD_LAUNCHES 128   /* coarse: at most this many launches on a stream not seen completed ... */
#define COARSE_OVERDUE_NS 5000000LL /* ... and no mark left uncompleted this long after its record, else precise */
#define COARSE_HARVEST_NS 1000000LL  /* coarse: completions collected every 1 ms */
#define COARSE_PHASE_NS 100000000LL  /* a coarse phase lasts at most 100 ms, then a precise verification window */
#define SAMPLE_SLACK_NS 500         /* ... and charged only beyond 0.5 us per launch more than estimated (a sample's
                                       span holds its own marks' host time on an idle stream: 0.26 vs 0.11 us per
                                       0 us launch on the fake; an event's resolution on hardware) */
#define VERIFY_LAUNCHES 128          /* a verification window: at least 128 measured launches ... */
#define VERIFY_MIN_NS 2000000LL      /* ... over at least 2 ms */
#define DEMAND_NS 200000000LL        /* a request for precise neighbours holds for 200 ms */
#define ASK_MARGIN_BP 200            /* a tenant low on credit asks while charged within 2 points of its share */
#define FRAC_GAP_NS 5000000LL        /* the charged fraction is updated and published at most every 5 ms ... */
#define FRAC_TAU_NS 100000000LL      /* ... as a decaying average over ~100 ms (one shared square-wave period) */
#define LAZY_REFILL_NS 1000000LL     /* fast path: the bucket is refilled at most every 1 ms (credit_ample) */
#define FLUSH_NS 1000000LL           /* the region's launch count and last launch time: updated every 1 ms */
#define TAKE_WAIT_NS 50000LL         /* a start mark that waited this long took the GPU from another context */
#define TAKE_MAX_NS 2000000LL        /* ... and held it alone if its interval ended within one time slice (~2 ms) */
#define DEFER_NS 5000000LL           /* a shared precise span is charged this long after it ended (deferred_charge) */
#define DEFER_SLOTS 256              /* ... at most this many spans wait (a ring): a full one charges its oldest */
#define DEFER_MERGE_NS 1000000LL     /* contiguous spans wait as one for at most this long */
#define KT_SLOTS 256                /* the kernel duration table's slots (a power of two), per device: 4 KiB ... */
#define KT_PROBE 4                  /* ... a key is looked for in this many slots from its hash's */
#define KT_MAX_NS 500000000LL       /* ... and a learned duration is at most this (a launch's whole span) */
#define HOLE_SLOTS 8                 /* uncharged gaps below charged_to kept for a later-collected span (span_pieces) */

struct dstate {
    pthread_mutex_t mu;
    int ready, dev;
    CUcontext ctx;          /* the context measured with events (launch.c drop_measured: when it went stale) */
    int stale;              /* an event call on the library's own events failed: drop_measured is due */
    int adopt;              /* dropped: the next launch's current context becomes ctx */
    int recorded;           /* a mark was recorded since ctx was adopted */
    int resets;             /* times the measured state was dropped */
    int no_events;          /* events failed again right after a re-adoption: every launch is unmeasured */
    CUevent freev[EVPOOL];
    int nfree;
    struct squeue q[MAXQ];
    int nq;
    int pending;            /* marks whose completion has not been collected yet */
    int deep_extra;         /* launches in deep runs beyond one per mark: in flight, counted by queued_work_ns */
    uint64_t seq;           /* the next mark's sequence number (never reset: a host wait compares against it) */
    int harvest_left;       /* ... of them left by the last collection (harvest_due) */
    int64_t ewma_ns;        /* average charge per mark */
    int ewma_k;             /* marks the charge being taken stands for (a chained run converted once: chained_run),
                               0 = one; the average stays per mark (charge.c sample_charge) */
    struct hami_board_gpu *bgpu;
    int64_t last_stamp;
    int prio_logged;
    int stopped;            /* out of credit: resume only with the resume credit (alone, or under force) */
    int wave;               /* resumed from stopped: its on-phase spends the resume credit (bucket_cap) */
    int64_t reserve_ns;     /* credit earned beyond the spendable depth while never held: counted by the coarse
                               and fast-path decisions, never spent (bucket_cap) */
    unsigned int clock_mhz; /* last sampled SM clock */
    int64_t clock_at;
    int64_t harvest_at;     /* last harvest: completed events are collected at most every 100 us */
    int64_t launch_at;      /* last measured launch: while the program launches, it harvests itself */
    int64_t user_stamp;     /* last time this container's node-board user entry was refreshed */
    int user_idx;           /* its index in the board entry's user list, -1 = none */
    int shared;             /* another container was seen launching on this GPU recently */
    int capped;             /* the SM limit applied at the last launch */
    int launched;           /* this process launched on the device before (launch_begin: its first capped launch) */
    /* host <-> GPU time */
    CUevent ref;            /* reference event, completed */
    uint32_t ref_gen;       /* changes with ref: a mark's elapsed time taken from an earlier one is not used (mark.ms) */
    int64_t off_lo, off_hi; /* its host time lies in [off_lo, off_hi] (the tightest bounds the marks gave;
                               off_hi INT64_MAX = none yet) */
    int64_t off_lo_call;    /* the record call's host time of the mark that set off_lo (mark.rec_call) */
    int64_t seen_raw;       /* latest completion (from the reference) collected since the last upper bound,
                               INT64_MIN = none */
    int64_t ref_at;         /* when it became the reference */
    int64_t calib_at;       /* last start mark (each is a calibration sample) */
    uint64_t prompt_seq;    /* 1 + the seq of the start mark this launch recorded, to be asked as its launch call returns
                               (launch.c prompt_ask), 0 = none */
    int64_t prompt_at;      /* when one was last asked so */
    /* busy interval of this process */
    int64_t busy_since;     /* 0 = idle */
    int since_gpu;          /* busy_since is the GPU start of the busy period (published), not its host time */
    int64_t charged_to;     /* busy time before this has been charged, but for the holes: */
    int64_t hole_a[HOLE_SLOTS], hole_b[HOLE_SLOTS];  /* gaps below it no span covered yet (charge.c span_pieces) */
    int nhole;
    int64_t last_end;       /* completion of the last collected mark */
    /* coarse measurement */
    int coarse;             /* the current launches are measured coarsely */
    int verified;           /* a precise window completed since the last coarse phase */
    int reopen;             /* back from coarse mid-busy-period: the next launch gets a start mark */
    struct mark *opening;   /* the precise start mark of the launch whose driver call is in progress (launch_end sets
                               its sub; not collected before: collect) */
    int64_t call_at;        /* ... and the host time that call began at the earliest (no start mark: the launch's own
                               clock read, before the call) */
    int64_t mode_at;        /* when the current mode began */
    int64_t est_ns;         /* charge per launch measured by the last precise window, 0 = none yet */
    /* the kernel duration table (trainsplit, kt_get/kt_learn): a launch's key (kern_key) -> its GPU time, learned
     * from precise spans; an open-addressing table of KT_SLOTS, no allocation, under mu */
    uint64_t kt_key[KT_SLOTS];
    int64_t kt_ns[KT_SLOTS];
    int64_t kq_sum;         /* the table's estimates of the launches in flight it knew (marks not collected) ... */
    int kq_n;               /* ... and how many: queued_work_ns prices only the others at the average */
    int64_t doubt_ns;       /* coarse spans not charged (span - estimate) since the last verification */
    int64_t coarse_n;       /* launches charged the estimate since the last verification ... */
    int64_t coarse_est;     /* ... and what they were charged */
    int64_t win_ns;         /* precise charges of the current window ... */
    int64_t win_n;          /* ... and the launches they closed ... */
    int64_t win_at;         /* ... since this time: the mode's start, or alone the last span converted through bounds
                               wider than COLLECT_LAG_NS (launch.c window_restart) */
    int64_t samp_ns;        /* GPU time of the coarse samples since the last verification ... */
    int64_t samp_n;         /* ... and how many (each sample weighs its draw's rate: samp_w) */
    int samp_w;             /* this launch's draws: 1 in samp_w x HAMI_SM_SAMPLE_EVERY, each weighing samp_w (launch.c
                               sample_rate, refreshed with the board every ms); 0 = not set yet (1) */
    uint64_t samp_cut;      /* the draws' threshold for samp_w (sm_sample_cut / samp_w) */
    int far;                /* alone and charged far below the limit (launch.c sample_rate): shorter windows */
    int64_t samp_last;      /* their average at the last verification that had any, 0 = none yet */
    uint64_t rng;           /* the samples' generator state (xorshift64*), seeded at init_state */
    int64_t demand_wrote;   /* the last precision request this process wrote on the board */
    int64_t dem_at;         /* when precision_demanded last read the other users' slots ... */
    int dem_val;            /* ... and whether one asked */
    /* lending under the default policy (note_users, throttle) */
    int eff;                /* the share in force: the limit plus what active neighbours lend, 0 = not yet */
    int64_t frac_bp;        /* this container's charged GPU fraction, decaying average, 1/100 % */
    uint64_t frac_busy;     /* the container's charged busy time at frac_at */
    int64_t frac_at;        /* last update of frac_bp, 0 = restart from the limit */
    int64_t frac_from;      /* when frac_bp last restarted from the limit (publish_fraction) */
    int64_t held_wrote;     /* the last time this process marked the container held on the board */
    int held_asked;         /* ... and whether that mark asked for precise neighbours (mark_held) */
    int64_t asked_at;       /* the last request that holds its 200 ms (mark_held, credit_falls) */
    int64_t queued_bp;      /* share of wall time this process had work on the GPU, decaying average, 1/100 % */
    int64_t pend_since;     /* since when this process has had work outstanding (launched, not yet seen ended, ... */
                            /* ... waiting behind another context's slice included), 0 = none (count_queued) */
    int64_t pend_end;       /* the end of the last such period (GPU end of its last work) ... */
    int64_t pend_len;       /* ... and its length, until the next launch tells how it was paced (note_pacing) */
    int64_t paced_ns;       /* of queued_ns: the time in periods the host paced (a long idle gap after them) */
    uint64_t waits_at;      /* host_waits when the current period began: a sync since says the host waited (note_pacing) */
    int64_t queued_ns;      /* time with work on the GPU since the last update of queued_bp ... */
    int64_t queued_to;      /* ... counted up to here */
    /* the launch path's own bookkeeping */
    int64_t now_at;         /* the clock read of the launch in progress (one per launch on the fast path) */
    /* HAMI_LAUNCH_STATS=1: the per-launch counts (measured, coarse, fast path), plain adds under the device's lock,
     * summed into lst at exit. They were atomic adds on the shared lst: three locked read-modify-writes per
     * launch that the stats line then reported as the library's own time */
    uint64_t st_launches, st_coarse, st_fast;
    uint64_t st_keyed, st_priced;  /* precise launches with a kernel key, and those the kernel table priced */
    int64_t oldest_enq;     /* the oldest uncollected marked launch's enqueue time, 0 = none (launch.c oldest_age) ... */
    int oldest_stale;       /* ... to be worked out again: a mark was recorded or collected since */
    uint64_t unflushed;     /* launches not yet added to the region's count ... */
    int64_t flushed_at;     /* ... which is updated at most every millisecond (flush_launches) */
    /* switch charging: waits of start marks recorded on an idle process, settled 1 ms after they ended */
    int64_t gap_rec[8], gap_start[8];
    int ngap;
    /* shared precise spans not charged yet, oldest at dfr_head (charge.c deferred_charge, settle_deferred) */
    int64_t dfr_a[DEFER_SLOTS], dfr_b[DEFER_SLOTS];  /* the span, */
    int64_t dfr_n[DEFER_SLOTS], dfr_c[DEFER_SLOTS];  /* the launches it closes and its charge when it completed */
    int dfr_head, ndfr;
    int64_t dfr_sum;        /* their charges when they completed: still in flight for the throttle (inflight_ns) */
    /* ... charged only while the GPU is contended (switch_contended): this program's demand alone, estimated from
     * its own launches (note_blocked, update_solo_demand), and its neighbours' charged fractions */
    int64_t sd_kern;        /* kernel time charged since sd_at (switch gaps not included) ... */
    int64_t sd_kern_coarse; /* ... and its coarse marks' estimates (turns' stay test only: turns_note_window) ... */
    int64_t sd_blocked;     /* ... time its host waited for its own work to finish ... */
    int64_t sd_held;        /* ... and time its launches waited for credit */
    int64_t sd_full;        /* ... and for a free slot in a full mark ring (push_mark: for its own queued work) */
    int64_t sd_sliced;      /* ... and its periods' waits for another context's slice, the host launching nothing
                               (note_blocked, HAMI_SM_LEND_SLICED) */
    int64_t sd_at;          /* 0 = not measuring (uncapped) */
    int64_t sd_n;           /* updates since it restarted */
    int64_t held_since;     /* a launch waits for credit since (counted into sd_held up to here), 0 = none */
    int64_t sd_coarse;      /* time measured coarsely since sd_at (no start marks: nothing estimated then) ... */
    int64_t sd_cto;         /* ... counted up to here (count_coarse) */
    int64_t solo_bp;        /* the demand estimate, decaying average, 1/100 % */
    int64_t turn_bp;        /* the same with the full-ring waits counted as held: turns' own (turns.c turn_wanted) */
    int64_t turn_nbr_bp;    /* nbr_bp for turns: a neighbour taking turns counts at least its limit, <= 100 % */
    int64_t nbr_bp;         /* capped active neighbours' published demands alone (user_solo_bp), summed, <= 100 % */
    int64_t pend_last;      /* the last launch while work was outstanding (or the one that opened the period) */
    int64_t pend_wait;      /* the last period's end minus its last launch */
    int64_t pend_grec;      /* the period's first start mark (recorded on an idle process): its submission ... */
    int64_t pend_gstart;    /* ... and its GPU start (the switch into this context ended), 0 = none (note_blocked) */
    int64_t gap_typ;        /* the host's usual interval between launches while work is outstanding, decaying */
    /* time slices: a neighbour took the GPU from this process's chained work (taken_at), 0 = not yielded ... */
    int64_t yield_at;       /* ... at its GPU start (its took mark) ... */
    int64_t resume_at;      /* ... and gave it back when its interval ended, 0 = not yet */
    int yield_user;         /* its board index */
    /* its board record (board.c vg_board_rec_*): what its neighbours' lending and switch charging read, as a kernel
     * lock only this process can shorten; held while it counts as active by the readers' rule (own_active) */
    int rec_user, rec_lane; /* the user slot and lane it holds, -1 = none */
    uint64_t rec_len;       /* the lock's length, 0 = none */
    uint64_t rec_claim;     /* its context claim beside the record (board.c, 1/100 contexts), 0 = none ... */
    int64_t claim_at;       /* ... last worked out (lending.c publish_claim) */
    /* the busy contexts each neighbour's user slot counts in the charge (note_users, board.c vg_board_ctx_read), 1/100:
     * 100 = one, as every container counted before; read within the last 100 ms, else all 100 (charge.c ps_charge) */
    int32_t ctx_w[HAMI_BOARD_USERS];
    int64_t ctx_at;
    int64_t act_at;         /* its last activity mark on the board (user_active_ns) ... */
    int64_t act_end;        /* ... and the end of its last busy interval published there */
    /* several processes of one container (sib_*): this process's entry in the region's sibling table, -1 = none */
    int sib_idx;
    uint64_t sib_token;     /* its token in the entry's owner word */
    /* HAMI_SM_TURNS (turns.c): whether it takes part (its record's turn bit), who takes turns now */
    int turn_want;
    int turn_n, turn_me;    /* participants, 0 = no turns now; its own index among them */
    int turn_slot[HAMI_BOARD_USERS], turn_limit[HAMI_BOARD_USERS];  /* in board order: slot and limit */
    int64_t turn_from;      /* held by turns since, 0 = not held */
    int64_t turn_off_until; /* a hold reached TURN_HOLD_MAX_NS: no turns until then */
    int64_t turn_stepper_at; /* HAMI_SM_TURNS_STEPPERS=0: when it last read as stepping one launch at a time (turns.c) */
    int act_back;           /* a credit wait with nothing in flight, taking turns: note_users marks it TURN_GAP_NS back */
    int64_t turn_seen_at;   /* the last update (the time spent taking turns, for the launch stats) */
    int64_t turn_since;     /* first seen shared and capped with turns on (the warm-up figure of the launch stats) */
    /* its busy share inside its own windows while taking turns (turns.c turns_note_window): its kernel time and its
     * windows' time less its waits there, decaying sums over TURN_WIN_TAU_NS; 0 while it takes no turns */
    int64_t turn_win_k, turn_win_w;
    /* ... the same sums by the rule not in force (HAMI_SM_TURNS_COUNT_COARSE: coarse marks' estimates counted, its
     * windows' time kept whole; or not), and what the figures are made of, decaying alike: its precise kernels, its
     * coarse marks' estimates, the demand windows' time and their precise part (the turns log, turns_log) */
    int64_t turn_alt_k, turn_alt_w;
    int64_t turn_log_kp, turn_log_kc, turn_log_span, turn_log_prec;
    int64_t turn_bound_off; /* its next back-off when judged out (TURN_BOUND_OFF_NS.._MAX_NS), 0 = the first */
    int turn_misses;        /* its windows' starts in a row that found it below TURN_BOUND_BP (turn_judged) ... */
    int64_t turn_judge_win; /* ... and the start of the window last judged (once a window) */
    int64_t sd_own_held;    /* its launches' waits inside its own windows within the demand window (sd_at..) */
    /* gatemarks (launch.c gate_arm, HAMI_SM_GATE_MARKS=1 or 2): a word of pinned host memory the device reads */
    int gate_state;         /* 0 not set up (or again, after a context destruction), 1 ready, -1 off for good */
    volatile uint32_t *gate_word;  /* the library's own page (mmap'd, never unmapped: gate_page) */
    int gate_pages;         /* the pages mapped for it so far (gate_page: a fresh one per context that needs one) */
    CUdeviceptr gate_dptr;
    CUcontext gate_ctx;     /* the context it was registered in ... */
    uint64_t gate_epoch;    /* ... and the context destructions seen then (vg_ctx_epoch) */
    uint32_t gate_ticket;   /* the last ticket a wait was enqueued for */
    int gate_held;          /* that wait is not released yet (gate_release writes the ticket) */
    int64_t gate_armed_ns;  /* when the held wait was armed, 0 when none is: the watcher's watchdog reads it unlocked */
    int gate_rescues;       /* waits the watchdog released in a row (gate_watchdog): launch calls waiting for the GPU */
    uint32_t gate_rescued;  /* the ticket it released last (gate_release: a wait released by its launch ends the row) */
};

/* The launch path's own cost (HAMI_LAUNCH_STATS=1): driver calls counted on every launch; host time taken on
 * two disjoint samples, so no clock read of one is inside the other's figure: the whole of "before" and "after"
 * the driver's launch call on one launch in 32, the sections inside "before" (lock, throttle, marks, idle
 * query, harvest) on another launch in 32. Each figure has one clock read's cost (measured at exit) taken off.
 * Sections nest: the throttle's time includes its harvests and its waits for credit. Nothing is counted or
 * timed unless asked. */
enum { ST_BEGIN, ST_END, ST_LOCK, ST_THROTTLE, ST_MARK, ST_QUERY, ST_HARVEST, ST_N };
struct launch_stats {
    uint64_t launches, coarse, fast, sampled, sampled_in, records, queries, elapsed;
    uint64_t harvests, misses;  /* collections, and their driver calls that found a mark not completed */
    uint64_t samples;   /* coarse launches drawn as samples (coarse_sample) */
    uint64_t samples_far; /* ... of them drawn at the rate alone far below the limit (sample_rate) */
    uint64_t verified, failed;  /* precise windows that judged a coarse phase's doubt, and those that charged it */
    /* why launches were measured precisely (choose_mode; the reasons overlap): the credit not ample for coarse mode
     * (and of those, low: at most the 60 ms margin), a neighbour's request, switch charging's contended rule, no
     * verified window yet (a coarse phase's end, or a mode switch since); and the launches low on credit (choose_mode)
     * whose mark asked for precise neighbours and those whose did not (credit_falls) */
    uint64_t why_n, why_credit, why_low, why_asked, why_switch, why_unverified, marks_asked, marks_quiet;
    int64_t doubt_ns, doubt_charged_ns;  /* the doubt they judged, and the part charged */
    uint64_t held;      /* launches that waited for credit (throttle) ... */
    int64_t held_ns;    /* ... and how long they waited in all */
    int64_t sw_charged_ns, sw_free_ns;   /* switches into this context charged, and left uncharged (not contended) */
    int64_t dfr_ns;                      /* precise busy time whose charge waited for the board (deferred_charge) */
    int64_t solo_bp, nbr_bp;             /* switch_charged's last demand figures while shared */
    uint64_t idle_checks, idle_found, idle_free;  /* switch charging's idle checks, those that found the process idle,
                                                     and those answered with no driver call (launch_begin) */
    uint64_t proofs;    /* host waits that returned success and proved marks complete (wait_end) */
    int64_t drv_ns;     /* the driver's own launch call on the outer-sampled launches (issue 18: on the H100 the
                           inference loop lost 4.4 us a launch under a limit, the library's sections 0.65) */
    uint64_t wakes, wakes_deferred;  /* the watcher's wake-ups, and those that left the collecting to the launcher */
    uint64_t wakes_long;  /* its sleeps past the busy ceiling (coarse alone, or beside a neighbour with
                             HAMI_WATCHER_COARSE_PAIR=1: HAMI_WATCHER_ALONE_POLL_US) */
    uint64_t wakes_ramp;  /* sleeps shorter than the busy ceiling after a wake that deferred: the back-off's ramp
                             after a collection (watcher.c, HAMI_WATCHER_FLAT_RAMP) */
    uint64_t turn_holds, turn_cuts;  /* HAMI_SM_TURNS: holds by another's window, and those cut at TURN_HOLD_MAX_NS */
    uint64_t turn_outs;  /* ... and the times it was judged out (busy below TURN_BOUND_BP in its windows) */
    int64_t turn_ns, turn_max_ns, turn_on_ns;  /* their time, the longest, and the time turns were on */
    int64_t turn_first_ns;   /* from the first update shared and capped to the first with turns on; -1: never */
    uint64_t turn_offs;      /* the times an update found turns off again (hysteresis, a neighbour gone; cuts apart) */
    int64_t turn_bp;     /* turns' last demand estimate while shared (lending.c update_solo_demand) */
    int64_t turn_win_bp; /* its last busy share inside its own windows while taking turns (turns.c), 0 = never */
    int64_t full_ns;     /* launches' waits for a full mark ring (push_mark) */
    int64_t cap_ns, cap_held_ns;  /* credit the bucket's cap took away (spent never: the reserve only decides), and
                                     the part of it while held for credit (throttle) */
    int64_t held_idle_ns;  /* credit waits with none of its work on the GPU (queues_idle): time its limit kept it
                              off an otherwise idle GPU unless a neighbour ran then */
    uint64_t keyed, priced, kt_keys;  /* the kernel table (trainsplit): precise launches keyed, priced, keys known */
    uint64_t deep_runs, deep_launches, deep_unproven;  /* precise marks closing deep runs, their launches, and those
                                                          whose proof failed (charged their whole span) */
    uint64_t gated, gate_skipped;  /* gatemarks: marked launches gated, and those not gated with the knob on */
    /* cuStreamDestroy(_v2) (launch.c stream_destroying): the hook's calls on a stream, and the open runs it closed by an
     * event, with none (a wait proved them: proven_close), or left to the stale state (charged their wall time) */
    uint64_t sd_calls, sd_event, sd_host, sd_stale;
    uint64_t looks, looks_quiet;  /* note_users' looks at the board, those at the quiet pace (users_quiet) */
    uint64_t nvml_q;  /* the watcher's NVML process counts (nvmlq.c vg_nvml_procs_refresh) */
    const char *gate_off;          /* why the gate went off for good (gate_ready), NULL = it did not */
    int64_t ns[ST_N];
    uint64_t n[ST_N];  /* timed occurrences of each section */
    /* the sampled launches' sleeps while held for credit or by another's turn (throttle), inside "before the launch"
     * (outer sample) and "throttle" (inner sample): the limit at work, not the launch path's cost. Issue 18 record 14
     * (pausegap): a tenant held 23 times read 59 us a launch before it, 0.15 after */
    int64_t held_outer_ns, held_inner_ns;
};
extern struct launch_stats lst;
/* this launch's inner sections are sampled. initial-exec: a plain %fs-relative load, not a __tls_get_addr call per
 * section (the library is preloaded; a dlopen finds it in the static TLS surplus, one int) */
extern __thread int st_in __attribute__((tls_model("initial-exec")));
static inline void lst_add(int64_t *field, int64_t ns)
{
    if (vg_cfg.launch_stats)
        __atomic_add_fetch(field, ns, __ATOMIC_RELAXED);
}
/* thread-local variables of a shared library cost a __tls_get_addr call: read only when stats are asked for */
#ifdef HAMI_BISECT_NO_TIMERS
#define ST_IN() 0  /* bench: no section timers */
#else
#define ST_IN() (vg_cfg.launch_stats && st_in)
#endif
#define ST_START() int64_t st_t_ = ST_IN() ? vg_now_ns() : 0
#define ST_STOP(k)                                                                   \
    do {                                                                             \
        if (ST_IN()) {                                                               \
            __atomic_add_fetch(&lst.ns[k], vg_now_ns() - st_t_, __ATOMIC_RELAXED); \
            __atomic_add_fetch(&lst.n[k], 1, __ATOMIC_RELAXED);                      \
        }                                                                            \
    } while (0)
#define ST_COUNT(field)                                           \
    do {                                                          \
        if (vg_cfg.launch_stats)                                  \
            __atomic_add_fetch(&lst.field, 1, __ATOMIC_RELAXED);  \
    } while (0)

extern struct dstate states[HAMI_MAX_DEVICES];
extern int watcher_here;
extern int vg_forked_child;  /* set in a forked child (watcher_forked): launch.c stream_destroying does nothing there */
extern clockid_t watcher_clock;  /* the watcher thread's CPU clock, once watcher_clock_set (watcher.c) */
extern int watcher_clock_set;

/* launch.c */
uint64_t sample_seed(int dev);
#ifdef HAMI_BISECT_NO_THROTTLE
void bisect_refill(struct dstate *ds, int64_t now);  /* bench: the bucket's refill, from the watcher */
#endif
void harvest(struct dstate *ds);
void close_bursts(struct dstate *ds, int64_t now);
void flush_launches(struct dstate *ds, int64_t now);
/* charge.c */
int64_t ps_charge(struct dstate *ds, int64_t a, int64_t b, int64_t now);
void settle_gaps(struct dstate *ds, int64_t now);
void consume(struct dstate *ds, int64_t ns, int sample);
/* Bench only: the pair probe's counters (issue 18, docs/results/2026-12-07-fake-pairprobe.md appendix B; bench/
 * issue18_gpu.sh stage 25): each consume() call site names its rule (PP_* below: pp_cat, per thread, read and cleared
 * by consume), the charge summed by rule, and the one-launch precise spans by kind, the start marks before / after their
 * submission, the coarse estimate and the samples: appended to the launch stats line ("; pairprobe: ..."). Never shipped
 * (build.py passes no define): such a build carries the marker "HAMI_BENCH_PAIRPROBE=1" (launch.c), which
 * test_interposer_bisect.py finds in none but these builds; without the flag PP()/PPADD() are nothing. */
#ifdef HAMI_BENCH_PAIRPROBE
enum {
    PP_OTHER = 0, PP_GAP = 1, PP_DEFERRED = 2, PP_EST = 3, PP_PRECISE = 4, PP_DOUBT = 5, /* charge by rule (consume) */
    PP_START_AFTER = 6,   /* start marks reached at or after their launch's submission (floor) */
    PP_START_EARLY = 7,   /* start marks reached before the submission's floor */
    PP_COARSE_N = 8,      /* coarse launches (ns field: launches), for the estimate per coarse launch */
    PP_SAMPLE = 9,        /* one-launch coarse samples' spans */
    PP_CHAINED = 10,      /* one-launch precise spans, chained (m->chain) */
    PP_SUBFLOOR = 11,     /* ... started at their submission's floor */
    PP_STARTMARK = 12,    /* ... started at a start mark or the previous completion */
    PP_K = 13
};
extern __thread int pp_cat;
extern int64_t pp_ns[PP_K], pp_cnt[PP_K];
#define PP(c) (pp_cat = (c))
#define PPADD(k, v) (__atomic_add_fetch(&pp_ns[k], (v), __ATOMIC_RELAXED), \
                     __atomic_add_fetch(&pp_cnt[k], 1, __ATOMIC_RELAXED))
#else
#define PP(c) ((void)0)
#define PPADD(k, v) ((void)0)
#endif
void sample_launches(struct dstate *ds, int64_t c, int n);
void charge_reframe(struct dstate *ds, int64_t d);
int64_t span_charge(struct dstate *ds, int64_t a, int64_t b, int64_t now);
int64_t deferred_charge(struct dstate *ds, int64_t a, int64_t b, int64_t now, int64_t n);
void settle_deferred(struct dstate *ds, int64_t now);
int64_t taken_at(const struct dstate *ds, int64_t after, int64_t before, int64_t now, int *user);
int64_t resume_time(const struct dstate *ds, int64_t h, int64_t now);
int64_t chained_charge(struct dstate *ds, int64_t start, int64_t h, int64_t now, int64_t n);
/* siblings.c */
uint32_t sib_others(const struct dstate *ds);
void sib_publish(struct dstate *ds, int open, int64_t t);
void sib_running(struct dstate *ds, int64_t now);
int sib_collect(struct dstate *ds, int64_t a, int64_t b, int64_t now, int64_t *since, int64_t *until);
int sib_bound(const struct dstate *ds, int64_t now);
int sib_contexts(struct dstate *ds, int64_t a, int64_t b, int64_t now);
void sib_bound_refresh(struct dstate *ds, int64_t now);
void gate_watchdog(struct dstate *ds, int64_t now);  /* launch.c: a gated wait held past 20 ms is released */
/* lending.c */
void publish_fraction(struct dstate *ds, int64_t now);
void publish_record(struct dstate *ds, int64_t now);
void note_users(struct dstate *ds, int64_t now);
void sample_rate(struct dstate *ds);
/* turns.c (HAMI_SM_TURNS) */
void turns_update(struct dstate *ds, const struct vg_brec *rec, int rk, int64_t now);
int64_t turns_hold(struct dstate *ds, int64_t now);
void turns_hold_ends(struct dstate *ds, int64_t now);
void turns_note_window(struct dstate *ds, int64_t from, int64_t now, int64_t precise_ns, int64_t k, int64_t kc);
void turns_note_held(struct dstate *ds, int64_t a, int64_t b);
void turns_note_lent(struct dstate *ds, int64_t a, int64_t b);
void note_held(struct dstate *ds, int64_t now);  /* lending.c: a wait since held_since counted as held */
void stale_settle(struct dstate *ds);
/* watcher.c */
void start_watcher(void);
void watcher_forked(void);

static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    nanosleep(&ts, NULL);
}

/* A time read from the node board, or 0 when it lies further in the future than any writer puts it. */
static inline int64_t board_time(int64_t t, int64_t now, const char *what)
{
    if (t > now + FUTURE_MAX_NS) {
        char key[64];
        snprintf(key, sizeof(key), "future:%s", what);
        vg_log_once(VG_ERROR, key, "node board %s: %s is %.1f s in the future: forged, ignored", vg_cfg.board_path,
                    what, (double)(t - now) / 1e9);
        return 0;
    }
    return t;
}

/* Whether the switch into this context is charged: always with HAMI_SM_CHARGE_SWITCHES=1, never with 0, and by
 * default only while the GPU is contended: this program's demand alone (solo_bp, estimated from its own launches)
 * plus its capped neighbours' (published on the board, nbr_bp) is at least the whole GPU, the rule by which issue
 * 18's judge calls a pair contended. Why: a switch costs somebody only when somebody's work waited through it. The CUDA-graphs pair (each program busy ~75 % alone, a sync per
 * step) steps in lockstep and loses half the GPU to switches: charged its kernels only, neither tenant is ever
 * held (on the fake, 26 + 26 % charged at 30 + 70). A fitting pair of launch-bound tenants (tiny kernels, ~20 % each
 * alone) switches as often, but into GPU time nobody would have used: charged its switches it was charged ~2 x its
 * kernels and held at low limits (test_interposer_share.py's fitting pair at 15 %). The neighbours' charged
 * fractions instead of their demands did not separate the two on the fake (26 % each in the lockstep). A neighbour
 * that forges a high demand can make this tenant pay its own switch-ins (bounded as in switch_gap), never less;
 * an uncapped neighbour publishes none (0: not measured), so beside it only kernels are charged, as before. */
static inline int switch_charged(const struct dstate *ds)
{
    if (vg_cfg.sm_charge_switches != VG_SW_CONTENDED)
        return vg_cfg.sm_charge_switches == VG_SW_ALWAYS;
    return ds->solo_bp + ds->nbr_bp >= 10000;
}

/* Adds the coarse time since it was last counted to sd_coarse (update_solo_demand; choose_mode at a phase's end). */
static inline void count_coarse(struct dstate *ds, int64_t now)
{
    if (!ds->coarse || !ds->sd_at)
        return;
    int64_t from = ds->mode_at;
    if (from < ds->sd_at)
        from = ds->sd_at;
    if (from < ds->sd_cto)
        from = ds->sd_cto;
    if (now > from)
        ds->sd_coarse += now - from;
    ds->sd_cto = now;
}

/* Counts the time this process had work outstanding on the GPU up to t: from its first launch on an idle process
 * to the GPU end of its last, time spent waiting behind another context's slice included (pend_since, not
 * busy_since: the busy period is re-opened at each start mark's GPU start, which dropped the waits, and a
 * backlogged lender squeezed by processor sharing measured ~55 % "queued" and lent its share away, issue 18). */
static inline void count_queued(struct dstate *ds, int64_t t)
{
    if (ds->pend_since && t > ds->queued_to) {
        int64_t from = ds->pend_since > ds->queued_to ? ds->pend_since : ds->queued_to;
        if (t > from)
            ds->queued_ns += t - from;
    }
    if (t > ds->queued_to)
        ds->queued_to = t;
}

/* Marks this container held (waiting for credit, or low on it) on its board entry, at most once a
 * millisecond: while the mark is fresh it lends nothing, whatever its average says. The mark is also its request
 * for precise neighbours (launch.c precision_demanded) unless its lowest bit is set: low on credit, not asking
 * (launch.c credit_falls). One nanosecond off a time changes nothing for the mark's other readers (lending; builds
 * before this rule read every fresh mark as a request: precise, as before); no layout change. A request is written
 * at once after a mark that did not ask (its neighbours must not wait a millisecond longer for it). */
static inline void mark_held(struct dstate *ds, int64_t now, int ask)
{
    /* a request made while charged near its share holds its 200 ms (DEMAND_NS): a mark that does not ask then does
     * not overwrite it (launch.c credit_falls, which sets asked_at) */
    ask = ask || (ds->asked_at && now - ds->asked_at < DEMAND_NS && now >= ds->asked_at);
    if (!ds->bgpu || ds->user_idx < 0 || (now - ds->held_wrote < 1000000 && (!ask || ds->held_asked)))
        return;
    __atomic_store_n(&ds->bgpu->user_held_ns[ds->user_idx], (now & ~1LL) | !ask, __ATOMIC_RELEASE);
    ds->held_wrote = now;
    ds->held_asked = ask;
}

/* Whether note_users refreshes the board entry now (inline: the launch path tests it without a call on the launches
 * in between). Its pace: every USERS_GAP_NS, every USERS_QUIET_NS while quiet (users_quiet). Issue 18 (record 16, H100,
 * the inference loop alone at 70 %): its board reads, record lock queries and publications every millisecond cost
 * the loop 1.6 points on its core (stage 22's nousers rung) and one every 4 ms gave back about as much (stage 23's
 * users4), though each takes a few µs: a system call on the launching thread costs the driver's launch path beside
 * it more than its own time. Quiet = alone on the GPU (no neighbour seen at the last look) and either measured
 * coarsely (far below the limit) or not capped (the default policy alone), with no explicit task priority: nobody
 * reads what it would publish, and a newcomer is seen within 4 ms instead of 1 (the share windows are 100 ms and
 * more; the default policy's cap returns within 1 s). Beside anyone, or near the limit, the 1 ms pace at once. */
#ifndef USERS_GAP_NS  /* a bench may build other gaps (issue18_gpu.sh stage 23's users4 arm) */
#define USERS_GAP_NS 1000000LL
#endif
#ifndef USERS_QUIET_NS
#define USERS_QUIET_NS 4000000LL
#endif
static inline int users_quiet(const struct dstate *ds)
{
    return !ds->shared && !vg_cfg.priority_env && (ds->coarse || !ds->capped);
}
static inline int users_due(const struct dstate *ds, int64_t now)
{
    return ds->bgpu && now - ds->user_stamp >= (users_quiet(ds) ? USERS_QUIET_NS : USERS_GAP_NS);
}

/* The kernel duration table (issue 18, trainsplit). The queued work was priced at the average charge per mark, which
 * a training step fools: 150 x 400 us GEMMs then 600 x 20 us kernels, the average of the last few marks describing
 * the kernels that just completed, not those queued behind them. Taking turns, the 30 % tenant of a 30 + 70 training
 * pair carried its backlog past its window's end (fake: 6.8 of its 29.1 points ran in the neighbour's window,
 * docs/results/2026-12-06-fake-turnsplit.md), and a pessimistic average (the recent peak) left the GPU idle at the
 * windows' ends instead: the estimate has to be right, not large. The same kernels recur every step, so a launch's
 * function and grid (kern_key; a graph launch: its executable) key the GPU time its launches took alone (kt_learn: a
 * precise span of launches of one key, alone or taking turns), and a launch whose key the table knows is priced at
 * that (queued_work_ns); an unknown one at the average, as before. Only where it stops queuing: every charge is still
 * the measured span's, so an estimate too low lets a tenant queue as the average did, charged all the same. The key
 * is a 64-bit hash (0 = none): two kernels that collide share an estimate, a wrong price, never a charge. */
static inline uint64_t kern_key(const void *f, unsigned gx, unsigned gy, unsigned gz)
{
    uint64_t k = (uint64_t)(uintptr_t)f * 0x9E3779B97F4A7C15ULL;
    k ^= ((uint64_t)gx | (uint64_t)gy << 32) * 0xC2B2AE3D27D4EB4FULL + (uint64_t)gz * 0x165667B19E3779F9ULL;
    k ^= k >> 29;
    return k ? k : 1;
}

/* The table's duration of key, 0 = unknown (a few probes, no call: the launch path's). */
static inline int64_t kt_get(const struct dstate *ds, uint64_t key)
{
    unsigned i = (unsigned)(key >> 40) & (KT_SLOTS - 1);
    for (int p = 0; p < KT_PROBE; p++, i = (i + 1) & (KT_SLOTS - 1)) {
        if (ds->kt_key[i] == key)
            return ds->kt_ns[i];
        if (!ds->kt_key[i])
            return 0;
    }
    return 0;
}

/* The work still queued on the GPU, estimated: its marks not seen completed and the launches of deep runs beyond one
 * per mark (a precise mark's average is per launch: collect feeds a deep run's charge per launch), those the kernel
 * table knew when they were made at its estimate (kq_sum), the others each at the average charge per mark. */
static inline int64_t queued_work_ns(const struct dstate *ds)
{
    int64_t unk = (int64_t)ds->pending + ds->deep_extra - ds->kq_n;
    return (ds->kq_sum > 0 ? ds->kq_sum : 0) + (unk > 0 ? unk : 0) * (ds->ewma_ns ? ds->ewma_ns : 100000);
}

/* The same at the average only (before the table): owed_until's floor (a dead process's queued work). */
static inline int64_t queued_avg_ns(const struct dstate *ds)
{
    return (int64_t)(ds->pending + ds->deep_extra) * (ds->ewma_ns ? ds->ewma_ns : 100000);
}

/* What the throttle counts as in flight: the queued work and the completed spans whose charge waits (deferred). */
static inline int64_t inflight_ns(const struct dstate *ds)
{
    return queued_work_ns(ds) + ds->dfr_sum;
}

static inline int64_t harvest_gap(const struct dstate *ds)
{
    return ds->coarse ? COARSE_HARVEST_NS : HARVEST_GAP_NS;
}

/* Whether a launch (or the throttle's wait) collects completions now: once per gap, or sooner once HARVEST_MARKS
 * marks were recorded since the last collection (a launch-bound stream's marks, collected before they pile up).
 * Counted from what the last collection left, not from all pending marks: with more than 16 marks waiting on busy
 * streams every launch collected and asked every busy stream's oldest mark (issue 18: 72-133 elapsed-time calls
 * per launch with 32 busy streams on the fake), though nothing new could have completed. */
static inline int harvest_due(const struct dstate *ds, int64_t now)
{
    return now - ds->harvest_at > harvest_gap(ds) || ds->pending > ds->harvest_left + HARVEST_MARKS;
}

#endif
