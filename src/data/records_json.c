/* records_json.c — one JSON record (a cJSON value) -> one record of messages.
 *
 * The first record of a file decides its format when the options say FT_DATA_AUTO (by its keys:
 * messages -> chat, conversations -> sharegpt, instruction/output -> alpaca, prompt/completion ->
 * prompt-completion, dialogue/turns or a bare list -> dialogue, text or a bare string -> text).
 * Later records must have that format's fields; one that does not is dropped naming the field. */
#include "data/data_internal.h"
#include "core/json_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DROP_MISSING(field, ...) ft__data_drop_record(c, FT_DROP_MISSING_FIELD, line, index, field, __VA_ARGS__)

/* 1 string, 0 absent (or null), -1 another type */
static int get_str(const cJSON *o, const char *key, const char **s, size_t *n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *s = "";
    *n = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return -1;
    *s = v->valuestring;
    *n = strlen(v->valuestring);
    return 1;
}


static void key_list(const cJSON *o, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        if (!it->string) continue;
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", it->string);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

static ft_data_format detect(const cJSON *v) {
    if (cJSON_IsString(v)) return FT_DATA_TEXT;
    if (cJSON_IsArray(v)) return FT_DATA_DIALOGUE;
    if (!cJSON_IsObject(v)) return FT_DATA_AUTO;
    if (cJSON_HasObjectItem(v, "messages")) return FT_DATA_CHAT;
    if (cJSON_HasObjectItem(v, "conversations")) return FT_DATA_SHAREGPT;
    if (cJSON_HasObjectItem(v, "instruction") || cJSON_HasObjectItem(v, "output")) return FT_DATA_ALPACA;
    if (cJSON_HasObjectItem(v, "prompt") || cJSON_HasObjectItem(v, "completion")) return FT_DATA_PROMPT_COMPLETION;
    if (cJSON_HasObjectItem(v, "dialogue") || cJSON_HasObjectItem(v, "turns")) return FT_DATA_DIALOGUE;
    if (cJSON_HasObjectItem(v, "text")) return FT_DATA_TEXT;
    return FT_DATA_AUTO;
}

/* Role names of chat / sharegpt / dialogue objects -> role; -1 unknown. */
static int role_of(const char *s) {
    static const struct { const char *name; int role; } map[] = {
        {"system", FT_ROLE_SYSTEM},       {"user", FT_ROLE_USER},           {"human", FT_ROLE_USER},
        {"assistant", FT_ROLE_ASSISTANT}, {"gpt", FT_ROLE_ASSISTANT},       {"model", FT_ROLE_ASSISTANT},
        {"bot", FT_ROLE_ASSISTANT},       {"chatgpt", FT_ROLE_ASSISTANT},   {"function_call", FT_ROLE_ASSISTANT},
        {"tool", FT_ROLE_TOOL},           {"observation", FT_ROLE_TOOL},    {"function", FT_ROLE_TOOL},
        {"ipython", FT_ROLE_TOOL},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].name, s) == 0) return map[i].role;
    return -1;
}

/* text of a message's content: a string, or a list of {"type":"text","text":..} parts joined.
 * Returns 1 (text in *tmp, malloc'd, or NULL meaning v->valuestring), 2 wrong type, < 0 error. */
static int content_text(ft_data_ctx *c, const cJSON *v, char **tmp, size_t *n) {
    *tmp = NULL;
    if (cJSON_IsString(v)) { *n = strlen(v->valuestring); return 1; }
    if (!cJSON_IsArray(v)) return 2;
    size_t total = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, v) {
        const char *s; size_t len;
        if (cJSON_IsString(p)) total += strlen(p->valuestring);
        else if (get_str(p, "text", &s, &len) == 1) total += len;
        else return 2;
    }
    char *buf = malloc(total + 1);
    if (!buf) return ft_error(FT_ERR_NOMEM, "%s: out of memory", c->path);
    size_t o = 0;
    cJSON_ArrayForEach(p, v) {
        const char *s; size_t len;
        if (cJSON_IsString(p)) { s = p->valuestring; len = strlen(s); }
        else get_str(p, "text", &s, &len);
        memcpy(buf + o, s, len);
        o += len;
    }
    buf[o] = 0;
    *tmp = buf;
    *n = o;
    return 1;
}

/* messages of chat ("messages": role/content) or sharegpt ("conversations": from/value) */
static int read_messages(ft_data_ctx *c, const cJSON *list, const char *lname, const char *rkey, const char *ckey,
                         int line, int64_t index) {
    ft_recs *rs = c->rs;
    int k = 0;
    const cJSON *m;
    char field[96];
    cJSON_ArrayForEach(m, list) {
        if (!cJSON_IsObject(m)) {
            snprintf(field, sizeof field, "%s[%d]", lname, k);
            ft__recs_cancel(rs);
            return DROP_MISSING(field, "expected an object with \"%s\" and \"%s\", found %s", rkey, ckey, ft__json_type_name(m));
        }
        const char *rname; size_t rlen;
        int got = get_str(m, rkey, &rname, &rlen);
        if (got != 1) {  /* sharegpt files sometimes use role/content inside conversations */
            if (strcmp(rkey, "from") == 0) got = get_str(m, "role", &rname, &rlen);
            if (got != 1) {
                snprintf(field, sizeof field, "%s[%d].%s", lname, k, rkey);
                ft__recs_cancel(rs);
                return DROP_MISSING(field, got < 0 ? "expected a string" : "missing");
            }
        }
        int role = role_of(rname);
        if (role < 0) {
            snprintf(field, sizeof field, "%s[%d].%s", lname, k, rkey);
            ft__recs_cancel(rs);
            return DROP_MISSING(field, "unknown role '%.40s' (system, user/human, assistant/gpt, tool/observation)", rname);
        }
        const cJSON *cv = cJSON_GetObjectItemCaseSensitive(m, ckey);
        if (!cv && strcmp(ckey, "value") == 0) cv = cJSON_GetObjectItemCaseSensitive(m, "content");
        snprintf(field, sizeof field, "%s[%d].%s", lname, k, ckey);
        char *tmp; size_t n = 0;
        int ok = cv ? content_text(c, cv, &tmp, &n) : 0;
        if (ok < 0) { ft__recs_cancel(rs); return ok; }
        if (ok != 1) {
            ft__recs_cancel(rs);
            return DROP_MISSING(field, cv ? "expected a string, found %s" : "missing", ft__json_type_name(cv));
        }
        int rc = ft__recs_msg(rs, role, role == FT_ROLE_SYSTEM ? FT_MSGF_OPTIONAL : 0, field, NULL, 0,
                             tmp ? tmp : cv->valuestring, n);
        free(tmp);
        FT_TRY(rc);
        k++;
    }
    return FT_OK;
}

static int rec_chat(ft_data_ctx *c, const cJSON *v, int line, int64_t index, int sharegpt) {
    const char *lname = sharegpt ? "conversations" : "messages";
    const cJSON *list = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, lname) : NULL;
    if (!cJSON_IsArray(list))
        return DROP_MISSING(lname, list ? "expected a list, found %s" : "missing", ft__json_type_name(list));
    FT_TRY(ft__recs_begin(c->rs, FT_REC_CHAT, c->file, line, index));
    int64_t rec = c->rs->n - 1;
    const char *sys; size_t sl;
    if (get_str(v, "system", &sys, &sl) == 1 && sl)
        FT_TRY(ft__recs_msg(c->rs, FT_ROLE_SYSTEM, FT_MSGF_OPTIONAL, "system", NULL, 0, sys, sl));
    int64_t before = c->rs->n;
    FT_TRY(read_messages(c, list, lname, sharegpt ? "from" : "role", sharegpt ? "value" : "content", line, index));
    if (c->rs->n != before) return FT_OK;  /* dropped (cancelled) */
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(v, "chosen");
    if (chosen) {
        const char *s; size_t n;
        int got = cJSON_IsString(chosen) ? (s = chosen->valuestring, n = strlen(s), 1)
                                         : get_str(chosen, sharegpt ? "value" : "content", &s, &n);
        if (got != 1) {
            ft__recs_cancel(c->rs);
            return DROP_MISSING("chosen", "expected a message or a string");
        }
        FT_TRY(ft__recs_msg(c->rs, FT_ROLE_ASSISTANT, 0, "chosen", NULL, 0, s, n));
    }
    if (c->rs->recs[rec].nmsg == 0) {
        ft__recs_cancel(c->rs);
        return ft__data_drop_record(c, FT_DROP_EMPTY, line, index, lname, "no messages");
    }
    return FT_OK;
}

static int rec_pc(ft_data_ctx *c, const cJSON *v, int line, int64_t index) {
    const char *p, *q; size_t pn, qn;
    int gp = cJSON_IsObject(v) ? get_str(v, "prompt", &p, &pn) : 0;
    int gq = cJSON_IsObject(v) ? get_str(v, "completion", &q, &qn) : 0;
    if (gp != 1) return DROP_MISSING("prompt", gp < 0 ? "expected a string" : "missing");
    if (gq != 1) return DROP_MISSING("completion", gq < 0 ? "expected a string" : "missing");
    FT_TRY(ft__recs_begin(c->rs, FT_REC_PC, c->file, line, index));
    FT_TRY(ft__recs_msg(c->rs, FT_ROLE_USER, FT_MSGF_OPTIONAL | FT_MSGF_KEEP_TRAIL, "prompt", NULL, 0, p, pn));
    return ft__recs_msg(c->rs, FT_ROLE_ASSISTANT, FT_MSGF_KEEP_LEAD, "completion", NULL, 0, q, qn);
}

static int rec_alpaca(ft_data_ctx *c, const cJSON *v, int line, int64_t index) {
    if (!cJSON_IsObject(v)) return DROP_MISSING("instruction", "expected an object, found %s", ft__json_type_name(v));
    const char *ins, *inp = "", *out, *sys; size_t insn, inpn = 0, outn, sysn;
    int gi = get_str(v, "instruction", &ins, &insn);
    int gn = get_str(v, "input", &inp, &inpn);
    int go = get_str(v, "output", &out, &outn);
    if (gi != 1) return DROP_MISSING("instruction", gi < 0 ? "expected a string" : "missing");
    if (gn < 0) return DROP_MISSING("input", "expected a string");
    if (go != 1) return DROP_MISSING("output", go < 0 ? "expected a string" : "missing");
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(v, "history");
    if (hist && !cJSON_IsNull(hist) && !cJSON_IsArray(hist)) return DROP_MISSING("history", "expected a list of [instruction, output] pairs");
    /* check the history before adding anything */
    int k = 0;
    const cJSON *h;
    char field[64];
    if (cJSON_IsArray(hist)) cJSON_ArrayForEach(h, hist) {
        if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) != 2 || !cJSON_IsString(cJSON_GetArrayItem(h, 0)) ||
            !cJSON_IsString(cJSON_GetArrayItem(h, 1))) {
            snprintf(field, sizeof field, "history[%d]", k);
            return DROP_MISSING(field, "expected a pair [instruction, output] of strings");
        }
        k++;
    }
    FT_TRY(ft__recs_begin(c->rs, FT_REC_ALPACA, c->file, line, index));
    if (get_str(v, "system", &sys, &sysn) == 1 && sysn)
        FT_TRY(ft__recs_msg(c->rs, FT_ROLE_SYSTEM, FT_MSGF_OPTIONAL, "system", NULL, 0, sys, sysn));
    k = 0;
    if (cJSON_IsArray(hist)) cJSON_ArrayForEach(h, hist) {
        const char *a = cJSON_GetArrayItem(h, 0)->valuestring, *b = cJSON_GetArrayItem(h, 1)->valuestring;
        snprintf(field, sizeof field, "history[%d][0]", k);
        FT_TRY(ft__recs_msg(c->rs, FT_ROLE_USER, 0, field, NULL, 0, a, strlen(a)));
        snprintf(field, sizeof field, "history[%d][1]", k);
        FT_TRY(ft__recs_msg(c->rs, FT_ROLE_ASSISTANT, 0, field, NULL, 0, b, strlen(b)));
        k++;
    }
    FT_TRY(ft__recs_msg(c->rs, FT_ROLE_USER, 0, "instruction", NULL, 0, ins, insn));
    FT_TRY(ft__recs_msg(c->rs, FT_ROLE_INPUT, FT_MSGF_OPTIONAL, "input", NULL, 0, inp, inpn));
    return ft__recs_msg(c->rs, FT_ROLE_ASSISTANT, 0, "output", NULL, 0, out, outn);
}

static int rec_text(ft_data_ctx *c, const cJSON *v, int line, int64_t index) {
    const char *s; size_t n;
    int g;
    if (cJSON_IsString(v)) { s = v->valuestring; n = strlen(s); g = 1; }
    else g = cJSON_IsObject(v) ? get_str(v, "text", &s, &n) : -1;
    if (g != 1) return DROP_MISSING("text", g < 0 ? "expected a string or {\"text\": ...}" : "missing");
    FT_TRY(ft__recs_begin(c->rs, FT_REC_TEXT, c->file, line, index));
    return ft__recs_msg(c->rs, FT_ROLE_TEXT, 0, "text", NULL, 0, s, n);
}

static int rec_dialogue(ft_data_ctx *c, const cJSON *v, int line, int64_t index) {
    const cJSON *turns = v;
    const char *lname = "dialogue";
    if (cJSON_IsObject(v)) {
        turns = cJSON_GetObjectItemCaseSensitive(v, "dialogue");
        if (!turns) { turns = cJSON_GetObjectItemCaseSensitive(v, "turns"); lname = "turns"; }
        if (!turns) return DROP_MISSING("dialogue", "missing (neither \"dialogue\" nor \"turns\")");
    }
    if (cJSON_IsString(turns)) {  /* speaker-labelled text: split into turns once the file is read */
        FT_TRY(ft__recs_begin(c->rs, FT_REC_DIALOGUE_RAW, c->file, line, index));
        return ft__recs_msg(c->rs, FT_ROLE_TURN, 0, lname, NULL, 0, turns->valuestring, strlen(turns->valuestring));
    }
    if (!cJSON_IsArray(turns))
        return DROP_MISSING(lname, "expected a list of turns or a string, found %s", ft__json_type_name(turns));
    if (v == turns) lname = "";
    FT_TRY(ft__recs_begin(c->rs, FT_REC_DIALOGUE, c->file, line, index));
    const char *const *spk = c->opt->speakers;
    /* plain strings that all start with "Name: " carry their own speakers */
    int labelled = 1, strings = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, turns) {
        if (!cJSON_IsString(t)) continue;
        strings++;
        labelled &= ft__data_label_at(t->valuestring, 0, strlen(t->valuestring)) > 0;
    }
    labelled &= strings > 0;
    int k = 0;
    char field[96];
    cJSON_ArrayForEach(t, turns) {
        const char *name = spk[k % 2], *text;
        size_t nn = strlen(name), tn;
        if (cJSON_IsString(t)) {
            text = t->valuestring;
            tn = strlen(text);
            if (labelled) {
                nn = (size_t)ft__data_label_at(text, 0, tn);
                name = text;
                text += nn + 1;
                tn -= nn + 1;
                while (tn > 0 && (*text == ' ' || *text == '\n')) { text++; tn--; }
            }
            snprintf(field, sizeof field, "%s[%d]", lname, k);
        } else if (cJSON_IsObject(t)) {
            static const char *nkeys[] = {"speaker", "name", "role", "from"};
            static const char *tkeys[] = {"text", "utterance", "content", "value"};
            for (int i = 0; i < 4; i++) {
                const char *s; size_t n;
                if (get_str(t, nkeys[i], &s, &n) == 1) { name = s; nn = n; break; }
            }
            int got = 0;
            for (int i = 0; i < 4 && got != 1; i++) {
                got = get_str(t, tkeys[i], &text, &tn);
                snprintf(field, sizeof field, "%s[%d].%s", lname, k, tkeys[i]);
                if (got < 0) break;
            }
            if (got != 1) {
                if (got == 0) snprintf(field, sizeof field, "%s[%d].text", lname, k);
                ft__recs_cancel(c->rs);
                return DROP_MISSING(field, got < 0 ? "expected a string" : "missing (text, utterance, content or value)");
            }
        } else {
            snprintf(field, sizeof field, "%s[%d]", lname, k);
            ft__recs_cancel(c->rs);
            return DROP_MISSING(field, "expected a string or a {\"speaker\", \"text\"} object, found %s", ft__json_type_name(t));
        }
        FT_TRY(ft__recs_msg(c->rs, FT_ROLE_TURN, 0, field, name, nn, text, tn));
        k++;
    }
    if (k == 0) {
        ft__recs_cancel(c->rs);
        return ft__data_drop_record(c, FT_DROP_EMPTY, line, index, lname[0] ? lname : NULL, "no turns");
    }
    return FT_OK;
}

int ft__data_json_record(ft_data_ctx *c, const void *vp, int line, int64_t index) {
    const cJSON *v = vp;
    ft_data_format f = c->format;
    if (f == FT_DATA_AUTO) {
        f = detect(v);
        if (f == FT_DATA_AUTO) {
            char keys[256];
            if (cJSON_IsObject(v)) key_list(v, keys, sizeof keys);
            else snprintf(keys, sizeof keys, "%s", ft__json_type_name(v));
            return ft_error(FT_ERR_FORMAT, "%s: line %d: record %lld: cannot tell the dataset format from this record "
                            "(keys: %s); expected messages, conversations, instruction/output, prompt/completion, "
                            "dialogue/turns or text — or name it with --format", c->path, line, (long long)index, keys);
        }
        c->format = f;
        c->rs->file_format[c->file] = f;
    }
    switch (f) {
    case FT_DATA_CHAT: return rec_chat(c, v, line, index, 0);
    case FT_DATA_SHAREGPT: return rec_chat(c, v, line, index, 1);
    case FT_DATA_PROMPT_COMPLETION: return rec_pc(c, v, line, index);
    case FT_DATA_ALPACA: return rec_alpaca(c, v, line, index);
    case FT_DATA_DIALOGUE: return rec_dialogue(c, v, line, index);
    case FT_DATA_TEXT: return rec_text(c, v, line, index);
    default:
        return ft_error(FT_ERR_INVALID, "%s: format '%s' is not a JSON format", c->path, ft_data_format_name(f));
    }
}
