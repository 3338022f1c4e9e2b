/* region.c - the container's shared accounting region: create or validate the file, per-process slots,
 * charging under one lock, and reclaiming the slots of processes that died without cleaning up.
 *
 * Locking: a process-local mutex (threads) plus flock on the file (processes). flock is released by
 * the kernel when a holder is killed, so a SIGKILL can never leave the region locked. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vgpu.h"

struct hami_region *vg_region;
static int region_fd = -1;
static int slot_idx = -1;
static pid_t slot_pid;
static pthread_mutex_t region_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t attach_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int attach_state;  /* 0 not yet, 1 ready, -1 off */

static uint64_t proc_start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');  /* comm may hold spaces; fields restart after ')' */
    if (!p)
        return 0;
    unsigned long long start = 0;
    /* after ')' : state(3) ... starttime is field 22 => 20th token after the ')' */
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 22) {
            start = strtoull(tok, NULL, 10);
            break;
        }
    }
    return start;
}

static int proc_alive(pid_t pid, uint64_t start_ticks)
{
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
    if (start_ticks) {
        uint64_t now = proc_start_ticks(pid);
        if (now && now != start_ticks)
            return 0;  /* the pid was reused by another process */
    }
    return 1;
}

static uint64_t random_id(void)
{
    uint64_t id = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &id, sizeof(id)) != sizeof(id))
            id = 0;
        close(fd);
    }
    if (!id)
        id = ((uint64_t)getpid() << 32) ^ (uint64_t)vg_now_ns();
    return id ? id : 1;
}

static void init_region(struct hami_region *r)
{
    memset(r, 0, sizeof(*r));
    r->magic = HAMI_REGION_MAGIC;
    r->version = HAMI_REGION_VERSION;
    r->size = sizeof(*r);
    r->container_id = random_id();
    r->header_sum = hami_header_sum(r);
    r->priority = vg_cfg.priority;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
    int64_t now = vg_now_ns();
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        r->dev[i].limit_bytes = vg_cfg.mem_limit[i];
        r->dev[i].sm_limit = vg_cfg.sm_limit[i];
        r->dev[i].refill_ns = now;
        if (vg_cfg.mem_limit[i] || vg_cfg.sm_limit[i] < 100)
            r->device_count = i + 1;
    }
}

/* Empty string when the mapped region can be trusted, else why not. */
static const char *region_problem(const struct hami_region *r)
{
    if (r->magic == 19920718)
        return "it is a HAMi-core region (magic 19920718), not ours";
    if (r->magic != HAMI_REGION_MAGIC)
        return "bad magic";
    if (r->version != HAMI_REGION_VERSION)
        return "unsupported layout version";
    if (r->size != sizeof(*r))
        return "size field does not match the layout";
    if (r->header_sum != hami_header_sum(r))
        return "header checksum mismatch";
    if (r->proc_hwm > HAMI_MAX_PROCS || r->device_count > HAMI_MAX_DEVICES)
        return "counters out of range";
    for (int i = 0; i < HAMI_MAX_DEVICES; i++)
        if (r->dev[i].sm_limit < 0 || r->dev[i].sm_limit > 100)
            return "SM limit out of range";
    return "";
}

static void use_private_region(void)
{
    void *p = mmap(NULL, sizeof(struct hami_region), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        vg_region = NULL;
        return;
    }
    vg_region = p;
    init_region(vg_region);
}

static void check_limits(void)
{
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        if (vg_region->dev[i].limit_bytes != vg_cfg.mem_limit[i] || vg_region->dev[i].sm_limit != vg_cfg.sm_limit[i])
            vg_log(VG_WARN, "device %d: limits in %s (memory %llu, SM %d%%) differ from this process's environment "
                            "(memory %llu, SM %d%%); the region's limits apply", i, vg_cfg.region_path,
                   (unsigned long long)vg_region->dev[i].limit_bytes, vg_region->dev[i].sm_limit,
                   (unsigned long long)vg_cfg.mem_limit[i], vg_cfg.sm_limit[i]);
    }
}

static int open_shared(void)
{
    mode_t old = umask(0);
    int fd = open(vg_cfg.region_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    umask(old);
    if (fd < 0) {
        vg_log(VG_WARN, "cannot open %s (%s): accounting covers this process only", vg_cfg.region_path,
               strerror(errno));
        return 0;
    }
    flock(fd, LOCK_EX);
    struct stat st;
    int ok = fstat(fd, &st) == 0;
    if (ok && st.st_size == 0)
        ok = ftruncate(fd, sizeof(struct hami_region)) == 0 && fstat(fd, &st) == 0;
    if (!ok || st.st_size != (off_t)sizeof(struct hami_region)) {
        vg_log(VG_ERROR, "shared region %s is not ours (size %lld, expected %zu): not trusted; accounting "
                         "covers this process only", vg_cfg.region_path, (long long)st.st_size,
               sizeof(struct hami_region));
        flock(fd, LOCK_UN);
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, sizeof(struct hami_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        flock(fd, LOCK_UN);
        close(fd);
        return 0;
    }
    struct hami_region *r = p;
    int fresh = r->magic == 0 && r->size == 0 && r->header_sum == 0;
    if (fresh) {
        init_region(r);
    } else {
        const char *why = region_problem(r);
        if (*why) {
            vg_log(VG_ERROR, "shared region %s is corrupt or foreign (%s): not trusted; accounting covers this "
                             "process only", vg_cfg.region_path, why);
            munmap(p, sizeof(struct hami_region));
            flock(fd, LOCK_UN);
            close(fd);
            return 0;
        }
    }
    flock(fd, LOCK_UN);
    vg_region = r;
    region_fd = fd;
    if (!fresh)
        check_limits();
    return 1;
}

static void release_slot(void)
{
    if (!vg_region || slot_idx < 0 || slot_pid != getpid())
        return;
    vg_lock();
    struct hami_proc_slot *s = &vg_region->procs[slot_idx];
    if (s->pid == slot_pid)
        memset(s, 0, sizeof(*s));
    vg_unlock();
}

static void after_fork_child(void)
{
    /* the child shares the mapping but needs its own slot and its own open file for flock */
    pthread_mutex_init(&region_mu, NULL);
    slot_idx = -1;
    if (region_fd >= 0) {
        int fd = open(vg_cfg.region_path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            close(region_fd);
            region_fd = fd;
        }
    }
}

int vg_region_ready(void)
{
    if (__atomic_load_n(&attach_state, __ATOMIC_ACQUIRE))
        return attach_state > 0;
    pthread_mutex_lock(&attach_mu);
    if (!attach_state) {
        if (!open_shared())
            use_private_region();
        atexit(release_slot);
        pthread_atfork(NULL, NULL, after_fork_child);
        __atomic_store_n(&attach_state, vg_region ? 1 : -1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&attach_mu);
    return attach_state > 0;
}

__thread int vg_lock_depth;

void vg_lock(void)
{
    vg_lock_depth++;
    pthread_mutex_lock(&region_mu);
    if (region_fd >= 0)
        while (flock(region_fd, LOCK_EX) != 0 && errno == EINTR) {
        }
}

void vg_unlock(void)
{
    if (region_fd >= 0)
        flock(region_fd, LOCK_UN);
    pthread_mutex_unlock(&region_mu);
    vg_lock_depth--;
}

int vg_reclaim_dead_locked(void)
{
    int n = 0;
    for (uint32_t i = 0; i < vg_region->proc_hwm; i++) {
        struct hami_proc_slot *s = &vg_region->procs[i];
        if (s->state && s->pid != getpid() && !proc_alive(s->pid, s->start_ticks)) {
            uint64_t total = 0;
            for (int d = 0; d < HAMI_MAX_DEVICES; d++)
                total += s->used[d];
            vg_log(VG_INFO, "reclaimed slot of dead pid %d (%llu bytes)", s->pid, (unsigned long long)total);
            memset(s, 0, sizeof(*s));
            n++;
        }
    }
    while (vg_region->proc_hwm > 0 && !vg_region->procs[vg_region->proc_hwm - 1].state)
        vg_region->proc_hwm--;
    return n;
}

static struct hami_proc_slot *my_slot_locked(void)
{
    pid_t me = getpid();
    if (slot_idx >= 0 && slot_pid == me && vg_region->procs[slot_idx].pid == me)
        return &vg_region->procs[slot_idx];
    vg_reclaim_dead_locked();
    for (int i = 0; i < HAMI_MAX_PROCS; i++) {
        struct hami_proc_slot *s = &vg_region->procs[i];
        if (!s->state) {
            memset(s, 0, sizeof(*s));
            s->pid = me;
            s->start_ticks = proc_start_ticks(me);
            s->state = 1;
            slot_idx = i;
            slot_pid = me;
            if ((uint32_t)i >= vg_region->proc_hwm)
                vg_region->proc_hwm = i + 1;
            return s;
        }
    }
    vg_log(VG_ERROR, "no free process slot in %s (%d in use)", vg_cfg.region_path, HAMI_MAX_PROCS);
    return NULL;
}

uint64_t vg_usage_locked(int dev)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < vg_region->proc_hwm; i++)
        if (vg_region->procs[i].state)
            sum += vg_region->procs[i].used[dev];
    return sum;
}

uint64_t vg_limit(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 0;
    return vg_region ? vg_region->dev[dev].limit_bytes : vg_cfg.mem_limit[dev];
}

int vg_charge_locked(int dev, uint64_t bytes, const char *what)
{
    struct hami_proc_slot *s = my_slot_locked();
    if (!s)
        return 1;
    uint64_t limit = vg_region->dev[dev].limit_bytes;
    if (limit) {
        uint64_t used = vg_usage_locked(dev);
        if (used + bytes > limit) {
            vg_reconcile_pools_locked();
            if (vg_reclaim_dead_locked() || 1)
                used = vg_usage_locked(dev);
        }
        if (used + bytes > limit || bytes > limit) {
            vg_log(VG_WARN, "%s: %llu bytes on device %d would exceed the limit (%llu of %llu in use): "
                            "out of memory", what, (unsigned long long)bytes, dev, (unsigned long long)used,
                   (unsigned long long)limit);
            return 0;
        }
    }
    s->used[dev] += bytes;
    return 1;
}

void vg_force_charge_locked(int dev, uint64_t bytes)
{
    struct hami_proc_slot *s = my_slot_locked();
    if (s)
        s->used[dev] += bytes;
}

void vg_uncharge_locked(int dev, uint64_t bytes)
{
    struct hami_proc_slot *s = my_slot_locked();
    if (s)
        s->used[dev] = s->used[dev] > bytes ? s->used[dev] - bytes : 0;
}

void vg_add_busy(int dev, uint64_t ns)
{
    if (!vg_region)
        return;
    __atomic_add_fetch(&vg_region->dev[dev].busy_ns, ns, __ATOMIC_RELAXED);
    if (slot_idx >= 0 && slot_pid == getpid())
        __atomic_add_fetch(&vg_region->procs[slot_idx].busy_ns[dev], ns, __ATOMIC_RELAXED);
}
