/* test_explain.c — token attributions (explain.h, finetune explain).
 *
 * Parity on tests/fixtures/explain/bert_cls (tests/parity/make_explain_fixtures.py: a random-weight BERT classifier
 * with a WordPiece tokenizer; references in float64 from transformers + Captum):
 *   ids and features equal to HF's tokenizer / the script's grouping; exact Shapley values equal to a brute-force
 *   reference within 1e-6 and efficiency within 1e-6; IG equal to Captum's LayerIntegratedGradients within 1e-4;
 *   attention probabilities within 1e-5.
 * Properties: the sampled estimator's error shrinks with the budget (exact values of the same input), its
 * efficiency holds at every budget; IG's completeness gap shrinks with steps; Gauss-Legendre integrates
 * polynomials of degree 2n-1 exactly; the decoder's f equals the loss of ft_model_forward; errors are clear.
 * The command: --json values equal to the library's, the HTML page, usage errors. */
#include "testutil.h"
#include "finetune/encoder.h"
#include "finetune/explain.h"
#include "finetune/fileio.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIX "explain/bert_cls"
static char g_tmp[256];

static cJSON *read_ref(void) {
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ft_file_read_all(ft_test_path(ft_fixture(FIX), "ref.json"), &text, &len), 0);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static double max_abs_diff(const double *a, const cJSON *arr, int n) {
    assert_int_equal(cJSON_GetArraySize(arr), n);
    double mx = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs(a[i] - cJSON_GetArrayItem(arr, i)->valuedouble);
        if (d > mx) mx = d;
    }
    return mx;
}

/* one fixture case: tokenizer, encoder, ids, features, explainer */
typedef struct tcase {
    ft_tokenizer *tok;
    ft_encoder_model *m;
    int *ids, T, feature[64], nf;
    ft_explainer *e;
} tcase;

static void case_open(tcase *c, const cJSON *rc) {
    memset(c, 0, sizeof *c);
    const char *dir = ft_fixture(FIX);
    assert_int_equal(ft_tokenizer_load(&c->tok, dir), 0);
    assert_int_equal(ft_encoder_load(&c->m, dir, 0, ft_backend_cpu()), 0);
    const char *text = cJSON_GetObjectItem(rc, "text")->valuestring;
    assert_int_equal(ft_tokenizer_encode(c->tok, text, strlen(text), FT_TOK_ADD_SPECIAL, &c->ids, &c->T), 0);
    const cJSON *rids = cJSON_GetObjectItem(rc, "ids"), *rfeat = cJSON_GetObjectItem(rc, "feature");
    assert_int_equal(c->T, cJSON_GetArraySize(rids));
    assert_true(c->T <= 64);
    for (int t = 0; t < c->T; t++) assert_int_equal(c->ids[t], cJSON_GetArrayItem(rids, t)->valueint);
    ft_explain_unit unit = strcmp(cJSON_GetObjectItem(rc, "unit")->valuestring, "word") == 0 ? FT_EXPLAIN_WORD : FT_EXPLAIN_TOKEN;
    c->nf = ft_explain_features(c->tok, c->ids, c->T, unit, c->feature);
    for (int t = 0; t < c->T; t++) assert_int_equal(c->feature[t], cJSON_GetArrayItem(rfeat, t)->valueint);
    assert_int_equal(c->nf, cJSON_GetArraySize(cJSON_GetObjectItem(rc, "shap")));
    ft_explain_encoder_options eo = ft_explain_encoder_default_options();
    eo.output = strcmp(cJSON_GetObjectItem(rc, "output")->valuestring, "logit") == 0 ? FT_EXPLAIN_LOGIT : FT_EXPLAIN_PROB;
    assert_int_equal(ft_explainer_encoder(&c->e, c->m, c->ids, NULL, c->T, c->feature, c->nf, ft_explain_mask_id(c->tok), &eo), 0);
    assert_int_equal(ft_explainer_target(c->e), cJSON_GetObjectItem(rc, "target")->valueint);
}

static void case_close(tcase *c) {
    ft_explainer_free(c->e);
    ft_encoder_close(c->m);
    ft_tokenizer_free(c->tok);
    free(c->ids);
}

static void test_shap_parity(void **state) {
    if (!ft_fixture_present(FIX)) skip();
    cJSON *ref = read_ref();
    assert_string_equal(cJSON_GetObjectItem(ref, "mask_token")->valuestring, "[MASK]");
    const cJSON *rc;
    cJSON_ArrayForEach(rc, cJSON_GetObjectItem(ref, "cases")) {
        tcase c;
        case_open(&c, rc);
        double phi[64];
        ft_shap_result r;
        assert_int_equal(ft_explain_shap_exact(c.e, phi, &r), 0);
        const cJSON *f = cJSON_GetObjectItem(rc, "f");
        double err = max_abs_diff(phi, cJSON_GetObjectItem(rc, "shap"), c.nf);
        double ef = fabs(r.f_input - cJSON_GetArrayItem(f, 0)->valuedouble), em = fabs(r.f_masked - cJSON_GetArrayItem(f, 1)->valuedouble);
        printf("  %s %-52s n=%2d  max |phi - brute force| %.2e  |f(x) - ref| %.1e  |f(masked) - ref| %.1e  efficiency gap %.1e  (%lld coalitions)\n",
               cJSON_GetObjectItem(rc, "name")->valuestring, cJSON_GetObjectItem(rc, "text")->valuestring, c.nf, err, ef, em, r.gap,
               (long long)r.evaluations);
        assert_true(r.exact);
        assert_int_equal(r.evaluations, (int64_t)1 << c.nf);
        assert_true(err < 1e-6);
        assert_true(ef < 1e-6 && em < 1e-6);
        assert_true(fabs(r.gap) < 1e-6);
        /* the batched v(all) is the unbatched f(x), up to the float rounding of the different batch shapes
         * (sgemm blocking, summation order in the kernels): ~1e-6 relative at most, where a batching mistake
         * shows at 1e-3 and beyond */
        assert_true(fabs(r.f_input - ft_explainer_f_input(c.e)) < 2e-6 * fmax(1.0, fabs(r.f_input)));
        case_close(&c);
    }
    cJSON_Delete(ref);
}

static void test_ig_parity(void **state) {
    if (!ft_fixture_present(FIX)) skip();
    cJSON *ref = read_ref();
    const cJSON *rc;
    cJSON_ArrayForEach(rc, cJSON_GetObjectItem(ref, "cases")) {
        tcase c;
        case_open(&c, rc);
        double attr[64];
        ft_ig_result r;
        ft_ig_options o = ft_ig_default_options();
        assert_int_equal(o.steps, 50);
        assert_int_equal(ft_explain_ig(c.e, &o, attr, &r), 0);
        double err = max_abs_diff(attr, cJSON_GetObjectItem(rc, "ig"), c.T);
        printf("  %s n_steps 50: max |IG - Captum| %.2e  sum %.6f  f(x) - f(baseline) %.6f  completeness gap %.2e\n",
               cJSON_GetObjectItem(rc, "name")->valuestring, err, r.sum, r.f_input - r.f_baseline, r.gap);
        assert_true(err < 1e-4);
        for (int t = 0; t < c.T; t++) if (c.feature[t] < 0) assert_true(attr[t] == 0.0);
        /* the baseline is the all-masked input: f(baseline) = v(none) of the Shapley reference */
        assert_true(fabs(r.f_baseline - cJSON_GetArrayItem(cJSON_GetObjectItem(rc, "f"), 1)->valuedouble) < 1e-6);
        /* attention probabilities */
        float *att = NULL;
        int L = 0, NH = 0;
        assert_int_equal(ft_explain_attention(c.e, &att, &L, &NH), 0);
        const cJSON *ra = cJSON_GetObjectItem(rc, "attention");
        assert_int_equal(cJSON_GetArraySize(ra), L);
        double amax = 0;
        for (int l = 0; l < L; l++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < c.T; t++) {
                    const cJSON *row = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetArrayItem(ra, l), h), t);
                    double rs = 0;
                    for (int j = 0; j < c.T; j++) {
                        float g = att[(((size_t)l * NH + h) * c.T + t) * c.T + j];
                        rs += g;
                        double d = fabs(g - cJSON_GetArrayItem(row, j)->valuedouble);
                        if (d > amax) amax = d;
                    }
                    assert_true(fabs(rs - 1) < 1e-5);
                }
        printf("     attention [%d, %d, %d, %d]: max |p - transformers| %.2e\n", L, NH, c.T, c.T, amax);
        assert_true(amax < 1e-5);
        free(att);
        case_close(&c);
    }
    cJSON_Delete(ref);
}

/* IG's completeness gap shrinks as the steps grow; the zero baseline has its own f(baseline) */
static void test_ig_steps(void **state) {
    if (!ft_fixture_present(FIX)) skip();
    cJSON *ref = read_ref();
    tcase c;
    case_open(&c, cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "cases"), 0));
    double attr[64], gaps[3];
    int steps[3] = {2, 8, 64};
    for (int i = 0; i < 3; i++) {
        ft_ig_options o = {steps[i], FT_IG_BASELINE_MASK};
        ft_ig_result r;
        assert_int_equal(ft_explain_ig(c.e, &o, attr, &r), 0);
        gaps[i] = fabs(r.gap);
        printf("  steps %3d: completeness gap %.3e\n", steps[i], gaps[i]);
    }
    assert_true(gaps[2] < gaps[0]);
    assert_true(gaps[2] < 1e-3);
    ft_ig_options z = {50, FT_IG_BASELINE_ZERO};
    ft_ig_result rz;
    assert_int_equal(ft_explain_ig(c.e, &z, attr, &rz), 0);
    printf("  zero baseline: f(baseline) %.6f, completeness gap %.3e\n", rz.f_baseline, rz.gap);
    assert_true(fabs(rz.gap) < 1e-2);
    ft_ig_options bad = {0, FT_IG_BASELINE_MASK};
    assert_int_equal(ft_explain_ig(c.e, &bad, attr, &rz), FT_ERR_INVALID);
    case_close(&c);
    cJSON_Delete(ref);
}

/* the sampled estimator converges to the exact values: its error falls with the number of permutations */
static void test_shap_sampled_converges(void **state) {
    if (!ft_fixture_present(FIX)) skip();
    cJSON *ref = read_ref();
    tcase c;
    const cJSON *rc = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "cases"), 1);   /* 15 features */
    case_open(&c, rc);
    const cJSON *exact = cJSON_GetObjectItem(rc, "shap");
    int budgets[3] = {4, 32, 512};
    double err[3];
    for (int b = 0; b < 3; b++) {
        double sum = 0;
        for (uint64_t seed = 1; seed <= 3; seed++) {
            double phi[64];
            ft_shap_result r;
            assert_int_equal(ft_explain_shap_sample(c.e, budgets[b], seed, phi, &r), 0);
            assert_false(r.exact);
            assert_int_equal(r.permutations, budgets[b]);
            assert_true(fabs(r.gap) < 1e-9);   /* efficiency at any budget */
            double e2 = 0;
            for (int i = 0; i < c.nf; i++) {
                double d = phi[i] - cJSON_GetArrayItem(exact, i)->valuedouble;
                e2 += d * d;
            }
            sum += sqrt(e2 / c.nf);
        }
        err[b] = sum / 3;
        printf("  %4d permutations: RMS error vs exact %.3e (mean of 3 seeds)\n", budgets[b], err[b]);
    }
    assert_true(err[1] < err[0]);
    assert_true(err[2] < err[1]);
    assert_true(err[2] < err[0] / 4);
    /* seeded: the same seed gives the same values, another seed others */
    double p1[64], p2[64], p3[64];
    assert_int_equal(ft_explain_shap_sample(c.e, 6, 7, p1, NULL), 0);
    assert_int_equal(ft_explain_shap_sample(c.e, 6, 7, p2, NULL), 0);
    assert_int_equal(ft_explain_shap_sample(c.e, 6, 8, p3, NULL), 0);
    assert_memory_equal(p1, p2, sizeof(double) * c.nf);
    assert_memory_not_equal(p1, p3, sizeof(double) * c.nf);
    case_close(&c);
    cJSON_Delete(ref);
}

static void test_gauss_legendre(void **state) {
    double x[64], w[64];
    assert_int_equal(ft_gauss_legendre(1, x, w), 0);
    assert_true(fabs(x[0] - 0.5) < 1e-15 && fabs(w[0] - 1) < 1e-15);
    assert_int_equal(ft_gauss_legendre(2, x, w), 0);
    assert_true(fabs(x[0] - (0.5 - 0.5 / sqrt(3))) < 1e-15 && fabs(w[1] - 0.5) < 1e-15);
    for (int n = 3; n <= 60; n += 19) {
        assert_int_equal(ft_gauss_legendre(n, x, w), 0);
        double sw = 0, poly = 0;
        for (int i = 0; i < n; i++) {
            sw += w[i];
            poly += w[i] * pow(x[i], 2 * n - 1);
            if (i) assert_true(x[i] > x[i - 1]);
            assert_true(x[i] > 0 && x[i] < 1);
        }
        assert_true(fabs(sw - 1) < 1e-13);
        assert_true(fabs(poly - 1.0 / (2 * n)) < 1e-12);   /* exact for degree 2n - 1 */
    }
    assert_int_equal(ft_gauss_legendre(0, x, w), FT_ERR_INVALID);
}

static void test_features_and_errors(void **state) {
    if (!ft_fixture_present(FIX)) skip();
    tcase c;
    cJSON *ref = read_ref();
    case_open(&c, cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "cases"), 2));
    /* word unit: continuation pieces ("##...") share their word's feature */
    int tokf[64];
    int nt = ft_explain_features(c.tok, c.ids, c.T, FT_EXPLAIN_TOKEN, tokf);
    assert_int_equal(nt, c.T - 2);
    assert_true(c.nf < nt);
    double tok_scores[64], feat[64];
    for (int t = 0; t < c.T; t++) tok_scores[t] = t;
    ft_explain_feature_sums(c.feature, c.T, c.nf, tok_scores, feat);
    double total = 0;
    for (int i = 0; i < c.nf; i++) total += feat[i];
    assert_true(fabs(total - (c.T - 1) * (c.T - 2) / 2.0) < 1e-9);   /* every token but [CLS] (0) and [SEP] (T-1) */
    /* errors */
    ft_explainer *e = NULL;
    int fbad[64];
    for (int t = 0; t < c.T; t++) fbad[t] = -1;
    assert_int_equal(ft_explainer_encoder(&e, c.m, c.ids, NULL, c.T, fbad, 0, 4, NULL), FT_ERR_INVALID);
    assert_true(strstr(ft_last_error(), "no features") != NULL);
    assert_int_equal(ft_explainer_encoder(&e, c.m, c.ids, NULL, c.T, c.feature, c.nf, 100000, NULL), FT_ERR_INVALID);
    assert_true(strstr(ft_last_error(), "mask id") != NULL);
    ft_explain_encoder_options o = ft_explain_encoder_default_options();
    o.target = 3;
    assert_int_equal(ft_explainer_encoder(&e, c.m, c.ids, NULL, c.T, c.feature, c.nf, 4, &o), FT_ERR_INVALID);
    assert_true(strstr(ft_last_error(), "target class 3") != NULL);
    assert_null(e);
    /* too many features for exact values */
    int many[64];
    for (int t = 0; t < 30; t++) many[t] = t;
    int ids30[30];
    for (int t = 0; t < 30; t++) ids30[t] = 10 + t;
    assert_int_equal(ft_explainer_encoder(&e, c.m, ids30, NULL, 30, many, 30, 4, NULL), 0);
    double phi[64];
    assert_int_equal(ft_explain_shap_exact(e, phi, NULL), FT_ERR_RANGE);
    assert_true(strstr(ft_last_error(), "sampled") != NULL);
    ft_shap_result r;
    assert_int_equal(ft_explain_shap_sample(e, 4, 1, phi, &r), 0);
    assert_true(fabs(r.gap) < 1e-9);
    assert_int_equal(ft_explain_shap_sample(e, 0, 1, phi, &r), FT_ERR_INVALID);
    ft_explainer_free(e);
    case_close(&c);
    cJSON_Delete(ref);
}

/* decoders: f = log p(continuation | text) equals -(sum of the forward's token losses); exact Shapley values
 * are efficient; IG's completeness gap shrinks with steps; attention is causal */
static void test_decoder(void **state) {
    const char *dir = "models/stories260K";
    ft_model *m = NULL;
    ft_tokenizer *tok = NULL;
    if (ft_model_load(&m, dir, ft_backend_cpu()) < 0 || ft_tokenizer_load(&tok, dir) < 0) {
        printf("SKIP: %s not loadable\n", dir);
        ft_model_free(m);
        ft_tokenizer_free(tok);
        skip();
    }
    const char *text = "Lily saw a big dog", *cont = " in the park";
    int *a = NULL, na = 0, *b = NULL, nb = 0;
    assert_int_equal(ft_tokenizer_encode(tok, text, strlen(text), FT_TOK_ADD_SPECIAL, &a, &na), 0);
    assert_int_equal(ft_tokenizer_encode(tok, cont, strlen(cont), 0, &b, &nb), 0);
    int T = na + nb, ids[64], feat[64], targets[64];
    assert_true(T < 64);
    memcpy(ids, a, sizeof(int) * na);
    memcpy(ids + na, b, sizeof(int) * nb);
    int nf = ft_explain_features(tok, ids, na, FT_EXPLAIN_WORD, feat);
    for (int t = na; t < T; t++) feat[t] = -1;
    assert_int_equal(feat[0], -1);   /* BOS */
    assert_int_equal(nf, 5);         /* Lily saw a big dog */
    ft_explainer *e = NULL;
    int mask_id = ft_explain_mask_id(tok);
    assert_true(mask_id >= 0);
    assert_int_equal(ft_explainer_decoder(&e, m, ids, T, na, feat, nf, mask_id, 0), 0);
    /* the same number from the model's loss */
    for (int t = 0; t < T; t++) targets[t] = t + 1 >= na && t + 1 < T ? ids[t + 1] : FT_IGNORE_INDEX;
    float loss;
    assert_int_equal(ft_model_forward(m, ids, targets, NULL, NULL, 1, T, &loss), 0);
    double lp = -(double)loss * nb;
    printf("  log p(continuation | text) = %.6f (forward's loss: %.6f), %d words\n", ft_explainer_f_input(e), lp, nf);
    assert_true(fabs(ft_explainer_f_input(e) - lp) < 1e-4);
    double phi[64];
    ft_shap_result r;
    assert_int_equal(ft_explain_shap_exact(e, phi, &r), 0);
    printf("  exact Shapley: f(x) %.6f f(masked) %.6f sum %.6f gap %.1e\n", r.f_input, r.f_masked, r.sum, r.gap);
    assert_true(fabs(r.gap) < 1e-6);
    assert_true(fabs(r.f_input - ft_explainer_f_input(e)) < 1e-4);
    /* Integrated Gradients through the decoder's backward: completeness holds as the steps grow */
    double attr[64], gaps[2];
    int steps[2] = {4, 64};
    for (int i = 0; i < 2; i++) {
        ft_ig_options io = {steps[i], FT_IG_BASELINE_MASK};
        ft_ig_result ir;
        assert_int_equal(ft_explain_ig(e, &io, attr, &ir), 0);
        gaps[i] = fabs(ir.gap);
        printf("  IG %2d steps: sum %.6f, f(x) - f(baseline) %.6f - %.6f, completeness gap %.2e\n", steps[i], ir.sum, ir.f_input,
               ir.f_baseline, ir.gap);
        assert_true(fabs(ir.f_baseline - r.f_masked) < 1e-3);   /* the baseline is the all-masked text */
        for (int t = 0; t < T; t++) if (feat[t] < 0) assert_true(attr[t] == 0.0);
    }
    assert_true(gaps[1] < gaps[0]);
    assert_true(gaps[1] < 1e-2 * fabs(r.f_input - r.f_masked) + 1e-4);
    /* the value function still runs after IG changed the batch shape */
    double again[64];
    assert_int_equal(ft_explain_shap_exact(e, again, NULL), 0);
    for (int i = 0; i < nf; i++) assert_true(fabs(again[i] - phi[i]) < 1e-4);
    /* attention: causal (nothing above the diagonal), rows sum to 1 */
    float *att = NULL;
    int L = 0, NH = 0;
    assert_int_equal(ft_explain_attention(e, &att, &L, &NH), 0);
    assert_int_equal(L, ft_model_get_config(m)->n_layer);
    assert_int_equal(NH, ft_model_get_config(m)->n_head);
    for (int l = 0; l < L; l++)
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                double rs = 0;
                for (int j = 0; j < T; j++) {
                    float p = att[(((size_t)l * NH + h) * T + t) * T + j];
                    if (j > t) assert_true(p == 0.0f);
                    rs += p;
                }
                assert_true(fabs(rs - 1) < 1e-5);
            }
    free(att);
    /* the continuation may not hold features */
    ft_explainer *e2 = NULL;
    feat[T - 1] = 0;
    assert_int_equal(ft_explainer_decoder(&e2, m, ids, T, na, feat, nf, mask_id, 0), FT_ERR_INVALID);
    ft_explainer_free(e);
    free(a);
    free(b);
    ft_model_free(m);
    ft_tokenizer_free(tok);
}

static void test_html(void **state) {
    const char *toks[3] = {"[CLS]", "<b>love</b>", "[SEP]"};
    double sc[3] = {NAN, 0.25, NAN};
    float att[1 * 2 * 3 * 3];
    for (int i = 0; i < 18; i++) att[i] = (float)(i % 3) / 3.0f;
    ft_explain_page p = {"t & <title>", "sub", 3, toks, sc, att, 1, 2};
    char *html = NULL;
    assert_int_equal(ft_explain_html(&p, &html), 0);
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    assert_non_null(strstr(html, "&lt;b&gt;love&lt;/b&gt;"));         /* escaped */
    assert_null(strstr(html, "<b>love"));
    assert_non_null(strstr(html, "t &amp; &lt;title&gt;"));
    assert_non_null(strstr(html, "rgba(220,40,40,1.000)"));            /* the largest positive: full red */
    assert_non_null(strstr(html, "id=\"layer\""));
    assert_null(strstr(html, "http"));                                  /* self-contained */
    free(html);
}

static void test_cli(void **state) {
    if (!ft_fixture_present(FIX)) skip();
    cJSON *ref = read_ref();
    const cJSON *rc = cJSON_GetArrayItem(cJSON_GetObjectItem(ref, "cases"), 0);
    char *out = NULL;
    const char *dir = ft_fixture(FIX);
    assert_int_equal(ft_test_finetune(&out, "explain --model %s --text 'a great movie , not bad' --json", dir), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "target")->valuestring, "neutral");
    assert_string_equal(cJSON_GetObjectItem(j, "f")->valuestring, "prob");
    const cJSON *fa = cJSON_GetObjectItem(j, "features"), *shap = cJSON_GetObjectItem(rc, "shap");
    assert_int_equal(cJSON_GetArraySize(fa), cJSON_GetArraySize(shap));
    for (int i = 0; i < cJSON_GetArraySize(fa); i++)
        assert_true(fabs(cJSON_GetObjectItem(cJSON_GetArrayItem(fa, i), "score")->valuedouble - cJSON_GetArrayItem(shap, i)->valuedouble) < 1e-6);
    assert_true(fabs(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "shap"), "efficiency_gap")->valuedouble) < 1e-6);
    cJSON_Delete(j);
    free(out);
    /* IG table and HTML page */
    const char *html = ft_test_path(g_tmp, "e.html");
    assert_int_equal(ft_test_finetune(&out, "explain --model %s --text 'a great movie , not bad' --method ig --unit word --html %s", dir, html), 0);
    assert_non_null(strstr(out, "completeness: sum attr"));
    assert_non_null(strstr(out, "sorted (most positive first)"));
    free(out);
    char *page = NULL;
    size_t len = 0;
    assert_int_equal(ft_file_read_all(html, &page, &len), 0);
    assert_non_null(strstr(page, "var ATT=["));
    free(page);
    /* a target by name, the logit */
    assert_int_equal(ft_test_finetune(&out, "explain --model %s --text 'a great movie' --target positive --logit", dir), 0);
    assert_non_null(strstr(out, "f = logit of positive"));
    free(out);
    /* errors */
    assert_int_equal(ft_test_finetune(&out, "explain --model %s --text 'a movie' --target happy", dir), 1);
    assert_non_null(strstr(out, "labels: negative, neutral, positive"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "explain --model %s --text 'a movie' --method lime", dir), 2);
    free(out);
    /* a decoder without --continuation explains its own greedy next token; no --model: the embedded default */
    assert_int_equal(ft_test_finetune(&out, "explain --text 'Lily saw a'"), 0);
    assert_non_null(strstr(out, "no --continuation: explaining the model's greedy next token"));
    assert_non_null(strstr(out, "efficiency: sum phi"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "explain --model models/stories260K --text 'Lily saw' --continuation ' a dog' --method attention --json"), 0);
    assert_non_null(strstr(out, "\"layers\":"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "explain --model models/stories260K --text 'Lily saw' --continuation ' a dog' --method ig"), 0);
    assert_non_null(strstr(out, "completeness: sum attr"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "explain --model models/stories260K --text 'Lily saw' --continuation ' a dog' --unit word"), 0);
    assert_non_null(strstr(out, "efficiency: sum phi"));
    free(out);
    cJSON_Delete(ref);
}

static int setup(void **state) { return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_explain"); }
static int teardown(void **state) { return ft_test_tmpdir_remove(g_tmp); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shap_parity),
        cmocka_unit_test(test_ig_parity),
        cmocka_unit_test(test_ig_steps),
        cmocka_unit_test(test_shap_sampled_converges),
        cmocka_unit_test(test_gauss_legendre),
        cmocka_unit_test(test_features_and_errors),
        cmocka_unit_test(test_decoder),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
