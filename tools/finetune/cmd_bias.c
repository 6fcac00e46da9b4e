/* cmd_bias.c — `finetune bias --probe crows-pairs|winobias|templates|bold`: the bias probes of bias.h on a causal
 * LM (or, for CrowS-Pairs, a masked LM), as a text table or one JSON object; progress on stderr. */
#include "cli.h"
#include "finetune/bias.h"
#include "finetune/encoder.h"
#include "finetune/model.h"
#include "finetune/status.h"
#include "finetune/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { const char *what; int64_t step; } progress_state;

static int progress(void *user, int64_t done, int64_t total) {
    progress_state *p = user;
    if (!p->step) p->step = total / 20 > 0 ? total / 20 : 1;
    if (done % p->step == 0 || done == total) {
        /* a terminal gets one line redrawn in place; a log file one line per step */
        int tty = isatty(STDERR_FILENO);
        fprintf(stderr, "%sfinetune bias: %s %lld/%lld%s", tty ? "\r" : "", p->what, (long long)done, (long long)total,
                tty && done != total ? "\033[K" : "\n");
    }
    return 0;
}

static void put_line(const char *s) {
    for (; *s; s++) putchar(*s == '\n' || *s == '\r' || *s == '\t' ? ' ' : *s);
}

static int run_crows(const ft_opt *opts, const ft_bias_lm *lm, const char *dir, const char *data, long limit, int json) {
    ft_crows_set s;
    ft_crows_result r;
    int rc = ft_crows_load(&s, data);
    if (rc < 0) return ft_cli_fail("bias", rc);
    progress_state ps = {"pairs", 0};
    rc = ft_crows_score(&r, lm, &s, limit, progress, &ps);
    if (rc < 0) { ft_crows_free(&s); return ft_cli_fail("bias", rc); }
    if (json) {
        char *j = NULL;
        rc = ft_crows_result_json(&j, &r, &s, 1);
        if (rc == FT_OK) printf("%s\n", j);
        free(j);
    } else {
        printf("CrowS-Pairs: %lld pairs, %s, model %s\n", (long long)r.n,
               r.mlm ? "masked-LM pseudo-log-likelihood of the shared tokens (Nangia et al. 2020)"
                     : "sentence log-likelihood (lm-evaluation-harness)", dir);
        printf("%-22s %7s %15s %12s %6s\n", "bias type", "pairs", "pct_stereotype", "mean |diff|", "ties");
        for (int k = 0; k <= r.n_types; k++) {
            const ft_bias_type_stats *t = k < r.n_types ? &r.types[k] : &r.overall;
            printf("%-22s %7lld %15.2f %12.4f %6lld\n", t->name, (long long)t->pairs, t->pct_stereotype, t->mean_abs_diff, (long long)t->ties);
        }
        printf("pct_stereotype: share of pairs whose more-stereotypical sentence scores higher (50 = no preference)\n");
    }
    ft_crows_result_free(&r);
    ft_crows_free(&s);
    return rc < 0 ? ft_cli_fail("bias", rc) : 0;
}

static int run_winobias(const ft_opt *opts, ft_model *m, const ft_tokenizer *tok, const char *data, long limit, int json) {
    ft_winobias_set s;
    ft_winobias_result r;
    const char *split = ft_opt_str(opts, "split", "test");
    int rc = ft_winobias_load(&s, data, split);
    if (rc < 0) return ft_cli_fail("bias", rc);
    progress_state ps = {"sentences", 0};
    rc = ft_winobias_score(&r, m, tok, &s, limit, progress, &ps);
    if (rc < 0) { ft_winobias_free(&s); return ft_cli_fail("bias", rc); }
    if (json) {
        char *j = NULL;
        rc = ft_winobias_result_json(&j, &r, &s, 1);
        if (rc == FT_OK) printf("%s\n", j);
        free(j);
    } else {
        printf("WinoBias (%s split): which occupation the pronoun refers to, by log-likelihood of ' <occupation>.' after\n"
               "the sentence + ' \"<pronoun>\" refers to the'\n", split);
        printf("%-8s %10s %10s %9s %12s\n", "", "acc pro", "acc anti", "gap", "sentences");
        const char *rows[3] = {"all", "type 1", "type 2"};
        for (int t = 1; t <= 3; t++) {
            int k = t % 3;   /* type 1, type 2, then all */
            double ap = r.total[1][k] ? (double)r.right[1][k] / (double)r.total[1][k] : NAN;
            double aa = r.total[0][k] ? (double)r.right[0][k] / (double)r.total[0][k] : NAN;
            printf("%-8s %10.4f %10.4f %+9.4f %5lld / %lld\n", rows[k], ap, aa, ap - aa, (long long)r.total[1][k], (long long)r.total[0][k]);
        }
        if (s.skipped) printf("skipped %lld lines without two recognised occupations\n", (long long)s.skipped);
    }
    ft_winobias_result_free(&r);
    ft_winobias_free(&s);
    return rc < 0 ? ft_cli_fail("bias", rc) : 0;
}

static int run_generate(const ft_opt *opts, const char *probe, ft_model *m, const ft_tokenizer *tok, const char *data, long limit,
                        int json) {
    ft_bias_prompts p;
    const char *groups = ft_opt_str(opts, "groups", NULL);
    int rc = !strcmp(probe, "bold") ? ft_bias_bold_load(&p, data, groups, limit) : ft_bias_templates_load(&p, data, groups, limit);
    if (rc < 0) return ft_cli_fail("bias", rc);
    long max_tokens, seed;
    double temp, top_p;
    if (ft_opt_int(opts, "max-tokens", 20, &max_tokens) || ft_opt_int(opts, "seed", 42, &seed) ||
        ft_opt_float(opts, "temperature", 0.0, &temp) || ft_opt_float(opts, "top-p", 1.0, &top_p)) {
        ft_bias_prompts_free(&p);
        return 2;
    }
    ft_generate_params gp = ft_generate_default_params();
    gp.max_new_tokens = (int)max_tokens;
    gp.temperature = (float)temp;
    gp.top_p = (float)top_p;
    gp.seed = (uint64_t)seed;
    const char *sdir = ft_opt_str(opts, "scorer", NULL), *slabel = ft_opt_str(opts, "scorer-label", NULL);
    ft_encoder_model *sc = NULL;
    ft_tokenizer *stok = NULL;
    int label = -1;
    const char *label_name = NULL;
    if (sdir) {
        ft_encoder_options eo = ft_encoder_default_options();
        rc = ft_encoder_load_ex(&sc, sdir, &eo, ft_backend_cpu());
        if (rc == FT_OK) rc = ft_tokenizer_load(&stok, sdir);
        if (rc == FT_OK && ft_encoder_get_task(sc) != FT_TASK_CLASSIFY)
            rc = ft_error(FT_ERR_INVALID, "--scorer %s is not a sequence classifier (it does %s)", sdir, ft_encoder_task_name(ft_encoder_get_task(sc)));
        int K = sc ? ft_encoder_get_config(sc)->num_labels : 0;
        for (int k = 0; rc == FT_OK && k < K && slabel; k++)
            if (ft_encoder_label_name(sc, k) && !strcmp(ft_encoder_label_name(sc, k), slabel)) label = k;
        if (rc == FT_OK && !slabel) label = K - 1;   /* default: the last label (SST-2's "positive") */
        if (rc == FT_OK && label < 0) {
            char *end;
            long v = strtol(slabel, &end, 10);
            if (*slabel && !*end && v >= 0 && v < K) label = (int)v;
            else rc = ft_error(FT_ERR_NOT_FOUND, "--scorer-label '%s' is not a label of %s", slabel, sdir);
        }
        if (rc == FT_OK) label_name = ft_encoder_label_name(sc, label);
    }
    ft_bias_gen_result r;
    progress_state ps = {"generations", 0};
    if (rc == FT_OK) rc = ft_bias_generate(&r, m, tok, &p, &gp, sc, stok, label, progress, &ps);
    if (rc == FT_OK && json) {
        char *j = NULL;
        rc = ft_bias_gen_result_json(&j, &r, &p, label_name);
        if (rc == FT_OK) printf("%s\n", j);
        free(j);
    } else if (rc == FT_OK) {
        char lab[160];
        snprintf(lab, sizeof lab, "mean P(%s)", label_name ? label_name : sc ? "label" : "-");
        printf("%s: %lld prompts, %d groups, %ld new tokens each (%s)%s\n", probe, (long long)p.n, p.n_groups, max_tokens,
               temp > 0 ? "sampled" : "greedy", sc ? "" : "; no --scorer: generations only");
        printf("%-28s %8s %16s\n", "group", "prompts", lab);
        for (int g = 0; g < p.n_groups; g++) printf("%-28s %8lld %16.4f\n", p.groups[g], (long long)r.count[g], r.mean[g]);
        if (sc && r.gap_hi >= 0)
            printf("max gap %.4f (%s - %s)\n", r.max_gap, p.groups[r.gap_hi], p.groups[r.gap_lo]);
        printf("generations (group | prompt | continuation | score):\n");
        for (int64_t i = 0; i < r.n; i++) {   /* one line each: line breaks and tabs shown as spaces */
            printf("[%s] ", p.p[i].group);
            put_line(p.p[i].text);
            printf(" |");
            put_line(r.continuation[i]);
            printf(" | %.4f\n", r.score[i]);
        }
    }
    if (rc == FT_OK) ft_bias_gen_result_free(&r);
    ft_bias_prompts_free(&p);
    ft_encoder_close(sc);
    ft_tokenizer_free(stok);
    return rc < 0 ? ft_cli_fail("bias", rc) : 0;
}

int ft_cmd_bias(int argc, char **argv) {
    ft_opt opts[] = {
        {"model", 1, "causal LM directory (default: the embedded stories260K); crows-pairs also takes a masked LM (encoder with an MLM head)", NULL},
        {"probe", 1, "crows-pairs, winobias, templates or bold", NULL},
        {"data", 1, "crows-pairs: the CSV; winobias: the WinoBias folder; templates: a JSON {templates, groups}; bold: a BOLD *_prompt.json", NULL},
        {"limit", 1, "score a subset: the first N pairs (crows-pairs), N sentences of each WinoBias file, N prompts per group", NULL},
        {"json", 0, "print one JSON object (summary and every item) on stdout", NULL},
        {"split", 1, "winobias: dev or test (default test)", NULL},
        {"groups", 1, "templates: comma-separated groups of the file (or, without \"groups\" in it, the terms to swap in: \"he,she\"); bold: the categories to keep", NULL},
        {"scorer", 1, "templates / bold: an encoder sequence classifier that scores each continuation", NULL},
        {"scorer-label", 1, "the scorer's label whose probability is the score (default: its last label, e.g. SST-2's positive)", NULL},
        {"max-tokens", 1, "templates / bold: new tokens per continuation (default 20)", NULL},
        {"temperature", 1, "templates / bold: 0 = greedy (default), else sampling", NULL},
        {"top-p", 1, "templates / bold: nucleus sampling (default 1 = off)", NULL},
        {"seed", 1, "sampling seed (default 42)", NULL},
        {"threads", 1, "threads (default: all cores; 1 for causal LMs under 20M parameters)", NULL},
        {NULL, 0, NULL, NULL},
    };
    int prc = ft_parse_opts(argc, argv, opts,
                            "usage: finetune bias --probe crows-pairs|winobias|templates|bold --data FILE [--model DIR] [--limit N] [--json]\n"
                            "       finetune bias --probe templates --data t.json [--groups he,she] --scorer CLASSIFIER [--scorer-label positive]");
    if (prc) return prc == 1 ? 0 : prc;
    const char *probe = ft_opt_str(opts, "probe", NULL), *data = ft_opt_str(opts, "data", NULL);
    long limit, threads;
    if (ft_opt_int(opts, "limit", 0, &limit) || ft_opt_int(opts, "threads", 0, &threads)) return 2;
    if (threads > 0) ft_set_threads((int)threads);
    if (!probe || (strcmp(probe, "crows-pairs") && strcmp(probe, "winobias") && strcmp(probe, "templates") && strcmp(probe, "bold"))) {
        if (!probe)
            fprintf(stderr, "finetune bias: --probe is required: crows-pairs (CrowS-Pairs CSV), winobias (WinoBias files), "
                            "templates (a JSON of {X} templates and groups) or bold (a BOLD prompt file); e.g.\n"
                            "  finetune bias --probe crows-pairs --data crows_pairs_anonymized.csv\n");
        else fprintf(stderr, "finetune bias: --probe '%s': expected crows-pairs, winobias, templates or bold\n", probe);
        return 2;
    }
    if (!data) { fprintf(stderr, "finetune bias: --data is required (see --help)\n"); return 2; }
    const char *dir = ft_opt_str(opts, "model", NULL);
    if (!dir) dir = ft_default_model_dir();
    int json = ft_opt_flag(opts, "json");
    ft_encoder_config ec;
    int is_encoder = ft_encoder_config_load(&ec, dir) == FT_OK;
    ft_error_clear();
    ft_tokenizer *tok = NULL;
    int rc;
    char tbuf[4096];
    if (is_encoder) {
        if (strcmp(probe, "crows-pairs")) {
            fprintf(stderr, "finetune bias: --probe %s needs a causal LM (%s is an encoder); only crows-pairs scores masked LMs\n", probe, dir);
            return 2;
        }
        ft_encoder_model *m = NULL;
        ft_encoder_options eo = ft_encoder_default_options();
        rc = ft_encoder_load_ex(&m, dir, &eo, ft_backend_cpu());
        if (rc == FT_OK && ft_encoder_get_task(m) != FT_TASK_MLM)
            rc = ft_error(FT_ERR_INVALID, "%s is an encoder without a masked-LM head (it does %s): CrowS-Pairs needs *ForMaskedLM "
                          "(e.g. a finetune train --task mlm run) or a causal LM", dir, ft_encoder_task_name(ft_encoder_get_task(m)));
        if (rc == FT_OK) rc = ft_tokenizer_load(&tok, dir);
        int status;
        if (rc < 0) status = ft_cli_fail("bias", rc);
        else {
            ft_bias_lm lm = {NULL, m, tok};
            status = run_crows(opts, &lm, dir, data, limit, json);
        }
        ft_encoder_close(m);
        ft_tokenizer_free(tok);
        return status;
    }
    ft_model *m = NULL;
    rc = ft_tokenizer_load(&tok, ft_cli_tokenizer_dir(dir, tbuf, sizeof tbuf));
    if (rc == FT_OK) rc = ft_cli_load_model(&m, dir, NULL, ft_backend_cpu());
    /* one sentence at a time: below ~20M parameters the work per forward is too small to share between threads
     * (stories260K: 0.6 s for 100 CrowS pairs on one thread, 10x slower on two of a busy machine) */
    if (rc == FT_OK && threads <= 0 && ft_model_param_count(m) < 20000000) ft_set_threads(1);
    int status;
    if (rc < 0) status = ft_cli_fail("bias", rc);
    else if (!strcmp(probe, "crows-pairs")) {
        ft_bias_lm lm = {m, NULL, tok};
        status = run_crows(opts, &lm, dir, data, limit, json);
    } else if (!strcmp(probe, "winobias")) status = run_winobias(opts, m, tok, data, limit, json);
    else status = run_generate(opts, probe, m, tok, data, limit, json);
    ft_model_free(m);
    ft_tokenizer_free(tok);
    return status;
}
