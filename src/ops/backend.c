/* backend.c — the kernel tables for the reference and CPU backends. */
#include "finetune/backend.h"
#include "finetune/ops.h"
#include "finetune/gemm_bf16.h"
#include "finetune/status.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define FT_BACKEND_TABLE(P, NAME) FT_BACKEND_TABLE_MM(P, NAME, P##matmul_forward, P##matmul_backward, \
                                                    P##qmatmul_forward, P##qmatmul_backward, P##attn_forward, P##attn_backward, )
/* a table whose linear layer is MMF / MMB over f32 weights and QMF / QMB over quantized ones, and whose
 * attention is AF / AB (the bf16 tables: their products in bf16, everything else f32) */
#define FT_BACKEND_TABLE_MM(P, NAME, MMF, MMB, QMF, QMB, AF, AB, ...) {         \
    .name = NAME,                                                               \
    .embedding_forward = P##embedding_forward, .embedding_backward = P##embedding_backward, \
    .layernorm_forward = P##layernorm_forward, .layernorm_backward = P##layernorm_backward, \
    .rmsnorm_forward = P##rmsnorm_forward, .rmsnorm_backward = P##rmsnorm_backward,         \
    .matmul_forward = MMF, .matmul_backward = MMB,                                          \
    .gelu_forward = P##gelu_forward, .gelu_backward = P##gelu_backward,                     \
    .swiglu_forward = P##swiglu_forward, .swiglu_backward = P##swiglu_backward,             \
    .residual_forward = P##residual_forward,                                                \
    .rope_forward = P##rope_forward, .rope_backward = P##rope_backward,                     \
    .attention_cached_forward = P##attention_cached_forward,                                \
    .crossentropy_forward_backward = P##crossentropy_forward_backward,                      \
    .matmul_acc_forward = P##matmul_acc_forward, .matmul_acc_backward = P##matmul_acc_backward, \
    .qmatmul_forward = QMF, .qmatmul_backward = QMB,                                        \
    .dropout_forward = P##dropout_forward, .dropout_backward = P##dropout_backward,         \
    .gelu_erf_forward = P##gelu_erf_forward, .gelu_erf_backward = P##gelu_erf_backward,     \
    .tanh_forward = P##tanh_forward, .tanh_backward = P##tanh_backward,                     \
    .relu_forward = P##relu_forward, .relu_backward = P##relu_backward,                     \
    .attn_forward = AF, .attn_backward = AB,                                                \
    .bias_backward = P##bias_backward, .kv_cache_write = P##kv_cache_write,                 \
    .loss_reduce = P##loss_reduce, .sumsq = P##sumsq,                                       \
    .adamw_update = P##adamw_update, .adam_update = P##adam_update, .sgd_update = P##sgd_update, \
    .adagrad_update = P##adagrad_update, .rmsprop_update = P##rmsprop_update,               \
    __VA_ARGS__                                                                             \
}

/* the cpu-bf16 table's weight packs (gemm_bf16.h) */
static size_t wpack_bytes(void *ctx, int OC, int C) { return ft_gemm_bf16_wpack_bytes(OC, C); }
static void wpack_init(void *ctx, void *pack, int OC, int C) { ft_gemm_bf16_wpack_init(pack, OC, C); }
static void wpack_invalidate(void *ctx, void *pack) { ft_gemm_bf16_wpack_invalidate(pack); }

static const ft_backend g_ref = FT_BACKEND_TABLE(ft_ref_, "ref");
static const ft_backend g_cpu = FT_BACKEND_TABLE_MM(ft_cpu_, "cpu", ft_cpu_matmul_forward, ft_cpu_matmul_backward, ft_cpu_qmatmul_forward,
                                                    ft_cpu_qmatmul_backward, ft_cpu_attn_forward, ft_cpu_attn_backward,
                                                    .matmul_backward_assign_dw = ft_cpu_matmul_backward_assign_dw);
/* ref-bf16: the reference kernels with the bf16 linear layer and quantized base (its attention stays the
 * f32 reference) */
static const ft_backend g_ref_bf16 = FT_BACKEND_TABLE_MM(ft_ref_, "ref-bf16", ft_ref_matmul_bf16_forward, ft_ref_matmul_bf16_backward,
                                                         ft_ref_qmatmul_bf16_forward, ft_ref_qmatmul_bf16_backward,
                                                         ft_ref_attn_forward, ft_ref_attn_backward, );
static const ft_backend g_cpu_bf16 = FT_BACKEND_TABLE_MM(ft_cpu_, "cpu-bf16", ft_cpu_matmul_bf16_forward, ft_cpu_matmul_bf16_backward,
                                                         ft_cpu_qmatmul_bf16_forward, ft_cpu_qmatmul_bf16_backward,
                                                         ft_cpu_attn_bf16_forward, ft_cpu_attn_bf16_backward,
                                                         .wpack_bytes = wpack_bytes, .wpack_init = wpack_init,
                                                         .wpack_invalidate = wpack_invalidate,
                                                         .matmul_wpack_forward = ft_cpu_matmul_bf16_wpack_forward,
                                                         .matmul_wpack_backward = ft_cpu_matmul_bf16_wpack_backward,
                                                         .adamw_update_wpack = ft_cpu_adamw_update_wpack,
                                                         .crossentropy_forward_backward_bf16 = ft_cpu_crossentropy_forward_backward_bf16,
                                                         .matmul_backward_dout16 = ft_cpu_matmul_bf16_backward_dout16,

                                                         .matmul_backward_assign_dw = ft_cpu_matmul_bf16_backward_assign_dw,
                                                         .matmul_backward_dout16_assign_dw = ft_cpu_matmul_bf16_backward_dout16_assign_dw,
                                                         .matmul_gelu_forward = ft_cpu_matmul_bf16_gelu_forward,
                                                         .matmul_gelu_backward = ft_cpu_matmul_bf16_gelu_backward);

const ft_backend *ft_backend_ref(void) { return &g_ref; }
const ft_backend *ft_backend_cpu(void) { return &g_cpu; }
const ft_backend *ft_backend_cpu_bf16(void) { return &g_cpu_bf16; }

const ft_backend *ft_backend_by_name(const char *name) {
    if (!name || strcmp(name, "cpu") == 0) return &g_cpu;
    if (strcmp(name, "ref") == 0) return &g_ref;
    if (strcmp(name, "cpu-bf16") == 0) return &g_cpu_bf16;
    if (strcmp(name, "ref-bf16") == 0) return &g_ref_bf16;
    return NULL;
}

int ft_backend_for_precision(const char *precision, const ft_backend **be) {
    if (precision && strcmp(precision, "auto") == 0) precision = ft_precision_default();
    if (!precision || !*precision || strcmp(precision, "f32") == 0) { *be = &g_cpu; return FT_OK; }
    if (strcmp(precision, "bf16") != 0)
        return ft_error(FT_ERR_INVALID, "unknown precision '%s' (f32, bf16 or auto)", precision);
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR)
        return ft_error(FT_ERR_UNSUPPORTED, "--precision bf16 needs AVX-512 (AVX512-BF16, or AVX-512F for the slower "
                                            "fallback) and this CPU has neither: use --precision f32");
    *be = &g_cpu_bf16;
    return FT_OK;
}

const char *ft_precision_default(void) { return ft_bf16_isa_best() == FT_BF16_ISA_AVX512BF16 ? "bf16" : "f32"; }

const char *ft_backend_precision(const ft_backend *be) {
    return be && (be == &g_cpu_bf16 || be == &g_ref_bf16) ? "bf16" : "f32";
}

static int g_threads = 0;

void ft_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    g_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int ft_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

/* ------------------------------------------------------------ memory through a backend */

void *ft_backend_alloc(const ft_backend *be, size_t nbytes) {
    if (be && be->alloc) return be->alloc(be->ctx, nbytes);
    size_t n = (nbytes + 63) / 64 * 64;
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}

void ft_backend_free(const ft_backend *be, void *p) {
    if (!p) return;
    if (be && be->free) be->free(be->ctx, p);
    else free(p);
}

void ft_backend_to_device(const ft_backend *be, void *dst, const void *src, size_t nbytes) {
    if (be && be->to_device) be->to_device(be->ctx, dst, src, nbytes);
    else if (nbytes) memmove(dst, src, nbytes);
}

void ft_backend_to_host(const ft_backend *be, void *dst, const void *src, size_t nbytes) {
    if (be && be->to_host) be->to_host(be->ctx, dst, src, nbytes);
    else if (nbytes) memmove(dst, src, nbytes);
}

void ft_backend_synchronize(const ft_backend *be) {
    if (be && be->synchronize) be->synchronize(be->ctx);
}
