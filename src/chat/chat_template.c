/* chat_template.c — the public chat-template API (include/finetune/chat.h): loading templates from model
 * directories, binding the variables transformers passes (messages, bos/eos tokens,
 * add_generation_prompt, tools = documents = none, extra variables), rendering, and the assistant
 * spans used for loss masks. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "finetune/chat.h"
#include "finetune/fileio.h"
#include "finetune/status.h"
#include "core/json_util.h"

struct ft_chat_template {
    jtemplate *jt;
    char *source;     /* as given */
    char *bos, *eos;  /* NULL: undefined in the template */
    jpool vpool;      /* values of extra variables */
    jvar *extra;
    int nextra, capextra;
    int sym_messages, sym_agp, sym_bos, sym_eos, sym_tools, sym_documents;
    ft_chat_budget budget;
};

ft_chat_budget ft_chat_default_budget(void) {
    ft_chat_budget b = {10 * 1000 * 1000, (size_t)64 << 20, (size_t)128 << 20, 64};
    return b;
}

void ft_chat_template_set_budget(ft_chat_template *t, const ft_chat_budget *b) {
    ft_chat_budget d = ft_chat_default_budget();
    if (!b) { t->budget = d; return; }
    t->budget = *b;
    if (t->budget.max_ops <= 0) t->budget.max_ops = d.max_ops;
    if (t->budget.max_output == 0) t->budget.max_output = d.max_output;
    if (t->budget.max_memory == 0) t->budget.max_memory = d.max_memory;
    if (t->budget.max_depth <= 0) t->budget.max_depth = d.max_depth;
}

static char *dupstr(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

void ft_chat_template_free(ft_chat_template *t) {
    if (!t) return;
    ft__jtemplate_free(t->jt);
    free(t->source);
    free(t->bos);
    free(t->eos);
    ft__jpool_free(&t->vpool);
    free(t->extra);
    free(t);
}

int ft_chat_template_from_string(ft_chat_template **out, const char *source, const char *bos_token,
                                 const char *eos_token) {
    *out = NULL;
    if (!source) return ft_error(FT_ERR_INVALID, "chat template: source is NULL");
    ft_chat_template *t = calloc(1, sizeof *t);
    if (!t) return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
    t->source = dupstr(source);
    t->bos = dupstr(bos_token);
    t->eos = dupstr(eos_token);
    if (!t->source || (bos_token && !t->bos) || (eos_token && !t->eos)) {
        ft_chat_template_free(t);
        return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
    }
    t->budget = ft_chat_default_budget();
    int rc = ft__jtemplate_parse(&t->jt, source, strlen(source));
    if (rc) { ft_chat_template_free(t); return rc; }
    t->sym_messages = ft__jtemplate_sym(t->jt, "messages");
    t->sym_agp = ft__jtemplate_sym(t->jt, "add_generation_prompt");
    t->sym_bos = ft__jtemplate_sym(t->jt, "bos_token");
    t->sym_eos = ft__jtemplate_sym(t->jt, "eos_token");
    t->sym_tools = ft__jtemplate_sym(t->jt, "tools");
    t->sym_documents = ft__jtemplate_sym(t->jt, "documents");
    *out = t;
    return FT_OK;
}

int ft_chat_template_builtin(ft_chat_template **out, const char *name, const char *bos_token, const char *eos_token) {
    const char *src, *bos, *eos;
    *out = NULL;
    if (!ft__jchat_builtin_lookup(name, &src, &bos, &eos))
        return ft_error(FT_ERR_NOT_FOUND, "chat template: no built-in template named '%s' (chatml, llama2, llama3, "
                        "llama3.1, mistral, zephyr, alpaca)", name ? name : "(null)");
    return ft_chat_template_from_string(out, src, bos_token ? bos_token : bos, eos_token ? eos_token : eos);
}

const char *ft_chat_template_source(const ft_chat_template *t) { return t->source; }
const char *ft_chat_template_bos(const ft_chat_template *t) { return t->bos; }
const char *ft_chat_template_eos(const ft_chat_template *t) { return t->eos; }

/* ---- extra variables ---- */
static int set_var(ft_chat_template *t, const char *name, jv v) {
    if (!name || !*name) return ft_error(FT_ERR_INVALID, "chat template: variable name is empty");
    if (strcmp(name, "messages") == 0 || strcmp(name, "add_generation_prompt") == 0)
        return ft_error(FT_ERR_INVALID, "chat template: '%s' is set by ft_chat_render, not a variable", name);
    int sym = ft__jtemplate_sym(t->jt, name);
    if (sym < 0) return FT_OK; /* the template never reads it */
    for (int i = 0; i < t->nextra; i++)
        if (t->extra[i].sym == sym) { t->extra[i].v = v; return FT_OK; }
    if (t->nextra == t->capextra) {
        int cap = t->capextra ? t->capextra * 2 : 4;
        jvar *e = realloc(t->extra, sizeof(jvar) * (size_t)cap);
        if (!e) return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
        t->extra = e;
        t->capextra = cap;
    }
    t->extra[t->nextra].sym = sym;
    t->extra[t->nextra].v = v;
    t->nextra++;
    return FT_OK;
}

int ft_chat_template_set_string(ft_chat_template *t, const char *name, const char *value) {
    if (!value) return set_var(t, name, jv_none());
    char *s = ft__jpool_strdup(&t->vpool, value, strlen(value));
    if (!s) return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
    return set_var(t, name, jv_str(s, strlen(value)));
}

static int from_json(jpool *p, const cJSON *j, jv *out) {
    if (cJSON_IsNull(j)) { *out = jv_none(); return FT_OK; }
    if (cJSON_IsBool(j)) { *out = jv_bool(cJSON_IsTrue(j)); return FT_OK; }
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        *out = (d == floor(d) && fabs(d) < 9007199254740992.0) ? jv_int((int64_t)d) : jv_float(d);
        return FT_OK;
    }
    if (cJSON_IsString(j)) {
        size_t n = strlen(j->valuestring);
        char *s = ft__jpool_strdup(p, j->valuestring, n);
        if (!s) return FT_ERR_NOMEM;
        *out = jv_str(s, n);
        return FT_OK;
    }
    if (cJSON_IsArray(j)) {
        jlist *l = ft__jlist_new(p, cJSON_GetArraySize(j));
        if (!l) return FT_ERR_NOMEM;
        const cJSON *c;
        cJSON_ArrayForEach(c, j) FT_TRY(from_json(p, c, &l->v[l->n++]));
        *out = jv_none();
        out->t = JV_LIST;
        out->u.l = l;
        return FT_OK;
    }
    if (cJSON_IsObject(j)) {
        jdict *d = ft__jdict_new(p, cJSON_GetArraySize(j));
        if (!d) return FT_ERR_NOMEM;
        const cJSON *c;
        cJSON_ArrayForEach(c, j) {
            jv v;
            FT_TRY(from_json(p, c, &v));
            size_t n = strlen(c->string);
            char *k = ft__jpool_strdup(p, c->string, n);
            if (!k || ft__jdict_set(p, d, (jstr){k, n}, v)) return FT_ERR_NOMEM;
        }
        *out = jv_none();
        out->t = JV_DICT;
        out->u.d = d;
        return FT_OK;
    }
    return FT_ERR_FORMAT;
}

int ft_chat_template_set_json(ft_chat_template *t, const char *name, const char *json) {
    cJSON *j = json ? cJSON_Parse(json) : NULL;
    if (!j) return ft_error(FT_ERR_FORMAT, "chat template: variable '%s': invalid JSON value", name ? name : "");
    jv v;
    int rc = from_json(&t->vpool, j, &v);
    cJSON_Delete(j);
    if (rc == FT_ERR_NOMEM) return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
    if (rc) return ft_error(rc, "chat template: variable '%s': unsupported JSON value", name);
    return set_var(t, name, v);
}

/* ---- rendering ---- */
static int render_buf(const ft_chat_template *t, const ft_chat_msg *msgs, int n, int agp, ft__sb *out, jspan **gens,
                      int *ngens) {
    if (n < 0 || (n > 0 && !msgs)) return ft_error(FT_ERR_INVALID, "chat template: bad message array");
    if (!out->p && ft__sb_put(out, "", 0)) return ft_error(FT_ERR_NOMEM, "chat template: out of memory");
    jpool pool = {0};
    int rc = FT_OK;
    jlist *l = ft__jlist_new(&pool, n);
    if (!l) { rc = ft_error(FT_ERR_NOMEM, "chat template: out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        if (!msgs[i].role) { rc = ft_error(FT_ERR_INVALID, "chat template: message %d has no role", i); goto done; }
        jdict *d = ft__jdict_new(&pool, 2);
        if (!d) { rc = ft_error(FT_ERR_NOMEM, "chat template: out of memory"); goto done; }
        ft__jdict_set(&pool, d, (jstr){"role", 4}, jv_str(msgs[i].role, strlen(msgs[i].role)));
        if (msgs[i].content) ft__jdict_set(&pool, d, (jstr){"content", 7}, jv_str(msgs[i].content, strlen(msgs[i].content)));
        l->v[i] = jv_none();
        l->v[i].t = JV_DICT;
        l->v[i].u.d = d;
    }
    l->n = n;
    jvar vars[6];
    int nv = 0;
    vars[nv].sym = t->sym_messages; vars[nv].v = jv_none(); vars[nv].v.t = JV_LIST; vars[nv].v.u.l = l; nv++;
    vars[nv].sym = t->sym_agp; vars[nv].v = jv_bool(agp); nv++;
    vars[nv].sym = t->sym_tools; vars[nv].v = jv_none(); nv++;
    vars[nv].sym = t->sym_documents; vars[nv].v = jv_none(); nv++;
    if (t->bos) { vars[nv].sym = t->sym_bos; vars[nv].v = jv_str(t->bos, strlen(t->bos)); nv++; }
    if (t->eos) { vars[nv].sym = t->sym_eos; vars[nv].v = jv_str(t->eos, strlen(t->eos)); nv++; }
    if (t->nextra == 0) {
        rc = ft__jtemplate_render(t->jt, vars, nv, &pool, out, gens, ngens, &t->budget);
    } else {
        jvar *all = malloc(sizeof(jvar) * (size_t)(nv + t->nextra));
        if (!all) { rc = ft_error(FT_ERR_NOMEM, "chat template: out of memory"); goto done; }
        memcpy(all, vars, sizeof(jvar) * (size_t)nv);
        memcpy(all + nv, t->extra, sizeof(jvar) * (size_t)t->nextra); /* later bindings win */
        rc = ft__jtemplate_render(t->jt, all, nv + t->nextra, &pool, out, gens, ngens, &t->budget);
        free(all);
    }
done:
    ft__jpool_free(&pool);
    return rc;
}

static int finish(ft__sb *b, int rc, char **out, size_t *len) {
    if (rc == FT_OK && !b->p && ft__sb_put(b, "", 0)) rc = ft_error(FT_ERR_NOMEM, "chat template: out of memory");
    if (rc) {
        ft__sb_free(b);
        *out = NULL;
        if (len) *len = 0;
        return rc;
    }
    *out = b->p;
    if (len) *len = b->n;
    return FT_OK;
}

int ft_chat_render(const ft_chat_template *t, const ft_chat_msg *msgs, int n, int add_generation_prompt, char **out,
                   size_t *len) {
    ft__sb b = {0};
    int rc = render_buf(t, msgs, n, add_generation_prompt, &b, NULL, NULL);
    return finish(&b, rc, out, len);
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static int prefix_error(int i, int with_prompt, const ft__sb *a, const ft__sb *b) {
    size_t k = 0;
    while (k < a->n && k < b->n && a->p[k] == b->p[k]) k++;
    if (with_prompt)
        return ft_error(FT_ERR_UNSUPPORTED,
                        "chat template: cannot derive the span of assistant message %d: the text of messages[0..%d) "
                        "with the generation prompt is not a prefix of the text with message %d (they differ at byte "
                        "%zu); this template rewrites earlier turns (add {%% generation %%} blocks to it)", i, i, i, k);
    return ft_error(FT_ERR_UNSUPPORTED,
                    "chat template: cannot derive the span of assistant message %d: the text of messages[0..%d] is not "
                    "a prefix of the whole conversation (they differ at byte %zu); this template rewrites earlier "
                    "turns (add {%% generation %%} blocks to it)", i, i, k);
}

int ft_chat_render_spans(const ft_chat_template *t, const ft_chat_msg *msgs, int n, int add_generation_prompt,
                         char **out, size_t *len, ft_span **spans, int *nspans) {
    ft__sb full = {0};
    jspan *gens = NULL;
    int ngens = 0;
    *spans = NULL;
    *nspans = 0;
    int rc = render_buf(t, msgs, n, add_generation_prompt, &full, t->jt->has_generation ? &gens : NULL, &ngens);
    if (rc) return finish(&full, rc, out, len);
    int nasst = 0;
    for (int i = 0; i < n; i++) nasst += strcmp(msgs[i].role, "assistant") == 0;
    ft_span *sp = NULL;
    int nsp = 0;
    if (t->jt->has_generation) {
        /* transformers' return_assistant_tokens_mask: the ranges of the {% generation %} blocks */
        sp = malloc(sizeof *sp * (size_t)(ngens ? ngens : 1));
        if (!sp) { free(gens); return finish(&full, ft_error(FT_ERR_NOMEM, "chat template: out of memory"), out, len); }
        int k = 0;
        for (int g = 0; g < ngens; g++) {
            int msg = -1;
            if (ngens == nasst) {
                while (k < n && strcmp(msgs[k].role, "assistant") != 0) k++;
                msg = k++;
            }
            sp[nsp++] = (ft_span){gens[g].start, gens[g].end, msg};
        }
        free(gens);
        *spans = sp;
        *nspans = nsp;
        return finish(&full, FT_OK, out, len);
    }
    sp = malloc(sizeof *sp * (size_t)(nasst ? nasst : 1));
    if (!sp) return finish(&full, ft_error(FT_ERR_NOMEM, "chat template: out of memory"), out, len);
    ft__sb a = {0}, b = {0};
    for (int i = 0; i < n && rc == FT_OK; i++) {
        if (strcmp(msgs[i].role, "assistant") != 0) continue;
        a.n = b.n = 0;
        rc = render_buf(t, msgs, i, 1, &a, NULL, NULL);
        if (rc == FT_OK) rc = render_buf(t, msgs, i + 1, 0, &b, NULL, NULL);
        if (rc) {
            rc = ft_error_wrap(rc, "chat template: rendering messages[0..%d] for the span of assistant message %d", i, i);
            break;
        }
        if (a.n > b.n || (a.n && memcmp(a.p, b.p, a.n) != 0)) { rc = prefix_error(i, 1, &a, &b); break; }
        if (b.n > full.n || (b.n && memcmp(b.p, full.p, b.n) != 0)) { rc = prefix_error(i, 0, &b, &full); break; }
        size_t start = a.n, end = b.n, min_end = start;
        /* keep the content itself whole (it may end in whitespace); trim whitespace after it */
        const char *c = msgs[i].content ? msgs[i].content : "";
        size_t cn = strlen(c);
        const char *hit = cn ? memmem(b.p + start, end - start, c, cn) : NULL;
        if (hit) {
            min_end = (size_t)(hit - b.p) + cn;
        } else if (cn) {
            size_t s0 = 0, s1 = cn;
            int32_t cp;
            while (s0 < s1) { int k = ft__utf8_next(c, cn, s0, &cp); if (!ft__jpy_isspace(cp)) break; s0 += (size_t)k; }
            while (s1 > s0) {
                size_t q = s1 - 1;
                while (q > s0 && ((unsigned char)c[q] & 0xc0) == 0x80) q--;
                ft__utf8_next(c, s1, q, &cp);
                if (!ft__jpy_isspace(cp)) break;
                s1 = q;
            }
            if (s1 > s0 && (hit = memmem(b.p + start, end - start, c + s0, s1 - s0)) != NULL)
                min_end = (size_t)(hit - b.p) + (s1 - s0);
        }
        while (end > min_end && is_ws(b.p[end - 1])) end--;
        sp[nsp++] = (ft_span){start, end, i};
    }
    ft__sb_free(&a);
    ft__sb_free(&b);
    if (rc) { free(sp); return finish(&full, rc, out, len); }
    *spans = sp;
    *nspans = nsp;
    return finish(&full, FT_OK, out, len);
}

/* ---- loading from a model directory ---- */
static int read_json_file(const char *dir, const char *name, cJSON **out) {
    char path[4096];
    *out = NULL;
    FT_TRY(ft_path_join(path, sizeof path, dir, name));
    if (!ft_path_exists(path)) return FT_ERR_NOT_FOUND;
    char *text;
    size_t n;
    FT_TRY(ft_file_read_all(path, &text, &n));
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) return ft_error(FT_ERR_FORMAT, "%s: invalid JSON", path);
    *out = j;
    return FT_OK;
}

/* a token entry: "text", {"content": "text", ...} or null */
static const char *token_of(const cJSON *cfg, const char *key) {
    return ft__json_token_text(cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL);
}

int ft_chat_template_load(ft_chat_template **out, const char *model_dir) {
    *out = NULL;
    char path[4096];
    char *jinja = NULL;
    cJSON *cfg = NULL, *stm = NULL, *ctj = NULL;
    const char *src = NULL;
    int rc = ft_path_join(path, sizeof path, model_dir, "chat_template.jinja");
    if (rc) return rc;
    if (ft_path_exists(path)) {
        size_t n;
        FT_TRY(ft_file_read_all(path, &jinja, &n));
        src = jinja;
    }
    rc = read_json_file(model_dir, "tokenizer_config.json", &cfg);
    if (rc < 0 && rc != FT_ERR_NOT_FOUND) goto done;
    rc = FT_OK;
    if (!src && cfg) {
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        if (cJSON_IsString(ct)) {
            src = ct->valuestring;
        } else if (cJSON_IsArray(ct)) {
            const cJSON *e;
            char names[512] = "";
            cJSON_ArrayForEach(e, ct) {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
                const cJSON *tp = cJSON_GetObjectItemCaseSensitive(e, "template");
                if (!cJSON_IsString(nm) || !cJSON_IsString(tp)) continue;
                if (strcmp(nm->valuestring, "default") == 0) { src = tp->valuestring; break; }
                if (strlen(names) + strlen(nm->valuestring) + 3 < sizeof names) {
                    if (names[0]) strcat(names, ", ");
                    strcat(names, nm->valuestring);
                }
            }
            if (!src) {
                rc = ft_error(FT_ERR_NOT_FOUND, "%s/tokenizer_config.json: chat_template lists no \"default\" template (has: %s)",
                              model_dir, names[0] ? names : "none");
                goto done;
            }
        } else if (ct && !cJSON_IsNull(ct)) {
            rc = ft_error(FT_ERR_FORMAT, "%s/tokenizer_config.json: chat_template is neither a string nor a list", model_dir);
            goto done;
        }
    }
    if (!src) {
        rc = read_json_file(model_dir, "chat_template.json", &ctj);
        if (rc < 0 && rc != FT_ERR_NOT_FOUND) goto done;
        rc = FT_OK;
        const cJSON *ct = ctj ? cJSON_GetObjectItemCaseSensitive(ctj, "chat_template") : NULL;
        if (cJSON_IsString(ct)) src = ct->valuestring;
    }
    if (!src) {
        rc = ft_error(FT_ERR_NOT_FOUND, "%s: no chat template (chat_template.jinja, tokenizer_config.json \"chat_template\" "
                      "or chat_template.json)", model_dir);
        goto done;
    }
    const char *bos = token_of(cfg, "bos_token"), *eos = token_of(cfg, "eos_token");
    if ((!bos || !eos) && read_json_file(model_dir, "special_tokens_map.json", &stm) == FT_OK) {
        if (!bos && !(cfg && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token")))) bos = token_of(stm, "bos_token");
        if (!eos && !(cfg && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "eos_token")))) eos = token_of(stm, "eos_token");
    }
    ft_error_clear();
    rc = ft_chat_template_from_string(out, src, bos, eos);
    if (rc) rc = ft_error_wrap(rc, "%s", model_dir);
done:
    free(jinja);
    cJSON_Delete(cfg);
    cJSON_Delete(stm);
    cJSON_Delete(ctj);
    return rc;
}
