/* mem.c - device-memory hooks: every allocation path is charged to the container before (or, where the
 * size is only known afterwards, atomically with) the real allocation, under the region lock, so no
 * byte is ever allocated over the limit. Over the limit each path returns CUDA_ERROR_OUT_OF_MEMORY. */
#include <string.h>

#include "ptrmap.h"
#include "vgpu.h"

static struct vg_ptrmap ptrs, handles, arrays;


/* Stream-ordered pools: the pool's reserved bytes are charged (that is what the pool takes from the GPU). */
#define MAX_POOLS 64
static struct {
    CUmemoryPool pool;
    int dev;
    uint64_t charged;
} pools[MAX_POOLS];
static int npools;

static int ctx_refs[HAMI_MAX_DEVICES];
static uint64_t ctx_charge[HAMI_MAX_DEVICES];
static uint64_t prim_ctx[HAMI_MAX_DEVICES];  /* each device's primary context, once retained */

#define ACTIVE() (!vg_cfg.disabled && !vg_lock_depth && vg_region_ready())

/* After a successful free of `key`, un-charge exactly what its allocation charged. Returns r unchanged. */
static CUresult uncharge_after(struct vg_ptrmap *m, uint64_t key, CUresult r)
{
    if (r == CUDA_SUCCESS && ACTIVE()) {
        vg_lock();
        uint64_t size;
        int dev;
        if (vg_map_take(m, key, &size, &dev))
            vg_uncharge_locked(dev, size);
        vg_unlock();
    }
    return r;
}
#define ENTER(field)                           \
    vg_init_cuda();                            \
    if (!vg_real.field)                        \
        return CUDA_ERROR_NOT_INITIALIZED;

/* The calling thread's current context: an allocation is recorded with it, because destroying the context
 * (a primary-context reset or last release) frees the allocation without any cuMemFree we would see. */
static uint64_t current_ctx(void)
{
    CUcontext c = NULL;
    if (!vg_real.cuCtxGetCurrent || vg_real.cuCtxGetCurrent(&c) != CUDA_SUCCESS)
        return 0;
    return (uint64_t)(uintptr_t)c;
}

static uint64_t pool_attr(CUmemoryPool pool, int attr)
{
    cuuint64_t v = 0;
    if (!vg_real.cuMemPoolGetAttribute || vg_real.cuMemPoolGetAttribute(pool, attr, &v) != CUDA_SUCCESS)
        return 0;
    return v;
}

static int pool_index_locked(CUmemoryPool pool, int dev)
{
    for (int i = 0; i < npools; i++)
        if (pools[i].pool == pool)
            return i;
    if (npools == MAX_POOLS)
        return -1;
    pools[npools].pool = pool;
    pools[npools].dev = dev;
    pools[npools].charged = 0;
    return npools++;
}

/* Bring the charge of one pool to its current reserved size (pools shrink at synchronization). */
static void reconcile_pool_locked(int i)
{
    uint64_t reserved = pool_attr(pools[i].pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
    if (reserved > pools[i].charged)
        vg_force_charge_locked(pools[i].dev, reserved - pools[i].charged);
    else
        vg_uncharge_locked(pools[i].dev, pools[i].charged - reserved);
    pools[i].charged = reserved;
}

void vg_reconcile_pools_locked(void)
{
    for (int i = 0; i < npools; i++)
        reconcile_pool_locked(i);
}

typedef CUresult (*pool_alloc_fn)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);
typedef CUresult (*async_alloc_fn)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*async_free_fn)(CUdeviceptr, CUstream);

static CUresult pool_alloc(const char *what, CUdeviceptr *dptr, size_t size, CUmemoryPool pool, CUstream s,
                           int dev, pool_alloc_fn from_pool, async_alloc_fn plain, async_free_fn afree)
{
    vg_lock();
    int i = pool_index_locked(pool, dev);
    if (i < 0) {
        vg_unlock();
        vg_log(VG_WARN, "%s: more than %d memory pools, not accounting pool %p", what, MAX_POOLS, pool);
        return from_pool ? from_pool(dptr, size, pool, s) : plain(dptr, size, s);
    }
    reconcile_pool_locked(i);
    uint64_t reserved = pools[i].charged;
    uint64_t in_use = pool_attr(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT);
    uint64_t cached = reserved > in_use ? reserved - in_use : 0;
    uint64_t growth = size > cached ? size - cached : 0;
    if (growth && !vg_charge_locked(dev, growth, what)) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    vg_uncharge_locked(dev, growth);  /* the check only; the real growth is charged below */
    CUresult r = from_pool ? from_pool(dptr, size, pool, s) : plain(dptr, size, s);
    if (r == CUDA_SUCCESS) {
        uint64_t now_reserved = pool_attr(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
        uint64_t grew = now_reserved > reserved ? now_reserved - reserved : 0;
        if (grew && !vg_charge_locked(dev, grew, what)) {
            /* the pool grew by more than the request (its granularity): give it back, report OOM */
            afree(*dptr, s);
            if (vg_real.cuStreamSynchronize)
                vg_real.cuStreamSynchronize(s);
            if (vg_real.cuMemPoolTrimTo)
                vg_real.cuMemPoolTrimTo(pool, reserved);
            reconcile_pool_locked(i);
            vg_unlock();
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        pools[i].charged += grew;
    }
    vg_unlock();
    return r;
}

static CUresult default_pool_alloc(const char *what, CUdeviceptr *dptr, size_t size, CUstream s,
                                   async_alloc_fn plain, async_free_fn afree)
{
    int dev = vg_current_device();
    CUmemoryPool pool = NULL;
    if (!ACTIVE() || dev < 0 || !vg_real.cuDeviceGetMemPool || vg_real.cuDeviceGetMemPool(&pool, dev) != 0)
        return plain(dptr, size, s);
    return pool_alloc(what, dptr, size, pool, s, dev, NULL, plain, afree);
}

VG_API CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t size, CUstream s)
{
    ENTER(cuMemAllocAsync);
    return default_pool_alloc("cuMemAllocAsync", dptr, size, s, vg_real.cuMemAllocAsync,
                              vg_real.cuMemFreeAsync);
}

VG_API CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t size, CUstream s)
{
    ENTER(cuMemAllocAsync_ptsz);
    return default_pool_alloc("cuMemAllocAsync", dptr, size, s, vg_real.cuMemAllocAsync_ptsz,
                              vg_real.cuMemFreeAsync_ptsz ? vg_real.cuMemFreeAsync_ptsz : vg_real.cuMemFreeAsync);
}

static CUresult from_pool(CUdeviceptr *dptr, size_t size, CUmemoryPool pool, CUstream s, pool_alloc_fn fn,
                          async_free_fn afree)
{
    int dev = vg_current_device();
    if (!ACTIVE() || dev < 0)
        return fn(dptr, size, pool, s);
    return pool_alloc("cuMemAllocFromPoolAsync", dptr, size, pool, s, dev, fn, NULL, afree);
}

VG_API CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t size, CUmemoryPool pool, CUstream s)
{
    ENTER(cuMemAllocFromPoolAsync);
    return from_pool(dptr, size, pool, s, vg_real.cuMemAllocFromPoolAsync, vg_real.cuMemFreeAsync);
}

VG_API CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t size, CUmemoryPool pool, CUstream s)
{
    ENTER(cuMemAllocFromPoolAsync_ptsz);
    return from_pool(dptr, size, pool, s, vg_real.cuMemAllocFromPoolAsync_ptsz,
                     vg_real.cuMemFreeAsync_ptsz ? vg_real.cuMemFreeAsync_ptsz : vg_real.cuMemFreeAsync);
}

static CUresult free_async(CUdeviceptr p, CUstream s, async_free_fn fn)
{
    return uncharge_after(&ptrs, p, fn(p, s));  /* a cuMemAlloc pointer freed stream-ordered */
}

VG_API CUresult cuMemFreeAsync(CUdeviceptr p, CUstream s)
{
    ENTER(cuMemFreeAsync);
    return free_async(p, s, vg_real.cuMemFreeAsync);
}

VG_API CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s)
{
    ENTER(cuMemFreeAsync_ptsz);
    return free_async(p, s, vg_real.cuMemFreeAsync_ptsz);
}

VG_API CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t size)
{
    ENTER(cuMemAlloc_v2);
    int dev = vg_current_device();
    if (!ACTIVE() || dev < 0)
        return vg_real.cuMemAlloc_v2(dptr, size);
    vg_lock();
    if (!vg_charge_locked(dev, size, "cuMemAlloc")) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = vg_real.cuMemAlloc_v2(dptr, size);
    if (r == CUDA_SUCCESS)
        vg_map_put(&ptrs, *dptr, size, dev, current_ctx());
    else
        vg_uncharge_locked(dev, size);
    vg_unlock();
    return r;
}

VG_API CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t size, unsigned int flags)
{
    ENTER(cuMemAllocManaged);
    int dev = vg_current_device();
    if (!ACTIVE() || dev < 0)
        return vg_real.cuMemAllocManaged(dptr, size, flags);
    vg_lock();
    if (!vg_charge_locked(dev, size, "cuMemAllocManaged")) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = vg_real.cuMemAllocManaged(dptr, size, flags);
    if (r == CUDA_SUCCESS)
        vg_map_put(&ptrs, *dptr, size, dev, current_ctx());
    else
        vg_uncharge_locked(dev, size);
    vg_unlock();
    return r;
}

VG_API CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width, size_t height,
                                   unsigned int elem)
{
    ENTER(cuMemAllocPitch_v2);
    int dev = vg_current_device();
    if (!ACTIVE() || dev < 0)
        return vg_real.cuMemAllocPitch_v2(dptr, pitch, width, height, elem);
    uint64_t estimate = ((width + 511) / 512) * 512 * (uint64_t)height;
    vg_lock();
    if (!vg_charge_locked(dev, estimate, "cuMemAllocPitch")) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = vg_real.cuMemAllocPitch_v2(dptr, pitch, width, height, elem);
    if (r != CUDA_SUCCESS) {
        vg_uncharge_locked(dev, estimate);
    } else {
        uint64_t exact = (uint64_t)*pitch * height;
        vg_uncharge_locked(dev, estimate);
        if (!vg_charge_locked(dev, exact, "cuMemAllocPitch")) {
            vg_real.cuMemFree_v2(*dptr);
            r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
            vg_map_put(&ptrs, *dptr, exact, dev, current_ctx());
        }
    }
    vg_unlock();
    return r;
}

VG_API CUresult cuMemFree_v2(CUdeviceptr p)
{
    ENTER(cuMemFree_v2);
    return uncharge_after(&ptrs, p, vg_real.cuMemFree_v2(p));
}

VG_API CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                            unsigned long long flags)
{
    ENTER(cuMemCreate);
    if (!ACTIVE() || !prop || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE || prop->location.id < 0 ||
        prop->location.id >= HAMI_MAX_DEVICES)
        return vg_real.cuMemCreate(handle, size, prop, flags);
    int dev = prop->location.id;
    vg_lock();
    if (!vg_charge_locked(dev, size, "cuMemCreate")) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = vg_real.cuMemCreate(handle, size, prop, flags);
    if (r == CUDA_SUCCESS)
        vg_map_put(&handles, *handle, size, dev, 0);  /* VMM memory outlives contexts */
    else
        vg_uncharge_locked(dev, size);
    vg_unlock();
    return r;
}

VG_API CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    ENTER(cuMemRelease);
    return uncharge_after(&handles, handle, vg_real.cuMemRelease(handle));
}

static uint64_t format_bytes(int format)
{
    switch (format) {
    case 0x01: case 0x08: return 1;               /* (un)signed int8 */
    case 0x02: case 0x09: case 0x10: return 2;    /* int16, half */
    default: return 4;                            /* int32, float, others */
    }
}

/* Charges an array: estimate first (checked), then the driver's exact requirement once it exists. */
static CUresult charge_array(const char *what, int dev, uint64_t estimate, void *arr, int mipmapped, CUresult r,
                             CUresult (*destroy)(void *))
{
    if (r != CUDA_SUCCESS) {
        vg_uncharge_locked(dev, estimate);
        return r;
    }
    CUDA_ARRAY_MEMORY_REQUIREMENTS req;
    memset(&req, 0, sizeof(req));
    CUresult q = mipmapped ? (vg_real.cuMipmappedArrayGetMemoryRequirements
                                  ? vg_real.cuMipmappedArrayGetMemoryRequirements(&req, arr, dev) : 1)
                           : (vg_real.cuArrayGetMemoryRequirements
                                  ? vg_real.cuArrayGetMemoryRequirements(&req, arr, dev) : 1);
    uint64_t exact = (q == CUDA_SUCCESS && req.size) ? req.size : estimate;
    vg_uncharge_locked(dev, estimate);
    if (!vg_charge_locked(dev, exact, what)) {
        destroy(arr);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    vg_map_put(&arrays, (uint64_t)(uintptr_t)arr, exact, dev, current_ctx());
    return CUDA_SUCCESS;
}

static CUresult destroy_array(void *a) { return vg_real.cuArrayDestroy(a); }
static CUresult destroy_mipmap(void *a) { return vg_real.cuMipmappedArrayDestroy(a); }

static uint64_t dims(size_t w, size_t h, size_t d, int format, unsigned ch)
{
    return (uint64_t)w * (h ? h : 1) * (d ? d : 1) * format_bytes(format) * (ch ? ch : 1);
}

VG_API CUresult cuArrayCreate_v2(CUarray *arr, const CUDA_ARRAY_DESCRIPTOR *desc)
{
    ENTER(cuArrayCreate_v2);
    int dev = vg_current_device();
    if (!ACTIVE() || dev < 0 || !desc)
        return vg_real.cuArrayCreate_v2(arr, desc);
    uint64_t est = dims(desc->Width, desc->Height, 1, desc->Format, desc->NumChannels);
    vg_lock();
    if (!vg_charge_locked(dev, est, "cuArrayCreate")) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = vg_real.cuArrayCreate_v2(arr, desc);
    r = charge_array("cuArrayCreate", dev, est, r == CUDA_SUCCESS ? *arr : NULL, 0, r, destroy_array);
    vg_unlock();
    return r;
}

VG_API CUresult cuArray3DCreate_v2(CUarray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc)
{
    ENTER(cuArray3DCreate_v2);
    int dev = vg_current_device();
    if (!ACTIVE() || dev < 0 || !desc)
        return vg_real.cuArray3DCreate_v2(arr, desc);
    uint64_t est = dims(desc->Width, desc->Height, desc->Depth, desc->Format, desc->NumChannels);
    vg_lock();
    if (!vg_charge_locked(dev, est, "cuArray3DCreate")) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = vg_real.cuArray3DCreate_v2(arr, desc);
    r = charge_array("cuArray3DCreate", dev, est, r == CUDA_SUCCESS ? *arr : NULL, 0, r, destroy_array);
    vg_unlock();
    return r;
}

VG_API CUresult cuMipmappedArrayCreate(CUmipmappedArray *arr, const CUDA_ARRAY3D_DESCRIPTOR *desc,
                                       unsigned int levels)
{
    ENTER(cuMipmappedArrayCreate);
    int dev = vg_current_device();
    if (!ACTIVE() || dev < 0 || !desc)
        return vg_real.cuMipmappedArrayCreate(arr, desc, levels);
    uint64_t base = dims(desc->Width, desc->Height, desc->Depth, desc->Format, desc->NumChannels);
    uint64_t est = levels > 1 ? base + base / 3 : base;
    vg_lock();
    if (!vg_charge_locked(dev, est, "cuMipmappedArrayCreate")) {
        vg_unlock();
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = vg_real.cuMipmappedArrayCreate(arr, desc, levels);
    r = charge_array("cuMipmappedArrayCreate", dev, est, r == CUDA_SUCCESS ? *arr : NULL, 1, r, destroy_mipmap);
    vg_unlock();
    return r;
}

static CUresult release_array(void *arr, CUresult r)
{
    return uncharge_after(&arrays, (uint64_t)(uintptr_t)arr, r);
}

VG_API CUresult cuArrayDestroy(CUarray arr)
{
    ENTER(cuArrayDestroy);
    return release_array(arr, vg_real.cuArrayDestroy(arr));
}

VG_API CUresult cuMipmappedArrayDestroy(CUmipmappedArray arr)
{
    ENTER(cuMipmappedArrayDestroy);
    return release_array(arr, vg_real.cuMipmappedArrayDestroy(arr));
}

/* ---- reported totals ---- */

VG_API CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    ENTER(cuMemGetInfo_v2);
    CUresult r = vg_real.cuMemGetInfo_v2(free_bytes, total_bytes);
    int dev = vg_current_device();
    if (r != CUDA_SUCCESS || !ACTIVE() || dev < 0 || !vg_limit(dev))
        return r;
    vg_lock();
    vg_reconcile_pools_locked();
    vg_reclaim_dead_locked();
    uint64_t used = vg_usage_locked(dev);
    vg_unlock();
    uint64_t limit = vg_limit(dev);
    uint64_t total = total_bytes && *total_bytes < limit ? *total_bytes : limit;
    uint64_t free_v = total > used ? total - used : 0;
    if (free_bytes && *free_bytes < free_v)
        free_v = *free_bytes;
    if (free_bytes)
        *free_bytes = free_v;
    if (total_bytes)
        *total_bytes = total;
    return r;
}

VG_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    ENTER(cuDeviceTotalMem_v2);
    CUresult r = vg_real.cuDeviceTotalMem_v2(bytes, dev);
    if (r == CUDA_SUCCESS && bytes && !vg_cfg.disabled && dev >= 0 && dev < HAMI_MAX_DEVICES) {
        vg_region_ready();
        uint64_t limit = vg_limit(dev);
        if (limit && limit < *bytes)
            *bytes = limit;
    }
    return r;
}

/* ---- context overhead ---- */

VG_API CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev)
{
    ENTER(cuDevicePrimaryCtxRetain);
    if (!ACTIVE() || dev < 0 || dev >= HAMI_MAX_DEVICES)
        return vg_real.cuDevicePrimaryCtxRetain(ctx, dev);
    vg_lock();
    int first = ctx_refs[dev] == 0;
    uint64_t before = (first && !vg_cfg.ctx_reserve_set) ? vg_nvml_used(dev) : 0;
    CUresult r = vg_real.cuDevicePrimaryCtxRetain(ctx, dev);
    if (r == CUDA_SUCCESS) {
        ctx_refs[dev]++;
        if (ctx && *ctx)
            prim_ctx[dev] = (uint64_t)(uintptr_t)*ctx;
        if (first) {
            uint64_t cost = vg_cfg.ctx_reserve, slack = 0;
            if (!vg_cfg.ctx_reserve_set && before) {
                uint64_t after = vg_nvml_used(dev);
                cost = after > before ? after - before : 0;
                if (cost > (2ULL << 30))
                    cost = 0;  /* someone else allocated meanwhile; do not guess */
                slack = vg_cfg.ctx_slack;  /* the driver's later, invisible growth (lazy modules, pools) */
                cost += slack;
            }
            if (!vg_charge_locked(dev, cost, "context creation")) {
                ctx_refs[dev]--;
                vg_unlock();
                VG_CTX_DESTROYING(vg_real.cuDevicePrimaryCtxRelease_v2(dev));  /* dl.c vg_ctx_device */
                return CUDA_ERROR_OUT_OF_MEMORY;
            }
            ctx_charge[dev] = cost;
            vg_set_reserved_locked(dev, slack);  /* held against the limit, not reported as in use */
            vg_log(VG_INFO, "device %d: context charged %llu bytes", dev, (unsigned long long)cost);
        }
    }
    vg_unlock();
    return r;
}

/* A reset, or the release of the last reference, destroys the primary context: its own charge goes, and so
 * do the charges of every allocation made in it, which the driver freed without a cuMemFree we could see. */
static void drop_context_locked(CUdevice dev, int all)
{
    int destroyed = all;
    if (ctx_refs[dev] > 0) {
        ctx_refs[dev] = all ? 0 : ctx_refs[dev] - 1;
        if (ctx_refs[dev] == 0) {
            vg_set_reserved_locked(dev, 0);
            vg_uncharge_locked(dev, ctx_charge[dev]);
            ctx_charge[dev] = 0;
            destroyed = 1;
        }
    }
    if (destroyed && prim_ctx[dev])
        vg_uncharge_locked(dev, vg_map_take_ctx(&ptrs, prim_ctx[dev]) + vg_map_take_ctx(&arrays, prim_ctx[dev]));
}

/* After a successful release (one reference) or reset (all references) of a primary context. */
static CUresult drop_context_after(CUdevice dev, int all, CUresult r)
{
    if (r == CUDA_SUCCESS && ACTIVE() && dev >= 0 && dev < HAMI_MAX_DEVICES) {
        vg_lock();
        drop_context_locked(dev, all);
        vg_unlock();
    }
    return r;
}

VG_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    ENTER(cuDevicePrimaryCtxRelease_v2);
    return drop_context_after(dev, 0, VG_CTX_DESTROYING(vg_real.cuDevicePrimaryCtxRelease_v2(dev)));
}

VG_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    ENTER(cuDevicePrimaryCtxReset_v2);
    return drop_context_after(dev, 1, VG_CTX_DESTROYING(vg_real.cuDevicePrimaryCtxReset_v2(dev)));
}

/* The pre-11.0 variants. The CUDA 13 runtime resolves cuDevicePrimaryCtxRelease and cuDevicePrimaryCtxReset
 * through cuGetProcAddress with version 7000, so the driver hands it these, not the _v2 entry points:
 * cudaDeviceReset arrives here. Both destroy the context exactly like the _v2 ones. */
VG_API CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
    ENTER(cuDevicePrimaryCtxRelease);
    return drop_context_after(dev, 0, VG_CTX_DESTROYING(vg_real.cuDevicePrimaryCtxRelease(dev)));
}

VG_API CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
    ENTER(cuDevicePrimaryCtxReset);
    return drop_context_after(dev, 1, VG_CTX_DESTROYING(vg_real.cuDevicePrimaryCtxReset(dev)));
}
