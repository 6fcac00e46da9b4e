/* http_openai.c — the OpenAI-compatible model listing and the request side of /v1/completions and
 * /v1/chat/completions: every field checked (type, range) with a message naming it, then handed to
 * http_generate.c as an ft__gen_spec. As OpenAI does, an unknown field is refused (400), and so are fields
 * that would change the answer and are not implemented (echo, suffix, tools, logit_bias, non-zero
 * penalties); descriptive fields (user, store, metadata, ...) are checked and accepted. */
#include "serve/http_internal.h"
#include "core/json_util.h"
#include "finetune/status.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- GET /v1/models ---- */

static cJSON *model_object(const ft_engine_entry *e) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", e->name);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)e->created);
    cJSON_AddStringToObject(o, "owned_by", "finetune");
    cJSON_AddStringToObject(o, "kind", e->kind == FT_ENGINE_ENCODER ? "encoder" : "generator");
    if (e->kind == FT_ENGINE_ENCODER) cJSON_AddStringToObject(o, "task", e->embedding_only ? "embedding" : ft_encoder_task_name(e->task));
    if (e->is_adapter) cJSON_AddStringToObject(o, "parent", e->base); else cJSON_AddNullToObject(o, "parent");
    cJSON_AddNumberToObject(o, "max_model_len", e->context_length);
    return o;
}

ft__mhd_result ft__http_models_list(ft__http_req *r) { return ft__http_send_entry_list(r, 0, model_object); }

ft__mhd_result ft__http_models_get(ft__http_req *r, const char *id) {
    ft_engine_entry *e = NULL;
    if (!ft__name_valid(id) || ft_engine_find(r->s->e, id, &e) != FT_OK)
        return ft__http_error(r, 404, "model_not_found", "model", "The model '%.200s' does not exist", id);
    cJSON *o = model_object(e);
    ft_engine_entries_free(e, 1);
    return ft__http_send_json(r, 200, o);
}

/* ---- request parsing ---- */

void ft__gen_spec_free(ft__gen_spec *g) {
    for (int i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g->owned);
    if (g->prompt_ids)
        for (int i = 0; i < g->n_prompts; i++) free(g->prompt_ids[i]);
    free(g->prompt_ids);
    free(g->n_prompt_ids);
    free(g->prompts);
    free(g->msgs);
    memset(g, 0, sizeof *g);
}

/* keeps s (malloc'd) for the spec's lifetime; NULL on failure (s freed) */
static char *own(ft__gen_spec *g, char *s) {
    if (!s) return NULL;
    if (g->n_owned == g->cap_owned) {
        int cap = g->cap_owned ? 2 * g->cap_owned : 8;
        char **v = realloc(g->owned, sizeof *v * (size_t)cap);
        if (!v) { free(s); return NULL; }
        g->owned = v;
        g->cap_owned = cap;
    }
    g->owned[g->n_owned++] = s;
    return s;
}

static ft__mhd_result bad(ft__http_req *r, const ft__jerr *e) {
    return ft__http_error(r, 400, "invalid_value", e->param, "%s", e->msg);
}

static ft__mhd_result unsupported(ft__http_req *r, const char *param, const char *what) {
    return ft__http_error(r, 400, "unsupported_parameter", param, "'%s' is not supported by this server%s", param, what);
}

/* "stop": a string or a list of up to 16 strings */
static int parse_stop(const cJSON *body, ft__gen_spec *g, ft__jerr *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "stop");
    if (!v || cJSON_IsNull(v)) return 0;
    const cJSON *items[17];
    int n = 0;
    if (cJSON_IsString(v)) items[n++] = v;
    else if (cJSON_IsArray(v)) {
        for (const cJSON *c = v->child; c; c = c->next) {
            if (n == 16) { snprintf(err->msg, sizeof err->msg, "'stop' may hold at most 16 strings"); err->param = "stop"; return -1; }
            items[n++] = c;
        }
    } else {
        snprintf(err->msg, sizeof err->msg, "'stop' must be a string or a list of strings, got %s", ft__json_type_name(v));
        err->param = "stop";
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!cJSON_IsString(items[i]) || !items[i]->valuestring[0] || strlen(items[i]->valuestring) > 256) {
            snprintf(err->msg, sizeof err->msg, "'stop' entries must be non-empty strings of at most 256 bytes");
            err->param = "stop";
            return -1;
        }
        g->stops[g->gp.n_stop++] = items[i]->valuestring;
    }
    return 0;
}

/* "prompt": a string, a list of strings, a list of token ids, or a list of lists of token ids */
static int parse_prompt(const cJSON *body, ft__gen_spec *g, int vocab, ft__jerr *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    err->param = "prompt";
    if (!v || cJSON_IsNull(v)) { snprintf(err->msg, sizeof err->msg, "'prompt' is required"); return -1; }
    const cJSON *list[64];
    int n = 0, ids_list = 0;
    if (cJSON_IsString(v)) list[n++] = v;
    else if (cJSON_IsArray(v) && v->child && cJSON_IsNumber(v->child)) { list[n++] = v; ids_list = 1; }
    else if (cJSON_IsArray(v)) {
        for (const cJSON *c = v->child; c; c = c->next) {
            if (n == 64) { snprintf(err->msg, sizeof err->msg, "'prompt' may hold at most 64 prompts"); return -1; }
            list[n++] = c;
        }
        if (n == 0) { snprintf(err->msg, sizeof err->msg, "'prompt' must not be an empty list"); return -1; }
    } else {
        snprintf(err->msg, sizeof err->msg, "'prompt' must be a string, a list of strings or a list of token ids, got %s",
                 ft__json_type_name(v));
        return -1;
    }
    g->n_prompts = n;
    g->prompts = calloc((size_t)n, sizeof *g->prompts);
    g->prompt_ids = calloc((size_t)n, sizeof *g->prompt_ids);
    g->n_prompt_ids = calloc((size_t)n, sizeof *g->n_prompt_ids);
    if (!g->prompts || !g->prompt_ids || !g->n_prompt_ids) { snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
    for (int i = 0; i < n; i++) {
        const cJSON *p = list[i];
        if (cJSON_IsString(p)) { g->prompts[i] = p->valuestring; continue; }
        if (!cJSON_IsArray(p) || (!ids_list && !p->child) ) {
            snprintf(err->msg, sizeof err->msg, "'prompt' entries must be strings or lists of token ids, got %s", ft__json_type_name(p));
            return -1;
        }
        int k = cJSON_GetArraySize(p);
        if (k == 0 || k > 1 << 20) { snprintf(err->msg, sizeof err->msg, "a token-id prompt must hold 1 to 1048576 ids"); return -1; }
        g->prompt_ids[i] = malloc(sizeof(int) * (size_t)k);
        if (!g->prompt_ids[i]) { snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
        int j = 0;
        for (const cJSON *c = p->child; c; c = c->next) {
            double d = cJSON_IsNumber(c) ? c->valuedouble : -1;
            if (!cJSON_IsNumber(c) || d != floor(d) || d < 0 || d >= vocab) {
                snprintf(err->msg, sizeof err->msg, "'prompt' token ids must be integers in [0, %d)", vocab);
                return -1;
            }
            g->prompt_ids[i][j++] = (int)d;
        }
        g->n_prompt_ids[i] = k;
    }
    return 0;
}

/* "content" of a chat message: a string, null, or a list of {"type": "text", "text": ...} parts */
static int message_content(const cJSON *m, int i, ft__gen_spec *g, const char **out, ft__jerr *err) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
    err->param = "messages";
    if (!c || cJSON_IsNull(c)) {
        /* only an assistant turn may come without content (OpenAI: one that called tools) */
        const char *role = ft__json_str(m, "role", "");
        if (strcmp(role, "assistant") != 0) {
            snprintf(err->msg, sizeof err->msg, "'messages[%d].content' is required", i);
            return -1;
        }
        *out = "";
        return 0;
    }
    if (cJSON_IsString(c)) { *out = c->valuestring; return 0; }
    if (!cJSON_IsArray(c)) {
        snprintf(err->msg, sizeof err->msg, "'messages[%d].content' must be a string or a list of content parts, got %s", i,
                 ft__json_type_name(c));
        return -1;
    }
    ft__sb b = {0};
    int k = 0;
    for (const cJSON *p = c->child; p; p = p->next, k++) {
        const char *type = ft__json_str(p, "type", NULL), *text = ft__json_str(p, "text", NULL);
        if (!type || strcmp(type, "text") != 0 || !text) {
            ft__sb_free(&b);
            snprintf(err->msg, sizeof err->msg, "'messages[%d].content[%d]' must be {\"type\": \"text\", \"text\": ...} (only text is supported)", i, k);
            return -1;
        }
        if (k > 0) ft__sb_putc(&b, '\n');
        ft__sb_puts(&b, text);
    }
    char *s = ft__sb_take(&b, NULL);
    if (!own(g, s)) { snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
    *out = s;
    return 0;
}

static int parse_messages(const cJSON *body, ft__gen_spec *g, int has_template, ft__jerr *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "messages");
    err->param = "messages";
    if (!v || cJSON_IsNull(v)) { snprintf(err->msg, sizeof err->msg, "'messages' is required"); return -1; }
    if (!cJSON_IsArray(v) || !v->child) { snprintf(err->msg, sizeof err->msg, "'messages' must be a non-empty list of messages"); return -1; }
    int n = cJSON_GetArraySize(v);
    if (n > 4096) { snprintf(err->msg, sizeof err->msg, "'messages' may hold at most 4096 messages"); return -1; }
    g->msgs = calloc((size_t)n, sizeof *g->msgs);
    if (!g->msgs) { snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
    int i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m)) { snprintf(err->msg, sizeof err->msg, "'messages[%d]' must be an object, got %s", i, ft__json_type_name(m)); return -1; }
        static const char *const msg_fields[] = {"role", "content", "name", NULL};
        if (ft__jv_known(m, msg_fields, 1, err) < 0) {
            snprintf(err->msg, sizeof err->msg, "'messages[%d]' has an unsupported field (role, content and name are known)", i);
            err->param = "messages";
            return -1;
        }
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(m, "name");
        if (nm && !cJSON_IsNull(nm) && !cJSON_IsString(nm)) {
            snprintf(err->msg, sizeof err->msg, "'messages[%d].name' must be a string", i);
            err->param = "messages";
            return -1;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) { snprintf(err->msg, sizeof err->msg, "'messages[%d].role' is required (a string)", i); return -1; }
        const char *rs = role->valuestring;
        if (strcmp(rs, "developer") == 0) rs = "system";
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool")) {
            snprintf(err->msg, sizeof err->msg, "'messages[%d].role' must be one of system, developer, user, assistant, tool; got '%.40s'", i, rs);
            return -1;
        }
        const char *content;
        if (message_content(m, i, g, &content, err) < 0) return -1;
        g->msgs[i].role = rs;
        g->msgs[i].content = content;
    }
    g->n_msgs = n;
    if (!has_template) {
        /* no chat template: the speaker layout finetune train uses for chat data without one
         * ("User: text\n" per turn), then "Assistant:" for the model to continue */
        ft__sb b = {0};
        for (int k = 0; k < n; k++) {
            const char *rl = g->msgs[k].role;
            const char *label = !strcmp(rl, "system") ? "System" : !strcmp(rl, "assistant") ? "Assistant" : !strcmp(rl, "tool") ? "Tool" : "User";
            ft__sb_printf(&b, "%s: %s\n", label, g->msgs[k].content);
        }
        ft__sb_puts(&b, "Assistant:");
        char *text = ft__sb_take(&b, NULL);
        if (!own(g, text)) { snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
        g->n_prompts = 1;
        g->prompts = calloc(1, sizeof *g->prompts);
        g->prompt_ids = calloc(1, sizeof *g->prompt_ids);
        g->n_prompt_ids = calloc(1, sizeof *g->n_prompt_ids);
        if (!g->prompts || !g->prompt_ids || !g->n_prompt_ids) { snprintf(err->msg, sizeof err->msg, "out of memory"); return -1; }
        g->prompts[0] = text;
        free(g->msgs);
        g->msgs = NULL;
        g->n_msgs = 0;
        g->strip_space = 1;
        static const char *const turn_stops[] = {"\nUser:", "\nSystem:"};
        for (int k = 0; k < 2 && g->gp.n_stop < FT__MAX_STOPS; k++) g->stops[g->gp.n_stop++] = turn_stops[k];
    } else
        g->n_prompts = 1;   /* the engine renders the template and adds the end-of-turn stops */
    return 0;
}

static int nonzero_num(const cJSON *body, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    return v && !cJSON_IsNull(v) && (!cJSON_IsNumber(v) || v->valuedouble != 0);
}

static int present(const cJSON *body, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) return v->child != NULL;
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    if (cJSON_IsString(v)) return v->valuestring[0] != '\0';
    return 1;
}

/* the fields each endpoint knows (OpenAI's, plus top_k and repetition_penalty); others are refused, as
 * OpenAI refuses an unrecognized argument */
static const char *const k_completion_fields[] = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "n", "stream",
    "stream_options", "logprobs", "echo", "stop", "seed", "presence_penalty", "frequency_penalty", "best_of",
    "logit_bias", "user", "suffix", NULL};
static const char *const k_chat_fields[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
    "repetition_penalty", "n", "stream", "stream_options", "logprobs", "top_logprobs", "stop", "seed",
    "presence_penalty", "frequency_penalty", "logit_bias", "user", "tools", "tool_choice", "functions",
    "function_call", "parallel_tool_calls", "response_format", "store", "metadata", "service_tier",
    "prompt_cache_key", "safety_identifier", NULL};

/* fields that only describe the request (accepted, checked, not used) */
static int check_metadata(const cJSON *body, ft__jerr *err) {
    static const char *const strings[] = {"user", "service_tier", "prompt_cache_key", "safety_identifier", NULL};
    const char *sv;
    int b;
    for (const char *const *k = strings; *k; k++)
        if (ft__jv_str(body, *k, 0, 0, &sv, err) < 0) return -1;
    if (ft__jv_bool(body, "store", 0, &b, err) < 0 || ft__jv_bool(body, "parallel_tool_calls", 0, &b, err) < 0) return -1;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "metadata");
    if (m && !cJSON_IsNull(m) && !cJSON_IsObject(m)) {
        snprintf(err->msg, sizeof err->msg, "'metadata' must be an object, got %s", ft__json_type_name(m));
        err->param = "metadata";
        return -1;
    }
    return 0;
}

ft__mhd_result ft__http_completions(ft__http_req *r, const cJSON *body, int chat) {
    ft__gen_spec g;
    memset(&g, 0, sizeof g);
    g.chat = chat;
    g.gp = ft_generate_default_params();
    g.gp.stop = g.stops;
    ft__jerr err = {{0}, NULL};
    ft__mhd_result rc;
    const char *model = NULL;
    if (ft__jv_known(body, chat ? k_chat_fields : k_completion_fields, 0, &err) < 0) {
        rc = ft__http_error(r, 400, "unknown_parameter", err.param, "%s", err.msg);
        goto done;
    }
    if (check_metadata(body, &err) < 0 || ft__jv_str(body, "model", 1, 1, &model, &err) < 0) { rc = bad(r, &err); goto done; }
    snprintf(g.model, sizeof g.model, "%s", model);
    ft_engine_entry *e = NULL;
    if (!ft__name_valid(g.model) || ft_engine_find(r->s->e, g.model, &e) != FT_OK) {
        rc = ft__http_error(r, 404, "model_not_found", "model", "The model '%.200s' does not exist", g.model);
        goto done;
    }
    ft__http_note_model(r, g.model);
    int kind = e->kind, has_template = e->has_chat_template, vocab = e->vocab_size, ctx = e->context_length;
    ft_engine_entries_free(e, 1);
    if (kind != FT_ENGINE_GENERATOR) {
        rc = ft__http_error(r, 400, "invalid_model", "model", "The model '%s' is an encoder: use /v1/embeddings or /models/%s/predict",
                            g.model, g.model);
        goto done;
    }
    /* fields this server does not implement: refused rather than silently ignored */
    if (present(body, "echo")) { rc = unsupported(r, "echo", ""); goto done; }
    if (present(body, "suffix")) { rc = unsupported(r, "suffix", ""); goto done; }
    if (present(body, "tools")) { rc = unsupported(r, "tools", " (no tool calling)"); goto done; }
    if (present(body, "functions")) { rc = unsupported(r, "functions", " (no function calling)"); goto done; }
    if (present(body, "function_call")) { rc = unsupported(r, "function_call", " (no function calling)"); goto done; }
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(body, "tool_choice");
    if (tc && !cJSON_IsNull(tc) && !(cJSON_IsString(tc) && (!strcmp(tc->valuestring, "none") || !strcmp(tc->valuestring, "auto")))) {
        rc = unsupported(r, "tool_choice", " (no tool calling)");
        goto done;
    }
    if (present(body, "logit_bias")) { rc = unsupported(r, "logit_bias", ""); goto done; }
    if (nonzero_num(body, "presence_penalty")) { rc = unsupported(r, "presence_penalty", " (use repetition_penalty)"); goto done; }
    if (nonzero_num(body, "frequency_penalty")) { rc = unsupported(r, "frequency_penalty", " (use repetition_penalty)"); goto done; }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const char *t = ft__json_str(rf, "type", NULL);
        if (!t || strcmp(t, "text") != 0) { rc = unsupported(r, "response_format", " (only {\"type\": \"text\"})"); goto done; }
    }

    long max_tokens, n, top_k, seed, logprobs_n = -1;
    double temperature, top_p, rep;
    long def_max = chat ? ctx : 16;   /* OpenAI: completions default to 16 tokens, chat to the context */
    if (ft__jv_int(body, "max_tokens", 1, 1 << 20, def_max, &max_tokens, &err) < 0 ||
        ft__jv_int(body, "max_completion_tokens", 1, 1 << 20, max_tokens, &max_tokens, &err) < 0 ||
        ft__jv_int(body, "n", 1, 16, 1, &n, &err) < 0 ||
        ft__jv_int(body, "top_k", 0, 1 << 20, 0, &top_k, &err) < 0 ||
        ft__jv_int(body, "seed", 0, LONG_MAX, 0, &seed, &err) < 0 ||
        ft__jv_num(body, "temperature", 0, 2, 1, &temperature, &err) < 0 ||
        ft__jv_num(body, "top_p", 0, 1, 1, &top_p, &err) < 0 ||
        ft__jv_num(body, "repetition_penalty", 0, 10, 1, &rep, &err) < 0 ||
        ft__jv_bool(body, "stream", 0, &g.stream, &err) < 0) {
        rc = bad(r, &err);
        goto done;
    }
    if (top_p <= 0) { rc = ft__http_error(r, 400, "invalid_value", "top_p", "'top_p' must be a number > 0 and <= 1"); goto done; }
    if (rep <= 0) { rc = ft__http_error(r, 400, "invalid_value", "repetition_penalty", "'repetition_penalty' must be a number > 0"); goto done; }
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) { rc = ft__http_error(r, 400, "invalid_value", "stream_options", "'stream_options' must be an object"); goto done; }
        if (ft__jv_bool(so, "include_usage", 0, &g.include_usage, &err) < 0) { rc = bad(r, &err); goto done; }
        if (!g.stream) { rc = ft__http_error(r, 400, "invalid_value", "stream_options", "'stream_options' is only allowed when 'stream' is true"); goto done; }
    }
    if (chat) {
        int lp = 0;
        long top = 0;
        if (ft__jv_bool(body, "logprobs", 0, &lp, &err) < 0 || ft__jv_int(body, "top_logprobs", 0, 20, 0, &top, &err) < 0) {
            rc = bad(r, &err);
            goto done;
        }
        if (top > 0 && !lp) { rc = ft__http_error(r, 400, "invalid_value", "top_logprobs", "'top_logprobs' needs 'logprobs': true"); goto done; }
        logprobs_n = lp ? top : -1;
    } else {
        if (ft__jv_int(body, "logprobs", 0, 20, -1, &logprobs_n, &err) < 0) { rc = bad(r, &err); goto done; }
        long best_of;
        if (ft__jv_int(body, "best_of", 1, 16, n, &best_of, &err) < 0) { rc = bad(r, &err); goto done; }
        if (best_of != n) { rc = unsupported(r, "best_of", " (other than equal to n)"); goto done; }
    }
    if (parse_stop(body, &g, &err) < 0) { rc = bad(r, &err); goto done; }
    if (chat ? parse_messages(body, &g, has_template, &err) < 0 : parse_prompt(body, &g, vocab, &err) < 0) {
        rc = bad(r, &err);
        goto done;
    }
    if (g.n_prompts * n > 64) {
        rc = ft__http_error(r, 400, "invalid_value", "n", "%d prompts x n = %ld completions: at most 64 per request", g.n_prompts, n);
        goto done;
    }
    g.n = (int)n;
    g.gp.max_new_tokens = (int)max_tokens;
    g.gp.temperature = (float)temperature;
    g.gp.top_p = (float)top_p;
    g.gp.top_k = (int)top_k;
    g.gp.repetition_penalty = (float)rep;
    g.seed_given = cJSON_GetObjectItemCaseSensitive(body, "seed") && !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(body, "seed"));
    g.seed = (uint64_t)seed;
    g.logprobs = (int)logprobs_n;
    rc = ft__http_generate(r, &g);
done:
    ft__gen_spec_free(&g);
    return rc;
}
