/* test_fairness.c — group fairness metrics (include/finetune/fairness.h) against fairlearn.
 *
 * Parity: tests/fixtures/fairness/fairness.json (tests/parity/make_fairness_fixtures.py: fairlearn's
 * MetricFrame by_group / overall, demographic_parity_*, equal_opportunity_*, equalized_odds_*) on seeded
 * prediction sets: 1 to 5 groups, binary and 4-class labels, a group without positives, one without
 * negatives, nothing selected (ratios NaN), group ids with gaps. Every value must agree within 1e-12 and
 * counts exactly; NaN where fairlearn gives NaN.
 * Live: when python3 can import fairlearn, three fresh random cases are drawn by the same script
 * (--live SEED) and compared the same way (skipped with a message otherwise).
 * Also: a hand-computed case, the JSON output, and invalid inputs. */
#include "testutil.h"
#include "core/json_util.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "finetune/fairness.h"
#include "finetune/status.h"

#define TOL 1e-12

static long g_values;
static double g_max_err;

static const cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void check_num(const char *ctx, const char *key, double got, const cJSON *exp) {
    g_values++;
    if (!exp || cJSON_IsNull(exp)) {
        if (!isnan(got)) fail_msg("%s: %s = %.17g, fairlearn gives NaN", ctx, key, got);
        return;
    }
    double ref = exp->valuedouble, err = fabs(got - ref);
    if (isnan(got) || err > TOL) fail_msg("%s: %s = %.17g, fairlearn %.17g (err %.3g)", ctx, key, got, ref, err);
    if (err > g_max_err) g_max_err = err;
}

static int32_t *ints(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc(sizeof *v * (size_t)(*n ? *n : 1));
    assert_non_null(v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = (int32_t)x->valuedouble;
    return v;
}

/* one fixture case: compute and compare everything */
static void check_case(const cJSON *c) {
    const char *name = item(c, "name")->valuestring;
    int n, n2, n3;
    int32_t *y = ints(item(c, "y_true"), &n), *p = ints(item(c, "y_pred"), &n2), *g = ints(item(c, "group"), &n3);
    assert_int_equal(n, n2);
    assert_int_equal(n, n3);
    ft_fairness_report r;
    assert_int_equal(ft_fairness_compute(&r, y, p, g, n, (int32_t)item(c, "pos_label")->valuedouble), FT_OK);
    const cJSON *groups = item(c, "groups");
    assert_int_equal(r.n_groups, cJSON_GetArraySize(groups));
    int i = 0;
    const cJSON *ge;
    char ctx[128];
    cJSON_ArrayForEach(ge, groups) {
        const ft_fairness_group *x = &r.groups[i++];
        snprintf(ctx, sizeof ctx, "%s group %d", name, x->group);
        assert_int_equal(x->group, (int)item(ge, "group")->valuedouble);
        assert_int_equal(x->count, (int64_t)item(ge, "count")->valuedouble);
        check_num(ctx, "accuracy", x->accuracy, item(ge, "accuracy"));
        check_num(ctx, "selection_rate", x->selection_rate, item(ge, "selection_rate"));
        check_num(ctx, "tpr", x->tpr, item(ge, "tpr"));
        check_num(ctx, "fpr", x->fpr, item(ge, "fpr"));
    }
    const cJSON *ov = item(c, "overall");
    snprintf(ctx, sizeof ctx, "%s overall", name);
    assert_int_equal(r.overall.count, (int64_t)item(ov, "count")->valuedouble);
    check_num(ctx, "accuracy", r.overall.accuracy, item(ov, "accuracy"));
    check_num(ctx, "selection_rate", r.overall.selection_rate, item(ov, "selection_rate"));
    check_num(ctx, "tpr", r.overall.tpr, item(ov, "tpr"));
    check_num(ctx, "fpr", r.overall.fpr, item(ov, "fpr"));
    check_num(name, "dp_difference", r.dp_difference, item(c, "dp_difference"));
    check_num(name, "dp_ratio", r.dp_ratio, item(c, "dp_ratio"));
    check_num(name, "disparate_impact", r.disparate_impact, item(c, "dp_ratio"));
    check_num(name, "eopp_difference", r.eopp_difference, item(c, "eopp_difference"));
    check_num(name, "eopp_ratio", r.eopp_ratio, item(c, "eopp_ratio"));
    check_num(name, "eqodds_difference", r.eqodds_difference, item(c, "eqodds_difference"));
    check_num(name, "eqodds_ratio", r.eqodds_ratio, item(c, "eqodds_ratio"));
    check_num(name, "accuracy_difference", r.accuracy_difference, item(c, "accuracy_difference"));
    ft_fairness_report_free(&r);
    free(y); free(p); free(g);
}

static cJSON *read_json(const char *path) {
    cJSON *j = NULL;
    return ft__json_parse_file(&j, path) == FT_OK ? j : NULL;
}

static void test_fixture_parity(void **state) {
    (void)state;
    cJSON *doc = read_json(ft_fixture("fairness/fairness.json"));
    assert_non_null(doc);
    char *v = cJSON_PrintUnformatted(item(doc, "versions"));
    g_values = 0;
    g_max_err = 0;
    int cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, item(doc, "cases")) { check_case(c); cases++; }
    printf("fairness parity (%s): %d cases, %ld values, max |err| %.3g (tolerance %g)\n", v, cases, g_values, g_max_err, TOL);
    assert_true(cases >= 8);
    cJSON_free(v);
    cJSON_Delete(doc);
}

static void test_live_fairlearn(void **state) {
    (void)state;
    char *out = NULL;
    if (ft_test_run("python3 -c 'import fairlearn' 2>&1", &out) != 0) {
        printf("SKIP: fairlearn is not importable by python3 (pip install fairlearn; scripts/setup.sh does): %s\n", out ? out : "");
        free(out);
        skip();
    }
    free(out);
    for (int seed = 101; seed < 104; seed++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "python3 tests/parity/make_fairness_fixtures.py --live %d", seed);
        assert_int_equal(ft_test_run(cmd, &out), 0);
        cJSON *c = cJSON_Parse(out);
        free(out);
        assert_non_null(c);
        g_values = 0;
        g_max_err = 0;
        check_case(c);
        printf("live fairlearn seed %d: %d examples, %ld values, max |err| %.3g\n", seed,
               cJSON_GetArraySize(item(c, "y_true")), g_values, g_max_err);
        cJSON_Delete(c);
    }
}

/* worked by hand: groups a (ids 0) and b (1), positive label 1 */
static void test_hand_case(void **state) {
    (void)state;
    /*                 a  a  a  a  b  b  b  b  b */
    int32_t y[9] = {1, 1, 0, 0, 1, 0, 0, 0, 0};
    int32_t p[9] = {1, 0, 1, 0, 1, 1, 0, 0, 0};
    int32_t g[9] = {0, 0, 0, 0, 1, 1, 1, 1, 1};
    ft_fairness_report r;
    assert_int_equal(ft_fairness_compute(&r, y, p, g, 9, 1), FT_OK);
    assert_int_equal(r.n_groups, 2);
    /* a: selection 2/4, tpr 1/2, fpr 1/2, acc 2/4; b: selection 2/5, tpr 1/1, fpr 1/4, acc 4/5 */
    assert_true(fabs(r.groups[0].selection_rate - 0.5) < 1e-15 && fabs(r.groups[1].selection_rate - 0.4) < 1e-15);
    assert_true(fabs(r.dp_difference - 0.1) < 1e-15);
    assert_true(fabs(r.dp_ratio - 0.8) < 1e-15);
    assert_true(fabs(r.eopp_difference - 0.5) < 1e-15);
    assert_true(fabs(r.eqodds_difference - 0.5) < 1e-15);          /* max(0.5, 0.25) */
    assert_true(fabs(r.eqodds_ratio - 0.5) < 1e-15);               /* min(0.5, 0.5) */
    assert_true(fabs(r.accuracy_difference - 0.3) < 1e-15);
    const char *names[2] = {"a", "b"};
    char *json = NULL;
    assert_int_equal(ft_fairness_report_json(&json, &r, names, 2, "pos"), FT_OK);
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_string_equal(item(j, "positive_label")->valuestring, "pos");
    const cJSON *g1 = cJSON_GetArrayItem(item(j, "groups"), 1);
    assert_string_equal(item(g1, "group")->valuestring, "b");
    assert_true(fabs(item(j, "demographic_parity_ratio")->valuedouble - 0.8) < 1e-15);
    assert_true(fabs(item(j, "disparate_impact_ratio")->valuedouble - 0.8) < 1e-15);
    assert_int_equal((int)item(item(j, "overall"), "count")->valuedouble, 9);
    cJSON_Delete(j);
    free(json);
    ft_fairness_report_free(&r);
    /* nothing selected: DP ratio is NaN, written as null */
    int32_t none[9] = {0};
    assert_int_equal(ft_fairness_compute(&r, y, none, g, 9, 1), FT_OK);
    assert_true(isnan(r.dp_ratio));
    assert_int_equal(ft_fairness_report_json(&json, &r, NULL, 0, NULL), FT_OK);
    j = cJSON_Parse(json);
    assert_true(cJSON_IsNull(item(j, "demographic_parity_ratio")));
    assert_string_equal(item(cJSON_GetArrayItem(item(j, "groups"), 0), "group")->valuestring, "0");
    cJSON_Delete(j);
    free(json);
    ft_fairness_report_free(&r);
}

static void test_invalid(void **state) {
    (void)state;
    int32_t y[3] = {1, 0, 1}, g[3] = {0, -1, 0};
    ft_fairness_report r;
    assert_int_equal(ft_fairness_compute(&r, y, y, g, 3, 1), FT_ERR_RANGE);
    assert_non_null(strstr(ft_last_error(), "group[1] = -1"));
    assert_null(r.groups);
    assert_int_equal(ft_fairness_compute(&r, y, y, g, 0, 1), FT_ERR_INVALID);
    assert_int_equal(ft_fairness_compute(&r, NULL, y, g, 3, 1), FT_ERR_INVALID);
    g[1] = 1 << 21;
    assert_int_equal(ft_fairness_compute(&r, y, y, g, 3, 1), FT_ERR_RANGE);
    ft_fairness_report_free(NULL);
}

/* the last line of out that starts with '{', parsed */
static cJSON *json_line(const char *out) {
    const char *best = NULL;
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (*l == '{') best = l;
    return best ? cJSON_Parse(best) : NULL;
}

/* finetune eval --group-column on the tiny BERT classifier: groups and counts from the file, the overall row
 * equal to the evaluation's own accuracy and predicted-positive share, errors naming file and columns */
static void test_cli_group_column(void **state) {
    (void)state;
    char model[512], data[512];   /* ft_fixture's buffer is reused by the next call */
    snprintf(model, sizeof model, "%s", ft_fixture("train_encoder/tiny_bert"));
    snprintf(data, sizeof data, "%s", ft_fixture("fairness/sst_groups.tsv"));
    char *out = NULL;
    for (int pos = 0; pos < 2; pos++) {
        assert_int_equal(ft_test_finetune(&out, "eval --model %s --data %s --text-column sentence --group-column group --json%s",
                                          model, data, pos ? "" : " --positive-label negative"), 0);
        cJSON *j = json_line(out);
        assert_non_null(j);
        const cJSON *f = item(j, "fairness"), *cls = item(j, "classification");
        assert_non_null(f);
        assert_string_equal(item(f, "positive_label")->valuestring, pos ? "positive" : "negative");
        assert_int_equal(cJSON_GetArraySize(item(f, "groups")), 3);
        /* counts and positives per group, from the file itself */
        int64_t cnt[3] = {0}, npos[3] = {0}, total = 0;
        FILE *fp = fopen(data, "r");
        assert_non_null(fp);
        char line[1024];
        assert_non_null(fgets(line, sizeof line, fp));
        while (fgets(line, sizeof line, fp)) {
            char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
            assert_non_null(t2);
            int gi = t2[7] - 'a';
            assert_true(gi >= 0 && gi < 3);
            cnt[gi]++;
            npos[gi] += !strncmp(t1 + 1, pos ? "positive" : "negative", 8);
            total++;
        }
        fclose(fp);
        for (int k = 0; k < 3; k++) {
            const cJSON *g = cJSON_GetArrayItem(item(f, "groups"), k);
            char name[16];
            snprintf(name, sizeof name, "group_%c", 'a' + k);
            assert_string_equal(item(g, "group")->valuestring, name);
            assert_int_equal((int64_t)item(g, "count")->valuedouble, cnt[k]);
            assert_int_equal((int64_t)item(g, "positives")->valuedouble, npos[k]);
        }
        const cJSON *ov = item(f, "overall");
        assert_int_equal((int64_t)item(ov, "count")->valuedouble, total);
        assert_true(fabs(item(ov, "accuracy")->valuedouble - item(j, "accuracy")->valuedouble) < 1e-12);
        /* selection rate = the predicted column of the positive label in the confusion matrix */
        const cJSON *cm = item(cls, "confusion_matrix");
        double sel = 0;
        for (int r = 0; r < 2; r++) sel += cJSON_GetArrayItem(cJSON_GetArrayItem(cm, r), pos)->valuedouble;
        assert_true(fabs(item(ov, "selection_rate")->valuedouble - sel / (double)total) < 1e-12);
        cJSON_Delete(j);
        free(out);
    }
    /* text output: the table */
    assert_int_equal(ft_test_finetune(&out, "eval --model %s --data %s --text-column sentence --group-column group", model, data), 0);
    assert_non_null(strstr(out, "fairness by group (column 'group', positive label 'positive', 3 groups)"));
    assert_non_null(strstr(out, "demographic parity difference"));
    assert_non_null(strstr(out, "group_c"));
    free(out);
    /* a missing column names the file and the columns present */
    assert_int_not_equal(ft_test_finetune(&out, "eval --model %s --data %s --text-column sentence --group-column sex", model, data), 0);
    assert_non_null(strstr(out, "no group column 'sex' (columns: sentence, label, group"));
    assert_non_null(strstr(out, "sst_groups.tsv"));
    free(out);
    assert_int_not_equal(ft_test_finetune(&out, "eval --model %s --data %s --text-column sentence --group-column group --positive-label x",
                                          model, data), 0);
    assert_non_null(strstr(out, "--positive-label 'x' is not a label of the model (labels: negative, positive)"));
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_parity),
        cmocka_unit_test(test_live_fairlearn),
        cmocka_unit_test(test_hand_case),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_cli_group_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
