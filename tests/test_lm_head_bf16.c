/* test_lm_head_bf16.c — the LM head's logit gradients handed to the bf16 GEMMs as bf16 (issue 16):
 *  - ft_cpu_gemm_bf16_a16 (A given as bf16 values) against ft_cpu_gemm_bf16 on the f32 A those values round
 *    from: the SAME BITS, for both AVX-512 kernels and the scalar fallback, A transposed and not, M and N that
 *    12 / 32 do not divide, odd K, several K blocks, M and N cut into chunks (a one-byte pack budget), padded
 *    leading dimensions, accumulating or not, with a bias; ft_ref_gemm_bf16_a16 against ft_ref_gemm_bf16;
 *  - ft_cpu_matmul_bf16_backward_dout16 (the cpu-bf16 table's matmul_backward_dout16) against the f32-dout
 *    layer, with and without a weight pack: dinp and dW the same bits, dbias the column sums of the bf16 values;
 *  - ft_cpu_crossentropy_forward_backward_bf16: losses the same bits as the f32 kernel's, each row's gradient
 *    the bf16 rounding (ft_bf16_round) of the f32 kernel's, in the first half of the row's bytes; ignored rows
 *    zero; label smoothing; rows of several chunks and of more than 256 chunks;
 *  - a small GPT-2 (tied head) and Llama (untied head) in bf16: the loss and every gradient with the bf16 path
 *    and with the f32 one (FT_LM_HEAD_DLOGITS=f32) are the SAME BITS (the GEMMs round the f32 gradient to the
 *    very bf16 values the cross-entropy stores), with ignored targets (rows of zeros), the training head over
 *    the rows with a target only, label smoothing, weight packs (the head's pack read by the backward) and
 *    blocked GEMMs; the logits buffer after the backward holds the bf16 gradient rows (the path was taken);
 *  - only the cpu-bf16 table has the members. */
#include "testutil.h"

#include "finetune/backend.h"
#include "finetune/gemm_bf16.h"
#include "finetune/model.h"
#include "finetune/ops.h"
#include "finetune/optim.h"
#include "finetune/rng.h"
#include "finetune/status.h"
#include "ops/cpu/gemm_bf16_internal.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *randv(ft_rng *r, size_t n, float sd) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = sd * ft_rng_normal(r);
    return x;
}

static uint16_t *round16(const float *x, size_t n) {
    uint16_t *h = malloc((n ? n : 1) * sizeof(uint16_t));
    assert_non_null(h);
    for (size_t i = 0; i < n; i++) h[i] = ft_bf16_round(x[i]);
    return h;
}

static int first_diff(const char *what, const float *a, const float *b, size_t n) {
    if (memcmp(a, b, n * sizeof(float)) == 0) return 0;
    size_t i = 0;
    while (i < n && memcmp(a + i, b + i, sizeof(float)) == 0) i++;
    fprintf(stderr, "%s: first difference at %zu of %zu: %.9g vs %.9g\n", what, i, n, a[i], b[i]);
    return 1;
}

/* ------------------------------------------------------------ the GEMM on a bf16 A */

/* op(A) [M,K] (f32, and its bf16 rounding), op(B) [K,N]; the bf16-A product against the f32-A one, CPU and reference */
static int gemm_case(ft_rng *r, int M, int N, int K, int ta, int tb, int acc, int use_bias, int threads) {
    int lda = (ta ? M : K) + 5, ldb = (tb ? K : N) + 1, ldc = N + 3;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = randv(r, na, 1.0f), *B = randv(r, nb, 1.0f), *bias = randv(r, (size_t)N, 1.0f);
    uint16_t *A16 = round16(A, na);
    float *C0 = randv(r, nc, 1.0f), *C1 = malloc(nc * sizeof(float));
    memcpy(C1, C0, nc * sizeof(float));
    int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    ft_cpu_gemm_bf16(C0, ldc, A, lda, ta, B, ldb, tb, M, N, K, acc, use_bias ? bias : NULL);
    ft_cpu_gemm_bf16_a16(C1, ldc, A16, lda, ta, B, ldb, tb, M, N, K, acc, use_bias ? bias : NULL);
    omp_set_num_threads(saved);
    char what[160];
    snprintf(what, sizeof what, "gemm a16 isa=%s M=%d N=%d K=%d ta=%d tb=%d acc=%d bias=%d threads=%d",
             ft_bf16_isa_name(ft_bf16_isa_get()), M, N, K, ta, tb, acc, use_bias, threads);
    int bad = first_diff(what, C1, C0, nc);
    free(A); free(B); free(bias); free(A16); free(C0); free(C1);
    return bad;
}

static void test_gemm_a16(void **state) {
    (void)state;
    static const int dims[][4] = { /* M, N, K, one-byte pack budget */
        {1, 1, 1, 0}, {13, 31, 3, 0}, {12, 32, 64, 0}, {37, 45, 257, 0}, {100, 97, 301, 0}, {25, 70, 3101, 0}, /* 3 K blocks */
        {790, 24, 201, 1}, /* M chunks (B packed once) */ {20, 790, 261, 1}, /* N chunks */
        {790, 24, 301, 1}, /* M too large with several K blocks: short blocks */ {50, 70, 701, 1}};
    ft_bf16_isa saved = ft_bf16_isa_get();
    ft_rng r;
    ft_rng_seed(&r, 11);
    int bad = 0, ran = 0;
    for (int isa = FT_BF16_ISA_SCALAR; isa <= FT_BF16_ISA_AVX512BF16; isa++) {
        if (ft_bf16_isa_best() < (ft_bf16_isa)isa) continue;
        assert_int_equal(ft_bf16_isa_set((ft_bf16_isa)isa), FT_OK);
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
            if (isa == FT_BF16_ISA_SCALAR && (size_t)dims[d][0] * dims[d][1] * dims[d][2] > 2000000) continue;
            ft__gemm_bf16_set_pack_budget(dims[d][3] ? 1 : 0);
            for (int v = 0; v < 8; v++, ran++)
                bad += gemm_case(&r, dims[d][0], dims[d][1], dims[d][2], v & 1, (v >> 1) & 1, (v >> 2) & 1, !((v >> 2) & 1),
                                 (d + v) % 2 ? 1 : 2);
        }
    }
    ft__gemm_bf16_set_pack_budget(0);
    assert_int_equal(ft_bf16_isa_set(saved), FT_OK);
    assert_true(ran > 0);
    assert_int_equal(bad, 0);
}

/* the reference on bf16 A against the reference on f32 A (including an A with a subnormal, which both read as 0) */
static void test_ref_a16(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 12);
    int bad = 0;
    for (int ta = 0; ta <= 1; ta++) {
        int M = 7, N = 9, K = 13, lda = (ta ? M : K) + 2, ldc = N;
        size_t na = (size_t)(ta ? K : M) * lda;
        float *A = randv(&r, na, 1.0f), *B = randv(&r, (size_t)K * N, 1.0f), *bias = randv(&r, (size_t)N, 1.0f);
        A[3] = 1e-39f; /* subnormal: rounds to 0 */
        uint16_t *A16 = round16(A, na);
        float C0[7 * 9], C1[7 * 9];
        ft_ref_gemm_bf16(C0, ldc, A, lda, ta, B, N, 0, M, N, K, 0, bias);
        ft_ref_gemm_bf16_a16(C1, ldc, A16, lda, ta, B, N, 0, M, N, K, 0, bias);
        bad += first_diff("ref a16", C1, C0, (size_t)M * N);
        free(A); free(B); free(bias); free(A16);
    }
    assert_int_equal(bad, 0);
}

/* the linear layer's backward on a bf16 dout (ld: its row stride, > OC) against the f32-dout one, with and without a pack */
static int layer_case(ft_rng *r, int N, int C, int OC, int use_pack, int tiny) {
    int ldd = 2 * OC + 6; /* as the logits buffer: a row stride of (more than) 2 OC bf16 values */
    float *dout = randv(r, (size_t)N * OC, 0.01f), *inp = randv(r, (size_t)N * C, 1.0f), *w = randv(r, (size_t)OC * C, 0.05f);
    uint16_t *d16 = calloc((size_t)N * ldd, sizeof(uint16_t));
    float *dout_r = malloc(sizeof(float) * (size_t)N * OC); /* the bf16 values as f32, for the bias reference */
    assert_true(d16 && dout_r);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            uint16_t h = ft_bf16_round(dout[(size_t)n * OC + o]);
            d16[(size_t)n * ldd + o] = h;
            dout_r[(size_t)n * OC + o] = ft_bf16_to_f32(h);
        }
    float *dx0 = calloc((size_t)N * C, sizeof(float)), *dx1 = calloc((size_t)N * C, sizeof(float));
    float *dw0 = randv(r, (size_t)OC * C, 1.0f), *dw1 = malloc(sizeof(float) * (size_t)OC * C);
    float *db0 = randv(r, (size_t)OC, 1.0f), *db1 = malloc(sizeof(float) * (size_t)OC), *dbr = malloc(sizeof(float) * (size_t)OC);
    memcpy(dw1, dw0, sizeof(float) * (size_t)OC * C);
    memcpy(db1, db0, sizeof(float) * (size_t)OC);
    memcpy(dbr, db0, sizeof(float) * (size_t)OC);
    void *pk = NULL;
    if (use_pack) {
        pk = aligned_alloc(64, (ft_gemm_bf16_wpack_bytes(OC, C) + 63) / 64 * 64);
        assert_non_null(pk);
        ft_gemm_bf16_wpack_init(pk, OC, C);
    }
    ft__gemm_bf16_set_pack_budget(tiny ? 1 : 0);
    if (pk) ft_cpu_matmul_bf16_wpack_backward(NULL, dx0, dw0, NULL, dout, inp, w, pk, N, C, OC);
    else ft_cpu_matmul_bf16_backward(NULL, dx0, dw0, NULL, dout, inp, w, N, C, OC);
    ft_cpu_bias_backward(NULL, dbr, dout_r, N, OC);
    ft_cpu_matmul_bf16_backward_dout16(NULL, dx1, dw1, db1, d16, ldd, inp, w, pk, N, C, OC);
    ft__gemm_bf16_set_pack_budget(0);
    char what[128];
    snprintf(what, sizeof what, "dout16 N=%d C=%d OC=%d pack=%d tiny=%d", N, C, OC, use_pack, tiny);
    int bad = first_diff(what, dx1, dx0, (size_t)N * C) + first_diff(what, dw1, dw0, (size_t)OC * C) + first_diff(what, db1, dbr, (size_t)OC);
    /* only dinp: dw and dbias untouched */
    memcpy(dw0, dw1, sizeof(float) * (size_t)OC * C);
    ft_cpu_matmul_bf16_backward_dout16(NULL, dx1, NULL, NULL, d16, ldd, inp, w, pk, N, C, OC);
    bad += first_diff("dout16 dinp only", dw1, dw0, (size_t)OC * C);
    free(dout); free(inp); free(w); free(d16); free(dout_r); free(dx0); free(dx1); free(dw0); free(dw1);
    free(db0); free(db1); free(dbr); free(pk);
    return bad;
}

static void test_layer_dout16(void **state) {
    (void)state;
    static const int dims[][4] = { /* N, C, OC, tiny budget */
        {45, 70, 33, 0}, {7, 40, 1601, 0}, {37, 64, 3101, 0}, {200, 40, 1601, 1}, {3, 64, 1, 0}};
    ft_bf16_isa saved = ft_bf16_isa_get();
    ft_rng r;
    ft_rng_seed(&r, 13);
    int bad = 0;
    for (int isa = FT_BF16_ISA_SCALAR; isa <= FT_BF16_ISA_AVX512BF16; isa++) {
        if (ft_bf16_isa_best() < (ft_bf16_isa)isa) continue;
        assert_int_equal(ft_bf16_isa_set((ft_bf16_isa)isa), FT_OK);
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
            for (int p = 0; p <= 1; p++) bad += layer_case(&r, dims[d][0], dims[d][1], dims[d][2], p, dims[d][3]);
    }
    assert_int_equal(ft_bf16_isa_set(saved), FT_OK);
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------ the cross-entropy writing bf16 */

static int ce_case(ft_rng *r, int N, int V, float eps, float sd) {
    float *logits = randv(r, (size_t)N * V, sd), *work = malloc(sizeof(float) * (size_t)N * V);
    float *d32 = malloc(sizeof(float) * (size_t)N * V), *l32 = malloc(sizeof(float) * (size_t)N), *l16 = malloc(sizeof(float) * (size_t)N);
    int *tg = malloc(sizeof(int) * (size_t)N);
    assert_true(work && d32 && l32 && l16 && tg);
    for (int n = 0; n < N; n++) tg[n] = n % 5 == 3 ? FT_IGNORE_INDEX : (int)(ft_rng_u32(r) % (uint32_t)V);
    if (N > 1) tg[1] = V - 1; /* the target in the last (partial) vector of the row */
    memcpy(work, logits, sizeof(float) * (size_t)N * V);
    float scale = 1.0f / (float)N;
    ft_cpu_crossentropy_forward_backward(NULL, l32, d32, logits, tg, N, V, scale, eps, FT_IGNORE_INDEX);
    ft_cpu_crossentropy_forward_backward_bf16(NULL, l16, work, tg, N, V, scale, eps, FT_IGNORE_INDEX);
    char what[96];
    snprintf(what, sizeof what, "ce bf16 N=%d V=%d eps=%g", N, V, eps);
    int bad = first_diff(what, l16, l32, (size_t)N);
    const uint16_t *h = (const uint16_t *)(const void *)work;
    size_t wrong = 0, first = 0;
    for (int n = 0; n < N; n++)
        for (int v = 0; v < V; v++) {
            uint16_t want = ft_bf16_round(d32[(size_t)n * V + v]), got = h[(size_t)n * 2 * V + v];
            if (got != want && !wrong++) first = (size_t)n * V + v;
        }
    if (wrong) fprintf(stderr, "%s: %zu bf16 gradients differ, first at %zu\n", what, wrong, first);
    /* ignored rows are zero, and the gradient is not all zero elsewhere */
    int nonzero = 0;
    for (int n = 0; n < N; n++)
        for (int v = 0; v < V; v++) nonzero += tg[n] != FT_IGNORE_INDEX && h[(size_t)n * 2 * V + v] != 0;
    free(logits); free(work); free(d32); free(l32); free(l16); free(tg);
    return bad + (wrong != 0) + (nonzero == 0 && V > 1); /* one class: a zero gradient */
}

static void test_crossentropy_bf16(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 14);
    int bad = 0;
    static const int dims[][2] = {{1, 1}, {3, 7}, {9, 16}, {11, 301}, {8, 2048}, {6, 5003}, {4, 50257}};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        bad += ce_case(&r, dims[d][0], dims[d][1], 0.0f, 3.0f);
        bad += ce_case(&r, dims[d][0], dims[d][1], 0.1f, 3.0f);
    }
    bad += ce_case(&r, 2, 600001, 0.1f, 2.0f); /* more than 256 chunks of 2048: longer chunks */
    bad += ce_case(&r, 5, 999, 0.0f, 40.0f);   /* peaked: gradients of every size, underflows to 0 */
    assert_int_equal(bad, 0);
}

static void test_tables(void **state) {
    (void)state;
    const ft_backend *b16 = ft_backend_cpu_bf16();
    assert_ptr_equal(b16->crossentropy_forward_backward_bf16, ft_cpu_crossentropy_forward_backward_bf16);
    assert_ptr_equal(b16->matmul_backward_dout16, ft_cpu_matmul_bf16_backward_dout16);
    const ft_backend *others[] = {ft_backend_cpu(), ft_backend_ref(), ft_backend_by_name("ref-bf16")};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_null(others[i]->crossentropy_forward_backward_bf16);
        assert_null(others[i]->matmul_backward_dout16);
    }
}

/* ------------------------------------------------------------ a small model, bf16 path against f32 path */

static const char *k_gpt2 = "{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\",\"vocab_size\":3001,\"n_positions\":64,"
                            "\"n_embd\":64,\"n_layer\":2,\"n_head\":4,\"layer_norm_epsilon\":1e-5,\"resid_pdrop\":0,\"embd_pdrop\":0,\"attn_pdrop\":0}";
static const char *k_llama = "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"vocab_size\":3001,\"hidden_size\":64,"
                             "\"intermediate_size\":96,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                             "\"max_position_embeddings\":64,\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":false}";

typedef struct {
    float loss;
    float *grads;   /* every parameter's gradient, concatenated */
    float *buf;     /* the logits buffer after the backward: [rows, V] floats */
    int rows;
} step_out;

static size_t grads_len(ft_model *m) {
    size_t n = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) n += ft_tensor_numel(&ft_model_param(m, i)->t);
    return n;
}

/* one forward + backward of m with the LM head's gradient in f32 (f32 != 0) or bf16 */
static void step(ft_model *m, int f32, const int *ids, const int *tg, int B, int T, step_out *o) {
    if (f32) setenv("FT_LM_HEAD_DLOGITS", "f32", 1);
    else unsetenv("FT_LM_HEAD_DLOGITS");
    assert_int_equal(ft_model_forward(m, ids, tg, NULL, NULL, B, T, &o->loss), FT_OK);
    o->rows = ft_model_num_targets(m);
    assert_int_equal(ft_model_zero_grad(m), FT_OK);
    assert_int_equal(ft_model_backward(m, 0.0f), FT_OK);
    unsetenv("FT_LM_HEAD_DLOGITS");
    o->grads = malloc(sizeof(float) * grads_len(m));
    size_t off = 0;
    for (int i = 0; i < ft_model_num_params(m); i++) {
        const ft_param *p = ft_model_param(m, i);
        size_t n = ft_tensor_numel(&p->t);
        if (p->grad) memcpy(o->grads + off, p->grad, sizeof(float) * n);
        else memset(o->grads + off, 0, sizeof(float) * n);
        off += n;
    }
}

/* the same step both ways: loss and gradients the same bits; the f32 step's logits buffer holds the f32 gradient of
 * `rows` rows, the bf16 step's their bf16 roundings in the first half of each row's bytes */
static void same_step(const char *json, int training, float eps, int ignored, int prepack, int tiny) {
    ft_model_config cfg;
    assert_int_equal(ft_model_config_from_json(&cfg, json, "test"), FT_OK);
    ft_model *m;
    assert_int_equal(ft_model_create_random(&m, &cfg, 3, ft_backend_cpu_bf16()), FT_OK);
    ft_optimizer *o = NULL;
    if (prepack) {
        ft_optim_params op = ft_optim_default_params();
        assert_int_equal(ft_optim_create(&o, m, &op), FT_OK);
        assert_int_equal(ft_optim_set_prepack(o, 1), FT_OK);
    }
    if (training) ft_model_set_training(m, 1, 7);
    ft_model_set_label_smoothing(m, eps);
    enum { B = 2, T = 24 };
    int ids[B * T], tg[B * T];
    for (int i = 0; i < B * T; i++) {
        ids[i] = (i * 37 + 5) % cfg.vocab_size;
        tg[i] = ignored && (i % 4 == 1 || i < 3) ? FT_IGNORE_INDEX : (i * 53 + 11) % cfg.vocab_size;
    }
    tg[B * T - 1] = cfg.vocab_size - 1;
    ft__gemm_bf16_set_pack_budget(tiny ? 1 : 0);
    step_out a, b;
    step(m, 1, ids, tg, B, T, &a);
    size_t rows = training && ignored ? (size_t)a.rows : (size_t)B * T, V = (size_t)cfg.vocab_size;
    float *d32 = malloc(sizeof(float) * rows * V);
    memcpy(d32, ft_model_logits(m), sizeof(float) * rows * V);
    step(m, 0, ids, tg, B, T, &b);
    ft__gemm_bf16_set_pack_budget(0);
    char what[128];
    snprintf(what, sizeof what, "%s training=%d eps=%g ignored=%d prepack=%d tiny=%d", cfg.arch == FT_ARCH_GPT2 ? "gpt2" : "llama",
             training, eps, ignored, prepack, tiny);
    assert_memory_equal(&a.loss, &b.loss, sizeof a.loss);
    assert_int_equal(first_diff(what, b.grads, a.grads, grads_len(m)), 0);
    /* the bf16 path was taken: the buffer holds bf16 rows at a stride of 2V */
    const uint16_t *h = (const uint16_t *)(const void *)ft_model_logits(m);
    size_t wrong = 0, nz = 0;
    for (size_t n = 0; n < rows; n++)
        for (size_t v = 0; v < V; v++) {
            wrong += h[n * 2 * V + v] != ft_bf16_round(d32[n * V + v]);
            nz += d32[n * V + v] != 0.0f;
        }
    if (wrong) fprintf(stderr, "%s: %zu bf16 gradients differ from the f32 ones\n", what, wrong);
    assert_int_equal(wrong, 0);
    assert_true(nz > 0);
    /* and the head's weight gradient is not zero (the comparison compared something) */
    const ft_param *hw = ft_model_param(m, 0); /* wte: the tied head, or the embedding (Llama) */
    int nzg = 0;
    for (size_t i = 0; i < (size_t)ft_tensor_numel(&hw->t) && !nzg; i++) nzg = hw->grad[i] != 0.0f;
    assert_true(nzg);
    free(a.grads); free(b.grads); free(d32);
    ft_optim_free(o);
    ft_model_free(m);
}

static void skip_scalar(void) {
    if (ft_bf16_isa_best() == FT_BF16_ISA_SCALAR) skip();
}
static void test_gpt2_eval_ignored(void **s) { (void)s; skip_scalar(); same_step(k_gpt2, 0, 0.0f, 1, 0, 0); }
static void test_gpt2_train_smoothing(void **s) { (void)s; skip_scalar(); same_step(k_gpt2, 1, 0.1f, 1, 0, 0); }
static void test_gpt2_packs_blocked(void **s) { (void)s; skip_scalar(); same_step(k_gpt2, 1, 0.0f, 0, 1, 1); }
static void test_llama_eval_ignored(void **s) { (void)s; skip_scalar(); same_step(k_llama, 0, 0.1f, 1, 0, 1); }
static void test_llama_train_packs(void **s) { (void)s; skip_scalar(); same_step(k_llama, 1, 0.1f, 1, 1, 0); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_a16),
        cmocka_unit_test(test_ref_a16),
        cmocka_unit_test(test_layer_dout16),
        cmocka_unit_test(test_crossentropy_bf16),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_gpt2_eval_ignored),
        cmocka_unit_test(test_gpt2_train_smoothing),
        cmocka_unit_test(test_gpt2_packs_blocked),
        cmocka_unit_test(test_llama_eval_ignored),
        cmocka_unit_test(test_llama_train_packs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
