/* lm_head.c — the LM head shared by the decoders and the encoders' MLM head (lm_head.h): the projection
 * onto the vocabulary through the one linear layer (linear.h: f32 or quantized W), and the token
 * cross-entropy through the backend. */
#include "models/lm_head.h"
#include "models/linear.h"
#include "finetune/ops.h"

void ft__lm_head_forward(const ft_backend *be, const ft__lm_head *h, float *logits, const float *x, int N, float *ws, size_t wsn) {
    ft__linear_q_forward(be, logits, x, h->w, h->bias, N, h->C, h->V, ws, wsn);
}

void ft__lm_head_loss(const ft_backend *be, float *losses, float *dlogits, const float *logits, const int *targets, int N, int V,
                      float scale, float eps) {
    be->crossentropy_forward_backward(be->ctx, losses, dlogits, logits, targets, N, V, scale, eps, FT_IGNORE_INDEX);
}

void ft__lm_head_backward(const ft_backend *be, const ft__lm_head *h, float *dx, const float *dlogits, const float *x, int N,
                          float *ws, size_t wsn) {
    ft__linear_q_backward(be, dx, h->dw, h->dbias, dlogits, x, h->w, N, h->C, h->V, ws, wsn);
}
