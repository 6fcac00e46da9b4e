/* linear.c — the models' linear layer over an f32, bf16 or quantized weight, and the re-storing of a
 * parameter array's base weights as NF4 / int8 rows (QLoRA) or bf16 (generation) (linear.h). */
#include "models/linear.h"
#include "finetune/bf16.h"
#include "finetune/quant.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ forward / backward */

void ft__linear_q_forward(const ft_backend *be, float *out, const float *inp, const ft_param *p, const float *bias,
                         int N, int C, int OC, float *ws, size_t wsn) {
    if (p->qdesc) be->qmatmul_forward(be->ctx, out, inp, p->t.dtype, p->qdesc, bias, N, ws, wsn);
    else if (p->pack && be->matmul_wpack_forward) be->matmul_wpack_forward(be->ctx, out, inp, p->t.data, p->pack, bias, N, C, OC);
    else be->matmul_forward(be->ctx, out, inp, p->t.data, bias, N, C, OC);
}

void ft__linear_q_backward(const ft_backend *be, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                          const ft_param *p, int N, int C, int OC, float *ws, size_t wsn) {
    ft__linear_q_backward_dw(be, dinp, dw, 0, dbias, dout, inp, p, N, C, OC, ws, wsn);
}

void ft__linear_q_backward_dw(const ft_backend *be, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout,
                              const float *inp, const ft_param *p, int N, int C, int OC, float *ws, size_t wsn) {
    if (!p->qdesc && dw && assign_dw) {
        void *pack = p->pack && be->matmul_wpack_backward ? p->pack : NULL;
        if (be->matmul_backward_assign_dw) {
            be->matmul_backward_assign_dw(be->ctx, dinp, dw, dbias, dout, inp, p->t.data, pack, N, C, OC);
            return;
        }
        memset(dw, 0, sizeof(float) * (size_t)OC * C);   /* a backend without it: zeros, then the accumulating product */
    }
    if (!p->qdesc && p->pack && be->matmul_wpack_backward) {
        be->matmul_wpack_backward(be->ctx, dinp, dw, dbias, dout, inp, p->t.data, p->pack, N, C, OC);
        return;
    }
    if (!p->qdesc) { be->matmul_backward(be->ctx, dinp, dw, dbias, dout, inp, p->t.data, N, C, OC); return; }
    /* a quantized weight is frozen: the input gradient through it, and a trainable bias */
    if (dinp) be->qmatmul_backward(be->ctx, dinp, dout, p->t.dtype, p->qdesc, N, ws, wsn);
    if (dbias) be->bias_backward(be->ctx, dbias, dout, N, OC);
}

/* the weight pack of p for this backend's products (NULL: none, or a table without packs) */
static void *pack_of(const ft_backend *be, const ft_param *p) { return p->pack && be->matmul_wpack_forward ? p->pack : NULL; }

int ft__linear_gelu_ok(const ft_backend *be, const ft_param *p) {
    return !p->qdesc && p->t.dtype == FT_F32 && be->matmul_gelu_forward && be->matmul_gelu_backward;
}

void ft__linear_gelu_forward(const ft_backend *be, float *out, float *act, const float *inp, const ft_param *p, const float *bias,
                             int N, int C, int OC, int deriv) {
    be->matmul_gelu_forward(be->ctx, out, act, inp, p->t.data, pack_of(be, p), bias, N, C, OC, deriv);
}

void ft__linear_gelu_backward(const ft_backend *be, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout,
                              const float *inp, const float *pre, int deriv, const ft_param *p, int N, int C, int OC) {
    be->matmul_gelu_backward(be->ctx, dinp, dw, assign_dw, dbias, dout, inp, pre, deriv, p->t.data, pack_of(be, p), N, C, OC);
}

/* ------------------------------------------------------------ one quantized weight */

size_t ft__linear_q_workspace_floats(ft_dtype q, int64_t OC, int64_t C) {
    if (q == FT_BF16) return ft_bf16_workspace_floats(OC, C);
    size_t fast = ft_quant_workspace_floats(FT_QUANT_WS_FAST, 0, C, OC, 0);
    size_t lean = ft_quant_workspace_floats(FT_QUANT_WS_LEAN, 0, C, OC, 0);
    size_t cap = (size_t)1 << 24;   /* 64 MiB: an LM head of 32k x 2048 takes the tiled path */
    size_t ws = fast < cap ? fast : cap;
    return ws > lean ? ws : lean;
}

int ft__linear_q_check(const ft_param *p, ft_dtype q) {
    if (q != FT_NF4 && q != FT_Q8_ROW && q != FT_BF16) return ft_error(FT_ERR_INVALID, "quantization must be nf4, int8 or bf16");
    if (p->t.ndim != 2 || p->t.dtype != FT_F32)
        return ft_error(FT_ERR_INVALID, "%s: only 2-D f32 weights can be quantized", p->name);
    if (q == FT_NF4 && p->t.shape[1] % FT_NF4_BLOCK)
        return ft_error(FT_ERR_SHAPE, "NF4 needs input widths that are multiples of %d; %s has %lld (use --quant int8)",
                        FT_NF4_BLOCK, p->name, (long long)p->t.shape[1]);
    return FT_OK;
}

static size_t desc_bytes(ft_dtype q) {
    return q == FT_NF4 ? sizeof(ft_nf4_tensor) : q == FT_BF16 ? sizeof(ft_bf16_tensor) : sizeof(ft_q8row_tensor);
}
static size_t payload_bytes(ft_dtype q, int64_t OC, int64_t C) {
    return q == FT_NF4 ? ft_nf4_nbytes(OC, C, FT_NF4_DOUBLE_QUANT) : q == FT_BF16 ? ft_bf16_nbytes(OC, C) : ft_q8row_nbytes(OC, C);
}

size_t ft__linear_q_arena_bytes(ft_dtype q, int64_t OC, int64_t C) {
    ft_arena plan;
    ft_arena_plan(&plan);
    ft_arena_alloc(&plan, desc_bytes(q));
    ft_arena_alloc(&plan, payload_bytes(q, OC, C));
    return plan.used;
}

int ft__linear_q_store(ft_param *p, ft_dtype q, ft_arena *qa, const float *w) {
    FT_TRY(ft__linear_q_check(p, q));
    int64_t OC = p->t.shape[0], C = p->t.shape[1];
    void *d = ft_arena_alloc(qa, desc_bytes(q)), *blob = ft_arena_alloc(qa, payload_bytes(q, OC, C));
    if (!d || !blob) return ft_error(FT_ERR_NOMEM, "%s: the quantized arena is too small (planning error)", p->name);
    if (q == FT_NF4) FT_TRY(ft_nf4_view(d, OC, C, FT_NF4_DOUBLE_QUANT, blob));
    else if (q == FT_BF16) FT_TRY(ft_bf16_view(d, OC, C, blob));
    else FT_TRY(ft_q8row_view(d, OC, C, blob));
    p->qdesc = d;
    p->t.data = blob;
    p->t.dtype = q;
    p->trainable = 0;
    return w ? ft__linear_q_fill(p, w) : FT_OK;
}

int ft__linear_q_fill(ft_param *p, const float *w) {
    if (p->t.dtype == FT_NF4) return ft_nf4_quantize_ref((ft_nf4_tensor *)p->qdesc, w, NULL);
    if (p->t.dtype == FT_BF16) { ft_bf16_from_f32((ft_bf16_tensor *)p->qdesc, w); return FT_OK; }
    return ft_q8row_quantize_ref((ft_q8row_tensor *)p->qdesc, w);
}

/* ------------------------------------------------------------ a whole base */

int ft__params_quantize(ft_param *params, int n, const unsigned char *sel, ft_dtype q, ft_arena *weights,
                       ft_arena *qarena, float **ws, size_t *wsn) {
    if (qarena->base) return ft_error(FT_ERR_INVALID, "the model is already quantized");
    ft_arena qplan, fplan;
    ft_arena_plan(&qplan);
    ft_arena_plan(&fplan);
    size_t wmax = 0;
    for (int i = 0; i < n; i++) {
        const ft_param *p = &params[i];
        if (!sel[i]) { ft_arena_alloc(&fplan, ft_tensor_nbytes(&p->t)); continue; }
        if (p->grad) return ft_error(FT_ERR_INVALID, "quantize the base before gradients are allocated");
        FT_TRY(ft__linear_q_check(p, q));
        qplan.used += ft__linear_q_arena_bytes(q, p->t.shape[0], p->t.shape[1]);
        size_t w = ft__linear_q_workspace_floats(q, p->t.shape[0], p->t.shape[1]);
        if (w > wmax) wmax = w;
    }
    ft_arena qa, fa;
    FT_TRY(ft_arena_init(&qa, qplan.used ? qplan.used : FT_ALIGN));
    int rc = ft_arena_init(&fa, fplan.used ? fplan.used : FT_ALIGN);
    if (rc < 0) { ft_arena_free(&qa); return rc; }
    float *nws = malloc(sizeof(float) * (wmax ? wmax : 1));
    void **old = malloc(sizeof(void *) * (size_t)(n ? n : 1));
    if (!nws || !old) {
        free(nws); free(old); ft_arena_free(&qa); ft_arena_free(&fa);
        return ft_error(FT_ERR_NOMEM, "out of memory");
    }
    /* the old storage stays valid until every param is re-stored: on error the params are put back */
    for (int i = 0; i < n; i++) old[i] = params[i].t.data;
    ft_param *saved = malloc(sizeof *saved * (size_t)(n ? n : 1));
    if (!saved) { free(nws); free(old); ft_arena_free(&qa); ft_arena_free(&fa); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    memcpy(saved, params, sizeof *saved * (size_t)n);
    for (int i = 0; i < n && rc == FT_OK; i++) {
        ft_param *p = &params[i];
        if (sel[i]) { rc = ft__linear_q_store(p, q, &qa, old[i]); continue; }
        size_t nb = ft_tensor_nbytes(&p->t);
        p->t.data = ft_arena_alloc(&fa, nb);
        memcpy(p->t.data, old[i], nb);
    }
    free(old);
    if (rc < 0) {
        memcpy(params, saved, sizeof *saved * (size_t)n);
        free(saved); free(nws); ft_arena_free(&qa); ft_arena_free(&fa);
        return rc;
    }
    free(saved);
    ft_arena_free(weights);
    *weights = fa;
    *qarena = qa;
    free(*ws);
    *ws = nws;
    *wsn = wmax;
    return FT_OK;
}
