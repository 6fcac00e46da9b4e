/* test_gemm_bf16_fuse.c — the bf16 GEMM's fused epilogues (gemm_bf16.h, issue 16): the GPT-2 MLP's GELU in the
 * fc product's epilogue (ft_cpu_matmul_bf16_gelu_forward), its derivative in the projection's input-gradient
 * product (ft_cpu_matmul_bf16_gelu_backward) and the bias gradient summed while dout is packed for dW
 * (ft_cpu_matmul_bf16_backward / _wpack_backward), each against the unfused sequence it replaces (the product,
 * then ft_cpu_gelu_forward / ft_cpu_gelu_backward / ft_cpu_bias_backward): the same vector GELU on the same f32
 * values and the same double sums, so the same bits. Shapes with edges (rows and columns that 12 and 32 do not
 * divide), several K blocks, and chunks of M and of N (a tiny pack budget), with and without a weight pack, on
 * both AVX-512 kernels and the scalar fallback. Then a small GPT-2 in bf16 (dropout on, training mode): the loss
 * and every gradient with the fusion on and off (ft__gemm_bf16_set_fuse) and with a table without the fused
 * members, without LoRA (the forward keeps gelu'(pre) for the backward), with LoRA on the MLP's projection (no
 * fused backward there; fch keeps the pre-activation), on its fc (no fused forward), and under both recompute
 * modes; a wrapper table counts the fused calls the decoder makes. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/status.h"
#include "ops/cpu/gemm_bf16_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *rnd(size_t n, unsigned seed, float scale) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    unsigned s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = scale * ((float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f);
    }
    return x;
}

static float *dup(const float *x, size_t n) {
    float *y = malloc(sizeof(float) * (n ? n : 1));
    memcpy(y, x, sizeof(float) * n);
    return y;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d) d = e;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return m > 0 ? d / m : d;
}

typedef struct { int N, C, OC; size_t budget; } shape;
/* rows N, input width C (K of the forward), output width OC; budget 0: the default */
static const shape k_shapes[] = {
    {37, 70, 75, 0},        /* edges everywhere: 37 = 3 x 12 + 1, 75 = 2 x 32 + 11 */
    {100, 64, 1000, 65536}, /* chunks of N in the forward (OC), of M in dW (M = OC) */
    {1000, 200, 40, 65536}, /* chunks of M in the forward (rows) */
    {29, 1700, 130, 0},     /* two K blocks in the forward (C > 1536), odd sizes */
    {50, 1000, 40, 65536},  /* short K blocks and chunks of N with several K blocks in the backward's dW (K = N) */
    {2000, 40, 44, 65536},  /* dW with several K blocks (K = 2000 rows) and the budget's short blocks */
};

static void isa_each(void (*fn)(const shape *)) {
    ft_bf16_isa best = ft_bf16_isa_best();
    for (int isa = FT_BF16_ISA_SCALAR; isa <= (int)best; isa++) {
        assert_int_equal(ft_bf16_isa_set((ft_bf16_isa)isa), FT_OK);
        for (size_t i = 0; i < sizeof k_shapes / sizeof *k_shapes; i++) {
            ft__gemm_bf16_set_pack_budget(k_shapes[i].budget);
            fn(&k_shapes[i]);
        }
    }
    ft__gemm_bf16_set_pack_budget(0);
    assert_int_equal(ft_bf16_isa_set(best), FT_OK);
    ft__gemm_bf16_set_fuse(1);
}

/* forward: act and out (the pre-activation, or its GELU derivative) of the fused product equal the product
 * followed by ft_cpu_gelu_forward (and ft_cpu_gelu_backward of a gradient of ones: the derivative's bits) */
static void fwd_shape(const shape *sh) {
    int N = sh->N, C = sh->C, OC = sh->OC;
    float *inp = rnd((size_t)N * C, 1, 1.0f), *w = rnd((size_t)OC * C, 2, 0.2f), *bias = rnd((size_t)OC, 3, 0.5f);
    size_t no = (size_t)N * OC;
    float *out0 = rnd(no, 4, 1), *act0 = rnd(no, 5, 1), *out1 = rnd(no, 6, 1), *act1 = rnd(no, 7, 1), *d0 = rnd(no, 8, 1);
    float *ones = malloc(sizeof(float) * no);
    for (size_t i = 0; i < no; i++) ones[i] = 1.0f;
    ft__gemm_bf16_set_fuse(0);
    ft_cpu_matmul_bf16_forward(NULL, out0, inp, w, bias, N, C, OC);
    ft_cpu_gelu_forward(NULL, act0, out0, no);
    ft_cpu_gelu_backward(NULL, d0, ones, out0, no);
    void *pk = aligned_alloc(64, (ft_gemm_bf16_wpack_bytes(OC, C) + 63) / 64 * 64);
    ft_gemm_bf16_wpack_init(pk, OC, C);
    for (int v = 0; v < 8; v++) { /* fused or not, through a weight pack or not, the derivative or the pre-activation */
        int fuse = v & 1, packed = v & 2, deriv = v & 4;
        ft__gemm_bf16_set_fuse(fuse);
        memset(out1, 0, sizeof(float) * no);
        memset(act1, 0, sizeof(float) * no);
        ft_cpu_matmul_bf16_gelu_forward(NULL, out1, act1, inp, w, packed ? pk : NULL, bias, N, C, OC, deriv != 0);
        assert_memory_equal(deriv ? d0 : out0, out1, sizeof(float) * no);
        assert_memory_equal(act0, act1, sizeof(float) * no);
    }
    ft__gemm_bf16_set_fuse(1);
    /* the GELU and its derivative are really applied */
    assert_true(memcmp(out0, act0, sizeof(float) * no) != 0);
    assert_true(memcmp(out0, d0, sizeof(float) * no) != 0);
    free(pk);
    free(inp); free(w); free(bias); free(out0); free(act0); free(out1); free(act1); free(d0); free(ones);
}

/* backward: dinp = (dout w) gelu'(pre), dw and dbias accumulated, against the unfused sequence */
static void bwd_shape(const shape *sh) {
    /* the layer is the MLP projection: inp [N, C] = gelu(pre), dout [N, OC] */
    int N = sh->N, C = sh->C, OC = sh->OC;
    size_t ni = (size_t)N * C;
    float *pre = rnd(ni, 11, 2.0f), *inp = malloc(sizeof(float) * ni), *w = rnd((size_t)OC * C, 12, 0.2f);
    float *dout = rnd((size_t)N * OC, 13, 1.0f);
    ft_cpu_gelu_forward(NULL, inp, pre, ni);
    float *dw_init = rnd((size_t)OC * C, 14, 0.1f), *db_init = rnd((size_t)OC, 15, 0.1f);
    /* unfused: product, GELU backward, separate bias pass */
    float *dinp0 = malloc(sizeof(float) * ni), *dw0 = dup(dw_init, (size_t)OC * C), *db0 = dup(db_init, (size_t)OC);
    ft__gemm_bf16_set_fuse(0);
    ft_cpu_matmul_bf16_backward(NULL, dinp0, dw0, NULL, dout, inp, w, N, C, OC);
    ft_cpu_gelu_backward(NULL, dinp0, dinp0, pre, ni);
    ft_cpu_bias_backward(NULL, db0, dout, N, OC);
    float *dwz = calloc((size_t)OC * C, sizeof(float)); /* the weight gradient alone (assigned) */
    float *dpre = malloc(sizeof(float) * ni), *ones = malloc(sizeof(float) * ni); /* gelu'(pre), as the fused forward keeps it */
    for (size_t i = 0; i < ni; i++) ones[i] = 1.0f;
    ft_cpu_gelu_backward(NULL, dpre, ones, pre, ni);
    ft_cpu_matmul_bf16_backward(NULL, NULL, dwz, NULL, dout, inp, w, N, C, OC);
    void *pk = aligned_alloc(64, (ft_gemm_bf16_wpack_bytes(OC, C) + 63) / 64 * 64);
    ft_gemm_bf16_wpack_init(pk, OC, C);
    for (int v = 0; v < 16; v++) { /* fused / not, with / without the pack, dw accumulated / assigned, pre / gelu'(pre) */
        int fuse = v & 1, packed = v & 2, assign = v & 4, deriv = v & 8;
        ft__gemm_bf16_set_fuse(fuse);
        float *dinp = rnd(ni, 16, 1), *dw = assign ? rnd((size_t)OC * C, 17, 9) : dup(dw_init, (size_t)OC * C);
        float *db = dup(db_init, (size_t)OC);
        ft_cpu_matmul_bf16_gelu_backward(NULL, dinp, dw, assign != 0, db, dout, inp, deriv ? dpre : pre, deriv != 0, w,
                                         packed ? pk : NULL, N, C, OC);
        assert_memory_equal(dinp, dinp0, sizeof(float) * ni);
        assert_memory_equal(dw, assign ? dwz : dw0, sizeof(float) * (size_t)OC * C);
        /* the bias gradient: ft_cpu_bias_backward's double sums in its order, so the same bits (a tolerance
         * would do: the contract is the sum) */
        assert_true(rel_err(db, db0, (size_t)OC) <= 1e-6);
        assert_memory_equal(db, db0, sizeof(float) * (size_t)OC);
        free(dinp); free(dw); free(db);
    }
    /* the plain linear backward's fused bias gradient (all its ways: dw and dbias, dbias alone, with the pack, dw
     * assigned) */
    for (int v = 0; v < 4; v++) {
        ft__gemm_bf16_set_fuse(1);
        float *dw = v == 3 ? rnd((size_t)OC * C, 18, 9) : dup(dw_init, (size_t)OC * C), *db = dup(db_init, (size_t)OC);
        if (v == 0) ft_cpu_matmul_bf16_backward(NULL, NULL, dw, db, dout, inp, w, N, C, OC);
        else if (v == 1) ft_cpu_matmul_bf16_backward(NULL, NULL, NULL, db, dout, inp, w, N, C, OC);
        else if (v == 2) ft_cpu_matmul_bf16_wpack_backward(NULL, NULL, dw, db, dout, inp, w, pk, N, C, OC);
        else ft_cpu_matmul_bf16_backward_assign_dw(NULL, NULL, dw, db, dout, inp, w, NULL, N, C, OC);
        if (v != 1) assert_memory_equal(dw, v == 3 ? dwz : dw0, sizeof(float) * (size_t)OC * C);
        assert_memory_equal(db, db0, sizeof(float) * (size_t)OC);
        free(dw); free(db);
    }
    ft__gemm_bf16_set_fuse(1);
    free(pk);
    free(pre); free(inp); free(w); free(dout); free(dw_init); free(db_init); free(dinp0); free(dw0); free(db0); free(dwz); free(dpre); free(ones);
}

static void test_gelu_forward_fused(void **st) { (void)st; isa_each(fwd_shape); }
static void test_gelu_backward_bias_fused(void **st) { (void)st; isa_each(bwd_shape); }

/* ------------------------------------------------------------ the decoder */

static int g_fwd_calls, g_bwd_calls, g_deriv_calls;
static ft_backend g_counting, g_plain; /* cpu-bf16 counting the fused calls; cpu-bf16 without them */
static void count_fwd(void *ctx, float *out, float *act, const float *inp, const float *w, void *pack, const float *bias, int N, int C,
                      int OC, int deriv) {
    g_fwd_calls++;
    g_deriv_calls += deriv;
    ft_backend_cpu_bf16()->matmul_gelu_forward(ctx, out, act, inp, w, pack, bias, N, C, OC, deriv);
}
static void count_bwd(void *ctx, float *dinp, float *dw, int assign_dw, float *dbias, const float *dout, const float *inp,
                      const float *pre, int deriv, const float *w, void *pack, int N, int C, int OC) {
    g_bwd_calls++;
    g_deriv_calls += deriv;
    ft_backend_cpu_bf16()->matmul_gelu_backward(ctx, dinp, dw, assign_dw, dbias, dout, inp, pre, deriv, w, pack, N, C, OC);
}

static const char *k_gpt2 = "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"vocab_size\":301,\"n_positions\":64,"
                            "\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0.1,"
                            "\"embd_pdrop\":0.1,\"attn_pdrop\":0.1}";

typedef struct { float loss; float *grads; size_t n; } run_out;

/* modules in a comma-separated target list */
static int count_targets(const char *t) {
    int n = 1;
    for (; *t; t++) n += *t == ',';
    return n;
}

/* one forward + backward of the small GPT-2 (seed 5, training mode) with the fusion on or off */
static run_out run(const ft_backend *be, const char *lora_targets, ft_recompute rc, int fuse) {
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, k_gpt2, "test"), FT_OK);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &cfg, 5, be), FT_OK);
    int nb = 0; /* adapters' B matrices set */
    if (lora_targets) {
        ft_lora_config lc = ft_lora_default_config();
        lc.r = 4;
        snprintf(lc.targets, sizeof lc.targets, "%s", lora_targets);
        assert_int_equal(ft_model_add_lora(m, &lc, 9), FT_OK);
        /* B starts at zero: make the adapters' contribution non-zero */
        for (int i = 0; i < ft_model_num_params(m); i++) {
            ft_param *p = ft_model_param(m, i);
            size_t ln = strlen(p->name);
            if (p->trainable && !strncmp(p->name, "lora.", 5) && ln > 2 && !strcmp(p->name + ln - 2, ".B")) {
                float *r = rnd((size_t)ft_tensor_numel(&p->t), 21 + (unsigned)i, 0.05f);
                memcpy(p->t.data, r, ft_tensor_nbytes(&p->t));
                free(r);
                nb++;
            }
        }
    }
    ft_model_set_recompute(m, rc);
    ft_model_set_training(m, 1, 1234);
    ft__gemm_bf16_set_fuse(fuse);
    const int B = 2, T = 40;
    int ids[B * T + 1];
    for (int i = 0; i <= B * T; i++) ids[i] = (i * 37 + 5) % cfg.vocab_size;
    run_out r = {0};
    assert_int_equal(ft_model_forward(m, ids, ids + 1, NULL, NULL, B, T, &r.loss), FT_OK);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);
    assert_int_equal(ft_model_backward(m, 0.0f), FT_OK);
    ft__gemm_bf16_set_fuse(1);
    for (int i = 0; i < ft_model_num_params(m); i++)
        if (ft_model_param(m, i)->grad) r.n += (size_t)ft_tensor_numel(&ft_model_param(m, i)->t);
    r.grads = malloc(sizeof(float) * (r.n ? r.n : 1));
    size_t o = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (!p->grad) continue;
        size_t k = (size_t)ft_tensor_numel(&p->t);
        memcpy(r.grads + o, p->grad, sizeof(float) * k);
        o += k;
    }
    assert_int_equal(nb, lora_targets ? 2 * count_targets(lora_targets) : 0);
    ft_model_free(m);
    return r;
}

/* fusion on vs off, and the table without the fused members (the decoder's unfused calls): the same loss and
 * gradients; the fused members called fwd / bwd times (the decoder's choice, either way of the switch) */
static void same(const char *lora_targets, ft_recompute rc, int fwd, int bwd, int deriv) {
    g_fwd_calls = g_bwd_calls = g_deriv_calls = 0;
    run_out plain = run(&g_plain, lora_targets, rc, 1);
    assert_int_equal(g_fwd_calls + g_bwd_calls, 0);
    run_out off = run(&g_counting, lora_targets, rc, 0);
    int f0 = g_fwd_calls, b0 = g_bwd_calls, d0 = g_deriv_calls; /* the members run, unfused inside */
    g_fwd_calls = g_bwd_calls = g_deriv_calls = 0;
    run_out on = run(&g_counting, lora_targets, rc, 1);
    assert_int_equal(g_fwd_calls, fwd);
    assert_int_equal(g_bwd_calls, bwd);
    assert_int_equal(f0, fwd);
    assert_int_equal(b0, bwd);
    assert_int_equal(g_deriv_calls, deriv);
    assert_int_equal(d0, deriv);
    assert_true(isfinite(on.loss) && on.loss > 0);
    assert_int_equal(on.n, off.n);
    assert_true(on.n > 0);
    assert_true(rel_err(on.grads, off.grads, on.n) <= 1e-6);
    assert_memory_equal(&on.loss, &off.loss, sizeof(float));
    assert_memory_equal(on.grads, off.grads, sizeof(float) * on.n);
    assert_int_equal(plain.n, on.n);
    assert_memory_equal(&on.loss, &plain.loss, sizeof(float));
    assert_memory_equal(on.grads, plain.grads, sizeof(float) * on.n);
    free(plain.grads);
    free(on.grads);
    free(off.grads);
}

static int skip_no_avx512(void) { return ft_bf16_isa_best() == FT_BF16_ISA_SCALAR; }

static void test_gpt2_fused(void **st) {
    (void)st;
    if (skip_no_avx512()) skip();
    same(NULL, FT_RECOMPUTE_NONE, 2, 2, 4);
}
static void test_gpt2_fused_recompute(void **st) {
    (void)st;
    if (skip_no_avx512()) skip();
    same(NULL, FT_RECOMPUTE_ATTENTION, 2, 2, 4);
    same(NULL, FT_RECOMPUTE_BLOCK, 4, 2, 6); /* the forward again in the backward */
}
static void test_gpt2_lora_mlp(void **st) {
    (void)st;
    if (skip_no_avx512()) skip();
    same("mlp.c_proj", FT_RECOMPUTE_NONE, 2, 0, 0); /* LoRA adds to dfch_act: the GELU backward stays apart, fch keeps pre */
    same("c_fc", FT_RECOMPUTE_NONE, 0, 2, 0);       /* LoRA adds to fch: the GELU forward stays apart */
    same("c_fc,mlp.c_proj", FT_RECOMPUTE_BLOCK, 0, 0, 0);
    same("c_attn", FT_RECOMPUTE_BLOCK, 4, 2, 6);
}

static int setup(void **st) {
    (void)st;
    g_counting = *ft_backend_cpu_bf16();
    g_counting.matmul_gelu_forward = count_fwd;
    g_counting.matmul_gelu_backward = count_bwd;
    g_plain = *ft_backend_cpu_bf16();
    g_plain.matmul_gelu_forward = NULL;
    g_plain.matmul_gelu_backward = NULL;
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gelu_forward_fused),
        cmocka_unit_test(test_gelu_backward_bias_fused),
        cmocka_unit_test(test_gpt2_fused),
        cmocka_unit_test(test_gpt2_fused_recompute),
        cmocka_unit_test(test_gpt2_lora_mlp),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
