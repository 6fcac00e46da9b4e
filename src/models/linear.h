/* linear.h — the linear layer shared by the models of src/models/ (decoder and encoder blocks):
 * a weight W [OC, C] (nn.Linear layout) held in an ft_param that is either f32 (p->t.data) or a
 * frozen weight in another format: for QLoRA a quantized base (p->t.dtype FT_NF4 / FT_Q8_ROW, p->qdesc
 * the ft_nf4_tensor / ft_q8row_tensor describing p->t.data, quant.h), for generation in bf16 (FT_BF16,
 * p->qdesc an ft_bf16_tensor, bf16.h), GGUF blocks (ggml_quant.h). The model loops call
 * ft__linear_q_forward / ft__linear_q_backward for every block matmul and never look at the storage
 * themselves; each format brings its matmul through the backend's qmatmul members.
 *
 * Re-storing a model's base (ft__params_quantize) keeps the "one allocation per lifetime" rule: the
 * f32 rest moves into one new arena, the quantized weights and their descriptors into another, and
 * one workspace (ws, wsn floats) serves every quantized matmul of the model (sized for the largest).
 *
 *   ft_param *p = &params[i];                            // W [OC, C]
 *   ft__linear_q_forward(be, out, inp, p, bias, N, C, OC, ws, wsn);            // out [N, OC]
 *   ft__linear_q_backward(be, dinp, p->grad, dbias, dout, inp, p, N, C, OC, ws, wsn);
 */
#ifndef FT_MODELS_LINEAR_H
#define FT_MODELS_LINEAR_H
#include <stddef.h>
#include <stdint.h>

#include "finetune/arena.h"
#include "finetune/backend.h"
#include "finetune/model.h"

/* out[N,OC] = inp[N,C] @ W^T (+ bias[OC], may be NULL); out is ASSIGNED. f32 W: be->matmul_forward;
 * quantized W: be->qmatmul_forward with the workspace ws[wsn] (ft__linear_q_workspace_floats of the
 * model's largest quantized weight). */
void ft__linear_q_forward(const ft_backend *be, float *out, const float *inp, const ft_param *p, const float *bias,
                         int N, int C, int OC, float *ws, size_t wsn);
/* Backward of the above: dinp[N,C] ASSIGNED (NULL: not needed); dw[OC,C] and dbias[OC] ACCUMULATE
 * (NULL: frozen). A quantized W is frozen: dw is ignored and only dinp (through W) and dbias are
 * computed. inp is the forward's input (for dw). */
void ft__linear_q_backward(const ft_backend *be, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                          const ft_param *p, int N, int C, int OC, float *ws, size_t wsn);
/* The same with dw ASSIGNED when assign_dw (dw = dout^T inp: a gradient pending zero, model.h ft_param.grad_pending;
 * its old contents are neither read nor needed): be->matmul_backward_assign_dw, or (a backend without it) dw
 * cleared, then the accumulating product. assign_dw 0 is ft__linear_q_backward. */
void ft__linear_q_backward_dw(const ft_backend *be, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout,
                              const float *inp, const ft_param *p, int N, int C, int OC, float *ws, size_t wsn);

/* The GPT-2 MLP's GELU fused into its products (backend.h: matmul_gelu_forward / _backward), possible where
 * ft__linear_gelu_ok: the backend has them and W is f32. Forward: act = gelu(x), x = inp W^T + bias, and out = x,
 * or gelu'(x) when deriv. Backward: dinp = (dout W) gelu'(pre) (assigned; pre the pre-activation of
 * inp = gelu(pre)), or (dout W) pre when deriv (pre holds gelu'), dw / dbias as ft__linear_q_backward_dw. */
int ft__linear_gelu_ok(const ft_backend *be, const ft_param *p);
void ft__linear_gelu_forward(const ft_backend *be, float *out, float *act, const float *inp, const ft_param *p, const float *bias,
                             int N, int C, int OC, int deriv);
void ft__linear_gelu_backward(const ft_backend *be, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout,
                              const float *inp, const float *pre, int deriv, const ft_param *p, int N, int C, int OC);

/* Workspace floats for matmuls with W [OC, C] stored as q: for NF4 / int8 / ggml blocks the whole
 * dequantized weight (the fastest path at training batch sizes) up to 16M floats, else the tiled path's
 * per-thread tiles; for FT_BF16 ft_bf16_workspace_floats (a block of widened rows). */
size_t ft__linear_q_workspace_floats(ft_dtype q, int64_t OC, int64_t C);
/* FT_ERR_SHAPE naming the tensor when W [OC, C] cannot be stored as q (NF4 needs C % 64 == 0);
 * FT_ERR_INVALID when q is not FT_NF4 / FT_Q8_ROW / FT_BF16. */
int ft__linear_q_check(const ft_param *p, ft_dtype q);
/* Bytes the quantized weight of W [OC, C] takes in the quantized arena (descriptor + payload,
 * each FT_ALIGN-rounded as ft_arena_alloc hands them out). */
size_t ft__linear_q_arena_bytes(ft_dtype q, int64_t OC, int64_t C);
/* Carves p's descriptor and payload out of qa (planned with ft__linear_q_arena_bytes) and re-types p
 * as a frozen q weight (trainable 0, grad untouched). w[OC, C] (may be NULL: fill later with
 * ft__linear_q_fill, e.g. while a checkpoint streams in) is quantized (scalar _ref, bit-exact with
 * bitsandbytes). p->t.data then points into qa; the caller owns the old f32 storage. */
int ft__linear_q_store(ft_param *p, ft_dtype q, ft_arena *qa, const float *w);
int ft__linear_q_fill(ft_param *p, const float *w);

/* QLoRA's frozen base for a whole parameter array: every params[i] with sel[i] != 0 (2-D f32
 * weights) is re-stored as q (FT_NF4 double-quantized / FT_Q8_ROW / FT_BF16) in a new *qarena; the other
 * params are copied into a new f32 arena that replaces *weights (the old one is freed); *ws is
 * (re)allocated as the workspace of the largest quantized weight (*wsn floats). On error nothing
 * changes. *qarena must be empty (base NULL) on entry; params must not have gradients yet. */
int ft__params_quantize(ft_param *params, int n, const unsigned char *sel, ft_dtype q, ft_arena *weights,
                       ft_arena *qarena, float **ws, size_t *wsn);
#endif
