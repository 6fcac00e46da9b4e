/* encoder_train_state.c — encoder training states apart from the weights (train_state.h): what one LoRA
 * training writes over an encoder it only reads. The passes are the encoder's own (encoder.c, the heads,
 * over a state); the adapters are encoder_lora.c's. The model's own state (m->ts) is the same struct,
 * released with the model. */
#include "encoder_internal.h"
#include "finetune/lora.h"
#include "finetune/status.h"

#include <stdlib.h>

int ft_encoder_train_state_create(ft_encoder_train_state **out, ft_encoder_model *m, const ft_lora_config *c, uint64_t seed) {
    *out = NULL;
    if (!m || !c) return ft_error(FT_ERR_INVALID, "encoder training state: no model or LoRA config");
    ft_encoder_train_state *s = calloc(1, sizeof *s);
    if (!s) return ft_error(FT_ERR_NOMEM, "out of memory");
    s->m = m;
    int rc = ft__enc_lora_add(s, c, seed);
    /* a quantized base (QLoRA): the state's own workspace, as large as the model's */
    if (rc == FT_OK && m->qws_floats) {
        s->qws_floats = m->qws_floats;
        if (!(s->qws = malloc(sizeof(float) * s->qws_floats))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    if (rc < 0) { ft_encoder_train_state_free(s); return rc; }
    *out = s;
    return FT_OK;
}

void ft__enc_ts_release(ft_encoder_train_state *s) {
    ft_arena_free(&s->grads);
    ft_arena_free(&s->act_arena);
    ft_arena_free(&s->head_arena);
    ft__enc_lora_close(s);
    free(s->row_xa);
    s->row_xa = NULL;
    if (!s->own) {
        free(s->params);
        free(s->qws);
        s->params = NULL;
        s->qws = NULL;
    }
}

void ft_encoder_train_state_free(ft_encoder_train_state *s) {
    if (!s || s->own) return;   /* the model's own state goes with the model */
    ft__enc_ts_release(s);
    free(s);
}

void ft_encoder_train_state_set_training(ft_encoder_train_state *s, int training, uint64_t seed) {
    s->training = training;
    s->seed = seed;
}
void ft_encoder_train_state_set_label_smoothing(ft_encoder_train_state *s, float eps) { s->smoothing = eps > 0 && eps < 1 ? eps : 0.0f; }

int ft_encoder_train_state_forward(ft_encoder_train_state *s, const ft_encoder_inputs *in, float *loss) { return ft__enc_forward(s, in, loss); }
int ft_encoder_train_state_zero_grad(ft_encoder_train_state *s) { return ft__enc_zero_grad(s); }
int ft_encoder_train_state_backward(ft_encoder_train_state *s, float grad_scale) {
    if (grad_scale == 0.0f) {
        double d = s->a.has_labels ? s->a.denom : 0.0;
        grad_scale = d > 0 ? (float)(1.0 / d) : 0.0f;
    }
    return ft__enc_backward(s, grad_scale);
}
const float *ft_encoder_train_state_logits(const ft_encoder_train_state *s) { return s->a.logits; }
int ft_encoder_train_state_logit_rows(const ft_encoder_train_state *s) { return s->a.rows; }
int ft_encoder_train_state_logit_cols(const ft_encoder_train_state *s) { return s->a.cols; }

int ft_encoder_train_state_num_params(const ft_encoder_train_state *s) { return enc_n_params(s); }
ft_param *ft_encoder_train_state_param(ft_encoder_train_state *s, int i) {
    return i >= 0 && i < enc_n_params(s) ? &enc_params(s)[i] : NULL;
}


int ft_encoder_train_state_save_adapter(const ft_encoder_train_state *s, const char *dir, const char *base_path, const char *const *label_names) {
    return ft__enc_lora_save(s, dir, base_path, label_names);
}
