/* lanes.h - kernel record locks on the region file as the unforgeable record of who holds what (lanes.c). */
#ifndef HAMI_LANES_H
#define HAMI_LANES_H
#include <stdint.h>

#include "hami_region.h"

/* Start of slot `slot`'s lane on device `dev`, and the most bytes one lane can publish (128 TiB). */
#define VG_LANE(dev, slot) \
    ((int64_t)HAMI_LOCK_USE_BASE + (int64_t)(dev) * (int64_t)HAMI_LOCK_DEV_SPAN + (int64_t)(slot) * (int64_t)HAMI_LOCK_LANE)
#define VG_LANE_MAX ((uint64_t)HAMI_LOCK_LANE)
#define VG_DEV_SPAN(dev) ((int64_t)HAMI_LOCK_USE_BASE + (int64_t)(dev) * (int64_t)HAMI_LOCK_DEV_SPAN)

/* F_WRLCK / F_UNLCK [start, start+len) for this open file description; 0 or -1 (errno). Never blocks. */
int vg_lane_set(int fd, short type, int64_t start, int64_t len);
/* 1 and the extent of one lock another owner holds overlapping [start, start+len), 0 when none, -1 on error. */
int vg_lane_test(int fd, int64_t start, int64_t len, int64_t *got_start, int64_t *got_end);
/* Takes byte `byte` as a POSIX write lock (slot ownership: other processes can read the owner's pid). */
int vg_owner_take(int fd, int64_t byte);
int vg_owner_drop(int fd, int64_t byte);
int vg_lane_test_pid(int fd, int64_t start, int64_t len, int64_t *got_start, int64_t *got_end, int *pid);
/* Like vg_lane_held, calling each(start, end, pid) for every lock found (clipped to [lo, hi)). */
uint64_t vg_lane_walk(int fd, int64_t lo, int64_t hi, uint64_t stop_above, int *queries,
                      void (*each)(int64_t s, int64_t e, int pid, void *arg), void *arg);
/* Calls each(start, end) for every lock other owners hold in [lo, hi) (clipped), splitting around each one found
 * as vg_lane_walk does; returns the number found, or -1 when the kernel cannot be read, answers outside the
 * question, or more than max_locks are there (the caller fails closed). Logs nothing. */
int vg_lane_each(int fd, int64_t lo, int64_t hi, int max_locks, void (*each)(int64_t s, int64_t e, void *arg),
                 void *arg);
/* Bytes of [lo, hi) locked by other owners (saturating; UINT64_MAX when the kernel cannot be read or the
 * span holds absurdly many locks). Stops early once the sum exceeds stop_above. */
uint64_t vg_lane_held(int fd, int64_t lo, int64_t hi, uint64_t stop_above, int *queries);

#endif
