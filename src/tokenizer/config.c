/* config.c — tokenizer_config.json / special_tokens_map.json (BOS/EOS/PAD/UNK/CLS/SEP/MASK names,
 * AddedToken lstrip/rstrip, add_bos_token, add_eos_token, added_tokens_decoder, model_max_length,
 * add_prefix_space for tokenizers built from vocab files). */
#include "tokenizer_impl.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

void ft__tok_set_affixes(ft_tokenizer *tok, int add_bos, int add_eos) {
    tok->n_prefix = 0; tok->n_suffix = 0;
    tok->n_pair = 0; tok->pair_type_zero = 0;   /* transformers rebuilds the template from the flags */
    if (tok->post_kind == FT_POST_ROBERTA || tok->post_kind == FT_POST_BERT) tok->post_kind = FT_POST_TEMPLATE;
    if (add_bos && tok->bos >= 0) tok->prefix[tok->n_prefix++] = tok->bos;
    if (add_eos && tok->eos >= 0) tok->suffix[tok->n_suffix++] = tok->eos;
}

void ft__tok_guess_bos_eos(ft_tokenizer *tok) {
    static const char *const bos_names[] = { "<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", NULL };
    static const char *const eos_names[] = { "</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", NULL };
    for (int i = 0; tok->bos < 0 && bos_names[i]; i++) tok->bos = ft__tok_lookup(tok, bos_names[i], strlen(bos_names[i]));
    for (int i = 0; tok->eos < 0 && eos_names[i]; i++) tok->eos = ft__tok_lookup(tok, eos_names[i], strlen(eos_names[i]));
    /* GPT-2 uses <|endoftext|> for both */
    if (tok->bos < 0 && tok->eos >= 0 && strcmp(ft_tok_str(tok, tok->eos), "<|endoftext|>") == 0) tok->bos = tok->eos;
}

static int contains(const int *v, int n, int x) {
    for (int i = 0; i < n; i++) if (v[i] == x) return 1;
    return 0;
}

/* Sets *slot from a config value: a name in the vocabulary, or null for "none". An AddedToken
 * object ({"content": ..., "lstrip": true, ...}) also sets the token's lstrip / rstrip (RoBERTa's
 * <mask> has lstrip). */
static int apply_name(ft_tokenizer *tok, const cJSON *cfg, const char *key, int *slot, const char *path, int *changed) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v) return FT_OK;
    if (cJSON_IsNull(v)) { *slot = -1; return FT_OK; }
    const char *name = ft__json_token_text(v);
    if (!name) return FT_OK;
    int id = ft__tok_lookup(tok, name, strlen(name));
    if (id < 0) { FT_LOGW("%s: %s '%s' is not in the vocabulary; ignored", path, key, name); return FT_OK; }
    *slot = id;
    if (!(tok->tokens[id].flags & FT_TOKF_SPECIAL)) {   /* named special tokens are special */
        FT_TRY(ft__tok_add_added(tok, id, 1, 0, 0, 0, 0));
        *changed = 1;
    }
    if (cJSON_IsObject(v)) {
        for (int i = 0; i < tok->n_added; i++) {
            if (tok->added[i].id != id) continue;
            tok->added[i].lstrip = (uint8_t)ft__json_bool(v, "lstrip", tok->added[i].lstrip);
            tok->added[i].rstrip = (uint8_t)ft__json_bool(v, "rstrip", tok->added[i].rstrip);
            tok->added[i].single_word = (uint8_t)ft__json_bool(v, "single_word", tok->added[i].single_word);
        }
    }
    return FT_OK;
}

static int apply_one(ft_tokenizer *tok, const cJSON *cfg, const char *path, int *changed) {
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder");
    if (cJSON_IsObject(dec)) {
        ft__tok_allow_ids(tok, cJSON_GetArraySize(dec));
        for (const cJSON *it = dec->child; it; it = it->next) {
            char *end;
            long id = strtol(it->string, &end, 10);
            const char *content = ft__json_str(it, "content", NULL);
            if (*end || id < 0 || id >= (1 << 30) || !content || !*content) continue;
            const ft_tok_token *t = id < tok->n_tokens ? &tok->tokens[id] : NULL;
            int present = t && (t->flags & FT_TOKF_PRESENT);
            if (present && (t->flags & FT_TOKF_ADDED)) continue;   /* tokenizer.json already said */
            if (present && (t->len != strlen(content) || memcmp(ft_tok_str(tok, (int)id), content, t->len) != 0)) continue;
            if (!present) FT_TRY(ft__tok_set_token(tok, (int)id, content, strlen(content), 0));
            FT_TRY(ft__tok_add_added(tok, (int)id, ft__json_bool(it, "special", 0), ft__json_bool(it, "lstrip", 0),
                                    ft__json_bool(it, "rstrip", 0), ft__json_bool(it, "single_word", 0),
                                    ft__json_bool(it, "normalized", 0)));
            *changed = 1;
        }
    }
    int unk = tok->unk_id >= 0 ? tok->unk_id : tok->unk_special;
    FT_TRY(apply_name(tok, cfg, "bos_token", &tok->bos, path, changed));
    FT_TRY(apply_name(tok, cfg, "eos_token", &tok->eos, path, changed));
    FT_TRY(apply_name(tok, cfg, "pad_token", &tok->pad, path, changed));
    FT_TRY(apply_name(tok, cfg, "unk_token", &unk, path, changed));
    if (tok->unk_id < 0) tok->unk_special = unk;   /* the model's own unk (encode uses it) stays */
    FT_TRY(apply_name(tok, cfg, "cls_token", &tok->cls, path, changed));
    FT_TRY(apply_name(tok, cfg, "sep_token", &tok->sep, path, changed));
    FT_TRY(apply_name(tok, cfg, "mask_token", &tok->mask, path, changed));
    const cJSON *mml = cJSON_GetObjectItemCaseSensitive(cfg, "model_max_length");
    if (cJSON_IsNumber(mml)) tok->model_max_length = mml->valuedouble >= 1 && mml->valuedouble <= 1e9 ? (int)mml->valuedouble : 0;
    /* add_prefix_space: transformers passes it to the ByteLevel pre-tokenizer it builds from vocab
     * files (GPT-2, RoBERTa); a tokenizer.json says it in its own pre_tokenizer */
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(cfg, "add_prefix_space");
    if (cJSON_IsBool(aps) && tok->from_vocab_files)
        for (int i = 0; i < tok->n_pre; i++)
            if (tok->pre[i].kind == FT_PRE_BYTE_LEVEL) tok->pre[i].add_prefix_space = cJSON_IsTrue(aps);
    return FT_OK;
}

static int apply_file(ft_tokenizer *tok, const char *path, int had_bos, int had_eos, int *changed) {
    cJSON *cfg;
    int rc = ft__json_parse_file(&cfg, path);
    if (rc < 0) return rc;
    if (!cJSON_IsObject(cfg)) {
        rc = ft_error(FT_ERR_FORMAT, "%s: expected a JSON object", path);
    } else if ((rc = apply_one(tok, cfg, path, changed)) == FT_OK) {
        const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
        const cJSON *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
        if (cJSON_IsBool(ab) || cJSON_IsBool(ae)) {
            int add_bos = cJSON_IsBool(ab) ? cJSON_IsTrue(ab) : had_bos;
            int add_eos = cJSON_IsBool(ae) ? cJSON_IsTrue(ae) : had_eos;
            ft__tok_set_affixes(tok, add_bos, add_eos);
        }
    }
    cJSON_Delete(cfg);
    return rc;
}

int ft__tok_apply_config_file(ft_tokenizer *tok, const char *path) {
    int changed = 0;
    int had_bos = contains(tok->prefix, tok->n_prefix, tok->bos), had_eos = contains(tok->suffix, tok->n_suffix, tok->eos);
    FT_TRY(apply_file(tok, path, had_bos, had_eos, &changed));
    return changed ? ft__tok_finalize(tok) : FT_OK;
}

int ft__tok_apply_config(ft_tokenizer *tok, const char *dir) {
    static const char *const files[] = { "special_tokens_map.json", "tokenizer_config.json" };
    int changed = 0, rc = FT_OK;
    int had_bos = contains(tok->prefix, tok->n_prefix, tok->bos), had_eos = contains(tok->suffix, tok->n_suffix, tok->eos);
    for (int f = 0; f < 2 && rc == FT_OK; f++) {
        char path[4096];
        if (ft_path_join(path, sizeof path, dir, files[f]) < 0 || !ft_path_exists(path)) continue;
        rc = apply_file(tok, path, had_bos, had_eos, &changed);
    }
    if (rc == FT_OK && changed) rc = ft__tok_finalize(tok);
    return rc;
}
