/* test_grad_assign.c — the decoders' weight gradients assigned by the backward (issue 16; model.h
 * ft_param.grad_pending, backend.h matmul_backward_assign_dw).
 *
 *  - kernels: the cpu and cpu-bf16 "assign dw" backward (with and without a weight pack; the LM head's on bf16 logit
 *    gradients too) give the values of the accumulating backward into a zeroed dw, into a dw full of NaN (never
 *    read), and zeros for N = 0;
 *  - models: after forward / zero_grad / backward, every gradient of a GPT-2 (tied LM head, dropout, a compacted
 *    head) and a Llama (GQA, untied head) equals, as floats, what the old path gives (one memset of every
 *    gradient, then accumulating products: FT__GRAD_ZERO_MEMSET1), on the ref (no assign member: the
 *    clear-then-accumulate fallback), cpu and cpu-bf16 backends, for full training, LoRA, gradient
 *    accumulation over two micro-batches, block recompute, a frozen lower half, weight packs and a micro-batch
 *    without targets. Every gradient buffer is filled with NaN before the zero_grad of the new path, so a
 *    gradient that was neither assigned nor cleared shows as NaN;
 *  - what writes no weight gradient leaves zeros, not the NaN: an input-gradients-only backward
 *    (ft_model_backward_embeds), a failing backward, ft_params_settle_grads and ft_optim_step after a zero_grad
 *    with no backward; a large pending gradient (the threads' streaming stores) cleared exactly, nothing around it. */
#include "testutil.h"
#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/lora.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/optim.h"
#include "finetune/status.h"
#include "models/model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B 2
#define T 12

static const char *k_gpt2 = "{\"model_type\":\"gpt2\",\"vocab_size\":97,\"n_positions\":32,\"n_embd\":64,\"n_layer\":2,\"n_head\":4,"
                            "\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0.1,\"embd_pdrop\":0.1,\"attn_pdrop\":0.1}";
static const char *k_llama = "{\"model_type\":\"llama\",\"vocab_size\":83,\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
                             "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"head_dim\":8,\"max_position_embeddings\":32,"
                             "\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":false,\"rope_theta\":10000.0}";

static int have_bf16(void) { return ft_bf16_isa_best() != FT_BF16_ISA_SCALAR; }

static void fill_nan(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = NAN;
}

/* as floats (-0.0 == 0.0), no NaN on either side; returns the number of differing entries */
static size_t count_diff(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        if (isnan(a[i]) || isnan(b[i]) || a[i] != b[i]) d++;
    return d;
}

/* ------------------------------------------------------------ the kernels */

static void check_kernel(const char *name,
                         void (*acc)(void *, float *, float *, float *, const float *, const float *, const float *, int, int, int),
                         void (*asg)(void *, float *, float *, float *, const float *, const float *, const float *, void *, int, int, int),
                         void *pack, int N, int C, int OC) {
    size_t nw = (size_t)OC * C;
    float *dout = malloc(sizeof(float) * (size_t)(N ? N : 1) * OC), *inp = malloc(sizeof(float) * (size_t)(N ? N : 1) * C);
    float *w = malloc(sizeof(float) * nw), *dw0 = calloc(nw, sizeof(float)), *dw1 = malloc(sizeof(float) * nw);
    float *di0 = malloc(sizeof(float) * (size_t)(N ? N : 1) * C), *di1 = malloc(sizeof(float) * (size_t)(N ? N : 1) * C);
    float *db0 = calloc((size_t)OC, sizeof(float)), *db1 = calloc((size_t)OC, sizeof(float));
    for (int i = 0; i < N * OC; i++) dout[i] = (float)((i * 7919) % 201 - 100) / 97.0f;
    for (int i = 0; i < N * C; i++) inp[i] = (float)((i * 104729) % 173 - 86) / 61.0f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 31) % 59 - 29) / 41.0f;
    if (pack) ft_gemm_bf16_wpack_init(pack, OC, C);
    fill_nan(dw1, nw);
    acc(NULL, N ? di0 : NULL, dw0, db0, dout, inp, w, N, C, OC);
    asg(NULL, N ? di1 : NULL, dw1, db1, dout, inp, w, pack, N, C, OC);
    size_t d = count_diff(dw0, dw1, nw) + count_diff(db0, db1, (size_t)OC) + (N ? count_diff(di0, di1, (size_t)N * C) : 0);
    printf("%-22s N %3d C %3d OC %3d: %zu entries differ\n", name, N, C, OC, d);
    assert_int_equal(d, 0);
    free(dout); free(inp); free(w); free(dw0); free(dw1); free(di0); free(di1); free(db0); free(db1);
}

static void wpack_acc(void *ctx, float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int N,
                      int C, int OC) {
    ft_cpu_matmul_bf16_backward(ctx, dinp, dw, dbias, dout, inp, w, N, C, OC);
}

/* the LM head's backward on bf16 logit gradients (dout [N, OC] as bf16 bits, row stride ldd) */
static void check_dout16(int N, int C, int OC, int packed) {
    int ldd = 2 * OC;
    size_t nw = (size_t)OC * C;
    uint16_t *d16 = calloc((size_t)(N ? N : 1) * ldd, sizeof(uint16_t));
    float *inp = malloc(sizeof(float) * (size_t)(N ? N : 1) * C), *w = malloc(sizeof(float) * nw);
    float *dw0 = calloc(nw, sizeof(float)), *dw1 = malloc(sizeof(float) * nw);
    float *di0 = malloc(sizeof(float) * (size_t)(N ? N : 1) * C), *di1 = malloc(sizeof(float) * (size_t)(N ? N : 1) * C);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) d16[(size_t)n * ldd + o] = ft_bf16_round((float)((n * 131 + o * 7) % 201 - 100) / 97.0f);
    for (int i = 0; i < N * C; i++) inp[i] = (float)((i * 104729) % 173 - 86) / 61.0f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 31) % 59 - 29) / 41.0f;
    void *pk = packed ? aligned_alloc(64, (ft_gemm_bf16_wpack_bytes(OC, C) + 63) / 64 * 64) : NULL;
    if (pk) ft_gemm_bf16_wpack_init(pk, OC, C);
    fill_nan(dw1, nw);
    ft_cpu_matmul_bf16_backward_dout16(NULL, N ? di0 : NULL, dw0, NULL, d16, ldd, inp, w, pk, N, C, OC);
    ft_cpu_matmul_bf16_backward_dout16_assign_dw(NULL, N ? di1 : NULL, dw1, NULL, d16, ldd, inp, w, pk, N, C, OC);
    size_t d = count_diff(dw0, dw1, nw) + (N ? count_diff(di0, di1, (size_t)N * C) : 0);
    printf("%-22s N %3d C %3d OC %3d: %zu entries differ\n", packed ? "cpu-bf16 dout16 pack" : "cpu-bf16 dout16", N, C, OC, d);
    assert_int_equal(d, 0);
    free(pk); free(d16); free(inp); free(w); free(dw0); free(dw1); free(di0); free(di1);
}

static void test_kernels(void **state) {
    (void)state;
    static const int shapes[][3] = {{24, 64, 96}, {7, 33, 50}, {1, 64, 64}, {0, 64, 32}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        check_kernel("cpu", ft_cpu_matmul_backward, ft_cpu_matmul_backward_assign_dw, NULL, N, C, OC);
        if (!have_bf16()) continue;
        check_kernel("cpu-bf16", ft_cpu_matmul_bf16_backward, ft_cpu_matmul_bf16_backward_assign_dw, NULL, N, C, OC);
        void *pk = aligned_alloc(64, (ft_gemm_bf16_wpack_bytes(OC, C) + 63) / 64 * 64);
        check_kernel("cpu-bf16 weight pack", wpack_acc, ft_cpu_matmul_bf16_backward_assign_dw, pk, N, C, OC);
        free(pk);
        check_dout16(N, C, OC, 0);
        check_dout16(N, C, OC, 1);
    }
}

/* ------------------------------------------------------------ the models */

enum { LORA = 1, ACCUM = 2, RECOMPUTE = 4, FROZEN_LOW = 8, PACKS = 16, NO_TARGETS = 32 };

static ft_model *make_model(const char *json, const ft_backend *be, int v) {
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, json, "test"), FT_OK);
    ft_model *m = NULL;
    assert_int_equal(ft_model_create_random(&m, &cfg, 42, be), FT_OK);
    if (v & FROZEN_LOW) assert_true(ft_model_freeze(m, "layers:0,embeddings") > 0);
    if (v & LORA) {
        ft_lora_config lc = ft_lora_default_config();
        lc.r = 4;
        lc.alpha = 8;
        snprintf(lc.targets, sizeof lc.targets, "all-linear");
        assert_int_equal(ft_model_add_lora(m, &lc, 7), FT_OK);
        for (int i = 0; i < ft_model_num_params(m); i++) {   /* B starts at zero: values, so that A gets a gradient */
            ft_param *p = ft_model_param(m, i);
            if (!strstr(p->name, ".B")) continue;
            float *d = p->t.data;
            for (int64_t j = 0; j < ft_tensor_numel(&p->t); j++) d[j] = 0.01f * (float)((j * 37 + i) % 11 - 5);
        }
    }
    if (v & RECOMPUTE) ft_model_set_recompute(m, FT_RECOMPUTE_BLOCK);
    return m;
}

static void fill_grads_nan(ft_model *m) {
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (p->grad) fill_nan(p->grad, (size_t)ft_tensor_numel(&p->t));
    }
}

static size_t grad_floats(ft_model *m) {
    size_t n = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (p->grad) n += (size_t)ft_tensor_numel(&p->t);
    }
    return n;
}

/* every gradient, concatenated ([*n]) */
static float *grads_copy(ft_model *m, size_t *n) {
    *n = grad_floats(m);
    float *g = malloc(sizeof(float) * (*n ? *n : 1)), *o = g;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        if (!p->grad) continue;
        assert_int_equal(p->grad_pending, 0);
        memcpy(o, p->grad, ft_tensor_nbytes(&p->t));
        o += ft_tensor_numel(&p->t);
    }
    return g;
}

/* micro-batch k's ids / targets (some ignored: the compacted head; NO_TARGETS: all of the first) */
static void batch(int k, int V, int v, int *ids, int *tg) {
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 7 + k * 13 + 3) % V;
        tg[i] = i % 5 == 0 || (k == 0 && (v & NO_TARGETS)) ? FT_IGNORE_INDEX : (i * 5 + k + 1) % V;
    }
}

/* one optimizer step's gradients under zero mode `mode` (the gradients filled with NaN before its zero_grad) */
static float *run(const char *json, const ft_backend *be, int v, int mode, size_t *n) {
    ft_model *m = make_model(json, be, v);
    ft_optimizer *o = NULL;
    if (v & PACKS) {
        ft_optim_params op = ft_optim_default_params();
        assert_int_equal(ft_optim_create(&o, m, &op), FT_OK);
        assert_int_equal(ft_optim_set_prepack(o, 1), FT_OK);
    }
    int V = ft_model_get_config(m)->vocab_size, ids[B * T], tg[B * T];
    assert_int_equal(ft_model_zero_grad(m), FT_OK);   /* allocates them */
    fill_grads_nan(m);
    ft__grad_zero_mode_set(mode);
    for (int k = 0; k < (v & ACCUM ? 2 : 1); k++) {
        batch(k, V, v, ids, tg);
        ft_model_set_training(m, 1, 11 + (uint64_t)k);
        float loss;
        assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, B, T, &loss), FT_OK);
        if (k == 0) assert_int_equal(ft_model_zero_grad(m), FT_OK);   /* the second micro-batch accumulates */
        assert_int_equal(ft_model_backward(m, 1.0f / (B * T)), FT_OK);
    }
    ft__grad_zero_mode_set(FT__GRAD_ZERO_ASSIGN);
    float *g = grads_copy(m, n);
    if (o) ft_optim_free(o);
    ft_model_free(m);
    return g;
}

static void check_models(const char *fam, const char *json) {
    const ft_backend *bes[3] = {ft_backend_ref(), ft_backend_cpu(), ft_backend_cpu_bf16()};
    static const int variants[] = {0, LORA, ACCUM, RECOMPUTE, FROZEN_LOW, NO_TARGETS, ACCUM | NO_TARGETS, LORA | ACCUM | RECOMPUTE,
                                   PACKS, PACKS | ACCUM | FROZEN_LOW};
    for (int b = 0; b < 3; b++) {
        if (b == 2 && !have_bf16()) { printf("SKIP: cpu-bf16 (no AVX-512)\n"); continue; }
        for (size_t k = 0; k < sizeof variants / sizeof *variants; k++) {
            int v = variants[k];
            if ((v & PACKS) && b != 2) continue;   /* only cpu-bf16 has weight packs */
            if (b == 0 && v != 0 && v != (LORA | ACCUM | RECOMPUTE) && v != NO_TARGETS) continue;   /* ref: slow; a few */
            size_t n0, n1, n2;
            float *old = run(json, bes[b], v, FT__GRAD_ZERO_MEMSET1, &n0);
            float *par = run(json, bes[b], v, FT__GRAD_ZERO_MEMSET, &n1);
            float *asg = run(json, bes[b], v, FT__GRAD_ZERO_ASSIGN, &n2);
            assert_int_equal(n0, n1);
            assert_int_equal(n0, n2);
            size_t nan = 0, nz = 0;
            for (size_t i = 0; i < n2; i++) { nan += isnan(asg[i]) != 0; nz += asg[i] != 0; }
            size_t d1 = count_diff(old, par, n0), d2 = count_diff(old, asg, n0);
            printf("%-5s %-8s variant %2d: %zu gradients (%zu nonzero), NaN %zu, differing from memset+accumulate: "
                   "parallel memset %zu, assign %zu\n", fam, bes[b]->name, v, n2, nz, nan, d1, d2);
            if ((v & NO_TARGETS) && !(v & ACCUM)) assert_int_equal(nz, 0);   /* no target: every gradient zero */
            else assert_true(nz > n2 / 4);                                   /* the step computed something */
            assert_int_equal(nan, 0);
            assert_int_equal(d1, 0);
            assert_int_equal(d2, 0);
            free(old); free(par); free(asg);
        }
    }
}

static void test_gpt2(void **state) { (void)state; check_models("gpt2", k_gpt2); }
static void test_llama(void **state) { (void)state; check_models("llama", k_llama); }

/* ------------------------------------------------------------ no weight gradient written: zeros */

static void assert_grads_zero(ft_model *m, const char *what) {
    size_t n;
    float *g = grads_copy(m, &n), bad = 0;
    size_t nbad = 0;
    for (size_t i = 0; i < n; i++)
        if (g[i] != 0) { nbad++; bad = g[i]; }
    printf("%-40s %zu gradients, %zu not zero (e.g. %g)\n", what, n, nbad, (double)bad);
    assert_int_equal(nbad, 0);
    free(g);
}

static void test_nothing_written(void **state) {
    (void)state;
    const ft_backend *be = ft_backend_cpu();
    ft_model *m = make_model(k_gpt2, be, 0);
    int V = ft_model_get_config(m)->vocab_size, ids[B * T], tg[B * T];
    batch(0, V, 0, ids, tg);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);

    /* input gradients only (attributions): parameter gradients are not computed; zero after a zero_grad */
    float loss, *dwe = malloc(sizeof(float) * B * T * 64);
    ft_model_set_training(m, 0, 0);
    assert_int_equal(ft_model_forward_embeds(m, ids, tg, NULL, B, T, &loss), FT_OK);
    fill_grads_nan(m);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);
    int pending = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) pending += ft_model_param(m, i)->grad_pending;
    assert_true(pending >= 9);   /* 4 x 2 blocks and the tied head */
    assert_int_equal(ft_model_backward_embeds(m, dwe), FT_OK);
    assert_grads_zero(m, "input gradients only:");

    /* a backward that fails (the forward had no targets) */
    assert_int_equal(ft_model_forward(m, ids, NULL, NULL, NULL, B, T, &loss), FT_OK);
    fill_grads_nan(m);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);
    assert_true(ft_model_backward(m, 0.0f) < 0);
    assert_grads_zero(m, "a failed backward:");

    /* a zero_grad and no backward (a micro-batch without targets in the trainer) */
    fill_grads_nan(m);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);
    ft_params_settle_grads(ft_model_param(m, 0), ft_model_num_params(m));
    assert_grads_zero(m, "ft_params_settle_grads:");

    /* ... and the optimizer right after: the update sees zeros (AdamW, no decay: the weights do not move) */
    ft_optim_params op = ft_optim_default_params();
    ft_optimizer *o;
    assert_int_equal(ft_optim_create(&o, m, &op), FT_OK);
    size_t nw = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) nw += (size_t)ft_tensor_numel(&ft_model_param(m, i)->t);
    float *w0 = malloc(sizeof(float) * nw), *w = w0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        memcpy(w, p->t.data, ft_tensor_nbytes(&p->t));
        w += ft_tensor_numel(&p->t);
    }
    fill_grads_nan(m);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);
    assert_int_equal(ft_optim_step(o, 1e-2f), FT_OK);
    size_t moved = 0;
    w = w0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        ft_param *p = ft_model_param(m, i);
        moved += count_diff(w, p->t.data, (size_t)ft_tensor_numel(&p->t));
        w += ft_tensor_numel(&p->t);
    }
    printf("ft_optim_step after zero_grad: %zu of %zu weights moved\n", moved, nw);
    assert_int_equal(moved, 0);
    assert_grads_zero(m, "ft_optim_step after zero_grad:");
    ft_optim_free(o);
    free(w0);
    free(dwe);
    ft_model_free(m);
}

/* ------------------------------------------------------------ the clearing itself */

/* a pending gradient of 4 MiB and more is cleared by every thread with streaming stores: an unaligned start and
 * an odd length, the floats around it untouched */
static void test_settle_large(void **state) {
    (void)state;
    size_t sizes[] = {((size_t)4 << 20) / sizeof(float) + 13, 1000, ((size_t)9 << 20) / sizeof(float) + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        float *buf = malloc(sizeof(float) * (n + 3));
        fill_nan(buf, n + 3);
        ft_param p;
        memset(&p, 0, sizeof p);
        p.t.dtype = FT_F32;
        p.t.ndim = 1;
        p.t.shape[0] = (int64_t)n;
        p.grad = buf + 1;
        p.grad_pending = 1;
        ft_params_settle_grads(&p, 1);
        size_t nz = 0;
        for (size_t i = 0; i < n; i++) nz += p.grad[i] != 0;
        printf("settle %zu floats: %zu not zero, guards %s\n", n, nz, isnan(buf[0]) && isnan(buf[n + 1]) ? "kept" : "OVERWRITTEN");
        assert_int_equal(nz, 0);
        assert_int_equal(p.grad_pending, 0);
        assert_true(isnan(buf[0]) && isnan(buf[n + 1]) && isnan(buf[n + 2]));
        free(buf);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_gpt2),
        cmocka_unit_test(test_llama),
        cmocka_unit_test(test_nothing_written),
        cmocka_unit_test(test_settle_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
