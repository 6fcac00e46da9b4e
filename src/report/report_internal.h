/* report_internal.h — internals shared by the files of the run report (not a public header).
 *
 * Files:
 *   report.c        ft_report_write: reads metrics.jsonl line by line, assembles the page
 *                   (curves, evaluations, samples, configuration)
 *   report_html.c   HTML escaping, number cells, the SVG line chart
 *   report_evals.c  the evaluation rows (one per "eval" line: step, epoch and every known
 *                   metric), the evaluations table, the task's metric curves, the final-metrics
 *                   table (last validation vs test) and the k-fold table
 *   report_cls.c    classification and NER details: confusion-matrix heat map, per-class
 *                   precision / recall / F1 bars, reliability diagram, per-class and per-type tables
 *   report_gen.c    the generation evaluation (finetune eval --generate): scores with bootstrap
 *                   intervals, checks, the 20 best and worst examples side by side
 *
 * Every writer appends to an ft__sb (core/strbuf.h); an allocation failure sets its sticky err and later
 * appends do nothing, so the page is built without checks on every call and ft_report_write
 * reports FT_ERR_NOMEM once at the end. Missing, null or mistyped JSON values never crash a
 * writer: numbers read as NaN (ft__json_num(o, key, NAN), core/json_util.h) and print as a dash,
 * absent sections are left out. */
#ifndef FT_REPORT_INTERNAL_H
#define FT_REPORT_INTERNAL_H
#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/json_util.h"
#include "core/strbuf.h"

/* ---- output: the core string builder (core/strbuf.h); escaping and cells (report_html.c) ---- */

/* Appends s with & < > " ' escaped (safe in text and in single- or double-quoted attributes). */
void ft__rep_escape(ft__sb *o, const char *s);
/* Escapes at most max_chars UTF-8 characters of s, then "…" when s was longer. */
void ft__rep_escape_trunc(ft__sb *o, const char *s, int max_chars);
/* A JSON label (string, or a number when the producer had no names) as escaped text, "?" for
 * anything else; max_chars > 0 truncates as ft__rep_escape_trunc. */
void ft__rep_escape_label(ft__sb *o, const cJSON *label, int max_chars);
/* Display width of a label in characters (UTF-8 characters of a string, digits of a number),
 * capped at max_chars + 1 (the ellipsis). */
int  ft__rep_label_chars(const cJSON *label, int max_chars);
/* "<td>value</td>" with printf format fmt (e.g. "%.4f"); a dash when v is not finite. */
void ft__rep_num_cell(ft__sb *o, double v, const char *fmt);

/* ---- series and the line chart (report_html.c) ---- */

typedef struct ft_rep_series {
    double *x, *y; /* [n] step, value */
    int     n, cap;
    int     failed;
} ft_rep_series;

/* Appends (x, y); points with a non-finite x or y (or one beyond 1e150) are dropped. */
void ft__rep_push(ft_rep_series *s, double x, double y);
void ft__rep_series_free(ft_rep_series *s);

/* One SVG line chart (640 x 260) of up to two series over steps; b / bn may be NULL. logy: log10
 * y axis. Titles and names are escaped. */
void ft__rep_line_chart(ft__sb *o, const char *title, const char *ylabel,
                       const ft_rep_series *a, const char *an,
                       const ft_rep_series *b, const char *bn, int logy);

/* ---- what the run's lines hold (report_evals.c) ---- */

/* Every scalar an eval / test line may carry that the report shows (index into v[]). */
enum {
    FT_REP_VAL_LOSS, FT_REP_PERPLEXITY, FT_REP_MASKED_ACCURACY,
    FT_REP_ACCURACY, FT_REP_F1_MACRO, FT_REP_F1_MICRO, FT_REP_F1_WEIGHTED,
    FT_REP_PRECISION_MACRO, FT_REP_RECALL_MACRO, FT_REP_ROC_AUC, FT_REP_ECE, FT_REP_LOG_LOSS,
    FT_REP_MSE, FT_REP_MAE, FT_REP_RMSE, FT_REP_PEARSON, FT_REP_SPEARMAN, FT_REP_R2,
    FT_REP_PRECISION, FT_REP_RECALL, FT_REP_F1, FT_REP_TOKEN_ACCURACY,
    FT_REP_EXAMPLES, FT_REP_MASKED_TOKENS,
    FT_REP_NKEYS
};

typedef struct ft_rep_eval_row {
    double step, epoch;
    double v[FT_REP_NKEYS]; /* NaN where the line has no such number */
} ft_rep_eval_row;

typedef struct ft_rep_run {
    char             task[32];   /* "classify", "regress", "token-classify", "mlm"; "" for a decoder run */
    ft_rep_eval_row *rows;       /* [n] one per "eval" line, in file order */
    int              n, cap;
    int              failed;     /* an allocation failed */
    /* owned whole lines, NULL when none; each replaced by a later one of its kind */
    cJSON *cls_eval;             /* the last "eval" line with a "classification" object */
    cJSON *ner_eval;             /* the last "eval" line with a "ner" object */
    cJSON *test;                 /* the last "test" line */
    cJSON *kfold;                /* the last "kfold" line */
    cJSON *gen;                  /* the last "generate" line (finetune eval --generate) */
} ft_rep_run;

/* Takes one parsed line of type "eval", "test" or "kfold". Returns 1 when the run kept j (it
 * then owns it), 0 when the caller still owns it. */
int  ft__rep_run_add(ft_rep_run *r, cJSON *j, const char *type);
void ft__rep_run_free(ft_rep_run *r);
/* The curve of metric k over the eval rows (caller frees with ft__rep_series_free). */
void ft__rep_run_series(ft_rep_series *s, const ft_rep_run *r, int k);

/* <h2>Evaluations</h2> and its table: step, epoch and every metric column that has a value. */
void ft__rep_evals_table(ft__sb *o, const ft_rep_run *r);
/* The task's metric curves (classify: accuracy and macro F1; regress: MSE, Pearson / Spearman;
 * token-classify: entity F1 and token accuracy; mlm: perplexity and masked accuracy). */
void ft__rep_task_curves(ft__sb *o, const ft_rep_run *r);
/* <h2>Final metrics</h2>: the last validation row next to the test line. */
void ft__rep_final_table(ft__sb *o, const ft_rep_run *r);
/* <h2>K-fold cross-validation</h2>: metric, mean ± std, the fold values. */
void ft__rep_kfold_table(ft__sb *o, const cJSON *kfold);

/* ---- classification and NER details (report_cls.c) ---- */

/* The confusion matrix, per-class bars and table, and the reliability diagram of the test line
 * when it has a "classification" object, else of r->cls_eval. Nothing when neither exists. */
void ft__rep_classification(ft__sb *o, const ft_rep_run *r);
/* The per-type table of the test line's "ner" object, else of r->ner_eval. */
void ft__rep_ner(ft__sb *o, const ft_rep_run *r);

/* ---- generation evaluation (report_gen.c) ---- */

/* <h2>Generation evaluation</h2> of a "generate" line (nothing when g is NULL); the examples come from the
 * predictions file it names, read from run_dir. */
void ft__rep_generation(ft__sb *o, const cJSON *g, const char *run_dir);

/* The SVG pieces, on one line's objects (each handles a missing or malformed object). */
void ft__rep_confusion_svg(ft__sb *o, const cJSON *classification);
void ft__rep_per_class_svg(ft__sb *o, const cJSON *classification);
void ft__rep_reliability_svg(ft__sb *o, const cJSON *calibration, double ece);
#endif
