/* vgpu.h - internal declarations shared by the interposer's C files (not part of the shared ABI). */
#ifndef HAMI_VGPU_H
#define HAMI_VGPU_H
#include <pthread.h>
#include <stdint.h>

#include "cuda_min.h"
#include "hami_region.h"

#define VG_API __attribute__((visibility("default")))

/* Bench only (bench/issue18_gpu.sh stage 9's "wrap" rung, -DHAMI_BENCH_WRAP_ONLY): the launch entries are handed out
 * and timed (HAMI_LAUNCH_STATS=1) whatever the limits, and do nothing around the driver's call, so the driver's launch
 * call is measured through the library with none of the library's work beside it. Not a shippable build. */
#ifdef HAMI_BENCH_WRAP_ONLY
#define WRAP_ONLY 1
#else
#define WRAP_ONLY 0
#endif
#define HAMI_VGPU_VERSION "0.1.0"

enum { VG_ERROR = 0, VG_WARN = 1, VG_MSG = 2, VG_INFO = 3, VG_DEBUG = 4 };
void vg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs once per distinct key per process (refusals that repeat on every call); 1 when it printed. */
int vg_log_once(int level, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Configuration read once from the environment (env.c). */
struct vg_config {
    int disabled;                          /* CUDA_DISABLE_CONTROL=true */
    uint64_t mem_limit[HAMI_MAX_DEVICES];  /* bytes, 0 = none, VG_LIMIT_REFUSE = a bad value: refuse all */
    int sm_limit[HAMI_MAX_DEVICES];        /* 1..100, 100 = none */
    int core_policy;                       /* GPU_CORE_UTILIZATION_POLICY: VG_POLICY_* */
    int priority;                          /* 0 = highest */
    int priority_set;                      /* CUDA_TASK_PRIORITY given or an SM limit set */
    int priority_env;                      /* CUDA_TASK_PRIORITY given */
    uint64_t ctx_reserve;                  /* CUDA_DEVICE_CONTEXT_RESERVE */
    int ctx_reserve_set;
    int64_t priority_idle_ns;              /* HAMI_PRIORITY_IDLE_MS */
    uint64_t ctx_slack;                    /* CUDA_DEVICE_CONTEXT_SLACK, added to a measured context */
    int64_t sm_period_ns;                  /* HAMI_SM_PERIOD_MS: on+off period of the throttle, 0 = fine-grained */
    int64_t sm_resume_cap_ns;              /* HAMI_SM_RESUME_CREDIT_MS: cap on the square wave's resume credit, 0 = none */
    int sm_deep_run;                       /* HAMI_SM_DEEP_RUN: launches a precise deep run's mark closes at most (launch.c) */
    int sm_sample_every;                   /* HAMI_SM_SAMPLE_EVERY: one coarse launch in N is a sample (launch.c) */
    int64_t sm_launch_lead_ns;             /* HAMI_SM_LAUNCH_LEAD_NS: a kernel may start this long before its launch
                                              call returned (launch.c submitted_at) */
    int64_t watch_poll_ns;                 /* HAMI_WATCHER_BUSY_POLL_US: the watcher's back-off ceiling (watcher.c) */
    int64_t watch_alone_ns;                /* HAMI_WATCHER_ALONE_POLL_US: that ceiling while every device is measured
                                              coarsely with no neighbour (watcher.c) */
    int watch_flat_ramp;                   /* HAMI_WATCHER_FLAT_RAMP=1: beside a neighbour or measuring precisely, the
                                              watcher's back-off after a collection starts at the busy ceiling, as
                                              alone (an A/B knob: watcher.c) */
    int watch_coarse_pair;                 /* HAMI_WATCHER_COARSE_PAIR=1: every device measured coarsely, the alone
                                              ceiling beside a neighbour too (an A/B knob: watcher.c) */
    uint64_t sm_sample_cut;                /* 2^32 / N: a draw's upper 32 bits below it make a sample */
    int sm_sample_far;                     /* HAMI_SM_SAMPLE_FAR: alone far below the limit, samples drawn this many
                                              times less often (each weighing as many), bounded by COARSE_SAMPLE_MAX */
    int sm_verify_far;                     /* HAMI_SM_VERIFY_FAR: alone far below the limit, a verification window
                                              this many times shorter in launches and time (launch.c verify_due) */
    unsigned int sm_ref_mhz;               /* HAMI_SM_REF_MHZ: sustained SM clock, 0 = charge plain time */
    int sm_precise;                        /* HAMI_SM_PRECISE=1: measure every launch (no coarse mode) */
    int sm_no_lend;                        /* HAMI_SM_NO_LEND=1: no lending under the default policy */
    int sm_gap_every_launch;               /* HAMI_SM_GAP_EVERY_LAUNCH=1: the host's usual launch interval learnt
                                              from every launch, as before jaxover (an A/B knob: launch.c) */
    int sm_lend_sliced;                    /* HAMI_SM_LEND_SLICED (unset/1 on, 0 off): a time-sliced lender's waits
                                              count in its demand alone and that demand bounds its lending (jaxslice:
                                              lending.c update_solo_demand, throttle.c hami_vgpu_lend_demand_sliced_bp) */
    int launch_stats;                      /* HAMI_LAUNCH_STATS=1: report the launch path's own cost at exit */
    int sm_charge_switches;                /* HAMI_SM_CHARGE_SWITCHES: VG_SW_* (charge the switch into this context) */
    int sm_gate_marks;                     /* HAMI_SM_GATE_MARKS (0 unset, 1, 2 chained too): marked launches gated (launch.c gate_arm) */
    int sm_turns;                          /* HAMI_SM_TURNS (unset/1 on, 0 off): GPU-bound tenants take turns (turns.c) */
    int sm_turns_count_coarse;             /* HAMI_SM_TURNS_COUNT_COARSE (unset/0 off, 1 on): turns' stay test counts its
                                              coarse marks' kernel estimates (turns.c turns_note_window; an A/B knob) */
    int sm_turn_fill_steps;                /* HAMI_SM_TURN_FILL_STEPS (unset/0 off, 1 on): a neighbour may fill the
                                              drain gaps of an owner stepping one launch at a time (turns.c owner_steps;
                                              an A/B knob) */
    int sm_turns_steppers;                 /* HAMI_SM_TURNS_STEPPERS (unset/1 on, 0 off): a tenant stepping one launch at
                                              a time takes part in turns (0: it time-slices; turns.c turn_wanted) */
    int64_t sm_turn_gap_ns;                /* HAMI_SM_TURN_GAP_US: an owner with no activity mark this recent may have
                                              its window filled (turns.c owner_wants; 0 before env.c ran: TURN_GAP_NS) */
    int sm_turn_misses;                    /* HAMI_SM_TURN_MISSES: the stay test's misses in a row that judge a tenant
                                              out (turns.c turns_update; 0 before env.c ran: TURN_MISSES) */
    char region_path[512];
    char board_path[512];
    char census_dir[256];                  /* HAMI_PROC_CENSUS_DIR: the node agent's per-GPU process counts, "" = none */
    int census_required;                   /* HAMI_PROC_CENSUS_REQUIRED=1: no count, no neighbour counted (nvmlq.c) */
};
extern struct vg_config vg_cfg;
/* HAMI_SM_DEEP_RUN's default and bounds (env.c; launch.c deep_defer) */
#define DEEP_RUN_DEFAULT 32
#define DEEP_RUN_MIN 1    /* 1: a mark per launch, as before deep runs */
#define DEEP_RUN_MAX 256
/* HAMI_SM_SAMPLE_EVERY's default and bounds (env.c; launch.c coarse_sample) */
#define COARSE_SAMPLE_DEFAULT 32
/* Alone and far below its limit (issue 18, inferalone): the coarse samples are drawn HAMI_SM_SAMPLE_FAR times less
 * often (default 4, 1 = never fewer), never beyond one in COARSE_SAMPLE_MAX, each weighing that many in the samples'
 * average; "far below": no other container on the GPU's board and the container's charged fraction (its ~100 ms
 * average, lending.c publish_fraction) under SAMPLE_FAR_PCT % of its limit (launch.c sample_rate) */
#define SAMPLE_FAR_MAX 8
#define SAMPLE_FAR_DEFAULT 4
#define SAMPLE_FAR_PCT 60
/* HAMI_SM_VERIFY_FAR's default and bound (issue 18, lightpath; launch.c verify_due): in the same state, a verification
 * window of VERIFY_LAUNCHES / N launches over VERIFY_MIN_NS / N (1 = the full window); at the bound 32 launches, 0.5 ms */
#define VERIFY_FAR_DEFAULT 2
#define VERIFY_FAR_MAX 4
#define COARSE_SAMPLE_MIN 8
#define COARSE_SAMPLE_MAX 256
/* HAMI_SM_LAUNCH_LEAD_NS's default and bound (env.c; launch.c submitted_at): 1 ms is far beyond any launch call's
 * host time, so the bound makes a precise start at the launch call's start (nothing before it is charged) */
#define LAUNCH_LEAD_DEFAULT_NS 0
#define LAUNCH_LEAD_MAX_NS 1000000
/* HAMI_WATCHER_BUSY_POLL_US's default and bounds (env.c; watcher.c) */
#define WATCH_POLL_DEFAULT_US 1000
#define WATCH_POLL_MIN_US 100
#define WATCH_POLL_MAX_US 1000
/* HAMI_WATCHER_ALONE_POLL_US's default and bounds (env.c; watcher.c): never below the busy poll's ceiling */
#define WATCH_ALONE_DEFAULT_US 4000
#define WATCH_ALONE_MIN_US 1000
#define WATCH_ALONE_MAX_US 10000
/* HAMI_SM_TURN_GAP_US's default and bounds (env.c; turns.c owner_wants, issue 18 turnloss): the default is
 * TURN_GAP_NS (launch_int.h). The floor stays above the owner's own mark refreshes while it works (a launch every
 * TURN_ACT_NS, 200 us; the watcher every 100 us while its host waits in a sync), so a working owner is not read as
 * paused; the ceiling stays under TURN_IDLE_NS (3 ms), where an owner counts as idle */
#define TURN_GAP_DEFAULT_US 1500
#define TURN_GAP_MIN_US 300
#define TURN_GAP_MAX_US 2500
/* HAMI_SM_TURN_MISSES's default and bounds (env.c; turns.c turns_update, issue 18 trainloss): the default is TURN_MISSES
 * (launch_int.h). At least 1 (a miss judges out at once, the rule's floor); at most 8: a launch-bound loop that got in
 * is judged at each of its windows' starts, so it stays in at most ~8 periods (0.8 s) before it goes */
#define TURN_MISSES_DEFAULT 2
#define TURN_MISSES_MIN 1
#define TURN_MISSES_MAX 8
enum { VG_POLICY_DEFAULT = 0, VG_POLICY_FORCE = 1, VG_POLICY_DISABLE = 2 };
/* HAMI_SM_CHARGE_SWITCHES: unset = only while the GPU is contended (launch_int.h switch_charged), 1 = always, 0 = never */
enum { VG_SW_CONTENDED = 0, VG_SW_ALWAYS = 1, VG_SW_NEVER = 2 };
/* A memory-limit variable that cannot be read: the intended limit is unknown, so nothing is allocatable
 * (never "no limit"). One byte, so every real allocation is over it. */
#define VG_LIMIT_REFUSE 1ULL
/* Largest memory limit accepted from the environment (64 PiB): anything above is a typo or an attack. */
#define VG_LIMIT_MAX (1ULL << 56)
void vg_config_load(void);
int vg_launch_control(void);   /* 1 when launches must go through the throttle/priority path */
int64_t vg_now_ns(void);        /* CLOCK_MONOTONIC */

/* Real driver entry points, resolved from libcuda.so.1 (dl.c). */
struct vg_real {
    CUresult (*cuGetProcAddress)(const char *, void **, int, cuuint64_t);
    CUresult (*cuGetProcAddress_v2)(const char *, void **, int, cuuint64_t, int *);
    CUresult (*cuCtxGetDevice)(CUdevice *);
    CUresult (*cuCtxGetCurrent)(CUcontext *);
    CUresult (*cuCtxSetCurrent)(CUcontext);
    CUresult (*cuDeviceGetUuid)(CUuuid *, CUdevice);
    CUresult (*cuDeviceGetPCIBusId)(char *, int, CUdevice);
    CUresult (*cuDeviceGetMemPool)(CUmemoryPool *, CUdevice);
    CUresult (*cuMemPoolGetAttribute)(CUmemoryPool, int, void *);
    CUresult (*cuMemPoolTrimTo)(CUmemoryPool, size_t);
    CUresult (*cuStreamSynchronize)(CUstream);
    CUresult (*cuStreamIsCapturing)(CUstream, int *);
    CUresult (*cuThreadExchangeStreamCaptureMode)(int *);
    CUresult (*cuEventCreate)(CUevent *, unsigned int);
    CUresult (*cuEventRecord)(CUevent, CUstream);
    CUresult (*cuEventQuery)(CUevent);
    CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
    CUresult (*cuArrayGetMemoryRequirements)(CUDA_ARRAY_MEMORY_REQUIREMENTS *, CUarray, CUdevice);
    CUresult (*cuMipmappedArrayGetMemoryRequirements)(CUDA_ARRAY_MEMORY_REQUIREMENTS *, CUmipmappedArray,
                                                      CUdevice);
    /* the gate of marked launches (launch.c gate_arm, HAMI_SM_GATE_MARKS): a page of the library's own memory registered
     * and mapped to the device, and a stream wait on it (the V2 stream memory operations, cuStreamWaitValue32_v2) */
    CUresult (*cuMemHostRegister)(void *, size_t, unsigned int);
    CUresult (*cuMemHostGetDevicePointer)(CUdeviceptr *, void *, unsigned int);
    CUresult (*cuStreamWaitValue32)(CUstream, CUdeviceptr, uint32_t, unsigned int);
    /* hooked ones */
    CUresult (*cuMemAlloc_v2)(CUdeviceptr *, size_t);
    CUresult (*cuMemFree_v2)(CUdeviceptr);
    CUresult (*cuMemAllocPitch_v2)(CUdeviceptr *, size_t *, size_t, size_t, unsigned int);
    CUresult (*cuMemAllocManaged)(CUdeviceptr *, size_t, unsigned int);
    CUresult (*cuMemAllocAsync)(CUdeviceptr *, size_t, CUstream);
    CUresult (*cuMemAllocAsync_ptsz)(CUdeviceptr *, size_t, CUstream);
    CUresult (*cuMemAllocFromPoolAsync)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);
    CUresult (*cuMemAllocFromPoolAsync_ptsz)(CUdeviceptr *, size_t, CUmemoryPool, CUstream);
    CUresult (*cuMemFreeAsync)(CUdeviceptr, CUstream);
    CUresult (*cuMemFreeAsync_ptsz)(CUdeviceptr, CUstream);
    CUresult (*cuMemCreate)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
                            unsigned long long);
    CUresult (*cuMemRelease)(CUmemGenericAllocationHandle);
    CUresult (*cuArrayCreate_v2)(CUarray *, const CUDA_ARRAY_DESCRIPTOR *);
    CUresult (*cuArray3DCreate_v2)(CUarray *, const CUDA_ARRAY3D_DESCRIPTOR *);
    CUresult (*cuArrayDestroy)(CUarray);
    CUresult (*cuMipmappedArrayCreate)(CUmipmappedArray *, const CUDA_ARRAY3D_DESCRIPTOR *, unsigned int);
    CUresult (*cuMipmappedArrayDestroy)(CUmipmappedArray);
    CUresult (*cuMemGetInfo_v2)(size_t *, size_t *);
    CUresult (*cuDeviceTotalMem_v2)(size_t *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRelease_v2)(CUdevice);
    CUresult (*cuDevicePrimaryCtxReset_v2)(CUdevice);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);  /* the pre-11.0 variants: the CUDA 13 runtime asks */
    CUresult (*cuDevicePrimaryCtxReset)(CUdevice);    /* cuGetProcAddress for them with version 7000 */
    CUresult (*cuCtxDestroy_v2)(CUcontext);           /* the context destructions (dl.c vg_ctx_device) */
    CUresult (*cuCtxDestroy)(CUcontext);
    CUresult (*cuGreenCtxDestroy)(void *);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               CUstream, void **, void **);
    CUresult (*cuLaunchKernel_ptsz)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                    unsigned, CUstream, void **, void **);
    CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *, CUfunction, void **, void **);
    CUresult (*cuLaunchKernelEx_ptsz)(const CUlaunchConfig *, CUfunction, void **, void **);
    CUresult (*cuLaunchCooperativeKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                                          unsigned, unsigned, CUstream, void **);
    CUresult (*cuLaunchCooperativeKernel_ptsz)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                                               unsigned, unsigned, CUstream, void **);
    CUresult (*cuGraphLaunch)(CUgraphExec, CUstream);
    CUresult (*cuGraphLaunch_ptsz)(CUgraphExec, CUstream);
    /* synchronize calls: observed so lending knows the program waits for its GPU (launch.c note_pacing) */
    CUresult (*cuStreamSynchronize_ptsz)(CUstream);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuEventSynchronize)(CUevent);
    /* stream destructions: the stream's open run is closed first and its queue forgets the handle (launch.c) */
    CUresult (*cuStreamDestroy)(CUstream);
    CUresult (*cuStreamDestroy_v2)(CUstream);
    /* stream capture begins: observed so the library knows a capture may be in progress (launch.c) */
    CUresult (*cuStreamBeginCapture)(CUstream);
    CUresult (*cuStreamBeginCapture_ptsz)(CUstream);
    CUresult (*cuStreamBeginCapture_v2)(CUstream, int);
    CUresult (*cuStreamBeginCapture_v2_ptsz)(CUstream, int);
    CUresult (*cuStreamBeginCaptureToGraph)(CUstream, void *, const void *, const void *, size_t, int);
    CUresult (*cuStreamBeginCaptureToGraph_ptsz)(CUstream, void *, const void *, const void *, size_t, int);
};
extern struct vg_real vg_real;
void vg_init_cuda(void);                 /* dlopen libcuda.so.1 once and resolve vg_real */
void *vg_real_dlsym(void *handle, const char *name);
int vg_current_device(void);             /* -1 when no context is current */
int vg_ctx_device(CUcontext *ctx);       /* the same, and the current context (one driver call when kept: dl.c) */
void vg_ctx_dying(int begin);            /* around every hooked call that may destroy a context (dl.c) */
void vg_ctx_forked(void);                /* in a forked child: nothing kept from the parent is used (dl.c) */
uint64_t vg_ctx_epoch(int *calm);        /* context destructions so far; *calm: none in progress (dl.c) */
/* A driver call that may destroy a context, bracketed by vg_ctx_dying (a GNU statement expression: its result) */
#define VG_CTX_DESTROYING(call) __extension__({ vg_ctx_dying(1); CUresult r_ = (call); vg_ctx_dying(0); r_; })

/* Hook table (hooks.c). */
struct vg_hook {
    const char *name;
    void *wrapper;
    void **real;     /* slot in vg_real (cu*) or nvml table */
    int launch;      /* hand out the real pointer when launch control is off */
    int nvml;
};
extern const struct vg_hook vg_hooks[];
extern const int vg_hook_count;
const struct vg_hook *vg_hook_find(const char *name);
void *vg_hook_resolve(const struct vg_hook *h, void *real_ptr);  /* what dlsym/cuGetProcAddress hand out */
void *vg_hook_by_real(void *real_ptr);

/* Shared region (region.c). */
extern struct hami_region *vg_region;
int vg_region_ready(void);               /* attach once; 0 when accounting is off */
extern __thread int vg_lock_depth;  /* >0 while this thread is inside our accounting (a driver calling
                                       back into an exported entry point is passed straight through) */
void vg_lock(void);
void vg_unlock(void);
uint64_t vg_usage_locked(int dev);
int vg_charge_locked(int dev, uint64_t bytes, const char *what);   /* 1 = charged, 0 = over limit */
void vg_force_charge_locked(int dev, uint64_t bytes);
void vg_uncharge_locked(int dev, uint64_t bytes);
/* Part of this process's charge on dev that is a reservation (enforced, not reported as used). */
void vg_set_reserved_locked(int dev, uint64_t bytes);
int vg_reclaim_dead_locked(void);
/* Work left in flight by a process that dies without its exit handlers (region.c, hami_region.h owed_ns): this
 * process publishes the start of its oldest launch no charge covers yet on dev (0 = none) and when its queued work
 * is expected to end (first: the launch path's cheap call); the watcher has dead processes' slots charged. */
void vg_owed_publish(int dev, int64_t from, int64_t until, int first);
int vg_owed_published(int dev);
extern int64_t vg_owed_mine[HAMI_MAX_DEVICES], vg_until_mine[HAMI_MAX_DEVICES];  /* what it last published */
#define VG_OWED_STEP_NS 500000LL
/* Whether vg_owed_publish(dev, from, until, 1) would write nothing (a start is published and until moved less than
 * VG_OWED_STEP_NS): inline, so most launches test it without a call. dev must be in range. */
static inline int vg_owed_unmoved(int dev, int64_t until)
{
    return vg_owed_mine[dev] && until - vg_until_mine[dev] < VG_OWED_STEP_NS;
}
void vg_owed_watch(int64_t now);
uint64_t vg_limit(int dev);
int vg_region_procs_on(int dev);        /* processes of the container holding memory on dev (kernel locks), -1 */
int vg_region_siblings_on(int dev, int take); /* other processes measuring on dev (presence locks), -1 */
int vg_sm_limit(int dev);               /* the SM share in force, range-checked */
void vg_add_busy(int dev, uint64_t ns);

/* Memory (mem.c) */
void vg_reconcile_pools_locked(void);

/* NVML queries of our own (nvmlq.c). */
uint64_t vg_nvml_used(CUdevice dev);
unsigned int vg_nvml_sm_clock(CUdevice dev);
/* The bound on the others counted in n(t) (processes with a compute context on the GPU less this container's
 * own), refreshed by the watcher at most every 100 ms; -1 = no bound (NVML absent or failing, a doubtful or
 * stale count). The read is two atomic loads: the launch path never calls NVML. */
int vg_nvml_procs_refresh(int dev, int quiet);  /* 1 when it counted; quiet: no neighbour on the GPU (nvmlq.c PROCS_QUIET_GAP_NS) */
int vg_nvml_others_bound(int dev, int64_t now);
/* The node agent's process census (nvmlq.c), exported for unit tests: why a census file cannot be trusted (NULL =
 * it can), and its strict parser (1 = a fresh, well-formed sample for uuid; else 0 and *why). */
VG_API const char *hami_vgpu_census_untrusted(unsigned int dir_uid, unsigned int dir_mode, unsigned int file_uid,
                                              unsigned int file_mode, unsigned long file_links, int read_only,
                                              unsigned int euid);
VG_API int hami_vgpu_census_parse(const char *text, long len, const char *uuid, int64_t now_ns, int *count,
                                  const char **why);

/* Node board (board.c). */
struct hami_board_gpu *vg_board_gpu(const uint8_t uuid[16]);
/* Board records (layout in hami_region.h, HAMI_BREC_*): one user slot's, combined over its lanes in the direction
 * that lends least (lowest limit for a spare, highest for the sum of limits, highest fractions and demand, held
 * if any is); bad = a lock there that no holder writes (the slot lends nothing). Fractions in 1/100 %, multiples
 * of 10 (rounded down by the writer). */
struct vg_brec {
    int present, bad;
    int limit_lo, limit_hi, held;
    int turns;       /* a record of the slot carries HAMI_BREC_TURN (HAMI_SM_TURNS, turns.c) */
    int32_t frac_bp, queued_bp, solo_bp;
    uint32_t lanes;  /* bit p: a record at the start of lane p (whose holder's context claim is read there) */
};
/* Sets this process's record in user slot `user` of entry g to a lock of len bytes (0 = none): *lane (-1 = none
 * yet: one is claimed; -2 = no lane was free, the slot's marker is held instead, which makes it lend nothing) and
 * *held (the length it holds) are the caller's; 0 or -1 (blocked, or no lane: logged once). A lane is taken with
 * its context claim of one context (*claim = 100, HAMI_BCTX_*; 1 where another owner holds that place: the claim
 * reads as one context until the record goes), which goes when the record does (*claim = 0). */
int vg_board_rec_put(const struct hami_board_gpu *g, int user, int *lane, uint64_t *held, uint64_t *claim,
                     uint64_t len);
/* Every other process's records on entry g, by user slot; the number of locks found, -1 = unreadable or forged
 * beyond reading (logged once: the caller fails closed). */
int vg_board_rec_read(const struct hami_board_gpu *g, struct vg_brec rec[HAMI_BOARD_USERS]);
/* Context claims (layout in hami_region.h, HAMI_BCTX_*): sets the claim this process holds beside its record in
 * lane `lane` of user slot `user` (*held, from vg_board_rec_put) to len, 100..100 * HAMI_SIBLINGS; 0 or -1. */
int vg_board_ctx_put(const struct hami_board_gpu *g, int user, int lane, uint64_t *held, uint64_t len);
/* The busy contexts a neighbour counts for user slot `user` whose record holders are r (1/100, 100..100 *
 * HAMI_SIBLINGS): the lowest claim of its record holders, at most 100 per record; 100 for anything else. */
int32_t vg_board_ctx_read(const struct hami_board_gpu *g, int user, const struct vg_brec *r);
/* A record's lock length (0 = limit out of range), and back (0 = not a record a holder writes); unit-tested. */
VG_API uint64_t hami_vgpu_brec_pack(int limit, int held, int32_t frac_bp, int32_t queued_bp, int32_t solo_bp);
VG_API int hami_vgpu_brec_unpack(uint64_t len, int *limit, int *held, int32_t *frac_bp, int32_t *queued_bp,
                                 int32_t *solo_bp);

/* HAMI_SM_TURNS_LOG (turns.c, a bench diagnostic): opens <path>.<pid> for one line per stay-test judgement; path
 * NULL or empty: no log. Called once, from vg_config_load. */
void vg_turns_log_open(const char *path);
/* HAMI_SM_TURNS (turns.c): the window holding phase_ns and its end, for limits in board order; unit-tested. */
VG_API int hami_vgpu_turn_owner(const int *limit, int n, int64_t period_ns, int64_t phase_ns, int64_t *end_ns);

/* Throttle arithmetic (throttle.c), exported for unit tests. */
VG_API int64_t hami_vgpu_bucket_refill(int64_t *tokens, int64_t *refill_ns, int64_t now_ns, int share,
                                       int64_t cap_ns);
VG_API int64_t hami_vgpu_bucket_refill_over(int64_t *tokens, int64_t *refill_ns, int64_t now_ns, int share,
                                            int64_t cap_ns, int64_t *over_ns);
VG_API int64_t hami_vgpu_throttle_wait_ns(int64_t tokens_ns, int64_t inflight_ns, int share);
VG_API int hami_vgpu_parse_size(const char *text, uint64_t *out);
VG_API int64_t hami_vgpu_resume_credit_ns(int64_t period_ns, int share);
#define HAMI_PS_MAX (HAMI_BOARD_USERS * (HAMI_BOARD_RECENT + 1))  /* intervals a charge may intersect */
VG_API int64_t hami_vgpu_ps_charge_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until, int count);
VG_API int64_t hami_vgpu_ps_charge_bounded_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until,
                                              int count, int k);
VG_API int hami_vgpu_interval_union(int64_t *since, int64_t *until, int count);
#define HAMI_SIB_MAX (HAMI_SIBLINGS * (HAMI_SIB_RECENT + 1))  /* sibling intervals a charge may intersect */
VG_API int64_t hami_vgpu_ps_charge_sib_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until, int count,
                                          int k, const int64_t *ssince, const int64_t *suntil, int scount, int sk);
VG_API int64_t hami_vgpu_ps_charge_w_ns(int64_t a, int64_t b, const int64_t *since, const int64_t *until,
                                        const int32_t *weight, int count, int k, const int64_t *ssince,
                                        const int64_t *suntil, int scount, int sk);
#define HAMI_LEND_QUEUED_MAX_BP 9700  /* a neighbour with work on the GPU this much of the time lends nothing */
#define HAMI_LEND_MARGIN_BP 300       /* a neighbour keeps 3 points of its unused share (see hami_vgpu_lent_share) */
#define HAMI_LEND_WAITING_PCT 50      /* queued this much of its time off the GPU: waiting (lend_demand_solo) */
#define HAMI_LEND_SHORT_WEIGHT 2      /* a waiting neighbour adds this many times its shortfall (lend_demand_solo) */
VG_API int hami_vgpu_lent_share(int own, const int32_t *limit, const int32_t *frac_bp, const int32_t *queued_bp,
                                const int64_t *frac_age_ns, const int64_t *held_age_ns, int count);
VG_API int64_t hami_vgpu_lend_demand_bp(int64_t used, int64_t queued);
VG_API int64_t hami_vgpu_lend_demand_solo_bp(int64_t used, int64_t queued, int64_t solo);
VG_API int64_t hami_vgpu_lend_demand_sliced_bp(int64_t used, int64_t queued, int64_t solo);
VG_API int hami_vgpu_lent_share_sliced(int own, const int32_t *limit, const int32_t *frac_bp, const int32_t *queued_bp,
                                       const int32_t *solo_bp, const int64_t *frac_age_ns, const int64_t *held_age_ns,
                                       int count, int k, int sliced);
VG_API int hami_vgpu_lent_share_bounded(int own, const int32_t *limit, const int32_t *frac_bp,
                                        const int32_t *queued_bp, const int32_t *solo_bp,
                                        const int64_t *frac_age_ns, const int64_t *held_age_ns, int count, int k);
#define HAMI_INFLIGHT_NS 30000000LL    /* launches wait while the oldest outstanding one is older than this */
/* Coarse measurement (launch.c) only while the credit and the reserve, less the doubt, exceed twice the
 * in-flight bound. Credit and reserve are at most this plus 100 ms together, so that a tenant well under its limit
 * can reach it while shared (100 ms period) and a coarse phase is not cut short by its own doubt. */
#define HAMI_COARSE_CREDIT_NS (2 * HAMI_INFLIGHT_NS)
/* The spendable credit (the bucket's depth outside the square wave): what a tenant can run beyond its limit
 * after an idle spell. With the in-flight bound, 80 ms: 2 points of a 4 s window. Until issue 18's inference
 * fix the whole 160 ms (and twice the square wave's resume credit, 336 ms at 70 % with the 800 ms period) was
 * spendable: the H200's inference loop, alone at 70 % with a demand of ~80 %, was charged 75.7-77.7 % of a 4 s
 * window. Credit earned beyond it goes to a reserve that only the decisions count (launch.c). */
#define HAMI_BURST_NS 50000000LL
#define HAMI_COARSE_CAP_NS (HAMI_COARSE_CREDIT_NS + 100000000LL)

#endif
