/* driver_app.c - a tiny CUDA "application" for the interposer tests. Like the CUDA 12/13 runtime it
 * dlopens libcuda.so.1 and resolves every entry point through cuGetProcAddress_v2 (DRIVER_RESOLVE=proc,
 * default) or through dlsym of the versioned names (DRIVER_RESOLVE=dlsym). It runs the commands given
 * on the command line and prints one result line per command. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int CUresult;
typedef unsigned long long u64;
static void *lib;
static CUresult (*getproc)(const char *, void **, int, unsigned long long, int *);
static int use_dlsym;

static void *resolve_at(const char *base, const char *versioned, int version)
{
    void *p = NULL;
    if (use_dlsym)
        return dlsym(lib, versioned);
    int status = 0;
    getproc(base, &p, version, 0, &status);
    return p;
}
static void *resolve(const char *base, const char *versioned) { return resolve_at(base, versioned, 13000); }
#define R(var, base, ver) var = resolve(base, ver)

static CUresult (*ctxcreate)(void **, unsigned, int), (*ctxdestroy)(void *);
static void *made_ctx;  /* the context the last ctxnew made */
static CUresult (*retain)(void **, int), (*ctxrelease)(int), (*ctxreset)(int), (*rtrelease)(int), (*rtreset)(int), (*setcur)(void *), (*alloc)(u64 *, size_t), (*mfree)(u64),
    (*pitch)(u64 *, size_t *, size_t, size_t, unsigned), (*managed)(u64 *, size_t, unsigned),
    (*aalloc)(u64 *, size_t, void *), (*afree)(u64, void *), (*getpool)(void **, int),
    (*palloc)(u64 *, size_t, void *, void *), (*ssync)(void *), (*create)(u64 *, size_t, const void *, u64),
    (*mrelease)(u64), (*arr)(void **, const void *), (*arr3)(void **, const void *),
    (*mip)(void **, const void *, unsigned), (*arrdes)(void *), (*mipdes)(void *), (*meminfo)(size_t *, size_t *),
    (*totalmem)(size_t *, int), (*launch)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                          unsigned, void *, void **, void **),
    (*launchex)(const void *, void *, void **, void **),
    (*coop)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void *, void **),
    (*graph)(void *, void *);
static CUresult (*capbegin)(void *, int), (*capend)(void *, void **), (*capquery)(void *, int *), (*sdestroy)(void *);
static void *captured;  /* the graph the last endcapture returned */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static CUresult (*ctxsync)(void), (*streamsync)(void *), (*getcur)(void **);
static void (*fake_calls)(u64 *);

/* DRIVER_SYNC=ctx: every sync the program makes is a cuCtxSynchronize (torch.cuda.synchronize's call: the H200
 * bench's graphs program syncs so), not cuStreamSynchronize of the legacy stream (the default) */
static CUresult ctx_sync_any(void *s)
{
    (void)s;
    return ctxsync();
}

static double sync_end_s;  /* when the last ctxsync / ssyncon returned */

/* bglaunch S US: a second thread launches one kernel of US microseconds on stream handle S as soon as the fake has
 * counted one more synchronize than when the thread started (a sync of the main thread has begun), so the launch
 * and its marks fall during that sync; bgjoin reports whether it returned before the sync did */
static struct { pthread_t t; void *s, *ctx; unsigned us; u64 syncs; CUresult r; double at; } bg;

/* forkdestroy's launching thread */
static struct { unsigned us; void *ctx; CUresult r; } fk;
static void *fk_main(void *arg)
{
    (void)arg;
    setcur(fk.ctx);
    fk.r = launch(NULL, fk.us, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL);
    return NULL;
}
static void *bg_main(void *arg)
{
    (void)arg;
    setcur(bg.ctx);  /* the main thread's context: the launch is measured like its own */
    u64 n[8] = {0};
    double give_up = 0;
    for (;;) {
        fake_calls(n);
        if (n[5] > bg.syncs)
            break;
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
        if (!give_up)
            give_up = now_s() + 10;
        else if (now_s() > give_up)
            return NULL;  /* no sync came: bgjoin reports it */
    }
    bg.r = launch(NULL, bg.us, 1, 1, 32, 1, 1, 0, bg.s, NULL, NULL);
    bg.at = now_s();
    return NULL;
}
static int busy_gap;  /* DRIVER_BUSY_GAP=1: spin/trace wait their gap on the clock, not in usleep */

static void gap_wait(unsigned us)
{
    if (!busy_gap) {
        usleep(us);
        return;
    }
    double until = now_s() + us / 1e6;
    while (now_s() < until) {
    }
}

static u64 parse_size(const char *s)
{
    char *end;
    u64 v = strtoull(s, &end, 10);
    return *end == 'g' ? v << 30 : *end == 'm' ? v << 20 : *end == 'k' ? v << 10 : v;
}

static u64 handles[4096];
static int nh;

static void report(const char *what, CUresult r, u64 h)
{
    if (r == 0) {
        handles[nh] = h;
        printf("%s ok %d\n", what, nh++);
    } else {
        printf("%s err %d\n", what, r);
    }
}

static CUresult run_launch(const char *kind, unsigned us)
{
    if (!strcmp(kind, "kernel"))
        return launch(NULL, us, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL);
    if (!strcmp(kind, "ex")) {
        struct { unsigned gx, gy, gz, bx, by, bz, shm; void *s; void *a; unsigned n; } cfg = {us, 1, 1, 32, 1, 1, 0, NULL, NULL, 0};
        return launchex(&cfg, NULL, NULL, NULL);
    }
    if (!strcmp(kind, "coop"))
        return coop(NULL, us, 1, 1, 32, 1, 1, 0, NULL, NULL);
    return graph((void *)(uintptr_t)us, NULL);
}

#define MAX_SAMPLES 100000

/* (wall time, GPU time the fake gave this process) every bin seconds of a spin */
struct samples {
    int n;
    double t[MAX_SAMPLES], g[MAX_SAMPLES];
};

/* A sampler thread for wtrace: the GPU time the fake gave this process every bin of wall time, whether or not the
 * launching thread is held inside a launch (trace samples only between launches, so it sees nothing of a hold) */
static struct { pthread_t t; int64_t (*gpu_ns)(void); double bin; volatile int stop; struct samples sm; } wt;

static void *wtrace_main(void *arg)
{
    (void)arg;
    while (!wt.stop && wt.sm.n < MAX_SAMPLES) {
        wt.sm.t[wt.sm.n] = now_s();
        wt.sm.g[wt.sm.n] = wt.gpu_ns() / 1e9;
        wt.sm.n++;
        usleep((useconds_t)(wt.bin * 1e6));
    }
    return NULL;
}

static double spin_sync_s;  /* wall seconds the last spin_for spent in its periodic syncs (the final one excluded) */

/* DRIVER_SPIN_MIX=BIG_US:NBIG:NSMALL (bench/turns.py case "train"): spin's kernels come in phases, NBIG kernels of
 * BIG_US then NSMALL of spin's US, as a training step's GEMMs and its elementwise/optimizer kernels (the library's
 * per-mark average then misjudges the queued work, as on the GPU). DRIVER_SPIN_STEP_GAP_US=G: G us of host time after
 * each periodic sync (the step's Python work). Unset or malformed: plain spin. */
static unsigned mix_big, mix_nbig, mix_nsmall, step_gap;

static void spin_mix_env(void)
{
    const char *m = getenv("DRIVER_SPIN_MIX"), *g = getenv("DRIVER_SPIN_STEP_GAP_US");
    char end;
    if (m && (sscanf(m, "%u:%u:%u%c", &mix_big, &mix_nbig, &mix_nsmall, &end) != 3 || !mix_big || mix_big > 1000000 ||
              !mix_nbig || !mix_nsmall)) {
        fprintf(stderr, "driver_app: ignoring DRIVER_SPIN_MIX=\"%s\" (expected BIG_US:NBIG:NSMALL, BIG_US 1..1000000)\n", m);
        mix_big = mix_nbig = mix_nsmall = 0;
    }
    if (!m)
        mix_big = mix_nbig = mix_nsmall = 0;
    step_gap = 0;
    if (g && (sscanf(g, "%u%c", &step_gap, &end) != 1 || step_gap > 1000000)) {
        fprintf(stderr, "driver_app: ignoring DRIVER_SPIN_STEP_GAP_US=\"%s\" (expected 0..1000000)\n", g);
        step_gap = 0;
    }
}

/* SIGUSR1 ends a running spin or passes early, as if its SECONDS were up (it syncs and prints its line): a test's
 * neighbour, there only to be present beside the tenant under test, stops once the tenant is done (conftest
 * end_spin) instead of running out a window set long enough for a loaded host; a later spin or passes of the same
 * process ends at once */
static volatile sig_atomic_t spin_cut;
static void on_spin_cut(int sig) { (void)sig; spin_cut = 1; }

/* Kernels of US microseconds, GAP_US of host time after each, a sync every EVERY launches, for SECS;
 * samples GPU_NS (the fake's GPU time) into SM every BIN seconds when both are given. Counts launches in *N. */
static CUresult spin_for(unsigned us, unsigned gap, double secs, int every, double bin, struct samples *sm,
                         int64_t (*gpu_ns)(void), int *n)
{
    CUresult r = 0;
    double t0 = now_s(), next = t0;
    spin_sync_s = 0;
    spin_mix_env();
    while (!r && !spin_cut && now_s() - t0 < secs) {
        if (sm && gpu_ns) {
            double t = now_s();
            if (t >= next && sm->n < MAX_SAMPLES) {
                sm->t[sm->n] = t;
                sm->g[sm->n++] = gpu_ns() / 1e9;
                next = t + bin;
            }
        }
        unsigned k = us;
        if (mix_nbig && (unsigned)*n % (mix_nbig + mix_nsmall) < mix_nbig)
            k = mix_big;
        r = run_launch("kernel", k);
        if (++*n % (every > 0 ? every : 1) == 0) {
            double s0 = now_s();
            ssync(NULL);
            spin_sync_s += now_s() - s0;
            if (step_gap)
                gap_wait(step_gap);
        }
        if (gap)
            gap_wait(gap);
    }
    ssync(NULL);
    return r;
}

/* DRIVER_EXIT_LINGER_US=N: at exit the process stays N us after the library's exit handlers ran (its slot released,
 * its threads still running), as a loaded host may leave it before the kernel ends it: registered before the library
 * loads, so it runs after the library's own (atexit runs in reverse order) */
static unsigned exit_linger_us;
static void exit_linger(void) { usleep(exit_linger_us); }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction cut = {.sa_handler = on_spin_cut, .sa_flags = SA_RESTART};
    sigemptyset(&cut.sa_mask);
    sigaction(SIGUSR1, &cut, NULL);
    if (getenv("DRIVER_EXIT_LINGER_US") && (exit_linger_us = (unsigned)atoi(getenv("DRIVER_EXIT_LINGER_US"))))
        atexit(exit_linger);
    use_dlsym = getenv("DRIVER_RESOLVE") && !strcmp(getenv("DRIVER_RESOLVE"), "dlsym");
    busy_gap = getenv("DRIVER_BUSY_GAP") && !strcmp(getenv("DRIVER_BUSY_GAP"), "1");
    lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("dlopen failed %s\n", dlerror());
        return 2;
    }
    getproc = dlsym(lib, "cuGetProcAddress_v2");
    CUresult (*init)(unsigned) = dlsym(lib, "cuInit");
    if (init)
        init(0);  /* the real driver needs it; the fake accepts it */
    R(retain, "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain");
    R(ctxrelease, "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2");
    R(ctxreset, "cuDevicePrimaryCtxReset", "cuDevicePrimaryCtxReset_v2");
    /* as the CUDA 13 runtime resolves them (cudaDeviceReset): version 7000, i.e. the pre-11.0 variants */
    rtrelease = resolve_at("cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease", 7000);
    rtreset = resolve_at("cuDevicePrimaryCtxReset", "cuDevicePrimaryCtxReset", 7000);
    R(setcur, "cuCtxSetCurrent", "cuCtxSetCurrent");
    /* version 11000: the (pctx, flags, dev) signature (CUDA 12.5+ hands out cuCtxCreate_v4 for newer versions) */
    ctxcreate = resolve_at("cuCtxCreate", "cuCtxCreate_v2", 11000);
    R(ctxdestroy, "cuCtxDestroy", "cuCtxDestroy_v2");
    R(alloc, "cuMemAlloc", "cuMemAlloc_v2");
    R(mfree, "cuMemFree", "cuMemFree_v2");
    R(pitch, "cuMemAllocPitch", "cuMemAllocPitch_v2");
    R(managed, "cuMemAllocManaged", "cuMemAllocManaged");
    R(aalloc, "cuMemAllocAsync", "cuMemAllocAsync");
    R(afree, "cuMemFreeAsync", "cuMemFreeAsync");
    R(getpool, "cuDeviceGetMemPool", "cuDeviceGetMemPool");
    R(palloc, "cuMemAllocFromPoolAsync", "cuMemAllocFromPoolAsync");
    R(ssync, "cuStreamSynchronize", "cuStreamSynchronize");
    R(create, "cuMemCreate", "cuMemCreate");
    R(mrelease, "cuMemRelease", "cuMemRelease");
    R(arr, "cuArrayCreate", "cuArrayCreate_v2");
    R(arr3, "cuArray3DCreate", "cuArray3DCreate_v2");
    R(mip, "cuMipmappedArrayCreate", "cuMipmappedArrayCreate");
    R(arrdes, "cuArrayDestroy", "cuArrayDestroy");
    R(mipdes, "cuMipmappedArrayDestroy", "cuMipmappedArrayDestroy");
    R(meminfo, "cuMemGetInfo", "cuMemGetInfo_v2");
    R(totalmem, "cuDeviceTotalMem", "cuDeviceTotalMem_v2");
    R(launch, "cuLaunchKernel", "cuLaunchKernel");
    R(launchex, "cuLaunchKernelEx", "cuLaunchKernelEx");
    R(coop, "cuLaunchCooperativeKernel", "cuLaunchCooperativeKernel");
    R(graph, "cuGraphLaunch", "cuGraphLaunch");
    R(capbegin, "cuStreamBeginCapture", "cuStreamBeginCapture_v2");
    R(capend, "cuStreamEndCapture", "cuStreamEndCapture");
    R(capquery, "cuStreamIsCapturing", "cuStreamIsCapturing");
    R(sdestroy, "cuStreamDestroy", "cuStreamDestroy_v2");
    u64 (*fake_used)(int) = (u64(*)(int))dlsym(lib, "fake_used");
    int64_t (*fake_gpu_ns)(void) = (int64_t(*)(void))dlsym(lib, "fake_gpu_ns");
    int64_t (*fake_switch_ns)(void) = (int64_t(*)(void))dlsym(lib, "fake_switch_ns");
    int64_t (*fake_peer_gpu_ns)(void) = (int64_t(*)(void))dlsym(lib, "fake_peer_gpu_ns");
    fake_calls = (void (*)(u64 *))dlsym(lib, "fake_calls");
    R(ctxsync, "cuCtxSynchronize", "cuCtxSynchronize");
    R(getcur, "cuCtxGetCurrent", "cuCtxGetCurrent");
    streamsync = ssync;
    if (getenv("DRIVER_SYNC") && !strcmp(getenv("DRIVER_SYNC"), "ctx") && ctxsync)
        ssync = ctx_sync_any;
    void (*fake_driver_lock)(u64 *) = (void (*)(u64 *))dlsym(lib, "fake_driver_lock");
    for (int i = 1; i < argc; i++) {
        const char *c = argv[i];
        u64 h = 0;
        if (!strcmp(c, "ctx")) {
            void *ctx;
            int dev = atoi(argv[++i]);
            CUresult r = retain(&ctx, dev);
            if (!r)
                setcur(ctx);
            printf("ctx %d\n", r);
        } else if (!strcmp(c, "ctxnew")) {
            /* ctxnew DEV: a second context on DEV (cuCtxCreate), current from now on: the commands after it
             * launch there, like a program that uses the driver API with contexts of its own */
            CUresult r = ctxcreate ? ctxcreate(&made_ctx, 0, atoi(argv[++i])) : 500;
            printf("ctxnew %d\n", r);
        } else if (!strcmp(c, "ctxdestroy")) {
            printf("ctxdestroy %d\n", ctxdestroy ? ctxdestroy(made_ctx) : 500);
        } else if (!strcmp(c, "ctxrelease")) {
            printf("ctxrelease %d\n", ctxrelease(atoi(argv[++i])));
        } else if (!strcmp(c, "ctxreset")) {
            printf("ctxreset %d\n", ctxreset(atoi(argv[++i])));
        } else if (!strcmp(c, "rtrelease")) {
            printf("rtrelease %d\n", rtrelease(atoi(argv[++i])));
        } else if (!strcmp(c, "rtreset")) {
            printf("rtreset %d\n", rtreset(atoi(argv[++i])));
        } else if (!strcmp(c, "alloc")) {
            CUresult r = alloc(&h, parse_size(argv[++i]));
            report("alloc", r, h);
        } else if (!strcmp(c, "free")) {
            printf("free %d\n", mfree(handles[atoi(argv[++i])]));
        } else if (!strcmp(c, "pitch")) {
            size_t p, w = parse_size(argv[++i]), hh = parse_size(argv[++i]);
            { CUresult r_ = pitch(&h, &p, w, hh, 4); report("pitch", r_, h); }
        } else if (!strcmp(c, "managed")) {
            { CUresult r_ = managed(&h, parse_size(argv[++i]), 1); report("managed", r_, h); }
        } else if (!strcmp(c, "async")) {
            { CUresult r_ = aalloc(&h, parse_size(argv[++i]), NULL); report("async", r_, h); }
        } else if (!strcmp(c, "asyncfree")) {
            printf("asyncfree %d\n", afree(handles[atoi(argv[++i])], NULL));
        } else if (!strcmp(c, "pool")) {
            void *pool;
            getpool(&pool, 0);
            { CUresult r_ = palloc(&h, parse_size(argv[++i]), pool, NULL); report("pool", r_, h); }
        } else if (!strcmp(c, "sync")) {
            printf("sync %d\n", ssync(NULL));
        } else if (!strcmp(c, "ctxsync")) {
            /* ctxsync: cuCtxSynchronize (whatever DRIVER_SYNC says) */
            CUresult r = ctxsync ? ctxsync() : 500;
            sync_end_s = now_s();
            printf("ctxsync %d\n", r);
        } else if (!strcmp(c, "ssyncon")) {
            /* ssyncon S: cuStreamSynchronize of stream handle S (whatever DRIVER_SYNC says) */
            CUresult r = streamsync((void *)(uintptr_t)strtoull(argv[++i], NULL, 0));
            sync_end_s = now_s();
            printf("ssyncon %d\n", r);
        } else if (!strcmp(c, "bglaunch")) {
            /* bglaunch S US: see bg_main */
            u64 n[8] = {0};
            if (fake_calls)
                fake_calls(n);
            bg.s = (void *)(uintptr_t)strtoull(argv[++i], NULL, 0);
            bg.us = (unsigned)atoi(argv[++i]);
            bg.syncs = n[5];
            bg.ctx = NULL;
            if (getcur)
                getcur(&bg.ctx);
            bg.r = -1;
            bg.at = 0;
            printf("bglaunch %d\n", fake_calls ? pthread_create(&bg.t, NULL, bg_main, NULL) : -1);
        } else if (!strcmp(c, "bgjoin")) {
            /* bgjoin: waits for bglaunch's thread; prints its launch's result and whether the launch returned before
             * the last ctxsync / ssyncon did (1) or after (0) */
            pthread_join(bg.t, NULL);
            printf("bgjoin %d %d\n", bg.r, bg.at > 0 && bg.at < sync_end_s);
        } else if (!strcmp(c, "vmm")) {
            struct { int type, ht; struct { int type, id; } loc; void *w; unsigned char f[8]; } prop = {1, 0, {1, 0}, NULL, {0}};
            u64 size = parse_size(argv[++i]);
            prop.loc.id = atoi(argv[++i]);
            { CUresult r_ = create(&h, size, &prop, 0); report("vmm", r_, h); }
        } else if (!strcmp(c, "vmmrelease")) {
            printf("vmmrelease %d\n", mrelease(handles[atoi(argv[++i])]));
        } else if (!strcmp(c, "array")) {
            struct { size_t w, h; int fmt; unsigned ch; } d = {parse_size(argv[i + 1]), parse_size(argv[i + 2]), 0x20, 1};
            i += 2;
            void *a = NULL;
            { CUresult r_ = arr(&a, &d); report("array", r_, (u64)(uintptr_t)a); }
        } else if (!strcmp(c, "array3d") || !strcmp(c, "mipmap")) {
            struct { size_t w, h, d; int fmt; unsigned ch, flags; } d = {parse_size(argv[i + 1]), parse_size(argv[i + 2]), parse_size(argv[i + 3]), 0x20, 1, 0};
            i += 3;
            void *a = NULL;
            CUresult r = !strcmp(c, "mipmap") ? mip(&a, &d, 4) : arr3(&a, &d);
            report(c, r, (u64)(uintptr_t)a);
        } else if (!strcmp(c, "arraydestroy")) {
            printf("arraydestroy %d\n", arrdes((void *)(uintptr_t)handles[atoi(argv[++i])]));
        } else if (!strcmp(c, "mipmapdestroy")) {
            printf("mipmapdestroy %d\n", mipdes((void *)(uintptr_t)handles[atoi(argv[++i])]));
        } else if (!strcmp(c, "meminfo")) {
            size_t f = 0, t = 0;
            CUresult r = meminfo(&f, &t);
            printf("meminfo %d %zu %zu\n", r, f, t);
        } else if (!strcmp(c, "totalmem")) {
            size_t t = 0;
            CUresult r = totalmem(&t, atoi(argv[++i]));
            printf("totalmem %d %zu\n", r, t);
        } else if (!strcmp(c, "calls")) {
            /* the fake's call counters: launches, event records, event queries, elapsed-time and capture queries,
             * synchronizes (the program's own included), event records into a stream being captured */
            u64 n[8] = {0};
            if (fake_calls)
                fake_calls(n);
            printf("calls %llu %llu %llu %llu %llu %llu %llu %llu\n", n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]);
        } else if (!strcmp(c, "gpu")) {
            /* the GPU time the fake has given this process so far, ns (-1 without the fake) */
            printf("gpu %lld\n", (long long)(fake_gpu_ns ? fake_gpu_ns() : -1));
        } else if (!strcmp(c, "ctxcalls")) {
            /* the fake's context calls so far: cuCtxGetCurrent, cuCtxGetDevice (this program's own included) */
            void (*fake_ctx_calls)(u64 *) = (void (*)(u64 *))dlsym(lib, "fake_ctx_calls");
            u64 n[2] = {0};
            if (fake_ctx_calls)
                fake_ctx_calls(n);
            printf("ctxcalls %llu %llu\n", n[0], n[1]);
        } else if (!strcmp(c, "gates")) {
            /* the fake's stream waits (gatemarks, fake_gate_stats): enqueued, blocked the queue, ns the GPU idled held
             * by a blocked context, enqueued on a stream being captured; -1s without them */
            void (*fake_gate_stats)(u64 *) = (void (*)(u64 *))dlsym(lib, "fake_gate_stats");
            u64 n[4] = {0};
            if (fake_gate_stats)
                fake_gate_stats(n);
            else
                n[0] = n[1] = n[2] = n[3] = (u64)-1;
            printf("gates %lld %lld %lld %lld\n", (long long)n[0], (long long)n[1], (long long)n[2], (long long)n[3]);
        } else if (!strcmp(c, "drvlock")) {
            /* the fake's modelled driver lock (FAKE_CUDA_DRIVER_LOCK=1): acquisitions, and those that found it held */
            u64 n[2] = {0};
            if (fake_driver_lock)
                fake_driver_lock(n);
            printf("drvlock %llu %llu\n", n[0], n[1]);
        } else if (!strcmp(c, "used")) {
            printf("used %llu\n", fake_used ? fake_used(atoi(argv[++i])) : 0ULL);
        } else if (!strcmp(c, "launch") || !strcmp(c, "burst")) {
            /* launch KIND N US: N launches of US microseconds, then a sync; prints wall time and simulated busy time.
             * burst KIND N US: the same with no sync (a program that exits with its work still queued) */
            const char *kind = argv[++i];
            int n = atoi(argv[++i]);
            unsigned us = (unsigned)atoi(argv[++i]);
            double t0 = now_s();
            CUresult r = 0;
            for (int k = 0; k < n && !r; k++)
                r = run_launch(kind, us);
            if (c[0] == 'l')
                ssync(NULL);
            printf("%s %d %.6f %.6f %.6f\n", c, r, t0, now_s(), n * us / 1e6);
        } else if (!strcmp(c, "capture")) {
            /* capture S: begins capturing stream handle S (global mode, PyTorch's default) */
            void *st = (void *)(uintptr_t)strtoull(argv[++i], NULL, 0);
            printf("capture %d\n", capbegin ? capbegin(st, 0) : 500);
        } else if (!strcmp(c, "launchon")) {
            /* launchon S N US: N kernels of US microseconds on stream handle S, no sync */
            void *st = (void *)(uintptr_t)strtoull(argv[++i], NULL, 0);
            int n = atoi(argv[++i]);
            unsigned us = (unsigned)atoi(argv[++i]);
            CUresult r = 0;
            for (int k = 0; k < n && !r; k++)
                r = launch(NULL, us, 1, 1, 32, 1, 1, 0, st, NULL, NULL);
            printf("launchon %d\n", r);
        } else if (!strcmp(c, "streamdestroy")) {
            /* streamdestroy S: cuStreamDestroy of stream handle S (its queued work still runs) */
            void *st = (void *)(uintptr_t)strtoull(argv[++i], NULL, 0);
            printf("streamdestroy %d\n", sdestroy ? sdestroy(st) : 500);
        } else if (!strcmp(c, "nocur")) {
            /* nocur: no context current on this thread from now on (a thread that never set one) */
            printf("nocur %d\n", setcur(NULL));
        } else if (!strcmp(c, "curctx")) {
            /* curctx: the handle of the context current on this thread (0 = none) */
            void *cc = NULL;
            CUresult r = getcur ? getcur(&cc) : 500;
            printf("curctx %d %llu\n", r, (unsigned long long)(uintptr_t)cc);
        } else if (!strcmp(c, "forkdestroy")) {
            /* forkdestroy S US: another thread launches one kernel of US microseconds on the legacy stream (with
             * FAKE_CUDA_LAUNCH_SYNCS=1 its launch call returns when the kernel ends, the library's device lock held
             * across it); a quarter of the way in this thread forks, and the child destroys stream handle S and exits.
             * Prints the child's exit status, -1 when it had not exited within 3 s (killed then), and the launch's
             * result */
            void *st = (void *)(uintptr_t)strtoull(argv[++i], NULL, 0);
            fk.us = (unsigned)atoi(argv[++i]);
            fk.ctx = NULL;
            if (getcur)
                getcur(&fk.ctx);
            pthread_t t;
            int made = pthread_create(&t, NULL, fk_main, NULL) == 0;
            usleep(fk.us / 4);
            fflush(stdout);
            pid_t kid = made ? fork() : -1;
            if (kid == 0)
                _exit(sdestroy ? (sdestroy(st) == 0 ? 0 : 1) : 2);
            int status = -1, got = 0;
            for (int k = 0; kid > 0 && k < 300 && !got; k++) {
                got = waitpid(kid, &status, WNOHANG) == kid;
                if (!got)
                    usleep(10000);
            }
            if (kid > 0 && !got) {
                kill(kid, SIGKILL);
                waitpid(kid, NULL, 0);
            }
            if (made)
                pthread_join(t, NULL);
            printf("forkdestroy %d %d\n", got && WIFEXITED(status) ? WEXITSTATUS(status) : -1, fk.r);
        } else if (!strcmp(c, "deadcalls")) {
            /* deadcalls: the calls made on a destroyed stream so far (the fake's fake_dead_calls; -1 without it) */
            u64 (*fake_dead_calls)(void) = (u64(*)(void))dlsym(lib, "fake_dead_calls");
            printf("deadcalls %lld\n", fake_dead_calls ? (long long)fake_dead_calls() : -1LL);
        } else if (!strcmp(c, "capstate")) {
            /* capstate S: the capture status of stream handle S (0 none, 1 active, 2 invalidated) */
            int state = -1;
            CUresult r = capquery ? capquery((void *)(uintptr_t)strtoull(argv[++i], NULL, 0), &state) : 500;
            printf("capstate %d %d\n", r, state);
        } else if (!strcmp(c, "endcapture")) {
            /* endcapture S: ends the capture; the graph is kept for graphlaunch; prints its microseconds of work */
            CUresult r = capend ? capend((void *)(uintptr_t)strtoull(argv[++i], NULL, 0), &captured) : 500;
            printf("endcapture %d %llu\n", r, (unsigned long long)(uintptr_t)captured);
        } else if (!strcmp(c, "graphlaunch")) {
            /* graphlaunch S N: launches the captured graph N times on stream handle S, then syncs S; prints the
             * GPU time the fake gave this process meanwhile */
            void *st = (void *)(uintptr_t)strtoull(argv[++i], NULL, 0);
            int n = atoi(argv[++i]);
            int64_t g0 = fake_gpu_ns ? fake_gpu_ns() : -1;
            CUresult r = 0;
            for (int k = 0; k < n && !r; k++)
                r = graph(captured, st);
            CUresult rs = ssync(st);
            int64_t g1 = fake_gpu_ns ? fake_gpu_ns() : -1;
            printf("graphlaunch %d %d %.6f\n", r, rs, (g1 - g0) / 1e9);
        } else if (!strcmp(c, "spin")) {
            /* spin US GAP_US SECONDS SYNC: kernels of US microseconds, GAP_US of host time after each, a
             * sync every SYNC launches, for SECONDS; prints the window and the GPU time the fake device
             * gave this process in it (FAKE_CUDA_GPU: its own processor-sharing accounting), the launches, the
             * GPU time spent switching into its context (time slices) and the wall time spent in the syncs */
            unsigned us = (unsigned)atoi(argv[++i]), gap = (unsigned)atoi(argv[++i]);
            double secs = atof(argv[++i]);
            int every = atoi(argv[++i]), n = 0;
            int64_t g0 = fake_gpu_ns ? fake_gpu_ns() : -1, w0 = fake_switch_ns ? fake_switch_ns() : -1;
            double t0 = now_s();
            CUresult r = spin_for(us, gap, secs, every, 0, NULL, fake_gpu_ns, &n);
            double t1 = now_s();
            int64_t g1 = fake_gpu_ns ? fake_gpu_ns() : -1, w1 = fake_switch_ns ? fake_switch_ns() : -1;
            printf("spin %d %.6f %.6f %.6f %d %.6f %.6f\n", r, t0, t1, (g1 - g0) / 1e9, n, (w1 - w0) / 1e9,
                   spin_sync_s);
        } else if (!strcmp(c, "recs")) {
            /* recs US GAP_US SECONDS SYNC: like spin (no GPU accounting), counting the launch calls by the event
             * records the interposer made during each (the fake's counters): prints the launches and how many
             * calls made 0, 1, 2 and 3 or more records. A coarse sample costs two in one call, three before
             * push_boundary (test_interposer_launch_records.py) */
            unsigned us = (unsigned)atoi(argv[++i]), gap = (unsigned)atoi(argv[++i]);
            double secs = atof(argv[++i]);
            int every = atoi(argv[++i]), n = 0;
            unsigned long long by[4] = {0, 0, 0, 0};
            u64 c0[8] = {0}, c1[8] = {0};  /* fake_calls writes CALL_N (7) counters */
            CUresult r = 0;
            double t0 = now_s();
            while (!r && fake_calls && now_s() - t0 < secs) {
                fake_calls(c0);
                r = run_launch("kernel", us);
                fake_calls(c1);
                u64 d = c1[1] - c0[1];
                by[d < 3 ? d : 3]++;
                if (++n % (every > 0 ? every : 1) == 0)
                    ssync(NULL);
                if (gap)
                    gap_wait(gap);
            }
            ssync(NULL);
            printf("recs %d %d %llu %llu %llu %llu\n", r, n, by[0], by[1], by[2], by[3]);
        } else if (!strcmp(c, "graphs")) {
            /* graphs US STREAMS GAP_US SECONDS: the CUDA-graphs program of the H200 bench (programs.py w_graphs),
             * step after step: one graph of US microseconds of GPU work replayed on each of STREAMS streams
             * (handles 0x1000 + k, none of the special ones), then a sync of everything, then GAP_US of host time;
             * prints the window, the GPU time the fake gave this process in it, the steps done, the GPU time
             * spent switching into its context, and the GPU time it got from the end of the first step after
             * which a neighbour's work had run (-1: none ran): under GPU_CORE_UTILIZATION_POLICY=default a tenant
             * alone is not capped nor charged, and on a loaded host the second tenant of a pair starts late */
            unsigned us = (unsigned)atoi(argv[++i]);
            int ns = atoi(argv[++i]);
            unsigned gap = (unsigned)atoi(argv[++i]);
            double secs = atof(argv[++i]);
            int steps = 0;
            CUresult r = 0;
            int64_t g0 = fake_gpu_ns ? fake_gpu_ns() : -1, w0 = fake_switch_ns ? fake_switch_ns() : -1;
            int64_t gp = -1;  /* fake_gpu_ns once a neighbour's work had run */
            double t0 = now_s();
            while (!r && now_s() - t0 < secs) {
                for (int k = 0; k < ns && !r; k++)
                    r = graph((void *)(uintptr_t)us, (void *)(uintptr_t)(0x1000 + k));
                ssync(NULL);
                steps++;
                if (gp < 0 && fake_peer_gpu_ns && fake_gpu_ns && fake_peer_gpu_ns() > 0)
                    gp = fake_gpu_ns();
                if (gap)
                    gap_wait(gap);
            }
            double t1 = now_s();
            int64_t g1 = fake_gpu_ns ? fake_gpu_ns() : -1, w1 = fake_switch_ns ? fake_switch_ns() : -1;
            printf("graphs %d %.6f %.6f %.6f %d %.6f %.6f\n", r, t0, t1, (g1 - g0) / 1e9, steps, (w1 - w0) / 1e9,
                   gp < 0 ? -1.0 : (g1 - gp) / 1e9);
        } else if (!strcmp(c, "streams")) {
            /* streams N LONG_US M US: one kernel of LONG_US on each of N streams (handles 0x2000 + k), then M kernels
             * of US on one stream more (0x2000 + N) while those are still queued, then a sync; prints the window and
             * the GPU time the fake gave this process in it (more streams busy at once than the library has stream
             * queues: the launches it cannot give a queue) */
            int nst = atoi(argv[++i]);
            unsigned lus = (unsigned)atoi(argv[++i]);
            int m = atoi(argv[++i]);
            unsigned us = (unsigned)atoi(argv[++i]);
            CUresult r = 0;
            int64_t g0 = fake_gpu_ns ? fake_gpu_ns() : -1;
            double t0 = now_s();
            for (int k = 0; k < nst && !r; k++)
                r = launch(NULL, lus, 1, 1, 32, 1, 1, 0, (void *)(uintptr_t)(0x2000 + k), NULL, NULL);
            for (int k = 0; k < m && !r; k++)
                r = launch(NULL, us, 1, 1, 32, 1, 1, 0, (void *)(uintptr_t)(0x2000 + nst), NULL, NULL);
            ssync(NULL);
            double t1 = now_s();
            int64_t g1 = fake_gpu_ns ? fake_gpu_ns() : -1;
            printf("streams %d %.6f %.6f %.6f\n", r, t0, t1, (g1 - g0) / 1e9);
        } else if (!strcmp(c, "bursts")) {
            /* bursts US GAP_US PER_STEP BURST_MS PAUSE_MS MODE COUNT: COUNT bursts of steps (PER_STEP kernels of US
             * microseconds, GAP_US of host time after each, a sync per step) lasting BURST_MS each, every burst
             * followed by a host pause of PAUSE_MS without launches: MODE stop (the process is stopped, SIGSTOP, and
             * a child continues it: a bench's turns, a container's CPU quota, a debugger), stopq (stopped so with the
             * burst's last step queued, before its sync), sleep (idle between requests) or busy (a host computation).
             * The final sync is always made. The inference loop's paired alone windows (issue 18 record 14,
             * pausegap). Prints the window, the GPU time the fake gave this process in it, the launches, the
             * seconds spent in bursts, and the launch calls that took over 5 ms (held) with their seconds */
            unsigned us = (unsigned)atoi(argv[++i]), gap = (unsigned)atoi(argv[++i]);
            int per = atoi(argv[++i]);
            double burst = atof(argv[++i]) / 1e3, pause_s = atof(argv[++i]) / 1e3;
            const char *mode = argv[++i];
            int count = atoi(argv[++i]), n = 0;
            CUresult r = per > 0 && count > 0 && (!strcmp(mode, "stop") || !strcmp(mode, "stopq") ||
                                                  !strcmp(mode, "sleep") || !strcmp(mode, "busy")) ? 0 : 1;
            double active = 0, slow_s = 0;
            int slow = 0;
            int64_t g0 = fake_gpu_ns ? fake_gpu_ns() : -1;
            double t0 = now_s();
            for (int b = 0; b < count && !r; b++) {
                double b0 = now_s();
                int nosync = !strcmp(mode, "stopq"), last = 0;
                while (!r && !last) {
                    for (int k = 0; k < per && !r; k++, n++) {
                        double l0 = now_s();
                        r = run_launch("kernel", us);
                        double dl = now_s() - l0;
                        if (dl > 0.005) {  /* a launch call held (the library's throttle), or this host very late */
                            slow++;
                            slow_s += dl;
                        }
                        if (gap)
                            gap_wait(gap);
                    }
                    last = now_s() - b0 >= burst;
                    if (!(last && nosync))
                        ssync(NULL);
                }
                active += now_s() - b0;
                if (!strcmp(mode, "sleep")) {
                    usleep((useconds_t)(pause_s * 1e6));
                } else if (!strcmp(mode, "busy")) {
                    double until = now_s() + pause_s;
                    while (now_s() < until) {
                    }
                } else {  /* stop, stopq */
                    /* a child continues this process PAUSE_MS after it saw it stopped (its state in /proc) */
                    fflush(stdout);
                    pid_t parent = getpid(), kid = fork();
                    if (kid == 0) {
                        char path[64], st[512];
                        snprintf(path, sizeof(path), "/proc/%d/stat", (int)parent);
                        for (int t = 0; t < 50000; t++) {  /* at most ~5 s */
                            int fd = open(path, O_RDONLY);
                            ssize_t len = fd >= 0 ? read(fd, st, sizeof(st) - 1) : -1;
                            if (fd >= 0)
                                close(fd);
                            st[len > 0 ? len : 0] = 0;
                            char *e = strrchr(st, ')');
                            if (e && (e[2] == 'T' || e[2] == 't'))
                                break;
                            usleep(100);
                        }
                        usleep((useconds_t)(pause_s * 1e6));
                        kill(parent, SIGCONT);
                        _exit(0);
                    }
                    if (kid < 0) {
                        r = 1;
                        break;
                    }
                    raise(SIGSTOP);
                    waitpid(kid, NULL, 0);
                }
            }
            ssync(NULL);
            double t1 = now_s();
            int64_t g1 = fake_gpu_ns ? fake_gpu_ns() : -1;
            printf("bursts %d %.6f %.6f %.6f %d %.6f %d %.6f\n", r, t0, t1, (g1 - g0) / 1e9, n, active, slow, slow_s);
        } else if (!strcmp(c, "passes")) {
            /* passes PATTERN GAP_US SECONDS: the inference loop's passes: PATTERN is COUNT*US,... (kernels of
             * varied length in the order of one forward pass), GAP_US of host time after each launch, a sync
             * after each pass; prints the window, the GPU time the fake gave this process, the launches and the
             * switch-in time, like spin */
            const char *pat = argv[++i];
            unsigned gap = (unsigned)atoi(argv[++i]);
            double secs = atof(argv[++i]);
            static unsigned kus[8192];  /* a torch training step: ~2000 launches (issue 18, trainfix) */
            int nk = 0;
            char buf[4096];
            snprintf(buf, sizeof(buf), "%s", pat);
            for (char *tok = strtok(buf, ","); tok && nk < 8192; tok = strtok(NULL, ",")) {
                char *star = strchr(tok, '*');
                long cnt = star ? atol(tok) : 1, len = star ? atol(star + 1) : atol(tok);
                for (long k = 0; k < cnt && nk < 8192; k++)
                    kus[nk++] = (unsigned)(len > 0 ? len : 1);
            }
            int n = 0, step = 0;
            CUresult r = nk ? 0 : 1;
            /* DRIVER_STALL=EVERY:AT:MS[:REPEAT] (opt-in, issue 18 stallcharge): every EVERY-th step the host
             * sleeps MS ms before the step's AT-th launch (AT = the step's launches: before its sync), and again
             * every REPEAT launches after that in the step, as a loaded host descheduling the loop would; bounded,
             * a bad value is one line and exit 2 */
            long st_every = 0, st_at = 0, st_ms = 0, st_rep = 0;
            const char *stall = getenv("DRIVER_STALL");
            char junk;  /* trailing text makes the spec bad */
            int nf = stall ? sscanf(stall, "%ld:%ld:%ld:%ld%c", &st_every, &st_at, &st_ms, &st_rep, &junk) : 0;
            if (stall && nf != 4)
                nf = sscanf(stall, "%ld:%ld:%ld%c", &st_every, &st_at, &st_ms, &junk) == 3 ? 3 : 0;
            if (stall && (nf < 3 || st_every < 1 || st_every > 1000000 || st_at < 0 || st_at > nk || st_ms < 0 ||
                          st_ms > 10000 || st_rep < 0 || st_rep > nk)) {
                fprintf(stderr, "driver_app: DRIVER_STALL=%s: want EVERY:AT:MS[:REPEAT], 1<=EVERY<=1000000, "
                        "0<=AT<=%d, 0<=MS<=10000, 0<=REPEAT<=%d\n", stall, nk, nk);
                return 2;
            }
            int64_t g0 = fake_gpu_ns ? fake_gpu_ns() : -1, w0 = fake_switch_ns ? fake_switch_ns() : -1;
            double t0 = now_s();
            while (!r && !spin_cut && now_s() - t0 < secs) {
                int stalls = st_every && ++step % st_every == 0;
                for (int k = 0; k < nk && !r; k++, n++) {
                    if (stalls && (k == st_at || (st_rep && k > st_at && (k - st_at) % st_rep == 0)))
                        usleep((useconds_t)(st_ms * 1000));
                    r = run_launch("kernel", kus[k]);
                    if (gap)
                        gap_wait(gap);
                }
                if (stalls && st_at == nk)
                    usleep((useconds_t)(st_ms * 1000));
                ssync(NULL);
            }
            double t1 = now_s();
            int64_t g1 = fake_gpu_ns ? fake_gpu_ns() : -1, w1 = fake_switch_ns ? fake_switch_ns() : -1;
            printf("passes %d %.6f %.6f %.6f %d %.6f\n", r, t0, t1, (g1 - g0) / 1e9, n, (w1 - w0) / 1e9);
        } else if (!strcmp(c, "steer")) {
            /* steer HOW LONG_US SYNC TINY_US GAP_US SECONDS A B: a tenant steering the coarse phases (issue 18
             * audit): long kernels of LONG_US (a sync every SYNC) while it believes it is measured coarsely,
             * TINY_US kernels each followed by GAP_US of host time while it believes it is measured precisely
             * (a verification window whose host gaps "explain" the doubt). HOW says how it tells:
             *   calls: the interposer's event records per launch (what a tenant that wraps its own libcuda
             *          sees; here the fake's counters): precise marks every launch, coarse at most one per 1 ms;
             *   after: like calls, but in each coarse phase it launches tiny kernels (with the gap) until it sees
             *          a random sample taken (two or more records in one launch), and long ones only after it;
             *   time:  the launch call's own host time (the precise path costs more): precise while the median
             *          of the last 8 calls exceeds A ns, coarse below B ns;
             *   clock: blind, a fixed period: A ms of long kernels, then B ms of tiny ones (it falls into step
             *          with a fixed phase by itself).
             * Prints the window, the GPU time the fake gave it, launches, the switches between its two parts
             * and the mean launch-call ns seen in each part. */
            const char *how = argv[++i];
            unsigned lus = (unsigned)atoi(argv[++i]);
            int every = atoi(argv[++i]);
            unsigned tus = (unsigned)atoi(argv[++i]), gap = (unsigned)atoi(argv[++i]);
            double secs = atof(argv[++i]), a = atof(argv[++i]), b = atof(argv[++i]);
            int mode_after = !strcmp(how, "after");
            int mode_calls = !strcmp(how, "calls") || mode_after, mode_time = !strcmp(how, "time");
            int n = 0, tiny = 0, streak = 0, switches = 0, nl = 0, seen_sample = 0;
            double hist[8] = {0}, sum_ns[2] = {0, 0}, cnt[2] = {0, 0};
            u64 calls0[8] = {0}, calls1[8] = {0};  /* fake_calls writes CALL_N (7) counters */
            CUresult r = 0;
            int64_t g0 = fake_gpu_ns ? fake_gpu_ns() : -1;
            double t0 = now_s(), part_at = t0;
            while (!r && now_s() - t0 < secs) {
                if (fake_calls)
                    fake_calls(calls0);
                double l0 = now_s();
                int small = tiny || (mode_after && !seen_sample);
                r = run_launch("kernel", small ? tus : lus);
                double took = (now_s() - l0) * 1e9;
                if (fake_calls)
                    fake_calls(calls1);
                n++;
                sum_ns[tiny] += took;
                cnt[tiny] += 1;
                hist[nl++ % 8] = took;
                int was = tiny;
                if (mode_calls) {
                    int marked = calls1[1] > calls0[1];
                    if (!tiny && calls1[1] >= calls0[1] + 2)
                        seen_sample = 1;
                    streak = marked ? streak + 1 : 0;
                    tiny = tiny ? marked : streak >= 2;
                    if (tiny)
                        seen_sample = 0;
                } else if (mode_time && nl >= 8) {
                    double s[8];
                    memcpy(s, hist, sizeof(s));
                    for (int x = 1; x < 8; x++)  /* the median of 8: a preempted call does not flip it */
                        for (int y = x; y > 0 && s[y - 1] > s[y]; y--) {
                            double tmp = s[y];
                            s[y] = s[y - 1];
                            s[y - 1] = tmp;
                        }
                    double med = (s[3] + s[4]) / 2;
                    tiny = tiny ? med > b : med > a;
                } else if (!mode_calls && !mode_time) {
                    double in = (now_s() - part_at) * 1e3;
                    if (tiny ? in >= b : in >= a) {
                        tiny = !tiny;
                        part_at = now_s();
                    }
                }
                if (tiny != was) {
                    switches++;
                    nl = 0;
                }
                if (!was && !small && every > 0 && n % every == 0)
                    ssync(NULL);
                if (was || small) {
                    ssync(NULL);
                    if (gap)
                        gap_wait(gap);
                }
            }
            ssync(NULL);
            double t1 = now_s();
            int64_t g1 = fake_gpu_ns ? fake_gpu_ns() : -1;
            printf("steer %d %.6f %.6f %.6f %d %d %.0f %.0f\n", r, t0, t1, (g1 - g0) / 1e9, n, switches,
                   cnt[0] ? sum_ns[0] / cnt[0] : 0.0, cnt[1] ? sum_ns[1] / cnt[1] : 0.0);
        } else if (!strcmp(c, "trace")) {
            /* trace US GAP_US SECONDS SYNC BIN_MS: like spin, and prints the GPU time the fake device gave
             * this process at every BIN_MS of wall time ("trace T0 t g t g ..." in seconds) */
            unsigned us = (unsigned)atoi(argv[++i]), gap = (unsigned)atoi(argv[++i]);
            double secs = atof(argv[++i]);
            int every = atoi(argv[++i]), n = 0;
            double bin = atof(argv[++i]) / 1e3;
            static struct samples sm;
            sm.n = 0;
            CUresult r = spin_for(us, gap, secs, every, bin, &sm, fake_gpu_ns, &n);
            printf("trace %d", r);
            for (int k = 0; k < sm.n; k++)
                printf(" %.6f %.6f", sm.t[k], sm.g[k]);
            printf("\n");
        } else if (!strcmp(c, "wtrace")) {
            /* wtrace US GAP_US SECONDS SYNC BIN_MS: like spin (its final sync included), and prints the GPU time the
             * fake device gave this process at every BIN_MS of wall time sampled by a thread of its own, holds in
             * the launch path included ("wtrace R T0 T1 t g t g ...", seconds; T1 after the final sync) */
            unsigned us = (unsigned)atoi(argv[++i]), gap = (unsigned)atoi(argv[++i]);
            double secs = atof(argv[++i]);
            int every = atoi(argv[++i]), n = 0;
            wt.bin = atof(argv[++i]) / 1e3;
            wt.gpu_ns = fake_gpu_ns;
            wt.stop = 0;
            wt.sm.n = 0;
            double t0 = now_s();
            int started = fake_gpu_ns && pthread_create(&wt.t, NULL, wtrace_main, NULL) == 0;
            CUresult r = spin_for(us, gap, secs, every, 0, NULL, fake_gpu_ns, &n);
            double t1 = now_s();
            wt.stop = 1;
            if (started)
                pthread_join(wt.t, NULL);
            printf("wtrace %d %.6f %.6f", started ? r : -1, t0, t1);
            for (int k = 0; k < wt.sm.n; k++)
                printf(" %.6f %.6f", wt.sm.t[k], wt.sm.g[k]);
            printf("\n");
        } else if (!strcmp(c, "where")) {
            /* which library an entry point handed out by the resolver lives in */
            Dl_info info;
            void *p = !strcmp(argv[++i], "launch") ? (void *)launch : (void *)alloc;
            dladdr(p, &info);
            printf("where %s\n", strstr(info.dli_fname, "libvgpu") ? "interposer" : "driver");
        } else if (!strcmp(c, "stress")) {
            /* stress N MAXMIB SEED: N random steps of allocating 1..MAXMIB MiB or freeing a held block. With
             * DRIVER_COUNTER=<file>, what this process holds is added to a counter shared by every stress
             * process after each allocation succeeds and taken off before each free, and the highest total
             * seen is kept: it can only exceed the limit if the interposer let a byte over. */
            int n = atoi(argv[++i]);
            u64 maxmib = parse_size(argv[++i]);
            unsigned seed = (unsigned)atoi(argv[++i]);
            u64 *ctr = NULL;
            const char *cf = getenv("DRIVER_COUNTER");
            if (cf) {
                int fd = open(cf, O_RDWR);
                if (fd >= 0)
                    ctr = mmap(NULL, 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (ctr == MAP_FAILED)
                    ctr = NULL;
            }
            u64 held[256], sizes[256];
            int nheld = 0, ok = 0, refused = 0;
            for (int k = 0; k < n; k++) {
                if (nheld < 256 && (nheld == 0 || rand_r(&seed) % 2)) {
                    u64 sz = ((u64)(rand_r(&seed) % maxmib) + 1) << 20, d = 0;
                    if (alloc(&d, sz) == 0) {
                        held[nheld] = d;
                        sizes[nheld++] = sz;
                        ok++;
                        if (ctr) {
                            u64 now = __atomic_add_fetch(&ctr[0], sz, __ATOMIC_SEQ_CST), m = ctr[1];
                            while (now > m && !__atomic_compare_exchange_n(&ctr[1], &m, now, 0, __ATOMIC_SEQ_CST,
                                                                           __ATOMIC_SEQ_CST)) {
                            }
                        }
                    } else {
                        refused++;
                    }
                } else {
                    int j = rand_r(&seed) % nheld;
                    if (ctr)
                        __atomic_sub_fetch(&ctr[0], sizes[j], __ATOMIC_SEQ_CST);
                    mfree(held[j]);
                    held[j] = held[--nheld];
                    sizes[j] = sizes[nheld];
                }
            }
            while (nheld) {
                nheld--;
                if (ctr)
                    __atomic_sub_fetch(&ctr[0], sizes[nheld], __ATOMIC_SEQ_CST);
                mfree(held[nheld]);
            }
            printf("stress %d %d\n", ok, refused);
        } else if (!strcmp(c, "allocloop")) {
            /* allocloop N SIZE: N pairs of allocating SIZE and freeing it; prints how many allocations
             * succeeded and the mean wall time of one pair in nanoseconds (the interposer's cost on the fake) */
            int n = atoi(argv[++i]), okn = 0;
            u64 sz = parse_size(argv[++i]);
            double t0 = now_s();
            for (int k = 0; k < n; k++) {
                u64 d = 0;
                if (alloc(&d, sz) == 0) {
                    okn++;
                    mfree(d);
                }
            }
            printf("allocloop %d %.1f\n", okn, n ? (now_s() - t0) * 1e9 / n : 0.0);
        } else if (!strcmp(c, "closefds")) {
            /* what a daemonising program does: close every descriptor above stderr */
            for (int fd = 3; fd < 1024; fd++)
                close(fd);
            printf("closefds\n");
        } else if (!strcmp(c, "sleep")) {
            usleep(atoi(argv[++i]) * 1000);
        } else if (!strcmp(c, "ready")) {
            printf("ready\n");
        } else if (!strcmp(c, "hang")) {
            printf("hanging\n");
            pause();
        } else if (!strcmp(c, "die")) {
            /* die exit|kill|term: ends at once with no exit handler run (_exit(0)), by SIGKILL, or by SIGTERM with
             * no handler (test_interposer_exit_paths.py: the work it leaves in flight) */
            const char *how = argv[++i];
            fflush(stdout);
            if (!strcmp(how, "exit"))
                _exit(0);
            signal(SIGTERM, SIG_DFL);
            kill(getpid(), !strcmp(how, "kill") ? SIGKILL : SIGTERM);
            pause();
        }
    }
    return 0;
}
