/* clean.c — per field: UTF-8 check, whitespace clean-up, NFC; per record: empty fields,
 * exact duplicates, length filters. Every drop goes through ft__data_drop_rec (warning or, strict,
 * error naming file, line, record and field). */
#include "data/data_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int64_t ft__data_utf8_invalid_at(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        if (b < 0x80) { i++; continue; }
        int need;
        uint32_t cp;
        if (b >= 0xC2 && b <= 0xDF) { need = 1; cp = b & 0x1F; }
        else if (b >= 0xE0 && b <= 0xEF) { need = 2; cp = b & 0x0F; }
        else if (b >= 0xF0 && b <= 0xF4) { need = 3; cp = b & 0x07; }
        else return (int64_t)i;
        if (i + (size_t)need >= len) return (int64_t)i;
        for (int k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (int64_t)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return (int64_t)i;
        i += (size_t)need + 1;
    }
    return -1;
}

static int is_hspace(char ch) { return ch == ' ' || ch == '\t'; }

size_t ft__data_clean_ws(char *out, const char *s, size_t len, int keep_lead, int keep_trail) {
    /* pass 1: CRLF / CR -> LF, drop control characters other than TAB and LF */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r') {
            if (i + 1 < len && s[i + 1] == '\n') continue;
            out[n++] = '\n';
        } else if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7F) {
            continue;
        } else {
            out[n++] = (char)ch;
        }
    }
    /* pass 2, in place (w <= r): lines */
    size_t r = 0, w = 0;
    if (keep_lead) {
        while (r < n && (is_hspace(out[r]) || out[r] == '\n')) out[w++] = out[r++];
    } else {
        while (r < n && (is_hspace(out[r]) || out[r] == '\n')) r++;
    }
    size_t line_begin = w;      /* output index where the current line starts (never stripped below) */
    size_t content_start = w;   /* output index of the line's first non-indentation character */
    int in_indent = !keep_lead || w == 0 || out[w - 1] == '\n';
    int newlines = 0;           /* consecutive newlines just written */
    while (r < n) {
        char ch = out[r++];
        if (ch == '\n') {
            while (w > line_begin && is_hspace(out[w - 1])) w--;   /* trailing blanks of the line */
            if (newlines < 2) { out[w++] = '\n'; newlines++; }     /* at most one blank line */
            line_begin = content_start = w;
            in_indent = 1;
            continue;
        }
        if (in_indent) {
            if (is_hspace(ch)) { out[w++] = ch; continue; }        /* indentation is kept */
            in_indent = 0;
            content_start = w;
        }
        newlines = 0;
        if (ch == ' ' && w > content_start && out[w - 1] == ' ') continue;  /* runs of spaces -> one */
        out[w++] = ch;
    }
    if (!keep_trail) {
        while (w > 0 && (is_hspace(out[w - 1]) || out[w - 1] == '\n')) w--;
    }
    out[w] = 0;
    return w;
}

/* Cleans one string (pool offset *off, *len); returns 1 if whitespace changed, 2 if NFC changed
 * (or both: 3); < 0 on error. */
static int clean_string(ft_data_ctx *c, int64_t *off, int64_t *len, int keep_lead, int keep_trail) {
    ft_recs *rs = c->rs;
    int changed = 0;
    char *s = rs->pool + *off;
    if (c->opt->clean_whitespace) {
        /* the result is never longer: clean into a scratch copy, then back in place */
        char *tmp = malloc((size_t)*len + 1);
        if (!tmp) return ft_error(FT_ERR_NOMEM, "%s: out of memory", c->path);
        size_t nl = ft__data_clean_ws(tmp, s, (size_t)*len, keep_lead, keep_trail);
        if (nl != (size_t)*len || memcmp(tmp, s, nl) != 0) {
            memcpy(s, tmp, nl + 1);
            *len = (int64_t)nl;
            changed |= 1;
        }
        free(tmp);
    }
    if (c->opt->nfc) {
        /* code points below U+0300 (ASCII, Latin-1, Latin Extended, IPA, spacing modifiers) are all
         * NFC-stable and combine with nothing before them: only other text needs utf8proc */
        int simple = 1;
        for (int64_t i = 0; i < *len && simple; i++) {
            unsigned char b = (unsigned char)s[i];
            simple = b < 0x80 || (b >= 0xC2 && b <= 0xCB);  /* lead bytes of U+0080..U+02FF */
        }
        if (!simple) {
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)*len, &dst,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (m < 0) return ft_error(FT_ERR_FORMAT, "%s: NFC normalisation failed: %s", c->path, utf8proc_errmsg(m));
            if (m != *len || memcmp(dst, s, (size_t)m) != 0) {
                changed |= 2;
                if (m <= *len) {
                    memcpy(s, dst, (size_t)m);
                    s[m] = 0;
                } else {
                    int64_t o = ft__recs_str(rs, (const char *)dst, (size_t)m);
                    if (o < 0) { free(dst); return ft_error(FT_ERR_NOMEM, "%s: out of memory", c->path); }
                    *off = o;
                }
                *len = m;
            }
            free(dst);
        }
    }
    return changed;
}

int ft__data_clean(ft_data_ctx *c, int64_t rec_begin) {
    ft_recs *rs = c->rs;
    char field[160];
    for (int64_t r = rec_begin; r < rs->n; r++) {
        if (rs->recs[r].dropped) continue;
        int ws = 0, nfc = 0, drop = 0;
        for (int64_t k = 0; k < rs->recs[r].nmsg && !drop; k++) {
            ft_rmsg *m = &rs->msgs[rs->recs[r].msg0 + k];
            const char *fname = rs->pool + m->field;
            for (int part = 0; part < 2 && !drop; part++) {  /* 0: the speaker name, 1: the text */
                int64_t *off = part ? &m->text : &m->name;
                int64_t len = part ? m->text_len : m->name_len;
                if (*off < 0) continue;
                snprintf(field, sizeof field, "%s%s", fname, part ? "" : " (speaker)");
                int64_t bad = ft__data_utf8_invalid_at(rs->pool + *off, (size_t)len);
                if (bad >= 0) {
                    FT_TRY(ft__data_drop_rec(c, r, FT_DROP_INVALID_UTF8, field, "invalid UTF-8 at byte %lld (0x%02X)",
                                            (long long)bad, (unsigned char)rs->pool[*off + bad]));
                    drop = 1;
                    break;
                }
                int ch = clean_string(c, off, &len, part && (m->flags & FT_MSGF_KEEP_LEAD),
                                      part && (m->flags & FT_MSGF_KEEP_TRAIL));
                if (ch < 0) return ch;
                ws |= ch & 1;
                nfc |= (ch & 2) != 0;
                if (part) m->text_len = len; else m->name_len = (int32_t)len;
                if (part && len == 0 && !(m->flags & FT_MSGF_OPTIONAL)) {
                    FT_TRY(ft__data_drop_rec(c, r, FT_DROP_EMPTY, field, "empty"));
                    drop = 1;
                } else if (part && !(m->flags & FT_MSGF_OPTIONAL)) {
                    /* whitespace-only text kept by keep_lead/keep_trail is empty too */
                    int only_ws = 1;
                    for (int64_t i = 0; i < len && only_ws; i++) {
                        char ch2 = rs->pool[*off + i];
                        only_ws = ch2 == ' ' || ch2 == '\t' || ch2 == '\n';
                    }
                    if (only_ws) {
                        FT_TRY(ft__data_drop_rec(c, r, FT_DROP_EMPTY, field, "empty (only whitespace)"));
                        drop = 1;
                    }
                }
            }
        }
        c->st->ws_changed += ws;
        c->st->nfc_changed += nfc;
    }
    return FT_OK;
}

/* ---- duplicates and length filters ---- */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 0x100000001b3ull; }
    return h;
}

static uint64_t rec_hash(const ft_recs *rs, int64_t r) {
    const ft_rec *x = &rs->recs[r];
    uint64_t h = fnv(0xcbf29ce484222325ull, &x->kind, 1);
    for (int32_t k = 0; k < x->nmsg; k++) {
        const ft_rmsg *m = &rs->msgs[x->msg0 + k];
        unsigned char sep[2] = {m->role, 0xFF};
        h = fnv(h, sep, 2);
        if (m->name >= 0) h = fnv(h, rs->pool + m->name, (size_t)m->name_len);
        h = fnv(h, sep + 1, 1);
        h = fnv(h, rs->pool + m->text, (size_t)m->text_len);
    }
    return h;
}

static int rec_equal(const ft_recs *rs, int64_t a, int64_t b) {
    const ft_rec *x = &rs->recs[a], *y = &rs->recs[b];
    if (x->kind != y->kind || x->nmsg != y->nmsg) return 0;
    for (int32_t k = 0; k < x->nmsg; k++) {
        const ft_rmsg *m = &rs->msgs[x->msg0 + k], *q = &rs->msgs[y->msg0 + k];
        if (m->role != q->role || m->text_len != q->text_len || m->name_len != q->name_len ||
            (m->name < 0) != (q->name < 0))
            return 0;
        if (m->name >= 0 && memcmp(rs->pool + m->name, rs->pool + q->name, (size_t)m->name_len) != 0) return 0;
        if (memcmp(rs->pool + m->text, rs->pool + q->text, (size_t)m->text_len) != 0) return 0;
    }
    return 1;
}

static int64_t count_chars(const char *s, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

int ft__data_filter(ft_data_ctx *c) {
    ft_recs *rs = c->rs;
    const ft_data_options *o = c->opt;
    for (int64_t r = 0; r < rs->n; r++) {
        ft_rec *x = &rs->recs[r];
        if (x->dropped) continue;
        int64_t chars = 0;
        for (int32_t k = 0; k < x->nmsg; k++) {
            const ft_rmsg *m = &rs->msgs[x->msg0 + k];
            chars += count_chars(rs->pool + m->text, m->text_len);
        }
        if (o->min_chars > 0 && chars < o->min_chars)
            FT_TRY(ft__data_drop_rec(c, r, FT_DROP_TOO_SHORT, NULL, "%lld characters < min_chars %d", (long long)chars, o->min_chars));
        else if (o->max_chars > 0 && chars > o->max_chars)
            FT_TRY(ft__data_drop_rec(c, r, FT_DROP_TOO_LONG, NULL, "%lld characters > max_chars %d", (long long)chars, o->max_chars));
    }
    if (!o->dedup) return FT_OK;
    int64_t cap = 16;
    while (cap < 2 * rs->n) cap *= 2;
    int64_t *slot = malloc((size_t)cap * sizeof *slot);
    uint64_t *hash = malloc((size_t)cap * sizeof *hash);
    if (!slot || !hash) { free(slot); free(hash); return ft_error(FT_ERR_NOMEM, "data: out of memory (dedup)"); }
    for (int64_t i = 0; i < cap; i++) slot[i] = -1;
    int rc = FT_OK;
    for (int64_t r = 0; r < rs->n && rc == FT_OK; r++) {
        if (rs->recs[r].dropped) continue;
        uint64_t h = rec_hash(rs, r);
        int64_t i = (int64_t)(h & (uint64_t)(cap - 1));
        for (;;) {
            if (slot[i] < 0) { slot[i] = r; hash[i] = h; break; }
            if (hash[i] == h && rec_equal(rs, slot[i], r)) {
                const ft_rec *f = &rs->recs[slot[i]];
                if (f->file == rs->recs[r].file)
                    rc = ft__data_drop_rec(c, r, FT_DROP_DUPLICATE, NULL, "duplicate of record %lld (line %d)",
                                          (long long)f->index, f->line);
                else
                    rc = ft__data_drop_rec(c, r, FT_DROP_DUPLICATE, NULL, "duplicate of %s record %lld (line %d)",
                                          rs->files[f->file], (long long)f->index, f->line);
                break;
            }
            i = (i + 1) & (cap - 1);
        }
    }
    free(slot);
    free(hash);
    return rc;
}
