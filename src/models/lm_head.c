/* lm_head.c — the LM head shared by the decoders and the encoders' MLM head (lm_head.h): the projection
 * onto the vocabulary through the one linear layer (linear.h: f32 or quantized W), and the token
 * cross-entropy through the backend; training's loss and backward in one, with the logit gradients in bf16
 * where the backend has the members for it. */
#include "models/lm_head.h"
#include "models/linear.h"
#include "finetune/ops.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void ft__lm_head_forward(const ft_backend *be, const ft__lm_head *h, float *logits, const float *x, int N, float *ws, size_t wsn) {
    ft__linear_q_forward(be, logits, x, h->w, h->bias, N, h->C, h->V, ws, wsn);
}

void ft__lm_head_loss(const ft_backend *be, float *losses, float *dlogits, const float *logits, const int *targets, int N, int V,
                      float scale, float eps) {
    be->crossentropy_forward_backward(be->ctx, losses, dlogits, logits, targets, N, V, scale, eps, FT_IGNORE_INDEX);
}

void ft__lm_head_backward(const ft_backend *be, const ft__lm_head *h, float *dx, const float *dlogits, const float *x, int N,
                          float *ws, size_t wsn) {
    ft__linear_q_backward_dw(be, dx, h->dw, h->assign_dw, h->dbias, dlogits, x, h->w, N, h->C, h->V, ws, wsn);
}

int ft__lm_head_grad_bf16(const ft_backend *be, const ft__lm_head *h) {
    if (!be->crossentropy_forward_backward_bf16 || !be->matmul_backward_dout16 || h->w->qdesc) return 0;
    const char *env = getenv("FT_LM_HEAD_DLOGITS"); /* "f32": the f32 path (side-by-side timings) */
    return !(env && strcmp(env, "f32") == 0);
}

void ft__lm_head_loss_backward(const ft_backend *be, const ft__lm_head *h, float *losses, float *dx, float *logits,
                               const int *targets, const float *x, int N, float scale, float eps, float *ws, size_t wsn) {
    if (!ft__lm_head_grad_bf16(be, h)) {
        ft__lm_head_loss(be, losses, logits, logits, targets, N, h->V, scale, eps);
        ft__lm_head_backward(be, h, dx, logits, x, N, ws, wsn);
        return;
    }
    /* row n's bf16 gradient in the first half of its logits' bytes: a row stride of 2V bf16 values */
    be->crossentropy_forward_backward_bf16(be->ctx, losses, logits, targets, N, h->V, scale, eps, FT_IGNORE_INDEX);
    const uint16_t *d16 = (const uint16_t *)(const void *)logits;
    if (h->dw && h->assign_dw && be->matmul_backward_dout16_assign_dw) {   /* dW pending zero: assigned */
        be->matmul_backward_dout16_assign_dw(be->ctx, dx, h->dw, h->dbias, d16, 2 * h->V, x, h->w->t.data, h->w->pack, N, h->C, h->V);
        return;
    }
    if (h->dw && h->assign_dw) memset(h->dw, 0, sizeof(float) * (size_t)h->V * h->C);
    be->matmul_backward_dout16(be->ctx, dx, h->dw, h->dbias, d16, 2 * h->V, x, h->w->t.data, h->w->pack, N, h->C, h->V);
}
