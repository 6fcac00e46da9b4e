/* cmd_score.c — `finetune score`: BLEU, chrF, ROUGE, exact match / F1 and distinct-n of predictions against
 * references, with per-example scores, bootstrap intervals and a paired significance test
 * (include/finetune/textmetrics.h holds the definitions).
 *
 *   finetune score --predictions HYP.txt --references REF.txt [--references REF2.txt ...]
 *                  [--metrics bleu,chrf,rouge,em,f1,distinct] [--stem] [--json] [--per-example]
 *                  [--bootstrap N] [--seed S] [--compare HYP2.txt] [--field NAME] [--ref-field NAME]
 *                  [--compare-field NAME] [--format auto|lines|jsonl]
 *
 * One text per line, or JSONL (the field `prediction` / `reference` / `text`, or --field); a JSONL reference
 * field may hold a list (several references per line). Output: a table (or one JSON object with --json) on
 * stdout; errors on stderr, exit 1 (2 for usage errors). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "finetune/status.h"
#include "finetune/textmetrics.h"

#define MAX_REF_FILES 16
#define MAX_STREAMS 64   /* reference streams: files x the longest JSONL list */

static const char *k_usage =
    "usage: finetune score --predictions HYP.txt --references REF.txt [--references REF2.txt ...]\n"
    "                      [--metrics bleu,chrf,rouge,em,f1,distinct] [--stem] [--json] [--per-example]\n"
    "                      [--bootstrap N [--seed S]] [--compare HYP2.txt] [--field NAME] [--format auto|lines|jsonl]";

static int fail(int rc) { return ft_cli_fail("score", rc); }

/* precision of a score in the table: BLEU / chrF / EM / F1 are 0..100, the rest 0..1 */
static int is_percent(int k) { return k == FT_TS_BLEU || k == FT_TS_CHRF || k == FT_TS_EM || k == FT_TS_F1; }

static void print_value(double v, int k) { printf(is_percent(k) ? "%9.2f" : "%9.4f", v); }

static cJSON *num_array(const double *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n && a; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *bleu_details(const ft_bleu_result *b) {
    cJSON *o = cJSON_CreateObject();
    double c[4], t[4];
    for (int k = 0; k < 4; k++) { c[k] = (double)b->counts[k]; t[k] = (double)b->totals[k]; }
    cJSON_AddItemToObject(o, "precisions", num_array(b->precisions, 4));
    cJSON_AddNumberToObject(o, "bp", b->bp);
    cJSON_AddNumberToObject(o, "ratio", b->ratio);
    cJSON_AddNumberToObject(o, "sys_len", (double)b->sys_len);
    cJSON_AddNumberToObject(o, "ref_len", (double)b->ref_len);
    cJSON_AddItemToObject(o, "counts", num_array(c, 4));
    cJSON_AddItemToObject(o, "totals", num_array(t, 4));
    return o;
}

static void bleu_line(const ft_text_scores *s, const char *sig) {
    const ft_bleu_result *b = &s->bleu;
    printf("BLEU|%s = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %lld ref_len = %lld)\n", sig, b->score,
           b->precisions[0], b->precisions[1], b->precisions[2], b->precisions[3], b->bp, b->ratio,
           (long long)b->sys_len, (long long)b->ref_len);
}

/* reads a file of texts; what names the option in messages */
static int read_texts(ft_text_file *f, const char *path, ft_text_file_format fmt, const char *const *fields,
                      const char *what) {
    int rc = ft_text_file_read(f, path, fmt, fields);
    if (rc < 0) return ft_error_wrap(rc, "--%s", what);
    return FT_OK;
}

int ft_cmd_score(int argc, char **argv) {
    /* --references may repeat: collect them, hand the rest to the option parser */
    const char *ref_paths[MAX_REF_FILES];
    int n_ref_files = 0;
    char **rest = malloc((size_t)(argc + 1) * sizeof *rest);
    if (!rest) return 1;
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (i > 0 && !strcmp(a, "--references")) {
            if (i + 1 >= argc) { fprintf(stderr, "finetune score: option --references needs a value\n"); free(rest); return 2; }
            val = argv[++i];
        } else if (i > 0 && !strncmp(a, "--references=", 13)) {
            val = a + 13;
        }
        if (val) {
            if (n_ref_files == MAX_REF_FILES) {
                fprintf(stderr, "finetune score: at most %d --references files\n", MAX_REF_FILES);
                free(rest);
                return 2;
            }
            ref_paths[n_ref_files++] = val;
            continue;
        }
        rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    ft_opt opts[] = {
        {"predictions", 1, "the system's outputs: one text per line, or JSONL (field prediction / text)", NULL},
        {"references", 1, "reference texts, line-aligned with the predictions (repeat for several references; a JSONL field may hold a list)", NULL},
        {"metrics", 1, "comma-separated: bleu, chrf, rouge, em, f1, distinct, all (default: all)", NULL},
        {"stem", 0, "Porter stemming in ROUGE (rouge-score's use_stemmer=True)", NULL},
        {"json", 0, "print one JSON object instead of the table", NULL},
        {"per-example", 0, "also print every example's scores (a TSV block, or \"per_example\" in --json)", NULL},
        {"bootstrap", 1, "bootstrap resamples for 95% confidence intervals (sacreBLEU's method), e.g. 1000", NULL},
        {"seed", 1, "seed of the resampling (default 12345, sacreBLEU's: the same intervals as sacreBLEU)", NULL},
        {"compare", 1, "a second system's outputs: paired bootstrap test of it against --predictions", NULL},
        {"field", 1, "JSONL field holding the text (default: prediction / reference, then text)", NULL},
        {"ref-field", 1, "JSONL field of the references when it differs from --field", NULL},
        {"compare-field", 1, "JSONL field of the --compare file when it differs from --field", NULL},
        {"format", 1, "auto (JSONL for *.jsonl or a first line that is a JSON object), lines or jsonl (default auto)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(nrest, rest, opts, k_usage);
    free(rest);
    if (prc) return prc == 1 ? 0 : prc;

    const char *pred_path = ft_opt_str(opts, "predictions", NULL);
    const char *cmp_path = ft_opt_str(opts, "compare", NULL);
    if (!pred_path) { fprintf(stderr, "finetune score: --predictions is required\n%s\n", k_usage); return 2; }
    ft_text_metric_opts mo = ft_text_metric_default_opts();
    const char *mlist = ft_opt_str(opts, "metrics", NULL);
    if (mlist && ft_text_metrics_parse(mlist, &mo.metrics) < 0) {
        fprintf(stderr, "finetune score: --%s\n", ft_last_error());
        return 2;
    }
    mo.rouge_stem = ft_opt_flag(opts, "stem");
    int need_refs = (mo.metrics & ~(unsigned)FT_TEXT_DISTINCT) != 0;
    if (need_refs && n_ref_files == 0) {
        fprintf(stderr, "finetune score: --references is required for %s (only distinct-n works without references)\n%s\n",
                mlist ? mlist : "the default metrics", k_usage);
        return 2;
    }
    long n_boot = 0, seed = 12345;
    if (ft_opt_int(opts, "bootstrap", 0, &n_boot) < 0 || ft_opt_int(opts, "seed", 12345, &seed) < 0) return 2;
    if (n_boot < 0 || n_boot > 1000000) { fprintf(stderr, "finetune score: --bootstrap must be in 0..1000000\n"); return 2; }
    if (seed < 0) { fprintf(stderr, "finetune score: --seed must be >= 0\n"); return 2; }
    if (cmp_path && n_boot == 0) n_boot = 1000;  /* sacreBLEU's paired-bs default */
    ft_text_file_format fmt = FT_TEXT_FILE_AUTO;
    const char *fs = ft_opt_str(opts, "format", "auto");
    if (!strcmp(fs, "lines")) fmt = FT_TEXT_FILE_LINES;
    else if (!strcmp(fs, "jsonl")) fmt = FT_TEXT_FILE_JSONL;
    else if (strcmp(fs, "auto")) { fprintf(stderr, "finetune score: --format must be auto, lines or jsonl\n"); return 2; }
    const char *field = ft_opt_str(opts, "field", NULL), *ref_field = ft_opt_str(opts, "ref-field", field);
    const char *pred_default[] = {"prediction", "text", NULL}, *pred_user[] = {field, NULL};
    const char *ref_default[] = {"reference", "references", "text", NULL}, *ref_user[] = {ref_field, NULL};
    const char *const *pred_fields = field ? pred_user : pred_default;
    const char *cmp_field = ft_opt_str(opts, "compare-field", field), *cmp_user[] = {cmp_field, NULL};
    const char *const *cmp_fields = cmp_field ? cmp_user : pred_default;
    const char *const *ref_fields = ref_field ? ref_user : ref_default;

    int json = ft_opt_flag(opts, "json"), per_example = ft_opt_flag(opts, "per-example");
    ft_text_file hyp = {0}, hyp2 = {0}, rf[MAX_REF_FILES];
    memset(rf, 0, sizeof rf);
    const char *const *streams[MAX_STREAMS];
    int n_streams = 0, rc = FT_OK, exit_code = 1;
    ft_text_stats *st = NULL, *st2 = NULL;
    cJSON *root = NULL;

    rc = read_texts(&hyp, pred_path, fmt, pred_fields, "predictions");
    if (rc == FT_OK && cmp_path) rc = read_texts(&hyp2, cmp_path, fmt, cmp_fields, "compare");
    for (int r = 0; r < n_ref_files && rc == FT_OK; r++) {
        rc = read_texts(&rf[r], ref_paths[r], fmt, ref_fields, "references");
        if (rc < 0) break;
        if (rf[r].n != hyp.n) {
            rc = ft_error(FT_ERR_INVALID, "line counts differ: --predictions %s has %d lines, --references %s has %d",
                          pred_path, hyp.n, ref_paths[r], rf[r].n);
            break;
        }
        if (n_streams + rf[r].n_cols > MAX_STREAMS) {
            rc = ft_error(FT_ERR_RANGE, "more than %d references per line", MAX_STREAMS);
            break;
        }
        for (int c = 0; c < rf[r].n_cols; c++) streams[n_streams++] = ft_text_file_column(&rf[r], c);
    }
    if (rc == FT_OK && hyp.n == 0) rc = ft_error(FT_ERR_INVALID, "--predictions %s has no lines", pred_path);
    if (rc == FT_OK && cmp_path && hyp2.n != hyp.n)
        rc = ft_error(FT_ERR_INVALID, "line counts differ: --predictions %s has %d lines, --compare %s has %d", pred_path,
                      hyp.n, cmp_path, hyp2.n);
    if (rc == FT_OK && hyp.n_cols > 1)
        rc = ft_error(FT_ERR_INVALID, "--predictions %s: field \"%s\" holds a list; one prediction per line expected",
                      pred_path, hyp.field);
    if (rc == FT_OK) {
        /* a NULL prediction (JSONL null) scores as the empty text */
        const char *const *h = ft_text_file_column(&hyp, 0);
        for (int i = 0; i < hyp.n; i++)
            if (!h[i]) { hyp.text[i] = calloc(1, 1); if (!hyp.text[i]) rc = FT_ERR_NOMEM; }
        if (cmp_path)
            for (int i = 0; i < hyp2.n && rc == FT_OK; i++)
                if (!hyp2.text[i]) { hyp2.text[i] = calloc(1, 1); if (!hyp2.text[i]) rc = FT_ERR_NOMEM; }
    }
    if (rc == FT_OK) rc = ft_text_stats_compute(&st, ft_text_file_column(&hyp, 0), streams, n_streams, hyp.n, &mo);
    if (rc == FT_OK && cmp_path) rc = ft_text_stats_compute(&st2, ft_text_file_column(&hyp2, 0), streams, n_streams, hyp2.n, &mo);
    ft_text_scores sc;
    if (rc == FT_OK) rc = ft_text_stats_scores(st, &sc);
    ft_text_bootstrap bs;
    ft_text_paired pr;
    if (rc == FT_OK && n_boot > 0 && !cmp_path) rc = ft_text_stats_bootstrap(st, (int)n_boot, (uint64_t)seed, &bs);
    if (rc == FT_OK && cmp_path) rc = ft_text_stats_paired(st, st2, (int)n_boot, (uint64_t)seed, &pr);
    if (rc < 0) goto done;

    /* sacreBLEU puts the resampling into the signature */
    const char *bsig = sc.bleu_signature, *csig = sc.chrf_signature;
    if (cmp_path) { bsig = pr.bleu_signature; csig = pr.chrf_signature; }
    else if (n_boot > 0) { bsig = bs.bleu_signature; csig = bs.chrf_signature; }

    if (json) {
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "n", sc.n);
        if (need_refs) {
            if (sc.n_refs < 0) cJSON_AddStringToObject(root, "nrefs", "var");
            else cJSON_AddNumberToObject(root, "nrefs", sc.n_refs);
        }
        for (int k = 0; k < FT_TS_COUNT; k++)
            if (sc.metrics & ft_text_score_group(k)) cJSON_AddNumberToObject(root, ft_text_score_name(k), sc.v[k]);
        if (sc.metrics & FT_TEXT_BLEU) {
            cJSON_AddStringToObject(root, "bleu_signature", bsig);
            cJSON_AddItemToObject(root, "bleu_details", bleu_details(&sc.bleu));
        }
        if (sc.metrics & FT_TEXT_CHRF) cJSON_AddStringToObject(root, "chrf_signature", csig);
        if (sc.metrics & FT_TEXT_ROUGE) cJSON_AddBoolToObject(root, "rouge_stem", sc.rouge_stem);
        if (n_boot > 0 && !cmp_path) {
            cJSON *b = cJSON_AddObjectToObject(root, "bootstrap");
            cJSON_AddNumberToObject(b, "samples", (double)n_boot);
            cJSON_AddNumberToObject(b, "seed", (double)seed);
            for (int k = 0; k < FT_TS_COUNT; k++) {
                if (!(sc.metrics & ft_text_score_group(k)) || isnan(bs.mean[k])) continue;  /* distinct-n: not resampled */
                cJSON *x = cJSON_AddObjectToObject(b, ft_text_score_name(k));
                cJSON_AddNumberToObject(x, "mean", bs.mean[k]);
                cJSON_AddNumberToObject(x, "ci", bs.ci[k]);
                cJSON_AddNumberToObject(x, "low", bs.low[k]);
                cJSON_AddNumberToObject(x, "high", bs.high[k]);
            }
        }
        if (cmp_path) {
            cJSON *c = cJSON_AddObjectToObject(root, "compare");
            cJSON_AddStringToObject(c, "predictions", cmp_path);
            cJSON_AddStringToObject(c, "test", "paired bootstrap");
            cJSON_AddNumberToObject(c, "samples", (double)n_boot);
            cJSON_AddNumberToObject(c, "seed", (double)seed);
            for (int k = 0; k < FT_TS_COUNT; k++) {
                if (!(sc.metrics & ft_text_score_group(k)) || isnan(pr.p_value[k])) continue;
                cJSON *x = cJSON_AddObjectToObject(c, ft_text_score_name(k));
                cJSON_AddNumberToObject(x, "base", pr.base[k]);
                cJSON_AddNumberToObject(x, "base_mean", pr.base_mean[k]);
                cJSON_AddNumberToObject(x, "base_ci", pr.base_ci[k]);
                cJSON_AddNumberToObject(x, "score", pr.sys[k]);
                cJSON_AddNumberToObject(x, "mean", pr.sys_mean[k]);
                cJSON_AddNumberToObject(x, "ci", pr.sys_ci[k]);
                cJSON_AddNumberToObject(x, "p_value", pr.p_value[k]);
            }
        }
        if (per_example) {
            cJSON *a = cJSON_AddArrayToObject(root, "per_example");
            for (int i = 0; i < sc.n; i++) {
                double v[FT_TS_COUNT];
                ft_text_stats_example(st, i, v);
                cJSON *x = cJSON_CreateObject();
                for (int k = 0; k < FT_TS_COUNT; k++)
                    if (sc.metrics & ft_text_score_group(k)) cJSON_AddNumberToObject(x, ft_text_score_name(k), v[k]);
                cJSON_AddItemToArray(a, x);
            }
        }
        char *text = cJSON_PrintUnformatted(root);
        if (!text) { rc = ft_error(FT_ERR_NOMEM, "out of memory writing JSON"); goto done; }
        puts(text);
        free(text);
    } else {
        printf("%d examples, ", sc.n);
        if (!need_refs) printf("no references");
        else if (sc.n_refs < 0) printf("a varying number of references");
        else printf("%d reference%s each", sc.n_refs, sc.n_refs == 1 ? "" : "s");
        if (sc.metrics & FT_TEXT_ROUGE) printf("; ROUGE %s stemming", sc.rouge_stem ? "with" : "without");
        printf("\n\n");
        if (cmp_path) {
            printf("paired bootstrap test, %ld resamples, seed %ld\n  base:    %s\n  compare: %s\n\n", n_boot, seed,
                   pred_path, cmp_path);
            printf("%-12s %9s %9s %9s\n", "metric", "base", "compare", "p-value");
        } else if (n_boot > 0) {
            printf("%-12s %9s   95%% CI (bootstrap %ld, seed %ld)\n", "metric", "score", n_boot, seed);
        } else {
            printf("%-12s %9s\n", "metric", "score");
        }
        for (int k = 0; k < FT_TS_COUNT; k++) {
            if (!(sc.metrics & ft_text_score_group(k))) continue;
            printf("%-12s ", ft_text_score_name(k));
            print_value(sc.v[k], k);
            if (cmp_path) {
                printf(" ");
                print_value(pr.sys[k], k);
                if (isnan(pr.p_value[k])) printf(" %9s", "-");
                else printf(" %9.4f%s", pr.p_value[k], pr.p_value[k] < 0.05 ? " *" : "");
            } else if (n_boot > 0 && isnan(bs.mean[k])) {
                printf("   (not resampled)");
            } else if (n_boot > 0) {
                printf("   [");
                printf(is_percent(k) ? "%.2f, %.2f" : "%.4f, %.4f", bs.low[k], bs.high[k]);
                printf(is_percent(k) ? "]  mu = %.2f +- %.2f" : "]  mu = %.4f +- %.4f", bs.mean[k], bs.ci[k]);
            }
            printf("\n");
        }
        if (cmp_path) printf("(* p < 0.05)\n");
        if (sc.metrics & (FT_TEXT_BLEU | FT_TEXT_CHRF)) printf("\n");
        if (sc.metrics & FT_TEXT_BLEU) bleu_line(&sc, bsig);
        if (sc.metrics & FT_TEXT_CHRF) printf("chrF2|%s = %.2f\n", csig, sc.v[FT_TS_CHRF]);
        if (per_example) {
            printf("\nexample");
            for (int k = 0; k < FT_TS_COUNT; k++)
                if (sc.metrics & ft_text_score_group(k)) printf("\t%s", ft_text_score_name(k));
            printf("\n");
            for (int i = 0; i < sc.n; i++) {
                double v[FT_TS_COUNT];
                ft_text_stats_example(st, i, v);
                printf("%d", i + 1);
                for (int k = 0; k < FT_TS_COUNT; k++)
                    if (sc.metrics & ft_text_score_group(k)) printf(is_percent(k) ? "\t%.4f" : "\t%.6f", v[k]);
                printf("\n");
            }
        }
    }
    exit_code = fflush(stdout) == 0 ? 0 : 1;
done:
    cJSON_Delete(root);
    ft_text_stats_free(st);
    ft_text_stats_free(st2);
    ft_text_file_free(&hyp);
    ft_text_file_free(&hyp2);
    for (int r = 0; r < n_ref_files; r++) ft_text_file_free(&rf[r]);
    if (rc < 0) return fail(rc);
    return exit_code;
}
