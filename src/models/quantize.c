/* quantize.c — QLoRA's frozen base: the blocks' linear weights re-stored as NF4 or int8 rows, and the
 * f32 weights arena rebuilt without them (one allocation for the f32 rest, one for the quantized). */
#include "model_internal.h"
#include "finetune/quant.h"
#include "finetune/status.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* workspace of the quantized matmuls: enough to dequantize a whole weight (the fastest path for
 * training-size batches) up to 16M floats (64 MiB); bigger weights (an LM head of 32k x 2048) use the
 * tiled path, whose per-thread tiles are always covered */
static size_t workspace_floats(int64_t OC, int64_t C) {
    size_t fast = ft_quant_workspace_floats(FT_QUANT_WS_FAST, 0, C, OC, 0);
    size_t lean = ft_quant_workspace_floats(FT_QUANT_WS_LEAN, 0, C, OC, 0);
    size_t cap = (size_t)1 << 24;
    size_t ws = fast < cap ? fast : cap;
    return ws > lean ? ws : lean;
}

static const int k_qslots[4] = {P_QKV_W, P_ATTN_W, P_FC_W, P_PROJ_W};

static int is_qslot(const ft_model *m, int i) {
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int s = 0; s < 4; s++) if (m->layer_slot[l * P_LAYER_COUNT + k_qslots[s]] == i) return 1;
    return 0;
}

int ft_model_quantize_base(ft_model *m, ft_dtype q) {
    if (q != FT_NF4 && q != FT_Q8_ROW) return ft_error(FT_ERR_INVALID, "quantization must be nf4 or int8");
    if (m->n_lora || m->grads_ready) return ft_error(FT_ERR_INVALID, "quantize the base before adding LoRA adapters or gradients");
    if (m->qarena.base) return ft_error(FT_ERR_INVALID, "the model is already quantized");
    int n = m->n_params, flags = FT_NF4_DOUBLE_QUANT;
    /* plan: descriptors + blobs; the f32 rest */
    ft_arena qplan, fplan;
    ft_arena_plan(&qplan);
    ft_arena_plan(&fplan);
    size_t wmax = 0;
    for (int i = 0; i < n; i++) {
        ft_param *p = &m->params[i];
        if (!is_qslot(m, i)) { ft_arena_alloc(&fplan, ft_tensor_nbytes(&p->t)); continue; }
        int64_t OC = p->t.shape[0], C = p->t.shape[1];
        if (q == FT_NF4 && C % FT_NF4_BLOCK)
            return ft_error(FT_ERR_SHAPE, "NF4 needs input widths that are multiples of %d; %s has %lld (use --quant int8)", FT_NF4_BLOCK, p->name, (long long)C);
        ft_arena_alloc(&qplan, q == FT_NF4 ? sizeof(ft_nf4_tensor) : sizeof(ft_q8row_tensor));
        ft_arena_alloc(&qplan, q == FT_NF4 ? ft_nf4_nbytes(OC, C, flags) : ft_q8row_nbytes(OC, C));
        size_t ws = workspace_floats(OC, C);
        if (ws > wmax) wmax = ws;
    }
    ft_arena qa, fa;
    FT_TRY(ft_arena_init(&qa, qplan.used));
    int rc = ft_arena_init(&fa, fplan.used);
    if (rc < 0) { ft_arena_free(&qa); return rc; }
    float *ws = malloc(sizeof(float) * (wmax ? wmax : 1));
    if (!ws) { ft_arena_free(&qa); ft_arena_free(&fa); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < n && rc == FT_OK; i++) {
        ft_param *p = &m->params[i];
        size_t nb = ft_tensor_nbytes(&p->t);
        if (!is_qslot(m, i)) {
            void *dst = ft_arena_alloc(&fa, nb);
            memcpy(dst, p->t.data, nb);
            p->t.data = dst;
            continue;
        }
        int64_t OC = p->t.shape[0], C = p->t.shape[1];
        const float *w = p->t.data;
        if (q == FT_NF4) {
            ft_nf4_tensor *d = ft_arena_alloc(&qa, sizeof *d);
            void *blob = ft_arena_alloc(&qa, ft_nf4_nbytes(OC, C, flags));
            rc = ft_nf4_view(d, OC, C, flags, blob);
            if (rc == FT_OK) rc = ft_nf4_quantize_ref(d, w, NULL);
            p->qdesc = d;
            p->t.data = blob;
        } else {
            ft_q8row_tensor *d = ft_arena_alloc(&qa, sizeof *d);
            void *blob = ft_arena_alloc(&qa, ft_q8row_nbytes(OC, C));
            rc = ft_q8row_view(d, OC, C, blob);
            if (rc == FT_OK) rc = ft_q8row_quantize_ref(d, w);
            p->qdesc = d;
            p->t.data = blob;
        }
        p->t.dtype = q;
        p->trainable = 0;
    }
    if (rc < 0) { free(ws); ft_arena_free(&qa); ft_arena_free(&fa); return rc; }
    ft_arena_free(&m->weights);
    m->weights = fa;
    m->qarena = qa;
    free(m->qws);
    m->qws = ws;
    m->qws_floats = wmax;
    return FT_OK;
}

/* ------------------------------------------------------------------ quantize while loading */

static int is_qslot_or_head(const ft_model *m, int i) {
    return is_qslot(m, i) || (i == m->global_slot[G_LM_HEAD] && i >= 0);
}

int ft_quant_plan(ft_model *m, ft_arena *plan) {
    ft_dtype q = m->load_quant;
    if (q != FT_NF4 && q != FT_Q8_ROW) return ft_error(FT_ERR_INVALID, "quantization must be nf4 or int8");
    int flags = FT_NF4_DOUBLE_QUANT;
    ft_arena qplan;
    ft_arena_plan(&qplan);
    ft_arena_plan(plan);
    size_t wmax = 0;
    for (int i = 0; i < m->n_params; i++) {
        ft_param *p = &m->params[i];
        if (!is_qslot_or_head(m, i)) { p->t.data = (void *)(uintptr_t)plan->used; ft_arena_alloc(plan, ft_tensor_nbytes(&p->t)); continue; }
        int64_t OC = p->t.shape[0], C = p->t.shape[1];
        if (q == FT_NF4 && C % FT_NF4_BLOCK)
            return ft_error(FT_ERR_SHAPE, "NF4 needs input widths that are multiples of %d; %s has %lld (use --quant int8)", FT_NF4_BLOCK, p->name, (long long)C);
        ft_arena_alloc(&qplan, q == FT_NF4 ? sizeof(ft_nf4_tensor) : sizeof(ft_q8row_tensor));
        ft_arena_alloc(&qplan, q == FT_NF4 ? ft_nf4_nbytes(OC, C, flags) : ft_q8row_nbytes(OC, C));
        size_t ws = workspace_floats(OC, C);
        if (ws > wmax) wmax = ws;
    }
    FT_TRY(ft_arena_init(&m->qarena, qplan.used));
    m->qws = malloc(sizeof(float) * (wmax ? wmax : 1));
    if (!m->qws) return ft_error(FT_ERR_NOMEM, "out of memory");
    m->qws_floats = wmax;
    for (int i = 0; i < m->n_params; i++) {
        ft_param *p = &m->params[i];
        if (!is_qslot_or_head(m, i)) continue;
        int64_t OC = p->t.shape[0], C = p->t.shape[1];
        if (q == FT_NF4) {
            ft_nf4_tensor *d = ft_arena_alloc(&m->qarena, sizeof *d);
            void *blob = ft_arena_alloc(&m->qarena, ft_nf4_nbytes(OC, C, flags));
            FT_TRY(ft_nf4_view(d, OC, C, flags, blob));
            p->qdesc = d;
            p->t.data = blob;
        } else {
            ft_q8row_tensor *d = ft_arena_alloc(&m->qarena, sizeof *d);
            void *blob = ft_arena_alloc(&m->qarena, ft_q8row_nbytes(OC, C));
            FT_TRY(ft_q8row_view(d, OC, C, blob));
            p->qdesc = d;
            p->t.data = blob;
        }
        p->t.dtype = q;
        p->trainable = 0;
    }
    return FT_OK;
}

int ft_quant_param(ft_model *m, int i, const float *w) {
    ft_param *p = &m->params[i];
    if (p->t.dtype == FT_NF4) return ft_nf4_quantize_ref((ft_nf4_tensor *)p->qdesc, w, NULL);
    return ft_q8row_quantize_ref((ft_q8row_tensor *)p->qdesc, w);
}
