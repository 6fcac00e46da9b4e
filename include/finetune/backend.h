/* backend.h — a compute backend is a table of kernels (see ops.h for each one's contract) plus the
 * memory functions of the device they run on. The model loops (src/models/decoder.c,
 * src/models/encoder.c) are written once and call only through this table, so the scalar reference,
 * the optimised CPU and (later) a CUDA backend share them.
 *
 * Context. `ctx` is the backend's own state: for CUDA, the device id, the cuBLAS handle, the stream
 * every kernel of the table is queued on, a memory pool. EVERY member takes it as its first argument,
 * kernels and memory functions alike, and model code passes the table's own:
 *
 *   be->matmul_forward(be->ctx, out, inp, w, bias, N, C, OC);   // out[N,OC] = inp[N,C] @ w[OC,C]^T + bias
 *
 * so a kernel finds its stream and handles in its argument, never in a static, and two tables of one
 * backend kind (two GPUs, two streams of one GPU) can run side by side. The host backends (ref, cpu)
 * have ctx NULL and their kernels ignore it; tests call the ft_ref_* / ft_cpu_* functions of ops.h
 * directly with NULL.
 *
 * Memory. Model code never calls the memory members directly but through ft_backend_alloc / _free /
 * _to_device / _to_host / _synchronize below, which fall back to host memory when a member is NULL (ref,
 * cpu), and through ft_arena_init_on (arena.h), so that every weight, gradient, optimizer-state and
 * activation arena is allocated where the kernels read it.
 *
 * How a CUDA backend plugs in (sketch; nothing here depends on CUDA):
 *
 *   typedef struct { int device; cudaStream_t stream; cublasHandle_t blas; } cuda_ctx;
 *   #define S(ctx) (((cuda_ctx *)(ctx))->stream)
 *   static void *cu_alloc(void *ctx, size_t n) { void *p; cudaMallocAsync(&p, n, S(ctx)); cudaMemsetAsync(p, 0, n, S(ctx)); return p; }
 *   static void  cu_free(void *ctx, void *p)   { cudaFreeAsync(p, S(ctx)); }
 *   static void  cu_h2d(void *ctx, void *d, const void *s, size_t n) { cudaMemcpyAsync(d, s, n, cudaMemcpyHostToDevice, S(ctx)); }
 *   static void  cu_d2h(void *ctx, void *d, const void *s, size_t n) { cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, S(ctx)); cudaStreamSynchronize(S(ctx)); }
 *   static void  cu_sync(void *ctx) { cudaStreamSynchronize(S(ctx)); }
 *   // a kernel member receives its cuda_ctx and queues on its stream:
 *   void ft_cuda_gelu_forward(void *ctx, float *out, const float *inp, size_t n) {
 *       gelu_kernel<<<(n + 255) / 256, 256, 0, S(ctx)>>>(out, inp, n);
 *   }
 *   void ft_cuda_matmul_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
 *       cuda_ctx *c = ctx;                       // cublasSetStream(c->blas, c->stream) once, at creation
 *       cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, &one, w, C, inp, C, &zero, out, OC);
 *       if (bias) bias_add_kernel<<<..., 0, c->stream>>>(out, bias, N, OC);
 *   }
 *   ft_backend *ft_backend_cuda_create(int device);   // .name "cuda", .ctx = a new cuda_ctx, the members
 *                                                    // above, ft_cuda_* kernels (src/ops/cuda/) for every member
 *
 * Kernels that return a scalar (loss_reduce, sumsq) synchronise their stream and copy it back. Host-side
 * reads of device buffers (logits for sampling, the checkpoint writer) go through ft_backend_to_host.
 *
 * Thread safety: the tables are immutable; the host kernels keep no state between calls (the CPU kernels
 * use OpenMP inside one call and per-thread scratch), so any number of threads may call them at once.
 * A device ctx serialises the work queued on its stream: threads that must not wait on each other use
 * tables with different contexts.
 *
 * Members marked optional may be NULL. */
#ifndef FINETUNE_BACKEND_H
#define FINETUNE_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "finetune/ops.h"

typedef struct ft_backend {
    const char *name;
    void *ctx; /* the backend's state (handles, streams, allocator), the first argument of every member below;
                  NULL for ref and cpu */
    /* optional: device memory (NULL = host memory). alloc returns nbytes of ZERO-FILLED memory aligned to
     * at least 64 bytes, or NULL; free(NULL) is a no-op; to_device / to_host copy nbytes between host and
     * device memory (to_host returns once the bytes are on the host); synchronize waits for every queued
     * kernel. */
    void *(*alloc)(void *ctx, size_t nbytes);
    void  (*free)(void *ctx, void *p);
    void  (*to_device)(void *ctx, void *dst, const void *src, size_t nbytes);
    void  (*to_host)(void *ctx, void *dst, const void *src, size_t nbytes);
    void  (*synchronize)(void *ctx);

    void (*embedding_forward)(void *ctx, float *out, const int *ids, const int *pos, const float *wte, const float *wpe, int N, int T, int C);
    void (*embedding_backward)(void *ctx, float *dwte, float *dwpe, const float *dout, const int *ids, const int *pos, int N, int T, int C);
    void (*layernorm_forward)(void *ctx, float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N, int C, float eps);
    void (*layernorm_backward)(void *ctx, float *dinp, float *dw, float *db, const float *dout, const float *dresid, const float *inp, const float *w, const float *mean, const float *rstd, int N, int C);
    void (*rmsnorm_forward)(void *ctx, float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps);
    void (*rmsnorm_backward)(void *ctx, float *dinp, float *dw, const float *dout, const float *dresid, const float *inp, const float *w, const float *rstd, int N, int C);
    void (*matmul_forward)(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC);
    void (*matmul_backward)(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int N, int C, int OC);
    void (*gelu_forward)(void *ctx, float *out, const float *inp, size_t n);
    void (*gelu_backward)(void *ctx, float *dinp, const float *dout, const float *inp, size_t n);
    void (*swiglu_forward)(void *ctx, float *out, const float *inp, int N, int H);
    void (*swiglu_backward)(void *ctx, float *dinp, const float *dout, const float *inp, int N, int H);
    void (*residual_forward)(void *ctx, float *out, const float *a, const float *b, size_t n);
    void (*rope_forward)(void *ctx, float *qkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS);
    void (*rope_backward)(void *ctx, float *dqkv, const int *pos, const float *inv_freq, int N, int NH, int NKV, int HS);
    void (*attention_cached_forward)(void *ctx, float *out, const float *q, const float *kc, const float *vc, int kv_stride, int P, int T, int NH, int NKV, int HS);
    void (*crossentropy_forward_backward)(void *ctx, float *losses, float *dlogits, const float *logits, const int *targets, int N, int V, float scale, float label_smoothing, int ignore_index);
    void (*matmul_acc_forward)(void *ctx, float *out, int ldo, const float *inp, const float *w, int N, int K, int rows, float alpha);
    void (*matmul_acc_backward)(void *ctx, float *dinp, float *dw, const float *dout, int ldo, const float *inp, const float *w, int N, int K, int rows, float alpha);
    void (*qmatmul_forward)(void *ctx, float *out, const float *inp, int dt, const void *qw, const float *bias, int N, float *ws, size_t wsn);
    void (*qmatmul_backward)(void *ctx, float *dinp, const float *dout, int dt, const void *qw, int N, float *ws, size_t wsn);
    void (*dropout_forward)(void *ctx, float *out, const float *inp, size_t n, float p, unsigned long long seed);
    void (*dropout_backward)(void *ctx, float *dinp, const float *dout, size_t n, float p, unsigned long long seed);

    /* the attention family: one kernel pair for every mask kind (causal, padding, packed segments) on
     * strided q/k/v views, with dropout (ops.h, ft_attn_mask); decoders and encoders both call it. The
     * ft_{ref,cpu}_attention_* / _enc_attention_* functions of ops.h are thin conveniences over it for the
     * fused-qkv and separate q/k/v layouts (tests), not table members. */
    void (*attn_forward)(void *ctx, float *out, float *att, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv, const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float p_drop, unsigned long long seed);
    void (*attn_backward)(void *ctx, float *dq, float *dk, float *dv, float *scratch, const float *dout, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv, const float *att, const ft_attn_mask *mask, int B, int T, int NH, int NKV, int HS, float p_drop, unsigned long long seed);

    /* the encoders' kernels (ops.h, FT_ENCODER_OPS_DECLARE) */
    void (*gelu_erf_forward)(void *ctx, float *out, const float *inp, size_t n);
    void (*gelu_erf_backward)(void *ctx, float *dinp, const float *dout, const float *inp, size_t n);
    void (*tanh_forward)(void *ctx, float *out, const float *inp, size_t n);
    void (*tanh_backward)(void *ctx, float *dinp, const float *dout, const float *out, size_t n);
    void (*relu_forward)(void *ctx, float *out, const float *inp, size_t n);
    void (*relu_backward)(void *ctx, float *dinp, const float *dout, const float *inp, size_t n);

    /* the loops model and trainer code ran on the host (ops.h, FT_UPDATE_OPS_DECLARE; LoRA merge is
     * matmul_acc_backward(ctx, W, NULL, B, r, NULL, A, out, in, r, scale)) */
    void (*bias_backward)(void *ctx, float *dbias, const float *dout, int N, int OC);
    void (*kv_cache_write)(void *ctx, float *k_cache, float *v_cache, int ldc, const float *k, const float *v, int ldkv, const int *rows, int row0, int n, int KV);
    double (*loss_reduce)(void *ctx, const float *losses, size_t N);
    double (*sumsq)(void *ctx, const float *x, size_t n);
    void (*adamw_update)(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const ft_update_params *h);
    void (*adam_update)(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const ft_update_params *h);
    void (*sgd_update)(void *ctx, float *w, float *buf, const float *g, size_t n, const ft_update_params *h);
    void (*adagrad_update)(void *ctx, float *w, float *acc, const float *g, size_t n, const ft_update_params *h);
    void (*rmsprop_update)(void *ctx, float *w, float *v, float *buf, const float *g, size_t n, const ft_update_params *h);

    /* optional (all NULL or all set): weights pre-packed for this backend's linear layer (the cpu-bf16 table: a
     * weight pack, gemm_bf16.h). wpack_bytes / wpack_init size and prepare the block of W [OC, C] (stale until
     * filled); the matmul members are matmul_forward / matmul_backward reading the pack (a stale one is filled
     * from w first); adamw_update_wpack is adamw_update that also leaves the pack current; wpack_invalidate
     * marks it stale after any other change of w. ft_param.pack holds a model's packs (ft_optim_set_prepack). */
    size_t (*wpack_bytes)(void *ctx, int OC, int C);
    void (*wpack_init)(void *ctx, void *pack, int OC, int C);
    void (*wpack_invalidate)(void *ctx, void *pack);
    void (*matmul_wpack_forward)(void *ctx, float *out, const float *inp, const float *w, void *pack, const float *bias, int N, int C, int OC);
    void (*matmul_wpack_backward)(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                                  void *pack, int N, int C, int OC);
    void (*adamw_update_wpack)(void *ctx, float *w, float *m, float *v, const float *g, size_t n, const ft_update_params *h, void *pack);

    /* optional (both NULL or both set): the LM head's logit gradients in bf16 (the cpu-bf16 table; lm_head.c uses them for an
     * f32 head weight). crossentropy_forward_backward_bf16 is crossentropy_forward_backward with dlogits stored as bf16 over
     * the logits (ops.h: ft_cpu_crossentropy_forward_backward_bf16; row stride 2V bf16 elements); matmul_backward_dout16 is
     * matmul_backward on such a dout [N, OC] (row stride ldd bf16 elements) with W's weight pack or NULL, the products'
     * bits those on the f32 dout the bf16 values round from (gemm_bf16.h: ft_cpu_matmul_bf16_backward_dout16). */
    void (*crossentropy_forward_backward_bf16)(void *ctx, float *losses, float *logits, const int *targets, int N, int V, float scale,
                                               float label_smoothing, int ignore_index);
    void (*matmul_backward_dout16)(void *ctx, float *dinp, float *dw, float *dbias, const uint16_t *dout, int ldd, const float *inp,
                                   const float *w, void *pack, int N, int C, int OC);

    /* optional: matmul_backward (pack NULL) / matmul_wpack_backward (pack non-NULL) with the weight gradient ASSIGNED,
     * dw[OC,C] = dout^T @ inp (zeros when N = 0): dw's old contents are neither read nor needed. The decoders call
     * it for a gradient pending zero (model.h, ft_param.grad_pending): no memset before, no read of it in the
     * product. dinp and dbias as in matmul_backward. NULL: the model clears dw, then calls the accumulating member.
     * matmul_backward_dout16_assign_dw: the same for matmul_backward_dout16 (optional; set where that one is). */
    void (*matmul_backward_assign_dw)(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                      const float *w, void *pack, int N, int C, int OC);
    void (*matmul_backward_dout16_assign_dw)(void *ctx, float *dinp, float *dw, float *dbias, const uint16_t *dout, int ldd,
                                             const float *inp, const float *w, void *pack, int N, int C, int OC);

    /* optional (both or neither): the GPT-2 MLP's GELU fused into its products (cpu-bf16: in the GEMM's epilogue,
     * gemm_bf16.h). matmul_gelu_forward: x = inp w^T + bias as matmul_forward, act = gelu(x), out = x, or gelu'(x)
     * when deriv (for a matmul_gelu_backward with deriv); matmul_gelu_backward: matmul_backward whose dinp is the
     * gradient through the GELU, (dout w) * gelu'(pre), pre the pre-activation of inp = gelu(pre), or
     * (dout w) * pre when deriv (pre then holds gelu'); assign_dw: dw assigned (as matmul_backward_assign_dw).
     * pack: w's weight pack (the wpack members) or NULL. The
     * decoder calls them only where nothing else is added to the pre-activation or to dinp (no LoRA there). */
    void (*matmul_gelu_forward)(void *ctx, float *out, float *act, const float *inp, const float *w, void *pack, const float *bias,
                                int N, int C, int OC, int deriv);
    void (*matmul_gelu_backward)(void *ctx, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout, const float *inp,
                                 const float *pre, int deriv, const float *w, void *pack, int N, int C, int OC);
} ft_backend;

/* ---- dropout on the attention probabilities (training; BERT attention_probs_dropout_prob, GPT-2 attn_pdrop)
 * As torch's nn.Dropout after the softmax: out = dropout(P) V with P the softmax probabilities, each
 * P[b,h,t,j] zeroed with probability p and the survivors scaled by 1/(1-p). att keeps the UNdropped P
 * (the softmax backward needs it); the backward regenerates the mask from (p, seed) instead of storing it.
 * The mask of probability row r = (b*NH + h)*T + t is the mask dropout_forward(.., T, p,
 * ft_attn_dropout_row_seed(seed, r)) applies to that row's T entries (element j <-> key j), so the
 * reference and CPU kernels (and a later device backend) agree bit for bit on which entries drop.
 * p = 0 is exactly the plain kernel. */
static inline unsigned long long ft_attn_dropout_row_seed(unsigned long long seed, size_t row) {
    return seed ^ (0xD1B54A32D192ED03ull * (unsigned long long)(row + 1));
}

/* Memory through a backend (be NULL or the member NULL: host memory, 64-byte aligned).
 * ft_backend_alloc: nbytes zero-filled, or NULL when out of memory (nbytes 0 gives a valid 64-byte block).
 * ft_backend_free: releases what ft_backend_alloc returned (NULL: no-op).
 * ft_backend_to_device / _to_host: copy nbytes (memcpy on the host backends).
 * ft_backend_synchronize: waits for the backend's queued work (no-op on the host backends). */
void *ft_backend_alloc(const ft_backend *be, size_t nbytes);
void  ft_backend_free(const ft_backend *be, void *p);
void  ft_backend_to_device(const ft_backend *be, void *dst, const void *src, size_t nbytes);
void  ft_backend_to_host(const ft_backend *be, void *dst, const void *src, size_t nbytes);
void  ft_backend_synchronize(const ft_backend *be);

/* The scalar reference backend (plain loops, single thread): ground truth for tests. */
const ft_backend *ft_backend_ref(void);
/* The optimised CPU backend: OpenBLAS sgemm, OpenMP on all cores, vectorised loops. */
const ft_backend *ft_backend_cpu(void);
/* The CPU backend with the linear layers in bf16: inputs rounded to bf16, f32 accumulation
 * (gemm_bf16.h): matmul_forward / matmul_backward over f32 weights (the LoRA adapters' x A^T too), and
 * qmatmul_forward / qmatmul_backward over QLoRA's NF4 / int8 bases at training batch sizes (dequantized
 * while the GEMM packs them), and attn_forward / attn_backward (the attention's six products; its softmax
 * in f32). Everything else (norms, softmax, loss, reductions, optimizer updates, the
 * adapters' strided matmul_acc products, the quantized matmuls of a few rows) exactly as ft_backend_cpu().
 * Weights, gradients and optimizer state stay f32: the weights are cast while the GEMM packs them. */
const ft_backend *ft_backend_cpu_bf16(void);
/* The table of a training / evaluation precision: "f32" (or NULL / "") -> ft_backend_cpu(), "bf16" ->
 * ft_backend_cpu_bf16(), "auto" -> the one of ft_precision_default(). FT_ERR_INVALID for another name; FT_ERR_UNSUPPORTED, with the way back
 * (--precision f32) in the message, for bf16 on a CPU without AVX-512. */
int ft_backend_for_precision(const char *precision, const ft_backend **be);
/* "bf16" where the CPU has AVX512-BF16, else "f32": what --precision auto (finetune train's default) means */
const char *ft_precision_default(void);
/* "bf16" for the bf16 tables, "f32" otherwise */
const char *ft_backend_precision(const ft_backend *be);
/* By name: "cpu", "ref", "cpu-bf16", "ref-bf16" (later "cuda"); NULL if unknown. */
const ft_backend *ft_backend_by_name(const char *name);
/* Threads used by the CPU backend (OpenMP and OpenBLAS); n <= 0 means all cores. */
void ft_set_threads(int n);
int  ft_get_threads(void);
#endif
