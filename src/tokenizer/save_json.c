/* save_json.c — ft_tokenizer_save_json: a HF tokenizers tokenizer.json for any loaded tokenizer
 * (BPE or WordPiece).
 *
 * The pipeline is written back as loaded (normalizer, pre_tokenizer steps); llama2.c tokenizers get
 * the Llama-2 form (Prepend + Replace normalizer, byte_fallback, Replace/ByteFallback/Fuse/Strip
 * decoder) and their score-derived merges, highest score first. FT_TOK_ADD_SPECIAL's ids and the pair
 * template become a TemplateProcessing post-processor (RobertaProcessing / BertProcessing when the
 * tokenizer had one). WordPiece: BertNormalizer, BertPreTokenizer, WordPiece model and decoder. Output
 * is deterministic: vocab in id order, merges in rank order, fixed key order and layout, written
 * atomically. */
#include "tokenizer_impl.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the output: the core string builder plus the first token that is not valid UTF-8 */
typedef struct tjson { ft__sb s; int bad_id; } tjson;

static void put(tjson *b, const char *s) { ft__sb_puts(&b->s, s); }
static void put_int(tjson *b, long v) { ft__sb_printf(&b->s, "%ld", v); }
static void put_bool(tjson *b, int v) { put(b, v ? "true" : "false"); }

/* A JSON string (serde_json's escapes). The bytes must be valid UTF-8 (else FT_ERR_UNSUPPORTED). */
static void put_str_n(tjson *b, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int k = ft__tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (cp < 0) { if (!b->s.err) b->s.err = FT_ERR_UNSUPPORTED; return; }
        i += (size_t)k;
    }
    ft__sb_put_json(&b->s, s, n, 0);
}
static void put_str(tjson *b, const char *s) { put_str_n(b, s, strlen(s)); }
static void put_tok(tjson *b, const ft_tokenizer *tok, int id) {
    int had = b->s.err;
    put_str_n(b, ft_tok_str(tok, id), tok->tokens[id].len);
    if (!had && b->s.err == FT_ERR_UNSUPPORTED) b->bad_id = id;
}

static void put_norm_step(tjson *b, const ft_norm_step *st) {
    switch (st->kind) {
    case FT_NORM_NFC: put(b, "{\"type\": \"NFC\"}"); break;
    case FT_NORM_NFD: put(b, "{\"type\": \"NFD\"}"); break;
    case FT_NORM_NFKC: put(b, "{\"type\": \"NFKC\"}"); break;
    case FT_NORM_NFKD: put(b, "{\"type\": \"NFKD\"}"); break;
    case FT_NORM_LOWERCASE: put(b, "{\"type\": \"Lowercase\"}"); break;
    case FT_NORM_PREPEND: put(b, "{\"type\": \"Prepend\", \"prepend\": "); put_str(b, st->a); put(b, "}"); break;
    case FT_NORM_REPLACE:
        put(b, "{\"type\": \"Replace\", \"pattern\": {\"String\": "); put_str(b, st->a);
        put(b, "}, \"content\": "); put_str(b, st->b); put(b, "}");
        break;
    case FT_NORM_BERT:
        put(b, "{\"type\": \"BertNormalizer\", \"clean_text\": "); put_bool(b, st->clean_text);
        put(b, ", \"handle_chinese_chars\": "); put_bool(b, st->handle_chinese_chars);
        put(b, ", \"strip_accents\": "); if (st->strip_accents < 0) put(b, "null"); else put_bool(b, st->strip_accents);
        put(b, ", \"lowercase\": "); put_bool(b, st->lowercase); put(b, "}");
        break;
    case FT_NORM_STRIP_ACCENTS: put(b, "{\"type\": \"StripAccents\"}"); break;
    }
}

static const char *behavior_name(ft_split_behavior beh) {
    switch (beh) {
    case FT_SPLIT_REMOVED: return "Removed";
    case FT_SPLIT_MERGED_PREV: return "MergedWithPrevious";
    case FT_SPLIT_MERGED_NEXT: return "MergedWithNext";
    case FT_SPLIT_CONTIGUOUS: return "Contiguous";
    case FT_SPLIT_ISOLATED: break;
    }
    return "Isolated";
}

static void put_pre_step(tjson *b, const ft_pretok_step *st) {
    switch (st->kind) {
    case FT_PRE_BYTE_LEVEL:
        put(b, "{\"type\": \"ByteLevel\", \"add_prefix_space\": "); put_bool(b, st->add_prefix_space);
        put(b, ", \"trim_offsets\": "); put_bool(b, st->trim_offsets);
        put(b, ", \"use_regex\": "); put_bool(b, st->use_regex); put(b, "}");
        break;
    case FT_PRE_SPLIT:
        put(b, st->pattern_is_regex ? "{\"type\": \"Split\", \"pattern\": {\"Regex\": " : "{\"type\": \"Split\", \"pattern\": {\"String\": ");
        put_str(b, st->pattern);
        put(b, "}, \"behavior\": "); put_str(b, behavior_name(st->behavior));
        put(b, ", \"invert\": "); put_bool(b, st->invert); put(b, "}");
        break;
    case FT_PRE_METASPACE:
        put(b, "{\"type\": \"Metaspace\", \"replacement\": "); put_str(b, st->replacement ? st->replacement : FT_SPM_SPACE);
        put(b, ", \"prepend_scheme\": ");
        put(b, st->prepend_scheme == FT_PREPEND_FIRST ? "\"first\"" : st->prepend_scheme == FT_PREPEND_NEVER ? "\"never\"" : "\"always\"");
        put(b, ", \"split\": "); put_bool(b, st->split); put(b, "}");
        break;
    case FT_PRE_DIGITS:
        put(b, "{\"type\": \"Digits\", \"individual_digits\": "); put_bool(b, st->individual_digits); put(b, "}");
        break;
    case FT_PRE_BERT: put(b, "{\"type\": \"BertPreTokenizer\"}"); break;
    }
}

static void put_item(tjson *b, const ft_tokenizer *tok, int id, int type_id) {
    if (id == FT_TMPL_SEQ_A || id == FT_TMPL_SEQ_B) {
        put(b, id == FT_TMPL_SEQ_A ? "{\"Sequence\": {\"id\": \"A\", \"type_id\": " : "{\"Sequence\": {\"id\": \"B\", \"type_id\": ");
    } else {
        put(b, "{\"SpecialToken\": {\"id\": "); put_tok(b, tok, id); put(b, ", \"type_id\": ");
    }
    put_int(b, type_id); put(b, "}}");
}

/* ["<s>", 0] */
static void put_pair_id(tjson *b, const ft_tokenizer *tok, int id) {
    put(b, "["); put_tok(b, tok, id); put(b, ", "); put_int(b, id); put(b, "]");
}

static void put_template(tjson *b, const ft_tokenizer *tok) {
    if (tok->post_kind == FT_POST_ROBERTA || tok->post_kind == FT_POST_BERT) {
        int roberta = tok->post_kind == FT_POST_ROBERTA;
        put(b, roberta ? "{\"type\": \"RobertaProcessing\", \"sep\": " : "{\"type\": \"BertProcessing\", \"sep\": ");
        put_pair_id(b, tok, tok->suffix[0]); put(b, ", \"cls\": "); put_pair_id(b, tok, tok->prefix[0]);
        if (roberta) {
            int aps = 0;
            for (int i = 0; i < tok->n_pre; i++) if (tok->pre[i].kind == FT_PRE_BYTE_LEVEL) aps = tok->pre[i].add_prefix_space;
            put(b, ", \"trim_offsets\": true, \"add_prefix_space\": "); put_bool(b, aps);
        }
        put(b, "}");
        return;
    }
    ft_tok_tmpl_item pair[FT_TOK_MAX_PAIR];
    int np = ft__tok_pair_template(tok, pair);
    put(b, "{\"type\": \"TemplateProcessing\", \"single\": [");
    int first = 1;
    for (int i = 0; i < tok->n_prefix; i++) { put(b, first ? "" : ", "); first = 0; put_item(b, tok, tok->prefix[i], 0); }
    put(b, first ? "" : ", ");
    put_item(b, tok, FT_TMPL_SEQ_A, 0);
    for (int i = 0; i < tok->n_suffix; i++) { put(b, ", "); put_item(b, tok, tok->suffix[i], 0); }
    put(b, "], \"pair\": [");
    for (int i = 0; i < np; i++) { put(b, i ? ", " : ""); put_item(b, tok, pair[i].id, pair[i].type_id); }
    put(b, "], \"special_tokens\": {");
    int all[2 * FT_TOK_MAX_AFFIX + FT_TOK_MAX_PAIR], n = 0;
    for (int i = 0; i < tok->n_prefix; i++) all[n++] = tok->prefix[i];
    for (int i = 0; i < tok->n_suffix; i++) all[n++] = tok->suffix[i];
    for (int i = 0; i < np; i++) if (pair[i].id >= 0) all[n++] = pair[i].id;
    int written = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < i; j++) dup |= all[j] == all[i];
        if (dup) continue;
        put(b, written++ ? ", " : "");
        put_tok(b, tok, all[i]); put(b, ": {\"id\": "); put_tok(b, tok, all[i]);
        put(b, ", \"ids\": ["); put_int(b, all[i]); put(b, "], \"tokens\": ["); put_tok(b, tok, all[i]); put(b, "]}");
    }
    put(b, "}}");
}

static int cmp_added_id(const void *x, const void *y, void *ctx) {
    const ft_tokenizer *tok = ctx;
    int a = tok->added[*(const int *)x].id, c = tok->added[*(const int *)y].id;
    return (a > c) - (a < c);
}

static int write_json(tjson *b, const ft_tokenizer *tok) {
    /* a vocabulary string held by two model ids cannot be a JSON object key twice */
    for (int id = 0; id < tok->n_tokens; id++) {
        const ft_tok_token *t = &tok->tokens[id];
        if ((t->flags & FT_TOKF_MODEL) && ft__tok_lookup_model(tok, ft_tok_str(tok, id), t->len) != id)
            return ft_error(FT_ERR_UNSUPPORTED, "tokenizer.json: token string '%s' (id %d) also has id %d",
                            ft_tok_str(tok, id), id, ft__tok_lookup_model(tok, ft_tok_str(tok, id), t->len));
    }
    put(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    int *order = malloc(sizeof *order * (size_t)(tok->n_added + 1));   /* added tokens in id order */
    if (!order) return ft_error(FT_ERR_NOMEM, "tokenizer.json: out of memory");
    for (int i = 0; i < tok->n_added; i++) order[i] = i;
    qsort_r(order, (size_t)tok->n_added, sizeof *order, cmp_added_id, (void *)tok);
    int first = 1;
    for (int k = 0; k < tok->n_added; k++) {
        const ft_tok_added *a = &tok->added[order[k]];
        int id = a->id;
        put(b, first ? "\n    {\"id\": " : ",\n    {\"id\": "); first = 0;
        put_int(b, id);
        put(b, ", \"content\": "); put_tok(b, tok, id);
        put(b, ", \"single_word\": "); put_bool(b, a->single_word);
        put(b, ", \"lstrip\": "); put_bool(b, a->lstrip);
        put(b, ", \"rstrip\": "); put_bool(b, a->rstrip);
        put(b, ", \"normalized\": "); put_bool(b, a->normalized);
        put(b, ", \"special\": "); put_bool(b, a->special); put(b, "}");
    }
    free(order);
    put(b, first ? "],\n" : "\n  ],\n");

    put(b, "  \"normalizer\": ");
    if (tok->n_norm == 0) put(b, "null");
    else if (tok->n_norm == 1) put_norm_step(b, &tok->norm[0]);
    else {
        put(b, "{\"type\": \"Sequence\", \"normalizers\": [");
        for (int i = 0; i < tok->n_norm; i++) { put(b, i ? ", " : ""); put_norm_step(b, &tok->norm[i]); }
        put(b, "]}");
    }
    put(b, ",\n  \"pre_tokenizer\": ");
    if (tok->n_pre == 0) put(b, "null");
    else if (tok->n_pre == 1) put_pre_step(b, &tok->pre[0]);
    else {
        put(b, "{\"type\": \"Sequence\", \"pretokenizers\": [");
        for (int i = 0; i < tok->n_pre; i++) { put(b, i ? ", " : ""); put_pre_step(b, &tok->pre[i]); }
        put(b, "]}");
    }
    put(b, ",\n  \"post_processor\": ");
    if (tok->n_prefix == 0 && tok->n_suffix == 0 && tok->n_pair == 0) put(b, "null");
    else put_template(b, tok);

    put(b, ",\n  \"decoder\": ");
    if (tok->dec_byte_level) {
        put(b, "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true}");
    } else if (tok->dec_wordpiece) {
        put(b, "{\"type\": \"WordPiece\", \"prefix\": "); put_str(b, tok->dec_wp_prefix ? tok->dec_wp_prefix : "##");
        put(b, ", \"cleanup\": "); put_bool(b, tok->dec_wp_cleanup); put(b, "}");
    } else {
        int nd = 0;
        put(b, "{\"type\": \"Sequence\", \"decoders\": [");
        if (tok->dec_replace_from) {
            put(b, "{\"type\": \"Replace\", \"pattern\": {\"String\": "); put_str(b, tok->dec_replace_from);
            put(b, "}, \"content\": "); put_str(b, tok->dec_replace_to ? tok->dec_replace_to : ""); put(b, "}");
            nd++;
        }
        if (tok->dec_byte_fallback) { put(b, nd++ ? ", " : ""); put(b, "{\"type\": \"ByteFallback\"}"); }
        put(b, nd++ ? ", " : ""); put(b, "{\"type\": \"Fuse\"}");
        if (tok->dec_strip_space) put(b, ", {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}");
        put(b, "]}");
    }

    if (tok->wordpiece) {
        put(b, ",\n  \"model\": {\n    \"type\": \"WordPiece\",\n    \"unk_token\": "); put_tok(b, tok, tok->unk_id);
        put(b, ",\n    \"continuing_subword_prefix\": "); put_str(b, tok->wp_prefix ? tok->wp_prefix : "##");
        put(b, ",\n    \"max_input_chars_per_word\": "); put_int(b, tok->wp_max_chars);
    } else {
        put(b, ",\n  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ");
        if (tok->unk_id >= 0) put_tok(b, tok, tok->unk_id); else put(b, "null");
        put(b, ",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": ");
        put_bool(b, tok->fuse_unk);
        put(b, ",\n    \"byte_fallback\": "); put_bool(b, tok->byte_fallback);
        put(b, ",\n    \"ignore_merges\": "); put_bool(b, tok->ignore_merges);
    }
    put(b, ",\n    \"vocab\": {");
    first = 1;
    for (int id = 0; id < tok->n_tokens; id++) {
        if (!(tok->tokens[id].flags & FT_TOKF_MODEL)) continue;
        put(b, first ? "\n      " : ",\n      "); first = 0;
        put_tok(b, tok, id); put(b, ": "); put_int(b, id);
    }
    if (tok->wordpiece) {
        put(b, first ? "}\n  }\n}\n" : "\n    }\n  }\n}\n");
        goto end;
    }
    put(b, first ? "},\n    \"merges\": [" : "\n    },\n    \"merges\": [");
    for (int i = 0; i < tok->n_merges; i++) {
        put(b, i ? ",\n      [" : "\n      [");
        put_tok(b, tok, tok->merge_list[i][0]); put(b, ", "); put_tok(b, tok, tok->merge_list[i][1]); put(b, "]");
    }
    put(b, tok->n_merges ? "\n    ]\n  }\n}\n" : "]\n  }\n}\n");
end:
    if (b->s.err == FT_ERR_UNSUPPORTED)
        return ft_error(FT_ERR_UNSUPPORTED, "tokenizer.json: token %d is not valid UTF-8 (JSON strings cannot hold it)", b->bad_id);
    if (b->s.err) return ft_error(b->s.err, "tokenizer.json: out of memory");
    return FT_OK;
}

int ft_tokenizer_save_json(const ft_tokenizer *tok, const char *path) {
    if (!tok || !path) return ft_error(FT_ERR_INVALID, "ft_tokenizer_save_json: missing tokenizer or path");
    tjson b = {0};
    int rc = write_json(&b, tok);
    if (rc == FT_OK) rc = ft_file_write_atomic(path, b.s.p, b.s.n);
    if (rc < 0) ft_error_wrap(rc, "%s", path);
    ft__sb_free(&b.s);
    return rc;
}
