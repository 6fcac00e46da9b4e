/* post_process.c — the post-processor: special tokens and token type ids around one sequence or a
 * sentence pair (HF's TemplateProcessing / BertProcessing / RobertaProcessing), and
 * ft_tokenizer_encode_pair / ft_tokenizer_build_inputs / ft_tokenizer_num_special_tokens.
 *
 * One sequence: prefix A suffix, every type id 0. A pair: the pair template, a list of special ids
 * and the two sequence slots, each with its type id; a tokenizer without one (GPT-2, llama2.c, a
 * config that set add_bos_token) gets prefix A suffix prefix B suffix, B's half with type id 1, which
 * is what HF builds for those. RobertaProcessing sets every type id to 0 (RoBERTa has no segment
 * embedding), also without special tokens; the others give A's tokens 0 and B's 1 there. */
#include "tokenizer_impl.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

int ft__tok_pair_template(const ft_tokenizer *tok, ft_tok_tmpl_item *items) {
    if (tok->n_pair > 0) {
        memcpy(items, tok->pair, sizeof *items * (size_t)tok->n_pair);
        return tok->n_pair;
    }
    int k = 0;
    for (int seq = 0; seq < 2; seq++) {
        for (int i = 0; i < tok->n_prefix; i++) items[k++] = (ft_tok_tmpl_item){ tok->prefix[i], (uint8_t)seq };
        items[k++] = (ft_tok_tmpl_item){ seq ? FT_TMPL_SEQ_B : FT_TMPL_SEQ_A, (uint8_t)seq };
        for (int i = 0; i < tok->n_suffix; i++) items[k++] = (ft_tok_tmpl_item){ tok->suffix[i], (uint8_t)seq };
    }
    return k;
}

void ft__tok_set_roberta_post(ft_tokenizer *tok, int cls, int sep) {
    tok->n_prefix = 1; tok->prefix[0] = cls;
    tok->n_suffix = 1; tok->suffix[0] = sep;
    const ft_tok_tmpl_item p[] = { {cls, 0}, {FT_TMPL_SEQ_A, 0}, {sep, 0}, {sep, 0}, {FT_TMPL_SEQ_B, 0}, {sep, 0} };
    memcpy(tok->pair, p, sizeof p);
    tok->n_pair = (int)(sizeof p / sizeof p[0]);
    tok->pair_type_zero = 1;
    tok->post_kind = FT_POST_ROBERTA;
    tok->cls = cls; tok->sep = sep;
}

void ft__tok_set_bert_post(ft_tokenizer *tok, int cls, int sep) {
    tok->n_prefix = 1; tok->prefix[0] = cls;
    tok->n_suffix = 1; tok->suffix[0] = sep;
    const ft_tok_tmpl_item p[] = { {cls, 0}, {FT_TMPL_SEQ_A, 0}, {sep, 0}, {FT_TMPL_SEQ_B, 1}, {sep, 1} };
    memcpy(tok->pair, p, sizeof p);
    tok->n_pair = (int)(sizeof p / sizeof p[0]);
    tok->pair_type_zero = 0;
    tok->cls = cls; tok->sep = sep;
}

int ft_tokenizer_num_special_tokens(const ft_tokenizer *tok, int pair) {
    if (!tok) return 0;
    if (!pair) return tok->n_prefix + tok->n_suffix;
    ft_tok_tmpl_item items[FT_TOK_MAX_PAIR];
    int n = ft__tok_pair_template(tok, items), k = 0;
    for (int i = 0; i < n; i++) k += items[i].id >= 0;
    return k;
}

/* Writes the template around a (na) and, with pair, b (nb) into ids / types (room for all). */
static int assemble(const ft_tokenizer *tok, const int *a, int na, int pair, const int *b, int nb, int *ids, int *types) {
    int k = 0;
    if (!pair) {
        for (int i = 0; i < tok->n_prefix; i++) { ids[k] = tok->prefix[i]; types[k++] = 0; }
        for (int i = 0; i < na; i++) { ids[k] = a[i]; types[k++] = 0; }
        for (int i = 0; i < tok->n_suffix; i++) { ids[k] = tok->suffix[i]; types[k++] = 0; }
        return k;
    }
    ft_tok_tmpl_item items[FT_TOK_MAX_PAIR];
    int n = ft__tok_pair_template(tok, items);
    for (int i = 0; i < n; i++) {
        int t = tok->pair_type_zero ? 0 : items[i].type_id;
        if (items[i].id >= 0) { ids[k] = items[i].id; types[k++] = t; continue; }
        const int *src = items[i].id == FT_TMPL_SEQ_A ? a : b;
        int m = items[i].id == FT_TMPL_SEQ_A ? na : nb;
        for (int j = 0; j < m; j++) { ids[k] = src[j]; types[k++] = t; }
    }
    return k;
}

static int alloc_out(int total, int **ids, int **types) {
    *ids = malloc(sizeof **ids * (size_t)(total + 1));
    *types = malloc(sizeof **types * (size_t)(total + 1));
    if (!*ids || !*types) {
        free(*ids); free(*types); *ids = NULL; *types = NULL;
        return ft_error(FT_ERR_NOMEM, "tokenizer: cannot allocate %d ids", total);
    }
    return FT_OK;
}

int ft_tokenizer_build_inputs(const ft_tokenizer *tok, const int *ids_a, int n_a, const int *ids_b, int n_b,
                              int **ids, int **type_ids, int *n) {
    *ids = NULL; *n = 0;
    if (type_ids) *type_ids = NULL;
    if (!tok || n_a < 0 || n_b < 0 || (n_a > 0 && !ids_a) || (ids_b == NULL && n_b > 0))
        return ft_error(FT_ERR_INVALID, "ft_tokenizer_build_inputs: bad arguments");
    if ((size_t)n_a + (size_t)n_b > (size_t)(INT32_MAX / 2)) return ft_error(FT_ERR_RANGE, "ft_tokenizer_build_inputs: too many ids");
    int total = n_a + (ids_b ? n_b : 0) + ft_tokenizer_num_special_tokens(tok, ids_b != NULL);
    int *types;
    FT_TRY(alloc_out(total, ids, &types));
    *n = assemble(tok, ids_a, n_a, ids_b != NULL, ids_b, n_b, *ids, types);
    if (type_ids) *type_ids = types; else free(types);
    return FT_OK;
}

int ft_tokenizer_encode_pair(const ft_tokenizer *tok, const char *text_a, size_t len_a, const char *text_b,
                             size_t len_b, int flags, int **ids, int **type_ids, int *n) {
    *ids = NULL; *n = 0;
    if (type_ids) *type_ids = NULL;
    if (!tok || (!text_a && len_a) || (!text_b && len_b))
        return ft_error(FT_ERR_INVALID, "ft_tokenizer_encode_pair: missing tokenizer or text");
    if (!text_a) text_a = "";
    ft_tok_work w;
    FT_TRY(ft__tok_work_init(&w, tok));
    int rc = ft__tok_encode_into(tok, &w, text_a, len_a, flags & ~FT_TOK_ADD_SPECIAL);
    int na = w.n;
    if (rc == FT_OK && text_b) rc = ft__tok_encode_into(tok, &w, text_b, len_b, flags & ~FT_TOK_ADD_SPECIAL);
    if (rc < 0) { ft__tok_work_free(&w); return rc; }
    const int pair = text_b != NULL;
    const int *a = w.ids, *b = w.ids ? w.ids + na : NULL;
    int nb = w.n - na, total = w.n;
    int *types = NULL;
    if (flags & FT_TOK_ADD_SPECIAL) {
        total += ft_tokenizer_num_special_tokens(tok, pair);
        rc = alloc_out(total, ids, &types);
        if (rc == FT_OK) *n = assemble(tok, a, na, pair, b, nb, *ids, types);
    } else {
        rc = alloc_out(total, ids, &types);
        if (rc == FT_OK) {
            if (total) memcpy(*ids, w.ids, sizeof **ids * (size_t)total);
            for (int i = 0; i < total; i++) types[i] = i >= na && !tok->pair_type_zero;
            *n = total;
        }
    }
    ft__tok_work_free(&w);
    if (rc < 0) return rc;
    if (type_ids) *type_ids = types; else free(types);
    return FT_OK;
}
