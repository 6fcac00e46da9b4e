/* load_wordpiece.c — a BERT WordPiece tokenizer from vocab.txt (+ tokenizer_config.json), built the
 * way transformers' BertTokenizer builds it:
 *
 *   vocab.txt    line i (0-based) is token i; lines end at "\n" ("\r\n" too) and trailing whitespace
 *                is trimmed (HF's WordPiece::read_file); a repeated token keeps its last id for lookups
 *   normalizer   BertNormalizer(clean_text, handle_chinese_chars = tokenize_chinese_chars,
 *                strip_accents, lowercase = do_lower_case); defaults True / True / null / True
 *   pre-tok      BertPreTokenizer
 *   model        WordPiece(unk_token, "##", 100)
 *   post         [CLS]:0 $A:0 [SEP]:0 / [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1 (TemplateProcessing)
 *   decoder      WordPiece("##", cleanup)
 *   specials     unk/sep/pad/cls/mask_token (default [UNK] [SEP] [PAD] [CLS] [MASK]) are special added
 *                tokens, matched in the raw text before normalization
 * The rest of tokenizer_config.json (added_tokens_decoder, model_max_length, ...) is applied by
 * ft__tok_apply_config_file as for every tokenizer. */
#include "tokenizer_impl.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* length of s[0..n) without trailing whitespace (Rust's str::trim_end: White_Space) */
static size_t trim_end(const char *s, size_t n) {
    while (n > 0) {
        size_t k = n - 1;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80 && n - k < 4) k--;
        int32_t cp;
        int len = ft__tok_utf8_next((const unsigned char *)s + k, n - k, &cp);
        if ((size_t)len != n - k || cp < 0 || !ft__tok_is_bert_whitespace(cp)) break;
        n = k;
    }
    return n;
}

static int read_vocab_txt(ft_tokenizer *tok, const char *path) {
    char *data; size_t size;
    FT_TRY(ft_file_read_all(path, &data, &size));
    /* line starts, so that the lines can be added last first (a repeated token keeps its last id) */
    size_t *start = NULL;
    int n = 0, cap = 0, rc = FT_OK;
    for (size_t pos = 0; pos < size;) {
        if ((rc = ft__tok_reserve((void **)&start, sizeof *start, n + 2, &cap)) < 0) goto done;
        start[n++] = pos;
        const char *nl = memchr(data + pos, '\n', size - pos);
        pos = nl ? (size_t)(nl - data) + 1 : size;
    }
    if (n == 0) { rc = ft_error(FT_ERR_FORMAT, "%s: empty vocabulary", path); goto done; }
    if (n >= (1 << 30)) { rc = ft_error(FT_ERR_FORMAT, "%s: too many lines", path); goto done; }
    start[n] = size;
    for (int i = n - 1; i >= 0; i--) {
        size_t len = start[i + 1] - start[i];
        const char *s = data + start[i];
        if (len > 0 && s[len - 1] == '\n') len--;
        if (len > 0 && s[len - 1] == '\r') len--;
        len = trim_end(s, len);
        if (ft__tok_lookup(tok, s, len) >= 0)
            FT_LOGW("%s: line %d: token '%.*s' appears again later; the later id is used", path, i + 1, (int)len, s);
        if ((rc = ft__tok_set_token(tok, i, s, len, FT_TOKF_MODEL)) < 0) goto done;
    }
done:
    free(start);
    free(data);
    return rc;
}

static int add_bert_norm(ft_tokenizer *tok, int lowercase, int strip_accents, int chinese) {
    tok->norm = calloc(1, sizeof *tok->norm);
    if (!tok->norm) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    tok->n_norm = 1;
    tok->norm[0] = (ft_norm_step){ .kind = FT_NORM_BERT, .clean_text = 1, .handle_chinese_chars = (int8_t)chinese,
                                   .strip_accents = (int8_t)strip_accents, .lowercase = (int8_t)lowercase };
    tok->pre = calloc(1, sizeof *tok->pre);
    if (!tok->pre) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    tok->n_pre = 1;
    tok->pre[0].kind = FT_PRE_BERT;
    return FT_OK;
}

/* The special token named by cfg[key] (default def): a special added token; its id or -1. */
static int special(ft_tokenizer *tok, const cJSON *cfg, const char *key, const char *def) {
    const cJSON *v = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL;
    if (v && cJSON_IsNull(v)) return -1;
    const char *name = v ? ft__json_token_text(v) : NULL;
    if (!name) name = def;
    int id = ft__tok_lookup(tok, name, strlen(name));
    if (id < 0) { FT_LOGW("%s: %s '%s' is not in the vocabulary", tok->source, key, name); return -1; }
    return ft__tok_add_added(tok, id, 1, 0, 0, 0, 0) < 0 ? -2 : id;
}

static int build(ft_tokenizer *tok, const char *vocab_path, const cJSON *cfg) {
    FT_TRY(read_vocab_txt(tok, vocab_path));
    int lowercase = ft__json_bool(cfg, "do_lower_case", 1);
    int chinese = ft__json_bool(cfg, "tokenize_chinese_chars", 1);
    int strip = ft__json_bool(cfg, "strip_accents", -1);   /* null / absent: follows lowercase */
    FT_TRY(add_bert_norm(tok, lowercase, strip, chinese));
    int unk = special(tok, cfg, "unk_token", "[UNK]"), sep = special(tok, cfg, "sep_token", "[SEP]");
    int pad = special(tok, cfg, "pad_token", "[PAD]"), cls = special(tok, cfg, "cls_token", "[CLS]");
    int mask = special(tok, cfg, "mask_token", "[MASK]");
    if (unk == -2 || sep == -2 || pad == -2 || cls == -2 || mask == -2) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    tok->unk_id = unk; tok->pad = pad; tok->mask = mask;
    if (cls >= 0 && sep >= 0) {
        ft__tok_set_bert_post(tok, cls, sep);
        tok->post_kind = FT_POST_TEMPLATE;
    }
    tok->dec_wordpiece = 1;
    tok->dec_wp_cleanup = 1;
    tok->dec_wp_prefix = ft__tok_strdup("##");
    if (!tok->dec_wp_prefix) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    tok->from_vocab_files = 1;
    tok->wp_max_chars = 100;
    FT_TRY(ft__wordpiece_finish(tok));
    return ft__tok_finalize(tok);
}

int ft__tok_load_wordpiece(ft_tokenizer **out, const char *vocab_path, const char *config_path) {
    *out = NULL;
    cJSON *cfg = NULL;
    if (config_path) {
        FT_TRY(ft__json_parse_file(&cfg, config_path));
        if (!cJSON_IsObject(cfg)) { cJSON_Delete(cfg); return ft_error(FT_ERR_FORMAT, "%s: expected a JSON object", config_path); }
    }
    ft_tokenizer *tok;
    int rc = ft__tok_alloc(&tok, vocab_path);
    if (rc == FT_OK) {
        rc = build(tok, vocab_path, cfg);
        if (rc < 0) ft_tokenizer_free(tok); else *out = tok;
    }
    cJSON_Delete(cfg);
    return rc;
}
