/* encoder.c — the encoder core, written once for BERT / DistilBERT / RoBERTa (encoder.h): parameter
 * layout (one allocation, HF names from the family), activations, and the body's forward/backward. What
 * differs between the families is in bert.c, distilbert.c, roberta.c (ft__enc_family: config keys, tensor
 * names, position ids, head wiring); the task heads are components (head_seq.c, head_token.c,
 * head_mlm.c); loading and saving are in encoder_io.c.
 *
 *   e = wte[ids] + wpe[pos] (+ wtt[type_ids]);  x = LN(e)      pos: the family's position ids
 *   for each layer:
 *     q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv
 *     r1 = x + attention(q, k, v; mask) Wo^T + bo;      x1 = LN1(r1)   (training: dropout on the
 *                                                        probabilities, the output and the FFN output)
 *     r2 = x1 + act(x1 Wfc^T + bfc) Wpr^T + bpr;       x  = LN2(r2)
 *   head(x)                                             the task's head (ft__enc_head)
 *
 * Shapes: N = B*T rows, C channels, I FFN width, K labels, V vocabulary. Backward mirrors it. */
#include "models/encoder_internal.h"
#include "core/hash.h"
#include "models/model_internal.h"
#include "models/linear.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ layout and names */

/* embeddings and head: <prefix>embeddings.<name>; a head tensor is <module>.weight / .bias, its module the
 * head's in this family */
static void global_name(const ft_encoder_model *m, int g, char *buf, size_t cap) {
    static const char *emb[E_HEAD0] = {"word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight",
                                       "LayerNorm.weight", "LayerNorm.bias"};
    if (g < E_HEAD0) { snprintf(buf, cap, "%sembeddings.%s", m->fam->prefix, emb[g]); return; }
    int bias = g == E_H1_B || g == E_H2_B || g == E_MD_B || g == E_MLN_B || g == E_MB;
    snprintf(buf, cap, "%s.%s", m->head->module(m->fam, g), bias ? "bias" : "weight");
}

/* block tensors: <prefix><layers>.<l>.<module>.weight / .bias */
static void layer_name(const ft__enc_family *f, int l, int s, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s.%d.%s.%s", f->prefix, f->layers, l, f->modules[s / 2], s % 2 ? "bias" : "weight");
}

static int add_param(ft_encoder_model *m, ft_arena *plan, const char *name, int64_t rows, int64_t cols, int decay) {
    ft__param_plan(&m->params[m->n_params], plan, name, rows, cols, decay);
    return m->n_params++;
}

int ft__enc_layout(ft_encoder_model *m, ft_dtype q) {
    const ft_encoder_config *c = &m->cfg;
    int L = c->n_layer, C = c->n_embd, I = c->ffn_hidden, K = c->num_labels;
    m->params = calloc((size_t)(L * S_COUNT + E_COUNT), sizeof *m->params);
    m->lslot = malloc(sizeof(int) * (size_t)L * S_COUNT);
    if (!m->params || !m->lslot) return ft_error(FT_ERR_NOMEM, "encoder: out of memory");
    for (int i = 0; i < E_COUNT; i++) m->slot[i] = -1;
    ft_arena plan;
    ft_arena_plan(&plan);
    char n[64];
    int64_t shape[E_COUNT][2] = {{c->vocab_size, C}, {c->max_pos, C}, {c->type_vocab_size, C}, {C, 0}, {C, 0},
                                 {C, C}, {C, 0}, {K, C}, {K, 0}, {C, C}, {C, 0}, {C, 0}, {C, 0}, {c->vocab_size, 0}};
    for (int g = 0; g < E_HEAD0; g++) {
        if (g == E_WTT && c->type_vocab_size <= 0) continue;
        global_name(m, g, n, sizeof n);
        m->slot[g] = add_param(m, &plan, n, shape[g][0], shape[g][1], 0);
    }
    for (int l = 0; l < L; l++) {
        int64_t ls[S_COUNT][2] = {{C, C}, {C, 0}, {C, C}, {C, 0}, {C, C}, {C, 0}, {C, C}, {C, 0}, {C, 0}, {C, 0},
                                  {I, C}, {I, 0}, {C, I}, {C, 0}, {C, 0}, {C, 0}};
        for (int s = 0; s < S_COUNT; s++) {
            layer_name(m->fam, l, s, n, sizeof n);
            m->lslot[l * S_COUNT + s] = add_param(m, &plan, n, ls[s][0], ls[s][1], ls[s][1] > 0);
        }
    }
    for (int i = 0; i < m->head->n_tensors; i++) {
        int g = m->head->tensors[i];
        global_name(m, g, n, sizeof n);
        m->slot[g] = add_param(m, &plan, n, shape[g][0], shape[g][1], shape[g][1] > 0);
    }
    /* QLoRA while loading: the blocks' linear weights go to the quantized arena */
    if (q != FT_F32) FT_TRY(ft__enc_quant_layout(m, q, &plan));
    FT_TRY(ft_arena_init_on(&m->weights, plan.used, m->be));
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i].qdesc) m->params[i].t.data = m->weights.base + (uintptr_t)m->params[i].t.data;
    m->weights.used = plan.used;
    m->n_base = m->n_params;
    return FT_OK;
}

void ft_encoder_close(ft_encoder_model *m) {
    if (!m) return;
    ft_arena_free(&m->weights);
    ft__enc_ts_release(&m->ts);
    ft__enc_quant_close(m);
    free(m->params);
    free(m->lslot);
    free(m->class_w);
    cJSON_Delete(m->src_config);
    for (int i = 0; i < m->n_label_names; i++) free(m->label_names[i]);
    free(m->label_names);
    free(m);
}

const ft_encoder_config *ft_encoder_get_config(const ft_encoder_model *m) { return &m->cfg; }
int ft_encoder_head_reinitialised(const ft_encoder_model *m) { return m->head_reinit; }
int ft_encoder_num_params(const ft_encoder_model *m) { return m->n_params; }
ft_param *ft_encoder_param(ft_encoder_model *m, int i) { return i >= 0 && i < m->n_params ? &m->params[i] : NULL; }
int64_t ft_encoder_param_count(const ft_encoder_model *m) {
    int64_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += ft_tensor_numel(&m->params[i].t);
    return n;
}
ft_encoder_task ft_encoder_get_task(const ft_encoder_model *m) { return m->task; }
ft_encoder_pooling ft_encoder_get_pooling(const ft_encoder_model *m) { return m->pooling; }

/* ------------------------------------------------------------ activations */

/* Planned with arena == NULL (returns the bytes), carved out of arena otherwise: the body's buffers, then
 * the head's (ft__enc_head.plan: logits, losses, labels and its own), then the inputs. */
size_t ft__enc_acts_layout(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *arena) {
    const ft_encoder_config *c = &m->cfg;
    size_t N = (size_t)B * T, L = (size_t)c->n_layer, C = (size_t)c->n_embd, I = (size_t)c->ffn_hidden;
    size_t ATT = (size_t)B * c->n_head * T * T;
    struct { float **p; size_t n; } f[] = {
        {&a->emb, N * C}, {&a->x0, N * C}, {&a->e_mean, N}, {&a->e_rstd, N},
        {&a->q, L * N * C}, {&a->k, L * N * C}, {&a->v, L * N * C}, {&a->att, L * ATT}, {&a->atty, L * N * C},
        {&a->res1, L * N * C}, {&a->ln1, L * N * C}, {&a->ln1_mean, L * N}, {&a->ln1_rstd, L * N},
        {&a->fch, L * N * I}, {&a->fcha, L * N * I}, {&a->res2, L * N * C}, {&a->ln2, L * N * C},
        {&a->ln2_mean, L * N}, {&a->ln2_rstd, L * N},
        {&a->dx, N * C}, {&a->dtmp, N * C}, {&a->dq, N * C}, {&a->dk, N * C}, {&a->dv, N * C}, {&a->datty, N * C},
        {&a->dfch, N * I}, {&a->dfcha, N * I},
    };
    ft_arena plan, *ar = arena;
    if (!ar) { ft_arena_plan(&plan); ar = &plan; }
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) *f[i].p = ft_arena_alloc(ar, f[i].n * sizeof(float));
    m->head->plan(m, a, B, T, ar);
    int **iv[] = {&a->ids, &a->types, &a->pos, &a->mask};
    for (size_t i = 0; i < 4; i++) *iv[i] = ft_arena_alloc(ar, N * sizeof(int));
    return ar->used;
}

static int prepare(ft_encoder_train_state *s, int B, int T) {
    const ft_encoder_model *m = s->m;
    if (B <= 0 || T <= 0) return ft_error(FT_ERR_INVALID, "batch %d x %d: sizes must be positive", B, T);
    if (s->a.B == B && s->a.T == T) return FT_OK;
    enc_acts tmp;
    memset(&tmp, 0, sizeof tmp);
    size_t need = ft__enc_acts_layout(m, &tmp, B, T, NULL);
    /* batches of varying length (dynamic padding) re-use the allocation: it only grows */
    if (!s->act_arena.base || need > s->act_arena.cap) {
        ft_arena_free(&s->act_arena);
        FT_TRY(ft_arena_init_on(&s->act_arena, need, m->be));
    }
    ft_arena_reset(&s->act_arena);
    memset(&s->a, 0, sizeof s->a);
    ft__enc_acts_layout(m, &s->a, B, T, &s->act_arena);
    s->a.B = B;
    s->a.T = T;
    return FT_OK;
}

size_t ft_encoder_activation_bytes(const ft_encoder_model *m, int B, int T) {
    if (B <= 0 || T <= 0) return 0;
    enc_acts tmp;
    memset(&tmp, 0, sizeof tmp);
    return ft__enc_acts_layout(m, &tmp, B, T, NULL);
}

size_t ft_encoder_weight_bytes(const ft_encoder_model *m) { return m->weights.used + ft__enc_quant_bytes(m); }

/* ------------------------------------------------------------ activations of the config */

void ft__enc_act_forward(const ft_encoder_model *m, int act, float *out, const float *inp, size_t n) {
    if (act == ACT_GELU_TANH) m->be->gelu_forward(m->be->ctx, out, inp, n);
    else if (act == ACT_RELU) m->be->relu_forward(m->be->ctx, out, inp, n);
    else m->be->gelu_erf_forward(m->be->ctx, out, inp, n);
}
void ft__enc_act_backward(const ft_encoder_model *m, int act, float *dinp, const float *dout, const float *inp, size_t n) {
    if (act == ACT_GELU_TANH) m->be->gelu_backward(m->be->ctx, dinp, dout, inp, n);
    else if (act == ACT_RELU) m->be->relu_backward(m->be->ctx, dinp, dout, inp, n);
    else m->be->gelu_erf_backward(m->be->ctx, dinp, dout, inp, n);
}

/* ------------------------------------------------------------ dropout */

void ft_encoder_set_training(ft_encoder_model *m, int training, uint64_t seed) {
    m->ts.training = training;
    m->ts.seed = seed;
}

float ft__enc_hidden_p(const ft_encoder_train_state *s) { return s->training ? s->m->cfg.dropout : 0.0f; }
float ft__enc_head_p(const ft_encoder_train_state *s) { return s->training ? s->m->cfg.head_dropout : 0.0f; }
float ft__enc_attn_p(const ft_encoder_train_state *s) { return s->training ? s->m->cfg.attn_dropout : 0.0f; }
/* the dropout stream of (layer, site): layer -1 embeddings (site 0) and head (sites 1, 2); blocks: 1 attention
 * output, 2 FFN, 3 attention probabilities */
uint64_t ft__enc_site_seed(const ft_encoder_train_state *s, int layer, int site) {
    return s->seed ^ (FT__GOLDEN_GAMMA * (uint64_t)((layer + 2) * 4 + site + 1));
}

/* ------------------------------------------------------------ the blocks' linear layers */

/* Every block matmul: out[N,OC] = inp[N,C] W^T + b for the weight in slot s (S_*_W; its bias is slot
 * s + 1) of layer l, whatever W's storage (f32, or the quantized frozen base of QLoRA: linear.h), then
 * the LoRA adapter of (l, s) if any. Backward mirrors it: dinp ASSIGNED, weight / bias / adapter
 * gradients ACCUMULATE (a quantized W gets none). */
static void linear_forward(const ft_encoder_train_state *st, int l, int s, float *out, const float *inp, int N, int C, int OC) {
    size_t wsn;
    float *ws = enc_ws(st, &wsn);
    ft__linear_q_forward(st->m->be, out, inp, enc_lw(st, l, s), enc_lp(st, l, s + 1), N, C, OC, ws, wsn);
    ft__enc_lora_forward(st, l, s, inp, out, N);
    ft__enc_row_adapters_forward(st, l, s, inp, out, N);
}

static void linear_backward(const ft_encoder_train_state *st, int l, int s, float *dinp, const float *dout, const float *inp, int N, int C, int OC) {
    const ft_param *w = enc_lw(st, l, s);
    size_t wsn;
    float *ws = enc_ws(st, &wsn);
    ft__linear_q_backward(st->m->be, dinp, st->input_grads ? NULL : w->grad, enc_lg(st, l, s + 1), dout, inp, w, N, C, OC, ws, wsn);
    ft__enc_lora_backward(st, l, s, inp, dout, dinp, N);
}

/* ------------------------------------------------------------ forward */

const float *ft__enc_last_hidden(const ft_encoder_train_state *s) {
    const enc_acts *a = &s->a;
    return a->B ? a->ln2 + (size_t)(s->m->cfg.n_layer - 1) * a->B * a->T * s->m->cfg.n_embd : NULL;
}

static int check_inputs(ft_encoder_train_state *s, const ft_encoder_inputs *in) {
    const ft_encoder_model *m = s->m;
    const ft_encoder_config *c = &m->cfg;
    enc_acts *a = &s->a;
    int B = in->B, T = in->T;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            int i = b * T + t, id = in->ids[i];
            if (id < 0 || id >= c->vocab_size)
                return ft_error(FT_ERR_RANGE, "token id %d at position %d is outside the vocabulary [0, %d)", id, i, c->vocab_size);
            int tt = in->type_ids ? in->type_ids[i] : 0;
            if (tt < 0 || (c->type_vocab_size > 0 ? tt >= c->type_vocab_size : tt != 0))
                return ft_error(FT_ERR_RANGE, "token type %d at position %d is outside [0, %d)", tt, i,
                                c->type_vocab_size > 0 ? c->type_vocab_size : 1);
            a->ids[i] = id;
            a->types[i] = tt;
            a->mask[i] = in->mask ? in->mask[i] != 0 : 1;
        }
        m->fam->positions(c, a->ids + (size_t)b * T, a->pos + (size_t)b * T, T);
    }
    return FT_OK;
}

static void body_forward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    enc_acts *a = &s->a;
    int B = a->B, T = a->T, N = B * T, C = c->n_embd, L = c->n_layer, NH = c->n_head, HS = C / NH, I = c->ffn_hidden;
    if (s->word_embeds) {   /* attributions: the word-embedding output is given; positions added as the lookup does */
        const float *wpe = enc_gp(s, E_WPE);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < C; j++) a->emb[(size_t)i * C + j] = s->word_embeds[(size_t)i * C + j] + wpe[(size_t)a->pos[i] * C + j];
    } else {
        be->embedding_forward(be->ctx, a->emb, a->ids, a->pos, enc_gp(s, E_WTE), enc_gp(s, E_WPE), N, T, C);
    }
    if (enc_gp(s, E_WTT)) {
        be->embedding_forward(be->ctx, a->dtmp, a->types, NULL, enc_gp(s, E_WTT), NULL, N, T, C);
        be->residual_forward(be->ctx, a->emb, a->emb, a->dtmp, (size_t)N * C);
    }
    be->layernorm_forward(be->ctx, a->x0, a->e_mean, a->e_rstd, a->emb, enc_gp(s, E_LN_W), enc_gp(s, E_LN_B), N, C, c->norm_eps);
    float ph = ft__enc_hidden_p(s), pa = ft__enc_attn_p(s);
    if (ph > 0) be->dropout_forward(be->ctx, a->x0, a->x0, (size_t)N * C, ph, ft__enc_site_seed(s, -1, 0));
    const float *x = a->x0;
    for (int l = 0; l < L; l++) {
        size_t lN = (size_t)l * N;
        float *q = a->q + lN * C, *k = a->k + lN * C, *v = a->v + lN * C, *att = a->att + (size_t)l * B * NH * T * T;
        float *atty = a->atty + lN * C, *res1 = a->res1 + lN * C, *ln1 = a->ln1 + lN * C;
        float *fch = a->fch + lN * I, *fcha = a->fcha + lN * I, *res2 = a->res2 + lN * C, *ln2 = a->ln2 + lN * C;
        linear_forward(s, l, S_Q_W, q, x, N, C, C);
        linear_forward(s, l, S_K_W, k, x, N, C, C);
        linear_forward(s, l, S_V_W, v, x, N, C, C);
        ft_attn_mask pad = {FT_ATTN_PADDING, a->mask, NULL};   /* bidirectional, padding keys hidden */
        be->attn_forward(be->ctx, atty, att, q, C, k, C, v, C, &pad, B, T, NH, NH, HS, pa, ft__enc_site_seed(s, l, 3));
        linear_forward(s, l, S_O_W, a->dtmp, atty, N, C, C);
        if (ph > 0) be->dropout_forward(be->ctx, a->dtmp, a->dtmp, (size_t)N * C, ph, ft__enc_site_seed(s, l, 1));
        be->residual_forward(be->ctx, res1, x, a->dtmp, (size_t)N * C);
        be->layernorm_forward(be->ctx, ln1, a->ln1_mean + lN, a->ln1_rstd + lN, res1, enc_lp(s, l, S_LN1_W), enc_lp(s, l, S_LN1_B), N, C, c->norm_eps);
        linear_forward(s, l, S_FC_W, fch, ln1, N, C, I);
        ft__enc_act_forward(m, m->act, fcha, fch, (size_t)N * I);
        linear_forward(s, l, S_PR_W, a->dtmp, fcha, N, I, C);
        if (ph > 0) be->dropout_forward(be->ctx, a->dtmp, a->dtmp, (size_t)N * C, ph, ft__enc_site_seed(s, l, 2));
        be->residual_forward(be->ctx, res2, ln1, a->dtmp, (size_t)N * C);
        be->layernorm_forward(be->ctx, ln2, a->ln2_mean + lN, a->ln2_rstd + lN, res2, enc_lp(s, l, S_LN2_W), enc_lp(s, l, S_LN2_B), N, C, c->norm_eps);
        x = ln2;
    }
}

int ft__enc_forward(ft_encoder_train_state *s, const ft_encoder_inputs *in, float *loss) {
    const ft_encoder_model *m = s->m;
    const ft_encoder_config *c = &m->cfg;
    if (loss) *loss = 0.0f;
    if (!in || !in->ids) return ft_error(FT_ERR_INVALID, "encoder forward: no input ids");
    int maxT = m->fam->max_len(c);
    if (in->T > maxT) return ft_error(FT_ERR_RANGE, "sequence length %d exceeds the encoder's %d positions", in->T, maxT);
    FT_TRY(prepare(s, in->B, in->T));
    FT_TRY(ft__enc_lora_prepare(s, in->B * in->T));
    s->a.has_labels = 0;   /* until the labels are validated */
    s->a.logits_spent = 0;
    FT_TRY(check_inputs(s, in));
    FT_TRY(m->head->labels(s, in));
    body_forward(s);
    m->head->forward(s);
    if (s->a.has_labels) m->head->loss(s, NULL, 0.0f);
    if (loss && s->a.has_labels) {
        double sum = s->a.rows > 0 ? m->be->loss_reduce(m->be->ctx, s->a.losses, (size_t)s->a.rows) : 0.0;
        *loss = s->a.denom > 0 ? (float)(sum / s->a.denom) : 0.0f;
    }
    return FT_OK;
}

int ft_encoder_forward_ex(ft_encoder_model *m, const ft_encoder_inputs *in, float *loss) { return ft__enc_forward(&m->ts, in, loss); }

int ft_encoder_forward(ft_encoder_model *m, const int *ids, const int *type_ids, const int *attention_mask,
                       const int *labels, int B, int T, float *loss) {
    if (labels && m->task == FT_TASK_REGRESS)
        return ft_error(FT_ERR_INVALID, "a regression encoder takes float targets: use ft_encoder_forward_ex");
    ft_encoder_inputs in = {ids, type_ids, attention_mask, labels, NULL, B, T};
    return ft_encoder_forward_ex(m, &in, loss);
}

const float *ft_encoder_logits(const ft_encoder_model *m) { return m->ts.a.logits; }
int ft_encoder_logit_rows(const ft_encoder_model *m) { return m->ts.a.rows; }
int ft_encoder_logit_cols(const ft_encoder_model *m) { return m->ts.a.cols; }
const float *ft_encoder_hidden(const ft_encoder_model *m) { return ft__enc_last_hidden(&m->ts); }
const float *ft_encoder_pooled(const ft_encoder_model *m) { return m->ts.a.B && m->head->pooled ? m->ts.a.pool : NULL; }
double ft_encoder_loss_denominator(const ft_encoder_model *m) { return m->ts.a.has_labels ? m->ts.a.denom : 0.0; }

/* ------------------------------------------------------------ backward */

int ft__enc_zero_grad(ft_encoder_train_state *s) {
    return ft_params_zero_grad(enc_params(s), enc_n_params(s), &s->grads, &s->grads_ready, s->m->be);
}
int ft_encoder_zero_grad(ft_encoder_model *m) { return ft__enc_zero_grad(&m->ts); }

/* the lowest block whose input gradient is needed: blocks below every trainable parameter are skipped */
static int first_needed_layer(const ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    const ft_param *p = enc_params(s);
    for (int g = 0; g < E_HEAD0; g++)
        if (m->slot[g] >= 0 && p[m->slot[g]].trainable) return -1;
    int lo = ft__enc_lora_lowest_layer(s);
    for (int l = 0; l < m->cfg.n_layer && l < lo; l++)
        for (int k = 0; k < S_COUNT; k++)
            if (enc_lw(s, l, k)->trainable) return l;
    return lo;
}

/* a->dx holds d(last hidden states) on entry */
static void body_backward(ft_encoder_train_state *s) {
    const ft_encoder_model *m = s->m;
    const ft_encoder_config *c = &m->cfg;
    const ft_backend *be = m->be;
    enc_acts *a = &s->a;
    int B = a->B, T = a->T, N = B * T, C = c->n_embd, L = c->n_layer, NH = c->n_head, HS = C / NH, I = c->ffn_hidden;
    size_t NC = (size_t)N * C;
    float ph = ft__enc_hidden_p(s), pa = ft__enc_attn_p(s);
    int first = s->input_grads ? -1 : first_needed_layer(s);
    /* blocks: a->dx holds d(block output) on entry, d(block input) on exit */
    for (int l = L - 1; l >= 0 && l >= first; l--) {
        size_t lN = (size_t)l * N;
        const float *x = l == 0 ? a->x0 : a->ln2 + (lN - N) * C;
        float *q = a->q + lN * C, *k = a->k + lN * C, *v = a->v + lN * C, *att = a->att + (size_t)l * B * NH * T * T;
        float *atty = a->atty + lN * C, *res1 = a->res1 + lN * C, *ln1 = a->ln1 + lN * C;
        float *fch = a->fch + lN * I, *fcha = a->fcha + lN * I, *res2 = a->res2 + lN * C;
        be->layernorm_backward(be->ctx, a->dtmp, enc_lg(s, l, S_LN2_W), enc_lg(s, l, S_LN2_B), a->dx, NULL, res2, enc_lp(s, l, S_LN2_W),
                               a->ln2_mean + lN, a->ln2_rstd + lN, N, C);
        const float *dffn = a->dtmp;
        if (ph > 0) { be->dropout_backward(be->ctx, a->dq, a->dtmp, NC, ph, ft__enc_site_seed(s, l, 2)); dffn = a->dq; }
        linear_backward(s, l, S_PR_W, a->dfcha, dffn, fcha, N, I, C);
        ft__enc_act_backward(m, m->act, a->dfch, a->dfcha, fch, (size_t)N * I);
        linear_backward(s, l, S_FC_W, a->dx, a->dfch, ln1, N, C, I);
        be->residual_forward(be->ctx, a->dx, a->dx, a->dtmp, NC);
        be->layernorm_backward(be->ctx, a->dtmp, enc_lg(s, l, S_LN1_W), enc_lg(s, l, S_LN1_B), a->dx, NULL, res1, enc_lp(s, l, S_LN1_W),
                               a->ln1_mean + lN, a->ln1_rstd + lN, N, C);
        const float *dao = a->dtmp;
        if (ph > 0) { be->dropout_backward(be->ctx, a->dq, a->dtmp, NC, ph, ft__enc_site_seed(s, l, 1)); dao = a->dq; }
        linear_backward(s, l, S_O_W, a->datty, dao, atty, N, C, C);
        ft_attn_mask pad = {FT_ATTN_PADDING, a->mask, NULL};
        be->attn_backward(be->ctx, a->dq, a->dk, a->dv, NULL, a->datty, q, C, k, C, v, C, att, &pad, B, T, NH, NH, HS, pa, ft__enc_site_seed(s, l, 3));
        linear_backward(s, l, S_Q_W, a->dx, a->dq, x, N, C, C);
        be->residual_forward(be->ctx, a->dtmp, a->dtmp, a->dx, NC);
        linear_backward(s, l, S_K_W, a->dx, a->dk, x, N, C, C);
        be->residual_forward(be->ctx, a->dtmp, a->dtmp, a->dx, NC);
        linear_backward(s, l, S_V_W, a->dx, a->dv, x, N, C, C);
        be->residual_forward(be->ctx, a->dx, a->dtmp, a->dx, NC);
    }
    if (first >= 0) return;   /* embeddings frozen */
    if (ph > 0) be->dropout_backward(be->ctx, a->dx, a->dx, NC, ph, ft__enc_site_seed(s, -1, 0));
    be->layernorm_backward(be->ctx, a->dtmp, enc_gg(s, E_LN_W), enc_gg(s, E_LN_B), a->dx, NULL, a->emb, enc_gp(s, E_LN_W), a->e_mean, a->e_rstd, N, C);
    if (s->input_grads) {   /* d(embedding sum) = d(word-embedding output): the attributions' gradient */
        memcpy(s->dword_embeds, a->dtmp, sizeof(float) * NC);
        return;
    }
    be->embedding_backward(be->ctx, enc_gg(s, E_WTE), enc_gg(s, E_WPE), a->dtmp, a->ids, a->pos, N, T, C);
    if (enc_gp(s, E_WTT)) be->embedding_backward(be->ctx, enc_gg(s, E_WTT), NULL, a->dtmp, a->types, NULL, N, T, C);
}

int ft__enc_backward(ft_encoder_train_state *s, float grad_scale) {
    const ft_encoder_model *m = s->m;
    enc_acts *a = &s->a;
    if (!a->B || !a->has_labels) return ft_error(FT_ERR_INVALID, "encoder backward needs a forward pass with labels first");
    if (a->logits_spent)
        return ft_error(FT_ERR_INVALID, "MLM backward overwrote the logits of the last forward with their gradient: run the forward again");
    if (!s->grads_ready) FT_TRY(ft__enc_zero_grad(s));
    m->head->loss(s, a->dlogits, grad_scale);
    a->logits_spent = a->dlogits == a->logits;   /* the MLM head writes its logit gradient over the logits */
    m->head->backward(s);
    body_backward(s);
    return FT_OK;
}

int ft_encoder_backward_scaled(ft_encoder_model *m, float grad_scale) { return ft__enc_backward(&m->ts, grad_scale); }

int ft_encoder_backward(ft_encoder_model *m) {
    double d = ft_encoder_loss_denominator(m);
    return ft_encoder_backward_scaled(m, d > 0 ? (float)(1.0 / d) : 0.0f);
}

/* ------------------------------------------------------------ attributions (explain.h) */

int ft_encoder_forward_embeds(ft_encoder_model *m, const ft_encoder_inputs *in, const float *word_embeds, float *loss) {
    m->ts.word_embeds = word_embeds;
    int rc = ft__enc_forward(&m->ts, in, loss);
    m->ts.word_embeds = NULL;
    return rc;
}

int ft_encoder_backward_embeds(ft_encoder_model *m, const float *dlogits, float *dword_embeds) {
    ft_encoder_train_state *s = &m->ts;
    enc_acts *a = &s->a;
    if (!a->B || !dlogits || !dword_embeds) return ft_error(FT_ERR_INVALID, "encoder input gradient: needs a forward pass first, dlogits and an output");
    if (m->task != FT_TASK_CLASSIFY && m->task != FT_TASK_REGRESS)
        return ft_error(FT_ERR_UNSUPPORTED, "encoder input gradient: only the sequence heads (classify, regress), not %s", ft_encoder_task_name(m->task));
    if (s->lora) return ft_error(FT_ERR_UNSUPPORTED, "encoder input gradient: the model carries LoRA adapters; merge them first (ft_encoder_merge_lora)");
    if (s->training) return ft_error(FT_ERR_INVALID, "encoder input gradient: training mode is on (dropout); turn it off");
    memcpy(a->dlogits, dlogits, sizeof(float) * (size_t)a->rows * a->cols);
    s->input_grads = 1;
    s->dword_embeds = dword_embeds;
    m->head->backward(s);
    body_backward(s);
    s->input_grads = 0;
    s->dword_embeds = NULL;
    return FT_OK;
}

const float *ft_encoder_attention(const ft_encoder_model *m) { return m->ts.a.B ? m->ts.a.att : NULL; }
