/* llama2c.c — import a llama2.c checkpoint (Karpathy's run.c format).
 *
 * Version 0 ("legacy", what run.c reads): 7 x int32 header
 *   {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}
 * (vocab_size < 0 => the classifier is not shared and stored last), then f32 arrays:
 *   token_embedding [V,C], rms_att [L,C], wq [L,C,C], wk [L,KV,C], wv [L,KV,C], wo [L,C,C],
 *   rms_ffn [L,C], w1 [L,H,C], w2 [L,C,H], w3 [L,H,C], rms_final [C],
 *   freq_cis_real [seq_len, HS/2], freq_cis_imag [seq_len, HS/2]  (skipped),
 *   wcls [V,C] (only when not shared).
 * Version 1 (export.py version1_export): a 256-byte header
 *   u32 magic 0x616b3432 ("ak42"), i32 version, 7 x int32 params (vocab_size positive),
 *   u8 shared_classifier, zero padding; then f32:
 *   rms_att [L,C], rms_ffn [L,C], rms_final [C], token_embedding [V,C],
 *   wq, wk, wv, wo, w1, w2, w3 (all layers each), wcls [V,C] if not shared.
 * Version 2 is int8 (Q8_0 groups): not supported. */
#include "io/llama_ckpt_internal.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLAMA2C_MAGIC 0x616b3432u
#define LLAMA2C_V1_HEADER 256

typedef struct { const uint8_t *p; size_t pos; } reader;

static void take(reader *r, float *dst, size_t n) {
    memcpy(dst, r->p + r->pos, n * sizeof(float));
    r->pos += n * sizeof(float);
}

static void fmt_dims(char *buf, size_t cap, const ft_llama_ckpt *ck) {
    snprintf(buf, cap, "dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d%s",
             ck->dim, ck->hidden_dim, ck->n_layers, ck->n_heads, ck->n_kv_heads, ck->vocab_size, ck->seq_len,
             ck->tied ? "" : " (unshared classifier)");
}

int ft_llama2c_load(ft_llama_ckpt *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    ck->bos_id = ck->eos_id = ck->unk_id = -1;
    ft_mmap m;
    FT_TRY(ft_file_map(&m, path));
    const uint8_t *p = m.data;
    int rc = FT_OK;
    int32_t h[7];
    size_t header_bytes;
    int version;
    uint32_t magic = 0;
    if (m.size >= 4) memcpy(&magic, p, 4);
    if (m.size >= 4 && magic == LLAMA2C_MAGIC) {
        if (m.size < 8) { rc = ft_error(FT_ERR_FORMAT, "%s: truncated llama2.c header (%zu bytes)", path, m.size); goto done; }
        int32_t v; memcpy(&v, p + 4, 4);
        if (v == 2) {
            rc = ft_error(FT_ERR_UNSUPPORTED, "%s: llama2.c version 2 (int8 Q8_0 quantized) checkpoints are not supported; "
                          "export the model with version 0 or 1 (float32)", path);
            goto done;
        }
        if (v != 1) {
            rc = ft_error(FT_ERR_UNSUPPORTED, "%s: unknown llama2.c checkpoint version %d (supported: 0 legacy, 1 float32)", path, v);
            goto done;
        }
        if (m.size < LLAMA2C_V1_HEADER) {
            rc = ft_error(FT_ERR_FORMAT, "%s: truncated llama2.c version 1 header: %zu bytes, expected at least %d",
                          path, m.size, LLAMA2C_V1_HEADER);
            goto done;
        }
        memcpy(h, p + 8, sizeof h);
        ck->tied = p[8 + sizeof h] != 0;
        if (h[5] <= 0) {
            rc = ft_error(FT_ERR_FORMAT, "%s: llama2.c version 1 header has vocab_size %d", path, h[5]);
            goto done;
        }
        header_bytes = LLAMA2C_V1_HEADER;
        version = 1;
    } else {
        if (m.size < sizeof h) {
            rc = ft_error(FT_ERR_FORMAT, "%s: truncated llama2.c checkpoint: %zu bytes, the header alone is %zu", path, m.size, sizeof h);
            goto done;
        }
        memcpy(h, p, sizeof h);
        ck->tied = h[5] > 0;
        if (h[5] < 0) h[5] = h[5] == INT32_MIN ? INT32_MAX : -h[5];   /* -INT32_MIN overflows; INT32_MAX fails the checks below */
        header_bytes = sizeof h;
        version = 0;
    }
    snprintf(ck->format, sizeof ck->format, "llama2.c");
    ck->dim = h[0]; ck->hidden_dim = h[1]; ck->n_layers = h[2]; ck->n_heads = h[3];
    ck->n_kv_heads = h[4]; ck->vocab_size = h[5]; ck->seq_len = h[6];
    ck->norm_eps = 1e-5f;
    ck->rope_theta = 10000.0f;
    if (version == 0 && ft__llama_ckpt_check_dims(ck, path) < 0) {
        /* without a magic number, a bad header most likely means this is not a checkpoint at all */
        char why[1024];
        const char *msg = ft_last_error();
        size_t pl = strlen(path);
        if (strncmp(msg, path, pl) == 0 && msg[pl] == ':') msg += pl + 2;
        snprintf(why, sizeof why, "%s", msg);
        rc = ft_error(FT_ERR_FORMAT, "%s: not a llama2.c checkpoint or a GGUF file: no \"ak42\" or \"GGUF\" magic, "
                      "and read as a legacy llama2.c header it is implausible: %s", path, why);
        goto done;
    }
    if ((rc = ft__llama_ckpt_check_dims(ck, path)) < 0) goto done;

    uint64_t floats = ft__llama_ckpt_weight_floats(ck, !ck->tied);
    uint64_t head_size = (uint64_t)(ck->dim / ck->n_heads);
    if (version == 0) floats += (uint64_t)ck->seq_len * head_size;  /* freq_cis real + imag */
    uint64_t expect = header_bytes + floats * sizeof(float);
    if ((uint64_t)m.size != expect) {
        char dims[256];
        fmt_dims(dims, sizeof dims, ck);
        rc = ft_error(FT_ERR_FORMAT, "%s: %s llama2.c checkpoint: the header (%s) needs %llu bytes, the file has %zu",
                      path, (uint64_t)m.size < expect ? "truncated" : "oversized (or not a)", dims,
                      (unsigned long long)expect, m.size);
        goto done;
    }
    if ((rc = ft__llama_ckpt_alloc(ck, path)) < 0) goto done;

    size_t C = (size_t)ck->dim, H = (size_t)ck->hidden_dim, L = (size_t)ck->n_layers, V = (size_t)ck->vocab_size;
    size_t KV = C / (size_t)ck->n_heads * (size_t)ck->n_kv_heads;
    reader r = {p, header_bytes};
    if (version == 0) {
        take(&r, ck->token_embedding, V * C);
        take(&r, ck->rms_att, L * C);
        take(&r, ck->wq, L * C * C);
        take(&r, ck->wk, L * KV * C);
        take(&r, ck->wv, L * KV * C);
        take(&r, ck->wo, L * C * C);
        take(&r, ck->rms_ffn, L * C);
        take(&r, ck->w1, L * H * C);
        take(&r, ck->w2, L * C * H);
        take(&r, ck->w3, L * H * C);
        take(&r, ck->rms_final, C);
        r.pos += (size_t)ck->seq_len * head_size * sizeof(float);
    } else {
        take(&r, ck->rms_att, L * C);
        take(&r, ck->rms_ffn, L * C);
        take(&r, ck->rms_final, C);
        take(&r, ck->token_embedding, V * C);
        take(&r, ck->wq, L * C * C);
        take(&r, ck->wk, L * KV * C);
        take(&r, ck->wv, L * KV * C);
        take(&r, ck->wo, L * C * C);
        take(&r, ck->w1, L * H * C);
        take(&r, ck->w2, L * C * H);
        take(&r, ck->w3, L * H * C);
    }
    if (!ck->tied) take(&r, ck->wcls, V * C);
done:
    ft_file_unmap(&m);
    if (rc < 0) ft_llama_ckpt_free(ck);
    return rc;
}
