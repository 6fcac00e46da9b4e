/* encoder_embed.c — sentence embeddings: mean of the last hidden states over the real tokens, optionally
 * L2-normalised (embeddings.h). */
#include "finetune/embeddings.h"
#include "finetune/status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ft_encoder_embed(float *out, ft_encoder_model *m, const ft_tokenizer *tok, const char *const *texts,
                     const char *const *pairs, int64_t n, int max_len, int batch, int normalize) {
    const ft_encoder_config *cfg = ft_encoder_get_config(m);
    int C = cfg->n_embd, pad = ft_cls_pad_id(tok);
    if (max_len <= 0) max_len = ft_encoder_config_max_len(cfg);
    if (batch <= 0) batch = 32;
    int **ids = calloc((size_t)batch, sizeof *ids), **tt = calloc((size_t)batch, sizeof *tt), *len = calloc((size_t)batch, sizeof *len);
    int *bid = NULL, *btt = NULL, *bmask = NULL;
    int rc = ids && tt && len ? FT_OK : ft_error(FT_ERR_NOMEM, "embeddings: out of memory");
    for (int64_t s = 0; s < n && rc == FT_OK; s += batch) {
        int B = (int)(n - s < batch ? n - s : batch), T = 0, trunc;
        for (int b = 0; b < B && rc == FT_OK; b++) {
            rc = ft_cls_encode_one(tok, texts[s + b], pairs ? pairs[s + b] : NULL, max_len, &ids[b], &tt[b], &len[b], &trunc);
            if (rc == FT_OK && len[b] > T) T = len[b];
        }
        if (rc == FT_OK) {
            free(bid); free(btt); free(bmask);
            bid = malloc((size_t)B * (size_t)T * sizeof *bid);      /* [B, T] */
            btt = calloc((size_t)B * (size_t)T, sizeof *btt);       /* [B, T] */
            bmask = calloc((size_t)B * (size_t)T, sizeof *bmask);   /* [B, T] */
            if (!bid || !btt || !bmask) rc = ft_error(FT_ERR_NOMEM, "embeddings: out of memory");
        }
        for (int b = 0; b < B && rc == FT_OK; b++)
            for (int t = 0; t < T; t++) {
                int real = t < len[b];
                bid[b * T + t] = real ? ids[b][t] : pad;
                btt[b * T + t] = real ? tt[b][t] : 0;
                bmask[b * T + t] = real;
            }
        if (rc == FT_OK) {
            ft_encoder_inputs in = {bid, btt, bmask, NULL, NULL, B, T};
            rc = ft_encoder_forward_ex(m, &in, NULL);
        }
        if (rc == FT_OK) {
            const float *h = ft_encoder_hidden(m);   /* [B, T, C] */
            for (int b = 0; b < B; b++) {
                float *o = out + (s + b) * C;
                double acc[4096];
                double *a = C <= 4096 ? acc : NULL;
                if (!a) { rc = ft_error(FT_ERR_UNSUPPORTED, "embeddings: hidden size %d", C); break; }
                memset(a, 0, (size_t)C * sizeof *a);
                for (int t = 0; t < len[b]; t++)
                    for (int c = 0; c < C; c++) a[c] += h[((size_t)b * T + t) * C + c];
                double norm = 0;
                for (int c = 0; c < C; c++) { a[c] /= len[b] ? len[b] : 1; norm += a[c] * a[c]; }
                norm = normalize ? fmax(sqrt(norm), 1e-12) : 1;
                for (int c = 0; c < C; c++) o[c] = (float)(a[c] / norm);
            }
        }
        for (int b = 0; b < B; b++) { free(ids[b]); free(tt[b]); ids[b] = tt[b] = NULL; }
    }
    free(ids); free(tt); free(len); free(bid); free(btt); free(bmask);
    return rc;
}
