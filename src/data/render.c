/* render.c — one record -> the text the model sees, plus the byte ranges it learns.
 *
 *   text / CSV text     the text
 *   dialogue            "Name: text\n" per turn (a turn without a name: "text\n")
 *   chat, sharegpt      the chat template, or speaker format with System/User/Assistant/Tool
 *   prompt-completion   the chat template (user, assistant), or prompt + completion as they are
 *   alpaca              the chat template (user = instruction [+ "\n\n" + input]), or the Stanford layout
 * Learned ranges under COMPLETION: assistant contents (with the "\n" that ends a speaker-format turn,
 * or the template's end-of-turn text), the completion, the output, the response speaker's turns. */
#include "data/data_internal.h"
#include "finetune/chat.h"
#include "core/strbuf.h"

#include <stdlib.h>
#include <string.h>

static const char ALPACA_PRE_INPUT[] =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.";
static const char ALPACA_PRE_NO_INPUT[] =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

void ft__render_free(ft_render *r) {
    free(r->text);
    free(r->spans);
    memset(r, 0, sizeof *r);
}

/* appends through the core string builder (text, len, cap are its p, n, cap) */
static int put(ft_render *r, const char *s, size_t n) {
    ft__sb b = {r->text, r->len, r->cap, FT_OK, 0};
    int rc = ft__sb_put(&b, s, n);
    r->text = b.p;
    r->len = b.n;
    r->cap = b.cap;
    return rc ? ft_error(rc, "data: out of memory (rendering)") : FT_OK;
}
static int puts_(ft_render *r, const char *s) { return put(r, s, strlen(s)); }

/* marks [s, e) learned, merging with the previous range when they touch */
static int learn(ft_render *r, size_t s, size_t e) {
    if (e <= s) return FT_OK;
    if (r->nspans > 0 && r->spans[r->nspans - 1].e >= (int64_t)s) {
        if (r->spans[r->nspans - 1].e < (int64_t)e) r->spans[r->nspans - 1].e = (int64_t)e;
        return FT_OK;
    }
    FT_TRY(ft__data_reserve((void **)&r->spans, sizeof *r->spans, r->nspans + 1, &r->spans_cap));
    r->spans[r->nspans].s = (int64_t)s;
    r->spans[r->nspans].e = (int64_t)e;
    r->nspans++;
    return FT_OK;
}

/* appends text and learns it when `learned` */
static int put_learn(ft_render *r, const char *s, size_t n, int learned) {
    size_t a = r->len;
    FT_TRY(put(r, s, n));
    return learned ? learn(r, a, r->len) : FT_OK;
}

ft_train_on ft__data_resolve_train_on(ft_train_on t, int kind) {
    if (t != FT_TRAIN_ON_AUTO) return t;
    return kind == FT_REC_TEXT || kind == FT_REC_DIALOGUE || kind == FT_REC_DIALOGUE_RAW ? FT_TRAIN_ON_ALL
                                                                                           : FT_TRAIN_ON_COMPLETION;
}

#define MTEXT(m) (rs->pool + (m)->text), ((size_t)(m)->text_len)

static int render_dialogue(ft_render *out, const ft_recs *rs, const ft_rec *x, int completion, const char *resp) {
    const ft_rmsg *last = &rs->msgs[x->msg0 + x->nmsg - 1];
    const char *rname = resp;
    size_t rlen = resp ? strlen(resp) : 0;
    int r_unnamed = 0;
    if (!resp) {
        if (last->name >= 0) { rname = rs->pool + last->name; rlen = (size_t)last->name_len; }
        else r_unnamed = 1;
    }
    for (int32_t k = 0; k < x->nmsg; k++) {
        const ft_rmsg *m = &rs->msgs[x->msg0 + k];
        size_t turn_start = out->len;
        int is_resp;
        if (m->name >= 0) {
            FT_TRY(put(out, rs->pool + m->name, (size_t)m->name_len));
            FT_TRY(puts_(out, ": "));
            is_resp = !r_unnamed && rname && (size_t)m->name_len == rlen && memcmp(rs->pool + m->name, rname, rlen) == 0;
        } else {
            is_resp = r_unnamed;
        }
        size_t a = out->len;
        FT_TRY(put(out, MTEXT(m)));
        FT_TRY(puts_(out, "\n"));
        if (!completion) FT_TRY(learn(out, turn_start, out->len));
        else if (is_resp) FT_TRY(learn(out, a, out->len));
    }
    return FT_OK;
}

static const char *role_label(int role) {
    switch (role) {
    case FT_ROLE_SYSTEM: return "System";
    case FT_ROLE_USER: return "User";
    case FT_ROLE_ASSISTANT: return "Assistant";
    case FT_ROLE_TOOL: return "Tool";
    default: return "User";
    }
}

static int render_chat_plain(ft_render *out, const ft_recs *rs, const ft_rec *x, int completion) {
    for (int32_t k = 0; k < x->nmsg; k++) {
        const ft_rmsg *m = &rs->msgs[x->msg0 + k];
        FT_TRY(puts_(out, role_label(m->role)));
        FT_TRY(puts_(out, ": "));
        size_t a = out->len;
        FT_TRY(put(out, MTEXT(m)));
        FT_TRY(puts_(out, "\n"));
        if (!completion) FT_TRY(learn(out, 0, out->len));
        else if (m->role == FT_ROLE_ASSISTANT) FT_TRY(learn(out, a, out->len));
    }
    return FT_OK;
}

static int render_alpaca_plain(ft_render *out, const ft_recs *rs, const ft_rec *x, int completion) {
    const ft_rmsg *sys = NULL, *input = NULL;
    for (int32_t k = 0; k < x->nmsg; k++) {
        const ft_rmsg *m = &rs->msgs[x->msg0 + k];
        if (m->role == FT_ROLE_SYSTEM) sys = m;
        if (m->role == FT_ROLE_INPUT && m->text_len > 0) input = m;
    }
    if (sys) FT_TRY(put(out, MTEXT(sys)));
    else FT_TRY(puts_(out, input ? ALPACA_PRE_INPUT : ALPACA_PRE_NO_INPUT));
    FT_TRY(puts_(out, "\n\n"));
    for (int32_t k = 0; k < x->nmsg; k++) {
        const ft_rmsg *m = &rs->msgs[x->msg0 + k];
        switch (m->role) {
        case FT_ROLE_USER:
            FT_TRY(puts_(out, "### Instruction:\n"));
            FT_TRY(put(out, MTEXT(m)));
            FT_TRY(puts_(out, "\n\n"));
            break;
        case FT_ROLE_INPUT:
            if (m->text_len == 0) break;
            FT_TRY(puts_(out, "### Input:\n"));
            FT_TRY(put(out, MTEXT(m)));
            FT_TRY(puts_(out, "\n\n"));
            break;
        case FT_ROLE_ASSISTANT: {
            FT_TRY(puts_(out, "### Response:\n"));
            FT_TRY(put_learn(out, MTEXT(m), 1));
            if (k + 1 < x->nmsg) FT_TRY(puts_(out, "\n\n"));  /* a history turn */
            break;
        }
        default: break;
        }
    }
    if (!completion) { out->nspans = 0; FT_TRY(learn(out, 0, out->len)); }
    return FT_OK;
}

/* through ft_chat_render_spans: messages as role/content strings (alpaca: instruction + input) */
static int render_template(ft_render *out, const ft_recs *rs, const ft_rec *x, int completion,
                           const ft_chat_template *tmpl) {
    static const char *roles[] = {"user", "user", "system", "user", "assistant", "tool", "user"};
    ft_chat_msg *msgs = calloc((size_t)x->nmsg, sizeof *msgs);
    char **owned = calloc((size_t)x->nmsg, sizeof *owned);
    int n = 0, rc = FT_OK;
    if (!msgs || !owned) { rc = ft_error(FT_ERR_NOMEM, "data: out of memory (template)"); goto done; }
    for (int32_t k = 0; k < x->nmsg; k++) {
        const ft_rmsg *m = &rs->msgs[x->msg0 + k];
        const char *t = rs->pool + m->text;
        size_t tl = (size_t)m->text_len;
        if (m->role == FT_ROLE_INPUT) {
            if (tl == 0 || n == 0) continue;
            /* alpaca: the input joins the instruction, after a blank line */
            const char *prev = msgs[n - 1].content;
            size_t pl = strlen(prev);
            char *j = malloc(pl + 2 + tl + 1);
            if (!j) { rc = ft_error(FT_ERR_NOMEM, "data: out of memory (template)"); goto done; }
            memcpy(j, prev, pl);
            memcpy(j + pl, "\n\n", 2);
            memcpy(j + pl + 2, t, tl + 1);
            free(owned[n - 1]);
            owned[n - 1] = j;
            msgs[n - 1].content = j;
            continue;
        }
        if (m->role == FT_ROLE_SYSTEM && tl == 0) continue;
        /* a prompt/completion keeps its boundary whitespace in the data; a template wants it trimmed */
        while (tl > 0 && (t[0] == ' ' || t[0] == '\n' || t[0] == '\t')) { t++; tl--; }
        while (tl > 0 && (t[tl - 1] == ' ' || t[tl - 1] == '\n' || t[tl - 1] == '\t')) tl--;
        char *cpy = malloc(tl + 1);
        if (!cpy) { rc = ft_error(FT_ERR_NOMEM, "data: out of memory (template)"); goto done; }
        memcpy(cpy, t, tl);
        cpy[tl] = 0;
        owned[n] = cpy;
        msgs[n].role = roles[m->role];
        msgs[n].content = cpy;
        n++;
    }
    char *text = NULL;
    size_t len = 0;
    ft_span *sp = NULL;
    int nsp = 0;
    rc = ft_chat_render_spans(tmpl, msgs, n, 0, &text, &len, &sp, &nsp);
    if (rc == FT_OK) {
        rc = put(out, text, len);
        for (int i = 0; i < nsp && rc == FT_OK && completion; i++) rc = learn(out, sp[i].start, sp[i].end);
        if (rc == FT_OK && !completion) rc = learn(out, 0, out->len);
        out->templated = 1;
    }
    free(text);
    free(sp);
done:
    for (int32_t k = 0; owned && k < x->nmsg; k++) free(owned[k]);
    free(owned);
    free(msgs);
    return rc;
}

int ft__data_render(ft_render *out, const ft_recs *rs, int64_t i, ft_train_on train_on, const ft_data_options *opt) {
    const ft_rec *x = &rs->recs[i];
    out->len = 0;
    out->nspans = 0;
    out->templated = 0;
    FT_TRY(put(out, "", 0));
    int completion = ft__data_resolve_train_on(train_on, x->kind) == FT_TRAIN_ON_COMPLETION;
    int templ = opt->chat_template && (x->kind == FT_REC_CHAT || x->kind == FT_REC_PC || x->kind == FT_REC_ALPACA);
    if (templ) {
        FT_TRY(render_template(out, rs, x, completion, opt->chat_template));
    } else {
        switch (x->kind) {
        case FT_REC_TEXT:
            FT_TRY(put_learn(out, MTEXT(&rs->msgs[x->msg0]), 1));
            break;
        case FT_REC_DIALOGUE:
            FT_TRY(render_dialogue(out, rs, x, completion, opt->response_speaker));
            break;
        case FT_REC_PC: {
            const ft_rmsg *p = &rs->msgs[x->msg0], *q = &rs->msgs[x->msg0 + 1];
            FT_TRY(put_learn(out, MTEXT(p), !completion));
            if (opt->pc_separator) FT_TRY(put_learn(out, opt->pc_separator, strlen(opt->pc_separator), !completion));
            FT_TRY(put_learn(out, MTEXT(q), 1));
            break;
        }
        case FT_REC_CHAT:
            FT_TRY(render_chat_plain(out, rs, x, completion));
            break;
        case FT_REC_ALPACA:
            FT_TRY(render_alpaca_plain(out, rs, x, completion));
            break;
        default:
            return ft_error(FT_ERR_INVALID, "data: record %lld has an unknown kind %d", (long long)i, x->kind);
        }
    }
    return out->nspans == 0 ? 1 : FT_OK;
}
