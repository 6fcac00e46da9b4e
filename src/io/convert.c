/* convert.c — ft_convert_to_hf: detect the checkpoint format, find / build the tokenizer, export.
 *
 * A GGUF vocabulary becomes a tokenizer through a temporary llama2.c "tokenizer.bin" (inside the
 * output directory, removed before returning):
 *   i32 max_token_length, then per token: f32 score, i32 byte length, bytes (no NUL),
 * with SentencePiece's "▁" spelled as a space as llama2.c does; ft_tokenizer_load_llama2c reads it. */
#include "finetune/convert.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_all(const char *path, FILE *fp, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, fp) != n) return ft_error(FT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return FT_OK;
}

/* Writes a llama2.c tokenizer.bin from a GGUF vocabulary. */
static int write_tokenizer_bin(const char *path, const ft_llama_ckpt *ck) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return ft_error(FT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int rc = FT_OK;
    char *buf = NULL;
    size_t cap = 0;
    int32_t max_len = 0;
    /* two passes: max length first (the header), then the tokens */
    for (int pass = 0; pass < 2 && rc == FT_OK; pass++) {
        if (pass == 1) rc = write_all(path, fp, &max_len, 4);
        for (int i = 0; i < ck->n_tokens && rc == FT_OK; i++) {
            const char *s = ck->tokens[i];
            size_t n = strlen(s);
            if (n + 1 > cap) {
                cap = 2 * (n + 1);
                char *nb = realloc(buf, cap);
                if (!nb) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); break; }
                buf = nb;
            }
            size_t k = 0;
            for (size_t j = 0; j < n; j++) {
                if ((unsigned char)s[j] == 0xE2 && j + 2 < n && (unsigned char)s[j + 1] == 0x96 && (unsigned char)s[j + 2] == 0x81) {
                    buf[k++] = ' ';   /* U+2581 "▁" */
                    j += 2;
                } else {
                    buf[k++] = s[j];
                }
            }
            if (pass == 0) { if ((int32_t)k > max_len) max_len = (int32_t)k; continue; }
            int32_t len = (int32_t)k;
            float score = ck->scores ? ck->scores[i] : 0.0f;
            if ((rc = write_all(path, fp, &score, 4)) < 0 || (rc = write_all(path, fp, &len, 4)) < 0 ||
                (rc = write_all(path, fp, buf, k)) < 0)
                break;
        }
    }
    free(buf);
    if (fclose(fp) != 0 && rc == FT_OK) rc = ft_error(FT_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return rc;
}

int ft_llama_ckpt_tokenizer(ft_tokenizer **out, const ft_llama_ckpt *ck, const char *tmp_dir) {
    *out = NULL;
    if (ck->n_tokens <= 0) return ft_error(FT_ERR_NOT_FOUND, "the checkpoint has no vocabulary (tokenizer.ggml.tokens)");
    char path[4096];
    if (snprintf(path, sizeof path, "%s/.ft-convert-tokenizer-XXXXXX", tmp_dir) >= (int)sizeof path)
        return ft_error(FT_ERR_RANGE, "path too long: %s", tmp_dir);
    int fd = mkstemp(path);
    if (fd < 0) return ft_error(FT_ERR_IO, "%s: cannot create a temporary file: %s", tmp_dir, strerror(errno));
    close(fd);
    int rc = write_tokenizer_bin(path, ck);
    if (rc == FT_OK) {
        rc = ft_tokenizer_load_llama2c(out, path);
        if (rc < 0) ft_error_wrap(rc, "building the tokenizer from the GGUF vocabulary");
    }
    unlink(path);
    return rc;
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

int ft_convert_load_tokenizer(ft_tokenizer **out, const char *path) {
    *out = NULL;
    if (!ft_path_exists(path)) return ft_error(FT_ERR_NOT_FOUND, "%s: tokenizer not found", path);
    if (ft_path_is_dir(path)) return ft_tokenizer_load(out, path);
    if (has_suffix(path, ".json")) return ft_tokenizer_load_json(out, path);
    return ft_tokenizer_load_llama2c(out, path);   /* tokenizer.bin / tok512.bin */
}

/* For a .bin without --tokenizer: tokenizer.bin or tok<V>.bin in the same directory. */
static int find_tokenizer_beside(char *buf, size_t cap, const char *src, int vocab) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", src);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
    char names[2][64];
    snprintf(names[0], sizeof names[0], "tok%d.bin", vocab);
    snprintf(names[1], sizeof names[1], "tokenizer.bin");
    for (int i = 0; i < 2; i++) {
        FT_TRY(ft_path_join(buf, cap, dir, names[i]));
        if (ft_path_exists(buf) && !ft_path_is_dir(buf)) return FT_OK;
    }
    return ft_error(FT_ERR_NOT_FOUND, "%s: no tokenizer given and none beside it (looked for %s/%s and %s/%s); pass --tokenizer FILE",
                    src, dir, names[0], dir, names[1]);
}

int ft_convert_to_hf(const char *src_path, const char *tokenizer_path, const char *out_dir,
                     const ft_convert_opts *opts, ft_convert_summary *summary) {
    unsigned char magic[4] = {0};
    FILE *fp = fopen(src_path, "rb");
    if (!fp) return ft_error(errno == ENOENT ? FT_ERR_NOT_FOUND : FT_ERR_IO, "%s: cannot open: %s", src_path, strerror(errno));
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    int is_gguf = got == 4 && memcmp(magic, "GGUF", 4) == 0;

    ft_llama_ckpt ck;
    FT_TRY(is_gguf ? ft_gguf_load_llama(&ck, src_path) : ft_llama2c_load(&ck, src_path));

    int rc = FT_OK, created = 0;
    ft_tokenizer *tok = NULL;
    char beside[4096];
    if (!tokenizer_path && !ck.n_tokens) {
        if ((rc = find_tokenizer_beside(beside, sizeof beside, src_path, ck.vocab_size)) < 0) goto done;
        tokenizer_path = beside;
    }
    if (ft_path_exists(out_dir) && !ft_path_is_dir(out_dir)) {
        rc = ft_error(FT_ERR_IO, "%s: output path exists and is not a directory", out_dir);
        goto done;
    }
    if (!ft_path_exists(out_dir)) {
        if ((rc = ft_mkdirs(out_dir)) < 0) goto done;
        created = 1;
    }
    rc = tokenizer_path ? ft_convert_load_tokenizer(&tok, tokenizer_path)
                        : ft_llama_ckpt_tokenizer(&tok, &ck, out_dir);
    if (rc < 0) goto done;
    int tv = ft_tokenizer_vocab_size(tok);
    if (tv > ck.vocab_size) {
        rc = ft_error(FT_ERR_SHAPE, "%s: the tokenizer has %d tokens but the model's vocab_size is %d",
                      tokenizer_path ? tokenizer_path : src_path, tv, ck.vocab_size);
        goto done;
    }
    if (tv < ck.vocab_size)
        FT_LOGW("%s: the tokenizer has %d tokens, the model %d rows (the extra rows are kept)", src_path, tv, ck.vocab_size);
    rc = ft_llama_export_hf(&ck, tok, out_dir, opts, summary);
done:
    if (rc < 0 && created) rmdir(out_dir);
    if (tok) ft_tokenizer_free(tok);
    ft_llama_ckpt_free(&ck);
    return rc;
}
