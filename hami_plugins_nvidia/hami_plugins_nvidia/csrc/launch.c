/* launch.c - the SM limit and task priority, applied on every kind of kernel launch.
 *
 * GPU time is measured, not sampled from NVML: an event recorded after each launch on its stream (and
 * one before it when the stream was idle) gives each launch's busy time once the events complete. The
 * container's token bucket earns share% of wall time and is charged with that busy time; work already
 * queued but not yet measured is counted in advance (pending launches x the average launch time), so a
 * process can never queue far ahead of its credit.
 *
 * Across containers on one GPU, SM-limited containers take turns through a gate on the node board, so
 * their kernels never time-slice against each other (time-slicing would inflate every measurement).
 * The holder hands the gate over after a 20 ms quantum when another container waits, once its queue has
 * drained (HAMI_SM_SHARING=gate, the default). Measured on the H200 (docs/results/2026-12-04-h200-
 * interposer-real-workloads.md): handing it over as soon as the holder's queue drained, at every host
 * sync, cost real programs more than it gave back, so the quantum rule stayed.
 * HAMI_SM_SHARING=overlap lets containers run at the same time (work-conserving) and charges each one's
 * busy time divided by the containers busy at that moment; on the H200 that kept the pair's throughput but
 * did not split contended GPU time by the limits (the GPU's time slices are coarser than the kernels, so
 * measured times are inflated less than the divisor assumes).
 *
 * GPU_CORE_UTILIZATION_POLICY: force always caps, disable never, default caps only while another
 * container is launching on the same GPU under the interposer (seen on the node board's user list within
 * the last 500 ms); alone under default, launches go to the driver with no measurement.
 *
 * Every time read from the node board is bounded: one more than a second in the future is ignored (a
 * forged mark can neither hold another container forever nor keep the gate). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vgpu.h"

#define RING 128
#define MAXQ 32
#define EVPOOL (MAXQ * RING + 8)

struct mark {
    CUevent e;
    int start;  /* recorded before a launch on an idle stream: no busy time before it */
};

struct squeue {
    CUstream s;
    int head, count;
    struct mark ring[RING];
};

#define FUTURE_MAX_NS 1000000000LL   /* board times further ahead than this are forged: ignored */
#define INFLIGHT_MARK_MAX_NS 500000000LL
#define SHARE_WINDOW_NS 500000000LL  /* another container counts as sharing for 500 ms after its last launch */

struct dstate {
    pthread_mutex_t mu;
    int ready, dev;
    CUcontext ctx;
    CUevent freev[EVPOOL];
    int nfree;
    struct squeue q[MAXQ];
    int nq;
    int pending;            /* measured launches whose end event has not completed yet */
    int64_t ewma_ns;        /* average busy time per launch */
    struct hami_board_gpu *bgpu;
    int holding;
    int64_t hold_since, yield_until, last_stamp;
    int prio_logged;
    int stopped;            /* out of credit: resume only with the resume credit */
    unsigned int clock_mhz; /* last sampled SM clock */
    int64_t clock_at;
    int64_t harvest_at;     /* last harvest: completed events are collected at most every 100 us */
    int64_t user_stamp;     /* last time this container's node-board user entry was refreshed */
    int user_idx;           /* its index in the board entry's user list, -1 = none */
    int shared;             /* another container was seen launching on this GPU recently */
    int64_t shared_at;
    int capped;             /* the SM limit applied at the last launch */
};

static struct dstate states[HAMI_MAX_DEVICES];
static pthread_once_t states_once = PTHREAD_ONCE_INIT;

static void init_states(void)
{
    for (int i = 0; i < HAMI_MAX_DEVICES; i++)
        pthread_mutex_init(&states[i].mu, NULL);
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    nanosleep(&ts, NULL);
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

static int busy_users(struct dstate *ds, int64_t now);

static void consume(struct dstate *ds, int64_t ns)
{
    if (!vg_cfg.sm_gate && ds->bgpu) {
        /* overlap sharing: kernels of containers running at the same time are time-sliced by the GPU, so
         * each one's event-measured time includes the others'; charge this container its part */
        int k = busy_users(ds, vg_now_ns());
        if (k > 1)
            ns /= k;
    }
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
    ds->ewma_ns = ds->ewma_ns ? (ds->ewma_ns * 7 + ns) / 8 : ns;
}

static void harvest_queues(struct dstate *ds);

/* Collects the busy time of every completed launch; never blocks. A stream of this process may be
 * capturing a CUDA graph in global mode (PyTorch's default), where an event query from any thread would
 * invalidate the capture: the queries run with this thread's capture mode set to relaxed. */
static void harvest(struct dstate *ds)
{
    int mode = 2;  /* CU_STREAM_CAPTURE_MODE_RELAXED */
    int swapped = vg_real.cuThreadExchangeStreamCaptureMode &&
                  vg_real.cuThreadExchangeStreamCaptureMode(&mode) == CUDA_SUCCESS;
    harvest_queues(ds);
    if (swapped)
        vg_real.cuThreadExchangeStreamCaptureMode(&mode);
}

static void harvest_queues(struct dstate *ds)
{
    for (int i = 0; i < ds->nq; i++) {
        struct squeue *q = &ds->q[i];
        while (q->count >= 2) {
            struct mark *a = &q->ring[q->head], *b = &q->ring[(q->head + 1) % RING];
            if (vg_real.cuEventQuery(b->e) != CUDA_SUCCESS)
                break;
            if (!b->start) {
                float ms = 0;
                if (vg_real.cuEventElapsedTime && vg_real.cuEventElapsedTime(&ms, a->e, b->e) == CUDA_SUCCESS &&
                    ms > 0)
                    consume(ds, (int64_t)(ms * 1e6));
                ds->pending--;
            }
            put_event(ds, a->e);
            q->head = (q->head + 1) % RING;
            q->count--;
        }
        if (q->count == 1 && vg_real.cuEventQuery(q->ring[q->head].e) == CUDA_SUCCESS) {
            put_event(ds, q->ring[q->head].e);
            q->count = 0;
        }
    }
}

static int64_t inflight_ns(const struct dstate *ds)
{
    return (int64_t)ds->pending * (ds->ewma_ns ? ds->ewma_ns : 100000);
}

/* A time read from the node board, or 0 when it lies further in the future than any writer puts it. */
static int64_t board_time(int64_t t, int64_t now, const char *what)
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

/* Containers (this one included) with work in flight on the GPU now, from the board's busy marks. */
static int busy_users(struct dstate *ds, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    uint64_t me = vg_region->container_id;
    int k = 1;
    for (int i = 0; i < HAMI_BOARD_USERS; i++) {
        uint64_t id = __atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE);
        int64_t t = board_time(__atomic_load_n(&g->user_busy_ns[i], __ATOMIC_ACQUIRE), now, "a busy mark");
        if (id && id != me && t > now - 2000000)
            k++;
    }
    return k;
}

/* Marks this container busy on the GPU until its queued work is expected to finish. */
static void note_busy(struct dstate *ds, int64_t now)
{
    if (ds->bgpu && ds->user_idx >= 0) {
        int64_t ahead = inflight_ns(ds);
        __atomic_store_n(&ds->bgpu->user_busy_ns[ds->user_idx],
                         now + (ahead < INFLIGHT_MARK_MAX_NS ? ahead : INFLIGHT_MARK_MAX_NS), __ATOMIC_RELEASE);
    }
}

/* Refreshes this container's entry in the GPU's user list (at most every millisecond) and works out
 * whether another container launched on the GPU within the share window. */
static void note_users(struct dstate *ds, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    if (!g || now - ds->user_stamp < 1000000)
        return;
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
                __atomic_compare_exchange_n(&g->user_id[i], &cur, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                ds->user_idx = i;
        }
    }
    if (ds->user_idx >= 0)
        __atomic_store_n(&g->user_active_ns[ds->user_idx], now, __ATOMIC_RELEASE);
    int shared = 0;
    for (int i = 0; i < HAMI_BOARD_USERS && !shared; i++) {
        uint64_t id = __atomic_load_n(&g->user_id[i], __ATOMIC_ACQUIRE);
        int64_t t = board_time(__atomic_load_n(&g->user_active_ns[i], __ATOMIC_ACQUIRE), now, "a user mark");
        shared = id && id != me && t && now - t < SHARE_WINDOW_NS;
    }
    if (shared != ds->shared)
        vg_log(VG_INFO, "device %d: %s", ds->dev, shared ? "another container is launching on this GPU: the SM "
                                                            "limit applies" : "alone on this GPU: not capped "
                                                            "(GPU_CORE_UTILIZATION_POLICY=default)");
    ds->shared = shared;
}

static struct squeue *find_queue(struct dstate *ds, CUstream s)
{
    struct squeue *idle = NULL;
    for (int i = 0; i < ds->nq; i++) {
        if (ds->q[i].s == s)
            return &ds->q[i];
        if (!ds->q[i].count && !idle)
            idle = &ds->q[i];
    }
    struct squeue *q = ds->nq < MAXQ ? &ds->q[ds->nq++] : idle;
    if (q) {
        q->s = s;
        q->head = q->count = 0;
    }
    return q;
}

static int push_mark(struct dstate *ds, struct squeue *q, int start)
{
    while (q->count >= RING - 1) {  /* ring full: wait for the oldest work to finish */
        harvest(ds);
        if (q->count >= RING - 1)
            sleep_ns(50000);
    }
    int mode = 2;  /* relaxed, as in harvest(): another stream may be capturing in global mode */
    int swapped = vg_real.cuThreadExchangeStreamCaptureMode &&
                  vg_real.cuThreadExchangeStreamCaptureMode(&mode) == CUDA_SUCCESS;
    CUevent e = get_event(ds);
    CUresult rec = e ? vg_real.cuEventRecord(e, q->s) : CUDA_ERROR_NOT_INITIALIZED;
    if (swapped)
        vg_real.cuThreadExchangeStreamCaptureMode(&mode);
    if (!e)
        return 0;
    if (rec != CUDA_SUCCESS) {
        put_event(ds, e);
        return 0;
    }
    q->ring[(q->head + q->count) % RING] = (struct mark){e, start};
    q->count++;
    return 1;
}

/* ---- gate between SM-limited containers ---- */

static void gate_release(struct dstate *ds, int64_t now)
{
    uint64_t me = vg_region->container_id;
    __atomic_compare_exchange_n(&ds->bgpu->owner, &me, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    ds->holding = 0;
    ds->yield_until = now + 500000;  /* give a waiting container the first chance */
}

/* The gate's expiry as read from the board: a forged far-future expiry counts as expired. */
static int64_t owner_until(struct hami_board_gpu *g, int64_t now)
{
    return board_time(__atomic_load_n(&g->owner_until_ns, __ATOMIC_ACQUIRE), now, "the gate's expiry");
}

/* 1 when this container may launch on the GPU now. */
static int gate_take(struct dstate *ds, int64_t now)
{
    struct hami_board_gpu *g = ds->bgpu;
    if (!g || !vg_cfg.sm_gate)
        return 1;  /* HAMI_SM_SHARING=overlap: no turns; each container's charge is its part */
    uint64_t me = vg_region->container_id;
    uint64_t owner = __atomic_load_n(&g->owner, __ATOMIC_ACQUIRE);
    if (owner == me) {
        int64_t waiter = __atomic_load_n(&g->waiter_since_ns, __ATOMIC_ACQUIRE);
        if (waiter && now - ds->hold_since > HAMI_GATE_QUANTUM_NS) {
            if (ds->pending == 0)
                gate_release(ds, now);
            return 0;  /* stop queueing; hand over once our work has drained */
        }
        ds->holding = 1;
        int64_t ahead = inflight_ns(ds);
        __atomic_store_n(&g->owner_until_ns, now + (ahead < INFLIGHT_MARK_MAX_NS ? ahead : INFLIGHT_MARK_MAX_NS) +
                                                 5000000, __ATOMIC_RELEASE);
        return 1;
    }
    if (now >= ds->yield_until && (owner == 0 || now > owner_until(g, now)) &&
        __atomic_compare_exchange_n(&g->owner, &owner, me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&g->owner_until_ns, now + 5000000, __ATOMIC_RELEASE);
        __atomic_store_n(&g->waiter_since_ns, 0, __ATOMIC_RELEASE);
        ds->holding = 1;
        ds->hold_since = now;
        return 1;
    }
    int64_t zero = 0;
    __atomic_compare_exchange_n(&g->waiter_since_ns, &zero, now, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    return 0;
}

static void throttle(struct dstate *ds, int sm)
{
    struct hami_device_info *di = &vg_region->dev[ds->dev];
    for (;;) {
        int64_t now = vg_now_ns();
        note_users(ds, now);  /* waiting for credit or the gate is still using the GPU: stay on the list */
        if (now - ds->harvest_at > 100000 || ds->pending > 16) {
            harvest(ds);
            ds->harvest_at = now;
        }
        int64_t resume = hami_vgpu_resume_credit_ns(vg_cfg.sm_period_ns, sm);
        hami_vgpu_bucket_refill(&di->tokens_ns, &di->refill_ns, now, sm,
                                2 * resume > HAMI_BUCKET_CAP_NS ? 2 * resume : HAMI_BUCKET_CAP_NS);
        int64_t tokens = __atomic_load_n(&di->tokens_ns, __ATOMIC_ACQUIRE);
        int64_t need = ds->stopped ? resume : 0;
        int64_t wait = hami_vgpu_throttle_wait_ns(tokens - need, inflight_ns(ds), sm);
        ds->stopped = wait > 0;
        if (wait == 0) {
            if (gate_take(ds, now))
                return;
            harvest(ds);  /* waiting for the gate or for our own queue to drain: keep the count exact */
            ds->harvest_at = now;
            wait = 30000;
        } else if (ds->holding) {
            harvest(ds);
            ds->harvest_at = now;
            if (ds->pending == 0)
                gate_release(ds, now);  /* out of credit and drained: let another container in */
            else if (wait > 30000)
                wait = 30000;           /* poll until drained */
        }
        pthread_mutex_unlock(&ds->mu);
        sleep_ns(wait);
        pthread_mutex_lock(&ds->mu);
    }
}

static void priority_gate(struct dstate *ds)
{
    struct hami_board_gpu *g = ds->bgpu;
    int p = vg_cfg.priority;
    for (;;) {
        int64_t now = vg_now_ns();
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

/* A process with a task priority keeps its level marked active on the node board for as long as its
 * launched work is still running on the GPU (not only while it is inside launch calls), so lower levels
 * stay held until it is really idle. One watcher thread per process polls the pending events. */
static pid_t watcher_pid;
static pthread_mutex_t watcher_mu = PTHREAD_MUTEX_INITIALIZER;

static void *priority_watcher(void *arg)
{
    (void)arg;
    for (;;) {
        sleep_ns(1000000);
        int64_t now = vg_now_ns();
        for (int d = 0; d < HAMI_MAX_DEVICES; d++) {
            struct dstate *ds = &states[d];
            if (!__atomic_load_n(&ds->ready, __ATOMIC_ACQUIRE) || !ds->bgpu)
                continue;
            if (pthread_mutex_trylock(&ds->mu) != 0)
                continue;  /* a launch is in progress: it does this itself */
            harvest(ds);
            int64_t ahead = inflight_ns(ds);
            if (ds->pending > 0)
                note_busy(ds, now);
            if (ds->pending > 0)  /* active until the queued work is expected to finish */
                __atomic_store_n(&ds->bgpu->prio_active_ns[vg_cfg.priority],
                                 now + (ahead < INFLIGHT_MARK_MAX_NS ? ahead : INFLIGHT_MARK_MAX_NS), __ATOMIC_RELEASE);

            pthread_mutex_unlock(&ds->mu);
        }
    }
    return NULL;
}

static void start_watcher(void)
{
    pthread_mutex_lock(&watcher_mu);
    if (watcher_pid != getpid()) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, priority_watcher, NULL) == 0)
            watcher_pid = getpid();
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&watcher_mu);
}

static void init_state(struct dstate *ds, int dev)
{
    ds->dev = dev;
    ds->user_idx = -1;
    if (vg_real.cuCtxGetCurrent)
        vg_real.cuCtxGetCurrent(&ds->ctx);
    CUuuid id;
    memset(&id, 0, sizeof(id));
    if (vg_real.cuDeviceGetUuid && vg_real.cuDeviceGetUuid(&id, dev) == CUDA_SUCCESS)
        ds->bgpu = vg_board_gpu((const uint8_t *)id.bytes);
    vg_log(VG_INFO, "device %d: SM limit %d%%, priority %d%s", dev, vg_sm_limit(dev),
           vg_cfg.priority, ds->bgpu ? "" : " (no node board)");
    __atomic_store_n(&ds->ready, 1, __ATOMIC_RELEASE);
}

/* Returns the device state with its mutex held, or NULL when the launch goes straight through. */
static struct dstate *launch_begin(CUstream s, struct squeue **qout)
{
    *qout = NULL;
    if (!vg_launch_control())
        return NULL;
    int dev = vg_current_device();
    if (dev < 0 || !vg_region_ready())
        return NULL;
    pthread_once(&states_once, init_states);
    struct dstate *ds = &states[dev];
    pthread_mutex_lock(&ds->mu);
    if (!ds->ready)
        init_state(ds, dev);
    int sm = vg_sm_limit(dev);
    int64_t now = vg_now_ns();
    if (ds->bgpu)
        note_users(ds, now);
    if (sm < 100 && vg_cfg.core_policy == VG_POLICY_DEFAULT && ds->bgpu && !ds->shared) {
        /* alone on the GPU under the default policy: not capped. With no explicit priority nothing else
         * applies either (a higher-priority container would be on the user list, so not alone): straight to
         * the driver, with no capture query, no events and no board reads beyond the user mark. */
        if (ds->holding)
            gate_release(ds, now);
        ds->capped = 0;
        if (!vg_cfg.priority_env)
            return ds;
        sm = 100;
    }
    int capture = 0;
    if (vg_real.cuStreamIsCapturing && vg_real.cuStreamIsCapturing(s, &capture) == CUDA_SUCCESS &&
        capture != CU_STREAM_CAPTURE_STATUS_NONE) {
        pthread_mutex_unlock(&ds->mu);
        return NULL;  /* recorded into a graph: limited when the graph is launched */
    }
    int watch = ds->bgpu && vg_cfg.priority_set;
    if (watch) {
        priority_gate(ds);
        if (watcher_pid != getpid())
            start_watcher();
    }
    if (sm < 100 && !ds->capped) {
        /* (re)entering the capped state: no debt carried over from an uncapped spell (nothing was charged
         * then), credit kept */
        struct hami_device_info *di = &vg_region->dev[dev];
        if (__atomic_load_n(&di->tokens_ns, __ATOMIC_ACQUIRE) < 0)
            __atomic_store_n(&di->tokens_ns, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&di->refill_ns, now, __ATOMIC_RELEASE);
        ds->stopped = 0;
    }
    ds->capped = sm < 100;
    CUcontext ctx = NULL;
    if (vg_real.cuCtxGetCurrent)
        vg_real.cuCtxGetCurrent(&ctx);
    if ((sm < 100 || watch) && ctx == ds->ctx && vg_real.cuEventCreate && vg_real.cuEventQuery &&
        vg_real.cuEventRecord) {
        if (sm < 100)
            throttle(ds, sm);
        struct squeue *q = find_queue(ds, s);
        if (q && (q->count > 0 || push_mark(ds, q, 1)))
            *qout = q;
    }
    return ds;
}

static void launch_end(struct dstate *ds, struct squeue *q, CUresult r)
{
    if (!ds)
        return;
    if (q && r == CUDA_SUCCESS && push_mark(ds, q, 0)) {
        ds->pending++;
        if (!vg_cfg.sm_gate && ds->pending == 1)
            note_busy(ds, vg_now_ns());
    }
    struct hami_device_info *di = &vg_region->dev[ds->dev];
    __atomic_add_fetch(&di->launches, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&di->last_launch_ns, vg_now_ns(), __ATOMIC_RELAXED);
    pthread_mutex_unlock(&ds->mu);
}

#define PTS(s) ((s) ? (s) : CU_STREAM_PER_THREAD)
#define CONTROLLED(field, stream, ...)                         \
    vg_init_cuda();                                            \
    if (!vg_real.field)                                        \
        return CUDA_ERROR_NOT_INITIALIZED;                     \
    struct squeue *q;                                          \
    struct dstate *ds = launch_begin(stream, &q);              \
    CUresult r = vg_real.field(__VA_ARGS__);                   \
    launch_end(ds, q, r);                                      \
    return r;

VG_API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned shm, CUstream s, void **params, void **extra)
{
    CONTROLLED(cuLaunchKernel, s, f, gx, gy, gz, bx, by, bz, shm, s, params, extra)
}

VG_API CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                    unsigned by, unsigned bz, unsigned shm, CUstream s, void **params,
                                    void **extra)
{
    CONTROLLED(cuLaunchKernel_ptsz, PTS(s), f, gx, gy, gz, bx, by, bz, shm, s, params, extra)
}

VG_API CUresult cuLaunchKernelEx(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra)
{
    CONTROLLED(cuLaunchKernelEx, cfg ? cfg->hStream : NULL, cfg, f, params, extra)
}

VG_API CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra)
{
    CONTROLLED(cuLaunchKernelEx_ptsz, PTS(cfg ? cfg->hStream : NULL), cfg, f, params, extra)
}

VG_API CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                          unsigned by, unsigned bz, unsigned shm, CUstream s, void **params)
{
    CONTROLLED(cuLaunchCooperativeKernel, s, f, gx, gy, gz, bx, by, bz, shm, s, params)
}

VG_API CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                               unsigned by, unsigned bz, unsigned shm, CUstream s, void **params)
{
    CONTROLLED(cuLaunchCooperativeKernel_ptsz, PTS(s), f, gx, gy, gz, bx, by, bz, shm, s, params)
}

VG_API CUresult cuGraphLaunch(CUgraphExec g, CUstream s)
{
    CONTROLLED(cuGraphLaunch, s, g, s)
}

VG_API CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s)
{
    CONTROLLED(cuGraphLaunch_ptsz, PTS(s), g, s)
}
