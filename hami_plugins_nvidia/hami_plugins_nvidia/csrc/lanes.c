/* lanes.c - the container's usage as the kernel keeps it: record locks on the region file that no tenant
 * can forge or erase (layout in hami_region.h, HAMI_LOCK_*).
 *
 * The region file is writable by every process of the container, so a count read from it is only a
 * claim. Each process therefore publishes what it holds as a write lock of exactly that many bytes in
 * its own lane, and counts the others by asking the kernel which locks exist in the device's span. The
 * kernel releases a dead process's locks, so a SIGKILL leaks nothing, and a rewrite, truncation or
 * deletion of the file's contents changes nothing it reports. A lock placed by anything else in the span
 * is counted as usage: it can only make the container refuse memory (fail closed), never allocate more.
 *
 * OFD locks (Linux 3.15+) belong to this process's open file description, not to every descriptor of the
 * file, so another open/close of the same file in the process cannot drop them. On a kernel without
 * them, classic POSIX locks are used (same semantics here, minus that robustness). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lanes.h"
#include "vgpu.h"

static int cmd_get = F_OFD_GETLK, cmd_set = F_OFD_SETLK;

/* fcntl with the OFD command, falling back to the POSIX one once if the kernel does not know it. */
static int lk(int fd, int get, struct flock *fl)
{
    int r = fcntl(fd, get ? cmd_get : cmd_set, fl);
    if (r != 0 && errno == EINVAL && cmd_get == F_OFD_GETLK) {
        vg_log_once(VG_WARN, "no-ofd", "this kernel has no open-file-description locks: using POSIX record locks");
        cmd_get = F_GETLK;
        cmd_set = F_SETLK;
        fl->l_pid = 0;
        r = fcntl(fd, get ? cmd_get : cmd_set, fl);
    }
    return r;
}

int vg_lane_set(int fd, short type, int64_t start, int64_t len)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    while (lk(fd, 0, &fl) != 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* A POSIX (not OFD) lock on one byte: the kernel reports its owner's pid to the others. */
static int owner_lock(int fd, int64_t byte, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    return fcntl(fd, F_SETLK, &fl);
}

int vg_owner_take(int fd, int64_t byte)
{
    return owner_lock(fd, byte, F_WRLCK);
}

int vg_owner_drop(int fd, int64_t byte)
{
    return owner_lock(fd, byte, F_UNLCK);
}

int vg_lane_test_pid(int fd, int64_t start, int64_t len, int64_t *got_start, int64_t *got_end, int *pid)
{
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;  /* conflicts with every lock another owner holds */
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    if (lk(fd, 1, &fl) != 0)
        return -1;
    if (fl.l_type == F_UNLCK)
        return 0;
    *got_start = fl.l_start;
    *got_end = fl.l_len == 0 || fl.l_start > INT64_MAX - fl.l_len ? INT64_MAX : fl.l_start + fl.l_len;
    if (pid)
        *pid = fl.l_pid;
    return 1;
}

int vg_lane_test(int fd, int64_t start, int64_t len, int64_t *got_start, int64_t *got_end)
{
    return vg_lane_test_pid(fd, start, len, got_start, got_end, NULL);
}

#define STACK 512
#define MAX_QUERIES 4096

/* How a split walk ended. */
enum walk_end { WALK_DONE, WALK_STOPPED, WALK_UNREADABLE, WALK_OUTSIDE, WALK_TOO_MANY, WALK_TOO_DEEP };

struct walk {
    uint64_t stop_above;  /* WALK_STOPPED once the locks found add up to more */
    int max_locks;        /* WALK_TOO_MANY once more are found */
    uint64_t sum;         /* bytes found (saturating) */
    int found, queries;
    void (*each)(int64_t s, int64_t e, int pid, void *arg);
    void *arg;
};

/* The one walk behind vg_lane_walk and vg_lane_each. The kernel answers "one lock that overlaps", not "all": split
 * the range around each lock found and ask again on both sides. Locks of different owners that a query can find
 * never overlap a write lock, so every tenant's lane lock is found whole, once: 2k+1 queries for k locks. Logs
 * nothing and leaves errno as the failing fcntl set it (the callers say what an end means to them). */
static enum walk_end split_walk(int fd, int64_t lo, int64_t hi, struct walk *w)
{
    int64_t st_lo[STACK], st_hi[STACK];
    int sp = 0;
    st_lo[sp] = lo;
    st_hi[sp++] = hi;
    while (sp) {
        sp--;
        int64_t a = st_lo[sp], b = st_hi[sp], s, e;
        if (++w->queries > MAX_QUERIES)
            return WALK_TOO_MANY;
        int pid = 0;
        int r = vg_lane_test_pid(fd, a, b - a, &s, &e, &pid);
        if (r < 0)
            return WALK_UNREADABLE;
        if (r == 0)
            continue;
        int64_t cs = s > a ? s : a, ce = e < b ? e : b;
        if (ce <= cs)
            return WALK_OUTSIDE;  /* the kernel answered a lock outside the question: do not trust the count */
        if (++w->found > w->max_locks)
            return WALK_TOO_MANY;
        if (w->each)
            w->each(cs, ce, pid, w->arg);
        uint64_t len = (uint64_t)(ce - cs);
        w->sum = w->sum > UINT64_MAX - len ? UINT64_MAX : w->sum + len;
        if (w->sum > w->stop_above)
            return WALK_STOPPED;  /* already too much for the caller's question */
        if (sp + 2 > STACK)
            return WALK_TOO_DEEP;
        if (cs > a) {
            st_lo[sp] = a;
            st_hi[sp++] = cs;
        }
        if (ce < b) {
            st_lo[sp] = ce;
            st_hi[sp++] = b;
        }
    }
    return WALK_DONE;
}

uint64_t vg_lane_walk(int fd, int64_t lo, int64_t hi, uint64_t stop_above, int *queries,
                      void (*each)(int64_t s, int64_t e, int pid, void *arg), void *arg)
{
    struct walk w = {stop_above, INT32_MAX, 0, 0, 0, each, arg};
    enum walk_end end = split_walk(fd, lo, hi, &w);
    if (queries)
        *queries += w.queries;
    switch (end) {
    case WALK_DONE:
    case WALK_STOPPED:
        return w.sum;
    case WALK_UNREADABLE:
        vg_log_once(VG_ERROR, "lane-test", "cannot read the region's usage locks (%s): counted as full "
                                           "(memory refused)", strerror(errno));
        break;
    case WALK_TOO_MANY:
        vg_log_once(VG_ERROR, "lane-queries", "more than %d locks in the region's usage span: counted as "
                                              "full (memory refused)", MAX_QUERIES);
        break;
    case WALK_TOO_DEEP:
        vg_log_once(VG_ERROR, "lane-stack", "too many locks in the region's usage span: counted as full "
                                            "(memory refused)");
        break;
    case WALK_OUTSIDE:
        break;
    }
    return UINT64_MAX;
}

uint64_t vg_lane_held(int fd, int64_t lo, int64_t hi, uint64_t stop_above, int *queries)
{
    return vg_lane_walk(fd, lo, hi, stop_above, queries, NULL, NULL);
}

struct each_pidless {
    void (*each)(int64_t s, int64_t e, void *arg);
    void *arg;
};

static void call_pidless(int64_t s, int64_t e, int pid, void *arg)
{
    (void)pid;
    struct each_pidless *p = arg;
    p->each(s, e, p->arg);
}

int vg_lane_each(int fd, int64_t lo, int64_t hi, int max_locks, void (*each)(int64_t s, int64_t e, void *arg),
                 void *arg)
{
    struct each_pidless p = {each, arg};
    struct walk w = {UINT64_MAX, max_locks < STACK - 2 ? max_locks : STACK - 2, 0, 0, 0, call_pidless, &p};
    return split_walk(fd, lo, hi, &w) == WALK_DONE ? w.found : -1;
}
