/* dl.c - how calls reach us: the dlsym override, cuGetProcAddress wrappers, and resolving the real
 * driver. CUDA 12/13 runtimes dlopen libcuda.so.1 and resolve every entry point through dlsym on that
 * handle or through cuGetProcAddress(_v2); exported overrides alone would see no calls. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu.h"

typedef void *(*dlsym_fn)(void *, const char *);
static dlsym_fn real_dlsym_fn;
struct vg_real vg_real;
static void *libcuda;

static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int cfg_state;    /* 0 not yet, 2 done */
static volatile int cuda_state;   /* 0 not yet, 2 done */
static __thread int in_init;      /* set while this thread runs our own dlopen/dlsym */

static void resolve_real_dlsym(void)
{
    static const char *versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.3", "GLIBC_2.4", NULL};
    for (int i = 0; versions[i] && !real_dlsym_fn; i++)
        real_dlsym_fn = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
    if (!real_dlsym_fn) {
        void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        for (int i = 0; libc && versions[i] && !real_dlsym_fn; i++)
            real_dlsym_fn = (dlsym_fn)dlvsym(libc, "dlsym", versions[i]);
    }
}

void *vg_real_dlsym(void *handle, const char *name)
{
    if (!real_dlsym_fn)
        resolve_real_dlsym();
    return real_dlsym_fn ? real_dlsym_fn(handle, name) : NULL;
}

static void ensure_config(void)
{
    if (__atomic_load_n(&cfg_state, __ATOMIC_ACQUIRE) == 2)
        return;
    pthread_mutex_lock(&init_mu);
    if (cfg_state != 2) {
        vg_config_load();
        __atomic_store_n(&cfg_state, 2, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_mu);
}

#define RESOLVE(field) vg_real.field = (typeof(vg_real.field))vg_real_dlsym(libcuda, #field)
#define RESOLVE_AS(field, sym) \
    if (!vg_real.field) vg_real.field = (typeof(vg_real.field))vg_real_dlsym(libcuda, sym)

static void load_libcuda(void)
{
    const char *path = getenv("HAMI_REAL_LIBCUDA");
    libcuda = dlopen(path && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!libcuda) {
        vg_log(VG_ERROR, "cannot dlopen the real CUDA driver: %s", dlerror());
        return;
    }
    RESOLVE(cuGetProcAddress);
    RESOLVE(cuGetProcAddress_v2);
    RESOLVE(cuCtxGetDevice);
    RESOLVE(cuCtxGetCurrent);
    RESOLVE(cuCtxSetCurrent);
    RESOLVE_AS(cuDeviceGetUuid, "cuDeviceGetUuid_v2");
    RESOLVE_AS(cuDeviceGetUuid, "cuDeviceGetUuid");
    RESOLVE(cuDeviceGetPCIBusId);
    RESOLVE(cuDeviceGetMemPool);
    RESOLVE(cuMemPoolGetAttribute);
    RESOLVE(cuMemPoolTrimTo);
    RESOLVE(cuStreamSynchronize);
    RESOLVE(cuStreamIsCapturing);
    RESOLVE(cuThreadExchangeStreamCaptureMode);
    RESOLVE(cuEventCreate);
    RESOLVE(cuEventRecord);
    RESOLVE(cuEventQuery);
    RESOLVE_AS(cuEventElapsedTime, "cuEventElapsedTime_v2");
    RESOLVE_AS(cuEventElapsedTime, "cuEventElapsedTime");
    RESOLVE(cuArrayGetMemoryRequirements);
    RESOLVE_AS(cuMemHostRegister, "cuMemHostRegister_v2");
    RESOLVE_AS(cuMemHostRegister, "cuMemHostRegister");
    RESOLVE_AS(cuMemHostGetDevicePointer, "cuMemHostGetDevicePointer_v2");
    RESOLVE_AS(cuStreamWaitValue32, "cuStreamWaitValue32_v2");  /* the V2 memops only: V1 needs a module option */
    RESOLVE(cuMipmappedArrayGetMemoryRequirements);
    for (int i = 0; i < vg_hook_count; i++) {
        const struct vg_hook *h = &vg_hooks[i];
        if (!h->nvml && !*h->real)
            *h->real = vg_real_dlsym(libcuda, h->name);
    }
}

void vg_init_cuda(void)
{
    if (__atomic_load_n(&cuda_state, __ATOMIC_ACQUIRE) == 2)
        return;
    if (in_init)
        return;
    ensure_config();
    pthread_mutex_lock(&init_mu);
    if (cuda_state != 2) {
        in_init = 1;
        pthread_atfork(NULL, NULL, vg_ctx_forked);  /* before any device is kept (vg_ctx_device) */
        load_libcuda();
        in_init = 0;
        __atomic_store_n(&cuda_state, 2, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_mu);
}

int vg_current_device(void)
{
    CUdevice d = -1;
    if (!vg_real.cuCtxGetDevice || vg_real.cuCtxGetDevice(&d) != CUDA_SUCCESS)
        return -1;
    return (d >= 0 && d < HAMI_MAX_DEVICES) ? d : -1;
}

/* The launch path's device (issue 18, alonepath): the launch needs the current context anyway (launch.c compares it
 * with the measured one), and a context's device never changes while it lives, so the device is kept per thread with
 * the context it was asked for: a launch costs one driver call (cuCtxGetCurrent) instead of two (+ cuCtxGetDevice:
 * the H100 inference loop alone, 183 launches a step, paid both on every launch). A handle may name a new context,
 * on another device, once the old one is destroyed (the fake reuses a destroyed context's slot, as a driver may
 * reuse its memory): every hooked call that can destroy a context (cuCtxDestroy, cuDevicePrimaryCtxRelease/Reset,
 * cuGreenCtxDestroy) brackets the driver's call with vg_ctx_dying, which bumps ctx_gen on entry and on exit and
 * counts the destructions in progress; a thread's kept device is used only while no destruction is in progress and
 * ctx_gen is the one read when it was kept, and kept only when ctx_gen did not move across its cuCtxGetDevice. A
 * context destroyed behind the library's back (a path it does not hook) would leave the library's events on it
 * failing: the measured state goes stale and its launches are charged unmeasured (launch.c drop_measured), never
 * free. HAMI_CTX_NO_CACHE (a build flag, bench A/B only) asks the driver on every launch, as before. */
static uint64_t ctx_gen;
static int ctx_dying;
static __thread CUcontext kept_ctx __attribute__((tls_model("initial-exec")));
static __thread uint64_t kept_gen __attribute__((tls_model("initial-exec")));
static __thread int kept_dev __attribute__((tls_model("initial-exec")));

void vg_ctx_dying(int begin)
{
    if (begin)
        __atomic_add_fetch(&ctx_dying, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&ctx_gen, 1, __ATOMIC_SEQ_CST);
    if (!begin)
        __atomic_sub_fetch(&ctx_dying, 1, __ATOMIC_SEQ_CST);
}

/* A forked child: the forking thread's kept device is its parent's (a child that initialises CUDA gets contexts of its
 * own, whose handles may equal the parent's), and a destruction the parent had in progress never ends here. */
void vg_ctx_forked(void)
{
    __atomic_store_n(&ctx_dying, 0, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&ctx_gen, 1, __ATOMIC_SEQ_CST);
}

/* The gate's host word (launch.c gate_ready) is registered in a context: registered again after any context
 * destruction. */
uint64_t vg_ctx_epoch(int *calm)
{
    *calm = !__atomic_load_n(&ctx_dying, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&ctx_gen, __ATOMIC_SEQ_CST);
}

int vg_ctx_device(CUcontext *ctx)
{
    *ctx = NULL;
    if (!vg_real.cuCtxGetCurrent)
        return vg_current_device();
    if (vg_real.cuCtxGetCurrent(ctx) != CUDA_SUCCESS)
        *ctx = NULL;
#ifndef HAMI_CTX_NO_CACHE
    uint64_t gen = __atomic_load_n(&ctx_gen, __ATOMIC_SEQ_CST);
    int calm = !__atomic_load_n(&ctx_dying, __ATOMIC_SEQ_CST);
    if (*ctx && calm && *ctx == kept_ctx && gen == kept_gen)
        return kept_dev;
#endif
    int dev = vg_current_device();
#ifndef HAMI_CTX_NO_CACHE
    kept_ctx = NULL;
    if (*ctx && dev >= 0 && calm && !__atomic_load_n(&ctx_dying, __ATOMIC_SEQ_CST) &&
        __atomic_load_n(&ctx_gen, __ATOMIC_SEQ_CST) == gen) {
        kept_ctx = *ctx;
        kept_gen = gen;
        kept_dev = dev;
    }
#endif
    return dev;
}

/* The context destructions that vg_ctx_device must see (see above); these calls have no other work here. */
#define CTX_DESTROY_HOOK(name, arg_t)                                \
    VG_API CUresult name(arg_t c)                                    \
    {                                                                \
        vg_init_cuda();                                              \
        if (!vg_real.name)                                           \
            return CUDA_ERROR_NOT_INITIALIZED;                       \
        return VG_CTX_DESTROYING(vg_real.name(c));                   \
    }
CTX_DESTROY_HOOK(cuCtxDestroy_v2, CUcontext)
CTX_DESTROY_HOOK(cuCtxDestroy, CUcontext)
CTX_DESTROY_HOOK(cuGreenCtxDestroy, void *)

/* The dynamic linker finds this before libc's, for every dlsym call in the process. */
VG_API void *dlsym(void *handle, const char *name)
{
    void *p = vg_real_dlsym(handle, name);
    if (!p || in_init)
        return p;
    int is_cu = name[0] == 'c' && name[1] == 'u';
    int is_nvml = !is_cu && name[0] == 'n' && !strncmp(name, "nvml", 4);
    if (!is_cu && !is_nvml)
        return p;
    const struct vg_hook *h = vg_hook_find(name);
    if (!h || p == h->wrapper)
        return p;
    ensure_config();
    if (vg_cfg.disabled)
        return p;
    if (is_cu)
        vg_init_cuda();
    else if (!*h->real)
        __atomic_store_n(h->real, p, __ATOMIC_RELEASE);
    return vg_hook_resolve(h, p);
}

static void *swap_pointer(CUresult r, void **pfn)
{
    if (r != CUDA_SUCCESS || !pfn || !*pfn || vg_cfg.disabled)
        return pfn ? *pfn : NULL;
    return vg_hook_by_real(*pfn);
}

VG_API CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags, int *status)
{
    vg_init_cuda();
    if (!vg_real.cuGetProcAddress_v2)
        return CUDA_ERROR_NOT_FOUND;
    CUresult r = vg_real.cuGetProcAddress_v2(symbol, pfn, version, flags, status);
    if (pfn)
        *pfn = swap_pointer(r, pfn);
    return r;
}

VG_API CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    vg_init_cuda();
    if (!vg_real.cuGetProcAddress)
        return CUDA_ERROR_NOT_FOUND;
    CUresult r = vg_real.cuGetProcAddress(symbol, pfn, version, flags);
    if (pfn)
        *pfn = swap_pointer(r, pfn);
    return r;
}

VG_API const char *hami_vgpu_version(void)
{
    return HAMI_VGPU_VERSION;
}

/* Marker found by scanning the file, so Python can read the version without loading the library. */
__attribute__((used)) static const char version_marker[] = "HAMI_VGPU_VERSION=" HAMI_VGPU_VERSION;
