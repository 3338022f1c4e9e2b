/* region.c - the container's shared accounting region: create or validate the file, per-process slots,
 * charging under one lock, and reclaiming the slots of processes that died without cleaning up.
 *
 * Locking: a process-local mutex (threads) plus flock on the file (processes). flock is released by
 * the kernel when a holder is killed, so a SIGKILL can never leave the region locked.
 *
 * Never fail open: the file is writable by every process of the container, so nothing read from it is
 * trusted for a decision. What the other processes hold is read from the kernel's record locks
 * (lanes.c), which no write to the file can change; this process's own usage and the limits it has seen
 * are kept privately. The file's header, limits and this process's slot are re-checked and repaired at
 * every lock (so the exporter reading the file sees the truth again), the limits can only get stricter
 * while the region is live, and a process with no free slot is refused memory. */
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

#include "lanes.h"
#include "vgpu.h"

struct hami_region *vg_region;
static int region_fd = -1;
static dev_t region_dev;  /* the file region_fd must still name (an application may close or reuse the fd) */
static ino_t region_ino;
static int region_lost;  /* the file could not be found again: refuse, never count only ourselves */
static int slot_idx = -1;
/* The slot release_slot left with work owed (its owner lock dropped) while this process still runs: its own threads
 * outlive the exit handlers (the watcher). They read it as a dead process's and charged it themselves before a
 * survivor could, and the watcher's next collection republished the same owed start in a new slot, which a survivor
 * charged again (fake libcuda, a worker held 20 ms after its exit handlers: 1.3 ms by itself, then 23.6 ms over the
 * same interval by the survivor). Skipped by this process's reclaim (clean_slots_locked, vg_owed_watch); a survivor
 * charges it once this process is gone. */
static int kept_idx = -1;
int64_t vg_owed_mine[HAMI_MAX_DEVICES], vg_until_mine[HAMI_MAX_DEVICES];  /* what this process last published */
static pid_t slot_pid;
static pthread_mutex_t region_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t attach_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int attach_state;  /* 0 not yet, 1 ready, -1 off */

/* This process's own copy of what it must never let the file talk it out of: the header identity, the
 * limits in force (only ever made stricter), what it holds, and what the kernel holds for it (pub). */
static struct {
    uint64_t container_id;
    int32_t priority;
    uint64_t limit[HAMI_MAX_DEVICES];
    int sm[HAMI_MAX_DEVICES];
    uint64_t used[HAMI_MAX_DEVICES];
    uint64_t pub[HAMI_MAX_DEVICES];
    uint64_t reserved[HAMI_MAX_DEVICES];  /* charged but not in use (the context slack): enforced, not reported */
} mine;

/* What the file's slot reports for this process on a device: the charge minus the reservation. The kernel
 * lock lanes carry the full charge (that is what the limit is checked against); the slot is what the
 * exporter shows as the container's usage, so it should match the memory the process really holds. */
static uint64_t reported(int dev, uint64_t used)
{
    return used > mine.reserved[dev] ? used - mine.reserved[dev] : 0;
}

static void report_all(struct hami_proc_slot *s)
{
    for (int d = 0; d < HAMI_MAX_DEVICES; d++)
        s->used[d] = reported(d, mine.used[d]);
}

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

/* Writes one device's limits into the region with their sum (the caller holds the lock). */
static void put_limits(struct hami_region *r, int i, uint64_t mem, int sm)
{
    r->dev[i].limit_bytes = mem;
    r->dev[i].sm_limit = sm;
    r->dev[i].limit_sum = hami_limit_sum(mem, sm, (uint32_t)i, r->container_id);
}

static int limits_signed(const struct hami_region *r, int i, uint64_t mem, int sm)
{
    return __atomic_load_n(&r->dev[i].limit_sum, __ATOMIC_RELAXED) ==
           hami_limit_sum(mem, sm, (uint32_t)i, __atomic_load_n(&r->container_id, __ATOMIC_RELAXED));
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
        put_limits(r, i, vg_cfg.mem_limit[i], vg_cfg.sm_limit[i]);
        r->dev[i].refill_ns = now;
        if (vg_cfg.mem_limit[i] || vg_cfg.sm_limit[i] < 100)
            r->device_count = i + 1;
        mine.limit[i] = vg_cfg.mem_limit[i];
        mine.sm[i] = vg_cfg.sm_limit[i];
    }
    mine.container_id = r->container_id;
    mine.priority = r->priority;
}

/* Empty string when the mapped region's header can be trusted, else why not. */
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

static int64_t owed_charge(const struct hami_proc_slot *s, uint32_t i, int d, int sm, int64_t now);
#define OWED_PASS_NS (4 * (int64_t)HAMI_OWED_MAX_NS)  /* the most one pass over the slots charges per device */

/* A region every process left: what its dead processes left in flight (owed_ns) is charged once it is
 * re-initialised (init_region zeroes the bucket), so that the newcomer's container pays it, noticed only now
 * (bounded like a survivor's charge, and only on a device this environment caps). */
static void reinit_charging_dead(struct hami_region *r)
{
    int64_t debt[HAMI_MAX_DEVICES] = {0}, now = vg_now_ns();
    if (!*region_problem(r)) {
        uint32_t h = r->proc_hwm < HAMI_MAX_PROCS ? r->proc_hwm : HAMI_MAX_PROCS;
        for (uint32_t i = 0; i < h; i++)
            for (int d = 0; d < HAMI_MAX_DEVICES && r->procs[i].state; d++) {
                int64_t ns = owed_charge(&r->procs[i], i, d, vg_cfg.sm_limit[d], now);
                debt[d] = debt[d] + ns < OWED_PASS_NS ? debt[d] + ns : OWED_PASS_NS;
            }
    }
    init_region(r);
    for (int d = 0; d < HAMI_MAX_DEVICES; d++)
        if (debt[d]) {
            __atomic_sub_fetch(&r->dev[d].tokens_ns, debt[d], __ATOMIC_ACQ_REL);
            __atomic_add_fetch(&r->dev[d].busy_ns, (uint64_t)debt[d], __ATOMIC_RELAXED);
            vg_log(VG_INFO, "device %d: the container's last processes ended with work in flight they did not "
                   "charge: %.1f ms charged on re-initialising its region", d, debt[d] / 1e6);
        }
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
        put_limits(r, i, mem, sm);
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

static void verify_locked(void);
static int clean_slots_locked(int rebuild);

/* Whether another process of the container holds a slot, asked of the kernel (slot owner locks), not of
 * the file: a rewritten file cannot hide a live tenant, nor invent one. Unreadable counts as live. */
static int others_live(int fd)
{
    int64_t s, e;
    return vg_lane_test(fd, HAMI_LOCK_OWN_BASE, HAMI_MAX_PROCS, &s, &e) != 0;
}

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

/* The region lock between processes. A process that holds it forever (a tenant's flock) must not stall the
 * others: after LOCK_WAIT_NS without it this process goes on, with one line. That is safe for the limit
 * (charges reserve in the kernel before they count, see vg_charge_locked); only the file's bookkeeping
 * may then race. Once stuck, later calls only try it once, until they get it again. */
#define LOCK_WAIT_NS 2000000000LL
#define LOCK_STUCK_NS 0LL
static int region_flocked, lock_stuck;

static int lock_region(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 1;
    int64_t start = vg_now_ns(), wait = lock_stuck ? LOCK_STUCK_NS : LOCK_WAIT_NS;
    long pause_ns = 20000;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            lock_stuck = 0;
            return 1;
        }
        if (errno != EWOULDBLOCK && errno != EINTR)
            return 0;
        if (vg_now_ns() - start > wait)
            break;
        struct timespec ts = {0, pause_ns};
        nanosleep(&ts, NULL);
        if (pause_ns < 1000000)
            pause_ns *= 2;
    }
    lock_stuck = 1;
    vg_log_once(VG_ERROR, "stuck", "shared region %s: its lock has been held for over %lld ms by another process: "
                                   "going on without it (the limit is still held through the kernel's record locks)",
                vg_cfg.region_path, (long long)(LOCK_WAIT_NS / 1000000));
    return 0;
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
    int flocked = lock_region(fd);
    /* Processes of this container that hold slots make the file ours whatever it now contains: a tenant
     * wrecked it, and going private would ignore their usage. Without any, a file that is not a region
     * of ours (HAMi-core's, another layout, garbage) is left alone and not trusted. */
    int live = others_live(fd);
    int ok = fstat(fd, &st) == 0;
    if (ok && st.st_size == 0)
        ok = ftruncate(fd, sizeof(struct hami_region)) == 0 && fstat(fd, &st) == 0;
    int wrecked = 0;
    if (ok && live && st.st_size != (off_t)sizeof(struct hami_region)) {
        vg_log(VG_ERROR, "shared region %s was resized to %lld bytes while other processes of this container use "
                         "it: restored to %zu", vg_cfg.region_path, (long long)st.st_size,
               sizeof(struct hami_region));
        ok = ftruncate(fd, sizeof(struct hami_region)) == 0 && fstat(fd, &st) == 0;
        wrecked = 1;
    }
    if (!ok || st.st_size != (off_t)sizeof(struct hami_region)) {
        vg_log(VG_ERROR, "shared region %s is not ours (size %lld, expected %zu): not trusted; accounting "
                         "covers this process only", vg_cfg.region_path, (long long)st.st_size,
               sizeof(struct hami_region));
        if (flocked)
            flock(fd, LOCK_UN);
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, sizeof(struct hami_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        if (flocked)
            flock(fd, LOCK_UN);
        close(fd);
        return 0;
    }
    struct hami_region *r = p;
    int fresh = r->magic == 0 && r->size == 0 && r->header_sum == 0;
    const char *why = fresh ? "" : region_problem(r);
    if (*why && !live) {
        vg_log(VG_ERROR, "shared region %s is corrupt or foreign (%s): not trusted; accounting covers this "
                         "process only", vg_cfg.region_path, why);
        munmap(p, sizeof(struct hami_region));
        if (flocked)
            flock(fd, LOCK_UN);
        close(fd);
        return 0;
    }
    if (*why || (fresh && live)) {
        vg_log(VG_ERROR, "shared region %s was overwritten (%s) while other processes of this container use "
                         "it: rebuilt from this process's environment; their usage is read from the kernel's "
                         "locks, their limits and slots come back at their next allocation",
               vg_cfg.region_path, *why ? why : "all zero");
        wrecked = 1;
    }
    vg_region = r;
    region_fd = fd;
    region_dev = st.st_dev;
    region_ino = st.st_ino;
    if (fresh || wrecked) {
        init_region(r);
        if (wrecked) {
            r->tamper_epoch = (uint32_t)random_id();
            clean_slots_locked(1);  /* the live processes' slots, pids and counts, from the kernel */
        }
    } else if (!live) {
        /* left behind by processes that are all gone: its limits belong to nobody, this environment's apply */
        vg_log(VG_MSG, "shared region %s: every process that used it has exited; re-initialised from this "
                       "process's environment", vg_cfg.region_path);
        reinit_charging_dead(r);
    } else {
        mine.container_id = r->container_id;
        mine.priority = r->priority;
        for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
            int sm = r->dev[i].sm_limit;
            int good = limits_signed(r, i, r->dev[i].limit_bytes, sm) && sm >= 1 && sm <= 100;
            /* compared with the environment just below; limits that were not signed are not adopted */
            mine.limit[i] = good ? r->dev[i].limit_bytes : vg_cfg.mem_limit[i];
            mine.sm[i] = good ? sm : vg_cfg.sm_limit[i];
        }
        verify_locked();  /* repairs what a tenant may have broken */
        apply_stricter_locked();
    }
    if (flocked)
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

static uint32_t hwm_locked(void);

/* Takes this process's kernel record of device `dev` to `used` bytes; 0 when the kernel refused (a lock of
 * another owner sits in our lane: whatever placed it, the charge is refused rather than hidden). */
static int publish_locked(int dev, uint64_t used)
{
    if (region_fd < 0 || slot_idx < 0)
        return 1;  /* a private region: nobody else to tell */
    if (used > VG_LANE_MAX)
        return 0;
    int64_t base = VG_LANE(dev, slot_idx);
    uint64_t had = mine.pub[dev];
    if (used > had && vg_lane_set(region_fd, F_WRLCK, base + (int64_t)had, (int64_t)(used - had)) != 0) {
        char key[32];
        snprintf(key, sizeof(key), "publish:%d", dev);
        vg_log_once(VG_ERROR, key, "shared region %s: another owner holds a lock in this process's usage lane on "
                                   "device %d (%s): its allocations there are refused", vg_cfg.region_path, dev,
                    strerror(errno));
        return 0;
    }
    if (used < had)
        vg_lane_set(region_fd, F_UNLCK, base + (int64_t)used, (int64_t)(had - used));
    mine.pub[dev] = used;
    return 1;
}

static void release_slot(void)
{
    if (!vg_region || slot_idx < 0 || slot_pid != getpid())
        return;
    vg_lock();
    struct hami_proc_slot *s = &vg_region->procs[slot_idx];
    int owed = 0;  /* work still queued after exit_charge's wait (it published its start): kept for a survivor */
    for (int d = 0; d < HAMI_MAX_DEVICES; d++)
        owed |= vg_owed_mine[d] != 0;
    if (s->pid == slot_pid && !owed) {
        memset(s, 0, sizeof(*s));
    } else if (s->pid == slot_pid) {
        memset(s->used, 0, sizeof(s->used));  /* pid, state and owed_ns stay: the slot reads as a dead process's */
        kept_idx = slot_idx;
    }
    /* what the kept slot names is the survivor's to charge from now on: no later collection republishes it (in a new
     * slot, charged twice); a launch after this one publishes its own work anew (a new slot) */
    memset(vg_owed_mine, 0, sizeof(vg_owed_mine));
    memset(vg_until_mine, 0, sizeof(vg_until_mine));
    for (int d = 0; d < HAMI_MAX_DEVICES; d++)
        publish_locked(d, 0);
    if (region_fd >= 0)
        vg_owner_drop(region_fd, HAMI_LOCK_OWN_BASE + slot_idx);
    memset(mine.used, 0, sizeof(mine.used));
    slot_idx = -1;
    vg_unlock();
}

static void after_fork_child(void)
{
    memset(vg_owed_mine, 0, sizeof(vg_owed_mine));  /* the parent's work is the parent's to publish */
    memset(vg_until_mine, 0, sizeof(vg_until_mine));
    /* the child shares the mapping but needs its own slot and its own open file (flock, and the record
     * locks, which belong to an open file description: the parent's stay the parent's) */
    pthread_mutex_init(&region_mu, NULL);
    slot_idx = -1;
    kept_idx = -1;  /* the parent's kept slot is the parent's: once it is gone, this process may charge it */
    memset(mine.used, 0, sizeof(mine.used));
    memset(mine.pub, 0, sizeof(mine.pub));
    if (region_fd >= 0) {
        int fd = open(vg_cfg.region_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == region_dev && st.st_ino == region_ino) {
            close(region_fd);
            region_fd = fd;
        } else if (fd >= 0) {
            close(fd);  /* the path names another file now: keep the inherited descriptor of ours */
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

static int pid_exists(pid_t pid)
{
    return pid > 0 && !(kill(pid, 0) != 0 && errno == ESRCH);
}

struct owners {
    int32_t pid[HAMI_MAX_PROCS];  /* 0 = no owner lock; -1 = held, pid unknown */
    uint32_t top;                 /* 1 + the highest held slot */
};

static void note_owner(int64_t s, int64_t e, int pid, void *arg)
{
    struct owners *o = arg;
    for (int64_t b = s; b < e && b - HAMI_LOCK_OWN_BASE < HAMI_MAX_PROCS; b++) {
        o->pid[b - HAMI_LOCK_OWN_BASE] = pid > 0 ? pid : -1;
        o->top = (uint32_t)(b - HAMI_LOCK_OWN_BASE) + 1;
    }
}

/* Work a dead process left in flight (issue 18, never fail open). A process that ends by _exit or a signal runs no
 * exit handler (launch.c exit_charge), so its last launches - completed but never collected, or still queued - were
 * charged to nobody: a tenant forking workers that launch a burst and _exit ran mostly free. Each process publishes
 * in its slot, per device, the start of its oldest launch no charge covers yet and when its queued work is expected
 * to end (owed_ns, owed_until_ns: vg_owed_publish), and clears them once its exit handler has charged it. Whoever
 * clears the slot of a process found dead (its owner lock is gone: clean_slots_locked, from a sibling's watcher
 * within ~2 ms (vg_owed_watch), a newcomer taking a slot, a memory query) charges the container's bucket that work's
 * wall time from its start to the later of its expected end and now (the moment the death was noticed: the queued
 * work may still run, as the driver may let it), on a device this container caps; the slot is cleared under the
 * region lock, so it is charged once.
 * The value comes from a file the tenant can write, so it only ever charges this container (the bucket of the
 * region it sits in), and it is bounded: a start in the future or not positive charges nothing, one older than
 * HAMI_OWED_MAX_NS charges that much; either is reported in one line. Returns the ns charged over all devices. */
static int64_t owed_charge(const struct hami_proc_slot *s, uint32_t i, int d, int sm, int64_t now)
{
    int64_t from = __atomic_load_n(&s->owed_ns[d], __ATOMIC_ACQUIRE);
    if (!from || sm >= 100)
        return 0;
    if (from < 0 || from > now) {
        vg_log_once(VG_ERROR, "owed-forged", "shared region %s: slot %u (pid %d) device %d: owed_ns %lld is not a "
                                             "start in the past (now %lld): forged, nothing charged",
                    vg_cfg.region_path, i, s->pid, d, (long long)from, (long long)now);
        return 0;
    }
    int64_t until = __atomic_load_n(&s->owed_until_ns[d], __ATOMIC_ACQUIRE);
    int64_t ns = (until > now ? until : now) - from;  /* a bad until (before the start) leaves now */
    if (ns > HAMI_OWED_MAX_NS) {
        vg_log_once(VG_WARN, "owed-bound", "shared region %s: slot %u (pid %d) device %d: owed_ns %lld, "
                                           "owed_until_ns %lld: %.1f ms of work, charged the bound, %.1f ms",
                    vg_cfg.region_path, i, s->pid, d, (long long)from, (long long)until, ns / 1e6,
                    HAMI_OWED_MAX_NS / 1e6);
        ns = HAMI_OWED_MAX_NS;
    }
    return ns;
}

static void owed_apply(int d, int64_t ns)
{
    __atomic_sub_fetch(&vg_region->dev[d].tokens_ns, ns, __ATOMIC_ACQ_REL);
    __atomic_add_fetch(&vg_region->dev[d].busy_ns, (uint64_t)ns, __ATOMIC_RELAXED);
}

/* left: what this pass over the slots may still charge per device (OWED_PASS_NS: many forged slots, bounded too). */
static int64_t charge_dead_locked(const struct hami_proc_slot *s, uint32_t i, int64_t now, int64_t *left)
{
    int64_t all = 0;
    for (int d = 0; d < HAMI_MAX_DEVICES; d++) {
        int64_t ns = owed_charge(s, i, d, mine.sm[d], now);
        ns = ns < left[d] ? ns : left[d];
        left[d] -= ns;
        if (!ns)
            continue;
        owed_apply(d, ns);
        all += ns;
        vg_log(VG_INFO, "device %d: pid %d ended with work in flight that it did not charge (no exit handler ran, or "
               "work was still queued after its exit wait): %.1f ms charged", d, s->pid, ns / 1e6);
    }
    return all;
}

/* Brings the file's slots back to what the kernel knows: a slot whose owner lock nobody holds is cleared
 * (its process died, or the slot is forged). With `rebuild`, every held slot is also rewritten from the
 * kernel: live, its owner's pid, and its counts re-read from the owner's lanes (after a rewrite). */
static int clean_slots_locked(int rebuild)
{
    if (region_fd < 0)
        return 0;
    static struct owners o;  /* callers hold the region lock */
    memset(&o, 0, sizeof(o));
    if (vg_lane_walk(region_fd, HAMI_LOCK_OWN_BASE, HAMI_LOCK_OWN_BASE + HAMI_MAX_PROCS, UINT64_MAX, NULL, note_owner,
                     &o) == UINT64_MAX)
        return 0;  /* the kernel could not be read: change nothing */
    int n = 0;
    int64_t left[HAMI_MAX_DEVICES];
    for (int d = 0; d < HAMI_MAX_DEVICES; d++)
        left[d] = OWED_PASS_NS;
    uint32_t h = hwm_locked();
    for (uint32_t i = 0; i < HAMI_MAX_PROCS && (i < h || i < o.top); i++) {
        struct hami_proc_slot *s = &vg_region->procs[i];
        if ((int)i == slot_idx || (int)i == kept_idx)
            continue;  /* our own: restored from this process's copy; or left at exit for a survivor (kept_idx) */
        if (!o.pid[i]) {
            if (!s->state)
                continue;
            uint64_t total = 0;
            for (int d = 0; d < HAMI_MAX_DEVICES; d++)
                total = sat_add(total, s->used[d]);
            /* a slot left with work in flight (release_slot) may outlive its process by a moment: not forged */
            int64_t owed = charge_dead_locked(s, i, vg_now_ns(), left);
            if (!pid_exists(s->pid) || owed)
                vg_log(VG_INFO, "reclaimed slot of dead pid %d (%llu bytes)", s->pid, (unsigned long long)total);
            else
                vg_log_once(VG_ERROR, "forged-slot", "shared region %s: slot %u (pid %d, %llu bytes) is held by no "
                                                     "process: forged or stale, cleared", vg_cfg.region_path, i,
                            s->pid, (unsigned long long)total);
            memset(s, 0, sizeof(*s));
            n++;
        } else if (rebuild) {
            if (o.pid[i] > 0 && s->pid != o.pid[i]) {
                s->pid = o.pid[i];
                s->start_ticks = proc_start_ticks(o.pid[i]);
            }
            s->state = 1;
            for (int d = 0; d < HAMI_MAX_DEVICES; d++)
                s->used[d] = vg_lane_held(region_fd, VG_LANE(d, i), VG_LANE(d, i) + HAMI_LOCK_LANE, UINT64_MAX, NULL);
        }
    }
    uint32_t top = h > o.top ? h : o.top;
    while (top > 0 && !vg_region->procs[top - 1].state && (int)top - 1 != slot_idx)
        top--;
    vg_region->proc_hwm = top;
    return n;
}

/* Re-checks the shared file under the lock: its size (a truncated mapping would fault), its header, the
 * limits (signed, and never laxer than this process's copy) and this process's slot. Anything changed
 * behind our back is put back, with one line per kind of tampering. Nothing here decides an allocation:
 * the repair is for the file's readers (the exporter, newcomers). */
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
    int header_bad = r->magic != HAMI_REGION_MAGIC || r->version != HAMI_REGION_VERSION || r->size != sizeof(*r) ||
                     r->header_sum != hami_header_sum(r);
    if (header_bad) {
        tampered = 1;
        vg_log_once(VG_ERROR, "header", "shared region %s was overwritten while in use: header restored from this "
                                        "process's copy", vg_cfg.region_path);
        r->magic = HAMI_REGION_MAGIC;
        r->version = HAMI_REGION_VERSION;
        r->size = sizeof(*r);
        r->container_id = mine.container_id;
        r->header_sum = hami_header_sum(r);
        r->priority = mine.priority;
    } else if (r->container_id != mine.container_id) {
        /* a valid header with another identity: a newcomer rebuilt a wrecked file; adopt it so the
         * processes agree again (the identity names the container on the node board, not a limit) */
        vg_log_once(VG_MSG, "newid", "shared region %s was rebuilt by another process: container id %016llx adopted",
                    vg_cfg.region_path, (unsigned long long)r->container_id);
        mine.container_id = r->container_id;
        mine.priority = r->priority;
    }
    if (r->device_count > HAMI_MAX_DEVICES)
        r->device_count = HAMI_MAX_DEVICES;
    for (int i = 0; i < HAMI_MAX_DEVICES; i++) {
        uint64_t lim = r->dev[i].limit_bytes;
        int sm = r->dev[i].sm_limit;
        if (header_bad || !limits_signed(r, i, lim, sm) || sm < 1 || sm > 100) {
            if (!header_bad && (lim != mine.limit[i] || sm != mine.sm[i]))
                vg_log_once(VG_ERROR, "limits-garbage", "shared region %s: device %d limits (memory %llu, SM %d%%) "
                                                        "were loosened or not written by this container: restored "
                                                        "to memory "
                                                        "%llu, SM %d%%", vg_cfg.region_path, i,
                            (unsigned long long)lim, sm, (unsigned long long)mine.limit[i], mine.sm[i]);
            tampered |= !header_bad;
            put_limits(r, i, mine.limit[i], mine.sm[i]);
            continue;
        }
        if (stricter_mem(lim, mine.limit[i]) != lim || sm > mine.sm[i]) {
            vg_log_once(VG_ERROR, "limits", "shared region %s: device %d limits (memory %llu, SM %d%%) were loosened "
                                            "while in use: restored to memory %llu, SM %d%%", vg_cfg.region_path,
                        i, (unsigned long long)lim, sm, (unsigned long long)mine.limit[i], mine.sm[i]);
            put_limits(r, i, stricter_mem(lim, mine.limit[i]), sm < mine.sm[i] ? sm : mine.sm[i]);
        }
        mine.limit[i] = r->dev[i].limit_bytes;  /* a stricter value from a newcomer sticks */
        mine.sm[i] = r->dev[i].sm_limit;
    }
    hwm_locked();
    if (tampered) {
        uint32_t e;  /* a fresh random value: readers can tell that the file was rewritten */
        do
            e = (uint32_t)random_id();
        while (e == r->tamper_epoch || e == 0);
        r->tamper_epoch = e;
        clean_slots_locked(1);
    }
    if (slot_idx >= 0 && slot_pid == getpid()) {
        struct hami_proc_slot *s = &r->procs[slot_idx];
        int same = 1;
        for (int d = 0; d < HAMI_MAX_DEVICES && same; d++)
            same = s->used[d] == reported(d, mine.used[d]);
        if (s->pid != slot_pid || s->state != 1 || !same) {
            vg_log_once(VG_ERROR, "myslot", "shared region %s: this process's slot was overwritten: restored",
                        vg_cfg.region_path);
            s->pid = slot_pid;
            s->state = 1;
            report_all(s);
        }
        if ((uint32_t)slot_idx >= r->proc_hwm)
            r->proc_hwm = slot_idx + 1;
    }
}

/* region_fd must still be the region file. An application that closes every descriptor (daemons do)
 * drops this process's slot owner lock (a POSIX lock goes with any close), while its usage locks stay with
 * the old open file description, which the mapping keeps alive but which can no longer be changed. So:
 * reopen by the path (if it still names the same file), take a new slot and publish the usage there (for a
 * moment it counts twice: fail closed), then map the file again through the new descriptor, which
 * releases the old description and its locks. If the path names another file now, the others cannot be
 * counted: this process is refused memory from then on (never "count only ourselves"). */
static struct hami_proc_slot *my_slot_locked(void);
static int avoid_slot = -1;

static void check_fd_locked(void)
{
    struct stat st;
    if (fstat(region_fd, &st) == 0 && st.st_dev == region_dev && st.st_ino == region_ino)
        return;
    int fd = open(vg_cfg.region_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == region_dev && st.st_ino == region_ino) {
        vg_log_once(VG_ERROR, "fd", "shared region %s: its descriptor was closed by the application: reopened, "
                                    "this process's locks taken again", vg_cfg.region_path);
        region_fd = fd;  /* the old number may belong to the application now: never closed by us */
        if (slot_idx >= 0 && slot_pid == getpid() && vg_region->procs[slot_idx].pid == slot_pid)
            memset(&vg_region->procs[slot_idx], 0, sizeof(vg_region->procs[slot_idx]));
        avoid_slot = slot_idx;  /* its lanes still hold the old description's locks */
        slot_idx = -1;
        my_slot_locked();  /* a new slot, with this process's usage published in its lane */
        avoid_slot = -1;
        void *p = mmap(vg_region, sizeof(struct hami_region), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        if (p == MAP_FAILED)
            vg_log_once(VG_ERROR, "fd-map", "shared region %s: cannot map it again (%s): this process's old usage "
                                            "record stays until it exits (counted twice: more is refused)",
                        vg_cfg.region_path, strerror(errno));
        return;
    }
    if (fd >= 0)
        close(fd);
    vg_log_once(VG_ERROR, "fd-lost", "shared region %s: its descriptor was closed and the path names another file "
                                     "now: the other processes cannot be counted, so this process's device memory is "
                                     "refused from here on", vg_cfg.region_path);
    region_fd = -1;
    region_lost = 1;
}

void vg_lock(void)
{
    vg_lock_depth++;
    pthread_mutex_lock(&region_mu);
    if (region_fd >= 0)
        check_fd_locked();
    if (region_fd >= 0) {
        region_flocked = lock_region(region_fd);
        verify_locked();
    }
}

void vg_unlock(void)
{
    if (region_fd >= 0 && region_flocked)
        flock(region_fd, LOCK_UN);
    region_flocked = 0;
    pthread_mutex_unlock(&region_mu);
    vg_lock_depth--;
}

int vg_reclaim_dead_locked(void)
{
    return clean_slots_locked(0);
}

static struct hami_proc_slot *my_slot_locked(void)
{
    pid_t me = getpid();
    if (slot_idx >= 0 && slot_pid == me) {
        struct hami_proc_slot *s = &vg_region->procs[slot_idx];
        if (s->pid != me || s->state != 1)
            verify_locked();  /* overwritten under us: put our own slot back, never start from zero */
        return s;
    }
    clean_slots_locked(0);
    for (int i = 0; i < HAMI_MAX_PROCS; i++) {
        struct hami_proc_slot *s = &vg_region->procs[i];
        /* the kernel decides who owns a slot: its owner lock is exclusive, whatever the file says */
        if (i == avoid_slot || i == kept_idx)
            continue;  /* kept_idx: its owner lock is free, but what it names is owed (taken, it was wiped uncharged) */
        if (region_fd >= 0 ? vg_owner_take(region_fd, HAMI_LOCK_OWN_BASE + i) != 0 : s->state != 0)
            continue;
        memset(s, 0, sizeof(*s));
        s->pid = me;
        s->start_ticks = proc_start_ticks(me);
        s->state = 1;
        slot_idx = i;
        slot_pid = me;
        /* a new process holds nothing; one whose slot was lost (descriptor closed) publishes what it holds */
        memset(mine.pub, 0, sizeof(mine.pub));
        for (int d = 0; d < HAMI_MAX_DEVICES; d++)
            if (mine.used[d] && !publish_locked(d, mine.used[d]))
                vg_log_once(VG_ERROR, "republish", "shared region %s: this process's usage on device %d could not "
                                                   "be published", vg_cfg.region_path, d);
        report_all(s);
        if ((uint32_t)i >= vg_region->proc_hwm)
            vg_region->proc_hwm = i + 1;
        return s;
    }
    vg_log_once(VG_ERROR, "noslot", "no free process slot in %s (all %d held by live processes): this process's "
                                    "device memory is refused", vg_cfg.region_path, HAMI_MAX_PROCS);
    return NULL;
}

/* What the other processes of the container hold on a device, from the kernel's locks (never the file). */
static uint64_t others_locked(int dev, uint64_t stop_above)
{
    if (region_fd < 0)
        return 0;
    return vg_lane_held(region_fd, VG_DEV_SPAN(dev), VG_DEV_SPAN(dev) + HAMI_LOCK_DEV_SPAN, stop_above, NULL);
}

/* Bytes charged on a device by the container: this process's own count plus the others' locks. */
uint64_t vg_usage_locked(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return UINT64_MAX;
    uint64_t own = slot_idx >= 0 ? mine.used[dev] : 0;
    return sat_add(own, others_locked(dev, UINT64_MAX));
}

struct lanes_seen {
    int64_t base;                   /* the device span's start */
    uint8_t seen[HAMI_MAX_PROCS];   /* a lock found in slot i's lane */
};

static void note_lane(int64_t s, int64_t e, int pid, void *arg)
{
    (void)e;
    (void)pid;
    struct lanes_seen *l = arg;
    int64_t lane = (s - l->base) / HAMI_LOCK_LANE;
    if (lane >= 0 && lane < HAMI_MAX_PROCS)
        l->seen[lane] = 1;
}

/* How many processes of this container hold memory on device dev: this one (the caller has a context there)
 * plus the owners of the other lanes in the device's span, asked of the kernel: a tenant can neither forge a
 * lock nor hide one its live process holds. Every process with a context holds its context charge there.
 * -1 when the kernel cannot be read. The bound on n(t) subtracts this from NVML's count (nvmlq.c). */
int vg_region_procs_on(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES || !vg_region_ready())
        return -1;
    static struct lanes_seen l;  /* under the region lock */
    int n = -1;
    vg_lock();
    if (region_fd >= 0) {
        memset(&l, 0, sizeof(l));
        l.base = VG_DEV_SPAN(dev);
        if (vg_lane_walk(region_fd, l.base, l.base + HAMI_LOCK_DEV_SPAN, UINT64_MAX, NULL, note_lane, &l) !=
            UINT64_MAX) {
            n = 1;
            for (int i = 0; i < HAMI_MAX_PROCS; i++)
                n += l.seen[i] && i != slot_idx;
        }
    }
    vg_unlock();
    return n;
}

/* Presence locks (hami_region.h HAMI_LOCK_SIB_BASE): the byte this process holds on each device, while
 * presence_pid[dev] is its pid (a forked child holds none of its parent's POSIX locks: it takes its own). */
static int64_t presence_byte[HAMI_MAX_DEVICES];
static pid_t presence_pid[HAMI_MAX_DEVICES];

struct presence_seen {
    pid_t me;
    int n, unknown;              /* distinct named owners; 1 once a lock names none (OFD, another PID namespace) */
    pid_t pid[HAMI_SIBLINGS];
};

static void note_presence(int64_t s, int64_t e, int pid, void *arg)
{
    (void)s;
    (void)e;
    struct presence_seen *p = arg;
    if (pid == p->me)
        return;
    if (pid <= 0) {
        p->unknown = 1;
        return;
    }
    for (int i = 0; i < p->n; i++)
        if (p->pid[i] == pid)
            return;
    if (p->n < HAMI_SIBLINGS)
        p->pid[p->n++] = pid;
}

/* How many other processes of this container measure their launches on device dev: the owners of the presence
 * locks in the device's span, asked of the kernel and counted by owner, so one process counts once whatever it
 * locks (a lock that names no owner counts once in all) and none counts without a live process holding a lock.
 * With `take`, this process first takes (or re-takes: an application that closed a descriptor of the file dropped
 * it) a byte of its own there, kept until it exits. -1 when the kernel cannot be read. */
int vg_region_siblings_on(int dev, int take)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES || !vg_region_ready())
        return -1;
    static struct presence_seen p;  /* under the region lock */
    int n = -1;
    vg_lock();
    if (region_fd >= 0) {
        int64_t lo = (int64_t)HAMI_LOCK_SIB_BASE + (int64_t)dev * HAMI_MAX_PROCS;
        pid_t me = getpid();
        if (take) {
            int64_t b = presence_pid[dev] == me ? presence_byte[dev] : 0;
            if (vg_owner_take(region_fd, lo + b) != 0)
                for (b = 0; b < HAMI_MAX_PROCS && vg_owner_take(region_fd, lo + b) != 0; b++)
                    ;
            presence_pid[dev] = b < HAMI_MAX_PROCS ? me : 0;
            presence_byte[dev] = b;
        }
        memset(&p, 0, sizeof(p));
        p.me = me;
        if (vg_lane_walk(region_fd, lo, lo + HAMI_MAX_PROCS, UINT64_MAX, NULL, note_presence, &p) != UINT64_MAX)
            n = p.n + p.unknown;
    }
    vg_unlock();
    return n;
}

/* The memory limit in force: the region's value if it is signed, but never laxer than this process's copy. */
uint64_t vg_limit(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 0;
    if (!vg_region)
        return vg_cfg.mem_limit[dev];
    uint64_t lim = __atomic_load_n(&vg_region->dev[dev].limit_bytes, __ATOMIC_RELAXED);
    int sm = __atomic_load_n(&vg_region->dev[dev].sm_limit, __ATOMIC_RELAXED);
    if (!limits_signed(vg_region, dev, lim, sm))
        return mine.limit[dev];
    return stricter_mem(lim, mine.limit[dev]);
}

/* The SM share in force (1..100), range-checked on every read and never laxer than this process's copy. */
int vg_sm_limit(int dev)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 100;
    if (!vg_region)
        return vg_cfg.sm_limit[dev];
    uint64_t lim = __atomic_load_n(&vg_region->dev[dev].limit_bytes, __ATOMIC_RELAXED);
    int sm = __atomic_load_n(&vg_region->dev[dev].sm_limit, __ATOMIC_RELAXED);
    if (sm < 1 || sm > 100 || sm > mine.sm[dev] || !limits_signed(vg_region, dev, lim, sm))
        sm = mine.sm[dev];
    return sm;
}

/* The count this process now holds on a device, in the file (for readers) and in the kernel (for the
 * other processes' decisions). 0 when the kernel would not take it. */
static int set_mine_locked(struct hami_proc_slot *s, int dev, uint64_t used)
{
    if (!publish_locked(dev, used))
        return 0;
    mine.used[dev] = used;
    s->used[dev] = reported(dev, used);
    return 1;
}

int vg_charge_locked(int dev, uint64_t bytes, const char *what)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return 0;
    if (region_lost)
        return 0;
    struct hami_proc_slot *s = my_slot_locked();
    if (!s)
        return 0;  /* no slot to charge: refuse, never pass unchecked */
    uint64_t limit = vg_limit(dev);
    uint64_t own = mine.used[dev];
    if (!limit)
        return set_mine_locked(s, dev, sat_add(own, bytes));
    /* Reserve first, then count the others: of two processes charging at once, at least one sees the
     * other's reservation, so the limit holds even without the region lock (lock_region may time out). */
    int fits = 0;
    uint64_t used = own;
    for (int pass = 0; pass < 2 && !fits; pass++) {
        if (pass)
            vg_reconcile_pools_locked();  /* pools may have shrunk since they were charged */
        own = mine.used[dev];
        used = own;
        if (bytes > limit || own > limit - bytes)
            continue;
        if (!set_mine_locked(s, dev, own + bytes))
            return 0;
        uint64_t room = limit - bytes - own;
        uint64_t others = others_locked(dev, room);
        used = sat_add(own, others);
        fits = others <= room;
        if (!fits)
            set_mine_locked(s, dev, own);  /* undo the reservation */
    }
    if (!fits) {
        char key[96];
        snprintf(key, sizeof(key), "oom:%s:%d:%llu", what, dev, (unsigned long long)limit);
        vg_log_once(VG_WARN, key, "%s: %llu bytes on device %d would exceed the limit (%s%llu of %llu in use): "
                                  "out of memory (logged once)", what, (unsigned long long)bytes, dev,
                    used == own ? "" : "at least ", (unsigned long long)used, (unsigned long long)limit);
    }
    return fits;
}

void vg_force_charge_locked(int dev, uint64_t bytes)
{
    struct hami_proc_slot *s = dev >= 0 && dev < HAMI_MAX_DEVICES ? my_slot_locked() : NULL;
    if (s && !set_mine_locked(s, dev, sat_add(mine.used[dev], bytes))) {
        mine.used[dev] = sat_add(mine.used[dev], bytes);  /* already taken: keep counting it */
        s->used[dev] = reported(dev, mine.used[dev]);
    }
}

void vg_set_reserved_locked(int dev, uint64_t bytes)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES)
        return;
    mine.reserved[dev] = bytes;
    struct hami_proc_slot *s = my_slot_locked();
    if (s)
        s->used[dev] = reported(dev, mine.used[dev]);
}

void vg_uncharge_locked(int dev, uint64_t bytes)
{
    struct hami_proc_slot *s = dev >= 0 && dev < HAMI_MAX_DEVICES ? my_slot_locked() : NULL;
    if (s)
        set_mine_locked(s, dev, mine.used[dev] > bytes ? mine.used[dev] - bytes : 0);
}

void vg_add_busy(int dev, uint64_t ns)
{
    if (!vg_region || dev < 0 || dev >= HAMI_MAX_DEVICES)
        return;
    __atomic_add_fetch(&vg_region->dev[dev].busy_ns, ns, __ATOMIC_RELAXED);
    /* no getpid() here (a system call, on every measured launch of the precise path): a forked child's
     * slot_idx is -1 (after_fork_child) until it takes its own slot */
    if (slot_idx >= 0)
        __atomic_add_fetch(&vg_region->procs[slot_idx].busy_ns[dev], ns, __ATOMIC_RELAXED);
}

/* Publishes in this process's slot the start of its oldest launch on dev that no charge covers yet (from, 0 = none)
 * and when the work it has queued is expected to end (until), for whoever finds it dead (owed_charge). Written only
 * when they change: with first (the launch path), from only when none is published, and until only once it moved
 * VG_OWED_STEP_NS later (vg_owed_unmoved, which the launch path tests inline: a load and a branch for most
 * launches). The first publish of a process that holds no slot yet takes one (one lock, once). Not in a private
 * region. */
void vg_owed_publish(int dev, int64_t from, int64_t until, int first)
{
    if (dev < 0 || dev >= HAMI_MAX_DEVICES || region_fd < 0)
        return;
    if (first && vg_owed_mine[dev]) {
        if (vg_owed_unmoved(dev, until))
            return;
        from = vg_owed_mine[dev];
    } else if (from == vg_owed_mine[dev] && (!from || until == vg_until_mine[dev])) {
        return;
    }
    if (slot_idx < 0 && from) {
        vg_lock();
        my_slot_locked();
        vg_unlock();
    }
    if (slot_idx < 0 || !vg_region)
        return;
    struct hami_proc_slot *s = &vg_region->procs[slot_idx];
    until = from ? until : 0;
    __atomic_store_n(&s->owed_until_ns[dev], until, __ATOMIC_RELEASE);  /* before the start: read after it */
    __atomic_store_n(&s->owed_ns[dev], from, __ATOMIC_RELEASE);
    vg_owed_mine[dev] = from;
    vg_until_mine[dev] = until;
}

int vg_owed_published(int dev)
{
    return dev >= 0 && dev < HAMI_MAX_DEVICES && vg_owed_mine[dev] != 0;
}

/* The watcher's look for dead siblings that left work in flight, every OWED_WATCH_NS at most: a slot other than
 * ours with an owed start on a capped device whose owner lock nobody holds (one lock query each, no region lock);
 * found, the region lock is taken and clean_slots_locked charges and clears it. The file is only a hint here:
 * the kernel's lock decides who is dead, and the charge is bounded (owed_charge). */
#define OWED_WATCH_NS 2000000LL
void vg_owed_watch(int64_t now)
{
    static int64_t last;  /* the watcher thread only */
    if (region_fd < 0 || !vg_region || now - last < OWED_WATCH_NS)
        return;
    last = now;
    uint32_t h = __atomic_load_n(&vg_region->proc_hwm, __ATOMIC_RELAXED);
    h = h < HAMI_MAX_PROCS ? h : HAMI_MAX_PROCS;
    int dead = 0;
    for (uint32_t i = 0; i < h && !dead; i++) {
        const struct hami_proc_slot *s = &vg_region->procs[i];
        if ((int)i == slot_idx || (int)i == kept_idx || !__atomic_load_n(&s->state, __ATOMIC_RELAXED))
            continue;
        int owed = 0;
        for (int d = 0; d < HAMI_MAX_DEVICES && !owed; d++)
            owed = mine.sm[d] < 100 && __atomic_load_n(&s->owed_ns[d], __ATOMIC_RELAXED);
        int64_t a, b;
        dead = owed && vg_lane_test(region_fd, HAMI_LOCK_OWN_BASE + i, 1, &a, &b) == 0;
    }
    if (!dead)
        return;
    vg_lock();
    clean_slots_locked(0);
    vg_unlock();
}
