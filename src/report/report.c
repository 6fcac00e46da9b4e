/* report.c — report.html from metrics.jsonl and config.json (see report.h).
 *
 * Every line of metrics.jsonl is one JSON object with a "type": "train", "eval", "sample",
 * "memory", and for encoder tasks also "test" and "kfold". A line that is not JSON (a run cut
 * off mid-write) or has an unknown type is skipped. The page holds, in order: the curves (loss,
 * learning rate, gradient norm, and the task's metrics when eval lines carry a "task"), the
 * evaluations table, for encoder tasks the final metrics, classification details (confusion
 * matrix, per-class scores, reliability diagram), NER per-type scores and the k-fold summary,
 * then the generation evaluation of `finetune eval --generate` (a "generate" line, report_gen.c), the
 * sample generations and the configuration. The pieces live in report_evals.c and
 * report_cls.c (report_internal.h). */
#include "finetune/report.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "report_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct curves { ft_rep_series train, lr, gn, val; } curves;

/* One line of metrics.jsonl (len bytes, not NUL-terminated). Unparsable lines are skipped. */
static void read_line(const char *line, size_t len, curves *cv, ft_rep_run *run, ft__sb *samples) {
    cJSON *j = cJSON_ParseWithLength(line, len);
    if (!j) return;
    if (!cJSON_IsObject(j)) { cJSON_Delete(j); return; }
    const char *t = ft__json_str(j, "type", "");
    double step = ft__json_num(j, "step", NAN);
    if (!strcmp(t, "train")) {
        ft__rep_push(&cv->train, step, ft__json_num(j, "loss", NAN));
        ft__rep_push(&cv->lr, step, ft__json_num(j, "lr", NAN));
        ft__rep_push(&cv->gn, step, ft__json_num(j, "grad_norm", NAN));
    } else if (!strcmp(t, "sample")) {
        double epoch = ft__json_num(j, "epoch", NAN);
        ft__sb_printf(samples, "<div class='sample'><div class='meta'>");
        if (isfinite(epoch)) ft__sb_printf(samples, "epoch %.0f, ", epoch);
        if (isfinite(step)) ft__sb_printf(samples, "step %.0f", step);
        ft__sb_printf(samples, "</div><pre><b>");
        ft__rep_escape(samples, ft__json_str(j, "prompt", ""));
        ft__sb_printf(samples, "</b>");
        ft__rep_escape(samples, ft__json_str(j, "text", ""));
        ft__sb_printf(samples, "</pre></div>\n");
    } else if (!strcmp(t, "generate")) {
        cJSON_Delete(run->gen);
        run->gen = j;
        return;
    } else if (!strcmp(t, "eval") || !strcmp(t, "test") || !strcmp(t, "kfold")) {
        if (!strcmp(t, "eval")) ft__rep_push(&cv->val, step, ft__json_num(j, "val_loss", NAN));
        if (ft__rep_run_add(run, j, t)) return; /* the run keeps j */
    }
    cJSON_Delete(j);
}

static void config_section(ft__sb *o, const char *path) {
    char *cfg = NULL;
    if (ft_file_read_all(path, &cfg, NULL) != FT_OK) { ft_error_clear(); return; }
    cJSON *j = cJSON_Parse(cfg);
    ft__sb_printf(o, "<h2>Configuration</h2>\n<table>\n");
    for (cJSON *it = cJSON_IsObject(j) ? j->child : NULL; it; it = it->next) {
        char *v = cJSON_PrintUnformatted(it);
        ft__sb_printf(o, "<tr><td class='k'>");
        ft__rep_escape(o, it->string ? it->string : "");
        ft__sb_printf(o, "</td><td class='k'>");
        ft__rep_escape(o, v ? v : "");
        ft__sb_printf(o, "</td></tr>\n");
        cJSON_free(v);
    }
    ft__sb_printf(o, "</table>\n");
    cJSON_Delete(j);
    free(cfg);
}

int ft_report_write(const char *run_dir) {
    char path[4200];
    if (!run_dir) return ft_error(FT_ERR_INVALID, "ft_report_write: NULL run directory");
    FT_TRY(ft_path_join(path, sizeof path, run_dir, "metrics.jsonl"));
    char *text = NULL;
    size_t len = 0;
    int rc = ft_file_read_all(path, &text, &len);
    if (rc < 0) return rc;
    curves cv = {0};
    ft_rep_run run = {0};
    ft__sb samples = {0}, o = {0};
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (end > at) read_line(text + at, end - at, &cv, &run, &samples);
        at = end + 1;
    }
    free(text);

    ft__sb_printf(&o, "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>finetune report: ");
    ft__rep_escape(&o, run_dir);
    ft__sb_printf(&o, "</title>\n<style>body{font-family:system-ui,sans-serif;max-width:1340px;margin:24px auto;padding:0 16px;color:#222}"
                      "figure{display:inline-block;margin:8px;vertical-align:top}figure svg{max-width:100%%;height:auto}"
                      "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                      "pre{white-space:pre-wrap;background:#f6f6f6;padding:8px;border-radius:4px}.meta{color:#666;font-size:12px}"
                      "td.k,th.k{text-align:left}table.ex td.t{text-align:left;vertical-align:top;width:30%%}table.ex pre{margin:0;font-size:12px}</style></head><body>\n<h1>finetune run report</h1>\n<p>Run directory: <code>");
    ft__rep_escape(&o, run_dir);
    ft__sb_printf(&o, "</code></p>\n");
    if (run.task[0]) {
        ft__sb_printf(&o, "<p>Task: <b>");
        ft__rep_escape(&o, run.task);
        ft__sb_printf(&o, "</b></p>\n");
    }
    if (!run.gen || cv.train.n || cv.val.n) {   /* a directory of eval --generate alone has no curves */
        ft__sb_printf(&o, "<h2>Curves</h2>\n");
        ft__rep_line_chart(&o, "Loss", "cross-entropy", &cv.train, "train loss", &cv.val, "validation loss", 0);
        ft__rep_line_chart(&o, "Learning rate", "lr", &cv.lr, "learning rate", NULL, NULL, 0);
        ft__rep_line_chart(&o, "Gradient norm (before clipping)", "global norm", &cv.gn, "grad norm", NULL, NULL, 1);
    }
    ft__rep_task_curves(&o, &run);
    ft__rep_evals_table(&o, &run);
    if (run.task[0] || run.test) ft__rep_final_table(&o, &run);
    ft__rep_classification(&o, &run);
    ft__rep_ner(&o, &run);
    ft__rep_kfold_table(&o, run.kfold);
    ft__rep_generation(&o, run.gen, run_dir);
    if ((!run.task[0] && !run.gen) || samples.n)
        ft__sb_printf(&o, "<h2>Sample generations</h2>\n%s", samples.n ? samples.p : "<p>none</p>\n");
    rc = ft_path_join(path, sizeof path, run_dir, "config.json");
    if (rc == FT_OK) config_section(&o, path);
    ft__sb_printf(&o, "</body></html>\n");

    int failed = o.err || samples.err || run.failed || cv.train.failed || cv.lr.failed || cv.gn.failed || cv.val.failed;
    if (rc == FT_OK && failed) rc = ft_error(FT_ERR_NOMEM, "%s/report.html: out of memory while building the page", run_dir);
    if (rc == FT_OK) rc = ft_path_join(path, sizeof path, run_dir, "report.html");
    if (rc == FT_OK) rc = ft_file_write_atomic(path, o.p, o.n);
    ft__sb_free(&o);
    ft__sb_free(&samples);
    ft__rep_run_free(&run);
    ft__rep_series_free(&cv.train); ft__rep_series_free(&cv.lr); ft__rep_series_free(&cv.gn); ft__rep_series_free(&cv.val);
    return rc;
}
