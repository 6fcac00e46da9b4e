/* clock.h — the library's one monotonic clock (internal: not installed).
 *
 * ft__now_mono: seconds on CLOCK_MONOTONIC (not the time of day: it never jumps back), for durations —
 * request latencies and deadlines in the server, step and communication times in the trainer:
 *
 *     double t0 = ft__now_mono();
 *     ...;
 *     double dt = ft__now_mono() - t0;   // seconds
 *
 * Thread-safe (clock_gettime). */
#ifndef FT_CORE_CLOCK_H
#define FT_CORE_CLOCK_H
double ft__now_mono(void);
#endif
