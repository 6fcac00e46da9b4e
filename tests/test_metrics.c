/* test_metrics.c — evaluation metrics (include/finetune/metrics.h).
 *
 * Parity: tests/fixtures/metrics/metrics.json (made by tests/parity/make_metrics_fixtures.py with
 * scikit-learn and seqeval) holds inputs and expected values; every value is recomputed here
 * through the one-shot functions, the streaming accumulators (random batch sizes, double and
 * float probabilities, y_pred = NULL) and the single-metric functions, and must agree within
 * 1e-9 (|got - ref| <= 1e-9 * max(1, |ref|)); integers (supports, confusion matrices, entity
 * spans) must be equal. Each parity test prints its case count, values compared and the largest
 * error. Also: JSON output read back with cJSON, the k-fold helper, ECE bin edges, and every
 * invalid input (code, message, accumulator unchanged). */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/metrics.h"
#include "finetune/status.h"

#define TOL 1e-9

/* ---------------------------------------------------------------- fixture + comparison */

static cJSON *g_fix;

static int load_fixture(void **state) {
    (void)state;
    const char *path = ft_fixture("metrics/metrics.json");
    FILE *f = fopen(path, "rb");
    if (!f) { printf("cannot open %s (run python3 tests/parity/make_metrics_fixtures.py)\n", path); return -1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return -1; }
    fclose(f);
    buf[n] = 0;
    g_fix = cJSON_Parse(buf);
    free(buf);
    if (!g_fix) { printf("%s: not JSON\n", path); return -1; }
    const cJSON *v = cJSON_GetObjectItem(g_fix, "versions");
    char *vs = cJSON_PrintUnformatted(v);
    printf("fixture %s, references from %s\n", path, vs ? vs : "?");
    cJSON_free(vs);
    return 0;
}

static int free_fixture(void **state) {
    (void)state;
    cJSON_Delete(g_fix);
    return 0;
}

typedef struct stats { long cases, values; double max_err; const char *worst; char worst_buf[160]; } stats;
static stats g_st;

static void stats_reset(void) { memset(&g_st, 0, sizeof g_st); }
static void stats_print(const char *what) {
    printf("%s: %ld cases, %ld values compared, max |err| %.3g%s%s (tolerance %g relative to max(1, |ref|))\n",
           what, g_st.cases, g_st.values, g_st.max_err, g_st.worst ? " at " : "", g_st.worst ? g_st.worst : "", TOL);
}

/* got vs expected JSON number (null: got must be NaN). */
static void check_num(const char *ctx, const char *key, double got, const cJSON *exp) {
    g_st.values++;
    if (!exp || cJSON_IsNull(exp)) {
        if (!isnan(got)) fail_msg("%s: %s = %.17g, expected NaN (reference null)", ctx, key, got);
        return;
    }
    assert_true(cJSON_IsNumber(exp));
    double ref = exp->valuedouble, err = fabs(got - ref);
    if (isnan(got) || err > TOL * fmax(1.0, fabs(ref)))
        fail_msg("%s: %s = %.17g, reference %.17g (err %.3g)", ctx, key, got, ref, err);
    if (err > g_st.max_err) {
        g_st.max_err = err;
        snprintf(g_st.worst_buf, sizeof g_st.worst_buf, "%s %s", ctx, key);
        g_st.worst = g_st.worst_buf;
    }
}

static void check_int(const char *ctx, const char *key, int64_t got, const cJSON *exp) {
    g_st.values++;
    assert_true(cJSON_IsNumber(exp));
    if (got != (int64_t)exp->valuedouble)
        fail_msg("%s: %s = %lld, reference %lld", ctx, key, (long long)got, (long long)exp->valuedouble);
}

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static int32_t *int_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    assert_non_null(v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = (int32_t)x->valuedouble;
    return v;
}

static double *double_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    double *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    assert_non_null(v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = x->valuedouble;
    return v;
}

/* [[...], ...] of n rows of K numbers into a row-major array. */
static double *matrix(const cJSON *a, int n, int K) {
    double *v = malloc((size_t)n * K * sizeof *v);
    assert_non_null(v);
    int i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, a) {
        assert_int_equal(cJSON_GetArraySize(row), K);
        const cJSON *x;
        int k = 0;
        cJSON_ArrayForEach(x, row) v[(size_t)i * K + k++] = x->valuedouble;
        i++;
    }
    assert_int_equal(i, n);
    return v;
}

/* Deterministic batch sizes 1..max. */
static uint32_t g_lcg = 12345;
static int64_t next_batch(int64_t max) {
    g_lcg = g_lcg * 1664525u + 1013904223u;
    return 1 + (int64_t)((g_lcg >> 8) % (uint32_t)max);
}

/* ---------------------------------------------------------------- classification */

typedef struct ccase {
    const char *name;
    int K, n, bins, all_labels, f32, y_pred_is_argmax;
    int32_t *y_true, *y_pred;
    double *probs; /* NULL when the case has none */
    const cJSON *exp;
} ccase;

static ccase read_case(const cJSON *c) {
    ccase k = {0};
    k.name = item(c, "name")->valuestring;
    k.K = item(c, "num_classes")->valueint;
    k.bins = item(c, "ece_bins")->valueint;
    k.all_labels = cJSON_IsTrue(item(c, "all_labels"));
    k.f32 = cJSON_IsTrue(item(c, "f32"));
    k.y_pred_is_argmax = cJSON_IsTrue(item(c, "y_pred_is_argmax"));
    int n2;
    k.y_true = int_array(item(c, "y_true"), &k.n);
    k.y_pred = int_array(item(c, "y_pred"), &n2);
    assert_int_equal(n2, k.n);
    const cJSON *p = item(c, "probs");
    k.probs = cJSON_IsNull(p) ? NULL : matrix(p, k.n, k.K);
    k.exp = item(c, "expected");
    return k;
}

static void free_case(ccase *k) { free(k->y_true); free(k->y_pred); free(k->probs); }

static void check_report(const char *ctx, const ccase *k, const ft_metrics_report *r) {
    const cJSON *e = k->exp;
    assert_int_equal(r->num_classes, k->K);
    assert_int_equal(r->n, k->n);
    static const char *scal[] = {"accuracy", "precision_macro", "recall_macro", "f1_macro", "precision_micro",
                                 "recall_micro", "f1_micro", "precision_weighted", "recall_weighted", "f1_weighted"};
    const double got[] = {r->accuracy, r->precision_macro, r->recall_macro, r->f1_macro, r->precision_micro,
                          r->recall_micro, r->f1_micro, r->precision_weighted, r->recall_weighted, r->f1_weighted};
    for (size_t i = 0; i < sizeof scal / sizeof *scal; i++) check_num(ctx, scal[i], got[i], item(e, scal[i]));

    /* label set and per-class scores (classes outside it: all zero) */
    const cJSON *labels = item(e, "labels");
    assert_int_equal(r->num_labels, cJSON_GetArraySize(labels));
    const cJSON *pc = item(e, "per_class");
    char key[64];
    char *in_set = calloc((size_t)k->K, 1);
    for (int l = 0; l < r->num_labels; l++) {
        int c = r->labels[l];
        check_int(ctx, "labels", c, cJSON_GetArrayItem(labels, l));
        in_set[c] = 1;
        snprintf(key, sizeof key, "precision[%d]", c);
        check_num(ctx, key, r->per_class[c].precision, cJSON_GetArrayItem(item(pc, "precision"), l));
        snprintf(key, sizeof key, "recall[%d]", c);
        check_num(ctx, key, r->per_class[c].recall, cJSON_GetArrayItem(item(pc, "recall"), l));
        snprintf(key, sizeof key, "f1[%d]", c);
        check_num(ctx, key, r->per_class[c].f1, cJSON_GetArrayItem(item(pc, "f1"), l));
        snprintf(key, sizeof key, "support[%d]", c);
        check_int(ctx, key, r->per_class[c].support, cJSON_GetArrayItem(item(pc, "support"), l));
    }
    for (int c = 0; c < k->K; c++)
        if (!in_set[c]) {
            assert_true(r->per_class[c].precision == 0 && r->per_class[c].recall == 0 && r->per_class[c].f1 == 0);
            assert_true(r->per_class[c].support == 0 && r->per_class[c].predicted == 0);
        }
    free(in_set);

    const cJSON *cm = item(e, "confusion_matrix");
    for (int t = 0; t < k->K; t++)
        for (int p = 0; p < k->K; p++) {
            snprintf(key, sizeof key, "confusion[%d][%d]", t, p);
            check_int(ctx, key, r->confusion[t * k->K + p], cJSON_GetArrayItem(cJSON_GetArrayItem(cm, t), p));
        }

    assert_int_equal(r->has_probs, k->probs != NULL);
    if (!k->probs) {
        assert_true(isnan(r->ece) && isnan(r->log_loss) && isnan(r->roc_auc) && isnan(r->brier));
        assert_null(r->calib);
        return;
    }
    check_num(ctx, "ece", r->ece, item(e, "ece"));
    check_num(ctx, "log_loss", r->log_loss, item(e, "log_loss"));
    if (k->K == 2) {
        check_num(ctx, "roc_auc", r->roc_auc, item(e, "roc_auc"));
        check_num(ctx, "brier", r->brier, item(e, "brier"));
    } else {
        assert_true(isnan(r->roc_auc) && isnan(r->brier));
    }
    const cJSON *calib = item(e, "calib");
    assert_int_equal(r->ece_bins, cJSON_GetArraySize(calib));
    for (int b = 0; b < r->ece_bins; b++) {
        const cJSON *row = cJSON_GetArrayItem(calib, b);
        snprintf(key, sizeof key, "calib[%d].count", b);
        check_int(ctx, key, r->calib[b].count, cJSON_GetArrayItem(row, 0));
        snprintf(key, sizeof key, "calib[%d].accuracy", b);
        check_num(ctx, key, r->calib[b].accuracy, cJSON_GetArrayItem(row, 1));
        snprintf(key, sizeof key, "calib[%d].confidence", b);
        check_num(ctx, key, r->calib[b].confidence, cJSON_GetArrayItem(row, 2));
    }
}

/* Batches of random size; float probabilities for f32 cases; y_pred NULL when it is the argmax. */
static void stream_case(const ccase *k, const ft_metrics_params *p, int use_f32, int null_pred, ft_metrics_report *r) {
    ft_metrics *m;
    assert_int_equal(ft_metrics_init(&m, p), FT_OK);
    float *pf = NULL;
    if (use_f32) {
        pf = malloc((size_t)k->n * k->K * sizeof *pf);
        for (int64_t i = 0; i < (int64_t)k->n * k->K; i++) pf[i] = (float)k->probs[i];
    }
    for (int64_t i = 0; i < k->n;) {
        int64_t b = next_batch(37);
        if (b > k->n - i) b = k->n - i;
        const int32_t *yp = null_pred ? NULL : k->y_pred + i;
        int rc = use_f32 ? ft_metrics_add_f32(m, k->y_true + i, yp, pf + i * k->K, b)
                         : ft_metrics_add(m, k->y_true + i, yp, k->probs ? k->probs + i * k->K : NULL, b);
        if (rc != FT_OK) fail_msg("%s: add: %s", k->name, ft_last_error());
        i += b;
    }
    assert_int_equal(ft_metrics_count(m), k->n);
    assert_int_equal(ft_metrics_compute(m, r), FT_OK);
    ft_metrics_free(m);
    free(pf);
}

static void test_classification_parity(void **state) {
    (void)state;
    stats_reset();
    const cJSON *c;
    cJSON_ArrayForEach(c, item(g_fix, "classification")) {
        ccase k = read_case(c);
        ft_metrics_params p = ft_metrics_default_params(k.K);
        p.ece_bins = k.bins;
        p.all_labels = k.all_labels;
        char ctx[128];
        long v0 = g_st.values;
        ft_metrics_report r;

        /* one shot (double probabilities) */
        snprintf(ctx, sizeof ctx, "%s/oneshot", k.name);
        if (ft_metrics_classification(&r, &p, k.y_true, k.y_pred, k.probs, k.n) != FT_OK)
            fail_msg("%s: %s", ctx, ft_last_error());
        check_report(ctx, &k, &r);
        ft_metrics_report_free(&r);

        /* streaming, double probabilities (and y_pred = NULL when it is the argmax) */
        snprintf(ctx, sizeof ctx, "%s/stream", k.name);
        stream_case(&k, &p, 0, 0, &r);
        check_report(ctx, &k, &r);
        ft_metrics_report_free(&r);
        if (k.y_pred_is_argmax) {
            snprintf(ctx, sizeof ctx, "%s/stream_argmax", k.name);
            stream_case(&k, &p, k.f32, 1, &r);
            check_report(ctx, &k, &r);
            ft_metrics_report_free(&r);
        }
        if (k.f32) {
            snprintf(ctx, sizeof ctx, "%s/stream_f32", k.name);
            stream_case(&k, &p, 1, 0, &r);
            check_report(ctx, &k, &r);
            ft_metrics_report_free(&r);
        }

        /* single-metric functions */
        snprintf(ctx, sizeof ctx, "%s/single", k.name);
        double v;
        assert_int_equal(ft_metrics_accuracy(&v, k.y_true, k.y_pred, k.n, k.K), FT_OK);
        check_num(ctx, "accuracy", v, item(k.exp, "accuracy"));
        int64_t *cm = malloc((size_t)k.K * k.K * sizeof *cm);
        assert_int_equal(ft_metrics_confusion_matrix(cm, k.y_true, k.y_pred, k.n, k.K), FT_OK);
        for (int t = 0; t < k.K; t++)
            for (int q = 0; q < k.K; q++)
                check_int(ctx, "confusion", cm[t * k.K + q],
                          cJSON_GetArrayItem(cJSON_GetArrayItem(item(k.exp, "confusion_matrix"), t), q));
        free(cm);
        if (k.probs) {
            assert_int_equal(ft_metrics_ece(&v, k.y_true, k.probs, k.n, k.K, k.bins), FT_OK);
            check_num(ctx, "ece", v, item(k.exp, "ece"));
            assert_int_equal(ft_metrics_log_loss(&v, k.y_true, k.probs, k.n, k.K), FT_OK);
            check_num(ctx, "log_loss", v, item(k.exp, "log_loss"));
            if (k.K == 2) {
                double *p1 = malloc((size_t)k.n * sizeof *p1);
                for (int i = 0; i < k.n; i++) p1[i] = k.probs[2 * i + 1];
                assert_int_equal(ft_metrics_roc_auc(&v, k.y_true, p1, k.n), FT_OK);
                check_num(ctx, "roc_auc", v, item(k.exp, "roc_auc"));
                assert_int_equal(ft_metrics_brier(&v, k.y_true, p1, k.n), FT_OK);
                check_num(ctx, "brier", v, item(k.exp, "brier"));
                free(p1);
            }
        }
        printf("  %-26s K=%-2d n=%-4d bins=%-2d %-10s %-10s %4ld values OK\n", k.name, k.K, k.n, k.bins,
               k.probs ? (k.f32 ? "probs(f32)" : "probs") : "no probs", k.all_labels ? "all_labels" : "",
               g_st.values - v0);
        g_st.cases++;
        free_case(&k);
    }
    stats_print("classification (sklearn 1.9 precision_recall_fscore_support / confusion_matrix / log_loss / "
                "roc_auc_score / brier_score_loss; ECE reference)");
}

static void test_roc_parity(void **state) {
    (void)state;
    stats_reset();
    const cJSON *c;
    cJSON_ArrayForEach(c, item(g_fix, "roc")) {
        int n, n2;
        int32_t *y = int_array(item(c, "y_true"), &n);
        double *s = double_array(item(c, "score"), &n2);
        assert_int_equal(n, n2);
        double v;
        assert_int_equal(ft_metrics_roc_auc(&v, y, s, n), FT_OK);
        check_num(item(c, "name")->valuestring, "roc_auc", v, item(c, "expected"));
        printf("  roc %-12s n=%-4d auc %.17g\n", item(c, "name")->valuestring, n, v);
        g_st.cases++;
        free(y); free(s);
    }
    /* infinite scores are ordered like any other (sklearn refuses them; huge_scores checks the same order) */
    int32_t y[] = {0, 1, 0, 1, 1, 0};
    double s[] = {-INFINITY, INFINITY, 0.0, INFINITY, -1.0, -INFINITY}, v;
    assert_int_equal(ft_metrics_roc_auc(&v, y, s, 6), FT_OK);
    const cJSON *c5 = cJSON_GetArrayItem(item(g_fix, "roc"), 5);
    assert_string_equal(item(c5, "name")->valuestring, "huge_scores");
    check_num("infinite_scores", "roc_auc", v, item(c5, "expected"));
    stats_print("roc_auc (sklearn roc_auc_score)");
}

/* ---------------------------------------------------------------- NER */

static const char **tags_of(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    const char **t = malloc((size_t)(*n ? *n : 1) * sizeof *t);
    assert_non_null(t);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) t[i++] = x->valuestring;
    return t;
}

static void check_entities(const char *ctx, const char *const *tags, int n, const cJSON *exp) {
    ft_ner_entity *e;
    int64_t cnt;
    assert_int_equal(ft_ner_entities(&e, &cnt, tags, n), FT_OK);
    if (cnt != cJSON_GetArraySize(exp)) fail_msg("%s: %lld entities, reference %d", ctx, (long long)cnt, cJSON_GetArraySize(exp));
    for (int64_t i = 0; i < cnt; i++) {
        const cJSON *x = cJSON_GetArrayItem(exp, (int)i);
        const char *type = cJSON_GetArrayItem(x, 0)->valuestring;
        if (e[i].type_len != strlen(type) || memcmp(e[i].type, type, e[i].type_len))
            fail_msg("%s: entity %lld type '%.*s', reference '%s'", ctx, (long long)i, (int)e[i].type_len, e[i].type, type);
        check_int(ctx, "entity.start", e[i].start, cJSON_GetArrayItem(x, 1));
        check_int(ctx, "entity.end", e[i].end, cJSON_GetArrayItem(x, 2));
    }
    free(e);
}

static void check_ner_report(const char *ctx, const ft_ner_report *r, const cJSON *e) {
    static const char *keys[] = {"precision_micro", "recall_micro", "f1_micro", "precision_macro", "recall_macro",
                                 "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted"};
    const double got[] = {r->precision_micro, r->recall_micro, r->f1_micro, r->precision_macro, r->recall_macro,
                          r->f1_macro, r->precision_weighted, r->recall_weighted, r->f1_weighted};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const cJSON *x = item(e, keys[i]);
        if (cJSON_IsNull(x)) { /* seqeval: nan for the macro average of no types; documented as 0 here */
            assert_int_equal(r->num_types, 0);
            assert_true(got[i] == 0.0);
            g_st.values++;
            continue;
        }
        check_num(ctx, keys[i], got[i], x);
    }
    if (cJSON_IsNull(item(e, "accuracy"))) assert_true(r->token_accuracy == 0.0 && r->num_tokens == 0);
    else check_num(ctx, "accuracy", r->token_accuracy, item(e, "accuracy"));
    const cJSON *types = item(e, "types"), *pt = item(e, "per_type");
    assert_int_equal(r->num_types, cJSON_GetArraySize(types));
    int64_t tsum = 0;
    for (int i = 0; i < r->num_types; i++) {
        const ft_ner_type_scores *s = &r->per_type[i];
        assert_string_equal(s->type, cJSON_GetArrayItem(types, i)->valuestring);
        check_num(ctx, "type.precision", s->precision, cJSON_GetArrayItem(item(pt, "precision"), i));
        check_num(ctx, "type.recall", s->recall, cJSON_GetArrayItem(item(pt, "recall"), i));
        check_num(ctx, "type.f1", s->f1, cJSON_GetArrayItem(item(pt, "f1"), i));
        check_int(ctx, "type.support", s->support, cJSON_GetArrayItem(item(pt, "support"), i));
        tsum += s->support;
    }
    assert_int_equal(tsum, r->num_true);
}

static void test_ner_parity(void **state) {
    (void)state;
    stats_reset();
    const cJSON *c;
    cJSON_ArrayForEach(c, item(g_fix, "ner")) {
        const char *name = item(c, "name")->valuestring;
        const cJSON *e = item(c, "expected");
        const cJSON *yt = item(c, "y_true"), *yp = item(c, "y_pred");
        int ns = cJSON_GetArraySize(yt);
        assert_int_equal(ns, cJSON_GetArraySize(yp));
        long v0 = g_st.values;
        ft_ner *a;
        assert_int_equal(ft_ner_init(&a), FT_OK);
        for (int rep = 0; rep < 2; rep++) { /* second pass after reset: same result */
            if (rep) ft_ner_reset(a);
            for (int s = 0; s < ns; s++) {
                int nt, np;
                const char **t = tags_of(cJSON_GetArrayItem(yt, s), &nt), **p = tags_of(cJSON_GetArrayItem(yp, s), &np);
                if (ft_ner_add(a, t, nt, p, np) != FT_OK) fail_msg("%s: sentence %d: %s", name, s, ft_last_error());
                if (!rep) {
                    char ctx[96];
                    snprintf(ctx, sizeof ctx, "%s/entities_true[%d]", name, s);
                    check_entities(ctx, t, nt, cJSON_GetArrayItem(item(e, "entities_true"), s));
                    snprintf(ctx, sizeof ctx, "%s/entities_pred[%d]", name, s);
                    check_entities(ctx, p, np, cJSON_GetArrayItem(item(e, "entities_pred"), s));
                }
                free(t); free(p);
            }
            ft_ner_report r;
            assert_int_equal(ft_ner_compute(a, &r), FT_OK);
            assert_int_equal(r.num_sentences, ns);
            check_ner_report(name, &r, e);
            ft_ner_report_free(&r);
        }
        ft_ner_free(a);

        const cJSON *names = item(c, "names");
        if (names) { /* the same case through tag ids with -100 positions */
            int nn;
            const char **nm = tags_of(names, &nn);
            assert_int_equal(ft_ner_init(&a), FT_OK);
            for (int s = 0; s < ns; s++) {
                int lt, lp;
                int32_t *it = int_array(cJSON_GetArrayItem(item(c, "ids_true"), s), &lt);
                int32_t *ip = int_array(cJSON_GetArrayItem(item(c, "ids_pred"), s), &lp);
                assert_int_equal(lt, lp);
                if (ft_ner_add_ids(a, nm, nn, it, ip, lt) != FT_OK) fail_msg("%s: ids: %s", name, ft_last_error());
                free(it); free(ip);
            }
            ft_ner_report r;
            assert_int_equal(ft_ner_compute(a, &r), FT_OK);
            check_ner_report("ids_minus100/ids", &r, e);
            ft_ner_report_free(&r);
            ft_ner_free(a);
            free(nm);
        }
        printf("  ner %-30s %2d sentences  %4ld values OK  f1_micro %.6f\n", name, ns, g_st.values - v0,
               item(e, "f1_micro")->valuedouble);
        g_st.cases++;
    }
    stats_print("ner (seqeval 1.2 precision_recall_fscore_support / accuracy_score / get_entities)");
}

/* ---------------------------------------------------------------- k-fold */

static void test_kfold_parity(void **state) {
    (void)state;
    stats_reset();
    const cJSON *c;
    cJSON_ArrayForEach(c, item(g_fix, "kfold")) {
        int n;
        double *v = double_array(item(c, "values"), &n), mean, sd;
        assert_int_equal(ft_metrics_mean_std(&mean, &sd, v, n), FT_OK);
        const char *name = item(c, "name")->valuestring;
        check_num(name, "mean", mean, item(c, "mean"));
        check_num(name, "std", sd, item(c, "std"));
        printf("  kfold %-9s n=%-2d mean %.17g std %.17g\n", name, n, mean, sd);
        g_st.cases++;
        free(v);
    }
    stats_print("kfold (numpy mean / std(ddof=1))");
}

/* ---------------------------------------------------------------- JSON */

static const cJSON *find_case(const char *group, const char *name) {
    const cJSON *c;
    cJSON_ArrayForEach(c, item(g_fix, group)) if (!strcmp(item(c, "name")->valuestring, name)) return c;
    fail_msg("no case %s/%s in the fixture", group, name);
    return NULL;
}

static void expect_json_num(const cJSON *o, const char *key, double want) {
    const cJSON *x = item(o, key);
    if (!x) fail_msg("JSON has no key %s", key);
    if (isnan(want)) { assert_true(cJSON_IsNull(x)); return; }
    assert_true(cJSON_IsNumber(x));
    if (x->valuedouble != want) fail_msg("JSON %s = %.17g, report %.17g", key, x->valuedouble, want);
}

static void test_report_json(void **state) {
    (void)state;
    int checked = 0;
    const char *names3[] = {"neg", "neu", "pos"};
    const char *cases[] = {"binary_random", "multi3_random", "never_true", "binary_no_probs", "absent_class_default"};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        ccase k = read_case(find_case("classification", cases[ci]));
        ft_metrics_params p = ft_metrics_default_params(k.K);
        p.all_labels = k.all_labels;
        ft_metrics_report r;
        assert_int_equal(ft_metrics_classification(&r, &p, k.y_true, k.y_pred, k.probs, k.n), FT_OK);
        const char *const *names = k.K == 3 ? names3 : NULL;
        char *js = NULL;
        assert_int_equal(ft_metrics_report_json(&js, &r, names), FT_OK);
        cJSON *o = cJSON_Parse(js);
        assert_non_null(o);
        expect_json_num(o, "num_samples", (double)r.n);
        expect_json_num(o, "accuracy", r.accuracy);
        expect_json_num(o, "precision_macro", r.precision_macro);
        expect_json_num(o, "recall_macro", r.recall_macro);
        expect_json_num(o, "f1_macro", r.f1_macro);
        expect_json_num(o, "precision_micro", r.precision_micro);
        expect_json_num(o, "recall_micro", r.recall_micro);
        expect_json_num(o, "f1_micro", r.f1_micro);
        expect_json_num(o, "precision_weighted", r.precision_weighted);
        expect_json_num(o, "recall_weighted", r.recall_weighted);
        expect_json_num(o, "f1_weighted", r.f1_weighted);
        expect_json_num(o, "ece", r.has_probs ? r.ece : NAN);
        if (r.has_probs) expect_json_num(o, "log_loss", r.log_loss);
        else assert_null(item(o, "log_loss"));
        if (k.K == 2) { expect_json_num(o, "roc_auc", r.roc_auc); expect_json_num(o, "brier", r.brier); }
        else { assert_null(item(o, "roc_auc")); assert_null(item(o, "brier")); }
        const cJSON *pc = item(o, "per_class");
        assert_int_equal(cJSON_GetArraySize(pc), r.num_labels);
        for (int l = 0; l < r.num_labels; l++) {
            const cJSON *e = cJSON_GetArrayItem(pc, l);
            int c = r.labels[l];
            const cJSON *lab = item(e, "label");
            if (names) assert_string_equal(lab->valuestring, names[c]);
            else assert_int_equal((int)lab->valuedouble, c);
            expect_json_num(e, "precision", r.per_class[c].precision);
            expect_json_num(e, "recall", r.per_class[c].recall);
            expect_json_num(e, "f1", r.per_class[c].f1);
            expect_json_num(e, "support", (double)r.per_class[c].support);
        }
        const cJSON *cm = item(o, "confusion_matrix");
        assert_int_equal(cJSON_GetArraySize(cm), k.K);
        for (int t = 0; t < k.K; t++) {
            assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(cm, t)), k.K);
            for (int q = 0; q < k.K; q++)
                assert_int_equal((int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(cm, t), q)->valuedouble,
                                 r.confusion[t * k.K + q]);
        }
        assert_int_equal(cJSON_GetArraySize(item(o, "labels")), k.K);
        printf("  json %-22s %zu bytes: %.140s...\n", k.name, strlen(js), js);
        checked++;
        cJSON_Delete(o);
        free(js);
        ft_metrics_report_free(&r);
        free_case(&k);
    }

    /* NER report */
    const cJSON *c = find_case("ner", "random_bio");
    ft_ner *a;
    assert_int_equal(ft_ner_init(&a), FT_OK);
    for (int s = 0; s < cJSON_GetArraySize(item(c, "y_true")); s++) {
        int nt, np;
        const char **t = tags_of(cJSON_GetArrayItem(item(c, "y_true"), s), &nt);
        const char **p = tags_of(cJSON_GetArrayItem(item(c, "y_pred"), s), &np);
        assert_int_equal(ft_ner_add(a, t, nt, p, np), FT_OK);
        free(t); free(p);
    }
    ft_ner_report nr;
    assert_int_equal(ft_ner_compute(a, &nr), FT_OK);
    char *js;
    assert_int_equal(ft_ner_report_json(&js, &nr), FT_OK);
    cJSON *o = cJSON_Parse(js);
    assert_non_null(o);
    expect_json_num(o, "f1_micro", nr.f1_micro);
    expect_json_num(o, "f1_macro", nr.f1_macro);
    expect_json_num(o, "precision_weighted", nr.precision_weighted);
    expect_json_num(o, "accuracy", nr.token_accuracy);
    expect_json_num(o, "num_true", (double)nr.num_true);
    const cJSON *pt = item(o, "per_type");
    assert_int_equal(cJSON_GetArraySize(pt), nr.num_types);
    for (int i = 0; i < nr.num_types; i++) {
        assert_string_equal(item(cJSON_GetArrayItem(pt, i), "type")->valuestring, nr.per_type[i].type);
        expect_json_num(cJSON_GetArrayItem(pt, i), "f1", nr.per_type[i].f1);
        expect_json_num(cJSON_GetArrayItem(pt, i), "support", (double)nr.per_type[i].support);
    }
    printf("  json ner %zu bytes: %.140s...\n", strlen(js), js);
    cJSON_Delete(o);
    free(js);
    ft_ner_report_free(&nr);
    ft_ner_free(a);

    /* k-fold summary over 4 folds of binary_random (one fold without probabilities: ece etc. null) */
    ccase k = read_case(find_case("classification", "binary_random"));
    ft_metrics_params p = ft_metrics_default_params(2);
    ft_metrics_report folds[4];
    int per = k.n / 4;
    for (int f = 0; f < 4; f++)
        assert_int_equal(ft_metrics_classification(&folds[f], &p, k.y_true + f * per, k.y_pred + f * per,
                                                   f == 3 ? NULL : k.probs + 2 * f * per, per), FT_OK);
    assert_int_equal(ft_metrics_kfold_json(&js, folds, 4), FT_OK);
    o = cJSON_Parse(js);
    assert_non_null(o);
    expect_json_num(o, "folds", 4);
    double acc[4], mean, sd;
    for (int f = 0; f < 4; f++) acc[f] = folds[f].accuracy;
    assert_int_equal(ft_metrics_mean_std(&mean, &sd, acc, 4), FT_OK);
    expect_json_num(item(o, "accuracy"), "mean", mean);
    expect_json_num(item(o, "accuracy"), "std", sd);
    assert_int_equal(cJSON_GetArraySize(item(item(o, "accuracy"), "values")), 4);
    assert_true(cJSON_IsNull(item(item(o, "ece"), "mean")));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(item(item(o, "ece"), "values"), 3)));
    assert_true(cJSON_IsNumber(cJSON_GetArrayItem(item(item(o, "ece"), "values"), 0)));
    printf("  json kfold %zu bytes: %.140s...\n", strlen(js), js);
    cJSON_Delete(o);
    free(js);
    for (int f = 0; f < 4; f++) ft_metrics_report_free(&folds[f]);
    free_case(&k);
    printf("report JSON: %d classification reports, 1 NER report, 1 k-fold summary read back exactly\n", checked);
}

/* ---------------------------------------------------------------- ECE bins */

static void test_ece_bins(void **state) {
    (void)state;
    assert_int_equal(ft_metrics_ece_bin(0.0, 15), 0);
    assert_int_equal(ft_metrics_ece_bin(1.0, 15), 14);
    assert_int_equal(ft_metrics_ece_bin(1e-300, 15), 0);
    assert_int_equal(ft_metrics_ece_bin(0.5, 2), 0);       /* (0, 0.5] */
    assert_int_equal(ft_metrics_ece_bin(nextafter(0.5, 1), 2), 1);
    assert_int_equal(ft_metrics_ece_bin(0.5, 1), 0);
    int checked = 0;
    for (int M = 1; M <= 40; M++)
        for (int b = 0; b <= M; b++) {
            double e = b == M ? 1.0 : b * (1.0 / M); /* numpy.linspace(0, 1, M + 1)[b] */
            if (b > 0) assert_int_equal(ft_metrics_ece_bin(e, M), b - 1);               /* upper edge included */
            if (b < M) assert_int_equal(ft_metrics_ece_bin(nextafter(e, 2.0), M), b);   /* just above: next bin */
            if (b > 0) assert_int_equal(ft_metrics_ece_bin(nextafter(e, -1.0), M), b - 1);
            checked += 3;
        }
    printf("ece bins: %d edge probes for M = 1..40 agree with (e_b, e_b+1] on numpy.linspace edges\n", checked);
}

/* ---------------------------------------------------------------- invalid input */

static void expect_err(int rc, int code, const char *sub) {
    const char *msg = ft_last_error();
    printf("  rc=%-3d %s\n", rc, msg);
    assert_int_equal(rc, code);
    if (sub && !strstr(msg, sub)) fail_msg("message '%s' lacks '%s'", msg, sub);
}

static void test_invalid_inputs(void **state) {
    (void)state;
    ft_metrics *m;
    ft_metrics_params p = ft_metrics_default_params(3);
    ft_metrics_params bad = p;
    bad.num_classes = 1;
    expect_err(ft_metrics_init(&m, &bad), FT_ERR_INVALID, "num_classes is 1");
    bad = p;
    bad.ece_bins = 0;
    expect_err(ft_metrics_init(&m, &bad), FT_ERR_INVALID, "ece_bins is 0");
    assert_int_equal(ft_metrics_init(&m, &p), FT_OK);

    int32_t yt[] = {0, 1, 2, 1}, yp[] = {0, 2, 2, 1};
    double pr[] = {0.7, 0.2, 0.1, 0.1, 0.3, 0.6, 0.2, 0.2, 0.6, 0.1, 0.8, 0.1};
    assert_int_equal(ft_metrics_add(m, yt, yp, pr, 4), FT_OK);
    ft_metrics_report before, after;
    assert_int_equal(ft_metrics_compute(m, &before), FT_OK);

    int32_t bad_t[] = {0, 3}, bad_neg[] = {-1, 0}, ok2[] = {0, 1};
    expect_err(ft_metrics_add(m, bad_t, ok2, pr, 2), FT_ERR_RANGE, "y_true[1] = 3");
    expect_err(ft_metrics_add(m, bad_neg, ok2, pr, 2), FT_ERR_RANGE, "y_true[0] = -1");
    expect_err(ft_metrics_add(m, ok2, bad_t, pr, 2), FT_ERR_RANGE, "y_pred[1] = 3");
    double nanp[] = {0.5, 0.5, 0.0, NAN, 0.5, 0.5};
    expect_err(ft_metrics_add(m, ok2, ok2, nanp, 2), FT_ERR_INVALID, "row 1: probability of class 0 is nan");
    double neg[] = {1.2, -0.2, 0.0};
    expect_err(ft_metrics_add(m, ok2, ok2, neg, 1), FT_ERR_INVALID, "not in [0, 1]");
    double logits[] = {2.0, 1.0, 0.5};
    expect_err(ft_metrics_add(m, ok2, ok2, logits, 1), FT_ERR_INVALID, "not in [0, 1]");
    double unnorm[] = {0.5, 0.3, 0.1};
    expect_err(ft_metrics_add(m, ok2, ok2, unnorm, 1), FT_ERR_INVALID, "sum to 0.9");
    float nanf_p[] = {0.5f, 0.5f, 0.0f, 0.2f, (float)NAN, 0.8f};
    expect_err(ft_metrics_add_f32(m, ok2, NULL, nanf_p, 2), FT_ERR_INVALID, "batch starting at sample 4: row 1");
    expect_err(ft_metrics_add(m, ok2, ok2, NULL, 2), FT_ERR_INVALID, "earlier batches had them");
    expect_err(ft_metrics_add(m, ok2, NULL, NULL, 2), FT_ERR_INVALID, "both NULL");
    expect_err(ft_metrics_add(m, NULL, ok2, pr, 2), FT_ERR_INVALID, "NULL y_true");
    expect_err(ft_metrics_add(m, ok2, ok2, pr, -1), FT_ERR_INVALID, "n = -1");
    assert_int_equal(ft_metrics_add(m, ok2, ok2, pr, 0), FT_OK); /* empty batch: no-op */

    /* nothing above changed the accumulator */
    assert_int_equal(ft_metrics_count(m), 4);
    assert_int_equal(ft_metrics_compute(m, &after), FT_OK);
    assert_true(after.accuracy == before.accuracy && after.f1_macro == before.f1_macro && after.ece == before.ece &&
                after.log_loss == before.log_loss);
    assert_memory_equal(after.confusion, before.confusion, 9 * sizeof *after.confusion);
    ft_metrics_report_free(&after);
    ft_metrics_report_free(&before);

    ft_metrics_reset(m);
    assert_int_equal(ft_metrics_count(m), 0);
    expect_err(ft_metrics_compute(m, &after), FT_ERR_INVALID, "no samples");
    assert_null(after.per_class);
    assert_int_equal(ft_metrics_add(m, ok2, ok2, NULL, 2), FT_OK); /* after reset: no-prob batches allowed */
    expect_err(ft_metrics_add(m, ok2, ok2, pr, 2), FT_ERR_INVALID, "earlier batches had none");
    ft_metrics_free(m);

    /* single functions */
    double v, mean, sd;
    expect_err(ft_metrics_accuracy(&v, yt, yp, 0, 3), FT_ERR_INVALID, "no samples");
    expect_err(ft_metrics_accuracy(&v, yt, yp, 4, 2), FT_ERR_RANGE, "y_true[2] = 2");
    expect_err(ft_metrics_ece(&v, yt, pr, 4, 3, 0), FT_ERR_INVALID, "bins is 0");
    expect_err(ft_metrics_log_loss(&v, yt, nanp, 2, 3), FT_ERR_INVALID, "is nan");
    int32_t yb[] = {0, 1, 2};
    double sc[] = {0.1, 0.2, 0.3};
    expect_err(ft_metrics_roc_auc(&v, yb, sc, 3), FT_ERR_RANGE, "y_true[2] = 2");
    double scn[] = {0.1, NAN};
    expect_err(ft_metrics_roc_auc(&v, yb, scn, 2), FT_ERR_INVALID, "score[1] is NaN");
    assert_int_equal(ft_metrics_brier(&v, yb, sc, 2), FT_OK); /* ((0.1 - 0)^2 + (0.2 - 1)^2) / 2 */
    assert_true(fabs(v - 0.325) < 1e-15);
    double p1bad[] = {0.5, 1.5};
    expect_err(ft_metrics_brier(&v, yb, p1bad, 2), FT_ERR_INVALID, "p1[1] = 1.5");
    expect_err(ft_metrics_mean_std(&mean, &sd, sc, 0), FT_ERR_INVALID, "no values");
    expect_err(ft_metrics_mean_std(&mean, &sd, scn, 2), FT_ERR_INVALID, "values[1] is NaN");
    ft_metrics_report empty = {0};
    char *js = NULL;
    expect_err(ft_metrics_report_json(&js, &empty, NULL), FT_ERR_INVALID, "not computed");
    assert_null(js);

    /* NER */
    ft_ner *a;
    assert_int_equal(ft_ner_init(&a), FT_OK);
    const char *t1[] = {"B-PER", "I-PER", "O"}, *p1[] = {"B-PER", "O", "O"}, *p_short[] = {"B-PER", "O"};
    assert_int_equal(ft_ner_add(a, t1, 3, p1, 3), FT_OK);
    ft_ner_report nb, na;
    assert_int_equal(ft_ner_compute(a, &nb), FT_OK);
    expect_err(ft_ner_add(a, t1, 3, p_short, 2), FT_ERR_SHAPE, "sentence 1: 3 true tags but 2 predicted tags");
    const char *t_null[] = {"B-PER", NULL, "O"}, *t_empty[] = {"B-PER", "", "O"};
    expect_err(ft_ner_add(a, t_null, 3, p1, 3), FT_ERR_INVALID, "tags_true[1] is NULL");
    expect_err(ft_ner_add(a, t1, 3, t_empty, 3), FT_ERR_INVALID, "tags_pred[1] is an empty string");
    const char *names[] = {"O", "B-PER", "I-PER"};
    int32_t it[] = {1, 2, -100, 0}, ip_bad[] = {1, 3, 0, 0}, it_bad[] = {1, 5, 0, 0}, ip[] = {1, 2, 7, 0};
    expect_err(ft_ner_add_ids(a, names, 3, it, ip_bad, 4), FT_ERR_RANGE, "ids_pred[1] = 3");
    expect_err(ft_ner_add_ids(a, names, 3, it_bad, ip, 4), FT_ERR_RANGE, "ids_true[1] = 5");
    assert_int_equal(ft_ner_compute(a, &na), FT_OK);
    assert_int_equal(na.num_sentences, 1);
    assert_true(na.f1_micro == nb.f1_micro && na.num_true == nb.num_true && na.num_pred == nb.num_pred);
    ft_ner_report_free(&na);
    /* a valid id sentence: the -100 position (pred 7, out of range) is dropped, not refused */
    assert_int_equal(ft_ner_add_ids(a, names, 3, it, ip, 4), FT_OK);
    assert_int_equal(ft_ner_compute(a, &na), FT_OK);
    assert_int_equal(na.num_tokens, 6);
    assert_int_equal(na.num_true, 2);
    assert_int_equal(na.num_correct, 1);
    ft_ner_report_free(&na);
    ft_ner_report_free(&nb);
    ft_ner_free(a);

    /* an empty accumulator gives an all-zero report */
    assert_int_equal(ft_ner_init(&a), FT_OK);
    assert_int_equal(ft_ner_compute(a, &na), FT_OK);
    assert_true(na.num_types == 0 && na.f1_micro == 0 && na.f1_macro == 0 && na.token_accuracy == 0);
    ft_ner_report_free(&na);
    ft_ner_free(a);
    ft_ner_entity *ents;
    int64_t cnt;
    expect_err(ft_ner_entities(&ents, &cnt, t_null, 3), FT_ERR_INVALID, "tags[1] is NULL");
    assert_int_equal(ft_ner_entities(&ents, &cnt, t1, 0), FT_OK);
    assert_null(ents);
    assert_int_equal(cnt, 0);
}

/* ---------------------------------------------------------------- long stream */

/* 200k samples (scores with ties) in random batches: the streamed report equals the one-shot
 * report and the single-metric functions (batching does not change the order of the sums). */
static void test_long_stream(void **state) {
    (void)state;
    const int64_t n = 200000;
    int32_t *y = malloc(n * sizeof *y), *yp = malloc(n * sizeof *yp);
    double *pr = malloc(2 * n * sizeof *pr), *p1 = malloc(n * sizeof *p1);
    uint64_t s = 88172645463325252ull;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        y[i] = (int32_t)(s & 1);
        double u = (double)(s >> 11) / 9007199254740992.0;
        double q = y[i] ? 0.3 + 0.7 * u : 0.8 * u;
        q = floor(q * 1000) / 1000; /* ties */
        pr[2 * i] = 1.0 - q; pr[2 * i + 1] = q; p1[i] = q;
        yp[i] = q > 0.5;
    }
    ft_metrics_params p = ft_metrics_default_params(2);
    ft_metrics_report one, st;
    assert_int_equal(ft_metrics_classification(&one, &p, y, yp, pr, n), FT_OK);
    ft_metrics *m;
    assert_int_equal(ft_metrics_init(&m, &p), FT_OK);
    for (int64_t i = 0; i < n;) {
        int64_t b = next_batch(4096);
        if (b > n - i) b = n - i;
        assert_int_equal(ft_metrics_add(m, y + i, yp + i, pr + 2 * i, b), FT_OK);
        i += b;
    }
    assert_int_equal(ft_metrics_compute(m, &st), FT_OK);
    double auc, ll;
    assert_int_equal(ft_metrics_roc_auc(&auc, y, p1, n), FT_OK);
    assert_int_equal(ft_metrics_log_loss(&ll, y, pr, n, 2), FT_OK);
    printf("long stream n=%lld: auc %.15f (direct %.15f), log_loss diff %.3g, ece diff %.3g, brier diff %.3g\n",
           (long long)n, st.roc_auc, auc, fabs(st.log_loss - ll), fabs(st.ece - one.ece), fabs(st.brier - one.brier));
    assert_true(st.roc_auc == auc && one.roc_auc == auc);
    assert_true(fabs(st.log_loss - ll) <= 1e-15 * ll && fabs(st.ece - one.ece) <= 1e-15);
    assert_true(fabs(st.brier - one.brier) <= 1e-15 && st.f1_macro == one.f1_macro);
    ft_metrics_report_free(&one);
    ft_metrics_report_free(&st);
    ft_metrics_free(m);
    free(y); free(yp); free(pr); free(p1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification_parity),
        cmocka_unit_test(test_roc_parity),
        cmocka_unit_test(test_ner_parity),
        cmocka_unit_test(test_kfold_parity),
        cmocka_unit_test(test_report_json),
        cmocka_unit_test(test_ece_bins),
        cmocka_unit_test(test_invalid_inputs),
        cmocka_unit_test(test_long_stream),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
