/* The cost of the clock reads the interposer's launch path makes, on the host it runs on (a VM's clock
 * source can turn clock_gettime into a system call). Build and run: cc -O2 -o /tmp/hc host_clock.c && /tmp/hc
 * Prints ns per call for CLOCK_MONOTONIC and CLOCK_MONOTONIC_COARSE and the coarse clock's resolution. */
#include <stdio.h>
#include <time.h>

static double per_call_ns(clockid_t id, long n)
{
    struct timespec a, b, t;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long sink = 0;
    for (long i = 0; i < n; i++) {
        clock_gettime(id, &t);
        sink += t.tv_nsec;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (sink == 42)
        puts("");
    return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
}

int main(void)
{
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    for (int round = 0; round < 3; round++)
        printf("round %d: CLOCK_MONOTONIC %.1f ns/call, CLOCK_MONOTONIC_COARSE %.1f ns/call (resolution %ld ns)\n",
               round, per_call_ns(CLOCK_MONOTONIC, 2000000), per_call_ns(CLOCK_MONOTONIC_COARSE, 2000000),
               res.tv_nsec);
    return 0;
}
