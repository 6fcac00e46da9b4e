/* train_shard.c — data-parallel shares of a global batch: rank r of W takes a contiguous slice of
 * the rows of each global batch. With W = 1 the slice is the whole batch, unchanged. */
#include "trainer_internal.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <string.h>

void ft__shard_rows(int64_t n, int rank, int world, int64_t *first, int64_t *count) {
    if (world <= 1) { *first = 0; *count = n; return; }
    int64_t base = n / world, extra = n % world;
    *first = (int64_t)rank * base + (rank < extra ? rank : extra);
    *count = base + (rank < extra ? 1 : 0);
}

int ft__batch_take_rows(ft_batch *dst, const ft_batch *src, int64_t first, int64_t count) {
    int T = src->T;
    if (first < 0 || count < 0 || first + count > src->B)
        return ft_error(FT_ERR_RANGE, "batch rows [%lld, %lld) outside the %d rows of the batch", (long long)first,
                        (long long)(first + count), src->B);
    if ((int64_t)dst->cap < count * T) return ft_error(FT_ERR_INVALID, "batch holds %d ints, %lld needed", dst->cap, (long long)(count * T));
    size_t off = (size_t)first * (size_t)T, n = (size_t)count * (size_t)T;
    memcpy(dst->ids, src->ids + off, n * sizeof(int));
    memcpy(dst->targets, src->targets + off, n * sizeof(int));
    memcpy(dst->pos, src->pos + off, n * sizeof(int));
    memcpy(dst->seg, src->seg + off, n * sizeof(int));
    dst->B = (int)count;
    dst->T = T;
    dst->n_targets = 0;
    for (size_t i = 0; i < n; i++) dst->n_targets += dst->targets[i] != FT_IGNORE_INDEX;
    /* examples: rows holding at least one position of an example (packed rows count each segment) */
    dst->n_examples = 0;
    for (int64_t r = 0; r < count; r++) {
        const int *sg = dst->seg + r * T, *tg = dst->targets + r * T;
        int last = -1;
        for (int j = 0; j < T; j++)
            if (sg[j] != last && tg[j] != FT_IGNORE_INDEX) { dst->n_examples++; last = sg[j]; }
    }
    return FT_OK;
}

int ft__batcher_shard(ft_batcher *b, uint64_t seed, int64_t epoch, int64_t index, int rank, int world, ft_batch *scratch, ft_batch *out) {
    ft_batch_iter it = {seed, epoch, index};
    if (world <= 1) return ft_batcher_next(b, &it, out);
    if (rank < 0 || rank >= world) return ft_error(FT_ERR_INVALID, "rank %d of %d", rank, world);
    FT_TRY(ft_batcher_next(b, &it, scratch));
    int64_t first, count;
    ft__shard_rows(scratch->B, rank, world, &first, &count);
    return ft__batch_take_rows(out, scratch, first, count);
}
