/* bias_crows.c — CrowS-Pairs: reading the dataset's CSV, scoring every pair with a causal or masked LM, and
 * the per-bias-type percentages (bias.h, section 2). */
#include "finetune/bias.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "data/data_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ft_crows_free(ft_crows_set *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) { free(s->pairs[i].sent_more); free(s->pairs[i].sent_less); free(s->pairs[i].bias_type); }
    free(s->pairs);
    memset(s, 0, sizeof *s);
}

static const char *const k_cols[4] = {"sent_more", "sent_less", "stereo_antistereo", "bias_type"};

int ft_crows_load(ft_crows_set *out, const char *path) {
    memset(out, 0, sizeof *out);
    char *buf = NULL;
    size_t len = 0;
    FT_TRY(ft_file_read_all(path, &buf, &len));
    csv_row row = {0};
    char **names = NULL;
    int ncol = 0, line = 1, rc = FT_OK, col[4];
    int64_t cap = 0;
    size_t pos = len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3) ? 3 : 0;
    const char *bad = NULL;
    int got = ft__csv_read_row(buf, len, &pos, &line, ',', &row, &bad, NULL);
    if (got <= 0) { rc = got < 0 ? got : ft_error(FT_ERR_FORMAT, "%s: empty file", path); goto done; }
    ncol = (int)row.n;
    names = calloc((size_t)ncol, sizeof *names);
    if (!names) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < ncol; i++)
        if (!(names[i] = strdup(row.buf + row.off[i]))) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto done; }
    for (int k = 0; k < 4; k++) {
        col[k] = -1;
        for (int i = 0; i < ncol; i++) if (!strcmp(names[i], k_cols[k])) col[k] = i;
        if (col[k] < 0) {
            char have[512] = "";
            for (int i = 0, w = 0; i < ncol && w < (int)sizeof have - 1; i++)
                w += snprintf(have + w, sizeof have - (size_t)w, "%s%s", i ? ", " : "", names[i]);
            rc = ft_error(FT_ERR_NOT_FOUND, "%s: line 1: no column '%s' (a CrowS-Pairs CSV needs sent_more, sent_less, "
                          "stereo_antistereo, bias_type; columns: %s)", path, k_cols[k], have);
            goto done;
        }
    }
    int need = 0;
    for (int k = 0; k < 4; k++) if (col[k] + 1 > need) need = col[k] + 1;
    for (;;) {
        int row_line = line;
        got = ft__csv_read_row(buf, len, &pos, &line, ',', &row, &bad, NULL);
        if (got < 0) { rc = got; goto done; }
        if (got == 0) break;
        if (bad) { rc = ft_error(FT_ERR_FORMAT, "%s: line %d: %s", path, row_line, bad); goto done; }
        if (row.n == 1 && row.buf[0] == 0) continue;
        if (row.n < need) {
            rc = ft_error(FT_ERR_FORMAT, "%s: line %d: %lld fields, the columns sent_more, sent_less, stereo_antistereo, "
                          "bias_type need %d", path, row_line, (long long)row.n, need);
            goto done;
        }
        const char *f[4];
        for (int k = 0; k < 4; k++) f[k] = row.buf + row.off[col[k]];
        for (int k = 0; k < 2; k++)
            if (!f[k][0]) { rc = ft_error(FT_ERR_FORMAT, "%s: line %d: empty %s", path, row_line, k_cols[k]); goto done; }
        if (strcmp(f[2], "stereo") && strcmp(f[2], "antistereo")) {
            rc = ft_error(FT_ERR_FORMAT, "%s: line %d: stereo_antistereo is '%s', expected stereo or antistereo", path, row_line, f[2]);
            goto done;
        }
        if (out->n == cap && (rc = ft__data_reserve((void **)&out->pairs, sizeof *out->pairs, out->n + 1, &cap)) < 0) goto done;
        ft_crows_pair *p = &out->pairs[out->n];
        p->sent_more = strdup(f[0]);
        p->sent_less = strdup(f[1]);
        p->bias_type = strdup(f[3][0] ? f[3] : "(none)");
        p->antistereo = !strcmp(f[2], "antistereo");
        p->line = row_line;
        out->n++;
        if (!p->sent_more || !p->sent_less || !p->bias_type) { rc = ft_error(FT_ERR_NOMEM, "out of memory"); goto done; }
    }
    if (out->n == 0) rc = ft_error(FT_ERR_FORMAT, "%s: no pairs", path);
done:
    ft__csv_free(names, ncol, &row);
    free(buf);
    if (rc < 0) ft_crows_free(out);
    return rc;
}

void ft_crows_result_free(ft_crows_result *r) {
    if (!r) return;
    free(r->score_more);
    free(r->score_less);
    for (int i = 0; i < r->n_types; i++) free(r->types[i].name);
    free(r->types);
    free(r->overall.name);
    memset(r, 0, sizeof *r);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void finish(ft_bias_type_stats *t, double abs_sum) {
    t->pct_stereotype = t->pairs ? 100.0 * (double)t->preferred / (double)t->pairs : NAN;
    t->mean_abs_diff = t->pairs ? abs_sum / (double)t->pairs : NAN;
}

int ft_crows_score(ft_crows_result *out, const ft_bias_lm *lm, const ft_crows_set *s, int64_t limit,
                   ft_bias_progress_fn progress, void *user) {
    memset(out, 0, sizeof *out);
    if (!lm || (!lm->dec == !lm->mlm) || !lm->tok) return ft_error(FT_ERR_INVALID, "crows-pairs: give one causal or one masked LM and its tokenizer");
    int64_t n = limit > 0 && limit < s->n ? limit : s->n;
    out->mlm = lm->mlm != NULL;
    out->score_more = malloc(sizeof(double) * (size_t)(n ? n : 1));
    out->score_less = malloc(sizeof(double) * (size_t)(n ? n : 1));
    char **types = malloc(sizeof(char *) * (size_t)(n ? n : 1));
    int rc = out->score_more && out->score_less && types ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; rc == FT_OK && i < n; i++) {
        const ft_crows_pair *p = &s->pairs[i];
        if (lm->mlm) rc = ft_bias_mlm_pll_pair(lm->mlm, lm->tok, p->sent_more, p->sent_less, &out->score_more[i], &out->score_less[i], NULL);
        else {
            rc = ft_bias_causal_loglik(lm->dec, lm->tok, NULL, p->sent_more, &out->score_more[i], NULL);
            if (rc == FT_OK) rc = ft_bias_causal_loglik(lm->dec, lm->tok, NULL, p->sent_less, &out->score_less[i], NULL);
        }
        if (rc < 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ft_last_error());   /* ft_error rewrites the buffer it would read */
            rc = ft_error(rc, "crows-pairs line %d: %s", p->line, msg);
            break;
        }
        out->n = i + 1;
        if (progress && progress(user, i + 1, n)) rc = ft_error(FT_ERR_INTERRUPTED, "crows-pairs: stopped");
    }
    /* the distinct bias types, sorted */
    int nt = 0;
    for (int64_t i = 0; rc == FT_OK && i < n; i++) {
        int seen = 0;
        for (int k = 0; k < nt && !seen; k++) seen = !strcmp(types[k], s->pairs[i].bias_type);
        if (!seen) types[nt++] = s->pairs[i].bias_type;
    }
    if (rc == FT_OK) {
        qsort(types, (size_t)nt, sizeof *types, cmp_str);
        out->types = calloc((size_t)nt + 1, sizeof *out->types);
        double *abs_sum = calloc((size_t)nt + 1, sizeof *abs_sum);
        out->overall.name = strdup("overall");
        if (!out->types || !abs_sum || !out->overall.name) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        for (int k = 0; rc == FT_OK && k < nt; k++)
            if (!(out->types[k].name = strdup(types[k]))) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        if (rc == FT_OK) out->n_types = nt;
        double abs_all = 0;
        for (int64_t i = 0; rc == FT_OK && i < n; i++) {
            int k = 0;
            while (strcmp(out->types[k].name, s->pairs[i].bias_type)) k++;
            double d = out->score_more[i] - out->score_less[i];
            ft_bias_type_stats *t[2] = {&out->types[k], &out->overall};
            for (int q = 0; q < 2; q++) {
                t[q]->pairs++;
                t[q]->preferred += d > 0;
                t[q]->ties += d == 0;
            }
            abs_sum[k] += fabs(d);
            abs_all += fabs(d);
        }
        for (int k = 0; rc == FT_OK && k < nt; k++) finish(&out->types[k], abs_sum[k]);
        if (rc == FT_OK) finish(&out->overall, abs_all);
        free(abs_sum);
    }
    free(types);
    if (rc < 0) ft_crows_result_free(out);
    return rc;
}

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static void add_stats(cJSON *o, const ft_bias_type_stats *t) {
    cJSON_AddNumberToObject(o, "pairs", (double)t->pairs);
    cJSON_AddItemToObject(o, "pct_stereotype", num(t->pct_stereotype));
    cJSON_AddItemToObject(o, "mean_abs_diff", num(t->mean_abs_diff));
    cJSON_AddNumberToObject(o, "ties", (double)t->ties);
}

int ft_crows_result_json(char **out, const ft_crows_result *r, const ft_crows_set *s, int with_pairs) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return ft_error(FT_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(o, "probe", "crows-pairs");
    cJSON_AddStringToObject(o, "scoring", r->mlm ? "masked-lm pseudo-log-likelihood of the shared tokens (Nangia et al. 2020)"
                                                 : "causal sentence log-likelihood (lm-evaluation-harness crows_pairs)");
    add_stats(o, &r->overall);
    cJSON *bt = cJSON_AddObjectToObject(o, "by_bias_type");
    for (int k = 0; bt && k < r->n_types; k++) {
        cJSON *t = cJSON_AddObjectToObject(bt, r->types[k].name);
        if (t) add_stats(t, &r->types[k]);
    }
    if (with_pairs) {
        cJSON *a = cJSON_AddArrayToObject(o, "per_pair");
        for (int64_t i = 0; a && i < r->n; i++) {
            cJSON *p = cJSON_CreateObject();
            if (!p) break;
            cJSON_AddNumberToObject(p, "line", s->pairs[i].line);
            cJSON_AddStringToObject(p, "bias_type", s->pairs[i].bias_type);
            cJSON_AddItemToObject(p, "score_more", num(r->score_more[i]));
            cJSON_AddItemToObject(p, "score_less", num(r->score_less[i]));
            cJSON_AddBoolToObject(p, "stereo_preferred", r->score_more[i] > r->score_less[i]);
            cJSON_AddItemToArray(a, p);
        }
    }
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
}
