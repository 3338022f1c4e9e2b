/* log.c - one-line diagnostics on stderr, filtered by LIBCUDA_LOG_LEVEL (HAMi-core's levels). */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "vgpu.h"

int vg_log_level = VG_MSG;

void vg_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "MSG", "INFO", "DEBUG"};
    if (level > vg_log_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "[HAMI-vgpu %s pid %d] %s\n", names[level], (int)getpid(), line);
}
