/* qa_f1.c — SQuAD exact match and token F1 (the official v2.0 evaluation script's definitions).
 *
 * normalize_answer: text.lower() (Python's, full Unicode); ASCII punctuation (string.punctuation) removed;
 * the words a / an / the removed where they stand alone (re \b(a|an|the)\b, Unicode word characters =
 * letters, numbers and _); whitespace collapsed (split / join). Tokens: the normalised text split on spaces.
 *   EM  = [normalised texts equal]
 *   F1  = 2PR / (P + R) over the token multisets (common = multiset intersection); both token lists empty: 1,
 *         one empty: 0, nothing common: 0.
 * Several references: the max of each over the references whose normalisation is not empty (all of them
 * when every one is empty), as the script's metric_max_over_ground_truths with its empty-answer rule. */
#include "eval/textmetrics_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "finetune/status.h"

static int is_ascii_punct(uint32_t c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

static int is_word(uint32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_LO || k == UTF8PROC_CATEGORY_ND ||
           k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

/* normalised tokens of s into out (ids in cx->words) */
static int qa_tokens(ft__tm_ctx *cx, const char *s, ft__tm_toks *out) {
    out->n = 0;
    char *low;
    size_t n;
    FT_TRY(ft__tm_lower(s, strlen(s), &low, &n));
    /* code points without ASCII punctuation */
    uint32_t *cp = malloc((n + 1) * sizeof *cp);
    if (!cp) { free(low); return FT_ERR_NOMEM; }
    size_t m = 0, i = 0;
    while (i < n) {
        uint32_t c = ft__tm_utf8_next(low, n, &i);
        if (!is_ascii_punct(c)) cp[m++] = c;
    }
    free(low);
    /* articles -> space, written back as UTF-8 */
    int rc = ft__tm_ctx_buf(cx, 4 * m + 4);
    if (rc < 0) { free(cp); return rc; }
    char *o = cx->buf;
    size_t w = 0;
    for (size_t k = 0; k < m;) {
        int hit = 0;
        if (k == 0 || !is_word(cp[k - 1])) {
            static const char *art[3] = {"a", "an", "the"};
            for (int a = 0; a < 3 && !hit; a++) {
                size_t l = strlen(art[a]), t = 0;
                while (t < l && k + t < m && cp[k + t] == (uint32_t)art[a][t]) t++;
                if (t == l && (k + l == m || !is_word(cp[k + l]))) hit = (int)l;
            }
        }
        if (hit) { o[w++] = ' '; k += (size_t)hit; }
        else w += (size_t)ft__tm_utf8_put(o + w, cp[k++]);
    }
    free(cp);
    return ft__tm_split_ws(&cx->words, o, w, out);
}

static double token_f1(ft__tm_map *map, const ft__tm_toks *gold, const ft__tm_toks *pred) {
    if (gold->n == 0 || pred->n == 0) return gold->n == pred->n ? 1.0 : 0.0;
    ft__tm_map_clear(map);
    for (int k = 0; k < gold->n; k++) ft__tm_map_cnt(map, ft__tm_map_slot(map, ft__tm_word_key(gold->id + k, 1)))[0]++;
    for (int k = 0; k < pred->n; k++) ft__tm_map_cnt(map, ft__tm_map_slot(map, ft__tm_word_key(pred->id + k, 1)))[1]++;
    int64_t same = 0;
    for (int u = 0; u < map->n; u++) {
        int32_t *c = ft__tm_map_cnt(map, map->used[u]);
        same += c[0] < c[1] ? c[0] : c[1];
    }
    if (same == 0) return 0.0;
    double precision = 1.0 * (double)same / pred->n, recall = 1.0 * (double)same / gold->n;
    return (2 * precision * recall) / (precision + recall);
}

int ft__qa_example(ft__tm_ctx *cx, const char *hyp, const char *const *refs, int nr, double *em, double *f1) {
    *em = 0;
    *f1 = 0;
    ft__tm_toks p = {0}, g = {0};
    int rc = qa_tokens(cx, hyp, &p);
    /* references that normalise to nothing count only when all do */
    int any_nonempty = 0;
    for (int q = 0; q < nr && rc == FT_OK; q++) {
        rc = qa_tokens(cx, refs[q], &g);
        if (g.n > 0) any_nonempty = 1;
    }
    int first = 1;
    for (int q = 0; q < nr && rc == FT_OK; q++) {
        rc = qa_tokens(cx, refs[q], &g);
        if (rc != FT_OK) break;
        if (any_nonempty && g.n == 0) continue;
        rc = ft__tm_map_reserve(&cx->map, g.n + p.n);
        if (rc != FT_OK) break;
        double e = (g.n == p.n && (g.n == 0 || !memcmp(g.id, p.id, (size_t)g.n * sizeof *g.id))) ? 1.0 : 0.0;
        double f = token_f1(&cx->map, &g, &p);
        if (first || e > *em) *em = e;
        if (first || f > *f1) *f1 = f;
        first = 0;
    }
    ft__tm_toks_free(&p);
    ft__tm_toks_free(&g);
    return rc;
}
