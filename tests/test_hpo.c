/* test_hpo.c — hyperparameter search (include/finetune/hpo.h, src/hpo/, `finetune sweep`).
 *
 *   gp_matches_numpy        GP posterior mean / variance, log marginal likelihood and EI / PI / UCB equal
 *                           the numpy / scipy reference (tests/parity/make_hpo_fixtures.py) to 1e-8 relative
 *   gp_fit_raises_likelihood  the marginal-likelihood fit ends at least as high as its start
 *   hyperband_paper_table   the bracket plan for R = 81, eta = 3 equals Table 1 of Li et al. (2018)
 *   hyperband_engine        a full Hyperband pass in-process: every rung has its n_i trials at its r_i, and
 *                           the promoted configurations are the best of the rung below
 *   sh_asha_engine          successive halving (configs 9) and ASHA promote only top-1/eta configurations
 *   grid_and_random         the grid visits every point once; random decisions depend on the seed only
 *   tpe_beats_random        on a 2-D quadratic, TPE's median best after 40 trials over 9 seeds is below
 *                           random search's (same seeds)
 *   bayes_finds_branin      bayes gets within 0.05 of Branin's minimum (0.397887) in 30 trials
 *   spec_errors             "train" with "objective_cmd", unknown keys, bad ranges and missing budgets are refused
 *   train_trials            a sweep with a "train" section runs `finetune train` per trial on the embedded
 *                           stories260K (2 steps): each trial's value is the val_loss of its run's last
 *                           evaluation, its run directory holds the sampled lr and the budget as max_steps;
 *                           trials.run_id points at each trial's run of the run store (`runs list --sweep`
 *                           lists exactly them, `runs show` names the sweep and trial), --tensorboard DIR
 *                           gives each trial its events file in DIR/trial-<idx>
 *   resume_after_kill9      `finetune sweep` killed with kill -9 mid-sweep (by its own objective) and resumed
 *                           records exactly the trials (parameters, values) of the uninterrupted sweep — for
 *                           bayes, tpe + hyperband, random + asha with --jobs 2, hyperband with
 *                           "continue" (parents and costs too) with --jobs 2 and tpe + successive halving
 *                           with "continue"; --resume --trials N
 *                           extends a finished sweep to what a larger budget gives; another config under
 *                           the same name is refused
 *   concurrent_writers      two `finetune sweep` processes with --jobs 3 write one database at once: both
 *                           complete, PRAGMA integrity_check is ok; a third on a sweep another process runs
 *                           is refused
 *   report_html             the sweep report has its sections and no script or network reference */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "finetune/fileio.h"
#include "finetune/hpo.h"
#include "finetune/status.h"

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_hpo");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

static double *num_array(const cJSON *o, const char *key, int expect) {
    const cJSON *a = cJSON_GetObjectItem(o, key);
    assert_true(cJSON_IsArray(a));
    int n = cJSON_GetArraySize(a);
    if (expect >= 0) assert_int_equal(n, expect);
    double *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    assert_non_null(v);
    int i = 0;
    for (const cJSON *c = a->child; c; c = c->next) v[i++] = c->valuedouble;
    return v;
}

static int close_rel(double got, double ref, double tol) {
    return fabs(got - ref) <= tol * fmax(fabs(ref), 1e-300) || fabs(got - ref) <= 1e-300;
}

/* relative error check that prints what failed */
#define CHECK_REL(what, i, got, ref, tol)                                                                   \
    do {                                                                                                    \
        if (!close_rel((got), (ref), (tol))) {                                                              \
            print_error("%s[%d]: got %.17g, reference %.17g (rel %.3g)\n", what, i, (double)(got),         \
                        (double)(ref), fabs((got) - (ref)) / fabs(ref));                                   \
            fail();                                                                                         \
        }                                                                                                   \
    } while (0)

static void gp_matches_numpy(void **state) {
    (void)state;
    if (!ft_fixture_present("hpo/gp_reference.json")) return;
    char *text;
    size_t len;
    assert_int_equal(ft_file_read_all(ft_fixture("hpo/gp_reference.json"), &text, &len), FT_OK);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    int nc = 0;
    double worst = 0;
    for (const cJSON *c = cases->child; c; c = c->next, nc++) {
        int n = cJSON_GetObjectItem(c, "n")->valueint, d = cJSON_GetObjectItem(c, "d")->valueint;
        double *x = num_array(c, "x", n * d), *y = num_array(c, "y", n), *theta = num_array(c, "theta", d + 2);
        double *xq = num_array(c, "xq", -1);
        int nq = cJSON_GetArraySize(cJSON_GetObjectItem(c, "xq")) / d;
        double *ms = num_array(c, "mean_std", nq), *vs = num_array(c, "var_std", nq), *m = num_array(c, "mean", nq),
               *v = num_array(c, "var", nq), *ei = num_array(c, "ei", nq), *pi = num_array(c, "pi", nq), *ucb = num_array(c, "ucb", nq);
        double xi = cJSON_GetObjectItem(c, "xi")->valuedouble, kappa = cJSON_GetObjectItem(c, "kappa")->valuedouble;
        ft_hpo_gp *gp;
        assert_int_equal(ft_hpo_gp_fit(&gp, x, y, n, d, theta, 0, 1), FT_OK);
        CHECK_REL("lml", nc, ft_hpo_gp_log_marginal(gp), cJSON_GetObjectItem(c, "lml")->valuedouble, 1e-8);
        CHECK_REL("best", nc, ft_hpo_gp_best(gp), cJSON_GetObjectItem(c, "best")->valuedouble, 1e-8);
        for (int q = 0; q < nq; q++) {
            double mu, var, mu2, var2;
            ft_hpo_gp_predict(gp, xq + (size_t)q * d, 1, &mu, &var);
            ft_hpo_gp_predict(gp, xq + (size_t)q * d, 0, &mu2, &var2);
            /* the mean in standardised units may be near 0: relative to the scale of y (1) */
            if (fabs(mu - ms[q]) > 1e-8 * fmax(1.0, fabs(ms[q]))) { print_error("mean_std[%d] %.17g vs %.17g\n", q, mu, ms[q]); fail(); }
            CHECK_REL("var_std", q, var, vs[q], q == 0 ? 1e-6 : 1e-8);  /* q 0 sits on a data point: var ~ noise */
            CHECK_REL("mean", q, mu2, m[q], 1e-8);
            CHECK_REL("var", q, var2, v[q], q == 0 ? 1e-6 : 1e-8);
            double best = ft_hpo_gp_best(gp);
            CHECK_REL("ei", q, ft_hpo_ei(mu, sqrt(var), best, xi), ei[q], q == 0 ? 1e-6 : 1e-8);
            CHECK_REL("pi", q, ft_hpo_pi(mu, sqrt(var), best, xi), pi[q], q == 0 ? 1e-6 : 1e-8);
            CHECK_REL("ucb", q, ft_hpo_ucb(mu, sqrt(var), kappa), ucb[q], 1e-8);
            worst = fmax(worst, fabs(var - vs[q]) / vs[q]);
        }
        ft_hpo_gp_free(gp);
        free(x); free(y); free(theta); free(xq); free(ms); free(vs); free(m); free(v); free(ei); free(pi); free(ucb);
    }
    assert_int_equal(nc, 3);
    printf("  gp parity: 3 cases, worst variance rel error %.3g\n", worst);
    cJSON_Delete(root);
}

static void gp_fit_raises_likelihood(void **state) {
    (void)state;
    enum { N = 20, D = 2 };
    double x[N * D], y[N];
    for (int i = 0; i < N; i++) {
        x[i * D] = fmod(0.37 * i + 0.1, 1.0);
        x[i * D + 1] = fmod(0.61 * i + 0.3, 1.0);
        y[i] = sin(6 * x[i * D]) + 0.2 * x[i * D + 1];
    }
    double theta0[D + 2] = {0, log(1e-3), log(0.5), log(0.5)}, theta[D + 2];
    memcpy(theta, theta0, sizeof theta);
    ft_hpo_gp *a, *b;
    assert_int_equal(ft_hpo_gp_fit(&a, x, y, N, D, theta0, 0, 1), FT_OK);
    assert_int_equal(ft_hpo_gp_fit(&b, x, y, N, D, theta, 1, 1), FT_OK);
    printf("  log marginal likelihood: start %.4f, fitted %.4f (lengthscales %.3f %.3f)\n",
           ft_hpo_gp_log_marginal(a), ft_hpo_gp_log_marginal(b), exp(theta[2]), exp(theta[3]));
    assert_true(ft_hpo_gp_log_marginal(b) >= ft_hpo_gp_log_marginal(a));
    /* y depends on x1 far more than on x2: the fitted lengthscale of x2 is longer */
    assert_true(theta[3] > theta[2]);
    ft_hpo_gp_free(a);
    ft_hpo_gp_free(b);
}

static void hyperband_paper_table(void **state) {
    (void)state;
    /* Li et al. 2018, Table 1 (R = 81, eta = 3): per bracket s, (n_i, r_i) for i = 0 .. s */
    static const int n[5][5] = {{81, 27, 9, 3, 1}, {34, 11, 3, 1}, {15, 5, 1}, {8, 2}, {5}};
    static const double r[5][5] = {{1, 3, 9, 27, 81}, {3, 9, 27, 81}, {9, 27, 81}, {27, 81}, {81}};
    ft_hpo_bracket b[8];
    assert_int_equal(ft_hpo_hyperband_plan(81, 3, b, 8), 5);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(b[k].s, 4 - k);
        assert_int_equal(b[k].n_rungs, 5 - k);
        for (int i = 0; i < b[k].n_rungs; i++) {
            assert_int_equal(b[k].n[i], n[k][i]);
            assert_true(fabs(b[k].r[i] - r[k][i]) < 1e-9);
        }
    }
    assert_true(ft_hpo_hyperband_plan(81, 3, b, 4) < 0);
    assert_true(ft_hpo_hyperband_plan(0.5, 3, b, 8) < 0);
    /* R = 27, eta = 3 and R = 8, eta = 2 (s_max must not lose a bracket to rounding in log) */
    assert_int_equal(ft_hpo_hyperband_plan(27, 3, b, 8), 4);
    assert_int_equal(ft_hpo_hyperband_plan(8, 2, b, 8), 4);
    assert_int_equal(b[0].n[0], 8);
    assert_int_equal(ft_hpo_hyperband_plan(1000, 10, b, 8), 4);
}

static ft_hpo_spec *parse(const char *json) {
    ft_hpo_spec *s = NULL;
    int rc = ft_hpo_spec_parse(json, "test", &s);
    if (rc < 0) print_error("parse: %s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    return s;
}

/* quadratic bowl with its minimum at (0.3, -0.2) over x in [-1, 1]^2 plus a choice that adds 0 / 0.5 */
static double bowl(const ft_hpo_spec *s, const double *x) {
    double v = (x[0] - 0.3) * (x[0] - 0.3) + (x[1] + 0.2) * (x[1] + 0.2);
    if (s->n_params > 2) v += 0.5 * x[2];
    return v;
}

/* runs the engine in-process with jobs 1 (results recorded at once); returns the trial count, *tp the trials */
static int run_engine(const ft_hpo_spec *s, double (*f)(const ft_hpo_spec *, const double *), ft_hpo_trial **tp) {
    int cap = 4096, n = 0;
    ft_hpo_trial *t = calloc((size_t)cap, sizeof *t);
    assert_non_null(t);
    for (;;) {
        assert_true(n < cap);
        int rc = ft_hpo_next(s, t, n, 1, &t[n]);
        assert_true(rc >= 0);
        if (rc == FT_HPO_DONE) break;
        assert_int_equal(rc, FT_HPO_RUN);
        /* fidelity: the objective gets better with budget (a noise term shrinking as 1/budget) */
        double noise = t[n].budget > 0 ? 0.3 * sin(7.0 * n) / t[n].budget : 0;
        t[n].value = f(s, t[n].x) + noise;
        t[n].status = FT_HPO_FINISHED;
        n++;
    }
    *tp = t;
    return n;
}

static const char *k_bowl_params = "\"params\": {\"a\": {\"type\": \"uniform\", \"low\": -1, \"high\": 1},"
                                   " \"b\": {\"type\": \"uniform\", \"low\": -1, \"high\": 1}}";

/* checks that every trial at rung i > 0 of bracket b is one of the best n_i of rung i - 1 */
static void check_promotions(const ft_hpo_spec *s, const ft_hpo_trial *t, int n, double eta) {
    for (int i = 0; i < n; i++) {
        if (t[i].rung == 0) continue;
        /* the rung below in the same bracket, ranked */
        int below = 0, better = 0, found = 0;
        double mine = NAN;
        for (int k = 0; k < n; k++)
            if (t[k].bracket == t[i].bracket && t[k].rung == t[i].rung - 1 && t[k].config == t[i].config) { mine = t[k].value; found = 1; }
        assert_true(found);
        for (int k = 0; k < i; k++) {
            if (t[k].bracket != t[i].bracket || t[k].rung != t[i].rung - 1) continue;
            below++;
            if (t[k].value < mine) better++;
        }
        (void)s;
        /* it ranks in the top 1/eta of the results that were there when it was promoted */
        assert_true(better < (int)floor(below / eta + 1e-9) || below == 0);
    }
}

static void hyperband_engine(void **state) {
    (void)state;
    char json[1024];
    snprintf(json, sizeof json, "{\"strategy\": \"random\", \"seed\": 3, %s, \"scheduler\": {\"type\": \"hyperband\", "
             "\"min_resource\": 1, \"max_resource\": 81, \"eta\": 3}}", k_bowl_params);
    ft_hpo_spec *s = parse(json);
    ft_hpo_trial *t;
    int n = run_engine(s, bowl, &t);
    ft_hpo_bracket b[8];
    assert_int_equal(ft_hpo_hyperband_plan(81, 3, b, 8), 5);
    int expect = 0;
    for (int k = 0; k < 5; k++)
        for (int i = 0; i < b[k].n_rungs; i++) {
            expect += b[k].n[i];
            int c = 0;
            for (int j = 0; j < n; j++)
                if (t[j].bracket == k && t[j].rung == i) { c++; assert_true(fabs(t[j].budget - b[k].r[i]) < 1e-9); }
            assert_int_equal(c, b[k].n[i]);
        }
    assert_int_equal(n, expect);  /* 206 evaluations in one pass */
    check_promotions(s, t, n, 3);
    printf("  hyperband R=81 eta=3: %d trials, best %.4f\n", n, t[ft_hpo_best(s, t, n)].value);
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);
}

static void sh_asha_engine(void **state) {
    (void)state;
    char json[1024];
    snprintf(json, sizeof json, "{\"strategy\": \"tpe\", \"seed\": 5, %s, \"scheduler\": {\"type\": \"successive-halving\", "
             "\"min_resource\": 2, \"max_resource\": 18, \"eta\": 3, \"configs\": 9}}", k_bowl_params);
    ft_hpo_spec *s = parse(json);
    ft_hpo_trial *t;
    int n = run_engine(s, bowl, &t);
    assert_int_equal(n, 9 + 3 + 1);
    int per[3] = {0};
    for (int i = 0; i < n; i++) { per[t[i].rung]++; assert_true(fabs(t[i].budget - 2 * pow(3, t[i].rung)) < 1e-9); }
    assert_int_equal(per[0], 9); assert_int_equal(per[1], 3); assert_int_equal(per[2], 1);
    check_promotions(s, t, n, 3);
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);

    snprintf(json, sizeof json, "{\"strategy\": \"random\", \"seed\": 5, \"budget\": {\"trials\": 60}, %s, \"scheduler\": "
             "{\"type\": \"asha\", \"min_resource\": 1, \"max_resource\": 9, \"eta\": 3}}", k_bowl_params);
    s = parse(json);
    n = run_engine(s, bowl, &t);
    assert_int_equal(n, 60);
    int rungs[3] = {0};
    for (int i = 0; i < n; i++) {
        rungs[t[i].rung]++;
        if (t[i].rung == 0) continue;
        /* ASHA: promoted from the top floor(m / eta) of the m results of the rung below at that time */
        int m = 0, better = 0;
        double mine = NAN;
        for (int k = 0; k < i; k++) if (t[k].rung == t[i].rung - 1 && t[k].config == t[i].config) mine = t[k].value;
        for (int k = 0; k < i; k++) if (t[k].rung == t[i].rung - 1) { m++; better += t[k].value < mine; }
        assert_true(better < m / 3);
    }
    printf("  asha: rungs %d / %d / %d trials\n", rungs[0], rungs[1], rungs[2]);
    assert_true(rungs[1] > 0 && rungs[2] > 0 && rungs[0] > rungs[1] && rungs[1] > rungs[2]);
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);
}

static void grid_and_random(void **state) {
    (void)state;
    ft_hpo_spec *s = parse("{\"strategy\": \"grid\", \"params\": {\"lr\": {\"type\": \"loguniform\", \"low\": 1e-4, \"high\": 1e-2, \"grid_points\": 3},"
                           " \"bs\": {\"type\": \"int\", \"low\": 8, \"high\": 10}, \"opt\": {\"type\": \"choice\", \"values\": [\"adamw\", \"sgd\"]}}}");
    assert_int_equal(ft_hpo_grid_size(s), 3 * 3 * 2);
    ft_hpo_trial *t;
    int n = run_engine(s, bowl, &t);
    assert_int_equal(n, 18);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < i; k++) assert_false(t[i].x[0] == t[k].x[0] && t[i].x[1] == t[k].x[1] && t[i].x[2] == t[k].x[2]);
    assert_true(fabs(t[0].x[0] - 1e-4) < 1e-12 && fabs(t[17].x[0] - 1e-2) < 1e-12);
    assert_true(fabs(t[6].x[0] - 1e-3) < 1e-12);  /* the middle point of a log range */
    char *js = ft_hpo_params_json(s, t[17].x), *args = ft_hpo_params_args(s, t[17].x);
    assert_string_equal(js, "{\"lr\": 0.01, \"bs\": 10, \"opt\": \"sgd\"}");
    assert_string_equal(args, " --lr '0.01' --bs '10' --opt 'sgd'");
    free(js); free(args);
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);

    /* random: same seed, same decisions; another seed, other decisions; every value in range */
    const char *fmt = "{\"strategy\": \"random\", \"seed\": %d, \"budget\": {\"trials\": 50}, \"params\": {\"lr\": {\"type\": \"loguniform\", "
                      "\"low\": 1e-5, \"high\": 1e-1}, \"n\": {\"type\": \"int\", \"low\": 1, \"high\": 1000, \"log\": true}, "
                      "\"o\": {\"type\": \"choice\", \"values\": [1, 2, 3]}}}";
    char json[512];
    ft_hpo_trial *a, *b, *c;
    snprintf(json, sizeof json, fmt, 7);
    ft_hpo_spec *s1 = parse(json);
    snprintf(json, sizeof json, fmt, 8);
    ft_hpo_spec *s2 = parse(json);
    int na = run_engine(s1, bowl, &a), nb = run_engine(s1, bowl, &b), nc = run_engine(s2, bowl, &c);
    assert_int_equal(na, 50); assert_int_equal(nb, 50); assert_int_equal(nc, 50);
    int same = 0, small = 0;
    for (int i = 0; i < 50; i++) {
        assert_memory_equal(a[i].x, b[i].x, 3 * sizeof(double));
        same += a[i].x[0] == c[i].x[0];
        assert_true(a[i].x[0] >= 1e-5 && a[i].x[0] <= 1e-1);
        assert_true(a[i].x[1] >= 1 && a[i].x[1] <= 1000 && a[i].x[1] == floor(a[i].x[1]));
        assert_true(a[i].x[2] >= 0 && a[i].x[2] <= 2);
        small += a[i].x[0] < 1e-3;  /* log-uniform: half the draws below the geometric middle */
    }
    assert_int_equal(same, 0);
    assert_true(small > 12 && small < 38);
    ft_hpo_trials_free(a, na); ft_hpo_trials_free(b, nb); ft_hpo_trials_free(c, nc);
    ft_hpo_spec_free(s1); ft_hpo_spec_free(s2);
}

static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static void tpe_beats_random(void **state) {
    (void)state;
    enum { SEEDS = 9 };
    double best[2][SEEDS];
    for (int st = 0; st < 2; st++)
        for (int seed = 0; seed < SEEDS; seed++) {
            char json[1024];
            snprintf(json, sizeof json, "{\"strategy\": \"%s\", \"seed\": %d, \"budget\": {\"trials\": 40}, \"params\": {"
                     "\"a\": {\"type\": \"uniform\", \"low\": -1, \"high\": 1}, \"b\": {\"type\": \"uniform\", \"low\": -1, \"high\": 1}, "
                     "\"c\": {\"type\": \"choice\", \"values\": [\"x\", \"y\"]}}}", st ? "tpe" : "random", seed);
            ft_hpo_spec *s = parse(json);
            ft_hpo_trial *t;
            int n = run_engine(s, bowl, &t);
            best[st][seed] = t[ft_hpo_best(s, t, n)].value;
            ft_hpo_trials_free(t, n);
            ft_hpo_spec_free(s);
        }
    qsort(best[0], SEEDS, sizeof(double), cmp_d);
    qsort(best[1], SEEDS, sizeof(double), cmp_d);
    printf("  median best after 40 trials: random %.5f, tpe %.5f\n", best[0][SEEDS / 2], best[1][SEEDS / 2]);
    assert_true(best[1][SEEDS / 2] < best[0][SEEDS / 2]);
}

static double branin(const ft_hpo_spec *s, const double *x) {
    (void)s;
    double a = x[0], b = x[1], t = b - 5.1 / (4 * M_PI * M_PI) * a * a + 5 / M_PI * a - 6;
    return t * t + 10 * (1 - 1 / (8 * M_PI)) * cos(a) + 10;
}

static void bayes_finds_branin(void **state) {
    (void)state;
    int hits = 0;
    for (int seed = 0; seed < 3; seed++) {
        char json[512];
        snprintf(json, sizeof json, "{\"strategy\": \"bayes\", \"seed\": %d, \"budget\": {\"trials\": 30}, \"params\": {"
                 "\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}}}", seed);
        ft_hpo_spec *s = parse(json);
        ft_hpo_trial *t;
        int n = run_engine(s, branin, &t);
        double b = t[ft_hpo_best(s, t, n)].value;
        printf("  bayes on Branin, seed %d: best %.5f after %d trials\n", seed, b, n);
        hits += b < 0.397887 + 0.05;
        ft_hpo_trials_free(t, n);
        ft_hpo_spec_free(s);
    }
    assert_true(hits >= 2);
}

static void expect_error(const char *json, int status, const char *needle) {
    ft_hpo_spec *s = NULL;
    int rc = ft_hpo_spec_parse(json, "sweep.json", &s);
    if (rc != status || !strstr(ft_last_error(), needle)) {
        print_error("%s\n  -> %d: %s (expected %d with \"%s\")\n", json, rc, ft_last_error(), status, needle);
        fail();
    }
    assert_null(s);
}

static void spec_errors(void **state) {
    (void)state;
    expect_error("{\"train\": {\"epochs\": 1}, \"objective_cmd\": \"x\", \"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"uniform\", \"low\": 0, \"high\": 1}}}",
                 FT_ERR_FORMAT, "not both");
    expect_error("{\"train\": {\"epochs\": 1}, \"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"uniform\", \"low\": 0, \"high\": 1}}, "
                 "\"scheduler\": {\"type\": \"asha\", \"fidelity\": \"data_fraction\", \"min_resource\": 0.1, \"max_resource\": 1}}",
                 FT_ERR_UNSUPPORTED, "must be steps, epochs or seq_len");
    expect_error("{\"stratgy\": \"tpe\", \"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"uniform\", \"low\": 0, \"high\": 1}}}",
                 FT_ERR_FORMAT, "unknown key \"stratgy\"");
    expect_error("{\"strategy\": \"tpe\", \"params\": {\"a\": {\"type\": \"uniform\", \"low\": 0, \"high\": 1}}}", FT_ERR_FORMAT, "needs a budget");
    expect_error("{\"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"loguniform\", \"low\": 0, \"high\": 1}}}", FT_ERR_FORMAT, "low > 0");
    expect_error("{\"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"uniform\", \"low\": 2, \"high\": 1}}}", FT_ERR_FORMAT, "must be below");
    expect_error("{\"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"int\", \"low\": 0.5, \"high\": 3}}}", FT_ERR_FORMAT, "integer bounds");
    expect_error("{\"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"choice\", \"values\": []}}}", FT_ERR_FORMAT, "non-empty list");
    expect_error("{\"budget\": {\"trials\": 3}, \"params\": {}}", FT_ERR_FORMAT, "at least one parameter");
    expect_error("{\"strategy\": \"grid\", \"params\": {\"a\": {\"type\": \"uniform\", \"low\": 0, \"high\": 1}}, \"scheduler\": "
                 "{\"type\": \"hyperband\", \"max_resource\": 9}}", FT_ERR_UNSUPPORTED, "without a scheduler");
    expect_error("{\"strategy\": \"bayes\", \"budget\": {\"trials\": 3}, \"params\": {\"a\": {\"type\": \"uniform\", \"low\": 0, \"high\": 1}}, "
                 "\"bayes\": {\"acquisition\": \"eii\"}}", FT_ERR_FORMAT, "unknown value \"eii\"");
    expect_error("[1, 2]", FT_ERR_FORMAT, "must be a JSON object");
    expect_error("{\"params\": ", FT_ERR_FORMAT, "invalid JSON");
}

/* ---------------------------------------------------------------- the command, its database */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* the Branin objective as a shell + awk script; with KILL_AT=k it kills the sweep (kill -9) the first time
 * trial k starts (marker file KILL_MARK) */
static const char *objective_script(void) {
    const char *path = ft_test_path(g_tmp, "branin.sh");
    write_file(path,
               "#!/bin/sh\n"
               "if [ -n \"$KILL_AT\" ] && [ \"$FT_TRIAL_ID\" = \"$KILL_AT\" ] && [ ! -e \"$KILL_MARK\" ]; then\n"
               "  : > \"$KILL_MARK\"; kill -9 \"$FT_SWEEP_PID\"; sleep 1; exit 1\n"
               "fi\n"
               "awk -v a=\"$2\" -v b=\"$4\" -v r=\"${FT_BUDGET:-0}\" 'BEGIN { pi = atan2(0, -1); x = a; y = b;\n"
               "  t = y - 5.1 / (4 * pi * pi) * x * x + 5 / pi * x - 6; v = t * t + 10 * (1 - 1 / (8 * pi)) * cos(x) + 10;\n"
               "  if (r > 0) v += 5 / r;\n"
               "  printf \"objective: %.17g\\n\", v }'\n");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "chmod +x '%s'", path);
    char *out;
    assert_int_equal(ft_test_run(cmd, &out), 0);
    free(out);
    return path;
}

/* trials of two databases' sweep "resume" agree (parameters, values, config, rung, budget) */
static void compare_sweeps(const char *tag, const char *a_db, const char *b_db, int expect_n) {
    ft_hpo_spec *s;
    ft_hpo_trial *ta, *tb;
    int na, nb;
    ft_test_hpo_load(a_db, "resume", &s, &ta, &na);
    ft_hpo_spec_free(s);
    ft_test_hpo_load(b_db, "resume", &s, &tb, &nb);
    assert_int_equal(na, expect_n);
    assert_int_equal(nb, na);
    for (int i = 0; i < na; i++) {
        if (memcmp(ta[i].x, tb[i].x, sizeof(double) * (size_t)s->n_params) != 0 || ta[i].value != tb[i].value ||
            ta[i].config != tb[i].config || ta[i].rung != tb[i].rung || ta[i].budget != tb[i].budget || ta[i].parent != tb[i].parent ||
            ta[i].cost != tb[i].cost) {
            print_error("%s: trial %d differs: x0 %.17g vs %.17g, value %.17g vs %.17g\n", tag, i, ta[i].x[0], tb[i].x[0], ta[i].value, tb[i].value);
            fail();
        }
        assert_int_equal(tb[i].status, FT_HPO_FINISHED);
    }
    ft_hpo_trials_free(ta, na);
    ft_hpo_trials_free(tb, nb);
    ft_hpo_spec_free(s);
}

static void resume_case(const char *tag, const char *json_body, const char *jobs, int kill_at, int expect_n) {
    const char *obj = objective_script();
    char cfg[512], cmd[2048], a_db[512], b_db[512], mark[512];
    snprintf(cfg, sizeof cfg, "%s", ft_test_path(g_tmp, "sweep.json"));
    snprintf(a_db, sizeof a_db, "%s/%s_a.db", g_tmp, tag);
    snprintf(b_db, sizeof b_db, "%s/%s_b.db", g_tmp, tag);
    snprintf(mark, sizeof mark, "%s/%s.killed", g_tmp, tag);
    write_file(cfg, json_body);
    char *out;
    /* uninterrupted */
    int rc = ft_test_finetune(&out, "sweep --config %s --objective-cmd %s --db %s --jobs %s --quiet --no-report", cfg, obj, a_db, jobs);
    assert_int_equal(rc, 0);
    free(out);
    /* killed with kill -9 when trial kill_at starts, then resumed */
    snprintf(cmd, sizeof cmd, "KILL_AT=%d KILL_MARK=%s %s/finetune sweep --config %s --objective-cmd %s --db %s --jobs %s --quiet --no-report 2>&1",
             kill_at, mark, getenv("BUILD") ? getenv("BUILD") : "build", cfg, obj, b_db, jobs);
    rc = ft_test_run(cmd, &out);
    free(out);
    assert_int_not_equal(rc, 0);   /* killed */
    assert_true(ft_path_exists(mark));
    ft_hpo_spec *s;
    ft_hpo_trial *tb;
    int nb;
    ft_test_hpo_load(b_db, "resume", &s, &tb, &nb);
    int ended = 0;
    for (int i = 0; i < nb; i++) ended += tb[i].status == FT_HPO_FINISHED;
    printf("  %s: killed with %d trials recorded (%d finished)\n", tag, nb, ended);
    assert_true(nb >= kill_at && nb < expect_n);
    ft_hpo_trials_free(tb, nb);
    ft_hpo_spec_free(s);
    /* resumed twice: by name (stored config), then once more, which has nothing left to do */
    rc = ft_test_finetune(&out, "sweep --resume resume --objective-cmd %s --db %s --quiet --no-report", obj, b_db);
    assert_int_equal(rc, 0);
    free(out);
    rc = ft_test_finetune(&out, "sweep --config %s --objective-cmd %s --db %s --quiet --no-report", cfg, obj, b_db);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "best: trial"));
    free(out);
    compare_sweeps(tag, a_db, b_db, expect_n);
    if (strcmp(tag, "bayes") == 0) {
        /* a larger budget extends the finished sweep (--resume NAME --trials N); the result equals a sweep
         * that had the larger budget from the start (decisions do not depend on the budget) */
        rc = ft_test_finetune(&out, "sweep --resume resume --trials %d --objective-cmd %s --db %s --quiet --no-report", expect_n + 4, obj, b_db);
        assert_int_equal(rc, 0);
        free(out);
        rc = ft_test_finetune(&out, "sweep --config %s --trials %d --objective-cmd %s --db %s --quiet --no-report", cfg, expect_n + 4, obj, a_db);
        assert_int_equal(rc, 0);
        free(out);
        compare_sweeps(tag, a_db, b_db, expect_n + 4);
        /* another config under the same name is refused */
        rc = ft_test_finetune(&out, "sweep --config %s --seed 99 --objective-cmd %s --db %s --quiet --no-report", cfg, obj, a_db);
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(out, "exists with another config"));
        free(out);
    }
}

static void resume_after_kill9(void **state) {
    (void)state;
    resume_case("bayes", "{\"name\": \"resume\", \"strategy\": \"bayes\", \"seed\": 4, \"budget\": {\"trials\": 16},"
                " \"params\": {\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}}}",
                "1", 9, 16);
    resume_case("tpe_hb", "{\"name\": \"resume\", \"strategy\": \"tpe\", \"seed\": 2, \"budget\": {\"trials\": 40},"
                " \"params\": {\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}},"
                " \"tpe\": {\"n_startup_trials\": 5}, \"scheduler\": {\"type\": \"hyperband\", \"min_resource\": 1, \"max_resource\": 9, \"eta\": 3}}",
                "1", 17, 40);
    resume_case("asha_j2", "{\"name\": \"resume\", \"strategy\": \"random\", \"seed\": 6, \"budget\": {\"trials\": 30},"
                " \"params\": {\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}},"
                " \"scheduler\": {\"type\": \"asha\", \"min_resource\": 1, \"max_resource\": 9, \"eta\": 3}}",
                "2", 13, 30);
    /* with continuation (scheduler.continue): the same trials, each promoted one naming the trial it continues
     * (FT_PARENT_TRIAL) and costing the budget it adds (train trials: tests/test_hpo_continue.c) */
    resume_case("hb_cont_j2", "{\"name\": \"resume\", \"strategy\": \"random\", \"seed\": 3, \"budget\": {\"trials\": 26},"
                " \"params\": {\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}},"
                " \"scheduler\": {\"type\": \"hyperband\", \"min_resource\": 1, \"max_resource\": 9, \"eta\": 3, \"continue\": true}}",
                "2", 11, 26);
    resume_case("sh_cont", "{\"name\": \"resume\", \"strategy\": \"tpe\", \"seed\": 1, \"budget\": {\"trials\": 13},"
                " \"params\": {\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}},"
                " \"scheduler\": {\"type\": \"successive-halving\", \"min_resource\": 1, \"max_resource\": 9, \"eta\": 3, \"continue\": true}}",
                "1", 10, 13);
    for (int k = 0; k < 2; k++) {
        ft_hpo_spec *s;
        ft_hpo_trial *t;
        int n;
        char db[600];
        snprintf(db, sizeof db, "%s/%s_b.db", g_tmp, k ? "sh_cont" : "hb_cont_j2");
        ft_test_hpo_load(db, "resume", &s, &t, &n);
        int continued = 0;
        for (int i = 0; i < n; i++) {
            if (t[i].rung == 0) { assert_int_equal(t[i].parent, -1); assert_true(t[i].cost == t[i].budget); continue; }
            const ft_hpo_trial *p = &t[t[i].parent];
            assert_true(p->config == t[i].config && p->rung == t[i].rung - 1);
            assert_true(t[i].cost == t[i].budget - p->budget);
            continued++;
        }
        assert_true(continued >= 4);   /* hyperband: 5 of 26; successive halving (9, 3, 1): 4 of 13 */
        ft_hpo_trials_free(t, n);
        ft_hpo_spec_free(s);
    }
}

static void concurrent_writers(void **state) {
    (void)state;
    const char *obj = objective_script();
    char db[512], c1[512], c2[512], cmd[8192];
    snprintf(db, sizeof db, "%s/shared.db", g_tmp);
    snprintf(c1, sizeof c1, "%s", ft_test_path(g_tmp, "w1.json"));
    snprintf(c2, sizeof c2, "%s", ft_test_path(g_tmp, "w2.json"));
    const char *body = "{\"name\": \"%s\", \"strategy\": \"%s\", \"seed\": 1, \"budget\": {\"trials\": %d}, \"params\": {"
                       "\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}}}";
    char j[512];
    snprintf(j, sizeof j, body, "w1", "random", 60);
    write_file(c1, j);
    snprintf(j, sizeof j, body, "w2", "tpe", 60);
    write_file(c2, j);
    const char *bin = getenv("BUILD") ? getenv("BUILD") : "build";
    /* both at once, each with 3 objective processes; a third process tries to take w1 while it runs */
    snprintf(cmd, sizeof cmd,
             "%s/finetune sweep --config %s --objective-cmd %s --db %s --jobs 3 --quiet --no-report > %s/w1.out 2>&1 & p1=$!; "
             "%s/finetune sweep --config %s --objective-cmd %s --db %s --jobs 3 --quiet --no-report > %s/w2.out 2>&1 & p2=$!; "
             "sleep 0.3; %s/finetune sweep --config %s --objective-cmd %s --db %s --quiet --no-report > %s/w3.out 2>&1; r3=$?; "
             "wait $p1; r1=$?; wait $p2; r2=$?; echo \"$r1 $r2 $r3\"",
             bin, c1, obj, db, g_tmp, bin, c2, obj, db, g_tmp, bin, c1, obj, db, g_tmp);
    char *out;
    assert_int_equal(ft_test_run(cmd, &out), 0);
    int r1 = -1, r2 = -1, r3 = -1;
    sscanf(out, "%d %d %d", &r1, &r2, &r3);
    free(out);
    printf("  exit statuses: w1 %d, w2 %d, second process on w1 %d\n", r1, r2, r3);
    assert_int_equal(r2, 0);
    /* one of the two processes on w1 ran it; the other was refused while it ran (whichever came second to
     * take the sweep on a loaded machine) or found it complete */
    assert_true(r1 == 0 || r3 == 0);
    const char *outs[2] = {"w1.out", "w3.out"};
    int rs[2] = {r1, r3};
    for (int k = 0; k < 2; k++) {
        char *w;
        size_t len;
        assert_int_equal(ft_file_read_all(ft_test_path(g_tmp, outs[k]), &w, &len), FT_OK);
        if (rs[k] != 0 && !strstr(w, "is being run by process")) { print_error("%s: %s\n", outs[k], w); fail(); }
        if (rs[k] == 0) assert_non_null(strstr(w, "60 trials: 60 finished"));
        free(w);
    }
    /* integrity, and the rows through SQLite itself */
    sqlite3 *q;
    assert_int_equal(sqlite3_open(db, &q), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(q, "PRAGMA integrity_check;", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(q, "SELECT s.name, count(*), sum(t.status = 'finished'), max(t.idx) FROM trials t "
                                           "JOIN sweeps s ON s.id = t.sweep_id GROUP BY s.name ORDER BY s.name;", -1, &st, NULL), SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        rows++;
        assert_int_equal(sqlite3_column_int(st, 1), 60);
        assert_int_equal(sqlite3_column_int(st, 2), 60);
        assert_int_equal(sqlite3_column_int(st, 3), 59);
    }
    sqlite3_finalize(st);
    assert_int_equal(rows, 2);
    assert_int_equal(sqlite3_prepare_v2(q, "PRAGMA journal_mode;", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(q);
}

static void report_html(void **state) {
    (void)state;
    const char *obj = objective_script();
    char cfg[512], db[512], rep[512];
    snprintf(cfg, sizeof cfg, "%s", ft_test_path(g_tmp, "rep.json"));
    snprintf(db, sizeof db, "%s/rep.db", g_tmp);
    snprintf(rep, sizeof rep, "%s/rep.html", g_tmp);
    write_file(cfg, "{\"name\": \"rep<&>\", \"strategy\": \"tpe\", \"seed\": 1, \"budget\": {\"trials\": 30}, \"params\": {"
                    "\"x\": {\"type\": \"uniform\", \"low\": -5, \"high\": 10}, \"y\": {\"type\": \"uniform\", \"low\": 0, \"high\": 15}},"
                    " \"scheduler\": {\"type\": \"asha\", \"min_resource\": 1, \"max_resource\": 9}}");
    char *out;
    int rc = ft_test_finetune(&out, "sweep --config %s --objective-cmd %s --db %s --report %s", cfg, obj, db, rep);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "best: trial"));
    assert_non_null(strstr(out, "importance"));
    free(out);
    char *html;
    size_t len;
    assert_int_equal(ft_file_read_all(rep, &html, &len), FT_OK);
    const char *need[] = {"Optimisation history", "Parallel coordinates", "Parameter importance", "Values by budget",
                          "Trials", "rep&lt;&amp;&gt;", "<svg", "stopped at rung", NULL};
    for (int i = 0; need[i]; i++) {
        if (!strstr(html, need[i])) { print_error("report lacks \"%s\"\n", need[i]); fail(); }
    }
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "rep<&>"));
    free(html);
    /* --show reads it back */
    rc = ft_test_finetune(&out, "sweep --show --name 'rep<&>' --db %s", db);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "30 trials: 30 finished"));
    free(out);
    /* the default report path is next to the database, the name made a safe file name */
    char def[600];
    snprintf(def, sizeof def, "%s/sweep-rep___.html", g_tmp);
    assert_true(ft_path_exists(def));
}

static void train_trials(void **state) {
    (void)state;
    char cfg[512], db[512], runs[512];
    snprintf(cfg, sizeof cfg, "%s", ft_test_path(g_tmp, "train_sweep.json"));
    snprintf(db, sizeof db, "%s/train/f.db", g_tmp);
    snprintf(runs, sizeof runs, "%s/train/sweeps/tr_1", g_tmp);
    write_file(cfg, "{\"name\": \"tr 1\", \"strategy\": \"random\", \"seed\": 3, \"budget\": {\"trials\": 2},"
                    " \"params\": {\"lr\": {\"type\": \"loguniform\", \"low\": 1e-4, \"high\": 3e-3}},"
                    " \"train\": {\"seq_len\": 64, \"batch_size\": 4}, \"scheduler\": {\"type\": \"none\", \"max_resource\": 2}}");
    char *out;
    char tb[600];
    snprintf(tb, sizeof tb, "%s/train/tb", g_tmp);
    int rc = ft_test_finetune(&out, "sweep --config %s --db %s --no-report --tensorboard %s", cfg, db, tb);
    assert_int_equal(rc, 0);
    free(out);
    /* a run of the same store that no sweep made */
    assert_int_equal(ft_test_finetune(&out, "train --out %s/train/solo --db %s --max-steps 1 --seq-len 64 --batch-size 4 --samples 0", g_tmp, db), 0);
    free(out);
    ft_hpo_spec *s;
    ft_hpo_trial *t;
    int n;
    ft_hpo_db *h;
    assert_int_equal(ft_hpo_db_open(db, &h), FT_OK);
    assert_int_equal(ft_hpo_sweep_load(h, "tr 1", &s, &t, &n), FT_OK);
    ft_hpo_db_close(h);
    /* each trial's training is a finished run of the run store in the sweep's database */
    {
        sqlite3 *q;
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_open_v2(db, &q, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(q, "SELECT group_concat(name || ':' || status, ' ') FROM (SELECT name, status FROM runs ORDER BY name);",
                                            -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "solo:finished trial-0:finished trial-1:finished");
        sqlite3_finalize(st);
        /* trials.run_id points at each trial's run */
        assert_int_equal(sqlite3_prepare_v2(q, "SELECT group_concat(t.idx || '=' || r.name, ' ') FROM (SELECT * FROM trials ORDER BY idx) t "
                                               "JOIN runs r ON r.id = t.run_id;", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "0=trial-0 1=trial-1");
        sqlite3_finalize(st);
        sqlite3_close(q);
    }
    /* finetune runs: list --sweep, show names the sweep and trial */
    assert_int_equal(ft_test_finetune(&out, "runs --db %s list --sweep 'tr 1'", db), 0);
    assert_non_null(strstr(out, "trial-0"));
    assert_non_null(strstr(out, "trial-1"));
    assert_null(strstr(out, "solo"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "runs --db %s list", db), 0);
    assert_non_null(strstr(out, "solo"));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "runs --db %s show trial-1", db), 0);
    assert_non_null(strstr(out, "sweep:    tr 1, trial 1 (config 1, rung 0, budget 2): finished, value "));
    free(out);
    assert_int_equal(ft_test_finetune(&out, "runs --db %s show solo", db), 0);
    assert_null(strstr(out, "sweep:"));
    free(out);
    {
        char cmd[1400];
        snprintf(cmd, sizeof cmd, "%s/finetune runs --db %s list --sweep nope 2>&1", getenv("BUILD") ? getenv("BUILD") : "build", db);
        assert_int_not_equal(ft_test_run(cmd, &out), 0);
        assert_non_null(strstr(out, "no sweep \"nope\""));
        free(out);
    }
    /* --tensorboard DIR: each trial's event file in DIR/trial-<idx> */
    for (int i = 0; i < 2; i++) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "ls %s/trial-%d | grep -c '^events.out.tfevents.'", tb, i);
        assert_int_equal(ft_test_run(cmd, &out), 0);
        assert_int_equal(atoi(out), 1);
        free(out);
    }
    assert_int_equal(n, 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(t[i].status, FT_HPO_FINISHED);
        char path[700], *text;
        size_t len;
        /* the value is the run's last val_loss */
        snprintf(path, sizeof path, "%s/trial-%d/metrics.jsonl", runs, i);
        assert_int_equal(ft_file_read_all(path, &text, &len), FT_OK);
        double last = NAN;
        for (char *p = text; (p = strstr(p, "\"val_loss\":")); p++) last = strtod(p + 11, NULL);
        free(text);
        printf("  trial %d: lr %.6g, val_loss %.6f (metrics.jsonl %.6f)\n", i, t[i].x[0], t[i].value, last);
        assert_true(fabs(t[i].value - last) <= 1e-9 * fabs(last));
        /* the run was trained with the sampled lr and the budget as max_steps */
        snprintf(path, sizeof path, "%s/trial-%d/config.json", runs, i);
        assert_int_equal(ft_file_read_all(path, &text, &len), FT_OK);
        cJSON *c = cJSON_Parse(text);
        free(text);
        assert_non_null(c);
        assert_true(fabs(cJSON_GetObjectItem(c, "lr")->valuedouble - t[i].x[0]) <= 1e-6 * t[i].x[0]);
        assert_int_equal(cJSON_GetObjectItem(c, "max_steps")->valueint, 2);
        assert_int_equal(cJSON_GetObjectItem(c, "seq_len")->valueint, 64);
        cJSON_Delete(c);
    }
    assert_true(t[0].value != t[1].value);
    ft_hpo_trials_free(t, n);
    ft_hpo_spec_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gp_matches_numpy),
        cmocka_unit_test(gp_fit_raises_likelihood),
        cmocka_unit_test(hyperband_paper_table),
        cmocka_unit_test(hyperband_engine),
        cmocka_unit_test(sh_asha_engine),
        cmocka_unit_test(grid_and_random),
        cmocka_unit_test(tpe_beats_random),
        cmocka_unit_test(bayes_finds_branin),
        cmocka_unit_test(spec_errors),
        cmocka_unit_test(resume_after_kill9),
        cmocka_unit_test(concurrent_writers),
        cmocka_unit_test(report_html),
        cmocka_unit_test(train_trials),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
