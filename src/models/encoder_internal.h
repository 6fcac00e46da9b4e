/* encoder_internal.h — what the encoder's files share (not a public header):
 *   encoder.c        the core written once for every family: parameter layout and names, activations,
 *                    the body (embeddings + blocks) forward / backward
 *   bert.c, distilbert.c, roberta.c   the families (ft__enc_family): config.json keys, Hugging Face
 *                    tensor names, position ids, and how the heads are wired in that family
 *   head_seq.c (sequence classifier, regression), head_token.c (token classifier), head_mlm.c (MLM head,
 *                    over lm_head.c's LM head, which the decoders use too): the heads as components
 *                    (ft__enc_head), chosen by the task; encoder_heads.c what they share (the classifiers'
 *                    cross-entropy, class weights, label smoothing) and the table by task
 *   encoder_io.c     config.json, loading (head re-initialisation), saving, freezing, sizes
 *   encoder_lora.c   LoRA adapters;  encoder_quant.c  QLoRA's quantized frozen base
 *   encoder_train_state.c   training states over a shared encoder (train_state.h); the passes run over a
 *                    state (ft_encoder_train_state below), the model's own being m->ts
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
#include "finetune/train_state.h"

enum { S_Q_W, S_Q_B, S_K_W, S_K_B, S_V_W, S_V_B, S_O_W, S_O_B, S_LN1_W, S_LN1_B,
       S_FC_W, S_FC_B, S_PR_W, S_PR_B, S_LN2_W, S_LN2_B, S_COUNT };
/* heads: CLASSIFY / REGRESS  H1 dense [C,C] (pooler / pre_classifier / classifier.dense), H2 label projection [K,C]
 *        TOKEN               H2 classifier [K,C]
 *        MLM                 MD transform dense [C,C], MLN transform LayerNorm [C], MB vocabulary bias [V];
 *                            the LM head's weight is E_WTE (tied) */
enum { E_WTE, E_WPE, E_WTT, E_LN_W, E_LN_B, E_H1_W, E_H1_B, E_H2_W, E_H2_B,
       E_MD_W, E_MD_B, E_MLN_W, E_MLN_B, E_MB, E_COUNT };
#define E_HEAD0 E_H1_W   /* first head tensor */
enum { ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU, ACT_TANH };

struct ft__enc_family;
struct ft__enc_head;
struct ft_lora_config;

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

/* What one training writes over an encoder it only reads (ft_encoder_train_state, train_state.h): activations,
 * LoRA adapters, gradients, dropout stream, label smoothing, quantized-matmul workspace, and (extra states)
 * its own copies of the trainable head tensors. The model's own state (m->ts, own = 1) uses the model's
 * parameter table and workspace; an extra state has a table of its own: the base's entries pointing at the
 * model's weights (frozen), the head tensors PEFT keeps trainable copied into head_arena, its adapters. */
struct ft_encoder_train_state {
    ft_encoder_model *m;
    int own;                       /* 1: the model's own state (m->ts) */
    ft_param *params;              /* extra states: [n_params] (base, head copies, adapters); own: NULL (m->params) */
    int n_params;
    ft_arena head_arena;           /* extra states: the trainable head tensors' copies */
    ft_arena grads, act_arena;
    int grads_ready;
    int training;                  /* dropout on (ft_encoder_set_training) */
    uint64_t seed;
    float smoothing;               /* label smoothing eps */
    float *qws; size_t qws_floats; /* extra states: their quantized-matmul workspace; own: NULL (the model's) */
    enc_acts a;
    struct enc_lora_state *lora;   /* LoRA adapters (encoder_lora.c) or NULL */
    /* ft_encoder_forward_adapters (encoder_adapter.c): each sequence's adapter during that forward */
    /* attributions (ft_encoder_forward_embeds / ft_encoder_backward_embeds): the word-embedding output given in
     * place of wte[ids] [N,C] (NULL: the lookup), and where the backward puts its gradient [N,C]; while
     * input_grads is set the backward computes input gradients only (every parameter gradient NULL) */
    const float *word_embeds;
    float *dword_embeds;
    int input_grads;
    const struct ft_adapter *const *row_ad;   /* [B] or NULL */
    float *row_xa; size_t row_xa_n;           /* scratch [T, rmax] */
};

struct ft_encoder_model {
    ft_encoder_config cfg;
    const struct ft__enc_family *fam;   /* BERT / DistilBERT / RoBERTa (bert.c, distilbert.c, roberta.c) */
    const struct ft__enc_head *head;    /* the task's head (head_*.c) */
    const ft_backend *be;
    int act;                       /* FFN activation (ACT_*) */
    ft_encoder_task task;
    ft_encoder_pooling pooling;
    int head_reinit;
    ft_param *params;              /* the model's table: weights, then its own state's adapters */
    int n_params;
    int n_base;                    /* entries of the weights (before any adapter) */
    int slot[E_COUNT];             /* global param index or -1 */
    int *lslot;                    /* [L * S_COUNT] */
    ft_arena weights;
    ft_arena qarena;               /* QLoRA: the blocks' quantized linear weights + descriptors (encoder_quant.c) */
    ft_dtype quant;                /* FT_F32, or the blocks' linear weights' format FT_NF4 / FT_Q8_ROW */
    float *qws; size_t qws_floats; /* workspace of the quantized matmuls (linear.h): the own state's */
    float *class_w;                /* [K] or NULL */
    cJSON *src_config;             /* config.json as read (ft_encoder_save keeps its keys) */
    char **label_names;            /* [n_label_names] from id2label, NULL entries for gaps */
    int n_label_names;
    ft_encoder_train_state ts;     /* the model's own training state (ft_encoder_forward_ex / backward) */
};

/* encoder_adapter.c: the per-sequence adapters of (l, slot) on out [N, rows] (N = B*T) */
void ft__enc_row_adapters_forward(const ft_encoder_train_state *s, int l, int slot, const float *inp, float *out, int N);

/* ---- a family (bert.c, distilbert.c, roberta.c): everything that differs between BERT, DistilBERT and
 * RoBERTa. The core (encoder.c, encoder_io.c, encoder_lora.c) and the heads read it; none of them tests
 * the architecture. */
typedef struct ft__enc_config_keys {   /* config.json keys of the sizes, dropouts and activation */
    const char *width, *layers, *heads, *ffn, *act, *dropout, *head_dropout, *attn_dropout;
    double head_dropout_default;       /* < 0: the hidden dropout */
} ft__enc_config_keys;
typedef struct ft__enc_family {
    ft_encoder_arch arch;
    const char *model_type;            /* config.json "model_type" */
    const char *hf_class;              /* class-name stem: "Bert" -> BertForSequenceClassification, BertForMaskedLM */
    const ft__enc_config_keys *keys;
    int pad_default;                   /* pad_token_id when config.json has none */
    /* the rest of config.json (token types, LayerNorm eps, unsupported options); c holds the common keys */
    int (*config)(ft_encoder_config *c, const cJSON *root, const char *path);
    /* Hugging Face tensor names: <prefix>embeddings.*, <prefix><layers>.<l>.<module>.{weight,bias}, the heads' */
    const char *prefix;                /* "bert.": the base model's prefix (BertModel checkpoints have none) */
    const char *layers;                /* "encoder.layer" */
    const char *const *modules;        /* [S_COUNT / 2] block modules by slot pair: q, k, v, attention out, LN1, FFN in, FFN out, LN2 */
    const char *seq_dense, *seq_out;   /* the sequence head: pooler / pre_classifier / classifier.dense; the label projection */
    const char *token_out;             /* the token classifier */
    const char *mlm_dense, *mlm_norm;  /* the MLM transform's dense and LayerNorm */
    const char *mlm_bias;              /* the module whose .bias is the vocabulary bias (older checkpoints: .decoder.bias) */
    /* embeddings: position ids of one sequence of T tokens (ids already checked), and the longest sequence */
    void (*positions)(const ft_encoder_config *c, const int *ids, int *pos, int T);
    int  (*max_len)(const ft_encoder_config *c);
    /* head wiring */
    int seq_act;                       /* the sequence head's dense activation: ACT_TANH (a pooler) or ACT_RELU */
    int seq_drop_pooled;               /* dropout on the pooled vector before the dense layer too (RoBERTa) */
    int token_hidden_dropout;          /* the token classifier's dropout is config.dropout (DistilBERT), else head_dropout */
    int mlm_act;                       /* the MLM transform's activation (ACT_*), or -1: the config's hidden activation */
    /* LoRA (PEFT) */
    const char *lora_default;          /* default target_modules */
    int lora_pooler_frozen;            /* the sequence head's dense layer is the base's pooler: not in modules_to_save */
} ft__enc_family;
extern const ft__enc_family ft__enc_bert, ft__enc_distilbert, ft__enc_roberta;
/* the family of a config.json model_type, or NULL */
const ft__enc_family *ft__enc_family_by_type(const char *model_type);
/* bert.c, what RoBERTa takes from BERT (RobertaConfig derives from BertConfig, the blocks are BERT's): the config
 * keys, the rest of config.json (token types, layer_norm_eps, absolute positions only), the block modules;
 * and what BERT and DistilBERT share: positions 0..T-1, max_position_embeddings tokens */
extern const ft__enc_config_keys ft__bert_keys;
extern const char *const ft__bert_modules[S_COUNT / 2];
int  ft__bert_config(ft_encoder_config *c, const cJSON *root, const char *path);
void ft__enc_positions_from_zero(const ft_encoder_config *c, const int *ids, int *pos, int T);
int  ft__enc_max_len_all(const ft_encoder_config *c);

/* ---- a head (head_seq.c, head_token.c, head_mlm.c): a component over the last hidden states x [B,T,C],
 * chosen by the task (ft__enc_head_of). One interface for every head, the passes over a training state s
 * (its activations a = s->a, its parameter table, dropout stream and label smoothing):
 *   plan      carves its activation buffers (logits, losses, labels and its own) out of ar (a plan or the arena)
 *   labels    checks and copies the batch's labels / targets: a->rows, a->cols, a->labels, a->denom, has_labels
 *   forward   logits [rows, cols] from the last hidden states
 *   loss      per-item losses a->losses [rows] and, with dlogits, scale * d(item loss)/d(logits)
 *   backward  a->dx [N,C] = d(last hidden states) from a->dlogits (ASSIGNED); head gradients ACCUMULATE
 * and what the other files need: its tensors in parameter order, the groups loaded or initialised together,
 * their modules in a family, the HF class suffix, PEFT's task type and modules_to_save. */
typedef struct ft__enc_head {
    ft_encoder_task task;
    const char *what;                  /* "classification": in messages */
    const char *hf_suffix;             /* "ForSequenceClassification" */
    const char *peft_task;             /* adapter_config.json task_type */
    const char *problem_type;          /* config.json problem_type, or NULL (none) */
    int pooled;                        /* pools the sequence (ft_encoder_pooled, "finetune_pooling") */
    int n_tensors, tensors[5];         /* E_* slots in parameter order */
    int n_groups, groups[3][3];        /* weight slot, bias slot (-1: none), LayerNorm (initialised 1 / 0)? */
    const char *(*module)(const ft__enc_family *f, int g);    /* HF module of head tensor g */
    int  (*lora_keeps)(const ft_encoder_model *m, int g);    /* trainable over a LoRA base (PEFT's modules_to_save) */
    void (*plan)(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *ar);
    int  (*labels)(ft_encoder_train_state *s, const ft_encoder_inputs *in);
    void (*forward)(ft_encoder_train_state *s);
    void (*loss)(ft_encoder_train_state *s, float *dlogits, float scale);
    void (*backward)(ft_encoder_train_state *s);
} ft__enc_head;
extern const ft__enc_head ft__enc_head_classify, ft__enc_head_regress, ft__enc_head_token, ft__enc_head_mlm;
/* encoder_heads.c: the head of a task (NULL for AUTO or an unknown value) */
const ft__enc_head *ft__enc_head_of(ft_encoder_task t);
/* the classifiers' labels: R items (sequences / positions: `what` in messages) in [0, K) or FT_IGNORE_INDEX */
int  ft__enc_class_labels(ft_encoder_train_state *s, const ft_encoder_inputs *in, int R, const char *what);
/* the classifiers' cross-entropy (class-weighted or not, label smoothing) over logits [rows, cols] */
void ft__enc_ce_loss(ft_encoder_train_state *s, float *dlogits, float scale);
/* the part of plan every head has: logits [R, cols], losses [R], dlogits [R, cols] (own 0: written over the
 * logits), labels [R] */
void ft__enc_head_plan_out(enc_acts *a, size_t R, size_t cols, int own_dlogits, ft_arena *ar);

/* encoder.c */
int  ft__enc_layout(ft_encoder_model *m, ft_dtype q);   /* q: FT_F32, or the blocks' linear weights' format */
size_t ft__enc_acts_layout(const ft_encoder_model *m, enc_acts *a, int B, int T, ft_arena *arena);
void ft__enc_act_forward(const ft_encoder_model *m, int act, float *out, const float *inp, size_t n);
void ft__enc_act_backward(const ft_encoder_model *m, int act, float *dinp, const float *dout, const float *inp, size_t n);
float    ft__enc_hidden_p(const ft_encoder_train_state *s);
float    ft__enc_head_p(const ft_encoder_train_state *s);
float    ft__enc_attn_p(const ft_encoder_train_state *s);
uint64_t ft__enc_site_seed(const ft_encoder_train_state *s, int layer, int site);
const float *ft__enc_last_hidden(const ft_encoder_train_state *s);
/* a state's forward (logits, loss) and backward (head + body; gradients ACCUMULATE) */
int  ft__enc_forward(ft_encoder_train_state *s, const ft_encoder_inputs *in, float *loss);
int  ft__enc_zero_grad(ft_encoder_train_state *s);
int  ft__enc_backward(ft_encoder_train_state *s, float grad_scale);
/* frees what a state owns (arenas, adapters, table, workspace), not the state itself */
void ft__enc_ts_release(ft_encoder_train_state *s);

/* encoder_lora.c: hooks after the base matmul of (layer, slot); no-ops without an adapter there */
int  ft__enc_lora_prepare(ft_encoder_train_state *s, int N);
void ft__enc_lora_forward(const ft_encoder_train_state *s, int l, int slot, const float *inp, float *out, int N);
void ft__enc_lora_backward(const ft_encoder_train_state *s, int l, int slot, const float *inp, const float *dout, float *dinp, int N);
int  ft__enc_lora_lowest_layer(const ft_encoder_train_state *s);   /* lowest block with an adapter, or n_layer */
void ft__enc_lora_close(ft_encoder_train_state *s);
/* s's adapters of c (A Kaiming-uniform, B zero) on the frozen base; s's table when it is an extra state */
int  ft__enc_lora_add(ft_encoder_train_state *s, const struct ft_lora_config *c, uint64_t seed);
/* s's adapters (and the head tensors PEFT keeps) as a PEFT directory */
int  ft__enc_lora_save(const ft_encoder_train_state *s, const char *dir, const char *base_path, const char *const *label_names);

/* encoder_quant.c: bytes of the quantized base (0 for f32); frees it; load-time layout (ft__enc_layout) */
int    ft__enc_quant_layout(ft_encoder_model *m, ft_dtype q, ft_arena *plan);
size_t ft__enc_quant_bytes(const ft_encoder_model *m);
void   ft__enc_quant_close(ft_encoder_model *m);

/* a state's parameter table (own: the model's) and quantized-matmul workspace; tensors by slot through it */
static inline ft_param *enc_params(const ft_encoder_train_state *s) { return s->own ? s->m->params : s->params; }
static inline int enc_n_params(const ft_encoder_train_state *s) { return s->own ? s->m->n_params : s->n_params; }
static inline float *enc_ws(const ft_encoder_train_state *s, size_t *wsn) {
    *wsn = s->own ? s->m->qws_floats : s->qws_floats;
    return s->own ? s->m->qws : s->qws;
}
static inline float *enc_gp(const ft_encoder_train_state *s, int g) { int i = s->m->slot[g]; return i >= 0 ? enc_params(s)[i].t.data : NULL; }
static inline float *enc_gg(const ft_encoder_train_state *s, int g) { int i = s->m->slot[g]; return i >= 0 && !s->input_grads ? enc_params(s)[i].grad : NULL; }
static inline const ft_param *enc_lw(const ft_encoder_train_state *s, int l, int k) { return &enc_params(s)[s->m->lslot[l * S_COUNT + k]]; }
static inline float *enc_lp(const ft_encoder_train_state *s, int l, int k) { return enc_lw(s, l, k)->t.data; }
static inline float *enc_lg(const ft_encoder_train_state *s, int l, int k) { return s->input_grads ? NULL : enc_lw(s, l, k)->grad; }
#endif
