/* load_llama2c.c — llama2.c tokenizer.bin / tok512.bin.
 *
 * Format (little-endian): int32 max_token_length, then for every token until the end of the file:
 * float32 score, int32 len, len bytes. Ids 0, 1, 2 are <unk>, <s>, </s> (stored as "<unk>",
 * "\n<s>\n", "\n</s>\n"); ids 3..258 are the byte tokens <0x00>..<0xFF>; the export replaced
 * SentencePiece's U+2581 with ' ', which is undone here so token strings look like HF's ("▁the").
 *
 * llama2.c encodes with a dummy-prefix space, one symbol per UTF-8 character (byte+3 for characters
 * outside the vocabulary), then repeatedly merges the adjacent pair whose concatenation is the
 * vocabulary string of highest score (leftmost on ties). That is the normalizer
 * Prepend("▁") + Replace(" ", "▁") and BPE with byte fallback over the merge table that
 * ft__tok_merges_from_scores builds from the scores. FT_TOK_ADD_SPECIAL adds BOS (id 1). */
#include "tokenizer_impl.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

static int32_t rd_i32(const unsigned char *p) { int32_t v; memcpy(&v, p, 4); return v; }
static float rd_f32(const unsigned char *p) { float v; memcpy(&v, p, 4); return v; }

int ft__tok_load_llama2c(ft_tokenizer **out, const char *path) {
    *out = NULL;
    char *data; size_t size;
    FT_TRY(ft_file_read_all(path, &data, &size));
    const unsigned char *d = (const unsigned char *)data;
    ft_tokenizer *tok = NULL;
    char *tmp = NULL;
    int rc;
    if (size < 4) { rc = ft_error(FT_ERR_FORMAT, "%s: too short for a llama2.c tokenizer (%zu bytes)", path, size); goto fail; }
    int32_t max_len = rd_i32(d);
    if (max_len <= 0 || max_len > (1 << 20)) {
        rc = ft_error(FT_ERR_FORMAT, "%s: bad max_token_length %d (not a llama2.c tokenizer?)", path, max_len);
        goto fail;
    }
    if ((rc = ft__tok_alloc(&tok, path)) < 0) goto fail;
    tok->kind = FT_TOK_SPM_BPE;
    size_t off = 4;
    int id = 0;
    tmp = malloc(3 * (size_t)max_len + 16);
    if (!tmp) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    while (off < size) {
        if (size - off < 8) { rc = ft_error(FT_ERR_FORMAT, "%s: token %d: truncated header at byte %zu", path, id, off); goto fail; }
        float score = rd_f32(d + off);
        int32_t len = rd_i32(d + off + 4);
        off += 8;
        if (len < 0 || len > max_len || (size_t)len > size - off) {
            rc = ft_error(FT_ERR_FORMAT, "%s: token %d: length %d is invalid (max %d, %zu bytes left)", path, id, len,
                          max_len, size - off);
            goto fail;
        }
        const char *s = (const char *)d + off;
        off += (size_t)len;
        size_t k = 0;
        static const char *const names[3] = { "<unk>", "<s>", "</s>" };
        if (id < 3) {
            k = strlen(names[id]);
            memcpy(tmp, names[id], k);
        } else {
            for (int32_t i = 0; i < len; i++) {
                if (s[i] == ' ') { memcpy(tmp + k, FT_SPM_SPACE, 3); k += 3; } else tmp[k++] = s[i];
            }
        }
        if ((rc = ft__tok_set_token(tok, id, tmp, k, FT_TOKF_MODEL)) < 0) goto fail;
        tok->tokens[id].score = score;
        id++;
    }
    if (id < 3 + 256) { rc = ft_error(FT_ERR_FORMAT, "%s: only %d tokens (expected the 3 control and 256 byte tokens)", path, id); goto fail; }
    for (int i = 0; i < 3; i++)
        if ((rc = ft__tok_add_added(tok, i, 1, 0, 0, 0, 0)) < 0) goto fail;

    ft_norm_step *norm = calloc(2, sizeof *norm);
    if (!norm) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    tok->norm = norm; tok->n_norm = 2;
    norm[0].kind = FT_NORM_PREPEND; norm[0].a = ft__tok_strdup(FT_SPM_SPACE);
    norm[1].kind = FT_NORM_REPLACE; norm[1].a = ft__tok_strdup(" "); norm[1].b = ft__tok_strdup(FT_SPM_SPACE);
    tok->dec_replace_from = ft__tok_strdup(FT_SPM_SPACE);
    tok->dec_replace_to = ft__tok_strdup(" ");
    if (!norm[0].a || !norm[1].a || !norm[1].b || !tok->dec_replace_from || !tok->dec_replace_to) {
        rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", path); goto fail;
    }
    tok->byte_fallback = 1;
    tok->unk_id = 0;
    tok->fuse_unk = 1;
    tok->dec_byte_fallback = 1;
    tok->dec_strip_space = 1;
    tok->bos = 1; tok->eos = 2;
    ft__tok_set_affixes(tok, 1, 0);
    if ((rc = ft__tok_finalize(tok)) < 0) goto fail;           /* marks the byte tokens first */
    if ((rc = ft__tok_merges_from_scores(tok)) < 0) goto fail;
    free(tmp);
    free(data);
    *out = tok;
    return FT_OK;
fail:
    free(tmp);
    free(data);
    ft_tokenizer_free(tok);
    return rc;
}
