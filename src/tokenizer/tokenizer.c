/* tokenizer.c — public API: loading by directory, accessors, the encode driver, decode. */
#include "tokenizer_impl.h"
#include "finetune/convert.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

/* ---- loading ---- */
static int has(const char *dir, const char *name, char *buf, size_t cap) {
    return ft_path_join(buf, cap, dir, name) == FT_OK && ft_path_exists(buf) && !ft_path_is_dir(buf);
}

int ft_tokenizer_load(ft_tokenizer **out, const char *dir) {
    *out = NULL;
    if (!dir) return ft_error(FT_ERR_INVALID, "ft_tokenizer_load: no directory given");
    if (!ft_path_is_dir(dir)) {
        if (!ft_path_exists(dir)) return ft_error(FT_ERR_NOT_FOUND, "%s: no such tokenizer directory", dir);
        /* a single file is accepted too: a GGUF model's vocabulary, or a tokenizer file */
        if (ft_model_path_is_gguf(dir)) return ft_gguf_tokenizer(out, dir);
        ft_tokenizer_file_kind k; /* its format from its content, whatever its name (detect.c) */
        FT_TRY(ft_tokenizer_detect_file(dir, &k));
        if (k == FT_TOKFILE_HF_JSON) return ft__tok_load_hf_json(out, dir);
        if (k == FT_TOKFILE_LLAMA2C) return ft__tok_load_llama2c(out, dir);
        if (k == FT_TOKFILE_WORDPIECE) return ft_tokenizer_load_wordpiece(out, dir, NULL);
        return ft_error(FT_ERR_INVALID, "%s: a %s alone is not a tokenizer; give the directory holding both BPE files", dir, ft_tokenizer_file_kind_name(k));
    }
    char a[4096], b[4096];
    int rc;
    if (has(dir, "tokenizer.json", a, sizeof a)) rc = ft__tok_load_hf_json(out, a);
    else if (has(dir, "vocab.json", a, sizeof a) && has(dir, "merges.txt", b, sizeof b)) rc = ft__tok_load_bpe_files(out, a, b);
    else if (has(dir, "encoder.json", a, sizeof a) && has(dir, "vocab.bpe", b, sizeof b)) rc = ft__tok_load_bpe_files(out, a, b);
    else if (has(dir, "tokenizer.bin", a, sizeof a) || has(dir, "tok512.bin", a, sizeof a)) rc = ft__tok_load_llama2c(out, a);
    else if (has(dir, "vocab.txt", a, sizeof a))
        rc = ft__tok_load_wordpiece(out, a, has(dir, "tokenizer_config.json", b, sizeof b) ? b : NULL);
    else
        return ft_error(FT_ERR_NOT_FOUND, "%s: no tokenizer files (looked for tokenizer.json, vocab.json + merges.txt, "
                        "encoder.json + vocab.bpe, tokenizer.bin, tok512.bin, vocab.txt)", dir);
    if (rc < 0) return rc;
    rc = ft__tok_apply_config(*out, dir);
    if (rc < 0) { ft_tokenizer_free(*out); *out = NULL; }
    return rc;
}

int ft_tokenizer_load_bpe_files(ft_tokenizer **out, const char *vocab_path, const char *merges_path) {
    *out = NULL;
    if (!vocab_path || !merges_path) return ft_error(FT_ERR_INVALID, "ft_tokenizer_load_bpe_files: missing path");
    return ft__tok_load_bpe_files(out, vocab_path, merges_path);
}

int ft_tokenizer_load_json(ft_tokenizer **out, const char *path) {
    *out = NULL;
    if (!path) return ft_error(FT_ERR_INVALID, "ft_tokenizer_load_json: missing path");
    return ft__tok_load_hf_json(out, path);
}

int ft_tokenizer_load_wordpiece(ft_tokenizer **out, const char *vocab_txt_path, const char *tokenizer_config_path) {
    *out = NULL;
    if (!vocab_txt_path) return ft_error(FT_ERR_INVALID, "ft_tokenizer_load_wordpiece: missing vocab.txt path");
    int rc = ft__tok_load_wordpiece(out, vocab_txt_path, tokenizer_config_path);
    if (rc == FT_OK && tokenizer_config_path) rc = ft__tok_apply_config_file(*out, tokenizer_config_path);
    if (rc < 0) { ft_tokenizer_free(*out); *out = NULL; }
    return rc;
}

int ft_tokenizer_load_llama2c(ft_tokenizer **out, const char *path) {
    *out = NULL;
    if (!path) return ft_error(FT_ERR_INVALID, "ft_tokenizer_load_llama2c: missing path");
    return ft__tok_load_llama2c(out, path);
}

void ft_tokenizer_free(ft_tokenizer *tok) {
    if (!tok) return;
    free(tok->tokens);
    free(tok->pool);
    free(tok->dec_pool);
    free(tok->vocab.slots);
    free(tok->merges.slots);
    free(tok->merge_list);
    for (int i = 0; i < tok->n_norm; i++) { free(tok->norm[i].a); free(tok->norm[i].b); }
    free(tok->norm);
    for (int i = 0; i < tok->n_pre; i++) ft__pretok_step_free(&tok->pre[i]);
    free(tok->pre);
    free(tok->added);
    free(tok->dec_replace_from);
    free(tok->dec_replace_to);
    free(tok->wp_prefix);
    free(tok->dec_wp_prefix);
    free(tok);
}

/* ---- accessors ---- */
ft_tokenizer_kind ft_tokenizer_get_kind(const ft_tokenizer *tok) { return tok->kind; }
int ft_tokenizer_vocab_size(const ft_tokenizer *tok) { return tok->n_tokens; }
int ft_tokenizer_bos(const ft_tokenizer *tok) { return tok->bos; }
int ft_tokenizer_eos(const ft_tokenizer *tok) { return tok->eos; }
int ft_tokenizer_pad(const ft_tokenizer *tok) { return tok->pad; }
int ft_tokenizer_cls(const ft_tokenizer *tok) { return tok->cls; }
int ft_tokenizer_sep(const ft_tokenizer *tok) { return tok->sep; }
int ft_tokenizer_mask(const ft_tokenizer *tok) { return tok->mask; }
int ft_tokenizer_unk(const ft_tokenizer *tok) { return tok->unk_id >= 0 ? tok->unk_id : tok->unk_special; }
int ft_tokenizer_model_max_length(const ft_tokenizer *tok) { return tok->model_max_length; }

int ft_tokenizer_token_id(const ft_tokenizer *tok, const char *token) {
    return token ? ft__tok_lookup(tok, token, strlen(token)) : -1;
}

const char *ft_tokenizer_token_str(const ft_tokenizer *tok, int id) {
    if (id < 0 || id >= tok->n_tokens || !(tok->tokens[id].flags & FT_TOKF_PRESENT)) return NULL;
    return ft_tok_str(tok, id);
}

int ft_tokenizer_is_special(const ft_tokenizer *tok, int id) {
    return id >= 0 && id < tok->n_tokens && (tok->tokens[id].flags & FT_TOKF_SPECIAL) != 0;
}

/* ---- work buffers ---- */
int ft__tok_work_init(ft_tok_work *w, const ft_tokenizer *tok) {
    memset(w, 0, sizeof *w);
    if (tok->n_pre > 0) {
        w->md = pcre2_match_data_create(4, NULL);
        if (!w->md) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    }
    return FT_OK;
}

void ft__tok_work_free(ft_tok_work *w) {
    for (int i = 0; i < 2; i++) { free(w->buf[i]); free(w->pc[i]); free(w->nbuf[i]); free(w->cps[i]); }
    free(w->sym); free(w->heap); free(w->tmp); free(w->spans); free(w->ids); free(w->bounds);
    if (w->md) pcre2_match_data_free(w->md);
    memset(w, 0, sizeof *w);
}

int ft__tok_push(ft_tok_work *w, int id) {
    if (w->n == w->cap) FT_TRY(ft__tok_reserve((void **)&w->ids, sizeof *w->ids, w->n + 1, &w->cap));
    w->ids[w->n++] = id;
    return FT_OK;
}

/* ---- encode ---- */
static int is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_word(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

/* The leftmost-longest added token in text[from..len): its id and the span it consumes. */
static int find_added(const ft_tokenizer *tok, const char *text, size_t len, size_t from, int flags,
                      size_t *ms, size_t *me) {
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = from; i < len; i++) {
        for (int k = tok->added_start[u[i]], end = tok->added_start[u[i] + 1]; k < end; k++) {
            const ft_tok_added *a = &tok->added[k];
            if (a->special && (flags & FT_TOK_NO_SPECIAL_PARSE)) continue;
            const ft_tok_token *t = &tok->tokens[a->id];
            if (t->len > len - i || memcmp(text + i, tok->pool + t->off, t->len) != 0) continue;
            if (a->single_word && ((i > 0 && is_word(u[i - 1])) || (i + t->len < len && is_word(u[i + t->len])))) continue;
            size_t s = i, e = i + t->len;
            if (a->lstrip) while (s > from && is_space(u[s - 1])) s--;
            if (a->rstrip) while (e < len && is_space(u[e])) e++;
            *ms = s; *me = e;
            return a->id;
        }
    }
    return -1;
}

static int encode_segment(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t n, int origin) {
    if (n == 0) return FT_OK;
    const char *p; size_t pn;
    FT_TRY(ft__tok_normalize(tok, w, s, n, &p, &pn));
    if (pn == 0) return FT_OK;
    FT_TRY(ft__tok_pretokenize(tok, w, p, pn, origin));
    const int c = w->cur;
    for (int i = 0; i < w->npc[c]; i++) {
        const char *ps = w->buf[c] + w->pc[c][i].off;
        if (tok->wordpiece) FT_TRY(ft__wordpiece_encode_word(tok, w, ps, w->pc[c][i].len));
        else FT_TRY(ft__bpe_encode_piece(tok, w, ps, w->pc[c][i].len));
    }
    return FT_OK;
}

int ft__tok_encode_into(const ft_tokenizer *tok, ft_tok_work *w, const char *text, size_t len, int flags) {
    if (flags & FT_TOK_ADD_SPECIAL)
        for (int i = 0; i < tok->n_prefix; i++) FT_TRY(ft__tok_push(w, tok->prefix[i]));
    size_t seg = 0;
    for (;;) {
        size_t ms = 0, me = 0;
        int id = tok->n_added ? find_added(tok, text, len, seg, flags, &ms, &me) : -1;
        if (id < 0) { FT_TRY(encode_segment(tok, w, text + seg, len - seg, seg == 0)); break; }
        FT_TRY(encode_segment(tok, w, text + seg, ms - seg, seg == 0));
        FT_TRY(ft__tok_push(w, id));
        seg = me;
    }
    if (flags & FT_TOK_ADD_SPECIAL)
        for (int i = 0; i < tok->n_suffix; i++) FT_TRY(ft__tok_push(w, tok->suffix[i]));
    return FT_OK;
}

int ft_tokenizer_encode(const ft_tokenizer *tok, const char *text, size_t len, int flags, int **ids, int *n) {
    *ids = NULL; *n = 0;
    if (!tok || (!text && len)) return ft_error(FT_ERR_INVALID, "ft_tokenizer_encode: missing tokenizer or text");
    if (!text) text = "";
    ft_tok_work w;
    FT_TRY(ft__tok_work_init(&w, tok));
    int rc = ft__tok_encode_into(tok, &w, text, len, flags);
    if (rc == FT_OK && !w.ids) rc = ft__tok_reserve((void **)&w.ids, sizeof *w.ids, 1, &w.cap);  /* never NULL */
    if (rc == FT_OK) { *ids = w.ids; *n = w.n; w.ids = NULL; }
    ft__tok_work_free(&w);
    return rc;
}

/* ---- decode ---- */
static int check_id(const ft_tokenizer *tok, int id) {
    if (id < 0 || id >= tok->n_tokens || !(tok->tokens[id].flags & FT_TOKF_PRESENT))
        return ft_error(FT_ERR_RANGE, "tokenizer: token id %d out of range (vocabulary size %d)", id, tok->n_tokens);
    return FT_OK;
}

/* The decoded bytes of id after prev; SentencePiece's dummy-prefix space is dropped at the start. */
static const char *piece_bytes(const ft_tokenizer *tok, int prev, int id, size_t *n) {
    const ft_tok_token *t = &tok->tokens[id];
    const char *s = tok->dec_pool + t->dec_off;
    *n = t->dec_len;
    if (tok->dec_strip_space && (prev < 0 || prev == tok->bos) && *n > 0 && s[0] == ' ') { s++; (*n)--; }
    return s;
}

int ft_tokenizer_decode(const ft_tokenizer *tok, const int *ids, int n, int flags, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    if (!tok || (n > 0 && !ids) || n < 0) return ft_error(FT_ERR_INVALID, "ft_tokenizer_decode: bad arguments");
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        FT_TRY(check_id(tok, ids[i]));
        total += tok->tokens[ids[i]].dec_len + (tok->dec_wordpiece ? 1 : 0);
    }
    char *buf = malloc(total + 1);
    if (!buf) return ft_error(FT_ERR_NOMEM, "ft_tokenizer_decode: cannot allocate %zu bytes", total + 1);
    size_t k = 0;
    int emitted = 0;
    for (int i = 0; i < n; i++) {
        if ((flags & FT_TOK_SKIP_SPECIAL) && (tok->tokens[ids[i]].flags & FT_TOKF_SPECIAL)) continue;
        if (tok->dec_wordpiece) {   /* the first token kept is the first of the text (as HF skips before decoding) */
            k += ft__wordpiece_decode_token(tok, emitted++ == 0, ids[i], buf + k);
            continue;
        }
        size_t m;
        const char *s = piece_bytes(tok, i > 0 ? ids[i - 1] : -1, ids[i], &m);
        memcpy(buf + k, s, m);
        k += m;
    }
    buf[k] = 0;
    *out = buf;
    if (len) *len = k;
    return FT_OK;
}

int ft_tokenizer_decode_piece(const ft_tokenizer *tok, int prev, int id, char *buf, size_t cap) {
    FT_TRY(check_id(tok, id));
    if (tok->dec_wordpiece) {
        size_t need = tok->tokens[id].dec_len + 1;
        char stackbuf[256];
        char *t = need <= sizeof stackbuf ? stackbuf : malloc(need);
        if (!t) return ft_error(FT_ERR_NOMEM, "ft_tokenizer_decode_piece: out of memory");
        size_t m = ft__wordpiece_decode_token(tok, prev < 0, id, t);
        int rc = (int)m;
        if (m > cap) rc = ft_error(FT_ERR_RANGE, "ft_tokenizer_decode_piece: token %d needs %zu bytes, buffer has %zu", id, m, cap);
        else { memcpy(buf, t, m); if (m < cap) buf[m] = 0; }
        if (t != stackbuf) free(t);
        return rc;
    }
    size_t m;
    const char *s = piece_bytes(tok, prev, id, &m);
    if (m > cap) return ft_error(FT_ERR_RANGE, "ft_tokenizer_decode_piece: token %d needs %zu bytes, buffer has %zu", id, m, cap);
    memcpy(buf, s, m);
    if (m < cap) buf[m] = 0;
    return (int)m;
}
