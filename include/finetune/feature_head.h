/* feature_head.h — a classification head trained on frozen features (precomputed sentence embeddings,
 * embeddings.h): what `finetune train --task classify --features FILE` trains.
 *
 * The head: hidden = 0 -> logits = W x + b (multinomial logistic regression); hidden = H -> logits =
 * W2 relu(W1 x + b1) + b2 (an MLP). Loss: mean cross-entropy, each row weighted by w[y] when class weights
 * are given (torch's CrossEntropyLoss(weight=w): sum w[y_i] nll_i / sum w[y_i]). Optimiser: AdamW (decoupled
 * weight decay on the weights, not the biases) over shuffled mini-batches; the permutation of each epoch
 * comes from (seed, epoch); initialisation as torch.nn.Linear (uniform in +-1/sqrt(fan_in)) from seed. The
 * same inputs and options give the same head, bit for bit.
 *
 *   ft_fhead_options o = ft_fhead_default_options();     // linear, 100 epochs, batch 32, lr 1e-2
 *   ft_fhead *h;
 *   FT_TRY(ft_fhead_train(&h, X, y, n, C, K, &o));        // X [n, C], y [n] in 0..K-1
 *   int *pred = malloc(m * sizeof *pred);
 *   FT_TRY(ft_fhead_predict(h, Xv, m, pred, NULL));       // probs [m, K] may be NULL
 *   FT_TRY(ft_fhead_save(h, "head.safetensors", NULL));
 *   ft_fhead_free(h);
 * Tensors in the file: "linear.weight" [K, C], "linear.bias" [K] (hidden = 0), or "hidden.weight" [H, C],
 * "hidden.bias" [H], "out.weight" [K, H], "out.bias" [K]; metadata "id2label" when label names are given.
 * Ownership: the head owns its weights; nothing prints. Thread safety: one head per thread while training;
 * predict only reads. */
#ifndef FINETUNE_FEATURE_HEAD_H
#define FINETUNE_FEATURE_HEAD_H
#include <stdint.h>
#include "finetune/classify_data.h"

typedef struct ft_fhead ft_fhead;

typedef struct ft_fhead_options {
    int      hidden;         /* 0: linear; H > 0: one ReLU layer of H units */
    int      epochs;         /* 100 */
    int      batch;          /* 32 */
    double   lr;             /* 1e-2 (constant) */
    double   weight_decay;   /* 1e-4 */
    uint64_t seed;           /* 42 */
    const float *class_weight;  /* [K] or NULL */
} ft_fhead_options;
ft_fhead_options ft_fhead_default_options(void);

int  ft_fhead_train(ft_fhead **out, const float *X, const int *y, int64_t n, int C, int K, const ft_fhead_options *o);
/* pred [n] argmax; probs [n, K] softmax (may be NULL). */
int  ft_fhead_predict(const ft_fhead *h, const float *X, int64_t n, int *pred, float *probs);
/* The mean (unweighted) cross-entropy of the head on X, y. */
int  ft_fhead_loss(const ft_fhead *h, const float *X, const int *y, int64_t n, double *loss);
int  ft_fhead_save(const ft_fhead *h, const char *path, const ft_label_map *labels);
int  ft_fhead_load(ft_fhead **out, const char *path);
int  ft_fhead_dims(const ft_fhead *h, int *C, int *H, int *K);
void ft_fhead_free(ft_fhead *h);
#endif
