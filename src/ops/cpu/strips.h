/* strips.h — private to src/ops/cpu: the column strips of the reductions over rows (bias gradient, the
 * norms' dw / db, GELU backward with its bias). A task owns a strip of columns and streams the rows
 * through it, its accumulators in L1: contiguous reads the prefetcher follows (a block of 64 columns read
 * 256 bytes per row, C floats apart, and ran at a third of the bandwidth). Each column still sums its rows
 * in order 0..N-1, so the bits depend neither on the strip width nor on the thread count. */
#ifndef FT_OPS_CPU_STRIPS_H
#define FT_OPS_CPU_STRIPS_H
#include "ops/cpu/vmath.h"

#include <omp.h>
#include <stddef.h>

/* the strip width for an [N, C] reduction: C split over the threads (one thread below FT_PAR_MIN
 * elements), rounded up to a multiple of 16 floats, at most max_w */
static inline int ft_strip_width(int N, int C, int max_w) {
    int nt = (size_t)N * C >= FT_PAR_MIN ? omp_get_max_threads() : 1;
    int w = (C + nt - 1) / nt;
    w = (w + 15) / 16 * 16;
    return w > max_w ? max_w : w;
}
#endif
