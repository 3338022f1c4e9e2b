/* log.c - one-line diagnostics on stderr, filtered by LIBCUDA_LOG_LEVEL (HAMi-core's levels).
 *
 * Refusals (an allocation over the limit, a tampered counter, a future timestamp) can repeat on every
 * call; vg_log_once prints each distinct one a single time per process so a tenant's loop cannot flood
 * the log or slow the process down with writes. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vgpu.h"

int vg_log_level = VG_MSG;

static void vlog_line(int level, const char *fmt, va_list ap)
{
    static const char *names[] = {"ERROR", "WARN", "MSG", "INFO", "DEBUG"};
    char line[4096];  /* the launch stats line runs to ~1,800 characters on the GPU (review24: 2,048 cut its tail) */
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "[HAMI-vgpu %s pid %d] %s\n", names[level], (int)getpid(), line);
}

void vg_log(int level, const char *fmt, ...)
{
    if (level > vg_log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog_line(level, fmt, ap);
    va_end(ap);
}

#define ONCE_SLOTS 256
static uint64_t once_seen[ONCE_SLOTS];
static int once_count;
static pthread_mutex_t once_mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

int vg_log_once(int level, const char *key, const char *fmt, ...)
{
    uint64_t h = key_hash(key);
    pthread_mutex_lock(&once_mu);
    int seen = 0;
    for (int i = 0; i < once_count && !seen; i++)
        seen = once_seen[i] == h;
    if (!seen && once_count < ONCE_SLOTS)
        once_seen[once_count++] = h;
    else if (!seen)
        seen = 1;  /* table full: stay quiet rather than log on every call */
    pthread_mutex_unlock(&once_mu);
    if (seen || level > vg_log_level)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vlog_line(level, fmt, ap);
    va_end(ap);
    return 1;
}

void vg_log_once_reset(void)
{
    pthread_mutex_lock(&once_mu);
    once_count = 0;
    pthread_mutex_unlock(&once_mu);
}
