/* matmul_bf16.c — the cpu-bf16 backend's linear layer (gemm_bf16.h: ft_cpu_matmul_bf16_*): out = inp W^T (+ bias)
 * and its backward on the bf16 GEMM of gemm_bf16.c, with W from memory or from its weight pack; the weight gradient
 * accumulated or assigned (the first backward after a zero_grad, model.h grad_pending); the LM head's backward on bf16
 * logit gradients (dout16); GPT-2's MLP GELU and the bias gradients in the products' epilogues (fused, or the same
 * bits in separate passes). The GEMM driver, its packs and the weight packs' layout stay in gemm_bf16.c, reached
 * through gemm_bf16_internal.h (ft__gemm_bf16_ex, ft__gemm_bf16_epi_pass, ft__gemm_bf16_wpack_layout). */
#include "finetune/gemm_bf16.h"
#include "finetune/ops.h"
#include "ops/cpu/gemm_bf16_internal.h"

#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the linear layer */

void ft_cpu_matmul_bf16_forward(void *ctx, float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC) {
    ft_cpu_gemm_bf16(out, OC, inp, C, 0, w, C, 1, N, OC, C, 0, bias);
}

/* the fused epilogues on (1) or off (0): FT_BF16_FUSE=0 in the environment, or ft__gemm_bf16_set_fuse */
static _Atomic int g_fuse = -1;

void ft__gemm_bf16_set_fuse(int on) { atomic_store(&g_fuse, on ? 1 : 0); }

int ft__gemm_bf16_fuse(void) {
    int v = atomic_load(&g_fuse);
    if (v >= 0) return v;
    const char *env = getenv("FT_BF16_FUSE");
    int on = !(env && strcmp(env, "0") == 0), expected = -1;
    atomic_compare_exchange_strong(&g_fuse, &expected, on);
    return atomic_load(&g_fuse);
}

/* the weight gradient dw = (assign_dw ? 0 : dw) + dout^T inp, and dbias += the column sums of dout: summed while
 * dout is packed (fused), else by ft_cpu_bias_backward (same bits) */
static void dw_dbias(void *ctx, float *dw, int assign_dw, float *dbias, const float *dout, const float *inp, int N, int C, int OC) {
    if (dw && dbias && ft__gemm_bf16_fuse()) {
        ft__gemm_epi e = {.dbias = dbias};
        ft__gemm_bf16_ex(dw, C, dout, OC, 1, inp, C, NULL, 0, 0, OC, C, N, !assign_dw, NULL, &e);
        return;
    }
    if (dw) ft_cpu_gemm_bf16(dw, C, dout, OC, 1, inp, C, 0, OC, C, N, !assign_dw, NULL);
    if (dbias) ft_cpu_bias_backward(ctx, dbias, dout, N, OC);
}

void ft_cpu_matmul_bf16_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                 const float *w, int N, int C, int OC) {
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (dinp) ft_cpu_gemm_bf16(dinp, C, dout, OC, 0, w, C, 0, N, C, OC, 0, NULL);
    dw_dbias(ctx, dw, 0, dbias, dout, inp, N, C, OC);
}


void ft_cpu_matmul_bf16_wpack_forward(void *ctx, float *out, const float *inp, const float *w, void *pack, const float *bias,
                                      int N, int C, int OC) {
    int kc;
    const uint32_t *f = ft__gemm_bf16_wpack_layout(pack, w, 0, &kc);
    ft__gemm_bf16_ex(out, OC, inp, C, 0, w, C, f, kc, 1, N, OC, C, 0, bias, NULL);
}

void ft_cpu_matmul_bf16_wpack_backward(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                       const float *w, void *pack, int N, int C, int OC) {
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (dinp) {
        int kc;
        const uint32_t *b = ft__gemm_bf16_wpack_layout(pack, w, 1, &kc);
        ft__gemm_bf16_ex(dinp, C, dout, OC, 0, w, C, b, kc, 0, N, C, OC, 0, NULL, NULL);
    }
    dw_dbias(ctx, dw, 0, dbias, dout, inp, N, C, OC);
}

/* ------------------------------------------------------------------ the MLP's GELU in the products' epilogues */

void ft_cpu_matmul_bf16_gelu_forward(void *ctx, float *out, float *act, const float *inp, const float *w, void *pack,
                                     const float *bias, int N, int C, int OC, int deriv) {
    ft__gemm_epi e = {.act = act, .ldact = (size_t)OC, .deriv = deriv};
    if (!ft__gemm_bf16_fuse()) {
        if (pack) ft_cpu_matmul_bf16_wpack_forward(ctx, out, inp, w, pack, bias, N, C, OC);
        else ft_cpu_matmul_bf16_forward(ctx, out, inp, w, bias, N, C, OC);
        if (N > 0 && OC > 0 && !deriv) ft_cpu_gelu_forward(ctx, act, out, (size_t)N * OC);
        else if (N > 0 && OC > 0) ft__gemm_bf16_epi_pass(&e, out, OC, N, OC); /* a separate pass */
        return;
    }
    int kc = 0;
    const uint32_t *f = pack ? ft__gemm_bf16_wpack_layout(pack, w, 0, &kc) : NULL;
    ft__gemm_bf16_ex(out, OC, inp, C, 0, w, C, f, kc, 1, N, OC, C, 0, bias, &e);
}

void ft_cpu_matmul_bf16_gelu_backward(void *ctx, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout,
                                      const float *inp, const float *pre, int deriv, const float *w, void *pack, int N, int C, int OC) {
    ft__gemm_epi e = {.pre = pre, .ldpre = (size_t)C, .deriv = deriv};
    if (assign_dw && dw && (N <= 0 || !ft__gemm_bf16_fuse())) { /* (N = 0: zeros) */
        ft_cpu_matmul_bf16_backward_assign_dw(ctx, dinp, dw, dbias, dout, inp, w, pack, N, C, OC);
        if (dinp && N > 0 && C > 0) ft__gemm_bf16_epi_pass(&e, dinp, C, N, C); /* a separate pass */
        return;
    }
    if (N <= 0 || C <= 0 || OC <= 0) return;
    if (!ft__gemm_bf16_fuse()) {
        if (pack) ft_cpu_matmul_bf16_wpack_backward(ctx, dinp, dw, dbias, dout, inp, w, pack, N, C, OC);
        else ft_cpu_matmul_bf16_backward(ctx, dinp, dw, dbias, dout, inp, w, N, C, OC);
        if (dinp && !deriv) ft_cpu_gelu_backward(ctx, dinp, dinp, pre, (size_t)N * C);
        else if (dinp) ft__gemm_bf16_epi_pass(&e, dinp, C, N, C); /* a separate pass */
        return;
    }
    if (dinp) {
        int kc = 0;
        const uint32_t *b = pack ? ft__gemm_bf16_wpack_layout(pack, w, 1, &kc) : NULL;
        ft__gemm_bf16_ex(dinp, C, dout, OC, 0, w, C, b, kc, 0, N, C, OC, 0, NULL, &e);
    }
    dw_dbias(ctx, dw, assign_dw, dbias, dout, inp, N, C, OC);
}

/* dbias[OC] += column sums of the bf16 dout [N, OC] (row stride ldd), in double per column as ft_cpu_bias_backward */
#define BIAS16_CB 256
static void bias_backward16(float *dbias, const uint16_t *dout, int ldd, int N, int OC) {
    int nb = (OC + BIAS16_CB - 1) / BIAS16_CB;
#pragma omp parallel for schedule(static) if ((size_t)N * OC >= ((size_t)1 << 16))
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * BIAS16_CB, cn = OC - c0 < BIAS16_CB ? OC - c0 : BIAS16_CB;
        double acc[BIAS16_CB] = {0};
        for (int n = 0; n < N; n++) {
            const uint16_t *d = dout + (size_t)n * ldd + c0;
            for (int c = 0; c < cn; c++) {
                uint32_t u = (uint32_t)d[c] << 16;
                float f;
                memcpy(&f, &u, sizeof f);
                acc[c] += f;
            }
        }
        for (int c = 0; c < cn; c++) dbias[c0 + c] += (float)acc[c];
    }
}

/* dw accumulated (acc_dw 1) or assigned (0: zeros when N = 0) */
static void backward_dout16(float *dinp, float *dw, int acc_dw, float *dbias, const uint16_t *dout, int ldd, const float *inp,
                            const float *w, void *pack, int N, int C, int OC) {
    if (C <= 0 || OC <= 0) return;
    if (N <= 0) {
        if (dw && !acc_dw) memset(dw, 0, sizeof(float) * (size_t)OC * C);
        return;
    }
    if (dinp && pack) {
        int kc;
        const uint32_t *b = ft__gemm_bf16_wpack_layout(pack, w, 1, &kc);
        ft__gemm_bf16_ex(dinp, C, dout, ldd, FT__GEMM_A16, w, C, b, kc, 0, N, C, OC, 0, NULL, NULL);
    } else if (dinp) ft_cpu_gemm_bf16_a16(dinp, C, dout, ldd, 0, w, C, 0, N, C, OC, 0, NULL);
    if (dw) ft_cpu_gemm_bf16_a16(dw, C, dout, ldd, 1, inp, C, 0, OC, C, N, acc_dw, NULL);
    if (dbias) bias_backward16(dbias, dout, ldd, N, OC);
}

void ft_cpu_matmul_bf16_backward_dout16(void *ctx, float *dinp, float *dw, float *dbias, const uint16_t *dout, int ldd,
                                        const float *inp, const float *w, void *pack, int N, int C, int OC) {
    if (N > 0) backward_dout16(dinp, dw, 1, dbias, dout, ldd, inp, w, pack, N, C, OC);
}

void ft_cpu_matmul_bf16_backward_dout16_assign_dw(void *ctx, float *dinp, float *dw, float *dbias, const uint16_t *dout, int ldd,
                                                  const float *inp, const float *w, void *pack, int N, int C, int OC) {
    backward_dout16(dinp, dw, 0, dbias, dout, ldd, inp, w, pack, N, C, OC);
}

void ft_cpu_matmul_bf16_backward_assign_dw(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                                           const float *w, void *pack, int N, int C, int OC) {
    if (C <= 0 || OC <= 0) return;
    if (N <= 0) {
        if (dw) memset(dw, 0, sizeof(float) * (size_t)OC * C);
        return;
    }
    if (dinp && pack) ft_cpu_matmul_bf16_wpack_backward(ctx, dinp, NULL, NULL, dout, inp, w, pack, N, C, OC);
    else if (dinp) ft_cpu_gemm_bf16(dinp, C, dout, OC, 0, w, C, 0, N, C, OC, 0, NULL);
    dw_dbias(ctx, dw, 1, dbias, dout, inp, N, C, OC);
}
