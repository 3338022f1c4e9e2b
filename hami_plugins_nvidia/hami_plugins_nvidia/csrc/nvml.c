/* nvml.c - NVML memory info reports the container's limit as the total, so nvidia-smi and
 * nvidia-ml-py inside the container show the quota. The NVML device index is taken as the CUDA index. */
#include "vgpu.h"

void *vg_nvml_real_meminfo;
void *vg_nvml_real_meminfo_v2;
void *vg_nvml_real_index;

static int nvml_index(nvmlDevice_t dev)
{
    unsigned int idx = 0;
    nvmlReturn_t (*fn)(nvmlDevice_t, unsigned int *) = vg_nvml_real_index;
    if (!fn)
        return 0;  /* nvmlDeviceGetIndex not resolved yet: a container usually sees one GPU */
    if (fn(dev, &idx) != 0 || idx >= HAMI_MAX_DEVICES)
        return -1;
    return (int)idx;
}

/* Replaces total/used/free with the container's view. */
static void clamp(int idx, unsigned long long *total, unsigned long long *free_b, unsigned long long *used)
{
    if (idx < 0 || vg_cfg.disabled || vg_lock_depth || !vg_region_ready())
        return;
    uint64_t limit = vg_limit(idx);
    if (!limit)
        return;
    vg_lock();
    uint64_t in_use = vg_usage_locked(idx);
    vg_unlock();
    uint64_t t = *total < limit ? *total : limit;
    *total = t;
    *used = in_use;
    *free_b = t > in_use ? t - in_use : 0;
}

VG_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *mem)
{
    nvmlReturn_t (*fn)(nvmlDevice_t, nvmlMemory_t *) = vg_nvml_real_meminfo;
    if (!fn)
        return 13; /* NVML_ERROR_FUNCTION_NOT_FOUND */
    nvmlReturn_t r = fn(dev, mem);
    if (r == 0 && mem)
        clamp(nvml_index(dev), &mem->total, &mem->free, &mem->used);
    return r;
}

VG_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *mem)
{
    nvmlReturn_t (*fn)(nvmlDevice_t, nvmlMemory_v2_t *) = vg_nvml_real_meminfo_v2;
    if (!fn)
        return 13;
    nvmlReturn_t r = fn(dev, mem);
    if (r == 0 && mem)
        clamp(nvml_index(dev), &mem->total, &mem->free, &mem->used);
    return r;
}
