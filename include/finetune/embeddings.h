/* embeddings.h — sentence embeddings of an encoder and the file that holds them with their labels: the
 * features `finetune data balance` resamples and `finetune train --features` trains a head on.
 *
 * An embedding is sentence-transformers' mean pooling: the mean of the encoder's last hidden states over
 * the real tokens of [CLS] text [SEP] (mask != 0), then, with normalize = 1, divided by its L2 norm (what
 * all-MiniLM-L6-v2's Normalize module does; its cosine similarities are then dot products).
 *
 * The file is safetensors:
 *   "embeddings"  F32 [n, C]
 *   "labels"      I32 [n]          class ids
 *   "source"      I64 [n]          the input row a row comes from; -1 for a synthetic (SMOTE-family) row
 *   metadata      "id2label": {"0": "neg", ...} (JSON text), "model", "pooling": "mean", "normalized": "1",
 *                 "method" (the balancing method, "none" for plain embeddings)
 *
 *   ft_encoder_model *m; ft_tokenizer *tok;   // ft_encoder_load_ex, ft_tokenizer_load
 *   float *X = malloc(n * C * sizeof *X);     // C = ft_encoder_get_config(m)->n_embd
 *   FT_TRY(ft_encoder_embed(X, m, tok, texts, NULL, n, 128, 32, 1));
 *   ft_embeddings e = {n, C, X, labels, NULL, &label_map};
 *   FT_TRY(ft_embeddings_save("train.safetensors", &e, meta, n_meta));
 *
 * Ownership: ft_embeddings_load allocates every array (ft_embeddings_free releases them); save only
 * reads. Thread safety: ft_encoder_embed runs forwards on m (one caller at a time per model). */
#ifndef FINETUNE_EMBEDDINGS_H
#define FINETUNE_EMBEDDINGS_H
#include <stdint.h>
#include "finetune/classify_data.h"
#include "finetune/encoder.h"
#include "finetune/tokenizer.h"

/* out [n, C] (C = the encoder's hidden size): texts (and pairs, NULL for single texts) in batches of
 * batch rows, each truncated to max_len tokens (<= 0: the model's limit). */
int ft_encoder_embed(float *out, ft_encoder_model *m, const ft_tokenizer *tok, const char *const *texts,
                     const char *const *pairs, int64_t n, int max_len, int batch, int normalize);

typedef struct ft_embeddings {
    int64_t  n;
    int      C;
    float   *X;           /* [n, C] */
    int     *labels;      /* [n] */
    int64_t *source;      /* [n] or NULL (save: written as 0..n-1) */
    ft_label_map *label_map;   /* names of the ids; NULL on save: none written */
} ft_embeddings;
/* metadata: n_meta {key, value} pairs added to the file's (NULL / 0: none). */
int  ft_embeddings_save(const char *path, const ft_embeddings *e, const char *const *metadata, int n_meta);
/* A file without "labels" -> FT_ERR_NOT_FOUND; shapes that disagree -> FT_ERR_SHAPE. label_map is
 * allocated (from id2label, else "0".."K-1"). */
int  ft_embeddings_load(ft_embeddings *e, const char *path);
void ft_embeddings_free(ft_embeddings *e);
#endif
