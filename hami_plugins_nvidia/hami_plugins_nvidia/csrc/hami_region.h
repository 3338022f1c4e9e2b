/*
 * hami_region.h - the ONE declaration of the memory layouts shared between processes.
 *
 * Two files are mapped MAP_SHARED by every process that preloads libvgpu.so:
 *   - the container region (CUDA_DEVICE_MEMORY_SHARED_CACHE): limits, per-process slots with
 *     per-device usage, and the container's GPU-time token bucket;
 *   - the node board (HAMI_NODE_BOARD, default /tmp/vgpulock/hami-node-board): one entry per
 *     physical GPU, shared by all containers on the node, used for the time-share gate between
 *     SM-limited containers and for task priority.
 *
 * The text between the CDEF markers is fed verbatim to cffi's cdef() by interposer/region.py,
 * so it may hold only plain structs and integer #defines. Change HAMI_REGION_VERSION when the
 * layout changes: a process finding another version reports the file and does not trust it.
 */
#ifndef HAMI_REGION_H
#define HAMI_REGION_H
#include <stdint.h>

/* CDEF-BEGIN */
#define HAMI_REGION_MAGIC 0x48564750
#define HAMI_REGION_VERSION 3        /* 2: the sibling busy intervals (struct hami_sibling); 3: owed_ns */
#define HAMI_MAX_DEVICES 16
#define HAMI_MAX_PROCS 1024
#define HAMI_BOARD_MAGIC 0x48425244
#define HAMI_BOARD_VERSION 7
#define HAMI_BOARD_USERS 16
#define HAMI_BOARD_GPUS 64
#define HAMI_PRIORITY_LEVELS 8
#define HAMI_SIBLINGS 16           /* processes of one container publishing busy intervals per device */
#define HAMI_SIB_RECENT 32         /* closed busy intervals kept per sibling */
#define HAMI_BOARD_RECENT 32       /* closed busy intervals kept per user (processor-sharing charge) */
/* Kernel-held record locks (fcntl OFD locks) on the region file, at offsets far past its end: nothing is
 * stored there, the kernel only records who holds which bytes, and releases them when the holder dies.
 * A tenant that rewrites the file cannot change them. Byte OWN_BASE + i is write-locked by the process
 * using slot i (one owner per slot, liveness without trusting pids). Bytes
 * [USE_BASE + dev * DEV_SPAN + i * LANE, + n) are write-locked by that process when it holds n bytes on
 * device dev: the container's usage is the sum of the locks the kernel reports in a device's span. A process that
 * measures its launches on device dev write-locks one byte of [SIB_BASE + dev * MAX_PROCS, + MAX_PROCS) with a
 * POSIX lock, whose owner the kernel names: its siblings count it by owner (siblings.c sib_bound). */
#define HAMI_LOCK_OWN_BASE 0x2000000000000000
#define HAMI_LOCK_SIB_BASE 0x3000000000000000
#define HAMI_LOCK_USE_BASE 0x4000000000000000
#define HAMI_LOCK_LANE 0x800000000000
#define HAMI_LOCK_DEV_SPAN 0x200000000000000

/* Board records (version 7, board.c vg_board_rec_*): kernel record locks on the node board file, at offsets far
 * past its end, where each launching process publishes what makes its neighbours lend it less or charge
 * themselves more (its SM limit, whether it was held for credit within 100 ms, its charged and queued fractions
 * and its demand alone) as the length of one write lock (an OFD lock; POSIX where the kernel has none). Entry e's
 * user slot u has HAMI_BREC_PROCS lanes, lane p at HAMI_BREC_BASE + ((e * HAMI_BOARD_USERS + u) * HAMI_BREC_PROCS
 * + p) * HAMI_BREC_LANE; a process holds [lane, lane + 1 + packed) while it is active on that GPU (the readers'
 * own rule) and nothing otherwise. packed = limit | held << 7 | frac << 8 | queued << 18 | solo << 28, the three
 * fractions in 1/10 % rounded down (0..1000). Only the holder can shorten or drop its lock, the kernel drops it
 * when the holder dies, and any other lock in the span reads as a record that lends nothing. */
#define HAMI_BREC_BASE 0x1000000000000000
#define HAMI_BREC_PROCS 32
#define HAMI_BREC_LANE 0x10000000000
#define HAMI_BREC_BITS 38
/* HAMI_SM_TURNS (on unless 0, csrc/turns.c): the record of a process that takes turns has this bit set above the packed
 * fields (a reader of an older build reads it as a record no holder writes: that slot lends nothing) */
#define HAMI_BREC_TURN 0x4000000000
/* Context claims (board.c vg_board_ctx_*, same board, beside the records; old readers never look here): a process of
 * a container with several processes measuring on the GPU that holds its record in lane p of user slot u of entry e
 * also holds [HAMI_BCTX_BASE + ((e * HAMI_BOARD_USERS + u) * HAMI_BREC_PROCS + p) * HAMI_BCTX_LANE, + c), c its
 * container's busy contexts per busy instant over the last 100 ms in 1/100 (100..100 * HAMI_SIBLINGS; 100 alone),
 * taken with its record's lane; where another owner holds bytes there, the lane's last byte instead. A reader
 * counts the container as the lowest claim of its record holders (an absent claim: 100), at most 100 per record,
 * and as 100 when any lock in the slot's claims is no claim (not at a lane's start, or of another length): a lock
 * anyone else adds can only lower it. */
#define HAMI_BCTX_BASE 0x1800000000000000
#define HAMI_BCTX_LANE 0x1000

struct hami_device_info {
    uint64_t limit_bytes;      /* memory limit, 0 = none */
    int32_t sm_limit;          /* 1..100 percent, 100 = none */
    uint32_t limit_sum;        /* hami_limit_sum(): limits without it were not written by the interposer */
    int64_t tokens_ns;         /* shared GPU-time credit of the container (token bucket) */
    int64_t refill_ns;         /* CLOCK_MONOTONIC time of the last refill */
    uint64_t busy_ns;          /* GPU busy time measured with events, all processes */
    uint64_t launches;         /* launches that went through the throttle */
    int64_t last_launch_ns;    /* CLOCK_MONOTONIC time of the last launch */
};

struct hami_proc_slot {
    int32_t pid;
    int32_t state;             /* 0 free, 1 live */
    uint64_t start_ticks;      /* starttime from /proc/<pid>/stat, detects pid reuse */
    uint64_t used[HAMI_MAX_DEVICES];     /* device bytes charged to this process */
    uint64_t busy_ns[HAMI_MAX_DEVICES];  /* GPU busy time measured for this process */
    /* version 3: per device, the start (CLOCK_MONOTONIC) of this process's oldest launch that no charge covers yet,
     * 0 = none, and when the work it has queued is expected to end (its own estimate, inflight_ns). Written by its
     * process when they change (region.c vg_owed_publish); whoever clears the slot of a process that died without
     * its exit handlers charges the container that work's wall time from owed_ns to the later of owed_until_ns and
     * the moment it noticed the death, at most HAMI_OWED_MAX_NS (region.c owed_charge). */
    int64_t owed_ns[HAMI_MAX_DEVICES];
    int64_t owed_until_ns[HAMI_MAX_DEVICES];
};
#define HAMI_OWED_MAX_NS 500000000   /* the most one dead process's work is charged per device */

/* One process of the container measuring its launches on a device (siblings.c sib_*): its busy intervals, as it
 * publishes them on the node board for the other containers, so that its siblings charge each instant once
 * between them (processor sharing over the container's contexts too, docs/interposer.md "Several processes in one
 * container"). Written only by the process whose token is in owner; read by its siblings, bounded like the board. */
struct hami_sibling {
    uint64_t owner;            /* the publishing process's token (pid << 32 | random), 0 = free */
    int64_t beat_ns;           /* its last write (CLOCK_MONOTONIC): an entry silent for 2 s may be taken over */
    int64_t since_ns;          /* start of its current or last busy interval */
    int64_t until_ns;          /* end of its last busy interval; the interval is open while until < since */
    int64_t open_ns;           /* while open: the last time it found work of the interval running */
    uint32_t recent_head;      /* next slot of the ring = head % HAMI_SIB_RECENT */
    uint32_t pad;
    int64_t recent_since[HAMI_SIB_RECENT];
    int64_t recent_until[HAMI_SIB_RECENT];   /* 0 while the slot is being written */
};

struct hami_sibling_dev {
    uint32_t mask;             /* bit i: entry i has an owner (a hint: readers skip the others) */
    uint32_t pad;
    struct hami_sibling e[HAMI_SIBLINGS];
};

struct hami_region {
    uint32_t magic;
    uint32_t version;
    uint32_t size;             /* sizeof(struct hami_region) */
    uint32_t header_sum;       /* hami_header_sum() of magic, version, size, container_id */
    uint64_t container_id;     /* random, names the container on the node board */
    int32_t priority;          /* CUDA_TASK_PRIORITY of the creator, 0 = highest */
    uint32_t device_count;
    uint32_t proc_hwm;         /* slots [0, proc_hwm) may be live */
    uint32_t tamper_epoch;     /* a fresh random value each time a process finds the file rewritten */
    uint64_t created_unix_ns;
    struct hami_device_info dev[HAMI_MAX_DEVICES];
    struct hami_proc_slot procs[HAMI_MAX_PROCS];
    struct hami_sibling_dev sib[HAMI_MAX_DEVICES];  /* version 2 */
};

struct hami_board_gpu {
    uint8_t uuid[16];          /* all zero = free entry */
    uint64_t owner;            /* container_id holding the time-share gate, 0 = free */
    int64_t owner_until_ns;    /* the gate may be taken over after this time */
    int64_t waiter_since_ns;   /* another SM-limited container is waiting, 0 = none */
    int64_t prio_active_ns[HAMI_PRIORITY_LEVELS];  /* last launch per priority level */
    uint64_t user_id[HAMI_BOARD_USERS];     /* containers launching on this GPU under the interposer */
    int64_t user_active_ns[HAMI_BOARD_USERS];  /* their last launch or wait for credit (CLOCK_MONOTONIC) */
    int64_t user_busy_ns[HAMI_BOARD_USERS];    /* end of their last busy interval on the GPU (CLOCK_MONOTONIC) */
    int64_t user_since_ns[HAMI_BOARD_USERS];   /* start of their current or last busy interval; an interval
                                                  is still open while user_busy_ns < user_since_ns */
    int64_t user_open_ns[HAMI_BOARD_USERS];    /* while open: the last time its owner found work of the
                                                  interval still running (it is busy up to there, no further) */
    /* lending under GPU_CORE_UTILIZATION_POLICY=default (lending.c note_users, throttle.c hami_vgpu_lent_share):
     * each container's SM limit, its recent charged GPU fraction and when it last waited for credit */
    int32_t user_limit[HAMI_BOARD_USERS];      /* SM limit in percent, 1..100; anything else lends nothing */
    int32_t user_frac_bp[HAMI_BOARD_USERS];    /* charged GPU fraction, decaying average over ~100 ms, in
                                                  hundredths of a percent (0..10000) */
    int64_t user_frac_ns[HAMI_BOARD_USERS];    /* when user_frac_bp was written (CLOCK_MONOTONIC) */
    int64_t user_held_ns[HAMI_BOARD_USERS];    /* its last wait for credit or low-credit request */
    int32_t user_queued_bp[HAMI_BOARD_USERS];  /* share of wall time it had work on the GPU, decaying average
                                                  like user_frac_bp, 1/100 % (0..10000) */
    /* each user's last HAMI_BOARD_RECENT closed busy intervals, a ring (next slot = head % RECENT): a
     * neighbour's charge span (a kernel of milliseconds) can cover several short busy periods of a
     * launch-bound tenant, and the current interval alone would hide all but the last (over-charge) */
    uint32_t user_recent_head[HAMI_BOARD_USERS];
    int64_t user_recent_since[HAMI_BOARD_USERS][HAMI_BOARD_RECENT];
    int64_t user_recent_until[HAMI_BOARD_USERS][HAMI_BOARD_RECENT];  /* 0 while the slot is being written */
    /* switch charging (launch_int.h switch_charged): its demand alone, estimated from its own launches while capped
     * and measured precisely, 1/100 % (0..10000; 0 = not measured) */
    int32_t user_solo_bp[HAMI_BOARD_USERS];
    /* time slices: the start of its current interval when that interval began with a start mark that waited
     * (its context took the GPU from another one, whose chained work then waits: charge.c taken_at), else 0 */
    int64_t user_took_ns[HAMI_BOARD_USERS];
};

struct hami_board {
    uint32_t magic;
    uint32_t version;
    uint32_t size;
    uint32_t count;
    struct hami_board_gpu gpu[HAMI_BOARD_GPUS];
};
/* CDEF-END */

/* FNV-1a over the identifying header fields: a file with the right magic but another origin fails it. */
static inline uint32_t hami_header_sum(const struct hami_region *r)
{
    uint64_t words[4] = {r->magic, r->version, r->size, r->container_id};
    uint32_t h = 2166136261u;
    const uint8_t *p = (const uint8_t *)words;
    for (unsigned i = 0; i < sizeof(words); i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* A cheap mix over one device's limits and the container: limits whose sum does not match were not written
 * by a process of this container (garbage or a partial rewrite) and are never adopted. */
static inline uint32_t hami_limit_sum(uint64_t limit_bytes, int32_t sm_limit, uint32_t dev, uint64_t container_id)
{
    uint64_t h = (limit_bytes * 0x9E3779B97F4A7C15ULL) ^ (((uint64_t)(uint32_t)sm_limit << 32) | dev) ^ container_id;
    h ^= h >> 31;
    h *= 0xff51afd7ed558ccdULL;
    return (uint32_t)(h >> 32);
}

#endif
