/* hooks.c - the table of intercepted entry points: what dlsym and cuGetProcAddress hand out.
 * Launch entries are handed out as the real driver pointers when no SM limit or priority applies, so
 * an unlimited container pays nothing on its launch path. */
#include <string.h>

#include "vgpu.h"

extern void *vg_nvml_real_meminfo, *vg_nvml_real_meminfo_v2, *vg_nvml_real_index;

#define CU_LIST                                                                                     \
    X(cuGetProcAddress, 0) X(cuGetProcAddress_v2, 0) X(cuMemAlloc_v2, 0) X(cuMemFree_v2, 0)          \
    X(cuMemAllocPitch_v2, 0) X(cuMemAllocManaged, 0) X(cuMemAllocAsync, 0) X(cuMemAllocAsync_ptsz, 0) \
    X(cuMemAllocFromPoolAsync, 0) X(cuMemAllocFromPoolAsync_ptsz, 0) X(cuMemFreeAsync, 0)             \
    X(cuMemFreeAsync_ptsz, 0) X(cuMemCreate, 0) X(cuMemRelease, 0) X(cuArrayCreate_v2, 0)             \
    X(cuArray3DCreate_v2, 0) X(cuArrayDestroy, 0) X(cuMipmappedArrayCreate, 0)                        \
    X(cuMipmappedArrayDestroy, 0) X(cuMemGetInfo_v2, 0) X(cuDeviceTotalMem_v2, 0)                     \
    X(cuDevicePrimaryCtxRetain, 0) X(cuDevicePrimaryCtxRelease_v2, 0) X(cuDevicePrimaryCtxReset_v2, 0) \
    X(cuDevicePrimaryCtxRelease, 0) X(cuDevicePrimaryCtxReset, 0)                                     \
    X(cuCtxDestroy_v2, 0) X(cuCtxDestroy, 0) X(cuGreenCtxDestroy, 0)                                  \
    X(cuLaunchKernel, 1) X(cuLaunchKernel_ptsz, 1) X(cuLaunchKernelEx, 1) X(cuLaunchKernelEx_ptsz, 1) \
    X(cuLaunchCooperativeKernel, 1) X(cuLaunchCooperativeKernel_ptsz, 1) X(cuGraphLaunch, 1)          \
    X(cuGraphLaunch_ptsz, 1) X(cuStreamBeginCapture, 0) X(cuStreamBeginCapture_ptsz, 0)               \
    X(cuStreamBeginCapture_v2, 0) X(cuStreamBeginCapture_v2_ptsz, 0) X(cuStreamBeginCaptureToGraph, 0)  \
    X(cuStreamBeginCaptureToGraph_ptsz, 0) X(cuStreamSynchronize, 1) X(cuStreamSynchronize_ptsz, 1)          \
    X(cuCtxSynchronize, 1) X(cuEventSynchronize, 1) X(cuStreamDestroy, 1) X(cuStreamDestroy_v2, 1)

#define X(name, launch) CUresult name();
CU_LIST
#undef X
int nvmlDeviceGetMemoryInfo();
int nvmlDeviceGetMemoryInfo_v2();

#define X(name, launch) {#name, (void *)name, (void **)&vg_real.name, launch, 0},
const struct vg_hook vg_hooks[] = {
    CU_LIST
    {"nvmlDeviceGetMemoryInfo", (void *)nvmlDeviceGetMemoryInfo, &vg_nvml_real_meminfo, 0, 1},
    {"nvmlDeviceGetMemoryInfo_v2", (void *)nvmlDeviceGetMemoryInfo_v2, &vg_nvml_real_meminfo_v2, 0, 1},
    {"nvmlDeviceGetIndex", NULL, &vg_nvml_real_index, 0, 1},
};
#undef X
const int vg_hook_count = sizeof(vg_hooks) / sizeof(vg_hooks[0]);

const struct vg_hook *vg_hook_find(const char *name)
{
    for (int i = 0; i < vg_hook_count; i++)
        if (!strcmp(vg_hooks[i].name, name))
            return &vg_hooks[i];
    return NULL;
}

void *vg_hook_resolve(const struct vg_hook *h, void *real_ptr)
{
    void *real = __atomic_load_n(h->real, __ATOMIC_ACQUIRE);
    if (!h->wrapper || !real)
        return real_ptr;  /* observed only (nvmlDeviceGetIndex), or the driver lacks it */
    if (h->launch && !vg_launch_control() && !WRAP_ONLY)
        return real;
    return h->wrapper;
}

void *vg_hook_by_real(void *real_ptr)
{
    for (int i = 0; i < vg_hook_count; i++) {
        const struct vg_hook *h = &vg_hooks[i];
        if (!h->nvml && *h->real == real_ptr)
            return vg_hook_resolve(h, real_ptr);
    }
    return real_ptr;
}
