/* test_textmetrics.c — BLEU / chrF / ROUGE / EM / F1 / distinct-n against the reference libraries.
 *
 * Expected values come from tests/parity/make_text_metrics_fixtures.py (sacrebleu 2.6, rouge-score 0.1.2 with
 * nltk's Porter stemmer, the SQuAD v2 script's functions) over the committed fixtures in
 * tests/fixtures/textmetrics/: TED Slovak->English system outputs (single, multi and variable references),
 * DialogSum-style summaries with one sentence per line, and hand-written adversarial lines.
 * Tolerances: BLEU and chrF 5e-5 (4 decimals), ROUGE 1e-6, EM / F1 / distinct 1e-9, bootstrap means and
 * intervals 1e-4 (sacreBLEU sums its resamples in float32), p-values exactly. */
#include "testutil.h"
#include "finetune/fileio.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/textmetrics_internal.h"
#include "finetune/status.h"
#include "finetune/textmetrics.h"

static char *slurp(const char *path) {   /* the whole file, NUL-terminated; NULL if unreadable */
    char *s = NULL;
    return ft_file_read_all(path, &s, NULL) == FT_OK ? s : NULL;
}

static cJSON *g_expected;

/* a fixture set: hyps [n], hyp2 [n] (may be NULL), refs as streams [n_refs][n] (NULL entries allowed) */
typedef struct set {
    int n, n_refs;
    char **hyp, **hyp2;
    char **refs[4];
} set;

static void set_free(set *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->hyp[i]);
        if (s->hyp2) free(s->hyp2[i]);
        for (int r = 0; r < s->n_refs; r++) free(s->refs[r][i]);
    }
    free(s->hyp); free(s->hyp2);
    for (int r = 0; r < s->n_refs; r++) free(s->refs[r]);
}

static char *dup_or_null(const cJSON *x) { return cJSON_IsString(x) ? strdup(x->valuestring) : NULL; }

/* refs_mode: 0 = the first reference only, 1 = all, 2 = the second only on even lines (variable) */
static void load_set(set *s, const char *name, int refs_mode) {
    memset(s, 0, sizeof *s);
    char *text = slurp(ft_fixture(name));
    assert_non_null(text);
    int cap = 1024;
    s->hyp = calloc((size_t)cap, sizeof *s->hyp);
    s->hyp2 = calloc((size_t)cap, sizeof *s->hyp2);
    for (int r = 0; r < 4; r++) s->refs[r] = calloc((size_t)cap, sizeof *s->refs[r]);
    int any2 = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        assert_true(s->n < cap);
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        s->hyp[s->n] = dup_or_null(cJSON_GetObjectItem(o, "hyp"));
        s->hyp2[s->n] = dup_or_null(cJSON_GetObjectItem(o, "hyp2"));
        any2 |= s->hyp2[s->n] != NULL;
        const cJSON *refs = cJSON_GetObjectItem(o, "refs");
        int k = 0;
        for (const cJSON *r = refs ? refs->child : NULL; r && k < 4; r = r->next, k++) {
            int keep = refs_mode == 1 || k == 0 || (refs_mode == 2 && s->n % 2 == 0);
            s->refs[k][s->n] = keep ? strdup(r->valuestring) : NULL;
            if (keep && k + 1 > s->n_refs) s->n_refs = k + 1;
        }
        cJSON_Delete(o);
        s->n++;
    }
    if (!any2) { free(s->hyp2); s->hyp2 = NULL; }
    for (int r = s->n_refs; r < 4; r++) { free(s->refs[r]); s->refs[r] = NULL; }
    free(text);
}

static double num(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(x)) fail_msg("expected.json: no number '%s'", key);
    return x->valuedouble;
}

static int close_to(const char *what, double got, double want, double tol) {
    int ok = fabs(got - want) <= tol;
    if (!ok) printf("  %-24s got %.10f, want %.10f (|diff| %.3g > %.1g)\n", what, got, want, fabs(got - want), tol);
    return ok;
}

static double tol_of(int k) {
    if (k == FT_TS_BLEU || k == FT_TS_CHRF) return 5e-5;
    if (k >= FT_TS_ROUGE1 && k <= FT_TS_ROUGELSUM) return 1e-6;
    return 1e-9;
}

/* checks one set against expected[key]; stem selects the rouge*_stem values */
static void check_set(const set *s, const char *key, int stem, int check_bootstrap) {
    const cJSON *e = cJSON_GetObjectItem(g_expected, key);
    assert_non_null(e);
    const char *const *refs[4];
    for (int r = 0; r < s->n_refs; r++) refs[r] = (const char *const *)s->refs[r];
    ft_text_metric_opts o = ft_text_metric_default_opts();
    o.rouge_stem = stem;
    ft_text_stats *st = NULL;
    int rc = ft_text_stats_compute(&st, (const char *const *)s->hyp, refs, s->n_refs, s->n, &o);
    if (rc) printf("  %s\n", ft_last_error());
    assert_int_equal(rc, FT_OK);
    ft_text_scores sc;
    assert_int_equal(ft_text_stats_scores(st, &sc), FT_OK);
    int bad = 0;
    for (int k = 0; k < FT_TS_COUNT; k++) {
        char name[64];
        int is_rouge = k >= FT_TS_ROUGE1 && k <= FT_TS_ROUGELSUM;
        snprintf(name, sizeof name, "%s%s", ft_text_score_name(k), is_rouge && stem ? "_stem" : "");
        bad += !close_to(name, sc.v[k], num(e, name), tol_of(k));
    }
    /* BLEU details and signatures */
    const cJSON *d = cJSON_GetObjectItem(e, "bleu_details");
    bad += sc.bleu.sys_len != (int64_t)num(d, "sys_len") || sc.bleu.ref_len != (int64_t)num(d, "ref_len");
    bad += !close_to("bp", sc.bleu.bp, num(d, "bp"), 1e-12);
    const cJSON *prec = cJSON_GetObjectItem(d, "precisions"), *cnt = cJSON_GetObjectItem(d, "counts"),
                *tot = cJSON_GetObjectItem(d, "totals");
    for (int k = 0; k < 4; k++) {
        bad += !close_to("precision", sc.bleu.precisions[k], cJSON_GetArrayItem(prec, k)->valuedouble, 1e-9);
        bad += sc.bleu.counts[k] != (int64_t)cJSON_GetArrayItem(cnt, k)->valuedouble;
        bad += sc.bleu.totals[k] != (int64_t)cJSON_GetArrayItem(tot, k)->valuedouble;
    }
    const char *bsig = cJSON_GetObjectItem(e, "bleu_signature")->valuestring;
    const char *csig = cJSON_GetObjectItem(e, "chrf_signature")->valuestring;
    if (strcmp(sc.bleu_signature, bsig) || strcmp(sc.chrf_signature, csig)) {
        printf("  signatures %s / %s, want %s / %s\n", sc.bleu_signature, sc.chrf_signature, bsig, csig);
        bad++;
    }
    /* per-example scores */
    const cJSON *per = cJSON_GetObjectItem(e, "per_example");
    double maxd[FT_TS_COUNT] = {0};
    for (int i = 0; i < s->n; i++) {
        double v[FT_TS_COUNT];
        assert_int_equal(ft_text_stats_example(st, i, v), FT_OK);
        for (int k = 0; k < FT_TS_COUNT; k++) {
            char name[64];
            int is_rouge = k >= FT_TS_ROUGE1 && k <= FT_TS_ROUGELSUM;
            snprintf(name, sizeof name, "%s%s", ft_text_score_name(k), is_rouge && stem ? "_stem" : "");
            double want = cJSON_GetArrayItem(cJSON_GetObjectItem(per, name), i)->valuedouble;
            double dd = fabs(v[k] - want);
            if (dd > maxd[k]) maxd[k] = dd;
            if (dd > tol_of(k)) {
                if (bad < 20) printf("  example %d %s: got %.10f want %.10f\n", i + 1, name, v[k], want);
                bad++;
            }
        }
    }
    printf("  %-12s n=%d refs=%d%s: BLEU %.4f chrF %.4f R1 %.6f R2 %.6f RL %.6f RLsum %.6f EM %.2f F1 %.4f "
           "D1 %.4f D2 %.4f; per-example max |diff| BLEU %.1e chrF %.1e ROUGE %.1e\n",
           key, s->n, s->n_refs, stem ? " stem" : "", sc.v[0], sc.v[1], sc.v[2], sc.v[3], sc.v[4], sc.v[5], sc.v[6],
           sc.v[7], sc.v[8], sc.v[9], maxd[0], maxd[1],
           fmax(fmax(maxd[2], maxd[3]), fmax(maxd[4], maxd[5])));
    if (check_bootstrap) {
        const cJSON *bs = cJSON_GetObjectItem(e, "bootstrap");
        ft_text_bootstrap b;
        assert_int_equal(ft_text_stats_bootstrap(st, 1000, 12345, &b), FT_OK);
        bad += !close_to("bootstrap bleu mean", b.mean[FT_TS_BLEU], num(cJSON_GetObjectItem(bs, "bleu"), "mean"), 1e-4);
        bad += !close_to("bootstrap bleu ci", b.ci[FT_TS_BLEU], num(cJSON_GetObjectItem(bs, "bleu"), "ci"), 1e-4);
        bad += !close_to("bootstrap chrf mean", b.mean[FT_TS_CHRF], num(cJSON_GetObjectItem(bs, "chrf"), "mean"), 1e-4);
        bad += !close_to("bootstrap chrf ci", b.ci[FT_TS_CHRF], num(cJSON_GetObjectItem(bs, "chrf"), "ci"), 1e-4);
        printf("  %-12s bootstrap 1000 (seed 12345): BLEU %.4f +- %.4f [%.4f, %.4f], chrF %.4f +- %.4f\n", key,
               b.mean[0], b.ci[0], b.low[0], b.high[0], b.mean[1], b.ci[1]);
        for (int k = 0; k < FT_TS_DISTINCT1; k++) bad += !(b.low[k] <= b.score[k] && b.score[k] <= b.high[k]);
        bad += !isnan(b.mean[FT_TS_DISTINCT1]) || !isnan(b.ci[FT_TS_DISTINCT2]);  /* distinct-n: not resampled */
    }
    ft_text_stats_free(st);
    assert_int_equal(bad, 0);
}

static void test_ted_single(void **state) {
    (void)state;
    set s;
    load_set(&s, "textmetrics/ted.jsonl", 0);
    check_set(&s, "ted_single", 0, 1);
    check_set(&s, "ted_single", 1, 0);
    set_free(&s);
}

static void test_ted_multi_reference(void **state) {
    (void)state;
    set s;
    load_set(&s, "textmetrics/ted.jsonl", 1);
    assert_int_equal(s.n_refs, 2);
    check_set(&s, "ted_multi", 0, 1);
    check_set(&s, "ted_multi", 1, 0);
    set_free(&s);
    load_set(&s, "textmetrics/ted.jsonl", 2);  /* NULL references on odd lines: nrefs:var */
    check_set(&s, "ted_var", 0, 0);
    set_free(&s);
}

static void test_dialogsum_rouge(void **state) {
    (void)state;
    set s;
    load_set(&s, "textmetrics/dialogsum.jsonl", 1);
    check_set(&s, "dialogsum", 0, 1);
    check_set(&s, "dialogsum", 1, 0);
    set_free(&s);
}

static void test_adversarial(void **state) {
    (void)state;
    set s;
    load_set(&s, "textmetrics/adversarial.jsonl", 1);
    check_set(&s, "adversarial", 0, 0);
    check_set(&s, "adversarial", 1, 0);
    set_free(&s);
}

static void test_paired_bootstrap(void **state) {
    (void)state;
    set s;
    load_set(&s, "textmetrics/ted.jsonl", 0);
    assert_non_null(s.hyp2);
    const cJSON *e = cJSON_GetObjectItem(g_expected, "ted_paired");
    const char *const *refs[1] = {(const char *const *)s.refs[0]};
    ft_text_metric_opts o = {FT_TEXT_BLEU | FT_TEXT_CHRF, 0};
    ft_text_stats *a, *b;
    assert_int_equal(ft_text_stats_compute(&a, (const char *const *)s.hyp, refs, 1, s.n, &o), FT_OK);
    assert_int_equal(ft_text_stats_compute(&b, (const char *const *)s.hyp2, refs, 1, s.n, &o), FT_OK);
    ft_text_paired p;
    assert_int_equal(ft_text_stats_paired(a, b, 1000, 12345, &p), FT_OK);
    int bad = 0;
    static const struct { const char *key; int id; } k[] = {{"bleu", FT_TS_BLEU}, {"chrf", FT_TS_CHRF}};
    for (int q = 0; q < 2; q++) {
        const cJSON *x = cJSON_GetObjectItem(e, k[q].key);
        int id = k[q].id;
        bad += !close_to("base", p.base[id], num(x, "base"), 5e-5);
        bad += !close_to("sys", p.sys[id], num(x, "sys"), 5e-5);
        bad += !close_to("p_value", p.p_value[id], num(x, "p_value"), 1e-12);
        bad += !close_to("sys_mean", p.sys_mean[id], num(x, "sys_mean"), 1e-4);
        bad += !close_to("sys_ci", p.sys_ci[id], num(x, "sys_ci"), 1e-4);
        bad += !close_to("base_mean", p.base_mean[id], num(x, "base_mean"), 1e-4);
        bad += !close_to("base_ci", p.base_ci[id], num(x, "base_ci"), 1e-4);
        printf("  paired %s: base %.4f sys %.4f (mu %.4f +- %.4f) p = %.4f (sacreBLEU %.4f)\n", k[q].key, p.base[id],
               p.sys[id], p.sys_mean[id], p.sys_ci[id], p.p_value[id], num(x, "p_value"));
    }
    /* the wrong pairing is refused */
    ft_text_metric_opts o2 = {FT_TEXT_BLEU, 0};
    ft_text_stats *c;
    assert_int_equal(ft_text_stats_compute(&c, (const char *const *)s.hyp2, refs, 1, s.n, &o2), FT_OK);
    assert_int_equal(ft_text_stats_paired(a, c, 10, 1, &p), FT_ERR_INVALID);
    ft_text_stats_free(a); ft_text_stats_free(b); ft_text_stats_free(c);
    set_free(&s);
    assert_int_equal(bad, 0);
}

static void test_porter(void **state) {
    (void)state;
    char *text = slurp(ft_fixture("textmetrics/porter.tsv"));
    assert_non_null(text);
    int n = 0, bad = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = 0;
        char out[256];
        int l = ft_porter_stem(line, (int)strlen(line), out, sizeof out);
        assert_true(l >= 0);
        if (strcmp(out, tab + 1)) {
            if (bad < 20) printf("  stem(%s) = %s, nltk %s\n", line, out, tab + 1);
            bad++;
        }
        n++;
    }
    printf("  %d words stemmed as nltk's PorterStemmer, %d differ\n", n, bad);
    free(text);
    assert_true(n > 1000);
    assert_int_equal(bad, 0);
    char small[4];
    assert_int_equal(ft_porter_stem("running", 7, small, sizeof small), FT_ERR_INVALID);
}

static void test_numpy_rng(void **state) {
    (void)state;
    /* numpy: default_rng(12345).bit_generator.state and .integers(0, 10, 7) */
    ft__pcg64 r;
    ft__pcg64_seed(&r, 12345);
    unsigned __int128 s = (unsigned __int128)r.st_hi << 64 | r.st_lo;
    char dec[64];
    int k = 63;
    dec[k] = 0;
    do { dec[--k] = (char)('0' + (int)(s % 10)); s /= 10; } while (s);
    assert_string_equal(dec + k, "33261208707367790463622745601869196757");
    int want[7] = {6, 2, 7, 3, 2, 7, 6};
    for (int i = 0; i < 7; i++) assert_int_equal((int)ft__pcg64_below(&r, 10), want[i]);
}

static void test_header_example_and_errors(void **state) {
    (void)state;
    const char *hyp[2] = {"The cat sat on the mat.", "Hello world"};
    const char *ref0[2] = {"The cat is on the mat.", "Hello, world!"};
    const char *const *refs[1] = {ref0};
    ft_text_metric_opts o = ft_text_metric_default_opts();
    ft_text_scores s;
    assert_int_equal(ft_text_scores_compute(hyp, refs, 1, 2, &o, &s), FT_OK);
    assert_true(s.v[FT_TS_BLEU] > 0 && s.v[FT_TS_BLEU] < 100);
    assert_true(s.v[FT_TS_ROUGEL] > 0.5 && s.v[FT_TS_ROUGEL] < 1);
    assert_int_equal(s.n_refs, 1);
    /* identical texts score the maximum */
    const char *const *same[1] = {hyp};
    assert_int_equal(ft_text_scores_compute(hyp, same, 1, 2, &o, &s), FT_OK);
    assert_true(fabs(s.v[FT_TS_CHRF] - 100) < 1e-9 && fabs(s.v[FT_TS_ROUGE1] - 1) < 1e-12 && s.v[FT_TS_EM] == 100);
    /* bad UTF-8 names the line and the byte */
    const char *badh[2] = {"fine", "bad \xff byte"};
    assert_int_equal(ft_text_scores_compute(badh, refs, 1, 2, &o, &s), FT_ERR_FORMAT);
    assert_non_null(strstr(ft_last_error(), "hypothesis 2"));
    assert_non_null(strstr(ft_last_error(), "0xff"));
    const char *badr[2] = {"\xc0\x80 overlong", "ok"};
    const char *const *brefs[1] = {badr};
    assert_int_equal(ft_text_scores_compute(hyp, brefs, 1, 2, &o, &s), FT_ERR_FORMAT);
    assert_non_null(strstr(ft_last_error(), "reference stream 1, line 1"));
    /* an example without any reference */
    const char *nulls[2] = {"x", NULL};
    const char *const *nrefs[1] = {nulls};
    assert_int_equal(ft_text_scores_compute(hyp, nrefs, 1, 2, &o, &s), FT_ERR_INVALID);
    assert_non_null(strstr(ft_last_error(), "example 2"));
    /* distinct-n needs no references */
    ft_text_metric_opts od = {FT_TEXT_DISTINCT, 0};
    assert_int_equal(ft_text_scores_compute(hyp, NULL, 0, 2, &od, &s), FT_OK);
    assert_true(fabs(s.v[FT_TS_DISTINCT1] - 1.0) < 1e-12);  /* "The" and "the" differ: case is kept */
    assert_true(fabs(s.v[FT_TS_DISTINCT2] - 1.0) < 1e-12);
    const char *rep[1] = {"a b a b a"};
    assert_int_equal(ft_text_scores_compute(rep, NULL, 0, 1, &od, &s), FT_OK);
    assert_true(fabs(s.v[FT_TS_DISTINCT1] - 2.0 / 5.0) < 1e-12 && fabs(s.v[FT_TS_DISTINCT2] - 2.0 / 4.0) < 1e-12);
    assert_int_equal(ft_text_scores_compute(hyp, NULL, 0, 2, &o, &s), FT_ERR_INVALID);
    assert_int_equal(ft_text_scores_compute(hyp, refs, 1, 0, &o, &s), FT_ERR_INVALID);
    /* metric lists */
    unsigned bits = 0;
    assert_int_equal(ft_text_metrics_parse("bleu, rouge,f1", &bits), FT_OK);
    assert_int_equal(bits, FT_TEXT_BLEU | FT_TEXT_ROUGE | FT_TEXT_F1);
    assert_int_equal(ft_text_metrics_parse("bleu,meteor", &bits), FT_ERR_INVALID);
    assert_non_null(strstr(ft_last_error(), "meteor"));
    assert_string_equal(ft_text_score_name(FT_TS_ROUGELSUM), "rougeLsum");
    assert_null(ft_text_score_name(FT_TS_COUNT));
}

static int setup(void **state) {
    (void)state;
    char *text = slurp(ft_fixture("textmetrics/expected.json"));
    if (!text) return -1;
    g_expected = cJSON_Parse(text);
    free(text);
    return g_expected ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(g_expected);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ted_single),
        cmocka_unit_test(test_ted_multi_reference),
        cmocka_unit_test(test_dialogsum_rouge),
        cmocka_unit_test(test_adversarial),
        cmocka_unit_test(test_paired_bootstrap),
        cmocka_unit_test(test_porter),
        cmocka_unit_test(test_numpy_rng),
        cmocka_unit_test(test_header_example_and_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
