/* test_serve_drift.c — Page-Hinkley drift detection of `finetune serve` (src/serve/drift.c) on synthetic
 * streams with a fixed seed: no alarm on long stationary streams (Gaussian, skewed, 0/1 label mix), an
 * alarm within a bounded delay after a mean shift up and down, the alarm callback and its JSON line, the
 * re-learnt reference after an alarm, and the exported gauges. */
#include "testutil.h"
#include "core/hash.h"
#include "core/strbuf.h"
#include "finetune/status.h"
#include "serve/drift.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a seeded uniform (0, 1) stream from splitmix64 */
typedef struct { uint64_t s; } rng_t;
static double unif(rng_t *r) {
    r->s += FT__GOLDEN_GAMMA;
    return ((double)(ft__mix64(r->s) >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(rng_t *r) {   /* Box-Muller */
    return sqrt(-2.0 * log(unif(r))) * cos(6.283185307179586 * unif(r));
}

typedef struct { int fired; ft__drift_event ev; char model[64], signal[64]; char json[512]; } alarm_log;

static void on_alarm(void *user, const ft__drift_event *ev) {
    alarm_log *a = user;
    if (a->fired++ == 0) {
        a->ev = *ev;
        snprintf(a->model, sizeof a->model, "%s", ev->model);
        snprintf(a->signal, sizeof a->signal, "%s", ev->signal);
        ft__sb b = {0};
        assert_int_equal(ft__drift_event_json(ev, &b), FT_OK);
        snprintf(a->json, sizeof a->json, "%s", b.p);
        ft__sb_free(&b);
    }
}

enum { STATIONARY_N = 100000 };

static void test_stationary_no_alarm(void **st) {
    (void)st;
    alarm_log a = {0};
    ft__drift *d;
    assert_int_equal(ft__drift_create(&d, NULL, on_alarm, &a), FT_OK);
    rng_t r = {42};
    const char *labels[] = {"negative", "positive", "neutral"};
    for (int i = 0; i < STATIONARY_N; i++) {
        ft__drift_observe(d, "gen", "prompt_tokens", 100 + 15 * gauss(&r));               /* Gaussian */
        ft__drift_observe(d, "gen", "generated_tokens", -40 * log(unif(&r)));             /* exponential (skewed) */
        double u = unif(&r);                                                               /* label mix 0.6/0.3/0.1 */
        ft__drift_observe_prediction(d, "cls", 0.5 + 0.5 * unif(&r), labels, 3, u < 0.6 ? 0 : u < 0.9 ? 1 : 2);
    }
    double s1, s2;
    int al;
    assert_int_equal(ft__drift_state(d, "gen", "prompt_tokens", &s1, &al), FT_OK);
    assert_int_equal(ft__drift_state(d, "cls", "label:neutral", &s2, &al), FT_OK);
    printf("  %d observations per signal, %d alarms (statistics now %.2f, %.2f; lambda 30)\n", STATIONARY_N, a.fired, s1, s2);
    assert_int_equal(a.fired, 0);
    assert_int_equal((int)ft__drift_alarms_total(d), 0);
    ft__drift_free(d);
}

/* Reference of W=200 draws of N(mu, sd), then `pre` more, then a shift by `shift` sd: the alarm must
 * come within max_delay observations of the shift and in the right direction. */
static void shift_case(double shift, int max_delay, const char *want_dir, uint64_t seed) {
    alarm_log a = {0};
    ft__drift *d;
    assert_int_equal(ft__drift_create(&d, NULL, on_alarm, &a), FT_OK);
    rng_t r = {seed};
    const double mu = 50, sd = 8;
    int i = 0, pre = 1000, delay = -1;
    for (; i < 200 + pre; i++) assert_int_equal(ft__drift_observe(d, "m", "prompt_tokens", mu + sd * gauss(&r)), 0);
    for (int k = 0; k < 2000 && delay < 0; k++)
        if (ft__drift_observe(d, "m", "prompt_tokens", mu + shift * sd + sd * gauss(&r))) delay = k + 1;
    printf("  shift %+.1f sd: alarm after %d observations (bound %d): %s\n", shift, delay, max_delay, a.json);
    assert_true(delay > 0 && delay <= max_delay);
    assert_int_equal(a.fired, 1);
    assert_string_equal(a.ev.direction, want_dir);
    assert_string_equal(a.model, "m");
    assert_string_equal(a.signal, "prompt_tokens");
    assert_true(fabs(a.ev.ref_mean - mu) < 2);
    assert_true(a.ev.statistic > a.ev.lambda);
    assert_non_null(strstr(a.json, "{\"event\":\"drift\",\"model\":\"m\",\"signal\":\"prompt_tokens\",\"direction\":\""));
    double stat;
    int alarm;
    assert_int_equal(ft__drift_state(d, "m", "prompt_tokens", &stat, &alarm), FT_OK);
    assert_int_equal(alarm, 1);   /* alarmed while the new reference is learnt */
    ft__sb b = {0};
    assert_int_equal(ft__drift_render(d, &b), FT_OK);
    assert_non_null(strstr(b.p, "finetune_drift_alarm{model=\"m\",signal=\"prompt_tokens\"} 1\n"));
    assert_non_null(strstr(b.p, "finetune_drift_alarms_total 1\n"));
    ft__sb_free(&b);
    /* the shifted stream is the new normal: after its reference, no more alarms and the gauge is back to 0 */
    for (int k = 0; k < 20000; k++) ft__drift_observe(d, "m", "prompt_tokens", mu + shift * sd + sd * gauss(&r));
    assert_int_equal(ft__drift_state(d, "m", "prompt_tokens", &stat, &alarm), FT_OK);
    assert_int_equal(alarm, 0);
    assert_int_equal(a.fired, 1);
    ft__drift_free(d);
}

static void test_shift_up(void **st) {
    (void)st;
    shift_case(1.0, 150, "increase", 7);
    shift_case(3.0, 40, "increase", 8);
}

static void test_shift_down(void **st) {
    (void)st;
    shift_case(-1.0, 150, "decrease", 9);
    shift_case(-3.0, 40, "decrease", 10);
}

static void test_label_mix_change(void **st) {
    (void)st;
    alarm_log a = {0};
    ft__drift *d;
    assert_int_equal(ft__drift_create(&d, NULL, on_alarm, &a), FT_OK);
    rng_t r = {11};
    const char *labels[] = {"neg", "pos"};
    for (int i = 0; i < 2000; i++) ft__drift_observe_prediction(d, "sst2", 0.9, labels, 2, unif(&r) < 0.5);
    assert_int_equal(a.fired, 0);
    int delay = -1;   /* now 90% "pos" */
    for (int k = 0; k < 1000 && delay < 0; k++) {
        ft__drift_observe_prediction(d, "sst2", 0.9, labels, 2, unif(&r) < 0.9);
        if (a.fired) delay = k + 1;
    }
    printf("  label mix 50/50 -> 10/90: alarm after %d predictions on %s (%s)\n", delay, a.signal, a.ev.direction);
    assert_true(delay > 0 && delay <= 150);
    assert_true(!strcmp(a.signal, "label:pos") || !strcmp(a.signal, "label:neg"));
    ft__drift_free(d);
}

static void test_outlier_and_limits(void **st) {
    (void)st;
    alarm_log a = {0};
    ft__drift *d;
    assert_int_equal(ft__drift_create(&d, NULL, on_alarm, &a), FT_OK);
    rng_t r = {3};
    for (int i = 0; i < 500; i++) ft__drift_observe(d, "m", "x", 10 + gauss(&r));
    ft__drift_observe(d, "m", "x", 1e9);   /* one outlier is clipped */
    ft__drift_observe(d, "m", "x", NAN);   /* ignored */
    for (int i = 0; i < 500; i++) ft__drift_observe(d, "m", "x", 10 + gauss(&r));
    assert_int_equal(a.fired, 0);
    /* constant reference (sd 0): the floor gives it a scale; the same constant never alarms */
    for (int i = 0; i < 5000; i++) ft__drift_observe(d, "m", "unknown_token_rate", 0);
    assert_int_equal(a.fired, 0);
    for (int i = 0; i < 100 && !a.fired; i++) ft__drift_observe(d, "m", "unknown_token_rate", 0.2);
    assert_int_equal(a.fired, 1);
    /* bounded: models beyond the cap are ignored */
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "model%d", i);
        ft__drift_observe(d, name, "x", 1);
    }
    ft__sb b = {0};
    ft__drift_render(d, &b);
    int n = 0;
    for (const char *p = b.p; (p = strstr(p, "finetune_drift_statistic{")); p++) n++;
    printf("  %d statistic series after 201 model names (cap %d)\n", n, FT__DRIFT_MAX_MODELS);
    assert_true(n <= FT__DRIFT_MAX_MODELS * 2);
    ft__sb_free(&b);
    ft__drift_params p = ft__drift_default_params();
    p.lambda = 0;
    ft__drift *bad;
    assert_int_equal(ft__drift_create(&bad, &p, NULL, NULL), FT_ERR_INVALID);
    ft__drift_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stationary_no_alarm),
        cmocka_unit_test(test_shift_up),
        cmocka_unit_test(test_shift_down),
        cmocka_unit_test(test_label_mix_change),
        cmocka_unit_test(test_outlier_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
