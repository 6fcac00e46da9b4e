/* quantize.c — QLoRA's frozen base: the blocks' linear weights re-stored as NF4 or int8 rows, and the
 * f32 weights arena rebuilt without them (one allocation for the f32 rest, one for the quantized). */
#include "model_internal.h"
#include "models/linear.h"
#include "finetune/bf16.h"
#include "finetune/quant.h"
#include "finetune/status.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int k_qslots[4] = {P_QKV_W, P_ATTN_W, P_FC_W, P_PROJ_W};

static int is_qslot(const ft_model *m, int i) {
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int s = 0; s < 4; s++) if (m->layer_slot[l * P_LAYER_COUNT + k_qslots[s]] == i) return 1;
    return 0;
}

int ft_model_quantize_base(ft_model *m, ft_dtype q) {
    if (q != FT_NF4 && q != FT_Q8_ROW) return ft_error(FT_ERR_INVALID, "quantization must be nf4 or int8");
    if (m->ts.n_lora || m->ts.grads_ready) return ft_error(FT_ERR_INVALID, "quantize the base before adding LoRA adapters or gradients");
    unsigned char *sel = calloc((size_t)m->n_params + 1, 1);
    if (!sel) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_params; i++) sel[i] = (unsigned char)is_qslot(m, i);
    int rc = ft__params_quantize(m->params, m->n_params, sel, q, &m->weights, &m->qarena, &m->qws, &m->qws_floats);
    free(sel);
    return rc;
}

/* ------------------------------------------------------------------ quantize while loading */

static int is_qslot_or_head(const ft_model *m, int i) {
    return is_qslot(m, i) || (i == m->global_slot[G_LM_HEAD] && i >= 0);
}

/* bf16 (generation): a tied LM head gets its own bf16 copy of the word embeddings (m->head_lp), so that
 * the largest matmul of a small model reads 2 bytes per weight too; the f32 embeddings stay for the lookup */
static int tied_head_copy(const ft_model *m) { return m->load_quant == FT_BF16 && m->cfg.tied_embeddings && m->global_slot[G_WTE] >= 0; }

int ft__quant_plan(ft_model *m, ft_arena *plan) {
    ft_dtype q = m->load_quant;
    if (q != FT_NF4 && q != FT_Q8_ROW && q != FT_BF16) return ft_error(FT_ERR_INVALID, "quantization must be nf4, int8 or bf16");
    if (q == FT_BF16) FT_TRY(ft_bf16_check_cpu());
    size_t qbytes = 0, wmax = 0;
    ft_arena_plan(plan);
    for (int i = 0; i < m->n_params; i++) {
        ft_param *p = &m->params[i];
        if (!is_qslot_or_head(m, i)) { p->t.data = (void *)(uintptr_t)plan->used; ft_arena_alloc(plan, ft_tensor_nbytes(&p->t)); continue; }
        FT_TRY(ft__linear_q_check(p, q));
        qbytes += ft__linear_q_arena_bytes(q, p->t.shape[0], p->t.shape[1]);
        size_t ws = ft__linear_q_workspace_floats(q, p->t.shape[0], p->t.shape[1]);
        if (ws > wmax) wmax = ws;
    }
    ft_param *wte = m->global_slot[G_WTE] >= 0 ? &m->params[m->global_slot[G_WTE]] : NULL;
    if (tied_head_copy(m)) {
        m->head_lp = *wte;
        snprintf(m->head_lp.name, sizeof m->head_lp.name, "lm_head (bf16 copy of wte)");
        m->head_lp.trainable = 0;
        m->head_lp.grad = NULL;
        qbytes += ft__linear_q_arena_bytes(q, wte->t.shape[0], wte->t.shape[1]);
        size_t ws = ft__linear_q_workspace_floats(q, wte->t.shape[0], wte->t.shape[1]);
        if (ws > wmax) wmax = ws;
    }
    FT_TRY(ft_arena_init(&m->qarena, qbytes ? qbytes : FT_ALIGN));
    m->qws = malloc(sizeof(float) * (wmax ? wmax : 1));
    if (!m->qws) return ft_error(FT_ERR_NOMEM, "out of memory");
    m->qws_floats = wmax;
    for (int i = 0; i < m->n_params; i++)
        if (is_qslot_or_head(m, i)) FT_TRY(ft__linear_q_store(&m->params[i], q, &m->qarena, NULL));
    if (tied_head_copy(m)) FT_TRY(ft__linear_q_store(&m->head_lp, q, &m->qarena, NULL));
    return FT_OK;
}

int ft__quant_param(ft_model *m, int i, const float *w) { return ft__linear_q_fill(&m->params[i], w); }

int ft__quant_finish(ft_model *m) {
    if (!m->head_lp.qdesc) return FT_OK;
    return ft__linear_q_fill(&m->head_lp, ft_gp(m, G_WTE));
}
