/* fake_nvml.c - a stand-in libnvidia-ml.so.1 beside the fake libcuda, for CI without a GPU.
 *
 * It answers what the interposer asks NVML (nvmlq.c): a handle by PCI bus id (the fake libcuda's two devices,
 * 00000000:01:00.0 and 00000000:02:00.0), memory info (total FAKE_CUDA_TOTAL_MIB, default 16384 MiB; used a
 * fixed 256 MiB the "driver" holds plus what the fake libcuda of this process handed out, so measuring a
 * context's cost works as on hardware), the SM clock (FAKE_NVML_SM_MHZ, NOT_SUPPORTED when unset), and the
 * processes with a compute context on the GPU, which the test controls:
 *
 *   FAKE_NVML_PROCS=<file>  the file lists the PIDs NVML reports, separated by white space, re-read on every
 *                           query (a test changes it while its tenants run); "self" stands for the caller's own
 *                           PID as its PID namespace sees it (what the driver reports for it: it translates PIDs
 *                           into the caller's namespace); "error" in it, or no such file, makes the query fail
 *                           (NVML_ERROR_UNKNOWN). Unset: NVML_ERROR_NOT_SUPPORTED.
 *
 *   FAKE_NVML_LOG=<file>    a line "<pid> procs" is appended for every process-list query (tests count how
 *                           often the interposer asks: at most every 100 ms, never per launch).
 *
 * The list is the same for both devices. MPS lists are always empty.
 *
 * The UUIDs (the node agent's process census names its files by them) are GPU-fa4e0000-0000-4000-8000-00000000000<d>;
 * FAKE_NVML_UUID replaces device 0's (a test of a UUID that is no safe file name). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))
#define MIB (1ULL << 20)
#define MAXP 256
typedef unsigned long long u64;
typedef void *nvmlDevice_t;

enum { OK = 0, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3, INSUFFICIENT_SIZE = 7, UNKNOWN = 999 };

typedef struct { u64 total, free, used; } Memory;
typedef struct { unsigned int version; u64 total, reserved, free, used; } Memory2;
typedef struct { unsigned int pid; u64 used; } Proc1;
typedef struct { unsigned int pid; u64 used; unsigned int gpuInstanceId, computeInstanceId; } Proc2;

static int device_of(nvmlDevice_t h)
{
    long d = (long)(size_t)h - 1;
    return d == 0 || d == 1 ? (int)d : -1;
}

API int nvmlInit_v2(void) { return OK; }
API int nvmlInit(void) { return OK; }
API int nvmlInitWithFlags(unsigned int flags) { (void)flags; return OK; }
API int nvmlShutdown(void) { return OK; }
API int nvmlDeviceGetCount_v2(unsigned int *n) { *n = 2; return OK; }

API int nvmlDeviceGetHandleByPciBusId_v2(const char *bus, nvmlDevice_t *h)
{
    int d = !strcmp(bus, "00000000:01:00.0") ? 0 : !strcmp(bus, "00000000:02:00.0") ? 1 : -1;
    if (d < 0)
        return INVALID_ARGUMENT;
    *h = (nvmlDevice_t)(size_t)(d + 1);
    return OK;
}

API int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *h)
{
    if (i > 1)
        return INVALID_ARGUMENT;
    *h = (nvmlDevice_t)(size_t)(i + 1);
    return OK;
}

API int nvmlDeviceGetIndex(nvmlDevice_t h, unsigned int *i)
{
    int d = device_of(h);
    if (d < 0)
        return INVALID_ARGUMENT;
    *i = (unsigned int)d;
    return OK;
}

API int nvmlDeviceGetUUID(nvmlDevice_t h, char *buf, unsigned int len)
{
    int d = device_of(h);
    const char *forced = getenv("FAKE_NVML_UUID");
    if (d < 0 || !buf)
        return INVALID_ARGUMENT;
    int n = d == 0 && forced ? snprintf(buf, len, "%s", forced)
                             : snprintf(buf, len, "GPU-fa4e0000-0000-4000-8000-00000000000%d", d);
    return n < 0 || (unsigned int)n >= len ? INSUFFICIENT_SIZE : OK;
}

/* What the fake libcuda loaded in this process handed out on the device (0 before it is loaded). */
static u64 cuda_used(int dev)
{
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    u64 (*used)(int) = cuda ? (u64(*)(int))dlsym(cuda, "fake_used") : NULL;
    u64 u = used ? used(dev) : 0;
    if (cuda)
        dlclose(cuda);
    return u;
}

static int memory(nvmlDevice_t h, u64 *total, u64 *free_b, u64 *used)
{
    int d = device_of(h);
    if (d < 0)
        return INVALID_ARGUMENT;
    const char *t = getenv("FAKE_CUDA_TOTAL_MIB");
    *total = (t ? strtoull(t, NULL, 10) : 16384) * MIB;
    *used = 256 * MIB + cuda_used(d);
    *free_b = *total > *used ? *total - *used : 0;
    return OK;
}

API int nvmlDeviceGetMemoryInfo(nvmlDevice_t h, Memory *m) { return memory(h, &m->total, &m->free, &m->used); }

API int nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t h, Memory2 *m)
{
    m->reserved = 0;
    return memory(h, &m->total, &m->free, &m->used);
}

API int nvmlDeviceGetClockInfo(nvmlDevice_t h, int type, unsigned int *mhz)
{
    const char *c = getenv("FAKE_NVML_SM_MHZ");
    if (device_of(h) < 0)
        return INVALID_ARGUMENT;
    if (!c || type != 1 /* NVML_CLOCK_SM */)
        return NOT_SUPPORTED;
    *mhz = (unsigned int)strtoul(c, NULL, 10);
    return OK;
}

/* The PIDs of FAKE_NVML_PROCS; -1 and *err when the query is to fail. */
static int read_procs(unsigned int *pids, int *err)
{
    const char *path = getenv("FAKE_NVML_PROCS");
    if (!path) {
        *err = NOT_SUPPORTED;
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = UNKNOWN;
        return -1;
    }
    int n = 0;
    char word[32];
    while (n < MAXP && fscanf(f, "%31s", word) == 1) {
        if (!strcmp(word, "error")) {
            fclose(f);
            *err = UNKNOWN;
            return -1;
        }
        pids[n++] = !strcmp(word, "self") ? (unsigned int)getpid() : (unsigned int)strtoul(word, NULL, 10);
    }
    fclose(f);
    return n;
}

static void log_query(void)
{
    const char *path = getenv("FAKE_NVML_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%d procs\n", (int)getpid());
        fclose(f);
    }
}

/* NVML's contract: *count in = room in infos, out = processes listed; INSUFFICIENT_SIZE with the count needed
 * when they do not fit (infos may be NULL with *count 0). */
static int procs(nvmlDevice_t h, unsigned int *count, void *infos, size_t size)
{
    unsigned int pids[MAXP];
    int err = OK;
    if (device_of(h) < 0 || !count)
        return INVALID_ARGUMENT;
    log_query();
    int n = read_procs(pids, &err);
    if (n < 0)
        return err;
    if ((unsigned int)n > *count) {
        *count = (unsigned int)n;
        return INSUFFICIENT_SIZE;
    }
    for (int i = 0; i < n; i++) {
        Proc2 p = {pids[i], 64 * MIB, 0xFFFFFFFFu, 0xFFFFFFFFu};
        memcpy((char *)infos + (size_t)i * size, &p, size);
    }
    *count = (unsigned int)n;
    return OK;
}

API int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t h, unsigned int *c, Proc2 *p)
{
    return procs(h, c, p, sizeof(Proc2));
}
API int nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t h, unsigned int *c, Proc2 *p)
{
    return procs(h, c, p, sizeof(Proc2));
}
API int nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t h, unsigned int *c, Proc1 *p)
{
    return procs(h, c, p, sizeof(Proc1));
}

API int nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t h, unsigned int *c, Proc2 *p)
{
    (void)p;
    if (device_of(h) < 0 || !c)
        return INVALID_ARGUMENT;
    *c = 0;
    return OK;
}
