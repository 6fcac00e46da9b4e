/* http_classify.c — the classification API of the deployment chapter:
 *   GET  /models              every model and adapter: id, kind, task, labels, version, base, adapter, loaded_at
 *   GET  /models/{id}         one of them
 *   POST /models/{id}/predict {"text": "..."} or {"texts": [...]}, optional "confidence_threshold" in [0, 1]
 *     classify        {"prediction", "confidence", "probabilities": {label: p}, "fallback", "request_id"}
 *                     (below the threshold: "prediction": null, "fallback": true — refuse or escalate)
 *     regress         {"value"}
 *     token-classify  {"entities": [{"entity", "word", "start", "end"}], "tokens": [{"word", "tag"}]}
 *                     (B-/I-/E-/S- tags grouped into spans; offsets are byte offsets into the text)
 *     mlm             {"masks": [[{"token", "probability"}, ...], ...]}
 *   for "texts": {"predictions": [one object per text], "request_id"}.
 *   A multi-task model (`finetune train --task multi`) answers every head: {"tasks": {name: prediction}} per text.
 * Schema errors are 422 with a message naming the field. */
#include "serve/http_internal.h"
#include "core/json_util.h"
#include "finetune/predict.h"
#include "finetune/status.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define FT__MAX_TEXTS 256
#define FT__MAX_HEADS 16   /* FT_MULTITASK_MAX */

/* a version tag that changes when the weights on disk change: FNV-1a of the directory, size and mtime */
static void version_of(const ft_engine_entry *e, char *out, size_t cap) {
    static const char *files[] = {"adapter_model.safetensors", "model.safetensors", "config.json", NULL};
    struct stat st;
    memset(&st, 0, sizeof st);
    char path[1200];
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", e->dir, files[i]);
        if (stat(path, &st) == 0) break;
    }
    uint64_t h = 1469598103934665603ull;
    char buf[1400];
    int n = snprintf(buf, sizeof buf, "%s|%lld|%lld", e->dir, (long long)st.st_size, (long long)st.st_mtime);
    for (int i = 0; i < n && i < (int)sizeof buf; i++) h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
    snprintf(out, cap, "%012llx", (unsigned long long)(h & 0xffffffffffffull));
}

static cJSON *model_info(const ft_engine_entry *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", e->name);
    cJSON_AddStringToObject(o, "kind", e->kind == FT_ENGINE_ENCODER ? "encoder" : "generator");
    cJSON_AddStringToObject(o, "task", e->kind != FT_ENGINE_ENCODER ? "generate" : e->embedding_only ? "embedding" : ft_encoder_task_name(e->task));
    if (e->kind == FT_ENGINE_ENCODER && !e->embedding_only && e->labels && (e->task == FT_TASK_CLASSIFY || e->task == FT_TASK_TOKEN)) {
        cJSON *l = cJSON_AddArrayToObject(o, "labels");
        for (int i = 0; i < e->num_labels; i++) cJSON_AddItemToArray(l, cJSON_CreateString(e->labels[i] ? e->labels[i] : ""));
    } else
        cJSON_AddNullToObject(o, "labels");
    char v[32];
    version_of(e, v, sizeof v);
    cJSON_AddStringToObject(o, "version", v);
    if (e->is_adapter) {
        cJSON_AddStringToObject(o, "base", e->base);
        cJSON_AddStringToObject(o, "adapter", e->name);
    } else {
        cJSON_AddStringToObject(o, "base", e->name);
        cJSON_AddNullToObject(o, "adapter");
    }
    char ts[40];
    time_t t = (time_t)e->created;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(o, "loaded_at", ts);
    cJSON_AddNumberToObject(o, "context_length", e->context_length);
    return o;
}

ft__mhd_result ft__http_cls_models(ft__http_req *r) {
    ft_engine_entry *v = NULL;
    int n = 0;
    int rc = ft_engine_list(r->s->e, &v, &n);
    if (rc < 0) return ft__http_engine_error(r, rc, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, model_info(&v[i]));
    ft_engine_entries_free(v, n);
    cJSON_AddStringToObject(o, "request_id", r->id);
    return ft__http_send_json(r, 200, o);
}

ft__mhd_result ft__http_cls_model(ft__http_req *r, const char *id) {
    ft_engine_entry *e = NULL;
    if (!ft__name_valid(id) || ft_engine_find(r->s->e, id, &e) != FT_OK)
        return ft__http_error(r, 404, "not_found", NULL, "model '%.200s' not found (GET /models lists them)", id);
    cJSON *o = model_info(e);
    ft_engine_entries_free(e, 1);
    cJSON_AddStringToObject(o, "request_id", r->id);
    return ft__http_send_json(r, 200, o);
}

/* ---- entities from word tags ---- */

/* splits "B-PER" into its scheme letter ('B', 'I', 'E', 'S'; 'O' outside; 'I' for a bare type) and type */
static char tag_parts(const char *tag, const char **type) {
    *type = tag;
    if (!tag || !*tag || strcmp(tag, "O") == 0) return 'O';
    if ((tag[0] == 'B' || tag[0] == 'I' || tag[0] == 'E' || tag[0] == 'S' || tag[0] == 'L' || tag[0] == 'U') &&
        (tag[1] == '-' || tag[1] == '_') && tag[2]) {
        *type = tag + 2;
        char c = tag[0];
        return c == 'L' ? 'E' : c == 'U' ? 'S' : c;
    }
    return 'I';
}

static void add_entity(cJSON *ents, const char *text, const ft_prediction *p, const long *start, const long *end, int w0,
                       int w1, const char *type) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "entity", type);
    if (start[w0] >= 0 && end[w1 - 1] >= 0) {
        ft__sb b = {0};
        ft__sb_put(&b, text + start[w0], (size_t)(end[w1 - 1] - start[w0]));
        cJSON_AddStringToObject(e, "word", b.p ? b.p : "");
        ft__sb_free(&b);
        cJSON_AddNumberToObject(e, "start", (double)start[w0]);
        cJSON_AddNumberToObject(e, "end", (double)end[w1 - 1]);
    } else {
        ft__sb b = {0};
        for (int w = w0; w < w1; w++) { if (w > w0) ft__sb_putc(&b, ' '); ft__sb_puts(&b, p->words[w]); }
        cJSON_AddStringToObject(e, "word", b.p ? b.p : "");
        ft__sb_free(&b);
    }
    cJSON_AddItemToArray(ents, e);
}

void ft__http_entities(cJSON *o, const char *text, const ft_prediction *p) {
    int n = p->n_words;
    long *start = calloc((size_t)n + 1, sizeof *start), *end = calloc((size_t)n + 1, sizeof *end);
    cJSON *ents = cJSON_AddArrayToObject(o, "entities");
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens");
    if (!start || !end) { free(start); free(end); return; }
    /* byte offsets: the words are the text split at whitespace, in order */
    size_t pos = 0, tl = strlen(text);
    for (int w = 0; w < n; w++) {
        const char *f = pos <= tl ? strstr(text + pos, p->words[w]) : NULL;
        if (f) { start[w] = f - text; end[w] = start[w] + (long)strlen(p->words[w]); pos = (size_t)end[w]; }
        else start[w] = end[w] = -1;
    }
    int w0 = -1;
    const char *cur = NULL;
    size_t cur_len = 0;
    for (int w = 0; w <= n; w++) {
        const char *type = NULL;
        char sc = w < n ? tag_parts(p->tags[w], &type) : 'O';
        size_t ty_len = type ? strlen(type) : 0;
        int continues = w0 >= 0 && (sc == 'I' || sc == 'E') && cur && ty_len == cur_len && strncmp(type, cur, cur_len) == 0;
        if (w0 >= 0 && !continues) {
            char tbuf[128];
            snprintf(tbuf, sizeof tbuf, "%.*s", (int)cur_len, cur);
            add_entity(ents, text, p, start, end, w0, w, tbuf);
            w0 = -1;
        }
        if (w < n && sc != 'O' && !continues) { w0 = w; cur = type; cur_len = ty_len; }
        if (w0 >= 0 && (sc == 'E' || sc == 'S')) {
            char tbuf[128];
            snprintf(tbuf, sizeof tbuf, "%.*s", (int)cur_len, cur);
            add_entity(ents, text, p, start, end, w0, w + 1, tbuf);
            w0 = -1;
        }
    }
    for (int w = 0; w < n; w++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "word", p->words[w]);
        cJSON_AddStringToObject(t, "tag", p->tags[w] ? p->tags[w] : "O");
        if (start[w] >= 0) { cJSON_AddNumberToObject(t, "start", (double)start[w]); cJSON_AddNumberToObject(t, "end", (double)end[w]); }
        cJSON_AddItemToArray(toks, t);
    }
    free(start);
    free(end);
}

/* one prediction as an object; threshold < 0: none given */
static cJSON *prediction_object(const ft_prediction *p, const char *text, double threshold) {
    cJSON *o = cJSON_CreateObject();
    switch (p->task) {
    case FT_TASK_CLASSIFY: {
        float conf = p->label >= 0 && p->label < p->num_labels ? p->probs[p->label] : 0;
        int fallback = threshold >= 0 && conf < threshold;
        if (fallback || p->label < 0) cJSON_AddNullToObject(o, "prediction");
        else cJSON_AddStringToObject(o, "prediction", p->label_names && p->label_names[p->label] ? p->label_names[p->label] : "");
        cJSON_AddNumberToObject(o, "confidence", ft__http_f32(conf));
        cJSON *pr = cJSON_AddObjectToObject(o, "probabilities");
        for (int k = 0; k < p->num_labels; k++) {
            char def[32];
            snprintf(def, sizeof def, "LABEL_%d", k);
            const char *name = p->label_names && p->label_names[k] ? p->label_names[k] : def;
            if (!cJSON_GetObjectItemCaseSensitive(pr, name)) cJSON_AddNumberToObject(pr, name, ft__http_f32(p->probs[k]));
        }
        cJSON_AddBoolToObject(o, "fallback", fallback);
        break;
    }
    case FT_TASK_REGRESS: cJSON_AddNumberToObject(o, "value", ft__http_f32(p->value)); break;
    case FT_TASK_TOKEN: ft__http_entities(o, text, p); break;
    case FT_TASK_MLM: {
        cJSON *masks = cJSON_AddArrayToObject(o, "masks");
        for (int m = 0; m < p->n_masks; m++) {
            cJSON *c = cJSON_CreateArray();
            for (int k = 0; k < p->top_k; k++) {
                cJSON *x = cJSON_CreateObject();
                ft__sb b = {0};
                const char *t = p->tokens[m * p->top_k + k];
                ft__utf8_sanitize(&b, t ? t : "", t ? strlen(t) : 0);
                cJSON_AddStringToObject(x, "token", b.p ? b.p : "");
                ft__sb_free(&b);
                cJSON_AddNumberToObject(x, "id", p->token_ids[m * p->top_k + k]);
                cJSON_AddNumberToObject(x, "probability", ft__http_f32(p->token_probs[m * p->top_k + k]));
                cJSON_AddItemToArray(c, x);
            }
            cJSON_AddItemToArray(masks, c);
        }
        break;
    }
    default: break;
    }
    if (p->truncated > 0) cJSON_AddNumberToObject(o, "truncated_tokens", p->truncated);
    return o;
}

static int blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\f' && *s != '\v') return 0;
    return 1;
}

/* a multi-task model's predictions of one text: {"tasks": {name: prediction}} */
static cJSON *heads_object(const ft_prediction *p, int H, char (*names)[64], const char *text, double threshold) {
    cJSON *o = cJSON_CreateObject(), *t = cJSON_AddObjectToObject(o, "tasks");
    for (int h = 0; h < H; h++) cJSON_AddItemToObject(t, names[h], prediction_object(&p[h], text, threshold));
    return o;
}

ft__mhd_result ft__http_cls_predict(ft__http_req *r, const char *id, const cJSON *body) {
    ft_engine_entry *e = NULL;
    if (!ft__name_valid(id) || ft_engine_find(r->s->e, id, &e) != FT_OK)
        return ft__http_error(r, 404, "not_found", NULL, "model '%.200s' not found (GET /models lists them)", id);
    int kind = e->kind;
    ft_engine_entries_free(e, 1);
    ft__http_note_model(r, id);
    if (kind != FT_ENGINE_ENCODER)
        return ft__http_error(r, 422, "validation_error", NULL,
                              "model '%s' is a text generator: predict needs an encoder model (use /v1/completions)", id);
    static const char *const known[] = {"text", "texts", "confidence_threshold", NULL};
    ft__jerr err = {{0}, NULL};
    if (ft__jv_known(body, known, 0, &err) < 0) return ft__http_error(r, 422, "validation_error", err.param, "%s", err.msg);
    double threshold;
    if (ft__jv_num(body, "confidence_threshold", 0, 1, -1, &threshold, &err) < 0)
        return ft__http_error(r, 422, "validation_error", "confidence_threshold", "%s", err.msg);
    const cJSON *one = cJSON_GetObjectItemCaseSensitive(body, "text");
    const cJSON *many = cJSON_GetObjectItemCaseSensitive(body, "texts");
    if (one && cJSON_IsNull(one)) one = NULL;
    if (many && cJSON_IsNull(many)) many = NULL;
    if (!one == !many)
        return ft__http_error(r, 422, "validation_error", one ? "texts" : "text",
                              one ? "give either 'text' or 'texts', not both" : "'text' (a string) or 'texts' (a list of strings) is required");
    const char *texts[FT__MAX_TEXTS];
    int n = 0;
    if (one) {
        if (!cJSON_IsString(one))
            return ft__http_error(r, 422, "validation_error", "text", "'text' must be a string, got %s", ft__json_type_name(one));
        texts[n++] = one->valuestring;
    } else {
        if (!cJSON_IsArray(many))
            return ft__http_error(r, 422, "validation_error", "texts", "'texts' must be a list of strings, got %s", ft__json_type_name(many));
        int k = 0;
        for (const cJSON *c = many->child; c; c = c->next, k++) {
            if (n == FT__MAX_TEXTS)
                return ft__http_error(r, 422, "validation_error", "texts", "'texts' may hold at most %d texts", FT__MAX_TEXTS);
            if (!cJSON_IsString(c))
                return ft__http_error(r, 422, "validation_error", "texts", "'texts[%d]' must be a string, got %s", k, ft__json_type_name(c));
            texts[n++] = c->valuestring;
        }
        if (n == 0) return ft__http_error(r, 422, "validation_error", "texts", "'texts' must not be empty");
    }
    for (int i = 0; i < n; i++)
        if (blank(texts[i]))
            return ft__http_error(r, 422, "validation_error", one ? "text" : "texts",
                                  one ? "'text' must not be empty" : "'texts[%d]' must not be empty", i);

    /* a multi-task model: every head, {"tasks": {name: prediction}} per text */
    char heads[FT__MAX_HEADS][64];
    int H = ft_engine_model_heads(r->s->e, id, heads, FT__MAX_HEADS);
    if (H < 0) return ft__http_engine_error(r, H, NULL);
    if (H > FT__MAX_HEADS) return ft__http_error(r, 500, "internal_error", NULL, "model '%s' has %d heads (at most %d)", id, H, FT__MAX_HEADS);
    int per = H > 0 ? H : 1;
    ft_prediction *preds = calloc((size_t)n * (size_t)per, sizeof *preds);
    int *ntok = calloc((size_t)n, sizeof *ntok);
    if (!preds || !ntok) { free(preds); free(ntok); return ft__http_error(r, 500, "internal_error", NULL, "out of memory"); }
    int *nunk = calloc((size_t)n, sizeof *nunk);
    int rc = !nunk ? ft_error(FT_ERR_NOMEM, "out of memory")
           : H > 0 ? ft_engine_predict_heads(r->s->e, id, texts, n, preds, ntok, nunk) : ft_engine_predict(r->s->e, id, texts, n, preds, ntok, nunk);
    if (rc < 0) {
        free(preds);
        free(ntok);
        free(nunk);
        return ft__http_engine_error(r, rc, one ? "text" : "texts");
    }
    cJSON *o;
    if (one) o = H > 0 ? heads_object(preds, H, heads, texts[0], threshold) : prediction_object(&preds[0], texts[0], threshold);
    else {
        o = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(o, "predictions");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(a, H > 0 ? heads_object(preds + (size_t)i * H, H, heads, texts[i], threshold) : prediction_object(&preds[i], texts[i], threshold));
    }
    cJSON_AddStringToObject(o, "model", id);
    cJSON_AddStringToObject(o, "request_id", r->id);
    long tokens = 0, unknown = 0;
    /* what drift detection watches: input length and unknown tokens, and per text the confidence and label */
    if (preds[0].task == FT_TASK_CLASSIFY) {
        r->confidences = malloc(sizeof *r->confidences * (size_t)n);
        r->labels = malloc(sizeof *r->labels * (size_t)n);
        if (r->confidences && r->labels) r->n_predictions = n;
    }
    for (int i = 0; i < n; i++) {
        tokens += ntok[i];
        unknown += nunk[i];
        if (r->n_predictions) {
            const ft_prediction *p = &preds[(size_t)i * per];   /* a multi-task model: its first head */
            r->labels[i] = p->label;
            r->confidences[i] = p->label >= 0 && p->label < p->num_labels ? p->probs[p->label] : 0;
        }
    }
    for (int i = 0; i < n * per; i++) ft_prediction_free(&preds[i]);
    r->prompt_tokens = tokens;
    r->unknown_tokens = unknown;
    free(preds);
    free(ntok);
    free(nunk);
    return ft__http_send_json(r, 200, o);
}
