/* board.c - the node board: one small file shared by every container on the node (HAMi mounts
 * /tmp/vgpulock read-write into each one). An entry per physical GPU, keyed by UUID, carries the
 * time-share gate of SM-limited containers and the last launch time of each priority level.
 *
 * Every container must write it (the gate, its priority marks), so the file is world-writable; what a
 * tenant can do with that is bounded instead: the directory is sticky (01777, nobody replaces another's
 * file), the file is opened without following links and must be a plain file with one name owned by
 * root or by us, its entry count is clamped on every read, and timestamps in the future are ignored by
 * the readers (launch.c), so a forged entry can neither hang nor lift anyone's limit. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lanes.h"
#include "vgpu.h"

static struct hami_board *board;
static int board_fd = -1;
static int board_state;  /* 0 not yet, 1 ok, -1 unavailable */
static pthread_mutex_t board_mu = PTHREAD_MUTEX_INITIALIZER;

static dev_t board_dev;
static ino_t board_ino;

/* A forked child gets its own open file description of the board: the records (OFD locks) of the parent belong
 * to the parent's, and a child that published through it would rewrite the parent's. */
static void board_forked(void)
{
    pthread_mutex_init(&board_mu, NULL);
    if (board_fd < 0)
        return;
    int fd = open(vg_cfg.board_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == board_dev && st.st_ino == board_ino) {
        close(board_fd);
        board_fd = fd;
    } else {
        if (fd >= 0)
            close(fd);
        close(board_fd);  /* the parent's description: kept open here it would keep the parent's records alive */
        board_fd = -1;  /* the path names another file now: this child publishes no record and reads none */
    }
}

static int attach_board(void)
{
    char dir[512];
    if (!vg_cfg.board_path[0])
        return 0;
    snprintf(dir, sizeof(dir), "%s", vg_cfg.board_path);
    mode_t old = umask(0);
    if (mkdir(dirname(dir), 01777) == 0)
        chmod(dir, 01777);  /* mkdir may drop the sticky bit */
    int fd = open(vg_cfg.board_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    umask(old);
    if (fd < 0) {
        vg_log(errno == ELOOP ? VG_ERROR : VG_WARN, "cannot open node board %s (%s): no priority or "
               "cross-container time sharing", vg_cfg.board_path,
               errno == ELOOP ? "it is a symbolic link: not followed" : strerror(errno));
        return 0;
    }
    struct stat st;
    const char *why = fstat(fd, &st) != 0        ? "cannot stat it"
                      : !S_ISREG(st.st_mode)     ? "not a regular file"
                      : st.st_nlink != 1         ? "it has more than one name (a hard link)"
                      : st.st_uid != 0 && st.st_uid != geteuid() ? "owned by another user (the node agent or "
                                                                   "the first container's user should create it)"
                                                                 : "";
    if (*why) {
        vg_log(VG_ERROR, "node board %s is not trusted (%s): no priority or cross-container time sharing",
               vg_cfg.board_path, why);
        close(fd);
        return 0;
    }
    flock(fd, LOCK_EX);
    int ok = fstat(fd, &st) == 0;
    if (ok && st.st_size == 0)
        ok = ftruncate(fd, sizeof(struct hami_board)) == 0 && fstat(fd, &st) == 0;
    void *p = MAP_FAILED;
    if (ok && st.st_size == (off_t)sizeof(struct hami_board))
        p = mmap(NULL, sizeof(struct hami_board), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        vg_log(VG_ERROR, "node board %s has an unexpected size: not trusted", vg_cfg.board_path);
        flock(fd, LOCK_UN);
        close(fd);
        return 0;
    }
    struct hami_board *b = p;
    if (b->magic == 0 && b->size == 0) {
        b->magic = HAMI_BOARD_MAGIC;
        b->version = HAMI_BOARD_VERSION;
        b->size = sizeof(*b);
    } else if (b->magic != HAMI_BOARD_MAGIC || b->version != HAMI_BOARD_VERSION || b->size != sizeof(*b) ||
               b->count > HAMI_BOARD_GPUS) {
        vg_log(VG_ERROR, "node board %s is corrupt or foreign: not trusted", vg_cfg.board_path);
        munmap(p, sizeof(*b));
        flock(fd, LOCK_UN);
        close(fd);
        return 0;
    }
    flock(fd, LOCK_UN);
    board = b;
    board_fd = fd;
    board_dev = st.st_dev;
    board_ino = st.st_ino;
    pthread_atfork(NULL, NULL, board_forked);
    return 1;
}

struct hami_board_gpu *vg_board_gpu(const uint8_t uuid[16])
{
    pthread_mutex_lock(&board_mu);
    if (!board_state)
        board_state = attach_board() ? 1 : -1;
    struct hami_board_gpu *g = NULL;
    if (board_state > 0) {
        flock(board_fd, LOCK_EX);
        uint32_t n = board->count;
        if (n > HAMI_BOARD_GPUS) {  /* range-checked on every read, not only at attach */
            vg_log_once(VG_ERROR, "board-count", "node board %s: entry count %u out of range (at most %d): "
                                                 "tampered; clamped", vg_cfg.board_path, n, HAMI_BOARD_GPUS);
            n = HAMI_BOARD_GPUS;
            board->count = n;
        }
        for (uint32_t i = 0; i < n && !g; i++)
            if (!memcmp(board->gpu[i].uuid, uuid, 16))
                g = &board->gpu[i];
        if (!g && n < HAMI_BOARD_GPUS) {
            g = &board->gpu[n];
            memset(g, 0, sizeof(*g));
            memcpy(g->uuid, uuid, 16);
            __atomic_store_n(&board->count, n + 1, __ATOMIC_RELEASE);
        }
        flock(board_fd, LOCK_UN);
    }
    pthread_mutex_unlock(&board_mu);
    return g;
}

/* ---- board records (layout: hami_region.h, HAMI_BREC_*) ----
 * What a neighbour's lending and switch-charging decisions read about a container is what its processes hold as
 * kernel record locks here, not the board's plain values: every tenant can rewrite the file, none can shorten or
 * drop another's lock, and the kernel drops a dead process's. A reader combines the records of a user slot in
 * the direction that lends least and charges most, so a lock added by anyone else only makes it lend less. */

#define BREC_SLOT ((int64_t)HAMI_BREC_PROCS * (int64_t)HAMI_BREC_LANE)
#define BREC_MARKED (-2)  /* *lane: no lane free, the slot's marker is held instead (brec_marker) */
#define BREC_MAX_LOCKS 48  /* records read per GPU entry (two per process at most while it moves): more is forged */

static int64_t brec_lane(int entry, int user, int lane)
{
    return (int64_t)HAMI_BREC_BASE + ((int64_t)entry * HAMI_BOARD_USERS + user) * BREC_SLOT +
           (int64_t)lane * (int64_t)HAMI_BREC_LANE;
}

static int32_t tenths(int32_t bp)
{
    return bp <= 0 ? 0 : bp >= 10000 ? 1000 : bp / 10;  /* rounded down: the reader takes the larger board value */
}

uint64_t hami_vgpu_brec_pack(int limit, int held, int32_t frac_bp, int32_t queued_bp, int32_t solo_bp)
{
    if (limit < 1 || limit > 100)
        return 0;
    uint64_t v = (uint64_t)limit | (uint64_t)(held != 0) << 7 | (uint64_t)tenths(frac_bp) << 8 |
                 (uint64_t)tenths(queued_bp) << 18 | (uint64_t)tenths(solo_bp) << 28;
    return v + 1;
}

int hami_vgpu_brec_unpack(uint64_t len, int *limit, int *held, int32_t *frac_bp, int32_t *queued_bp,
                          int32_t *solo_bp)
{
    if (len < 1 || len - 1 >= (1ULL << HAMI_BREC_BITS))
        return 0;
    uint64_t v = len - 1;
    int l = (int)(v & 127);
    uint32_t f = (uint32_t)(v >> 8) & 1023, q = (uint32_t)(v >> 18) & 1023, so = (uint32_t)(v >> 28) & 1023;
    if (l < 1 || l > 100 || f > 1000 || q > 1000 || so > 1000)
        return 0;
    *limit = l;
    *held = (int)((v >> 7) & 1);
    *frac_bp = (int32_t)f * 10;
    *queued_bp = (int32_t)q * 10;
    *solo_bp = (int32_t)so * 10;
    return 1;
}

static int board_entry(const struct hami_board_gpu *g)
{
    if (!board || board_fd < 0 || g < board->gpu || g >= board->gpu + HAMI_BOARD_GPUS)
        return -1;
    return (int)(g - board->gpu);
}

/* Start of lane `lane`'s context claim (the ---- context claims ---- below), the longest claim, and the byte its
 * record holder locks when somebody else holds bytes at the claim's place (*claim = BCTX_POISONED). */
#define BCTX_MAX (100 * HAMI_SIBLINGS)
#define BCTX_POISONED 1

static int64_t bctx_lane(int entry, int user, int lane)
{
    return (int64_t)HAMI_BCTX_BASE + ((int64_t)(entry * HAMI_BOARD_USERS + user) * HAMI_BREC_PROCS + lane) *
                                         (int64_t)HAMI_BCTX_LANE;
}

static int64_t bctx_poison(int entry, int user, int lane)
{
    return bctx_lane(entry, user, lane) + (int64_t)HAMI_BCTX_LANE - 1;
}

/* Where a process that finds no free lane in its slot holds one byte instead: past the end of any record, so every
 * reader counts the slot as lending nothing (rather than reading only the records others put in its lanes). */
static int64_t brec_marker(int entry, int user)
{
    return brec_lane(entry, user, 0) + (int64_t)HAMI_BREC_LANE / 2;
}

int vg_board_rec_put(const struct hami_board_gpu *g, int user, int *lane, uint64_t *held, uint64_t *claim,
                     uint64_t len)
{
    int e = board_entry(g);
    if (e < 0 || user < 0 || user >= HAMI_BOARD_USERS)
        return -1;
    if (*lane == BREC_MARKED && !len) {
        vg_lane_set(board_fd, F_UNLCK, brec_marker(e, user), 1);
        *lane = -1;
        return 0;
    }
    if (*held && *lane >= 0) {
        int64_t at = brec_lane(e, user, *lane);
        if (len == *held)
            return 0;
        if (len < *held) {  /* shorter, or dropped (0): the tail is given back, nothing can refuse that */
            vg_lane_set(board_fd, F_UNLCK, at + (int64_t)len, (int64_t)(*held - len));
            if (!len && *claim == BCTX_POISONED)  /* the record goes: its context claim with it */
                vg_lane_set(board_fd, F_UNLCK, bctx_poison(e, user, *lane), 1);
            else if (!len && *claim)
                vg_lane_set(board_fd, F_UNLCK, bctx_lane(e, user, *lane), (int64_t)*claim);
            if (!len)
                *claim = 0;
            *held = len;
            return 0;
        }
        if (vg_lane_set(board_fd, F_WRLCK, at, (int64_t)len) == 0) {
            *held = len;
            return 0;
        }
        /* another owner locked bytes inside this lane: every reader counts this slot as lending nothing until it
         * goes (a lock not at a lane's start), so the old, shorter record misleads nobody */
        vg_log_once(VG_WARN, "brec-blocked", "node board %s: another process holds a lock inside this process's "
                                             "record lane: its container lends nothing while it is there",
                    vg_cfg.board_path);
        return -1;
    }
    if (!len)
        return 0;
    int marked = *lane == BREC_MARKED;
    if (marked) {
        /* all lanes were taken: scan them again at most every 100 ms, not on each call (the watcher's every 100 us
         * would be ~330k fcntl calls a second against a tenant who keeps them locked); the marker stays held */
        static int64_t next_scan;
        int64_t now = vg_now_ns();
        if (now < __atomic_load_n(&next_scan, __ATOMIC_RELAXED))
            return -1;
        __atomic_store_n(&next_scan, now + 100000000LL, __ATOMIC_RELAXED);
    }
    int from = *lane >= 0 ? *lane : (int)(getpid() % HAMI_BREC_PROCS);
    for (int k = 0; k < HAMI_BREC_PROCS; k++) {
        int p = (from + k) % HAMI_BREC_PROCS;
        if (vg_lane_set(board_fd, F_WRLCK, brec_lane(e, user, p), (int64_t)len) == 0) {
            /* the lane's context claim (one context) with it; where somebody holds bytes there already (a claim
             * they put beside this record would be read as its holder's), a byte at the lane's end instead: a lock
             * there is no claim a holder writes, so every reader counts the slot as one context */
            if (vg_lane_set(board_fd, F_WRLCK, bctx_lane(e, user, p), 100) == 0) {
                *claim = 100;
            } else {
                vg_lane_set(board_fd, F_WRLCK, bctx_poison(e, user, p), 1);
                *claim = BCTX_POISONED;
                vg_log_once(VG_WARN, "bctx-taken", "node board %s: another process holds the context claim beside "
                                                   "this process's record: its container counts as one context",
                            vg_cfg.board_path);
            }
            if (marked)
                vg_lane_set(board_fd, F_UNLCK, brec_marker(e, user), 1);
            *lane = p;
            *held = len;
            return 0;
        }
    }
    /* every lane taken (32 processes of the container, or locks somebody put there while it was idle): the
     * marker makes the slot lend nothing, whatever those locks say; if another owner holds the marker's byte, that
     * lock reads the same way */
    vg_lane_set(board_fd, F_WRLCK, brec_marker(e, user), 1);
    *lane = BREC_MARKED;
    vg_log_once(VG_WARN, "brec-full", "node board %s: all %d record lanes of this container's user slot are "
                                      "held by other processes: it publishes no record and its neighbours count "
                                      "it as lending nothing", vg_cfg.board_path, HAMI_BREC_PROCS);
    return -1;
}

struct brec_walk {
    int64_t lo;
    struct vg_brec *rec;
};

static void brec_mark_bad(struct vg_brec *rec, int64_t from, int64_t to)
{
    for (int64_t u = from; u <= to && u < HAMI_BOARD_USERS; u++) {
        rec[u].present = 1;
        rec[u].bad = 1;
    }
}

static void brec_each(int64_t s, int64_t e, void *arg)
{
    struct brec_walk *w = arg;
    int64_t rel = s - w->lo, last = e - 1 - w->lo;
    int64_t u = rel / BREC_SLOT;
    int limit, held;
    int32_t frac, queued, solo;
    uint64_t len = (uint64_t)(e - s);
    int turns = len > HAMI_BREC_TURN && ((len - 1) & HAMI_BREC_TURN);  /* HAMI_SM_TURNS (turns.c): the bit above */
    if (rel % (int64_t)HAMI_BREC_LANE || rel / (int64_t)HAMI_BREC_LANE != last / (int64_t)HAMI_BREC_LANE ||
        !hami_vgpu_brec_unpack(turns ? len - HAMI_BREC_TURN : len, &limit, &held, &frac, &queued, &solo)) {
        brec_mark_bad(w->rec, u, last / BREC_SLOT);  /* not a record any holder writes: lends nothing */
        return;
    }
    struct vg_brec *r = &w->rec[u];
    r->lanes |= 1u << (rel % BREC_SLOT / (int64_t)HAMI_BREC_LANE);
    if (!r->present) {
        r->present = 1;
        r->limit_lo = r->limit_hi = limit;
    }
    r->limit_lo = limit < r->limit_lo ? limit : r->limit_lo;
    r->limit_hi = limit > r->limit_hi ? limit : r->limit_hi;
    r->held |= held;
    r->turns |= turns;
    r->frac_bp = frac > r->frac_bp ? frac : r->frac_bp;
    r->queued_bp = queued > r->queued_bp ? queued : r->queued_bp;
    r->solo_bp = solo > r->solo_bp ? solo : r->solo_bp;
}

int vg_board_rec_read(const struct hami_board_gpu *g, struct vg_brec rec[HAMI_BOARD_USERS])
{
    memset(rec, 0, sizeof(*rec) * HAMI_BOARD_USERS);
    int e = board_entry(g);
    if (e < 0)
        return -1;
    struct brec_walk w = {brec_lane(e, 0, 0), rec};
    errno = 0;
    int n = vg_lane_each(board_fd, w.lo, w.lo + HAMI_BOARD_USERS * BREC_SLOT, BREC_MAX_LOCKS, brec_each, &w);
    if (n < 0)
        vg_log_once(VG_ERROR, "brec-read", "node board %s: its records cannot be read (%s): every neighbour "
                                           "lends nothing and counts as active", vg_cfg.board_path,
                    errno ? strerror(errno) : "more than 48 locks on one GPU entry: forged");
    return n;
}

/* ---- context claims (layout: hami_region.h, HAMI_BCTX_*) ----
 * How many contexts a container keeps busy on the GPU, for its neighbours' processor-sharing charge
 * (throttle.c hami_vgpu_ps_charge_w_ns): each of its record holders claims it beside its record, and a reader takes
 * the lowest claim of the holders, at most one context per record. A tenant can add locks but not shorten or drop
 * another's: beside a real holder a forged claim can only lower the count (its neighbours charged more), and
 * without records there is nothing to count beyond one. */

int vg_board_ctx_put(const struct hami_board_gpu *g, int user, int lane, uint64_t *held, uint64_t len)
{
    int e = board_entry(g);
    if (e < 0 || user < 0 || user >= HAMI_BOARD_USERS || lane < 0 || lane >= HAMI_BREC_PROCS || *held < 100 ||
        len < 100 || len > BCTX_MAX)
        return -1;  /* only a claim that its record took (vg_board_rec_put) changes here */
    int64_t at = bctx_lane(e, user, lane);
    if (len < *held) {  /* shorter: the tail is given back */
        vg_lane_set(board_fd, F_UNLCK, at + (int64_t)len, (int64_t)(*held - len));
        *held = len;
        return 0;
    }
    if (len == *held || vg_lane_set(board_fd, F_WRLCK, at, (int64_t)len) == 0) {
        *held = len;
        return 0;
    }
    return -1;  /* another owner holds bytes there: its lock makes the claim lower (or bad), never higher */
}

/* The claim of the record holder of lane p: the one lock at the claim lane's start, 100..BCTX_MAX long, with nothing
 * else in the lane; 0 for anything else (none, the holder's poison byte, a forged lock elsewhere in the lane). */
static int32_t bctx_claim(int e, int user, int p)
{
    int64_t lo = bctx_lane(e, user, p), hi = lo + (int64_t)HAMI_BCTX_LANE, s, end;
    if (vg_lane_test(board_fd, lo, hi - lo, &s, &end) != 1 || s != lo || end - s < 100 || end - s > BCTX_MAX)
        return 0;
    return vg_lane_test(board_fd, end, hi - end, &s, &s) == 0 ? (int32_t)(end - lo) : 0;
}

int32_t vg_board_ctx_read(const struct hami_board_gpu *g, int user, const struct vg_brec *r)
{
    int e = board_entry(g);
    int holders = __builtin_popcount(r->lanes);
    if (e < 0 || user < 0 || user >= HAMI_BOARD_USERS || !r->present || r->bad || holders < 2)
        return 100;
    /* two kernel queries per holder at most, and none past the first holder without a claim of its own */
    int32_t c = 100 * holders;
    for (int p = 0; p < HAMI_BREC_PROCS && c > 100; p++) {
        if (!(r->lanes & (1u << p)))
            continue;
        int32_t k = bctx_claim(e, user, p);
        c = k < c ? k : c;
    }
    return c < 100 ? 100 : c;
}
