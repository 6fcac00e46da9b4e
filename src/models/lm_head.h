/* lm_head.h — the LM head, one component for both model families (not a public header):
 *
 *   logits [N,V] = x [N,C] W^T (+ bias [V])        W [V,C]: the word embeddings when tied, or the head's own
 *   losses [N]   = cross-entropy of the logits against targets [N] (FT_IGNORE_INDEX skips a row)
 *
 * Decoders put it after their final norm (decoder.c: training, prefill and decoding); the encoders' MLM head
 * after its transform (head_mlm.c: dense, activation, LayerNorm), with the vocabulary bias. W may be f32 or
 * a quantized frozen weight (QLoRA: an untied decoder head), as every linear layer (linear.h).
 *
 *   ft__lm_head h = {W, dW, bias, dbias, C, V};            // gradients NULL when frozen
 *   ft__lm_head_forward(be, &h, logits, x, N, ws, wsn);
 *   ft__lm_head_loss(be, losses, logits, logits, targets, N, V, 1 / n, eps);   // dlogits over the logits
 *   ft__lm_head_backward(be, &h, dx, logits, x, N, ws, wsn);
 *   // or both in one (training; the gradient in bf16 where the backend can): ft__lm_head_loss_backward
 *
 * Gradients of W and bias ACCUMULATE; dx is ASSIGNED. Stateless: the struct only names the tensors. */
#ifndef FT_MODELS_LM_HEAD_H
#define FT_MODELS_LM_HEAD_H
#include <stddef.h>

#include "finetune/backend.h"
#include "finetune/model.h"

typedef struct ft__lm_head {
    const ft_param *w;     /* W [V, C], f32 or quantized */
    float *dw;             /* [V, C] gradient, or NULL (frozen / quantized) */
    const float *bias;     /* [V] or NULL */
    float *dbias;          /* [V] or NULL */
    int C, V;
    int assign_dw;         /* 1: dW is pending zero (model.h ft_param.grad_pending): the backward ASSIGNS it */
} ft__lm_head;

/* logits [N,V] ASSIGNED; ws [wsn]: the quantized-matmul workspace (unused for an f32 W) */
void ft__lm_head_forward(const ft_backend *be, const ft__lm_head *h, float *logits, const float *x, int N, float *ws, size_t wsn);
/* losses [N] (label smoothing eps); with dlogits (may alias logits): scale * d(loss)/d(logits) */
void ft__lm_head_loss(const ft_backend *be, float *losses, float *dlogits, const float *logits, const int *targets, int N, int V,
                      float scale, float eps);
/* dx [N,C] = dlogits W (ASSIGNED, NULL: not needed); dW += dlogits^T x (= with h->assign_dw), dbias += column sums
 * of dlogits */
void ft__lm_head_backward(const ft_backend *be, const ft__lm_head *h, float *dx, const float *dlogits, const float *x, int N,
                          float *ws, size_t wsn);

/* Training's loss and backward in one (the decoders): ft__lm_head_loss with dlogits over the logits (consumed), then
 * ft__lm_head_backward. Where ft__lm_head_grad_bf16 says so, the gradient is stored as bf16 (the backend's
 * crossentropy_forward_backward_bf16) and the backward's products read it so (matmul_backward_dout16): the GEMMs round
 * it to bf16 anyway, so losses, dx, dW and dbias are the f32 path's bits at half its memory traffic (ops.h, gemm_bf16.h). */
void ft__lm_head_loss_backward(const ft_backend *be, const ft__lm_head *h, float *losses, float *dx, float *logits,
                               const int *targets, const float *x, int N, float scale, float eps, float *ws, size_t wsn);
/* 1 when ft__lm_head_loss_backward takes the bf16 path: the backend has both members (the cpu-bf16 table) and W is f32
 * (a quantized head's backward reads f32 dlogits), unless FT_LM_HEAD_DLOGITS=f32 is in the environment (read at each
 * call: the f32 path, for side-by-side timings) */
int ft__lm_head_grad_bf16(const ft_backend *be, const ft__lm_head *h);
#endif
