/* test_balance.c — class balancing (balance.h) against imbalanced-learn 0.14.
 * Fixtures: the JSON files of tests/fixtures/balance, from tests/parity/make_balance_fixtures.py (imblearn's SMOTE,
 * Borderline-SMOTE 1 and 2, ADASYN and Tomek links on Gaussian blobs, binary and 3-class).
 * What is compared:
 *  - exactly, the deterministic parts: neighbour sets, Borderline's danger rows, ADASYN's new rows per input
 *    row, Tomek links and the rows kept, the number of new rows per class;
 *  - with imblearn's own random draws fed in through ft_balance_draws (the fixture lists them in the order
 *    imblearn makes them): every resampled row, to float rounding (max |diff| <= 1e-6), and every label;
 *  - with our seeded stream: the properties (each synthetic row on the segment between its base row and one of
 *    the base's k neighbours, labels kept, the same seed giving the same rows, the target counts);
 *  - sentence embeddings (ft_encoder_embed) of the real all-MiniLM-L6-v2 against sentence-transformers' mean
 *    pooling (tests/fixtures/encoder/minilm_ref.safetensors; skipped without models/all-MiniLM-L6-v2), the
 *    embeddings file round trip, the feature head (learns a separable set, save / load gives the same
 *    predictions, class weights), and `finetune data balance` / `finetune train --features` end to end. */
#include "testutil.h"

#include "core/json_util.h"
#include "finetune/balance.h"
#include "finetune/embeddings.h"
#include "finetune/feature_head.h"
#include "finetune/rng.h"
#include "finetune/fileio.h"
#include "finetune/safetensors.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    cJSON   *root;
    int64_t  n;
    int      C, K;
    float   *X;
    int     *y;
    ft_balance_options o;
} fixture;

static int64_t *ints_of(const cJSON *a, int64_t *n) {
    *n = cJSON_GetArraySize(a);
    int64_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v), i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = (int64_t)e->valuedouble;
    return v;
}

static void load(fixture *f, const char *name) {
    char rel[128];
    snprintf(rel, sizeof rel, "balance/%s.json", name);
    memset(f, 0, sizeof *f);
    assert_int_equal(ft__json_parse_file(&f->root, ft_fixture(rel)), FT_OK);
    const cJSON *X = cJSON_GetObjectItem(f->root, "X"), *y = cJSON_GetObjectItem(f->root, "y");
    f->n = cJSON_GetArraySize(y);
    f->C = cJSON_GetArraySize(cJSON_GetArrayItem(X, 0));
    f->X = malloc((size_t)f->n * (size_t)f->C * sizeof *f->X);
    f->y = malloc((size_t)f->n * sizeof *f->y);
    for (int64_t i = 0; i < f->n; i++) {
        f->y[i] = cJSON_GetArrayItem(y, (int)i)->valueint;
        if (f->y[i] + 1 > f->K) f->K = f->y[i] + 1;
        for (int c = 0; c < f->C; c++) f->X[i * f->C + c] = (float)cJSON_GetArrayItem(cJSON_GetArrayItem(X, (int)i), c)->valuedouble;
    }
    f->o = ft_balance_default_options();
    assert_int_equal(ft_balance_method_from_name(cJSON_GetObjectItem(f->root, "method")->valuestring, &f->o.method), FT_OK);
    f->o.ratio = cJSON_GetObjectItem(f->root, "ratio")->valuedouble;
    f->o.k_neighbors = cJSON_GetObjectItem(f->root, "k_neighbors")->valueint;
    f->o.m_neighbors = cJSON_GetObjectItem(f->root, "m_neighbors")->valueint;
    f->o.seed = (uint64_t)cJSON_GetObjectItem(f->root, "seed")->valuedouble;
}

static void unload(fixture *f) {
    cJSON_Delete(f->root);
    free(f->X);
    free(f->y);
}

/* imblearn's draws, replayed */
typedef struct replay {
    const cJSON *ints, *unif;
    int ni, nu, bad;
} replay;
static uint64_t replay_below(void *ctx, uint64_t n) {
    replay *r = ctx;
    const cJSON *e = cJSON_GetArrayItem(r->ints, r->ni++);
    if (!e || e->valuedouble < 0 || (uint64_t)e->valuedouble >= n) { r->bad++; return 0; }
    return (uint64_t)e->valuedouble;
}
static double replay_uniform(void *ctx) {
    replay *r = ctx;
    const cJSON *e = cJSON_GetArrayItem(r->unif, r->nu++);
    if (!e) { r->bad++; return 0; }
    return e->valuedouble;
}

/* The full imblearn result with imblearn's draws: every row and label. */
static void check_replay(const char *name) {
    fixture f;
    load(&f, name);
    replay rp = {cJSON_GetObjectItem(f.root, "ints"), cJSON_GetObjectItem(f.root, "uniforms"), 0, 0, 0};
    ft_balance_draws d = {replay_below, replay_uniform, &rp};
    f.o.draws = &d;
    ft_balance_result r;
    int rc = ft_balance(&r, f.X, f.y, f.n, f.C, f.K, &f.o);
    if (rc) printf("%s: %s\n", name, ft_last_error());
    assert_int_equal(rc, FT_OK);
    const cJSON *xr = cJSON_GetObjectItem(f.root, "X_res"), *yr = cJSON_GetObjectItem(f.root, "y_res");
    printf("%s (%s): %lld rows -> %lld (imblearn %d), draws used %d/%d ints, %d/%d uniforms\n", name,
           ft_balance_method_name(f.o.method), (long long)f.n, (long long)r.n, cJSON_GetArraySize(yr), rp.ni,
           cJSON_GetArraySize(rp.ints), rp.nu, cJSON_GetArraySize(rp.unif));
    assert_int_equal(rp.bad, 0);
    assert_int_equal(rp.ni, cJSON_GetArraySize(rp.ints));
    assert_int_equal(rp.nu, cJSON_GetArraySize(rp.unif));
    assert_int_equal(r.n, cJSON_GetArraySize(yr));
    double worst = 0;
    for (int64_t i = 0; i < r.n; i++) {
        assert_int_equal(r.y[i], cJSON_GetArrayItem(yr, (int)i)->valueint);
        const cJSON *row = cJSON_GetArrayItem(xr, (int)i);
        for (int c = 0; c < f.C; c++) {
            double e = fabs((double)r.X[i * f.C + c] - cJSON_GetArrayItem(row, c)->valuedouble);
            if (e > worst) worst = e;
        }
    }
    printf("  rows vs imblearn: max |diff| %.3g\n", worst);
    assert_true(worst <= 1e-6);
    /* the deterministic parts */
    const cJSON *danger = cJSON_GetObjectItem(f.root, "danger");
    if (danger) {
        int64_t nd, *dv = ints_of(danger, &nd);
        printf("  danger rows: %lld (imblearn %lld)\n", (long long)r.n_danger, (long long)nd);
        assert_int_equal(r.n_danger, nd);
        for (int64_t i = 0; i < nd; i++) assert_int_equal(r.danger[i], dv[i]);
        free(dv);
    }
    const cJSON *per = cJSON_GetObjectItem(f.root, "per_row");
    if (per) {
        int64_t np, *pv = ints_of(per, &np);
        assert_int_equal(np, f.n);
        assert_non_null(r.per_row);
        for (int64_t i = 0; i < np; i++) assert_int_equal(r.per_row[i], pv[i]);
        free(pv);
    }
    ft_balance_result_free(&r);
    unload(&f);
}

static void test_smote_binary(void **s) { (void)s; check_replay("smote_binary"); }
static void test_smote_3class(void **s) { (void)s; check_replay("smote_3class"); }
static void test_borderline1(void **s) { (void)s; check_replay("borderline1"); }
static void test_borderline2(void **s) { (void)s; check_replay("borderline2"); }
static void test_adasyn(void **s) { (void)s; check_replay("adasyn"); }
static void test_adasyn_3class(void **s) { (void)s; check_replay("adasyn_3class"); }

/* SMOTE's neighbour sets within each class equal sklearn's NearestNeighbors */
static void test_knn_sets(void **s) {
    (void)s;
    fixture f;
    load(&f, "smote_3class");
    const cJSON *cn = cJSON_GetObjectItem(f.root, "class_nn"), *e;
    int k = f.o.k_neighbors, compared = 0;
    cJSON_ArrayForEach(e, cn) {
        int cls = atoi(e->string);
        int64_t m = 0, *rows = malloc((size_t)f.n * sizeof *rows);
        for (int64_t i = 0; i < f.n; i++) if (f.y[i] == cls) rows[m++] = i;
        float *Xc = malloc((size_t)m * (size_t)f.C * sizeof *Xc);
        for (int64_t i = 0; i < m; i++) memcpy(Xc + i * f.C, f.X + rows[i] * f.C, (size_t)f.C * sizeof *Xc);
        int64_t *nn = malloc((size_t)m * (size_t)(k + 1) * sizeof *nn);
        assert_int_equal(ft_knn(nn, Xc, m, f.C, Xc, m, k + 1), FT_OK);
        assert_int_equal(cJSON_GetArraySize(e), m);
        for (int64_t i = 0; i < m; i++) {
            assert_int_equal(nn[i * (k + 1)], i);   /* itself first */
            for (int j = 0; j < k; j++)
                assert_int_equal(rows[nn[i * (k + 1) + 1 + j]], (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(e, (int)i), j)->valuedouble);
            compared++;
        }
        free(rows); free(Xc); free(nn);
    }
    printf("class neighbour lists equal to sklearn's: %d rows x %d neighbours\n", compared, k);
    assert_true(compared > 0);
    unload(&f);
}

static void test_tomek(void **s) {
    (void)s;
    fixture f;
    load(&f, "tomek");
    ft_balance_result r;
    assert_int_equal(ft_balance(&r, f.X, f.y, f.n, f.C, f.K, &f.o), FT_OK);
    int64_t nl, *links = ints_of(cJSON_GetObjectItem(f.root, "links"), &nl);
    int64_t nk, *kept = ints_of(cJSON_GetObjectItem(f.root, "kept"), &nk);
    printf("tomek: %lld links rows (imblearn %lld), %lld kept (imblearn %lld)\n", (long long)r.n_links, (long long)nl, (long long)r.n, (long long)nk);
    assert_true(nl > 0);
    assert_int_equal(r.n_links, nl);
    for (int64_t i = 0; i < nl; i++) assert_int_equal(r.links[i], links[i]);
    assert_int_equal(r.n, nk);
    for (int64_t i = 0; i < nk; i++) {
        assert_int_equal(r.source[i], kept[i]);
        assert_int_equal(r.y[i], f.y[kept[i]]);
        assert_memory_equal(r.X + i * f.C, f.X + kept[i] * f.C, (size_t)f.C * sizeof(float));
    }
    free(links); free(kept);
    ft_balance_result_free(&r);
    unload(&f);
}

/* our own stream: the rows lie on segments to a neighbour, and the same seed gives the same rows */
static void test_own_stream_properties(void **s) {
    (void)s;
    const char *names[] = {"smote_binary", "borderline1", "borderline2", "adasyn_3class"};
    for (int tc = 0; tc < 4; tc++) {
        fixture f;
        load(&f, names[tc]);
        f.o.seed = 1234;
        ft_balance_result a, b;
        assert_int_equal(ft_balance(&a, f.X, f.y, f.n, f.C, f.K, &f.o), FT_OK);
        assert_int_equal(ft_balance(&b, f.X, f.y, f.n, f.C, f.K, &f.o), FT_OK);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.X, b.X, (size_t)a.n * (size_t)f.C * sizeof(float));
        int whole = f.o.method == FT_BAL_BORDERLINE2, k = f.o.k_neighbors;
        int64_t synth = 0;
        double worst = 0;
        int64_t *nn = malloc((size_t)(k + 1) * sizeof *nn);
        for (int64_t i = 0; i < a.n; i++) {
            if (i < f.n) { assert_int_equal(a.source[i], i); continue; }
            assert_int_equal(a.source[i], -1);
            int64_t p = a.base[i], q = a.neighbor[i];
            assert_int_equal(f.y[p], a.y[i]);
            if (!whole) assert_int_equal(f.y[q], a.y[i]);
            /* q is one of p's k nearest (within its class, or anywhere for Borderline-2) */
            int64_t m = 0, *rows = malloc((size_t)f.n * sizeof *rows);
            for (int64_t j = 0; j < f.n; j++) if (whole || f.y[j] == f.y[p]) rows[m++] = j;
            float *Xp = malloc((size_t)m * (size_t)f.C * sizeof *Xp);
            for (int64_t j = 0; j < m; j++) memcpy(Xp + j * f.C, f.X + rows[j] * f.C, (size_t)f.C * sizeof *Xp);
            assert_int_equal(ft_knn(nn, Xp, m, f.C, f.X + p * f.C, 1, k + 1), FT_OK);
            int found = 0;
            for (int j = 1; j <= k; j++) found |= rows[nn[j]] == q;
            assert_true(found);
            free(rows); free(Xp);
            /* x_new = x_p + t (x_q - x_p) with one t in [0, 1] for every feature */
            double t = -1;
            for (int c = 0; c < f.C; c++) {
                double d = (double)f.X[q * f.C + c] - f.X[p * f.C + c];
                if (fabs(d) < 1e-3) continue;
                double tf = ((double)a.X[i * f.C + c] - f.X[p * f.C + c]) / d;
                if (t < 0) t = tf;
                if (fabs(tf - t) > worst) worst = fabs(tf - t);
            }
            assert_true(t >= -1e-6 && t <= 1 + 1e-6);
            synth++;
        }
        printf("%s, own stream: %lld synthetic rows on their segments (max spread of t %.2g), reproducible\n", names[tc], (long long)synth, worst);
        assert_true(synth > 0);
        assert_true(worst < 1e-4);
        free(nn);
        ft_balance_result_free(&a);
        ft_balance_result_free(&b);
        unload(&f);
    }
}

static void test_targets_and_random(void **s) {
    (void)s;
    int64_t counts[3] = {100, 20, 0}, tg[3];
    assert_int_equal(ft_balance_targets(tg, counts, 3, FT_BAL_OVER, 0.5), FT_OK);
    assert_int_equal(tg[0], 0); assert_int_equal(tg[1], 30); assert_int_equal(tg[2], 0);
    assert_int_equal(ft_balance_targets(tg, counts, 3, FT_BAL_UNDER, 0.5), FT_OK);
    assert_int_equal(tg[0], 40); assert_int_equal(tg[1], 20);
    assert_int_equal(ft_balance_targets(tg, counts, 3, FT_BAL_SMOTE, 1.5), FT_ERR_INVALID);
    /* over / under without features: index-only rows */
    int y[30];
    for (int i = 0; i < 30; i++) y[i] = i % 5 == 0;   /* 6 of class 1, 24 of class 0 */
    ft_balance_options o = ft_balance_default_options();
    o.method = FT_BAL_OVER; o.ratio = 0.5; o.seed = 9;
    ft_balance_result r;
    assert_int_equal(ft_balance(&r, NULL, y, 30, 0, 2, &o), FT_OK);
    assert_int_equal(r.n, 36);   /* 6 more of class 1: 12 / 24 = 0.5 */
    for (int64_t i = 30; i < r.n; i++) { assert_int_equal(r.y[i], 1); assert_int_equal(y[r.source[i]], 1); }
    ft_balance_result_free(&r);
    o.method = FT_BAL_UNDER; o.ratio = 1.0;
    assert_int_equal(ft_balance(&r, NULL, y, 30, 0, 2, &o), FT_OK);
    int64_t c1 = 0;
    for (int64_t i = 0; i < r.n; i++) { c1 += r.y[i]; if (i) assert_true(r.source[i] > r.source[i - 1]); }
    assert_int_equal(r.n, 12);
    assert_int_equal(c1, 6);
    ft_balance_result_free(&r);
    o.method = FT_BAL_SMOTE;
    assert_int_equal(ft_balance(&r, NULL, y, 30, 0, 2, &o), FT_ERR_INVALID);
    ft_balance_method m;
    assert_int_equal(ft_balance_method_from_name("borderline-smote", &m), FT_OK);
    assert_int_equal(m, FT_BAL_BORDERLINE1);
    assert_int_equal(ft_balance_method_from_name("smoteish", &m), FT_ERR_INVALID);
}

static char g_dir[256];
static int setup(void **s) { (void)s; return ft_test_tmpdir_make(g_dir, sizeof g_dir, "ft_balance"); }
static int teardown(void **s) { (void)s; return ft_test_tmpdir_remove(g_dir); }

static void test_embed_minilm(void **s) {
    (void)s;
    const char *dir = "models/all-MiniLM-L6-v2";
    if (!ft_path_exists("models/all-MiniLM-L6-v2/model.safetensors")) { printf("SKIP: %s not found (scripts/setup.sh)\n", dir); skip(); return; }
    ft_safetensors *st;
    assert_int_equal(ft_st_open(&st, ft_fixture("encoder/minilm_ref.safetensors")), FT_OK);
    cJSON *sent = cJSON_Parse(ft_st_metadata(st, "sentences"));
    int n = cJSON_GetArraySize(sent);
    const char *texts[8];
    for (int i = 0; i < n && i < 8; i++) texts[i] = cJSON_GetArrayItem(sent, i)->valuestring;
    size_t nref;
    float *ref = ft_test_read_f32(st, "embeddings", &nref);
    ft_tokenizer *tok;
    assert_int_equal(ft_tokenizer_load(&tok, dir), FT_OK);
    ft_encoder_options eo = ft_encoder_default_options();
    eo.pooling = FT_POOL_MEAN;
    ft_encoder_model *m;
    assert_int_equal(ft_encoder_load_ex(&m, dir, &eo, NULL), FT_OK);
    int C = ft_encoder_get_config(m)->n_embd;
    assert_int_equal((size_t)n * C, nref);
    float *e = malloc(nref * sizeof *e), *e1 = malloc(nref * sizeof *e1);
    /* batches of 3: padding in a batch must not change a row */
    assert_int_equal(ft_encoder_embed(e, m, tok, texts, NULL, n, 0, 3, 0), FT_OK);
    assert_true(ft_check_close("mean-pooled embeddings", e, ref, nref, 1e-4));
    assert_int_equal(ft_encoder_embed(e1, m, tok, texts, NULL, n, 0, 1, 1), FT_OK);
    for (int i = 0; i < n; i++) {
        double nn = 0, dot = 0, nr = 0;
        for (int c = 0; c < C; c++) { nn += (double)e1[i * C + c] * e1[i * C + c]; dot += (double)e1[i * C + c] * ref[i * C + c]; nr += (double)ref[i * C + c] * ref[i * C + c]; }
        assert_true(fabs(nn - 1) < 1e-5);
        assert_true(dot / sqrt(nr) > 1 - 1e-4);   /* the same direction */
    }
    free(e); free(e1); free(ref);
    cJSON_Delete(sent);
    ft_st_close(st);
    ft_encoder_close(m);
    ft_tokenizer_free(tok);
}

/* two Gaussian blobs in 8-D: a linear head separates them */
static void blobs(float *X, int *y, int n, int C, uint64_t seed, int minority_every) {
    ft_rng r;
    ft_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        y[i] = i % minority_every == 0;
        for (int c = 0; c < C; c++) X[i * C + c] = 0.5f * ft_rng_normal(&r) + (c == 0 ? (y[i] ? 1.5f : -1.5f) : 0.0f);
    }
}

static void test_feature_head(void **s) {
    (void)s;
    enum { N = 300, C = 8 };
    float X[N * C], Xv[N * C];
    int y[N], yv[N], pred[N], pred2[N];
    blobs(X, y, N, C, 1, 5);
    blobs(Xv, yv, N, C, 2, 2);
    for (int hidden = 0; hidden <= 16; hidden += 16) {
        ft_fhead_options o = ft_fhead_default_options();
        o.hidden = hidden;
        o.epochs = 30;
        ft_fhead *h, *h2, *h3;
        assert_int_equal(ft_fhead_train(&h, X, y, N, C, 2, &o), FT_OK);
        assert_int_equal(ft_fhead_train(&h3, X, y, N, C, 2, &o), FT_OK);
        assert_int_equal(ft_fhead_predict(h, Xv, N, pred, NULL), FT_OK);
        int ok = 0;
        for (int i = 0; i < N; i++) ok += pred[i] == yv[i];
        double loss0, loss1;
        assert_int_equal(ft_fhead_loss(h, X, y, N, &loss1), FT_OK);
        printf("feature head (hidden %d): held-out accuracy %d/%d, training loss %.4f\n", hidden, ok, N, loss1);
        assert_true(ok > N * 0.95);
        assert_true(loss1 < 0.2);
        /* the same options give the same head; save / load gives the same predictions */
        assert_int_equal(ft_fhead_predict(h3, Xv, N, pred2, NULL), FT_OK);
        assert_memory_equal(pred, pred2, sizeof pred);
        const char *path = ft_test_path(g_dir, "head.safetensors");
        assert_int_equal(ft_fhead_save(h, path, NULL), FT_OK);
        assert_int_equal(ft_fhead_load(&h2, path), FT_OK);
        assert_int_equal(ft_fhead_loss(h2, X, y, N, &loss0), FT_OK);
        assert_true(loss0 == loss1);
        ft_fhead_free(h); ft_fhead_free(h2); ft_fhead_free(h3);
    }
    /* no epochs is a valid (untrained) head; a label outside 0..K-1 is refused */
    ft_fhead_options o = ft_fhead_default_options();
    o.epochs = 0;
    ft_fhead *h;
    assert_int_equal(ft_fhead_train(&h, X, y, N, C, 2, &o), FT_OK);
    ft_fhead_free(h);
    int bad[2] = {0, 2};
    assert_int_equal(ft_fhead_train(&h, X, bad, 2, C, 2, &o), FT_ERR_RANGE);
}

static void test_embeddings_file_and_cli(void **s) {
    (void)s;
    enum { N = 120, C = 8 };
    float X[N * C];
    int y[N];
    blobs(X, y, N, C, 3, 6);
    ft_label_map lm;
    const char *names[] = {"neg", "pos"};
    assert_int_equal(ft_label_map_init(&lm, names, 2), FT_OK);
    ft_embeddings e = {N, C, X, y, NULL, &lm};
    char in[512], out[512], tk[512], val[512];
    snprintf(in, sizeof in, "%s", ft_test_path(g_dir, "in.safetensors"));
    snprintf(out, sizeof out, "%s", ft_test_path(g_dir, "smote.safetensors"));
    snprintf(tk, sizeof tk, "%s", ft_test_path(g_dir, "tomek.safetensors"));
    snprintf(val, sizeof val, "%s", ft_test_path(g_dir, "val.safetensors"));
    const char *meta[] = {"method", "none"};
    assert_int_equal(ft_embeddings_save(in, &e, meta, 1), FT_OK);
    float Xv[N * C];
    int yv[N];
    blobs(Xv, yv, N, C, 4, 2);
    ft_embeddings ev = {N, C, Xv, yv, NULL, &lm};
    assert_int_equal(ft_embeddings_save(val, &ev, NULL, 0), FT_OK);
    ft_embeddings back;
    assert_int_equal(ft_embeddings_load(&back, in), FT_OK);
    assert_int_equal(back.n, N);
    assert_int_equal(back.C, C);
    assert_memory_equal(back.X, X, sizeof X);
    assert_memory_equal(back.labels, y, sizeof y);
    assert_string_equal(back.label_map->names[1], "pos");
    for (int i = 0; i < N; i++) assert_int_equal(back.source[i], i);
    ft_embeddings_free(&back);
    /* the command: SMOTE to a 0.5 ratio, then Tomek links on its output */
    char *text;
    assert_int_equal(ft_test_finetune(&text, "data balance %s --out %s --method smote --ratio 0.5 --seed 3", in, out), 0);
    printf("%s", text);
    free(text);
    assert_int_equal(ft_embeddings_load(&back, out), FT_OK);
    int64_t c[2] = {0, 0}, synth = 0;
    for (int64_t i = 0; i < back.n; i++) { c[back.labels[i]]++; synth += back.source[i] < 0; }
    assert_int_equal(c[0], 100);
    assert_int_equal(c[1], 50);   /* 20 + floor(0.5 * 100 - 20) */
    assert_int_equal(synth, 30);
    ft_embeddings_free(&back);
    assert_int_equal(ft_test_finetune(&text, "data balance %s --out %s --method tomek", out, tk), 0);
    free(text);
    assert_int_equal(ft_embeddings_load(&back, tk), FT_OK);
    assert_true(back.n <= 150);
    for (int64_t i = 0; i < back.n; i++) assert_true(back.source[i] >= -1 && back.source[i] < N);
    ft_embeddings_free(&back);
    /* a head on the balanced features */
    assert_int_equal(ft_test_finetune(&text, "train --task classify --features %s --val-features %s --epochs 20 --json", out, val), 0);
    printf("%s", text);
    cJSON *j = cJSON_Parse(strstr(text, "{\"train\""));
    assert_non_null(j);
    double f1 = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "val"), "f1_macro")->valuedouble;
    assert_true(f1 > 0.9);
    cJSON_Delete(j);
    free(text);
    /* usage errors: SMOTE on text rows, rows out of embeddings */
    assert_int_equal(ft_test_finetune(&text, "data balance %s --out %s --method smote", ft_fixture("classify/sst2_dev200.tsv"), ft_test_path(g_dir, "x.tsv")), 2);
    free(text);
    assert_int_equal(ft_test_finetune(&text, "data balance %s --out %s --method over", in, ft_test_path(g_dir, "x.tsv")), 2);
    free(text);
    /* random under-sampling on text rows */
    char rows[512];
    snprintf(rows, sizeof rows, "%s", ft_test_path(g_dir, "under.tsv"));
    assert_int_equal(ft_test_finetune(&text, "data balance %s --out %s --method under --ratio 1.0", ft_fixture("classify/sst2_dev200.tsv"), rows), 0);
    free(text);
    ft_cls_options co = ft_cls_default_options();
    co.text_column = "sentence";
    ft_cls_dataset ds;
    assert_int_equal(ft_cls_dataset_load(&ds, rows, &co), FT_OK);
    int64_t cc[2];
    assert_int_equal(ft_cls_class_counts(cc, ds.label, ds.n, 2), FT_OK);
    assert_int_equal(cc[0], 92);   /* sst2_dev200: 92 negative, 108 positive */
    assert_int_equal(cc[1], 92);
    ft_cls_dataset_free(&ds);
    ft_label_map_free(&lm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smote_binary),
        cmocka_unit_test(test_smote_3class),
        cmocka_unit_test(test_borderline1),
        cmocka_unit_test(test_borderline2),
        cmocka_unit_test(test_adasyn),
        cmocka_unit_test(test_adasyn_3class),
        cmocka_unit_test(test_knn_sets),
        cmocka_unit_test(test_tomek),
        cmocka_unit_test(test_own_stream_properties),
        cmocka_unit_test(test_targets_and_random),
        cmocka_unit_test(test_embed_minilm),
        cmocka_unit_test(test_feature_head),
        cmocka_unit_test(test_embeddings_file_and_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
