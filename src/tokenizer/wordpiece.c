/* wordpiece.c — the WordPiece model (BERT) and the WordPiece decoder, as HF tokenizers does them.
 *
 * Model, per pre-tokenized word: more than max_input_chars_per_word characters -> [UNK]. Otherwise,
 * from the start of the word, the longest prefix in the vocabulary (after the first piece looked up
 * as "##" + text) becomes a token and the search goes on after it; if at some point no prefix (not
 * even one character) is in the vocabulary, the whole word is one [UNK]. The search starts at the
 * longest vocabulary token's length rather than at the word's end: same result, fewer lookups.
 *
 * Decoder (HF's decoders.WordPiece, what transformers 5 BertTokenizer.decode returns): every token
 * but the first gets a space before it, unless it starts with the prefix "##", which is dropped
 * instead; with cleanup each token's text then has " ." " ?" " !" " ," " ' " " n't" " 'm" " 's"
 * " 've" " 're" replaced by the same without the space, and " do not" by " don't" (HF applies this
 * per token, so "it ' s" stays as it is). transformers 5 does not clean up spaces again
 * (clean_up_tokenization_spaces is False for BERT), so this is the whole decode. */
#include "tokenizer_impl.h"
#include "finetune/status.h"

#include <string.h>

int ft__wordpiece_finish(ft_tokenizer *tok) {
    if (!tok->wp_prefix) {
        tok->wp_prefix = ft__tok_strdup("##");
        if (!tok->wp_prefix) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    }
    if (tok->wp_max_chars < 0) tok->wp_max_chars = 100;
    if (tok->unk_id < 0)
        return ft_error(FT_ERR_FORMAT, "%s: the WordPiece unk token is not in the vocabulary", tok->source);
    int maxlen = 0;
    for (int id = 0; id < tok->n_tokens; id++)
        if ((tok->tokens[id].flags & FT_TOKF_MODEL) && (int)tok->tokens[id].len > maxlen) maxlen = (int)tok->tokens[id].len;
    tok->wp_max_len = maxlen;
    tok->wordpiece = 1;
    tok->kind = FT_TOK_WORDPIECE;
    return FT_OK;
}

int ft__wordpiece_encode_word(const ft_tokenizer *tok, ft_tok_work *w, const char *s, size_t len) {
    if (len == 0) return FT_OK;
    if (len > (size_t)(INT32_MAX / 4)) return ft_error(FT_ERR_RANGE, "tokenizer: word of %zu bytes is too long", len);
    /* character boundaries: b[0] = 0 < b[1] < ... < b[nc] = len (an invalid byte is one character) */
    FT_TRY(ft__tok_reserve((void **)&w->bounds, sizeof *w->bounds, (int)len + 1, &w->bounds_cap));
    uint32_t *b = w->bounds;
    int nc = 0;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        b[nc++] = (uint32_t)i;
        i += (size_t)ft__tok_utf8_next((const unsigned char *)s + i, len - i, &cp);
    }
    b[nc] = (uint32_t)len;
    if (nc > tok->wp_max_chars) return ft__tok_push(w, tok->unk_id);

    const size_t pl = strlen(tok->wp_prefix);
    const size_t maxlen = (size_t)tok->wp_max_len;
    FT_TRY(ft__tok_reserve_bytes(&w->tmp, pl + len + 1, &w->tmp_cap));
    memcpy(w->tmp, tok->wp_prefix, pl);
    const int first_out = w->n;
    int start = 0;
    while (start < nc) {
        /* the longest end whose piece can fit in a vocabulary token */
        int end = nc;
        size_t extra = start > 0 ? pl : 0;
        while (end > start && (size_t)(b[end] - b[start]) + extra > maxlen) end--;
        int id = -1;
        for (; end > start; end--) {
            size_t n = b[end] - b[start];
            if (start == 0) {
                id = ft__tok_lookup_model(tok, s, n);
            } else {
                memcpy(w->tmp + pl, s + b[start], n);
                id = ft__tok_lookup_model(tok, w->tmp, pl + n);
            }
            if (id >= 0) break;
        }
        if (id < 0) {   /* no split: the word is one unk */
            w->n = first_out;
            return ft__tok_push(w, tok->unk_id);
        }
        FT_TRY(ft__tok_push(w, id));
        start = end;
    }
    return FT_OK;
}

/* HF's cleanup, in its order; each replacement shrinks the text or keeps its length */
static const struct { const char *from, *to; } k_cleanup[] = {
    {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"},
    {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
};

static size_t replace_all(char *s, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    if (n < fl || !memchr(s, from[0], n)) return n;
    size_t r = 0, wr = 0;
    while (r < n) {   /* tl <= fl: writing never overtakes reading */
        if (r + fl <= n && memcmp(s + r, from, fl) == 0) { memmove(s + wr, to, tl); wr += tl; r += fl; }
        else s[wr++] = s[r++];
    }
    return wr;
}

size_t ft__wordpiece_decode_token(const ft_tokenizer *tok, int first, int id, char *out) {
    const ft_tok_token *t = &tok->tokens[id];
    const char *s = tok->dec_pool + t->dec_off;
    size_t n = t->dec_len, k = 0;
    const char *pre = tok->dec_wp_prefix ? tok->dec_wp_prefix : "##";
    size_t pl = strlen(pre);
    if (!first) {
        if (n >= pl && memcmp(s, pre, pl) == 0) { s += pl; n -= pl; }
        else out[k++] = ' ';
    }
    memcpy(out + k, s, n);
    k += n;
    if (tok->dec_wp_cleanup)
        for (size_t i = 0; i < sizeof k_cleanup / sizeof k_cleanup[0]; i++) k = replace_all(out, k, k_cleanup[i].from, k_cleanup[i].to);
    return k;
}
