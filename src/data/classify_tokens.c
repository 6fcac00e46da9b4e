/* classify_tokens.c — token-classification features (CoNLL sentences -> aligned ids / labels / word ids)
 * and their padded batches. */
#include "finetune/classify_data.h"
#include "finetune/status.h"
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

void ft_tok_features_free(ft_tok_features *f) {
    if (!f) return;
    free(f->off); free(f->ids); free(f->type_ids); free(f->labels); free(f->word_ids);
    memset(f, 0, sizeof *f);
}

/* Grows the four id arrays of f to hold at least need entries (*cap: their current size). */
static int tok_features_reserve(ft_tok_features *f, int64_t *cap, int64_t need) {
    if (need <= *cap) return FT_OK;
    int64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    int **arr[4] = {&f->ids, &f->type_ids, &f->labels, &f->word_ids};
    for (int k = 0; k < 4; k++) {
        int *p = realloc(*arr[k], (size_t)c * sizeof *p);
        if (!p) return ft_error(FT_ERR_NOMEM, "token classification features: out of memory");
        *arr[k] = p;
    }
    *cap = c;
    return FT_OK;
}

int ft_tok_features_build(ft_tok_features *f, const ft_conll *c, const ft_tokenizer *tok, int max_len) {
    memset(f, 0, sizeof *f);
    if (max_len <= 0) max_len = ft_tokenizer_model_max_length(tok);   /* 0: no limit */
    f->n = c->n_sent;
    f->off = malloc((size_t)(c->n_sent + 1) * sizeof *f->off);
    if (!f->off) return ft_error(FT_ERR_NOMEM, "token classification features: out of memory");
    f->off[0] = 0;
    int64_t cap = 0;
    for (int64_t s = 0; s < c->n_sent; s++) {
        int64_t w0 = c->sent_off[s];
        int n_words = (int)(c->sent_off[s + 1] - w0);
        int *ids, *labels, *wids, n;
        int rc = ft_conll_encode(tok, (const char *const *)c->tokens + w0, c->tags + w0, n_words, max_len,
                                 &ids, &labels, &wids, &n);
        if (rc < 0) {
            int line = n_words > 0 ? c->line[w0] : 0;
            ft_tok_features_free(f);
            return ft_error_wrap(rc, "sentence %lld (line %d)", (long long)s, line);
        }
        int64_t at = f->off[s];
        if ((rc = tok_features_reserve(f, &cap, at + n)) < 0) {
            free(ids); free(labels); free(wids);
            ft_tok_features_free(f);
            return rc;
        }
        int last_word = -1;
        for (int t = 0; t < n; t++) {
            f->ids[at + t] = ids[t];
            f->type_ids[at + t] = 0;              /* one sequence */
            f->labels[at + t] = labels[t];
            f->word_ids[at + t] = wids[t];
            if (wids[t] > last_word) last_word = wids[t];
        }
        free(ids); free(labels); free(wids);
        f->off[s + 1] = at + n;
        if (n > f->max_len) f->max_len = n;
        f->truncated += last_word < n_words - 1;  /* words were dropped from the end */
    }
    return FT_OK;
}

int ft_cls_batch_fill_tokens(ft_cls_batch *b, const ft_tok_features *f, const int64_t *idx, int n, int pad_id, int pad_to_T) {
    FT_TRY(ft__cls_fill_rows(b, f->off, f->ids, f->type_ids, f->n, idx, n, pad_id, pad_to_T, "token classification"));
    for (int r = 0; r < n; r++) {
        int64_t s = f->off[idx[r]];
        int len = (int)(f->off[idx[r] + 1] - s), T = b->T;
        int *lab = b->labels + (size_t)r * T;
        for (int t = 0; t < T; t++) lab[t] = t < len ? f->labels[s + t] : FT_CLS_IGNORE;
    }
    return FT_OK;
}
