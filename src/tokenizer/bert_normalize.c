/* bert_normalize.c — HF tokenizers' BertNormalizer and StripAccents, and the character classes
 * that BertNormalizer / BertPreTokenizer use.
 *
 * BertNormalizer, in HF's order:
 *   clean_text            drop U+0000, U+FFFD and "control" characters (Cc Cf Co, not \t \n \r);
 *                         whitespace (\t \n \r and White_Space) becomes ' '
 *   handle_chinese_chars  a space before and after every CJK ideograph
 *   strip_accents         NFD, then drop nonspacing marks (null in the JSON: as lowercase)
 *   lowercase             Rust's char::to_lowercase per character
 * The classes come from HF's Unicode data (bert_tables.c), NFD and lowercase from utf8proc with the
 * fix-ups listed there. Bytes that are not UTF-8 pass through every step unchanged (HF cannot see
 * them: its input is always valid UTF-8); they are carried as code points RAW_BASE + byte. */
#include "tokenizer_impl.h"
#include "finetune/status.h"

#include <string.h>
#include <utf8proc.h>

#define RAW_BASE 0x110000   /* RAW_BASE + b: the invalid byte b */

static int in_ranges(const ft_cp_range *r, int n, int32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int ft__tok_is_bert_whitespace(int32_t cp) {
    if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return 1;
    if (cp < 0x85) return 0;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

int ft__tok_is_bert_punct(int32_t cp) {
    if (cp < 0x80) return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
    return cp < RAW_BASE && in_ranges(ft_bert_punct, ft_bert_punct_n, cp);
}

static int is_control(int32_t cp) { return cp < RAW_BASE && in_ranges(ft_bert_control, ft_bert_control_n, cp); }
static int is_mn(int32_t cp) { return cp >= 0x300 && cp < RAW_BASE && in_ranges(ft_bert_mn, ft_bert_mn_n, cp); }

/* the CJK ranges of HF's BertNormalizer (its 0x2B920 start, not BERT's 0x2B820, is kept) */
static int is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int ft__tok_lowercase_cp(int32_t cp, int32_t out[2]) {
    if (cp < 0x80) { out[0] = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; return 1; }
    if (cp >= RAW_BASE) { out[0] = cp; return 1; }
    if (cp == 0x130) { out[0] = 'i'; out[1] = 0x307; return 2; }   /* the one two-character lowercase */
    int lo = 0, hi = ft_bert_lower_fix_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < ft_bert_lower_fix[mid].cp) hi = mid - 1;
        else if (cp > ft_bert_lower_fix[mid].cp) lo = mid + 1;
        else { out[0] = ft_bert_lower_fix[mid].to; return 1; }
    }
    out[0] = utf8proc_tolower(cp);
    return 1;
}

static int reserve_cps(ft_tok_work *w, int i, size_t need) {
    if (need > (size_t)(INT32_MAX / 8)) return ft_error(FT_ERR_RANGE, "tokenizer: text of %zu characters is too long", need);
    return ft__tok_reserve((void **)&w->cps[i], sizeof *w->cps[i], (int)need + 1, &w->cps_cap[i]);
}

/* NFD of cps[src][0..n) into cps[dst]: full canonical decomposition, then canonical ordering. */
static int nfd(ft_tok_work *w, int src, int dst, int n, int *out_n) {
    FT_TRY(reserve_cps(w, dst, (size_t)n * 2 + 8));
    int k = 0;
    for (int i = 0; i < n; i++) {
        int32_t cp = w->cps[src][i];
        if (cp < 0xC0 || cp >= RAW_BASE || in_ranges(ft_bert_nfd_keep, ft_bert_nfd_keep_n, cp)) {
            w->cps[dst][k++] = cp;   /* nothing below U+00C0 decomposes */
            continue;
        }
        for (;;) {
            int last = 0;
            utf8proc_ssize_t m = utf8proc_decompose_char(cp, w->cps[dst] + k, w->cps_cap[dst] - k, UTF8PROC_DECOMPOSE, &last);
            if (m < 0) { w->cps[dst][k++] = cp; break; }   /* not a valid code point: leave it */
            if (m <= w->cps_cap[dst] - k) { k += (int)m; break; }
            FT_TRY(ft__tok_reserve((void **)&w->cps[dst], sizeof *w->cps[dst], k + (int)m + (n - i) * 2 + 8, &w->cps_cap[dst]));
        }
    }
    /* canonical ordering: a run of non-starters is sorted by combining class, stably */
    int32_t *c = w->cps[dst];
    for (int i = 1; i < k; i++) {
        int32_t cp = c[i];
        int cc = cp < RAW_BASE && cp >= 0x300 ? utf8proc_get_property(cp)->combining_class : 0;
        if (cc == 0) continue;
        int j = i;
        while (j > 0) {
            int32_t p = c[j - 1];
            int pc = p < RAW_BASE && p >= 0x300 ? utf8proc_get_property(p)->combining_class : 0;
            if (pc <= cc) break;   /* a starter (0) stops the run */
            c[j] = p;
            j--;
        }
        c[j] = cp;
    }
    *out_n = k;
    return FT_OK;
}

int ft__tok_bert_normalize(const ft_norm_step *st, ft_tok_work *w, int o, const char *s, size_t n, size_t *out_n) {
    const int bert = st->kind == FT_NORM_BERT;
    const int clean = bert && st->clean_text, cjk = bert && st->handle_chinese_chars, lower = bert && st->lowercase;
    const int strip = bert ? (st->strip_accents < 0 ? st->lowercase : st->strip_accents) : 1;
    const int decompose = bert && strip;   /* StripAccents has no NFD of its own */

    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)s[i] < 0x80;
    if (ascii) {   /* nothing in ASCII decomposes, is CJK or a mark */
        FT_TRY(ft__tok_reserve_bytes(&w->nbuf[o], n + 1, &w->ncap[o]));
        char *d = w->nbuf[o];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            int c = (unsigned char)s[i];
            if (clean) {
                if (c == 0 || is_control(c)) continue;
                if (ft__tok_is_bert_whitespace(c)) c = ' ';
            }
            if (lower && c >= 'A' && c <= 'Z') c += 32;
            d[k++] = (char)c;
        }
        *out_n = k;
        return FT_OK;
    }

    /* decode, clean_text, CJK spacing: into cps[0] */
    FT_TRY(reserve_cps(w, 0, 3 * n));
    int32_t *a = w->cps[0];
    int na = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int len = ft__tok_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (cp < 0) cp = RAW_BASE + (unsigned char)s[i];
        i += (size_t)len;
        if (clean) {
            if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
            if (ft__tok_is_bert_whitespace(cp)) cp = ' ';
        }
        if (cjk && is_cjk(cp)) { a[na++] = ' '; a[na++] = cp; a[na++] = ' '; }
        else a[na++] = cp;
    }
    int cur = 0;
    if (decompose) { FT_TRY(nfd(w, 0, 1, na, &na)); cur = 1; }
    /* drop marks, lowercase: into the other buffer */
    int dst = cur ^ 1;
    FT_TRY(reserve_cps(w, dst, 2 * (size_t)na));
    const int32_t *src = w->cps[cur];
    int32_t *b = w->cps[dst];
    int nb = 0;
    for (int i = 0; i < na; i++) {
        int32_t cp = src[i];
        if (strip && is_mn(cp)) continue;
        if (lower) nb += ft__tok_lowercase_cp(cp, b + nb);
        else b[nb++] = cp;
    }
    /* back to UTF-8 */
    FT_TRY(ft__tok_reserve_bytes(&w->nbuf[o], 4 * (size_t)nb + 1, &w->ncap[o]));
    char *d = w->nbuf[o];
    size_t k = 0;
    for (int i = 0; i < nb; i++) {
        if (b[i] >= RAW_BASE) d[k++] = (char)(b[i] - RAW_BASE);
        else k += (size_t)ft__utf8_encode((uint32_t)b[i], d + k);
    }
    *out_n = k;
    return FT_OK;
}
