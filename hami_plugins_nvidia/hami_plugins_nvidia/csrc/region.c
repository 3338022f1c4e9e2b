/* region.c - the container's shared accounting region: create or validate the file, per-process slots,
 * charging under one lock, and reclaiming the slots of processes that died without cleaning up.
 *
 * Locking: a process-local mutex (threads) plus flock on the file (processes). flock is released by
 * the kernel when a holder is killed, so a SIGKILL can never leave the region locked.
 *
 * Never fail open: the file is writable by every process of the container, so nothing read from it is
 * trusted after attach either. Every lock re-checks the file's size and header against this process's
 * copy (and repairs them), every counter is range-checked where it is read, sums saturate, the limits can
 * only get stricter while the region is live, and a process with no free slot is refused memory. */
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

/* This process's own copy of what it must never let the file talk it out of: the header identity, the
 * limits in force (only ever made stricter), and what its own slot holds. */
static struct {
    uint64_t container_id;
    int32_t priority;
    uint64_t limit[HAMI_MAX_DEVICES];
    int sm[HAMI_MAX_DEVICES];
    uint64_t used[HAMI_MAX_DEVICES];
} mine;

static uint32_t seen_epoch;  /* the region's tamper_epoch at this process's last lock */

/* The stricter of two memory limits (0 = none). */
static uint64_t stricter_mem(uint64_t a, uint64_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    return a < b ? a : b;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

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
        mine.limit[i] = vg_cfg.mem_limit[i];
        mine.sm[i] = vg_cfg.sm_limit[i];
    }
    mine.container_id = r->container_id;
    mine.priority = r->priority;
    seen_epoch = r->tamper_epoch;
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
    /* counters out of range in a region of ours are repaired under the lock (verify_locked), not a
     * reason to go private: a private region would give each new process a whole limit of its own */
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

/* A live region met a newcomer: the stricter of the region's limits and this process's environment
 * applies to every process of the container, and one line per device says so. */
static void apply_stricter_locked(void)
{
    struct hami_region *r = vg_region;
    int first = -1, ndiff = 0;
    uint64_t f_reg = 0, f_env = 0, f_mem = 0;
    int f_rsm = 0, f_esm = 0, f_sm = 0;
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        uint64_t mem = stricter_mem(r->dev[i].limit_bytes, vg_cfg.mem_limit[i]);
        int sm = r->dev[i].sm_limit < vg_cfg.sm_limit[i] ? r->dev[i].sm_limit : vg_cfg.sm_limit[i];
        if (r->dev[i].limit_bytes != vg_cfg.mem_limit[i] || r->dev[i].sm_limit != vg_cfg.sm_limit[i]) {
            if (first < 0) {
                first = i;
                f_reg = r->dev[i].limit_bytes, f_env = vg_cfg.mem_limit[i], f_mem = mem;
                f_rsm = r->dev[i].sm_limit, f_esm = vg_cfg.sm_limit[i], f_sm = sm;
            }
            ndiff++;
        }
        r->dev[i].limit_bytes = mem;
        r->dev[i].sm_limit = sm;
        mine.limit[i] = mem;
        mine.sm[i] = sm;
        if ((mem || sm < 100) && r->device_count < (uint32_t)i + 1)
            r->device_count = i + 1;
    }
    if (first >= 0)  /* one line, however many devices differ */
        vg_log(VG_WARN, "device %d%s: limits in %s (memory %llu, SM %d%%) differ from this process's environment "
                        "(memory %llu, SM %d%%); the stricter apply (memory %llu, SM %d%%)", first,
               ndiff > 1 ? " and others" : "", vg_cfg.region_path, (unsigned long long)f_reg, f_rsm,
               (unsigned long long)f_env, f_esm, (unsigned long long)f_mem, f_sm);
    mine.container_id = r->container_id;
    mine.priority = r->priority;
}

static int any_live_slot_locked(void);
static void verify_locked(void);

/* Why an opened region file must not be used, or "": it must be a plain file (not a link: O_NOFOLLOW
 * refused those), with one name, owned by root or by this process's user, so another user cannot plant
 * a region whose limits we would adopt. */
static const char *file_problem(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return "not a regular file";
    if (st->st_nlink != 1)
        return "it has more than one name (a hard link)";
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return "owned by another user";
    return "";
}

static int open_shared(void)
{
    if (!vg_cfg.region_path[0])
        return 0;
    mode_t old = umask(0);
    int fd = open(vg_cfg.region_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    umask(old);
    if (fd < 0) {
        vg_log(errno == ELOOP ? VG_ERROR : VG_WARN, "cannot open %s (%s): accounting covers this process only",
               vg_cfg.region_path, errno == ELOOP ? "it is a symbolic link: not followed" : strerror(errno));
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || *file_problem(&st)) {
        vg_log(VG_ERROR, "shared region %s is not trusted (%s): accounting covers this process only",
               vg_cfg.region_path, fstat(fd, &st) != 0 ? strerror(errno) : file_problem(&st));
        close(fd);
        return 0;
    }
    flock(fd, LOCK_EX);
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
    if (!fresh) {
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
    vg_region = r;
    region_fd = fd;
    if (!fresh) {
        mine.container_id = r->container_id;
        mine.priority = r->priority;
        seen_epoch = r->tamper_epoch;
        for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
            int sm = r->dev[i].sm_limit;
            mine.limit[i] = r->dev[i].limit_bytes;  /* compared with the environment just below */
            mine.sm[i] = sm >= 1 && sm <= 100 ? sm : vg_cfg.sm_limit[i];
        }
        verify_locked();  /* clamps counters a tenant may have pushed out of range */
    }
    if (fresh) {
        init_region(r);
    } else if (!any_live_slot_locked()) {
        /* left behind by processes that are all gone: its limits belong to nobody, this environment's apply */
        vg_log(VG_MSG, "shared region %s: every process that used it has exited; re-initialised from this "
                       "process's environment", vg_cfg.region_path);
        init_region(r);
    } else {
        apply_stricter_locked();
    }
    flock(fd, LOCK_UN);
    return 1;
}

/* A tenant may truncate the region while we use it; touching a mapped page past the new end of file
 * raises SIGBUS. The handler grows the file back to its size (the kernel then maps zero pages, which
 * the next lock repairs from this process's copy) and lets the access retry; a fault anywhere else goes
 * to the handler that was there before, or to the default action. */
static struct sigaction prev_bus;
static volatile sig_atomic_t bus_repaired;  /* the handler grew the file back: the next lock counts it as tampering */

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    char *a = si ? (char *)si->si_addr : NULL;
    char *base = (char *)vg_region;
    if (region_fd >= 0 && base && a >= base && a < base + sizeof(struct hami_region) &&
        ftruncate(region_fd, sizeof(struct hami_region)) == 0) {
        bus_repaired = 1;
        return;
    }
    if (prev_bus.sa_flags & SA_SIGINFO && prev_bus.sa_sigaction) {
        prev_bus.sa_sigaction(sig, si, uc);
    } else if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN && prev_bus.sa_handler) {
        prev_bus.sa_handler(sig);
    } else {
        signal(SIGBUS, SIG_DFL);  /* the access retries and takes the default action */
    }
}

static void guard_truncation(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &prev_bus);
}

static void release_slot(void)
{
    if (!vg_region || slot_idx < 0 || slot_pid != getpid())
        return;
    vg_lock();
    struct hami_proc_slot *s = &vg_region->procs[slot_idx];
    if (s->pid == slot_pid)
        memset(s, 0, sizeof(*s));
    memset(mine.used, 0, sizeof(mine.used));
    vg_unlock();
}

static void after_fork_child(void)
{
    /* the child shares the mapping but needs its own slot and its own open file for flock */
    pthread_mutex_init(&region_mu, NULL);
    slot_idx = -1;
    memset(mine.used, 0, sizeof(mine.used));
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
        else
            guard_truncation();
        atexit(release_slot);
        pthread_atfork(NULL, NULL, after_fork_child);
        __atomic_store_n(&attach_state, vg_region ? 1 : -1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&attach_mu);
    return attach_state > 0;
}

__thread int vg_lock_depth;

/* After the file was overwritten or truncated, the other processes' charges are gone from it until each
 * of them takes the lock again and restores its own slot. Until then the container's usage counts at
 * least what the others held at the last good lock (the floor), so a rewrite cannot free quota. */
#define SNAP_PIDS 128
static uint64_t snap_others[HAMI_MAX_DEVICES], floor_others[HAMI_MAX_DEVICES];
static int32_t snap_pid[SNAP_PIDS], floor_pid[SNAP_PIDS];
static int nsnap, nfloor, floor_on;

static void snapshot_locked(uint32_t h)
{
    memset(snap_others, 0, sizeof(snap_others));
    nsnap = 0;
    for (uint32_t i = 0; i < h; i++) {
        const struct hami_proc_slot *s = &vg_region->procs[i];
        if (!s->state || (int)i == slot_idx)
            continue;
        uint64_t any = 0;
        for (int d = 0; d < HAMI_MAX_DEVICES; d++) {
            snap_others[d] = sat_add(snap_others[d], s->used[d]);
            any |= s->used[d];
        }
        if (any && nsnap < SNAP_PIDS)
            snap_pid[nsnap++] = s->pid;
    }
}

/* Drops the floor once every process it stands for has died or put its slot back. */
static void floor_check_locked(uint32_t h)
{
    int left = 0;
    for (int k = 0; k < nfloor; k++) {
        int32_t pid = floor_pid[k];
        int back = 0;
        for (uint32_t i = 0; i < h && !back; i++)
            back = vg_region->procs[i].state && vg_region->procs[i].pid == pid;
        if (!back && !(kill(pid, 0) != 0 && errno == ESRCH))
            floor_pid[left++] = pid;
    }
    nfloor = left;
    if (!nfloor) {
        floor_on = 0;
        vg_log(VG_INFO, "shared region %s: every process has restored its slot; usage is read from it again",
               vg_cfg.region_path);
    }
}

/* Slots [0, hwm) may be live; the stored high-water mark is clamped on every read. */
static uint32_t hwm_locked(void)
{
    uint32_t h = vg_region->proc_hwm;
    if (h > HAMI_MAX_PROCS) {
        vg_log_once(VG_ERROR, "hwm", "shared region %s: process high-water mark %u is out of range (at most %d): "
                                     "tampered; reading every slot", vg_cfg.region_path, h, HAMI_MAX_PROCS);
        h = HAMI_MAX_PROCS;
        vg_region->proc_hwm = h;
    }
    return h;
}

/* Re-checks the shared file under the lock: its size (a truncated mapping would fault), its header and
 * the limits against this process's copy. Anything changed behind our back is put back, with one line
 * per kind of tampering; limits may only have become stricter. */
static void verify_locked(void)
{
    struct hami_region *r = vg_region;
    int tampered = 0;
    if (bus_repaired) {
        bus_repaired = 0;
        tampered = 1;
        vg_log_once(VG_ERROR, "bus", "shared region %s was resized (truncated) while in use: restored to %zu bytes",
                    vg_cfg.region_path, sizeof(*r));
    }
    for (int k = 0; k < nsnap && !tampered; k++) {  /* a live process never loses its slot: a rewrite did it */
        int back = 0;
        uint32_t hh = hwm_locked();
        for (uint32_t i = 0; i < hh && !back; i++)
            back = r->procs[i].state && r->procs[i].pid == snap_pid[k];
        if (!back && !(kill(snap_pid[k], 0) != 0 && errno == ESRCH))
            tampered = 1;
    }
    if (region_fd >= 0) {
        struct stat st;
        if (fstat(region_fd, &st) == 0 && st.st_size != (off_t)sizeof(*r)) {
            tampered = 1;
            vg_log_once(VG_ERROR, "size", "shared region %s was resized to %lld bytes while in use: restored to %zu",
                        vg_cfg.region_path, (long long)st.st_size, sizeof(*r));
            if (ftruncate(region_fd, sizeof(*r)) != 0)
                vg_log_once(VG_ERROR, "size-fail", "cannot restore %s: %s", vg_cfg.region_path, strerror(errno));
        }
    }
    if (r->magic != HAMI_REGION_MAGIC || r->version != HAMI_REGION_VERSION || r->size != sizeof(*r) ||
        r->container_id != mine.container_id || r->header_sum != hami_header_sum(r)) {
        tampered = 1;
        vg_log_once(VG_ERROR, "header", "shared region %s was overwritten while in use: header restored from this "
                                        "process's copy", vg_cfg.region_path);
        r->magic = HAMI_REGION_MAGIC;
        r->version = HAMI_REGION_VERSION;
        r->size = sizeof(*r);
        r->container_id = mine.container_id;
        r->header_sum = hami_header_sum(r);
        r->priority = mine.priority;
    }
    if (r->device_count > HAMI_MAX_DEVICES)
        r->device_count = HAMI_MAX_DEVICES;
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        uint64_t lim = r->dev[i].limit_bytes;
        int sm = r->dev[i].sm_limit;
        if (stricter_mem(lim, mine.limit[i]) != lim || sm < 1 || sm > 100 || sm > mine.sm[i]) {
            vg_log_once(VG_ERROR, "limits", "shared region %s: device %d limits (memory %llu, SM %d%%) were loosened or "
                                       "broken while in use: restored to memory %llu, SM %d%%", vg_cfg.region_path,
                        i, (unsigned long long)lim, sm, (unsigned long long)mine.limit[i], mine.sm[i]);
            r->dev[i].limit_bytes = stricter_mem(lim, mine.limit[i]);
            r->dev[i].sm_limit = (sm >= 1 && sm <= 100 && sm < mine.sm[i]) ? sm : mine.sm[i];
        }
        mine.limit[i] = r->dev[i].limit_bytes;  /* a stricter value from a newcomer sticks */
        mine.sm[i] = r->dev[i].sm_limit;
    }
    uint32_t h = hwm_locked();
    if (tampered) {
        uint32_t e;  /* a fresh random value: a rewrite cannot land on one another process has seen */
        do
            e = (uint32_t)random_id();
        while (e == seen_epoch || e == 0);
        r->tamper_epoch = e;  /* tells every other process that the file was rewritten */
    } else if (r->tamper_epoch != seen_epoch) {
        tampered = 1;  /* another process found it rewritten since our last lock */
    }
    seen_epoch = r->tamper_epoch;
    if (tampered && nsnap) {
        for (int d = 0; d < HAMI_MAX_DEVICES; d++)
            if (!floor_on || snap_others[d] > floor_others[d])
                floor_others[d] = snap_others[d];
        if (!floor_on)
            nfloor = 0;
        for (int k = 0; k < nsnap; k++) {
            int have = 0;
            for (int j = 0; j < nfloor && !have; j++)
                have = floor_pid[j] == snap_pid[k];
            if (!have && nfloor < SNAP_PIDS)
                floor_pid[nfloor++] = snap_pid[k];
        }
        floor_on = 1;
        vg_log_once(VG_ERROR, "floor", "shared region %s: counting the %d other processes' last known usage until "
                                       "each restores its slot or exits", vg_cfg.region_path, nfloor);
    }
    if (floor_on)
        floor_check_locked(h);
    if (!tampered)
        snapshot_locked(h);
    if (slot_idx >= 0 && slot_pid == getpid()) {
        struct hami_proc_slot *s = &r->procs[slot_idx];
        if (s->pid != slot_pid || s->state != 1 || memcmp(s->used, mine.used, sizeof(mine.used))) {
            vg_log_once(VG_ERROR, "myslot", "shared region %s: this process's slot was overwritten: restored",
                        vg_cfg.region_path);
            s->pid = slot_pid;
            s->state = 1;
            memcpy(s->used, mine.used, sizeof(mine.used));
            if ((uint32_t)slot_idx >= r->proc_hwm)
                r->proc_hwm = slot_idx + 1;
        }
    }
}

void vg_lock(void)
{
    vg_lock_depth++;
    pthread_mutex_lock(&region_mu);
    if (region_fd >= 0) {
        while (flock(region_fd, LOCK_EX) != 0 && errno == EINTR) {
        }
        verify_locked();
    }
}

void vg_unlock(void)
{
    if (region_fd >= 0)
        flock(region_fd, LOCK_UN);
    pthread_mutex_unlock(&region_mu);
    vg_lock_depth--;
}

static int any_live_slot_locked(void)
{
    uint32_t h = hwm_locked();
    for (uint32_t i = 0; i < h; i++) {
        struct hami_proc_slot *s = &vg_region->procs[i];
        if (s->state && s->pid != getpid() && proc_alive(s->pid, s->start_ticks))
            return 1;
    }
    return 0;
}

int vg_reclaim_dead_locked(void)
{
    int n = 0;
    uint32_t h = hwm_locked();
    for (uint32_t i = 0; i < h; i++) {
        struct hami_proc_slot *s = &vg_region->procs[i];
        if (s->state && s->pid != getpid() && !proc_alive(s->pid, s->start_ticks)) {
            uint64_t total = 0;
            for (int d = 0; d < HAMI_MAX_DEVICES; d++)
                total = sat_add(total, s->used[d]);
            vg_log(VG_INFO, "reclaimed slot of dead pid %d (%llu bytes)", s->pid, (unsigned long long)total);
            memset(s, 0, sizeof(*s));
            n++;
        }
    }
    uint32_t top = hwm_locked();
    while (top > 0 && !vg_region->procs[top - 1].state)
        top--;
    vg_region->proc_hwm = top;
    return n;
}

static struct hami_proc_slot *my_slot_locked(void)
{
    pid_t me = getpid();
    if (slot_idx >= 0 && slot_pid == me) {
        if (vg_region->procs[slot_idx].pid != me || vg_region->procs[slot_idx].state != 1)
            verify_locked();  /* overwritten under us: put our own slot back, never start from zero */
        return &vg_region->procs[slot_idx];
    }
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
            memset(mine.used, 0, sizeof(mine.used));
            if ((uint32_t)i >= vg_region->proc_hwm)
                vg_region->proc_hwm = i + 1;
            return s;
        }
    }
    vg_log_once(VG_ERROR, "noslot", "no free process slot in %s (all %d in use by live processes): this process's "
                                    "device memory is refused", vg_cfg.region_path, HAMI_MAX_PROCS);
    return NULL;
}

/* Bytes charged on a device by every live slot; saturates instead of wrapping, so a forged near-2^64
 * count refuses memory rather than lifting the limit. */
uint64_t vg_usage_locked(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return UINT64_MAX;
    uint64_t sum = 0;
    uint64_t limit = vg_limit(dev);
    uint32_t h = hwm_locked();
    for (uint32_t i = 0; i < h; i++) {
        const struct hami_proc_slot *s = &vg_region->procs[i];
        if (!s->state)
            continue;
        uint64_t u = s->used[dev];
        if (limit && u > limit && (int)i != slot_idx) {
            char key[48];
            snprintf(key, sizeof(key), "forged:%d", dev);
            vg_log_once(VG_ERROR, key, "shared region %s: slot %u (pid %d) claims %llu bytes on device %d, over the "
                                       "limit of %llu: tampered; memory is refused while it stays", vg_cfg.region_path,
                        i, s->pid, (unsigned long long)u, dev, (unsigned long long)limit);
        }
        sum = sat_add(sum, u);
    }
    if (floor_on) {
        uint64_t own = slot_idx >= 0 ? mine.used[dev] : 0;
        uint64_t floor = sat_add(floor_others[dev], own);
        if (sum < floor)
            sum = floor;
    }
    return sum;
}

/* The memory limit in force: the region's value, but never laxer than what this process has seen. */
uint64_t vg_limit(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 0;
    if (!vg_region)
        return vg_cfg.mem_limit[dev];
    return stricter_mem(__atomic_load_n(&vg_region->dev[dev].limit_bytes, __ATOMIC_RELAXED), mine.limit[dev]);
}

/* The SM share in force (1..100), range-checked on every read and never laxer than this process's copy. */
int vg_sm_limit(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 100;
    if (!vg_region)
        return vg_cfg.sm_limit[dev];
    int sm = __atomic_load_n(&vg_region->dev[dev].sm_limit, __ATOMIC_RELAXED);
    if (sm < 1 || sm > 100 || sm > mine.sm[dev])
        sm = mine.sm[dev];
    return sm;
}

int vg_charge_locked(int dev, uint64_t bytes, const char *what)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 0;
    struct hami_proc_slot *s = my_slot_locked();
    if (!s)
        return 0;  /* no slot to charge: refuse, never pass unchecked */
    uint64_t limit = vg_limit(dev);
    if (limit) {
        uint64_t used = vg_usage_locked(dev);
        if (bytes > limit || used > limit - bytes) {
            vg_reconcile_pools_locked();
            vg_reclaim_dead_locked();
            used = vg_usage_locked(dev);
        }
        if (region_fd >= 0 && (vg_region->magic != HAMI_REGION_MAGIC || vg_region->container_id != mine.container_id ||
                               vg_region->tamper_epoch != seen_epoch)) {
            verify_locked();  /* rewritten while we held the lock: count again with the floor */
            used = vg_usage_locked(dev);
        }
        if (bytes > limit || used > limit - bytes) {
            char key[96];
            snprintf(key, sizeof(key), "oom:%s:%d:%llu", what, dev, (unsigned long long)limit);
            vg_log_once(VG_WARN, key, "%s: %llu bytes on device %d would exceed the limit (%llu of %llu in use): "
                                      "out of memory (logged once)", what, (unsigned long long)bytes, dev,
                        (unsigned long long)used, (unsigned long long)limit);
            return 0;
        }
    }
    s->used[dev] = sat_add(s->used[dev], bytes);
    mine.used[dev] = s->used[dev];
    return 1;
}

void vg_force_charge_locked(int dev, uint64_t bytes)
{
    struct hami_proc_slot *s = dev >= 0 && dev < HAMI_MAX_DEVICES ? my_slot_locked() : NULL;
    if (s) {
        s->used[dev] = sat_add(s->used[dev], bytes);
        mine.used[dev] = s->used[dev];
    }
}

void vg_uncharge_locked(int dev, uint64_t bytes)
{
    struct hami_proc_slot *s = dev >= 0 && dev < HAMI_MAX_DEVICES ? my_slot_locked() : NULL;
    if (s) {
        s->used[dev] = s->used[dev] > bytes ? s->used[dev] - bytes : 0;
        mine.used[dev] = s->used[dev];
    }
}

void vg_add_busy(int dev, uint64_t ns)
{
    if (!vg_region || dev < 0 || dev >= HAMI_MAX_DEVICES)
        return;
    __atomic_add_fetch(&vg_region->dev[dev].busy_ns, ns, __ATOMIC_RELAXED);
    if (slot_idx >= 0 && slot_pid == getpid())
        __atomic_add_fetch(&vg_region->procs[slot_idx].busy_ns[dev], ns, __ATOMIC_RELAXED);
}
