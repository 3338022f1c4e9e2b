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

#include "vgpu.h"

static struct hami_board *board;
static int board_fd = -1;
static int board_state;  /* 0 not yet, 1 ok, -1 unavailable */
static pthread_mutex_t board_mu = PTHREAD_MUTEX_INITIALIZER;

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
