/* nvmlq.c - the interposer's own NVML queries (never through our hooks): device memory in use, to
 * measure what creating a context took, the SM clock, to express busy time in sustained-clock units, and the
 * number of processes with a compute context on the GPU, which bounds how many neighbours a charge may count
 * (the node board is world-writable: nothing on it proves a neighbour busy; see vg_nvml_others_bound). */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "vgpu.h"

static void *nvml;
static int (*by_bus)(const char *, nvmlDevice_t *);
static int (*meminfo)(nvmlDevice_t, nvmlMemory_t *);
static int (*clockinfo)(nvmlDevice_t, int, unsigned int *);
typedef int (*procs_fn)(nvmlDevice_t, unsigned int *, void *);
static procs_fn compute_procs, mps_procs;  /* the newest version the library has: asked for a count only */
static nvmlDevice_t handles[HAMI_MAX_DEVICES];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static nvmlDevice_t handle(CUdevice dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return NULL;
    pthread_mutex_lock(&mu);
    if (!nvml) {
        nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        int (*init)(void) = nvml ? (int (*)(void))vg_real_dlsym(nvml, "nvmlInit_v2") : NULL;
        if (init && init() == 0) {
            by_bus = (int (*)(const char *, nvmlDevice_t *))vg_real_dlsym(nvml, "nvmlDeviceGetHandleByPciBusId_v2");
            meminfo = (int (*)(nvmlDevice_t, nvmlMemory_t *))vg_real_dlsym(nvml, "nvmlDeviceGetMemoryInfo");
            clockinfo = (int (*)(nvmlDevice_t, int, unsigned int *))vg_real_dlsym(nvml, "nvmlDeviceGetClockInfo");
            static const char *const cp[] = {"nvmlDeviceGetComputeRunningProcesses_v3",
                                             "nvmlDeviceGetComputeRunningProcesses_v2",
                                             "nvmlDeviceGetComputeRunningProcesses"};
            static const char *const mp[] = {"nvmlDeviceGetMPSComputeRunningProcesses_v3",
                                             "nvmlDeviceGetMPSComputeRunningProcesses_v2",
                                             "nvmlDeviceGetMPSComputeRunningProcesses"};
            for (int i = 0; i < 3 && !compute_procs; i++)
                compute_procs = (procs_fn)vg_real_dlsym(nvml, cp[i]);
            for (int i = 0; i < 3 && !mps_procs; i++)
                mps_procs = (procs_fn)vg_real_dlsym(nvml, mp[i]);
        }
        if (!nvml)
            nvml = (void *)-1;
    }
    char bus[32];
    if (!handles[dev] && by_bus && vg_real.cuDeviceGetPCIBusId &&
        vg_real.cuDeviceGetPCIBusId(bus, sizeof(bus), dev) == CUDA_SUCCESS)
        by_bus(bus, &handles[dev]);
    nvmlDevice_t h = handles[dev];
    pthread_mutex_unlock(&mu);
    return h;
}

uint64_t vg_nvml_used(CUdevice dev)
{
    nvmlDevice_t h = handle(dev);
    nvmlMemory_t m;
    if (!h || !meminfo || meminfo(h, &m) != 0)
        return 0;
    return m.used;
}

unsigned int vg_nvml_sm_clock(CUdevice dev)
{
    nvmlDevice_t h = handle(dev);
    unsigned int mhz = 0;
    if (!h || !clockinfo || clockinfo(h, 1 /* NVML_CLOCK_SM */, &mhz) != 0)
        return 0;
    return mhz;
}

/* ---- the bound on n(t) ----
 * A tenant's charge counts the neighbours the node board says are busy, and the board is world-writable: one
 * forged busy entry halved a GPU-bound tenant's charge (it took twice its limit). The driver's list of the
 * processes with a compute context on the GPU is something no tenant writes: in a container NVML lists every
 * process on the GPU, the other containers' too, with host PIDs (which cannot be matched to our own PIDs, so
 * only the count is used). The others busy at any instant are at most K = that count less this container's own
 * processes on the device (the holders of its memory lanes, kernel locks: region.c vg_region_procs_on).
 * Queried by the watcher thread at most every 100 ms, never on the launch path; the launch path reads the
 * cache (two atomic loads). A doubtful count gives no bound, which is the behaviour before the bound: NVML
 * absent or failing, a count below this container's own (NVML does not list the device's processes), or no
 * sample for 1 s. K is the larger of the last two samples, so a neighbour that left within the last 100 ms
 * still counts for the spans it was busy in. */
#define PROCS_GAP_NS 100000000LL     /* at most one NVML process query per device per 100 ms */
#define PROCS_FRESH_NS 1000000000LL  /* a sample older than 1 s bounds nothing */
#define K_DOUBT 0xFFFF               /* a sample that bounds nothing */

/* The last two samples per device, [0] the newer: (time >> 10) << 16 | K, 0 = none. One word each, so a reader
 * never sees a time of one sample with the K of another. */
static uint64_t samples[HAMI_MAX_DEVICES][2];
static int64_t tried_at[HAMI_MAX_DEVICES];  /* the watcher thread's own (one per process) */

/* Processes with a compute context on the device (MPS clients added where listed apart), or -1. */
static int nvml_procs(CUdevice dev, const char **why)
{
    nvmlDevice_t h = handle(dev);
    if (!h || !compute_procs) {
        *why = nvml == (void *)-1 || !nvml ? "libnvidia-ml.so.1 not loaded"
               : !compute_procs           ? "no nvmlDeviceGetComputeRunningProcesses"
                                          : "no NVML handle for the device";
        return -1;
    }
    unsigned int n = 0;  /* asked with an empty array: the count, NVML_ERROR_INSUFFICIENT_SIZE (7) when > 0 */
    int r = compute_procs(h, &n, NULL);
    if (r == 0)
        n = 0;
    else if (r != 7) {
        *why = "the process query failed";
        return -1;
    }
    unsigned int m = 0;
    if (mps_procs) {
        r = mps_procs(h, &m, NULL);
        m = r == 7 ? m : 0;
    }
    if (n > 65536 || m > 65536) {
        *why = "an absurd process count";
        return -1;
    }
    return (int)(n + m);
}

void vg_nvml_procs_refresh(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return;
    int64_t now = vg_now_ns();
    if (tried_at[dev] && now - tried_at[dev] < PROCS_GAP_NS)
        return;
    tried_at[dev] = now;
    const char *why = "";
    int n = nvml_procs(dev, &why);
    int own = n >= 0 ? vg_region_procs_on(dev) : -1;
    int k = K_DOUBT;
    if (n < 0)
        vg_log_once(VG_WARN, "nvml-procs", "device %d: no process count from NVML (%s): busy neighbours on the node "
                                           "board are counted unbounded", dev, why);
    else if (own < 0)
        vg_log_once(VG_WARN, "nvml-own", "device %d: this container's processes on the GPU cannot be counted: busy "
                                         "neighbours on the node board are counted unbounded", dev);
    else if (n < own)
        vg_log_once(VG_WARN, "nvml-few", "device %d: NVML lists %d processes on the GPU, fewer than this container's "
                                         "%d: the count is doubtful, busy neighbours are counted unbounded", dev, n, own);
    else
        k = n - own < K_DOUBT ? n - own : K_DOUBT - 1;
    uint64_t w = ((uint64_t)(now >> 10) << 16) | (uint64_t)k;
    __atomic_store_n(&samples[dev][1], __atomic_load_n(&samples[dev][0], __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    __atomic_store_n(&samples[dev][0], w, __ATOMIC_RELEASE);
}

/* K: the larger of the last two samples (a doubtful one bounds nothing), -1 = no bound. */
int vg_nvml_others_bound(int dev, int64_t now)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return -1;
    int k = -1;
    for (int i = 0; i < 2; i++) {
        uint64_t w = __atomic_load_n(&samples[dev][i], __ATOMIC_ACQUIRE);
        int64_t at = (int64_t)(w >> 16) << 10;
        int ki = (int)(w & 0xFFFF);
        if (!w || now - at > PROCS_FRESH_NS) {
            if (i == 0)
                return -1;  /* no fresh sample */
            continue;       /* the older one no longer matters */
        }
        if (ki == K_DOUBT)
            return -1;
        k = ki > k ? ki : k;
    }
    return k;
}
