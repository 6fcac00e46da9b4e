/* encoder_internal.h — what the encoder's files share (not a public header):
 *   encoder.c        parameter layout, activations, the body (embeddings + blocks) forward / backward
 *   encoder_heads.c  the four heads (classify / regress, token, MLM), pooling and the losses
 *   encoder_io.c     config.json, loading (head re-initialisation), saving, freezing, sizes
 *   encoder_lora.c   LoRA adapters;  encoder_quant.c  QLoRA's quantized frozen base
 *
 * Parameter layout: the embeddings (E_WTE..E_LN_B), the L blocks (S_* each), then the head of the
 * task. slot[g] is the global parameter index of tensor g, or -1 when the task has no such tensor. */
#ifndef FT_ENCODER_INTERNAL_H
#define FT_ENCODER_INTERNAL_H
#include <cjson/cJSON.h>
#include <stdint.h>

#include "finetune/arena.h"
#include "finetune/encoder.h"
#include "finetune/safetensors.h"

enum { S_Q_W, S_Q_B, S_K_W, S_K_B, S_V_W, S_V_B, S_O_W, S_O_B, S_LN1_W, S_LN1_B,
       S_FC_W, S_FC_B, S_PR_W, S_PR_B, S_LN2_W, S_LN2_B, S_COUNT };
/* heads: CLASSIFY / REGRESS  H1 (pooler / pre_classifier / classifier.dense) [C,C], H2 (classifier /
 *                            classifier.out_proj) [K,C]
 *        TOKEN               H2 (classifier) [K,C]
 *        MLM                 MD transform dense [C,C], MLN transform LayerNorm [C], MB vocabulary bias [V];
 *                            the decoder weight is E_WTE (tied) */
enum { E_WTE, E_WPE, E_WTT, E_LN_W, E_LN_B, E_H1_W, E_H1_B, E_H2_W, E_H2_B,
       E_MD_W, E_MD_B, E_MLN_W, E_MLN_B, E_MB, E_COUNT };
#define E_HEAD0 E_H1_W   /* first head tensor */
enum { ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU };

typedef struct enc_acts {
    int B, T;
    int has_labels;                /* the last forward had labels / targets */
    int logits_spent;              /* MLM: backward wrote the logit gradient over the logits */
    int rows, cols;                /* logits [rows, cols] of the last forward */
    int n_counted;                 /* counted labels / targets */
    double denom;                  /* loss denominator (counted, or the sum of their class weights) */
    int *ids, *types, *pos, *mask; /* [N] */
    int *labels;                   /* [R]: CLASSIFY [B]; TOKEN [N]; MLM the M labels of the gathered rows */
    int *rows_idx;                 /* MLM [N]: position of gathered row j */
    float *targets;                /* REGRESS [B] */
    /* body */
    float *emb, *x0, *e_mean, *e_rstd;
    float *q, *k, *v, *att, *atty, *res1, *ln1, *ln1_mean, *ln1_rstd;   /* per layer */
    float *fch, *fcha, *res2, *ln2, *ln2_mean, *ln2_rstd;              /* per layer */
    float *dx, *dtmp, *dq, *dk, *dv, *datty, *dfch, *dfcha;
    /* CLASSIFY / REGRESS head [B,C] (pool_inv [B]: 1 / real tokens, mean pooling) */
    float *pool, *poold, *h1, *h1a, *h1d, *dpool, *dh1, *dh1a, *pool_inv;
    /* TOKEN head: dropped hidden states [N,C] */
    float *tokd;
    /* MLM head [N,C] (N rows at most), transform LayerNorm stats [N] */
    float *mg, *mh, *mha, *mln, *mln_mean, *mln_rstd;
    float *logits, *losses, *dlogits;   /* [R*cols], [R], [R*cols] (MLM: dlogits == logits) */
} enc_acts;

struct ft_encoder_model {
    ft_encoder_config cfg;
    const ft_backend *be;
    int act;                       /* FFN activation (ACT_*) */
    ft_encoder_task task;
    ft_encoder_pooling pooling;
    int head_reinit;
    ft_param *params;
    int n_params;
    int slot[E_COUNT];             /* global param index or -1 */
    int *lslot;                    /* [L * S_COUNT] */
    ft_arena weights, grads, act_arena;
    ft_arena qarena;               /* QLoRA: the blocks' quantized linear weights + descriptors (encoder_quant.c) */
    ft_dtype quant;                /* FT_F32, or the blocks' linear weights' format FT_NF4 / FT_Q8_ROW */
    float *qws; size_t qws_floats; /* workspace of the quantized matmuls (linear.h) */
    int grads_ready;
    int training;                  /* dropout on (ft_encoder_set_training) */
    uint64_t seed;
    float *class_w;                /* [K] or NULL */
    float smoothing;               /* label smoothing eps */
    cJSON *src_config;             /* config.json as read (ft_encoder_save keeps its keys) */
    char **label_names;            /* [n_label_names] from id2label, NULL entries for gaps */
    int n_label_names;
    enc_acts a;
    struct enc_lora_state *lora;   /* LoRA adapters (encoder_lora.c) or NULL */
    /* ft_encoder_forward_adapters (encoder_adapter.c): each sequence's adapter during that forward */
    const struct ft_adapter *const *row_ad;   /* [B] or NULL */
    float *row_xa; size_t row_xa_n;           /* scratch [T, rmax] */
};

/* encoder_adapter.c: the per-sequence adapters of (l, slot) on out [N, rows] (N = B*T) */
void ft__enc_row_adapters_forward(const ft_encoder_model *m, int l, int slot, const float *inp, float *out, int N);

/* encoder.c */
int  ft__enc_layout(ft_encoder_model *m, ft_dtype q);   /* q: FT_F32, or the blocks' linear weights' format */
const char *ft__enc_prefix(const ft_encoder_config *c);
size_t ft__enc_acts_layout(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *arena);
void ft__enc_act_forward(const ft_encoder_model *m, int act, float *out, const float *inp, size_t n);
void ft__enc_act_backward(const ft_encoder_model *m, int act, float *dinp, const float *dout, const float *inp, size_t n);
float    ft__enc_hidden_p(const ft_encoder_model *m);
float    ft__enc_head_p(const ft_encoder_model *m);
float    ft__enc_attn_p(const ft_encoder_model *m);
uint64_t ft__enc_site_seed(const ft_encoder_model *m, int layer, int site);
const float *ft__enc_last_hidden(const ft_encoder_model *m);

/* encoder_heads.c: inputs validated, body already run; head_forward fills logits (and losses when
 * has_labels), head_backward assigns a->dx = d(last hidden states) [N,C] for the body backward */
int  ft__enc_head_check_labels(ft_encoder_model *m, const ft_encoder_inputs *in);
void ft__enc_head_forward(ft_encoder_model *m);
void ft__enc_head_backward(ft_encoder_model *m, float grad_scale);
int  ft__enc_head_mlm_act(const ft_encoder_model *m);

/* encoder_lora.c: hooks after the base matmul of (layer, slot); no-ops without an adapter there */
int  ft__enc_lora_prepare(ft_encoder_model *m, int N);
void ft__enc_lora_forward(const ft_encoder_model *m, int l, int slot, const float *inp, float *out, int N);
void ft__enc_lora_backward(const ft_encoder_model *m, int l, int slot, const float *inp, const float *dout, float *dinp, int N);
int  ft__enc_lora_lowest_layer(const ft_encoder_model *m);   /* lowest block with an adapter, or n_layer */
void ft__enc_lora_close(ft_encoder_model *m);

/* encoder_quant.c: bytes of the quantized base (0 for f32); frees it; load-time layout (ft__enc_layout) */
int    ft__enc_quant_layout(ft_encoder_model *m, ft_dtype q, ft_arena *plan);
size_t ft__enc_quant_bytes(const ft_encoder_model *m);
void   ft__enc_quant_close(ft_encoder_model *m);

static inline float *enc_gp(const ft_encoder_model *m, int g) { return m->slot[g] >= 0 ? m->params[m->slot[g]].t.data : NULL; }
static inline float *enc_gg(const ft_encoder_model *m, int g) { return m->slot[g] >= 0 ? m->params[m->slot[g]].grad : NULL; }
static inline float *enc_lp(const ft_encoder_model *m, int l, int s) { return m->params[m->lslot[l * S_COUNT + s]].t.data; }
static inline float *enc_lg(const ft_encoder_model *m, int l, int s) { return m->params[m->lslot[l * S_COUNT + s]].grad; }
#endif
