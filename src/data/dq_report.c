/* dq_report.c — the data-quality report as JSON and as a short text summary. */
#include "data/dq_internal.h"
#include "finetune/fileio.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static cJSON *dist_json(const ft_dq_dist *d) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)d->n);
    cJSON_AddNumberToObject(o, "mean", d->mean);
    cJSON_AddNumberToObject(o, "min", (double)d->min);
    cJSON_AddNumberToObject(o, "p50", (double)d->p50);
    cJSON_AddNumberToObject(o, "p90", (double)d->p90);
    cJSON_AddNumberToObject(o, "p99", (double)d->p99);
    cJSON_AddNumberToObject(o, "max", (double)d->max);
    int last = 0;
    for (int b = 0; b < FT_DQ_HIST_BINS; b++) if (d->hist[b]) last = b;
    cJSON *h = cJSON_AddArrayToObject(o, "hist_log2");
    for (int b = 0; b <= last; b++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "from", b ? (double)((int64_t)1 << (b - 1)) : 0);
        cJSON_AddNumberToObject(e, "to", b ? (double)(((int64_t)1 << b) - 1) : 0);
        cJSON_AddNumberToObject(e, "count", (double)d->hist[b]);
        cJSON_AddItemToArray(h, e);
    }
    return o;
}

static cJSON *counts_json(const ft_dq_count *c, int n) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < n; i++) cJSON_AddNumberToObject(o, c[i].name, (double)c[i].count);
    return o;
}

static cJSON *pairs_json(const ft_dq_pair *p, int64_t n, int64_t max, char **text, const int *line) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t k = 0; k < n && (max < 0 || k < max); k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "a", (double)p[k].a);
        cJSON_AddNumberToObject(e, "b", (double)p[k].b);
        if (line) {
            cJSON_AddNumberToObject(e, "line_a", line[2 * k]);
            cJSON_AddNumberToObject(e, "line_b", line[2 * k + 1]);
            cJSON_AddStringToObject(e, "text_a", text[2 * k]);
            cJSON_AddStringToObject(e, "text_b", text[2 * k + 1]);
        }
        cJSON_AddNumberToObject(e, "jaccard", (double)(int64_t)(p[k].jaccard * 10000 + 0.5) / 10000);
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

int ft_dq_report_json(const ft_dq_report *r, char **out) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", r->path);
    cJSON_AddStringToObject(o, "format", ft_dq_format_name(r->format));
    cJSON_AddNumberToObject(o, "records", (double)r->records);
    cJSON_AddNumberToObject(o, "malformed_rows", (double)r->malformed);
    cJSON_AddStringToObject(o, "text_fields", r->text_fields ? r->text_fields : "");
    if (r->label_field) cJSON_AddStringToObject(o, "label_field", r->label_field);
    else cJSON_AddNullToObject(o, "label_field");
    cJSON *fs = cJSON_AddArrayToObject(o, "fields");
    for (int f = 0; f < r->nfields; f++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", r->fields[f]);
        cJSON_AddNumberToObject(e, "present", (double)r->present[f]);
        cJSON_AddNumberToObject(e, "empty", (double)r->empty[f]);
        cJSON_AddNumberToObject(e, "completeness", r->records ? (double)(r->present[f] - r->empty[f]) / (double)r->records : 0);
        cJSON_AddItemToArray(fs, e);
    }
    cJSON_AddNumberToObject(o, "empty_text", (double)r->empty_text);
    cJSON *d = cJSON_AddObjectToObject(o, "duplicates");
    cJSON_AddNumberToObject(d, "exact", (double)r->exact_dup);
    cJSON_AddNumberToObject(d, "near", (double)r->near_dup);
    cJSON_AddNumberToObject(d, "pairs", (double)r->npairs);
    cJSON *mh = cJSON_AddObjectToObject(d, "minhash");
    cJSON_AddNumberToObject(mh, "num_perm", r->minhash.num_perm);
    cJSON_AddNumberToObject(mh, "bands", r->minhash.bands);
    cJSON_AddNumberToObject(mh, "rows", r->minhash.bands ? r->minhash.num_perm / r->minhash.bands : 0);
    cJSON_AddNumberToObject(mh, "shingle_words", r->minhash.shingle);
    cJSON_AddNumberToObject(mh, "jaccard_threshold", r->minhash.threshold);
    cJSON_AddItemToObject(d, "pair_list", pairs_json(r->pairs, r->npairs, r->max_listed, r->pair_text, r->pair_line));
    cJSON *len = cJSON_AddObjectToObject(o, "lengths");
    cJSON_AddItemToObject(len, "chars", dist_json(&r->chars));
    cJSON_AddItemToObject(len, "words", dist_json(&r->words));
    if (r->has_tokens) cJSON_AddItemToObject(len, "tokens", dist_json(&r->tokens));
    if (r->label_field) {
        cJSON *l = cJSON_AddObjectToObject(o, "labels");
        cJSON_AddItemToObject(l, "counts", counts_json(r->labels, r->nlabels));
        cJSON_AddNumberToObject(l, "classes", r->nlabels);
        cJSON_AddNumberToObject(l, "imbalance_ratio", r->imbalance);
        cJSON_AddNumberToObject(l, "conflicting_texts", (double)r->conflict_texts);
        cJSON_AddNumberToObject(l, "conflicting_records", (double)r->conflict_records);
    }
    cJSON_AddItemToObject(o, "scripts", counts_json(r->scripts, r->nscripts));
    cJSON_AddItemToObject(o, "languages", counts_json(r->langs, r->nlangs));
    cJSON *is = cJSON_AddObjectToObject(o, "issues");
    for (int k = 0; k < FT_DQ_HIT_KINDS; k++) {
        cJSON *e = cJSON_AddObjectToObject(is, ft_dq_hit_kind_name((ft_dq_hit_kind)k));
        cJSON_AddNumberToObject(e, "records", (double)r->hit_records[k]);
        cJSON_AddNumberToObject(e, "matches", (double)r->hit_count[k]);
        cJSON *ex = cJSON_AddArrayToObject(e, "examples");
        for (int64_t h = 0; h < r->nhits; h++) {
            if (r->hits[h].kind != k) continue;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "record", (double)r->hits[h].record);
            cJSON_AddNumberToObject(x, "line", r->hits[h].line);
            cJSON_AddStringToObject(x, "field", r->hits[h].field < r->nfields ? r->fields[r->hits[h].field] : "");
            cJSON_AddStringToObject(x, "text", r->hits[h].text);
            cJSON_AddItemToArray(ex, x);
        }
    }
    if (r->has_valid) {
        cJSON *v = cJSON_AddObjectToObject(o, "overlap");
        cJSON_AddStringToObject(v, "validation_file", r->valid_path);
        cJSON_AddNumberToObject(v, "validation_records", (double)r->valid_records);
        cJSON_AddNumberToObject(v, "exact", (double)r->leak_exact);
        cJSON_AddNumberToObject(v, "near", (double)r->leak_near);
        cJSON_AddNumberToObject(v, "pairs", (double)r->nleak_pairs);
        cJSON_AddItemToObject(v, "pair_list", pairs_json(r->leak_pairs, r->nleak_pairs, r->max_listed, r->leak_text, r->leak_line));
    }
    cJSON *sc = cJSON_AddObjectToObject(o, "quality");
    cJSON_AddNumberToObject(sc, "score", (double)(int64_t)(r->score * 100 + 0.5) / 100);
    cJSON *parts = cJSON_AddObjectToObject(sc, "parts");
    for (int k = 0; k < FT_DQ_PARTS; k++) {
        cJSON *e = cJSON_AddObjectToObject(parts, ft_dq_part_name(k));
        cJSON_AddNumberToObject(e, "value", (double)(int64_t)(r->part[k] * 10000 + 0.5) / 10000);
        cJSON_AddNumberToObject(e, "weight", ft_dq_part_weight[k]);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s) return ft_error(FT_ERR_NOMEM, "out of memory (report JSON)");
    *out = s;
    return FT_OK;
}

int ft_dq_report_write_json(const ft_dq_report *r, const char *path) {
    char *s = NULL;
    FT_TRY(ft_dq_report_json(r, &s));
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return ft_error(FT_ERR_NOMEM, "out of memory"); }
    t[n] = '\n';
    t[n + 1] = 0;
    int rc = ft_file_write_atomic(path, t, n + 1);
    free(t);
    return rc;
}

static void print_dist(FILE *fp, const char *what, const ft_dq_dist *d) {
    fprintf(fp, "  %-7s mean %.1f  min %lld  p50 %lld  p90 %lld  p99 %lld  max %lld\n", what, d->mean,
            (long long)d->min, (long long)d->p50, (long long)d->p90, (long long)d->p99, (long long)d->max);
}

void ft_dq_report_print(const ft_dq_report *r, FILE *fp) {
    fprintf(fp, "%s: %lld records (%s)", r->path, (long long)r->records, ft_dq_format_name(r->format));
    if (r->malformed) fprintf(fp, ", %lld rows could not be read", (long long)r->malformed);
    fprintf(fp, "; text: %s; label: %s\n", r->text_fields, r->label_field ? r->label_field : "none");
    fprintf(fp, "fields:");
    for (int f = 0; f < r->nfields; f++)
        fprintf(fp, " %s %.1f%%", r->fields[f], r->records ? 100.0 * (double)(r->present[f] - r->empty[f]) / (double)r->records : 0);
    fprintf(fp, "\nduplicates: %lld exact, %lld near (%lld pairs with Jaccard >= %.2f over %d-word shingles)\n",
            (long long)r->exact_dup, (long long)r->near_dup, (long long)r->npairs, r->minhash.threshold, r->minhash.shingle);
    fprintf(fp, "lengths:\n");
    print_dist(fp, "chars", &r->chars);
    print_dist(fp, "words", &r->words);
    if (r->has_tokens) print_dist(fp, "tokens", &r->tokens);
    if (r->label_field) {
        fprintf(fp, "labels (%d, imbalance %.2f):", r->nlabels, r->imbalance);
        for (int k = 0; k < r->nlabels && k < 20; k++) fprintf(fp, " %s=%lld", r->labels[k].name, (long long)r->labels[k].count);
        fprintf(fp, "%s; conflicting texts %lld (%lld records)\n", r->nlabels > 20 ? " ..." : "",
                (long long)r->conflict_texts, (long long)r->conflict_records);
    }
    fprintf(fp, "scripts (letters):");
    for (int k = 0; k < r->nscripts; k++) fprintf(fp, " %s=%lld", r->scripts[k].name, (long long)r->scripts[k].count);
    if (r->nlangs) {
        fprintf(fp, "\nlanguages (records):");
        for (int k = 0; k < r->nlangs; k++) fprintf(fp, " %s=%lld", r->langs[k].name, (long long)r->langs[k].count);
    }
    fprintf(fp, "\nissues (records):");
    for (int k = 0; k < FT_DQ_HIT_KINDS; k++) fprintf(fp, " %s=%lld", ft_dq_hit_kind_name((ft_dq_hit_kind)k), (long long)r->hit_records[k]);
    fprintf(fp, "\n");
    for (int64_t h = 0; h < r->nhits && h < 10; h++)
        fprintf(fp, "  line %d (record %lld, %s): %s %s\n", r->hits[h].line, (long long)r->hits[h].record,
                r->fields[r->hits[h].field], ft_dq_hit_kind_name((ft_dq_hit_kind)r->hits[h].kind), r->hits[h].text);
    if (r->has_valid)
        fprintf(fp, "overlap with %s (%lld records): %lld exact, %lld near\n", r->valid_path, (long long)r->valid_records,
                (long long)r->leak_exact, (long long)r->leak_near);
    fprintf(fp, "quality score %.1f / 100:", r->score);
    for (int k = 0; k < FT_DQ_PARTS; k++) fprintf(fp, " %s %.3f (x%.2f)", ft_dq_part_name(k), r->part[k], ft_dq_part_weight[k]);
    fprintf(fp, "\n");
}
