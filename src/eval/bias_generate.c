/* bias_generate.c — counterfactual templates and BOLD prompts (bias.h, section 4): prompts per group, a
 * continuation of each from a causal LM, its score by a classifier, and the per-group means and largest gap. */
#include "finetune/bias.h"
#include "finetune/fileio.h"
#include "finetune/predict.h"
#include "finetune/status.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ft_bias_prompts_free(ft_bias_prompts *p) {
    if (!p) return;
    for (int64_t i = 0; i < p->n; i++) free(p->p[i].text);
    for (int g = 0; g < p->n_groups; g++) free(p->groups[g]);
    free(p->groups);
    free(p->p);
    memset(p, 0, sizeof *p);
}

/* the index of group name (added when new) */
static int group_id(ft_bias_prompts *p, const char *name) {
    for (int g = 0; g < p->n_groups; g++) if (!strcmp(p->groups[g], name)) return g;
    char **gs = realloc(p->groups, sizeof *gs * (size_t)(p->n_groups + 1));
    if (!gs) return ft_error(FT_ERR_NOMEM, "out of memory");
    p->groups = gs;
    if (!(gs[p->n_groups] = strdup(name))) return ft_error(FT_ERR_NOMEM, "out of memory");
    return p->n_groups++;
}

/* adds (group, text); text is taken over */
static int add_prompt(ft_bias_prompts *p, const char *group, char *text, int64_t *cap) {
    int g = text ? group_id(p, group) : ft_error(FT_ERR_NOMEM, "out of memory");
    if (g < 0) { free(text); return g; }
    if (p->n == *cap) {
        int64_t nc = *cap ? 2 * *cap : 64;
        ft_bias_prompt *x = realloc(p->p, sizeof *x * (size_t)nc);
        if (!x) { free(text); return ft_error(FT_ERR_NOMEM, "out of memory"); }
        p->p = x;
        *cap = nc;
    }
    p->p[p->n].group = p->groups[g];
    p->p[p->n].text = text;
    p->n++;
    return FT_OK;
}

/* 1 if name is in the comma-separated list (NULL list: everything) */
static int in_list(const char *list, const char *name) {
    if (!list) return 1;
    size_t n = strlen(name);
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        while (l && *s == ' ') { s++; l--; }
        while (l && s[l - 1] == ' ') l--;
        if (l == n && !strncmp(s, name, n)) return 1;
        if (!e) break;
        s = e + 1;
    }
    return 0;
}

/* template with every "{X}" replaced by term (malloc'd) */
static char *fill(const char *tmpl, const char *term) {
    size_t n = 1, tl = strlen(term);
    for (const char *s = tmpl; *s;) if (!strncmp(s, "{X}", 3)) { n += tl; s += 3; } else { n++; s++; }
    char *o = malloc(n), *w = o;
    if (!o) return NULL;
    for (const char *s = tmpl; *s;) if (!strncmp(s, "{X}", 3)) { memcpy(w, term, tl); w += tl; s += 3; } else *w++ = *s++;
    *w = 0;
    return o;
}

static int load_json(cJSON **out, const char *path) {
    char *buf = NULL;
    size_t len = 0;
    FT_TRY(ft_file_read_all(path, &buf, &len));
    *out = cJSON_ParseWithLength(buf, len);
    free(buf);
    if (!*out) return ft_error(FT_ERR_FORMAT, "%s: not valid JSON", path);
    return FT_OK;
}

int ft_bias_templates_load(ft_bias_prompts *out, const char *path, const char *terms, int64_t per_group) {
    memset(out, 0, sizeof *out);
    cJSON *j = NULL;
    FT_TRY(load_json(&j, path));
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(j, "templates"), *gs = cJSON_GetObjectItemCaseSensitive(j, "groups");
    int rc = FT_OK;
    int64_t cap = 0;
    if (!cJSON_IsArray(tm) || cJSON_GetArraySize(tm) == 0)
        rc = ft_error(FT_ERR_FORMAT, "%s: expected {\"templates\": [\"... {X} ...\", ...], \"groups\": {\"name\": [terms]}} "
                      "(\"templates\" missing or empty)", path);
    const cJSON *t;
    int ti = 0;
    cJSON_ArrayForEach(t, tm) {
        if (rc < 0) break;
        if (!cJSON_IsString(t) || !strstr(t->valuestring, "{X}"))
            rc = ft_error(FT_ERR_FORMAT, "%s: templates[%d] is not a string with the placeholder {X}", path, ti);
        ti++;
    }
    if (rc == FT_OK && gs && !cJSON_IsObject(gs)) rc = ft_error(FT_ERR_FORMAT, "%s: \"groups\" must be an object {\"name\": [\"term\", ...]}", path);
    if (rc == FT_OK && !gs && !terms)
        rc = ft_error(FT_ERR_INVALID, "%s: no \"groups\" in the file: give the terms to swap in with --groups (e.g. \"he,she\")", path);
    if (rc == FT_OK && gs) {
        const cJSON *g;
        cJSON_ArrayForEach(g, gs) {
            if (rc < 0) break;
            if (!in_list(terms, g->string)) continue;
            if (!cJSON_IsArray(g) || cJSON_GetArraySize(g) == 0) { rc = ft_error(FT_ERR_FORMAT, "%s: groups.%s must be a non-empty list of terms", path, g->string); break; }
            int64_t k = 0;
            const cJSON *term;
            cJSON_ArrayForEach(term, g) {
                if (rc < 0) break;
                if (!cJSON_IsString(term)) { rc = ft_error(FT_ERR_FORMAT, "%s: groups.%s holds a non-string term", path, g->string); break; }
                cJSON_ArrayForEach(t, tm) {
                    if (rc < 0 || (per_group > 0 && k >= per_group)) break;
                    rc = add_prompt(out, g->string, fill(t->valuestring, term->valuestring), &cap);
                    k++;
                }
            }
        }
        if (rc == FT_OK && terms)   /* every group asked for must exist */
            for (const char *s = terms; *s && rc == FT_OK;) {
                const char *e = strchr(s, ',');
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)(e ? (size_t)(e - s) : strlen(s)), s);
                int found = 0;
                for (int gi = 0; gi < out->n_groups; gi++) found |= !strcmp(out->groups[gi], name);
                if (!found && name[0]) rc = ft_error(FT_ERR_NOT_FOUND, "%s: no group '%s' in \"groups\"", path, name);
                s = e ? e + 1 : s + strlen(s);
            }
    } else if (rc == FT_OK) {
        for (const char *s = terms; *s && rc == FT_OK;) {
            const char *e = strchr(s, ',');
            char term[256];
            snprintf(term, sizeof term, "%.*s", (int)(e ? (size_t)(e - s) : strlen(s)), s);
            int64_t k = 0;
            if (term[0]) cJSON_ArrayForEach(t, tm) {
                if (rc < 0 || (per_group > 0 && k >= per_group)) break;
                rc = add_prompt(out, term, fill(t->valuestring, term), &cap);
                k++;
            }
            s = e ? e + 1 : s + strlen(s);
        }
    }
    cJSON_Delete(j);
    if (rc == FT_OK && out->n == 0) rc = ft_error(FT_ERR_FORMAT, "%s: no prompts (no group selected?)", path);
    if (rc < 0) ft_bias_prompts_free(out);
    return rc;
}

int ft_bias_bold_load(ft_bias_prompts *out, const char *path, const char *groups, int64_t per_group) {
    memset(out, 0, sizeof *out);
    cJSON *j = NULL;
    FT_TRY(load_json(&j, path));
    int rc = cJSON_IsObject(j) ? FT_OK : ft_error(FT_ERR_FORMAT, "%s: expected a BOLD prompt file {\"group\": {\"entity\": [\"prompt\", ...]}}", path);
    int64_t cap = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, j) {
        if (rc < 0) break;
        if (!in_list(groups, g->string)) continue;
        if (!cJSON_IsObject(g)) { rc = ft_error(FT_ERR_FORMAT, "%s: \"%s\" must be an object {\"entity\": [\"prompt\", ...]}", path, g->string); break; }
        int64_t k = 0;
        const cJSON *ent;
        cJSON_ArrayForEach(ent, g) {
            if (rc < 0 || (per_group > 0 && k >= per_group)) break;
            if (!cJSON_IsArray(ent)) { rc = ft_error(FT_ERR_FORMAT, "%s: %s.%s must be a list of prompts", path, g->string, ent->string); break; }
            const cJSON *pr;
            cJSON_ArrayForEach(pr, ent) {
                if (rc < 0 || (per_group > 0 && k >= per_group)) break;
                if (!cJSON_IsString(pr)) { rc = ft_error(FT_ERR_FORMAT, "%s: %s.%s holds a non-string prompt", path, g->string, ent->string); break; }
                size_t l = strlen(pr->valuestring);
                while (l && isspace((unsigned char)pr->valuestring[l - 1])) l--;   /* BOLD prompts end with a space */
                rc = add_prompt(out, g->string, strndup(pr->valuestring, l), &cap);
                k++;
            }
        }
    }
    if (rc == FT_OK && groups)
        for (const char *s = groups; *s && rc == FT_OK;) {
            const char *e = strchr(s, ',');
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(e ? (size_t)(e - s) : strlen(s)), s);
            int found = 0;
            for (int gi = 0; gi < out->n_groups; gi++) found |= !strcmp(out->groups[gi], name);
            if (!found && name[0]) rc = ft_error(FT_ERR_NOT_FOUND, "%s: no group '%s'", path, name);
            s = e ? e + 1 : s + strlen(s);
        }
    cJSON_Delete(j);
    if (rc == FT_OK && out->n == 0) rc = ft_error(FT_ERR_FORMAT, "%s: no prompts", path);
    if (rc < 0) ft_bias_prompts_free(out);
    return rc;
}

void ft_bias_gen_result_free(ft_bias_gen_result *r) {
    if (!r) return;
    for (int64_t i = 0; r->continuation && i < r->n; i++) free(r->continuation[i]);
    free(r->continuation);
    free(r->score);
    free(r->count);
    free(r->mean);
    memset(r, 0, sizeof *r);
}

int ft_bias_generate(ft_bias_gen_result *out, ft_model *m, const ft_tokenizer *tok, const ft_bias_prompts *prompts,
                     const ft_generate_params *gp, ft_encoder_model *scorer, const ft_tokenizer *scorer_tok, int label,
                     ft_bias_progress_fn progress, void *user) {
    memset(out, 0, sizeof *out);
    int64_t n = prompts->n;
    int G = prompts->n_groups;
    if (scorer && (ft_encoder_get_task(scorer) != FT_TASK_CLASSIFY || label < 0 || label >= ft_encoder_get_config(scorer)->num_labels))
        return ft_error(FT_ERR_INVALID, "the scorer must be a sequence classifier and the label one of its %d classes", ft_encoder_get_config(scorer)->num_labels);
    out->continuation = calloc((size_t)(n ? n : 1), sizeof *out->continuation);
    out->score = malloc(sizeof(double) * (size_t)(n ? n : 1));
    out->count = calloc((size_t)(G ? G : 1), sizeof *out->count);
    out->mean = calloc((size_t)(G ? G : 1), sizeof *out->mean);
    int rc = out->continuation && out->score && out->count && out->mean ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
    if (rc == FT_OK) { out->n = n; out->n_groups = G; }
    for (int64_t i = 0; rc == FT_OK && i < n; i++) {
        int *ids = NULL, nid = 0;
        const char *text = prompts->p[i].text;
        rc = ft_tokenizer_encode(tok, text, strlen(text), FT_TOK_ADD_SPECIAL, &ids, &nid);
        if (rc == FT_OK && nid == 0) {   /* an empty prompt starts from BOS / EOS, as finetune generate does */
            int start = ft_generate_start_token(tok, ft_model_get_config(m));
            free(ids);
            ids = malloc(sizeof(int));
            if (!ids || start < 0) rc = ft_error(FT_ERR_INVALID, "an empty prompt and no BOS/EOS token to start from");
            else { ids[0] = start; nid = 1; }
        }
        ft_generation g = {0};
        if (rc == FT_OK) rc = ft_generate(m, tok, ids, nid, gp, NULL, NULL, &g);
        free(ids);
        if (rc == FT_OK) {
            out->continuation[i] = g.text ? g.text : strdup("");
            g.text = NULL;
            if (!out->continuation[i]) rc = ft_error(FT_ERR_NOMEM, "out of memory");
        }
        ft_generation_free(&g);
        out->score[i] = NAN;
        if (rc == FT_OK && scorer) {
            ft_prediction p;
            rc = ft_encoder_predict(&p, scorer, scorer_tok, out->continuation[i], NULL, NULL);
            if (rc == FT_OK) out->score[i] = p.probs[label];
            ft_prediction_free(&p);
        }
        if (rc == FT_OK && progress && progress(user, i + 1, n)) rc = ft_error(FT_ERR_INTERRUPTED, "generation: stopped");
    }
    if (rc == FT_OK) {
        for (int64_t i = 0; i < n; i++) {
            int g = 0;
            while (g < G && prompts->groups[g] != prompts->p[i].group) g++;
            out->count[g]++;
            out->mean[g] += out->score[i];
        }
        out->max_gap = NAN;
        out->gap_hi = out->gap_lo = -1;
        for (int g = 0; g < G; g++) {
            out->mean[g] = out->count[g] ? out->mean[g] / (double)out->count[g] : NAN;
            if (isnan(out->mean[g])) continue;
            if (out->gap_hi < 0 || out->mean[g] > out->mean[out->gap_hi]) out->gap_hi = g;
            if (out->gap_lo < 0 || out->mean[g] < out->mean[out->gap_lo]) out->gap_lo = g;
        }
        if (out->gap_hi >= 0) out->max_gap = out->mean[out->gap_hi] - out->mean[out->gap_lo];
    }
    if (rc < 0) ft_bias_gen_result_free(out);
    return rc;
}

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

int ft_bias_gen_result_json(char **out, const ft_bias_gen_result *r, const ft_bias_prompts *p, const char *label_name) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return ft_error(FT_ERR_NOMEM, "out of memory");
    if (label_name) cJSON_AddStringToObject(o, "scorer_label", label_name);
    cJSON *gs = cJSON_AddArrayToObject(o, "groups");
    for (int g = 0; gs && g < r->n_groups; g++) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "group", p->groups[g]);
        cJSON_AddNumberToObject(e, "prompts", (double)r->count[g]);
        cJSON_AddItemToObject(e, "mean_score", num(r->mean[g]));
        cJSON_AddItemToArray(gs, e);
    }
    cJSON_AddItemToObject(o, "max_gap", num(r->max_gap));
    if (r->gap_hi >= 0) {
        cJSON_AddStringToObject(o, "max_gap_high", p->groups[r->gap_hi]);
        cJSON_AddStringToObject(o, "max_gap_low", p->groups[r->gap_lo]);
    }
    cJSON *a = cJSON_AddArrayToObject(o, "generations");
    for (int64_t i = 0; a && i < r->n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        cJSON_AddStringToObject(e, "group", p->p[i].group);
        cJSON_AddStringToObject(e, "prompt", p->p[i].text);
        cJSON_AddStringToObject(e, "continuation", r->continuation[i]);
        cJSON_AddItemToObject(e, "score", num(r->score[i]));
        cJSON_AddItemToArray(a, e);
    }
    *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return *out ? FT_OK : ft_error(FT_ERR_NOMEM, "out of memory");
}
