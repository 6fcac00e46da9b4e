/* distinct.c — distinct-1 / distinct-2 (Li et al. 2016, "A Diversity-Promoting Objective Function"):
 * the number of distinct n-grams divided by the number of n-grams, over the whitespace tokens (Python's
 * str.split(), case kept) of the hypotheses. Corpus-wide for the corpus score; within one hypothesis for
 * its per-example score. Each n-gram gets a dense corpus-wide number here so that the corpus value, and
 * the value on a bootstrap resample, is a count of distinct numbers (textmetrics.c, bootstrap.c). */
#include "eval/textmetrics_internal.h"

#include <string.h>

#include "finetune/status.h"

int ft__distinct_example(ft__tm_ctx *cx, ft__tm_map *ids, int *n_dense, const char *hyp, ft__tm_toks *uni, ft__tm_toks *bi) {
    cx->t0.n = 0;
    FT_TRY(ft__tm_split_ws(&cx->words, hyp, strlen(hyp), &cx->t0));
    const ft__tm_toks *t = &cx->t0;
    FT_TRY(ft__tm_map_reserve(ids, 2 * t->n));
    for (int n = 1; n <= 2; n++) {
        for (int i = 0; i + n <= t->n; i++) {
            int32_t *c = ft__tm_map_cnt(ids, ft__tm_map_slot(ids, ft__tm_word_key(t->id + i, n)));
            if (!c[0]) c[0] = ++*n_dense;
            FT_TRY(ft__tm_toks_push(n == 1 ? uni : bi, c[0] - 1));
        }
    }
    return FT_OK;
}
