/* test_report.c — the run report (include/finetune/report.h, src/report/report*.c).
 *
 * Each test writes a run directory (config.json + metrics.jsonl) in a scratch folder, calls
 * ft_report_write and checks report.html: the sections that must be there, numbers that must
 * appear in them (cell counts, supports, ECE, mean ± std), that label names are HTML-escaped
 * (a label "<b>&" never appears raw), that the page has no script or external reference, and
 * that malformed lines (cut off, not JSON, mistyped keys, nulls) are skipped without failing.
 * The encoder lines are built with the library's own JSON writers (ft_metrics_report_json,
 * ft_ner_report_json, ft_metrics_kfold_json), as the trainer builds them. The decoder run comes
 * from tests/fixtures/report/decoder_metrics.jsonl. FT_KEEP_TMP=1 keeps the scratch folder
 * (/tmp/ft_test_report_*) to look at the pages. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "finetune/metrics.h"
#include "finetune/report.h"
#include "finetune/status.h"

static char g_tmp[256];

static int setup(void **state) {
    (void)state;
    return ft_test_tmpdir_make(g_tmp, sizeof g_tmp, "ft_test_report");
}

static int teardown(void **state) {
    (void)state;
    return ft_test_tmpdir_remove(g_tmp);
}

/* ---------------------------------------------------------------- helpers */

static const char *run_dir(const char *name) {
    const char *d = ft_test_path(g_tmp, name);
    mkdir(d, 0755);
    return d;
}

static void write_text(const char *dir, const char *name, const char *text) {
    FILE *f = fopen(ft_test_path(dir, name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* A growing text of metrics lines. */
typedef struct lines { char *s; size_t len; } lines;
static void add_line(lines *l, const char *line) {
    size_t n = strlen(line);
    l->s = realloc(l->s, l->len + n + 2);
    assert_non_null(l->s);
    memcpy(l->s + l->len, line, n);
    l->len += n;
    l->s[l->len++] = '\n';
    l->s[l->len] = 0;
}
static void add_json(lines *l, cJSON *j) { /* consumes j */
    char *s = cJSON_PrintUnformatted(j);
    assert_non_null(s);
    add_line(l, s);
    cJSON_free(s);
    cJSON_Delete(j);
}

static long count(const char *hay, const char *needle) {
    long n = 0;
    size_t k = strlen(needle);
    for (const char *p = hay; (p = strstr(p, needle)); p += k) n++;
    return n;
}

#define CHECK_HAS(html, needle) do { \
        if (!strstr((html), (needle))) fail_msg("report.html lacks: %s", (needle)); \
        g_checks++; } while (0)
#define CHECK_NOT(html, needle) do { \
        if (strstr((html), (needle))) fail_msg("report.html must not hold: %s", (needle)); \
        g_checks++; } while (0)
static long g_checks;

/* Writes the report and reads it back; checks what every page must satisfy. */
static char *report(const char *dir) {
    int rc = ft_report_write(dir);
    if (rc != FT_OK) fail_msg("ft_report_write(%s) = %d: %s", dir, rc, ft_last_error());
    char *html = read_text(ft_test_path(dir, "report.html"));
    assert_non_null(html);
    CHECK_HAS(html, "<!DOCTYPE html>");
    CHECK_HAS(html, "</body></html>");
    CHECK_NOT(html, "<script");
    CHECK_NOT(html, "href=");
    CHECK_NOT(html, "src=");
    CHECK_NOT(html, "@import");
    /* the only URL is the SVG namespace */
    assert_int_equal(count(html, "http"), count(html, "xmlns='http://www.w3.org/2000/svg'"));
    assert_int_equal(count(html, "<svg"), count(html, "</svg>"));
    assert_int_equal(count(html, "<figure>"), count(html, "</figure>"));
    assert_int_equal(count(html, "<table>"), count(html, "</table>"));
    assert_int_equal(count(html, "<tr>"), count(html, "</tr>"));
    assert_int_equal(count(html, "<title>"), count(html, "</title>"));
    /* no NaN / inf printed as a number after the header (which holds the random dir name) */
    const char *body = strstr(html, "<h2>Curves</h2>");
    assert_non_null(body);
    CHECK_NOT(body, "nan");
    CHECK_NOT(body, "inf<");
    CHECK_NOT(body, "inf'");
    CHECK_NOT(body, "inf ");
    return html;
}

/* ---------------------------------------------------------------- classification lines */

static const char *k_names[3] = {"neg", "<b>&", "it's \"pos\""};

/* A classification eval / test line from a confusion matrix cm [3][3] (rows = true): samples
 * are made from the matrix with confidences spread over (0.4, 0.9]. *rep gets the report. */
static cJSON *cls_line(const char *type, int step, const int cm[3][3], ft_metrics_report *rep) {
    int32_t yt[256], yp[256];
    double probs[256 * 3];
    int n = 0;
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++)
            for (int k = 0; k < cm[t][p]; k++) {
                double c = 0.4 + 0.5 * (double)((n * 7) % 10 + 1) / 10.0;
                yt[n] = t;
                yp[n] = p;
                for (int j = 0; j < 3; j++) probs[n * 3 + j] = j == p ? c : (1 - c) / 2;
                n++;
            }
    ft_metrics_params prm = ft_metrics_default_params(3);
    assert_int_equal(ft_metrics_classification(rep, &prm, yt, yp, probs, n), FT_OK);
    char *js = NULL;
    assert_int_equal(ft_metrics_report_json(&js, rep, k_names), FT_OK);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", type);
    cJSON_AddNumberToObject(j, "step", step);
    cJSON_AddNumberToObject(j, "epoch", step / 10.0);
    cJSON_AddStringToObject(j, "task", "classify");
    cJSON_AddNumberToObject(j, "val_loss", rep->log_loss);
    cJSON_AddNumberToObject(j, "examples", n);
    cJSON_AddNumberToObject(j, "accuracy", rep->accuracy);
    cJSON_AddNumberToObject(j, "precision_macro", rep->precision_macro);
    cJSON_AddNumberToObject(j, "recall_macro", rep->recall_macro);
    cJSON_AddNumberToObject(j, "f1_macro", rep->f1_macro);
    cJSON_AddNumberToObject(j, "f1_micro", rep->f1_micro);
    cJSON_AddNumberToObject(j, "f1_weighted", rep->f1_weighted);
    cJSON_AddNumberToObject(j, "ece", rep->ece);
    cJSON_AddNumberToObject(j, "log_loss", rep->log_loss);
    cJSON_AddNullToObject(j, "roc_auc");
    cJSON_AddItemToObject(j, "classification", cJSON_Parse(js));
    cJSON *cal = cJSON_AddArrayToObject(j, "calibration");
    for (int b = 0; b < rep->ece_bins; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "count", (double)rep->calib[b].count);
        cJSON_AddNumberToObject(e, "accuracy", rep->calib[b].accuracy);
        cJSON_AddNumberToObject(e, "confidence", rep->calib[b].confidence);
        cJSON_AddItemToArray(cal, e);
    }
    free(js);
    return j;
}

static void test_classify_run(void **state) {
    (void)state;
    g_checks = 0;
    const char *dir = run_dir("classify");
    write_text(dir, "config.json", "{\"task\": \"classify\", \"labels\": [\"neg\", \"<b>&\", \"it's \\\"pos\\\"\"], \"lr\": 2e-05}");
    static const int cm10[3][3] = {{6, 4, 0}, {3, 6, 1}, {2, 3, 5}};
    static const int cm20[3][3] = {{8, 2, 0}, {1, 9, 0}, {0, 3, 7}};
    static const int cmte[3][3] = {{5, 1, 0}, {2, 7, 1}, {0, 0, 4}};
    ft_metrics_report r10, r20, rte;
    lines l = {0};
    for (int s = 1; s <= 20; s++) {
        char b[200];
        snprintf(b, sizeof b, "{\"type\": \"train\", \"step\": %d, \"epoch\": %.2f, \"loss\": %.4f, \"lr\": 2e-05, \"grad_norm\": %.3f, \"examples_per_s\": 50.0}",
                 s, s / 10.0, 1.1 - 0.03 * s, 2.0 / s);
        add_line(&l, b);
        if (s == 10) add_json(&l, cls_line("eval", 10, cm10, &r10));
        if (s == 12) {
            add_line(&l, "{\"type\":\"eval\",\"step\":15,\"val_lo");          /* cut off */
            add_line(&l, "garbage ]]] not json");
            add_line(&l, "[1, 2, 3]");
            add_line(&l, "{\"type\": 42, \"step\": 3}");
            add_line(&l, "");
            add_line(&l, "{\"type\":\"eval\",\"step\":\"x\",\"task\":\"classify\",\"classification\":\"oops\",\"calibration\":5}");
        }
    }
    add_json(&l, cls_line("eval", 20, cm20, &r20));
    add_json(&l, cls_line("test", 20, cmte, &rte));
    ft_metrics_report folds[3] = {r10, r20, rte};
    char *kj = NULL;
    assert_int_equal(ft_metrics_kfold_json(&kj, folds, 3), FT_OK);
    cJSON *k = cJSON_Parse(kj);
    assert_non_null(k);
    cJSON_AddStringToObject(k, "type", "kfold");
    add_json(&l, k);
    free(kj);
    add_line(&l, "{\"type\": \"memory\", \"step\": 20, \"peak_rss_mib\": 80.0}");
    write_text(dir, "metrics.jsonl", l.s);
    free(l.s);

    char *html = report(dir);
    printf("classify run: report.html %zu bytes\n", strlen(html));
    /* decoder sections are still there */
    CHECK_HAS(html, "<h2>Curves</h2>");
    CHECK_HAS(html, "aria-label='Loss'");
    CHECK_HAS(html, "aria-label='Learning rate'");
    CHECK_HAS(html, "<h2>Evaluations</h2>");
    CHECK_HAS(html, "<h2>Configuration</h2>");
    CHECK_HAS(html, "Task: <b>classify</b>");
    /* metric curve and tables */
    CHECK_HAS(html, "aria-label='Accuracy and macro F1'");
    CHECK_HAS(html, "<th>accuracy</th><th>F1 macro</th>");
    CHECK_HAS(html, "<th>ECE</th>");
    char want[256];
    snprintf(want, sizeof want, "<td>%.4f</td>", r20.accuracy); /* 24/30 */
    CHECK_HAS(html, want);
    /* two eval rows: the cut-off line and the one whose step is "x" are not in the table */
    const char *ev = strstr(html, "<h2>Evaluations</h2>"), *ev_end = ev ? strstr(ev, "</table>") : NULL;
    assert_non_null(ev_end);
    long rows = 0;
    for (const char *p = ev; (p = strstr(p, "<tr><td>")) && p < ev_end; p++) rows++;
    assert_int_equal(rows, 2);
    CHECK_HAS(html, "<h2>Final metrics</h2>");
    CHECK_HAS(html, "last validation (step 20)");
    CHECK_HAS(html, "<th>test</th>");
    /* confusion matrix of the test line (preferred over the last eval) */
    CHECK_HAS(html, "<h2>Classification</h2>");
    CHECK_HAS(html, "held-out test set, 20 examples");
    CHECK_HAS(html, "Confusion matrix (20 samples");
    CHECK_HAS(html, "true: &lt;b&gt;&amp;&#10;predicted: &lt;b&gt;&amp;&#10;count: 7 (70.0% of the row)</title></rect><text");
    CHECK_HAS(html, "true: neg&#10;predicted: &lt;b&gt;&amp;&#10;count: 1 (16.7% of the row)");
    CHECK_HAS(html, "true: it&#39;s &quot;pos&quot;&#10;predicted: it&#39;s &quot;pos&quot;&#10;count: 4 (100.0% of the row)");
    const char *cell = strstr(html, "count: 7 (70.0% of the row)</title></rect><text");
    assert_non_null(cell);
    const char *gt = strchr(strstr(cell, "<text"), '>');
    assert_non_null(gt);
    assert_memory_equal(gt, ">7</text>", 9); /* the count is written in the cell */
    CHECK_NOT(html, "count: 9 (90.0% of the row)"); /* the step-20 validation matrix is not drawn */
    /* per-class bars with supports, reliability diagram, per-class table */
    CHECK_HAS(html, "aria-label='Per-class scores'");
    CHECK_HAS(html, "neg (n=6)</text>");
    CHECK_HAS(html, "&lt;b&gt;&amp; (n=10)</text>");
    CHECK_HAS(html, "it&#39;s &quot;pos&quot; (n=4)</text>");
    snprintf(want, sizeof want, "Reliability diagram (ECE = %.4f, 15 bins, 20 samples)", rte.ece);
    CHECK_HAS(html, want);
    snprintf(want, sizeof want, "<tr><td class='k'>&lt;b&gt;&amp;</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>10</td></tr>",
             rte.per_class[1].precision, rte.per_class[1].recall, rte.per_class[1].f1);
    CHECK_HAS(html, want);
    /* k-fold */
    CHECK_HAS(html, "<h2>K-fold cross-validation</h2>");
    CHECK_HAS(html, "<p>3 folds;");
    double acc[3] = {r10.accuracy, r20.accuracy, rte.accuracy}, mean, sd;
    assert_int_equal(ft_metrics_mean_std(&mean, &sd, acc, 3), FT_OK);
    snprintf(want, sizeof want, "<tr><td class='k'>accuracy</td><td>%.4f &plusmn; %.4f</td>", mean, sd);
    CHECK_HAS(html, want);
    printf("k-fold accuracy %.4f +- %.4f; test ECE %.4f\n", mean, sd, rte.ece);
    /* escaping everywhere: the raw label never appears */
    CHECK_NOT(html, "<b>&");
    CHECK_NOT(html, "it's");
    CHECK_HAS(html, "[&quot;neg&quot;,&quot;&lt;b&gt;&amp;&quot;"); /* the config table */
    /* the encoder run has no sample section */
    CHECK_NOT(html, "<h2>Sample generations</h2>");
    printf("classify run: %ld checks passed; %ld confusion cells\n", g_checks, count(html, "% of the row)"));
    assert_int_equal(count(html, "% of the row)"), 9);
    free(html);
    ft_metrics_report_free(&r10);
    ft_metrics_report_free(&r20);
    ft_metrics_report_free(&rte);
}

/* ---------------------------------------------------------------- other tasks */

static void test_ner_run(void **state) {
    (void)state;
    g_checks = 0;
    const char *dir = run_dir("ner");
    const char *tt[] = {"B-PER", "I-PER", "O", "B-L<O>C", "O", "B-PER"};
    const char *tp[] = {"B-PER", "I-PER", "O", "O", "O", "B-L<O>C"};
    ft_ner *acc = NULL;
    assert_int_equal(ft_ner_init(&acc), FT_OK);
    assert_int_equal(ft_ner_add(acc, tt, 6, tp, 6), FT_OK);
    ft_ner_report nr;
    assert_int_equal(ft_ner_compute(acc, &nr), FT_OK);
    char *nj = NULL;
    assert_int_equal(ft_ner_report_json(&nj, &nr), FT_OK);
    lines l = {0};
    add_line(&l, "{\"type\": \"train\", \"step\": 1, \"epoch\": 0.5, \"loss\": 1.2, \"lr\": 1e-4, \"grad_norm\": 2.0}");
    add_line(&l, "{\"type\": \"eval\", \"step\": 1, \"epoch\": 0.5, \"task\": \"token-classify\", \"val_loss\": 1.1, \"examples\": 1, \"precision\": 0.1, \"recall\": 0.1, \"f1\": 0.1, \"token_accuracy\": 0.5}");
    for (int s = 2; s <= 3; s++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", "eval");
        cJSON_AddNumberToObject(j, "step", s);
        cJSON_AddNumberToObject(j, "epoch", s / 2.0);
        cJSON_AddStringToObject(j, "task", "token-classify");
        cJSON_AddNumberToObject(j, "val_loss", 0.9);
        cJSON_AddNumberToObject(j, "examples", 1);
        cJSON_AddNumberToObject(j, "precision", nr.precision_micro);
        cJSON_AddNumberToObject(j, "recall", nr.recall_micro);
        cJSON_AddNumberToObject(j, "f1", nr.f1_micro);
        cJSON_AddNumberToObject(j, "token_accuracy", nr.token_accuracy);
        cJSON_AddItemToObject(j, "ner", cJSON_Parse(nj));
        add_json(&l, j);
    }
    write_text(dir, "metrics.jsonl", l.s);
    free(l.s);
    char *html = report(dir);
    CHECK_HAS(html, "aria-label='Entity F1 (micro)'");
    CHECK_HAS(html, "<th>entity precision</th><th>entity recall</th><th>entity F1</th><th>token accuracy</th>");
    CHECK_HAS(html, "<h2>Entities</h2>");
    CHECK_HAS(html, "validation set (step 3), 1 examples");
    char want[256];
    snprintf(want, sizeof want, "%lld true entities, %lld predicted, %lld exactly right", (long long)nr.num_true, (long long)nr.num_pred, (long long)nr.num_correct);
    CHECK_HAS(html, want);
    for (int i = 0; i < nr.num_types; i++) {
        const ft_ner_type_scores *s = &nr.per_type[i];
        char name[64];
        snprintf(name, sizeof name, "%s", strcmp(s->type, "L<O>C") ? s->type : "L&lt;O&gt;C");
        snprintf(want, sizeof want, "<tr><td class='k'>%s</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%lld</td></tr>",
                 name, s->precision, s->recall, s->f1, (long long)s->support);
        CHECK_HAS(html, want);
        printf("NER type %s: P %.4f R %.4f F1 %.4f support %lld\n", s->type, s->precision, s->recall, s->f1, (long long)s->support);
    }
    CHECK_NOT(html, "L<O>C");
    CHECK_NOT(html, "Confusion matrix");
    printf("NER run: %ld checks passed\n", g_checks);
    free(html);
    free(nj);
    ft_ner_report_free(&nr);
    ft_ner_free(acc);
}

static void test_regress_and_mlm_runs(void **state) {
    (void)state;
    g_checks = 0;
    const char *dir = run_dir("regress");
    write_text(dir, "metrics.jsonl",
               "{\"type\": \"train\", \"step\": 1, \"epoch\": 0.5, \"loss\": 3.2, \"lr\": 1e-4, \"grad_norm\": 2.0}\n"
               "{\"type\": \"eval\", \"step\": 1, \"epoch\": 0.5, \"task\": \"regress\", \"val_loss\": 3.1, \"examples\": 40, \"mse\": 3.1, \"mae\": 1.5, \"rmse\": 1.76068, \"pearson\": null, \"spearman\": null, \"r2\": -0.2}\n"
               "{\"type\": \"eval\", \"step\": 2, \"epoch\": 1.0, \"task\": \"regress\", \"val_loss\": 0.8, \"examples\": 40, \"mse\": 0.8, \"mae\": 0.7, \"rmse\": 0.894427, \"pearson\": 0.8125, \"spearman\": 0.79, \"r2\": 0.6}\n"
               "{\"type\": \"test\", \"step\": 2, \"epoch\": 1.0, \"task\": \"regress\", \"val_loss\": 0.9, \"examples\": 10, \"mse\": 0.9, \"mae\": 0.75, \"rmse\": 0.948683, \"pearson\": 0.7, \"spearman\": 0.71, \"r2\": 0.5}\n");
    char *html = report(dir);
    CHECK_HAS(html, "aria-label='Mean squared error'");
    CHECK_HAS(html, "aria-label='Correlation'");
    CHECK_HAS(html, "<th>MSE</th><th>MAE</th><th>RMSE</th><th>Pearson r</th><th>Spearman &rho;</th><th>R&sup2;</th>");
    CHECK_HAS(html, "<td>3.1</td><td>1.5</td><td>1.7607</td><td>&ndash;</td><td>&ndash;</td><td>-0.2000</td>");
    CHECK_HAS(html, "<tr><td class='k'>Pearson r</td><td>0.8125</td><td>0.7000</td></tr>");
    CHECK_NOT(html, "<h2>Classification</h2>");
    free(html);

    dir = run_dir("mlm");
    write_text(dir, "metrics.jsonl",
               "{\"type\": \"train\", \"step\": 1, \"epoch\": 0.5, \"loss\": 6.2, \"lr\": 1e-4, \"grad_norm\": 2.0}\n"
               "{\"type\": \"eval\", \"step\": 1, \"epoch\": 0.5, \"task\": \"mlm\", \"val_loss\": 6.0, \"examples\": 40, \"perplexity\": 403.4288, \"masked_accuracy\": 0.05, \"masked_tokens\": 612}\n"
               "{\"type\": \"eval\", \"step\": 2, \"epoch\": 1.0, \"task\": \"mlm\", \"val_loss\": 4.0, \"examples\": 40, \"perplexity\": 54.5982, \"masked_accuracy\": 0.25, \"masked_tokens\": 598}\n");
    html = report(dir);
    CHECK_HAS(html, "aria-label='Perplexity'");
    CHECK_HAS(html, "aria-label='Masked-token accuracy'");
    CHECK_HAS(html, "<th>val loss</th><th>perplexity</th><th>masked accuracy</th>");
    CHECK_HAS(html, "<td>2</td><td>1.00</td><td>4.0000</td><td>54.598</td><td>0.2500</td><td>40</td><td>598</td>");
    printf("regress + mlm runs: %ld checks passed\n", g_checks);
    free(html);
}

/* ---------------------------------------------------------------- decoder run (old sections) */

static void test_decoder_run(void **state) {
    (void)state;
    g_checks = 0;
    if (!ft_fixture_present("report/decoder_metrics.jsonl")) skip();
    char *m = read_text(ft_fixture("report/decoder_metrics.jsonl"));
    assert_non_null(m);
    const char *dir = run_dir("decoder");
    write_text(dir, "metrics.jsonl", m);
    write_text(dir, "config.json", "{\"model\": \"stories260K\", \"epochs\": 1, \"template\": \"<s>{{x}}</s>\"}");
    free(m);
    char *html = report(dir);
    CHECK_HAS(html, "<h1>finetune run report</h1>");
    CHECK_HAS(html, "<h2>Curves</h2>");
    CHECK_HAS(html, "aria-label='Loss'");
    CHECK_HAS(html, ">train loss</text>");
    CHECK_HAS(html, ">validation loss</text>");
    CHECK_HAS(html, "aria-label='Learning rate'");
    CHECK_HAS(html, "aria-label='Gradient norm (before clipping)'");
    CHECK_HAS(html, "<h2>Evaluations</h2>\n<table><tr><th>step</th><th>epoch</th><th>val loss</th><th>perplexity</th></tr>\n");
    CHECK_HAS(html, "<tr><td>10</td><td>0.10</td><td>3.5000</td><td>33.125</td></tr>");
    CHECK_HAS(html, "<tr><td>5</td><td>0.05</td><td>4.1000</td><td>60.340</td></tr>");
    CHECK_HAS(html, "<h2>Sample generations</h2>");
    CHECK_HAS(html, "<pre><b>Once upon a &lt;time&gt;</b> there was a &quot;cat&quot; &amp; a dog.</pre>");
    CHECK_HAS(html, "<h2>Configuration</h2>");
    CHECK_HAS(html, "<td class='k'>template</td><td class='k'>&quot;&lt;s&gt;{{x}}&lt;/s&gt;&quot;</td>");
    CHECK_NOT(html, "Task:");
    CHECK_NOT(html, "Final metrics");
    CHECK_NOT(html, "<h2>Classification</h2>");
    CHECK_NOT(html, "K-fold");
    /* ten train points (the cut-off eleventh line is skipped): one polyline point each */
    const char *pl = strstr(html, "<polyline");
    assert_non_null(pl);
    const char *end = strstr(pl, "'/>");
    long pts = 0;
    for (const char *p = pl; p < end; p++) pts += *p == ',';
    printf("decoder run: %ld train points on the loss curve, %ld checks passed\n", pts, g_checks);
    assert_int_equal(pts, 10);
    free(html);
}

/* ---------------------------------------------------------------- many classes, broken input */

static void test_many_classes(void **state) {
    (void)state;
    g_checks = 0;
    enum { K = 50 };
    const char *dir = run_dir("k50");
    cJSON *cls = cJSON_CreateObject(), *cm = cJSON_AddArrayToObject(cls, "confusion_matrix");
    cJSON *labs = cJSON_AddArrayToObject(cls, "labels"), *pc = cJSON_AddArrayToObject(cls, "per_class");
    uint32_t seed = 12345;
    long total = 0;
    for (int t = 0; t < K; t++) {
        cJSON *row = cJSON_CreateArray();
        for (int p = 0; p < K; p++) {
            seed = seed * 1664525u + 1013904223u;
            int v = t == p ? 200 + (int)(seed >> 24) : (int)(seed >> 28);
            total += v;
            cJSON_AddItemToArray(row, cJSON_CreateNumber(v));
        }
        cJSON_AddItemToArray(cm, row);
        char name[80];
        if (t == 7) snprintf(name, sizeof name, "a_very_long_label_name_that_goes_on_and_on_%d", t);
        else if (t == 8) snprintf(name, sizeof name, "\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e<%d>\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", t);
        else snprintf(name, sizeof name, "class_%02d", t);
        cJSON_AddItemToArray(labs, cJSON_CreateString(name));
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "label", name);
        cJSON_AddNumberToObject(e, "precision", 0.5 + t / 200.0);
        cJSON_AddNumberToObject(e, "recall", 0.6);
        cJSON_AddNumberToObject(e, "f1", 0.55);
        cJSON_AddNumberToObject(e, "support", 250);
        cJSON_AddItemToArray(pc, e);
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", "eval");
    cJSON_AddNumberToObject(j, "step", 100);
    cJSON_AddStringToObject(j, "task", "classify");
    cJSON_AddNumberToObject(j, "accuracy", 0.8);
    cJSON_AddItemToObject(j, "classification", cls);
    cJSON *cal = cJSON_AddArrayToObject(j, "calibration");
    for (int b = 0; b < 15; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "count", b < 3 ? 0 : b == 3 ? 300 : 1000 * b);
        cJSON_AddNumberToObject(e, "accuracy", b / 15.0);
        cJSON_AddNumberToObject(e, "confidence", (b + 0.5) / 15.0);
        cJSON_AddItemToArray(cal, e);
    }
    lines l = {0};
    add_json(&l, j);
    write_text(dir, "metrics.jsonl", l.s);
    free(l.s);
    char *html = report(dir);
    char want[128];
    snprintf(want, sizeof want, "Confusion matrix (%ld samples", total);
    CHECK_HAS(html, want);
    long cells = count(html, "% of the row)</title></rect>"), written = count(html, "% of the row)</title></rect><text");
    printf("K = %d: report.html %zu bytes, %ld cells, %ld with their count written (cells are 11 px)\n", K, strlen(html), cells, written);
    assert_int_equal(cells, K * K);
    assert_int_equal(written, 0);
    /* axis labels are cut to 18 characters (UTF-8 aware), tooltips keep the whole name */
    CHECK_HAS(html, ">a_very_long_label_\xe2\x80\xa6</text>");
    CHECK_HAS(html, "true: a_very_long_label_name_that_goes_on_and_on_7&#10;");
    CHECK_HAS(html, ">\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e&lt;8&gt;\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xc3\xbc\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e</text>");
    CHECK_HAS(html, "class_49 (n=250)</text>");
    CHECK_HAS(html, "Reliability diagram (ECE = ");
    /* large bin counts do not fit a 20 px bin: they go to the tooltip only */
    CHECK_HAS(html, "<title>14000 samples</title></rect>\n");
    CHECK_HAS(html, "<title>300 samples</title></rect><text");
    printf("many classes: %ld checks passed\n", g_checks);
    free(html);
}

static void test_broken_lines(void **state) {
    (void)state;
    g_checks = 0;
    const char *dir = run_dir("broken");
    write_text(dir, "metrics.jsonl",
               "{\"type\":\"eval\",\"step\":1,\"task\":\"classify\",\"classification\":{}}\n"
               "{\"type\":\"eval\",\"step\":2,\"task\":\"classify\",\"accuracy\":null,\"f1_macro\":\"x\","
               "\"classification\":{\"confusion_matrix\":[[1,\"x\",null],null,[3,-2]],\"labels\":[1,null],"
               "\"per_class\":[{\"label\":null,\"precision\":null},{\"support\":\"s\"},5],\"accuracy\":{}},"
               "\"calibration\":[{\"count\":3},{},null,{\"count\":2,\"accuracy\":0.5,\"confidence\":0.7}]}\r\n"
               "{\"type\":\"test\",\"task\":\"classify\",\"classification\":5,\"ner\":[],\"calibration\":{}}\n"
               "{\"type\":\"kfold\",\"folds\":\"x\",\"accuracy\":{\"mean\":null,\"values\":[0.5,null,\"y\"]},\"f1_macro\":3,\"ece\":{\"mean\":0.1}}\n"
               "{\"type\":\"eval\",\"step\":3,\"task\":\"token-classify\",\"ner\":{\"per_type\":[{\"type\":5},{}, 7],\"num_true\":null}}\n"
               "\x01\x02\xff\n"
               "{\"type\":\"train\",\"step\":null,\"loss\":1}\n"
               "{\"type\":\"eval\",\"step\":1e308,\"val_loss\":1e308}\n"
               "{\"type\":\"sample\"}\n");
    char *html = report(dir);
    CHECK_HAS(html, "Confusion matrix (4 samples");      /* 1 + 3; "x", null and -2 count as 0 */
    CHECK_HAS(html, "Reliability diagram (ECE = 0.0800"); /* from the bins: 2 * |0.5 - 0.7| / 5 */
    CHECK_HAS(html, "<h2>K-fold cross-validation</h2>");
    CHECK_HAS(html, "<tr><td class='k'>accuracy</td><td>&ndash;</td>");
    CHECK_HAS(html, "<h2>Entities</h2>");
    CHECK_HAS(html, "<h2>Sample generations</h2>");
    CHECK_HAS(html, "last validation (step 1e+308)");   /* huge numbers: %g, not 309 digits */
    CHECK_NOT(html, "10000000000000000");
    printf("broken lines: report written, %ld checks passed\n", g_checks);
    free(html);

    /* an empty metrics file still gives a page; a missing one is an error */
    dir = run_dir("empty");
    write_text(dir, "metrics.jsonl", "");
    html = report(dir);
    CHECK_HAS(html, "no data");
    free(html);
    dir = run_dir("missing");
    int rc = ft_report_write(dir);
    printf("missing metrics.jsonl: rc %d (%s)\n", rc, ft_last_error());
    assert_true(rc < 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_run),
        cmocka_unit_test(test_ner_run),
        cmocka_unit_test(test_regress_and_mlm_runs),
        cmocka_unit_test(test_decoder_run),
        cmocka_unit_test(test_many_classes),
        cmocka_unit_test(test_broken_lines),
    };
    return cmocka_run_group_tests(tests, setup, getenv("FT_KEEP_TMP") ? NULL : teardown);
}
