/* ops.h — the transformer kernels, each forward next to its backward.
 *
 * Conventions (after llm.c):
 *  - the backend's context first (`void *ctx`, backend.h: where a device backend keeps its handles and
 *    stream; the reference and CPU kernels ignore it, and tests pass NULL), then outputs, then inputs,
 *    then weights, then dimensions;
 *  - shapes in comments use one vocabulary: B batch, T time, C channels, N = B*T rows,
 *    OC output channels, NH query heads, NKV key/value heads, HS head size, V vocabulary, H hidden;
 *  - parameter gradients ACCUMULATE (+=) so that micro-batches and tied weights add up;
 *    activation gradients are ASSIGNED (=), except where a `dresid` argument is documented:
 *    then dinp = dresid + (this op's contribution), dinp may alias dresid (fused residual);
 *  - a NULL gradient pointer means "not needed" (frozen weight, first layer) and that work is skipped.
 *
 * Every kernel exists as a scalar reference (`ft_ref_*`, plain loops, the ground truth of the
 * tests) and as the optimised CPU version (`ft_cpu_*`, OpenBLAS + OpenMP + SIMD). Model code calls
 * neither directly: it calls through an ft_backend (backend.h), passing the table's context,
 *   be->layernorm_forward(be->ctx, out, mean, rstd, inp, w, b, N, C, eps);
 * so a CUDA backend slots in later with the same model loop. Tests call the functions directly:
 *   ft_ref_layernorm_forward(NULL, out, mean, rstd, inp, w, b, N, C, eps); */
#ifndef FINETUNE_OPS_H
#define FINETUNE_OPS_H
#include <stddef.h>

#define FT_IGNORE_INDEX (-100)

/* Which keys a query of the attention family sees. kind is a set of FT_ATTN_* flags:
 *   FT_ATTN_CAUSAL    query t sees keys j <= t (decoders);
 *   FT_ATTN_PADDING   key j of batch row b is seen only where pad[b*T + j] != 0 (encoders' attention_mask;
 *                     pad NULL = all real). A query whose every key is hidden this way attends uniformly
 *                     over the keys the other flags allow (HF's additive min-mask gives the same);
 *   FT_ATTN_SEGMENTS  query t sees key j only where seg[b*T + j] == seg[b*T + t] (packed examples;
 *                     seg NULL = one segment). Usually with FT_ATTN_CAUSAL.
 * kind 0 (or a NULL mask) is full bidirectional attention. */
enum { FT_ATTN_CAUSAL = 1, FT_ATTN_PADDING = 2, FT_ATTN_SEGMENTS = 4 };
typedef struct ft_attn_mask {
    int kind;
    const int *pad; /* [B,T] with FT_ATTN_PADDING */
    const int *seg; /* [B,T] with FT_ATTN_SEGMENTS */
} ft_attn_mask;

#define FT_OPS_DECLARE(P) \
/* out[N,C] = wte[ids[n]] + (wpe ? wpe[pos[n]] : 0); pos NULL means pos[n] = n % T */                     \
void P##embedding_forward(void *ctx, float *out, const int *ids, const int *pos, const float *wte, const float *wpe, int N, int T, int C); \
/* dwte[V,C] += .., dwpe[maxT,C] += .. (either may be NULL) */                                           \
void P##embedding_backward(void *ctx, float *dwte, float *dwpe, const float *dout, const int *ids, const int *pos, int N, int T, int C); \
/* out[N,C] = (inp - mean) * rstd * w + b; mean[N], rstd[N] saved (may be NULL at inference); b may be NULL */ \
/* w must not be NULL */                                                                       \
void P##layernorm_forward(void *ctx, float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N, int C, float eps); \
/* dinp[N,C] = dresid + d(layernorm)/dinp; dw[C], db[C] += */                                              \
void P##layernorm_backward(void *ctx, float *dinp, float *dw, float *db, const float *dout, const float *dresid, const float *inp, const float *w, const float *mean, const float *rstd, int N, int C); \
/* out[N,C] = inp * rstd * w, rstd[N] = 1/sqrt(mean(inp^2) + eps) saved (may be NULL) */                  \
void P##rmsnorm_forward(void *ctx, float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps); \
void P##rmsnorm_backward(void *ctx, float *dinp, float *dw, const float *dout, const float *dresid, const float *inp, const float *w, const float *rstd, int N, int C); \
/* out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC]   (bias may be NULL) */                                     \
void P##matmul_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC); \
/* dinp[N,C] = dout @ w (assigned); dw[OC,C] += dout^T @ inp; dbias[OC] += sum_n dout */                  \
void P##matmul_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int N, int C, int OC); \
/* out[N,OC] += bias[OC] */                                                                              \
void P##bias_add_forward(void *ctx, float *out, const float *bias, int N, int OC);                                  \
/* dbias[OC] += sum_n dout[N,OC]: each column summed over n = 0..N-1 in that order, in double, then     \
 * added as float. The order is fixed, so the bits do not depend on the thread count; ref == cpu. */     \
void P##bias_backward(void *ctx, float *dbias, const float *dout, int N, int OC);                                   \
/* GELU, tanh approximation (HF "gelu_new" / "gelu_pytorch_tanh"); out may alias nothing */               \
void P##gelu_forward(void *ctx, float *out, const float *inp, size_t n);                                            \
void P##gelu_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n);                       \
/* SwiGLU: inp[N, 2H] = [gate | up] per row; out[N,H] = silu(gate) * up */                              \
void P##swiglu_forward(void *ctx, float *out, const float *inp, int N, int H);                                      \
void P##swiglu_backward(void *ctx, float *dinp, const float *dout, const float *inp, int N, int H);                 \
/* out[n] = a[n] + b[n] */                                                                               \
void P##residual_forward(void *ctx, float *out, const float *a, const float *b, size_t n);                          \
/* Rotary embedding in place on the q and k heads of qkv[N, (NH+2*NKV)*HS] (HF rotate_half layout:     \
 * pairs (i, i + HS/2)); pos[N] positions; inv_freq[HS/2]. Backward rotates dqkv by -angle in place. */  \
/* pos must not be NULL */                                                                     \
void P##rope_forward(void *ctx, float *qkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS);  \
void P##rope_backward(void *ctx, float *dqkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS); \
/* Causal multi-head attention with grouped K/V heads. qkv[B,T,(NH+2*NKV)*HS] = [q heads|k heads|v heads]; \
 * out[B,T,NH*HS]; att[B,NH,T,T] keeps the softmax probabilities for backward (row t valid for j<=t).   \
 * seg[B,T] (may be NULL): token t attends to j <= t only when seg[j] == seg[t] (packed examples).     \
 * Query head h reads K/V head h / (NH/NKV). Scale 1/sqrt(HS). NKV must divide NH; att[b,h,t,j] is   \
 * written 0 for j > t and for seg-masked j. */                                        \
void P##attention_forward(void *ctx, float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH, int NKV, int HS); \
/* dqkv[B,T,(NH+2*NKV)*HS] assigned; scratch[B,NH,T,T] workspace (may alias nothing) */                 \
void P##attention_backward(void *ctx, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att, const int *seg, int B, int T, int NH, int NKV, int HS); \
/* the same with inverted dropout (p, seed) on the attention probabilities (att keeps the undropped ones; \
 * the mask of row r comes from ft_attn_dropout_row_seed(seed, r), backend.h); p = 0 is the plain kernel */ \
void P##attention_dropout_forward(void *ctx, float *out, float *att, const float *qkv, const int *seg, int B, int T, int NH, int NKV, int HS, float p, unsigned long long seed); \
void P##attention_dropout_backward(void *ctx, float *dqkv, float *scratch, const float *dout, const float *qkv, const float *att, const int *seg, int B, int T, int NH, int NKV, int HS, float p, unsigned long long seed); \
/* ---- the attention family: one kernel pair for every mask kind (see ft_attn_mask below) ----       \
 * q rows [B*T] with row stride ldq, query head h in columns h*HS..; k, v rows with strides ldk, ldv,   \
 * K/V head g in columns g*HS.. (query head h reads g = h / (NH/NKV); NKV must divide NH). The decoder's \
 * fused qkv rows are strided views: q = qkv, k = qkv + NH*HS, v = k + NKV*HS, ld = (NH+2*NKV)*HS; the  \
 * encoder's separate q, k, v have ld = NH*HS. out[B,T,NH*HS] (contiguous); att[B,NH,T,T] keeps the     \
 * (undropped) probabilities, 0 where a key is hidden. Scale 1/sqrt(HS). mask NULL = every query sees   \
 * every key. With p_drop > 0, out = dropout(P) V with row r = (b*NH + h)*T + t dropped by the mask of  \
 * ft_attn_dropout_row_seed(seed, r) (backend.h); p_drop = 0 is plain attention. */                    \
void P##attn_forward(void *ctx, float *out, float *att, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv, const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float p_drop, unsigned long long seed); \
/* dq, dk, dv (strides ldq, ldk, ldv: views into one buffer for the fused layout) ASSIGNED. scratch:    \
 * [B,NH,T,T] workspace, or NULL (the kernel then uses per-thread buffers). A query row whose keys the   \
 * padding mask hid entirely attended uniformly; its gradient is the softmax formula's, as torch's with  \
 * HF's additive min-mask. */                                                                          \
void P##attn_backward(void *ctx, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv, const float *att, const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float p_drop, unsigned long long seed); \
/* Inference with a KV cache, one sequence: q[T,NH*HS] are positions P..P+T-1; kc/vc[P+T, NKV*HS]     \
 * hold keys/values of positions 0..P+T-1 (row stride kv_stride floats). out[T,NH*HS]. */               \
void P##attention_cached_forward(void *ctx, float *out, const float *q, const float *kc, const float *vc, int kv_stride, int P, int T, int NH, int NKV, int HS); \
/* Softmax cross-entropy. losses[N] = -log softmax(logits)[target] (mixed with label smoothing eps:    \
 * (1-eps)*nll + eps*mean_v(-log p_v)); 0 where target == ignore_index. If dlogits != NULL:           \
 * dlogits[N,V] = scale * (softmax - smoothed one-hot), 0 rows for ignored targets; dlogits may alias  \
 * logits. Returns nothing; targets outside [0,V) other than ignore_index are treated as ignored. */    \
void P##crossentropy_forward_backward(void *ctx, float *losses, float *dlogits, const float *logits, const int *targets, int N, int V, float scale, float label_smoothing, int ignore_index); \
/* Inverted dropout with a counter-based mask: element i is kept when hash(seed, i) >= p, and then   \
 * scaled by 1/(1-p). The mask is a pure function of (seed, i), so backward regenerates it instead of  \
 * storing it, and results do not depend on threads. out may alias inp; dinp may alias dout. */          \
/* Accumulating strided matmul (LoRA, partial updates): out[N, rows] (row stride ldo) += alpha * inp[N,K] @ w[rows,K]^T */ \
void P##matmul_acc_forward(void *ctx, float *out, int ldo, const float *inp, const float *w, int N, int K, int rows, float alpha); \
/* dinp[N,K] += alpha * dout[N,rows](stride ldo) @ w[rows,K]; dw[rows,K] += alpha * dout^T @ inp (either may be NULL) */ \
void P##matmul_acc_backward(void *ctx, float *dinp, float *dw, const float *dout, int ldo, const float *inp, const float *w, int N, int K, int rows, float alpha); \
void P##dropout_forward(void *ctx, float *out, const float *inp, size_t n, float p, unsigned long long seed);       \
void P##dropout_backward(void *ctx, float *dinp, const float *dout, size_t n, float p, unsigned long long seed);

FT_OPS_DECLARE(ft_ref_)
FT_OPS_DECLARE(ft_cpu_)
/* ft_cpu_matmul_backward with dw[OC,C] ASSIGNED = dout^T @ inp (sgemm beta 0: dw neither read nor needing
 * initialised memory; zeros when N = 0): backend.h's matmul_backward_assign_dw (pack ignored) */
void ft_cpu_matmul_backward_assign_dw(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                      const float *w, void *pack, int N, int C, int OC);

/* The cross-entropy above with its gradient as bf16, in place (the cpu-bf16 table's
 * crossentropy_forward_backward_bf16, for the bf16 GEMMs of the LM head's backward, gemm_bf16.h:
 * ft_cpu_matmul_bf16_backward_dout16). losses[N] exactly as ft_cpu_crossentropy_forward_backward
 * computes them; logits[N,V] is consumed: on return row n's first 2V bytes hold the V bf16 values
 * ((uint16_t *)logits + n * 2V: a row stride of 2V bf16 elements) that its f32 dlogits round to (round to
 * nearest even, as ft_bf16_round); ignored rows are zeros. */
void ft_cpu_crossentropy_forward_backward_bf16(void *ctx, float *losses, float *logits, const int *targets, int N, int V,
                                               float scale, float label_smoothing, int ignore_index);

/* ---- the loops that model and trainer code used to run on the host, as kernels ----
 * (bias gradients: bias_backward above). Deterministic: every result is a fixed function of the
 * inputs (same bits for any thread count), and the _ref and _cpu versions give the same bits.
 *
 * LoRA merge needs no kernel of its own: W[out,in] += scale * B[out,r] @ A[r,in] is
 *   matmul_acc_backward(ctx, W, NULL, B, r, NULL, A, out, in, r, scale)
 * (dinp[N=out, K=in] += alpha * dout[N, rows=r] @ w[rows=r, K=in]); the _ref version sums each
 * element over j = 0..r-1 in double, exactly the old host loop.
 *
 * Hyperparameters of one optimizer update (the optimizer computes them per step). */
typedef struct ft_update_params {
    float lr;           /* learning rate of this step */
    float wd;           /* weight decay of this parameter (0 where it does not decay) */
    float beta1, beta2; /* Adam moments; RMSprop: alpha = beta2 */
    float eps;
    float momentum;     /* SGD / RMSprop */
    float bc1;          /* Adam: 1 - beta1^t (computed in double, rounded to float) */
    float bc2_sqrt;     /* Adam: sqrt(1 - beta2^t) (likewise) */
    int   nesterov;     /* SGD */
    int   first_step;   /* SGD: t == 1 (the momentum buffer starts as the gradient) */
} ft_update_params;

#define FT_UPDATE_OPS_DECLARE(P) \
/* KV-cache write: for rows i < n, k[i*ldkv .. +KV) goes to k_cache[r*ldc ..] and v[i*ldkv ..] to   \
 * v_cache[r*ldc ..], r = rows ? rows[i] : row0 + i. k and v are strided views (the decoder's fused   \
 * qkv rows: k = qkv + NH*HS, v = k + NKV*HS, ldkv = (NH+2*NKV)*HS); rows[] lets a multi-slot cache  \
 * put each row at slot*max_T + position. Destination rows must be distinct. */                        \
void P##kv_cache_write(void *ctx, float *k_cache, float *v_cache, int ldc, const float *k, const float *v, int ldkv, const int *rows, int row0, int n, int KV); \
/* sum of losses[0..N) in double, added in index order (the mean loss of a batch is this / count) */   \
double P##loss_reduce(void *ctx, const float *losses, size_t N);                                                   \
/* sum of x[i]^2 in double (a gradient norm): x is cut into FT_SUMSQ_CHUNKS equal chunks of            \
 * ceil(n / FT_SUMSQ_CHUNKS), each summed in index order, then the chunk sums are added in order —     \
 * the same bits for any thread count. */                                                              \
double P##sumsq(void *ctx, const float *x, size_t n);                                                              \
/* One optimizer step on n elements, in place; the same float arithmetic as torch.optim (see optim.h). \
 * AdamW: w = w (1 - lr wd); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;                             \
 *        w -= (lr / bc1) m / (sqrt(v) / bc2_sqrt + eps) */                                             \
void P##adamw_update(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const ft_update_params *h); \
/* Adam: the same with g += wd w (L2) instead of the decoupled decay */                                 \
void P##adam_update(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const ft_update_params *h); \
/* SGD: g += wd w; with buf (momentum > 0): buf = first_step ? g : mu buf + g,                          \
 * g = nesterov ? g + mu buf : buf; w -= lr g. buf NULL = plain SGD. */                                 \
void P##sgd_update(void *ctx, float *w, float *buf, const float *g, size_t n, const ft_update_params *h);         \
/* Adagrad: g += wd w; acc += g^2; w -= lr g / (sqrt(acc) + eps) */                                     \
void P##adagrad_update(void *ctx, float *w, float *acc, const float *g, size_t n, const ft_update_params *h);     \
/* RMSprop (alpha = beta2): g += wd w; v = a v + (1-a) g^2; u = g / (sqrt(v) + eps);                   \
 * with buf (momentum > 0): buf = mu buf + u, u = buf; w -= lr u */                                     \
void P##rmsprop_update(void *ctx, float *w, float *v, float *buf, const float *g, size_t n, const ft_update_params *h);

/* ---- the encoders' kernels (BERT / DistilBERT / RoBERTa; src/ops/encoder_ops.c) ----
 * Bidirectional multi-head attention with a key padding mask. q, k, v, out [B,T,NH*HS] (head h in
 * columns h*HS..); mask[B,T] (NULL = all real): key j of row b is seen only when mask[b,j] != 0 (a
 * row without any real token attends uniformly, as HF's additive min-mask does). att[B,NH,T,T] keeps
 * the probabilities. Scale 1/sqrt(HS). Backward ASSIGNS dq, dk, dv.
 * (These prototypes were declared in encoder.h as FT_ENC_OPS_DECLARE; identical duplicates are legal C
 * until that copy is removed.) */
#define FT_ENCODER_OPS_DECLARE(P) \
void P##enc_attention_forward(void *ctx, float *out, float *att, const float *q, const float *k, const float *v, const int *mask, int B, int T, int NH, int HS); \
void P##enc_attention_backward(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v, const float *att, int B, int T, int NH, int HS); \
/* the same with dropout on the probabilities (training): out = dropout(P) V, att keeps the undropped P; \
 * p, seed and the mask as for the causal kernels (backend.h, ft_attn_dropout_row_seed); p = 0 = the above */ \
void P##enc_attention_dropout_forward(void *ctx, float *out, float *att, const float *q, const float *k, const float *v, const int *mask, int B, int T, int NH, int HS, float p, unsigned long long seed); \
void P##enc_attention_dropout_backward(void *ctx, float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v, const float *att, int B, int T, int NH, int HS, float p, unsigned long long seed); \
/* exact GELU 0.5 x (1 + erf(x / sqrt 2)) (HF "gelu"); dinp = dout * gelu'(inp), dinp may alias dout */ \
void P##gelu_erf_forward(void *ctx, float *out, const float *inp, size_t n);                                       \
void P##gelu_erf_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n);                  \
/* out = tanh(inp); dinp = dout * (1 - out^2) from the saved output (may alias dout) */                 \
void P##tanh_forward(void *ctx, float *out, const float *inp, size_t n);                                           \
void P##tanh_backward(void *ctx, float *dinp, const float *dout, const float *out, size_t n);                      \
/* out = max(inp, 0); dinp = dout * (inp > 0) (may alias dout) */                                       \
void P##relu_forward(void *ctx, float *out, const float *inp, size_t n);                                           \
void P##relu_backward(void *ctx, float *dinp, const float *dout, const float *inp, size_t n);
FT_ENCODER_OPS_DECLARE(ft_ref_)
FT_ENCODER_OPS_DECLARE(ft_cpu_)

#define FT_SUMSQ_CHUNKS 64
FT_UPDATE_OPS_DECLARE(ft_ref_)
FT_UPDATE_OPS_DECLARE(ft_cpu_)

/* Matmuls with a quantized frozen weight (QLoRA): qw is an ft_nf4_tensor (dt FT_NF4) or an
 * ft_q8row_tensor (dt FT_Q8_ROW) of shape [OC, C] (quant.h), ggml blocks of a GGUF model: an
 * ft_ggml_tensor (dt FT_Q8_0 / FT_Q4_0 / FT_Q4_K, ggml_quant.h), or bf16 weights for generation: an
 * ft_bf16_tensor (dt FT_BF16, bf16.h; its references need no workspace). out[N,OC] = inp @ W^T (+ bias), assigned;
 * dinp[N,C] = dout @ W, assigned (no weight gradient: the base is frozen). ws: workspace of wsn floats,
 * OC*C for the fast path of the reference versions (they dequantize W, then run the plain loops); a smaller
 * one makes them work by blocks of rows (under one row: a row buffer of their own). */
#define FT_QOPS_DECLARE(P) \
void P##qmatmul_forward(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws, size_t wsn); \
void P##qmatmul_backward(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn);
FT_QOPS_DECLARE(ft_ref_)
FT_QOPS_DECLARE(ft_cpu_)
#endif
