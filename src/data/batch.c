/* batch.c — examples -> batches of B rows x T tokens for ft_model_forward.
 *
 * A unit is an example, or a window of one longer than T (windows of T tokens, consecutive windows
 * sharing one token so every target is learned once; windows with no target are skipped).
 * Padded mode: one unit per row. Packed mode: units go into rows once, at creation, by
 * first-fit-decreasing (longest first, each into the first row with room; a segment tree over the
 * rows' free space finds that row in O(log rows)). An epoch is a permutation of the rows (packed) or
 * units (padded) that depends only on (seed, epoch); batch k takes items [k*B, k*B + B) of it. */
#include "data/data_internal.h"
#include "finetune/ops.h"
#include "finetune/rng.h"
#include "core/hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct unit { int64_t ex; int32_t start, len; } unit;

struct ft_batcher {
    const ft_dataset *ds;
    ft_batcher_options o;
    unit    *units;   int64_t n_units;
    int64_t *row_off;                 /* packed: row r holds row_units[row_off[r] .. row_off[r+1]) */
    int64_t *row_units; int64_t n_rows;
    int64_t  n_items;                 /* what an epoch permutes: units (padded) or rows (packed) */
    int64_t  targets;                 /* learned targets in one epoch */
    int     *perm;                    /* the order of the cached epoch */
    uint64_t perm_seed;
    int64_t  perm_epoch;              /* -1: none cached */
    int      pad_id;
};

int ft_batch_alloc(ft_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    if (B < 1 || T < 2) return ft_error(FT_ERR_INVALID, "ft_batch_alloc: B %d and T %d must be >= 1 and >= 2", B, T);
    size_t n = (size_t)B * (size_t)T;
    b->ids = malloc(n * sizeof *b->ids);
    b->targets = malloc(n * sizeof *b->targets);
    b->pos = malloc(n * sizeof *b->pos);
    b->seg = malloc(n * sizeof *b->seg);
    if (!b->ids || !b->targets || !b->pos || !b->seg) {
        ft_batch_free(b);
        return ft_error(FT_ERR_NOMEM, "ft_batch_alloc: cannot allocate %d x %d", B, T);
    }
    b->B = B;
    b->T = T;
    b->cap = B * T;
    return FT_OK;
}

void ft_batch_free(ft_batch *b) {
    if (!b) return;
    free(b->ids);
    free(b->targets);
    free(b->pos);
    free(b->seg);
    memset(b, 0, sizeof *b);
}

ft_batcher_options ft_batcher_default_options(void) {
    ft_batcher_options o;
    memset(&o, 0, sizeof o);
    o.mode = FT_BATCH_PADDED;
    o.shuffle = 1;
    o.pad_multiple = 8;
    o.pad_id = -1;
    return o;
}

ft_batch_iter ft_batch_iter_start(uint64_t seed) {
    ft_batch_iter it = {seed, 0, 0};
    return it;
}

void ft_batcher_free(ft_batcher *b) {
    if (!b) return;
    free(b->units);
    free(b->row_off);
    free(b->row_units);
    free(b->perm);
    free(b);
}

/* targets a unit holds: learned tokens at window positions 1..len-1 */
static int unit_targets(const ft_dataset *ds, const unit *u) {
    const uint8_t *L;
    ft_dataset_example(ds, u->ex, NULL, &L, NULL);
    int k = 0;
    for (int j = 1; j < u->len; j++) k += L[u->start + j];
    return k;
}

static int cmp_unit_desc(const void *a, const void *b, void *ctx) {
    const unit *U = ctx;
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    if (U[x].len != U[y].len) return U[y].len - U[x].len;
    return (x > y) - (x < y);
}

/* first-fit-decreasing packing of the units into rows of T */
static int pack(ft_batcher *b) {
    int64_t n = b->n_units;
    int T = b->o.T;
    int64_t *order = malloc((size_t)n * sizeof *order);
    int64_t *row_of = malloc((size_t)n * sizeof *row_of);
    int64_t leaves = 1;
    while (leaves < n) leaves *= 2;
    int *tree = malloc((size_t)(2 * leaves) * sizeof *tree);  /* max free space in each subtree */
    int rc = FT_OK;
    if (!order || !row_of || !tree) { rc = ft_error(FT_ERR_NOMEM, "data: out of memory (packing)"); goto done; }
    for (int64_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, cmp_unit_desc, b->units);
    for (int64_t i = 0; i < 2 * leaves; i++) tree[i] = T;
    int64_t n_rows = 0;
    for (int64_t k = 0; k < n; k++) {
        int len = b->units[order[k]].len;
        int64_t node = 1;
        while (node < leaves) node = tree[2 * node] >= len ? 2 * node : 2 * node + 1;
        int64_t row = node - leaves;
        row_of[order[k]] = row;
        if (row + 1 > n_rows) n_rows = row + 1;
        tree[node] -= len;
        for (node /= 2; node >= 1; node /= 2)
            tree[node] = tree[2 * node] > tree[2 * node + 1] ? tree[2 * node] : tree[2 * node + 1];
    }
    b->n_rows = n_rows;
    b->row_off = calloc((size_t)n_rows + 1, sizeof *b->row_off);
    b->row_units = malloc((size_t)n * sizeof *b->row_units);
    if (!b->row_off || !b->row_units) { rc = ft_error(FT_ERR_NOMEM, "data: out of memory (packing)"); goto done; }
    for (int64_t i = 0; i < n; i++) b->row_off[row_of[i] + 1]++;
    for (int64_t r = 0; r < n_rows; r++) b->row_off[r + 1] += b->row_off[r];
    int64_t *fill = malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof *fill);
    if (!fill) { rc = ft_error(FT_ERR_NOMEM, "data: out of memory (packing)"); goto done; }
    memcpy(fill, b->row_off, (size_t)n_rows * sizeof *fill);
    for (int64_t k = 0; k < n; k++) {  /* within a row: the order of placement */
        int64_t u = order[k];
        b->row_units[fill[row_of[u]]++] = u;
    }
    free(fill);
done:
    free(order);
    free(row_of);
    free(tree);
    return rc;
}

int ft_batcher_create(ft_batcher **out, const ft_dataset *ds, const int64_t *idx, int64_t n,
                      const ft_batcher_options *opt) {
    *out = NULL;
    if (!ds || !opt || (n > 0 && !idx)) return ft_error(FT_ERR_INVALID, "ft_batcher_create: missing dataset, options or indices");
    ft_batcher_options o = *opt;
    if (o.B < 1 || o.T < 2) return ft_error(FT_ERR_INVALID, "batcher: B %d must be >= 1 and T %d >= 2", o.B, o.T);
    if (o.mode != FT_BATCH_PADDED && o.mode != FT_BATCH_PACKED) return ft_error(FT_ERR_INVALID, "batcher: bad mode %d", o.mode);
    if (o.pad_multiple < 1) o.pad_multiple = 1;
    if (n <= 0) return ft_error(FT_ERR_RANGE, "batcher: no examples");
    ft_batcher *b = calloc(1, sizeof *b);
    if (!b) return ft_error(FT_ERR_NOMEM, "batcher: out of memory");
    b->ds = ds;
    b->o = o;
    b->perm_epoch = -1;
    b->pad_id = o.pad_id >= 0 ? o.pad_id : ft_dataset_pad_id(ds);
    int64_t cap = 0;
    int rc = FT_OK;
    for (int64_t i = 0; i < n && rc == FT_OK; i++) {
        int len;
        if ((rc = ft_dataset_example(ds, idx[i], NULL, NULL, &len)) < 0) break;
        for (int64_t s = 0;; s += o.T - 1) {
            unit u = {idx[i], (int32_t)s, (int32_t)(len - s < o.T ? len - s : o.T)};
            int t = unit_targets(ds, &u);
            if (t > 0) {
                if ((rc = ft__data_reserve((void **)&b->units, sizeof *b->units, b->n_units + 1, &cap)) < 0) break;
                b->units[b->n_units++] = u;
                b->targets += t;
            }
            if (s + u.len >= len) break;
        }
    }
    if (rc == FT_OK && b->n_units == 0) rc = ft_error(FT_ERR_RANGE, "batcher: the examples hold no learned target");
    if (rc == FT_OK && o.mode == FT_BATCH_PACKED) rc = pack(b);
    if (rc == FT_OK) {
        b->n_items = o.mode == FT_BATCH_PACKED ? b->n_rows : b->n_units;
        if (b->n_items > INT32_MAX) rc = ft_error(FT_ERR_RANGE, "batcher: too many rows (%lld)", (long long)b->n_items);
        else if (!(b->perm = malloc((size_t)b->n_items * sizeof *b->perm))) rc = ft_error(FT_ERR_NOMEM, "batcher: out of memory");
        else if (ft_batcher_batches_per_epoch(b) == 0)
            rc = ft_error(FT_ERR_RANGE, "batcher: %lld rows are fewer than one batch of %d with drop_last", (long long)b->n_items, o.B);
    }
    if (rc < 0) { ft_batcher_free(b); return rc; }
    *out = b;
    return FT_OK;
}

int64_t ft_batcher_batches_per_epoch(const ft_batcher *b) {
    return b->o.drop_last ? b->n_items / b->o.B : (b->n_items + b->o.B - 1) / b->o.B;
}
int64_t ft_batcher_units(const ft_batcher *b) { return b->n_units; }
int64_t ft_batcher_rows(const ft_batcher *b) { return b->o.mode == FT_BATCH_PACKED ? b->n_rows : b->n_units; }
int64_t ft_batcher_targets_per_epoch(const ft_batcher *b) { return b->targets; }

static void epoch_order(ft_batcher *b, uint64_t seed, int64_t epoch) {
    if (b->perm_epoch == epoch && b->perm_seed == seed) return;
    for (int64_t i = 0; i < b->n_items; i++) b->perm[i] = (int)i;
    if (b->o.shuffle) {
        ft_rng r;
        ft_rng_seed(&r, ft__mix64(seed ^ ft__mix64((uint64_t)epoch + 0x632BE59BD9B4E019ull)));
        ft_rng_shuffle_int(&r, b->perm, (int)b->n_items);
    }
    b->perm_seed = seed;
    b->perm_epoch = epoch;
}

/* writes unit u at row offset `at` of row base (T_b columns); returns its target count */
static int place(const ft_batcher *b, ft_batch *out, int64_t base, int at, const unit *u, int segid) {
    const int *ids;
    const uint8_t *L;
    ft_dataset_example(b->ds, u->ex, &ids, &L, NULL);
    ids += u->start;
    L += u->start;
    int k = 0;
    for (int j = 0; j < u->len; j++) {
        int64_t p = base + at + j;
        out->ids[p] = ids[j];
        out->pos[p] = j;
        out->seg[p] = segid;
        int learned = j + 1 < u->len && L[j + 1];
        out->targets[p] = learned ? ids[j + 1] : FT_IGNORE_INDEX;
        k += learned;
    }
    return k;
}

static void pad_tail(const ft_batcher *b, ft_batch *out, int64_t base, int from, int T, int segid) {
    for (int j = from; j < T; j++) {
        out->ids[base + j] = b->pad_id;
        out->targets[base + j] = FT_IGNORE_INDEX;
        out->pos[base + j] = j - from;
        out->seg[base + j] = segid;
    }
}

int ft_batcher_next(ft_batcher *b, ft_batch_iter *it, ft_batch *out) {
    const int B = b->o.B;
    int64_t nb = ft_batcher_batches_per_epoch(b);
    if (!out->ids || out->cap < B * b->o.T)
        return ft_error(FT_ERR_INVALID, "ft_batcher_next: the batch holds %d ints, %d x %d needed (ft_batch_alloc)",
                        out->cap, B, b->o.T);
    if (it->epoch < 0 || it->cursor < 0)
        return ft_error(FT_ERR_INVALID, "ft_batcher_next: bad iterator state (epoch %lld, cursor %lld)",
                        (long long)it->epoch, (long long)it->cursor);
    if (it->cursor >= nb) { it->epoch++; it->cursor = 0; }
    epoch_order(b, it->seed, it->epoch);
    int64_t first = it->cursor * B;
    int rows = (int)(b->n_items - first < B ? b->n_items - first : B);
    int packed = b->o.mode == FT_BATCH_PACKED;
    /* the row length of this batch */
    int T = b->o.T;
    if (b->o.dynamic_pad) {
        int longest = 2;
        for (int r = 0; r < rows; r++) {
            int64_t item = b->perm[first + r];
            int used = 0;
            if (packed) for (int64_t k = b->row_off[item]; k < b->row_off[item + 1]; k++) used += b->units[b->row_units[k]].len;
            else used = b->units[item].len;
            if (used > longest) longest = used;
        }
        int m = b->o.pad_multiple;
        T = (longest + m - 1) / m * m;
        if (T > b->o.T) T = b->o.T;
    }
    out->B = B;
    out->T = T;
    out->n_targets = 0;
    out->n_examples = 0;
    for (int r = 0; r < B; r++) {
        int64_t base = (int64_t)r * T;
        if (r >= rows) { pad_tail(b, out, base, 0, T, 0); continue; }
        int64_t item = b->perm[first + r];
        int at = 0, seg = 0;
        if (packed) {
            for (int64_t k = b->row_off[item]; k < b->row_off[item + 1]; k++) {
                const unit *u = &b->units[b->row_units[k]];
                out->n_targets += place(b, out, base, at, u, seg++);
                at += u->len;
            }
        } else {
            out->n_targets += place(b, out, base, 0, &b->units[item], seg++);
            at = b->units[item].len;
        }
        out->n_examples += seg;
        pad_tail(b, out, base, at, T, seg);
    }
    it->cursor++;
    return FT_OK;
}
