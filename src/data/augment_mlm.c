/* augment_mlm.c — contextual word substitution with a masked language model (augment.h, method 3). */
#include "finetune/augment.h"
#include "finetune/encoder.h"
#include "finetune/predict.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

ft_mlm_aug_options ft_mlm_aug_default_options(void) {
    ft_mlm_aug_options o = {0.15, 10, 0};
    return o;
}

typedef struct span { size_t b, e; } span;   /* a word: text[b, e) */

/* a word to replace: letters only (ASCII), two or more, not a stop word */
static int replaceable(const char *s, size_t n) {
    if (n < 2 || n > 40) return 0;
    char w[48];
    for (size_t i = 0; i < n; i++) {
        if (!isalpha((unsigned char)s[i])) return 0;
        w[i] = s[i];
    }
    w[n] = 0;
    return !ft_aug_is_stop_word(w);
}

/* The candidate as a whole word (lower-case letters, 2..40) in buf, or 0. WordPiece continuations ("##")
 * and BPE tokens without the word-start marker "Ġ" (U+0120, bytes C4 A0) are not whole words. */
static int whole_word(const char *tokstr, int bpe, char *buf, size_t cap) {
    const char *s = tokstr;
    if (bpe) {
        if ((unsigned char)s[0] != 0xC4 || (unsigned char)s[1] != 0xA0) return 0;
        s += 2;
    } else if (s[0] == '#' && s[1] == '#') {
        return 0;
    }
    size_t n = strlen(s);
    if (n < 2 || n >= cap) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalpha((unsigned char)s[i])) return 0;
        buf[i] = (char)tolower((unsigned char)s[i]);
    }
    buf[n] = 0;
    return 1;
}

static int ieq_n(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 0;
    return b[n] == 0;
}

/* text with [b, e) replaced by rep: malloc'd */
static char *splice(const char *text, size_t b, size_t e, const char *rep) {
    size_t n = strlen(text), r = strlen(rep);
    char *o = malloc(n - (e - b) + r + 1);
    if (!o) return NULL;
    memcpy(o, text, b);
    memcpy(o + b, rep, r);
    memcpy(o + b + r, text + e, n - e + 1);
    return o;
}

int ft_mlm_augment(char **out, int *n_replaced, ft_encoder_model *m, const ft_tokenizer *tok, const char *text,
                   const ft_mlm_aug_options *o, ft_rng *r) {
    *out = NULL;
    if (n_replaced) *n_replaced = 0;
    if (ft_encoder_get_task(m) != FT_TASK_MLM)
        return ft_error(FT_ERR_INVALID, "mlm augmentation: the model's task is %s, not mlm (a *ForMaskedLM checkpoint)",
                        ft_encoder_task_name(ft_encoder_get_task(m)));
    int mask = ft_tokenizer_mask(tok);
    const char *mask_str = mask >= 0 ? ft_tokenizer_token_str(tok, mask) : NULL;
    if (!mask_str) return ft_error(FT_ERR_INVALID, "mlm augmentation: the tokenizer has no mask token");
    int bpe = !strcmp(mask_str, "<mask>");
    char *cur = strdup(text);
    if (!cur) return ft_error(FT_ERR_NOMEM, "out of memory");
    /* the replaceable words of the original text, in order */
    size_t len = strlen(text);
    span *w = malloc((len / 2 + 1) * sizeof *w);
    int nw = 0, total = 0;
    if (!w) { free(cur); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (size_t i = 0; i < len;) {
        while (i < len && isspace((unsigned char)text[i])) i++;
        size_t b = i;
        while (i < len && !isspace((unsigned char)text[i])) i++;
        total += i > b;
        if (i > b && replaceable(text + b, i - b)) w[nw++] = (span){b, i};
    }
    int want = (int)(o->alpha * total);
    if (want < 1) want = 1;
    if (want > nw) want = nw;
    /* pick `want` of them: a partial Fisher-Yates shuffle */
    for (int i = 0; i < want; i++) {
        int j = i + (int)ft_rng_below(r, (uint64_t)(nw - i));
        span t = w[i]; w[i] = w[j]; w[j] = t;
    }
    /* replace right to left, so earlier offsets stay valid */
    for (int i = 1; i < want; i++)
        for (int j = i; j > 0 && w[j - 1].b < w[j].b; j--) { span t = w[j]; w[j] = w[j - 1]; w[j - 1] = t; }
    ft_predict_options po = ft_predict_default_options();
    po.top_k = o->top_k > 0 ? o->top_k : 10;
    po.max_len = o->max_len;
    int replaced = 0, rc = FT_OK;
    for (int i = 0; i < want && rc == FT_OK; i++) {
        const char *orig = text + w[i].b;
        size_t on = w[i].e - w[i].b;
        char *masked = splice(cur, w[i].b, w[i].e, mask_str);
        if (!masked) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        ft_prediction p;
        int prc = ft_encoder_predict(&p, m, tok, masked, NULL, &po);
        free(masked);
        if (prc == FT_ERR_INVALID) { ft_error_clear(); continue; }   /* the mask fell past the length limit */
        if (prc < 0) { rc = prc; break; }
        char cand[10][48];
        double prob[10], sum = 0;
        int nc = 0;
        for (int k = 0; k < p.top_k && nc < 10; k++) {
            const char *ts = p.tokens[k];   /* the first (only) mask's candidates */
            if (!whole_word(ts, bpe, cand[nc], sizeof cand[nc]) || ieq_n(orig, cand[nc], on)) continue;
            prob[nc] = p.token_probs[k];
            sum += prob[nc++];
        }
        ft_prediction_free(&p);
        if (nc == 0) continue;
        double u = ft_rng_uniform_f64(r) * sum;
        int pick = 0;
        while (pick < nc - 1 && u >= prob[pick]) u -= prob[pick++];
        char rep[48];
        strcpy(rep, cand[pick]);
        if (isupper((unsigned char)orig[0])) rep[0] = (char)toupper((unsigned char)rep[0]);
        char *next = splice(cur, w[i].b, w[i].e, rep);
        if (!next) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
        free(cur);
        cur = next;
        replaced++;
    }
    free(w);
    if (rc != FT_OK) { free(cur); return rc; }
    *out = cur;
    if (n_replaced) *n_replaced = replaced;
    return FT_OK;
}
