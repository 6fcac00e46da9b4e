/* encoder_adapter.c — LoRA adapter objects over encoders (adapter.h) and the encoder forward whose
 * sequences use different adapters (or none) in one batch: the base matmuls run once over all B*T rows and
 * each sequence's adapter adds its x·Aᵢ·Bᵢ to its own T rows, through the same LoRA update as training
 * (ft__lora_module_forward). An adapter that was saved with its own task head (PEFT's modules_to_save, as
 * finetune's encoder LoRA writes it) keeps that head in the object; its sequences' logits come from it
 * (the head, small next to the body, runs once more per such adapter in the batch). */
#include "encoder_internal.h"
#include "model_internal.h"
#include "peft_config.h"
#include "finetune/fileio.h"
#include "finetune/lora.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the adapted sites of an encoder block, in forward order */
static const int k_enc_sites[6] = {S_Q_W, S_K_W, S_V_W, S_O_W, S_FC_W, S_PR_W};
enum { ENC_SITES = 6 };

static int enc_site_index(int slot) {
    for (int s = 0; s < ENC_SITES; s++) if (k_enc_sites[s] == slot) return s;
    return -1;
}

static void enc_shape(const ft_encoder_model *m, int shape[5]) {
    shape[0] = m->cfg.arch; shape[1] = m->cfg.n_layer; shape[2] = m->cfg.n_embd; shape[3] = m->cfg.n_head; shape[4] = m->cfg.ffn_hidden;
}

static int enc_adapter_fits(const ft_adapter *a, const ft_encoder_model *m) {
    int s[5];
    enc_shape(m, s);
    return a->encoder && !memcmp(s, a->enc_shape, sizeof s);
}

/* modules of m selected by targets (NULL out: count) */
static int plan(const ft_encoder_model *m, const char *targets, ft_adapter_module *out) {
    int n = 0;
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int s = 0; s < ENC_SITES; s++) {
            const ft_param *p = &m->params[m->lslot[l * S_COUNT + k_enc_sites[s]]];
            char mod[160];
            size_t nl = strnlen(p->name, sizeof p->name);
            snprintf(mod, sizeof mod, "%.*s", (int)(nl > 7 ? nl - 7 : nl), p->name);   /* without ".weight" */
            if (!ft__lora_target_matches(mod, targets)) continue;
            if (out) {
                ft_adapter_module *a = &out[n];
                memset(a, 0, sizeof *a);
                snprintf(a->module, sizeof a->module, "%s", mod);
                a->layer = l; a->slot = k_enc_sites[s]; a->site = s;
                a->row0 = 0; a->rows = p->t.shape[0]; a->in = (int)p->t.shape[1];
            }
            n++;
        }
    return n;
}

/* the task head saved with the adapter (modules_to_save: base_model.model.<HF name>), each tensor shaped
 * as the model's own; none saved: the adapter runs with the model's head */
static int read_head(ft_adapter *a, const ft_encoder_model *m, const char *dir) {
    char path[4096];
    ft_safetensors *st;
    FT_TRY(ft_path_join(path, sizeof path, dir, "adapter_model.safetensors"));
    FT_TRY(ft_st_open(&st, path));
    size_t total = 0;
    for (int pass = 0, rc = FT_OK; pass < 2; pass++) {
        size_t off = 0;
        for (int g = E_HEAD0; g < E_COUNT && rc == FT_OK; g++) {
            if (m->slot[g] < 0) continue;
            const ft_param *p = &m->params[m->slot[g]];
            char key[256];
            snprintf(key, sizeof key, "base_model.model.%s", p->name);
            if (!ft_st_find(st, key)) continue;
            size_t n = (size_t)ft_tensor_numel(&p->t);
            if (pass == 0) { total += n; continue; }
            a->head_id[a->n_head] = g;
            a->head[a->n_head] = a->head_mem + off;
            rc = ft_st_read_f32(st, key, p->t.shape, p->t.ndim, a->head[a->n_head]);
            if (rc < 0) rc = ft_error_wrap(rc, "%s: the adapter's task head does not fit this model (another label count?)", dir);
            a->n_head++;
            off += n;
        }
        if (rc < 0) { ft_st_close(st); return rc; }
        if (pass == 0 && total == 0) break;
        if (pass == 0 && !(a->head_mem = malloc(sizeof(float) * total))) { ft_st_close(st); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    }
    ft_st_close(st);
    return FT_OK;
}

int ft_encoder_adapter_load(ft_adapter **out, const ft_encoder_model *m, const char *dir) {
    *out = NULL;
    ft_peft_lora_config pc;
    FT_TRY(ft__peft_lora_config_read(&pc, dir));
    const char *tg = pc.targets[0] ? pc.targets : ft_encoder_lora_default_targets(m);
    int n = plan(m, tg, NULL);
    if (n == 0) return ft_error(FT_ERR_NOT_FOUND, "%s/adapter_config.json: target_modules \"%s\" match no module of this %s encoder", dir, tg, m->cfg.model_type);
    ft_adapter *a = ft__adapter_alloc(n, m->cfg.n_layer, ENC_SITES);
    if (!a) return FT_ERR_NOMEM;
    plan(m, tg, a->mods);
    a->encoder = 1;
    enc_shape(m, a->enc_shape);
    a->r = pc.r; a->alpha = pc.alpha; a->dropout = pc.dropout; a->rslora = pc.rslora;
    snprintf(a->targets, sizeof a->targets, "%s", tg);
    snprintf(a->name, sizeof a->name, "%s", dir);
    float scale = pc.rslora ? pc.alpha / sqrtf((float)pc.r) : pc.alpha / (float)pc.r;
    for (int k = 0; k < n; k++) { a->mods[k].r = pc.r; a->mods[k].scale = scale; }
    int rc = ft__adapter_finish(a, m->cfg.n_layer);
    if (rc == FT_OK) rc = ft__adapter_read(a, dir);
    if (rc == FT_OK) rc = read_head(a, m, dir);
    if (rc < 0) { ft_adapter_free(a); return rc; }
    *out = a;
    return FT_OK;
}

/* ------------------------------------------------------------------ per-sequence adapters in a forward */

void ft__enc_row_adapters_forward(const ft_encoder_train_state *s, int l, int slot, const float *inp, float *out, int N) {
    const ft_adapter *const *ra = s->row_ad;
    if (!ra) return;
    const ft_encoder_model *m = s->m;
    int T = s->a.T, B = N / T, site = l * ENC_SITES + enc_site_index(slot);
    for (int b = 0; b < B; b++) {
        const ft_adapter *ad = ra[b];
        if (!ad) continue;
        for (int k = ad->site_first[site]; k < ad->site_first[site + 1]; k++) {
            const ft_adapter_module *md = &ad->mods[k];
            ft__lora_module_forward(m->be, out + (size_t)b * T * md->rows, (int)md->rows, inp + (size_t)b * T * md->in, md->A, md->B,
                                   s->row_xa, T, md->in, md->r, md->rows, md->scale);
        }
    }
}

/* 1 when logit row j of the last forward belongs to sequence b */
static int row_of(const ft_encoder_model *m, int j, int b) {
    int T = m->ts.a.T;
    if (m->task == FT_TASK_TOKEN) return j / T == b;
    if (m->task == FT_TASK_MLM) return m->ts.a.rows_idx[j] / T == b;
    return j == b;
}

/* sequences whose adapter carries its own head: the head again with those tensors (the body's hidden
 * states stay), their logit rows kept; the base head's rows for the others */
static int adapter_heads(ft_encoder_model *m, const ft_adapter *const *seq_adapters, float *loss) {
    int B = m->ts.a.B, R = m->ts.a.rows, K = m->ts.a.cols, any = 0;
    for (int b = 0; b < B && seq_adapters; b++) any |= seq_adapters[b] && seq_adapters[b]->n_head > 0;
    if (!any) return FT_OK;
    if (loss) *loss = NAN;   /* the loss is the base head's: not defined over several heads */
    float *out = malloc(sizeof(float) * (size_t)R * (size_t)K);
    if (!out) return ft_error(FT_ERR_NOMEM, "out of memory");
    memcpy(out, m->ts.a.logits, sizeof(float) * (size_t)R * (size_t)K);
    for (int b = 0; b < B; b++) {
        const ft_adapter *ad = seq_adapters[b];
        int first = 1;   /* each adapter once, at its first sequence */
        for (int c = 0; c < b && first; c++) first = seq_adapters[c] != ad;
        if (!ad || !ad->n_head || !first) continue;
        float *saved[8];
        for (int h = 0; h < ad->n_head; h++) {
            ft_param *p = &m->params[m->slot[ad->head_id[h]]];
            saved[h] = p->t.data;
            p->t.data = ad->head[h];
        }
        m->head->forward(&m->ts);   /* the logits only: the loss is the base head's (NaN above) */
        for (int h = 0; h < ad->n_head; h++) m->params[m->slot[ad->head_id[h]]].t.data = saved[h];
        for (int c = b; c < B; c++) {
            if (seq_adapters[c] != ad) continue;
            for (int j = 0; j < R; j++)
                if (row_of(m, j, c)) memcpy(out + (size_t)j * K, m->ts.a.logits + (size_t)j * K, sizeof(float) * (size_t)K);
        }
    }
    memcpy(m->ts.a.logits, out, sizeof(float) * (size_t)R * (size_t)K);
    free(out);
    return FT_OK;
}

int ft_encoder_forward_adapters(ft_encoder_model *m, const ft_encoder_inputs *in, const ft_adapter *const *seq_adapters, float *loss) {
    int rmax = 0;
    for (int b = 0; b < in->B && seq_adapters; b++) {
        const ft_adapter *ad = seq_adapters[b];
        if (!ad) continue;
        if (!enc_adapter_fits(ad, m))
            return ft_error(FT_ERR_INVALID, "adapter %s (sequence %d) was made for another model shape", ad->name, b);
        if (ad->r > rmax) rmax = ad->r;
    }
    if (m->ts.training) return ft_error(FT_ERR_INVALID, "per-sequence adapters are for inference: set training mode off");
    size_t need = (size_t)in->T * (size_t)(rmax ? rmax : 1);
    if (need > m->ts.row_xa_n) {
        float *x = realloc(m->ts.row_xa, need * sizeof(float));
        if (!x) return ft_error(FT_ERR_NOMEM, "out of memory");
        m->ts.row_xa = x;
        m->ts.row_xa_n = need;
    }
    m->ts.row_ad = seq_adapters;
    int rc = ft_encoder_forward_ex(m, in, loss);
    m->ts.row_ad = NULL;
    if (rc == FT_OK) rc = adapter_heads(m, seq_adapters, loss);
    return rc;
}
