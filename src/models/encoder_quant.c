/* encoder_quant.c — QLoRA's frozen base for encoders: the six linear weights of every block (query,
 * key, value, attention output, FFN in, FFN out) re-stored as NF4 or int8 rows (linear.h,
 * ft__params_quantize). Embeddings, LayerNorms, biases and the task head stay f32 (the biases and the
 * head may still train). The block loops of encoder.c run every matmul through ft_linear_q_* and so
 * use the quantized weights without knowing it; LoRA adapters sit on top as on an f32 base. */
#include "models/encoder_internal.h"
#include "models/linear.h"
#include "finetune/status.h"

#include <stdint.h>
#include <stdlib.h>

static const int k_qslots[] = {S_Q_W, S_K_W, S_V_W, S_O_W, S_FC_W, S_PR_W};

int ft_encoder_quantize_base(ft_encoder_model *m, ft_dtype q) {
    if (q != FT_NF4 && q != FT_Q8_ROW) return ft_error(FT_ERR_INVALID, "quantization must be nf4 or int8");
    if (m->ts.lora || m->ts.grads_ready) return ft_error(FT_ERR_INVALID, "quantize the base before adding LoRA adapters or gradients");
    if (m->quant != FT_F32) return ft_error(FT_ERR_INVALID, "the encoder is already quantized");
    unsigned char *sel = calloc((size_t)m->n_params, 1);
    if (!sel) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (size_t k = 0; k < sizeof k_qslots / sizeof *k_qslots; k++) sel[m->lslot[l * S_COUNT + k_qslots[k]]] = 1;
    int rc = ft__params_quantize(m->params, m->n_params, sel, q, &m->weights, &m->qarena, &m->qws, &m->qws_floats);
    free(sel);
    if (rc < 0) return rc;
    m->quant = q;
    return FT_OK;
}

/* load-time quantization: re-plans the f32 offsets of the other params into plan (layout()), lays the
 * selected ones out in m->qarena (payload unfilled: enc_quant_read fills it tensor by tensor) */
int ft__enc_quant_layout(ft_encoder_model *m, ft_dtype q, ft_arena *plan) {
    unsigned char *sel = calloc((size_t)m->n_params, 1);
    if (!sel) return ft_error(FT_ERR_NOMEM, "out of memory");
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (size_t k = 0; k < sizeof k_qslots / sizeof *k_qslots; k++) sel[m->lslot[l * S_COUNT + k_qslots[k]]] = 1;
    ft_arena qplan;
    ft_arena_plan(&qplan);
    ft_arena_plan(plan);
    size_t wmax = 0;
    int rc = FT_OK;
    for (int i = 0; i < m->n_params && rc == FT_OK; i++) {
        ft_param *p = &m->params[i];
        if (!sel[i]) { p->t.data = (void *)(uintptr_t)plan->used; ft_arena_alloc(plan, ft_tensor_nbytes(&p->t)); continue; }
        rc = ft__linear_q_check(p, q);
        qplan.used += ft__linear_q_arena_bytes(q, p->t.shape[0], p->t.shape[1]);
        size_t w = ft__linear_q_workspace_floats(q, p->t.shape[0], p->t.shape[1]);
        if (w > wmax) wmax = w;
    }
    if (rc == FT_OK) rc = ft_arena_init(&m->qarena, qplan.used);
    if (rc == FT_OK && !(m->qws = malloc(sizeof(float) * (wmax ? wmax : 1)))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    m->qws_floats = wmax;
    for (int i = 0; i < m->n_params && rc == FT_OK; i++)
        if (sel[i]) rc = ft__linear_q_store(&m->params[i], q, &m->qarena, NULL);
    free(sel);
    if (rc == FT_OK) m->quant = q;
    return rc;
}

ft_dtype ft_encoder_base_quant(const ft_encoder_model *m) { return m->quant; }

size_t ft__enc_quant_bytes(const ft_encoder_model *m) { return m->qarena.used; }

void ft__enc_quant_close(ft_encoder_model *m) {
    ft_arena_free(&m->qarena);
    free(m->qws);
    m->qws = NULL;
    m->qws_floats = 0;
}
