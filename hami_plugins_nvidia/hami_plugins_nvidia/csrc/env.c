/* env.c - HAMi-compatible configuration from the environment, read once per process. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "vgpu.h"

struct vg_config vg_cfg;
extern int vg_log_level;

int64_t vg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* "1073741824", "4g", "3000m", "512k" (1024-based, case-insensitive). Returns 1 on success. */
int hami_vgpu_parse_size(const char *text, uint64_t *out)
{
    if (!text || !*text)
        return 0;
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno == ERANGE)
        return 0;  /* does not fit in 64 bits: never read as "the largest number" */
    uint64_t mul = 1;
    switch (tolower((unsigned char)*end)) {
    case 'k': mul = 1ULL << 10; end++; break;
    case 'm': mul = 1ULL << 20; end++; break;
    case 'g': mul = 1ULL << 30; end++; break;
    case 't': mul = 1ULL << 40; end++; break;
    default: break;
    }
    if (mul > 1 && (*end == 'b' || *end == 'B' || *end == 'i'))
        end += (*end == 'i' && (end[1] == 'b' || end[1] == 'B')) ? 2 : 1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0' || (v && mul > VG_LIMIT_MAX / v) || v * mul > VG_LIMIT_MAX)
        return 0;
    *out = v * mul;
    return 1;
}

/* An integer in [lo, hi] and nothing else; says nothing (the caller's line does). */
static int int_in(const char *text, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return 0;
    *out = (int)v;
    return 1;
}

/* Limits (the SM share) are refused with the strictest value; tuning knobs fall back to their default.
 * Either way the caller's one line names the variable and the value. */
static int parse_int(const char *name, const char *text, int lo, int hi, int *out)
{
    if (!int_in(text, lo, hi, out)) {
        int limit = !strncmp(name, "CUDA_DEVICE_SM_LIMIT", 20);
        vg_log(limit ? VG_ERROR : VG_WARN, "%s %s=\"%.64s\": expected an integer in [%d, %d]%s",
               limit ? "refusing" : "ignoring", name, text, lo, hi,
               limit ? "; the strictest share (1%) applies until it is fixed" : "");
        return 0;
    }
    return 1;
}

/* A flag's text: 1 for "1", "true" or "yes", 0 for "0", "false" or "no" (case aside), -1 for anything else */
static int flag_value(const char *text)
{
    if (!strcmp(text, "1") || !strcasecmp(text, "true") || !strcasecmp(text, "yes"))
        return 1;
    if (!strcmp(text, "0") || !strcasecmp(text, "false") || !strcasecmp(text, "no"))
        return 0;
    return -1;
}

/* An on/off flag: unset or empty, off; any other text than flag_value's is named in one warning with what applies
 * instead (bad_value: 1 where the flag is a safety one that fails closed, HAMI_PROC_CENSUS_REQUIRED; 0 elsewhere,
 * where off is the safe side: CUDA_DISABLE_CONTROL keeps every limit), never read silently as off */
static int flag_knob(const char *name, int bad_value)
{
    const char *text = getenv(name);
    if (!text || !*text)
        return 0;
    int v = flag_value(text);
    if (v >= 0)
        return v;
    vg_log(VG_WARN, "ignoring %s=\"%.64s\": expected 1 or 0 (true/false, yes/no); %s", name, text,
           bad_value ? "it is on" : "it is off");
    return bad_value;
}

/* A tuning knob (an A/B knob for the hardware runs): unset or empty, its default; out of [lo, hi] or not an integer,
 * one warning naming it, its value, the range and what it counts (unit), and the default */
static int tuning_knob(const char *name, int lo, int hi, int dflt, const char *unit)
{
    int v = dflt;
    const char *text = getenv(name);
    if (text && *text && !int_in(text, lo, hi, &v)) {
        vg_log(VG_WARN, "ignoring %s=\"%.64s\": expected an integer in [%d, %d] (%s); using %d", name, text, lo, hi,
               unit, dflt);
        v = dflt;
    }
    return v;
}

/* A switch (an A/B knob for the hardware runs): exactly "0" or "1"; unset or empty, its default; anything else, one
 * warning naming it, its value, what unset means (unset_means, after "unset: ") and what is kept (kept), and the
 * default */
static int switch_knob(const char *name, int dflt, const char *unset_means, const char *kept)
{
    const char *text = getenv(name);
    if (!text || !*text)
        return dflt;
    if (!strcmp(text, "0") || !strcmp(text, "1"))
        return text[0] - '0';
    vg_log(VG_WARN, "ignoring %s=\"%.64s\": expected 1 or 0 (unset: %s); %s", name, text, unset_means, kept);
    return dflt;
}

/* A memory limit that cannot be read is refused, never read as "no limit": the device then allocates
 * nothing (VG_LIMIT_REFUSE) and one line names the variable and the value. A bad per-device value
 * falls back to a valid global one. */
static void load_mem_limits(void)
{
    uint64_t global = 0;
    int global_bad = 0;
    const char *g = getenv("CUDA_DEVICE_MEMORY_LIMIT");
    if (g && *g && !hami_vgpu_parse_size(g, &global)) {
        vg_log(VG_ERROR, "refusing CUDA_DEVICE_MEMORY_LIMIT=\"%.64s\" (expected bytes or a number with k/m/g, at "
                         "most 64 PiB): no device memory is allocatable until it is fixed", g);
        global = VG_LIMIT_REFUSE;
        global_bad = 1;
    }
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        char name[64];
        snprintf(name, sizeof(name), "CUDA_DEVICE_MEMORY_LIMIT_%d", i);
        const char *v = getenv(name);
        uint64_t lim = global;
        if (v && *v && !hami_vgpu_parse_size(v, &lim)) {
            lim = global && !global_bad ? global : VG_LIMIT_REFUSE;
            vg_log(VG_ERROR, "refusing %s=\"%.64s\" (expected bytes or a number with k/m/g, at most 64 PiB): %s",
                   name, v, lim == VG_LIMIT_REFUSE ? "no memory is allocatable on that device"
                                                   : "the CUDA_DEVICE_MEMORY_LIMIT value applies");
        }
        vg_cfg.mem_limit[i] = lim;
    }
}

/* An SM limit that cannot be read is refused, never read as "no limit": the device gets the strictest
 * share (1 %) and one line says so. 0 and 100 mean no limit, as in HAMi. */
static void load_sm_limits(void)
{
    int global = 100;
    const char *g = getenv("CUDA_DEVICE_SM_LIMIT");
    if (g && *g && !parse_int("CUDA_DEVICE_SM_LIMIT", g, 0, 100, &global))
        global = 1;
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        char name[64];
        snprintf(name, sizeof(name), "CUDA_DEVICE_SM_LIMIT_%d", i);
        const char *v = getenv(name);
        int lim = global;
        if (v && *v && !parse_int(name, v, 0, 100, &lim))
            lim = 1;
        if (lim <= 0 || lim >= 100 || vg_cfg.core_policy == VG_POLICY_DISABLE)
            lim = 100;
        vg_cfg.sm_limit[i] = lim;
    }
}

void vg_config_load(void)
{
    const char *lvl = getenv("LIBCUDA_LOG_LEVEL");
    if (lvl && *lvl) {
        int v;
        if (parse_int("LIBCUDA_LOG_LEVEL", lvl, 0, 4, &v))
            vg_log_level = v;
    }
    vg_cfg.disabled = flag_knob("CUDA_DISABLE_CONTROL", 0);
    const char *pol = getenv("GPU_CORE_UTILIZATION_POLICY");
    vg_cfg.core_policy = VG_POLICY_DEFAULT;
    if (pol && !strcasecmp(pol, "disable"))
        vg_cfg.core_policy = VG_POLICY_DISABLE;
    else if (pol && !strcasecmp(pol, "force"))
        vg_cfg.core_policy = VG_POLICY_FORCE;
    else if (pol && *pol && strcasecmp(pol, "default"))
        vg_log(VG_WARN, "ignoring GPU_CORE_UTILIZATION_POLICY=\"%.64s\": expected default, force or disable; "
                        "using default", pol);
    load_mem_limits();
    load_sm_limits();
    const char *sh = getenv("HAMI_SM_SHARING");
    if (sh && *sh)  /* the gate and overlap modes were replaced by processor-sharing charges */
        vg_log(VG_WARN, "HAMI_SM_SHARING=\"%.64s\" is obsolete and ignored: containers share the GPU by "
                        "processor-sharing charges", sh);
    vg_cfg.priority = 1;
    const char *pr = getenv("CUDA_TASK_PRIORITY");
    if (pr && *pr && parse_int("CUDA_TASK_PRIORITY", pr, 0, HAMI_PRIORITY_LEVELS - 1, &vg_cfg.priority))
        vg_cfg.priority_set = vg_cfg.priority_env = 1;
    for (int i = 0; i < HAMI_MAX_DEVICES; i++)
        if (vg_cfg.sm_limit[i] < 100)
            vg_cfg.priority_set = 1;
    const char *cr = getenv("CUDA_DEVICE_CONTEXT_RESERVE");
    if (cr && *cr) {
        if (hami_vgpu_parse_size(cr, &vg_cfg.ctx_reserve))
            vg_cfg.ctx_reserve_set = 1;
        else
            vg_log(VG_ERROR, "invalid CUDA_DEVICE_CONTEXT_RESERVE=\"%s\": measuring the context instead", cr);
    }
    vg_cfg.ctx_slack = 64ULL << 20;
    const char *cs = getenv("CUDA_DEVICE_CONTEXT_SLACK");
    if (cs && *cs && !hami_vgpu_parse_size(cs, &vg_cfg.ctx_slack)) {
        vg_log(VG_ERROR, "invalid CUDA_DEVICE_CONTEXT_SLACK=\"%s\": using 64m", cs);
        vg_cfg.ctx_slack = 64ULL << 20;
    }
    int period_ms = 800, ref_mhz = 0;
    const char *pm = getenv("HAMI_SM_PERIOD_MS");
    if (pm && *pm && !parse_int("HAMI_SM_PERIOD_MS", pm, 0, 60000, &period_ms))
        period_ms = 800;
    vg_cfg.sm_period_ns = (int64_t)period_ms * 1000000LL;
    /* unset: the square wave's whole resume credit (launch.c resume_credit); a cap bounds what a tenant alone just
     * above its limit runs beyond it from a resume, but shortens its on-phases: the default waits for the GPU's clocks */
    int credit_ms = 0;
    const char *rc = getenv("HAMI_SM_RESUME_CREDIT_MS");
    if (rc && *rc && !int_in(rc, 1, 10000, &credit_ms)) {
        vg_log(VG_WARN, "ignoring HAMI_SM_RESUME_CREDIT_MS=\"%.64s\": expected an integer in [1, 10000] (ms); using "
                        "the square wave's whole resume credit (unset)", rc);
        credit_ms = 0;
    }
    vg_cfg.sm_resume_cap_ns = (int64_t)credit_ms * 1000000LL;
    /* taking turns, a neighbour may fill an owner's window while the owner's work has drained, if the owner steps
     * one launch at a time: its last busy intervals 1-4 ms each, at most 4 ms apart, no credit wait of it lately
     * (turns.c owner_steps: a JAX-shaped launch-then-wait loop, issue 18 jaxfill). Off by default until the H100's
     * A/B (bench/issue18_gpu.sh stage 31): on the fake it filled the JAX pairs' gaps (91.8 -> 94.9 % of native) but
     * charged a 30 % tenant 31.7-32.9 % and took its 70 % neighbour out of turns; exactly 1 turns it on, anything
     * else is named and off kept. A fill only lets a launch that its own credit allows go: limits still apply */
    vg_cfg.sm_turn_fill_steps = switch_knob("HAMI_SM_TURN_FILL_STEPS", 0,
                                            "0, only the gap rule lets a neighbour fill an owner's window", "off");
    /* whether a tenant that steps one launch at a time (its own last busy intervals 1-4 ms each, at most 4 ms apart:
     * a JAX-shaped launch-then-wait loop, issue 18 stepslice) takes part in turns. 1 (unset) as before; 0 keeps it
     * out (turns.c turn_wanted), so a JAX pair time-slices while a training pair (tens-of-ms intervals) still takes
     * turns. Off until the H100's A/B (bench/issue18_gpu.sh stage 37); exactly 0 or 1, anything else named and the
     * default kept. Staying out only drops holds: limits still apply */
    vg_cfg.sm_turns_steppers = switch_knob("HAMI_SM_TURNS_STEPPERS", 1,
                                           "1, a tenant stepping one launch at a time takes turns", "1 kept");
    /* taking turns, how long an owner's host may launch nothing (nothing of it running) before a neighbour may fill
     * its window (turns.c owner_wants); shorter fills a step's host gap after its sync sooner. An A/B knob for the
     * hardware runs (issue 18, turnloss): both tenants of a pair set it alike (each marks its own credit waits this
     * far back, lending.c). Filling only lets a launch that its own credit allows go: limits still apply */
    vg_cfg.sm_turn_gap_ns = (int64_t)tuning_knob("HAMI_SM_TURN_GAP_US", TURN_GAP_MIN_US, TURN_GAP_MAX_US,
                                                 TURN_GAP_DEFAULT_US, "microseconds") * 1000;
    /* taking turns, how many misses of the stay test in a row (busy under TURN_BOUND_BP in its own windows, judged at
     * each of its windows' starts) take a tenant out of turns (turns.c turns_update). An A/B knob for the hardware
     * runs (issue 18, trainloss): on the H100 (record 19 stage 29) every GPU-bound training tenant judged out was out
     * after exactly two misses in a row, its readings swinging around the bound, and each out costs a back-off of 1 s
     * time-slicing. Judging out only ever drops holds: limits apply whatever the value */
    vg_cfg.sm_turn_misses = tuning_knob("HAMI_SM_TURN_MISSES", TURN_MISSES_MIN, TURN_MISSES_MAX, TURN_MISSES_DEFAULT,
                                        "misses in a row");
    /* precise deep runs (launch.c deep_defer): launches one end mark may close at most while the GPU's backlog is
     * deep; 1 marks every launch (the rule before 2026-12-06), an A/B knob for the hardware runs */
    vg_cfg.sm_deep_run = tuning_knob("HAMI_SM_DEEP_RUN", DEEP_RUN_MIN, DEEP_RUN_MAX, DEEP_RUN_DEFAULT,
                                     "launches a precise mark closes at most on a deep queue");
    /* one coarse launch in N measured alone (launch.c coarse_sample). Fewer samples cost fewer driver calls per
     * launch and judge a coarse phase's launches by fewer of them (docs/interposer.md "The launch path's own host
     * cost"): an A/B knob for the hardware runs, bounded so that a process setting it still draws a sample every
     * 256 coarse launches on average */
    vg_cfg.sm_sample_every = tuning_knob("HAMI_SM_SAMPLE_EVERY", COARSE_SAMPLE_MIN, COARSE_SAMPLE_MAX,
                                         COARSE_SAMPLE_DEFAULT, "one coarse launch in N measured alone");
    vg_cfg.sm_sample_cut = (1ULL << 32) / (uint64_t)vg_cfg.sm_sample_every;  /* a compare per launch, no division */
    /* alone and far below the limit: samples this many times fewer (launch.c sample_rate), an integer so each weighs
     * exactly that many; never below one in COARSE_SAMPLE_MAX, the bound above */
    vg_cfg.sm_sample_far = tuning_knob("HAMI_SM_SAMPLE_FAR", 1, SAMPLE_FAR_MAX, SAMPLE_FAR_DEFAULT,
                                       "times fewer coarse samples alone far below the limit");
    while (vg_cfg.sm_sample_far > 1 && vg_cfg.sm_sample_every * vg_cfg.sm_sample_far > COARSE_SAMPLE_MAX)
        vg_cfg.sm_sample_far--;
    /* in the same state, a verification window this many times shorter (launch.c verify_due): the windows were half
     * of the inference loop's event records alone (issue 18 record 15); an A/B knob for the hardware runs */
    vg_cfg.sm_verify_far = tuning_knob("HAMI_SM_VERIFY_FAR", 1, VERIFY_FAR_MAX, VERIFY_FAR_DEFAULT,
                                       "times shorter verification windows alone far below the limit");
    /* how long before its launch call returned a kernel may start on the GPU (launch.c submitted_at): a precise busy
     * period's charge starts no earlier than the return less this, never before the call began. An A/B knob for the
     * hardware runs (compare the charge per launch with the kernels' own time), bounded: at its bound the charge
     * starts at the launch call's start */
    vg_cfg.sm_launch_lead_ns = tuning_knob("HAMI_SM_LAUNCH_LEAD_NS", 0, LAUNCH_LEAD_MAX_NS, LAUNCH_LEAD_DEFAULT_NS, "ns");
    /* the longest the watcher sleeps while the launching thread collects completions itself (watcher.c: its wakes
     * back off from 100 us to this; issue 18: a launch-bound loop pinned to one core shares it with the watcher's
     * wakes), bounded so that a launcher that stops is noticed within 1 ms, the watcher's idle poll; 100 = the fixed
     * 100 us poll of before (an A/B knob for the hardware runs) */
    const char *wp = getenv("HAMI_WATCHER_BUSY_POLL_US");
    int poll_us = tuning_knob("HAMI_WATCHER_BUSY_POLL_US", WATCH_POLL_MIN_US, WATCH_POLL_MAX_US, WATCH_POLL_DEFAULT_US,
                              "microseconds");
    vg_cfg.watch_poll_ns = (int64_t)poll_us * 1000;
    /* the same ceiling while the tenant is alone on its GPUs and measured coarsely (its credit far above what its
     * in-flight work could cost): nobody's charge depends on its collections then, so the watcher may sleep longer
     * beside a launching thread that collects itself (issue 18: 1 ms still cost the H100 inference loop ~5 points on
     * one core, record 8 stage 13). Bounded: a launcher that stops is noticed within it (watcher.c). 1000 = the busy
     * ceiling alone too (the behaviour before) */
    const char *wa = getenv("HAMI_WATCHER_ALONE_POLL_US");
    int alone_us = tuning_knob("HAMI_WATCHER_ALONE_POLL_US", WATCH_ALONE_MIN_US, WATCH_ALONE_MAX_US,
                               WATCH_ALONE_DEFAULT_US, "microseconds");
    vg_cfg.watch_alone_ns = (int64_t)alone_us * 1000;
    /* a busy ceiling set on its own keeps its meaning alone too (HAMI_WATCHER_BUSY_POLL_US=100, the old fixed poll, is
     * the hardware ladder's poll100 rung) */
    if (vg_cfg.watch_alone_ns < vg_cfg.watch_poll_ns || (wp && *wp && poll_us != WATCH_POLL_DEFAULT_US && !(wa && *wa)))
        vg_cfg.watch_alone_ns = vg_cfg.watch_poll_ns;
    /* issue 18 (pairhost): beside a neighbour (or measuring precisely) the ceiling stays the busy one, but a collection
     * (the launcher's sync at the end of each step) restarted the back-off at 100 us, so a launch-bound loop's steps
     * each paid ~4 wakes more than the ceiling's pace, every one preempting the loop on its core; =1 starts the ramp at
     * the busy ceiling there too, as alone (watcher.c). Off by default until the GPU's A/B (issue18_gpu.sh stage 32) */
    vg_cfg.watch_flat_ramp = flag_knob("HAMI_WATCHER_FLAT_RAMP", 0);
    /* issue 18 (pairlean): a coarse tenant beside a neighbour (its credit far above its in-flight work, no neighbour
     * asking for precision, no switch charging) publishes no busy interval, so nobody's charge depends on when its
     * watcher collects, as alone; =1 gives it the alone ceiling (HAMI_WATCHER_ALONE_POLL_US) beside a neighbour too
     * (watcher.c). Off by default until the GPU's A/B (issue18_gpu.sh stage 36) */
    vg_cfg.watch_coarse_pair = flag_knob("HAMI_WATCHER_COARSE_PAIR", 0);
    const char *rm = getenv("HAMI_SM_REF_MHZ");
    if (rm && *rm && !parse_int("HAMI_SM_REF_MHZ", rm, 0, 100000, &ref_mhz))
        ref_mhz = 0;
    vg_cfg.sm_ref_mhz = (unsigned int)ref_mhz;
    vg_cfg.sm_precise = flag_knob("HAMI_SM_PRECISE", 0);
    vg_cfg.sm_no_lend = flag_knob("HAMI_SM_NO_LEND", 0);
    vg_cfg.sm_gap_every_launch = flag_knob("HAMI_SM_GAP_EVERY_LAUNCH", 0);
    /* a time-sliced lender's waits behind other contexts count in its demand alone, and a neighbour's published
     * demand alone bounds what it lends (jaxslice, issue 18: H100 record 19 stage 33's JAX 70 % tenant, time-sliced,
     * lent points it wanted). On by default; exactly 0 is main's rule before it (the A/B knob), exactly 1 the
     * default; anything else is named and the default kept. It only ever lends less (limits always apply) */
    vg_cfg.sm_lend_sliced = switch_knob("HAMI_SM_LEND_SLICED", 1, "1, a time-sliced lender's waits count in its demand",
                                        "it is on");
    vg_cfg.launch_stats = flag_knob("HAMI_LAUNCH_STATS", 0);
    vg_cfg.sm_charge_switches = VG_SW_CONTENDED;
    const char *sw = getenv("HAMI_SM_CHARGE_SWITCHES");
    if (sw && *sw) {
        int on = flag_value(sw);
        if (on == 1)
            vg_cfg.sm_charge_switches = VG_SW_ALWAYS;
        else if (on == 0)
            vg_cfg.sm_charge_switches = VG_SW_NEVER;
        else
            vg_log(VG_WARN, "ignoring HAMI_SM_CHARGE_SWITCHES=\"%.64s\": expected 1 or 0 (unset: only while the GPU "
                            "is contended)", sw);
    }
    /* gatemarks (launch.c gate_arm): a marked launch beside a neighbour waits on the GPU for a host-written word until
     * its end mark is queued, so the GPU runs start mark, kernel and end mark back to back. Off by default until a GPU
     * says it helps (an A/B knob: bench/issue18_gpu.sh stage 21); exactly 0, 1 or 2, anything else named, 0 kept */
    vg_cfg.sm_gate_marks = 0;
    const char *gm = getenv("HAMI_SM_GATE_MARKS");
    if (gm && *gm) {  /* 2 (an experiment): chained precise launches too, each with a start mark of its own */
        if (!strcmp(gm, "1") || !strcmp(gm, "2"))
            vg_cfg.sm_gate_marks = gm[0] - '0';
        else if (strcmp(gm, "0"))
            vg_log(VG_WARN, "ignoring HAMI_SM_GATE_MARKS=\"%.64s\": expected 0, 1 or 2 (unset: 0, marked launches are "
                            "not gated); not gated", gm);
    }
    /* contended GPU-bound capped tenants take turns (turns.c), the default since issue 18's record 9 (H100: every
     * GPU-bound pair kept as much or more of the GPU with turns than time-slicing); exactly 0 goes back to
     * time-slicing, exactly 1 says the default; anything else is named and the default kept */
    vg_cfg.sm_turns = switch_knob("HAMI_SM_TURNS", 1, "1, contended GPU-bound tenants take turns", "turns are on");
    /* turns' stay test counts its coarse marks' kernel estimates and keeps its windows' time whole (turns.c
     * turns_note_window; issue 18, judgedout: on the H100 the training tenants judged out or reading low in their
     * windows measured 6-17 % of their launches coarsely). Off by default: no fake test fails without it, and it may
     * keep a launch-bound tenant in turns longer (an A/B knob: bench/issue18_gpu.sh stage 29); exactly 0 or 1,
     * anything else named and off kept */
    vg_cfg.sm_turns_count_coarse = switch_knob("HAMI_SM_TURNS_COUNT_COARSE", 0,
                                               "0, turns' stay test counts precise kernels only", "off");
    /* a line per stay-test judgement (turns.c turns_log): a bench diagnostic, off unless set; after the knob above,
     * which its head line names */
    vg_turns_log_open(getenv("HAMI_SM_TURNS_LOG"));
    int idle_ms = 50;
    const char *im = getenv("HAMI_PRIORITY_IDLE_MS");
    if (im && *im && !parse_int("HAMI_PRIORITY_IDLE_MS", im, 1, 60000, &idle_ms))
        idle_ms = 50;
    vg_cfg.priority_idle_ns = (int64_t)idle_ms * 1000000LL;
    const char *rp = getenv("CUDA_DEVICE_MEMORY_SHARED_CACHE");
    if (!rp || !*rp)
        rp = "/tmp/hami-vgpu.cache";
    if (strlen(rp) >= sizeof(vg_cfg.region_path)) {
        vg_log(VG_ERROR, "refusing CUDA_DEVICE_MEMORY_SHARED_CACHE (%zu characters, at most %zu): accounting "
                         "covers this process only", strlen(rp), sizeof(vg_cfg.region_path) - 1);
        rp = "";
    }
    snprintf(vg_cfg.region_path, sizeof(vg_cfg.region_path), "%s", rp);
    const char *bp = getenv("HAMI_NODE_BOARD");
    if (!bp || !*bp)
        bp = "/tmp/vgpulock/hami-node-board";
    if (strlen(bp) >= sizeof(vg_cfg.board_path)) {
        vg_log(VG_ERROR, "refusing HAMI_NODE_BOARD (%zu characters, at most %zu): no node board", strlen(bp),
               sizeof(vg_cfg.board_path) - 1);
        bp = "";
    }
    snprintf(vg_cfg.board_path, sizeof(vg_cfg.board_path), "%s", bp);
    const char *cd = getenv("HAMI_PROC_CENSUS_DIR");  /* the node agent's process census (nvmlq.c); unset: none */
    if (cd && *cd && (cd[0] != '/' || strlen(cd) >= sizeof(vg_cfg.census_dir))) {
        vg_log(VG_ERROR, "refusing HAMI_PROC_CENSUS_DIR=\"%.64s\" (%zu characters; expected an absolute path of at "
                         "most %zu): no process census", cd, strlen(cd), sizeof(vg_cfg.census_dir) - 1);
        cd = "";
    }
    snprintf(vg_cfg.census_dir, sizeof(vg_cfg.census_dir), "%s", cd ? cd : "");
    vg_cfg.census_required = flag_knob("HAMI_PROC_CENSUS_REQUIRED", 1);  /* fail closed (nvmlq.c, audit4) */
    if (vg_cfg.disabled)
        vg_log(VG_MSG, "CUDA_DISABLE_CONTROL=true: passing every call through");
}

int vg_launch_control(void)
{
    return !vg_cfg.disabled && vg_cfg.priority_set;
}
