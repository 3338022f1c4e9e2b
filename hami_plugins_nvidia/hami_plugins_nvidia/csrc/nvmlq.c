/* nvmlq.c - the interposer's own NVML queries (never through our hooks): device memory in use, to
 * measure what creating a context took, and the SM clock, to express busy time in sustained-clock units. */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "vgpu.h"

static void *nvml;
static int (*by_bus)(const char *, nvmlDevice_t *);
static int (*meminfo)(nvmlDevice_t, nvmlMemory_t *);
static int (*clockinfo)(nvmlDevice_t, int, unsigned int *);
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
