/* turns.c - HAMI_SM_TURNS (on unless it is 0, since issue 18's record 9; HAMI_SM_TURNS=0 time-slices as before):
 * capped containers that are all GPU-bound on one GPU take turns instead of time-slicing.
 *
 * Why: two contexts with work queued at once time-slice the GPU, and each switch (and the caches it spoils) costs
 * GPU time: on the H100 the training pairs got 0.90-0.96 of the solo's work per charged second (docs/results/
 * 2026-12-06-h100-issue18-r6.md), the native pair 91.6 % of solo on the H200. The square waves of the throttle let
 * both tenants' on-phases overlap freely, so a contended pair time-slices most of the time.
 *
 * The rule. A process takes part (its board record carries HAMI_BREC_TURN, board.c) while it is capped, shares the
 * GPU, the GPU is contended by switch charging's rule (its demand alone plus its capped neighbours' >= 100 %,
 * launch_int.h switch_charged) and it is GPU-bound itself (its demand alone at least its limit, and twice it at
 * least the sum of the limits taking part: turn_wanted), and it stays in only while it fills the GPU in its own
 * windows (turn_judged, below).
 * With two or more taking part (its own record and the others' records, read with the rest of the board in
 * note_users), the period of TURN_PERIOD_NS on CLOCK_MONOTONIC (one clock for every process of the node: the phase
 * clock needs nothing written) is split into windows in board order, each as long as its owner's limit over the sum
 * of the limits taking part. Outside its own window a launch is held (throttle(): no new launches, as a credit wait
 * holds) while the window's owner wants the GPU: its board mark (user_active_ns, written every millisecond while it
 * launches, waits in the throttle or has work in flight: note_users, the watcher; taking turns needs a neighbour, so
 * never at the quiet pace) is at most TURN_IDLE_NS
 * old. Else it goes (work-conserving: an owner with nothing to run leaves its window to the others). Inside its own
 * window a launch goes unless the work already queued would run past the window's end (the queue drains inside its
 * own window, not in the next owner's); with nothing queued it goes. The credit is applied as always, before any of
 * this: turns only ever hold, never hand out GPU time, so limits cannot fail open. Taking turns, a tenant waits for no
 * resume credit (launch.c throttle): its window is its on-phase; with the square wave's own phase as well, an owner
 * was often off in its window and on in the others' (on the fake the pair's switch time hardly fell).
 *
 * Filling and handing over (issue 18, record 8 stage 12: on the H100 a 30 + 70 training pair taking turns kept only
 * 88-92 % of the GPU, charged 0.92-0.98, the 70 % tenant credit-held 1.1-1.4 s of 4 s while its neighbour was held by
 * its window). An owner that waits for credit with nothing of it running on the GPU (starved: its held mark fresh),
 * or whose host launched nothing for TURN_GAP_NS with nothing running (a step's host work after its sync) no longer
 * holds the others: it counted as wanting its window and the GPU idled there. A neighbour fills such a window with at
 * most TURN_FILL_NS queued, so that the owner, once back, time-slices with little (owner_wants). Before, handing a
 * credit wait's tail to the others time-sliced them again, as a waiter and a low-credit launcher both mark "held"
 * (choose_mode); "nothing running" (its published busy interval closed) tells them apart. And a new owner waits,
 * at most half its window, for the previous owner's queue to drain before its first launch: the end-of-window test
 * estimated the queue at an average per mark, which a step's phases of long and short kernels fool, and the spill
 * time-sliced with the new owner's work (fake, training-like pair: 4-6 % of the time in switches with turns on). Since
 * trainsplit the queue is priced per kernel where the duration table knows it (launch_int.h queued_work_ns): on the
 * fake 30 + 70 training pair the 30 % tenant's backlog at its window's end fell from 8.4 to 3.3 ms.
 * The credit is still applied first: a filler spends its own credit, the spill is charged to the one that spilled.
 * An owner that steps one launch at a time (a JAX-shaped loop: one matmul outstanding, its host waiting on it, then
 * ~0.15-0.35 ms of host time; its busy intervals 1-4 ms each) launches again well within TURN_GAP_NS, so its window's
 * drain gaps stayed idle (H100 record 18: the JAX pairs taking turns kept 88.8 % of the native pair's throughput);
 * jaxfill's rule lets a neighbour fill them too, with the same TURN_FILL_NS bound (owner_steps; HAMI_SM_TURN_FILL_STEPS=1,
 * off by default until the H100's A/B). A training step's interval is tens of ms: the rule leaves it to the gap rule.
 * A fill is a whole step of the filler (1.25 ms on the fake) in a gap of ~0.15 ms: the owner gives up about a step of
 * its window to it. So, with the fill on (fillside), the owner's work that waited on the GPU behind a fill in its own
 * window counts as lent for the stay test (turns_note_lent: counted idle, a filled owner was judged out within ~1 s),
 * and a tenant whose own credit chops its work fills nobody (turns_hold: one at its limit filled and was never filled,
 * and a 50 + 50 JAX pair split 27 + 52 % on the fake).
 *
 * Bounds (every value read from the board): only records count as taking part, and a record is a kernel lock that
 * a live process holds (the kernel drops a dead one's at once), so a plain board entry, forged or left by the dead,
 * takes no window. A record's limit is its highest (limit_hi, 1..100); the limits taking part must add up to at
 * most 100, else nobody takes turns (an over-committed or forged board), so each window is at least its owner's
 * limit share of the period and a holder's own window comes within one period. An owner's marks count only within
 * TURN_IDLE_NS and not more than a millisecond in the future. Beyond all that a hold lasts at most TURN_HOLD_MAX_NS
 * (200 ms), counted by turns alone (a credit wait in between ends it: throttle); one that reaches it drops turns
 * for this process for TURN_OFF_NS (logged once). A neighbour's forged busy interval or held mark can hold an owner
 * at most half its window at its start, or let a tenant into a window, where its own credit still bounds it. Launch-bound pairs
 * (demands alone adding up to less than the GPU) never take part: turn-taking once cost an inference pair 61 % of
 * its throughput.
 *
 * A launch-bound tenant beside a GPU-bound one (H100, record 9 stage 16, HAMI_SM_TURNS=1: the conformance pair, a
 * training loop + a small-batch inference loop at 50 + 50): the inference loop's demand estimate (50.4 %) reached
 * its limit, so it took part, and the stay test (half its limit) kept it in; in its window the loop left most of
 * the GPU idle (it is launch-bound), outside it it was held: charged 36.1 % (target 45), 40.3 % of its solo
 * throughput. The demand estimates cannot tell it from a GPU-bound program (paired on the H100 those read 42-83 %,
 * launch_int.h TURN_BOUND_BP; turn_wanted's limits'-sum bound keeps out a tenant busy under half the limits' sum,
 * not one ~50 % busy at 50 + 50), so what it does in its windows decides: turns_note_window
 * keeps its kernel time over its windows' time less its waits there (credit: it would fill more; turns' own holds,
 * the wait for the previous owner's spill), decaying sums over ~two periods; at the start of its window, once 20 ms
 * of its windows were measured, a share below TURN_BOUND_BP (70 %) twice in a row takes it out for 1 s, doubling
 * to 16 s while it keeps failing (turns_update; the stats line: "busy in its windows", "judged out"). turn_bp
 * cannot be the judge: outside its window a hold by turns is taken out of its time while its kernels still ran
 * there (spills, fills). Judging out only ever drops holds: limits cannot fail open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "launch_int.h"

/* The windows' owner at phase (ns into the period): the index of the window holding it, its start and end in
 * *start_ns, *end_ns. The windows follow limit[] in order, each period * limit / sum long (the last one ends at the
 * period). -1 when turns do not apply: fewer than two, a limit outside 1..100 or a sum above 100, a period or phase
 * out of range. */
static int turn_window(const int *limit, int n, int64_t period_ns, int64_t phase_ns, int64_t *start_ns,
                       int64_t *end_ns)
{
    if (n < 2 || n > HAMI_BOARD_USERS || period_ns <= 0 || period_ns > (1LL << 40) || phase_ns < 0 ||
        phase_ns >= period_ns)
        return -1;
    int sum = 0;
    for (int i = 0; i < n; i++) {
        if (limit[i] < 1 || limit[i] > 100)
            return -1;
        sum += limit[i];
    }
    if (sum > 100)
        return -1;
    int64_t start = 0;
    int acc = 0;
    for (int i = 0; i < n; i++) {
        acc += limit[i];
        int64_t end = i == n - 1 ? period_ns : period_ns * acc / sum;
        if (phase_ns >= start && phase_ns < end) {
            *start_ns = start;
            *end_ns = end;
            return i;
        }
        start = end;
    }
    return -1;
}

int hami_vgpu_turn_owner(const int *limit, int n, int64_t period_ns, int64_t phase_ns, int64_t *end_ns)
{
    int64_t start;
    return turn_window(limit, n, period_ns, phase_ns, &start, end_ns);
}

/* The time in [from, to) that falls in window w of the current turns (turn_limit, turn_n), ns; 0 when none applies.
 * The interval is at most ~1 s (update_solo_demand restarts a longer one): a few periods walked. */
static int64_t own_window_ns(const struct dstate *ds, int w, int64_t from, int64_t to)
{
    int64_t ws = 0, we = 0, period = TURN_PERIOD_NS;
    if (to <= from || to - from > 20 * period || w < 0 || w >= ds->turn_n)
        return 0;
    int sum = 0, acc = 0;
    for (int i = 0; i < ds->turn_n; i++) {
        int lim = ds->turn_limit[i];
        if (lim < 1 || lim > 100)
            return 0;
        sum += lim;
        if (i < w)
            acc += lim;
    }
    if (sum > 100)
        return 0;
    ws = period * acc / sum;
    we = w == ds->turn_n - 1 ? period : period * (acc + ds->turn_limit[w]) / sum;  /* as turn_window */
    int64_t t = 0;
    for (int64_t base = from - from % period; base < to; base += period) {
        int64_t a = base + ws > from ? base + ws : from, b = base + we < to ? base + we : to;
        t += b > a ? b - a : 0;
    }
    return t;
}

/* A wait of its launches (for credit or by turns) from a to b: the part of it inside its own windows is counted
 * (sd_own_held), which turns_note_window takes out of its windows' time. */
void turns_note_held(struct dstate *ds, int64_t a, int64_t b)
{
    if (ds->turn_n >= 2)
        ds->sd_own_held += own_window_ns(ds, ds->turn_me, a, b);
}

/* Its work's wait on the GPU from a (its submission) to b (the GPU reached it), its host launching nothing after it
 * (launch.c note_blocked; HAMI_SM_TURN_FILL_STEPS=1): the part inside its own windows counts as held for the stay
 * test, as a wait of its launches does (turns_note_held). In its own window turns let another context run only
 * where the owner left the GPU (a fill of its drain gap, owner_steps; a host gap, the gap rule) or as the previous
 * owner's spill, so work of it that waited there waited behind a neighbour that had its window, plus the switch
 * back: time it wanted and lent. Counted as busy-less window time, a stepping owner whose drain gaps were filled read
 * 52-70 % busy in its windows on the fake (JAX 30 + 70 and 50 + 50: the 1.25 ms fill still running when it launched
 * again ~0.15 ms after its drain, then the switch back) and was judged out within ~1 s in most runs; in the first half
 * of its window it waits for the fill at the host (turns_hold), which was counted already. Its own host gaps still
 * count as its windows' idle time, so a launch-bound owner reads as launch-bound as before. */
void turns_note_lent(struct dstate *ds, int64_t a, int64_t b)
{
    if (ds->turn_n >= 2 && b > a)
        ds->sd_own_held += own_window_ns(ds, ds->turn_me, a, b);
}

/* Turns' stay test's figure (update_solo_demand, each demand window [from, now) before it restarts): the busy share
 * inside its own windows while it takes turns: its kernel time k over its windows' time in the demand window less
 * the part of it its launches waited (for credit: it would fill more; by turns: a new owner waits for the previous
 * one's queue, and holds back where its own would run past its window's end: turns' doing, not its). turn_bp cannot
 * say it: outside its window the hold by turns is taken out of its time as held, while its kernels still ran there
 * (fills, spills), and the stay test read half its limit: a launch-bound loop that got in stayed. Kernels it ran
 * outside its windows (a spill, a fill) count as well: only for a GPU-bound owner are they more than a few ms a
 * period. precise_ns: the demand window's precise time (a coarse phase's share is left out, as its kernels are).
 * Decaying sums over TURN_WIN_TAU_NS (about two periods: every window of it in each); while it takes no turns nothing
 * is measured and the sums restart.
 * HAMI_SM_TURNS_COUNT_COARSE=1 (off by default, an A/B knob for the H100: issue 18, judgedout) counts its coarse
 * marks' kernels too (their estimates, kc: sd_kern_coarse) and keeps its windows' time whole: a loop ~127 marks
 * ahead of its GPU (deep runs of up to 32 launches a mark) that goes back to precise mid-window still runs its coarse
 * backlog in the precise time that follows, counted there with no kernels, and its share reads low (record 17 stage
 * 27: the training tenants judged out or reading 31-75 % in their windows measured 6.4-17.3 % of their launches
 * coarsely; fake, a ring-bound loop made to go coarse: 72-86 % by this rule, 90-100 % by the other). A coarse
 * mark's estimate is its launches' average kernel time, not its span, so a launch-bound loop's host gaps in a coarse
 * run still count as idle. Both rules' sums are kept (turn_alt_*: the one not in force) for the turns log
 * (turns_log): with the knob off the rule in force is exactly the one above. */
void turns_note_window(struct dstate *ds, int64_t from, int64_t now, int64_t precise_ns, int64_t k, int64_t kc)
{
    int64_t held = ds->sd_own_held;
    ds->sd_own_held = 0;
    if (!vg_cfg.sm_turns || ds->turn_n < 2 || now <= from) {
        ds->turn_win_k = ds->turn_win_w = 0;
        ds->turn_alt_k = ds->turn_alt_w = 0;
        ds->turn_log_kp = ds->turn_log_kc = ds->turn_log_span = ds->turn_log_prec = 0;
        ds->turn_misses = 0;
        return;
    }
    int64_t span = now - from;
    int64_t whole = own_window_ns(ds, ds->turn_me, from, now);
    whole = whole > held ? whole - held : 0;
    int64_t own = whole;
    if (precise_ns < span)
        own = (int64_t)((double)own * (precise_ns > 0 ? precise_ns : 0) / span);
    k = k < 0 ? 0 : k > span ? span : k;
    kc = kc < 0 ? 0 : kc > span ? span : kc;
    int64_t kall = k + kc < span ? k + kc : span;  /* both kinds of kernels: still at most the interval */
    int64_t prec = precise_ns < 0 ? 0 : precise_ns > span ? span : precise_ns;
    int coarse = vg_cfg.sm_turns_count_coarse;
    /* decaying sums: each value <= the interval, so the sums stay below ~TURN_WIN_TAU_NS + an interval */
    int64_t keep = span >= TURN_WIN_TAU_NS ? 0 : TURN_WIN_TAU_NS - span;
    ds->turn_win_k = ds->turn_win_k * keep / TURN_WIN_TAU_NS + (coarse ? kall : k);
    ds->turn_win_w = ds->turn_win_w * keep / TURN_WIN_TAU_NS + (coarse ? whole : own);
    ds->turn_alt_k = ds->turn_alt_k * keep / TURN_WIN_TAU_NS + (coarse ? k : kall);
    ds->turn_alt_w = ds->turn_alt_w * keep / TURN_WIN_TAU_NS + (coarse ? own : whole);
    ds->turn_log_kp = ds->turn_log_kp * keep / TURN_WIN_TAU_NS + k;
    ds->turn_log_kc = ds->turn_log_kc * keep / TURN_WIN_TAU_NS + kc;
    ds->turn_log_span = ds->turn_log_span * keep / TURN_WIN_TAU_NS + span;
    ds->turn_log_prec = ds->turn_log_prec * keep / TURN_WIN_TAU_NS + prec;
    if (ds->turn_win_w >= TURN_JUDGE_NS && vg_cfg.launch_stats) {
        int64_t bp = ds->turn_win_k * 10000 / ds->turn_win_w;
        lst.turn_win_bp = bp < 10000 ? (bp > 0 ? bp : 1) : 10000;
    }
}

static int owner_steps(const struct hami_board_gpu *g, int i, int64_t now, int self);

/* Whether this process takes part now: the GPU contended and its demand alone at least its limit (it would use its
 * whole share: a window of that share costs it nothing the limit leaves it); with hysteresis, it stays in down to
 * 90 % contended and half its limit (the demand estimate of a program with a sync every few kernels swings by tens
 * of points between updates on the fake). Its own demand is turn_bp (lending.c update_solo_demand: its waits for a
 * full mark ring count as held; a launch-bound program never fills the ring, so its figure is solo_bp's; each window
 * weighs by the time its program would have run alone in it, so the windows it spends held by the others' turns
 * count for nothing: read as 0 they pulled the estimate to about its charged share while taking turns, at the stay
 * test's edge, and the pairs went off and on, time-slicing between: H100 record 9 stage 15, fake graphs pair off 3-6
 * times in 2 s; and a window with a quiet stretch of TURN_QUIET_NS is skipped: a bench pair's ~0.5-1 s wait for its
 * start read as a demand of ~0 and kept it out of turns ~0.5 s into its window, H100 record 12); the neighbours' are
 * their published solo_bp, one taking turns at least its limit (turn_nbr_bp,
 * note_users). Taking turns, it is judged by what it does in its own windows (turn_judged). */
static int turn_wanted(const struct dstate *ds, int64_t now, int nbr_lim)
{
    if (!ds->capped || !ds->shared || ds->user_idx < 0 || now < ds->turn_off_until)
        return 0;
    /* HAMI_SM_TURNS_STEPPERS=0 (stepslice): a tenant seen stepping one launch at a time within TURN_STEPPER_KEEP_NS
     * stays out, so its pair time-slices (fake: JAX pairs kept more of the GPU time-slicing than taking turns, their
     * ~0.15 ms drain gaps idle in each owner's window). Kept a while: out of turns its steps stretch with the
     * neighbour's kernels interleaved, and its credit waits there would read as not stepping */
    if (!vg_cfg.sm_turns_steppers && ds->turn_stepper_at > 0 && now - ds->turn_stepper_at < TURN_STEPPER_KEEP_NS)
        return 0;
    int64_t own = (int64_t)vg_sm_limit(ds->dev) * 100, sum = own + (int64_t)nbr_lim * 100;
    /* busy enough for its window: in turns it gets its window (its limit over the sum of the limits taking part) at
     * its own busy fraction, so one busy under half the sum loses more there than the switches it saves (fake, a
     * tenant 43 % busy alone at 30 % beside a GPU-bound 70 %: 15.1-15.7 % of the GPU time-slicing, 10.9-12.1 % in
     * turns). The wall-weighted estimate read ~its window share x its busy fraction while in turns, so "2 x
     * estimate >= limit" held exactly this bound; the estimate reads its busy fraction now (lending.c), so the
     * bound is written out, with 5 points of hysteresis to enter. nbr_lim: the limits of the neighbours taking
     * turns (their records), 0 when none: the pair's first to enter is bound by its own limit alone, as before */
    if (ds->turn_want)
        return ds->turn_bp + ds->turn_nbr_bp >= TURN_STAY_BP && 2 * ds->turn_bp >= own && 2 * ds->turn_bp >= sum;
    return ds->turn_bp + ds->turn_nbr_bp >= 10000 && ds->turn_bp >= own &&  /* not contended: launch-bound pairs overlap */
           2 * ds->turn_bp >= sum + TURN_ENTER_MARGIN_BP;
}

/* Taking turns, whether it fills the GPU in its own windows: -1 not judged now, 1 busy at least TURN_BOUND_BP there,
 * 0 not: a launch-bound loop leaves most of its window idle and is held outside it (launch_int.h: the H100's
 * figures). Its demand estimate could not tell (launch_int.h), and turn_bp while it takes turns is its in-window
 * share at best (turns_note_window). Judged only within TURN_JUDGE_EDGE_NS of its own window's start, once at least
 * TURN_JUDGE_NS of its windows were measured (out after TURN_MISSES misses in a row: turns_update): its kernels are counted when charged, some ms after they ran (harvests,
 * deferred charges), and judged mid-window a tenant busy all along read 59-65 % on the fake (two in three of its
 * windows' time measured, its kernels of the last ms not yet). At a window's start its earlier windows are all
 * counted (their last kernels ran in its neighbour's window) and the new one has barely begun. */
static int turn_judged(const struct dstate *ds, int64_t now, int64_t *win_at)
{
    if (ds->turn_n < 2 || ds->turn_win_w < TURN_JUDGE_NS)
        return -1;
    int64_t start = 0, end = 0, phase = now % TURN_PERIOD_NS;
    if (turn_window(ds->turn_limit, ds->turn_n, TURN_PERIOD_NS, phase, &start, &end) != ds->turn_me ||
        phase - start > TURN_JUDGE_EDGE_NS)
        return -1;
    *win_at = now - (phase - start);  /* once a window (turns_update runs every ms) */
    if (*win_at == ds->turn_judge_win)
        return -1;
    return ds->turn_win_k * 10000 >= (int64_t)TURN_BOUND_BP * ds->turn_win_w;
}

static void turns_update_windows(struct dstate *ds, const struct vg_brec *rec, int rk);

/* HAMI_SM_TURNS_LOG=<absolute path> (a bench diagnostic, off unless set): one line per stay-test judgement
 * (turns_update) into <path>.<pid>, so a GPU run says what each figure was made of where a tenant was judged in or out
 * (issue 18, judgedout: the exit line keeps only the last figure, and record 17's training tenants read 31-75 % in
 * their windows with 6-17 % of their launches coarse). Opened once at init (vg_config_load); each line is one
 * write() of a stack buffer (no allocation where the launch path runs note_users) on a descriptor opened O_NONBLOCK
 * and O_APPEND (a pipe or FIFO that is full loses the line rather than holding a launch); at most TURN_LOG_LINES
 * lines a process (a judgement a window: ~10 a second, ~30 minutes of turns), then one line saying so. A failed
 * write is not retried: the log is a diagnostic, nothing reads it back. */
#define TURN_LOG_LINES 20000
static int tlog_fd = -1;
static int tlog_lines;

void vg_turns_log_open(const char *path)
{
    if (!path || !*path || tlog_fd >= 0)
        return;
    if (path[0] != '/' || strlen(path) > 400) {
        vg_log(VG_WARN, "ignoring HAMI_SM_TURNS_LOG=\"%.64s\": expected an absolute path of at most 400 characters; "
                        "no turns log", path);
        return;
    }
    char name[448];
    snprintf(name, sizeof(name), "%s.%d", path, (int)getpid());
    int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        vg_log(VG_WARN, "ignoring HAMI_SM_TURNS_LOG=\"%.64s\": cannot open %.200s (%s); no turns log", path, name,
               strerror(errno));
        return;
    }
    char head[320];
    int len = snprintf(head, sizeof(head), "# hami-vgpu turns log: pid %d, HAMI_SM_TURNS_COUNT_COARSE=%d, at most %d "
                       "lines; a line per stay-test judgement (turns.c turns_log)\n", (int)getpid(),
                       vg_cfg.sm_turns_count_coarse, TURN_LOG_LINES);
    if (len > 0 && len < (int)sizeof(head) && write(fd, head, (size_t)len) != len) {
        vg_log(VG_WARN, "ignoring HAMI_SM_TURNS_LOG=\"%.64s\": cannot write %.200s; no turns log", path, name);
        close(fd);
        return;
    }
    tlog_fd = fd;
    vg_log(VG_MSG, "HAMI_SM_TURNS_LOG: a line per stay-test judgement into %s", name);
}

/* x / w in 1/100 %, 0 when w is not positive. */
static int64_t bp_of(int64_t x, int64_t w)
{
    return w > 0 ? x * 10000 / w : 0;
}

/* One judgement (turns_update): CLOCK_MONOTONIC ns; the tenant (pid, device, board slot, its limit, the participants);
 * the figure judged (busy_bp, 1/100 %) and its terms (k_ns over own_ns: the decaying sums of turns_note_window by the
 * rule in force), the same by the other rule (alt_*), what they are made of over the same decaying horizon (its precise
 * kernels kp_ns, its coarse marks' estimates kc_ns, the demand windows' precise share prec_bp), the verdict (in: busy
 * at least TURN_BOUND_BP; miss: below it, not yet out; out: judged out) and the misses in a row so far. */
static void turns_log(const struct dstate *ds, int64_t now, const char *verdict, int misses)
{
    if (tlog_fd < 0 || __atomic_load_n(&tlog_lines, __ATOMIC_RELAXED) > TURN_LOG_LINES)
        return;  /* capped: the count stops here (it never wraps however long the process runs) */
    int n = __atomic_add_fetch(&tlog_lines, 1, __ATOMIC_RELAXED);
    if (n > TURN_LOG_LINES + 1)
        return;
    char buf[512];
    int len;
    if (n == TURN_LOG_LINES + 1)
        len = snprintf(buf, sizeof(buf), "# capped at %d lines: no more judgements logged\n", TURN_LOG_LINES);
    else
        len = snprintf(buf, sizeof(buf), "t_ns=%lld pid=%d dev=%d slot=%d lim=%d n=%d busy_bp=%lld k_ns=%lld own_ns=%lld "
                       "alt_bp=%lld alt_k_ns=%lld alt_own_ns=%lld kp_ns=%lld kc_ns=%lld prec_bp=%lld verdict=%s "
                       "misses=%d coarse_rule=%d\n", (long long)now, (int)getpid(), ds->dev, ds->user_idx,
                       vg_sm_limit(ds->dev), ds->turn_n, (long long)bp_of(ds->turn_win_k, ds->turn_win_w),
                       (long long)ds->turn_win_k, (long long)ds->turn_win_w,
                       (long long)bp_of(ds->turn_alt_k, ds->turn_alt_w), (long long)ds->turn_alt_k,
                       (long long)ds->turn_alt_w, (long long)ds->turn_log_kp, (long long)ds->turn_log_kc,
                       (long long)bp_of(ds->turn_log_prec, ds->turn_log_span), verdict, misses,
                       vg_cfg.sm_turns_count_coarse);
    if (len > 0 && len < (int)sizeof(buf)) {
        ssize_t w = write(tlog_fd, buf, (size_t)len);
        (void)w;
    }
}

/* HAMI_SM_TURNS_LOG: a line each time turns come on or go off for this process (turns_update; issue 18, trainloss: the
 * exit line's "turns on" and "first on after" count over the process's life, the warm-up and a bench pair's idle wait
 * before its window included, and could not say when in the measured window turns came on or went off). A '#' line,
 * which readers of the judgements skip (bench/turns_log.py): the time (CLOCK_MONOTONIC, as the judgements'), on or off,
 * the participants, and what turn_wanted read (want, capped, shared, its turns estimate and its neighbours', the
 * limits of the neighbours taking part, whether a back-off holds it out). Bounded as the judgements are. */
static void turns_log_edge(const struct dstate *ds, int64_t now, int on, int nbr_lim)
{
    if (tlog_fd < 0 || __atomic_load_n(&tlog_lines, __ATOMIC_RELAXED) >= TURN_LOG_LINES)
        return;  /* the judgements' cap: the "capped" line is theirs to write */
    __atomic_add_fetch(&tlog_lines, 1, __ATOMIC_RELAXED);
    char buf[256];
    int len = snprintf(buf, sizeof(buf), "# edge t_ns=%lld pid=%d dev=%d turns=%s n=%d want=%d capped=%d shared=%d "
                       "turn_bp=%lld nbr_bp=%lld nbr_lim=%d backoff=%d\n", (long long)now, (int)getpid(), ds->dev,
                       on ? "on" : "off", ds->turn_n, ds->turn_want, ds->capped, ds->shared, (long long)ds->turn_bp,
                       (long long)ds->turn_nbr_bp, nbr_lim, now < ds->turn_off_until);
    if (len > 0 && len < (int)sizeof(buf)) {
        ssize_t w = write(tlog_fd, buf, (size_t)len);
        (void)w;
    }
}

/* Who takes turns on this GPU now and in which order (note_users, every millisecond, with the records rk >= 0 it
 * read): ds->turn_n participants (0: no turns), their board slots and limits, its own index turn_me. */
void turns_update(struct dstate *ds, const struct vg_brec *rec, int rk, int64_t now)
{
    if (!vg_cfg.sm_turns)
        return;
    if (ds->turn_n >= 2 && ds->turn_seen_at && now > ds->turn_seen_at)
        lst_add(&lst.turn_on_ns, now - ds->turn_seen_at);
    ds->turn_seen_at = now;
    int nbr_lim = 0;  /* the limits of the neighbours taking turns (their records: 1..100 each, board.c) */
    for (int i = 0; rk >= 0 && i < HAMI_BOARD_USERS; i++)
        if (i != ds->user_idx && rec[i].present && !rec[i].bad && rec[i].turns)
            nbr_lim += rec[i].limit_hi;
    if (!vg_cfg.sm_turns_steppers && ds->bgpu && ds->user_idx >= 0 && owner_steps(ds->bgpu, ds->user_idx, now, 1))
        ds->turn_stepper_at = now;  /* its own ring (HAMI_SM_TURNS_STEPPERS=0: turn_wanted) */
    ds->turn_want = turn_wanted(ds, now, nbr_lim);
    int was = ds->turn_n;
    int64_t win_at = 0;
    int judged = ds->turn_want ? turn_judged(ds, now, &win_at) : -1;
    if (judged >= 0) {  /* a miss must repeat at its next window's start: one window is a small sample (a 30 % tenant's
                         * 30 ms, a neighbour's spill in it), and a GPU-bound one at 30 + 70 was once judged out (fake) */
        ds->turn_judge_win = win_at;
        ds->turn_misses = judged ? 0 : ds->turn_misses + 1;
        turns_log(ds, now, judged ? "in" : ds->turn_misses >= turn_misses() ? "out" : "miss", ds->turn_misses);
    }
    if (judged == 0 && ds->turn_misses >= turn_misses()) {  /* HAMI_SM_TURN_MISSES */
        ds->turn_misses = 0;
        /* judged out: no turns for a back-off that doubles each time (a launch-bound loop that its demand estimate
         * lets back in spends ~1-4 % of its time in turns at the longest) and restarts once it passes */
        int64_t off = ds->turn_bound_off ? ds->turn_bound_off : TURN_BOUND_OFF_NS;
        vg_log_once(VG_INFO, "turns-bound", "device %d: HAMI_SM_TURNS: busy %.1f %% in its own windows (< %d %%: "
                                            "launch-bound): no turns for %.0f s, longer each time", ds->dev,
                    ds->turn_win_k * 100.0 / ds->turn_win_w, TURN_BOUND_BP / 100, off / 1e9);
        ST_COUNT(turn_outs);
        ds->turn_off_until = now + off;
        ds->turn_bound_off = 2 * off < TURN_BOUND_OFF_MAX_NS ? 2 * off : TURN_BOUND_OFF_MAX_NS;
        ds->turn_want = 0;
    } else if (judged == 1) {
        ds->turn_bound_off = 0;  /* it fills its windows: a later judgement out starts from the shortest back-off */
    }
    ds->turn_n = 0;
    if (ds->capped && ds->shared && !ds->turn_since)
        ds->turn_since = now;  /* the warm-up's start: from here to the first window (the launch stats) */
    turns_update_windows(ds, rec, rk);
    if (vg_cfg.launch_stats && ds->turn_n >= 2 && lst.turn_first_ns < 0 && ds->turn_since)
        lst.turn_first_ns = now - ds->turn_since;
    if (vg_cfg.launch_stats && was >= 2 && ds->turn_n < 2)
        __atomic_add_fetch(&lst.turn_offs, 1, __ATOMIC_RELAXED);
    if ((was >= 2) != (ds->turn_n >= 2))
        turns_log_edge(ds, now, ds->turn_n >= 2, nbr_lim);
}

/* turns_update's participants (see there): ds->turn_n, turn_slot, turn_limit, turn_me. */
static void turns_update_windows(struct dstate *ds, const struct vg_brec *rec, int rk)
{
    if (!ds->turn_want || rk < 0)
        return;
    int n = 0, sum = 0;
    for (int i = 0; i < HAMI_BOARD_USERS; i++) {
        int lim;
        if (i == ds->user_idx) {
            lim = vg_sm_limit(ds->dev);
            ds->turn_me = n;
        } else if (rec[i].present && !rec[i].bad && rec[i].turns) {
            lim = rec[i].limit_hi;
        } else {
            continue;
        }
        ds->turn_slot[n] = i;
        ds->turn_limit[n++] = lim;
        sum += lim;
    }
    if (n >= 2 && sum > 100) {
        vg_log_once(VG_WARN, "turns-over", "device %d: HAMI_SM_TURNS: the limits taking turns add up to %d %% (> 100: "
                                           "over-committed or forged board): no turns while they do", ds->dev, sum);
        return;
    }
    ds->turn_n = n >= 2 ? n : 0;
}

/* Whether board slot i has work running on the GPU now: its published busy interval is open (publish, launch.c) and
 * its holder saw it running within TURN_RUN_NS (user_open_ns, refreshed by its harvests while the work runs; readers
 * count an open interval busy only up to there). An open interval alone read stale at times on the fake (a 30 + 70
 * pair once lost 7-8 % of the GPU to a new owner waiting on it). Board values: a forged one can hold a new owner at
 * most half its window (turns_hold). */
static int running(const struct hami_board_gpu *g, int i, int64_t now)
{
    int64_t since = __atomic_load_n(&g->user_since_ns[i], __ATOMIC_ACQUIRE);
    if (since <= 0 || __atomic_load_n(&g->user_busy_ns[i], __ATOMIC_ACQUIRE) >= since)
        return 0;
    int64_t seen = __atomic_load_n(&g->user_open_ns[i], __ATOMIC_ACQUIRE);
    seen = seen > since ? seen : since;
    return seen <= now + 1000000 && now - seen <= TURN_RUN_NS;
}

/* Whether the container in board slot i wants the GPU now (see the header): 0 when its activity mark is stale; -1
 * when its window may be filled: no mark for TURN_GAP_NS (a step's host work after its sync); -2 when a stepping
 * owner's work drained (owner_steps): it may be filled by a neighbour whose own credit does not chop its work
 * (turns_hold); 2 when it wants it and steps one launch at a time (its drain gap comes soon); else 1.
 * Its marks come from its launches (turns_hold: at least every TURN_ACT_NS while it takes turns), its watcher while work of it is
 * in flight (every 100 us) and its credit waits (note_users: every ms), so a gap of TURN_GAP_NS is its host's.
 * HAMI_SM_TURN_GAP_US sets the gap (turn_gap_ns: bounded above those refreshes, under TURN_IDLE_NS). */

static int owner_wants(const struct hami_board_gpu *g, int i, int64_t now)
{
    int64_t act = __atomic_load_n(&g->user_active_ns[i], __ATOMIC_ACQUIRE);
    if (!(act > 0 && act <= now + 1000000 && now - act <= TURN_IDLE_NS))
        return 0;
    if (now - act >= turn_gap_ns())
        return -1;
    int steps = vg_cfg.sm_turn_fill_steps ? owner_steps(g, i, now, 0) : 0;
    return steps == 1 ? -2 : steps == 2 ? 2 : 1;
}

/* Whether the owner in board slot i steps one launch at a time: 1 with its work drained now, so that its window may be
 * filled, 2 with a step of it running now (the neighbour asks again within TURN_STEP_POLL_NS: the gap is short), 0
 * neither (HAMI_SM_TURN_FILL_STEPS, off unless 1; issue 18 jaxfill). A JAX-shaped loop (one matmul outstanding, a
 * block_until_ready a step, ~0.15-0.35 ms of host time before the next launch) marks itself every 100 us while its
 * kernel runs and launches again within TURN_GAP_NS, so the gap rule never lets a neighbour in: the GPU idled in
 * its window for each step's host gap (H100 record 18: the JAX pair taking turns kept 88.8 % of the native pair's
 * throughput, natively the two interleave in each other's gaps). A training loop's host gap after its sync looks
 * the same from its marks, but its busy interval is a whole step (tens of ms of work queued ahead): filling its
 * short gap would delay a long step for little (turnloss: a shorter gap for everyone cost the training pairs 0.8-1.5
 * points). So: its published interval closed (nothing of it on the GPU) no longer than turn_gap_ns() ago, and its
 * last TURN_STEP_RUNS closed intervals (the board's ring) each TURN_STEP_MIN_NS to TURN_STEP_BUSY_NS long and at most
 * TURN_STEP_BUSY_NS apart (the intervals are its kernels' GPU times: a fill between two steps widens the gap by the
 * fill and two switches; a limit of turn_gap_ns() there let only ~1 gap in 5 be filled on the fake). The floor keeps
 * a fill's two switches a small part of a step: the H100's CUDA-graphs replays (~0.09 ms a step) time-sliced at 59 %
 * of solo, and filling their gaps would time-slice them again. The neighbour then goes with at most TURN_FILL_NS
 * queued (turns_hold); the owner, back in the first half of its window, waits for the fill as for a spill, asking
 * again within TURN_STEP_POLL_NS (others_running), later in its window it queues behind it, as natively. Board values,
 * each bounded: a ring slot being rewritten (until 0), an interval out of order, in the future or out of the bounds
 * says no; a forged ring can let a neighbour into a window only where its own credit still bounds it, as the gap
 * rule's forged marks can. An owner that waited for credit (or asked with low credit) within TURN_STEP_HELD_NS is not
 * stepping: its credit chops its work into short intervals (the fake's GPU-bound pair at 50 + 50, 2 ms kernels and a
 * sync every 4, read as stepping and switched more), and its waits with nothing running are the starved rule's.
 * self: this process's own slot (HAMI_SM_TURNS_STEPPERS=0, turns_update): whether it steps, not whether its gap is
 * open now, so its last interval may have closed up to TURN_STEP_BUSY_NS ago, and the credit test asks only for no
 * credit wait since the oldest interval read began (at its limit time-slicing, a JAX tenant waits for credit between
 * its square wave's on-phases, and steps freely within them); the ring's own tests are the same. */
static int owner_steps(const struct hami_board_gpu *g, int i, int64_t now, int self)
{
    int64_t since = __atomic_load_n(&g->user_since_ns[i], __ATOMIC_ACQUIRE);
    int64_t end = __atomic_load_n(&g->user_busy_ns[i], __ATOMIC_ACQUIRE);
    if (since <= 0 || since > now + 1000000)
        return 0;  /* none ever, or forged */
    int open = end < since;
    int64_t closed_max = self ? TURN_STEP_BUSY_NS : turn_gap_ns();  /* how long ago its last interval may have closed */
    if (open ? now - since > TURN_STEP_BUSY_NS : end > now + 1000000 || now - end > closed_max)
        return 0;  /* a long interval running (a step of tens of ms), or drained long ago (the gap rule's case) */
    int64_t held = __atomic_load_n(&g->user_held_ns[i], __ATOMIC_ACQUIRE);
    if (!self && held > 0 && held <= now + 1000000 && now - held < TURN_STEP_HELD_NS)
        return 0;  /* its credit chops its work (a GPU-bound loop at its limit): not stepping; the starved rule's case */
    uint32_t head = __atomic_load_n(&g->user_recent_head[i], __ATOMIC_ACQUIRE);
    int64_t later = open ? since : now;  /* the start of the interval after the one read (now: the gap so far) */
    for (int k = 1; k <= TURN_STEP_RUNS; k++) {
        uint32_t slot = (head - (uint32_t)k) % HAMI_BOARD_RECENT;
        int64_t u = __atomic_load_n(&g->user_recent_until[i][slot], __ATOMIC_ACQUIRE);
        int64_t s = __atomic_load_n(&g->user_recent_since[i][slot], __ATOMIC_ACQUIRE);
        if (k == 1 && !open && u != end)
            return 0;  /* the ring not yet written for the closed interval (or rewritten meanwhile) */
        if (u <= 0 || s <= 0 || u > later || u - s < TURN_STEP_MIN_NS || u - s > TURN_STEP_BUSY_NS ||
            later - u > TURN_STEP_BUSY_NS)
            return 0;
        later = s;
    }
    if (self && held > 0 && held >= later)
        return 0;  /* a credit wait (or a low-credit ask) since its oldest step read: its credit may be what chops its
                    * work (fake, a training 30 + 70 pair: the 30 % tenant read as stepping and the pair time-sliced) */
    return open ? 2 : 1;
}

/* A hold by turns ends: counted for the launch stats (how long, the longest). throttle() calls it as well when a
 * credit wait takes over from a hold (or it returns another way): the hold's clock then ran on through the credit
 * wait, and "longest" read 245.6 ms on the H100 (record 8) though TURN_HOLD_MAX_NS is 200 ms, the credit wait and the
 * hold counted as one (and the cut could come for time a credit wait held it). */
void turns_hold_ends(struct dstate *ds, int64_t now)
{
    if (ds->turn_from && now > ds->turn_from) {
        int64_t held = now - ds->turn_from;
        lst_add(&lst.turn_ns, held);
        if (vg_cfg.launch_stats && held > lst.turn_max_ns)
            lst.turn_max_ns = held;
    }
    ds->turn_from = 0;
}

/* Whether another participant's work is still running on the GPU: 1 the previous owner's spill (or any, with
 * HAMI_SM_TURN_FILL_STEPS=0), 2 only work whose busy interval began inside its window (win_at: its start), a fill of
 * its drain gap (owner_steps): the owner waits for it as for a spill (its wait is taken out of its windows' time for
 * the stay test, turns_note_held: queued behind fills, a JAX-shaped owner read 70-77 % busy in its windows on the fake
 * and was judged out), asking again within TURN_STEP_POLL_NS (a fill is one kernel of a stepping neighbour). */
static int others_running(const struct dstate *ds, int64_t now, int64_t win_at)
{
    int fill = 0;
    for (int k = 0; k < ds->turn_n; k++) {
        if (k == ds->turn_me || !running(ds->bgpu, ds->turn_slot[k], now))
            continue;
        if (!vg_cfg.sm_turn_fill_steps ||
            __atomic_load_n(&ds->bgpu->user_since_ns[ds->turn_slot[k]], __ATOMIC_ACQUIRE) < win_at)
            return 1;
        fill = 2;
    }
    return fill;
}

/* 0 when a launch that its credit lets go may go now by turns; else how long to hold before asking again. */
int64_t turns_hold(struct dstate *ds, int64_t now)
{
    if (ds->turn_n >= 2 && ds->bgpu && ds->user_idx >= 0 && now - ds->act_at >= TURN_ACT_NS) {
        ds->act_at = now;  /* launching: fresh within TURN_ACT_NS, so a host gap shows soon (owner_wants) */
        __atomic_store_n(&ds->bgpu->user_active_ns[ds->user_idx], now, __ATOMIC_RELEASE);
    }
    int64_t start = 0, end = 0, phase = now % TURN_PERIOD_NS;
    int w = ds->turn_n >= 2 && ds->bgpu
                ? turn_window(ds->turn_limit, ds->turn_n, TURN_PERIOD_NS, phase, &start, &end)
                : -1;
    int hold = 0, fast = 0;
    int spill = w == ds->turn_me && phase - start < (end - start) / 2 ? others_running(ds, now, now - (phase - start)) : 0;
    if (spill) {
        /* the first half of its window, the previous owner's queue still running: launching now would time-slice
         * with it (the owner's end-of-window test estimates its queue at its average per mark, and a training
         * step's phases of long and short kernels fool it: on the fake the spill kept a training-like pair
         * time-slicing 4-6 % of the time with turns on). Half the window at most: a neighbour's board values
         * (forged, or a spill that long) cannot take more of it; its credit charges the spill to the neighbour. */
        hold = 1;
        fast = spill == 2;  /* a fill: one kernel of a stepping neighbour */
    } else if (w == ds->turn_me) {
        /* its queue would run into the next window: the work still queued only. inflight_ns adds the completed
         * spans whose charge waits (deferred_charge, ~5 ms): counted, an owner that keeps ~127 launches queued (the
         * training loop's shape) stopped ~5 ms before each window's end and the GPU idled there (fake: a loop pair
         * taking turns kept 89.7-91.1 % of the GPU, time-slicing 89.3-92.5 %) */
        hold = ds->pending && phase + queued_work_ns(ds) >= end;
    } else if (w >= 0) {
        int want = owner_wants(ds->bgpu, ds->turn_slot[w], now);
        if (want == -2 && ds->held_wrote > 0 && now - ds->held_wrote < TURN_STEP_HELD_NS)
            want = 2;  /* its own credit chops its work: it fills no stepping owner's gap (owner_wants) */
        /* a starved owner's window: go, with at most TURN_FILL_NS queued. A stepping owner's drain gap (-2) only
         * while this process's own credit does not chop its work (no held mark of it within TURN_STEP_HELD_NS, the
         * owner's own test in owner_steps, on its own clock): fillside. A fill is a whole step of the filler (a JAX
         * matmul, 1.25 ms on the fake) in a gap of ~0.15 ms, so the owner gives up about a step of its window to it;
         * one at its limit could fill and never be filled (owner_steps: not stepping), and the fills went one way.
         * Fake, JAX 50 + 50 kept in turns (turns_note_lent): 27 + 52 % of the GPU, the tenant at 27 % not held by its
         * credit at all; with this rule 40 + 41 (no fill: 40 + 40); 30 + 70: 28.0 + 47.5 -> 27.5 + 52.9 (no fill:
         * 23.8 + 55.2) */
        hold = want > 0 || (want < 0 && ds->pending && queued_work_ns(ds) >= TURN_FILL_NS);
        fast = want == 2;  /* a stepping owner's step running: its drain gap (~0.15-0.35 ms) comes within ~2 ms */
    }
    if (!hold) {
        turns_hold_ends(ds, now);
        return 0;
    }
    if (!ds->turn_from) {
        ds->turn_from = now;
        ST_COUNT(turn_holds);
    } else if (now - ds->turn_from >= TURN_HOLD_MAX_NS) {
        vg_log_once(VG_WARN, "turns-cut", "device %d: HAMI_SM_TURNS: held %.0f ms by another container's window: going, "
                                          "no turns for %.0f s (a stuck or forged board)", ds->dev,
                    (now - ds->turn_from) / 1e6, TURN_OFF_NS / 1e9);
        ST_COUNT(turn_cuts);
        ds->turn_off_until = now + TURN_OFF_NS;
        ds->turn_n = 0;
        ds->turn_want = 0;
        turns_hold_ends(ds, now);
        return 0;
    }
    int64_t wait = end - phase;
    if (fast && wait > TURN_STEP_POLL_NS)
        wait = TURN_STEP_POLL_NS;
    return wait < 20000 ? 20000 : wait;
}
