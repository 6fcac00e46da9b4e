/* decoder.c — the model loop, written once for every backend and both families:
 *
 *   x = wte[ids] (+ wpe[pos])                                  GPT-2: learned positions
 *   for each layer:
 *     h = norm1(x)                                             LayerNorm (GPT-2) / RMSNorm (Llama)
 *     q,k,v = h Wqkv^T (+ b);  RoPE(q, k)                      RoPE: Llama family
 *     x = x + (causal_attention(q, k, v)) Wo^T (+ b)           training: dropout on the probabilities
 *     h = norm2(x)
 *     x = x + act(h Wfc^T (+ b)) Wproj^T (+ b)                 act: GELU-tanh / SwiGLU(gate, up)
 *   logits = normf(x) Wlm^T                                    Wlm = wte when tied
 *
 * Backward mirrors it. Shapes: N = B*T rows, C channels, QKV = (NH+2*NKV)*HS, F fc width, I hidden.
 *
 * Activation recomputation (model.h ft_recompute): under "attention" the forward keeps one layer's attention
 * probabilities and the backward recomputes each layer's from its stored q, k, v; under "block" it keeps only
 * the block outputs (the next block's input) and one layer's working buffers, and the backward reruns each
 * block's forward before its backward. Same kernels, same inputs, same dropout streams: same bits.
 *
 * Training runs over a training state (model_internal.h, train_state.h): its activations, adapters, gradients
 * and dropout stream; the weights are only read. ft_model_forward / backward use the model's own state
 * (m->ts), which may also train the base weights; ft_train_state_forward / backward an extra one. */
#include "model_internal.h"
#include "models/linear.h"
#include "models/lm_head.h"
#include "finetune/ops.h"
#include "finetune/status.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ activations */

/* the activation buffers for B x T under the state's recompute mode: planned (arena == NULL, returns the
 * bytes) or bound into arena. Ls / La: the layers that keep their own block / attention buffers (ft_acts). */
static size_t acts_layout(ft_train_state *s, ft_acts *a, int B, int T, ft_arena *arena) {
    const ft_model_config *c = &s->m->cfg;
    size_t N = (size_t)B * T, L = (size_t)c->n_layer, C = (size_t)c->n_embd, V = (size_t)c->vocab_size;
    size_t Ls = s->recompute == FT_RECOMPUTE_BLOCK ? 1 : L, La = s->recompute == FT_RECOMPUTE_NONE ? L : 1;
    size_t QKV = (size_t)ft_qkv_dim(c), F = (size_t)ft_fc_dim(c), I = (size_t)c->ffn_hidden;
    size_t AC = (size_t)c->n_head * c->head_dim, ATT = (size_t)B * c->n_head * T * T;
    size_t SC = C > AC ? C : AC;
    struct { float **p; size_t n; } f[] = {
        {&a->encoded, N * C},
        {&a->ln1, Ls * N * C}, {&a->ln1_mean, Ls * N}, {&a->ln1_rstd, Ls * N},
        {&a->qkv, Ls * N * QKV}, {&a->atty, Ls * N * AC}, {&a->att, La * ATT}, {&a->res2, Ls * N * C},
        {&a->ln2, Ls * N * C}, {&a->ln2_mean, Ls * N}, {&a->ln2_rstd, Ls * N},
        {&a->fch, Ls * N * F}, {&a->fch_act, Ls * N * I}, {&a->res3, L * N * C},
        {&a->lnf, N * C}, {&a->lnf_mean, N}, {&a->lnf_rstd, N},
        {&a->logits, N * V}, {&a->losses, N}, {&a->scratch, N * SC},
        {&a->dres, N * C}, {&a->dln, N * C}, {&a->datty, N * AC}, {&a->dqkv, N * QKV},
        {&a->datt, ATT}, {&a->dfch, N * F}, {&a->dfch_act, N * I},
    };
    int **iv[] = {&a->ids, &a->targets, &a->pos, &a->seg, &a->head_rows, &a->head_targets};
    size_t nf = sizeof f / sizeof *f;
    ft_arena plan;
    ft_arena *ar = arena;
    if (!ar) { ft_arena_plan(&plan); ar = &plan; }
    for (size_t i = 0; i < nf; i++) *f[i].p = ft_arena_alloc(ar, f[i].n * sizeof(float));
    for (size_t i = 0; i < sizeof iv / sizeof *iv; i++) *iv[i] = ft_arena_alloc(ar, N * sizeof(int));
    if (!arena) ft_arena_alloc(ar, ft__lora_act_floats(s, (int)N) * sizeof(float) + 64 * (size_t)(s->n_lora + 4));
    else ft__lora_bind_acts(s, ar, (int)N);
    return ar->used;
}

static size_t acts_bytes(ft_train_state *s, int B, int T) {
    ft_acts tmp;
    memset(&tmp, 0, sizeof tmp);
    return acts_layout(s, &tmp, B, T, NULL);
}

size_t ft_model_activation_bytes(ft_model *m, int B, int T) { return acts_bytes(&m->ts, B, T); }

static int prepare(ft_train_state *s, int B, int T) {
    const ft_model_config *c = &s->m->cfg;
    if (B <= 0 || T <= 0) return ft_error(FT_ERR_INVALID, "batch %d x %d: sizes must be positive", B, T);
    if (T > c->max_seq_len)
        return ft_error(FT_ERR_RANGE, "sequence length %d exceeds the model's context of %d tokens", T, c->max_seq_len);
    if (s->a.B == B && s->a.T == T && s->a.recompute == s->recompute) return FT_OK;
    ft_arena_free(&s->act_arena);
    memset(&s->a, 0, sizeof s->a);
    FT_TRY(ft_arena_init_on(&s->act_arena, acts_bytes(s, B, T), s->m->be));
    acts_layout(s, &s->a, B, T, &s->act_arena);
    s->a.B = B;
    s->a.T = T;
    s->a.recompute = s->recompute;
    return FT_OK;
}

int ft_model_prepare(ft_model *m, int B, int T) { return prepare(&m->ts, B, T); }

/* ------------------------------------------------------------ recompute modes */

static const char *const k_recompute_names[] = {"none", "attention", "block"};

int ft_recompute_from_name(const char *name, ft_recompute *out) {
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, k_recompute_names[i])) { *out = (ft_recompute)i; return FT_OK; }
    return ft_error(FT_ERR_INVALID, "recompute mode '%s': expected none, attention or block", name ? name : "(null)");
}

const char *ft_recompute_name(ft_recompute mode) {
    return mode >= FT_RECOMPUTE_NONE && mode <= FT_RECOMPUTE_BLOCK ? k_recompute_names[mode] : "?";
}

/* the next prepare / forward lays the arena out again when the mode changes */
void ft_train_state_set_recompute(ft_train_state *s, int mode) {
    if (mode < FT_RECOMPUTE_NONE || mode > FT_RECOMPUTE_BLOCK) mode = FT_RECOMPUTE_NONE;
    s->recompute = mode;
}
void ft_model_set_recompute(ft_model *m, ft_recompute mode) { ft_train_state_set_recompute(&m->ts, (int)mode); }

/* layer l's buffers in the arena: its own, or (block recompute) the one set every layer shares; x is the
 * block's input (the embeddings or the previous block's output), res3 its output, kept for every layer */
static ft_block_io layer_io(const ft_train_state *s, int l) {
    const ft_acts *a = &s->a;
    const ft_model_config *c = &s->m->cfg;
    size_t N = (size_t)a->B * a->T, C = (size_t)c->n_embd;
    size_t QKV = (size_t)ft_qkv_dim(c), F = (size_t)ft_fc_dim(c), I = (size_t)c->ffn_hidden, AC = (size_t)c->n_head * c->head_dim;
    size_t lN = (size_t)(a->recompute == FT_RECOMPUTE_BLOCK ? 0 : l) * N;
    ft_block_io io = {
        .x = l == 0 ? a->encoded : a->res3 + (size_t)(l - 1) * N * C,
        .ln1 = a->ln1 + lN * C, .ln1_mean = a->ln1_mean + lN, .ln1_rstd = a->ln1_rstd + lN,
        .qkv = a->qkv + lN * QKV, .atty = a->atty + lN * AC, .res2 = a->res2 + lN * C,
        .ln2 = a->ln2 + lN * C, .ln2_mean = a->ln2_mean + lN, .ln2_rstd = a->ln2_rstd + lN,
        .fch = a->fch + lN * F, .fch_act = a->fch_act + lN * I, .res3 = a->res3 + (size_t)l * N * C, .scratch = a->scratch,
    };
    return io;
}

/* layer l's attention probabilities [B, NH, T, T]: its own, or the one buffer of the recompute modes */
static float *layer_att(const ft_train_state *s, int l) {
    const ft_acts *a = &s->a;
    size_t ATT = (size_t)a->B * s->m->cfg.n_head * a->T * a->T;
    return a->att + (a->recompute == FT_RECOMPUTE_NONE ? (size_t)l : 0) * ATT;
}

/* ------------------------------------------------------------ linear layers (f32 or quantized) */

static const ft_param *layer_param(const ft_model *m, int l, int slot) { return &m->params[m->layer_slot[l * P_LAYER_COUNT + slot]]; }

/* GPT-2's MLP of layer l with its GELU in the products' epilogues (backend.h, matmul_gelu_*): bit 1 the forward
 * (nothing added to the pre-activation after the fc product: no LoRA on c_fc), bit 2 the backward (nothing added
 * to dfch_act after the projection's input-gradient product: no LoRA on mlp.c_proj). With both (3) the forward
 * keeps gelu'(pre) in fch instead of pre, all that the backward's epilogue needs of it. has_lora NULL: not
 * known, nothing fused (generation's hooks). */
static int mlp_fusion(const ft_model *m, int l, int (*has_lora)(void *ctx, int l, int slot), void *ctx) {
    if (m->cfg.arch != FT_ARCH_GPT2 || !has_lora) return 0;
    int f = 0;
    if (!has_lora(ctx, l, P_FC_W) && ft__linear_gelu_ok(m->be, layer_param(m, l, P_FC_W))) f |= 1;
    if (!has_lora(ctx, l, P_PROJ_W) && ft__linear_gelu_ok(m->be, layer_param(m, l, P_PROJ_W))) f |= 2;
    return f;
}

void ft__linear_forward_ws(const ft_model *m, int l, int slot, float *out, const float *inp, const float *bias, int N, int C, int OC,
                          float *ws, size_t wsn) {
    ft__linear_q_forward(m->be, out, inp, &m->params[m->layer_slot[l * P_LAYER_COUNT + slot]], bias, N, C, OC, ws, wsn);
}

/* 1 when dw, params[i]'s gradient, is pending zero (model.h ft_param.grad_pending): the product about to write
 * all of it then ASSIGNS it, and it is no longer pending; 0: it holds its value and the product adds to it */
static int claim_pending(const ft_model *m, int i, const float *dw) {
    if (i < 0 || !dw || !m->params[i].grad_pending || dw != m->params[i].grad) return 0;
    m->params[i].grad_pending = 0;
    return 1;
}

void ft__linear_backward(const ft_model *m, int l, int slot, float *dinp, float *dw, float *dbias, const float *dout,
                        const float *inp, int N, int C, int OC, float *ws, size_t wsn) {
    int i = m->layer_slot[l * P_LAYER_COUNT + slot];
    ft__linear_q_backward_dw(m->be, dinp, dw, claim_pending(m, i, dw), dbias, dout, inp, &m->params[i], N, C, OC, ws, wsn);
}

/* ------------------------------------------------------------ forward */

void ft_train_state_set_training(ft_train_state *s, int training, uint64_t seed) {
    s->training = training;
    s->dropout_seed = seed;
}
void ft_train_state_set_label_smoothing(ft_train_state *s, float eps) { s->label_smoothing = eps; }
void ft_model_set_training(ft_model *m, int training, uint64_t seed) { ft_train_state_set_training(&m->ts, training, seed); }
void ft_model_set_label_smoothing(ft_model *m, float eps) { ft_train_state_set_label_smoothing(&m->ts, eps); }

static float smoothing(const ft_train_state *s) { return s->training ? s->label_smoothing : 0.0f; }

/* dropout stream of (layer, site): site 0 embedding, 1 attention output, 2 MLP output, 3 attention probabilities */
static uint64_t site_seed(uint64_t seed, int layer, int site) {
    return seed ^ (0x2545F4914F6CDD1Dull * (uint64_t)((layer + 1) * 4 + site + 1));
}

static float resid_p(const ft_train_state *s) { return s->training ? s->m->cfg.resid_dropout : 0.0f; }
static float embd_p(const ft_train_state *s) { return s->training ? s->m->cfg.embd_dropout : 0.0f; }
static float attn_p(const ft_train_state *s) { return s->training ? s->m->cfg.attn_dropout : 0.0f; }

/* the gradients a state trains of the base weights: the model's own state, those of m->params; an extra
 * state none (its base is frozen and shared) */
static float *lg(const ft_train_state *s, int l, int slot) { return s->own && !s->input_grads ? ft_lg(s->m, l, slot) : NULL; }
static float *gg(const ft_train_state *s, int slot) { return s->own && !s->input_grads ? ft_gg(s->m, slot) : NULL; }

void ft__norm_forward(const ft_model *m, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N) {
    const ft_model_config *c = &m->cfg;
    if (c->arch == FT_ARCH_GPT2) m->be->layernorm_forward(m->be->ctx, out, mean, rstd, inp, w, b, N, c->n_embd, c->norm_eps);
    else m->be->rmsnorm_forward(m->be->ctx, out, rstd, inp, w, N, c->n_embd, c->norm_eps);
}

static void norm_backward(const ft_model *m, float *dinp, float *dw, float *db, const float *dout, const float *dresid,
                          const float *inp, const float *w, const float *mean, const float *rstd, int N) {
    const ft_model_config *c = &m->cfg;
    if (c->arch == FT_ARCH_GPT2) m->be->layernorm_backward(m->be->ctx, dinp, dw, db, dout, dresid, inp, w, mean, rstd, N, c->n_embd);
    else m->be->rmsnorm_backward(m->be->ctx, dinp, dw, dout, dresid, inp, w, rstd, N, c->n_embd);
}

void ft__act_forward(const ft_model *m, float *out, const float *inp, int N) {
    const ft_model_config *c = &m->cfg;
    if (c->arch == FT_ARCH_GPT2) m->be->gelu_forward(m->be->ctx, out, inp, (size_t)N * c->ffn_hidden);
    else m->be->swiglu_forward(m->be->ctx, out, inp, N, c->ffn_hidden);
}

/* the LM head (lm_head.h, shared with the encoders' MLM head): the word embeddings when tied, else its own
 * weight; f32, or quantized with the blocks for QLoRA; no bias */
static ft__lm_head lm_head(const ft_model *m, float *dw) {
    int tied = m->cfg.tied_embeddings;
    const ft_param *w = m->head_lp.qdesc ? &m->head_lp   /* bf16 weights: a tied head's own copy (quantize.c) */
                                         : &m->params[m->global_slot[tied ? G_WTE : G_LM_HEAD]];
    ft__lm_head h = {w, m->head_lp.qdesc ? NULL : dw, NULL, NULL, m->cfg.n_embd, m->cfg.vocab_size, 0};
    return h;
}

void ft__head_forward_ws(const ft_model *m, float *out, const float *inp, int N, float *ws, size_t wsn) {
    ft__lm_head h = lm_head(m, NULL);
    ft__lm_head_forward(m->be, &h, out, inp, N, ws, wsn);
}

/* ------------------------------------------------------------ the block, written once
 * Training (ft_model_forward), prefill and decoding (context.c) all run this. What differs is passed in:
 * the buffers (training keeps every layer's activations for backward; decoding points them all at one
 * scratch set and updates the residual stream in place), the attention (full causal over the batch with
 * packed segments, or each sequence against its KV-cache slot) and the LoRA hook (the model's trainable
 * adapters with dropout, or each sequence's own adapter on its rows). */
void ft__block_forward(const ft_model *m, int l, const ft_block_io *b, int N, const int *pos, const ft_block_ops *ops) {
    const ft_model_config *c = &m->cfg;
    const ft_backend *be = m->be;
    int C = c->n_embd, NH = c->n_head, NKV = c->n_kv_head, HS = c->head_dim;
    int QKV = ft_qkv_dim(c), F = ft_fc_dim(c), I = c->ffn_hidden, AC = NH * HS;
    ft__norm_forward(m, b->ln1, b->ln1_mean, b->ln1_rstd, b->x, ft_lp(m, l, P_LN1_W), ft_lp(m, l, P_LN1_B), N);
    ft__linear_forward_ws(m, l, P_QKV_W, b->qkv, b->ln1, ft_lp(m, l, P_QKV_B), N, C, QKV, ops->ws, ops->wsn);
    ops->lora(ops->ctx, l, P_QKV_W, b->ln1, b->qkv, QKV, N);
    if (m->inv_freq) be->rope_forward(be->ctx, b->qkv, pos, m->inv_freq, N, NH, NKV, HS);
    ops->attention(ops->ctx, l, b->atty, b->qkv);
    ft__linear_forward_ws(m, l, P_ATTN_W, b->scratch, b->atty, ft_lp(m, l, P_ATTN_B), N, AC, C, ops->ws, ops->wsn);
    ops->lora(ops->ctx, l, P_ATTN_W, b->atty, b->scratch, C, N);
    if (ops->resid_p > 0) be->dropout_forward(be->ctx, b->scratch, b->scratch, (size_t)N * C, ops->resid_p, site_seed(ops->seed, l, 1));
    be->residual_forward(be->ctx, b->res2, b->x, b->scratch, (size_t)N * C);
    ft__norm_forward(m, b->ln2, b->ln2_mean, b->ln2_rstd, b->res2, ft_lp(m, l, P_LN2_W), ft_lp(m, l, P_LN2_B), N);
    int mf = mlp_fusion(m, l, ops->has_lora, ops->ctx);
    if (mf & 1) ft__linear_gelu_forward(be, b->fch, b->fch_act, b->ln2, layer_param(m, l, P_FC_W), ft_lp(m, l, P_FC_B), N, C, F, mf == 3);
    else {
        ft__linear_forward_ws(m, l, P_FC_W, b->fch, b->ln2, ft_lp(m, l, P_FC_B), N, C, F, ops->ws, ops->wsn);
        ops->lora(ops->ctx, l, P_FC_W, b->ln2, b->fch, F, N);
        ft__act_forward(m, b->fch_act, b->fch, N);
    }
    ft__linear_forward_ws(m, l, P_PROJ_W, b->scratch, b->fch_act, ft_lp(m, l, P_PROJ_B), N, I, C, ops->ws, ops->wsn);
    ops->lora(ops->ctx, l, P_PROJ_W, b->fch_act, b->scratch, C, N);
    if (ops->resid_p > 0) be->dropout_forward(be->ctx, b->scratch, b->scratch, (size_t)N * C, ops->resid_p, site_seed(ops->seed, l, 2));
    be->residual_forward(be->ctx, b->res3, b->res2, b->scratch, (size_t)N * C);
}

/* training's hooks: causal attention over B x T (packed segments, dropout on the probabilities) and the
 * model's own LoRA adapters */
typedef struct train_hooks { ft_train_state *s; const int *seg; int B, T; } train_hooks;

static void train_attention(void *ctx, int l, float *atty, const float *qkv) {
    train_hooks *h = ctx;
    ft_train_state *s = h->s;
    const ft_model *m = s->m;
    const ft_model_config *c = &m->cfg;
    int NH = c->n_head, NKV = c->n_kv_head, HS = c->head_dim;
    int QKV = ft_qkv_dim(c), AC = NH * HS;
    float *att = layer_att(s, l);
    ft_attn_mask mk = {FT_ATTN_CAUSAL | (h->seg ? FT_ATTN_SEGMENTS : 0), NULL, h->seg};   /* packed examples: segments */
    m->be->attn_forward(m->be->ctx, atty, att, qkv, QKV, qkv + AC, QKV, qkv + AC + NKV * HS, QKV, &mk, h->B, h->T, NH, NKV, HS, attn_p(s),
                        site_seed(s->dropout_seed, l, 3));
}

static void train_lora(void *ctx, int l, int slot, const float *inp, float *out, int ldo, int N) {
    ft__lora_forward(((train_hooks *)ctx)->s, l, slot, inp, out, ldo, N);
}

static int has_adapter(const ft_train_state *s, int l, int slot) {
    for (int k = 0; k < s->n_lora; k++)
        if (s->lora[k].layer == l && s->lora[k].slot == slot) return 1;
    return 0;
}
static int train_has_lora(void *ctx, int l, int slot) { return has_adapter(((train_hooks *)ctx)->s, l, slot); }

/* training's block ops over hooks th (forward, and the block recompute of backward: the same calls) */
static ft_block_ops train_ops(ft_train_state *s, train_hooks *th) {
    size_t wsn;
    float *ws = ft__ts_ws(s, &wsn);
    ft_block_ops ops = {.attention = train_attention, .lora = train_lora, .has_lora = train_has_lora, .ctx = th, .ws = ws, .wsn = wsn,
                        .resid_p = resid_p(s), .seed = s->dropout_seed};
    return ops;
}

static int forward(ft_train_state *s, const int *ids, const int *targets, const int *pos, const int *seg, int B, int T, float *loss) {
    const ft_model *m = s->m;
    const ft_model_config *c = &m->cfg;
    const ft_backend *be = m->be;
    FT_TRY(prepare(s, B, T));
    ft_acts *a = &s->a;
    size_t wsn;
    float *ws = ft__ts_ws(s, &wsn);
    int N = B * T, C = c->n_embd, V = c->vocab_size, L = c->n_layer;
    for (int i = 0; i < N; i++) {
        if (ids[i] < 0 || ids[i] >= V)
            return ft_error(FT_ERR_RANGE, "token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i, V);
        int p = pos ? pos[i] : i % T;
        if (p < 0 || p >= c->max_seq_len)
            return ft_error(FT_ERR_RANGE, "position %d at index %d is outside the model's context [0, %d)", p, i, c->max_seq_len);
        a->ids[i] = ids[i];
        a->pos[i] = p;
        a->seg[i] = seg ? seg[i] : 0;
        a->targets[i] = targets ? targets[i] : FT_IGNORE_INDEX;
    }
    a->has_seg = seg != NULL;
    a->has_targets = targets != NULL;
    const int *segp = a->has_seg ? a->seg : NULL;

    if (s->word_embeds) {   /* attributions: the word-embedding output is given; positions added as the lookup does */
        const float *wpe = ft_gp(m, G_WPE);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < C; j++)
                a->encoded[(size_t)i * C + j] = s->word_embeds[(size_t)i * C + j] + (wpe ? wpe[(size_t)a->pos[i] * C + j] : 0.0f);
    } else {
        be->embedding_forward(be->ctx, a->encoded, a->ids, a->pos, ft_gp(m, G_WTE), ft_gp(m, G_WPE), N, T, C);
    }
    if (embd_p(s) > 0) be->dropout_forward(be->ctx, a->encoded, a->encoded, (size_t)N * C, embd_p(s), site_seed(s->dropout_seed, -1, 0));
    train_hooks th = {s, segp, B, T};
    ft_block_ops ops = train_ops(s, &th);
    const float *x = a->encoded;
    for (int l = 0; l < L; l++) {
        ft_block_io io = layer_io(s, l);
        ft__block_forward(m, l, &io, N, a->pos, &ops);
        x = io.res3;
    }
    ft__norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, x, ft_gp(m, G_LNF_W), ft_gp(m, G_LNF_B), N);

    a->n_targets = 0;
    if (targets)
        for (int i = 0; i < N; i++)
            if (a->targets[i] != FT_IGNORE_INDEX) {
                if (a->targets[i] < 0 || a->targets[i] >= V)
                    return ft_error(FT_ERR_RANGE, "target id %d at position %d is outside the vocabulary [0, %d)", a->targets[i], i, V);
                a->n_targets++;
            }
    /* training: the LM head (the largest matmul of small models) only over the rows that have a target;
     * prompt, padding and masked rows have no loss and no gradient. Their normed inputs are gathered into
     * scratch (free after the blocks; the backward reads it before any recompute uses it). */
    const float *hx = a->lnf;
    const int *ht = a->targets;
    a->head_n = N;
    a->head_compact = s->training && targets && a->n_targets < N;
    if (a->head_compact) {
        int R = 0;
        for (int i = 0; i < N; i++)
            if (a->targets[i] != FT_IGNORE_INDEX) {
                a->head_rows[R] = i;
                a->head_targets[R] = a->targets[i];
                memcpy(a->scratch + (size_t)R * C, a->lnf + (size_t)i * C, sizeof(float) * (size_t)C);
                R++;
            }
        a->head_n = R;
        hx = a->scratch;
        ht = a->head_targets;
    }
    ft__head_forward_ws(m, a->logits, hx, a->head_n, ws, wsn);
    if (targets) {
        ft__lm_head_loss(be, a->losses, NULL, a->logits, ht, a->head_n, V, 1.0f, smoothing(s));
        double sum = be->loss_reduce(be->ctx, a->losses, (size_t)a->head_n);
        if (loss) *loss = a->n_targets ? (float)(sum / a->n_targets) : 0.0f;
    } else if (loss) *loss = 0.0f;
    return FT_OK;
}

int ft_model_forward(ft_model *m, const int *ids, const int *targets, const int *pos, const int *seg, int B, int T, float *loss) {
    return forward(&m->ts, ids, targets, pos, seg, B, T, loss);
}
int ft_train_state_forward(ft_train_state *s, const int *ids, const int *targets, const int *pos, const int *seg, int B, int T,
                           float *loss) {
    return forward(s, ids, targets, pos, seg, B, T, loss);
}

const float *ft_model_logits(const ft_model *m) { return m->ts.a.logits; }
int ft_model_num_targets(const ft_model *m) { return m->ts.a.n_targets; }
const float *ft_train_state_logits(const ft_train_state *s) { return s->a.logits; }
int ft_train_state_num_targets(const ft_train_state *s) { return s->a.n_targets; }

/* ------------------------------------------------------------ backward */

/* the state's table: the model's own, base + adapters; an extra state's adapters. The model's own state
 * leaves its linear weights' gradients pending zero (model.h ft_param.grad_pending): the backward's products
 * assign them (claim_pending), whatever else adds to one clears it first, and the backward ends by clearing
 * those it did not write (a frozen bottom, input gradients only, an error), so that after it every gradient
 * holds what zero + accumulate gave */
static int n_ts_params(const ft_train_state *s) { return s->own ? s->m->n_params : s->n_params; }
int ft_train_state_zero_grad(ft_train_state *s) {
    if (s->own) return ft__params_zero_grad_lazy(ft__ts_params(s), n_ts_params(s), &s->grads, &s->grads_ready, s->m->be);
    return ft_params_zero_grad(ft__ts_params(s), n_ts_params(s), &s->grads, &s->grads_ready, s->m->be);
}
int ft_model_zero_grad(ft_model *m) { return ft_train_state_zero_grad(&m->ts); }

/* Where the backward can stop. The block's parameterised stages in forward order: 0 ln1, 1 qkv, 2 attention
 * output, 3 ln2, 4 fc, 5 proj; stage st of layer l is position 6 l + st, the embeddings -1. first_trainable is
 * the earliest position with a gradient to compute (a trainable base weight or bias, or a LoRA adapter), -2
 * when the input gradient itself is asked for (attributions), INT_MAX when nothing below the head trains. A
 * linear layer's input gradient is needed only when something trains before it (first < its position):
 * with LoRA on a frozen base that drops the input-gradient matmul of the lowest adapted layer and everything
 * under it (norm, embedding); with --freeze layers:0-k, the whole backward of the frozen bottom layers. */
enum { STAGES = 6 };
static int stage_of(int slot) {
    switch (slot) {
    case P_LN1_W: case P_LN1_B: return 0;
    case P_QKV_W: case P_QKV_B: return 1;
    case P_ATTN_W: case P_ATTN_B: return 2;
    case P_LN2_W: case P_LN2_B: return 3;
    case P_FC_W: case P_FC_B: return 4;
    default: return 5;
    }
}

static int first_trainable(const ft_train_state *s) {
    if (s->input_grads) return -2;
    if (gg(s, G_WTE) || gg(s, G_WPE)) return -1;
    const ft_model *m = s->m;
    int first = INT_MAX;
    for (int k = 0; k < s->n_lora; k++) {
        int p = s->lora[k].layer * STAGES + stage_of(s->lora[k].slot);
        if (p < first) first = p;
    }
    static const int slots[] = {P_LN1_W, P_LN1_B, P_QKV_W, P_QKV_B, P_ATTN_W, P_ATTN_B, P_LN2_W, P_LN2_B, P_FC_W, P_FC_B, P_PROJ_W, P_PROJ_B};
    for (int l = 0; l < m->cfg.n_layer && l * STAGES < first; l++)
        for (size_t i = 0; i < sizeof slots / sizeof *slots; i++)
            if (lg(s, l, slots[i])) {
                int p = l * STAGES + stage_of(slots[i]);
                if (p < first) first = p;
            }
    return first;
}

static int backward_pass(ft_train_state *s, float grad_scale) {
    const ft_model *m = s->m;
    const ft_model_config *c = &m->cfg;
    const ft_backend *be = m->be;
    ft_acts *a = &s->a;
    if (!a->B || !a->has_targets) return ft_error(FT_ERR_INVALID, "backward needs a forward pass with targets first");
    if (!s->grads_ready && !s->input_grads) FT_TRY(ft_train_state_zero_grad(s));
    size_t wsn;
    float *ws = ft__ts_ws(s, &wsn);
    int B = a->B, T = a->T, N = B * T, C = c->n_embd, L = c->n_layer;
    int NH = c->n_head, NKV = c->n_kv_head, HS = c->head_dim, QKV = ft_qkv_dim(c), F = ft_fc_dim(c), I = c->ffn_hidden;
    int AC = NH * HS;
    const int *segp = a->has_seg ? a->seg : NULL;
    float scale = grad_scale > 0 ? grad_scale : (a->n_targets ? 1.0f / a->n_targets : 0.0f);

    /* loss -> dlogits (in place, f32 or bf16: lm_head.h) -> dlnf -> dres; a compacted head (training) writes its rows'
     * input gradient into dres [head_n, C], scattered into dln (the other rows' is zero) */
    int R = a->head_n, hc = a->head_compact;
    ft__lm_head h = lm_head(m, gg(s, c->tied_embeddings ? G_WTE : G_LM_HEAD));
    h.assign_dw = claim_pending(m, m->global_slot[c->tied_embeddings ? G_WTE : G_LM_HEAD], h.dw);
    ft__lm_head_loss_backward(be, &h, a->losses, hc ? a->dres : a->dln, a->logits, hc ? a->head_targets : a->targets,
                              hc ? a->scratch : a->lnf, R, scale, smoothing(s), ws, wsn);
    if (hc) {
        memset(a->dln, 0, sizeof(float) * (size_t)N * C);
        for (int r = 0; r < R; r++)
            memcpy(a->dln + (size_t)a->head_rows[r] * C, a->dres + (size_t)r * C, sizeof(float) * (size_t)C);
    }
    const float *xL = L > 0 ? a->res3 + (size_t)(L - 1) * N * C : a->encoded;
    norm_backward(m, a->dres, gg(s, G_LNF_W), gg(s, G_LNF_B), a->dln, NULL, xL, ft_gp(m, G_LNF_W), a->lnf_mean, a->lnf_rstd, N);

    train_hooks th = {s, segp, B, T};
    ft_block_ops ops = train_ops(s, &th);
    int first = first_trainable(s);
#define NEED_BELOW(l, st) (first < (l) * STAGES + (st))   /* something trains before stage st of layer l */
    for (int l = L - 1; l >= 0 && NEED_BELOW(l + 1, 0); l--) {
        ft_block_io io = layer_io(s, l);
        /* block recompute: the block's forward again, from its stored input, into the shared buffers (the
         * output it writes equals the stored one bit for bit) */
        if (a->recompute == FT_RECOMPUTE_BLOCK) ft__block_forward(m, l, &io, N, a->pos, &ops);
        const float *x = io.x;
        const float *ln1 = io.ln1, *ln1m = io.ln1_mean, *ln1r = io.ln1_rstd, *qkv = io.qkv, *atty = io.atty;
        const float *res2 = io.res2, *ln2 = io.ln2, *ln2m = io.ln2_mean, *ln2r = io.ln2_rstd, *fch = io.fch, *fcha = io.fch_act;
        float *att = layer_att(s, l);

        /* MLP: dres holds d(res3); through the residual dropout into dln */
        const float *dmlp = a->dres;
        if (resid_p(s) > 0) { be->dropout_backward(be->ctx, a->dln, a->dres, (size_t)N * C, resid_p(s), site_seed(s->dropout_seed, l, 2)); dmlp = a->dln; }
        float *dfcha = NEED_BELOW(l, 5) ? a->dfch_act : NULL;
        /* the GELU's gradient in the product's epilogue, straight into dfch (mlp_fusion: fch holds gelu'(pre) when
         * the forward was fused too) */
        int mf = dfcha ? mlp_fusion(m, l, train_has_lora, &th) : 0, fused = mf & 2;
        if (fused) {
            float *dw = lg(s, l, P_PROJ_W);
            ft__linear_gelu_backward(be, a->dfch, dw, claim_pending(m, m->layer_slot[l * P_LAYER_COUNT + P_PROJ_W], dw),
                                     lg(s, l, P_PROJ_B), dmlp, fcha, fch, mf == 3, layer_param(m, l, P_PROJ_W), N, I, C);
        } else ft__linear_backward(m, l, P_PROJ_W, dfcha, lg(s, l, P_PROJ_W), lg(s, l, P_PROJ_B), dmlp, fcha, N, I, C, ws, wsn);
        ft__lora_backward(s, l, P_PROJ_W, fcha, dmlp, C, dfcha, N);
        if (!dfcha) return FT_OK;
        if (!fused && c->arch == FT_ARCH_GPT2) be->gelu_backward(be->ctx, a->dfch, a->dfch_act, fch, (size_t)N * I);
        else if (!fused) be->swiglu_backward(be->ctx, a->dfch, a->dfch_act, fch, N, I);
        float *dln2 = NEED_BELOW(l, 4) ? a->dln : NULL;
        ft__linear_backward(m, l, P_FC_W, dln2, lg(s, l, P_FC_W), lg(s, l, P_FC_B), a->dfch, ln2, N, C, F, ws, wsn);
        ft__lora_backward(s, l, P_FC_W, ln2, a->dfch, F, dln2, N);
        if (!dln2) return FT_OK;
        norm_backward(m, a->dres, lg(s, l, P_LN2_W), lg(s, l, P_LN2_B), a->dln, a->dres, res2, ft_lp(m, l, P_LN2_W), ln2m, ln2r, N);
        if (!NEED_BELOW(l, 3)) return FT_OK;
        /* attention: dres holds d(res2) */
        const float *dat = a->dres;
        if (resid_p(s) > 0) { be->dropout_backward(be->ctx, a->dln, a->dres, (size_t)N * C, resid_p(s), site_seed(s->dropout_seed, l, 1)); dat = a->dln; }
        float *datty = NEED_BELOW(l, 2) ? a->datty : NULL;
        ft__linear_backward(m, l, P_ATTN_W, datty, lg(s, l, P_ATTN_W), lg(s, l, P_ATTN_B), dat, atty, N, AC, C, ws, wsn);
        ft__lora_backward(s, l, P_ATTN_W, atty, dat, C, datty, N);
        if (!datty) return FT_OK;
        /* attention recompute: the probabilities again from the stored q, k, v (the output, equal to atty, is dropped) */
        if (a->recompute == FT_RECOMPUTE_ATTENTION) train_attention(&th, l, a->scratch, qkv);
        ft_attn_mask mk = {FT_ATTN_CAUSAL | (segp ? FT_ATTN_SEGMENTS : 0), NULL, segp};
        be->attn_backward(be->ctx, a->dqkv, a->dqkv + AC, a->dqkv + AC + NKV * HS, a->datt, a->datty, qkv, QKV, qkv + AC, QKV,
                          qkv + AC + NKV * HS, QKV, att, &mk, B, T, NH, NKV, HS, attn_p(s), site_seed(s->dropout_seed, l, 3));
        if (m->inv_freq) be->rope_backward(be->ctx, a->dqkv, a->pos, m->inv_freq, N, NH, NKV, HS);
        float *dln1 = NEED_BELOW(l, 1) ? a->dln : NULL;
        ft__linear_backward(m, l, P_QKV_W, dln1, lg(s, l, P_QKV_W), lg(s, l, P_QKV_B), a->dqkv, ln1, N, C, QKV, ws, wsn);
        ft__lora_backward(s, l, P_QKV_W, ln1, a->dqkv, QKV, dln1, N);
        if (!dln1) return FT_OK;
        norm_backward(m, a->dres, lg(s, l, P_LN1_W), lg(s, l, P_LN1_B), a->dln, a->dres, x, ft_lp(m, l, P_LN1_W), ln1m, ln1r, N);
    }
#undef NEED_BELOW
    if (first >= 0) return FT_OK;   /* the embeddings do not train, and no input gradient is asked for */
    if (embd_p(s) > 0) be->dropout_backward(be->ctx, a->dres, a->dres, (size_t)N * C, embd_p(s), site_seed(s->dropout_seed, -1, 0));
    if (s->input_grads) return FT_OK;   /* a->dres = d(word-embedding output): the attributions' gradient */
    /* it adds into wte's gradient: tied, the LM head's product assigned it above; else it was never pending */
    if (gg(s, G_WTE)) ft_params_settle_grads(&m->params[m->global_slot[G_WTE]], 1);
    be->embedding_backward(be->ctx, gg(s, G_WTE), gg(s, G_WPE), a->dres, a->ids, a->pos, N, T, C);
    return FT_OK;
}

/* the pass, then the gradients it left pending cleared (on every path: early returns, errors) */
static int backward(ft_train_state *s, float grad_scale) {
    int rc = backward_pass(s, grad_scale);
    ft_params_settle_grads(ft__ts_params(s), n_ts_params(s));
    return rc;
}

/* ------------------------------------------------------------ attributions (explain.h) */

int ft_model_forward_embeds(ft_model *m, const int *ids, const int *targets, const float *word_embeds, int B, int T, float *loss) {
    m->ts.word_embeds = word_embeds;
    int rc = forward(&m->ts, ids, targets, NULL, NULL, B, T, loss);
    m->ts.word_embeds = NULL;
    return rc;
}

const float *ft_model_attention(const ft_model *m) { return m->ts.a.B && m->ts.a.recompute == FT_RECOMPUTE_NONE ? m->ts.a.att : NULL; }

int ft_model_backward_embeds(ft_model *m, float *dword_embeds) {
    ft_train_state *s = &m->ts;
    if (!dword_embeds) return ft_error(FT_ERR_INVALID, "decoder input gradient: no output");
    if (s->n_lora) return ft_error(FT_ERR_UNSUPPORTED, "decoder input gradient: the model carries LoRA adapters; merge them first");
    if (s->training) return ft_error(FT_ERR_INVALID, "decoder input gradient: training mode is on (dropout); turn it off");
    s->input_grads = 1;
    int rc = backward(s, 1.0f);
    s->input_grads = 0;
    if (rc == FT_OK) memcpy(dword_embeds, s->a.dres, sizeof(float) * (size_t)s->a.B * s->a.T * m->cfg.n_embd);
    return rc;
}

int ft_model_backward(ft_model *m, float grad_scale) { return backward(&m->ts, grad_scale); }
int ft_train_state_backward(ft_train_state *s, float grad_scale) { return backward(s, grad_scale); }
