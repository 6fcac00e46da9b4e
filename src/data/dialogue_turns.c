/* dialogue_turns.c — speaker-labelled dialogue strings -> turns.
 *
 * "Technician: It stopped.\n\nExpert: Check the belt." and "Customer: Hi. Cashier: Hello!" are both
 * two turns. A label is a name followed by ": ":
 *   - at the start of the text or of a line: always a label;
 *   - inside a line, right after a sentence end (. ! ? " ' ) and a space: a label only when the same
 *     name labels a line start somewhere in the file, or appears this way in at least two records
 *     of the file (so "Agent" in "...? Agent: ..." over many records is found, and a lone "He said:"
 *     is not).
 * A name has 1-4 words of at most 40 bytes, each word starting with an upper-case letter, a digit
 * or '#', with no ',', '?', '!', '"' or ':' ("Coach", "Dr. Smith", "#Person1#", "Person 2").
 * Text before the first label becomes a turn without a name. */
#include "data/data_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 40

/* If s[i..n) starts with a valid "Name: " label, returns the name length (the ':' is at i+len). */
int ft__data_label_at(const char *s, size_t i, size_t n) {
    size_t j = i, words = 0;
    int word_start = 1;
    while (j < n && j - i <= MAX_NAME) {
        unsigned char ch = (unsigned char)s[j];
        if (ch == ':') break;
        if (ch == '\n' || ch == '\r' || ch == '\t' || ch == ',' || ch == '?' || ch == '!' || ch == '"') return 0;
        if (ch == ' ') {
            if (word_start) return 0;  /* two spaces, or a leading space */
            word_start = 1;
        } else if (word_start) {
            if (!(isupper(ch) || isdigit(ch) || ch == '#' || ch >= 0x80)) return 0;
            word_start = 0;
            if (++words > 4) return 0;
        }
        j++;
    }
    if (j >= n || s[j] != ':' || j == i || word_start) return 0;
    if (j + 1 < n && s[j + 1] != ' ' && s[j + 1] != '\n') return 0;
    int digits_only = 1;
    for (size_t k = i; k < j; k++) digits_only &= isdigit((unsigned char)s[k]) || s[k] == ' ';
    return digits_only ? 0 : (int)(j - i);
}

typedef struct name_count {
    char name[MAX_NAME + 1];
    int  line_start;      /* seen at a line start */
    int64_t inline_recs;  /* records where it appears inline */
    int64_t last_rec;
} name_count;

typedef struct name_set { name_count *v; int64_t n, cap; } name_set;

static name_count *find_name(name_set *ns, const char *s, int len) {
    for (int64_t i = 0; i < ns->n; i++)
        if ((int)strlen(ns->v[i].name) == len && memcmp(ns->v[i].name, s, (size_t)len) == 0) return &ns->v[i];
    return NULL;
}

static int add_name(name_set *ns, const char *s, int len, int line_start, int64_t rec) {
    name_count *x = find_name(ns, s, len);
    if (!x) {
        if (ns->n >= 4096) return FT_OK;  /* not a dialogue file with a few speakers: stop collecting */
        FT_TRY(ft__data_reserve((void **)&ns->v, sizeof *ns->v, ns->n + 1, &ns->cap));
        x = &ns->v[ns->n++];
        memset(x, 0, sizeof *x);
        memcpy(x->name, s, (size_t)len);
        x->last_rec = -1;
    }
    if (line_start) x->line_start = 1;
    else if (x->last_rec != rec) { x->inline_recs++; x->last_rec = rec; }
    return FT_OK;
}

static int sentence_end(char ch) { return ch == '.' || ch == '!' || ch == '?' || ch == '"' || ch == '\'' || ch == ')'; }

typedef struct label_pos { size_t name, colon; } label_pos;

int ft__data_split_dialogue_strings(ft_data_ctx *c, int file, int64_t rec_begin) {
    ft_recs *rs = c->rs;
    name_set ns = {0};
    label_pos *lp = NULL;
    int64_t lp_cap = 0;
    char *copy = NULL;
    int rc = FT_OK;
    /* pass 1: names */
    for (int64_t r = rec_begin; r < rs->n; r++) {
        ft_rec *x = &rs->recs[r];
        if (x->kind != FT_REC_DIALOGUE_RAW || x->dropped || x->file != file) continue;
        const ft_rmsg *m = &rs->msgs[x->msg0];
        const char *s = rs->pool + m->text;
        size_t n = (size_t)m->text_len;
        for (size_t i = 0; i < n; i++) {
            int at_line = i == 0 || s[i - 1] == '\n';
            int at_inline = i >= 2 && s[i - 1] == ' ' && sentence_end(s[i - 2]);
            if (!at_line && !at_inline) continue;
            int len = ft__data_label_at(s, i, n);
            if (len > 0 && (rc = add_name(&ns, s + i, len, at_line, r)) < 0) goto done;
        }
    }
    /* pass 2: split */
    for (int64_t r = rec_begin; r < rs->n; r++) {
        ft_rec *x = &rs->recs[r];
        if (x->kind != FT_REC_DIALOGUE_RAW || x->dropped || x->file != file) continue;
        const ft_rmsg *m = &rs->msgs[x->msg0];
        size_t n = (size_t)m->text_len;
        free(copy);
        copy = malloc(n + 1);
        if (!copy) { rc = ft_error(FT_ERR_NOMEM, "%s: out of memory", c->path); goto done; }
        memcpy(copy, rs->pool + m->text, n + 1);
        char field[96];
        snprintf(field, sizeof field, "%s", rs->pool + m->field);
        int64_t nl = 0;
        for (size_t i = 0; i < n; i++) {
            int at_line = i == 0 || copy[i - 1] == '\n';
            int at_inline = i >= 2 && copy[i - 1] == ' ' && sentence_end(copy[i - 2]);
            if (!at_line && !at_inline) continue;
            int len = ft__data_label_at(copy, i, n);
            if (len <= 0) continue;
            if (!at_line) {
                name_count *nc = find_name(&ns, copy + i, len);
                if (!nc || !(nc->line_start || nc->inline_recs >= 2)) continue;
            }
            if ((rc = ft__data_reserve((void **)&lp, sizeof *lp, nl + 1, &lp_cap)) < 0) goto done;
            lp[nl].name = i;
            lp[nl].colon = i + (size_t)len;
            nl++;
            i += (size_t)len;
        }
        int64_t first = rs->nmsgs;
        int nturns = 0;
        for (int64_t k = -1; k < nl; k++) {
            size_t a = k < 0 ? 0 : lp[k].colon + 1;
            size_t b = k + 1 < nl ? lp[k + 1].name : n;
            while (a < b && isspace((unsigned char)copy[a])) a++;
            while (b > a && isspace((unsigned char)copy[b - 1])) b--;
            if (k < 0 && b == a) continue;  /* nothing before the first label */
            char tf[128];
            snprintf(tf, sizeof tf, "%s turn %d", field, nturns);
            if (k >= 0 && b == a) {
                rs->nmsgs = first;
                rc = ft__data_drop_rec(c, r, FT_DROP_EMPTY, field, "turn %d (%.*s) is empty", nturns,
                                      (int)(lp[k].colon - lp[k].name), copy + lp[k].name);
                if (rc < 0) goto done;
                nturns = -1;
                break;
            }
            int64_t id = ft__recs_add_msg(rs, FT_ROLE_TURN, 0, tf, k < 0 ? NULL : copy + lp[k].name,
                                         k < 0 ? 0 : lp[k].colon - lp[k].name, copy + a, b - a);
            if (id < 0) { rc = (int)id; goto done; }
            nturns++;
        }
        if (nturns < 0) continue;
        x = &rs->recs[r];
        x->kind = FT_REC_DIALOGUE;
        x->msg0 = first;
        x->nmsg = nturns;
        if (nturns == 0) {
            rc = ft__data_drop_rec(c, r, FT_DROP_EMPTY, field, "no text");
            if (rc < 0) goto done;
        }
    }
done:
    free(ns.v);
    free(lp);
    free(copy);
    return rc;
}
