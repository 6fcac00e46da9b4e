/* encode.c — rendered text + learned byte ranges -> token ids + learned flags.
 *
 * The whole text is tokenized in one call, so the ids are exactly the tokenizer's for that text.
 * Token i covers bytes [off[i], off[i+1]) of the text: the lengths of ft_tokenizer_decode_piece,
 * which reproduce the text byte for byte for lossless tokenizers (byte-level BPE, SentencePiece BPE
 * with byte fallback). A token is learned when its bytes overlap a learned range. When the pieces do
 * not add up to the text (a normalizing tokenizer), the boundaries are found instead by tokenizing
 * each prefix text[0..boundary) and matching it against the full ids. */
#include "data/data_internal.h"

#include <stdlib.h>
#include <string.h>

int ft__encoder_init(ft_encoder *e, const ft_tokenizer *tok, int add_bos_opt) {
    memset(e, 0, sizeof *e);
    e->tok = tok;
    e->bos = ft_tokenizer_bos(tok);
    e->eos = ft_tokenizer_eos(tok);
    if (add_bos_opt >= 0) {
        e->add_bos = add_bos_opt && e->bos >= 0;
    } else if (e->bos >= 0) {  /* does the tokenizer's own config put BOS first? */
        int *ids = NULL, n = 0;
        FT_TRY(ft_tokenizer_encode(tok, "a", 1, FT_TOK_ADD_SPECIAL, &ids, &n));
        e->add_bos = n > 0 && ids[0] == e->bos;
        free(ids);
    }
    return FT_OK;
}

void ft__encoder_free(ft_encoder *e) {
    free(e->ids);
    free(e->off);
    free(e->learn);
    memset(e, 0, sizeof *e);
}

static int reserve_int(int **p, int *cap, int need) {
    int64_t c = *cap;
    FT_TRY(ft__data_reserve((void **)p, sizeof **p, need, &c));
    *cap = (int)c;
    return FT_OK;
}

/* byte offsets of the tokens; returns 1 if they add up to text_len */
static int token_offsets(ft_encoder *e, const int *ids, int n, size_t text_len) {
    int64_t cap = e->off_cap;
    if (ft__data_reserve((void **)&e->off, sizeof *e->off, n + 1, &cap) < 0) return -1;
    e->off_cap = (int)cap;
    char buf[1024];
    int64_t pos = 0;
    for (int i = 0; i < n; i++) {
        e->off[i] = pos;
        int m = ft_tokenizer_decode_piece(e->tok, i > 0 ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
        if (m < 0) return 0;
        pos += m;
    }
    e->off[n] = pos;
    return pos == (int64_t)text_len;
}

/* 1 if the token decodes to whitespace only */
static int whitespace_token(const ft_tokenizer *tok, int id) {
    char buf[64];
    int m = ft_tokenizer_decode_piece(tok, 0, id, buf, sizeof buf);
    if (m <= 0) return 0;
    for (int i = 0; i < m; i++)
        if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\t' && buf[i] != '\r') return 0;
    return 1;
}

/* number of leading ids shared by a and b */
static int common_prefix(const int *a, int na, const int *b, int nb) {
    int k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

/* token index of byte boundary p (fallback): first token that holds bytes at or after p */
static int boundary_token(ft_encoder *e, const char *text, int64_t p, int flags, const int *ids, int n, int *exact) {
    int *pre = NULL, np = 0;
    if (ft_tokenizer_encode(e->tok, text, (size_t)p, flags, &pre, &np) < 0) { *exact = 0; return -1; }
    int k = common_prefix(pre, np, ids, n);
    *exact = k == np;
    free(pre);
    return k;
}

int ft__encoder_run(ft_encoder *e, const ft_render *r, int *n_out) {
    int flags = r->templated ? 0 : FT_TOK_NO_SPECIAL_PARSE;
    int *ids = NULL, m = 0;
    FT_TRY(ft_tokenizer_encode(e->tok, r->text, r->len, flags, &ids, &m));
    int rc = FT_OK;
    int lead = e->add_bos && (m == 0 || ids[0] != e->bos);
    /* a template that already ends with EOS (maybe followed by whitespace, "</s>\n") gets no second one */
    int last = m - 1;
    if (r->templated) while (last >= 0 && ids[last] != e->eos && whitespace_token(e->tok, ids[last])) last--;
    int tail = e->eos >= 0 && (last < 0 || ids[last] != e->eos);
    int total = lead + m + tail;
    if ((rc = reserve_int(&e->ids, &e->ids_cap, total)) < 0) goto done;
    {
        int64_t c = e->learn_cap;
        if ((rc = ft__data_reserve((void **)&e->learn, 1, total, &c)) < 0) goto done;
        e->learn_cap = (int)c;
    }
    if (lead) e->ids[0] = e->bos;
    memcpy(e->ids + lead, ids, (size_t)m * sizeof *ids);
    if (tail) e->ids[lead + m] = e->eos;
    uint8_t *L = e->learn + lead;
    memset(e->learn, 0, (size_t)total);
    int ok = token_offsets(e, ids, m, r->len);
    if (ok < 0) { rc = ft_error(FT_ERR_NOMEM, "data: out of memory (offsets)"); goto done; }
    if (ok) {
        int64_t sp = 0;
        for (int i = 0; i < m; i++) {
            int64_t a = e->off[i], b = e->off[i + 1];
            while (sp < r->nspans && r->spans[sp].e <= a) sp++;
            if (sp < r->nspans && r->spans[sp].s < b && b > a) L[i] = 1;
            else if (sp < r->nspans && a == b && r->spans[sp].s <= a) L[i] = 1;  /* zero-width token inside */
        }
    } else {
        for (int64_t s = 0; s < r->nspans; s++) {
            int ex_s, ex_e;
            int ks = r->spans[s].s == 0 ? 0 : boundary_token(e, r->text, r->spans[s].s, flags, ids, m, &ex_s);
            int ke = r->spans[s].e >= (int64_t)r->len ? m : boundary_token(e, r->text, r->spans[s].e, flags, ids, m, &ex_e);
            if (ks < 0 || ke < 0) { rc = ft_error(FT_ERR_FORMAT, "data: cannot align tokens with the text"); goto done; }
            if (r->spans[s].e < (int64_t)r->len && !ex_e && ke < m) ke++;  /* the token across the end is learned */
            for (int i = ks; i < ke; i++) L[i] = 1;
        }
    }
    if (tail) e->learn[lead + m] = 1;
    else if (last >= 0) e->learn[lead + last] = 1;  /* the template's own EOS */
    *n_out = total;
done:
    free(ids);
    return rc;
}

int ft__encoder_truncate(ft_encoder *e, int *n, int seq_len, ft_truncate mode) {
    if (*n <= seq_len || mode == FT_TRUNC_NONE) return 0;
    if (mode == FT_TRUNC_LEFT) {
        int keep_bos = e->add_bos && e->ids[0] == e->bos;
        int from = *n - (seq_len - keep_bos);
        memmove(e->ids + keep_bos, e->ids + from, (size_t)(seq_len - keep_bos) * sizeof *e->ids);
        memmove(e->learn + keep_bos, e->learn + from, (size_t)(seq_len - keep_bos));
    }
    *n = seq_len;
    return 1;
}
