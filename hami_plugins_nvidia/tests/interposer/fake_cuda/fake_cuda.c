/* fake_cuda.c - a stand-in libcuda.so.1 over an in-memory device, for CI without a GPU.
 *
 * Memory is bookkeeping only (addresses are invented, nothing is allocated), so tests can ask the
 * "device" how much it really handed out (fake_used). Kernels run on a simulated timeline in real time:
 * a launch takes gridDimX microseconds after the work queued before it, and events complete when the
 * timeline reaches them, so the interposer's event-based throttle sees a real asynchronous GPU.
 * Entry points are found through cuGetProcAddress(_v2) like the CUDA 12/13 runtime does.
 *
 * With FAKE_CUDA_GPU=<file>, device 0 is one GPU shared by every process naming that file, time-sliced
 * like a GPU without MPS: a fluid processor-sharing model in which each process with work queued gets an
 * equal part of the GPU's time. Each process's completed work is kept as a ring of (time, work done)
 * points, so an event completes exactly when its process's work reaches the amount queued before it, and
 * fake_gpu_ns() reports the GPU time a process has really received (what tests judge shares by); fake_peer_gpu_ns()
 * the GPU time every other process of the shared GPU has received, so a program can tell when its neighbour's work
 * first ran (driver_app's graphs command: the GPU time it got from then on, while it was not alone).
 *
 * FAKE_CUDA_SLICE_US=<n> replaces the fluid model by time slices, as a real GPU without MPS runs contexts:
 * one process at a time runs until its queue drains or, while another waits, until its slice of n us ends;
 * then the next process with work queued (round robin) gets the GPU. With a slice longer than a program's
 * kernels this is FIFO between contexts: a launch waits for the neighbour's queued work. In this mode an
 * event record is a tiny piece of work (1 ns): it completes only when its process holds the GPU, like a
 * real event processed in its context's channel. FAKE_CUDA_SWITCH_US=<n> (with slices) makes each switch to
 * another process cost n us in which nobody's work progresses, like a real context switch. A sync on the shared
 * GPU polls it every FAKE_CUDA_SYNC_POLL_US (default 100 us; shorter for programs whose steps last ~100 us).
 *
 * Streams and CUDA graphs: a process's work is one FIFO whatever stream it is launched on (two streams of one
 * context never overlap here, as they may on a real GPU: an upper bound on the time a step holds the GPU), and
 * cuGraphLaunch(g) is g microseconds of work, the graph's kernels and the gaps between them together (a graph's
 * nodes are all submitted at once: between two of them the context still has work pending and keeps its turn).
 *
 * A context's events die with it (destroyed, or a primary reset or released to zero), whatever handle the next one
 * gets; FAKE_CUDA_RECORD_FAIL=1 makes every event record fail (a driver whose events do not work).
 *
 * Stream capture (cuStreamBeginCapture, cuStreamEndCapture, cuStreamIsCapturing) follows the driver API: a capturing
 * stream's launches are recorded into a graph, whose launch runs them; a synchronize of it fails and invalidates it.
 *
 * fake_calls() counts, per process, the calls a launch path may make besides the launch itself (event records,
 * event queries, elapsed-time queries, capture queries, synchronizes) and the launches: the tests judge the
 * interposer's per-launch driver work by them.
 *
 * Modelled driver costs (opt-in, default off: every call costs what the code above costs, tens of ns):
 * FAKE_CUDA_COSTS_NS="launch=3000,record=3000,query=1500,elapsed=1500,sync=2000" busy-waits that many ns of host
 * time in each call of the class (launch: every kernel or graph launch; query: cuEventQuery; elapsed:
 * cuEventElapsedTime; sync: cuStreamSynchronize and cuCtxSynchronize, once, before their wait: the calls counted),
 * as a real driver's calls cost microseconds (issue 18: on the H200 ~3 us an event record, ~1.5 us a query).
 * FAKE_CUDA_DRIVER_LOCK=1 holds one process-wide lock during each costed call's cost (not a sync's wait), as the
 * real driver serialises calls on a context: a second thread's call (the interposer's watcher) then waits for it.
 * fake_driver_lock() reports the lock's acquisitions and how many found it held (host-independent counts).
 *
 * Stream waits on host memory (gatemarks): cuMemHostAlloc(CU_MEMHOSTALLOC_DEVICEMAP) hands out words of this process's
 * slot in the shared GPU file (so every process advancing the model reads them), cuMemHostGetDevicePointer maps them
 * one to one, and cuStreamWaitValue32(_v2) with CU_STREAM_WAIT_VALUE_GEQ (cyclic, as the driver compares) blocks the
 * process's queue at its current end until the word reaches the value. The model reads the word as it advances: a word
 * found written is taken as written when the model last advanced (the earliest it can have been; the writer's own
 * calls advance it just before, so within a call's host time). Only device 0 of the shared GPU (FAKE_CUDA_GPU) has
 * them: cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR) answers 1 there, 0 elsewhere or with
 * FAKE_CUDA_NO_STREAM_WAIT=1 (a device without them). One blocked wait at a time per process (a second while one
 * blocks: CUDA_ERROR_NOT_SUPPORTED). FAKE_CUDA_GATE_HOLDS=1 lets a context blocked on a wait keep the GPU (idle) until
 * the word is written or its slice ends while another waits; unset or 0, a blocked context is switched out at once, as
 * one that ran out of work (a real GPU may do either: a channel blocked on a semaphore acquire can be switched out).
 * fake_gate_stats() reports the waits enqueued, those that blocked the queue, the GPU time the GPU idled held by a
 * blocked context (FAKE_CUDA_GATE_HOLDS=1), and the waits enqueued on a stream being captured. The cost class "wait"
 * (FAKE_CUDA_COSTS_NS) is each wait call's. FAKE_CUDA_LAUNCH_FAIL_EVERY=N fails every Nth launch (it queues nothing).
 * cuMemHostRegister(_v2) with DEVICEMAP maps the process's page of the shared file over the registered page (contents
 * kept), so the model reads its words too; the registration dies with its context (the memory stays the caller's).
 * FAKE_CUDA_HOST_UNMAP=1: cuMemHostAlloc(DEVICEMAP) hands out that page instead and unmaps it when its context dies, as
 * the driver frees a destroyed context's pinned allocations; FAKE_CUDA_LAUNCH_DESTROYS_CTX=N destroys the Nth launch's
 * context during its launch call; FAKE_CUDA_NO_NOR=1 answers 0 for the NOR attribute while GEQ waits work (gatehard).
 * cuStreamDestroy(_v2) makes a handle dead: every later call on it fails and is counted (fake_dead_calls). The legacy
 * stream while another stream is captured answers CUDA_ERROR_STREAM_CAPTURE_IMPLICIT to a capture query, and an event
 * recorded there invalidates the capture (every fake stream is a blocking one). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define API __attribute__((visibility("default")))
#define NDEV 2
#define MIB (1ULL << 20)
#define POOL_GRAIN (32 * MIB)
typedef int CUresult;
typedef unsigned long long u64;

static u64 used_bytes[NDEV];
static u64 next_addr = 0x100000000ULL;
static __thread int cur = -1;
static int64_t free_at[NDEV];  /* simulated timeline: when the device finishes its queued work */
static u64 launches[NDEV];
enum { CALL_LAUNCH, CALL_RECORD, CALL_QUERY, CALL_ELAPSED, CALL_CAPTURE, CALL_SYNC, CALL_CAPREC, CALL_ELAPSED_NR, CALL_N };
static u64 calls[CALL_N];
#define COUNT(k) __atomic_add_fetch(&calls[k], 1, __ATOMIC_RELAXED)
static u64 ctx_calls[2];  /* cuCtxGetCurrent, cuCtxGetDevice (fake_ctx_calls): a launch path's context calls */

/* ---- modelled driver costs (FAKE_CUDA_COSTS_NS, FAKE_CUDA_DRIVER_LOCK): see the header ---- */
enum { COST_LAUNCH, COST_RECORD, COST_QUERY, COST_ELAPSED, COST_SYNC, COST_WAIT, COST_N };
static const char *const cost_names[COST_N] = {"launch", "record", "query", "elapsed", "sync", "wait"};
#define COST_MAX_NS 10000000LL  /* 10 ms a call at most: a typo must not hang a test */
static int64_t cost_ns[COST_N];
static int cost_lock, cost_state;  /* cost_state: 0 not read yet, 1 read */
static pthread_mutex_t drv_mu = PTHREAD_MUTEX_INITIALIZER;
static u64 drv_taken, drv_contended;

static int64_t now_ns(void);

/* Reads the two knobs once. A malformed item is refused with one line naming it and changes nothing. */
static void cost_load(void)
{
    const char *v = getenv("FAKE_CUDA_COSTS_NS");
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", v ? v : "");
    for (char *save = NULL, *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(it, '='), *end = NULL;
        int k = -1;
        if (eq) {
            *eq = 0;
            for (int i = 0; i < COST_N; i++)
                if (!strcmp(it, cost_names[i]))
                    k = i;
        }
        long long ns = eq ? strtoll(eq + 1, &end, 10) : -1;
        if (k < 0 || !end || end == eq + 1 || *end || ns < 0 || ns > COST_MAX_NS) {
            fprintf(stderr, "fake_cuda: ignoring FAKE_CUDA_COSTS_NS item \"%.40s%s%.40s\": expected CLASS=NS with CLASS "
                    "one of launch, record, query, elapsed, sync, wait and NS in 0..%lld\n", it, eq ? "=" : "", eq ? eq + 1 : "",
                    COST_MAX_NS);
            continue;
        }
        cost_ns[k] = ns;
    }
    const char *l = getenv("FAKE_CUDA_DRIVER_LOCK");
    cost_lock = l && !strcmp(l, "1");
}

/* A costed call's host time: busy-waited (a driver call runs on the caller's core), under the driver lock when set. */
static void cost(int k)
{
    if (!__atomic_load_n(&cost_state, __ATOMIC_ACQUIRE)) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, cost_load);
        __atomic_store_n(&cost_state, 1, __ATOMIC_RELEASE);
    }
    if (!cost_lock && !cost_ns[k])
        return;
    if (cost_lock) {
        if (pthread_mutex_trylock(&drv_mu) != 0) {
            __atomic_add_fetch(&drv_contended, 1, __ATOMIC_RELAXED);
            pthread_mutex_lock(&drv_mu);
        }
        __atomic_add_fetch(&drv_taken, 1, __ATOMIC_RELAXED);
    }
    if (cost_ns[k]) {
        int64_t until = now_ns() + cost_ns[k];
        while (now_ns() < until) {
        }
    }
    if (cost_lock)
        pthread_mutex_unlock(&drv_mu);
}

struct alloc { u64 key, size; int dev; int vmm; };  /* vmm: a cuMemCreate handle, not owned by a context */
static struct alloc table[65536];
static int ntable;

static u64 total_bytes(void)
{
    const char *t = getenv("FAKE_CUDA_TOTAL_MIB");
    return (t ? strtoull(t, NULL, 10) : 16384) * MIB;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the shared, time-sliced GPU (FAKE_CUDA_GPU) ---- */
#define SG_PROCS 8
#define SG_PTS 256
struct sg_proc {
    int pid;
    int64_t queued, done;               /* cumulative work (ns of GPU time) enqueued and completed */
    int64_t switched;                   /* time slices: context switches into this process (ns of GPU time) */
    int head, n;                        /* ring of (t, done) points, oldest at head */
    int lastk;                          /* processes sharing the GPU over the last segment, 0 = idle */
    int64_t pt_t[SG_PTS], pt_d[SG_PTS];
};
#define SG_WORDS 16                     /* host-mapped words per process (cuMemHostAlloc with DEVICEMAP) */
/* A process's stream waits (gatemarks; kept apart from sg_proc, whose layout bench/turns_phase.py reads) */
struct sg_gate {
    int on;                             /* a wait blocks the queue: no work past at completes */
    int idx;                            /* the word it waits on */
    uint32_t val;                       /* until (int32_t)(word - val) >= 0 */
    int64_t at;                         /* the queue position (queued) the wait was enqueued at */
    int64_t waits, blocked, held_ns;    /* fake_gate_stats */
    uint32_t used;                      /* words handed out */
    volatile uint32_t word[SG_WORDS];
};
struct sg_gpu {
    int lock;                           /* the holder's pid, 0 = free (a dead holder's is taken over) */
    int64_t last;                       /* the model has advanced up to this time */
    int run;                            /* time slices: the process holding the GPU + 1, 0 = none */
    int64_t slice_end;                  /* when its slice ends */
    int last_ran;                       /* the process that ran last + 1 */
    int64_t switch_end;                 /* a context switch in progress ends here */
    struct sg_proc p[SG_PROCS];
    struct sg_gate g[SG_PROCS];         /* after p: the layout before it is unchanged */
};
/* After the struct, page-aligned: one page per process slot, the host page the process registered (cuMemHostRegister
 * with DEVICEMAP) or allocated (FAKE_CUDA_HOST_UNMAP=1), mapped over its own memory so every process's model reads it */
#define SG_PAGE 4096
#define SG_PAGES_OFF (((sizeof(struct sg_gpu) + SG_PAGE - 1) / SG_PAGE) * SG_PAGE)
#define SG_FILE_SIZE (SG_PAGES_OFF + SG_PROCS * SG_PAGE)
static struct sg_gpu *sg;
static int sg_me = -1, sg_state;
static int64_t sg_slice;                /* FAKE_CUDA_SLICE_US in ns; 0 = fluid processor sharing */
static int64_t sg_switch;               /* FAKE_CUDA_SWITCH_US in ns */
static int64_t sg_poll = 100000;        /* FAKE_CUDA_SYNC_POLL_US in ns: how often a sync polls the shared GPU */
static int sg_holds;                    /* FAKE_CUDA_GATE_HOLDS=1: a context blocked on a wait keeps the GPU */

static void sg_point(struct sg_proc *p, int64_t t)
{
    int i = (p->head + p->n) % SG_PTS;
    if (p->n == SG_PTS)
        p->head = (p->head + 1) % SG_PTS;
    else
        p->n++;
    p->pt_t[i] = t;
    p->pt_d[i] = p->done;
}

/* Whether process pid has ended: gone, or a zombie (exited, not yet reaped by its parent). A zombie's threads are
 * all gone, so a lock it holds is never released: pytest leaves a pair test's second tenant unreaped while it
 * waits for the first, so a first tenant waiting on a lock its exited neighbour held spun until the test's
 * 60 s timeout (test_interposer_fake_gpu_lock.py). */
static int proc_ended(int pid)
{
    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    char path[32], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');  /* the state follows the command name, which may hold anything */
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* Takes the shared GPU's spin lock. A process that exits while one of its threads holds it (the interposer's
 * watcher thread polls events while the program's main thread returns from main) never releases it: every
 * other process would spin forever. The lock word holds the holder's pid, so a waiter takes over a lock whose
 * holder has ended (proc_ended: gone or a zombie). Pids are compared as this process sees them: the tests that
 * run a tenant in a PID namespace of its own run it alone on its fake GPU. */
static void sg_take(void)
{
    int me = (int)getpid();
    for (unsigned spins = 1;; spins++) {
        int cur = 0;
        if (__atomic_compare_exchange_n(&sg->lock, &cur, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
        if ((spins & 0xFFFFu) == 0 && cur > 0 && cur != me && proc_ended(cur))
            __atomic_compare_exchange_n(&sg->lock, &cur, 0, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    }
}

/* Maps the shared file and takes a slot; 0 when FAKE_CUDA_GPU is unset (per-process timeline). */
static int sg_attach(void)
{
    if (sg_state)
        return sg_state > 0;
    sg_state = -1;
    const char *f = getenv("FAKE_CUDA_GPU");
    if (!f || !*f)
        return 0;
    const char *sl = getenv("FAKE_CUDA_SLICE_US");
    sg_slice = sl ? strtoll(sl, NULL, 10) * 1000 : 0;
    const char *sw = getenv("FAKE_CUDA_SWITCH_US");
    sg_switch = sw ? strtoll(sw, NULL, 10) * 1000 : 0;
    const char *po = getenv("FAKE_CUDA_SYNC_POLL_US");
    if (po && strtoll(po, NULL, 10) > 0)
        sg_poll = strtoll(po, NULL, 10) * 1000;
    const char *gh = getenv("FAKE_CUDA_GATE_HOLDS");
    sg_holds = gh && !strcmp(gh, "1");
    int fd = open(f, O_RDWR | O_CREAT, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (st.st_size < (off_t)SG_FILE_SIZE && ftruncate(fd, SG_FILE_SIZE) != 0))
        return 0;
    void *m = mmap(NULL, SG_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return 0;
    sg = m;
    sg_take();
    for (int i = 0; i < SG_PROCS && sg_me < 0; i++)
        if (sg->p[i].pid == 0 || (proc_ended(sg->p[i].pid) && sg->p[i].queued == sg->p[i].done)) {
            memset(&sg->p[i], 0, sizeof(sg->p[i]));
            memset((void *)&sg->g[i], 0, sizeof(sg->g[i]));
            memset((char *)sg + SG_PAGES_OFF + (size_t)i * SG_PAGE, 0, SG_PAGE);
            sg->p[i].pid = getpid();
            sg_me = i;
        }
    __atomic_store_n(&sg->lock, 0, __ATOMIC_RELEASE);
    sg_state = sg_me >= 0 ? 1 : -1;
    return sg_state > 0;
}

/* Process i's work the GPU may run now: up to its queue's end, or to a blocking wait's position. */
static int64_t sg_limit(int i)
{
    return sg->g[i].on && sg->g[i].at < sg->p[i].queued ? sg->g[i].at : sg->p[i].queued;
}
static int sg_runnable(int i) { return sg_limit(i) > sg->p[i].done; }
/* Blocked: work queued behind a wait whose word is not written yet. */
static int sg_blocked(int i) { return sg->g[i].on && sg->p[i].queued > sg->p[i].done && !sg_runnable(i); }

/* Process i's word idx: one of its slot's words (cuMemHostAlloc), or from SG_WORDS on one of its page's (see SG_PAGES_OFF) */
static volatile uint32_t *sg_word(int i, int idx)
{
    if (idx < SG_WORDS)
        return &sg->g[i].word[idx];
    return (volatile uint32_t *)((char *)sg + SG_PAGES_OFF + (size_t)i * SG_PAGE) + (idx - SG_WORDS);
}

/* Waits whose word has been written are released, as of sg->last (see the header). */
static void sg_release(void)
{
    for (int i = 0; i < SG_PROCS; i++)
        if (sg->g[i].on && (int32_t)(*sg_word(i, sg->g[i].idx) - sg->g[i].val) >= 0) {
            sg->g[i].on = 0;
            sg->p[i].lastk = 0;  /* its progress resumes at a new point (no segment spans the blocked time) */
        }
}

/* Advances the fluid model to now: the GPU's time is split evenly between the processes with work queued. */
static void sg_advance(int64_t now)
{
    if (!sg->last)
        sg->last = now;
    sg_release();
    while (sg->last < now) {
        int k = 0;
        int64_t step = now - sg->last;
        for (int i = 0; i < SG_PROCS; i++)
            k += sg_runnable(i);
        if (!k) {
            sg->last = now;
            break;
        }
        for (int i = 0; i < SG_PROCS; i++)
            if (sg_runnable(i) && (sg_limit(i) - sg->p[i].done) * k < step)
                step = (sg_limit(i) - sg->p[i].done) * k;
        if (step < 1)
            step = 1;
        sg->last += step;
        for (int i = 0; i < SG_PROCS; i++)
            if (sg_runnable(i)) {
                struct sg_proc *p = &sg->p[i];
                p->done += step / k;
                if (p->done > sg_limit(i))
                    p->done = sg_limit(i);
                if (p->lastk == k && p->n >= 2) {  /* same rate: extend the last segment */
                    int last = (p->head + p->n - 1) % SG_PTS;
                    p->pt_t[last] = sg->last;
                    p->pt_d[last] = p->done;
                } else {
                    sg_point(p, sg->last);
                }
                p->lastk = p->done < sg_limit(i) ? k : 0;
            } else if (sg_blocked(i)) {
                sg->p[i].lastk = 0;
            }
    }
}

static int sg_waiting_besides(int r)
{
    for (int i = 0; i < SG_PROCS; i++)
        if (i != r && sg_runnable(i))
            return 1;
    return 0;
}

/* Advances the time-slice model to now: one process runs at a time (see the header). A running process's
 * points are the start and the end of each of its turns (lastk 1 while it runs). */
static void sg_advance_slices(int64_t now)
{
    if (!sg->last)
        sg->last = now;
    sg_release();
    while (sg->last < now) {
        int r = sg->run - 1;
        int has = r >= 0 && sg_runnable(r);
        int holds = r >= 0 && sg_holds && sg_blocked(r);  /* blocked on a wait, keeping the GPU (FAKE_CUDA_GATE_HOLDS) */
        if ((!has && !holds) || (sg->last >= sg->slice_end && sg_waiting_besides(r))) {
            int nx = -1;
            for (int k = 1; k <= SG_PROCS && nx < 0; k++) {
                int i = ((r < 0 ? SG_PROCS - 1 : r) + k) % SG_PROCS;
                if (sg_runnable(i))
                    nx = i;
            }
            if (r >= 0)
                sg->p[r].lastk = 0;  /* its turn is over */
            if (nx < 0) {
                sg->run = 0;
                sg->last = now;
                break;
            }
            if (sg->last_ran && sg->last_ran != nx + 1) {
                sg->switch_end = sg->last + sg_switch;  /* another context: a switch first */
                sg->p[nx].switched += sg_switch;
            }
            sg->last_ran = nx + 1;
            sg->run = nx + 1;
            sg->slice_end = (sg->switch_end > sg->last ? sg->switch_end : sg->last) + sg_slice;
            r = nx;
            holds = 0;
        }
        if (sg->switch_end > sg->last) {  /* switching: nobody progresses */
            sg->last = sg->switch_end < now ? sg->switch_end : now;
            continue;
        }
        struct sg_proc *p = &sg->p[r];
        if (holds) {  /* the GPU idles in r's context until its wait is released (a later advance) or its slice ends */
            int64_t until = sg_waiting_besides(r) && sg->slice_end < now ? sg->slice_end : now;
            if (until <= sg->last)
                until = sg->last + 1;
            sg->g[r].held_ns += until - sg->last;
            sg->last = until;
            p->lastk = 0;
            continue;
        }
        if (!p->lastk)
            sg_point(p, sg->last);  /* its turn starts */
        int64_t step = now - sg->last;
        if (sg_limit(r) - p->done < step)
            step = sg_limit(r) - p->done;
        if (sg_waiting_besides(r) && sg->slice_end - sg->last < step)
            step = sg->slice_end - sg->last > 0 ? sg->slice_end - sg->last : 1;
        p->done += step;
        sg->last += step;
        if (p->lastk && p->n >= 2) {  /* still its turn: extend the turn's end point */
            int last = (p->head + p->n - 1) % SG_PTS;
            p->pt_t[last] = sg->last;
            p->pt_d[last] = p->done;
        } else {
            sg_point(p, sg->last);
        }
        p->lastk = 1;
    }
}

static void sg_lock(void)
{
    sg_take();
    if (sg_slice > 0)
        sg_advance_slices(now_ns());
    else
        sg_advance(now_ns());
}

static void sg_unlock(void) { __atomic_store_n(&sg->lock, 0, __ATOMIC_RELEASE); }

/* When this process's completed work reached q (it has): interpolated from its ring of points. */
static int64_t sg_when(int64_t q)
{
    struct sg_proc *p = &sg->p[sg_me];
    int64_t t = p->n ? p->pt_t[p->head] : sg->last;
    for (int k = 0; k < p->n; k++) {
        int i = (p->head + k) % SG_PTS, j = (p->head + k + 1) % SG_PTS;
        if (p->pt_d[i] >= q)
            return p->pt_t[i];
        if (k + 1 < p->n && p->pt_d[j] >= q) {
            int64_t dd = p->pt_d[j] - p->pt_d[i];
            return p->pt_t[i] + (dd ? (q - p->pt_d[i]) * (p->pt_t[j] - p->pt_t[i]) / dd : 0);
        }
        t = p->pt_t[i];
    }
    return t;
}

API int64_t fake_gpu_ns(void)
{
    if (!sg_attach())
        return -1;
    sg_lock();
    int64_t d = sg->p[sg_me].done;
    sg_unlock();
    return d;
}

/* GPU time the other processes attached to the shared GPU have received (ended ones included): above 0 once a
 * neighbour's work has run. */
API int64_t fake_peer_gpu_ns(void)
{
    if (!sg_attach())
        return -1;
    sg_lock();
    int64_t d = 0;
    for (int i = 0; i < SG_PROCS; i++)
        if (i != sg_me && sg->p[i].pid)
            d += sg->p[i].done;
    sg_unlock();
    return d;
}

/* GPU time spent switching into this process's context (time slices with FAKE_CUDA_SWITCH_US): the GPU is
 * neither idle nor running anyone's kernels then; a cost of sharing, not in fake_gpu_ns. */
API int64_t fake_switch_ns(void)
{
    if (!sg_attach())
        return -1;
    sg_lock();
    int64_t d = sg->p[sg_me].switched;
    sg_unlock();
    return d;
}

static CUresult take(int dev, u64 size)
{
    if (dev < 0 || dev >= NDEV)
        return 201;  /* CUDA_ERROR_INVALID_CONTEXT */
    if (used_bytes[dev] + size > total_bytes())
        return 2;
    used_bytes[dev] += size;
    return 0;
}

static u64 record(u64 key, u64 size, int dev)
{
    if (!key) {
        key = next_addr;
        next_addr += (size + 0xFFFF) & ~0xFFFFULL;
        next_addr += 0x10000;
    }
    table[ntable++] = (struct alloc){key, size, dev, 0};
    return key;
}

static int release(u64 key)
{
    for (int i = 0; i < ntable; i++)
        if (table[i].key == key) {
            used_bytes[table[i].dev] -= table[i].size;
            table[i] = table[--ntable];
            return 0;
        }
    return 1;  /* CUDA_ERROR_INVALID_VALUE */
}

API u64 fake_used(int dev) { return used_bytes[dev]; }
API u64 fake_launches(int dev) { return launches[dev]; }
/* Copies the call counters (launches, event records, event queries, elapsed-time queries, capture queries, stream and
 * context synchronizes, event records into a stream being captured, elapsed-time queries that answered not ready:
 * asks of "is it done?" by the elapsed-time call, as the interposer's idle check makes them). */
API void fake_calls(u64 out[CALL_N])
{
    for (int k = 0; k < CALL_N; k++)
        out[k] = __atomic_load_n(&calls[k], __ATOMIC_RELAXED);
}
/* The context calls made in this process so far: cuCtxGetCurrent, cuCtxGetDevice (the program's own included). */
API void fake_ctx_calls(u64 out[2])
{
    for (int k = 0; k < 2; k++)
        out[k] = __atomic_load_n(&ctx_calls[k], __ATOMIC_RELAXED);
}
/* The modelled driver lock (FAKE_CUDA_DRIVER_LOCK=1): its acquisitions and how many of them found it held. */
API void fake_driver_lock(u64 out[2])
{
    out[0] = __atomic_load_n(&drv_taken, __ATOMIC_RELAXED);
    out[1] = __atomic_load_n(&drv_contended, __ATOMIC_RELAXED);
}

API CUresult cuInit(unsigned f) { return 0; }
API CUresult cuDriverGetVersion(int *v) { *v = 13000; return 0; }
API CUresult cuDeviceGetCount(int *n) { *n = NDEV; return 0; }
API CUresult cuDeviceGet(int *d, int i) { *d = i; return i < NDEV ? 0 : 101; }
API CUresult cuDeviceTotalMem_v2(size_t *b, int dev) { *b = total_bytes(); return 0; }
API CUresult cuDeviceGetUuid_v2(char *uuid, int dev)
{
    memset(uuid, 0, 16);
    memcpy(uuid, "FAKEGPU", 7);
    uuid[15] = (char)dev;
    return 0;
}
API CUresult cuDeviceGetPCIBusId(char *bus, int len, int dev)
{
    strncpy(bus, dev ? "00000000:02:00.0" : "00000000:01:00.0", len);
    return 0;
}
static int retained[NDEV];
static u64 ctx_bytes[NDEV];
/* Context generations: a context's handle may name a new context once the old one is destroyed (a primary context
 * reset or released to zero keeps its handle; cuCtxCreate reuses a destroyed context's slot, as a real driver may
 * reuse the memory behind a handle). The old context's events die with it: every call on one answers
 * CUDA_ERROR_INVALID_HANDLE, even though the handle current now has the same value. Indexed by ctx_slot(). */
#define MADE_MAX 16
static unsigned ctx_gen[NDEV + MADE_MAX];
static void host_ctx_died(int slot);
static void ctx_died(int slot)
{
    __atomic_add_fetch(&ctx_gen[slot], 1, __ATOMIC_RELEASE);
    host_ctx_died(slot);
}
API CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev)
{
    const char *c = getenv("FAKE_CUDA_CONTEXT_MIB");
    if (!retained[dev] && c) {
        CUresult r = take(dev, strtoull(c, NULL, 10) * MIB);
        if (r)
            return r;
        ctx_bytes[dev] = strtoull(c, NULL, 10) * MIB;
    }
    retained[dev]++;
    *ctx = (void *)(uintptr_t)(dev + 1);
    return 0;
}
/* Like the real driver: destroying the primary context frees every allocation made in it (VMM handles
 * and the stream-ordered pool stay), with no cuMemFree call anyone could intercept. */
static void destroy_context(int dev)
{
    for (int i = 0; i < ntable;)
        if (table[i].dev == dev && !table[i].vmm) {
            used_bytes[dev] -= table[i].size;
            table[i] = table[--ntable];
        } else {
            i++;
        }
    used_bytes[dev] -= ctx_bytes[dev];
    ctx_bytes[dev] = 0;
    retained[dev] = 0;
    ctx_died(dev);
}
API CUresult cuDevicePrimaryCtxRelease_v2(int dev)
{
    if (retained[dev] > 0 && --retained[dev] == 0)
        destroy_context(dev);
    return 0;
}
API CUresult cuDevicePrimaryCtxReset_v2(int dev) { destroy_context(dev); return 0; }
/* The pre-11.0 entry points, which the driver hands out for versions below 11000: the CUDA 13 runtime asks
 * for cuDevicePrimaryCtxRelease / cuDevicePrimaryCtxReset with version 7000 (cudaDeviceReset uses the latter). */
API CUresult cuDevicePrimaryCtxRelease(int dev) { return cuDevicePrimaryCtxRelease_v2(dev); }
API CUresult cuDevicePrimaryCtxReset(int dev) { return cuDevicePrimaryCtxReset_v2(dev); }
/* Contexts: a device's primary context is the handle dev + 1; cuCtxCreate makes more, handles MADE_BASE + slot, on
 * the same device (a program using the driver API with contexts of its own). Every context of a device runs its work
 * on the device's one timeline (FAKE_CUDA_GPU: the process's one queue), in launch order, an upper bound on a real
 * GPU's time slicing between contexts. Each context has its own default stream (the fake's streams are opaque
 * handles) and its own events: an event records only while its context is current, as the driver demands. */
#define MADE_BASE 0x100
static int made_dev[MADE_MAX], made_live[MADE_MAX];
static __thread uintptr_t cur_ctx;  /* the handle current on this thread, 0 = none */

/* The generation slot of context handle h (ctx_gen), -1 for none. */
static int ctx_slot(uintptr_t h)
{
    if (h >= 1 && h <= NDEV)
        return (int)h - 1;
    if (h >= MADE_BASE && h < MADE_BASE + MADE_MAX)
        return NDEV + (int)(h - MADE_BASE);
    return -1;
}

/* The device of context handle h, -1 when h names none (never made, or destroyed). */
static int ctx_device(uintptr_t h)
{
    if (h >= 1 && h <= NDEV)
        return (int)h - 1;
    if (h >= MADE_BASE && h < MADE_BASE + MADE_MAX && made_live[h - MADE_BASE])
        return made_dev[h - MADE_BASE];
    return -1;
}
API CUresult cuCtxSetCurrent(void *ctx)
{
    int d = ctx ? ctx_device((uintptr_t)ctx) : -1;
    if (ctx && d < 0)
        return 201;  /* CUDA_ERROR_INVALID_CONTEXT */
    cur = d;
    cur_ctx = (uintptr_t)ctx;
    return 0;
}
API CUresult cuCtxGetCurrent(void **ctx)
{
    __atomic_add_fetch(&ctx_calls[0], 1, __ATOMIC_RELAXED);
    *ctx = (void *)cur_ctx;
    return 0;
}
/* cuCtxCreate (the CUDA 11-12 signature, cuCtxCreate_v2): a new context on dev, made current on this thread. */
API CUresult cuCtxCreate_v2(void **ctx, unsigned flags, int dev)
{
    if (dev < 0 || dev >= NDEV)
        return 101;  /* CUDA_ERROR_INVALID_DEVICE */
    for (int i = 0; i < MADE_MAX; i++)
        if (!made_live[i]) {
            made_live[i] = 1;
            made_dev[i] = dev;
            *ctx = (void *)(uintptr_t)(MADE_BASE + i);
            return cuCtxSetCurrent(*ctx);
        }
    return 2;  /* CUDA_ERROR_OUT_OF_MEMORY */
}
/* Destroys a context made by cuCtxCreate (a primary context is released, not destroyed); current here: none now. */
API CUresult cuCtxDestroy_v2(void *ctx)
{
    uintptr_t h = (uintptr_t)ctx;
    if (h < MADE_BASE || ctx_device(h) < 0)
        return 201;
    made_live[h - MADE_BASE] = 0;
    ctx_died(ctx_slot(h));
    if (cur_ctx == h)
        cuCtxSetCurrent(NULL);
    return 0;
}
API CUresult cuCtxGetDevice(int *d)
{
    __atomic_add_fetch(&ctx_calls[1], 1, __ATOMIC_RELAXED);
    if (cur < 0)
        return 201;
    *d = cur;
    return 0;
}
API CUresult cuMemGetInfo_v2(size_t *f, size_t *t)
{
    if (cur < 0)
        return 201;
    *t = total_bytes();
    *f = total_bytes() - used_bytes[cur];
    return 0;
}

API CUresult cuMemAlloc_v2(u64 *p, size_t size)
{
    CUresult r = take(cur, size);
    if (!r)
        *p = record(0, size, cur);
    return r;
}
API CUresult cuMemAllocManaged(u64 *p, size_t size, unsigned flags) { return cuMemAlloc_v2(p, size); }
API CUresult cuMemAllocPitch_v2(u64 *p, size_t *pitch, size_t w, size_t h, unsigned elem)
{
    *pitch = (w + 511) / 512 * 512;
    return cuMemAlloc_v2(p, *pitch * h);
}
API CUresult cuMemFree_v2(u64 p) { return release(p); }

/* one stream-ordered pool per device; grows in 32 MiB grains, shrinks on synchronize */
struct pool { int dev; u64 reserved, used; };
static struct pool pools[NDEV + 1] = {{0, 0, 0}, {1, 0, 0}, {0, 0, 0}};
static u64 grain(u64 x) { return (x + POOL_GRAIN - 1) / POOL_GRAIN * POOL_GRAIN; }

API CUresult cuDeviceGetMemPool(struct pool **p, int dev) { *p = &pools[dev]; return 0; }
API CUresult cuMemPoolGetAttribute(struct pool *p, int attr, u64 *v)
{
    *v = attr == 5 ? p->reserved : attr == 7 ? p->used : 0;
    return 0;
}
API CUresult cuMemPoolTrimTo(struct pool *p, size_t keep)
{
    u64 target = grain(p->used) > keep ? grain(p->used) : keep;
    if (target < p->reserved) {
        used_bytes[p->dev] -= p->reserved - target;
        p->reserved = target;
    }
    return 0;
}
API CUresult cuMemAllocFromPoolAsync(u64 *ptr, size_t size, struct pool *p, void *s)
{
    if (p->used + size > p->reserved) {
        u64 grow = grain(p->used + size) - p->reserved;
        CUresult r = take(p->dev, grow);
        if (r)
            return r;
        p->reserved += grow;
    }
    p->used += size;
    *ptr = next_addr;
    next_addr += (size + 0xFFFF) & ~0xFFFFULL;
    table[ntable++] = (struct alloc){*ptr, size, -1 - (int)(p - pools), 0};  /* dev < 0: pool-owned */
    return 0;
}
API CUresult cuMemAllocAsync(u64 *ptr, size_t size, void *s) { return cuMemAllocFromPoolAsync(ptr, size, &pools[cur], s); }
API CUresult cuMemFreeAsync(u64 ptr, void *s)
{
    for (int i = 0; i < ntable; i++)
        if (table[i].key == ptr && table[i].dev < 0) {
            pools[-1 - table[i].dev].used -= table[i].size;
            table[i] = table[--ntable];
            return 0;
        }
    return release(ptr);
}
/* Waits until the current device's queued work is done (the process's, FAKE_CUDA_GPU). */
/* FAKE_CUDA_SYNC_SPIN=1: a sync spins until its work is done, as cudaDeviceScheduleSpin does (returns within a poll of
 * the GPU finishing), instead of sleeping (a sleep on this host wakes 50-100 us late: a sync that finds its kernel not
 * yet done returns that late, one that finds it done at once) */
static int sync_spins(void)
{
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("FAKE_CUDA_SYNC_SPIN");
        on = v && !strcmp(v, "1");
    }
    return on;
}
static CUresult wait_idle(void)
{
    if ((cur < 0 ? 0 : cur) == 0 && sg_attach()) {
        for (;;) {
            sg_lock();
            int64_t left = sg->p[sg_me].queued - sg->p[sg_me].done;
            sg_unlock();
            if (left <= 0)
                return 0;
            if (sync_spins())
                continue;
            struct timespec ts = {sg_poll / 1000000000LL, sg_poll % 1000000000LL};
            nanosleep(&ts, NULL);
        }
    }
    if (sync_spins()) {
        while (free_at[cur < 0 ? 0 : cur] > now_ns()) {
        }
        return 0;
    }
    int64_t left = free_at[cur < 0 ? 0 : cur] - now_ns();
    if (left > 0) {  /* blocking sync: sleep rather than spin, like cudaDeviceScheduleBlockingSync */
        struct timespec ts = {left / 1000000000LL, left % 1000000000LL};
        nanosleep(&ts, NULL);
    }
    return 0;
}
/* ---- destroyed streams (cuStreamDestroy(_v2)): the fake's streams are opaque handles; a destroyed one is remembered,
 * and every later call on it (an event record, a wait, a launch, a synchronize, a capture query) fails with
 * CUDA_ERROR_INVALID_HANDLE and is counted (fake_dead_calls): the driver may have freed it or given it to a new stream.
 * A destroyed handle stays dead (no test reuses one). ---- */
#define DEAD_MAX 64
static void *dead[DEAD_MAX];
static int ndead;
static u64 dead_calls;
static int stream_dead(void *s)
{
    if (!s || s == (void *)1 || s == (void *)2)
        return 0;
    for (int i = 0; i < ndead; i++)
        if (dead[i] == s) {
            __atomic_add_fetch(&dead_calls, 1, __ATOMIC_RELAXED);
            return 1;
        }
    return 0;
}
API CUresult cuStreamDestroy_v2(void *s)
{
    if (!s || s == (void *)1 || s == (void *)2 || stream_dead(s) || ndead >= DEAD_MAX)
        return 400;  /* CUDA_ERROR_INVALID_HANDLE (the default streams cannot be destroyed) */
    dead[ndead++] = s;
    return 0;  /* its queued work still runs (the fake's one queue): destroying a stream with work pending is legal */
}
API CUresult cuStreamDestroy(void *s) { return cuStreamDestroy_v2(s); }
/* calls made on a destroyed stream so far */
API u64 fake_dead_calls(void) { return __atomic_load_n(&dead_calls, __ATOMIC_RELAXED); }

/* ---- stream capture, as the driver API defines it: a capturing stream's launches are recorded into a graph, not
 * run; cuStreamEndCapture returns the graph, whose launch runs them (here a graph handle is its microseconds of work,
 * as cuGraphLaunch reads it: the captured launches' sum). A synchronize of a capturing stream (or of the context while
 * any stream captures) is not permitted: it fails with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates the
 * capture, whose cuStreamEndCapture then fails with CUDA_ERROR_STREAM_CAPTURE_INVALIDATED. An event recorded into a
 * capturing stream becomes a node of the graph: it never completes as an event (counted: CALL_CAPREC). ---- */
#define CAP_MAX 8
enum { CAP_NONE, CAP_ACTIVE, CAP_INVALIDATED };
static struct { void *s; int state; int64_t us; } caps[CAP_MAX];
static int cap_find(void *s)
{
    for (int i = 0; i < CAP_MAX; i++)
        if (caps[i].state != CAP_NONE && caps[i].s == s)
            return i;
    return -1;
}
static int cap_any(void)
{
    for (int i = 0; i < CAP_MAX; i++)
        if (caps[i].state != CAP_NONE)
            return 1;
    return 0;
}
static void cap_invalidate(int i)
{
    if (i >= 0)
        caps[i].state = CAP_INVALIDATED;
}
API CUresult cuStreamBeginCapture_v2(void *s, int mode)
{
    if (!s)
        return 900;  /* the legacy stream cannot be captured */
    if (cap_find(s) >= 0)
        return 401;  /* CUDA_ERROR_ILLEGAL_STATE: already capturing */
    for (int i = 0; i < CAP_MAX; i++)
        if (caps[i].state == CAP_NONE) {
            caps[i].s = s;
            caps[i].state = CAP_ACTIVE;
            caps[i].us = 0;
            return 0;
        }
    return 2;  /* CUDA_ERROR_OUT_OF_MEMORY */
}
API CUresult cuStreamBeginCapture(void *s) { return cuStreamBeginCapture_v2(s, 0); }
API CUresult cuStreamEndCapture(void *s, void **graph)
{
    int i = cap_find(s);
    *graph = NULL;
    if (i < 0)
        return 401;  /* CUDA_ERROR_ILLEGAL_STATE: not capturing */
    int ok = caps[i].state == CAP_ACTIVE;
    if (ok)
        *graph = (void *)(uintptr_t)caps[i].us;
    caps[i].state = CAP_NONE;
    return ok ? 0 : 901;  /* CUDA_ERROR_STREAM_CAPTURE_INVALIDATED */
}
/* The legacy stream (NULL, CU_STREAM_LEGACY) while another stream is captured: every fake stream is a blocking one, so
 * its use would add an implicit dependency on the capture (CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, as documented): the
 * capture query fails, and an event recorded there invalidates the capture (review of pausegap item 4) */
static int legacy_implicit(void *s)
{
    if (s && s != (void *)1)
        return 0;
    for (int i = 0; i < CAP_MAX; i++)
        if (caps[i].state == CAP_ACTIVE)
            return 1;
    return 0;
}
API CUresult cuStreamIsCapturing(void *s, int *st)
{
    COUNT(CALL_CAPTURE);
    if (stream_dead(s))
        return 400;
    if (legacy_implicit(s))
        return 906;  /* CUDA_ERROR_STREAM_CAPTURE_IMPLICIT */
    int i = cap_find(s);
    *st = i < 0 ? CAP_NONE : caps[i].state;
    return 0;
}
API CUresult cuStreamSynchronize(void *s)
{
    COUNT(CALL_SYNC);
    cost(COST_SYNC);
    if (stream_dead(s))
        return 400;
    int i = cap_find(s);
    if (i >= 0) {
        cap_invalidate(i);
        return 900;  /* CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED */
    }
    for (int i = 0; i < NDEV; i++)
        cuMemPoolTrimTo(&pools[i], 0);
    return wait_idle();
}
API CUresult cuCtxSynchronize(void)
{
    COUNT(CALL_SYNC);
    cost(COST_SYNC);
    if (cap_any()) {
        for (int i = 0; i < CAP_MAX; i++)
            if (caps[i].state == CAP_ACTIVE)
                cap_invalidate(i);
        return 900;  /* CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED */
    }
    return cur < 0 ? 201 : wait_idle();
}

typedef struct { int type, handleTypes; struct { int type, id; } loc; void *w; unsigned char f[8]; } Prop;
API CUresult cuMemCreate(u64 *h, size_t size, const Prop *prop, unsigned long long flags)
{
    CUresult r = take(prop->loc.id, size);
    if (!r) {
        *h = record(0, size, prop->loc.id);
        table[ntable - 1].vmm = 1;
    }
    return r;
}
API CUresult cuMemRelease(u64 h) { return release(h); }

typedef struct { size_t w, h; int fmt; unsigned ch; } Desc;
typedef struct { size_t w, h, d; int fmt; unsigned ch, flags; } Desc3;
typedef struct { size_t size, align; unsigned r[4]; } Req;
static u64 arr_size(size_t w, size_t h, size_t d, unsigned ch) { return ((w * (h ? h : 1) * (d ? d : 1) * 4 * (ch ? ch : 1)) + 0xFFFF) & ~0xFFFFULL; }
static u64 arr_bytes(u64 key)
{
    for (int i = 0; i < ntable; i++)
        if (table[i].key == key)
            return table[i].size;
    return 0;
}
static CUresult make_array(void **a, u64 size)
{
    CUresult r = take(cur, size);
    if (!r)
        *a = (void *)(uintptr_t)record(0, size, cur);
    return r;
}
API CUresult cuArrayCreate_v2(void **a, const Desc *d) { return make_array(a, arr_size(d->w, d->h, 1, d->ch)); }
API CUresult cuArray3DCreate_v2(void **a, const Desc3 *d) { return make_array(a, arr_size(d->w, d->h, d->d, d->ch)); }
API CUresult cuMipmappedArrayCreate(void **a, const Desc3 *d, unsigned levels)
{
    u64 base = arr_size(d->w, d->h, d->d, d->ch);
    return make_array(a, levels > 1 ? base * 3 / 2 : base);
}
API CUresult cuArrayGetMemoryRequirements(Req *req, void *a, int dev) { req->size = arr_bytes((u64)(uintptr_t)a); req->align = 65536; return 0; }
API CUresult cuMipmappedArrayGetMemoryRequirements(Req *req, void *a, int dev) { return cuArrayGetMemoryRequirements(req, a, dev); }
API CUresult cuArrayDestroy(void *a) { return release((u64)(uintptr_t)a); }
API CUresult cuMipmappedArrayDestroy(void *a) { return release((u64)(uintptr_t)a); }

/* ---- simulated execution ---- */
struct event { int64_t t; int64_t q; int shared; uintptr_t ctx; unsigned gen; };
/* Whether e's context is gone (destroyed or reset since e was made): then every call on e fails. */
static int event_dead(const struct event *e)
{
    int k = ctx_slot(e->ctx);
    return k >= 0 && __atomic_load_n(&ctx_gen[k], __ATOMIC_ACQUIRE) != e->gen;
}
static void run_kernel(int64_t us);
/* FAKE_CUDA_LAUNCH_FAIL_EVERY=N: every Nth launch fails (CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES) and queues nothing, as a
 * launch with a bad configuration does (gatemarks: a gated launch that fails must still release its wait) */
static int launch_fails(void)
{
    static long every = -1;
    static u64 n;
    if (every < 0) {
        const char *v = getenv("FAKE_CUDA_LAUNCH_FAIL_EVERY");
        every = v ? strtol(v, NULL, 10) : 0;
    }
    return every > 0 && __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED) % (u64)every == 0;
}
/* FAKE_CUDA_LAUNCH_SYNCS=1: every launch call returns only once its stream is idle, as with CUDA_LAUNCH_BLOCKING=1 or a
 * lazily loaded module's first launch (gatemarks: a launch call that waits for the GPU behind the library's own gate
 * must not hang; the watcher releases it) */
static int launch_syncs(void)
{
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("FAKE_CUDA_LAUNCH_SYNCS");
        on = v && v[0] == '1';
    }
    return on;
}
API CUresult cuStreamSynchronize(void *s);
/* FAKE_CUDA_LAUNCH_DESTROYS_CTX=N: the Nth launch call, once its kernel is queued, destroys its context (one made by
 * cuCtxCreate) through whatever cuCtxDestroy_v2 the process resolves first (the interposer's hook when it is preloaded),
 * as another thread of the program destroying the context during the launch call would (review of gatemarks item 3: a
 * gated launch's release store after that faulted where the word was the context's own pinned memory) */
static void launch_destroys_ctx(void)
{
    static long at = -1;
    static u64 n;
    if (at < 0) {
        const char *v = getenv("FAKE_CUDA_LAUNCH_DESTROYS_CTX");
        at = v ? strtol(v, NULL, 10) : 0;
    }
    if (at <= 0 || __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED) != (u64)at || cur_ctx < MADE_BASE)
        return;
    CUresult (*destroy)(void *) = (CUresult(*)(void *))dlsym(RTLD_DEFAULT, "cuCtxDestroy_v2");
    (destroy ? destroy : cuCtxDestroy_v2)((void *)cur_ctx);
}
/* A launch of us microseconds on stream s: recorded into the graph if s is being captured, run otherwise. */
static CUresult submit(void *s, int64_t us)
{
    if (stream_dead(s))
        return 400;
    if (launch_fails()) {
        COUNT(CALL_LAUNCH);
        cost(COST_LAUNCH);
        return 701;
    }
    int i = cap_find(s);
    if (i < 0) {
        run_kernel(us);
        launch_destroys_ctx();
        return launch_syncs() ? cuStreamSynchronize(s) : 0;
    }
    COUNT(CALL_LAUNCH);
    cost(COST_LAUNCH);
    if (caps[i].state != CAP_ACTIVE)
        return 901;  /* CUDA_ERROR_STREAM_CAPTURE_INVALIDATED */
    caps[i].us += us;
    return 0;
}
static void run_kernel(int64_t us)
{
    COUNT(CALL_LAUNCH);
    cost(COST_LAUNCH);
    int d = cur < 0 ? 0 : cur;
    if (d == 0 && sg_attach()) {
        sg_lock();
        struct sg_proc *p = &sg->p[sg_me];
        if (p->queued == p->done) {
            sg_point(p, now_ns());  /* idle until now */
            p->lastk = 0;
        }
        p->queued += us * 1000;
        sg_unlock();
        launches[d]++;
        return;
    }
    int64_t start = now_ns() > free_at[d] ? now_ns() : free_at[d];
    free_at[d] = start + us * 1000;
    launches[d]++;
}
API CUresult cuEventCreate(struct event **e, unsigned flags)
{
    *e = calloc(1, sizeof(**e));
    (*e)->ctx = cur_ctx;
    int k = ctx_slot(cur_ctx);
    (*e)->gen = k >= 0 ? __atomic_load_n(&ctx_gen[k], __ATOMIC_ACQUIRE) : 0;
    return 0;
}
API CUresult cuEventDestroy_v2(struct event *e) { free(e); return 0; }
API CUresult cuEventRecord(struct event *e, void *s)
{
    COUNT(CALL_RECORD);
    cost(COST_RECORD);
    static int broken = -1;  /* FAKE_CUDA_RECORD_FAIL=1: no event ever records (a driver whose events do not work) */
    if (broken < 0)
        broken = getenv("FAKE_CUDA_RECORD_FAIL") && !strcmp(getenv("FAKE_CUDA_RECORD_FAIL"), "1");
    if (broken)
        return 999;  /* CUDA_ERROR_UNKNOWN */
    if (stream_dead(s))
        return 400;
    if (legacy_implicit(s)) {  /* the implicit dependency invalidates the captures */
        for (int i = 0; i < CAP_MAX; i++)
            if (caps[i].state == CAP_ACTIVE)
                cap_invalidate(i);
        return 906;  /* CUDA_ERROR_STREAM_CAPTURE_IMPLICIT */
    }
    if (cap_find(s) >= 0) {  /* a node of the graph, not a timing event: it never completes as one */
        COUNT(CALL_CAPREC);
        e->t = INT64_MAX;
        e->shared = 0;
        return 0;
    }
    if (event_dead(e))
        return 400;  /* CUDA_ERROR_INVALID_HANDLE: its context was destroyed */
    if (e->ctx != cur_ctx)
        return 400;  /* CUDA_ERROR_INVALID_HANDLE: the event's context is not the stream's */
    int d = cur < 0 ? 0 : cur;
    if (d == 0 && sg_attach()) {
        sg_lock();
        if (sg_slice > 0) {  /* a tiny piece of work: done when this process holds the GPU */
            struct sg_proc *p = &sg->p[sg_me];
            if (p->queued == p->done) {
                sg_point(p, now_ns());
                p->lastk = 0;
            }
            p->queued += 1;
        }
        e->q = sg->p[sg_me].queued;
        e->shared = 1;
        e->t = e->q <= sg->p[sg_me].done ? now_ns() : INT64_MAX;
        sg_unlock();
        return 0;
    }
    e->t = now_ns() > free_at[d] ? now_ns() : free_at[d];
    return 0;
}
static int64_t event_time(struct event *e)
{
    if (e->shared && e->t == INT64_MAX) {
        sg_lock();
        if (sg->p[sg_me].done >= e->q)
            e->t = sg_when(e->q);
        sg_unlock();
    }
    return e->t;
}
static CUresult event_query(struct event *e)
{
    if (event_dead(e))
        return 400;
    return e->shared ? (event_time(e) != INT64_MAX ? 0 : 600) : now_ns() >= e->t ? 0 : 600;
}
API CUresult cuEventQuery(struct event *e) { COUNT(CALL_QUERY); cost(COST_QUERY); return event_query(e); }
API CUresult cuEventSynchronize(struct event *e)
{
    CUresult r;
    while ((r = event_query(e)) == 600) {
    }
    return r;
}
API CUresult cuEventElapsedTime_v2(float *ms, struct event *a, struct event *b)
{
    COUNT(CALL_ELAPSED);
    cost(COST_ELAPSED);
    if (event_dead(a) || event_dead(b))
        return 400;
    if (event_query(a) || event_query(b)) {
        COUNT(CALL_ELAPSED_NR);
        return 600;  /* CUDA_ERROR_NOT_READY */
    }
    *ms = (float)((b->t - a->t) / 1e6);
    return 0;
}
API CUresult cuEventElapsedTime(float *ms, struct event *a, struct event *b) { return cuEventElapsedTime_v2(ms, a, b); }
/* ---- stream waits on host-mapped words (gatemarks; see the header) ---- */
static u64 gate_capwaits;  /* waits enqueued on a stream being captured (fake_gate_stats) */
static int stream_waits(int dev)
{
    const char *n = getenv("FAKE_CUDA_NO_STREAM_WAIT");
    return dev == 0 && !(n && !strcmp(n, "1")) && sg_attach();
}
/* CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR (123 in CUDA 11's header, the V2 memops' NOR condition) and its V1
 * number (94): 1 where the model has stream waits, 0 with FAKE_CUDA_NO_NOR=1 (a device whose waits take GEQ but not
 * NOR: the attribute says nothing about GEQ); any other attribute 0 */
API CUresult cuDeviceGetAttribute(int *v, int attr, int dev)
{
    if (dev < 0 || dev >= NDEV)
        return 101;  /* CUDA_ERROR_INVALID_DEVICE */
    const char *nn = getenv("FAKE_CUDA_NO_NOR");
    *v = (attr == 123 || attr == 94) ? stream_waits(dev) && !(nn && !strcmp(nn, "1")) : 0;
    return 0;
}
#define HOSTALLOC_DEVICEMAP 0x02
/* The process's host page (see SG_PAGES_OFF): registered by cuMemHostRegister(DEVICEMAP) in a context (host_kind
 * HOST_REGISTERED; unregistered when that context dies, the memory, the caller's, left as it is), or allocated by
 * cuMemHostAlloc(DEVICEMAP) with FAKE_CUDA_HOST_UNMAP=1 (HOST_ALLOCATED; unmapped when its context dies, as the driver
 * frees a context's pinned allocations: a store to it afterwards faults, review of gatemarks item 3). */
enum { HOST_NONE, HOST_REGISTERED, HOST_ALLOCATED };
static void *host_page;        /* its address in this process, NULL = none */
static int host_kind, host_slot, host_live;  /* host_live: registered (or allocated) and its context not dead since */
static unsigned host_gen;      /* its context's generation then (ctx_gen) */
static int host_unmap(void)
{
    const char *v = getenv("FAKE_CUDA_HOST_UNMAP");
    return v && !strcmp(v, "1");
}
/* Maps this process's page of the shared file at p (MAP_FIXED over what is there, its contents kept), or at a new
 * address when p is NULL; the address, NULL when it cannot. */
static void *host_map(void *p)
{
    const char *f = getenv("FAKE_CUDA_GPU");
    int fd = f ? open(f, O_RDWR) : -1;
    if (fd < 0)
        return NULL;
    char keep[SG_PAGE];
    if (p)
        memcpy(keep, p, SG_PAGE);
    void *m = mmap(p, SG_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | (p ? MAP_FIXED : 0), fd,
                   (off_t)(SG_PAGES_OFF + (size_t)sg_me * SG_PAGE));
    close(fd);
    if (m == MAP_FAILED)
        return NULL;
    if (p)
        memcpy(m, keep, SG_PAGE);
    else
        memset(m, 0, SG_PAGE);
    return m;
}
static void host_ctx_died(int slot)
{
    if (!host_page || !host_live || slot != host_slot)
        return;
    host_live = 0;
    if (host_kind == HOST_ALLOCATED) {
        munmap(host_page, SG_PAGE);
        host_page = NULL;
        host_kind = HOST_NONE;
    }
}
static int host_alive(void)
{
    return host_page && host_live && __atomic_load_n(&ctx_gen[host_slot], __ATOMIC_ACQUIRE) == host_gen;
}
static void host_claim(void *p, int kind)
{
    host_page = p;
    host_kind = kind;
    host_slot = ctx_slot(cur_ctx);
    host_gen = host_slot >= 0 ? __atomic_load_n(&ctx_gen[host_slot], __ATOMIC_ACQUIRE) : 0;
    host_live = host_slot >= 0;
}
API CUresult cuMemHostAlloc(void **pp, size_t bytes, unsigned flags)
{
    *pp = NULL;
    if ((flags & HOSTALLOC_DEVICEMAP) && host_unmap() && bytes <= SG_PAGE && !host_page &&
        stream_waits(cur < 0 ? 0 : cur) && ctx_slot(cur_ctx) >= 0) {
        void *m = host_map(NULL);
        if (m)
            host_claim(m, HOST_ALLOCATED);
        *pp = m;
        return m ? 0 : 2;
    }
    if ((flags & HOSTALLOC_DEVICEMAP) && bytes <= sizeof(uint32_t) * SG_WORDS && stream_waits(cur < 0 ? 0 : cur)) {
        sg_lock();
        struct sg_gate *g = &sg->g[sg_me];
        uint32_t n = (uint32_t)((bytes + sizeof(uint32_t) - 1) / sizeof(uint32_t));
        if (g->used + n <= SG_WORDS) {
            *pp = (void *)&g->word[g->used];
            g->used += n;
        }
        sg_unlock();
        return *pp ? 0 : 2;  /* CUDA_ERROR_OUT_OF_MEMORY: the slot's words are all handed out */
    }
    *pp = calloc(1, bytes ? bytes : 1);
    return *pp ? 0 : 2;
}
API CUresult cuMemFreeHost(void *p)
{
    if (sg && (char *)p >= (char *)sg && (char *)p < (char *)(sg + 1))
        return 0;  /* a word of the shared file: kept (the slot is cleared when the next process takes it) */
    if (p && p == host_page && host_kind == HOST_ALLOCATED) {
        munmap(p, SG_PAGE);
        host_page = NULL;
        host_kind = HOST_NONE;
        return 0;
    }
    free(p);
    return 0;
}
/* cuMemHostRegister(_v2): page-aligned memory of at most a page (all the model needs), in the current context. With
 * DEVICEMAP on the shared GPU the page becomes the process's page of the shared file (contents kept, see SG_PAGES_OFF);
 * one such page per process. Registered again while its context lives: CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED. */
#define HOSTREGISTER_DEVICEMAP 0x02
API CUresult cuMemHostRegister_v2(void *p, size_t bytes, unsigned flags)
{
    if (ctx_slot(cur_ctx) < 0)
        return 201;  /* CUDA_ERROR_INVALID_CONTEXT */
    if (!p || ((uintptr_t)p & (SG_PAGE - 1)) || !bytes || bytes > SG_PAGE || (host_page && p != host_page))
        return 1;  /* CUDA_ERROR_INVALID_VALUE */
    if (host_alive())
        return 712;  /* CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED */
    if (!host_page && (flags & HOSTREGISTER_DEVICEMAP) && stream_waits(cur < 0 ? 0 : cur) && !host_map(p))
        return 2;
    host_claim(p, HOST_REGISTERED);
    return 0;
}
API CUresult cuMemHostRegister(void *p, size_t bytes, unsigned flags) { return cuMemHostRegister_v2(p, bytes, flags); }
API CUresult cuMemHostUnregister(void *p)
{
    if (!p || p != host_page || host_kind != HOST_REGISTERED || !host_alive())
        return 713;  /* CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED */
    host_live = 0;
    return 0;
}
/* Host memory is mapped at the same address (unified addressing); the host page only while registered (or allocated). */
API CUresult cuMemHostGetDevicePointer_v2(u64 *d, void *p, unsigned flags)
{
    if (host_page && (char *)p >= (char *)host_page && (char *)p < (char *)host_page + SG_PAGE && !host_alive())
        return 1;  /* CUDA_ERROR_INVALID_VALUE: not registered (its context died) */
    *d = (u64)(uintptr_t)p;
    return p ? 0 : 1;
}
#define WAIT_VALUE_GEQ 0x0
API CUresult cuStreamWaitValue32_v2(void *s, u64 addr, uint32_t value, unsigned flags)
{
    cost(COST_WAIT);
    if (stream_dead(s))
        return 400;
    if (cap_find(s) >= 0) {  /* a node of the graph: counted, never run here */
        __atomic_add_fetch(&gate_capwaits, 1, __ATOMIC_RELAXED);
        return 0;
    }
    int d = cur < 0 ? 0 : cur;
    if ((flags & 0xF) != WAIT_VALUE_GEQ || !stream_waits(d))
        return 801;  /* CUDA_ERROR_NOT_SUPPORTED */
    sg_lock();
    struct sg_gate *g = &sg->g[sg_me];
    volatile uint32_t *w = (volatile uint32_t *)(uintptr_t)addr;
    int idx = (int)(w - g->word);
    if (host_page && (char *)w >= (char *)host_page && (char *)w < (char *)host_page + SG_PAGE && host_alive())
        idx = SG_WORDS + (int)(w - (volatile uint32_t *)host_page);  /* a word of the host page (sg_word) */
    else if (idx >= (int)g->used)
        idx = -1;
    CUresult r = 0;
    if (idx < 0) {
        r = 1;  /* CUDA_ERROR_INVALID_VALUE: not a word this process was handed, or one no longer mapped */
    } else if (g->on) {
        r = 801;  /* one blocked wait at a time (see the header) */
    } else {
        g->waits++;
        if ((int32_t)(*w - value) < 0) {  /* not written yet: the queue stops here */
            g->on = 1;
            g->idx = idx;
            g->val = value;
            g->at = sg->p[sg_me].queued;
            g->blocked++;
        }
    }
    sg_unlock();
    return r;
}
API CUresult cuStreamWaitValue32(void *s, u64 addr, uint32_t value, unsigned flags)
{
    return cuStreamWaitValue32_v2(s, addr, value, flags);
}
/* The waits enqueued, those that blocked the queue, the ns the GPU idled held by a blocked context (holds mode; the
 * process's slot), and the waits enqueued on a stream being captured. */
API void fake_gate_stats(u64 out[4])
{
    memset(out, 0, 4 * sizeof(u64));
    if (sg_attach()) {
        sg_lock();
        out[0] = (u64)sg->g[sg_me].waits;
        out[1] = (u64)sg->g[sg_me].blocked;
        out[2] = (u64)sg->g[sg_me].held_ns;
        sg_unlock();
    }
    out[3] = __atomic_load_n(&gate_capwaits, __ATOMIC_RELAXED);
}

API CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shm, void *s, void **p, void **e) { return submit(s, gx); }
API CUresult cuLaunchKernel_ptsz(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shm, void *s, void **p, void **e) { return submit(s, gx); }
typedef struct { unsigned gx, gy, gz, bx, by, bz, shm; void *s; void *attrs; unsigned n; } Cfg;
API CUresult cuLaunchKernelEx(const Cfg *c, void *f, void **p, void **e) { return submit(c->s, c->gx); }
API CUresult cuLaunchCooperativeKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shm, void *s, void **p) { return submit(s, gx); }
API CUresult cuGraphLaunch(void *g, void *s) { return submit(s, (int64_t)(uintptr_t)g); }

/* ---- cuGetProcAddress: base name + version -> versioned entry point, as the real driver does ---- */
API CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, unsigned long long flags, int *status);
API CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, unsigned long long flags);
#define E(base, fn) {base, (void *)fn}
static const struct { const char *name; void *fn; } procs[] = {
    E("cuInit", cuInit), E("cuDriverGetVersion", cuDriverGetVersion), E("cuDeviceGet", cuDeviceGet),
    E("cuDeviceGetCount", cuDeviceGetCount), E("cuDeviceTotalMem", cuDeviceTotalMem_v2),
    E("cuDeviceGetUuid", cuDeviceGetUuid_v2), E("cuDeviceGetPCIBusId", cuDeviceGetPCIBusId),
    E("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain), E("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease_v2),
    E("cuDevicePrimaryCtxReset", cuDevicePrimaryCtxReset_v2), E("cuCtxSetCurrent", cuCtxSetCurrent),
    E("cuCtxGetCurrent", cuCtxGetCurrent), E("cuCtxCreate", cuCtxCreate_v2), E("cuCtxDestroy", cuCtxDestroy_v2),
    E("cuCtxSynchronize", cuCtxSynchronize), E("cuCtxGetDevice", cuCtxGetDevice), E("cuMemGetInfo", cuMemGetInfo_v2),
    E("cuMemAlloc", cuMemAlloc_v2), E("cuMemAllocManaged", cuMemAllocManaged), E("cuMemAllocPitch", cuMemAllocPitch_v2),
    E("cuMemFree", cuMemFree_v2), E("cuDeviceGetMemPool", cuDeviceGetMemPool),
    E("cuMemPoolGetAttribute", cuMemPoolGetAttribute), E("cuMemPoolTrimTo", cuMemPoolTrimTo),
    E("cuMemAllocFromPoolAsync", cuMemAllocFromPoolAsync), E("cuMemAllocAsync", cuMemAllocAsync),
    E("cuMemFreeAsync", cuMemFreeAsync), E("cuStreamSynchronize", cuStreamSynchronize),
    E("cuStreamIsCapturing", cuStreamIsCapturing), E("cuStreamBeginCapture", cuStreamBeginCapture_v2),
    E("cuStreamEndCapture", cuStreamEndCapture), E("cuMemCreate", cuMemCreate), E("cuMemRelease", cuMemRelease),
    E("cuArrayCreate", cuArrayCreate_v2), E("cuArray3DCreate", cuArray3DCreate_v2),
    E("cuMipmappedArrayCreate", cuMipmappedArrayCreate), E("cuArrayGetMemoryRequirements", cuArrayGetMemoryRequirements),
    E("cuMipmappedArrayGetMemoryRequirements", cuMipmappedArrayGetMemoryRequirements),
    E("cuArrayDestroy", cuArrayDestroy), E("cuMipmappedArrayDestroy", cuMipmappedArrayDestroy),
    E("cuEventCreate", cuEventCreate), E("cuEventDestroy", cuEventDestroy_v2), E("cuEventRecord", cuEventRecord),
    E("cuEventQuery", cuEventQuery), E("cuEventSynchronize", cuEventSynchronize),
    E("cuEventElapsedTime", cuEventElapsedTime_v2), E("cuLaunchKernel", cuLaunchKernel),
    E("cuLaunchKernelEx", cuLaunchKernelEx), E("cuLaunchCooperativeKernel", cuLaunchCooperativeKernel),
    E("cuGraphLaunch", cuGraphLaunch), E("cuGetProcAddress", cuGetProcAddress_v2),
    E("cuDeviceGetAttribute", cuDeviceGetAttribute), E("cuMemHostAlloc", cuMemHostAlloc),
    E("cuMemFreeHost", cuMemFreeHost), E("cuMemHostGetDevicePointer", cuMemHostGetDevicePointer_v2),
    E("cuStreamWaitValue32", cuStreamWaitValue32_v2), E("cuMemHostRegister", cuMemHostRegister_v2),
    E("cuMemHostUnregister", cuMemHostUnregister), E("cuStreamDestroy", cuStreamDestroy_v2),
};

CUresult cuGetProcAddress_v2(const char *sym, void **pfn, int ver, unsigned long long flags, int *status)
{
    *pfn = NULL;
    if (!strcmp(sym, "cuLaunchKernel") && (flags & 2)) {  /* CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM */
        *pfn = (void *)cuLaunchKernel_ptsz;
    } else if (!strcmp(sym, "cuGetProcAddress") && ver < 12000) {
        *pfn = (void *)cuGetProcAddress;
    } else if (!strcmp(sym, "cuDevicePrimaryCtxRelease") && ver < 11000) {
        *pfn = (void *)cuDevicePrimaryCtxRelease;
    } else if (!strcmp(sym, "cuDevicePrimaryCtxReset") && ver < 11000) {
        *pfn = (void *)cuDevicePrimaryCtxReset;
    } else {
        for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
            if (!strcmp(procs[i].name, sym))
                *pfn = procs[i].fn;
    }
    if (status)
        *status = *pfn ? 0 : 1;
    return *pfn ? 0 : 500;
}

CUresult cuGetProcAddress(const char *sym, void **pfn, int ver, unsigned long long flags)
{
    return cuGetProcAddress_v2(sym, pfn, ver, flags, NULL);
}
