/* train_state.c — training states apart from the weights (train_state.h): what one training writes over
 * a model it only reads. The forward and backward are the model's own (decoder.c, over a state); the
 * adapters are lora.c's. The model's own state (m->ts) is the same struct, released with the model. */
#include "model_internal.h"
#include "finetune/lora.h"
#include "finetune/status.h"

#include <stdlib.h>

int ft_train_state_create(ft_train_state **out, ft_model *m, const ft_lora_config *c, uint64_t seed) {
    *out = NULL;
    if (!m || !c) return ft_error(FT_ERR_INVALID, "training state: no model or LoRA config");
    ft_train_state *s = calloc(1, sizeof *s);
    if (!s) return ft_error(FT_ERR_NOMEM, "out of memory");
    s->m = m;
    int rc = ft__lora_add(s, c, seed);
    /* a quantized base (QLoRA): the state's own workspace, as large as the model's */
    if (rc == FT_OK && m->qws_floats) {
        s->qws_floats = m->qws_floats;
        if (!(s->qws = malloc(sizeof(float) * s->qws_floats))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
    }
    if (rc < 0) { ft_train_state_free(s); return rc; }
    *out = s;
    return FT_OK;
}

void ft__ts_release(ft_train_state *s) {
    ft_arena_free(&s->grads);
    ft_arena_free(&s->act_arena);
    ft_arena_free(&s->lora_arena);
    free(s->lora);
    s->lora = NULL;
    if (!s->own) {
        free(s->params);
        free(s->qws);
        s->params = NULL;
        s->qws = NULL;
    }
}

void ft_train_state_free(ft_train_state *s) {
    if (!s || s->own) return;   /* the model's own state goes with the model */
    ft__ts_release(s);
    free(s);
}

int ft_train_state_num_params(const ft_train_state *s) { return s->own ? s->m->n_params : s->n_params; }

ft_param *ft_train_state_param(ft_train_state *s, int i) {
    return i >= 0 && i < ft_train_state_num_params(s) ? &ft__ts_params(s)[i] : NULL;
}

int ft_train_state_lora_count(const ft_train_state *s) { return s->n_lora; }

int ft_train_state_save_adapter(const ft_train_state *s, const char *dir, const char *base_path) {
    return ft__lora_save(s, dir, base_path);
}
