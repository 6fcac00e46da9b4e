/* bias_score.c — sentence scores for the bias probes (bias.h, section 1): a causal LM's log-likelihood as
 * lm-evaluation-harness computes it, difflib's matching blocks over token ids, and the CrowS-Pairs paper's
 * pseudo-log-likelihood of the shared tokens under a masked LM. */
#include "finetune/bias.h"
#include "finetune/encoder_task.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log softmax(row)[id] in double */
static double log_prob(const float *row, int V, int id) {
    float mx = row[0];
    for (int v = 1; v < V; v++) if (row[v] > mx) mx = row[v];
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)row[v] - mx);
    return (double)row[id] - mx - log(s);
}

/* ------------------------------------------------------------------ causal log-likelihood */

int ft_bias_causal_loglik(ft_model *m, const ft_tokenizer *tok, const char *context, const char *continuation,
                          double *ll, int *n_tokens) {
    const ft_model_config *c = ft_model_get_config(m);
    int start = ft_generate_start_token(tok, c);
    if (start < 0) return ft_error(FT_ERR_INVALID, "log-likelihood: the model has no BOS / EOS token to start a text with");
    if (!continuation) return ft_error(FT_ERR_INVALID, "log-likelihood: no text");
    /* the harness moves the context's trailing spaces to the continuation */
    size_t cl = context ? strlen(context) : 0, sp = 0;
    while (sp < cl && context[cl - 1 - sp] == ' ') sp++;
    cl -= sp;
    size_t tl = strlen(continuation);
    char *whole = malloc(cl + sp + tl + 1);
    if (!whole) return ft_error(FT_ERR_NOMEM, "out of memory");
    if (cl + sp) memcpy(whole, context, cl + sp);
    memcpy(whole + cl + sp, continuation, tl + 1);
    int *ids = NULL, *cids = NULL, n = 0, nc = 0;
    int rc = ft_tokenizer_encode(tok, whole, cl + sp + tl, 0, &ids, &n);
    if (rc == FT_OK && cl) rc = ft_tokenizer_encode(tok, context, cl, 0, &cids, &nc);
    free(whole);
    free(cids);
    if (rc < 0) { free(ids); return rc; }
    if (nc > n) nc = n;
    if (n - nc <= 0) { free(ids); return ft_error(FT_ERR_INVALID, "log-likelihood: the continuation has no tokens"); }
    /* all = [start] + ids: inputs all[0 .. L-1), targets all[1 .. L); keep the last max_seq_len inputs */
    int L = n + 1, first = 0;
    if (L - 1 > c->max_seq_len) first = L - 1 - c->max_seq_len;
    int T = L - 1 - first;
    int Tp = (T + 15) / 16 * 16;
    if (Tp > c->max_seq_len) Tp = c->max_seq_len;
    int *in = malloc(sizeof *in * (size_t)Tp);
    if (!in) { free(ids); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int t = 0; t < Tp; t++) {
        int k = first + t;                          /* index into all */
        in[t] = t < T ? (k == 0 ? start : ids[k - 1]) : start;   /* padding after the text: causal, never seen */
    }
    ft_model_set_training(m, 0, 0);
    rc = ft_model_forward(m, in, NULL, NULL, NULL, 1, Tp, NULL);
    if (rc == FT_OK) {
        const float *lg = ft_model_logits(m);
        int V = c->vocab_size;
        double s = 0;
        int counted = 0;
        for (int t = 0; t < T; t++) {
            int target_idx = first + t + 1;         /* index into all of the token predicted at t */
            if (target_idx - 1 < nc) continue;      /* a context token */
            s += log_prob(lg + (size_t)t * V, V, ids[target_idx - 1]);
            counted++;
        }
        *ll = s;
        if (n_tokens) *n_tokens = counted;
    }
    free(in);
    free(ids);
    return rc;
}

/* ------------------------------------------------------------------ difflib matching blocks */

typedef struct { int i, j, k; } block;

/* difflib.SequenceMatcher.find_longest_match(alo, ahi, blo, bhi) with isjunk None: the longest a[i:i+k] ==
 * b[j:j+k], earliest in a, then earliest in b; b's "popular" elements (autojunk, len(b) >= 200) start no match
 * but may extend one. cur / prev: scratch [nb]. */
static block longest_match(const int *a, const int *b, const char *popular, int alo, int ahi, int blo, int bhi, int *prev,
                           int *cur) {
    block best = {alo, blo, 0};
    for (int j = blo; j < bhi; j++) prev[j] = 0;
    for (int i = alo; i < ahi; i++) {
        for (int j = blo; j < bhi; j++) {
            if (b[j] == a[i] && !popular[j]) {
                int k = (j > blo ? prev[j - 1] : 0) + 1;
                cur[j] = k;
                if (k > best.k) { best.i = i - k + 1; best.j = j - k + 1; best.k = k; }
            } else cur[j] = 0;
        }
        int *t = prev; prev = cur; cur = t;
    }
    while (best.i > alo && best.j > blo && a[best.i - 1] == b[best.j - 1]) { best.i--; best.j--; best.k++; }
    while (best.i + best.k < ahi && best.j + best.k < bhi && a[best.i + best.k] == b[best.j + best.k]) best.k++;
    return best;
}

static int cmp_block(const void *x, const void *y) {
    const block *p = x, *q = y;
    return p->i != q->i ? (p->i > q->i) - (p->i < q->i) : (p->j > q->j) - (p->j < q->j);
}

int ft_bias_shared_tokens(const int *a, int na, const int *b, int nb, int **ia, int **ib, int *n) {
    *ia = *ib = NULL;
    *n = 0;
    if (na < 0 || nb < 0) return ft_error(FT_ERR_INVALID, "shared tokens: negative length");
    int m = na < nb ? na : nb;
    char *popular = calloc((size_t)nb + 1, 1);
    int *prev = malloc(sizeof(int) * ((size_t)nb + 1)), *cur = malloc(sizeof(int) * ((size_t)nb + 1));
    block *blocks = malloc(sizeof(block) * ((size_t)m + 1));
    int rc = popular && prev && cur && blocks ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK && nb >= 200) {            /* difflib's autojunk: elements more frequent than len(b) // 100 + 1 */
        int ntest = nb / 100 + 1;
        for (int j = 0; j < nb; j++) {
            int cnt = 0;
            for (int k = 0; k < nb; k++) cnt += b[k] == b[j];
            popular[j] = cnt > ntest;
        }
    }
    /* difflib's queue of (alo, ahi, blo, bhi) ranges still to search, popped from the end */
    typedef struct { int alo, ahi, blo, bhi; } range;
    range *queue = rc == FT_OK ? malloc(sizeof(range) * (2 * (size_t)m + 2)) : NULL;
    if (rc == FT_OK && !queue) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    int nblocks = 0, nq = 0;
    if (rc == FT_OK) queue[nq++] = (range){0, na, 0, nb};
    while (rc == FT_OK && nq > 0) {
        range q = queue[--nq];
        block x = longest_match(a, b, popular, q.alo, q.ahi, q.blo, q.bhi, prev, cur);
        if (x.k) {
            blocks[nblocks++] = x;
            if (q.alo < x.i && q.blo < x.j) queue[nq++] = (range){q.alo, x.i, q.blo, x.j};
            if (x.i + x.k < q.ahi && x.j + x.k < q.bhi) queue[nq++] = (range){x.i + x.k, q.ahi, x.j + x.k, q.bhi};
        }
    }
    free(queue);
    if (rc == FT_OK) {
        qsort(blocks, (size_t)nblocks, sizeof *blocks, cmp_block);
        int total = 0;
        for (int q = 0; q < nblocks; q++) total += blocks[q].k;
        if (total) {
            *ia = malloc(sizeof(int) * (size_t)total);
            *ib = malloc(sizeof(int) * (size_t)total);
            if (!*ia || !*ib) { free(*ia); free(*ib); *ia = *ib = NULL; rc = ft_error(FT_ERR_NOMEM, "out of memory"); }
        }
        for (int q = 0, w = 0; rc == FT_OK && q < nblocks; q++)
            for (int k = 0; k < blocks[q].k; k++, w++) { (*ia)[w] = blocks[q].i + k; (*ib)[w] = blocks[q].j + k; }
        if (rc == FT_OK) *n = total;
    }
    free(popular); free(prev); free(cur); free(blocks);
    return rc;
}

/* ------------------------------------------------------------------ masked-LM pseudo-log-likelihood */

/* sum over k in [1, N-1) of log p(ids[pos[k]] | ids with pos[k] masked): one forward of N-2 rows */
static int pll(ft_encoder_model *m, const int *ids, int n, const int *pos, int N, int mask_id, double *score) {
    *score = 0;
    int B = N - 2;
    if (B <= 0) return FT_OK;
    int *in = malloc(sizeof(int) * (size_t)B * n), *labels = malloc(sizeof(int) * (size_t)B * n);
    if (!in || !labels) { free(in); free(labels); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int r = 0; r < B; r++) {
        int p = pos[r + 1];
        for (int t = 0; t < n; t++) {
            in[(size_t)r * n + t] = t == p ? mask_id : ids[t];
            labels[(size_t)r * n + t] = t == p ? ids[t] : FT_CLS_IGNORE;
        }
    }
    ft_encoder_inputs x = {in, NULL, NULL, labels, NULL, B, n};
    float loss;
    int rc = ft_encoder_forward_ex(m, &x, &loss);
    if (rc == FT_OK) {
        const float *lg = ft_encoder_logits(m);
        int V = ft_encoder_logit_cols(m);
        if (ft_encoder_logit_rows(m) != B) rc = ft_error(FT_ERR_SHAPE, "pseudo-log-likelihood: %d logit rows for %d masks", ft_encoder_logit_rows(m), B);
        for (int r = 0; rc == FT_OK && r < B; r++) *score += log_prob(lg + (size_t)r * V, V, ids[pos[r + 1]]);
    }
    free(in);
    free(labels);
    return rc;
}

int ft_bias_mlm_pll_pair(ft_encoder_model *m, const ft_tokenizer *tok, const char *s1, const char *s2, double *score1,
                         double *score2, int *n_masked) {
    if (ft_encoder_get_task(m) != FT_TASK_MLM)
        return ft_error(FT_ERR_INVALID, "pseudo-log-likelihood needs a masked-LM head (the encoder does %s)", ft_encoder_task_name(ft_encoder_get_task(m)));
    int mask_id = ft_tokenizer_mask(tok);
    if (mask_id < 0) return ft_error(FT_ERR_INVALID, "pseudo-log-likelihood: the tokenizer has no mask token");
    int *a = NULL, *b = NULL, na = 0, nb = 0, *ia = NULL, *ib = NULL, N = 0;
    int rc = ft_tokenizer_encode(tok, s1, strlen(s1), FT_TOK_ADD_SPECIAL, &a, &na);
    if (rc == FT_OK) rc = ft_tokenizer_encode(tok, s2, strlen(s2), FT_TOK_ADD_SPECIAL, &b, &nb);
    int maxlen = ft_encoder_config_max_len(ft_encoder_get_config(m));
    if (rc == FT_OK && (na > maxlen || nb > maxlen))
        rc = ft_error(FT_ERR_RANGE, "pseudo-log-likelihood: a sentence of %d tokens, the encoder takes %d", na > nb ? na : nb, maxlen);
    if (rc == FT_OK) rc = ft_bias_shared_tokens(a, na, b, nb, &ia, &ib, &N);
    ft_encoder_set_training(m, 0, 0);
    if (rc == FT_OK) rc = pll(m, a, na, ia, N, mask_id, score1);
    if (rc == FT_OK) rc = pll(m, b, nb, ib, N, mask_id, score2);
    if (rc == FT_OK && n_masked) *n_masked = N > 2 ? N - 2 : 0;
    free(a); free(b); free(ia); free(ib);
    return rc;
}
