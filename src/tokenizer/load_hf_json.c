/* load_hf_json.c — HF tokenizers' tokenizer.json with a BPE or WordPiece model.
 *
 * Read: model (type BPE: vocab, merges as "a b" strings or [a, b] pairs, unk_token, byte_fallback,
 * fuse_unk, ignore_merges; type WordPiece: vocab, unk_token, continuing_subword_prefix,
 * max_input_chars_per_word), added_tokens, normalizer (Sequence, NFC/NFD/NFKC/NFKD, Lowercase,
 * Prepend, Replace with a String pattern, BertNormalizer, StripAccents), pre_tokenizer (Sequence,
 * ByteLevel, Split, Metaspace, Digits, BertPreTokenizer), post_processor (TemplateProcessing single
 * and pair, RobertaProcessing, BertProcessing, ByteLevel, Sequence: what FT_TOK_ADD_SPECIAL and
 * ft_tokenizer_encode_pair add), decoder (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace,
 * WordPiece), padding.pad_id. truncation and the rest of padding are ignored (the caller truncates
 * and pads, as transformers does by default). Anything else that changes the ids is refused with
 * FT_ERR_UNSUPPORTED rather than silently encoding differently from HF. */
#include "tokenizer_impl.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define ITEM(o, k) cJSON_GetObjectItemCaseSensitive((o), (k))

static int add_norm(ft_tokenizer *tok, ft_norm_kind kind, const char *a, const char *b) {
    ft_norm_step *n = realloc(tok->norm, (size_t)(tok->n_norm + 1) * sizeof *n);
    if (!n) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    tok->norm = n;
    ft_norm_step *st = &n[tok->n_norm++];
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->a = a ? ft__tok_strdup(a) : NULL;
    st->b = b ? ft__tok_strdup(b) : NULL;
    if ((a && !st->a) || (b && !st->b)) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    return FT_OK;
}

static int parse_normalizer(ft_tokenizer *tok, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return FT_OK;
    const char *type = ft__json_str(n, "type", NULL);
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: normalizer without a type", tok->source);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = ITEM(n, "normalizers"), *it;
        cJSON_ArrayForEach(it, list) FT_TRY(parse_normalizer(tok, it));
        return FT_OK;
    }
    if (strcmp(type, "NFC") == 0) return add_norm(tok, FT_NORM_NFC, NULL, NULL);
    if (strcmp(type, "NFD") == 0) return add_norm(tok, FT_NORM_NFD, NULL, NULL);
    if (strcmp(type, "NFKC") == 0) return add_norm(tok, FT_NORM_NFKC, NULL, NULL);
    if (strcmp(type, "NFKD") == 0) return add_norm(tok, FT_NORM_NFKD, NULL, NULL);
    if (strcmp(type, "Lowercase") == 0) return add_norm(tok, FT_NORM_LOWERCASE, NULL, NULL);
    if (strcmp(type, "StripAccents") == 0) return add_norm(tok, FT_NORM_STRIP_ACCENTS, NULL, NULL);
    if (strcmp(type, "BertNormalizer") == 0) {
        FT_TRY(add_norm(tok, FT_NORM_BERT, NULL, NULL));
        ft_norm_step *st = &tok->norm[tok->n_norm - 1];
        st->clean_text = (int8_t)ft__json_bool(n, "clean_text", 1);
        st->handle_chinese_chars = (int8_t)ft__json_bool(n, "handle_chinese_chars", 1);
        st->strip_accents = (int8_t)ft__json_bool(n, "strip_accents", -1);   /* null: as lowercase */
        st->lowercase = (int8_t)ft__json_bool(n, "lowercase", 1);
        return FT_OK;
    }
    if (strcmp(type, "Prepend") == 0) {
        const char *p = ft__json_str(n, "prepend", NULL);
        if (!p) return ft_error(FT_ERR_FORMAT, "%s: Prepend normalizer without 'prepend'", tok->source);
        return add_norm(tok, FT_NORM_PREPEND, p, NULL);
    }
    if (strcmp(type, "Replace") == 0) {
        const char *pat = ft__json_str(ITEM(n, "pattern"), "String", NULL);
        const char *content = ft__json_str(n, "content", NULL);
        if (!pat) return ft_error(FT_ERR_UNSUPPORTED, "%s: Replace normalizer with a Regex pattern is not supported", tok->source);
        if (!content) return ft_error(FT_ERR_FORMAT, "%s: Replace normalizer without 'content'", tok->source);
        return add_norm(tok, FT_NORM_REPLACE, pat, content);
    }
    return ft_error(FT_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported", tok->source, type);
}

static int add_pre(ft_tokenizer *tok, ft_pretok_step **out) {
    ft_pretok_step *p = realloc(tok->pre, (size_t)(tok->n_pre + 1) * sizeof *p);
    if (!p) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    tok->pre = p;
    *out = &p[tok->n_pre++];
    memset(*out, 0, sizeof **out);
    return FT_OK;
}

static int parse_behavior(const char *s, ft_split_behavior *b) {
    static const struct { const char *name; ft_split_behavior b; } k[] = {
        {"Removed", FT_SPLIT_REMOVED}, {"Isolated", FT_SPLIT_ISOLATED}, {"MergedWithPrevious", FT_SPLIT_MERGED_PREV},
        {"MergedWithNext", FT_SPLIT_MERGED_NEXT}, {"Contiguous", FT_SPLIT_CONTIGUOUS},
    };
    for (size_t i = 0; s && i < sizeof k / sizeof k[0]; i++)
        if (strcmp(s, k[i].name) == 0) { *b = k[i].b; return 1; }
    return 0;
}

static int parse_pretok(ft_tokenizer *tok, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return FT_OK;
    const char *type = ft__json_str(n, "type", NULL);
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: pre_tokenizer without a type", tok->source);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = ITEM(n, "pretokenizers"), *it;
        cJSON_ArrayForEach(it, list) FT_TRY(parse_pretok(tok, it));
        return FT_OK;
    }
    ft_pretok_step *st = NULL;
    if (strcmp(type, "ByteLevel") == 0) {
        FT_TRY(add_pre(tok, &st));
        st->kind = FT_PRE_BYTE_LEVEL;
        st->add_prefix_space = ft__json_bool(n, "add_prefix_space", 1);
        st->trim_offsets = ft__json_bool(n, "trim_offsets", 1);
        st->use_regex = ft__json_bool(n, "use_regex", 1);
        tok->byte_level = 1;
        if (st->use_regex) FT_TRY(ft__tok_regex_compile(&st->re, ft_gpt2_pattern, 1));
        return FT_OK;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = ITEM(n, "pattern");
        const char *re = ft__json_str(pat, "Regex", NULL), *lit = ft__json_str(pat, "String", NULL);
        if (!re && !lit) return ft_error(FT_ERR_FORMAT, "%s: Split pre-tokenizer without a pattern", tok->source);
        FT_TRY(add_pre(tok, &st));
        st->kind = FT_PRE_SPLIT;
        st->pattern_is_regex = re != NULL;
        st->pattern = ft__tok_strdup(re ? re : lit);
        if (!st->pattern) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
        const char *beh = ft__json_str(n, "behavior", NULL);
        if (!parse_behavior(beh, &st->behavior))
            return ft_error(FT_ERR_UNSUPPORTED, "%s: Split behavior '%s' is not supported", tok->source, beh ? beh : "(none)");
        st->invert = ft__json_bool(n, "invert", 0);
        int rc = ft__tok_regex_compile(&st->re, st->pattern, st->pattern_is_regex);
        return rc < 0 ? ft_error_wrap(rc, "%s: Split pre-tokenizer", tok->source) : FT_OK;
    }
    if (strcmp(type, "Metaspace") == 0) {
        FT_TRY(add_pre(tok, &st));
        st->kind = FT_PRE_METASPACE;
        const char *rep = ft__json_str(n, "replacement", NULL);
        st->replacement = ft__tok_strdup(rep ? rep : FT_SPM_SPACE);
        if (!st->replacement) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
        const char *scheme = ft__json_str(n, "prepend_scheme", NULL);
        if (scheme) {
            if (strcmp(scheme, "always") == 0) st->prepend_scheme = FT_PREPEND_ALWAYS;
            else if (strcmp(scheme, "first") == 0) st->prepend_scheme = FT_PREPEND_FIRST;
            else if (strcmp(scheme, "never") == 0) st->prepend_scheme = FT_PREPEND_NEVER;
            else return ft_error(FT_ERR_FORMAT, "%s: Metaspace prepend_scheme '%s' is unknown", tok->source, scheme);
        } else {
            st->prepend_scheme = ft__json_bool(n, "add_prefix_space", 1) ? FT_PREPEND_ALWAYS : FT_PREPEND_NEVER;
        }
        st->split = ft__json_bool(n, "split", 1);
        return FT_OK;
    }
    if (strcmp(type, "BertPreTokenizer") == 0) {
        FT_TRY(add_pre(tok, &st));
        st->kind = FT_PRE_BERT;
        return FT_OK;
    }
    if (strcmp(type, "Digits") == 0) {
        FT_TRY(add_pre(tok, &st));
        st->kind = FT_PRE_DIGITS;
        st->individual_digits = ft__json_bool(n, "individual_digits", 0);
        return ft__tok_regex_compile(&st->re, "\\p{N}", 1);
    }
    return ft_error(FT_ERR_UNSUPPORTED, "%s: pre_tokenizer '%s' is not supported", tok->source, type);
}

static int push_affix(ft_tokenizer *tok, int suffix, int id) {
    int *n = suffix ? &tok->n_suffix : &tok->n_prefix;
    if (*n >= FT_TOK_MAX_AFFIX)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: post_processor adds more than %d special tokens", tok->source, FT_TOK_MAX_AFFIX);
    (suffix ? tok->suffix : tok->prefix)[(*n)++] = id;
    return FT_OK;
}

static int parse_post(ft_tokenizer *tok, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return FT_OK;
    const char *type = ft__json_str(n, "type", NULL);
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: post_processor without a type", tok->source);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = ITEM(n, "processors"), *it;
        cJSON_ArrayForEach(it, list) FT_TRY(parse_post(tok, it));
        return FT_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) return FT_OK;
    if (strcmp(type, "TemplateProcessing") == 0) {
        const cJSON *single = ITEM(n, "single"), *pair = ITEM(n, "pair"), *specials = ITEM(n, "special_tokens"), *it;
        int seen_seq = 0;
        tok->n_prefix = tok->n_suffix = 0;
        tok->n_pair = 0; tok->pair_type_zero = 0;
        tok->post_kind = FT_POST_TEMPLATE;
        /* pass 0: single (prefix / suffix); pass 1: pair (items with type ids) */
        for (int pass = 0; pass < 2; pass++) {
            const cJSON *list = pass ? pair : single;
            cJSON_ArrayForEach(it, list) {
                const cJSON *seq = ITEM(it, "Sequence"), *sp = ITEM(it, "SpecialToken");
                const cJSON *tid = ITEM(seq ? seq : sp, "type_id");
                int type_id = ft__json_as_int(tid, 0);
                if (type_id < 0 || type_id > 255) return ft_error(FT_ERR_FORMAT, "%s: post_processor type_id %d", tok->source, type_id);
                if (seq) {
                    if (!pass) { seen_seq = 1; continue; }
                    const char *which = ft__json_str(seq, "id", NULL);
                    if (!which || (strcmp(which, "A") != 0 && strcmp(which, "B") != 0))
                        return ft_error(FT_ERR_FORMAT, "%s: post_processor pair template: sequence id is not A or B", tok->source);
                    if (tok->n_pair >= FT_TOK_MAX_PAIR)
                        return ft_error(FT_ERR_UNSUPPORTED, "%s: post_processor pair template is too long", tok->source);
                    tok->pair[tok->n_pair++] = (ft_tok_tmpl_item){ which[0] == 'A' ? FT_TMPL_SEQ_A : FT_TMPL_SEQ_B, (uint8_t)type_id };
                    continue;
                }
                const char *name = ft__json_str(sp, "id", NULL);
                if (!name) continue;
                int idlist[FT_TOK_MAX_PAIR], nid = 0;
                const cJSON *ids = ITEM(ITEM(specials, name), "ids"), *idv;
                if (cJSON_IsArray(ids)) {
                    cJSON_ArrayForEach(idv, ids) {
                        int id = ft__json_as_int(idv, -1);
                        if (id < 0 || id >= tok->n_tokens)
                            return ft_error(FT_ERR_FORMAT, "%s: post_processor special token '%s' has a bad id", tok->source, name);
                        if (nid >= FT_TOK_MAX_PAIR)
                            return ft_error(FT_ERR_UNSUPPORTED, "%s: post_processor special token '%s' has too many ids", tok->source, name);
                        idlist[nid++] = id;
                    }
                } else {
                    int id = ft__tok_lookup(tok, name, strlen(name));
                    if (id < 0) return ft_error(FT_ERR_FORMAT, "%s: post_processor special token '%s' is unknown", tok->source, name);
                    idlist[nid++] = id;
                }
                for (int k = 0; k < nid; k++) {
                    if (!pass) { FT_TRY(push_affix(tok, seen_seq, idlist[k])); continue; }
                    if (tok->n_pair >= FT_TOK_MAX_PAIR)
                        return ft_error(FT_ERR_UNSUPPORTED, "%s: post_processor pair template is too long", tok->source);
                    tok->pair[tok->n_pair++] = (ft_tok_tmpl_item){ idlist[k], (uint8_t)type_id };
                }
            }
        }
        if (tok->n_prefix == 1 && tok->n_suffix == 1) { tok->cls = tok->prefix[0]; tok->sep = tok->suffix[0]; }
        return FT_OK;
    }
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        const cJSON *cls = ITEM(n, "cls"), *sep = ITEM(n, "sep");
        const cJSON *ci = cJSON_GetArrayItem(cls, 1), *si = cJSON_GetArrayItem(sep, 1);
        if (!cJSON_IsNumber(ci) || !cJSON_IsNumber(si))
            return ft_error(FT_ERR_FORMAT, "%s: %s without cls/sep ids", tok->source, type);
        int c = ft__json_as_int(ci, -1), s = ft__json_as_int(si, -1);
        if (c < 0 || c >= tok->n_tokens || s < 0 || s >= tok->n_tokens)
            return ft_error(FT_ERR_FORMAT, "%s: %s cls/sep id out of range", tok->source, type);
        if (type[0] == 'R') {
            ft__tok_set_roberta_post(tok, c, s);
        } else {
            ft__tok_set_bert_post(tok, c, s);
            tok->post_kind = FT_POST_BERT;
        }
        return FT_OK;
    }
    FT_LOGW("%s: post_processor '%s' is not supported; FT_TOK_ADD_SPECIAL adds nothing", tok->source, type);
    return FT_OK;
}

static int set_str(char **dst, const char *s) {
    free(*dst);
    *dst = ft__tok_strdup(s);
    return *dst ? FT_OK : ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
}

static int parse_decoder(ft_tokenizer *tok, const cJSON *n) {
    if (!n || cJSON_IsNull(n)) return FT_OK;
    const char *type = ft__json_str(n, "type", NULL);
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: decoder without a type", tok->source);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = ITEM(n, "decoders"), *it;
        cJSON_ArrayForEach(it, list) FT_TRY(parse_decoder(tok, it));
        return FT_OK;
    }
    if (strcmp(type, "ByteLevel") == 0) { tok->dec_byte_level = 1; return FT_OK; }
    if (strcmp(type, "ByteFallback") == 0) { tok->dec_byte_fallback = 1; return FT_OK; }
    if (strcmp(type, "WordPiece") == 0) {
        const char *prefix = ft__json_str(n, "prefix", NULL);
        tok->dec_wordpiece = 1;
        tok->dec_wp_cleanup = ft__json_bool(n, "cleanup", 1);
        return set_str(&tok->dec_wp_prefix, prefix ? prefix : "##");
    }
    if (strcmp(type, "Replace") == 0) {
        const char *pat = ft__json_str(ITEM(n, "pattern"), "String", NULL), *content = ft__json_str(n, "content", NULL);
        if (pat && content) { FT_TRY(set_str(&tok->dec_replace_from, pat)); FT_TRY(set_str(&tok->dec_replace_to, content)); }
        return FT_OK;
    }
    if (strcmp(type, "Strip") == 0) {
        const char *content = ft__json_str(n, "content", NULL);
        const cJSON *start = ITEM(n, "start");
        if (content && strcmp(content, " ") == 0 && cJSON_IsNumber(start) && start->valuedouble >= 1) tok->dec_strip_space = 1;
        return FT_OK;
    }
    if (strcmp(type, "Metaspace") == 0) {
        const char *rep = ft__json_str(n, "replacement", NULL), *scheme = ft__json_str(n, "prepend_scheme", NULL);
        FT_TRY(set_str(&tok->dec_replace_from, rep ? rep : FT_SPM_SPACE));
        FT_TRY(set_str(&tok->dec_replace_to, " "));
        int strip = scheme ? strcmp(scheme, "never") != 0 : ft__json_bool(n, "add_prefix_space", 1);
        if (strip) tok->dec_strip_space = 1;
        return FT_OK;
    }
    return FT_OK;   /* Fuse and others do not change the bytes */
}

static int parse_vocab(ft_tokenizer *tok, const cJSON *vocab) {
    if (!cJSON_IsObject(vocab)) return ft_error(FT_ERR_FORMAT, "%s: model.vocab is not an object", tok->source);
    for (const cJSON *it = vocab->child; it; it = it->next) {
        int id;
        if (!ft__json_as_index(it, 1 << 30, &id))
            return ft_error(FT_ERR_FORMAT, "%s: vocab entry '%s': id is not an integer in [0, 2^30)", tok->source, it->string);
        FT_TRY(ft__tok_set_token(tok, id, it->string, strlen(it->string), FT_TOKF_MODEL));
    }
    return FT_OK;
}

static int parse_wordpiece(ft_tokenizer *tok, const cJSON *model) {
    FT_TRY(parse_vocab(tok, ITEM(model, "vocab")));
    const char *unk = ft__json_str(model, "unk_token", NULL), *prefix = ft__json_str(model, "continuing_subword_prefix", NULL);
    if (!unk) unk = "[UNK]";
    tok->unk_id = ft__tok_lookup_model(tok, unk, strlen(unk));
    if (tok->unk_id < 0) return ft_error(FT_ERR_FORMAT, "%s: WordPiece unk_token '%s' is not in the vocabulary", tok->source, unk);
    tok->wp_prefix = ft__tok_strdup(prefix ? prefix : "##");
    if (!tok->wp_prefix) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    const cJSON *mc = ITEM(model, "max_input_chars_per_word");
    tok->wp_max_chars = cJSON_IsNumber(mc) && mc->valuedouble >= 0 && mc->valuedouble < 1e9 ? (int)mc->valuedouble : 100;
    tok->wordpiece = 1;
    return FT_OK;
}

static int parse_model(ft_tokenizer *tok, const cJSON *model) {
    const char *type = ft__json_str(model, "type", NULL);
    const cJSON *vocab = ITEM(model, "vocab"), *merges = ITEM(model, "merges");
    if (!type && cJSON_IsObject(vocab) && cJSON_IsArray(merges)) type = "BPE";
    if (!type) return ft_error(FT_ERR_FORMAT, "%s: model without a type", tok->source);
    if (strcmp(type, "WordPiece") == 0) return parse_wordpiece(tok, model);
    if (strcmp(type, "BPE") != 0)
        return ft_error(FT_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (BPE and WordPiece are)", tok->source, type);
    for (const char *const *k = (const char *const[]){ "continuing_subword_prefix", "end_of_word_suffix", NULL }; *k; k++) {
        const char *v = ft__json_str(model, *k, NULL);
        if (v && *v) return ft_error(FT_ERR_UNSUPPORTED, "%s: BPE %s '%s' is not supported", tok->source, *k, v);
    }
    const cJSON *dropout = ITEM(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0) FT_LOGW("%s: BPE dropout is ignored", tok->source);

    FT_TRY(parse_vocab(tok, vocab));
    int line = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        line++;
        int rc;
        if (cJSON_IsString(m)) {
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return ft_error(FT_ERR_FORMAT, "%s: merge %d '%s' is not two tokens separated by one space", tok->source, line, s);
            rc = ft__tok_add_merge_str(tok, s, (size_t)(sp - s), sp + 1, strlen(sp + 1));
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
            const char *a = m->child->valuestring, *b = m->child->next->valuestring;
            rc = ft__tok_add_merge_str(tok, a, strlen(a), b, strlen(b));
        } else {
            return ft_error(FT_ERR_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", tok->source, line);
        }
        FT_TRY(rc);
    }
    const char *unk = ft__json_str(model, "unk_token", NULL);
    if (unk) tok->unk_id = ft__tok_lookup_model(tok, unk, strlen(unk));
    tok->byte_fallback = ft__json_bool(model, "byte_fallback", 0);
    tok->fuse_unk = ft__json_bool(model, "fuse_unk", 0);
    tok->ignore_merges = ft__json_bool(model, "ignore_merges", 0);
    return FT_OK;
}

static int parse_added(ft_tokenizer *tok, const cJSON *list) {
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *idv = ITEM(it, "id");
        const char *content = ft__json_str(it, "content", NULL);
        int id;
        if (!ft__json_as_index(idv, 1 << 30, &id) || !content || !*content)
            return ft_error(FT_ERR_FORMAT, "%s: added_tokens entry without id or content", tok->source);
        FT_TRY(ft__tok_set_token(tok, id, content, strlen(content), 0));
        FT_TRY(ft__tok_add_added(tok, id, ft__json_bool(it, "special", 0), ft__json_bool(it, "lstrip", 0),
                                ft__json_bool(it, "rstrip", 0), ft__json_bool(it, "single_word", 0),
                                ft__json_bool(it, "normalized", 0)));
    }
    return FT_OK;
}

static int load(ft_tokenizer *tok, const cJSON *root) {
    const cJSON *model = ITEM(root, "model");
    if (!cJSON_IsObject(model)) return ft_error(FT_ERR_FORMAT, "%s: no 'model' object", tok->source);
    ft__tok_allow_ids(tok, cJSON_GetArraySize(ITEM(model, "vocab")) + cJSON_GetArraySize(ITEM(root, "added_tokens")));
    FT_TRY(parse_model(tok, model));
    FT_TRY(parse_added(tok, ITEM(root, "added_tokens")));
    FT_TRY(parse_normalizer(tok, ITEM(root, "normalizer")));
    FT_TRY(parse_pretok(tok, ITEM(root, "pre_tokenizer")));
    FT_TRY(parse_decoder(tok, ITEM(root, "decoder")));
    FT_TRY(parse_post(tok, ITEM(root, "post_processor")));
    const cJSON *pad = ITEM(ITEM(root, "padding"), "pad_id");
    int pad_id;
    if (ft__json_as_index(pad, tok->n_tokens, &pad_id)) tok->pad = pad_id;
    if (tok->wordpiece) {
        FT_TRY(ft__wordpiece_finish(tok));   /* BERT has no BOS / EOS: [CLS] / [SEP] are cls / sep */
    } else {
        tok->kind = tok->byte_level ? FT_TOK_BYTE_BPE : FT_TOK_SPM_BPE;
        if (tok->n_prefix == 1) tok->bos = tok->prefix[0];
        if (tok->n_suffix == 1) tok->eos = tok->suffix[0];
        ft__tok_guess_bos_eos(tok);
    }
    /* the mask and unk tokens by their usual names, when they are special */
    static const char *const masks[] = { "[MASK]", "<mask>" }, *const unks[] = { "[UNK]", "<unk>" };
    for (int i = 0; i < 2; i++) {
        int m = ft__tok_lookup(tok, masks[i], strlen(masks[i])), u = ft__tok_lookup(tok, unks[i], strlen(unks[i]));
        if (tok->mask < 0 && m >= 0 && (tok->tokens[m].flags & FT_TOKF_SPECIAL)) tok->mask = m;
        if (tok->unk_special < 0 && u >= 0 && (tok->tokens[u].flags & FT_TOKF_SPECIAL)) tok->unk_special = u;
    }
    return ft__tok_finalize(tok);
}

int ft__tok_load_hf_json_root(ft_tokenizer **out, const cJSON *root, const char *source) {
    *out = NULL;
    ft_tokenizer *tok;
    FT_TRY(ft__tok_alloc(&tok, source));
    int rc = load(tok, root);
    if (rc < 0) { ft_tokenizer_free(tok); return rc; }
    *out = tok;
    return FT_OK;
}

int ft__tok_load_hf_json(ft_tokenizer **out, const char *path) {
    *out = NULL;
    cJSON *root;
    FT_TRY(ft__json_parse_file(&root, path));
    ft_tokenizer *tok;
    int rc = ft__tok_alloc(&tok, path);
    if (rc == FT_OK) rc = load(tok, root);
    cJSON_Delete(root);
    if (rc < 0) { ft_tokenizer_free(tok); return rc; }
    *out = tok;
    return FT_OK;
}
