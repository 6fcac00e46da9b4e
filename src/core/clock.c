/* clock.c — the monotonic clock of clock.h */
#include "core/clock.h"

#include <time.h>

double ft__now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
