/* classify_encode.c — encoder inputs for classification: pairs, longest_first truncation, padded batches. */
#include "finetune/classify_data.h"
#include "finetune/status.h"
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

/* HF tokenizers' LongestFirst: the shorter sequence is kept whole when the longer can keep at least
 * as many; otherwise both get max/2 and the (originally) longer one the odd token. */
static void longest_first(int *n1, int *n2, int max) {
    if (*n1 + *n2 <= max) return;
    int swap = *n1 > *n2;
    int a = swap ? *n2 : *n1, b = swap ? *n1 : *n2;
    if (a > max) b = a;
    else b = a > max - a ? a : max - a;
    if (a + b > max) { a = max / 2; b = a + max % 2; }
    *n1 = swap ? b : a;
    *n2 = swap ? a : b;
}

int ft_cls_encode_one(const ft_tokenizer *tok, const char *a, const char *b, int max_len,
                      int **ids, int **type_ids, int *n, int *truncated) {
    *ids = NULL;
    if (type_ids) *type_ids = NULL;
    *n = 0;
    if (truncated) *truncated = 0;
    if (max_len <= 0) max_len = ft_tokenizer_model_max_length(tok);
    int *ia = NULL, *ib = NULL, na = 0, nb = 0;
    int rc = ft_tokenizer_encode(tok, a, strlen(a), FT_TOK_NO_SPECIAL_PARSE, &ia, &na);
    if (rc == FT_OK && b) rc = ft_tokenizer_encode(tok, b, strlen(b), FT_TOK_NO_SPECIAL_PARSE, &ib, &nb);
    if (rc == FT_OK && max_len > 0) {
        int room = max_len - ft_tokenizer_num_special_tokens(tok, b != NULL);
        if (room < (b ? 2 : 1))
            rc = ft_error(FT_ERR_RANGE, "max_len %d leaves no room for the text after the special tokens", max_len);
        else {
            int ma = na, mb = nb;
            if (b) longest_first(&ma, &mb, room);
            else if (ma > room) ma = room;
            if (truncated) *truncated = (na - ma) + (nb - mb);
            na = ma;
            nb = mb;
        }
    }
    if (rc == FT_OK) rc = ft_tokenizer_build_inputs(tok, ia, na, b ? ib : NULL, nb, ids, type_ids, n);
    free(ia);
    free(ib);
    return rc;
}

void ft_cls_features_free(ft_cls_features *f) {
    if (!f) return;
    free(f->off); free(f->ids); free(f->type_ids); free(f->labels);
    memset(f, 0, sizeof *f);
}

int ft_cls_features_build(ft_cls_features *f, const ft_cls_dataset *ds, const ft_tokenizer *tok, int max_len) {
    memset(f, 0, sizeof *f);
    f->n = ds->n;
    f->off = malloc((size_t)(ds->n + 1) * sizeof *f->off);
    f->labels = malloc((size_t)(ds->n ? ds->n : 1) * sizeof *f->labels);
    if (!f->off || !f->labels) { ft_cls_features_free(f); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    int64_t cap = 0;
    f->off[0] = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        int *ids, *tt, n, cut;
        int rc = ft_cls_encode_one(tok, ds->text[i], ds->pair ? ds->pair[i] : NULL, max_len, &ids, &tt, &n, &cut);
        if (rc < 0) { ft_cls_features_free(f); return ft_error_wrap(rc, "example %lld (line %d)", (long long)i, ds->line[i]); }
        int64_t need = f->off[i] + n;
        if (need > cap) {
            int64_t c = cap ? cap : 1024;
            while (c < need) c *= 2;
            int *a = realloc(f->ids, (size_t)c * sizeof *a);
            if (a) f->ids = a;
            int *b = realloc(f->type_ids, (size_t)c * sizeof *b);
            if (b) f->type_ids = b;
            if (!a || !b) { free(ids); free(tt); ft_cls_features_free(f); return ft_error(FT_ERR_NOMEM, "out of memory"); }
            cap = c;
        }
        memcpy(f->ids + f->off[i], ids, (size_t)n * sizeof *ids);
        memcpy(f->type_ids + f->off[i], tt, (size_t)n * sizeof *tt);
        free(ids);
        free(tt);
        f->off[i + 1] = need;
        f->labels[i] = ds->label[i];
        if (n > f->max_len) f->max_len = n;
        f->truncated += cut > 0;
    }
    return FT_OK;
}

int ft_cls_pad_id(const ft_tokenizer *tok) {
    int p = ft_tokenizer_pad(tok);
    return p >= 0 ? p : 0;
}

int ft_cls_batch_alloc(ft_cls_batch *b, int B, int T) {
    memset(b, 0, sizeof *b);
    if (B <= 0 || T <= 0) return ft_error(FT_ERR_INVALID, "classification batch: B = %d, T = %d", B, T);
    size_t n = (size_t)B * (size_t)T;
    b->ids = malloc(n * sizeof(int));
    b->type_ids = malloc(n * sizeof(int));
    b->mask = malloc(n * sizeof(int));
    b->labels = malloc(n * sizeof(int));
    if (!b->ids || !b->type_ids || !b->mask || !b->labels) { ft_cls_batch_free(b); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    b->cap_B = B;
    b->cap_T = T;
    b->B = B;
    b->T = T;
    return FT_OK;
}

void ft_cls_batch_free(ft_cls_batch *b) {
    if (!b) return;
    free(b->ids); free(b->type_ids); free(b->mask); free(b->labels);
    memset(b, 0, sizeof *b);
}

int ft__cls_fill_rows(ft_cls_batch *b, const int64_t *off, const int *ids, const int *type_ids, int64_t n_ex,
                     const int64_t *idx, int n, int pad_id, int pad_to_T, const char *what) {
    if (n <= 0 || n > b->cap_B) return ft_error(FT_ERR_RANGE, "%s batch: %d rows, capacity %d", what, n, b->cap_B);
    int T = 0;
    for (int r = 0; r < n; r++) {
        if (idx[r] < 0 || idx[r] >= n_ex) return ft_error(FT_ERR_RANGE, "%s batch: example %lld of %lld", what, (long long)idx[r], (long long)n_ex);
        int len = (int)(off[idx[r] + 1] - off[idx[r]]);
        if (len > b->cap_T)
            return ft_error(FT_ERR_RANGE, "%s batch: example %lld has %d tokens, T = %d (encode with max_len <= T)",
                            what, (long long)idx[r], len, b->cap_T);
        if (len > T) T = len;
    }
    if (pad_to_T) T = b->cap_T;
    b->B = n;
    b->T = T;
    for (int r = 0; r < n; r++) {
        int64_t s = off[idx[r]];
        int len = (int)(off[idx[r] + 1] - s);
        int *bi = b->ids + (size_t)r * T, *tt = b->type_ids + (size_t)r * T, *m = b->mask + (size_t)r * T;
        for (int t = 0; t < T; t++) {
            int real = t < len;
            bi[t] = real ? ids[s + t] : pad_id;
            tt[t] = real ? type_ids[s + t] : 0;
            m[t] = real;
        }
    }
    return FT_OK;
}

int ft_cls_batch_fill(ft_cls_batch *b, const ft_cls_features *f, const int64_t *idx, int n, int pad_id, int pad_to_T) {
    FT_TRY(ft__cls_fill_rows(b, f->off, f->ids, f->type_ids, f->n, idx, n, pad_id, pad_to_T, "classification"));
    for (int r = 0; r < n; r++) b->labels[r] = f->labels[idx[r]];
    return FT_OK;
}
