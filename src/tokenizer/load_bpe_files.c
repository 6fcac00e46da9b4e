/* load_bpe_files.c — GPT-2 style vocabulary + merges: HF vocab.json + merges.txt or OpenAI
 * encoder.json + vocab.bpe (same formats: a JSON object token -> id; a text file whose optional
 * first line is "#version: ...", then one merge "left right" per line, in rank order).
 *
 * Two layouts, told apart by the vocabulary:
 *   GPT-2    <|endoftext|> is the one special token, BOS = EOS = it, nothing added around the text
 *   RoBERTa  no <|endoftext|> but <s> and </s>: <s> <pad> </s> <unk> <mask> are special tokens and
 *            FT_TOK_ADD_SPECIAL gives <s> A </s> (pairs <s> A </s></s> B </s>, type ids all 0), as
 *            transformers' RobertaTokenizer; its add_prefix_space (default false) comes from
 *            tokenizer_config.json when loaded by directory. */
#include "tokenizer_impl.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/json_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft__tok_setup_gpt2_pipeline(ft_tokenizer *tok) {
    ft_pretok_step *pre = calloc(1, sizeof *pre);
    if (!pre) return ft_error(FT_ERR_NOMEM, "tokenizer: out of memory");
    tok->pre = pre; tok->n_pre = 1;
    pre->kind = FT_PRE_BYTE_LEVEL;
    pre->add_prefix_space = 0; pre->trim_offsets = 1; pre->use_regex = 1;
    FT_TRY(ft__tok_regex_compile(&pre->re, ft_gpt2_pattern, 1));
    tok->byte_level = 1;
    tok->dec_byte_level = 1;
    tok->kind = FT_TOK_BYTE_BPE;
    return FT_OK;
}

static int load_vocab_json(ft_tokenizer *tok, const char *path) {
    cJSON *root;
    FT_TRY(ft__json_parse_file(&root, path));
    int rc = FT_OK;
    if (!cJSON_IsObject(root)) { rc = ft_error(FT_ERR_FORMAT, "%s: expected a JSON object token -> id", path); goto done; }
    ft__tok_allow_ids(tok, cJSON_GetArraySize(root));
    for (const cJSON *it = root->child; it; it = it->next) {
        int id;
        if (!ft__json_as_index(it, 1 << 30, &id)) {
            rc = ft_error(FT_ERR_FORMAT, "%s: token '%s': id is not an integer in [0, 2^30)", path, it->string);
            goto done;
        }
        if ((rc = ft__tok_set_token(tok, id, it->string, strlen(it->string), FT_TOKF_MODEL)) < 0) goto done;
    }
done:
    cJSON_Delete(root);
    return rc;
}

static int load_merges_txt(ft_tokenizer *tok, const char *path) {
    char *data; size_t size;
    FT_TRY(ft_file_read_all(path, &data, &size));
    int rc = FT_OK, line = 0;
    for (size_t pos = 0; pos < size;) {
        char *s = data + pos;
        char *nl = memchr(s, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - s) : size - pos;
        pos += n + 1;
        line++;
        if (n > 0 && s[n - 1] == '\r') n--;
        if (n == 0) continue;
        if (line == 1 && n >= 8 && memcmp(s, "#version", 8) == 0) continue;
        char *sp = memchr(s, ' ', n);
        if (!sp || sp == s || sp == s + n - 1 || memchr(sp + 1, ' ', (size_t)(s + n - sp - 1))) {
            rc = ft_error(FT_ERR_FORMAT, "%s: line %d: expected two tokens separated by one space, got '%.*s'", path, line, (int)n, s);
            break;
        }
        if ((rc = ft__tok_add_merge_str(tok, s, (size_t)(sp - s), sp + 1, (size_t)(s + n - sp - 1))) < 0) {
            ft_error_wrap(rc, "line %d", line);
            break;
        }
    }
    free(data);
    return rc;
}

int ft__tok_load_bpe_files(ft_tokenizer **out, const char *vocab_path, const char *merges_path) {
    *out = NULL;
    ft_tokenizer *tok;
    FT_TRY(ft__tok_alloc(&tok, vocab_path));
    int rc;
    if ((rc = load_vocab_json(tok, vocab_path)) < 0) goto fail;
    snprintf(tok->source, sizeof tok->source, "%s", merges_path);
    if ((rc = load_merges_txt(tok, merges_path)) < 0) goto fail;
    if ((rc = ft__tok_setup_gpt2_pipeline(tok)) < 0) goto fail;
    tok->from_vocab_files = 1;
    int eot = ft__tok_lookup(tok, "<|endoftext|>", 13), bos = ft__tok_lookup(tok, "<s>", 3), eos = ft__tok_lookup(tok, "</s>", 4);
    if (eot < 0 && bos >= 0 && eos >= 0) {   /* RoBERTa */
        static const char *const names[] = { "<s>", "<pad>", "</s>", "<unk>", "<mask>" };
        int id[5];
        for (int i = 0; i < 5; i++) {
            id[i] = ft__tok_lookup(tok, names[i], strlen(names[i]));
            if (id[i] >= 0 && (rc = ft__tok_add_added(tok, id[i], 1, 0, 0, 0, 0)) < 0) goto fail;
        }
        ft__tok_set_roberta_post(tok, bos, eos);
        tok->bos = bos; tok->eos = eos; tok->pad = id[1]; tok->unk_special = id[3]; tok->mask = id[4];
    } else {
        /* GPT-2's one special token; bos = eos = <|endoftext|> as in transformers' GPT2Tokenizer */
        if (eot >= 0 && (rc = ft__tok_add_added(tok, eot, 1, 0, 0, 0, 0)) < 0) goto fail;
        ft__tok_guess_bos_eos(tok);
    }
    if ((rc = ft__tok_finalize(tok)) < 0) goto fail;
    *out = tok;
    return FT_OK;
fail:
    ft_tokenizer_free(tok);
    return rc;
}
