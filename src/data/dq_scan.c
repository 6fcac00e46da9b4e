/* dq_scan.c — what a text should not hold, or holds about people: invalid UTF-8, control characters,
 * URLs, e-mail addresses and phone numbers (PCRE2 patterns, below), and the mention / hashtag patterns
 * the cleaner uses.
 *
 * The patterns (UTF mode, case-insensitive):
 *   url      (https?|ftp)://... or www.... up to whitespace or a quote / bracket; a final . , ; : ! ? ) is
 *            not part of it
 *   email    local@domain.tld with a 2+ letter top-level domain
 *   phone    an optional +country code, an optional (area) code, then 2-4 digits, a separator (space, '.',
 *            '-') and 3-4 digits, optionally once more; 7 to 15 digits in all, not inside a longer
 *            word or number. Order numbers (one run of digits) and dates (2020-10-12: its groups are too
 *            short) do not match.
 *   mention  @name (1-30 word characters) not preceded by a word character (so e-mails are not mentions)
 *   hashtag  #tag (a letter, then word characters) not preceded by a word character */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/dq_internal.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_patterns[FT_DQ_PATS] = {
    "(?:\\b(?:https?|ftp)://|\\bwww\\.)[^\\s<>\"'`]+?(?=[.,;:!?)\\]]*(?:[\\s<>\"'`]|$))",
    "\\b[a-z0-9._%+-]+@[a-z0-9-]+(?:\\.[a-z0-9-]+)*\\.[a-z]{2,}\\b",
    "(?<![\\w+])(?:\\+\\d{1,3}[ .-]?)?(?:\\(\\d{1,4}\\)[ .-]?)?\\d{2,4}[ .-]\\d{3,4}(?:[ .-]\\d{2,4})?(?![\\w-])",
    "(?<![\\w@])@\\w{1,30}\\b",
    "(?<![\\w#&])#[\\p{L}_][\\w]*",
};

struct ft_dq_scanner {
    pcre2_code *re[FT_DQ_PATS];
    pcre2_match_data *md;
};

int ft__dq_scanner_new(ft_dq_scanner **out) {
    *out = NULL;
    ft_dq_scanner *sc = calloc(1, sizeof *sc);
    if (!sc) return ft_error(FT_ERR_NOMEM, "out of memory (scanner)");
    for (int p = 0; p < FT_DQ_PATS; p++) {
        int err;
        PCRE2_SIZE off;
        sc->re[p] = pcre2_compile((PCRE2_SPTR)k_patterns[p], PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_NO_UTF_CHECK, &err, &off, NULL);
        if (!sc->re[p]) {
            ft__dq_scanner_free(sc);
            return ft_error(FT_ERR_INVALID, "dq_scan: pattern %d does not compile (error %d at %zu)", p, err, (size_t)off);
        }
        pcre2_jit_compile(sc->re[p], PCRE2_JIT_COMPLETE);   /* optional: falls back to the interpreter */
    }
    sc->md = pcre2_match_data_create(4, NULL);
    if (!sc->md) { ft__dq_scanner_free(sc); return ft_error(FT_ERR_NOMEM, "out of memory (scanner)"); }
    *out = sc;
    return FT_OK;
}

void ft__dq_scanner_free(ft_dq_scanner *sc) {
    if (!sc) return;
    for (int p = 0; p < FT_DQ_PATS; p++) pcre2_code_free(sc->re[p]);
    pcre2_match_data_free(sc->md);
    free(sc);
}

static int digits_ok(const char *s, size_t a, size_t e) {
    int d = 0;
    for (size_t i = a; i < e; i++) d += s[i] >= '0' && s[i] <= '9';
    return d >= 7 && d <= 15;
}

/* Every match of pattern p in s[0..n) (valid UTF-8): fn(kind, start, end). */
static int each_match(ft_dq_scanner *sc, int p, int kind, const char *s, size_t n, ft_dq_hit_fn fn, void *ctx) {
    PCRE2_SIZE at = 0;
    while (at <= n) {
        int rc = pcre2_match(sc->re[p], (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, sc->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return ft_error(FT_ERR_INVALID, "dq_scan: PCRE2 match error %d", rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        size_t a = ov[0], e = ov[1];
        if (p != FT_DQ_PAT_PHONE || digits_ok(s, a, e)) FT_TRY(fn(ctx, kind, a, e));
        at = e > a ? e : e + 1;
        while (at < n && ((unsigned char)s[at] & 0xC0) == 0x80) at++;   /* stay on a character start */
    }
    return FT_OK;
}

int ft__dq_scan(ft_dq_scanner *sc, const char *s, size_t n, int kinds_mask, ft_dq_hit_fn fn, void *ctx) {
    /* byte level: invalid UTF-8 and control characters (TAB / LF / CR are not) */
    int valid = 1;
    size_t i = 0;
    while (i < n) {
        size_t at = i;
        int32_t cp = ft__dq_utf8_next(s, n, &i);
        if (cp < 0) {
            valid = 0;
            if (kinds_mask & (1 << FT_DQ_HIT_INVALID_UTF8)) FT_TRY(fn(ctx, FT_DQ_HIT_INVALID_UTF8, at, i));
        } else if (((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || (cp >= 0x7F && cp < 0xA0) ||
                    cp == 0xFEFF || cp == 0xFFFD) && (kinds_mask & (1 << FT_DQ_HIT_CONTROL))) {
            FT_TRY(fn(ctx, FT_DQ_HIT_CONTROL, at, i));
        }
    }
    if (!valid) return FT_OK;   /* the patterns run on valid UTF-8 only */
    static const int map[][2] = {{FT_DQ_HIT_URL, FT_DQ_PAT_URL}, {FT_DQ_HIT_EMAIL, FT_DQ_PAT_EMAIL},
                                 {FT_DQ_HIT_PHONE, FT_DQ_PAT_PHONE}};
    for (int k = 0; k < 3; k++)
        if (kinds_mask & (1 << map[k][0])) FT_TRY(each_match(sc, map[k][1], map[k][0], s, n, fn, ctx));
    return FT_OK;
}


typedef struct span_vec { size_t (*v)[2]; int64_t n, cap; } span_vec;
static int collect(void *ctx, int kind, size_t a, size_t e) {
    (void)kind;
    span_vec *sv = ctx;
    if (sv->n == sv->cap) {
        int64_t nc = sv->cap ? sv->cap * 2 : 8;
        void *q = realloc(sv->v, (size_t)nc * sizeof *sv->v);
        if (!q) return FT_ERR_NOMEM;
        sv->v = q;
        sv->cap = nc;
    }
    sv->v[sv->n][0] = a;
    sv->v[sv->n][1] = e;
    sv->n++;
    return FT_OK;
}

char *ft__dq_scan_replace(ft_dq_scanner *sc, int pat, const char *s, size_t n, int *err) {
    size_t i = 0;
    while (i < n) if (ft__dq_utf8_next(s, n, &i) < 0) return NULL;   /* invalid UTF-8: left alone */
    span_vec sv = {0};
    int rc = each_match(sc, pat, pat, s, n, collect, &sv);
    if (rc < 0) { free(sv.v); *err = rc; return NULL; }
    if (sv.n == 0) { free(sv.v); return NULL; }
    char *o = malloc(n + 1);
    if (!o) { free(sv.v); *err = FT_ERR_NOMEM; return NULL; }
    size_t w = 0, last = 0;
    for (int64_t k = 0; k < sv.n; k++) {
        memcpy(o + w, s + last, sv.v[k][0] - last);
        w += sv.v[k][0] - last;
        if (pat == FT_DQ_PAT_HASHTAG) {   /* keep the tag's word */
            memcpy(o + w, s + sv.v[k][0] + 1, sv.v[k][1] - sv.v[k][0] - 1);
            w += sv.v[k][1] - sv.v[k][0] - 1;
        }
        last = sv.v[k][1];
    }
    memcpy(o + w, s + last, n - last);
    w += n - last;
    o[w] = 0;
    free(sv.v);
    return o;
}
