/* test_ops_grad.c — every backward kernel (reference and CPU) against central finite differences
 * of the reference forward, on small shapes.
 *
 * Objective: J = sum(out * r) accumulated in double, r random (for cross-entropy J = scale * sum of
 * the row losses, whose gradient is exactly what dlogits holds). Each input/weight element x is
 * perturbed to fl(x +- h) and the difference quotient divides by the step actually taken,
 * (double)fl(x+h) - (double)fl(x-h). Two steps (h, h/2) are combined by Richardson extrapolation,
 * D = (4 D(h/2) - D(h)) / 3, which removes the O(h^2) truncation term, so that a large h can be used
 * and the float rounding of the forward's outputs (the noise of an f32 FD) stays ~1e-5 relative.
 * The analytic gradients are computed from zero-initialised parameter-gradient buffers. */
#include "testutil.h"

#include "finetune/ops.h"
#include "finetune/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_TOL 1e-4 /* max |analytic - FD| / max |FD| per tensor */
#define FD_H 3e-2

static void *g_mem[128];
static int g_nmem;
static void *mem(size_t nbytes) {
    void *p = calloc(1, nbytes ? nbytes : 1);
    assert_non_null(p);
    assert_true(g_nmem < 128);
    g_mem[g_nmem++] = p;
    return p;
}
static void mem_free_all(void) {
    while (g_nmem > 0) free(g_mem[--g_nmem]);
}
static float *fmem(size_t n) { return mem(n * sizeof(float)); }
static float *randn(ft_rng *r, size_t n, float sd, float mu) {
    float *x = fmem(n);
    for (size_t i = 0; i < n; i++) x[i] = mu + sd * ft_rng_normal(r);
    return x;
}
static double dot_out(const float *out, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

typedef double (*objective_fn)(void *ctx);

/* Richardson-extrapolated central difference of f with respect to p[i] */
static double fd_grad(objective_fn f, void *ctx, float *p, size_t i, double h) {
    float x = p[i];
    double D[2];
    for (int k = 0; k < 2; k++) {
        double hk = h / (1 << k);
        float xp = (float)(x + hk), xm = (float)(x - hk);
        p[i] = xp;
        double jp = f(ctx);
        p[i] = xm;
        double jm = f(ctx);
        D[k] = (jp - jm) / ((double)xp - (double)xm);
    }
    p[i] = x;
    return (4.0 * D[1] - D[0]) / 3.0;
}

typedef struct fd_param {
    const char *name;
    float *p;           /* the input or weight perturbed */
    size_t n;
    const float *g_ref; /* analytic gradients to check (g_cpu may be NULL) */
    const float *g_cpu;
} fd_param;

static int fd_check(const char *kernel, objective_fn f, void *ctx, const fd_param *ps, int np) {
    int ok = 1;
    char name[128];
    for (int k = 0; k < np; k++) {
        float *num = fmem(ps[k].n);
        for (size_t i = 0; i < ps[k].n; i++) num[i] = (float)fd_grad(f, ctx, ps[k].p, i, FD_H);
        snprintf(name, sizeof name, "%s d%s: ref vs FD", kernel, ps[k].name);
        ok &= ft_check_close(name, ps[k].g_ref, num, ps[k].n, FD_TOL);
        if (ps[k].g_cpu) {
            snprintf(name, sizeof name, "%s d%s: cpu vs FD", kernel, ps[k].name);
            ok &= ft_check_close(name, ps[k].g_cpu, num, ps[k].n, FD_TOL);
        }
    }
    return ok;
}

/* ------------------------------------------------------------------ layernorm / rmsnorm */
typedef struct norm_ctx {
    float *out, *inp, *w, *b, *r, *mean, *rstd;
    int N, C, rms;
} norm_ctx;

static double norm_obj(void *vc) {
    norm_ctx *c = vc;
    if (c->rms) ft_ref_rmsnorm_forward(NULL, c->out, c->rstd, c->inp, c->w, c->N, c->C, 1e-5f);
    else ft_ref_layernorm_forward(NULL, c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C, 1e-5f);
    return dot_out(c->out, c->r, (size_t)c->N * c->C);
}

static void test_norm_grad(void **state) {
    (void)state;
    for (int rms = 0; rms <= 1; rms++) {
        ft_rng rg;
        ft_rng_seed(&rg, 100 + rms);
        int N = 3, C = 13;
        size_t NC = (size_t)N * C;
        norm_ctx c = {fmem(NC), randn(&rg, NC, 1.5f, 0.3f), randn(&rg, C, 0.5f, 1), randn(&rg, C, 1, 0), randn(&rg, NC, 1, 0),
                      fmem(N), fmem(N), N, C, rms};
        printf("%s N=%d C=%d\n", rms ? "rmsnorm" : "layernorm", N, C);
        norm_obj(&c);
        float *di_r = fmem(NC), *dw_r = fmem(C), *db_r = fmem(C), *di_c = fmem(NC), *dw_c = fmem(C), *db_c = fmem(C);
        if (rms) {
            ft_ref_rmsnorm_backward(NULL, di_r, dw_r, c.r, NULL, c.inp, c.w, c.rstd, N, C);
            ft_cpu_rmsnorm_backward(NULL, di_c, dw_c, c.r, NULL, c.inp, c.w, c.rstd, N, C);
        } else {
            ft_ref_layernorm_backward(NULL, di_r, dw_r, db_r, c.r, NULL, c.inp, c.w, c.mean, c.rstd, N, C);
            ft_cpu_layernorm_backward(NULL, di_c, dw_c, db_c, c.r, NULL, c.inp, c.w, c.mean, c.rstd, N, C);
        }
        fd_param ps[3] = {{"inp", c.inp, NC, di_r, di_c}, {"w", c.w, C, dw_r, dw_c}, {"b", c.b, C, db_r, db_c}};
        assert_true(fd_check(rms ? "rmsnorm" : "layernorm", norm_obj, &c, ps, rms ? 2 : 3));
        mem_free_all();
    }
}

/* ------------------------------------------------------------------ matmul / bias_add */
typedef struct mm_ctx {
    float *out, *inp, *w, *bias, *r;
    int N, C, OC;
} mm_ctx;

static double mm_obj(void *vc) {
    mm_ctx *c = vc;
    ft_ref_matmul_forward(NULL, c->out, c->inp, c->w, c->bias, c->N, c->C, c->OC);
    return dot_out(c->out, c->r, (size_t)c->N * c->OC);
}

static double bias_obj(void *vc) {
    mm_ctx *c = vc;
    memcpy(c->out, c->inp, (size_t)c->N * c->OC * sizeof(float));
    ft_ref_bias_add_forward(NULL, c->out, c->bias, c->N, c->OC);
    return dot_out(c->out, c->r, (size_t)c->N * c->OC);
}

static void test_matmul_grad(void **state) {
    (void)state;
    ft_rng rg;
    ft_rng_seed(&rg, 200);
    int N = 4, C = 7, OC = 5;
    mm_ctx c = {fmem((size_t)N * OC), randn(&rg, (size_t)N * C, 1, 0), randn(&rg, (size_t)OC * C, 1, 0), randn(&rg, OC, 1, 0),
                randn(&rg, (size_t)N * OC, 1, 0), N, C, OC};
    printf("matmul N=%d C=%d OC=%d\n", N, C, OC);
    float *di_r = fmem((size_t)N * C), *dw_r = fmem((size_t)OC * C), *db_r = fmem(OC);
    float *di_c = fmem((size_t)N * C), *dw_c = fmem((size_t)OC * C), *db_c = fmem(OC);
    ft_ref_matmul_backward(NULL, di_r, dw_r, db_r, c.r, c.inp, c.w, N, C, OC);
    ft_cpu_matmul_backward(NULL, di_c, dw_c, db_c, c.r, c.inp, c.w, N, C, OC);
    fd_param ps[3] = {{"inp", c.inp, (size_t)N * C, di_r, di_c}, {"w", c.w, (size_t)OC * C, dw_r, dw_c}, {"bias", c.bias, OC, db_r, db_c}};
    assert_true(fd_check("matmul", mm_obj, &c, ps, 3));

    printf("bias_add N=%d OC=%d\n", N, OC);
    mm_ctx cb = {fmem((size_t)N * OC), randn(&rg, (size_t)N * OC, 1, 0), NULL, randn(&rg, OC, 1, 0), randn(&rg, (size_t)N * OC, 1, 0),
                 N, 0, OC};
    float *dbb_r = fmem(OC), *dbb_c = fmem(OC);
    ft_ref_bias_backward(NULL, dbb_r, cb.r, N, OC);
    ft_cpu_bias_backward(NULL, dbb_c, cb.r, N, OC);
    fd_param pb[1] = {{"bias", cb.bias, OC, dbb_r, dbb_c}};
    assert_true(fd_check("bias_add", bias_obj, &cb, pb, 1));
    mem_free_all();
}

/* ------------------------------------------------------------------ gelu / swiglu */
typedef struct act_ctx {
    float *out, *inp, *r;
    int N, H; /* gelu: n = N * H */
    int swiglu;
} act_ctx;

static double act_obj(void *vc) {
    act_ctx *c = vc;
    if (c->swiglu) ft_ref_swiglu_forward(NULL, c->out, c->inp, c->N, c->H);
    else ft_ref_gelu_forward(NULL, c->out, c->inp, (size_t)c->N * c->H);
    return dot_out(c->out, c->r, (size_t)c->N * c->H);
}

static void test_activation_grad(void **state) {
    (void)state;
    ft_rng rg;
    ft_rng_seed(&rg, 300);
    int N = 3, H = 11;
    act_ctx g = {fmem((size_t)N * H), randn(&rg, (size_t)N * H, 2, 0), randn(&rg, (size_t)N * H, 1, 0), N, H, 0};
    printf("gelu n=%d\n", N * H);
    float *dg_r = fmem((size_t)N * H), *dg_c = fmem((size_t)N * H);
    ft_ref_gelu_backward(NULL, dg_r, g.r, g.inp, (size_t)N * H);
    ft_cpu_gelu_backward(NULL, dg_c, g.r, g.inp, (size_t)N * H);
    fd_param pg[1] = {{"inp", g.inp, (size_t)N * H, dg_r, dg_c}};
    assert_true(fd_check("gelu", act_obj, &g, pg, 1));

    act_ctx s = {fmem((size_t)N * H), randn(&rg, (size_t)N * 2 * H, 2, 0), randn(&rg, (size_t)N * H, 1, 0), N, H, 1};
    printf("swiglu N=%d H=%d\n", N, H);
    float *ds_r = fmem((size_t)N * 2 * H), *ds_c = fmem((size_t)N * 2 * H);
    ft_ref_swiglu_backward(NULL, ds_r, s.r, s.inp, N, H);
    ft_cpu_swiglu_backward(NULL, ds_c, s.r, s.inp, N, H);
    fd_param ps[1] = {{"inp", s.inp, (size_t)N * 2 * H, ds_r, ds_c}};
    assert_true(fd_check("swiglu", act_obj, &s, ps, 1));
    mem_free_all();
}

/* ------------------------------------------------------------------ rope */
typedef struct rope_ctx {
    float *out, *inp, *r, *invf;
    int *pos;
    int N, NH, NKV, HS;
} rope_ctx;

static double rope_obj(void *vc) {
    rope_ctx *c = vc;
    size_t n = (size_t)c->N * (c->NH + 2 * c->NKV) * c->HS;
    memcpy(c->out, c->inp, n * sizeof(float));
    ft_ref_rope_forward(NULL, c->out, c->pos, c->invf, c->N, c->NH, c->NKV, c->HS);
    return dot_out(c->out, c->r, n);
}

static void test_rope_grad(void **state) {
    (void)state;
    ft_rng rg;
    ft_rng_seed(&rg, 400);
    int N = 3, NH = 4, NKV = 2, HS = 6;
    size_t n = (size_t)N * (NH + 2 * NKV) * HS;
    rope_ctx c = {fmem(n), randn(&rg, n, 1, 0), randn(&rg, n, 1, 0), fmem(HS / 2), mem(N * sizeof(int)), N, NH, NKV, HS};
    for (int i = 0; i < HS / 2; i++) c.invf[i] = (float)pow(10000.0, -2.0 * i / HS);
    for (int i = 0; i < N; i++) c.pos[i] = 3 + 7 * i;
    printf("rope N=%d NH=%d NKV=%d HS=%d\n", N, NH, NKV, HS);
    float *d_r = fmem(n), *d_c = fmem(n);
    memcpy(d_r, c.r, n * sizeof(float));
    memcpy(d_c, c.r, n * sizeof(float));
    ft_ref_rope_backward(NULL, d_r, c.pos, c.invf, N, NH, NKV, HS);
    ft_cpu_rope_backward(NULL, d_c, c.pos, c.invf, N, NH, NKV, HS);
    fd_param ps[1] = {{"qkv", c.inp, n, d_r, d_c}};
    assert_true(fd_check("rope", rope_obj, &c, ps, 1));
    mem_free_all();
}

/* ------------------------------------------------------------------ attention */
typedef struct att_ctx {
    float *out, *att, *qkv, *r;
    int *seg;
    int B, T, NH, NKV, HS;
} att_ctx;

static double att_obj(void *vc) {
    att_ctx *c = vc;
    ft_ref_attention_forward(NULL, c->out, c->att, c->qkv, c->seg, c->B, c->T, c->NH, c->NKV, c->HS);
    return dot_out(c->out, c->r, (size_t)c->B * c->T * c->NH * c->HS);
}

static void check_attention_grad(int B, int T, int NH, int NKV, int HS, int use_seg, uint64_t seed) {
    ft_rng rg;
    ft_rng_seed(&rg, seed);
    size_t nqkv = (size_t)B * T * (NH + 2 * NKV) * HS, nout = (size_t)B * T * NH * HS, natt = (size_t)B * NH * T * T;
    att_ctx c = {fmem(nout), fmem(natt), randn(&rg, nqkv, 1, 0), randn(&rg, nout, 1, 0), NULL, B, T, NH, NKV, HS};
    if (use_seg) { /* two packed examples per row: positions [0, T/2) and [T/2, T) */
        c.seg = mem((size_t)B * T * sizeof(int));
        for (int i = 0; i < B * T; i++) c.seg[i] = (i % T) >= T / 2;
    }
    printf("attention B=%d T=%d NH=%d NKV=%d HS=%d seg=%s\n", B, T, NH, NKV, HS, use_seg ? "2 segments" : "NULL");
    att_obj(&c);
    float *d_r = fmem(nqkv), *d_c = fmem(nqkv), *scratch = fmem(natt);
    ft_ref_attention_backward(NULL, d_r, scratch, c.r, c.qkv, c.att, c.seg, B, T, NH, NKV, HS);
    ft_cpu_attention_backward(NULL, d_c, scratch, c.r, c.qkv, c.att, c.seg, B, T, NH, NKV, HS);
    fd_param ps[1] = {{"qkv", c.qkv, nqkv, d_r, d_c}};
    assert_true(fd_check("attention", att_obj, &c, ps, 1));
    mem_free_all();
}

static void test_attention_grad(void **state) {
    (void)state;
    check_attention_grad(1, 1, 1, 1, 4, 0, 500);
    check_attention_grad(2, 5, 4, 2, 4, 0, 501);
    check_attention_grad(2, 6, 4, 2, 3, 1, 502);
    check_attention_grad(1, 7, 3, 1, 5, 1, 503);
}

/* ------------------------------------------------------------------ attention family (every mask kind) */
typedef struct attn_ctx {
    float *out, *att, *q, *k, *v, *r;
    ft_attn_mask mask;
    int B, T, NH, NKV, HS, ldq, ldk, ldv;
    float p;
} attn_ctx;

static double attn_obj(void *vc) {
    attn_ctx *c = vc;
    ft_ref_attn_forward(NULL, c->out, c->att, c->q, c->ldq, c->k, c->ldk, c->v, c->ldv, &c->mask, c->B, c->T, c->NH, c->NKV, c->HS, c->p, 77);
    return dot_out(c->out, c->r, (size_t)c->B * c->T * c->NH * c->HS);
}

static void check_attn_grad(int kind, int B, int T, int NH, int NKV, int HS, float p, uint64_t seed) {
    ft_rng rg;
    ft_rng_seed(&rg, seed);
    int ldq = NH * HS + 2, ldk = NKV * HS + 1, ldv = NKV * HS + 3;
    size_t nq = (size_t)B * T * ldq, nk = (size_t)B * T * ldk, nv = (size_t)B * T * ldv, nout = (size_t)B * T * NH * HS;
    attn_ctx c = {fmem(nout), fmem((size_t)B * NH * T * T), randn(&rg, nq, 1, 0), randn(&rg, nk, 1, 0), randn(&rg, nv, 1, 0),
                  randn(&rg, nout, 1, 0), {kind, NULL, NULL}, B, T, NH, NKV, HS, ldq, ldk, ldv, p};
    int *pad = mem((size_t)B * T * sizeof(int)), *seg = mem((size_t)B * T * sizeof(int));
    for (int i = 0; i < B * T; i++) {
        pad[i] = (i % T) == 0 || ft_rng_below(&rg, 100) >= 35; /* key 0 real: no query loses every key */
        seg[i] = (i % T) >= T / 2;                           /* two packed examples per row */
        if ((kind & FT_ATTN_SEGMENTS) && (i % T) == T / 2) pad[i] = 1; /* the second example's first key */
    }
    if (kind & FT_ATTN_PADDING) c.mask.pad = pad;
    if (kind & FT_ATTN_SEGMENTS) c.mask.seg = seg;
    printf("attn family %s%s%s%s B=%d T=%d NH=%d NKV=%d HS=%d p=%.2f, strided q/k/v\n", kind ? "" : "full ",
           kind & FT_ATTN_CAUSAL ? "causal " : "", kind & FT_ATTN_PADDING ? "padding " : "", kind & FT_ATTN_SEGMENTS ? "segments " : "",
           B, T, NH, NKV, HS, p);
    attn_obj(&c);
    float *dq_r = fmem(nq), *dk_r = fmem(nk), *dv_r = fmem(nv), *dq_c = fmem(nq), *dk_c = fmem(nk), *dv_c = fmem(nv);
    memset(dq_r, 0, nq * 4); memset(dk_r, 0, nk * 4); memset(dv_r, 0, nv * 4); /* the columns between rows stay 0 */
    memset(dq_c, 0, nq * 4); memset(dk_c, 0, nk * 4); memset(dv_c, 0, nv * 4);
    ft_ref_attn_backward(NULL, dq_r, dk_r, dv_r, NULL, c.r, c.q, ldq, c.k, ldk, c.v, ldv, c.att, &c.mask, B, T, NH, NKV, HS, p, 77);
    ft_cpu_attn_backward(NULL, dq_c, dk_c, dv_c, NULL, c.r, c.q, ldq, c.k, ldk, c.v, ldv, c.att, &c.mask, B, T, NH, NKV, HS, p, 77);
    fd_param ps[3] = {{"q", c.q, nq, dq_r, dq_c}, {"k", c.k, nk, dk_r, dk_c}, {"v", c.v, nv, dv_r, dv_c}};
    assert_true(fd_check("attn", attn_obj, &c, ps, 3));
    mem_free_all();
}

static void test_attn_family_grad(void **state) {
    (void)state;
    int kinds[] = {0, FT_ATTN_CAUSAL, FT_ATTN_PADDING, FT_ATTN_CAUSAL | FT_ATTN_SEGMENTS, FT_ATTN_CAUSAL | FT_ATTN_PADDING,
                   FT_ATTN_PADDING | FT_ATTN_SEGMENTS, FT_ATTN_CAUSAL | FT_ATTN_PADDING | FT_ATTN_SEGMENTS};
    for (int i = 0; i < 7; i++) check_attn_grad(kinds[i], 2, 6, 4, 2, 4, 0.0f, 600 + i);
    check_attn_grad(FT_ATTN_CAUSAL | FT_ATTN_SEGMENTS, 2, 6, 4, 2, 4, 0.3f, 610); /* fixed dropout masks */
    check_attn_grad(FT_ATTN_PADDING, 2, 5, 2, 2, 4, 0.3f, 611);
}

/* ------------------------------------------------------------------ embedding */
typedef struct emb_ctx {
    float *out, *wte, *wpe, *r;
    int *ids, *pos;
    int N, T, C;
} emb_ctx;

static double emb_obj(void *vc) {
    emb_ctx *c = vc;
    ft_ref_embedding_forward(NULL, c->out, c->ids, c->pos, c->wte, c->wpe, c->N, c->T, c->C);
    return dot_out(c->out, c->r, (size_t)c->N * c->C);
}

static void test_embedding_grad(void **state) {
    (void)state;
    ft_rng rg;
    ft_rng_seed(&rg, 600);
    int B = 2, T = 3, C = 5, V = 4, N = B * T;
    emb_ctx c = {fmem((size_t)N * C), randn(&rg, (size_t)V * C, 1, 0), randn(&rg, (size_t)T * C, 1, 0), randn(&rg, (size_t)N * C, 1, 0),
                 mem(N * sizeof(int)), NULL, N, T, C};
    int ids[6] = {1, 3, 1, 0, 1, 3}; /* repeats; id 2 unused (gradient 0) */
    memcpy(c.ids, ids, sizeof ids);
    printf("embedding N=%d T=%d C=%d V=%d\n", N, T, C, V);
    float *te_r = fmem((size_t)V * C), *pe_r = fmem((size_t)T * C), *te_c = fmem((size_t)V * C), *pe_c = fmem((size_t)T * C);
    ft_ref_embedding_backward(NULL, te_r, pe_r, c.r, c.ids, NULL, N, T, C);
    ft_cpu_embedding_backward(NULL, te_c, pe_c, c.r, c.ids, NULL, N, T, C);
    fd_param ps[2] = {{"wte", c.wte, (size_t)V * C, te_r, te_c}, {"wpe", c.wpe, (size_t)T * C, pe_r, pe_c}};
    assert_true(fd_check("embedding", emb_obj, &c, ps, 2));
    mem_free_all();
}

/* ------------------------------------------------------------------ cross-entropy */
typedef struct ce_ctx {
    float *losses, *logits;
    int *targets;
    int N, V;
    float scale, smoothing;
} ce_ctx;

static double ce_obj(void *vc) {
    ce_ctx *c = vc;
    ft_ref_crossentropy_forward_backward(NULL, c->losses, NULL, c->logits, c->targets, c->N, c->V, c->scale, c->smoothing,
                                         FT_IGNORE_INDEX);
    double s = 0;
    for (int n = 0; n < c->N; n++) s += c->losses[n];
    return c->scale * s;
}

static void test_crossentropy_grad(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        ft_rng rg;
        ft_rng_seed(&rg, 700 + k);
        int N = 5, V = 9;
        int tg[5] = {3, FT_IGNORE_INDEX, 0, 8, 9 /* out of range: ignored */};
        ce_ctx c = {fmem(N), randn(&rg, (size_t)N * V, 2, 0), mem(sizeof tg), N, V, 1.0f / 3, k ? 0.1f : 0.0f};
        memcpy(c.targets, tg, sizeof tg);
        printf("crossentropy N=%d V=%d scale=1/3 label_smoothing=%g\n", N, V, c.smoothing);
        float *d_r = fmem((size_t)N * V), *d_c = fmem((size_t)N * V);
        ft_ref_crossentropy_forward_backward(NULL, c.losses, d_r, c.logits, c.targets, N, V, c.scale, c.smoothing, FT_IGNORE_INDEX);
        ft_cpu_crossentropy_forward_backward(NULL, c.losses, d_c, c.logits, c.targets, N, V, c.scale, c.smoothing, FT_IGNORE_INDEX);
        fd_param ps[1] = {{"logits", c.logits, (size_t)N * V, d_r, d_c}};
        assert_true(fd_check("crossentropy", ce_obj, &c, ps, 1));
        mem_free_all();
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_norm_grad),      cmocka_unit_test(test_matmul_grad),    cmocka_unit_test(test_activation_grad),
        cmocka_unit_test(test_rope_grad),      cmocka_unit_test(test_attention_grad), cmocka_unit_test(test_embedding_grad),
        cmocka_unit_test(test_crossentropy_grad), cmocka_unit_test(test_attn_family_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
