/* test_ops_train.c — the kernels that replace host loops of model and trainer code (ops.h,
 * FT_UPDATE_OPS_DECLARE, bias_backward, and the LoRA merge through matmul_acc_backward): each optimised
 * CPU version against its scalar reference (bit for bit), against the host loop it replaces (bit for
 * bit where the summation order is the same), and run with 1 thread and with all threads (same bits). */
#include "testutil.h"

#include "finetune/arena.h"
#include "finetune/backend.h"
#include "finetune/ops.h"
#include "finetune/optim.h"
#include "finetune/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static void *g_mem[64];
static int g_nmem;
static void *mem(size_t nbytes) {
    void *p = malloc(nbytes ? nbytes : 1);
    assert_non_null(p);
    assert_true(g_nmem < 64);
    g_mem[g_nmem++] = p;
    return p;
}
static void mem_free_all(void) {
    while (g_nmem > 0) free(g_mem[--g_nmem]);
}
static float *randn(ft_rng *r, size_t n, float sd, float mu) {
    float *x = mem(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = mu + sd * ft_rng_normal(r);
    return x;
}
static float *copy(const float *src, size_t n) {
    float *x = mem(n * sizeof(float));
    memcpy(x, src, n * sizeof(float));
    return x;
}
static int same(const char *name, const void *a, const void *b, size_t nbytes) {
    int ok = memcmp(a, b, nbytes) == 0;
    printf("  %-58s bytes=%-8zu %s\n", name, nbytes, ok ? "bit-identical OK" : "DIFFERENT FAIL");
    return ok;
}
static int same_d(const char *name, double a, double b) {
    int ok = memcmp(&a, &b, sizeof a) == 0;
    printf("  %-58s %.17g vs %.17g %s\n", name, a, b, ok ? "bit-identical OK" : "DIFFERENT FAIL");
    return ok;
}

/* ------------------------------------------------------------------ bias_backward */
static void check_bias(int N, int OC, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("bias_backward N=%d OC=%d\n", N, OC);
    float *dout = randn(&r, (size_t)N * OC, 1, 0), *g0 = randn(&r, OC, 1, 0);
    float *d_ref = copy(g0, OC), *d_cpu = copy(g0, OC), *d_one = copy(g0, OC), *d_loop = copy(g0, OC);
    ft_ref_bias_backward(NULL, d_ref, dout, N, OC);
    ft_cpu_bias_backward(NULL, d_cpu, dout, N, OC);
    int threads = ft_get_threads();
    ft_set_threads(1);
    ft_cpu_bias_backward(NULL, d_one, dout, N, OC);
    ft_set_threads(threads);
    /* the host loop it replaces (decoder.c ft__linear_backward, quantized path): float sums in row order */
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) d_loop[o] += dout[(size_t)n * OC + o];
    assert_true(same("bias_backward cpu vs ref (+= onto G0)", d_cpu, d_ref, (size_t)OC * 4));
    assert_true(same("bias_backward cpu 1 thread vs all threads", d_one, d_cpu, (size_t)OC * 4));
    assert_true(ft_check_close("bias_backward vs the float host loop", d_cpu, d_loop, OC, 1e-5));
    mem_free_all();
}

static void test_bias_backward(void **state) {
    (void)state;
    check_bias(1, 1, 1);
    check_bias(7, 13, 2);
    check_bias(64, 130, 3);
    check_bias(1024, 769, 4); /* parallel, a partial last column block */
}

/* ------------------------------------------------------------------ kv_cache_write */
static void test_kv_cache_write(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 11);
    int NH = 6, NKV = 2, HS = 8, QKV = (NH + 2 * NKV) * HS, KV = NKV * HS, AC = NH * HS;
    int slots = 3, Tm = 40, n = 37, ldc = KV;
    size_t ncache = (size_t)slots * Tm * ldc;
    float *qkv = randn(&r, (size_t)n * QKV, 1, 0);
    float *k0 = randn(&r, ncache, 1, 0), *v0 = randn(&r, ncache, 1, 0);
    /* contiguous positions pos0.. of slot 1 (decode_chunk), through row0 */
    int pos0 = 2, row0 = 1 * Tm + pos0;
    float *kr = copy(k0, ncache), *vr = copy(v0, ncache), *kc = copy(k0, ncache), *vc = copy(v0, ncache);
    float *ke = copy(k0, ncache), *ve = copy(v0, ncache);
    ft_ref_kv_cache_write(NULL, kr, vr, ldc, qkv + AC, qkv + AC + KV, QKV, NULL, row0, n, KV);
    ft_cpu_kv_cache_write(NULL, kc, vc, ldc, qkv + AC, qkv + AC + KV, QKV, NULL, row0, n, KV);
    for (int i = 0; i < n; i++) { /* the memcpy loop of decode_chunk */
        memcpy(ke + (size_t)(row0 + i) * KV, qkv + (size_t)i * QKV + AC, sizeof(float) * KV);
        memcpy(ve + (size_t)(row0 + i) * KV, qkv + (size_t)i * QKV + AC + KV, sizeof(float) * KV);
    }
    printf("kv_cache_write n=%d KV=%d into slot 1 at %d (row0), and scattered over 3 slots (rows[])\n", n, KV, pos0);
    assert_true(same("kv_cache_write row0: ref vs the memcpy loop (k)", kr, ke, ncache * 4));
    assert_true(same("kv_cache_write row0: ref vs the memcpy loop (v)", vr, ve, ncache * 4));
    assert_true(same("kv_cache_write row0: cpu vs ref (k)", kc, kr, ncache * 4));
    assert_true(same("kv_cache_write row0: cpu vs ref (v)", vc, vr, ncache * 4));
    /* multi-slot: row i of the batch goes to slot i % 3 at position i / 3 + 5 */
    int *rows = mem((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) rows[i] = (i % slots) * Tm + i / slots + 5;
    float *kr2 = copy(k0, ncache), *vr2 = copy(v0, ncache), *kc2 = copy(k0, ncache), *vc2 = copy(v0, ncache);
    ft_ref_kv_cache_write(NULL, kr2, vr2, ldc, qkv + AC, qkv + AC + KV, QKV, rows, 0, n, KV);
    ft_cpu_kv_cache_write(NULL, kc2, vc2, ldc, qkv + AC, qkv + AC + KV, QKV, rows, 0, n, KV);
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < KV; c++) {
            bad += kr2[(size_t)rows[i] * ldc + c] != qkv[(size_t)i * QKV + AC + c];
            bad += vr2[(size_t)rows[i] * ldc + c] != qkv[(size_t)i * QKV + AC + KV + c];
        }
    size_t untouched = 0;
    for (size_t e = 0; e < ncache; e++) {
        int hit = 0;
        for (int i = 0; i < n && !hit; i++) hit = (size_t)rows[i] == e / ldc;
        if (!hit) { untouched++; bad += kr2[e] != k0[e] || vr2[e] != v0[e]; }
    }
    printf("  rows[]: %d mismatches; %zu cache entries outside the written rows unchanged\n", bad, untouched);
    assert_int_equal(bad, 0);
    assert_true(same("kv_cache_write rows[]: cpu vs ref (k)", kc2, kr2, ncache * 4));
    assert_true(same("kv_cache_write rows[]: cpu vs ref (v)", vc2, vr2, ncache * 4));
    mem_free_all();
}

/* ------------------------------------------------------------------ loss_reduce, sumsq */
static void test_reductions(void **state) {
    (void)state;
    ft_rng r;
    ft_rng_seed(&r, 21);
    size_t sizes[] = {0, 1, 63, 64, 65, 1000, 65537, 1000003};
    int threads = ft_get_threads();
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        size_t n = sizes[si];
        float *x = randn(&r, n, 3, 0.5f);
        printf("reductions n=%zu\n", n);
        double loop = 0; /* ft_model_forward's loss sum */
        for (size_t i = 0; i < n; i++) loop += x[i];
        assert_true(same_d("loss_reduce ref vs the host loop", ft_ref_loss_reduce(NULL, x, n), loop));
        assert_true(same_d("loss_reduce cpu vs ref", ft_cpu_loss_reduce(NULL, x, n), ft_ref_loss_reduce(NULL, x, n)));
        /* ft__params_grad_norm's per-parameter sum: 64 chunks of ceil(n/64), chunk sums in order */
        double part[64] = {0}, old = 0;
        size_t per = (n + 63) / 64;
        for (size_t c = 0; c < 64; c++) {
            size_t a = c * per, b = a + per < n ? a + per : n;
            for (size_t k = a; k < b; k++) part[c] += (double)x[k] * x[k];
            old += part[c];
        }
        double s_ref = ft_ref_sumsq(NULL, x, n), s_cpu = ft_cpu_sumsq(NULL, x, n);
        ft_set_threads(1);
        double s_one = ft_cpu_sumsq(NULL, x, n);
        ft_set_threads(threads);
        assert_true(same_d("sumsq ref vs the grad-norm host loop", s_ref, old));
        assert_true(same_d("sumsq cpu vs ref", s_cpu, s_ref));
        assert_true(same_d("sumsq cpu 1 thread vs all threads", s_one, s_cpu));
        mem_free_all();
    }
}

/* ------------------------------------------------------------------ optimizer updates */
/* The host loops of optim.c before the update kernels, verbatim in their arithmetic: the oracle. */
static void old_update(int kind, float *w, const float *g, float *m1, float *m2, size_t n, const ft_update_params *h) {
    float step = h->lr / h->bc1;
    for (size_t k = 0; k < n; k++) {
        switch (kind) {
        case 0: { /* AdamW */
            float wi = w[k] * (1.0f - h->lr * h->wd);
            float mi = h->beta1 * m1[k] + (1.0f - h->beta1) * g[k];
            float vi = h->beta2 * m2[k] + (1.0f - h->beta2) * g[k] * g[k];
            m1[k] = mi;
            m2[k] = vi;
            w[k] = wi - step * mi / (sqrtf(vi) / h->bc2_sqrt + h->eps);
            break;
        }
        case 1: { /* Adam */
            float gk = g[k] + h->wd * w[k];
            m1[k] = h->beta1 * m1[k] + (1.0f - h->beta1) * gk;
            m2[k] = h->beta2 * m2[k] + (1.0f - h->beta2) * gk * gk;
            w[k] -= step * m1[k] / (sqrtf(m2[k]) / h->bc2_sqrt + h->eps);
            break;
        }
        case 2: { /* SGD, m1 = momentum buffer or NULL */
            float gk = g[k] + h->wd * w[k];
            if (m1) {
                m1[k] = h->first_step ? gk : h->momentum * m1[k] + gk;
                gk = h->nesterov ? gk + h->momentum * m1[k] : m1[k];
            }
            w[k] -= h->lr * gk;
            break;
        }
        case 3: { /* Adagrad */
            float gk = g[k] + h->wd * w[k];
            m1[k] += gk * gk;
            w[k] -= h->lr * gk / (sqrtf(m1[k]) + h->eps);
            break;
        }
        case 4: { /* RMSprop, m2 = momentum buffer or NULL */
            float gk = g[k] + h->wd * w[k];
            m1[k] = h->beta2 * m1[k] + (1.0f - h->beta2) * gk * gk;
            float u = gk / (sqrtf(m1[k]) + h->eps);
            if (m2) { m2[k] = h->momentum * m2[k] + u; u = m2[k]; }
            w[k] -= h->lr * u;
            break;
        }
        }
    }
}

static void run_update(const ft_backend *be, int kind, float *w, const float *g, float *m1, float *m2, size_t n,
                       const ft_update_params *h) {
    switch (kind) {
    case 0: be->adamw_update(be->ctx, w, m1, m2, g, n, h); break;
    case 1: be->adam_update(be->ctx, w, m1, m2, g, n, h); break;
    case 2: be->sgd_update(be->ctx, w, m1, g, n, h); break;
    case 3: be->adagrad_update(be->ctx, w, m1, g, n, h); break;
    case 4: be->rmsprop_update(be->ctx, w, m1, m2, g, n, h); break;
    }
}

static void check_update(int kind, const char *name, int with_buf, int nesterov, size_t n, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("%s n=%zu%s%s, 3 steps with weight decay\n", name, n, with_buf ? " momentum" : "", nesterov ? " nesterov" : "");
    float *w0 = randn(&r, n, 1, 0);
    float *w[3], *a[3], *b[3]; /* 0: old loop, 1: ref, 2: cpu */
    for (int i = 0; i < 3; i++) {
        w[i] = copy(w0, n);
        a[i] = mem(n * 4);
        b[i] = mem(n * 4);
        memset(a[i], 0, n * 4);
        memset(b[i], 0, n * 4);
    }
    int has_b = kind == 0 || kind == 1 || (kind == 4 && with_buf);
    int has_a = kind != 2 || with_buf;
    for (int t = 1; t <= 3; t++) {
        float *g = randn(&r, n, 0.1f, 0);
        ft_update_params h = {.lr = 1e-2f, .wd = 0.1f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .momentum = with_buf ? 0.9f : 0.0f,
                              .bc1 = (float)(1.0 - pow(0.9, t)), .bc2_sqrt = (float)sqrt(1.0 - pow(0.99, t)),
                              .nesterov = nesterov, .first_step = t == 1};
        old_update(kind, w[0], g, has_a ? a[0] : NULL, has_b ? b[0] : NULL, n, &h);
        run_update(ft_backend_ref(), kind, w[1], g, has_a ? a[1] : NULL, has_b ? b[1] : NULL, n, &h);
        run_update(ft_backend_cpu(), kind, w[2], g, has_a ? a[2] : NULL, has_b ? b[2] : NULL, n, &h);
    }
    assert_true(same("  ref vs the old optim.c loop: weights", w[1], w[0], n * 4));
    assert_true(same("  cpu vs ref: weights", w[2], w[1], n * 4));
    if (has_a) assert_true(same("  cpu vs ref: state 1", a[2], a[1], n * 4) && memcmp(a[1], a[0], n * 4) == 0);
    if (has_b) assert_true(same("  cpu vs ref: state 2", b[2], b[1], n * 4) && memcmp(b[1], b[0], n * 4) == 0);
    double moved = 0;
    for (size_t i = 0; i < n; i++) moved = fmax(moved, fabs(w[2][i] - w0[i]));
    printf("  max |w - w0| after 3 steps %.3g\n", moved);
    assert_true(n == 0 || moved > 0);
    mem_free_all();
}

static void test_optim_updates(void **state) {
    (void)state;
    size_t sizes[] = {1, 37, 100003};
    for (int s = 0; s < 3; s++) {
        size_t n = sizes[s];
        check_update(0, "adamw_update", 0, 0, n, 100 + s);
        check_update(1, "adam_update", 0, 0, n, 110 + s);
        check_update(2, "sgd_update", 0, 0, n, 120 + s);
        check_update(2, "sgd_update", 1, 0, n, 130 + s);
        check_update(2, "sgd_update", 1, 1, n, 140 + s);
        check_update(3, "adagrad_update", 0, 0, n, 150 + s);
        check_update(4, "rmsprop_update", 0, 0, n, 160 + s);
        check_update(4, "rmsprop_update", 1, 0, n, 170 + s);
    }
}

/* ------------------------------------------------------------------ LoRA merge */
static void check_merge(int out, int in, int rk, uint64_t seed) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    printf("lora merge W[%d,%d] += scale B[%d,%d] A[%d,%d] via matmul_acc_backward\n", out, in, out, rk, rk, in);
    float scale = 2.0f;
    float *W = randn(&r, (size_t)out * in, 1, 0), *A = randn(&r, (size_t)rk * in, 0.3f, 0), *B = randn(&r, (size_t)out * rk, 0.3f, 0);
    float *w_loop = copy(W, (size_t)out * in), *w_ref = copy(W, (size_t)out * in), *w_cpu = copy(W, (size_t)out * in);
    for (int o = 0; o < out; o++) /* the host loop of ft_model_merge_lora / ft_encoder_merge_lora */
        for (int i = 0; i < in; i++) {
            double s = 0;
            for (int j = 0; j < rk; j++) s += (double)B[(size_t)o * rk + j] * A[(size_t)j * in + i];
            w_loop[(size_t)o * in + i] += (float)(scale * s);
        }
    ft_ref_matmul_acc_backward(NULL, w_ref, NULL, B, rk, NULL, A, out, in, rk, scale);
    ft_cpu_matmul_acc_backward(NULL, w_cpu, NULL, B, rk, NULL, A, out, in, rk, scale);
    assert_true(same("lora merge ref vs the host loop", w_ref, w_loop, (size_t)out * in * 4));
    assert_true(ft_check_close("lora merge cpu vs ref", w_cpu, w_ref, (size_t)out * in, 1e-6));
    mem_free_all();
}

static void test_lora_merge(void **state) {
    (void)state;
    check_merge(1, 1, 1, 201);
    check_merge(13, 7, 4, 202);
    check_merge(96, 64, 8, 203);
    check_merge(768, 768, 16, 204);
}

/* ------------------------------------------------------------------ memory through a backend */
/* A pretend device: the cpu kernels, host memory, and a context that counts what the memory members see. */
typedef struct fake_ctx {
    int allocs, frees, h2d, d2h, syncs;
    size_t bytes;
} fake_ctx;
static void *fake_alloc(void *ctx, size_t n) {
    fake_ctx *c = ctx;
    c->allocs++;
    c->bytes += n;
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (p) memset(p, 0, n);
    return p;
}
static void fake_free(void *ctx, void *p) { ((fake_ctx *)ctx)->frees++; free(p); }
static void fake_h2d(void *ctx, void *d, const void *s, size_t n) { ((fake_ctx *)ctx)->h2d++; memcpy(d, s, n); }
static void fake_d2h(void *ctx, void *d, const void *s, size_t n) { ((fake_ctx *)ctx)->d2h++; memcpy(d, s, n); }
static void fake_sync(void *ctx) { ((fake_ctx *)ctx)->syncs++; }

static void test_backend_memory(void **state) {
    (void)state;
    /* host backends: the helpers fall back to aligned, zero-filled host memory and memcpy */
    float *h = ft_backend_alloc(ft_backend_cpu(), 100 * sizeof(float));
    assert_non_null(h);
    int zero = 1;
    for (int i = 0; i < 100; i++) zero &= h[i] == 0.0f;
    printf("  cpu: ft_backend_alloc 400 B at %p: 64-byte aligned %s, zero-filled %s\n", (void *)h, ((uintptr_t)h % 64) ? "NO" : "yes",
           zero ? "yes" : "NO");
    assert_true(zero && (uintptr_t)h % 64 == 0);
    float src[3] = {1, 2, 3}, back[3];
    ft_backend_to_device(ft_backend_cpu(), h, src, sizeof src);
    ft_backend_to_host(NULL, back, h, sizeof back);
    ft_backend_synchronize(ft_backend_ref());
    assert_true(back[0] == 1 && back[2] == 3);
    ft_backend_free(ft_backend_cpu(), h);
    ft_backend_free(NULL, NULL);

    /* a backend with its own allocator and context */
    fake_ctx fc = {0};
    ft_backend fake = *ft_backend_cpu();
    fake.name = "fake";
    fake.ctx = &fc;
    fake.alloc = fake_alloc;
    fake.free = fake_free;
    fake.to_device = fake_h2d;
    fake.to_host = fake_d2h;
    fake.synchronize = fake_sync;
    void *p = ft_backend_alloc(&fake, 10);
    ft_backend_to_device(&fake, p, src, 8);
    ft_backend_to_host(&fake, back, p, 8);
    ft_backend_synchronize(&fake);
    ft_backend_free(&fake, p);
    ft_arena a;
    assert_int_equal(ft_arena_init_on(&a, 1000, &fake), 0);
    float *x = ft_arena_alloc(&a, 200 * sizeof(float));
    assert_non_null(x);
    assert_true(x[0] == 0.0f && x[199] == 0.0f);
    ft_arena_free(&a);
    printf("  fake: allocs %d (bytes %zu), frees %d, to_device %d, to_host %d, synchronize %d\n", fc.allocs, fc.bytes, fc.frees,
           fc.h2d, fc.d2h, fc.syncs);
    assert_true(fc.allocs == 2 && fc.frees == 2 && fc.h2d == 1 && fc.d2h == 1 && fc.syncs == 1 && fc.bytes == 10 + 1024);
    /* an arena on a host backend is a plain arena */
    assert_int_equal(ft_arena_init_on(&a, 64, ft_backend_cpu()), 0);
    ft_arena_free(&a);

    /* the optimizer's moments come from the backend's allocator, its step runs the backend's kernel */
    fc = (fake_ctx){0};
    float w[5] = {1, -2, 3, -4, 5}, g[5] = {0.5f, 0.5f, -0.5f, 1, 0}, w2[5];
    memcpy(w2, w, sizeof w);
    ft_param prm;
    memset(&prm, 0, sizeof prm);
    snprintf(prm.name, sizeof prm.name, "w");
    prm.t.dtype = FT_F32;
    prm.t.ndim = 1;
    prm.t.shape[0] = 5;
    prm.t.data = w;
    prm.grad = g;
    prm.trainable = 1;
    prm.decay = 1;
    ft_optim_params op = ft_optim_default_params();
    op.lr = 0.1f;
    op.weight_decay = 0.01f;
    ft_optimizer *o;
    assert_int_equal(ft_optim_create_params_on(&o, &prm, 1, &op, &fake), 0);
    assert_int_equal(ft_optim_step(o, 0.1f), 0);
    int allocs = fc.allocs;
    ft_optim_free(o);
    /* the same update by hand through the reference kernel */
    float m[5] = {0}, v[5] = {0};
    ft_update_params hp = {.lr = 0.1f, .wd = 0.01f, .beta1 = op.beta1, .beta2 = op.beta2, .eps = op.eps,
                           .bc1 = (float)(1.0 - pow((double)op.beta1, 1.0)), .bc2_sqrt = (float)sqrt(1.0 - pow((double)op.beta2, 1.0))};
    ft_ref_adamw_update(NULL, w2, m, v, g, 5, &hp);
    printf("  optimizer on the fake backend: %d state allocation(s), %d free(s); first AdamW step %s the reference kernel's\n", allocs,
           fc.frees, memcmp(w, w2, sizeof w) ? "DIFFERS from" : "equals");
    assert_true(allocs == 1 && fc.frees == 1 && memcmp(w, w2, sizeof w) == 0);
}

static void test_table(void **state) {
    (void)state;
    const ft_backend *c = ft_backend_cpu(), *r = ft_backend_ref();
    assert_ptr_equal(c->adamw_update, ft_cpu_adamw_update);
    assert_ptr_equal(r->adamw_update, ft_ref_adamw_update);
    assert_ptr_equal(c->sumsq, ft_cpu_sumsq);
    assert_ptr_equal(c->kv_cache_write, ft_cpu_kv_cache_write);
    assert_ptr_equal(r->bias_backward, ft_ref_bias_backward);
    assert_ptr_equal(r->loss_reduce, ft_ref_loss_reduce);
    printf("  table members set in both backends\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),         cmocka_unit_test(test_bias_backward), cmocka_unit_test(test_kv_cache_write),
        cmocka_unit_test(test_reductions),    cmocka_unit_test(test_optim_updates), cmocka_unit_test(test_lora_merge),
        cmocka_unit_test(test_backend_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
