/* nvmlq.c - the interposer's own NVML queries (never through our hooks): device memory in use, to
 * measure what creating a context took, the SM clock, to express busy time in sustained-clock units, and the
 * number of processes with a compute context on the GPU, which bounds how many neighbours a charge may count
 * (the node board is world-writable: nothing on it proves a neighbour busy; see vg_nvml_others_bound). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "vgpu.h"

static void *nvml;
static int (*by_bus)(const char *, nvmlDevice_t *);
static int (*meminfo)(nvmlDevice_t, nvmlMemory_t *);
static int (*clockinfo)(nvmlDevice_t, int, unsigned int *);
static int (*uuid_of)(nvmlDevice_t, char *, unsigned int);
typedef int (*procs_fn)(nvmlDevice_t, unsigned int *, void *);
static procs_fn compute_procs, mps_procs;  /* the newest version the library has */
static size_t proc_size;                   /* its nvmlProcessInfo entry: 24 bytes (_v2, _v3) or 16 (v1) */
static nvmlDevice_t handles[HAMI_MAX_DEVICES];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* A child forked while another thread held mu (the watcher asks every 100 ms) gets it unlocked. */
static void forked_child(void)
{
    pthread_mutex_init(&mu, NULL);
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forked_child);
}

static nvmlDevice_t handle(CUdevice dev)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return NULL;
    pthread_once(&once, watch_forks);
    pthread_mutex_lock(&mu);
    if (!nvml) {
        nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        int (*init)(void) = nvml ? (int (*)(void))vg_real_dlsym(nvml, "nvmlInit_v2") : NULL;
        if (init && init() == 0) {
            by_bus = (int (*)(const char *, nvmlDevice_t *))vg_real_dlsym(nvml, "nvmlDeviceGetHandleByPciBusId_v2");
            meminfo = (int (*)(nvmlDevice_t, nvmlMemory_t *))vg_real_dlsym(nvml, "nvmlDeviceGetMemoryInfo");
            clockinfo = (int (*)(nvmlDevice_t, int, unsigned int *))vg_real_dlsym(nvml, "nvmlDeviceGetClockInfo");
            uuid_of = (int (*)(nvmlDevice_t, char *, unsigned int))vg_real_dlsym(nvml, "nvmlDeviceGetUUID");
            static const char *const cp[] = {"nvmlDeviceGetComputeRunningProcesses_v3",
                                             "nvmlDeviceGetComputeRunningProcesses_v2",
                                             "nvmlDeviceGetComputeRunningProcesses"};
            static const char *const mp[] = {"nvmlDeviceGetMPSComputeRunningProcesses_v3",
                                             "nvmlDeviceGetMPSComputeRunningProcesses_v2",
                                             "nvmlDeviceGetMPSComputeRunningProcesses"};
            for (int i = 0; i < 3 && !compute_procs; i++) {
                compute_procs = (procs_fn)vg_real_dlsym(nvml, cp[i]);
                proc_size = i < 2 ? 24 : 16;
            }
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
 * processes with a compute context on the GPU is something no tenant writes. The others busy at any instant are
 * at most K = the processes NVML lists less this container's own on the device (the holders of its memory
 * lanes, kernel locks: region.c vg_region_procs_on). Only the count is used: PIDs cannot be matched across PID
 * namespaces.
 *
 * Which processes NVML lists depends on the caller's PID namespace. The driver (RM, gpuGetProcWithObject)
 * translates each client's PID into the caller's namespace and leaves out the ones not visible there (the
 * open kernel modules' os_find_ns_pid: pid_vnr, 0 = not found): from the host's (initial) namespace every
 * process on the GPU is listed; from a container's own namespace only that container's, and then the count
 * bounds nothing. Older drivers listed every process with host PIDs wherever asked. So the count is used when
 * this process is in the initial PID namespace (hostPID pods, processes on the host), or when its own PID is
 * not in the list (host PIDs: an untranslated, complete list); a list holding our own PID seen from a
 * container's namespace bounds nothing by itself; the node agent's process census (below) then gives the count.
 *
 * Queried by the watcher thread at most every 100 ms, never on the launch path; the launch path reads the
 * cache (two atomic loads). A doubtful count gives no bound, which is the behaviour before the bound: NVML
 * absent or failing, a namespace-filtered list, a count below this container's own, or no sample for 1 s.
 * K is the larger of the last two samples, so a neighbour that left within the last 100 ms still counts for
 * the spans it was busy in. */
#ifndef PROCS_GAP_NS  /* a bench may build other gaps (issue18_gpu.sh stage 23's nvml400 arm: what the query costs) */
#define PROCS_GAP_NS 100000000LL     /* at most one NVML process query per device per 100 ms */
#endif
/* ... and per 500 ms while no neighbour is on the GPU (watcher.c; nor a task priority) and neither of the last two
 * counts found anybody else (vg_nvml_procs_refresh): the query took ~0.4 ms of the
 * watcher's CPU each time on the H100 (record 16 stage 23: 150 -> 85 ms of watcher CPU at one per 400 ms), on the
 * launching thread's core when a launch-bound program is pinned to one. Nothing is bounded while alone; the sample
 * stays fresh (< PROCS_FRESH_NS), and the first wake that finds a neighbour queries again once 100 ms have passed */
#ifndef PROCS_QUIET_GAP_NS
#define PROCS_QUIET_GAP_NS 500000000LL
#endif
#define PROCS_FRESH_NS 1000000000LL  /* a sample older than 1 s bounds nothing */
#define PROCS_MAX 1024               /* processes read per query; more bound nothing */
#define K_DOUBT 0xFFFF               /* a sample that bounds nothing */
#define PROC_PID_INIT_INO 0xEFFFFFFCu /* the initial PID namespace's inode number (fixed by the kernel) */

/* The last two samples per device, [0] the newer: (time >> 10) << 16 | K, 0 = none. One word each, so a reader
 * never sees a time of one sample with the K of another. */
static uint64_t samples[HAMI_MAX_DEVICES][2];
static int64_t tried_at[HAMI_MAX_DEVICES];        /* the watcher thread's own (one per process) ... */
static unsigned char proc_buf[PROCS_MAX * 24];   /* ... and so is this */

static int in_initial_pid_ns(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 && st.st_ino == PROC_PID_INIT_INO;
}

/* Processes with a compute context on the device (MPS clients added where listed apart), or -1 and why.
 * *mine: this process's own PID (as this namespace sees it) is in the list. */
static int nvml_procs(CUdevice dev, int *mine, const char **why)
{
    nvmlDevice_t h = handle(dev);
    if (!h || !compute_procs) {
        *why = nvml == (void *)-1 || !nvml ? "libnvidia-ml.so.1 not loaded"
               : !compute_procs           ? "no nvmlDeviceGetComputeRunningProcesses"
                                          : "no NVML handle for the device";
        return -1;
    }
    unsigned int n = PROCS_MAX;
    int r = compute_procs(h, &n, proc_buf);
    if (r != 0 || n > PROCS_MAX) {
        *why = r == 7 /* NVML_ERROR_INSUFFICIENT_SIZE */ ? "more than 1024 processes" : "the process query failed";
        return -1;
    }
    unsigned int me = (unsigned int)getpid();
    *mine = 0;
    for (unsigned int i = 0; i < n; i++) {
        unsigned int pid;  /* the first field of every nvmlProcessInfo version */
        memcpy(&pid, proc_buf + i * proc_size, sizeof(pid));
        *mine |= pid == me;
    }
    unsigned int m = 0;  /* asked with an empty array: the count, NVML_ERROR_INSUFFICIENT_SIZE when > 0 */
    if (mps_procs && mps_procs(h, &m, NULL) != 7)
        m = 0;
    if (m > PROCS_MAX) {
        *why = "an absurd MPS process count";
        return -1;
    }
    return (int)(n + m);
}

/* ---- the node agent's process census ----
 * From a pod's own PID namespace NVML lists that pod's processes only. The node agent, in the host's PID namespace,
 * counts every GPU's processes every 100 ms (hami_plugins_nvidia/proc_census.py: compute processes plus MPS
 * clients, as nvml_procs counts them) and writes one file per GPU, named by its UUID, into a root-owned folder that
 * the device plugin mounts read-only into every container (HAMI_PROC_CENSUS_DIR). One line:
 *     hami-proc-census 1 <uuid> <count> <CLOCK_MONOTONIC ns of the sample>\n
 * A tenant must not be able to write it (a forged count is a forged K), so it is trusted only if the folder and the
 * file are owned by root, writable by nobody else, the file a regular one with one name (opened O_NOFOLLOW), and
 * either on a read-only mount or this process not root (a root tenant could write a root-owned file on a writable
 * mount); parsed strictly and no older than 1 s. Anything else: no bound, one line naming the reason. */
#define CENSUS_MAX_BYTES 256         /* a census file is one short line */
#define CENSUS_COUNT_MAX 4096        /* the compute processes and MPS clients of one GPU, each at most PROCS_MAX */
#define CENSUS_MAGIC "hami-proc-census 1 "
#define UUID_MAX 96                  /* NVML_DEVICE_UUID_V2_BUFFER_SIZE, with the NUL */

const char *hami_vgpu_census_untrusted(unsigned int dir_uid, unsigned int dir_mode, unsigned int file_uid,
                                       unsigned int file_mode, unsigned long file_links, int read_only,
                                       unsigned int euid)
{
    if (!S_ISDIR(dir_mode))
        return "the census folder is not a folder";
    if (dir_uid != 0)
        return "the census folder is not owned by root";
    if (dir_mode & (S_IWGRP | S_IWOTH))
        return "the census folder is writable by group or others";
    if (!S_ISREG(file_mode))
        return "the census file is not a regular file";
    if (file_uid != 0)
        return "the census file is not owned by root";
    if (file_mode & (S_IWGRP | S_IWOTH))
        return "the census file is writable by group or others";
    if (file_links != 1)
        return "the census file has more than one name";
    if (!read_only && euid == 0)
        return "the census is on a writable mount and this process is root (it could write it)";
    return NULL;
}

/* A decimal integer of 1-18 digits (no overflow possible), no sign, no leading zero, followed by stop; 1 when read. */
static int census_int(const char **p, const char *end, char stop, int64_t *out)
{
    const char *q = *p;
    int64_t v = 0;
    int digits = 0;
    while (q < end && *q >= '0' && *q <= '9') {
        if (++digits > 18 || (digits == 2 && v == 0))
            return 0;
        v = v * 10 + (*q++ - '0');
    }
    if (!digits || q >= end || *q != stop)
        return 0;
    *p = q + 1;
    *out = v;
    return 1;
}

int hami_vgpu_census_parse(const char *text, long len, const char *uuid, int64_t now_ns, int *count,
                           const char **why)
{
    size_t ulen = uuid ? strlen(uuid) : 0;
    size_t mlen = sizeof(CENSUS_MAGIC) - 1;
    if (!text || len <= 0 || len > CENSUS_MAX_BYTES) {
        *why = "the census file is empty or larger than 256 bytes";
        return 0;
    }
    const char *p = text, *end = text + len;
    if ((size_t)len < mlen || memcmp(p, CENSUS_MAGIC, mlen)) {
        *why = "the census file is not a version 1 census";
        return 0;
    }
    p += mlen;
    if (!ulen || (size_t)(end - p) <= ulen || memcmp(p, uuid, ulen) || p[ulen] != ' ') {
        *why = "the census file names another GPU";
        return 0;
    }
    p += ulen + 1;
    int64_t n, at;
    if (!census_int(&p, end, ' ', &n) || !census_int(&p, end, '\n', &at) || p != end) {
        *why = "the census file is malformed (expected \"hami-proc-census 1 <uuid> <count> <ns>\" and a newline)";
        return 0;
    }
    if (n > CENSUS_COUNT_MAX) {
        *why = "the census count is out of range (0-4096)";
        return 0;
    }
    if (at > now_ns) {
        *why = "the census sample is ahead of this clock";
        return 0;
    }
    if (now_ns - at > PROCS_FRESH_NS) {
        *why = "the census sample is older than 1 s (is the node agent running?)";
        return 0;
    }
    *count = (int)n;
    return 1;
}

/* The device's UUID from NVML (the file's name), cached; NULL when NVML has none or it is no safe file name. */
static const char *census_uuid(int dev, const char **why)
{
    static char uuids[HAMI_MAX_DEVICES][UUID_MAX];  /* the watcher thread's own */
    if (uuids[dev][0])
        return uuids[dev];
    nvmlDevice_t h = handle(dev);
    char buf[UUID_MAX] = {0};
    if (!h || !uuid_of || uuid_of(h, buf, sizeof(buf)) != 0 || !buf[0] || memchr(buf, 0, sizeof(buf)) == NULL) {
        *why = "NVML gives no UUID for the device";
        return NULL;
    }
    for (const char *c = buf; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 (c > buf && (*c == '-' || *c == '_' || *c == '.'));
        if (!ok) {
            *why = "the device's UUID is not a safe file name";
            return NULL;
        }
    }
    memcpy(uuids[dev], buf, sizeof(buf));
    return uuids[dev];
}

/* Every process on the GPU by the node agent's census, or -1 and why (watcher thread only). */
static int census_count(int dev, const char **why)
{
    if (!vg_cfg.census_dir[0]) {
        *why = "HAMI_PROC_CENSUS_DIR is not set";
        return -1;
    }
    const char *uuid = census_uuid(dev, why);
    if (!uuid)
        return -1;
    int dfd = open(vg_cfg.census_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        *why = "the census folder cannot be opened (missing, or a symlink)";
        return -1;
    }
    int fd = openat(dfd, uuid, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    int n = -1;
    struct stat ds, fs;
    struct statvfs dv, fv;
    if (fd < 0) {
        *why = "the census has no file for the device (missing, or a symlink)";
    } else if (fstat(dfd, &ds) || fstat(fd, &fs) || fstatvfs(dfd, &dv) || fstatvfs(fd, &fv)) {
        *why = "the census file cannot be examined";
    } else if ((*why = hami_vgpu_census_untrusted(ds.st_uid, ds.st_mode, fs.st_uid, fs.st_mode,
                                                  (unsigned long)fs.st_nlink,
                                                  (dv.f_flag & ST_RDONLY) && (fv.f_flag & ST_RDONLY),
                                                  (unsigned int)geteuid())) == NULL) {
        char text[CENSUS_MAX_BYTES + 1];
        long got = 0;
        for (;;) {
            ssize_t r = read(fd, text + got, sizeof(text) - (size_t)got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += r;
            if (got == (long)sizeof(text))
                break;
        }
        int c;
        if (hami_vgpu_census_parse(text, got, uuid, vg_now_ns(), &c, why))
            n = c;
    }
    if (fd >= 0)
        close(fd);
    close(dfd);
    return n;
}

int vg_nvml_procs_refresh(int dev, int quiet)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 0;
    int64_t now = vg_now_ns();
    /* quiet only while neither sample counts anybody else (none, K = 0, or a doubtful one): the board may show no
     * neighbour while NVML lists one (idle, or without the interposer), and K = 1 must fall within ~100 ms of its
     * exit, not ~1 s: while K = 1 a forged busy entry counts (review24: a 30 % tenant took 53.8 % at the 500 ms pace,
     * ~46 % at 100 ms) */
    for (int i = 0; i < 2 && quiet; i++) {
        uint64_t w = __atomic_load_n(&samples[dev][i], __ATOMIC_ACQUIRE);
        int ki = (int)(w & 0xFFFF);
        if (w && ki != 0 && ki != K_DOUBT)
            quiet = 0;
    }
    if (tried_at[dev] && now - tried_at[dev] < (quiet ? PROCS_QUIET_GAP_NS : PROCS_GAP_NS))
        return 0;
    tried_at[dev] = now;
    const char *why = "";
    int mine = 0;
    int n = nvml_procs(dev, &mine, &why);
    int filtered = n >= 0 && mine && !in_initial_pid_ns();
    if (filtered)  /* NVML lists this PID namespace only: the node agent's census counts every process */
        n = census_count(dev, &why);
    int own = n >= 0 ? vg_region_procs_on(dev) : -1;
    int k = K_DOUBT;
    /* without a count the bound is off (fails open), unless the deployment says a count is always there
     * (HAMI_PROC_CENSUS_REQUIRED=1, set with the census mount): then nobody else is counted, K = 0, and the charges
     * fall on the over-charge side. Otherwise a tenant that may make a mount namespace hid the read-only census
     * under a tmpfs of its own, and a forged busy entry counted again (fake: 58.6 % at a 30 % limit; audit4) */
    const char *then = vg_cfg.census_required ? "no neighbour is counted (HAMI_PROC_CENSUS_REQUIRED=1: charged as "
                                                "if alone until a count is had)"
                                              : "busy neighbours on the node board are counted unbounded";
    if (n < 0 && filtered) {
        char key[96];
        snprintf(key, sizeof(key), "census:%.80s", why);
        vg_log_once(VG_WARN, key, "device %d: NVML lists only the processes of this container's PID namespace (the "
                                  "driver leaves the others out) and the node's process census is not used: %s (%s): %s",
                    dev, why, vg_cfg.census_dir[0] ? vg_cfg.census_dir : "HAMI_PROC_CENSUS_DIR", then);
    } else if (n < 0)
        vg_log_once(VG_WARN, "nvml-procs", "device %d: no process count from NVML (%s): %s", dev, why, then);
    else if (own < 0)
        vg_log_once(VG_WARN, "nvml-own", "device %d: this container's processes on the GPU cannot be counted: %s",
                    dev, then);
    else if (n < own)
        vg_log_once(VG_WARN, "nvml-few", "device %d: %s counts %d processes on the GPU, fewer than this "
                                         "container's %d: the count is doubtful: %s", dev,
                    filtered ? "the node's process census" : "NVML", n, own, then);
    else
        k = n - own < K_DOUBT ? n - own : K_DOUBT - 1;
    if (k == K_DOUBT && vg_cfg.census_required)
        k = 0;
    uint64_t w = ((uint64_t)(now >> 10) << 16) | (uint64_t)k;
    __atomic_store_n(&samples[dev][1], __atomic_load_n(&samples[dev][0], __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
    __atomic_store_n(&samples[dev][0], w, __ATOMIC_RELEASE);
    return 1;
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
